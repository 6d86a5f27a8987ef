"""``torch.backends.cudnn`` on the shim: there is no cuDNN (``is_available()`` False, ``version()`` None); the
switches ``enabled``, ``benchmark``, ``benchmark_limit``, ``deterministic`` and ``allow_tf32`` are settable with
the defaults of a torch build without cuDNN (``benchmark_limit`` None) and torch's type checks, and recorded:
MindSpore's kernels are not chosen by benchmarking, and float32 convolutions stay full float32 (``allow_tf32`` is
a permission). See ``torch.backends``."""
from __future__ import annotations

import contextlib
import sys

from shim.torch._unsupported import UnsupportedAPI

from .._flags import install

__all__ = ["is_available", "version", "flags", "enabled", "benchmark", "benchmark_limit", "deterministic",
           "allow_tf32"]


def is_available() -> bool:
    """False: the shim has no cuDNN library (its kernels are MindSpore's)."""
    return False


def version():
    """None (torch's answer when cuDNN is absent)."""
    return None


@contextlib.contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True):
    """Set the switches for the duration of the block (torch.backends.cudnn.flags); restores them after."""
    mod = sys.modules[__name__]
    saved = dict(mod._flags)
    try:
        for name, value in (("enabled", enabled), ("benchmark", benchmark), ("benchmark_limit", benchmark_limit),
                            ("deterministic", deterministic), ("allow_tf32", allow_tf32)):
            if value is not None:
                setattr(mod, name, value)
        yield
    finally:
        mod._flags.update(saved)


def _missing(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module 'torch.backends.cudnn' has no attribute '{name}'")
    raise UnsupportedAPI(f"torch.backends.cudnn.{name} is not implemented by the shim")


install(__name__, {"enabled": True, "benchmark": False, "benchmark_limit": None, "deterministic": False,
                   "allow_tf32": True}, _missing)
