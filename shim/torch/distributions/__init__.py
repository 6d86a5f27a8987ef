"""``torch.distributions``: only :mod:`.constraints`'s matrix constraints so far; the distribution classes
raise ``NotImplementedError`` naming themselves."""
from __future__ import annotations

from . import constraints  # noqa: F401
from .._unsupported import module_getattr as _module_getattr

__all__ = ["constraints"]

__getattr__ = _module_getattr("torch.distributions")
