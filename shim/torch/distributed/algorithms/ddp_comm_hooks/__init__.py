"""``torch.distributed.algorithms.ddp_comm_hooks``: DDP communication hooks.

Implemented: :mod:`.default_hooks` (``allreduce_hook``, ``fp16_compress_hook``, ``bf16_compress_hook`` and their
wrappers) and :mod:`.debugging_hooks` (``noop_hook``), called by the facade's
``DistributedDataParallel.register_comm_hook`` on each gradient bucket. :mod:`.powerSGD_hook` and
:mod:`.quantization_hooks` are importable; their hooks raise ``NotImplementedError``. ``DDPCommHookType`` and
``register_ddp_comm_hook`` are torch's enumeration and helper: ``DDPCommHookType.X.value(model=ddp, state=pg)``
registers hook X on ``ddp``. torch's ``optimizer_overlap_hooks``, ``mixed_precision_hooks``,
``post_localSGD_hook`` and ``ddp_zero_hook`` are not provided (importing them raises ``ModuleNotFoundError`` naming
the module).
"""
from enum import Enum, member
from functools import partial

from . import debugging_hooks as debugging
from . import default_hooks as default
from . import powerSGD_hook as powerSGD
from . import quantization_hooks as quantization

__all__ = ["DDPCommHookType", "register_ddp_comm_hook"]


def _register(comm_hook, model, state):
    model.register_comm_hook(state, comm_hook)


def _register_power_sgd(comm_hook, model, state, matrix_approximation_rank, start_powerSGD_iter=1_000):
    powerSGD_state = powerSGD.PowerSGDState(process_group=state, matrix_approximation_rank=matrix_approximation_rank,
                                            start_powerSGD_iter=start_powerSGD_iter)  # raises NotImplementedError
    model.register_comm_hook(powerSGD_state, comm_hook)


class DDPCommHookType(Enum):
    """The hooks by name; each value registers its hook: ``DDPCommHookType.ALLREDUCE.value(model=ddp, state=pg)``."""

    ALLREDUCE = member(partial(_register, comm_hook=default.allreduce_hook))
    FP16_COMPRESS = member(partial(_register, comm_hook=default.fp16_compress_hook))
    BF16_COMPRESS = member(partial(_register, comm_hook=default.bf16_compress_hook))
    QUANTIZE_PER_TENSOR = member(partial(_register, comm_hook=quantization.quantization_pertensor_hook))
    QUANTIZE_PER_CHANNEL = member(partial(_register, comm_hook=quantization.quantization_perchannel_hook))
    POWER_SGD = member(partial(_register_power_sgd, comm_hook=powerSGD.powerSGD_hook, matrix_approximation_rank=1))
    POWER_SGD_RANK2 = member(partial(_register_power_sgd, comm_hook=powerSGD.powerSGD_hook,
                                     matrix_approximation_rank=2))
    BATCHED_POWER_SGD = member(partial(_register_power_sgd, comm_hook=powerSGD.batched_powerSGD_hook,
                                       matrix_approximation_rank=1))
    BATCHED_POWER_SGD_RANK2 = member(partial(_register_power_sgd, comm_hook=powerSGD.batched_powerSGD_hook,
                                             matrix_approximation_rank=2))
    NOOP = member(partial(_register, comm_hook=debugging.noop_hook))


def register_ddp_comm_hook(comm_hook_type: DDPCommHookType, model, state=None):
    """Register the hook named by ``comm_hook_type`` on the DDP ``model`` with ``state`` (a process group, or
    None for the default group)."""
    if not isinstance(comm_hook_type, DDPCommHookType):
        raise TypeError(f"register_ddp_comm_hook: comm_hook_type must be a DDPCommHookType, "
                        f"got {type(comm_hook_type).__name__}")
    comm_hook_type.value(model=model, state=state)
