"""Let megatron-core's CUDA-addressed code run on a CPU-only real PyTorch: the CPU plays "this rank's accelerator".

Why: megatron-core 0.16.1 addresses the accelerator as CUDA in ~120 places (`torch.cuda.current_device()`,
`device="cuda"` literals in the schedules, optimizer and grad clipping, `Tensor.cuda()`, `torch.cuda` RNG state in
`CudaRNGStatesTracker`, streams and `synchronize` around communication, `param.type() == "torch.cuda.FloatTensor"`
in the optimizers). On a CPU-only torch build every one of those raises "Torch not compiled with CUDA enabled".
The reference backend on these machines therefore maps them to the CPU; see
`../shared/notes/megatron-core-cpu.md` for the measured list of call-site kinds.

What `enable()` does (only when `torch.cuda.is_available()` is False; on a GPU build, and under the shim, whose
`torch.cuda` is served by the accelerator, it does nothing and returns False):
- a `TorchFunctionMode` (`CudaToCpuMode`) rewrites CUDA device arguments of every torch function and tensor method
  (`device="cuda"`, `device=0`, `torch.device("cuda", i)`, `.to("cuda")`, `.cuda()`) to `"cpu"`;
- the `torch.cuda` functions in `_CUDA_FUNCTIONS_ON_CPU` are replaced by their CPU meaning (one table): the
  current device is index 0 of one device, RNG state is the CPU default generator's, streams/events are
  `torch.cpu`'s (CPU kernels run synchronously on the calling thread, so `synchronize` has nothing to wait for);
- megatron's type-string checks see CPU float tensors as `torch.cuda.*Tensor` through `Tensor.type()` in the mode;
- `torch.distributed.isend` keeps the sent tensor's storage alive until its Work is waited (`_SendWork`): megatron's
  pipeline schedules pseudo-free a stage's output (`out.data = torch.empty(1)`) right after starting its send; on
  CUDA the caching allocator keeps the memory for the NCCL stream, but gloo's asynchronous send reads the storage
  by address, so on CPU it would send freed memory (the interleaved schedule's losses varied from run to run).

What it does not do: memory statistics (`torch.cuda.max_memory_allocated`, ...) are left as CPU torch has them
(they report 0); callers report the process peak RSS on CPU instead (`qwen_sft.run_records.peak_memory`). No CUDA kernel is
emulated.

The mode is thread-local (torch function modes are): threads started after `enable()` enter it when they run
(`threading.Thread.run` is wrapped: Megatron-LM's text-generation server runs the model on its HTTP server's request
threads); a thread started before, or a `Thread` subclass overriding `run`, runs unmapped. `torch.Generator` with a
CUDA device gives a CPU generator (`_CpuGenerator`). CPU autograd runs backward on the calling thread, so forward and backward are both covered (custom
Functions' `backward` re-enter the mode: the mode is popped while its handler runs `loss.backward()`).

Command-line form (the reference runner: any script, unmodified, on a CPU-only real torch):
    python -m qwen_sft.cpu_accelerator SCRIPT.py [args...]
    python -m qwen_sft.cpu_accelerator -m MODULE [args...]
    torchrun --nproc-per-node N -m qwen_sft.cpu_accelerator SCRIPT.py [args...]
`main()` installs megatron_patches' module stand-ins (CUDA-only megatron modules, e.g. the Triton kernels
megatron.training imports) and its CUDA-only patches (`cpu_reference=True`: e.g. the nvcc probe of Megatron-LM's
fused-kernel loader), calls `enable()`, makes `torch.cuda.is_available()` answer True (the CPU plays the
CUDA device, which Megatron-LM's `initialize_megatron` asserts), then runs the script as `__main__` with
`sys.argv = [SCRIPT, args...]` and the script's folder first on `sys.path`, as `python SCRIPT.py` would.
`torch.compile`d functions run eagerly (`torch._dynamo.config.disable`; set TORCHDYNAMO_DISABLE=0 to compile):
with `is_available()` True, inductor would take its CUDA path for CPU tensors, and eager is what the shim runs
(its `torch.compile` returns the function unchanged), so both sides compute the same ops. The
mapping covers the main thread only (see above); worker processes forked from it inherit it, and processes it
starts with multiprocessing's spawn/forkserver methods (megatron-core's checkpoint writer starts a Manager so) set
the runner up themselves before importing the program (`_route_spawned_children`, $QWEN_SFT_CPU_ACCELERATOR_PROGRAM).
"""
from __future__ import annotations

