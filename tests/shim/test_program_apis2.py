"""Program-level torch APIs, second part (issue 12 item 3): torch.onnx, torch.compile/torch.compiler/torch._dynamo,
torch.utils.tensorboard.SummaryWriter (event files read back and compared record for record with real torch's)
and torch.distributions (values, and samples under a seed, against real torch in the same process)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._dynamo
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from torch.utils.tensorboard import SummaryWriter as TorchSummaryWriter

import shim.torch as mt
from shim.torch.utils.tensorboard import SummaryWriter as ShimSummaryWriter


# ---------------------------------------------------------------------------------------------- torch.onnx
def test_onnx_importable_and_export_names_itself():
    import shim.torch.onnx as onnx
    assert onnx.is_in_onnx_export() is torch.onnx.is_in_onnx_export() is False
    with pytest.raises(NotImplementedError, match=r"torch\.onnx\.export is not implemented"):
        onnx.export(mt.nn.Linear(2, 2), (mt.zeros(1, 2),), "m.onnx")
    with pytest.raises(NotImplementedError, match=r"torch\.onnx\.dynamo_export is not implemented"):
        onnx.dynamo_export
    assert not hasattr(onnx, "dynamo_export") and not hasattr(torch.onnx, "dynamo_export")  # gone in torch 2.13 too
    assert mt.onnx is onnx


# ------------------------------------------------------------------------- torch.compile, compiler, _dynamo
def test_compile_eager_errors_match_torch():
    def f(x):
        return x + 1
    assert mt.compile(f) is f and mt.compile()(f) is f and mt.compile(fullgraph=True, dynamic=True)(f) is f
    m = mt.nn.Linear(2, 3)
    assert mt.compile(m, mode="reduce-overhead") is m
    assert mt.compiler.compile(m) is m
    for kwargs in ({"model": 3}, {"model": f, "mode": "foo"}, {"model": f, "mode": "default", "options": {}}):
        with pytest.raises(Exception) as ours:
            mt.compile(**kwargs)
        with pytest.raises(Exception) as ref:
            torch.compile(**kwargs)
        assert (type(ours.value), str(ours.value)) == (type(ref.value), str(ref.value))


def test_compiler_and_dynamo_helpers():
    def f(x):
        return x
    for lib in (mt, torch):
        assert lib.compiler.is_compiling() is False and lib.compiler.is_dynamo_compiling() is False
        assert lib._dynamo.is_compiling() is False
        lib.compiler.reset()
        lib._dynamo.reset()
    assert mt.compiler.disable(f) is f and mt.compiler.disable()(f) is f and mt._dynamo.disable(f) is f
    assert mt.compiler.disable(f, recursive=False, reason="x") is f
    t = mt.zeros(2, 3)
    assert mt._dynamo.mark_dynamic(t, 0) is None and mt._dynamo.mark_static(t, 1) is None
    with pytest.raises(NotImplementedError, match=r"torch\._dynamo\.explain"):
        mt._dynamo.explain(f)
    with pytest.raises(NotImplementedError, match=r"torch\.compiler\.set_stance"):
        mt.compiler.set_stance("force_eager")


def test_dynamo_config_defaults_and_names_as_torch():
    from shim.torch._dynamo.config import DEFAULTS
    cfg = mt._dynamo.config
    for name in DEFAULTS:
        assert getattr(cfg, name) == getattr(torch._dynamo.config, name), name
    old = cfg.cache_size_limit
    cfg.cache_size_limit = 64
    try:
        assert cfg.cache_size_limit == 64
    finally:
        cfg.cache_size_limit = old
    for lib in (mt, torch):
        with pytest.raises(AttributeError, match=r"torch\._dynamo\.config\.foo_bar does not exist"):
            lib._dynamo.config.foo_bar = 1
        with pytest.raises(AttributeError, match=r"torch\._dynamo\.config\.foo_bar does not exist"):
            lib._dynamo.config.foo_bar


# -------------------------------------------------------------------------------- torch.utils.tensorboard
def _events(root: Path) -> dict:
    """{event file's directory relative to root: [Event, ...]}; the wall times of records without a summary (file
    version, purge_step's restart records: time of creation) are cleared."""
    out = {}
    for path in sorted(root.rglob("events.out.tfevents.*")):
        events = list(EventFileLoader(str(path)).Load())
        assert events[0].file_version == "brain.Event:2"
        for e in events:
            if not e.HasField("summary"):
                e.wall_time = 0.0
        out[str(path.parent.relative_to(root))] = [e.SerializeToString() for e in events]
    return out


def _log(writer_cls, lib, logdir):
    rs = np.random.RandomState(0)
    data = rs.randn(500).astype(np.float32)
    w = writer_cls(str(logdir), purge_step=None)
    for step in range(3):
        w.add_scalar("loss/train", lib.tensor(1.5 / (step + 1)), step, walltime=100.0 + step)
        w.add_scalar("lr", 0.1 * step, step, walltime=100.5 + step)
        w.add_scalar("acc", np.float64(0.25) * step, global_step=step, walltime=101.0, new_style=True)
        w.add_scalar("acc64", 0.3 * step, step, walltime=101.0, new_style=True, double_precision=True)
        w.add_scalars("run/14h", {"xsinx": step * 0.5, "xcosx": lib.tensor(float(step)) * 2}, step,
                      walltime=102.0 + step)
    w.add_histogram("weights", lib.tensor(data), 7, walltime=103.0)
    w.add_histogram("ints", lib.arange(10), 8, bins="auto", walltime=103.5)
    w.add_histogram("few", np.array([0.0, 0.0, 3.0]), 9, max_bins=7, walltime=104.0)
    w.add_histogram("fd", data, 10, bins="fd", max_bins=5, walltime=104.5)
    w.add_text("notes", "**hello** — 世界", 11, walltime=105.0)
    w.flush()
    w.close()
    w2 = writer_cls(str(logdir / "resumed"), purge_step=2)
    w2.add_scalar("loss/train", 0.25, 2, walltime=106.0)
    w2.close()


def test_summary_writer_event_files_equal_torch(tmp_path):
    _log(TorchSummaryWriter, torch, tmp_path / "torch")
    _log(ShimSummaryWriter, mt, tmp_path / "shim")
    ref, ours = _events(tmp_path / "torch"), _events(tmp_path / "shim")
    assert sorted(ours) == sorted(ref) == [".", "resumed", "run_14h_xcosx", "run_14h_xsinx"]
    for d in ref:
        assert len(ours[d]) == len(ref[d]), d
        for i, (a, b) in enumerate(zip(ours[d], ref[d])):
            assert a == b, (d, i)


def test_summary_writer_read_by_tensorboard(tmp_path):
    with ShimSummaryWriter(tmp_path) as w:
        for step, v in enumerate([3.0, 2.0, 1.25]):
            w.add_scalar("loss", mt.tensor(v), step)
        w.add_histogram("h", mt.arange(6, dtype=mt.float32), 0)
        w.add_text("t", "abc", 0)
    acc = EventAccumulator(str(tmp_path)).Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, 3.0), (1, 2.0), (2, 1.25)]
    h = acc.Histograms("h")[0].histogram_value
    assert (h.min, h.max, h.num, h.sum, h.sum_squares) == (0.0, 5.0, 6, 15.0, 55.0)
    assert acc.Tensors("t/text_summary")[0].tensor_proto.string_val == [b"abc"]
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_summary_writer_errors_and_unsupported(tmp_path):
    w = ShimSummaryWriter(tmp_path)
    with pytest.raises(ValueError, match=r"add_scalar\('x'\): expected one value, got 2 values"):
        w.add_scalar("x", mt.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"add_text\('t'\): text_string must be a str"):
        w.add_text("t", 3)
    with pytest.raises(NotImplementedError, match=r"SummaryWriter\.add_image is not implemented"):
        w.add_image("img", mt.zeros(3, 4, 4))
    assert not hasattr(w, "add_hparams")  # libraries (HF's TensorBoardCallback) probe it
    w.close()


