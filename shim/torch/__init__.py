"""The torch facade: `torch` served by MindSpore PyNative.

Importable as `shim.torch` without activation (tests hold it next to real torch); activation (shim.activate)
makes `import torch` return this very module. Sub-packages owned by other parts of the shim (nn, optim,
utils.data, distributed, cuda, serialization, amp) load lazily on first attribute access; a sub-package that
does not exist yet raises UnsupportedAPI naming it, while an ImportError *inside* an existing one propagates.
Any other missing `torch.X` raises UnsupportedAPI (a NotImplementedError and AttributeError) naming it.

Documented behaviour differences: see shim/README.md (bfloat16 emulated on CPU, `torch.empty` zero-filled,
random streams are torch's CPU streams (also for "cuda" tensors), `torch.compile`/`torch.jit.script` return the function unchanged).
"""
from __future__ import annotations

import builtins as _builtins
import importlib as _importlib
from sys import modules as _sys_modules

from . import _dtype
from . import _dispatch  # noqa: F401  (SHIM_SYNC_DISPATCH=1: synchronous MindSpore dispatch)
from ._dtype import (dtype, finfo, iinfo, get_default_dtype, set_default_dtype, promote_types,  # noqa: F401
                     bool, uint8, int8, int16, uint16, int32, uint32, int64, uint64, float16, bfloat16,
                     float32, float64, complex64, complex128, float8_e4m3fn, float8_e5m2)
from ._device import device  # noqa: F401
from .autograd import grad_mode as _grad_mode
from .autograd.grad_mode import (no_grad, enable_grad, set_grad_enabled, inference_mode,  # noqa: F401
                                 is_grad_enabled, is_inference_mode_enabled)
from ._tensor import Tensor, Size, wrap, unwrap, is_tensor  # noqa: F401
from . import _ops
from ._unsupported import UnsupportedAPI
from .version import __version__  # noqa: F401
from . import autograd, random  # noqa: F401
from .random import (Generator, manual_seed, seed, initial_seed, get_rng_state, set_rng_state,  # noqa: F401
                     default_generator)

from ._legacy import legacy_types as _legacy_types  # noqa: E402

globals().update(_legacy_types(cuda=False))  # torch.FloatTensor, torch.LongTensor, …
_ops.install(Tensor)
globals().update(_ops.functions())
from ._ops.creation import normal, bernoulli, multinomial  # noqa: F401,E402

# torch's dtype aliases
float = float32  # noqa: A001
double = float64
half = float16
short = int16
int = int32  # noqa: A001
long = int64
cfloat = complex64
cdouble = complex128
del _builtins  # keep the namespace torch-like; builtins are reached through the module where needed
import builtins as _bi  # noqa: E402


class layout:
    """torch.layout (only torch.strided exists in the shim)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


strided = layout("strided")
sparse_coo = layout("sparse_coo")


class memory_format:
    """torch.memory_format tokens (accepted and ignored: the shim's tensors are always row-major)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")

inf = _bi.float("inf")
nan = _bi.float("nan")
pi = 3.141592653589793
e = 2.718281828459045
newaxis = None


def result_type(tensor1, tensor2) -> dtype:
    """torch.result_type of two operands (tensors or Python numbers)."""
    from ._ops.pointwise import _promote
    return _promote(tensor1, tensor2)[1]


def can_cast(from_, to) -> _bi.bool:
    """torch.can_cast: casting never lowers the category (bool < int < float < complex)."""
    return from_._cat <= to._cat


def is_floating_point(input) -> _bi.bool:
    """torch.is_floating_point(input): True for floating dtypes."""
    return input.dtype.is_floating_point


def is_complex(input) -> _bi.bool:
    """torch.is_complex(input): True for complex dtypes."""
    return input.dtype.is_complex


def is_nonzero(input) -> _bi.bool:
    """torch.is_nonzero: truth value of a one-element tensor (RuntimeError otherwise)."""
    if input.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return _bi.bool(input.item())


def numel(input) -> _bi.int:
    """torch.numel(input): number of elements."""
    return input.numel()


def is_storage(obj) -> _bi.bool:
    """Always False (no torch storages in the shim)."""
    return False


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """Accepted for compatibility; the shim's printer uses torch's defaults (documented)."""
    return None


_deterministic = [False]


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Records the flag (MindSpore CPU kernels are deterministic)."""
    _deterministic[0] = _bi.bool(mode)


def are_deterministic_algorithms_enabled() -> _bi.bool:
    """The flag set by use_deterministic_algorithms."""
    return _deterministic[0]


def set_num_threads(n) -> None:
    """torch.set_num_threads: MindSpore sizes its CPU kernel thread pool once, before its first kernel, so the
    facade gives it `OMP_NUM_THREADS` at import (`_dispatch.configure_threads`, as torch reads that variable);
    a later call asking for another count cannot resize the pool: it warns (once) and changes nothing.
    Asking for the current count does nothing, as in torch. ValueError for n < 1 (torch's check)."""
    n = _bi.int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    if n != get_num_threads() and not _threads_warned:
        _threads_warned.append(True)
        import warnings
        warnings.warn(f"torch.set_num_threads({n}): on MindSpore the CPU kernel thread pool is sized once, at "
                      f"import, from OMP_NUM_THREADS; this process keeps {get_num_threads()} thread(s) (set "
                      f"OMP_NUM_THREADS={n} before it starts instead)", RuntimeWarning, stacklevel=2)


_threads_warned: list = []


def get_num_threads() -> _bi.int:
    """torch.get_num_threads: MindSpore's CPU kernel thread count: `OMP_NUM_THREADS` when set at import, else
    MindSpore's default (25, documented in `mindspore.device_context.cpu.op_tuning.threads_num`), which its
    pool caps at the machine's CPU count."""
    from ._dispatch import THREADS
    if THREADS is not None:
        return THREADS
    import os
    return _bi.min(25, os.cpu_count() or 1)


def get_default_device():
    """torch.get_default_device: the device factory functions use without ``device=``: cpu (torch's default),
    or the innermost ``with torch.device(...)`` scope's (see ``_device.device.__enter__``). The facade has no
    ``torch.set_default_device``."""
    from ._device import default_device
    return default_device()


_COMPILE_MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            name=None, disable=False, recompile_limit=None, isolate_recompiles=False, shapes_spec=None):
    """torch.compile under the shim: eager. Returns `model` itself — the same function or `nn.Module` object —
    or, when called without `model`, a decorator doing so.

    torch.compile is an optimisation with no change of meaning; MindSpore PyNative runs every op eagerly, so the
    shim runs the program as torch would with `disable=True`. Differences a program can see: real torch returns
    an `OptimizedModule` wrapping a module (its `state_dict` keys then carry the prefix `_orig_mod.`); here the
    module's own keys come back, as from the uncompiled module (code that strips `_orig_mod.` still works).
    `fullgraph`, `dynamic`, `backend`, `options` and the other keywords are accepted and ignored. Errors as
    torch's: AssertionError for a non-callable `model`; RuntimeError for an unknown `mode` or for `mode` together
    with `options`. `torch.compiler`/`torch._dynamo` hold the matching helpers (`disable`, `is_compiling`, config).
    """
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in _COMPILE_MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(_COMPILE_MODES)}")
    if model is None:
        return lambda fn: compile(fn, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                  options=options, disable=disable)
    if not callable(model):
        raise AssertionError(f"A callable function is expected, but {type(model)} is provided.")
    return model


