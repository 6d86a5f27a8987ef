"""``torch.cuda`` on the shim: "cuda" is this rank's accelerator.

Mapping (see ``_backend.BACKENDS`` for the per-target table):
- On Ascend (or a GPU) "cuda:i" is MindSpore's device i of the target; the process binds one device
  (``mindspore.set_device``), as a torch process binds one GPU with ``torch.cuda.set_device(local_rank)``.
- On the CPU (these machines) "cuda" is MindSpore's CPU device. :func:`is_available` is True there on purpose: the
  shim's accelerator is usable, so unmodified GPU scripts take their accelerator paths and run. Every local rank
  sees ``device_count() == LOCAL_WORLD_SIZE`` slots (all on the shared CPU), so ``set_device(local_rank)`` is valid.
- Device names, properties and capability report the real device: the CPU model on the CPU (capability (0, 0):
  no CUDA compute capability, so code that needs sm_80+/sm_90+ features takes its portable path).

Names that the shim does not provide raise :class:`_backend.UnsupportedCudaAPI` (a NotImplementedError that is
also an AttributeError, so ``hasattr`` probes keep working).
"""
from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass
from typing import Any, Callable

from shim.torch.cuda import _backend
from shim.torch.cuda import nvtx  # noqa: F401  (torch.cuda.nvtx)
from shim.torch.cuda import memory  # noqa: F401  (torch.cuda.memory)
from shim.torch.cuda import streams  # noqa: F401  (torch.cuda.streams)
from shim.torch.cuda.memory import (  # noqa: F401
    CUDAPluggableAllocator, MemPool, empty_cache, max_memory_allocated, max_memory_cached, max_memory_reserved,
    mem_get_info, memory_allocated, memory_cached, memory_reserved, memory_stats, memory_summary,
    reset_max_memory_allocated, reset_max_memory_cached, reset_peak_memory_stats, set_per_process_memory_fraction,
    use_mem_pool,
)
from shim.torch.cuda.streams import (  # noqa: F401
    Event, ExternalStream, Stream, StreamContext, current_stream, default_stream, set_stream, stream,
)

