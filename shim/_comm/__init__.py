"""The MindSpore communication core under ``torch.distributed`` (``shim/torch/distributed``).

Layers: :mod:`.table` (backend names; which collectives are native vs emulated per platform),
:mod:`.store` (the launcher's rendezvous store), :mod:`.world` (joining the job, the world, groups with
deterministic names), :mod:`.hostnet` (direct TCP byte exchanges between a group's processes), :mod:`.ops` (collectives on ``mindspore.Tensor``, native or emulated), :mod:`.p2p`
(queued point-to-point transfers); each imports only those before it. What the core knows about the job
(groups, primitives, arrival counts, the point-to-point queue) is one object, ``world.CommState``, which
``world.destroy()`` replaces whole. Nothing here knows the facade's Tensor type.
"""
from . import table  # noqa: F401  (cheap; no MindSpore import)

__all__ = ["table"]