def _assert(condition, message):
    if not condition:
        raise AssertionError(message)


def from_dlpack(ext_tensor):
    """Not supported: raises UnsupportedAPI."""
    raise UnsupportedAPI("torch.from_dlpack is not implemented by the shim")


# ---- lazily loaded sub-packages (some owned by other parts of the shim) ------------------------------------
_LAZY_SUBMODULES = ("nn", "optim", "utils", "distributed", "cuda", "cpu", "serialization", "amp", "backends",
                    "jit", "testing", "fx", "onnx", "hub", "multiprocessing", "linalg", "special", "fft",
                    "overrides", "library", "profiler", "npu", "mps", "xpu", "accelerator", "_dynamo", "_C",
                    "_utils", "types", "version", "func", "masked", "nested", "sparse", "quantization", "ao",
                    "distributions", "export", "storage", "functional", "compiler", "futures", "signal")
_LAZY_ATTRS = {"save": "serialization", "load": "serialization", "ops": "library"}
# torch.cholesky, torch.svd, torch.lu, ...: torch's older linear-algebra signatures (torch/linalg/_torch_api.py)
_LAZY_ATTRS.update({n: "linalg._torch_api" for n in (
    "cholesky", "cholesky_inverse", "cholesky_solve", "geqrf", "ormqr", "lu", "lu_unpack", "lu_solve", "qr", "svd",
    "svd_lowrank", "pca_lowrank", "pinverse", "triangular_solve", "matrix_exp", "logdet")})
# torch.<name> functions of the nn family (ATen's native nn building blocks), in nn/_aten.py
_LAZY_ATTRS.update({n: "nn._aten" for n in (
    "native_layer_norm", "native_group_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_batch_norm_with_update", "constant_pad_nd", "slice", "_chunk_cat",
    "_softmax_backward_data", "native_dropout_backward", "max_pool2d_with_indices_backward", "_segment_reduce",
    "_upsample_bilinear2d_aa", "grid_sampler_2d", "grid_sampler_3d", "grid_sampler")})


def _load_sub(name):
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise UnsupportedAPI(f"torch.{name} is not implemented by the shim") from None
        raise


def __getattr__(name):
    if name in _LAZY_ATTRS:
        mod = _load_sub(_LAZY_ATTRS[name])
        return getattr(mod, name)
    if name in _LAZY_SUBMODULES:
        return _load_sub(name)
    if name == "torch":  # real torch's package has itself as attribute `torch` (torch.torch is torch)
        return _sys_modules[__name__]
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module 'torch' has no attribute '{name}'")
    raise UnsupportedAPI(f"torch.{name} is not implemented by the shim")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_ATTRS))


# ---- autocast: the torch.* state functions, then the per-op policy wrappers (amp/autocast_mode.py) ---------
from .amp.autocast_mode import (autocast, is_autocast_enabled, set_autocast_enabled,  # noqa: F401,E402
                                get_autocast_dtype, set_autocast_dtype, get_autocast_gpu_dtype,
                                set_autocast_gpu_dtype, get_autocast_cpu_dtype, set_autocast_cpu_dtype,
                                is_autocast_cpu_enabled, set_autocast_cpu_enabled, is_autocast_cache_enabled,
                                set_autocast_cache_enabled, clear_autocast_cache, autocast_increment_nesting,
                                autocast_decrement_nesting, apply_policy as _apply_autocast_policy)

_apply_autocast_policy()
