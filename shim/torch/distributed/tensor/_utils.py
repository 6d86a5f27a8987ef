"""``torch.distributed.tensor._utils``: shape arithmetic for sharded tensors (pure integer math)."""
from __future__ import annotations

from .placement_types import Partial, Replicate, Shard

__all__ = ["compute_local_shape_and_global_offset"]


def compute_local_shape_and_global_offset(global_shape, mesh, placements):
    """(local shape, global offset) of this rank's shard of a tensor of ``global_shape`` laid out by
    ``placements`` (one per mesh dimension) on ``mesh``. ``Shard(d)`` splits dim ``d`` torch.chunk-style
    (leading chunks of ``ceil(n / k)``, possibly empty trailing ones), applied mesh dimension by mesh dimension;
    ``Replicate``/``Partial`` leave the shape. A rank not in the mesh gets ``((0,), ())`` as in torch."""
    coord = mesh.get_coordinate()
    if coord is None:
        return ((0,), ())
    if len(placements) != mesh.ndim:
        raise ValueError(f"compute_local_shape_and_global_offset: {len(placements)} placements for a "
                         f"{mesh.ndim}-D mesh")
    shape = list(global_shape)
    offset = [0] * len(shape)
    for mesh_dim, p in enumerate(placements):
        if isinstance(p, Shard):
            d = p.dim % len(shape) if shape else p.dim
            n, k, i = shape[d], mesh.size(mesh_dim), coord[mesh_dim]
            chunk = -(-n // k) if n else 0
            start = min(chunk * i, n)
            size = max(0, min(chunk, n - start))
            shape[d] = size
            offset[d] += start
        elif not isinstance(p, (Replicate, Partial)):
            raise TypeError(f"compute_local_shape_and_global_offset: unknown placement {p!r}")
    return tuple(shape), tuple(offset)
