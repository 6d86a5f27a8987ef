"""``torch.amp.custom_fwd`` / ``custom_bwd`` decorators for custom autograd functions.

torch's rule: ``custom_fwd(cast_inputs=dtype)`` casts floating inputs to ``dtype`` and runs ``forward`` with
autocast off — only when autocast is enabled for ``device_type`` at the call; otherwise both decorators just call
the function. The shim does not provide autocast yet (``torch.autocast`` raises NotImplementedError in the core),
so autocast is never enabled and calling through is torch's behaviour. If the facade later reports autocast as
enabled (``torch.is_autocast_enabled(device_type)``), these decorators raise NotImplementedError instead of
silently skipping the cast.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["custom_fwd", "custom_bwd"]


def _autocast_enabled(device_type: str) -> bool:
    import shim.torch as facade

    probe = getattr(facade, "is_autocast_enabled", None)
    if probe is None:
        return False
    try:
        return bool(probe(device_type))
    except TypeError:  # an older signature without the device argument
        return bool(probe())


def _check_device_type(device_type: Any, api: str) -> str:
    if not isinstance(device_type, str):
        raise TypeError(f"{api}: device_type must be a str such as 'cuda', got {type(device_type).__name__}")
    return "cuda" if device_type == "npu" else device_type


def custom_fwd(fwd: Callable | None = None, *, device_type: str, cast_inputs: Any = None):
    """Decorate ``forward`` of a custom ``torch.autograd.Function`` (see module doc).

    Usable as ``@custom_fwd(device_type="cuda")`` or ``@custom_fwd(device_type="cuda", cast_inputs=torch.float32)``.
    Raises NotImplementedError at call time if autocast is enabled (casting under autocast is not implemented).
    """
    device_type = _check_device_type(device_type, "torch.amp.custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        if _autocast_enabled(device_type):
            raise NotImplementedError("torch.amp.custom_fwd under an enabled autocast region is not supported by "
                                      "the shim")
        return fwd(*args, **kwargs)

    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str):
    """Decorate ``backward`` of a custom ``torch.autograd.Function`` (runs it as is: autocast is never on)."""
    device_type = _check_device_type(device_type, "torch.amp.custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        if _autocast_enabled(device_type):
            raise NotImplementedError("torch.amp.custom_bwd under an enabled autocast region is not supported by "
                                      "the shim")
        return bwd(*args, **kwargs)

    return decorate_bwd
