"""torch._dynamo basics that programs touch around torch.compile; under the shim nothing is traced or compiled.

`config` (torch._dynamo.config) holds torch's option names with torch 2.13's defaults; they can be read and set
(an unknown name raises AttributeError as torch's does) and have no effect, since nothing is compiled.
`disable`, `allow_in_graph`, `assume_constant_result` return the function unchanged; `mark_dynamic`,
`maybe_mark_dynamic`, `mark_static` are shape hints for the tracer and do nothing (their eager meaning);
`is_compiling` is False; `reset` has no caches to clear. Any other `torch._dynamo.X` raises UnsupportedAPI naming
it (e.g. `torch._dynamo.explain`, `torch._dynamo.export`).
"""
from __future__ import annotations

from . import config  # noqa: F401
from . import eval_frame  # noqa: F401  (torch._dynamo.eval_frame.OptimizedModule, reached as an attribute)
from ..compiler import allow_in_graph, assume_constant_result, disable, is_compiling, list_backends, reset  # noqa: F401
from .._unsupported import module_getattr

__all__ = ["config", "disable", "allow_in_graph", "assume_constant_result", "is_compiling", "reset",
           "list_backends", "mark_dynamic", "maybe_mark_dynamic", "mark_static", "mark_static_address"]


def mark_dynamic(t, index, *, min=None, max=None, specialize_on=None) -> None:
    """A tracer hint that dimension `index` of `t` varies; returns None (eager execution has no shapes to guard)."""
    return None


def maybe_mark_dynamic(t, index) -> None:
    """As mark_dynamic: returns None."""
    return None


def mark_static_address(t, guard: bool = True) -> None:
    """A tracer hint that ``t``'s address is static; returns None (no graphs whose guards could use it)."""
    return None


def mark_static(t, index=None) -> None:
    """A tracer hint that a dimension is static; returns None."""
    return None


__getattr__ = module_getattr("torch._dynamo")
