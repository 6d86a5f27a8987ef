"""torch.nn.functional / torch.* nn building blocks added for torch's op catalogue (issue 11, nn share), each
against real torch: values and gradients (rtol 1e-4, atol 1e-5), random ones bit for bit after the same
`manual_seed` (the facade draws torch's CPU stream), lazy convolutions initialised as torch's at their first
forward. Small sizes, float32 unless stated."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import torch
import shim.torch as mt

RTOL, ATOL = 1e-4, 1e-5


def _np(x):
    return x.detach().cpu().numpy()


def _run(fn_t, fn_m, *arrays, grad=True, exact=False, seed=None, **kw):
    """fn_t(torch tensors) vs fn_m(facade tensors): outputs, then gradients of the float inputs for one
    random upstream gradient."""
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ms = [mt.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    if seed is not None:
        torch.manual_seed(seed)
    a = fn_t(*ts, **kw)
    if seed is not None:
        mt.manual_seed(seed)
    b = fn_m(*ms, **kw)
    assert tuple(b.shape) == tuple(a.shape) and str(b.dtype) == str(a.dtype)
    if exact:
        np.testing.assert_array_equal(_np(b), _np(a))
    else:
        np.testing.assert_allclose(_np(b), _np(a), rtol=RTOL, atol=ATOL)
    if not grad or not a.requires_grad:
        return
    up = np.random.default_rng(1).standard_normal(tuple(a.shape)).astype(np.float32)
    a.backward(torch.tensor(up))
    b.backward(mt.tensor(up))
    for t, m in zip(ts, ms):
        if t.requires_grad:
            gm = _np(m.grad) if m.grad is not None else np.zeros(t.shape, np.float32)
            gt = _np(t.grad) if t.grad is not None else np.zeros(t.shape, np.float32)
            np.testing.assert_allclose(gm, gt, rtol=RTOL, atol=ATOL)


RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 3, 5, 7)).astype(np.float32)


@pytest.mark.parametrize("mode,nd,kw", [
    ("nearest", 1, {"scale_factor": 1.7}), ("nearest", 2, {"size": (3, 9)}), ("nearest", 2, {"scale_factor": 2.1}),
    ("nearest", 3, {"scale_factor": 1.3}), ("nearest-exact", 2, {"scale_factor": 1.3}),
    ("linear", 1, {"scale_factor": 0.6, "align_corners": False}), ("bilinear", 2, {"size": (4, 11),
                                                                                  "align_corners": True}),
    ("bilinear", 2, {"scale_factor": 1.3, "align_corners": False}),
    ("bilinear", 2, {"scale_factor": 0.5, "antialias": True, "align_corners": False}),
    ("bicubic", 2, {"scale_factor": 1.7, "align_corners": False}),
    ("bicubic", 2, {"size": (3, 4), "antialias": True, "align_corners": False}),
    ("trilinear", 3, {"scale_factor": 1.5, "align_corners": False}), ("area", 2, {"size": (3, 4)}),
])
def test_interpolate(mode, nd, kw):
    x = X4.reshape(2, 3, 35)[..., :7] if nd == 1 else X4 if nd == 2 else X4.reshape(2, 3, 5, 7, 1).repeat(3, -1)
    _run(lambda v: torch.nn.functional.interpolate(v, mode=mode, **kw),
         lambda v: mt.nn.functional.interpolate(v, mode=mode, **kw), x)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample(mode, padding_mode):
    g = (RNG.standard_normal((2, 4, 3, 2)) * 1.2).astype(np.float32)
    for ac in (False, True):
        _run(lambda v, w: torch.nn.functional.grid_sample(v, w, mode, padding_mode, ac),
             lambda v, w: mt.nn.functional.grid_sample(v, w, mode, padding_mode, ac), X4, g)


def test_unfold_fold_unpool_embedding_bag():
    for k, d, p, s in ((2, 1, 0, 1), (3, 2, 1, 2), ((2, 3), (1, 2), (1, 0), (2, 1))):
        _run(lambda v: torch.nn.functional.unfold(v, k, d, p, s), lambda v: mt.nn.functional.unfold(v, k, d, p, s), X4)
        cols = torch.nn.functional.unfold(torch.tensor(X4), k, d, p, s).numpy()
        _run(lambda v: torch.nn.functional.fold(v, (5, 7), k, d, p, s),
             lambda v: mt.nn.functional.fold(v, (5, 7), k, d, p, s), cols)
    v, i = torch.nn.functional.max_pool2d(torch.tensor(X4), 2, return_indices=True)
    _run(lambda a, b: torch.nn.functional.max_unpool2d(a, b, 2, output_size=(5, 7)),
         lambda a, b: mt.nn.functional.max_unpool2d(a, b, 2, output_size=(5, 7)), v.numpy(), i.numpy())
    w = RNG.standard_normal((10, 4)).astype(np.float32)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    off = np.array([0, 3, 3, 5])
    for mode in ("sum", "mean", "max"):
        _run(lambda a, b, c: torch.nn.functional.embedding_bag(b, a, c, mode=mode, padding_idx=4),
             lambda a, b, c: mt.nn.functional.embedding_bag(b, a, c, mode=mode, padding_idx=4), w, idx, off)


def test_native_norms_and_aten_blocks():
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    w, b = RNG.standard_normal(4).astype(np.float32), RNG.standard_normal(4).astype(np.float32)
    # all three outputs in one backward (torch's group-norm backward takes the statistics' gradients along)
    _run(lambda v, ww, bb: sum(o.sum() * (k + 1) for k, o in enumerate(torch.native_group_norm(v, ww, bb, 3, 4, 5, 2,
                                                                                                  1e-5))),
         lambda v, ww, bb: sum(o.sum() * (k + 1) for k, o in enumerate(mt.native_group_norm(v, ww, bb, 3, 4, 5, 2,
                                                                                               1e-5))), x, w, b)
    for i in range(3):
        _run(lambda v: torch.native_layer_norm(v, (4, 5), None, None, 1e-5)[i],
             lambda v: mt.native_layer_norm(v, (4, 5), None, None, 1e-5)[i], x)
    rm_t, rv_t = torch.zeros(4), torch.ones(4)
    rm_m, rv_m = mt.zeros(4), mt.ones(4)
    for i in range(3):
        _run(lambda v: torch.native_batch_norm(v, None, None, rm_t, rv_t, True, 0.1, 1e-5)[i],
             lambda v: mt.native_batch_norm(v, None, None, rm_m, rv_m, True, 0.1, 1e-5)[i], x)
    np.testing.assert_allclose(_np(rv_m), _np(rv_t), rtol=RTOL, atol=ATOL)
    y = np.array([[0.5, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], np.float32)
    _run(lambda v: torch.ops.aten._safe_softmax.default(v, 1), lambda v: mt.ops.aten._safe_softmax.default(v, 1), y)
    _run(lambda v: torch.nn.functional.pdist(v), lambda v: mt.nn.functional.pdist(v), x[0])
    _run(lambda v: torch.nn.functional.channel_shuffle(v, 2), lambda v: mt.nn.functional.channel_shuffle(v, 2), X4[:, :2])
    _run(lambda v: torch.constant_pad_nd(v, (1, -2, 0, 3), 2.5), lambda v: mt.constant_pad_nd(v, (1, -2, 0, 3), 2.5), x)
    _run(lambda a, c: torch._chunk_cat([a, c], 1, 3), lambda a, c: mt._chunk_cat([a, c], 1, 3), x, x[:, :, :2],
         grad=False)
    for red in ("sum", "mean", "max", "min"):
        _run(lambda v: torch._segment_reduce(v, red, lengths=torch.tensor([2, 0, 1]), axis=0),
             lambda v: mt._segment_reduce(v, red, lengths=mt.tensor([2, 0, 1]), axis=0), x, grad=False)


@pytest.mark.parametrize("name,args,kw,shape", [
    ("dropout2d", (0.4,), {}, (4, 6, 3, 3)), ("dropout3d", (0.5,), {}, (5, 2, 3, 3)),
    ("alpha_dropout", (0.3,), {"training": True}, (7, 33)),
    ("feature_alpha_dropout", (0.6,), {"training": True}, (4, 9, 5)),
    ("rrelu", (0.1, 0.4), {"training": True}, (17, 31)),
])
def test_random_ops_follow_torch_stream(name, args, kw, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(lambda v: getattr(torch.nn.functional, name)(v, *args, **kw),
             lambda v: getattr(mt.nn.functional, name)(v, *args, **kw), x, exact=True, seed=7)
    np.testing.assert_array_equal(_np(mt.rand(5)), torch.rand(5).numpy())  # same stream position afterwards


def test_fractional_max_pool_follows_torch_stream():
    for nd, x in ((2, X4), (3, X4.reshape(2, 3, 5, 7, 1).repeat(4, -1))):
        for kw in ({"output_ratio": (0.5,) * nd}, {"output_size": (2,) * nd}):
            fn = f"fractional_max_pool{nd}d"
            _run(lambda v: getattr(torch.nn.functional, fn)(v, 2, **kw),
                 lambda v: getattr(mt.nn.functional, fn)(v, 2, **kw), x, seed=3)
            torch.manual_seed(3)
            mt.manual_seed(3)
            ti = getattr(torch.nn.functional, fn)(torch.tensor(x), 2, return_indices=True, **kw)[1]
            mi = getattr(mt.nn.functional, fn)(mt.tensor(x), 2, return_indices=True, **kw)[1]
            np.testing.assert_array_equal(_np(mi), ti.numpy())


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_ctc_loss(reduction):
    T, N, C, S = 20, 3, 6, 7
    lp = torch.tensor(RNG.standard_normal((T, N, C)).astype(np.float32)).log_softmax(-1).numpy()
    tg = RNG.integers(1, C, (N, S))
    il, tl = (20, 15, 9), (7, 4, 0)
    for zi in (False, True):
        _run(lambda v, t: torch.nn.functional.ctc_loss(v, t, il, tl, 0, reduction, zi),
             lambda v, t: mt.nn.functional.ctc_loss(v, t, il, tl, 0, reduction, zi), lp, tg)
    _run(lambda v, t: torch.nn.CTCLoss(reduction=reduction)(v, t, torch.tensor(il), torch.tensor(tl)),
         lambda v, t: mt.nn.CTCLoss(reduction=reduction)(v, t, mt.tensor(il), mt.tensor(tl)), lp, tg)


@pytest.mark.parametrize("name,shape", [("LazyConv1d", (4, 7)), ("LazyConv2d", (2, 4, 5, 6)),
                                        ("LazyConvTranspose2d", (2, 4, 3, 3)), ("LazyConv3d", (1, 2, 3, 4, 4))])
def test_lazy_conv_initialises_like_torch(name, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    tm, mm = getattr(torch.nn, name)(5, 3), getattr(mt.nn, name)(5, 3)
    assert mt.nn.parameter.is_lazy(mm.weight) and mm.has_uninitialized_params()
    _run(lambda v: tm(v), lambda v: mm(v), x, seed=11)
    assert type(mm).__name__ == type(tm).__name__ and mm.in_channels == tm.in_channels
    np.testing.assert_array_equal(_np(mm.weight), tm.weight.detach().numpy())
    loaded = getattr(mt.nn, name)(5, 3)
    loaded.load_state_dict({k: mt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    np.testing.assert_allclose(_np(loaded(mt.tensor(x))), _np(tm(torch.tensor(x))), rtol=RTOL, atol=ATOL)
