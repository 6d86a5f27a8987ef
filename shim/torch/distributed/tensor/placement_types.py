"""``torch.distributed.tensor.placement_types``: how a tensor dimension maps onto a mesh dimension.

Value objects with torch's constructors, equality and predicates (``is_shard``, ``is_replicate``,
``is_partial``), so placements can be built, compared and used in shape arithmetic
(:func:`torch.distributed.tensor._utils.compute_local_shape_and_global_offset`). ``_StridedShard`` exists for
imports and ``isinstance`` checks; building one raises ``NotImplementedError``.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["Placement", "Shard", "Replicate", "Partial"]


class Placement:
    """Base of all placements."""

    def is_shard(self, dim: Optional[int] = None) -> bool:
        return False

    def is_replicate(self) -> bool:
        return False

    def is_partial(self, reduce_op: Optional[str] = None) -> bool:
        return False


class Shard(Placement):
    """Tensor dimension ``dim`` is split evenly (torch.chunk-style: ceil-sized leading chunks) over a mesh dim."""

    def __init__(self, dim: int):
        if not isinstance(dim, int):
            raise TypeError(f"Shard(dim): dim must be an int, got {type(dim).__name__}")
        self.dim = dim

    def is_shard(self, dim: Optional[int] = None) -> bool:
        return dim is None or dim == self.dim

    def __eq__(self, other) -> bool:
        return type(other) is Shard and other.dim == self.dim

    def __hash__(self) -> int:
        return hash(("Shard", self.dim))

    def __repr__(self) -> str:
        return f"Shard(dim={self.dim})"


class _StridedShard(Shard):
    """Strided sharding (FSDP2 + TP layouts): not implemented by the shim; exists for isinstance checks."""

    def __init__(self, dim: int, split_factor: int = 1):
        raise NotImplementedError("torch.distributed.tensor.placement_types._StridedShard is not implemented by "
                                  "the shim")


class Replicate(Placement):
    """Every rank of the mesh dimension holds the whole tensor."""

    def is_replicate(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return type(other) is Replicate

    def __hash__(self) -> int:
        return hash("Replicate")

    def __repr__(self) -> str:
        return "Replicate()"


class Partial(Placement):
    """Every rank holds a partial value; the global tensor is their reduction by ``reduce_op``."""

    def __init__(self, reduce_op: str = "sum"):
        if not isinstance(reduce_op, str):
            raise TypeError(f"Partial(reduce_op): expected a str such as 'sum', got {type(reduce_op).__name__}")
        self.reduce_op = reduce_op

    def is_partial(self, reduce_op: Optional[str] = None) -> bool:
        return reduce_op is None or reduce_op == self.reduce_op

    def __eq__(self, other) -> bool:
        return type(other) is Partial and other.reduce_op == self.reduce_op

    def __hash__(self) -> int:
        return hash(("Partial", self.reduce_op))

    def __repr__(self) -> str:
        return f"Partial({self.reduce_op})"
