"""``torch.accelerator`` on the shim: the device-generic accelerator API, answered by the shim's accelerator.

Under the shim the accelerator is the one ``torch.cuda`` stands for (this rank's MindSpore device: Ascend NPU,
GPU, or the CPU on CPU-only machines), so ``current_accelerator()`` is ``device(type='cuda')`` and
``is_available()`` is True wherever ``torch.cuda.is_available()`` is. Each function delegates to the
``torch.cuda`` function of the same meaning (see there for the MindSpore call). Real torch on a CPU-only build
answers ``None``/False instead: programs written for GPUs take their accelerator paths under the shim.
``get_device_capability`` and other names raise NotImplementedError naming themselves.
"""
from __future__ import annotations

from typing import Any

from shim.torch._unsupported import module_getattr as _module_getattr

from .. import cuda as _cuda
from .._device import device as _device

__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "current_stream", "device_count",
           "device_index", "empty_cache", "is_available", "max_memory_allocated", "max_memory_reserved",
           "memory_allocated", "memory_reserved", "memory_stats", "reset_peak_memory_stats", "set_device_idx",
           "set_device_index", "set_stream", "synchronize", "get_memory_info"]


def current_accelerator(check_available: bool = False):
    """``torch.device('cuda')`` (the shim's accelerator); None when ``check_available`` and it is unusable."""
    if check_available and not _cuda.is_available():
        return None
    return _device("cuda")


def is_available() -> bool:
    """Whether the accelerator is usable (``torch.cuda.is_available()``)."""
    return _cuda.is_available()


def device_count() -> int:
    """Accelerators this process may address (``torch.cuda.device_count()``)."""
    return _cuda.device_count()


def current_device_index() -> int:
    """Index of the current accelerator (``torch.cuda.current_device()``)."""
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device: Any, /) -> None:
    """Select the accelerator by index, ``"cuda:N"`` or ``torch.device`` (``torch.cuda.set_device``)."""
    _cuda.set_device(device)


set_device_idx = set_device_index


class device_index:
    """Context manager making ``device`` (an index; None: no change) the current accelerator inside the block."""

    def __init__(self, device: Any, /) -> None:
        self._ctx = _cuda.device(device)

    def __enter__(self):
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def current_stream(device: Any = None, /):
    """The current stream of ``device`` (``torch.cuda.current_stream``)."""
    return _cuda.current_stream(device)


def set_stream(stream) -> None:
    """Make ``stream`` current on its device (``torch.cuda.set_stream``)."""
    _cuda.set_stream(stream)


def synchronize(device: Any = None, /) -> None:
    """Wait for all work queued on the accelerator (``torch.cuda.synchronize``)."""
    _cuda.synchronize(device)


def empty_cache() -> None:
    """Release cached accelerator memory (``torch.cuda.empty_cache``)."""
    _cuda.empty_cache()


def memory_allocated(device_index: Any = None, /) -> int:
    """Bytes held by tensors (``torch.cuda.memory_allocated``)."""
    return _cuda.memory_allocated(device_index)


def max_memory_allocated(device_index: Any = None, /) -> int:
    """Peak bytes held by tensors (``torch.cuda.max_memory_allocated``)."""
    return _cuda.max_memory_allocated(device_index)


def memory_reserved(device_index: Any = None, /) -> int:
    """Bytes reserved by the allocator (``torch.cuda.memory_reserved``)."""
    return _cuda.memory_reserved(device_index)


def max_memory_reserved(device_index: Any = None, /) -> int:
    """Peak bytes reserved by the allocator (``torch.cuda.max_memory_reserved``)."""
    return _cuda.max_memory_reserved(device_index)


def memory_stats(device_index: Any = None, /) -> dict:
    """Allocator statistics (``torch.cuda.memory_stats``)."""
    return _cuda.memory_stats(device_index)


def reset_peak_memory_stats(device_index: Any = None, /) -> None:
    """Reset the peak statistics (``torch.cuda.reset_peak_memory_stats``)."""
    _cuda.reset_peak_memory_stats(device_index)


def get_memory_info(device_index: Any = None, /) -> tuple:
    """``(free, total)`` bytes (``torch.cuda.mem_get_info``)."""
    return _cuda.mem_get_info(device_index)


__getattr__ = _module_getattr("torch.accelerator")
