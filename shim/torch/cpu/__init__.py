"""``torch.cpu``: the host device's module (``torch.cpu.amp.autocast`` and the device queries torch has here).

The shim's "cpu" device is the host; MindSpore CPU kernels run synchronously from the caller's view once
results are read, so ``synchronize`` waits for MindSpore's queue. Other ``torch.cpu.X`` raise
NotImplementedError naming the API.
"""
from __future__ import annotations

from shim.torch._unsupported import module_getattr as _module_getattr
from shim.torch.cpu import amp  # noqa: F401

__all__ = ["amp", "is_available", "device_count", "current_device", "synchronize", "set_device"]


def is_available() -> bool:
    """torch.cpu.is_available(): always True."""
    return True


def device_count() -> int:
    """torch.cpu.device_count(): 1 (torch's answer)."""
    return 1


def current_device() -> str:
    """torch.cpu.current_device(): "cpu" (torch's answer)."""
    return "cpu"


def synchronize(device=None) -> None:
    """torch.cpu.synchronize(device=None): waits for MindSpore's dispatched work to finish."""
    import mindspore as ms

    ms.runtime.synchronize()


def set_device(device) -> None:
    """torch.cpu.set_device: there is one CPU device, so selecting it changes nothing (torch's meaning too)."""


__getattr__ = _module_getattr("torch.cpu")
