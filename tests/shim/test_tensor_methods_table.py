"""`shim.torch._ops.TENSOR_METHODS`, the one table of torch.Tensor methods the op families implement: it is what
the Tensor class serves, and `install` refuses a table that disagrees with the families."""
from __future__ import annotations

import inspect
import types

import numpy as np
import torch

import pytest

from shim.torch import _ops
from shim.torch._tensor import Tensor


def test_every_row_is_served_by_the_tensor_class():
    for name, (fam, impl) in _ops.TENSOR_METHODS.items():
        assert fam in _ops.FAMILIES, name
        fn = fam.METHODS[name]
        if not impl.startswith("<"):
            assert getattr(fam, impl) is fn, name
        served = Tensor.__dict__[name]
        # autocast (some methods, after install) and `_args.with_numpy_keywords` wrap; both keep __wrapped__
        assert inspect.unwrap(served) is fn, name


def test_add_inplace_row():
    fam, impl = _ops.TENSOR_METHODS["add_"]
    assert fam is _ops.pointwise and impl == "<in-place form of add>"


def _fake_family(methods):
    return types.SimpleNamespace(__name__="fake_family", METHODS=methods)


@pytest.mark.parametrize("case", ["unlisted", "missing entry", "wrong impl", "class defines it"])
def test_install_rejects_a_table_that_disagrees(monkeypatch, case):
    def f(self):
        return self

    def g(self):
        return self

    fam = _fake_family({"frobnicate": f})
    fam.frobnicate = f
    fam.other = g
    table = {}
    cls = type("T", (), {})
    if case == "unlisted":
        pass
    elif case == "missing entry":
        table = {"frobnicate": (fam, "frobnicate"), "absent": (fam, "<adapter lambda in METHODS>")}
    elif case == "wrong impl":
        table = {"frobnicate": (fam, "other")}
    else:
        table = {"frobnicate": (fam, "frobnicate")}
        cls = type("T", (), {"frobnicate": g})
    monkeypatch.setattr(_ops, "FAMILIES", (fam,))
    monkeypatch.setattr(_ops, "TENSOR_METHODS", table)
    with pytest.raises(RuntimeError, match="frobnicate|absent"):
        _ops.install(cls)


def test_install_attaches_the_rows(monkeypatch):
    def f(self):
        return 7

    fam = _fake_family({"frobnicate": f})
    fam.frobnicate = f
    monkeypatch.setattr(_ops, "FAMILIES", (fam,))
    monkeypatch.setattr(_ops, "TENSOR_METHODS", {"frobnicate": (fam, "frobnicate")})
    cls = type("T", (), {})
    _ops.install(cls)
    assert cls().frobnicate() == 7


def test_numpy_keyword_names_as_in_torch():
    """torch's argument parser takes NumPy's `axis`/`keepdims` for `dim`/`keepdim` (megatron-core's alltoall MoE
    dispatcher calls `.sum(axis=1)`); the families' functions and methods do too (`shim.torch._args.with_numpy_keywords`)."""
    import shim.torch as st

    res = {}
    for T in (torch, st):
        x = T.tensor(np.arange(6.0).reshape(2, 3))
        res[T] = [x.sum(axis=1).tolist(), T.sum(x, axis=0).tolist(), x.mean(axis=1, keepdims=True).tolist(),
                  T.cat([x, x], axis=0).tolist(), x.softmax(axis=0).tolist(), x.argmax(axis=1).tolist(),
                  x.max(axis=1)[0].tolist(), x.cumsum(axis=1).tolist(), x.any(axis=1, keepdims=True).tolist()]
        with pytest.raises(TypeError):
            x.sum(dim=1, axis=1)
    np.testing.assert_equal(res[st], res[torch])
