"""``torch.distributed._shard.sharding_spec``: only ``_internals`` (the shard-layout checks) is implemented; the
sharding-spec classes (``ChunkShardingSpec``, ``EnumerableShardingSpec``) raise the facade's ``UnsupportedAPI``."""
from ...._unsupported import module_getattr as _module_getattr
from . import _internals  # noqa: F401

__getattr__ = _module_getattr("torch.distributed._shard.sharding_spec")
