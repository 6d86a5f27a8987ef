"""``torch._dynamo``: the shim has no graph capture (``torch.compile`` is eager, see ``torch.compiler``).

Present so that libraries importing names from it load: :func:`is_compiling` answers False, the graph-marking
decorators (re-exported from ``torch.compiler``) return their function, ``mark_static_address`` marks nothing,
:mod:`._trace_wrapped_higher_order_op` holds ``TransformGetItemToIndex``. Everything else raises
``NotImplementedError`` naming the API.
"""
from __future__ import annotations

from .._unsupported import module_getattr as _module_getattr

from . import eval_frame  # noqa: F401  (torch._dynamo.eval_frame.OptimizedModule, reached as an attribute)
from ..compiler import allow_in_graph, assume_constant_result, disable, is_compiling, reset  # noqa: F401

__all__ = ["is_compiling", "allow_in_graph", "assume_constant_result", "disable", "reset", "mark_static_address"]


def mark_static_address(t, guard: bool = True) -> None:
    """Nothing to mark: the shim compiles no graphs whose guards could depend on ``t``'s address."""


__getattr__ = _module_getattr("torch._dynamo")
