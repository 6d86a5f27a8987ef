"""``torch.nn.attention``: SDPA backend selection.

The facade has one ``scaled_dot_product_attention`` implementation, torch's math formulation
(``SDPBackend.MATH``). :func:`sdpa_kernel` therefore accepts any backend list that contains ``MATH`` (the
block then runs as before: the only kernel is an allowed one) and raises ``NotImplementedError`` for a list
without it (torch would refuse to run or use a fused kernel the shim lacks).
"""
from __future__ import annotations

import contextlib
import enum

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch's SDPA kernel names (values as torch's enum)."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Restrict SDPA to ``backends`` (one SDPBackend or a list); see the module doc for the shim's meaning."""
    allowed = [backends] if isinstance(backends, SDPBackend) else list(backends)
    if SDPBackend.MATH not in allowed:
        raise NotImplementedError(f"torch.nn.attention.sdpa_kernel({allowed}): the shim has only the MATH "
                                  "scaled_dot_product_attention backend")
    yield


__getattr__ = _module_getattr("torch.nn.attention")
