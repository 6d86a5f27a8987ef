"""``torch.cuda`` memory statistics on the shim.

Where the numbers come from (one rule per backend row in ``_backend.BACKENDS``):

| torch name | Ascend / GPU (device allocator) | CPU (MindSpore 2.10 reports 0 for these: measured) |
|---|---|---|
| ``memory_allocated`` | ``mindspore.runtime.memory_allocated()`` | the process's resident set (VmRSS), bytes |
| ``max_memory_allocated`` | ``mindspore.runtime.max_memory_allocated()`` | peak resident set (VmHWM) since start or reset |
| ``memory_reserved`` | ``mindspore.runtime.memory_reserved()`` | VmRSS (the CPU has no separate allocator cache) |
| ``max_memory_reserved`` | ``mindspore.runtime.max_memory_reserved()`` | VmHWM |
| ``reset_peak_memory_stats`` | ``mindspore.runtime.reset_peak_memory_stats()`` | resets VmHWM (``/proc/self/clear_refs`` ← 5) |
| ``empty_cache`` | ``mindspore.runtime.empty_cache()`` | the same call (MindSpore frees its cached blocks) |
| ``mem_get_info`` | (free, total) from ``hal.get_device_properties`` (free: total − reserved where not reported) | (available, total) host RAM |

On the CPU the figures therefore include the Python interpreter and MindSpore itself (hundreds of MB at start),
not only tensors: they answer "how much memory does this rank use", which is what training logs print. Where
``/proc`` is missing, the peak is the maximum seen by calls to these functions (said in ``memory_summary``).
"""
from __future__ import annotations

import os
from typing import Any

from shim.torch.cuda import _backend

__all__ = [
    "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved", "memory_cached",
    "max_memory_cached", "reset_peak_memory_stats", "reset_max_memory_allocated", "reset_max_memory_cached",
    "empty_cache", "mem_get_info", "memory_stats", "memory_summary", "MemPool", "CUDAPluggableAllocator",
    "use_mem_pool", "set_per_process_memory_fraction",
]

_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"
_sampled_peak = [0]  # fallback peak when /proc is unavailable


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open(_PROC_STATUS) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except OSError:
        return None
    return None


def _host_current() -> int:
    rss = _proc_status_bytes("VmRSS")
    if rss is None:
        import psutil

        rss = int(psutil.Process().memory_info().rss)
    _sampled_peak[0] = max(_sampled_peak[0], rss)
    return rss


def _host_peak() -> int:
    current = _host_current()
    hwm = _proc_status_bytes("VmHWM")
    return max(hwm, current) if hwm is not None else _sampled_peak[0]


def _host_reset_peak() -> None:
    try:
        with open(_PROC_CLEAR_REFS, "w") as fh:
            fh.write("5")  # Linux: reset the peak resident set size (VmHWM) to the current RSS
    except OSError:
        pass  # no /proc: the sampled peak below is the fallback
    _sampled_peak[0] = 0
    _host_current()


def _runtime():
    from mindspore import runtime

    return runtime


def memory_allocated(device: Any = None) -> int:
    """Bytes of memory in use by tensors on the accelerator (CPU: the process's resident set; see module doc)."""
    _backend.device_index(device, api="torch.cuda.memory_allocated")
    if _backend.traits().device_allocator:
        return int(_runtime().memory_allocated())
    return _host_current()


def max_memory_allocated(device: Any = None) -> int:
    """Peak of :func:`memory_allocated` since start or :func:`reset_peak_memory_stats` (bytes)."""
    _backend.device_index(device, api="torch.cuda.max_memory_allocated")
    if _backend.traits().device_allocator:
        return int(_runtime().max_memory_allocated())
    return _host_peak()


def memory_reserved(device: Any = None) -> int:
    """Bytes held by the allocator (used + cached) on the accelerator (CPU: resident set, as allocated)."""
    _backend.device_index(device, api="torch.cuda.memory_reserved")
    if _backend.traits().device_allocator:
        return int(_runtime().memory_reserved())
    return _host_current()


def max_memory_reserved(device: Any = None) -> int:
    """Peak of :func:`memory_reserved` since start or :func:`reset_peak_memory_stats` (bytes)."""
    _backend.device_index(device, api="torch.cuda.max_memory_reserved")
    if _backend.traits().device_allocator:
        return int(_runtime().max_memory_reserved())
    return _host_peak()


def memory_cached(device: Any = None) -> int:
    """Deprecated torch alias of :func:`memory_reserved`."""
    return memory_reserved(device)


def max_memory_cached(device: Any = None) -> int:
    """Deprecated torch alias of :func:`max_memory_reserved`."""
    return max_memory_reserved(device)


