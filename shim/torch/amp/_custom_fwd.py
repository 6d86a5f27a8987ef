"""``torch.amp.custom_fwd`` / ``custom_bwd`` decorators for custom autograd functions (torch's semantics).

``custom_fwd(device_type=…)`` records on ``ctx`` (the first argument) the autocast state of ``device_type`` at
the forward call (``ctx._fwd_used_autocast``, ``ctx._dtype``). With ``cast_inputs=dtype`` and autocast enabled
at the call, floating inputs on that device type (not float64) are cast to ``dtype`` and ``forward`` runs with
autocast off; outside autocast both decorators just call the function. ``custom_bwd`` runs ``backward`` under
the autocast state recorded by the forward. A ``ctx`` that cannot hold attributes (plain calls in tests) is
treated as a forward without autocast.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["custom_fwd", "custom_bwd"]


def _check_device_type(device_type: Any, api: str) -> str:
    if not isinstance(device_type, str):
        raise TypeError(f"{api}: device_type must be a str such as 'cuda', got {type(device_type).__name__}")
    return "cuda" if device_type == "npu" else device_type


def _record(ctx: Any, **attrs: Any) -> None:
    for key, value in attrs.items():
        try:
            setattr(ctx, key, value)
        except (AttributeError, TypeError):
            return


def custom_fwd(fwd: Callable | None = None, *, device_type: str, cast_inputs: Any = None):
    """Decorate ``forward(ctx, *inputs)`` of a custom ``torch.autograd.Function`` (see module doc).

    Usable as ``@custom_fwd(device_type="cuda")`` or
    ``@custom_fwd(device_type="cuda", cast_inputs=torch.float32)``.
    Raises TypeError when ``device_type`` is not a str.
    """
    device_type = _check_device_type(device_type, "torch.amp.custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        from shim.torch.amp import autocast_mode as am

        enabled = am.is_autocast_enabled(device_type)
        if args:
            _record(args[0], _dtype=am.get_autocast_dtype(device_type),
                    _fwd_used_autocast=enabled and cast_inputs is None)
        if cast_inputs is None or not enabled:
            return fwd(*args, **kwargs)
        with am.autocast(device_type=device_type, enabled=False):
            return fwd(*am._cast(args, device_type, cast_inputs),
                       **am._cast(kwargs, device_type, cast_inputs))

    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str):
    """Decorate ``backward(ctx, *grads)``: runs it under the autocast state its forward recorded."""
    device_type = _check_device_type(device_type, "torch.amp.custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        from shim.torch.amp import autocast_mode as am

        ctx = args[0] if args else None
        used = bool(getattr(ctx, "_fwd_used_autocast", False))
        dtype = getattr(ctx, "_dtype", None)
        if not used and not am.is_autocast_enabled(device_type):
            return bwd(*args, **kwargs)
        with am.autocast(device_type=device_type, enabled=used, dtype=dtype):
            return bwd(*args, **kwargs)

    return decorate_bwd
