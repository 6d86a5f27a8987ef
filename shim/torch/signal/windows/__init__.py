"""torch.signal.windows for the facade: window functions computed on the host.

Every window is a closed formula of the sample index (see each function); the facade evaluates it in NumPy
float64 and rounds once to the requested dtype (torch evaluates it in that dtype: the two agree to float32
round-off, |w| <= 1). The result is a new leaf tensor of shape (M,), dtype `dtype` (default: the default float
dtype), `requires_grad` as asked. Conventions shared by all windows, as torch's:
- `M` is the window length (int >= 0); M == 0 gives an empty tensor, M == 1 a single 1;
- `sym=True` gives the symmetric window (for filter design); `sym=False` the periodic one (for spectral
  analysis): the symmetric window of length M + 1 without its last sample.
Errors (ValueError, as torch): M < 0, a layout other than torch.strided, a non-floating dtype.
"""
from __future__ import annotations

import math

import numpy as np

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]


def _T():
    import shim.torch as T  # a cycle inside the facade: torch.signal is loaded from shim.torch lazily
    return T


def _checks(name, M, dtype, layout):
    T = _T()
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not None and layout is not T.strided:
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dtype}")


def _window(name, M, sym, dtype, layout, device, requires_grad, values, one_is_one=True):
    """Checks, then `values(n, L)` on the sample indices n = 0..L-1 of the symmetric window of length
    L (= M, or M + 1 for sym=False and M > 1), truncated to M samples. M == 1 gives [1.] when `one_is_one`
    (as torch's cosine-sum, Bartlett and Kaiser windows), else the formula's value at n = 0."""
    T = _T()
    _checks(name, M, dtype, layout)
    dt = dtype or T.get_default_dtype()
    if M == 0:
        arr = np.zeros((0,), np.float64)
    elif M == 1 and one_is_one:
        arr = np.ones((1,), np.float64)
    else:
        L = M if sym or M == 1 else M + 1
        arr = np.asarray(values(np.arange(L, dtype=np.float64), L), np.float64)[:M]
    return T.tensor(arr, dtype=dt, device=device, requires_grad=requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.general_cosine: w[n] = sum_k (-1)^k a[k] cos(2 pi k n / (L - 1)).
    `a`: the coefficients (an iterable of floats; TypeError if not iterable, ValueError if empty)."""
    if not hasattr(a, "__iter__"):
        raise TypeError(f"Coefficients must be a list/tuple, got {type(a).__name__}")
    a = [float(v) for v in a]
    if not a:
        raise ValueError("Coefficients cannot be empty")

    def values(n, L):
        x = 2.0 * math.pi * n / (L - 1)
        return sum(((-1) ** k) * c * np.cos(k * x) for k, c in enumerate(a))
    return _window("general_cosine", M, sym, dtype, layout, device, requires_grad, values)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.general_hamming: alpha - (1 - alpha) cos(2 pi n / (L - 1))."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.hamming: general_hamming with alpha = 0.54."""
    return general_hamming(M, alpha=0.54, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.hann: general_hamming with alpha = 0.5."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.blackman: general_cosine with a = (0.42, 0.5, 0.08)."""
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.nuttall: general_cosine with Nuttall's minimum 4-term Blackman-Harris coefficients
    a = (0.3635819, 0.4891775, 0.1365995, 0.0106411)."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype,
                          layout=layout, device=device, requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.bartlett (triangular): w[n] = 1 - |2 n / (L - 1) - 1|."""
    return _window("bartlett", M, sym, dtype, layout, device, requires_grad,
                   lambda n, L: 1.0 - np.abs(2.0 * n / (L - 1) - 1.0))


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.cosine (sine window): w[n] = sin(pi (n + 1/2) / L)."""
    return _window("cosine", M, sym, dtype, layout, device, requires_grad,
                   lambda n, L: np.sin(math.pi * (n + 0.5) / L))


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None,
                requires_grad=False):
    """torch.signal.windows.exponential: w[n] = exp(-|n - center| / tau); `center` defaults to (L - 1) / 2
    and may only be given for sym=False (ValueError otherwise, as torch); tau > 0 (ValueError)."""
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")

    def values(n, L):
        c = (L - 1) / 2.0 if center is None else float(center)
        return np.exp(-np.abs(n - c) / tau)
    return _window("exponential", M, sym, dtype, layout, device, requires_grad, values, one_is_one=False)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.gaussian: w[n] = exp(-((n - (L - 1) / 2) / std)^2 / 2); std > 0 (ValueError)."""
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    return _window("gaussian", M, sym, dtype, layout, device, requires_grad,
                   lambda n, L: np.exp(-0.5 * ((n - (L - 1) / 2.0) / std) ** 2))


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.signal.windows.kaiser: w[n] = I0(beta sqrt(1 - (2 n / (L - 1) - 1)^2)) / I0(beta) (I0: the
    modified Bessel function of order 0, NumPy's np.i0); beta >= 0 (ValueError)."""
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")

    def values(n, L):
        r = 2.0 * n / (L - 1) - 1.0
        return np.i0(beta * np.sqrt(np.clip(1.0 - r * r, 0.0, None))) / np.i0(beta)
    return _window("kaiser", M, sym, dtype, layout, device, requires_grad, values)


__getattr__ = _module_getattr("torch.signal.windows")
