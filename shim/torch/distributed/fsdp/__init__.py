"""``torch.distributed.fsdp``: names for imports and ``isinstance`` checks; sharding itself is not implemented.

Libraries (HF transformers, accelerate) import these at module level and ask ``isinstance(m,
FullyShardedDataParallel)`` / ``isinstance(m, FSDPModule)`` on their non-FSDP path; those answer False.
``MixedPrecisionPolicy``, ``CPUOffloadPolicy`` and ``OffloadPolicy`` are plain configuration records with
torch's fields and defaults. Wrapping a module — ``FullyShardedDataParallel(...)`` or ``fully_shard(...)`` —
raises ``NotImplementedError`` naming the API (the shim has no parameter sharding; data parallelism is
``torch.nn.parallel.DistributedDataParallel``, sharded training runs through megatron-core).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["FullyShardedDataParallel", "FSDPModule", "fully_shard", "MixedPrecisionPolicy", "OffloadPolicy",
           "CPUOffloadPolicy"]


def _unsupported(api: str):
    raise NotImplementedError(f"{api} is not implemented by the shim (no parameter sharding; see "
                              "shim/torch/distributed/fsdp/__init__.py)")


class FullyShardedDataParallel:
    """FSDP1's wrapper type; constructing it raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        _unsupported("torch.distributed.fsdp.FullyShardedDataParallel")


class FSDPModule:
    """FSDP2's mixin type (modules returned by ``fully_shard``); exists for ``isinstance`` checks."""

    def __new__(cls, *args, **kwargs):
        _unsupported("torch.distributed.fsdp.FSDPModule")


def fully_shard(*args, **kwargs):
    _unsupported("torch.distributed.fsdp.fully_shard")


@dataclass(frozen=True)
class MixedPrecisionPolicy:
    """FSDP2 mixed-precision configuration (dtypes or None); a record only."""
    param_dtype: Optional[Any] = None
    reduce_dtype: Optional[Any] = None
    output_dtype: Optional[Any] = None
    cast_forward_inputs: bool = True


@dataclass
class OffloadPolicy:
    """FSDP2 offload configuration base (no offloading); a record only."""


@dataclass
class CPUOffloadPolicy(OffloadPolicy):
    """FSDP2 CPU-offload configuration; a record only."""
    pin_memory: bool = True


__getattr__ = _module_getattr("torch.distributed.fsdp")
