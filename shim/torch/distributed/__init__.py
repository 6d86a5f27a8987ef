"""``torch.distributed`` served by MindSpore communication (see ``distributed_c10d`` for the API and
``shim/_comm`` for the core). ``python -m torch.distributed.run`` / ``torchrun`` and
``python -m torch.distributed.launch`` are :mod:`.run` and :mod:`.launch` (the shim's launcher)."""
from .distributed_c10d import *  # noqa: F401,F403
from .distributed_c10d import (  # noqa: F401  (private names megatron-core and torch code reach for)
    _all_gather_base,
    _coalescing_manager,
    _CoalescingManager,
    _get_default_group,
    _reduce_scatter_base,
    _world,
)
from .distributed_c10d import __all__ as _c10d_all
from ._grad_bucket import GradBucket  # noqa: F401

__all__ = list(_c10d_all) + ["GradBucket"]

from .._unsupported import module_getattr as _module_getattr  # noqa: E402

# Anything else (torch.distributed.checkpoint, _coalescing_manager, device_mesh, ...) is named in a
# NotImplementedError (also an AttributeError, so hasattr() probes answer False).
__getattr__ = _module_getattr("torch.distributed", " (see shim/torch/distributed/distributed_c10d.py for what is)")
