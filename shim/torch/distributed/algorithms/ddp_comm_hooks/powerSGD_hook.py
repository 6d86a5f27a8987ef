"""``torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook``: PowerSGD gradient compression is not
implemented by the shim.

The names exist so that programs importing them (accelerate's ``DistributedDataParallelKwargs.register_comm_hook``
imports this module whatever hook it uses) load; constructing ``PowerSGDState`` or calling a hook raises
``NotImplementedError`` naming the API.
"""
__all__ = ["PowerSGDState", "powerSGD_hook", "batched_powerSGD_hook"]

_WHERE = "torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook"


class PowerSGDState:
    """Constructing one raises ``NotImplementedError``."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{_WHERE}.PowerSGDState is not implemented by the shim (use default_hooks: "
                                  f"allreduce_hook, fp16_compress_hook, bf16_compress_hook)")


def powerSGD_hook(state, bucket):
    """Raises ``NotImplementedError``."""
    raise NotImplementedError(f"{_WHERE}.powerSGD_hook is not implemented by the shim")


def batched_powerSGD_hook(state, bucket):
    """Raises ``NotImplementedError``."""
    raise NotImplementedError(f"{_WHERE}.batched_powerSGD_hook is not implemented by the shim")
