"""torch.device and the normalisation of device arguments, as one data table.

The facade runs every tensor on MindSpore's current device target (CPU here, Ascend in production). Device
arguments are still parsed and validated like torch's, and the *reported* device keeps torch's vocabulary:
a tensor created with ``device="cuda"`` (or any accelerator alias) reports ``device(type='cuda', index=i)`` so
code that compares device types keeps working, while the storage lives wherever MindSpore puts it.
"""
from __future__ import annotations

import threading

__all__ = ["device", "normalize_device", "DEVICE_TYPE_ALIASES"]

# Accepted device type strings -> the type the facade reports. One row per alias; "npu" is Ascend's
# name for the accelerator and reports as "cuda" so that torch code written for GPUs sees its own type.
DEVICE_TYPE_ALIASES = {
    "cpu": "cpu",
    "cuda": "cuda",
    "npu": "cuda",
    "meta": "meta",
}


class device:
    """torch.device(type, index=None) or torch.device("cuda:1") or torch.device(1) (= cuda:1).

    Raises RuntimeError for unknown device strings, like torch ("Expected one of cpu, cuda, … device type").
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002  (torch's argument name)
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int) and not isinstance(type, bool):
            if type < 0:
                raise RuntimeError(f"Device index must not be negative, got {type}")
            self.type, self.index = "cuda", type
            return
        if not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments: {type!r}")
        text = type.strip()
        kind, _, idx = text.partition(":")
        if kind not in DEVICE_TYPE_ALIASES:
            raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPE_ALIASES)} device type at start of "
                               f"device string: {text}")
        if idx:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed "
                                   f"explicitly: {text}")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{text}'")
            index = int(idx)
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"Device index must be a non-negative int, got {index!r}")
        self.type = DEVICE_TYPE_ALIASES[kind]
        self.index = index

    def __eq__(self, other):
        # torch compares devices with devices only: `torch.device("cpu") == "cpu"` is False (NotImplemented, then
        # Python's identity fallback), never an error for a string that names no device (transformers tests
        # `"disk" in device_map.values()`).
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __reduce__(self):
        return (device, (self.type, self.index))

    def __enter__(self):
        # A default-device scope (per thread, nestable): factory functions called without ``device=`` make
        # tensors reporting this device, and ``torch.get_default_device()`` returns it. ``cpu`` is the facade's
        # default. ``meta`` (shape-only tensors: HF transformers builds a model under it and loads weights
        # afterwards) is *emulated*: the facade has no storage-less tensors, so tensors made in the scope report
        # ``device(type='meta')`` but hold real (allocated, initialised) values; code that checks for meta sees
        # meta, later loading replaces them. Random initialisation in the scope draws from the CPU stream (real
        # torch's meta tensors draw nothing). Other devices: NotImplementedError.
        if self.type not in ("cpu", "meta"):
            raise NotImplementedError(f"torch.device('{self}') as a context manager (default-device scope) is not "
                                      "supported by the shim; pass device= explicitly")
        _scopes().append(self)
        return self

    def __exit__(self, *exc):
        stack = _scopes()
        if stack and stack[-1] is self:
            stack.pop()
        return False


_SCOPE = threading.local()


def _scopes() -> list:
    stack = getattr(_SCOPE, "stack", None)
    if stack is None:
        stack = _SCOPE.stack = []
    return stack


def default_device() -> "device":
    """The device factory functions use without ``device=``: the innermost ``with torch.device(...)`` scope of
    this thread, else cpu."""
    stack = _scopes()
    return stack[-1] if stack else CPU


CPU = device("cpu")


def _current_accelerator_index() -> int:
    """The index `cuda` without an index means: the current device (shim.torch.cuda when present, else 0)."""
    import sys
    mod = sys.modules.get("shim.torch.cuda")
    if mod is not None and hasattr(mod, "current_device"):
        try:
            return int(mod.current_device())
        except Exception:  # pragma: no cover - a half-initialised cuda module
            return 0
    return 0


def normalize_device(dev) -> device:
    """Normalise a device argument (None, str, int, torch.device) to the device a new tensor reports.

    None -> the default device (cpu, or the innermost ``with torch.device(...)`` scope); "cuda" without an index -> cuda:<current device>; ints mean cuda:<int> (torch's rule).
    Raises RuntimeError/TypeError for malformed input (see `device`).
    """
    if dev is None:
        return default_device()
    if dev.__class__ is device:
        d = dev
    else:
        d = device(dev)
    if d.type == "cuda" and d.index is None:
        return device("cuda", _current_accelerator_index())
    if d.type == "cpu" and d.index is not None:
        return CPU
    return d
