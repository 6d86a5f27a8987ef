"""torch.distributions: the common distributions at torch's paths.

Provided: `Normal`, `Uniform`, `Bernoulli`, `Categorical` (`torch.distributions.<name>` and their modules
`torch.distributions.normal` ...), `kl_divergence`/`register_kl` for pairs of those (`kl.py`), the base
`Distribution` and `utils`. Means, variances, log-probabilities and entropies are torch's formulas on the facade's
ops; samples use the same random calls as torch (normal/rand/bernoulli/multinomial on torch's CPU streams), so
under the same seed they equal torch's values. Any other distribution (`MultivariateNormal`, which needs
`torch.linalg.cholesky`; `Beta`, `Gamma`, `Dirichlet`, ...) or `torch.distributions.constraints`/`transforms`
raise UnsupportedAPI naming them.
"""
from __future__ import annotations

from .._unsupported import module_getattr
from . import utils  # noqa: F401
from . import constraints  # noqa: F401  (the matrix constraints; HF transformers imports the module)
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "kl_divergence", "register_kl"]

__getattr__ = module_getattr("torch.distributions")
