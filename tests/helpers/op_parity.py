"""Table-driven op parity against real torch (reusable by every facade test module).

A `Case` names the torch API it covers, a function `fn(T, *inputs)` written once against a torch module `T`
(called with real torch and with the facade `shim.torch`), and input specs (`F`, `I`, `B`, `V` below, or plain
Python values). `run_case` builds the same inputs for both from one NumPy draw, runs forward, compares outputs
(dtype name, shape, values: fp32 rel err <= 1e-5, bf16 <= 1e-2 by default), then — when the case is
differentiable — backpropagates the same random cotangent through both and compares every input's gradient.
In-place cases (`inplace=True`) also check that the method returned the very tensor it was called on, and the
case's input arrays after the call (in-place effects, aliasing of views).

Usage in a test module:

    CASES = [Case("torch.add", lambda T, a, b: T.add(a, b, alpha=2), [F(3, 4), F(3, 4)]), ...]

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_parity(case):
        run_case(case)

`covered_apis(CASES)` gives the set of torch API names for the coverage report.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

TOL = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12), "float16": (1e-3, 1e-3), "bfloat16": (1e-2, 1e-2)}


@dataclasses.dataclass
class F:
    """A floating input: shape, dtype name, value range (uniform [lo, hi)) or standard normal, requires_grad."""
    shape: tuple
    dtype: str = "float32"
    lo: float | None = None
    hi: float | None = None
    grad: bool = True

    def __init__(self, *shape, dtype="float32", lo=None, hi=None, grad=True):
        self.shape, self.dtype, self.lo, self.hi, self.grad = tuple(shape), dtype, lo, hi, grad

    def draw(self, rng):
        if self.lo is None:
            return rng.standard_normal(self.shape)
        return rng.uniform(self.lo, self.hi, self.shape)


@dataclasses.dataclass
class I:
    """An integer input in [lo, hi)."""
    shape: tuple
    lo: int = 0
    hi: int = 10
    dtype: str = "int64"

    def __init__(self, *shape, lo=0, hi=10, dtype="int64"):
        self.shape, self.lo, self.hi, self.dtype = tuple(shape), lo, hi, dtype

    def draw(self, rng):
        return rng.integers(self.lo, self.hi, self.shape)

    grad = False


@dataclasses.dataclass
class B:
    """A boolean input (True with probability p)."""
    shape: tuple
    p: float = 0.5

    def __init__(self, *shape, p=0.5):
        self.shape, self.p = tuple(shape), p

    def draw(self, rng):
        return rng.random(self.shape) < self.p

    dtype = "bool"
    grad = False


class V:
    """A floating input with given values (NaN, +-inf, ties: what a random draw does not give)."""

    def __init__(self, values, dtype="float32", grad=True):
        self.values, self.dtype, self.grad = np.asarray(values, dtype=np.float64), dtype, grad
        self.shape = self.values.shape

    def draw(self, rng):
        return self.values.copy()


@dataclasses.dataclass
class Case:
    """One parity check. `api` is the torch name covered ("torch.add", "Tensor.add_", "Tensor.__getitem__")."""
    api: str
    fn: Callable[..., Any]
    inputs: Sequence[Any] = ()
    grad: bool = True
    inplace: bool = False
    rtol: float | None = None
    atol: float | None = None
    seed: int = 0
    note: str = ""
    extra_apis: Sequence[str] = ()


def case_id(case: Case) -> str:
    return case.api + (f"[{case.note}]" if case.note else "")


def covered_apis(cases) -> set:
    out = set()
    for c in cases:
        out.add(c.api)
        out.update(c.extra_apis)
    return out


def _make(T, spec, arr):
    if isinstance(spec, (F, I, B, V)):
        dtype = getattr(T, spec.dtype)
        if spec.dtype == "bfloat16":
            t = T.tensor(arr.astype(np.float32)).to(dtype)
        else:
            t = T.tensor(arr.astype(np.dtype(spec.dtype) if spec.dtype != "bool" else np.bool_))
            t = t.to(dtype)
        if isinstance(spec, (F, V)) and spec.grad:
            t.requires_grad_(True)
        return t
    return spec


def _host(T, t):
    t = t.detach()
    if t.dtype == T.bfloat16:
        t = t.float()
    return np.asarray(t.cpu().numpy())


def _is_tensor(x):
    return hasattr(x, "dtype") and hasattr(x, "shape") and hasattr(x, "detach")


def compare(ref, got, T_ref, T_got, path="out", rtol=None, atol=None):
    """Assert `got` (facade) matches `ref` (torch): structure, dtype names, shapes, values."""
    if _is_tensor(ref):
        assert _is_tensor(got), f"{path}: expected a tensor, got {type(got).__name__}"
        assert str(got.dtype) == str(ref.dtype), f"{path}: dtype {got.dtype} != torch's {ref.dtype}"
        assert tuple(got.shape) == tuple(ref.shape), f"{path}: shape {tuple(got.shape)} != torch's {tuple(ref.shape)}"
        a, b = _host(T_ref, ref), _host(T_got, got)
        name = str(ref.dtype).replace("torch.", "")
        if name in TOL:
            r, at = TOL[name]
            r, at = rtol if rtol is not None else r, atol if atol is not None else at
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            same_nan = np.isnan(a64) == np.isnan(b64)
            assert same_nan.all(), f"{path}: NaN positions differ"
            ok = np.isclose(b64, a64, rtol=r, atol=at, equal_nan=True)
            if not ok.all():
                err = np.max(np.abs(b64 - a64)[~ok])
                raise AssertionError(f"{path}: values differ (max abs err {err:.3e}, rtol {r}, atol {at})\n"
                                     f"torch: {a.ravel()[:8]}\nshim:  {b.ravel()[:8]}")
        else:
            assert np.array_equal(a, b), f"{path}: values differ\ntorch: {a.ravel()[:8]}\nshim:  {b.ravel()[:8]}"
        return
    if isinstance(ref, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"{path}: expected a sequence, got {type(got).__name__}"
        assert len(ref) == len(got), f"{path}: length {len(got)} != torch's {len(ref)}"
        if hasattr(ref, "_fields"):
            assert getattr(got, "_fields", None) == ref._fields, f"{path}: fields {getattr(got, '_fields', None)}"
        for i, (r, g) in enumerate(zip(ref, got)):
            compare(r, g, T_ref, T_got, f"{path}[{i}]", rtol, atol)
        return
    if isinstance(ref, float):
        assert isinstance(got, float) and np.isclose(got, ref, rtol=1e-5, atol=1e-6), f"{path}: {got} != {ref}"
        return
    if type(ref).__name__ in ("dtype", "Size", "device"):
        assert str(got) == str(ref), f"{path}: {got} != {ref}"
        return
    assert got == ref, f"{path}: {got!r} != torch's {ref!r}"


def run_case(case: Case, T_ref=None, T_got=None):
    """Run one case on real torch and on the facade and compare forward, in-place effects and gradients."""
    if T_ref is None:
        import torch as T_ref  # noqa: N806
    if T_got is None:
        import shim.torch as T_got  # noqa: N806
    rng = np.random.default_rng(case.seed)
    arrays = [s.draw(rng) if isinstance(s, (F, I, B, V)) else None for s in case.inputs]
    ins_ref = [_make(T_ref, s, a) for s, a in zip(case.inputs, arrays)]
    ins_got = [_make(T_got, s, a) for s, a in zip(case.inputs, arrays)]
    # in-place cases act on non-leaf copies so that torch allows them; inputs of other cases stay leaves
    if case.inplace:
        ins_ref = [x.clone() if _is_tensor(x) else x for x in ins_ref]
        ins_got = [x.clone() if _is_tensor(x) else x for x in ins_got]
    out_ref = case.fn(T_ref, *ins_ref)
    out_got = case.fn(T_got, *ins_got)
    compare(out_ref, out_got, T_ref, T_got, "out", case.rtol, case.atol)
    if case.inplace:
        assert out_got is ins_got[0], f"{case.api}: in-place op must return its own tensor"
        for i, (r, g) in enumerate(zip(ins_ref, ins_got)):
            if _is_tensor(r):
                compare(r, g, T_ref, T_got, f"input[{i}] after the call", case.rtol, case.atol)
    if not case.grad:
        return
    leaves = [(i, r, g) for i, (s, r, g) in enumerate(zip(case.inputs, ins_ref, ins_got))
              if isinstance(s, (F, V)) and s.grad]
    outs_ref = [o for o in _flat(out_ref) if _is_tensor(o) and o.requires_grad]
    outs_got = [o for o in _flat(out_got) if _is_tensor(o) and o.requires_grad]
    assert len(outs_ref) == len(outs_got), f"{case.api}: {len(outs_got)} outputs require grad, torch has " \
                                           f"{len(outs_ref)}"
    if not leaves or not outs_ref:
        return
    cot = [rng.standard_normal(tuple(o.shape)) for o in outs_ref]
    loss_ref = sum((o.float() * T_ref.tensor(c, dtype=T_ref.float32)).sum() for o, c in zip(outs_ref, cot))
    loss_got = sum((o.float() * T_got.tensor(c, dtype=T_got.float32)).sum() for o, c in zip(outs_got, cot))
    loss_ref.backward()
    loss_got.backward()
    for i, r, g in leaves:
        src_ref = r if not case.inplace else None
        if src_ref is None:
            continue
        if r.grad is None:
            assert g.grad is None, f"{case.api}: input[{i}] has a gradient but torch's is None"
            continue
        assert g.grad is not None, f"{case.api}: input[{i}] got no gradient"
        compare(r.grad, g.grad, T_ref, T_got, f"grad of input[{i}]", case.rtol, case.atol)


def _flat(x):
    if isinstance(x, (tuple, list)):
        for v in x:
            yield from _flat(v)
    else:
        yield x
