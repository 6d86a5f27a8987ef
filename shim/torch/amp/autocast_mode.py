"""``torch.autocast`` on the shim: the autocast state, the context manager/decorator, and the policy applier.

State (torch's model): per device type ("cuda" — the shim's accelerator, "npu" is the same — and "cpu") an
enabled flag and a low-precision dtype (defaults: float16 for cuda, bfloat16 for cpu), a cache flag and a
nesting depth; all thread-local, as in torch.

Applying the policy: :func:`apply_policy` runs once when ``shim.torch`` is imported and replaces every facade
op named in ``_policy.POLICY`` (``torch.<name>``, ``torch.Tensor.<name>`` and operator aliases,
``torch.nn.functional.<name>``, ``torch.linalg.<name>``) by a thin wrapper, rebinding the module/class
attribute, so callers that look the op up through its module (``F.linear`` in ``nn.Linear``) go through it.
Cost when no autocast region is active anywhere: one extra Python call and one module-global check
(``_active``; measured ≈ 0.1 µs per op, see tests/shim/test_autocast.py). When active, the wrapper finds the
device type of the first tensor argument, and if autocast is enabled for it on this thread, casts the eligible
arguments (floating, that device type, not float64 — torch's rule) per the op's kind and calls the op with
autocast suspended (torch excludes the autocast dispatch key inside an autocast kernel, so ops called from
inside an op are not cast again). Casting uses ``Tensor.to`` (autograd flows through it, so a float32
parameter used in a bfloat16 matmul still gets a float32 gradient, rounded through bfloat16 as in torch).

Differences from torch (documented): torch caches the low-precision copies of leaf parameters inside a region
(``cache_enabled``); the shim records the flag but casts again at each use (same values, one cast more per
use). Ops the facade does not implement are simply absent from the wrapped set. Only device types "cuda"/"npu"
and "cpu" are supported (others: ``is_autocast_available`` is False and ``autocast`` raises
NotImplementedError).
"""
from __future__ import annotations

import collections.abc
import functools
import threading
import warnings
from typing import Any, Callable

from shim.torch import _dtype as D
from shim.torch.amp import _policy as P

__all__ = ["autocast", "is_autocast_available", "is_autocast_enabled", "set_autocast_enabled",
           "get_autocast_dtype", "set_autocast_dtype", "get_autocast_gpu_dtype", "set_autocast_gpu_dtype",
           "get_autocast_cpu_dtype", "set_autocast_cpu_dtype", "is_autocast_cpu_enabled",
           "set_autocast_cpu_enabled", "is_autocast_cache_enabled", "set_autocast_cache_enabled",
           "clear_autocast_cache", "autocast_increment_nesting", "autocast_decrement_nesting", "apply_policy",
           "custom_fwd", "custom_bwd"]

_DEVICE_TYPES = {"cuda": "cuda", "npu": "cuda", "cpu": "cpu"}
_DEFAULT_DTYPE = {"cuda": D.float16, "cpu": D.bfloat16}
_CPU_SUPPORTED = (D.bfloat16, D.float16)
_CUDA_SUPPORTED = (D.bfloat16, D.float16, D.float32)

# True while some thread has autocast enabled for some device: the only thing the wrappers read when off.
_active = False
_active_lock = threading.Lock()
_active_count = 0  # threads × device types currently enabled


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = {"cuda": False, "cpu": False}
        self.dtype = dict(_DEFAULT_DTYPE)
        self.cache_enabled = True
        self.nesting = 0
        self.suspended = False  # inside an autocast-wrapped op: nested ops are not cast again


_state = _State()


def _device_type(device_type: Any, api: str) -> str:
    if not isinstance(device_type, str):
        raise ValueError(f"{api}: expected `device_type` of type `str`, got: `{type(device_type)}`")
    kind = device_type.split(":", 1)[0]
    if kind not in _DEVICE_TYPES:
        raise NotImplementedError(f"{api}: autocast for device_type {device_type!r} is not supported by the "
                                  f"shim (supported: 'cuda', 'npu', 'cpu')")
    return _DEVICE_TYPES[kind]


def _set_enabled(dev: str, enabled: bool) -> None:
    global _active, _active_count
    was = _state.enabled[dev]
    if was == enabled:
        return
    _state.enabled[dev] = enabled
    with _active_lock:
        _active_count += 1 if enabled else -1
        _active = _active_count > 0


# -- torch.* state functions ------------------------------------------------------------------------------

