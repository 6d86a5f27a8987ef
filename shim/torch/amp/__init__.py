"""``torch.amp``: ``GradScaler`` and the ``custom_fwd``/``custom_bwd`` decorators.

``torch.amp.autocast`` is the core's ``torch.autocast`` (served from ``shim.torch`` when it exists; it raises
NotImplementedError there until autocast is implemented).
"""
from __future__ import annotations

from shim.torch.amp import grad_scaler  # noqa: F401
from shim.torch.amp._custom_fwd import custom_bwd, custom_fwd
from shim.torch.amp.grad_scaler import GradScaler

__all__ = ["GradScaler", "custom_fwd", "custom_bwd"]


def __getattr__(name: str):
    if name in ("autocast", "is_autocast_available"):
        import shim.torch as facade

        impl = facade.__dict__.get(name)
        if impl is not None:
            return impl
    from shim.torch.cuda import _backend

    raise _backend.missing(f"torch.amp.{name}")
