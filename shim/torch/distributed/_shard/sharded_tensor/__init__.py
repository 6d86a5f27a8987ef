"""``torch.distributed._shard.sharded_tensor``: ``ShardedTensor``, ``Shard``, ``ShardedTensorMetadata``,
``TensorProperties``, ``ShardMetadata`` (see ``api`` for what a ShardedTensor supports under the shim).
The creation functions that need sharding specs or communication (``empty``, ``ones``, ``zeros``, ``full``,
``rand``, ``randn``, ``init_from_local_shards``, ``state_dict_hook``, ``pre_load_state_dict_hook``) raise
NotImplementedError naming them."""
from ...._unsupported import module_getattr as _module_getattr
from .api import ShardedTensor, ShardedTensorBase
from .metadata import ShardedTensorMetadata, ShardMetadata, TensorProperties
from .shard import Shard

__all__ = ["ShardedTensor", "ShardedTensorBase", "ShardedTensorMetadata", "ShardMetadata", "TensorProperties",
           "Shard", "init_from_local_shards"]


def init_from_local_shards(local_shards, *global_size, process_group=None, init_rrefs=False):
    """torch's ``init_from_local_shards`` gathers every rank's shard metadata over the process group; not
    implemented by the shim (build with ``ShardedTensor._init_from_local_shards_and_global_metadata``)."""
    raise NotImplementedError("torch.distributed._shard.sharded_tensor.init_from_local_shards is not implemented by "
                              "the shim (use ShardedTensor._init_from_local_shards_and_global_metadata)")


__getattr__ = _module_getattr("torch.distributed._shard.sharded_tensor")
