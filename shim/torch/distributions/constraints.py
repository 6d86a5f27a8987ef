"""``torch.distributions.constraints``: the matrix constraints (``positive_definite``, ``symmetric``).

``check(value)`` takes a float tensor of shape ``(..., n, n)`` and returns a bool tensor of shape ``(...)``.
The test runs on the host in float64 NumPy (MindSpore's CPU target has no batched Cholesky the facade exposes):
symmetric within torch's tolerance (``allclose(A, A^T, atol=1e-6)``) and, for ``positive_definite``, a Cholesky
factorisation that succeeds — torch's own criterion. Other constraints raise ``NotImplementedError``.
"""
from __future__ import annotations

import numpy as np

from .._unsupported import module_getattr as _module_getattr

__all__ = ["Constraint", "symmetric", "positive_definite"]


class Constraint:
    """A constraint on values; ``check`` returns a bool tensor per event."""
    is_discrete = False
    event_dim = 2

    def check(self, value):
        raise NotImplementedError


def _host_matrices(value, api: str) -> np.ndarray:
    if value.dim() < 2 or value.shape[-1] != value.shape[-2]:
        raise ValueError(f"{api}.check: expected a tensor of square matrices (..., n, n), got shape "
                         f"{tuple(value.shape)}")
    return value.detach().cpu().numpy().astype(np.float64)


def _result(flags: np.ndarray, like):
    from .. import _ops  # noqa: F401  (facade loaded)
    import shim.torch as torch
    return torch.tensor(flags, dtype=torch.bool)


def _is_symmetric(a: np.ndarray) -> np.ndarray:
    return np.isclose(a, np.swapaxes(a, -1, -2), atol=1e-6, rtol=1e-5).all(axis=(-1, -2))


class _Symmetric(Constraint):
    def check(self, value):
        a = _host_matrices(value, "torch.distributions.constraints.symmetric")
        return _result(_is_symmetric(a), value)


class _PositiveDefinite(Constraint):
    def check(self, value):
        a = _host_matrices(value, "torch.distributions.constraints.positive_definite")
        sym = _is_symmetric(a)
        flat = a.reshape((-1,) + a.shape[-2:])
        ok = np.empty(flat.shape[0], dtype=bool)
        for i, m in enumerate(flat):
            try:
                np.linalg.cholesky(m)
                ok[i] = True
            except np.linalg.LinAlgError:
                ok[i] = False
        return _result(sym & ok.reshape(a.shape[:-2]), value)


symmetric = _Symmetric()
positive_definite = _PositiveDefinite()

__getattr__ = _module_getattr("torch.distributions.constraints")
