"""``torch.distributed.tensor``: placements, ``DeviceMesh`` re-export and the ``DTensor`` type.

What works: the placement types (:mod:`.placement_types`), ``DeviceMesh``/``init_device_mesh`` (from
``torch.distributed.device_mesh``), shard shape arithmetic (:mod:`._utils`), and ``DTensor`` as a type, so the
``isinstance(x, DTensor)`` checks that libraries (HF transformers, accelerate) make on their non-tensor-parallel
path answer False for ordinary tensors. Creating distributed tensors — ``DTensor(...)``,
``DTensor.from_local``, ``distribute_tensor``, ``distribute_module`` — raises ``NotImplementedError`` naming
the API: the shim has no sharded-tensor dispatch (tensor parallelism runs through megatron-core instead).
"""
from __future__ import annotations

from ..device_mesh import DeviceMesh, init_device_mesh
from .placement_types import Partial, Placement, Replicate, Shard
from ..._unsupported import module_getattr as _module_getattr

__all__ = ["DTensor", "DeviceMesh", "init_device_mesh", "Placement", "Shard", "Replicate", "Partial",
           "distribute_tensor", "distribute_module"]


def _unsupported(api: str):
    raise NotImplementedError(f"{api} is not implemented by the shim (no sharded-tensor dispatch; "
                              "see shim/torch/distributed/tensor/__init__.py)")


class DTensor:
    """The distributed tensor type. Exists for ``isinstance``/``issubclass`` checks; constructing one
    (directly or through :meth:`from_local`) raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        _unsupported("torch.distributed.tensor.DTensor")

    @staticmethod
    def from_local(*args, **kwargs):
        _unsupported("torch.distributed.tensor.DTensor.from_local")


def distribute_tensor(*args, **kwargs):
    _unsupported("torch.distributed.tensor.distribute_tensor")


def distribute_module(*args, **kwargs):
    _unsupported("torch.distributed.tensor.distribute_module")


__getattr__ = _module_getattr("torch.distributed.tensor")
