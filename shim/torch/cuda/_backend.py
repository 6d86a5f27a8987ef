"""What ``torch.cuda`` means under the shim, as data: one row per MindSpore device target.

Under the shim "cuda" is *this rank's accelerator*: the Ascend NPU (or a GPU) where MindSpore runs on one, and
MindSpore's CPU device on machines without one (these CI machines). Each row says where the numbers that
``torch.cuda`` reports come from on that target, so every function consults the table instead of branching on
strings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from shim.torch._unsupported import UnsupportedAPI

__all__ = ["BackendTraits", "BACKENDS", "device_target", "traits", "UnsupportedCudaAPI"]


@dataclass(frozen=True)
class BackendTraits:
    """How one MindSpore device target serves ``torch.cuda``.

    Attributes:
        ms_target: MindSpore's ``device_target`` name.
        device_bound: the process binds one device id (``mindspore.set_device(target, id)``); False for the CPU,
            which every local rank shares.
        device_allocator: ``mindspore.runtime.memory_*`` report the device allocator (True on Ascend/GPU); on the
            CPU they report 0 (measured, MindSpore 2.10), so memory statistics come from the process instead.
            (workaround "memory statistics", shim/torch/_workarounds.py)
        device_streams: ``mindspore.runtime.Stream/Event`` exist for the target (False on the CPU, where MindSpore
            logs "CPU device is not supported" and returns None from ``current_stream``).
        name_source: where ``get_device_name`` reads the device name: ``"hal"`` (``mindspore.hal``) or
            ``"cpuinfo"`` (the CPU model from ``/proc/cpuinfo``).
    """

    ms_target: str
    device_bound: bool
    device_allocator: bool
    device_streams: bool
    name_source: str


BACKENDS: dict[str, BackendTraits] = {
    "Ascend": BackendTraits("Ascend", device_bound=True, device_allocator=True, device_streams=True,
                            name_source="hal"),
    "GPU": BackendTraits("GPU", device_bound=True, device_allocator=True, device_streams=True, name_source="hal"),
    "CPU": BackendTraits("CPU", device_bound=False, device_allocator=False, device_streams=False,
                         name_source="cpuinfo"),
}


_target_cache: list[str] = []


def device_target() -> str:
    """MindSpore's device target ("CPU", "Ascend" or "GPU").

    Read once and cached: ``mindspore.get_context`` costs ~35 µs a call (measured) and device queries are frequent
    (megatron-core asks for the current device in every forward); MindSpore fixes the target when its runtime starts.
    ``_reset_target_cache()`` forgets it (for tests and for code that switches targets before any computation).
    """
    if not _target_cache:
        import mindspore as ms

        _target_cache.append(str(ms.get_context("device_target")))
    return _target_cache[0]


def _reset_target_cache() -> None:
    _target_cache.clear()


def traits() -> BackendTraits:
    """The :class:`BackendTraits` row of the current device target (RuntimeError for an unknown target)."""
    target = device_target()
    try:
        return BACKENDS[target]
    except KeyError:
        raise RuntimeError(f"torch.cuda under the shim: MindSpore device target {target!r} is not in the "
                           f"backend table ({', '.join(BACKENDS)})") from None


def local_world_size() -> int:
    """Ranks on this host as the launcher reports them (``LOCAL_WORLD_SIZE``, else ``LOCAL_RANK + 1``, else 1)."""
    for name in ("LOCAL_WORLD_SIZE",):
        value = os.environ.get(name)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank and local_rank.isdigit():
        return int(local_rank) + 1
    return 1


class UnsupportedCudaAPI(UnsupportedAPI):
    """A ``torch.cuda`` (or ``torch.amp``/``torch_npu``) name the shim does not provide.

    The facade's ``UnsupportedAPI``: a ``NotImplementedError`` (the project's contract: name the API) and an
    ``AttributeError`` (so ``hasattr(torch.cuda, name)`` and ``getattr(torch.cuda, name, default)`` keep working).
    """


def missing(qualified_name: str) -> AttributeError:
    """The error for a missing module attribute: plain AttributeError for dunder probes (``__path__`` …),
    :class:`UnsupportedCudaAPI` naming the torch API otherwise."""
    attr = qualified_name.rsplit(".", 1)[-1]
    if attr.startswith("__") and attr.endswith("__"):
        return AttributeError(f"module has no attribute '{attr}'")
    return UnsupportedCudaAPI(f"{qualified_name} is not supported by the shim")


class _DeviceState:
    """The process's current accelerator index (``torch.cuda.set_device``); torch keeps it per thread, the shim
    per process, because MindSpore binds one device per process."""

    current_index: int = 0
    initialized: bool = False


state = _DeviceState()


def device_count() -> int:
    """Accelerators visible to this process (see ``torch.cuda.device_count``)."""
    if traits().device_bound:
        from mindspore import hal

        return int(hal.device_count())
    return local_world_size()


def device_index(device=None, *, api: str = "torch.cuda") -> int:
    """Normalise a device argument of a ``torch.cuda`` function to an accelerator index.

    Accepts None / -1 (the current device), an int, ``"cuda"``, ``"cuda:N"``, ``"npu:N"`` or a ``torch.device``.
    Raises ValueError for a non-accelerator device (torch: "Expected a cuda device") and RuntimeError for an
    index outside ``range(device_count())`` ("invalid device ordinal", torch's CUDA error).
    """
    from shim.torch._device import device as _device

    if device is None or (isinstance(device, int) and not isinstance(device, bool) and device == -1):
        return state.current_index
    if isinstance(device, int) and not isinstance(device, bool):
        index = device
    else:
        dev = device if isinstance(device, _device) else _device(device)
        if dev.type != "cuda":
            raise ValueError(f"{api}: expected a cuda (accelerator) device, but got: {dev}")
        index = state.current_index if dev.index is None else dev.index
    count = device_count()
    if not 0 <= index < count:
        raise RuntimeError(f"{api}: invalid device ordinal {index}: this process sees {count} accelerator(s) "
                           f"(MindSpore target {device_target()})")
    return index


def synchronize() -> None:
    """Wait until all queued work is done.

    Ascend/GPU: ``mindspore.runtime.synchronize()`` (all streams of the process's device). CPU: PyNative queues CPU
    kernels asynchronously too (measured: a 1000x1000 matmul returns in 0.3 ms and finishes 60 ms later), and
    ``mindspore.runtime.synchronize`` declines the CPU target, so the PyNative executor's own queue is drained
    (``_pynative_executor.sync()``).
    """
    if traits().device_streams:
        from mindspore import runtime

        runtime.synchronize()
    else:
        from mindspore.common.api import _pynative_executor

        _pynative_executor.sync()