def is_autocast_available(device_type: str) -> bool:
    """torch.amp.is_autocast_available(device_type): True for "cuda", "npu" and "cpu" (the shim's devices)."""
    return isinstance(device_type, str) and device_type.split(":", 1)[0] in _DEVICE_TYPES


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """torch.is_autocast_enabled(device_type="cuda"): whether autocast is on for it on this thread.

    ``torch.is_autocast_enabled()`` without argument asks about "cuda" (torch's legacy form)."""
    dev = "cuda" if device_type is None else _device_type(device_type, "torch.is_autocast_enabled")
    return _state.enabled[dev]


def set_autocast_enabled(*args) -> None:
    """torch.set_autocast_enabled(device_type, enabled), or legacy set_autocast_enabled(enabled) (cuda)."""
    if len(args) == 1:
        dev, enabled = "cuda", args[0]
    elif len(args) == 2:
        dev, enabled = _device_type(args[0], "torch.set_autocast_enabled"), args[1]
    else:
        raise TypeError("set_autocast_enabled() takes (device_type: str, enabled: bool) or (enabled: bool)")
    _set_enabled(dev, bool(enabled))


def get_autocast_dtype(device_type: str) -> D.dtype:
    """torch.get_autocast_dtype(device_type): the low-precision dtype (defaults: cuda float16, cpu bf16)."""
    return _state.dtype[_device_type(device_type, "torch.get_autocast_dtype")]


def set_autocast_dtype(device_type: str, dtype: D.dtype) -> None:
    """torch.set_autocast_dtype(device_type, dtype). TypeError if ``dtype`` is not a torch dtype."""
    if not isinstance(dtype, D.dtype):
        raise TypeError(f"set_autocast_dtype(): dtype must be a torch.dtype, got {type(dtype).__name__}")
    _state.dtype[_device_type(device_type, "torch.set_autocast_dtype")] = dtype


def get_autocast_gpu_dtype() -> D.dtype:
    """torch.get_autocast_gpu_dtype() (deprecated in torch): get_autocast_dtype("cuda")."""
    return _state.dtype["cuda"]


def set_autocast_gpu_dtype(dtype: D.dtype) -> None:
    """torch.set_autocast_gpu_dtype(dtype) (deprecated in torch): set_autocast_dtype("cuda", dtype)."""
    set_autocast_dtype("cuda", dtype)


def get_autocast_cpu_dtype() -> D.dtype:
    """torch.get_autocast_cpu_dtype() (deprecated in torch): get_autocast_dtype("cpu")."""
    return _state.dtype["cpu"]


def set_autocast_cpu_dtype(dtype: D.dtype) -> None:
    """torch.set_autocast_cpu_dtype(dtype) (deprecated in torch): set_autocast_dtype("cpu", dtype)."""
    set_autocast_dtype("cpu", dtype)


def is_autocast_cpu_enabled() -> bool:
    """torch.is_autocast_cpu_enabled() (deprecated in torch): is_autocast_enabled("cpu")."""
    return _state.enabled["cpu"]


def set_autocast_cpu_enabled(enabled: bool) -> None:
    """torch.set_autocast_cpu_enabled(enabled) (deprecated in torch): set_autocast_enabled("cpu", enabled)."""
    _set_enabled("cpu", bool(enabled))


def is_autocast_cache_enabled() -> bool:
    """torch.is_autocast_cache_enabled(): the recorded cache flag (the shim does not cache casts)."""
    return _state.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    """torch.set_autocast_cache_enabled(enabled): records the flag (module doc)."""
    _state.cache_enabled = bool(enabled)


def clear_autocast_cache() -> None:
    """torch.clear_autocast_cache(): nothing is cached by the shim, so nothing to clear (module doc)."""


def autocast_increment_nesting() -> int:
    """torch.autocast_increment_nesting(): the new nesting depth."""
    _state.nesting += 1
    return _state.nesting


def autocast_decrement_nesting() -> int:
    """torch.autocast_decrement_nesting(): the new nesting depth (never below 0)."""
    _state.nesting = max(0, _state.nesting - 1)
    return _state.nesting


# -- the context manager ----------------------------------------------------------------------------------

