"""torch.distributions.Uniform(low, high): uniform on the half-open interval [low, high)."""
from __future__ import annotations

import numbers

from .. import full_like, log, rand
from .._tensor import Size, Tensor
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["Uniform"]


class Uniform(Distribution):
    """Uniform(low, high) with low < high, batched over the broadcast parameter shape.

    `rsample` is `low + torch.rand(shape) * (high - low)` (torch's draws and arithmetic, so equal values under the
    same seed); `sample` is the same without gradient. `log_prob` is `-log(high - low)` inside [low, high) and
    -inf outside (outside values raise ValueError while validation is on)."""

    has_rsample = True

    def __init__(self, low, high, validate_args=None) -> None:
        self.low, self.high = broadcast_all(low, high)
        batch = Size() if isinstance(low, numbers.Number) and isinstance(high, numbers.Number) else self.low.size()
        super().__init__(batch, validate_args=validate_args)
        self._check("low", self.low < self.high, "LessThan(high)")

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return full_like(self.high, float("nan"))

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = rand(shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        self._check_value(value, lambda: (self.low <= value) & (value < self.high), "Interval[low, high)")
        inside = self.low.le(value).type_as(self.low).mul(self.high.gt(value).type_as(self.low))
        return log(inside) - log(self.high - self.low)

    def cdf(self, value) -> Tensor:
        self._check_value(value, lambda: (self.low <= value) & (value < self.high), "Interval[low, high)")
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return log(self.high - self.low)

    def __repr__(self) -> str:
        return f"Uniform(low: {self.low.size()}, high: {self.high.size()})"
