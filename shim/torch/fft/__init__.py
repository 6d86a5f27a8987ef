"""torch.fft for the facade: the discrete Fourier transforms on MindSpore's FFT kernels (`mindspore.ops.fft`,
`rfft`, `irfft` and their 2-D / n-D forms, which have CPU kernels for float32/float64 and complex64/complex128
and gradients equal to torch's; the Hermitian transforms hfft*/ihfft* are computed through irfft*/rfft*, see
workaround "HFFT conj state"), and fftshift/ifftshift/fftfreq/rfftfreq composed from
facade ops.

Arguments and results follow torch: `n` / `s` the signal length(s) along the transformed dimension(s) (the
input is zero-padded or trimmed; -1 in `s` keeps that dimension's default), `dim` the dimension(s) (n-D forms:
all dimensions by default, or the last len(s) when only `s` is given), `norm` one of "backward" (default: no
scaling forward, 1/n inverse), "ortho" (1/sqrt(n) both ways), "forward" (1/n forward, none inverse).
Result dtypes: the complex transforms (fft, ifft, rfft, ihfft, …) give complex64 for float32 / integer inputs and
complex128 for float64; the real-output ones (irfft, hfft, …) float32 / float64. Integer and bool inputs are
transformed as the default float dtype (as torch). bfloat16/float16 inputs raise RuntimeError (torch's CPU has no
half-precision FFT). Errors: ValueError for an unknown `norm`; IndexError for a dimension out of range;
RuntimeError for a non-positive length or repeated dimensions.

The facade's complex tensors carry MindSpore complex storage: the FFT results can be fed to further FFTs,
reshaped and indexed; most other ops on complex tensors are not served (they raise NotImplementedError).
"""
from __future__ import annotations

import mindspore as ms
from mindspore import ops

from .. import _dtype as D
from .._args import norm_dim
from .._tensor import Tensor, unwrap, wrap
from .._unsupported import module_getattr as _module_getattr

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "hfft2", "ihfft2",
           "fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn", "fftshift", "ifftshift", "fftfreq", "rfftfreq"]

_NORMS = (None, "backward", "ortho", "forward")
_COMPLEX_OF = {"float32": D.complex64, "float64": D.complex128, "complex64": D.complex64,
               "complex128": D.complex128}
_REAL_OF = {"float32": D.float32, "float64": D.float64, "complex64": D.float32, "complex128": D.float64}


def _prepare(name, input, norm):
    """(MindSpore operand, its torch dtype name) after checks; integers/bools become the default float dtype."""
    if not isinstance(input, Tensor):
        raise TypeError(f"torch.fft.{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if norm not in _NORMS:
        raise ValueError(f"Invalid normalization mode: {norm}")
    dt = input._dt
    if dt._cat in (D._BOOL, D._INT):
        return unwrap(input.to(D.get_default_dtype())), str(D.get_default_dtype()).replace("torch.", "")
    name_ = str(dt).replace("torch.", "")
    if name_ not in _COMPLEX_OF:
        raise RuntimeError(f"torch.fft.{name}: unsupported dtype {dt} (the CPU FFT takes float32, float64, "
                           f"complex64, complex128)")
    return unwrap(input), name_


def _dims_sizes(name, input, s, dim, default_all):
    """torch's (s, dim) resolution for the 2-D / n-D forms: explicit non-negative dims always (MindSpore's
    backward crashes when `s` comes without `dim`, workaround "FFTN s without dim"), s with -1 entries kept as
    None-per-dim (the op's default)."""
    nd = input.dim()
    if dim is None:
        if s is None:
            dims = list(range(nd)) if default_all else [nd - 2, nd - 1]
        else:
            dims = list(range(nd - len(s), nd))
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
        dims = [norm_dim(d, nd) for d in dims]
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"torch.fft.{name}: dims must be unique, got {tuple(dims)}")
    if s is not None:
        s = list(s)
        if len(s) != len(dims):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
        for v in s:
            if v != -1 and v < 1:
                raise RuntimeError(f"Invalid number of data points ({v}) specified")
    return s, dims


def _one(msfn, name, complex_out):
    def f(input, n=None, dim=-1, norm=None, *, out=None):
        m, dn = _prepare(name, input, norm)
        d = norm_dim(dim, input.dim())
        if n is not None and n < 1:
            raise RuntimeError(f"Invalid number of data points ({n}) specified")
        r = msfn(m, n=n, dim=d, norm=norm)
        res = wrap(r, dtype=(_COMPLEX_OF if complex_out else _REAL_OF)[dn], device=input.device)
        if out is not None:
            out.copy_(res)
            return out
        return res
    f.__name__ = name
    f.__doc__ = (f"torch.fft.{name}(input, n=None, dim=-1, norm=None): the one-dimensional "
                 f"{_WHAT[name]} along `dim` (MindSpore's FFT kernels); see the module docstring for arguments, "
                 f"dtypes and errors.")
    return f


def _many(msfn, name, complex_out, default_all, last_is_half=False):
    def f(input, s=None, dim=None if default_all else (-2, -1), norm=None, *, out=None):
        m, dn = _prepare(name, input, norm)
        s2, dims = _dims_sizes(name, input, s, dim, default_all)
        if s2 is not None and -1 in s2:
            shape = tuple(input.shape)
            s2 = [(shape[d] if not (last_is_half and i == len(dims) - 1) else 2 * (shape[d] - 1)) if v == -1 else v
                  for i, (v, d) in enumerate(zip(s2, dims))]
        # workaround "FFTN s without dim": dims are always passed explicitly
        r = msfn(m, s=None if s2 is None else tuple(s2), dim=tuple(dims), norm=norm)
        res = wrap(r, dtype=(_COMPLEX_OF if complex_out else _REAL_OF)[dn], device=input.device)
        if out is not None:
            out.copy_(res)
            return out
        return res
    f.__name__ = name
    base = name.rstrip("2n")
    f.__doc__ = (f"torch.fft.{name}(input, s=None, dim={'None' if default_all else '(-2, -1)'}, norm=None): the "
                 f"{'2-D' if name.endswith('2') else 'n-D'} {_WHAT[base]} over `dim` (MindSpore's FFT kernels); "
                 f"see the module docstring for arguments, dtypes and errors.")
    return f


