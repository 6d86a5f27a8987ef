"""torch.distributions.Normal(loc, scale): the univariate Gaussian, batched over the broadcast parameter shape."""
from __future__ import annotations

import math
import numbers

from .. import empty, erf, erfinv, normal
from ..autograd.grad_mode import no_grad
from .._tensor import Size, Tensor
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["Normal"]


class Normal(Distribution):
    """Normal(loc, scale) with scale > 0 (float tensors or numbers, broadcast together).

    `sample` draws `torch.normal(loc, scale)` of the extended shape without gradient; `rsample` draws standard
    normals (`Tensor.normal_`) and returns `loc + eps * scale` (differentiable in loc and scale) — the same draws,
    hence the same values as torch under the same seed. `log_prob`, `cdf`, `icdf`, `entropy` are elementwise.
    """

    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        batch = Size() if isinstance(loc, numbers.Number) and isinstance(scale, numbers.Number) else self.loc.size()
        super().__init__(batch, validate_args=validate_args)
        self._check("scale", self.scale > 0, "GreaterThan(lower_bound=0.0)")

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def sample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with no_grad():
            return normal(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = empty(shape, dtype=self.loc.dtype, device=self.loc.device).normal_()
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        self._check_value(value, lambda: value == value, "Real()")
        var = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value) -> Tensor:
        self._check_value(value, lambda: value == value, "Real()")
        return 0.5 * (1 + erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value) -> Tensor:
        return self.loc + self.scale * erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()

    def __repr__(self) -> str:
        return f"Normal(loc: {self.loc.size()}, scale: {self.scale.size()})"
