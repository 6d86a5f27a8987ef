"""torch.signal for the facade: only `torch.signal.windows` (shim/torch/signal/windows/)."""
from __future__ import annotations

from .._unsupported import module_getattr as _module_getattr
from . import windows  # noqa: F401

__all__ = ["windows"]

__getattr__ = _module_getattr("torch.signal")
