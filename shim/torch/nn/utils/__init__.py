"""`torch.nn.utils` for the facade: gradient clipping and parameter/vector conversion."""
from . import clip_grad
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

__all__ = ["clip_grad", "clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_", "parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """One flat tensor with all ``parameters`` concatenated (each flattened)."""
    from ... import cat
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of flat ``vec`` into ``parameters`` (in place, shapes preserved)."""
    from ...autograd.grad_mode import no_grad
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset:offset + n].view_as(p))
            offset += n
    if offset != vec.numel():
        raise ValueError(f"vector_to_parameters: vector has {vec.numel()} elements, parameters take {offset}")


from ..._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn.utils")