import importlib
import os
import platform
import runpy
import sys
import threading
import time
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["enable", "disable", "is_enabled", "CudaToCpuMode", "main"]

_CPU = torch.device("cpu")
_MODE: "CudaToCpuMode | None" = None
# (object, attribute name, original value) for every attribute `enable()` replaced, so `disable()` can restore it.
_REPLACED: list = []

# `Tensor.type()` results megatron compares against (optimizer.py, distrib_optimizer.py, clip_grads.py).
_TYPE_STRINGS = {
    "torch.FloatTensor": "torch.cuda.FloatTensor",
    "torch.HalfTensor": "torch.cuda.HalfTensor",
    "torch.BFloat16Tensor": "torch.cuda.BFloat16Tensor",
}


def _map_device(device: Any) -> Any:
    """A CUDA device spec (str 'cuda[:i]', int index, torch.device('cuda')) → torch.device('cpu'); others unchanged."""
    if isinstance(device, bool):
        return device
    if isinstance(device, int):
        return _CPU
    if isinstance(device, str) and device.split(":", 1)[0] == "cuda":
        return _CPU
    if isinstance(device, torch.device) and device.type == "cuda":
        return _CPU
    return device


class CudaToCpuMode(TorchFunctionMode):
    """Torch function mode that sends every CUDA device argument to the CPU.

    Rewrites the `device=` keyword of all torch functions (factories, `Tensor.to`, `Tensor.new_*`), the positional
    device of `Tensor.to(...)`, makes `Tensor.cuda()` the identity on CPU tensors, and makes `Tensor.type()` (no
    argument) answer the CUDA type string for floating CPU tensors. Everything else is passed through unchanged.
    """

    def __torch_function__(self, func: Callable, types, args=(), kwargs=None):
        kwargs = dict(kwargs) if kwargs else {}
        if "device" in kwargs:
            kwargs["device"] = _map_device(kwargs["device"])
        if func is torch.Tensor.cuda:
            tensor = args[0]
            non_blocking = kwargs.get("non_blocking", False)
            return tensor.to(_CPU, non_blocking=non_blocking)
        if func is torch.Tensor.to and len(args) > 1 and not isinstance(args[1], (torch.dtype, torch.Tensor)):
            args = (args[0], _map_device(args[1])) + tuple(args[2:])
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            name = func(*args)
            return _TYPE_STRINGS.get(name, name)
        return func(*args, **kwargs)


def _current_device() -> int:
    return 0


def _device_count() -> int:
    return 1


def _set_device(device: Any) -> None:
    index = device.index if isinstance(device, torch.device) else device
    if isinstance(device, torch.device) and device.type not in ("cuda", "cpu"):
        raise ValueError(f"torch.cuda.set_device({device!r}) on the CPU accelerator: expected a cuda/cpu device")
    if index not in (None, 0) and not isinstance(index, int):
        raise ValueError(f"torch.cuda.set_device({device!r}): expected an int index")
    # One CPU "device" per process: every local rank's index addresses its own process's CPU.


def _synchronize(device: Any = None) -> None:
    # CPU kernels run synchronously on the calling thread: when this is reached, all earlier work is done.
    return None


def _get_rng_state(device: Any = "cuda") -> torch.Tensor:
    return torch.default_generator.get_state()


def _set_rng_state(new_state: torch.Tensor, device: Any = "cuda") -> None:
    torch.default_generator.set_state(new_state)


def _manual_seed(seed: int) -> None:
    # Not torch.manual_seed: that one calls torch.cuda.manual_seed_all itself.
    torch.default_generator.manual_seed(int(seed))


def _lazy_call(callable_: Callable, **kwargs: Any) -> None:
    # torch.cuda._lazy_call defers work until CUDA initialises, which never happens on CPU: run it now.
    callable_()


def _lazy_init() -> None:
    return None


class _DeviceCtx:
    """`torch.cuda.device(i)`: a context manager selecting device i; the one CPU "device" needs no switch. A class,
    as torch's is (torch's own helpers test `isinstance(x, torch.cuda.device)`)."""

    def __init__(self, device: Any):
        self.idx = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


_device_ctx = _DeviceCtx


