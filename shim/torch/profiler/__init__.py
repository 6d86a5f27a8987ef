"""``torch.profiler``: names only; profiling is not implemented by the shim.

``ProfilerActivity`` has torch's members (configuration code builds maps of them). ``record_function`` labels a
range for an active profiler; since no profiler can be active under the shim, entering it records nothing —
its meaning in torch when no profiler runs. ``profile(...)`` raises ``NotImplementedError`` naming the API
(MindSpore's own profiler is ``mindspore.profiler``).
"""
from __future__ import annotations

import enum

from .._unsupported import module_getattr as _module_getattr

__all__ = ["ProfilerActivity", "profile", "record_function", "schedule"]


class ProfilerActivity(enum.Enum):
    """torch's profiler activity kinds."""
    CPU = 0
    XPU = 1
    MTIA = 2
    CUDA = 3
    HPU = 4
    PrivateUse1 = 5


class record_function:
    """Context manager / decorator labelling a range for the active profiler: none is ever active here."""

    def __init__(self, name: str, args=None):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        return fn


def profile(*args, **kwargs):
    raise NotImplementedError("torch.profiler.profile is not implemented by the shim")


def schedule(*args, **kwargs):
    raise NotImplementedError("torch.profiler.schedule is not implemented by the shim")


__getattr__ = _module_getattr("torch.profiler")
