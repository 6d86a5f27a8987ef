"""``torch._dynamo._trace_wrapped_higher_order_op``: ``TransformGetItemToIndex``.

In torch it is a TorchFunctionMode that rewrites ``tensor[scalar_tensor]`` into ``index_select`` so that code can
run under ``torch.vmap``. The shim has no ``torch.vmap`` nor function modes, so entering it raises
``NotImplementedError`` (HF transformers' mask creation only enters it on its ``use_vmap=True`` path).
"""
from __future__ import annotations

__all__ = ["TransformGetItemToIndex"]


class TransformGetItemToIndex:
    """Context manager; ``NotImplementedError`` on entry (see the module doc)."""

    def __enter__(self):
        raise NotImplementedError("torch._dynamo._trace_wrapped_higher_order_op.TransformGetItemToIndex is not "
                                  "implemented by the shim (no torch.vmap / TorchFunctionMode)")

    def __exit__(self, *exc):
        return False