def reset_peak_memory_stats(device: Any = None) -> None:
    """Restart peak tracking: the ``max_*`` figures become the current ones."""
    _backend.device_index(device, api="torch.cuda.reset_peak_memory_stats")
    if _backend.traits().device_allocator:
        _runtime().reset_peak_memory_stats()
    else:
        _host_reset_peak()


def reset_max_memory_allocated(device: Any = None) -> None:
    """torch's older name for resetting the allocated peak (resets all peaks here, as torch now does)."""
    reset_peak_memory_stats(device)


def reset_max_memory_cached(device: Any = None) -> None:
    """torch's older name for resetting the reserved peak (resets all peaks here)."""
    reset_peak_memory_stats(device)


def empty_cache() -> None:
    """Release cached, unused allocator blocks (``mindspore.runtime.empty_cache``)."""
    _runtime().empty_cache()


def mem_get_info(device: Any = None) -> tuple[int, int]:
    """``(free_bytes, total_bytes)`` of the accelerator; on the CPU: (available, total) host RAM (psutil)."""
    index = _backend.device_index(device, api="torch.cuda.mem_get_info")
    if _backend.traits().device_allocator:
        from mindspore import hal

        props = hal.get_device_properties(index)
        total = int(props.total_memory)
        free = getattr(props, "free_memory", None)  # Ascend reports the driver's free memory
        return (int(free) if free else total - int(_runtime().memory_reserved())), total
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def memory_stats(device: Any = None) -> dict[str, int]:
    """A subset of torch's ``memory_stats`` keys, each from the sources above (no key is invented as 0).

    Keys: ``allocated_bytes.all.current``/``.peak``, ``reserved_bytes.all.current``/``.peak``,
    ``active_bytes.all.current``/``.peak`` (= allocated). On Ascend/GPU MindSpore's own ``memory_stats()`` entries
    are added under their MindSpore names.
    """
    allocated, peak_allocated = memory_allocated(device), max_memory_allocated(device)
    reserved, peak_reserved = memory_reserved(device), max_memory_reserved(device)
    stats = {
        "allocated_bytes.all.current": allocated,
        "allocated_bytes.all.peak": peak_allocated,
        "active_bytes.all.current": allocated,
        "active_bytes.all.peak": peak_allocated,
        "reserved_bytes.all.current": reserved,
        "reserved_bytes.all.peak": peak_reserved,
    }
    if _backend.traits().device_allocator:
        for key, value in _runtime().memory_stats().items():
            if isinstance(value, int):
                stats[key] = value
    return stats


def memory_summary(device: Any = None, abbreviated: bool = False) -> str:
    """A short human-readable report of :func:`memory_stats`, naming the source of the numbers."""
    stats = memory_stats(device)
    source = ("MindSpore device allocator" if _backend.traits().device_allocator
              else "host process memory (VmRSS/VmHWM)" if os.path.exists(_PROC_STATUS)
              else "host process memory (psutil RSS; peak = maximum seen by these calls)")
    lines = [f"torch.cuda memory summary (shim, MindSpore target {_backend.device_target()}; source: {source})"]
    for key, value in stats.items():
        lines.append(f"  {key:32s} {value / 2**20:12.1f} MiB")
    return "\n".join(lines)


def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
    """Not provided: raises NotImplementedError (use ``mindspore.runtime.set_memory(max_size=...)`` directly)."""
    raise NotImplementedError("torch.cuda.set_per_process_memory_fraction is not supported by the shim; "
                              "MindSpore's limit is mindspore.runtime.set_memory(max_size=...)")


class _Unsupported:
    _api = "torch.cuda.memory"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{self._api} is not supported by the shim (MindSpore has no CUDA caching "
                                  f"allocator pools); leave memory pooling to MindSpore's runtime")


class MemPool(_Unsupported):
    """torch.cuda.MemPool: importable so feature probes work; constructing one raises NotImplementedError."""

    _api = "torch.cuda.MemPool"


class CUDAPluggableAllocator(_Unsupported):
    """torch.cuda.memory.CUDAPluggableAllocator: importable; constructing one raises NotImplementedError."""

    _api = "torch.cuda.memory.CUDAPluggableAllocator"


def use_mem_pool(pool, device: Any = None):
    """torch.cuda.use_mem_pool: raises NotImplementedError (see :class:`MemPool`)."""
    raise NotImplementedError("torch.cuda.use_mem_pool is not supported by the shim (no CUDA memory pools)")


def __getattr__(name: str):
    raise _backend.missing(f"torch.cuda.memory.{name}")
