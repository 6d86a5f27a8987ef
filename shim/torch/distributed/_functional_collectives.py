"""``torch.distributed._functional_collectives``: the subset libraries import.

``wait_tensor(t)`` returns ``t``: the facade's collectives complete before they return (see
``distributed_c10d``), so there is nothing left to wait for — its true meaning here, not a skipped wait. The
functional (out-of-place, traceable) collectives themselves are not implemented: they raise
``NotImplementedError`` naming the API.
"""
from __future__ import annotations

from .._unsupported import module_getattr as _module_getattr

__all__ = ["wait_tensor", "all_to_all_single_autograd"]


def wait_tensor(tensor):
    """The result of a completed collective: ``tensor`` itself (the facade's collectives are synchronous)."""
    return tensor


def all_to_all_single_autograd(*args, **kwargs):
    """Not implemented by the shim: raises ``NotImplementedError``."""
    raise NotImplementedError("torch.distributed._functional_collectives.all_to_all_single_autograd is not "
                              "implemented by the shim")


__getattr__ = _module_getattr("torch.distributed._functional_collectives")