class autocast:
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None): a context manager/decorator.

    Inside, facade ops listed in ``shim/torch/amp/_policy.py`` cast their eligible inputs (floating, on
    ``device_type``, not float64) per torch's policy for that device type. ``device_type`` "npu" is "cuda".
    ``dtype`` defaults to ``get_autocast_dtype(device_type)``. Nesting restores the outer state on exit;
    ``enabled=False`` opens a region with autocast off.

    Raises:
        ValueError: ``device_type`` is not a str (torch's message).
        NotImplementedError: a device type other than cuda/npu/cpu.
        TypeError: decorating something that is not callable.
    Warns (and disables, as torch): cpu with a dtype other than bfloat16/float16; cuda when
    ``torch.cuda.is_available()`` is False.
    """

    def __init__(self, device_type: str, dtype: D.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device = _device_type(device_type, "torch.autocast")
        self.fast_dtype = get_autocast_dtype(self.device) if dtype is None else dtype
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else bool(cache_enabled)
        enabled = bool(enabled)
        if enabled:
            if self.device == "cuda":
                import shim.torch as facade

                if not facade.cuda.is_available():
                    warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.",
                                  stacklevel=2)
                    enabled = False
                elif self.fast_dtype not in _CUDA_SUPPORTED:
                    raise RuntimeError(f"torch.autocast('cuda'): dtype {self.fast_dtype} is not supported "
                                       f"(expected torch.bfloat16 or torch.float16)")
            elif self.fast_dtype not in _CPU_SUPPORTED:
                warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                              "CPU Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                              stacklevel=2)
                enabled = False
        self._enabled = enabled

    def __enter__(self):
        self.prev_cache_enabled = _state.cache_enabled
        self.prev = _state.enabled[self.device]
        self.prev_fastdtype = _state.dtype[self.device]
        _set_enabled(self.device, self._enabled)
        _state.dtype[self.device] = self.fast_dtype
        autocast_increment_nesting()
        _state.cache_enabled = self._cache_enabled
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> bool:
        if autocast_decrement_nesting() == 0:
            clear_autocast_cache()
        _set_enabled(self.device, self.prev)
        _state.dtype[self.device] = self.prev_fastdtype
        _state.cache_enabled = self.prev_cache_enabled
        return False

    def __call__(self, func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(f"autocast()(func) requires a callable, but got {type(func).__name__}. "
                            f"Did you mean to use autocast as a context manager? For example:\n"
                            f"    with torch.autocast(device_type=...):\n"
                            f"        output = model(input)")
        args = (self.device, self.fast_dtype, self._enabled, self._cache_enabled)

        @functools.wraps(func)
        def decorate_autocast(*a, **kw):
            with _region(*args):
                return func(*a, **kw)

        decorate_autocast.__script_unsupported = "@autocast() decorator is not supported in script mode"
        return decorate_autocast


def _region(device: str, dtype, enabled: bool, cache_enabled: bool) -> autocast:
    """A fresh autocast with already-validated settings (decorator calls may recurse or run on threads)."""
    region = object.__new__(autocast)
    region.device, region.fast_dtype = device, dtype
    region._enabled, region._cache_enabled = enabled, cache_enabled
    return region


# -- casting ----------------------------------------------------------------------------------------------

def _cast(value, device_type: str, dtype: D.dtype):
    """torch.amp.autocast_mode._cast: cast floating tensors on ``device_type`` (not float64) in nested
    containers (lists, tuples, dicts, other iterables; str/bytes/ndarray pass through) to ``dtype``."""
    import numpy as np

    from shim.torch._tensor import Tensor

    device_type = _DEVICE_TYPES.get(device_type, device_type)
    if isinstance(value, Tensor):
        eligible = (value._dt.is_floating_point and value._dt is not D.float64
                    and _DEVICE_TYPES.get(value._dev.type) == device_type)
        return value.to(dtype) if eligible else value
    if isinstance(value, (str, bytes, np.ndarray)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return {_cast(k, device_type, dtype): _cast(v, device_type, dtype) for k, v in value.items()}
    if isinstance(value, collections.abc.Iterable):
        items = (_cast(v, device_type, dtype) for v in value)
        return type(value)(items) if isinstance(value, (list, tuple)) else items
    return value


def _first_device(args, kwargs):
    from shim.torch._tensor import Tensor

    for a in args:
        if isinstance(a, Tensor):
            return a._dev.type
        if isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, Tensor):
                    return b._dev.type
    for a in kwargs.values():
        if isinstance(a, Tensor):
            return a._dev.type
    return None


def _eligible(t, dev: str) -> bool:
    dt = t._dt
    return dt.is_floating_point and dt is not D.float64 and _DEVICE_TYPES.get(t._dev.type) == dev


def _cast_args(value, dev: str, dtype):
    from shim.torch._tensor import Tensor

    if isinstance(value, Tensor):
        return value.to(dtype) if (value._dt is not dtype and _eligible(value, dev)) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_args(v, dev, dtype) for v in value)
    return value


def _widest(values, dev: str, dtype):
    """torch's ``prioritize``: float32 wins; equal low-precision dtypes stay; bfloat16 mixed with float16
    (the autocast dtype counts) is an error, as in torch."""
    from shim.torch._tensor import Tensor

    for v in values:
        if isinstance(v, Tensor):
            if _eligible(v, dev) and v._dt is not dtype:
                if dtype is D.float32 or v._dt is D.float32:
                    dtype = D.float32
                else:
                    raise RuntimeError("Unexpected floating ScalarType in at::autocast::prioritize")
        elif isinstance(v, (list, tuple)):
            dtype = _widest(v, dev, dtype)
    return dtype


_BANNED_MESSAGE = (
    "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
    "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
    "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
    "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
    "safe to autocast.")


def _run(fn: Callable, name: str, args: tuple, kwargs: dict):
    """The autocast path of a wrapped op (only reached while some autocast region is active)."""
    st = _state
    if st.suspended:
        return fn(*args, **kwargs)
    dev = _DEVICE_TYPES.get(_first_device(args, kwargs))
    if dev is None or not st.enabled[dev]:
        return fn(*args, **kwargs)
    kind = P.POLICY[dev].get(name)
    if kind is None or kwargs.get("out") is not None:  # out= overloads have no autocast kernel in torch
        return fn(*args, **kwargs)
    if kind is P.LOWER:
        target = st.dtype[dev]
    elif kind is P.FP32:
        target = D.float32
    elif kind is P.FP32_UNLESS_DTYPE:
        if kwargs.get("dtype") is not None:
            return fn(*args, **kwargs)
        target = D.float32
    elif kind is P.PROMOTE:
        target = _widest(kwargs.values(), dev, _widest(args, dev, st.dtype[dev]))
    else:  # BANNED
        raise RuntimeError(_BANNED_MESSAGE)
    args = tuple(_cast_args(a, dev, target) for a in args)
    if kwargs:
        kwargs = {k: _cast_args(v, dev, target) for k, v in kwargs.items()}
    st.suspended = True
    try:
        return fn(*args, **kwargs)
    finally:
        st.suspended = False


def _wrap(fn: Callable, name: str) -> Callable:
    if getattr(fn, "_autocast_op", None) is not None:
        return fn  # already wrapped

    def autocast_op(*args, **kwargs):
        if not _active:
            return fn(*args, **kwargs)
        return _run(fn, name, args, kwargs)

    functools.update_wrapper(autocast_op, fn)
    autocast_op._autocast_op = name
    return autocast_op


_applied: list[str] = []


def apply_policy() -> list[str]:
    """Wrap every facade op named in the policy table (once; see module doc). Returns the wrapped places
    as "torch.X" / "torch.Tensor.X" / "torch.nn.functional.X" / "torch.linalg.X" strings."""
    if _applied:
        return _applied
    import importlib
    import sys

    import shim.torch as facade
    from shim.torch._tensor import Tensor

    names = set(P.POLICY["cuda"]) | set(P.POLICY["cpu"])
    places = [("torch", facade)]
    for sub in ("nn.functional", "linalg"):
        try:
            places.append((f"torch.{sub}", importlib.import_module(f"shim.torch.{sub}")))
        except ModuleNotFoundError as exc:  # torch.linalg may not exist in the facade (yet)
            if exc.name != f"shim.torch.{sub}":
                raise
    for label, module in places:
        for name in sorted(names):
            fn = module.__dict__.get(name)
            if callable(fn) and not isinstance(fn, type) and not isinstance(fn, type(sys)):
                setattr(module, name, _wrap(fn, name))
                _applied.append(f"{label}.{name}")
    for attr in sorted(names | set(P.TENSOR_ALIASES)):
        fn = Tensor.__dict__.get(attr)
        if fn is not None and callable(fn):
            setattr(Tensor, attr, _wrap(fn, P.TENSOR_ALIASES.get(attr, attr)))
            _applied.append(f"torch.Tensor.{attr}")
    return _applied


# custom_fwd/custom_bwd live next to GradScaler; re-exported here as in torch.amp.autocast_mode
from shim.torch.amp._custom_fwd import custom_bwd, custom_fwd  # noqa: E402
