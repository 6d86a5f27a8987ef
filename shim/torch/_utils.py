"""torch._utils: the private helpers third-party code uses (megatron-core: _flatten_dense_tensors,
_unflatten_dense_tensors)."""
from __future__ import annotations

__all__ = ["_flatten_dense_tensors", "_unflatten_dense_tensors", "_rebuild_tensor_v2"]


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
