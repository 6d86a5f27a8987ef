"""``torch._dynamo``: the shim has no graph capture (``torch.compile`` is eager, see ``torch.compiler``).

Present so that libraries importing names from it load: :func:`is_compiling` answers False,
:mod:`._trace_wrapped_higher_order_op` holds ``TransformGetItemToIndex``. Everything else raises
``NotImplementedError`` naming the API.
"""
from __future__ import annotations

from .._unsupported import module_getattr as _module_getattr

__all__ = ["is_compiling"]


def is_compiling() -> bool:
    """False: nothing is traced under the shim."""
    return False


__getattr__ = _module_getattr("torch._dynamo")
