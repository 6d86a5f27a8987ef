"""Creation ops, dtypes (names, promotion, finfo/iinfo, default dtype), devices, random state, conversions and
repr of the facade, checked against real torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as st
from tests.helpers.op_parity import Case, case_id, compare, covered_apis

CREATION = [
    Case("torch.tensor", lambda T: T.tensor([[1, 2], [3, 4]]), grad=False, note="int64"),
    Case("torch.tensor", lambda T: T.tensor([1.5, 2]), grad=False, note="float"),
    Case("torch.tensor", lambda T: T.tensor([True, False]), grad=False, note="bool"),
    Case("torch.tensor", lambda T: T.tensor(3.25), grad=False, note="0-dim"),
    Case("torch.tensor", lambda T: T.tensor([1, 2], dtype=T.bfloat16), grad=False, note="bf16"),
    Case("torch.tensor", lambda T: T.tensor(np.arange(4, dtype=np.int32)), grad=False, note="ndarray"),
    Case("torch.tensor", lambda T: T.tensor([T.tensor(1.0), T.tensor(2.0)]), grad=False, note="list of tensors"),
    Case("torch.as_tensor", lambda T: T.as_tensor([1, 2, 3], dtype=T.float64), grad=False),
    Case("torch.from_numpy", lambda T: T.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3)), grad=False),
    Case("torch.zeros", lambda T: T.zeros(2, 3), grad=False),
    Case("torch.zeros", lambda T: T.zeros((2,), dtype=T.int32), grad=False, note="dtype"),
    Case("torch.ones", lambda T: T.ones([3], dtype=T.bool), grad=False),
    Case("torch.empty", lambda T: T.empty(2, 2).shape, grad=False),
    Case("torch.full", lambda T: T.full((2, 2), 7), grad=False, note="int fill -> int64"),
    Case("torch.full", lambda T: T.full((2,), 0.5, dtype=T.float16), grad=False, note="dtype"),
    Case("torch.zeros_like", lambda T: T.zeros_like(T.ones(2, 3, dtype=T.int32)), grad=False),
    Case("torch.ones_like", lambda T: T.ones_like(T.ones(2), dtype=T.float64), grad=False),
    Case("torch.empty_like", lambda T: T.empty_like(T.ones(4)).shape, grad=False),
    Case("torch.full_like", lambda T: T.full_like(T.ones(2, 2), -3.0), grad=False),
    Case("torch.arange", lambda T: T.arange(5), grad=False),
    Case("torch.arange", lambda T: T.arange(1, 2, 0.25), grad=False, note="float step"),
    Case("torch.arange", lambda T: T.arange(0, 10, 3, dtype=T.float32), grad=False, note="dtype"),
    Case("torch.linspace", lambda T: T.linspace(0, 1, 5), grad=False),
    Case("torch.eye", lambda T: T.eye(3), grad=False),
    Case("torch.eye", lambda T: T.eye(2, 3, dtype=T.int64), grad=False, note="rect"),
    Case("Tensor.new_zeros", lambda T: T.ones(2, dtype=T.float16).new_zeros(3, 1), grad=False),
    Case("Tensor.new_ones", lambda T: T.ones(2, dtype=T.int32).new_ones((2, 2)), grad=False),
    Case("Tensor.new_full", lambda T: T.ones(2).new_full((2,), 4.0), grad=False),
    Case("Tensor.new_empty", lambda T: T.ones(2).new_empty(5).shape, grad=False),
    Case("Tensor.new_tensor", lambda T: T.ones(2, dtype=T.float64).new_tensor([1, 2]), grad=False),
    Case("torch.Tensor", lambda T: T.Tensor([1, 2]), grad=False, note="data"),
    Case("torch.Tensor", lambda T: T.Tensor(2, 3).shape, grad=False, note="sizes"),
]


@pytest.mark.parametrize("case", CREATION, ids=[case_id(c) for c in CREATION])
def test_creation_parity(case):
    compare(case.fn(torch), case.fn(st), torch, st)


def test_random_creation_shapes_dtypes_and_ranges():
    st.manual_seed(0)
    r = st.rand(1000)
    assert r.dtype == st.float32 and 0 <= r.min().item() and r.max().item() < 1
    n = st.randn(2000, dtype=st.float64)
    assert n.dtype == st.float64 and abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    i = st.randint(3, 7, (500,))
    assert i.dtype == st.int64 and i.min().item() >= 3 and i.max().item() <= 6
    p = st.randperm(10)
    assert sorted(p.tolist()) == list(range(10))
    x = st.empty(3, 4)
    assert x.uniform_(-2, -1) is x and x.max().item() <= -1 and x.min().item() >= -2
    x.normal_(5.0, 0.01)
    assert abs(x.mean().item() - 5.0) < 0.05


def test_manual_seed_and_rng_state_round_trip():
    st.manual_seed(1234)
    a = st.randn(5)
    st.manual_seed(1234)
    assert st.equal(st.randn(5), a)
    state = st.get_rng_state()
    assert state.dtype == st.uint8 and state.dim() == 1
    b = st.rand(4)
    c = st.randint(0, 100, (3,))
    st.set_rng_state(state)
    assert st.equal(st.rand(4), b) and st.equal(st.randint(0, 100, (3,)), c)
    g = st.Generator().manual_seed(7)
    g2 = st.Generator()
    g2.set_state(g.get_state())
    assert st.equal(st.randn(3, generator=g), st.randn(3, generator=g2))
    assert g.initial_seed() == 7
    with pytest.raises(TypeError):
        st.set_rng_state(st.zeros(3))


def test_dtype_names_and_properties():
    for name in ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]:
        assert str(getattr(st, name)) == str(getattr(torch, name))
        assert getattr(st, name).is_floating_point == getattr(torch, name).is_floating_point
        assert getattr(st, name).itemsize == getattr(torch, name).itemsize
    for alias in ["float", "double", "half", "long", "int", "short"]:
        assert str(getattr(st, alias)) == str(getattr(torch, alias))
    for d in ["float32", "float16", "bfloat16", "float64"]:
        a, b = st.finfo(getattr(st, d)), torch.finfo(getattr(torch, d))
        assert (a.eps, a.max, a.min, a.tiny, a.bits) == (b.eps, b.max, b.min, b.tiny, b.bits)
    for d in ["int8", "uint8", "int32", "int64"]:
        a, b = st.iinfo(getattr(st, d)), torch.iinfo(getattr(torch, d))
        assert (a.min, a.max, a.bits) == (b.min, b.max, b.bits)


def test_promotion_table_matches_torch():
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
    for a in names:
        for b in names:
            got = st.promote_types(getattr(st, a), getattr(st, b))
            ref = torch.promote_types(getattr(torch, a), getattr(torch, b))
            assert str(got) == str(ref), (a, b)
    for a in names:
        for scalar in [True, 2, 2.5]:
            ta = torch.ones(2, dtype=getattr(torch, a))
            sa = st.ones(2, dtype=getattr(st, a))
            assert str(st.result_type(sa, scalar)) == str(torch.result_type(ta, scalar)), (a, scalar)


def test_default_dtype():
    assert st.get_default_dtype() == st.float32
    st.set_default_dtype(st.float64)
    try:
        assert st.tensor([1.0]).dtype == st.float64 and st.zeros(1).dtype == st.float64
        assert (st.arange(3) * 0.5).dtype == st.float64
    finally:
        st.set_default_dtype(st.float32)
    with pytest.raises(TypeError):
        st.set_default_dtype(st.int64)


def test_devices():
    assert str(st.device("cuda:1")) == str(torch.device("cuda:1"))
    assert repr(st.device("cpu")) == repr(torch.device("cpu"))
    assert st.device("cuda", 0) == st.device("cuda:0")
    # torch compares a device with devices only: a string is never equal and never an error
    for other in ("cuda:0", "cpu", "disk", 0, None):
        assert (st.device("cuda", 0) == other) is (torch.device("cuda", 0) == other) is False
        assert (st.device("cpu") != other) is (torch.device("cpu") != other) is True
    assert ("disk" in [st.device("cpu")]) is ("disk" in [torch.device("cpu")]) is False
    with pytest.raises(RuntimeError):
        st.device("gpu")
    x = st.zeros(2, device="cuda:0")
    assert x.device == st.device("cuda:0") and x.is_cuda and x.type() == "torch.cuda.FloatTensor"
    assert x.cpu().device.type == "cpu" and x.cpu().type() == "torch.FloatTensor"
    assert st.ones(1).cuda().device.type == "cuda"


def test_conversions_item_tolist_numpy():
    x = st.tensor([[1.5, -2.0], [3.0, 4.25]])
    assert x.tolist() == [[1.5, -2.0], [3.0, 4.25]]
    assert x[1, 1].item() == 4.25 and isinstance(st.tensor(3).item(), int)
    a = x.numpy()
    assert a.dtype == np.float32 and a.tolist() == x.tolist()
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.clone().requires_grad_().numpy()
    with pytest.raises(TypeError, match="BFloat16"):
        x.bfloat16().numpy()
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()
    assert int(st.tensor(7)) == 7 and float(st.tensor(0.5)) == 0.5 and bool(st.tensor([1]))
    assert x.to(st.float32) is x and x.float() is x
    assert [t.tolist() for t in st.arange(3)] == [0, 1, 2]
    assert len(x) == 2


def test_repr_reads_like_torch():
    pairs = [
        (lambda T: T.tensor([1.0, 2.0]), None),
        (lambda T: T.tensor([0.1, 2.0], dtype=T.float64), None),
        (lambda T: T.tensor([1, 2]), None),
        (lambda T: T.tensor([True, False]), None),
        (lambda T: T.tensor(3.5), None),
        (lambda T: T.ones(2, dtype=T.int32), None),
        (lambda T: T.ones(2, requires_grad=True), None),
        (lambda T: T.zeros(2, 3), None),
    ]
    for fn, _ in pairs:
        assert repr(fn(st)) == repr(fn(torch))
    assert repr(st.ones(1, requires_grad=True) * 2).startswith("tensor([2.], grad_fn=<")
    assert repr(st.Size([2, 3])) == repr(torch.Size([2, 3]))


def test_coverage_report(capsys):
    """This module's table only (test_tensor_parity.py reports its own; their APIs do not overlap)."""
    apis = covered_apis(CREATION)
    with capsys.disabled():
        print(f"\n[parity] tests/shim/test_tensor_creation.py covers {len(apis)} torch APIs in {len(CREATION)} cases")
    assert len(apis) >= 20


def test_size_as_a_keyword():
    """torch takes `size=` by keyword in zeros/ones/empty and the Tensor.new_* forms (megatron's all-to-all
    allocates `input.new_empty(size=[...], dtype=..., device=...)`); both ways at once is a TypeError."""
    res = {}
    for T in (torch, st):
        x = T.ones(2, 3)
        res[T] = [tuple(T.zeros(size=(2, 3)).shape), T.ones(size=[2]).tolist(), tuple(T.empty(size=(4,)).shape),
                  tuple(x.new_empty(size=[5, 3], dtype=T.float32).shape), x.new_zeros(size=(1, 2)).tolist(),
                  x.new_ones(size=[2]).tolist()]
        with pytest.raises(TypeError):
            T.zeros(2, size=(2,))
    assert res[st] == res[torch]
