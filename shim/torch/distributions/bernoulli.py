"""torch.distributions.Bernoulli(probs=None, logits=None): 0/1 outcomes, batched over the parameter's shape."""
from __future__ import annotations

import numbers

from .. import bernoulli, exp, log1p
from ..autograd.grad_mode import no_grad
from .._tensor import Size, Tensor
from .distribution import Distribution
from .utils import broadcast_all, logits_to_probs, probs_to_logits

__all__ = ["Bernoulli"]


def _bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Elementwise binary cross-entropy with logits, (1 - target) * x - logsigmoid(x) (torch's formula), with
    logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)) (stable for large |x|)."""
    return (1 - target) * logits - (logits.clamp(max=0) - log1p(exp(-logits.abs())))


class Bernoulli(Distribution):
    """Bernoulli with exactly one of `probs` (in [0, 1]) or `logits` (log-odds); the other is derived as torch
    does (logits from probs clamped to [eps, 1 - eps]).

    `sample` draws `torch.bernoulli(probs)` of the extended shape (torch's draws: equal values under the same
    seed); samples have the parameter's float dtype. `log_prob(value)` is `-BCEWithLogits(logits, value)`;
    values other than 0/1 raise ValueError while validation is on."""

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        given = probs if probs is not None else logits
        (param,) = broadcast_all(given)
        if probs is not None:
            self.probs = param
            self.logits = probs_to_logits(param, is_binary=True)
        else:
            self.logits = param
            self.probs = logits_to_probs(param, is_binary=True)
        self._param = param
        batch = Size() if isinstance(given, numbers.Number) else param.size()
        super().__init__(batch, validate_args=validate_args)
        if probs is not None:
            self._check("probs", (param >= 0) & (param <= 1), "Interval(lower_bound=0.0, upper_bound=1.0)")
        else:
            self._check("logits", param == param, "Real()")

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        mode = (self.probs >= 0.5).to(self.probs)
        mode[self.probs == 0.5] = float("nan")
        return mode

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with no_grad():
            return bernoulli(self.probs.expand(shape))

    def log_prob(self, value) -> Tensor:
        self._check_value(value, lambda: (value == 0) | (value == 1), "Boolean()")
        logits, value = broadcast_all(self.logits, value)
        return -_bce_with_logits(logits, value)

    def entropy(self) -> Tensor:
        return _bce_with_logits(self.logits, self.probs)

    def __repr__(self) -> str:
        name = "probs" if self._param is self.probs else "logits"
        return f"Bernoulli({name}: {self._param.size()})"
