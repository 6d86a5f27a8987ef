"""``torch.distributed.fsdp.fully_sharded_data_parallel``: the FSDP1 module path (see the package doc)."""
from . import FullyShardedDataParallel  # noqa: F401

__all__ = ["FullyShardedDataParallel"]
