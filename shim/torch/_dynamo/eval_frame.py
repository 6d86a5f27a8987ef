"""``torch._dynamo.eval_frame``: ``OptimizedModule``, the type ``torch.compile`` wraps modules in.

Under the shim ``torch.compile`` returns the module itself, so no object is an ``OptimizedModule``; the class
exists for ``isinstance`` checks (accelerate's ``is_compiled_module``) and cannot be constructed.
"""
from __future__ import annotations

__all__ = ["OptimizedModule"]


class OptimizedModule:
    """Constructing one raises ``NotImplementedError`` (see the module doc)."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch._dynamo.eval_frame.OptimizedModule is not implemented by the shim "
                                  "(torch.compile returns the module unchanged)")
