"""torch._utils: the private helpers third-party code uses (megatron-core: _flatten_dense_tensors,
_unflatten_dense_tensors, _element_size)."""
from __future__ import annotations

__all__ = ["_flatten_dense_tensors", "_unflatten_dense_tensors", "_rebuild_tensor_v2", "_element_size"]


def _element_size(dtype) -> int:
    """Bytes per element of torch dtype `dtype` (torch's sizes: bfloat16 2, even where the facade's CPU storage
    emulates it in float32). RuntimeError for anything that is not a torch.dtype, as torch."""
    from ._dtype import dtype as _dtype_cls
    if not isinstance(dtype, _dtype_cls):
        raise RuntimeError(f"expected torch.dtype, but got {type(dtype)}")
    return dtype.itemsize


def _flatten_dense_tensors(tensors):
    """One contiguous 1-D tensor holding all `tensors` back to back (a copy, same dtype)."""
    from ._ops.shape import cat
    return cat([t.reshape(-1) for t in tensors], 0)


def _unflatten_dense_tensors(flat, tensors):
    """Views into `flat` shaped like each of `tensors` (inverse of _flatten_dense_tensors)."""
    out, offset = [], 0
    for t in tensors:
        n = t.numel()
        out.append(flat.narrow(0, offset, n).view(t.shape))
        offset += n
    return tuple(out)


def _rebuild_tensor_v2(*args, **kwargs):
    raise NotImplementedError("torch._utils._rebuild_tensor_v2 (pickled torch storages) is handled by "
                              "shim.torch.serialization, not here")
