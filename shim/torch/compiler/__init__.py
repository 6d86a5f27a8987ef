"""``torch.compiler``: the compiler-control API, with its meaning under the shim.

The shim runs every program eagerly (MindSpore PyNative; ``torch.compile`` returns its argument), so nothing
is ever being compiled or exported: ``is_compiling``/``is_dynamo_compiling``/``is_exporting`` answer False,
``disable`` and ``allow_in_graph`` return the function they mark (there is no graph to keep it out of or put
it in), ``reset`` has no compilation cache to clear, and ``cudagraph_mark_step_begin`` has no CUDA graphs to
step. Each of these is the API's true meaning when no compiler runs, not a skipped effect.
"""
from __future__ import annotations

from .._unsupported import module_getattr as _module_getattr

__all__ = ["is_compiling", "is_dynamo_compiling", "is_exporting", "disable", "allow_in_graph", "reset",
           "cudagraph_mark_step_begin", "assume_constant_result"]


def is_compiling() -> bool:
    """False: the shim never traces a program."""
    return False


def is_dynamo_compiling() -> bool:
    """False: the shim has no dynamo."""
    return False


def is_exporting() -> bool:
    """False: ``torch.export`` is not run by the shim."""
    return False


def disable(fn=None, recursive: bool = True, *, reason=None):
    """``fn`` itself (usable bare or as ``@disable(...)``): code already runs uncompiled."""
    if fn is None:
        return lambda f: f
    return fn


def allow_in_graph(fn):
    """``fn`` itself: there is no graph."""
    return fn


def assume_constant_result(fn):
    """``fn`` itself: there is no graph to fold constants into."""
    return fn


def reset() -> None:
    """Nothing to clear: the shim keeps no compilation cache."""


def cudagraph_mark_step_begin() -> None:
    """Nothing to mark: the shim records no CUDA graphs."""


__getattr__ = _module_getattr("torch.compiler")