def test_summary_writer_default_logdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = ShimSummaryWriter(comment="_lr0.1")
    try:
        d = Path(w.get_logdir())
        assert d.parent == Path("runs") and d.name.endswith("_lr0.1") and d.is_dir()
        assert os.path.isdir(os.path.join(tmp_path, d))
    finally:
        w.close()


# ------------------------------------------------------------------------------------------ torch.distributions
def _np(t):
    return t.detach().numpy()


def _dists(lib):
    """name -> (distribution, in-support values for log_prob/cdf), same parameters on each backend."""
    D, t = lib.distributions, lib.tensor
    return {
        "normal": (D.Normal(t([0.5, -1.0, 2.0]), t([1.0, 0.5, 3.0])), t([[0.1, 0.2, 0.3], [-2.0, 1.0, 9.0]])),
        "normal_scalar": (D.Normal(0.0, 2.0), t([0.25, -3.0])),
        "normal_f64": (D.Normal(t([1.0], dtype=lib.float64), 0.5), t([0.3], dtype=lib.float64)),
        "uniform": (D.Uniform(t([0.0, -2.0]), t([1.0, 5.0])), t([0.5, 4.0])),
        "uniform_scalar": (D.Uniform(-1.0, 3.0), t([0.0, 2.5, -1.0])),
        "bernoulli_probs": (D.Bernoulli(probs=t([0.2, 0.7, 0.5])), t([1.0, 0.0, 1.0])),
        "bernoulli_logits": (D.Bernoulli(logits=t([[-1.5, 0.0], [3.0, 0.25]])), t([[1.0, 0.0], [0.0, 1.0]])),
        "categorical_probs": (D.Categorical(probs=t([[0.1, 0.2, 0.7], [2.0, 1.0, 1.0]])), t([2, 0])),
        "categorical_logits": (D.Categorical(logits=t([0.1, 0.5, 1.0, -2.0])), t([[0, 3], [1, 2]])),
    }


