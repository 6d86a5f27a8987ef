"""``torch.distributed._shard.sharded_tensor.metadata``: :class:`ShardedTensorMetadata` (the global description
of a sharded tensor: every shard's ``ShardMetadata``, the global size and the tensor properties) and
:class:`TensorProperties`.

Same names, fields and pickled state as torch 2.13: ``TensorProperties`` pickles as the tuple ``(dtype, layout,
requires_grad, MEM_FORMAT_ENCODING member, pin_memory)``. It is a class of its own, distinct from DCP's
``torch.distributed.checkpoint.metadata.TensorProperties`` (as in torch; DCP's planners convert one into the other).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...._unsupported import module_getattr as _module_getattr
from ...checkpoint.metadata import _decode_memory_format, _encode_memory_format
from ..metadata import ShardMetadata

__all__ = ["ShardedTensorMetadata", "TensorProperties", "MEM_FORMAT_ENCODING", "ShardMetadata"]


def _torch():
    import shim.torch as torch  # the facade (imported lazily: this module loads while shim.torch initialises)

    return torch


class MEM_FORMAT_ENCODING(Enum):
    """How TensorProperties pickles ``memory_format`` (values fixed by torch's format)."""

    TORCH_CONTIGUOUS_FORMAT = 0
    TORCH_CHANNELS_LAST = 1
    TORCH_PRESERVE_FORMAT = 2


@dataclass
class TensorProperties:
    """dtype, layout, requires_grad, memory_format and pin_memory of a sharded tensor (see the module docstring).
    Raises RuntimeError when pickling a memory format other than the three torch encodes."""

    dtype: Any = field(default_factory=lambda: _torch().get_default_dtype())
    layout: Any = field(default_factory=lambda: _torch().strided)
    requires_grad: bool = False
    memory_format: Any = field(default_factory=lambda: _torch().contiguous_format)
    pin_memory: bool = False

    def __getstate__(self):
        enc = _encode_memory_format(self.memory_format, MEM_FORMAT_ENCODING)
        return (self.dtype, self.layout, self.requires_grad, enc, self.pin_memory)

    def __setstate__(self, state):
        self.dtype, self.layout, self.requires_grad, enc, self.pin_memory = state
        self.memory_format = _decode_memory_format(enc, MEM_FORMAT_ENCODING)

    @staticmethod
    def create_from_tensor(tensor) -> "TensorProperties":
        """The properties of `tensor` (memory format recorded as contiguous, as torch does)."""
        return TensorProperties(dtype=tensor.dtype, layout=tensor.layout, requires_grad=bool(tensor.requires_grad),
                                memory_format=_torch().contiguous_format, pin_memory=bool(tensor.is_pinned()))


@dataclass
class ShardedTensorMetadata:
    """``shards_metadata`` (a ``ShardMetadata`` per shard, all ranks), ``size`` (global ``torch.Size``) and
    ``tensor_properties``."""

    shards_metadata: list = field(default_factory=list)
    size: Any = field(default_factory=lambda: _torch().Size([]))
    tensor_properties: TensorProperties = field(default_factory=TensorProperties)


__getattr__ = _module_getattr("torch.distributed._shard.sharded_tensor.metadata")