_WHAT = {"fft": "discrete Fourier transform", "ifft": "inverse discrete Fourier transform",
         "rfft": "Fourier transform of a real signal (the n // 2 + 1 non-negative frequencies)",
         "irfft": "inverse of rfft (a real signal from its one-sided spectrum; default n = 2 (m - 1))",
         "hfft": "Fourier transform of a Hermitian-symmetric signal given by its one-sided half (real result)",
         "ihfft": "inverse of hfft (the one-sided half of a real signal's inverse transform)"}

_SWAP = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _conj(m):
    return ops.conj(m) if m.dtype in (ms.complex64, ms.complex128) else m


# workaround "HFFT conj state": MindSpore's Hermitian kernels (hfft* of a complex input, ihfft*) return the
# conjugate of their result on every other call; the facade computes them from the real-input kernels, which
# are stable: hfft(x, norm) = irfft(conj(x), norm'), ihfft(x, norm) = conj(rfft(x, norm')) with norm' the
# opposite scaling (backward <-> forward, ortho unchanged).
def _hfft_one(m, n, dim, norm):
    # workaround "HFFT conj state"
    return ops.irfft(_conj(m), n=n, dim=dim, norm=_SWAP[norm])


def _ihfft_one(m, n, dim, norm):
    # workaround "HFFT conj state"
    return ops.conj(ops.rfft(m, n=n, dim=dim, norm=_SWAP[norm]))


def _hfft_many(irfft_n):
    # workaround "HFFT conj state"
    return lambda m, s, dim, norm: irfft_n(_conj(m), s=s, dim=dim, norm=_SWAP[norm])


def _ihfft_many(rfft_n):
    # workaround "HFFT conj state"
    return lambda m, s, dim, norm: ops.conj(rfft_n(m, s=s, dim=dim, norm=_SWAP[norm]))


fft = _one(ops.fft, "fft", True)
ifft = _one(ops.ifft, "ifft", True)
rfft = _one(ops.rfft, "rfft", True)
irfft = _one(ops.irfft, "irfft", False)
hfft = _one(_hfft_one, "hfft", False)
ihfft = _one(_ihfft_one, "ihfft", True)
fft2 = _many(ops.fft2, "fft2", True, False)
ifft2 = _many(ops.ifft2, "ifft2", True, False)
rfft2 = _many(ops.rfft2, "rfft2", True, False)
irfft2 = _many(ops.irfft2, "irfft2", False, False, last_is_half=True)
hfft2 = _many(_hfft_many(ops.irfft2), "hfft2", False, False, last_is_half=True)
ihfft2 = _many(_ihfft_many(ops.rfft2), "ihfft2", True, False)
fftn = _many(ops.fftn, "fftn", True, True)
ifftn = _many(ops.ifftn, "ifftn", True, True)
rfftn = _many(ops.rfftn, "rfftn", True, True)
irfftn = _many(ops.irfftn, "irfftn", False, True, last_is_half=True)
hfftn = _many(_hfft_many(ops.irfftn), "hfftn", False, True, last_is_half=True)
ihfftn = _many(_ihfft_many(ops.rfftn), "ihfftn", True, True)


def _shift(input, dim, sign):
    nd = input.dim()
    if dim is None:
        dims = list(range(nd))
    else:
        dims = [norm_dim(d, nd) for d in ([dim] if isinstance(dim, int) else dim)]
    if not dims:
        return input.clone()
    shape = tuple(input.shape)
    return input.roll([sign * (shape[d] // 2) for d in dims], dims)


def fftshift(input, dim=None):
    """torch.fft.fftshift(input, dim=None): rolls each of `dim` (default: all) by size // 2, moving the
    zero-frequency term to the centre (composed: Tensor.roll; any dtype, differentiable)."""
    return _shift(input, dim, 1)


def ifftshift(input, dim=None):
    """torch.fft.ifftshift(input, dim=None): the inverse of fftshift (rolls by -(size // 2))."""
    return _shift(input, dim, -1)


def _freq(n, d, dtype, device, requires_grad, half):
    import shim.torch as T  # a cycle inside the facade: torch.fft is loaded lazily from shim.torch
    dt = dtype or T.get_default_dtype()
    n = int(n)
    if half:
        k = T.arange(n // 2 + 1, dtype=T.float64)
    else:
        k = T.cat([T.arange((n - 1) // 2 + 1, dtype=T.float64), T.arange(-(n // 2), 0, dtype=T.float64)])
    out = (k / (n * float(d))).to(dt)
    if device is not None:
        out = out.to(device)
    return out.requires_grad_(requires_grad) if requires_grad else out


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.fft.fftfreq(n, d=1.0): the sample frequencies [0, 1, …, (n-1)//2, -(n//2), …, -1] / (d n) of an
    n-point transform, in `dtype` (default float dtype)."""
    return _freq(n, d, dtype, device, requires_grad, False)


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """torch.fft.rfftfreq(n, d=1.0): the non-negative sample frequencies [0, …, n//2] / (d n) of rfft."""
    return _freq(n, d, dtype, device, requires_grad, True)


__getattr__ = _module_getattr("torch.fft")
