"""torch.distributions.utils: parameter helpers shared by the distributions (torch's semantics)."""
from __future__ import annotations

import numbers

from .. import broadcast_tensors, finfo, get_default_dtype, log, log1p, sigmoid, softmax, tensor
from .._tensor import Tensor

__all__ = ["broadcast_all", "clamp_probs", "logits_to_probs", "probs_to_logits"]


def broadcast_all(*values):
    """Numbers become tensors (dtype of the first tensor argument, else the default dtype), then all are
    broadcast together (torch.broadcast_tensors). ValueError for other argument types."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number or torch.Tensor.")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    dt = first.dtype if first is not None else get_default_dtype()
    return broadcast_tensors(*[v if isinstance(v, Tensor) else tensor(v, dtype=dt) for v in values])


def clamp_probs(probs: Tensor) -> Tensor:
    """probs clamped to [eps, 1 - eps] with eps the dtype's machine epsilon."""
    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) when binary, else softmax over the last dimension."""
    return sigmoid(logits) if is_binary else softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log(p) - log1p(-p) when binary, else log(p), of the clamped probabilities."""
    p = clamp_probs(probs)
    return log(p) - log1p(-p) if is_binary else log(p)
