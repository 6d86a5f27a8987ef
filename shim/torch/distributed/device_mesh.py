"""``torch.distributed.device_mesh``: a :class:`DeviceMesh` over the facade's process groups.

A mesh is an n-D integer array of global ranks (``mesh``) with optional ``mesh_dim_names``. For each mesh
dimension the ranks that vary along it form one process group, created with
:func:`torch.distributed.new_group` (every rank creates every group in the same order, as torch's
``DeviceMesh`` does), so collectives on ``mesh.get_group(dim)`` run on the facade's communication.
``device_type`` is recorded as given ("cpu", "cuda", "npu"...); under the shim every tensor lives on MindSpore's
device, so it selects nothing. Behaviour follows torch 2.x's documented DeviceMesh API; slicing
(``mesh["name"]``) supports a single named dimension or several (a sub-mesh over those dimensions containing
this rank). Flattening (``_flatten``) and ``from_group`` with several groups raise ``NotImplementedError``.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence

__all__ = ["DeviceMesh", "init_device_mesh"]


def _dist():
    from .. import distributed as dist  # lazily: torch.distributed imports nothing from here
    return dist


def _as_nested(mesh):
    """``mesh`` (a facade Tensor, nested list/tuple, or numpy array) -> (flat list of ints, shape tuple)."""
    if hasattr(mesh, "tolist"):
        mesh = mesh.tolist()
    shape = []
    level = mesh
    while isinstance(level, (list, tuple)):
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    flat = list(mesh) if not shape else mesh
    for _ in range(len(shape) - 1):
        flat = [x for sub in flat for x in sub]
    if not shape:
        raise ValueError(f"DeviceMesh: mesh must be an n-D array of ranks with n >= 1, got {mesh!r}")
    if any(not isinstance(r, int) for r in flat):
        raise TypeError(f"DeviceMesh: mesh entries must be integer ranks, got {mesh!r}")
    if len(set(flat)) != len(flat):
        raise ValueError(f"DeviceMesh: mesh has duplicate ranks: {mesh!r}")
    return [int(r) for r in flat], tuple(shape)


class DeviceMesh:
    """An n-D arrangement of global ranks; one process group per (mesh dimension, line of ranks).

    ``device_type``: str (recorded; see the module doc). ``mesh``: n-D array of global ranks (list / tensor).
    ``mesh_dim_names``: optional tuple of n unique names. Every rank of the world must build the same mesh in
    the same order (groups are created collectively). Errors: ``ValueError`` for duplicate ranks, a name count
    that differs from ``ndim``, or a mesh larger than the world.
    """

    def __init__(self, device_type: str, mesh, *, mesh_dim_names: Optional[Sequence[str]] = None,
                 _init_backend: bool = True, **_ignored):
        if not isinstance(device_type, str):
            raise TypeError(f"DeviceMesh: device_type must be a str, got {type(device_type).__name__}")
        self.device_type = device_type
        self._flat, self._shape = _as_nested(mesh)
        if mesh_dim_names is not None:
            mesh_dim_names = tuple(mesh_dim_names)
            if len(mesh_dim_names) != len(self._shape) or len(set(mesh_dim_names)) != len(mesh_dim_names):
                raise ValueError(f"DeviceMesh: mesh_dim_names {mesh_dim_names} must be {len(self._shape)} unique "
                                 f"names (mesh shape {self._shape})")
        self.mesh_dim_names = mesh_dim_names
        dist = _dist()
        if not dist.is_initialized():
            raise RuntimeError("DeviceMesh: the default process group is not initialized; call "
                               "torch.distributed.init_process_group first (or use init_device_mesh)")
        world = dist.get_world_size()
        if max(self._flat) >= world or len(self._flat) > world:
            raise ValueError(f"DeviceMesh: mesh {self._shape} with ranks up to {max(self._flat)} needs a world of "
                             f"at least {max(self._flat) + 1} ranks; the world has {world}")
        self._rank = dist.get_rank()
        self._groups = []  # per dim: this rank's group (or None when the rank is not in the mesh)
        for dim in range(len(self._shape)):
            mine = None
            for line in self._lines(dim):
                g = dist.new_group(line)
                if self._rank in line:
                    mine = g
            self._groups.append(mine)

    # --- geometry -----------------------------------------------------------------------------------------------
    def _index(self, coord) -> int:
        idx = 0
        for c, n in zip(coord, self._shape):
            idx = idx * n + c
        return idx

    def _coord_of(self, pos: int) -> list:
        coord = []
        for n in reversed(self._shape):
            coord.append(pos % n)
            pos //= n
        return coord[::-1]

    def _lines(self, dim: int):
        """Every list of global ranks varying along ``dim`` (others fixed), in row-major order of the rest."""
        others = [range(n) if d != dim else range(1) for d, n in enumerate(self._shape)]
        for base in itertools.product(*others):
            line = []
            for i in range(self._shape[dim]):
                coord = list(base)
                coord[dim] = i
                line.append(self._flat[self._index(coord)])
            yield line

    @property
    def mesh(self):
        """The ranks as an int64 facade tensor of the mesh's shape."""
        import shim.torch as _torch
        return _torch.tensor(self._flat, dtype=_torch.int64).reshape(self._shape)

    @property
    def shape(self) -> tuple:
        return tuple(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def size(self, mesh_dim: Optional[int] = None) -> int:
        """Number of ranks in the mesh, or along ``mesh_dim``."""
        return math.prod(self._shape) if mesh_dim is None else self._shape[mesh_dim]

    def _dim(self, mesh_dim) -> int:
        if mesh_dim is None:
            if self.ndim != 1:
                raise RuntimeError(f"DeviceMesh: mesh_dim is required for a {self.ndim}-D mesh")
            return 0
        if isinstance(mesh_dim, str):
            if not self.mesh_dim_names or mesh_dim not in self.mesh_dim_names:
                raise KeyError(f"DeviceMesh: no mesh dimension named {mesh_dim!r} (names: {self.mesh_dim_names})")
            return self.mesh_dim_names.index(mesh_dim)
        if not -self.ndim <= mesh_dim < self.ndim:
            raise IndexError(f"DeviceMesh: mesh_dim {mesh_dim} out of range for a {self.ndim}-D mesh")
        return mesh_dim % self.ndim

    def get_coordinate(self) -> Optional[list]:
        """This rank's coordinate in the mesh, or None when it is not in the mesh."""
        if self._rank not in self._flat:
            return None
        return self._coord_of(self._flat.index(self._rank))

    def get_local_rank(self, mesh_dim=None) -> int:
        """This rank's index along ``mesh_dim`` (name or int; may be omitted for a 1-D mesh)."""
        coord = self.get_coordinate()
        if coord is None:
            raise RuntimeError(f"DeviceMesh: rank {self._rank} is not in this mesh")
        return coord[self._dim(mesh_dim)]

    def get_rank(self) -> int:
        """This process's global rank."""
        return self._rank

    def get_group(self, mesh_dim=None):
        """The ProcessGroup of this rank's line along ``mesh_dim`` (name or int; may be omitted for 1-D)."""
        g = self._groups[self._dim(mesh_dim)]
        if g is None:
            raise RuntimeError(f"DeviceMesh: rank {self._rank} is not in this mesh")
        return g

    def get_all_groups(self) -> list:
        return [self.get_group(d) for d in range(self.ndim)]

    def __getitem__(self, names) -> "DeviceMesh":
        """The sub-mesh over the named dimension(s) that contains this rank."""
        if isinstance(names, str):
            names = (names,)
        dims = [self._dim(n) for n in names]
        if dims == list(range(self.ndim)):
            return self
        coord = self.get_coordinate()
        if coord is None:
            raise RuntimeError(f"DeviceMesh: rank {self._rank} is not in this mesh")
        sub_shape = [self._shape[d] for d in dims]
        ranks = []
        for idx in itertools.product(*[range(n) for n in sub_shape]):
            c = list(coord)
            for d, i in zip(dims, idx):
                c[d] = i
            ranks.append(self._flat[self._index(c)])
        nested = ranks
        for n in reversed(sub_shape[1:]):
            nested = [nested[i:i + n] for i in range(0, len(nested), n)]
        return DeviceMesh(self.device_type, nested, mesh_dim_names=tuple(names))

    def _flatten(self, *args, **kwargs):
        raise NotImplementedError("torch.distributed.device_mesh.DeviceMesh._flatten is not implemented by the shim")

    @staticmethod
    def from_group(group, device_type: str, mesh=None, *, mesh_dim_names=None) -> "DeviceMesh":
        """A 1-D mesh over one ProcessGroup's ranks (several groups: ``NotImplementedError``)."""
        if isinstance(group, (list, tuple)):
            if len(group) != 1:
                raise NotImplementedError("torch.distributed.device_mesh.DeviceMesh.from_group with several "
                                          "groups is not implemented by the shim")
            group = group[0]
        ranks = _dist().get_process_group_ranks(group)
        return DeviceMesh(device_type, ranks if mesh is None else mesh, mesh_dim_names=mesh_dim_names)

    def __eq__(self, other) -> bool:
        return (isinstance(other, DeviceMesh) and self._flat == other._flat and self._shape == other._shape
                and self.mesh_dim_names == other.mesh_dim_names and self.device_type == other.device_type)

    def __hash__(self) -> int:
        return hash((tuple(self._flat), self._shape, self.mesh_dim_names, self.device_type))

    def __repr__(self) -> str:
        names = f", mesh_dim_names={self.mesh_dim_names}" if self.mesh_dim_names else ""
        return f"DeviceMesh('{self.device_type}', {self.mesh.tolist()}{names})"


def init_device_mesh(device_type: str, mesh_shape: Sequence[int], *,
                     mesh_dim_names: Optional[Sequence[str]] = None, backend_override=None) -> DeviceMesh:
    """A mesh of ``mesh_shape`` over ranks ``0..prod(mesh_shape)-1`` in row-major order; initialises the default
    process group (``init_process_group()``, the launcher's environment) when it is not yet.
    ``backend_override`` is not supported (``NotImplementedError``)."""
    if backend_override is not None:
        raise NotImplementedError("torch.distributed.device_mesh.init_device_mesh(backend_override=...) is not "
                                  "implemented by the shim")
    mesh_shape = tuple(int(n) for n in mesh_shape)
    dist = _dist()
    if not dist.is_initialized():
        dist.init_process_group()
    total = math.prod(mesh_shape)
    flat = list(range(total))
    nested = flat
    for n in reversed(mesh_shape[1:]):
        nested = [nested[i:i + n] for i in range(0, len(nested), n)]
    return DeviceMesh(device_type, nested, mesh_dim_names=mesh_dim_names)