__all__ = [
    "is_available", "is_initialized", "init", "device_count", "current_device", "set_device", "device", "device_of",
    "get_device_name", "get_device_properties", "get_device_capability", "synchronize", "is_bf16_supported",
    "get_arch_list", "OutOfMemoryError",
    "Stream", "Event", "current_stream", "default_stream", "set_stream", "stream", "StreamContext",
    "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved", "reset_peak_memory_stats",
    "empty_cache", "mem_get_info", "memory_stats", "memory_summary",
    "manual_seed", "manual_seed_all", "seed", "seed_all", "initial_seed", "get_rng_state", "get_rng_state_all",
    "set_rng_state", "set_rng_state_all", "default_generators",
]


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError (a RuntimeError subclass, as in torch)."""


def is_available() -> bool:
    """True when the shim's accelerator is usable: ``mindspore.hal.is_available(<device target>)``.

    On the CPU target this is True (see module doc): it means "the shim's accelerator (here: the CPU) works",
    not "an NVIDIA GPU is present".
    """
    if not _available_cache:
        from mindspore import hal

        try:
            _available_cache.append(bool(hal.is_available(_backend.device_target())))
        except Exception:  # MindSpore cannot reach the target's runtime: not available
            _available_cache.append(False)
    return _available_cache[0]


_available_cache: list[bool] = []  # availability does not change within a process


def is_initialized() -> bool:
    """Whether :func:`init` (or any device call) has run in this process."""
    return _backend.state.initialized


def init() -> None:
    """Initialise the accelerator state (torch.cuda.init); idempotent."""
    _lazy_init()


def _lazy_init() -> None:
    """torch.cuda._lazy_init: megatron-core imports it; marks the state initialised."""
    if not is_available():
        raise RuntimeError(f"torch.cuda: the shim's accelerator (MindSpore target {_backend.device_target()}) "
                           f"is not available")
    _backend.state.initialized = True


def _lazy_call(callable_: Callable[[], Any], **kwargs) -> None:
    """torch.cuda._lazy_call: run ``callable_`` now (the shim initialises eagerly)."""
    callable_()


def device_count() -> int:
    """Accelerators this process may address: ``mindspore.hal.device_count()`` on Ascend/GPU; on the CPU the
    number of local ranks (``LOCAL_WORLD_SIZE`` from the launcher, else 1)."""
    return _backend.device_count()


def current_device() -> int:
    """Index of the current accelerator (set by :func:`set_device`; 0 at start)."""
    return _backend.state.current_index


def set_device(device: Any) -> None:
    """Select the accelerator: an int, ``"cuda:N"``/``"npu:N"`` or ``torch.device``.

    Raises ValueError for a non-accelerator device and RuntimeError for an index outside ``device_count()``.
    On Ascend/GPU it binds the process to that MindSpore device (``mindspore.set_device(target, N)``).
    A negative index is ignored, as torch does.
    """
    if isinstance(device, int) and not isinstance(device, bool) and device < 0:
        return
    index = _backend.device_index(device, api="torch.cuda.set_device")
    traits = _backend.traits()
    if traits.device_bound:
        import mindspore as ms

        if int(ms.get_context("device_id")) != index:
            ms.set_device(traits.ms_target, index)
    _backend.state.current_index = index
    _backend.state.initialized = True


class device:
    """Context manager that makes ``device`` current inside the block (torch.cuda.device). None/-1: no change."""

    def __init__(self, device: Any):
        self.idx = -1 if device is None else _backend.device_index(device, api="torch.cuda.device")
        self.prev_idx = -1

    def __enter__(self):
        self.prev_idx = current_device()
        if self.idx != -1 and self.idx != self.prev_idx:
            set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx != -1 and self.prev_idx != self.idx:
            set_device(self.prev_idx)
        return False


class device_of(device):
    """Context manager selecting the device of tensor ``obj`` (no change for a CPU tensor), as torch."""

    def __init__(self, obj):
        dev = getattr(obj, "device", None)
        super().__init__(dev.index if dev is not None and dev.type == "cuda" else None)


_cpu_name_cache: list[str] = []


def _cpu_model_name() -> str:
    if not _cpu_name_cache:
        name = ""
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.lower().startswith("model name"):
                        name = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _cpu_name_cache.append(name or platform.processor() or platform.machine() or "CPU")
    return _cpu_name_cache[0]


def get_device_name(device: Any = None) -> str:
    """The real name of the accelerator (Ascend: ``mindspore.hal.get_device_name``; CPU: the CPU model)."""
    index = _backend.device_index(device, api="torch.cuda.get_device_name")
    if _backend.traits().name_source == "hal":
        from mindspore import hal

        return str(hal.get_device_name(index))
    return _cpu_model_name()


@dataclass(frozen=True)
class _DeviceProperties:
    """torch.cuda.get_device_properties(): name, major/minor capability, total_memory (bytes),
    multi_processor_count (compute units: AI cores on Ascend, logical CPUs on the CPU)."""

    name: str
    major: int
    minor: int
    total_memory: int
    multi_processor_count: int
    is_integrated: int = 0
    is_multi_gpu_board: int = 0

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // 2**20}MB, multi_processor_count={self.multi_processor_count})")


def get_device_properties(device: Any = None) -> _DeviceProperties:
    """Properties of the accelerator. CPU: total_memory = host RAM, multi_processor_count = logical CPUs,
    capability (0, 0). Ascend/GPU: from ``mindspore.hal.get_device_properties``."""
    index = _backend.device_index(device, api="torch.cuda.get_device_properties")
    if _backend.traits().name_source == "hal":
        from mindspore import hal

        props = hal.get_device_properties(index)
        return _DeviceProperties(
            name=str(getattr(props, "name", get_device_name(index))),
            major=int(getattr(props, "major", 0)), minor=int(getattr(props, "minor", 0)),
            total_memory=int(getattr(props, "total_memory", 0)),
            multi_processor_count=int(getattr(props, "multi_processor_count", 0) or 0),
        )
    import psutil

    return _DeviceProperties(name=_cpu_model_name(), major=0, minor=0, total_memory=int(psutil.virtual_memory().total),
                             multi_processor_count=int(os.cpu_count() or 1))


def get_device_capability(device: Any = None) -> tuple[int, int]:
    """``(major, minor)`` compute capability; (0, 0) for devices without a CUDA capability (CPU, Ascend)."""
    props = get_device_properties(device)
    return props.major, props.minor


def get_arch_list() -> list[str]:
    """CUDA architectures compiled in: none under the shim."""
    return []


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """bfloat16 tensors work on the shim's accelerator (MindSpore has bfloat16 on every target; on the CPU
    the facade computes bf16 matmuls in fp32 on bf16 operands, see the core's notes)."""
    return True


