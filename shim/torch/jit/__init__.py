"""torch.jit: TorchScript is not available; `script`, `ignore`, `unused` and `_script_if_tracing` return the
function unchanged (documented: scripting is an optimisation, PyNative runs the Python code eagerly), the
predicates answer False. `trace`, `save` and `load` raise UnsupportedAPI."""
from __future__ import annotations

from .._unsupported import UnsupportedAPI, module_getattr

__all__ = ["script", "ignore", "unused", "is_scripting", "is_tracing", "export", "_script_if_tracing",
           "ScriptModule", "Final"]


def script(obj=None, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """Returns `obj` unchanged (no TorchScript compilation in the shim)."""
    return obj


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def _script_if_tracing(fn):
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


class ScriptModule:
    """Placeholder base so that isinstance checks answer False for facade modules."""


try:
    from typing import Final  # noqa: F401
except ImportError:  # pragma: no cover
    Final = None


def trace(*args, **kwargs):
    raise UnsupportedAPI("torch.jit.trace is not implemented by the shim")


__getattr__ = module_getattr("torch.jit")
