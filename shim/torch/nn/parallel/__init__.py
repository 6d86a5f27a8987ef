"""``torch.nn.parallel`` on the shim: ``DistributedDataParallel`` (``distributed.py``). The single-process
multi-device helpers (``data_parallel``, ``replicate``, ``scatter``, ``gather``, ``parallel_apply``) raise
NotImplementedError naming themselves: the shim has one accelerator per process. ``DataParallel`` exists as a type
for isinstance checks; constructing it raises NotImplementedError."""
from shim.torch._unsupported import module_getattr as _module_getattr

from .distributed import DistributedDataParallel
from .data_parallel import DataParallel  # a type only: constructing it raises NotImplementedError

__all__ = ["DistributedDataParallel", "DataParallel"]

__getattr__ = _module_getattr("torch.nn.parallel", " (use DistributedDataParallel, one process per device)")