def synchronize(device: Any = None) -> None:
    """Wait for all work queued on the accelerator (see ``_backend.synchronize`` for the MindSpore call)."""
    _backend.device_index(device, api="torch.cuda.synchronize")
    _backend.synchronize()


# RNG (torch.cuda.random): re-exported so `torch.cuda.manual_seed` etc. exist; the module holds the details.
from shim.torch.cuda import random  # noqa: E402,F401
from shim.torch.cuda.random import (  # noqa: E402,F401
    get_rng_state, get_rng_state_all, initial_seed, manual_seed, manual_seed_all, seed, seed_all, set_rng_state,
    set_rng_state_all,
)
from shim.torch.cuda import amp  # noqa: E402,F401


class CUDAGraph:
    """The CUDA-graph type, for annotations and ``isinstance`` checks; recording graphs is not supported by the
    shim (constructing one raises ``UnsupportedCudaAPI``, a NotImplementedError)."""

    def __new__(cls, *args, **kwargs):
        raise _backend.missing("torch.cuda.CUDAGraph")


class graph:
    """``torch.cuda.graph`` (the capture context manager), for annotations; capturing is not supported by the
    shim (constructing one raises ``UnsupportedCudaAPI``, a NotImplementedError)."""

    def __new__(cls, *args, **kwargs):
        raise _backend.missing("torch.cuda.graph")


def __getattr__(name: str):
    if name == "default_generators":
        return random.default_generators()
    if name in _LEGACY_TENSOR_TYPES:
        return _legacy_tensor_type(name)
    raise _backend.missing(f"torch.cuda.{name}")


_LEGACY_TENSOR_TYPES = {
    "FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16", "BFloat16Tensor": "bfloat16",
    "LongTensor": "int64", "IntTensor": "int32", "ShortTensor": "int16", "CharTensor": "int8",
    "ByteTensor": "uint8", "BoolTensor": "bool",
}
_legacy_lock = threading.Lock()
_legacy_cache: dict[str, type] = {}


def _legacy_tensor_type(name: str):
    """``torch.cuda.FloatTensor`` …: classes usable in ``isinstance`` checks (an accelerator tensor of that
    dtype) and as constructors of accelerator tensors (``torch.cuda.FloatTensor([1, 2])``)."""
    with _legacy_lock:
        if name not in _legacy_cache:
            dtype_name = _LEGACY_TENSOR_TYPES[name]

            class _Meta(type):
                def __instancecheck__(cls, obj):
                    from shim.torch._tensor import Tensor

                    return (isinstance(obj, Tensor) and str(obj.dtype) == f"torch.{dtype_name}"
                            and obj.device.type == "cuda")

            def _new(cls, *args, **kwargs):
                from shim.torch._dtype import DTYPES
                from shim.torch._ops import creation

                if len(args) == 1 and isinstance(args[0], (list, tuple)):
                    return creation.tensor(args[0], dtype=DTYPES[dtype_name], device="cuda")
                return creation.empty(*args, dtype=DTYPES[dtype_name], device="cuda")

            _legacy_cache[name] = _Meta(name, (), {"__new__": _new, "__module__": "torch.cuda",
                                                    "__doc__": f"torch.cuda.{name} (accelerator {dtype_name} tensors)"})
        return _legacy_cache[name]