class _CpuDeviceProperties:
    """`torch.cuda.get_device_properties()` of the CPU playing the device: its name, capability (0, 0) (no CUDA
    architecture: the shim reports the same on CPU), total_memory = physical RAM in bytes, logical CPU count."""

    def __init__(self) -> None:
        self.name = platform.processor() or platform.machine() or "cpu"
        self.major, self.minor = 0, 0
        self.total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.multi_processor_count = os.cpu_count() or 1
        self.is_integrated = 0
        self.is_multi_gpu_board = 0


def _get_device_properties(device: Any = None) -> _CpuDeviceProperties:
    return _CpuDeviceProperties()


def _get_device_capability(device: Any = None) -> tuple:
    return (0, 0)


def _get_device_name(device: Any = None) -> str:
    return _CpuDeviceProperties().name


class _CpuEvent(torch.cpu.Event):
    """`torch.cuda.Event(enable_timing=False, blocking=False, interprocess=False)` on the CPU playing the device:
    torch's CPU event (which takes no arguments and cannot time) plus CUDA's timing. CPU kernels run synchronously,
    so the work before `record()` is done when it returns: the event keeps that moment (`time.perf_counter()`), and
    `elapsed_time(end)` is the milliseconds between two recorded timing events (megatron's text-generation
    controller times its decode steps so). Raises RuntimeError, as CUDA does, for an event without timing or one
    not recorded."""

    def __new__(cls, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        return super().__new__(cls)

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
        super().__init__()
        self.enable_timing = bool(enable_timing)
        self._recorded_at: float | None = None

    def record(self, stream: Any = None) -> None:
        super().record(stream) if stream is not None else super().record()
        self._recorded_at = time.perf_counter()

    def elapsed_time(self, end_event: "_CpuEvent") -> float:
        if not (self.enable_timing and getattr(end_event, "enable_timing", False)):
            raise RuntimeError("torch.cuda.Event.elapsed_time: both events must be created with enable_timing=True")
        if self._recorded_at is None or getattr(end_event, "_recorded_at", None) is None:
            raise RuntimeError("torch.cuda.Event.elapsed_time: both events must be recorded first")
        return (end_event._recorded_at - self._recorded_at) * 1000.0


class _CpuStream(torch.cpu.Stream):
    """`torch.cuda.Stream` on the CPU playing the device: torch's CPU stream, except that `record_event` returns a
    recorded `torch.cpu.Event` (torch's CPU stream returns None there, and megatron's MoE alltoall dispatcher calls
    `stream.record_event().synchronize()`). CPU work is synchronous, so the event is complete when recorded."""

    def record_event(self, event: Any = None) -> Any:
        event = _CpuEvent() if event is None else event
        event.record(self)
        return event


class _CpuGenerator(torch.Generator):
    """`torch.Generator(device=...)` with a CUDA device (megatron's TextGenerationController builds its sampling
    generator with `device=torch.cuda.current_device()`): a CPU generator, since the CPU plays the device. A
    subclass, so `isinstance(g, torch.Generator)` holds; `torch.Generator` is a class, not a torch function, so the
    mode cannot rewrite its device argument."""

    def __new__(cls, device: Any = "cpu") -> "torch.Generator":
        return super().__new__(cls, device=_map_device(device))


# True once main() turned dynamo off: threads turn it off too (`_thread_run_in_mode`).
_DYNAMO_OFF = [False]


def _thread_run_in_mode(run: Callable) -> Callable:
    """Wrap `threading.Thread.run` so that a thread started while the mapping is active runs with the CUDA→CPU mode
    entered (torch function modes are thread-local) and, when the runner turned dynamo off, dynamo off (its config
    is per thread too: a compiled function would otherwise compile for the CPU's `get_device_properties` stand-in and
    fail). Megatron-LM's text-generation server answers each request on
    a thread of its HTTP server (werkzeug's threaded server, plain `threading.Thread`s) and runs the model there.
    A `Thread` subclass that overrides `run` is not covered."""

    def run_(self, *args: Any, **kwargs: Any) -> Any:
        if _DYNAMO_OFF[0]:  # dynamo's config is per thread as well
            sys.modules["torch._dynamo"].config.disable = True
        if _MODE is None or _MODE in torch.overrides._get_current_function_mode_stack():
            return run(self, *args, **kwargs)
        with _MODE:
            return run(self, *args, **kwargs)

    run_.__name__, run_.__doc__, run_.__wrapped__ = run.__name__, run.__doc__, run
    return run_


# torch.cuda attribute → its CPU meaning. One row per function megatron-core 0.16.1 reaches on the training path.
_CUDA_FUNCTIONS_ON_CPU: dict[str, Any] = {
    "current_device": _current_device,
    "device_count": _device_count,
    "set_device": _set_device,
    "synchronize": _synchronize,
    "get_rng_state": _get_rng_state,
    "set_rng_state": _set_rng_state,
    "manual_seed": _manual_seed,
    "manual_seed_all": _manual_seed,
    "current_stream": torch.cpu.current_stream,
    "default_stream": torch.cpu.current_stream,
    "stream": torch.cpu.stream,
    "Stream": _CpuStream,
    "Event": _CpuEvent,
    "_lazy_call": _lazy_call,
    "_lazy_init": _lazy_init,
    "device": _device_ctx,
    "get_device_properties": _get_device_properties,
    "get_device_capability": _get_device_capability,
    "get_device_name": _get_device_name,
    "default_generators": (torch.default_generator,),
}
def _host_copy(tensor: Any, as_numpy: bool = False, record_stream: bool = False) -> Any:
    """megatron's `moe_utils.maybe_move_tensor_to_cpu` on the CPU playing the device. megatron keys on
    `tensor.is_cuda`, false for CPU tensors, and so skipped the device-to-host step, `as_numpy` included; the MoE
    alltoall dispatcher then hands tensors as split sizes to `all_to_all_single`, which takes sequences of ints
    only (TypeError). Here the tensor is already in host memory: returned as is, or as its numpy array with
    `as_numpy`, as megatron's CUDA path gives it (`record_stream` has nothing to record on the CPU)."""
    if torch.is_tensor(tensor) and as_numpy:
        return tensor.numpy()
    return tensor


def _is_on_device(tensor: Any) -> None:
    """megatron's inference `communication_utils._is_cuda(tensor)` on the CPU playing the device: asserts, as
    megatron's does, that the tensor exists and is on the accelerator, which here is the CPU (megatron asserts
    `tensor.is_cuda`, false for CPU tensors, before every broadcast of the text-generation server)."""
    assert tensor is not None
    assert tensor.device.type == "cpu", f"expected a tensor on the device (the CPU here), got {tensor.device}"


# megatron function → its meaning on the CPU playing the device (rebound where megatron imported it, below).
_MEGATRON_FUNCTIONS_ON_CPU: dict[str, Any] = {"maybe_move_tensor_to_cpu": _host_copy, "_is_cuda": _is_on_device}

# Modules that bound some of those names at import time (`from torch.cuda import _lazy_call, ...`).
_REBIND_IN = {
    "megatron.core.tensor_parallel.random": {
        "_lazy_call": "_lazy_call",
        "_lazy_init": "_lazy_init",
        "device_ctx_manager": "device",
    },
    "megatron.core.transformer.moe.token_dispatcher": {"maybe_move_tensor_to_cpu": "maybe_move_tensor_to_cpu"},
    # `_is_cuda_contiguous` there calls this module global, so one rebinding covers both checks
    "megatron.core.inference.communication_utils": {"_is_cuda": "_is_cuda"},
}


class _SendWork:
    """The Work of `torch.distributed.isend` under the mapping: the original Work (its other attributes pass
    through) plus a reference to the sent storage (a detached alias of the tensor), dropped when `wait()`
    returns, so pseudo-freeing the tensor (`.data = ...`) before the send completes cannot free what gloo reads."""

    def __init__(self, work: Any, keep: Any) -> None:
        self._work, self._keep = work, keep

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._work.wait(*args, **kwargs)
        finally:
            self._keep = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._work, name)


