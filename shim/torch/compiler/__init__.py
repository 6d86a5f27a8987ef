"""torch.compiler under the shim: nothing is compiled (MindSpore PyNative runs every op eagerly).

`torch.compile` returns its argument unchanged (see `shim.torch.compile`), so the helpers programs use around it
keep their eager meaning: `disable`/`allow_in_graph`/`assume_constant_result` return the function unchanged,
`is_compiling`/`is_dynamo_compiling`/`is_exporting` are False, `reset` has no caches to clear. Any other
`torch.compiler.X` raises UnsupportedAPI naming it.
"""
from __future__ import annotations

from .. import compile as _torch_compile
from .._unsupported import module_getattr

__all__ = ["compile", "disable", "allow_in_graph", "assume_constant_result", "is_compiling",
           "is_dynamo_compiling", "is_exporting", "reset", "list_backends"]


def compile(*args, **kwargs):
    """torch.compiler.compile: the same as torch.compile (eager; returns the callable unchanged)."""
    return _torch_compile(*args, **kwargs)


def disable(fn=None, recursive=True, *, reason=None):
    """torch.compiler.disable: returns `fn` unchanged (or a decorator doing so when `fn` is None) — nothing is
    compiled under the shim, so every function already runs eagerly."""
    if fn is None:
        return lambda f: f
    return fn


def allow_in_graph(fn):
    """Returns `fn` unchanged (there is no graph to allow it in)."""
    return fn


def assume_constant_result(fn):
    """Returns `fn` unchanged (a tracing hint; eager execution calls it every time)."""
    return fn


def is_compiling() -> bool:
    """False: no code runs under torch.compile's tracer in the shim."""
    return False


def is_dynamo_compiling() -> bool:
    """False (see is_compiling)."""
    return False


def is_exporting() -> bool:
    """False: the shim has no torch.export."""
    return False


def reset() -> None:
    """No compile caches exist under the shim; returns None."""
    return None


def list_backends(exclude_tags=("debug", "experimental")) -> list:
    """No compiler backends: an empty list (torch.compile's `backend` argument is ignored)."""
    return []


__getattr__ = module_getattr("torch.compiler")
