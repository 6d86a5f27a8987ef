"""``torch.testing`` on the shim: :func:`assert_close` (and ``assert_allclose``'s successor semantics).

The comparison follows torch 2.13's documented rules: inputs are facade tensors, Python scalars, numpy arrays, or
sequences/mappings of those (compared item by item); attributes (type, shape, device, dtype) are checked before
values; values are close when ``|actual - expected| <= atol + rtol * |expected|`` with the per-dtype default
tolerances torch documents (float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5, float32 1.3e-6/1e-5, float64 1e-7/1e-7,
integers and bool exact; Python floats as float64); NaNs are equal only with ``equal_nan``; infinities must match.
The failure message reports what torch's reports (mismatched count, greatest absolute and relative difference
with their index, the item path inside containers). The values are compared in numpy (float64) on the host.
Other ``torch.testing.X`` raise NotImplementedError naming them.
"""
from __future__ import annotations

import collections.abc
from typing import Any, Callable, Optional, Union

import numpy as np

from shim.torch._tensor import Tensor
from shim.torch._unsupported import module_getattr as _module_getattr

__all__ = ["assert_close"]

# dtype name -> (rtol, atol): torch.testing's documented defaults
_DEFAULT_TOL = {
    "float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7),
    "complex32": (1e-3, 1e-5), "complex64": (1.3e-6, 1e-5), "complex128": (1e-7, 1e-7),
}


class _Mismatch(AssertionError):
    pass


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _dtype_name(x) -> str:
    if _is_tensor(x):
        return str(x.dtype).replace("torch.", "")
    if isinstance(x, np.ndarray):
        return str(x.dtype)
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int64"
    if isinstance(x, float):
        return "float64"
    if isinstance(x, complex):
        return "complex128"
    raise TypeError(f"torch.testing.assert_close: no comparison for inputs of type {type(x).__name__}")


def _to_numpy(x) -> np.ndarray:
    if _is_tensor(x):
        t = x.detach()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return np.asarray(t.cpu().numpy())
    return np.asarray(x)


def _fmt_index(flat: int, shape: tuple) -> str:
    return str(tuple(int(i) for i in np.unravel_index(flat, shape))) if shape else "()"


