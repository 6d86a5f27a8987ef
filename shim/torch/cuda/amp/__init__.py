"""``torch.cuda.amp`` (torch's deprecated spelling of ``torch.amp`` with ``device_type="cuda"``).

``GradScaler`` is ``torch.amp.GradScaler`` for "cuda"; ``custom_fwd``/``custom_bwd`` are the ``torch.amp``
decorators with ``device_type="cuda"``; ``autocast`` is the core's ``torch.autocast`` for "cuda" (NotImplementedError
until the core provides it).
"""
from __future__ import annotations

from typing import Any, Callable

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


def autocast(enabled: bool = True, dtype: Any = None, cache_enabled: bool = True):
    """torch.cuda.amp.autocast: the core's ``torch.autocast("cuda", ...)``."""
    import shim.torch as facade

    impl = facade.__dict__.get("autocast")
    if impl is None:
        raise NotImplementedError("torch.cuda.amp.autocast is not supported by the shim yet (no torch.autocast); "
                                  "run in float32 or cast explicitly")
    kwargs = {"enabled": enabled, "cache_enabled": cache_enabled}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return impl("cuda", **kwargs)
