"""``torch.distributed.algorithms.ddp_comm_hooks.quantization_hooks``: not implemented by the shim; the hooks
raise ``NotImplementedError`` naming themselves when called."""
__all__ = ["quantization_pertensor_hook", "quantization_perchannel_hook"]

_WHERE = "torch.distributed.algorithms.ddp_comm_hooks.quantization_hooks"


def quantization_pertensor_hook(process_group, bucket):
    """Raises ``NotImplementedError``."""
    raise NotImplementedError(f"{_WHERE}.quantization_pertensor_hook is not implemented by the shim")


def quantization_perchannel_hook(process_group, bucket, bucket_size=512):
    """Raises ``NotImplementedError``."""
    raise NotImplementedError(f"{_WHERE}.quantization_perchannel_hook is not implemented by the shim")
