"""``torch.nn.parallel.data_parallel``: ``DataParallel`` (one process driving several devices) is not
implemented by the shim — use ``DistributedDataParallel`` with one process per device. The class exists so
``isinstance(model, torch.nn.DataParallel)`` checks (accelerate, HF Trainer) answer False; constructing one
raises ``NotImplementedError`` naming the API."""
from __future__ import annotations

__all__ = ["DataParallel"]


class DataParallel:
    """Constructing one raises ``NotImplementedError`` (see the module doc)."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.nn.DataParallel is not implemented by the shim (use "
                                  "torch.nn.parallel.DistributedDataParallel, one process per device)")
