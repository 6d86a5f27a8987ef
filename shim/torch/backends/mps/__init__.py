"""``torch.backends.mps`` on the shim: no Apple GPU backend (``is_available()``/``is_built()`` are False, as on
a torch build without MPS)."""
from __future__ import annotations

from shim.torch._unsupported import module_getattr as _module_getattr

__all__ = ["is_available", "is_built", "is_macos13_or_newer"]


def is_available() -> bool:
    """False: the shim has no MPS device."""
    return False


def is_built() -> bool:
    """False: the shim is not built with MPS."""
    return False


def is_macos13_or_newer(minor: int = 0) -> bool:
    """False (no MPS)."""
    return False


__getattr__ = _module_getattr("torch.backends.mps")
