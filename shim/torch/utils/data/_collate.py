"""`default_collate` / `default_convert` (torch's rules): tensors are stacked, NumPy arrays and NumPy scalars
become tensors and are stacked, Python floats become a float64 tensor, ints an int64 tensor (bools a bool
tensor), strings stay a list, mappings / namedtuples / sequences are collated field by field."""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

__all__ = ["default_collate", "default_convert"]


def _torch():
    """The facade package (``shim.torch``), imported lazily."""
    import importlib
    return importlib.import_module(__name__.rsplit(".utils.data", 1)[0])


def default_convert(data):
    """Convert NumPy arrays (not of string/object dtype) inside ``data`` to tensors; everything else
    unchanged."""
    torch = _torch()
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray) and data.dtype.kind not in "SaUO":
        return torch.as_tensor(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "SaUO":
        return torch.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        if type(data) is dict:
            return converted
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Collate a list of samples into a batch (torch's `default_collate`).

    Raises TypeError naming the element type when a sample is of an unsupported type, and RuntimeError when
    the sequences in a batch differ in length.
    """
    torch = _torch()
    elem = batch[0]
    if isinstance(elem, torch.Tensor):
        return torch.stack(list(batch), 0)
    if isinstance(elem, np.ndarray) and elem.dtype.kind not in "SaUO":
        return torch.stack([torch.as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.ndarray):
        raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                        f"found numpy array of dtype {elem.dtype}")
    if isinstance(elem, np.generic):
        return torch.as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return torch.tensor(batch)
    if isinstance(elem, float):
        return torch.tensor(batch, dtype=torch.float64)
    if isinstance(elem, int):
        return torch.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        if type(elem) is dict:
            return collated
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        size = len(next(it))
        if not all(len(e) == size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [default_collate(samples) for samples in transposed]
        try:
            return type(elem)([default_collate(samples) for samples in transposed])
        except TypeError:
            return [default_collate(samples) for samples in transposed]
    if isinstance(elem, numbers.Number):
        return torch.tensor(batch)
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem)}")
