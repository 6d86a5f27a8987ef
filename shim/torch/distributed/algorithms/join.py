"""``torch.distributed.algorithms.join``: uneven-input training (``Join``) is not implemented by the shim.

The names exist for imports; ``Join(...)`` raises ``NotImplementedError`` naming the API.
"""
from __future__ import annotations

__all__ = ["Join", "Joinable", "JoinHook"]


class JoinHook:
    """Base of join hooks (type only)."""


class Joinable:
    """Base of joinable modules (type only)."""


class Join:
    """Constructing one raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.distributed.algorithms.join.Join is not implemented by the shim")
