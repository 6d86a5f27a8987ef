"""``torch.amp``: ``autocast`` (``autocast_mode.py``, policy table in ``_policy.py``), ``GradScaler`` and the
``custom_fwd``/``custom_bwd`` decorators. ``torch.amp.autocast`` is ``torch.autocast``.
"""
from __future__ import annotations

from shim.torch.amp import grad_scaler  # noqa: F401
from shim.torch.amp._custom_fwd import custom_bwd, custom_fwd
from shim.torch.amp.grad_scaler import GradScaler
from shim.torch.amp import autocast_mode  # noqa: F401
from shim.torch.amp.autocast_mode import autocast, is_autocast_available

__all__ = ["GradScaler", "custom_fwd", "custom_bwd", "autocast", "is_autocast_available"]


def __getattr__(name: str):
    from shim.torch.cuda import _backend

    raise _backend.missing(f"torch.amp.{name}")
