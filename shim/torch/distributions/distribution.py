"""torch.distributions.distribution.Distribution: the base the facade's distributions share.

Shapes follow torch: `sample(sample_shape)` returns `sample_shape + batch_shape + event_shape`; parameters given as
Python numbers become tensors of the default dtype (or of the other parameter's dtype), broadcast together.
Argument validation is on by default as in torch (`validate_args=None` means the class default,
`Distribution.set_default_validate_args(False)` turns it off): invalid parameters or `log_prob` values raise
ValueError naming the distribution, the argument and the constraint. Attributes torch has that the facade does not
(`support`, `arg_constraints`, `enumerate_support`, `expand`, ...) raise UnsupportedAPI naming them.
"""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from .._tensor import Size, Tensor
from .._unsupported import UnsupportedAPI

__all__ = ["Distribution"]


class Distribution:
    """torch.distributions.Distribution (base): batch/event shapes, sample via rsample, validation switch."""

    has_rsample = False
    has_enumerate_support = False
    _validate_default = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turns argument validation on or off for distributions created afterwards without validate_args."""
        if value not in (True, False):
            raise ValueError("set_default_validate_args expects a bool")
        Distribution._validate_default = value

    def __init__(self, batch_shape=Size(), event_shape=Size(), validate_args=None) -> None:
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        self._validate_args = Distribution._validate_default if validate_args is None else bool(validate_args)

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def _extended_shape(self, sample_shape=Size()) -> Size:
        if not isinstance(sample_shape, (tuple, list, Size)):
            raise TypeError(f"sample_shape must be a tuple or torch.Size, got {type(sample_shape).__name__}")
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def sample(self, sample_shape=Size()) -> Tensor:
        """A sample without gradient (rsample under no_grad unless the distribution overrides it)."""
        with no_grad():
            return self.rsample(sample_shape)

    def sample_n(self, n) -> Tensor:
        return self.sample(Size((n,)))

    def rsample(self, sample_shape=Size()) -> Tensor:
        raise UnsupportedAPI(f"torch.distributions.{type(self).__name__}.rsample is not implemented "
                             "(the distribution has no reparameterised sampler)")

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def _check(self, name: str, ok, constraint: str) -> None:
        """ValueError unless every element of the bool tensor `ok` is True."""
        if self._validate_args and not bool(ok.all().item()):
            raise ValueError(f"Expected parameter {name} of distribution {type(self).__name__} to satisfy the "
                             f"constraint {constraint}, but found invalid values")

    def _check_value(self, value, ok, support: str) -> None:
        """While validating: ValueError unless `value` is a tensor and `ok()` (a bool tensor) is all True."""
        if not self._validate_args:
            return
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        if not bool(ok().all().item()):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to "
                             f"be within the support ({support}) of the distribution {type(self).__name__}, "
                             "but found invalid values")

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") or name.startswith("_"):
            raise AttributeError(name)
        raise UnsupportedAPI(f"torch.distributions.{type(self).__name__}.{name} is not implemented by the shim")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

