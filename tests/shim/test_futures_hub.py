"""torch.futures (Future, collect_all, wait_all), torch.hub's cache paths and torch.optim.optimizer.ParamsT on the
facade, each scenario run on real torch and on the facade and compared (Megatron-LM's filesystem_async, HF tokenizer
wrapper and muon optimizer import them)."""
from __future__ import annotations

import threading
import typing

import pytest
import torch.futures as real_futures
import torch.hub as real_hub
from torch.optim.optimizer import ParamsT as RealParamsT

pytest.importorskip("mindspore")

import shim.torch.futures as shim_futures  # noqa: E402
import shim.torch.hub as shim_hub  # noqa: E402
from shim.torch._unsupported import UnsupportedAPI  # noqa: E402
from shim.torch.optim.optimizer import ParamsT  # noqa: E402


def _outcome(fn):
    """('ok', value) or ('err', exception type name, first line of its message) of `fn()`."""
    try:
        return ("ok", fn())
    except BaseException as e:  # the scenarios compare error kinds across backends
        return ("err", type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def _scenario(futures) -> dict:
    Future = futures.Future
    out = {}
    f = Future()
    out["fresh_done"] = f.done()
    f.set_result(3)
    out["done"] = f.done()
    out["wait"] = f.wait()
    out["value"] = f.value()
    out["twice"] = _outcome(lambda: f.set_result(4))
    out["then"] = f.then(lambda fut: fut.value() * 10).wait()
    g = Future()
    g.set_exception(ValueError("bad"))
    out["failed_done"] = g.done()
    out["failed_wait"] = _outcome(g.wait)
    out["failed_value"] = _outcome(g.value)
    out["then_on_failed"] = g.then(lambda fut: 1).wait()  # the callback decides; it did not read the value
    out["then_reads_failed"] = _outcome(g.then(lambda fut: fut.value()).wait)[:2]
    out["then_raises"] = _outcome(f.then(lambda fut: 1 / 0).wait)
    out["set_exception_int"] = _outcome(lambda: Future().set_exception(3))[:2]
    # callbacks registered before completion run on completion, in order, and see the value
    seen = []
    h = Future()
    h.add_done_callback(lambda fut: seen.append(("cb", fut.value())))
    chained = h.then(lambda fut: seen.append(("then", fut.value())) or "chained")
    out["before_complete"] = (list(seen), chained.done())
    h.set_result(7)
    out["after_complete"] = (seen, chained.wait())
    # completion from another thread wakes a waiter
    t = Future()
    threading.Timer(0.05, lambda: t.set_result("late")).start()
    out["threaded"] = t.wait()
    a, b = Future(), Future()
    all_ab = futures.collect_all([a, b])
    a.set_result(1)
    out["collect_partial"] = all_ab.done()
    b.set_result(2)
    out["collect_values"] = [x.value() for x in all_ab.wait()]
    out["collect_failed"] = _outcome(futures.collect_all([f, g]).wait)
    out["wait_all"] = futures.wait_all([f, f.then(lambda fut: fut.value() + 1)])
    out["wait_all_failed"] = _outcome(lambda: futures.wait_all([f, g]))
    out["annotation"] = _outcome(lambda: Future[int] is not None)
    return out


def test_future_matches_real_torch():
    assert _scenario(shim_futures) == _scenario(real_futures)


def test_future_devices_and_unready_value():
    shim_futures.Future(devices=["cuda:0"])
    with pytest.raises(ValueError, match="Expected devices to have indices, got cpu"):
        shim_futures.Future(devices=["cpu"])
    with pytest.raises(ValueError, match="Expected devices to have indices, got cpu"):
        real_futures.Future(devices=["cpu"])
    # torch fails an internal assert here; the facade says what is wrong
    with pytest.raises(RuntimeError, match="has not completed yet"):
        shim_futures.Future().value()


def test_done_callback_errors_are_reported_and_ignored(capsys):
    f = shim_futures.Future()
    f.add_done_callback(lambda fut: {}["missing"])
    f.set_result(1)
    assert f.wait() == 1
    assert "KeyError" in capsys.readouterr().err


def test_hub_paths_match_real_torch(monkeypatch, tmp_path):
    for env in ({}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {"TORCH_HOME": str(tmp_path / "th")},
                {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": str(tmp_path)}):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert shim_hub._get_torch_home() == real_hub._get_torch_home()
        assert shim_hub.get_dir() == real_hub.get_dir()
    before = real_hub.get_dir()
    try:
        real_hub.set_dir(tmp_path / "h")
        shim_hub.set_dir(tmp_path / "h")
        assert shim_hub.get_dir() == real_hub.get_dir()
    finally:
        real_hub._hub_dir = None
        shim_hub._hub_dir = None
    assert real_hub.get_dir() == before == shim_hub.get_dir()
    with pytest.raises(TypeError, match="set_dir"):
        shim_hub.set_dir(3)
    with pytest.raises(UnsupportedAPI, match=r"torch.hub.load is not implemented by the shim"):
        shim_hub.load("owner/repo", "model")


def test_params_t_is_torchs_alias_shape():
    # Same three alternatives as torch's ParamsT (iterables of tensors, of dicts, of (name, tensor) pairs).
    real_args = typing.get_args(RealParamsT)
    shim_args = typing.get_args(ParamsT)
    assert len(shim_args) == len(real_args) == 3
    assert [typing.get_origin(a) for a in shim_args] == [typing.get_origin(a) for a in real_args]
