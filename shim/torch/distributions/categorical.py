"""torch.distributions.Categorical(probs=None, logits=None): one of K categories per batch element."""
from __future__ import annotations

from .. import broadcast_tensors, finfo, full, multinomial
from ..autograd.grad_mode import no_grad
from .._tensor import Size, Tensor
from .distribution import Distribution
from .utils import logits_to_probs, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """Categorical over the last dimension (K) of `probs` (non-negative, normalised here) or `logits`
    (normalised to log-probabilities with logsumexp); batch_shape is the parameter's shape without the last
    dimension.

    `sample` draws `torch.multinomial(probs_2d, n, replacement=True)` (torch's draws: equal int64 values under the
    same seed); `log_prob(value)` gathers the normalised logits at the integer `value`s (broadcast against the
    batch); `entropy` is `-sum(p * logits)` with logits clamped to the dtype's minimum."""

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        param = probs if probs is not None else logits
        if not isinstance(param, Tensor) or param.dim() < 1:
            name = "probs" if probs is not None else "logits"
            raise ValueError(f"`{name}` parameter must be at least one-dimensional.")
        if probs is not None:
            self.probs = probs / probs.sum(-1, keepdim=True)
            self.logits = probs_to_logits(self.probs)
        else:
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            self.probs = logits_to_probs(self.logits)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = param.size()[-1]
        super().__init__(param.size()[:-1], validate_args=validate_args)
        if probs is not None:
            self._check("probs", probs >= 0, "Simplex()")
        else:
            self._check("logits", logits == logits, "IndependentConstraint(Real(), 1)")

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return full(self._extended_shape(), float("nan"), dtype=self.probs.dtype, device=self.probs.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(dim=-1)

    @property
    def variance(self) -> Tensor:
        return full(self._extended_shape(), float("nan"), dtype=self.probs.dtype, device=self.probs.device)

    def sample(self, sample_shape=Size()) -> Tensor:
        if not isinstance(sample_shape, Size):
            sample_shape = Size(sample_shape)
        with no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            draws = multinomial(probs_2d, sample_shape.numel(), True).T
            return draws.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value) -> Tensor:
        def ok():
            integral = value == value.floor() if value.is_floating_point() else value == value
            return (value >= 0) & (value < self._num_events) & integral
        self._check_value(value, ok, f"IntegerInterval(lower_bound=0, upper_bound={self._num_events - 1})")
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self) -> Tensor:
        logits = self.logits.clamp(min=finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def __repr__(self) -> str:
        name = "probs" if self._param is self.probs else "logits"
        return f"Categorical({name}: {self._param.size()})"
