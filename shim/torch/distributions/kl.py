"""torch.distributions.kl: `kl_divergence(p, q)` for registered pairs, `register_kl` to add pairs.

Pairs provided (closed forms as torch's, elementwise over the broadcast batch): Normal‖Normal, Bernoulli‖Bernoulli
(inf where q gives zero probability to an outcome p can produce), Categorical‖Categorical (summed over
categories, same inf rule), Uniform‖Uniform (inf unless p's interval lies inside q's). Dispatch picks the most
specific registered pair by the classes' method resolution order (subclasses match their bases' entries). An
unregistered pair raises NotImplementedError naming both classes, as torch does.
"""
from __future__ import annotations

from .. import exp, log1p
from .bernoulli import Bernoulli
from .categorical import Categorical
from .normal import Normal
from .uniform import Uniform

__all__ = ["kl_divergence", "register_kl"]

_KL: dict = {}


def register_kl(type_p, type_q):
    """Decorator registering `fn(p, q)` as KL(p ‖ q) for instances of (type_p, type_q)."""
    def deco(fn):
        _KL[type_p, type_q] = fn
        return fn
    return deco


def _lookup(tp, tq):
    for i, a in enumerate(tp.__mro__):
        for j, b in enumerate(tq.__mro__):
            if (a, b) in _KL:
                return _KL[a, b]
    return None


def kl_divergence(p, q):
    """KL(p ‖ q), a tensor of the batch shape. NotImplementedError for a pair without a registered formula."""
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fn(p, q)


def _softplus(x):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): within an ulp of torch's softplus (the facade's
    nn.functional.softplus rests on MindSpore's kernel, which differs from torch's by ~1e-6 relative, too much for
    the cancellation in the Bernoulli KL)."""
    return x.clamp(min=0) + log1p(exp(-x.abs()))


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (_softplus(-q.logits) - _softplus(-p.logits))
    t1[q.probs == 0] = float("inf")
    t1[p.probs == 0] = 0
    t2 = (1 - p.probs) * (_softplus(q.logits) - _softplus(p.logits))
    t2[q.probs == 1] = float("inf")
    t2[p.probs == 1] = 0
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t[(q.probs == 0).expand_as(t)] = float("inf")
    t[(p.probs == 0).expand_as(t)] = 0
    return t.sum(-1)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    result[(q.low > p.low) | (q.high < p.high)] = float("inf")
    return result
