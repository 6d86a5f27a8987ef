"""``torch.distributed.GradBucket``: what a DDP communication hook receives (torch's C++ type
``torch._C._distributed_c10d.GradBucket``, written here in Python).

A bucket is a group of parameters whose gradients are reduced together. ``buffer()`` is one flat 1-D tensor of the
bucket's dtype holding the gradients of ``parameters()`` one after another (a parameter without a gradient
contributes zeros); ``gradients()`` are views of that buffer, one per parameter, in the parameters' shapes, so a
write through a view changes the buffer and the reverse; ``set_buffer(t)`` replaces the buffer (the compress
wrappers put a half-precision copy there) and later ``gradients()`` view the new one. ``index()`` numbers the
buckets in the order DDP reduces them; ``is_last()`` is True for the last one of the backward pass (the
parameters that the forward pass used first).

Constructed by ``torch.nn.parallel.DistributedDataParallel`` only (as in torch, where the type has no public
constructor).
"""
from __future__ import annotations

from typing import List

from .._tensor import Tensor

__all__ = ["GradBucket"]


class GradBucket:
    """One bucket of gradients handed to a communication hook (see the module docstring)."""

    def __init__(self, index: int, is_last: bool, buffer: Tensor, parameters: List[Tensor]) -> None:
        self._index = int(index)
        self._is_last = bool(is_last)
        self._buffer = buffer
        self._parameters = list(parameters)
        self._sizes = [tuple(p.shape) for p in self._parameters]
        self._lengths = [p.numel() for p in self._parameters]

    def index(self) -> int:
        """Position of this bucket in DDP's reduction order (0 first)."""
        return self._index

    def is_last(self) -> bool:
        """Whether this is the last bucket reduced in the backward pass."""
        return self._is_last

    def buffer(self) -> Tensor:
        """The flat 1-D gradient buffer (numel = the sum of the parameters' numel)."""
        return self._buffer

    def set_buffer(self, buffer: Tensor) -> None:
        """Replace the buffer with ``buffer`` (a 1-D tensor of the same numel; its dtype may differ)."""
        if not isinstance(buffer, Tensor):
            raise TypeError(f"GradBucket.set_buffer: buffer must be a torch.Tensor, got {type(buffer).__name__}")
        if buffer.dim() != 1 or buffer.numel() != sum(self._lengths):
            raise ValueError(f"GradBucket.set_buffer: expected a 1-D tensor of {sum(self._lengths)} elements, "
                             f"got shape {tuple(buffer.shape)}")
        self._buffer = buffer

    def gradients(self) -> List[Tensor]:
        """One view of the buffer per parameter, in the parameter's shape."""
        out, offset = [], 0
        for n, shape in zip(self._lengths, self._sizes):
            out.append(self._buffer[offset:offset + n].view(shape))
            offset += n
        return out

    def parameters(self) -> List[Tensor]:
        """The parameters whose gradients the bucket holds, in buffer order."""
        return list(self._parameters)

    def __repr__(self) -> str:
        return (f"GradBucket(index={self._index}, is_last={self._is_last}, numel={self._buffer.numel()}, "
                f"dtype={self._buffer.dtype}, parameters={len(self._parameters)})")