STATS = ["mean", "variance", "stddev", "mode"]
NAMES = list(_dists(mt))
TOL = {"rtol": 3e-5, "atol": 1e-6}  # the facade's float32 exp/log differ from torch's by up to ~1.4e-5 relative


@pytest.mark.parametrize("name", NAMES)
def test_distribution_values_match_torch(name):
    (ours, v_ours), (ref, v_ref) = _dists(mt)[name], _dists(torch)[name]
    assert tuple(ours.batch_shape) == tuple(ref.batch_shape) and tuple(ours.event_shape) == tuple(ref.event_shape)
    for stat in STATS:
        a, b = _np(getattr(ours, stat)), _np(getattr(ref, stat))
        assert a.dtype == b.dtype and a.shape == b.shape, stat
        np.testing.assert_allclose(a, b, err_msg=stat, equal_nan=True, **TOL)
    for fn in ("log_prob", "cdf"):
        if hasattr(ref, fn) and name.split("_")[0] in ("normal", "uniform") or fn == "log_prob":
            a, b = _np(getattr(ours, fn)(v_ours)), _np(getattr(ref, fn)(v_ref))
            assert a.dtype == b.dtype and a.shape == b.shape, fn
            np.testing.assert_allclose(a, b, err_msg=fn, **TOL)
    np.testing.assert_allclose(_np(ours.entropy()), _np(ref.entropy()), **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_distribution_samples_under_a_seed_equal_torch(name):
    out = []
    for lib in (torch, mt):
        d, _ = _dists(lib)[name]
        lib.manual_seed(1234)
        draws = [d.sample(), d.sample((5,)), d.sample((2, 3))]
        if d.has_rsample:
            draws += [d.rsample(), d.rsample((4,))]
        draws.append(lib.rand(2))  # the generators advanced by the same amount
        out.append([_np(x) for x in draws])
    for a, b in zip(out[1], out[0]):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), (a, b)