def _isend_keeping_storage(isend: Callable) -> Callable:
    """Wrap `torch.distributed.isend`: the Work it returns holds the tensor's storage until waited (`_SendWork`);
    inside a coalescing batch (`batch_isend_irecv`, which waits before megatron pseudo-frees) it returns None as
    torch's does."""

    def isend_(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        work = isend(tensor, *args, **kwargs)
        return work if work is None else _SendWork(work, tensor.detach())

    isend_.__name__, isend_.__doc__, isend_.__wrapped__ = isend.__name__, isend.__doc__, isend
    return isend_


def is_enabled() -> bool:
    """True when `enable()` installed the CPU mapping in this process."""
    return _MODE is not None


def enable() -> bool:
    """Install the CUDA→CPU mapping for this process (idempotent); returns True when it is active.

    Does nothing and returns False when `torch.cuda.is_available()` is True (a GPU build, or the shim serving an
    accelerator). Must run before megatron-core builds models or optimizers.
    """
    global _MODE
    if _MODE is not None:
        return True
    if torch.cuda.is_available():
        return False

    def replace(obj, attr, value):
        _REPLACED.append((obj, attr, obj.__dict__.get(attr, _ABSENT) if hasattr(obj, "__dict__") else _ABSENT))
        setattr(obj, attr, value)

    for name, replacement in _CUDA_FUNCTIONS_ON_CPU.items():
        replace(torch.cuda, name, replacement)
    for name in ("get_rng_state", "set_rng_state", "manual_seed", "manual_seed_all"):
        replace(torch.cuda.random, name, _CUDA_FUNCTIONS_ON_CPU[name])
    for module_name, names in _REBIND_IN.items():
        module = importlib.import_module(module_name)
        for attr, key in names.items():
            if not hasattr(module, attr):
                raise RuntimeError(f"cpu_accelerator: {module_name}.{attr} not found (megatron-core version changed?)")
            replace(module, attr, {**_CUDA_FUNCTIONS_ON_CPU, **_MEGATRON_FUNCTIONS_ON_CPU}[key])
    if torch.distributed.is_available():
        # both names: batch_isend_irecv compares `op.op is isend` with distributed_c10d's global
        keeping = _isend_keeping_storage(torch.distributed.distributed_c10d.isend)
        replace(torch.distributed.distributed_c10d, "isend", keeping)
        replace(torch.distributed, "isend", keeping)
    replace(torch, "Generator", _CpuGenerator)
    replace(threading.Thread, "run", _thread_run_in_mode(threading.Thread.run))
    _MODE = CudaToCpuMode()
    _MODE.__enter__()
    replace(torch.autograd.function.BackwardCFunction, "apply",
            _with_mode_in_backward(torch.autograd.function.BackwardCFunction.apply))
    return True


def _with_mode_in_backward(apply: Callable) -> Callable:
    """Wrap autograd's call of a custom Function's `backward` so that the CUDA→CPU mode is active in it.

    `loss.backward()` is itself a torch function, so the mode's handler runs it — and a torch function mode is
    popped off the stack while its handler runs. Without this, every custom `backward` (megatron's all-to-all
    allocates its output with `device=torch.cuda.current_device()`) would run unmapped."""

    def backward_apply(self, *args):
        if _MODE is None or _MODE in torch.overrides._get_current_function_mode_stack():
            return apply(self, *args)
        with _MODE:
            return apply(self, *args)

    return backward_apply


_ABSENT = object()


def disable() -> bool:
    """Undo `enable()`: leave the mode and restore every replaced `torch.cuda` / megatron attribute.

    For processes that use real torch both with and without the mapping (the test suite compares the shim
    against an unmodified torch in the same process). Returns True when something was undone. Must run on the
    thread that called `enable()` (torch function modes are thread-local).
    """
    global _MODE
    if _MODE is None:
        return False
    _MODE.__exit__(None, None, None)
    _MODE = None
    while _REPLACED:
        obj, attr, original = _REPLACED.pop()
        if original is _ABSENT:
            try:
                delattr(obj, attr)
            except AttributeError:
                pass
        else:
            setattr(obj, attr, original)
    return True


def _is_available_on_runner() -> bool:
    # Under the runner the CPU plays the CUDA device: there is one (device_count() == 1).
    return True


# The runner's module name (spawned children import it by this name; under `-m` its own __name__ is "__main__").
_RUNNER_MODULE = "qwen_sft.cpu_accelerator"
# Set by `main()` for the processes the program spawns: "path:<script>" or "module:<name>", the program the runner
# runs. A spawned child (multiprocessing's spawn/forkserver start methods: a fresh interpreter, e.g. megatron-core's
# torch_dist writer starting its result-queue Manager) reads it to set the runner up before importing the program.
PROGRAM_ENV = "QWEN_SFT_CPU_ACCELERATOR_PROGRAM"


def _set_up_runner() -> bool:
    """What the runner installs before the program runs (module docstring): megatron_patches' module stand-ins and
    CUDA-only patches, the mapping, `torch.cuda.is_available()` True and dynamo off. Returns False when
    `torch.cuda.is_available()` was already True (then only the stand-ins and patches are installed)."""
    import megatron_patches  # the stand-ins are megatron's; only the runner needs them, not every importer

    megatron_patches.install_module_stand_ins()
    megatron_patches.apply_all(cpu_reference_only=True)
    if not enable():
        return False
    _REPLACED.append((torch.cuda, "is_available", torch.cuda.__dict__.get("is_available", _ABSENT)))
    torch.cuda.is_available = _is_available_on_runner
    if os.environ.get("TORCHDYNAMO_DISABLE", "1") != "0":
        # import cost: only the runner loads dynamo, to switch it off
        importlib.import_module("torch._dynamo").config.disable = True
        _DYNAMO_OFF[0] = True
    return True


def _route_spawned_children(program: str) -> None:
    """Make processes the program spawns start under the runner too.

    multiprocessing's spawn and forkserver children start a fresh interpreter and import the parent's main module
    (here the program, which the runner runs as `__main__`) as `__mp_main__` before anything else, so without
    this they would import it on an unmapped torch and without the stand-ins (megatron.training's `import
    triton`). The children are told (through `multiprocessing.spawn.get_preparation_data`, the parent-side
    description a child prepares itself from) to import this module instead, which sets the runner up
    (`_set_up_runner`) and then imports the program as `__mp_main__`, named in $QWEN_SFT_CPU_ACCELERATOR_PROGRAM
    (`program`). Forked children inherit the runner and need nothing."""
    from multiprocessing import spawn  # import cost: only the runner routes children

    os.environ[PROGRAM_ENV] = program
    original = spawn.get_preparation_data
    if getattr(original, "_cpu_accelerator", False):
        return

    def get_preparation_data(name):
        data = original(name)
        data.pop("init_main_from_path", None)
        data["init_main_from_name"] = _RUNNER_MODULE
        return data

    get_preparation_data._cpu_accelerator = True
    spawn.get_preparation_data = get_preparation_data


def _spawned_child_program() -> dict:
    """In a spawned child of a runner program (this module imported as `__mp_main__`, see
    `_route_spawned_children`): set the runner up, then run the program as `__mp_main__` and return its globals
    (the child's `__main__` namespace, where functions the parent pickled by reference are found). ValueError for
    a malformed $QWEN_SFT_CPU_ACCELERATOR_PROGRAM."""
    runner = importlib.import_module(_RUNNER_MODULE)  # the module proper: its state, not this __mp_main__ copy
    runner._set_up_runner()
    kind, _, name = os.environ[PROGRAM_ENV].partition(":")
    if kind == "path":
        return runpy.run_path(name, run_name="__mp_main__")
    if kind == "module":
        return runpy.run_module(name, run_name="__mp_main__", alter_sys=False)
    raise ValueError(f"${PROGRAM_ENV}={os.environ[PROGRAM_ENV]!r}: expected 'path:<script>' or 'module:<name>'")


def main(argv: "list[str] | None" = None) -> int:
    """`python -m qwen_sft.cpu_accelerator (SCRIPT.py | -m MODULE) [args...]`: run a program with the mapping on
    (see the module docstring). Returns the exit status for a usage error (2); the program's own `sys.exit`
    propagates as SystemExit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m qwen_sft.cpu_accelerator (SCRIPT.py | -m MODULE) [args...]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage + "\n\nRuns the program on CPU-only real torch with CUDA calls mapped to the CPU.",
              file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    module = None
    if argv[0] == "-m":
        if len(argv) < 2:
            print(usage + "\nerror: -m needs a module name", file=sys.stderr)
            return 2
        module, args = argv[1], argv[2:]
    else:
        script, args = argv[0], argv[1:]
        if not os.path.isfile(script):
            print(usage + f"\nerror: script {script!r} not found", file=sys.stderr)
            return 2
    if module is None:
        sys.path[0] = os.path.dirname(os.path.abspath(script))
    if not _set_up_runner():
        print("qwen_sft.cpu_accelerator: torch.cuda.is_available() is already True: running without the mapping",
              file=sys.stderr)
    _route_spawned_children(f"module:{module}" if module is not None else f"path:{os.path.abspath(script)}")
    if module is not None:
        sys.argv = [module] + args
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [script] + args
        runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
if __name__ == "__mp_main__" and PROGRAM_ENV in os.environ:  # a spawned child of a runner program
    globals().update(_spawned_child_program())
