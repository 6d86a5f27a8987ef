"""``torch.distributed._shard``: torch's legacy sharded-tensor surface, the part checkpointing code uses.

What is here (torch 2.13's names, fields and checks): ``metadata.ShardMetadata`` (a shard's offsets, sizes and
placement), ``sharded_tensor`` (``Shard``, ``ShardedTensor`` built from local shards plus global metadata — what
megatron-core's ``torch_dist`` strategy and DCP's planners use — ``ShardedTensorMetadata``, ``TensorProperties``)
and ``sharding_spec._internals`` (the shard-layout checks). Creating sharded tensors from sharding specs
(``sharded_tensor.empty``/``ones``/``init_from_local_shards`` with communication, ``shard_module``,
``_shard_tensor``), resharding and ops on sharded tensors are not implemented: their names raise the facade's
``UnsupportedAPI``.
"""
from ..._unsupported import module_getattr as _module_getattr
from . import metadata, sharded_tensor, sharding_spec  # noqa: F401

__getattr__ = _module_getattr("torch.distributed._shard")