def _compare_values(actual, expected, rtol: float, atol: float, equal_nan: bool, scalars: bool) -> None:
    a, e = _to_numpy(actual), _to_numpy(expected)
    exact = rtol == 0 and atol == 0
    integral = a.dtype.kind in "biu" and e.dtype.kind in "biu"
    if integral:
        a64, e64 = a.astype(np.int64), e.astype(np.int64)
        close = a64 == e64
        abs_diff = np.abs(a64 - e64)
    else:
        a64, e64 = a.astype(np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(e) else np.float64), \
            e.astype(np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(e) else np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            abs_diff = np.abs(a64 - e64)
            close = (abs_diff <= atol + rtol * np.abs(e64)) & np.isfinite(a64) & np.isfinite(e64)
            close |= (a64 == e64)  # equal infinities
            if equal_nan:
                close |= np.isnan(a64) & np.isnan(e64)
    if bool(np.all(close)):
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_diff = abs_diff / np.abs(e64 if not integral else e64.astype(np.float64))
    # torch computes the reported differences in the inputs' promoted dtype (float32 for integers)
    names = {_dtype_name(actual), _dtype_name(expected)}
    if not scalars and not names & {"float64", "complex128"}:
        report = np.float16 if names == {"float16"} else np.float32
        rel_diff = rel_diff.astype(report)
        if not integral:
            abs_diff = abs_diff.astype(report)
    if a.ndim == 0 and not scalars:
        scalars, actual, expected = True, a.item(), e.item()
    what = "close" if not exact else "equal"
    allowed_abs = "" if exact else f" (up to {atol} allowed)"
    allowed_rel = "" if exact else f" (up to {rtol} allowed)"
    if scalars:
        raise _Mismatch(f"Scalars are not {what}!\n\nExpected {expected} but got {actual}.\n"
                        f"Absolute difference: {abs_diff.item()}{allowed_abs}\n"
                        f"Relative difference: {rel_diff.item()}{allowed_rel}")
    bad = ~close
    total, n_bad = close.size, int(bad.sum())
    # greatest differences among the mismatches (NaN counts as greatest, as torch reports it)
    abs_m = np.where(bad, abs_diff.astype(np.float64), -np.inf).reshape(-1)
    rel_m = np.where(bad, rel_diff.astype(np.float64), -np.inf).reshape(-1)
    ia = int(np.argmax(np.where(np.isnan(abs_m), np.inf, abs_m)))
    ir = int(np.argmax(np.where(np.isnan(rel_m), np.inf, rel_m)))
    abs_val = abs_diff.reshape(-1)[ia]
    abs_txt = int(abs_val) if integral else float(abs_val)
    raise _Mismatch(f"Tensor-likes are not {what}!\n\nMismatched elements: {n_bad} / {total} "
                    f"({100.0 * n_bad / total:.1f}%)\n"
                    f"Greatest absolute difference: {abs_txt} at index {_fmt_index(ia, a.shape)}{allowed_abs}\n"
                    f"Greatest relative difference: {float(rel_diff.reshape(-1)[ir])} at index "
                    f"{_fmt_index(ir, a.shape)}{allowed_rel}")


def _compare_leaf(actual, expected, rtol, atol, equal_nan, check_device, check_dtype) -> None:
    a_t, e_t = _is_tensor(actual), _is_tensor(expected)
    a_np, e_np = isinstance(actual, np.ndarray), isinstance(expected, np.ndarray)
    scalars = not (a_t or e_t or a_np or e_np)
    if scalars:
        if type(actual) is not type(expected):
            raise _Mismatch(f"The (d)types do not match: {type(actual)} != {type(expected)}.")
    elif (a_t, a_np) != (e_t, e_np):
        raise _Mismatch(f"Inputs of type {type(actual)} and {type(expected)} cannot be compared: both must be "
                        f"tensors, numpy arrays or Python scalars.")
    if not scalars:
        if tuple(actual.shape) != tuple(expected.shape):
            shape = (lambda x: x.shape) if a_t else (lambda x: x.shape)
            raise _Mismatch(f"The values for attribute 'shape' do not match: {shape(actual)} != {shape(expected)}.")
        if a_t and check_device and actual.device != expected.device:
            raise _Mismatch(f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.")
        if check_dtype and actual.dtype != expected.dtype:
            raise _Mismatch(f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.")
    if rtol is None:
        tols = [_DEFAULT_TOL.get(_dtype_name(x), (0.0, 0.0)) for x in (actual, expected)]
        rtol, atol = max(t[0] for t in tols), max(t[1] for t in tols)
    _compare_values(actual, expected, rtol, atol, equal_nan, scalars)


def _walk(actual, expected, path: str, args) -> None:
    leaf_types = (str, bytes)
    if _is_tensor(actual) or _is_tensor(expected) or isinstance(actual, (np.ndarray, int, float, complex)):
        try:
            _compare_leaf(actual, expected, *args)
        except _Mismatch as exc:
            raise _Mismatch(f"{exc}{chr(10) * 2}The failure occurred for item {path}" if path else str(exc)) from None
        return
    if isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            raise _Mismatch(f"The keys of the mappings do not match:\nMissing keys in the actual mapping: "
                            f"{sorted(set(expected) - set(actual), key=repr)}\nAdditional keys in the actual "
                            f"mapping: {sorted(set(actual) - set(expected), key=repr)}")
        for k in expected:
            _walk(actual[k], expected[k], f"{path}[{k!r}]", args)
        return
    if (isinstance(actual, collections.abc.Sequence) and isinstance(expected, collections.abc.Sequence)
            and not isinstance(actual, leaf_types) and not isinstance(expected, leaf_types)):
        if len(actual) != len(expected):
            raise _Mismatch(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}"
                            + (f"\n\nThe failure occurred for item {path}" if path else ""))
        for i, (a, e) in enumerate(zip(actual, expected)):
            _walk(a, e, f"{path}[{i}]", args)
        return
    raise _Mismatch(f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.")


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True, rtol: Optional[float] = None,
                 atol: Optional[float] = None, equal_nan: bool = False, check_device: bool = True,
                 check_dtype: bool = True, check_layout: bool = True, check_stride: bool = False,
                 msg: Union[str, Callable[[str], str], None] = None) -> None:
    """Assert that ``actual`` and ``expected`` are close (torch.testing.assert_close; see the module docstring).

    Raises ``AssertionError`` with torch's report (or ``msg``; a callable ``msg`` receives the generated text),
    ``ValueError`` when only one of ``rtol``/``atol`` is given. ``check_layout`` is satisfied trivially (the shim
    has strided tensors only); ``check_stride=True`` raises NotImplementedError.
    """
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                         f"{'rtol' if rtol is None else 'atol'}.")
    if check_stride:
        raise NotImplementedError("torch.testing.assert_close(check_stride=True) is not implemented by the shim")
    try:
        _walk(actual, expected, "", (rtol, atol, equal_nan, check_device, check_dtype))
    except _Mismatch as exc:
        text = str(exc)
        if callable(msg):
            text = msg(text)
        elif msg is not None:
            text = msg
        raise AssertionError(text) from None


__getattr__ = _module_getattr("torch.testing")
