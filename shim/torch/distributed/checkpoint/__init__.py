"""``torch.distributed.checkpoint`` (DCP) is **not implemented** by the shim.

Only the names megatron-core imports at module level outside ``try`` blocks exist (``default_planner``, so
that ``import megatron.core.optimizer`` works); constructing anything from them raises ``NotImplementedError``
naming it. Every other attribute raises the facade's ``UnsupportedAPI`` (a NotImplementedError that is also an
AttributeError, so ``from torch.distributed.checkpoint import X`` inside ``try/except ImportError`` falls
back as it does when torch lacks X). Checkpoints that need DCP (megatron's ``torch_dist`` format) need a real
implementation here first.
"""
from ..._unsupported import module_getattr as _module_getattr
from . import default_planner  # noqa: F401

__all__ = ["default_planner"]
__getattr__ = _module_getattr("torch.distributed.checkpoint")
