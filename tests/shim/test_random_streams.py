"""torch's CPU random streams on the facade (issue 11 item 4): under the same seed / generator, the facade's random
functions give real torch's values bit for bit, and generator states move between the two backends.

Sizes straddle torch's 16-element normal_fill threshold (1, 15, 16, 17, 1000); float32 and float64; each check
also compares the next draw, so the generators must have advanced by the same amount."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import shim.torch as st

SIZES = [1, 15, 16, 17, 1000]
FLOATS = [("float32", torch.float32, st.float32), ("float64", torch.float64, st.float64)]


def _bits(t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()
    return a.dtype, a.shape, a.tobytes()


def _same(ref, got):
    ra, ga = ref.detach().numpy(), got.detach().numpy()
    assert ra.dtype == ga.dtype and ra.shape == ga.shape, (ra.dtype, ga.dtype, ra.shape, ga.shape)
    if not np.array_equal(ra.view(np.uint8), ga.view(np.uint8)):
        bad = np.flatnonzero(ra.reshape(-1) != ga.reshape(-1))
        raise AssertionError(f"{bad.size} of {ra.size} values differ, first at {bad[:5]}: "
                             f"torch {ra.reshape(-1)[bad[:3]]} shim {ga.reshape(-1)[bad[:3]]}")


def _both(fn, seed=1234):
    """fn(T) under manual_seed(seed) on each backend, plus a probe draw after it."""
    out = []
    for T in (torch, st):
        T.manual_seed(seed)
        r = fn(T)
        out.append((r, T.rand(3)))
    return out


def _check(fn, seed=1234):
    (r_t, p_t), (r_s, p_s) = _both(fn, seed)
    for a, b in zip(r_t if isinstance(r_t, tuple) else (r_t,), r_s if isinstance(r_s, tuple) else (r_s,)):
        _same(a, b)
    _same(p_t, p_s)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name,tdt,sdt", FLOATS, ids=[f[0] for f in FLOATS])
def test_rand_randn(n, name, tdt, sdt):
    _check(lambda T: (T.rand(n, dtype=tdt if T is torch else sdt), T.randn(n, dtype=tdt if T is torch else sdt),
                      T.randn(2, n, dtype=tdt if T is torch else sdt)))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name,tdt,sdt", FLOATS, ids=[f[0] for f in FLOATS])
def test_inplace_distributions(n, name, tdt, sdt):
    def draws(T):
        dt = tdt if T is torch else sdt
        return (T.empty(n, dtype=dt).normal_(0.5, 2.5), T.empty(n, dtype=dt).uniform_(-1.5, 3.25),
                T.empty(n, dtype=dt).bernoulli_(0.3), T.empty(n, dtype=dt).exponential_(1.7),
                T.empty(n, dtype=dt).random_(0, 50), T.normal(2.0, 0.5, (n,), dtype=dt))
    _check(draws)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_reduced_precision_draws(n, name):
    def draws(T):
        dt = getattr(T, name)
        return (T.randn(n, dtype=dt).float(), T.empty(n, dtype=dt).normal_(0.5, 2.0).float(),
                T.empty(n, dtype=dt).uniform_(-0.3, 0.7).float(), T.rand(n, dtype=dt).float())
    _check(draws)


@pytest.mark.parametrize("n", SIZES)
def test_randint_randperm(n):
    _check(lambda T: (T.randint(0, 7, (n,)), T.randint(-3, 2 ** 40, (n,)), T.randint(10, (2, n)),
                      T.randperm(n), T.empty(n, dtype=T.int64).random_()))


def test_randn_cache_and_generator_objects():
    """Small normal draws cache the second Box-Muller value (as torch's generator does); Generator objects keep
    separate streams from the default one."""
    def draws(T):
        g = T.Generator().manual_seed(99)
        return (T.randn(3), T.randn(1, generator=g), T.randn(5), T.rand(20, generator=g), T.randn(40, generator=g),
                T.randperm(30, generator=g), T.randint(5, (7,), generator=g))
    _check(draws)


def test_non_contiguous_inplace_draws_follow_memory_order():
    def draws(T):
        base = T.zeros(6, 20)
        base.t().normal_()                       # transposed view: torch's serial path in memory order
        x = T.zeros(4, 5)
        x.t().uniform_(-1, 1)
        return base, x
    _check(draws)


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_multinomial(replacement, k):
    w = np.abs(np.sin(np.arange(40, dtype=np.float32))).reshape(4, 10) + 0.01
    _check(lambda T: (T.multinomial(T.tensor(w), k, replacement), T.multinomial(T.tensor(w[0]), k, replacement),
                      T.bernoulli(T.tensor(w / 2))))


@pytest.mark.parametrize("n", [16, 1000])
def test_dropout_functional_and_module(n):
    x = np.linspace(-2, 2, 3 * n, dtype=np.float32).reshape(3, n)

    def draws(T):
        xt = T.tensor(x)
        m = T.nn.Dropout(0.3)
        return (T.nn.functional.dropout(xt, 0.1), m(xt), T.nn.functional.dropout(xt, 0.5, training=False),
                T.nn.functional.dropout(xt.double(), 0.25))
    _check(draws)


def test_dropout_bf16_and_gradient():
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(4, 16)
    res = {}
    for T in (torch, st):
        T.manual_seed(5)
        xt = T.tensor(x, requires_grad=True)
        y = T.nn.functional.dropout(xt.to(T.bfloat16), 0.2)
        y.float().sum().backward()
        res[T] = (y.float(), xt.grad)
    for a, b in zip(res[torch], res[st]):
        _same(a, b)


def test_dropout_under_autocast_matches_torch():
    x = np.linspace(-1, 1, 48, dtype=np.float32).reshape(3, 16)
    w = np.linspace(-0.5, 0.5, 256, dtype=np.float32).reshape(16, 16)

    def draws(T):
        with T.autocast("cpu", dtype=T.bfloat16):
            h = T.tensor(x) @ T.tensor(w)
            return T.nn.functional.dropout(h, 0.25).float()
    _check(draws)


@pytest.mark.parametrize("name,tdt,sdt", FLOATS, ids=[f[0] for f in FLOATS])
def test_nn_init(name, tdt, sdt):
    def draws(T):
        dt = tdt if T is torch else sdt
        I = T.nn.init
        ts = [T.empty(17, 33, dtype=dt) for _ in range(9)]
        I.uniform_(ts[0], -0.2, 0.7)
        I.normal_(ts[1], 0.1, 0.02)
        I.xavier_uniform_(ts[2], gain=1.3)
        I.xavier_normal_(ts[3])
        I.kaiming_uniform_(ts[4], a=math.sqrt(5))
        I.kaiming_normal_(ts[5], mode="fan_out", nonlinearity="relu")
        I.trunc_normal_(ts[6], std=0.02)
        I.trunc_normal_(ts[7], mean=0.0, std=1.0, a=-0.5, b=0.5)
        I.trunc_normal_(ts[8], mean=0.0, std=1.0, a=1.0, b=1.5)   # rejection by log-density branch
        return tuple(ts)
    _check(draws)


def test_orthogonal_init_close_to_torch():
    res = {}
    for T in (torch, st):
        T.manual_seed(3)
        w = T.empty(6, 10)
        T.nn.init.orthogonal_(w, gain=2.0)
        res[T] = (w.numpy(), T.rand(3).numpy())
    np.testing.assert_allclose(res[st][0], res[torch][0], rtol=1e-5, atol=1e-6)
    assert np.array_equal(res[st][1], res[torch][1])


def test_nn_linear_and_embedding_initial_weights_equal_torch():
    def build(T):
        T.manual_seed(0)
        lin = T.nn.Linear(24, 40)
        emb = T.nn.Embedding(50, 8) if hasattr(T.nn, "Embedding") else None
        out = [lin.weight, lin.bias]
        if emb is not None:
            out.append(emb.weight)
        return tuple(p.detach() for p in out)
    a, b = build(torch), build(st)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        _same(x, y)


def test_rng_state_round_trips_between_backends():
    torch.manual_seed(42)
    st.manual_seed(42)
    torch.randn(7)
    st.randn(7)
    ts, ss = torch.get_rng_state(), st.get_rng_state()
    assert ss.dtype == st.uint8 and tuple(ss.shape) == (5056,)
    assert np.array_equal(ts.numpy(), ss.numpy())
    # torch's state into the shim and the shim's into torch: the following draws agree
    torch.rand(100)
    st.set_rng_state(st.tensor(torch.get_rng_state().numpy()))
    _same(torch.randn(20), st.randn(20))
    torch.set_rng_state(torch.from_numpy(st.get_rng_state().numpy().copy()))
    _same(torch.randn(3), st.randn(3))
    g = st.Generator()
    g.set_state(st.tensor(ts.numpy()))
    torch.set_rng_state(ts)
    _same(torch.randn(33), st.randn(33, generator=g))


def test_state_with_cached_normal_and_fresh_seed():
    for seed in (0, 2 ** 40 + 5, -1):
        torch.manual_seed(seed)
        st.manual_seed(seed)
        assert torch.initial_seed() == st.initial_seed()
        assert np.array_equal(torch.get_rng_state().numpy(), st.get_rng_state().numpy())
        torch.randn(1)
        st.randn(1)                                    # leaves a cached second normal value
        assert np.array_equal(torch.get_rng_state().numpy(), st.get_rng_state().numpy())


def test_bad_states_are_refused():
    with pytest.raises(TypeError, match="ByteTensor"):
        st.set_rng_state(st.zeros(5056))
    with pytest.raises(ValueError, match="size"):
        st.set_rng_state(st.zeros(10, dtype=st.uint8))
    with pytest.raises(ValueError, match="Invalid mt19937 state"):
        st.set_rng_state(st.zeros(5056, dtype=st.uint8))


def test_fork_rng_and_cuda_generator_share_the_stream():
    st.manual_seed(8)
    before = st.cuda.get_rng_state()
    a = st.randn(20)
    st.cuda.set_rng_state(before)
    assert np.array_equal(st.randn(20).numpy(), a.numpy())
    st.cuda.manual_seed(11)
    torch.manual_seed(11)
    _same(torch.rand(5), st.rand(5))


@pytest.mark.slow
def test_unmodified_script_draws_torchs_initial_weights(tmp_path):
    """tests/shim/scripts/tiny_transformer.py seeded with torch.manual_seed(0) and initialised by its own modules
    (`--write-init`, each backend writing its own draws) starts from the same weights bit for bit and trains to
    the same loss curve as real torch (the tolerance of test_tiny_transformer_script)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).parent / "scripts" / "tiny_transformer.py"
    outs = {}
    for backend in ("torch", "mindspore"):
        env = {k: v for k, v in __import__("os").environ.items() if k != "SHIM_BACKEND"}
        if backend == "mindspore":
            env["SHIM_BACKEND"] = "mindspore"
        init, out = tmp_path / f"{backend}.npz", tmp_path / f"{backend}.json"
        proc = subprocess.run([sys.executable, str(script), "--write-init", str(init), "--out", str(out),
                               "--steps", "6", "--save-at", "3"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
        outs[backend] = (np.load(init), json.loads(out.read_text()))
    (ref_w, ref), (got_w, got) = outs["torch"], outs["mindspore"]
    assert got["torch_version"].endswith("+mindspore")
    assert sorted(ref_w.files) == sorted(got_w.files)
    for k in ref_w.files:
        assert ref_w[k].dtype == got_w[k].dtype and np.array_equal(ref_w[k], got_w[k]), k
    errors = [abs(a - b) / abs(b) for a, b in zip(got["losses"], ref["losses"])]
    assert max(errors) <= 1e-5, errors


def test_data_loader_without_generator_follows_the_global_stream():
    """A shuffling DataLoader with no generator draws its seeds from the default generator, as torch does: the
    order and the draws after it equal torch's."""
    res = {}
    for T in (torch, st):
        T.manual_seed(17)
        data = T.arange(23)
        loader = T.utils.data.DataLoader(data, batch_size=5, shuffle=True)
        order = [b.tolist() for b in loader] + [b.tolist() for b in loader]
        split = [list(s.indices) for s in T.utils.data.random_split(range(10), [4, 6])]
        res[T] = (order, split, T.randn(20).numpy())
    assert res[torch][0] == res[st][0]
    assert res[torch][1] == res[st][1]
    assert np.array_equal(res[torch][2], res[st][2])
