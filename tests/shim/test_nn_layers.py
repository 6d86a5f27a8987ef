"""nn layers, nn.init and clip_grad_norm_ on the facade vs real torch (weights copied from torch; forward and
parameter/input gradients, fp32 rel. err ≤ 1e-5)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import torch
import shim.torch as mt

RTOL = 1e-5


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _copy_weights(ours, ref):
    ours.load_state_dict({k: mt.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})


LAYERS = {
    "Linear": (lambda L: L.nn.Linear(6, 5), lambda: np.random.default_rng(0).standard_normal((2, 3, 6))),
    "Linear_nobias": (lambda L: L.nn.Linear(6, 5, bias=False), lambda: np.random.default_rng(1).standard_normal((4, 6))),
    "Embedding": (lambda L: L.nn.Embedding(12, 4), lambda: np.random.default_rng(2).integers(0, 12, (3, 5))),
    "Embedding_padding": (lambda L: L.nn.Embedding(12, 4, padding_idx=0),
                          lambda: np.array([[0, 3, 0, 11], [5, 0, 2, 2]])),
    "LayerNorm": (lambda L: L.nn.LayerNorm(8), lambda: np.random.default_rng(3).standard_normal((2, 4, 8)) * 3),
    "LayerNorm_nobias": (lambda L: L.nn.LayerNorm(8, bias=False),
                         lambda: np.random.default_rng(4).standard_normal((5, 8))),
    "RMSNorm": (lambda L: L.nn.RMSNorm(8, eps=1e-6), lambda: np.random.default_rng(5).standard_normal((2, 4, 8))),
    "RMSNorm_default_eps": (lambda L: L.nn.RMSNorm([8]), lambda: np.random.default_rng(6).standard_normal((3, 8))),
    "SiLU": (lambda L: L.nn.SiLU(), lambda: np.random.default_rng(7).standard_normal((3, 8))),
    "GELU": (lambda L: L.nn.GELU(), lambda: np.random.default_rng(8).standard_normal((3, 8))),
    "GELU_tanh": (lambda L: L.nn.GELU(approximate="tanh"), lambda: np.random.default_rng(9).standard_normal((3, 8))),
    "ReLU": (lambda L: L.nn.ReLU(), lambda: np.random.default_rng(10).standard_normal((3, 8))),
    "Tanh": (lambda L: L.nn.Tanh(), lambda: np.random.default_rng(11).standard_normal((3, 8))),
    "Sigmoid": (lambda L: L.nn.Sigmoid(), lambda: np.random.default_rng(12).standard_normal((3, 8))),
    "Softmax": (lambda L: L.nn.Softmax(dim=-1), lambda: np.random.default_rng(13).standard_normal((3, 8))),
    "LogSoftmax": (lambda L: L.nn.LogSoftmax(dim=1), lambda: np.random.default_rng(14).standard_normal((3, 8))),
    "Dropout_eval": (lambda L: L.nn.Dropout(0.4).eval(), lambda: np.random.default_rng(15).standard_normal((3, 8))),
    "Sequential": (lambda L: L.nn.Sequential(L.nn.Linear(4, 8), L.nn.GELU(), L.nn.Linear(8, 2)),
                   lambda: np.random.default_rng(16).standard_normal((5, 4))),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_parity(name):
    make, data = LAYERS[name]
    ref = make(torch)
    ours = make(mt)
    _copy_weights(ours, ref)
    x = data()
    is_float = x.dtype.kind == "f"
    xt = torch.tensor(x.astype(np.float32) if is_float else x)
    xm = mt.tensor(x.astype(np.float32) if is_float else x)
    if is_float:
        xt.requires_grad_(True)
        xm.requires_grad_(True)
    yt, ym = ref(xt), ours(xm)
    assert str(ym.dtype) == str(yt.dtype) and tuple(ym.shape) == tuple(yt.shape)
    assert rel_err(ym.detach().numpy(), yt.detach().numpy()) <= RTOL
    r = np.random.default_rng(99).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yt * torch.tensor(r)).sum().backward()
    (ym * mt.tensor(r)).sum().backward()
    if is_float:
        assert rel_err(xm.grad.numpy(), xt.grad.numpy()) <= RTOL
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), ref.named_parameters()):
        assert n1 == n2
        assert rel_err(p1.grad.numpy(), p2.grad.numpy()) <= RTOL, n1
    if name == "Embedding_padding":
        assert np.all(ours.weight.grad.numpy()[0] == 0) and np.all(ours.weight.detach().numpy()[0] == 0)


@pytest.mark.parametrize("kwargs", [{}, {"ignore_index": 2}, {"label_smoothing": 0.1}, {"reduction": "sum"}])
def test_cross_entropy_loss_module(kwargs):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    t = np.array([0, 2, 4, 1, 2, 3, kwargs.get("ignore_index", -100)])
    outs = []
    for lib in (mt, torch):
        xl = lib.tensor(x, requires_grad=True)
        loss = lib.nn.CrossEntropyLoss(**kwargs)(xl, lib.tensor(t))
        loss.backward()
        outs.append((loss.item(), xl.grad.numpy()))
    assert abs(outs[0][0] - outs[1][0]) <= RTOL * abs(outs[1][0])
    assert rel_err(outs[0][1], outs[1][1]) <= RTOL


def test_dropout_module_train_and_eval():
    d = mt.nn.Dropout(0.5)
    x = mt.ones(1000)
    mt.manual_seed(1)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert d(x).numpy().tolist() == x.numpy().tolist()


def test_default_init_distributions():
    mt.manual_seed(0)
    lin = mt.nn.Linear(256, 128)
    w = lin.weight.detach().numpy()
    bound = 1 / math.sqrt(256)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    emb = mt.nn.Embedding(300, 64).weight.detach().numpy()
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1.0) < 0.02
    norm = mt.nn.LayerNorm(8)
    assert norm.weight.tolist() == [1.0] * 8 and norm.bias.tolist() == [0.0] * 8


def test_init_functions():
    init = mt.nn.init
    mt.manual_seed(0)
    t = mt.empty(300, 200)
    init.normal_(t, mean=1.0, std=0.02)
    v = t.numpy()
    assert abs(v.mean() - 1.0) < 1e-3 and abs(v.std() - 0.02) < 1e-3
    init.uniform_(t, -0.5, 0.5)
    v = t.numpy()
    assert v.min() >= -0.5 and v.max() <= 0.5 and abs(v.std() - 1 / math.sqrt(12)) < 5e-3
    init.trunc_normal_(t, std=1.0, a=-1.0, b=2.0)
    v = t.numpy()
    assert v.min() >= -1.0 and v.max() <= 2.0
    ref_mean = float(torch.nn.init.trunc_normal_(torch.empty(300, 200), std=1.0, a=-1.0, b=2.0).mean())
    assert abs(v.mean() - ref_mean) < 0.02
    init.xavier_uniform_(t)
    a = math.sqrt(6 / 500)
    assert np.abs(t.numpy()).max() <= a
    init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 200)) < 0.005
    init.xavier_normal_(t, gain=2.0)
    assert abs(t.numpy().std() - 2 * math.sqrt(2 / 500)) < 0.005
    init.constant_(t, 3.0)
    assert np.all(t.numpy() == 3.0)
    init.zeros_(t), init.ones_(t)
    assert np.all(t.numpy() == 1.0)
    p = mt.nn.Parameter(mt.zeros(4, 4))
    init.kaiming_uniform_(p, a=math.sqrt(5))
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mt.zeros(3))
    init.orthogonal_(t)                                # 300 x 200: orthonormal columns (values: test_random_streams)
    np.testing.assert_allclose(t.numpy().T @ t.numpy(), np.eye(200), atol=2e-5)
    with pytest.raises(NotImplementedError, match="sparse_"):
        init.sparse_(t, 0.1)


@pytest.mark.parametrize("norm_type,max_norm", [(2.0, 1.0), (2.0, 100.0), (math.inf, 0.5), (1.0, 2.0)])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(30)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(4, 5), (7,), (2, 3, 2)]]
    res = []
    for lib in (mt, torch):
        params = [lib.nn.Parameter(lib.zeros(*g.shape)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g)
        params.append(lib.nn.Parameter(lib.zeros(3)))  # no grad: skipped
        total = lib.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        res.append((float(total), [p.grad.numpy().copy() for p in params[:-1]], str(total.dtype)))
    assert abs(res[0][0] - res[1][0]) <= RTOL * res[1][0]
    assert res[0][2] == res[1][2]
    for a, b in zip(res[0][1], res[1][1]):
        assert rel_err(a, b) <= RTOL


def test_clip_grad_norm_nonfinite_and_value():
    p = mt.nn.Parameter(mt.zeros(2))
    p.grad = mt.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        mt.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = mt.tensor([3.0, -5.0])
    mt.nn.utils.clip_grad_value_([p], 2.0)
    assert p.grad.tolist() == [2.0, -2.0]
    assert float(mt.nn.utils.clip_grad_norm_([mt.nn.Parameter(mt.zeros(1))], 1.0)) == 0.0
