"""``torch.cuda.amp`` (torch's deprecated spelling of ``torch.amp`` with ``device_type="cuda"``).

``GradScaler`` is ``torch.amp.GradScaler`` for "cuda"; ``custom_fwd``/``custom_bwd`` are the ``torch.amp``
decorators with ``device_type="cuda"``; ``autocast`` is ``torch.autocast("cuda", ...)`` (a subclass, as in
torch).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from shim.torch.amp import autocast_mode as _autocast_mode
from shim.torch.amp import grad_scaler as _grad_scaler
from shim.torch.amp._custom_fwd import custom_bwd as _custom_bwd
from shim.torch.amp._custom_fwd import custom_fwd as _custom_fwd

__all__ = ["GradScaler", "custom_fwd", "custom_bwd", "autocast"]


class GradScaler(_grad_scaler.GradScaler):
    """torch.cuda.amp.GradScaler(init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
    enabled=True): ``torch.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor, backoff_factor=backoff_factor,
                         growth_interval=growth_interval, enabled=enabled)


def custom_fwd(fwd: Callable | None = None, *, cast_inputs: Any = None):
    """torch.cuda.amp.custom_fwd: ``torch.amp.custom_fwd(device_type="cuda")``."""
    return _custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd: Callable | None = None):
    """torch.cuda.amp.custom_bwd: ``torch.amp.custom_bwd(device_type="cuda")``."""
    return _custom_bwd(bwd, device_type="cuda")


class autocast(_autocast_mode.autocast):
    """torch.cuda.amp.autocast(enabled=True, dtype=torch.float16, cache_enabled=True): deprecated in torch
    (FutureWarning, as torch) for ``torch.autocast("cuda", ...)``."""

    def __init__(self, enabled: bool = True, dtype: Any = None, cache_enabled: bool = True) -> None:
        warnings.warn("`torch.cuda.amp.autocast(args...)` is deprecated. Please use "
                      "`torch.amp.autocast('cuda', args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", enabled=enabled, dtype=_facade_dtype("float16") if dtype is None else dtype,
                         cache_enabled=cache_enabled)


def _facade_dtype(name: str):
    import shim.torch as facade

    return getattr(facade, name)
