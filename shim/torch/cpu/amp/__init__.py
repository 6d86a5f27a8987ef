"""``torch.cpu.amp``: torch's deprecated spelling of ``torch.amp`` for device_type "cpu".

``autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True)`` is ``torch.autocast("cpu", ...)`` (a
subclass that warns FutureWarning, as torch); ``GradScaler`` is ``torch.amp.GradScaler("cpu", ...)``.
"""
from __future__ import annotations

import warnings
from typing import Any

from shim.torch.amp import autocast_mode as _autocast_mode
from shim.torch.amp import grad_scaler as _grad_scaler

__all__ = ["autocast", "GradScaler"]


class autocast(_autocast_mode.autocast):
    """torch.cpu.amp.autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True) (deprecated)."""

    def __init__(self, enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> None:
        warnings.warn("`torch.cpu.amp.autocast(args...)` is deprecated. Please use "
                      "`torch.amp.autocast('cpu', args...)` instead.", FutureWarning, stacklevel=2)
        from shim.torch import _dtype

        super().__init__("cpu", enabled=enabled, dtype=_dtype.bfloat16 if dtype is None else dtype,
                         cache_enabled=cache_enabled)


class GradScaler(_grad_scaler.GradScaler):
    """torch.cpu.amp.GradScaler(init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True) (deprecated in torch): ``torch.amp.GradScaler("cpu", ...)``."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        warnings.warn("`torch.cpu.amp.GradScaler(args...)` is deprecated. Please use "
                      "`torch.amp.GradScaler('cpu', args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cpu", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval, enabled=enabled)
