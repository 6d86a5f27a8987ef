"""``torch.nn.parallel`` on the shim: ``DistributedDataParallel`` (``distributed.py``). The single-process
multi-device helpers (``DataParallel``, ``data_parallel``, ``replicate``, ``scatter``, ``gather``,
``parallel_apply``) raise NotImplementedError naming themselves: the shim has one accelerator per process."""
from shim.torch._unsupported import module_getattr as _module_getattr

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]

__getattr__ = _module_getattr("torch.nn.parallel", " (use DistributedDataParallel, one process per device)")