def test_rsample_gradients_match_torch():
    grads = []
    for lib in (torch, mt):
        loc = lib.tensor([0.5, -1.0], requires_grad=True)
        scale = lib.tensor([1.0, 2.0], requires_grad=True)
        low = lib.tensor([0.0], requires_grad=True)
        lib.manual_seed(7)
        x = lib.distributions.Normal(loc, scale).rsample((3,))
        y = lib.distributions.Uniform(low, 2.0).rsample((4,))
        z = lib.distributions.Normal(loc, scale).log_prob(lib.tensor([0.0, 1.0]))
        ((x ** 2).sum() + (y * 3).sum() + z.sum()).backward()
        grads.append([_np(g.grad) for g in (loc, scale, low)])
    for a, b in zip(grads[1], grads[0]):
        np.testing.assert_allclose(a, b, **TOL)


def _kl_pairs(lib):
    D, t = lib.distributions, lib.tensor
    return [
        (D.Normal(t([0.0, 1.0]), t([1.0, 2.0])), D.Normal(t([0.5, -1.0]), t([2.0, 0.5]))),
        (D.Bernoulli(probs=t([0.2, 0.7, 0.0, 1.0])), D.Bernoulli(logits=t([0.0, 1.0, -2.0, 3.0]))),
        (D.Bernoulli(probs=t([0.3, 0.6])), D.Bernoulli(probs=t([0.0, 1.0]))),
        (D.Categorical(logits=t([[0.1, 0.5, 1.0], [2.0, 0.0, -1.0]])), D.Categorical(probs=t([0.2, 0.3, 0.5]))),
        (D.Categorical(probs=t([0.5, 0.5, 0.0])), D.Categorical(probs=t([0.0, 0.5, 0.5]))),
        (D.Uniform(0.0, 1.0), D.Uniform(-1.0, t([2.0, 0.5]))),
    ]


@pytest.mark.parametrize("i", range(len(_kl_pairs(torch))))
def test_kl_divergence_matches_torch(i):
    (p, q), (rp, rq) = _kl_pairs(mt)[i], _kl_pairs(torch)[i]
    a, b = _np(mt.distributions.kl_divergence(p, q)), _np(torch.distributions.kl_divergence(rp, rq))
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, **TOL)


def test_distribution_errors():
    D, t = mt.distributions, mt.tensor
    for lib in (mt, torch):  # (importing torch._dynamo turns torch's default validation off: ask for it)
        with pytest.raises(ValueError, match="parameter scale"):
            lib.distributions.Normal(lib.tensor([0.0]), -1.0, validate_args=True)
        with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both"):
            lib.distributions.Bernoulli()
        with pytest.raises(NotImplementedError, match="No KL"):
            lib.distributions.kl_divergence(lib.distributions.Categorical(logits=lib.zeros(2)),
                                            lib.distributions.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="within the support"):
        D.Bernoulli(probs=t([0.5])).log_prob(t([0.5]))
    assert D.Bernoulli(probs=t([0.5]), validate_args=False).log_prob(t([1.0])).shape == (1,)
    with pytest.raises(ValueError, match="within the support"):
        D.Categorical(probs=t([0.5, 0.5])).log_prob(t([2]))
    with pytest.raises(ValueError, match="within the support"):
        D.Categorical(probs=t([0.5, 0.5])).log_prob(t([0.5]))
    with pytest.raises(ValueError, match="The value argument to log_prob must be a Tensor"):
        D.Normal(0.0, 1.0).log_prob(0.5)
    with pytest.raises(NotImplementedError, match=r"torch\.distributions\.MultivariateNormal"):
        D.MultivariateNormal
    with pytest.raises(NotImplementedError, match=r"torch\.distributions\.Normal\.support"):
        D.Normal(0.0, 1.0).support


def test_in_place_random_fill_of_a_0d_tensor_stays_0d():
    """Normal(0-d loc, 0-d scale).sample() fills a 0-d tensor in place; its storage must stay 0-d (it became
    1-d, and the next op then broadcast to shape [1])."""
    out = []
    for lib in (torch, mt):
        lib.manual_seed(3)
        a, b, c = lib.empty(()).normal_(), lib.empty(()).uniform_(), lib.empty(()).bernoulli_(0.5)
        out.append([(_np(x * lib.tensor(2.0)).shape, float(x)) for x in (a, b, c)])
    assert out[1] == out[0] and out[0][0][0] == ()
