"""Optimizers on the facade vs real torch: trajectories over several steps from identical weights and
gradients (fp32 rel. err ≤ 1e-5), state_dict format and round trips, zero_grad, param groups, errors."""
from __future__ import annotations

import numpy as np
import pytest

import torch
import shim.torch as mt

RTOL = 1e-5


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else t.detach().numpy()


def _run(lib, opt_cls_name, kwargs, steps=6, seed=0, groups=False, zero_grad_none=True):
    """Optimise a fixed quadratic-ish loss from fixed weights; returns the weights after every step."""
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    b0 = rng.standard_normal((4,)).astype(np.float32)
    xs = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(steps)]
    w = lib.nn.Parameter(lib.tensor(w0))
    b = lib.nn.Parameter(lib.tensor(b0))
    cls = getattr(lib.optim, opt_cls_name)
    if groups:
        opt = cls([{"params": [w]}, {"params": [b], "lr": kwargs.get("lr", 1e-3) * 3, "weight_decay": 0.0}],
                  **kwargs)
    else:
        opt = cls([w, b], **kwargs)
    history = []
    for x in xs:
        opt.zero_grad(set_to_none=zero_grad_none)
        y = lib.tensor(x) @ w + b
        loss = (y * y).mean() + (y.sum() * 0.1)
        loss.backward()
        opt.step()
        history.append((_np(w).copy(), _np(b).copy()))
    return history, opt


CONFIGS = [
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)),  # nanoGPT on "cuda"
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3)),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_trajectory_matches_torch(name, kwargs):
    ours, _ = _run(mt, name, kwargs)
    ref, _ = _run(torch, name, kwargs)
    for step, ((w1, b1), (w2, b2)) in enumerate(zip(ours, ref)):
        assert _rel_err(w1, w2) <= RTOL, f"step {step} weight"
        assert _rel_err(b1, b2) <= RTOL, f"step {step} bias"


def test_param_groups_and_zero_grad_to_zero():
    ours, o_opt = _run(mt, "AdamW", dict(lr=1e-2, weight_decay=0.2), groups=True, zero_grad_none=False)
    ref, t_opt = _run(torch, "AdamW", dict(lr=1e-2, weight_decay=0.2), groups=True, zero_grad_none=False)
    assert _rel_err(ours[-1][0], ref[-1][0]) <= RTOL and _rel_err(ours[-1][1], ref[-1][1]) <= RTOL
    o_opt.zero_grad(set_to_none=False)
    g = o_opt.param_groups[0]["params"][0].grad
    assert g is not None and float(g.abs().sum()) == 0.0
    o_opt.zero_grad()
    assert o_opt.param_groups[0]["params"][0].grad is None


def _state_to_np(sd):
    return {k: {n: (np.asarray(_np(v)) if hasattr(v, "detach") else v) for n, v in s.items()}
            for k, s in sd["state"].items()}


@pytest.mark.parametrize("name,kwargs", [("AdamW", dict(lr=1e-2)), ("SGD", dict(lr=0.1, momentum=0.9))])
def test_state_dict_format_matches_torch(name, kwargs):
    _, o_opt = _run(mt, name, kwargs, steps=3, groups=True)
    _, t_opt = _run(torch, name, kwargs, steps=3, groups=True)
    o_sd, t_sd = o_opt.state_dict(), t_opt.state_dict()
    assert o_sd["param_groups"] == t_sd["param_groups"]
    o_st, t_st = _state_to_np(o_sd), _state_to_np(t_sd)
    assert o_st.keys() == t_st.keys()
    for k in t_st:
        assert o_st[k].keys() == t_st[k].keys()
        for n in t_st[k]:
            assert np.asarray(o_st[k][n]).dtype == np.asarray(t_st[k][n]).dtype, (k, n)
            np.testing.assert_allclose(o_st[k][n], t_st[k][n], rtol=1e-5, atol=1e-7)
    if name == "AdamW":
        assert str(o_sd["state"][0]["step"].dtype) == "torch.float32"


def test_fused_adam_writes_a_view_parameter_through_to_its_base():
    """megatron's distributed optimizer hands Adam views (a shard of a detached parameter, a slice of the
    gradient buffer): the fused path updates the base's elements and nothing else, equal to torch."""
    from shim.torch.optim._functional import adam_step_fused, fusable
    rng = np.random.default_rng(1)
    p0, g0, m0 = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    v0 = np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    base = mt.nn.Parameter(mt.tensor(np.concatenate([p0.reshape(-1), np.ones(5, np.float32)])))
    p = base.detach()[:12].view(3, 4)
    g = mt.tensor(np.concatenate([np.zeros(3, np.float32), g0.reshape(-1)]))[3:].view(3, 4)
    m, v = mt.tensor(m0), mt.tensor(v0)
    assert fusable(p, g, m, v)
    adam_step_fused(p, g, m, v, None, 3, lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
                    amsgrad=False, maximize=False, decoupled_weight_decay=True)
    tp = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.AdamW([tp], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, foreach=False)
    opt.state[tp] = {"step": torch.tensor(2.0), "exp_avg": torch.tensor(m0), "exp_avg_sq": torch.tensor(v0)}
    tp.grad = torch.tensor(g0)
    opt.step()
    out = base.detach().numpy()
    assert _rel_err(out[:12].reshape(3, 4), tp.detach().numpy()) <= 1e-6
    assert (out[12:] == 1.0).all()
    assert _rel_err(m.numpy(), opt.state[tp]["exp_avg"].numpy()) <= 1e-6
    assert _rel_err(v.numpy(), opt.state[tp]["exp_avg_sq"].numpy()) <= 1e-6


def test_load_state_dict_resumes_trajectory():
    kwargs = dict(lr=1e-2, weight_decay=0.1)
    full, _ = _run(mt, "AdamW", kwargs, steps=6)
    # a second run: 3 steps, save, new optimizer + weights from the checkpoint, 3 more steps
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    b0 = rng.standard_normal((4,)).astype(np.float32)
    xs = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(6)]
    w, b = mt.nn.Parameter(mt.tensor(w0)), mt.nn.Parameter(mt.tensor(b0))
    opt = mt.optim.AdamW([w, b], **kwargs)

    def step(opt, w, b, x):
        opt.zero_grad()
        y = mt.tensor(x) @ w + b
        ((y * y).mean() + y.sum() * 0.1).backward()
        opt.step()

    for x in xs[:3]:
        step(opt, w, b, x)
    saved = opt.state_dict()
    saved_state = {k: {n: mt.tensor(_np(v)) for n, v in s.items()} for k, s in saved["state"].items()}
    saved = {"state": saved_state, "param_groups": saved["param_groups"]}
    w2, b2 = mt.nn.Parameter(mt.tensor(_np(w))), mt.nn.Parameter(mt.tensor(_np(b)))
    opt2 = mt.optim.AdamW([w2, b2], lr=0.5)  # lr is restored from the state dict
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    for x in xs[3:]:
        step(opt2, w2, b2, x)
    assert _rel_err(_np(w2), full[-1][0]) <= 1e-6
    assert _rel_err(_np(b2), full[-1][1]) <= 1e-6


def test_add_param_group_and_errors():
    p1 = mt.nn.Parameter(mt.zeros(2))
    p2 = mt.nn.Parameter(mt.zeros(3))
    opt = mt.optim.SGD([p1], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": p2, "lr": 0.01})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p1]})
    with pytest.raises(TypeError, match="iterable of Tensors"):
        mt.optim.AdamW(p1)
    with pytest.raises(ValueError, match="empty parameter list"):
        mt.optim.AdamW([])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        mt.optim.AdamW([p1], lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov"):
        mt.optim.SGD([p1], lr=0.1, nesterov=True)
    with pytest.raises(NotImplementedError, match="capturable=True"):
        mt.optim.AdamW([p1], capturable=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        mt.optim.AdamW([p1], fused=True, foreach=True)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        mt.optim.SGD([p1, p2], lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="doesn't match the size"):
        mt.optim.SGD([p1], lr=0.1).load_state_dict(mt.optim.SGD([p1, p2], lr=0.1).state_dict())


def test_step_hooks_and_closure():
    p = mt.nn.Parameter(mt.tensor([1.0, -2.0]))
    opt = mt.optim.SGD([p], lr=0.5)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    h = opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0 and calls == ["pre", "post"]
    assert p.detach().tolist() == [0.0, 0.0]  # p - 0.5 * 2p
    h.remove()
    opt.step(closure)
    assert calls == ["pre", "post", "pre"]


@pytest.mark.parametrize("decoupled,amsgrad,maximize", [(True, False, False), (False, True, True)])
def test_fused_and_op_by_op_adam_paths_agree_with_torch(decoupled, amsgrad, maximize):
    """The optimizer uses the fused path for base tensors and the op-by-op path (torch's in-place chain) for
    views; both must equal torch's update."""
    from shim.torch.optim._functional import adam_step, adam_step_fused
    rng = np.random.default_rng(5)
    p0, g0, m0 = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    v0 = np.abs(rng.standard_normal((3, 4))).astype(np.float32)
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, amsgrad=amsgrad, maximize=maximize,
              decoupled_weight_decay=decoupled)
    outs = []
    for fn in (adam_step, adam_step_fused):
        p, g, m, v = (mt.tensor(a) for a in (p0, g0, m0, v0))
        vmax = mt.tensor(v0 * 1.5)
        new_max = fn(p, g, m, v, vmax, 3, **kw)
        outs.append([p.numpy(), m.numpy(), v.numpy()] + ([new_max.numpy()] if amsgrad else []))
    # real torch's single-tensor step from the same state (step 2 -> 3)
    tp = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.Adam([tp], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, amsgrad=amsgrad,
                           maximize=maximize, decoupled_weight_decay=decoupled, foreach=False)
    opt.state[tp] = {"step": torch.tensor(2.0), "exp_avg": torch.tensor(m0), "exp_avg_sq": torch.tensor(v0)}
    if amsgrad:
        opt.state[tp]["max_exp_avg_sq"] = torch.tensor(v0 * 1.5)
    tp.grad = torch.tensor(g0)
    opt.step()
    ref = [tp.detach().numpy(), opt.state[tp]["exp_avg"].numpy(), opt.state[tp]["exp_avg_sq"].numpy()]
    if amsgrad:
        ref.append(opt.state[tp]["max_exp_avg_sq"].numpy())
    for got in outs:
        for a, b in zip(got, ref):
            assert _rel_err(a, b) <= 1e-6


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_trajectory_matches_torch_at_default_betas(weight_decay):
    """Five AdamW steps at torch's default betas (0.9, 0.999) through the fused path (MindSpore's Adam kernel with
    the second moment computed as torch does: the kernel's own 1-β2 in float32 would be 1.3e-5 off) on a view
    parameter, as megatron's distributed optimizer hands it: parameters and both moments equal torch's to float32
    rounding, the elements outside the view untouched."""
    from shim.torch.optim._functional import fusable
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(3000).astype(np.float32)
    grads = [(rng.standard_normal(3000) * 10.0 ** rng.uniform(-3, 1, 3000)).astype(np.float32) for _ in range(5)]
    base = mt.nn.Parameter(mt.tensor(np.concatenate([p0, np.ones(7, np.float32)])))
    p = base.detach()[:3000]
    opt = mt.optim.AdamW([p], lr=1e-3, weight_decay=weight_decay)
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = torch.optim.AdamW([tp], lr=1e-3, weight_decay=weight_decay, foreach=False)
    for g in grads:
        p.grad = mt.tensor(g)
        opt.step()
        tp.grad = torch.tensor(g)
        topt.step()
    st = opt.state[p]
    assert fusable(p, p.grad, st["exp_avg"], st["exp_avg_sq"])
    out = base.detach().numpy()
    assert _rel_err(out[:3000], tp.detach().numpy()) <= 1e-6
    assert (out[3000:] == 1.0).all()
    assert _rel_err(st["exp_avg"].numpy(), topt.state[tp]["exp_avg"].numpy()) <= 1e-6
    assert _rel_err(st["exp_avg_sq"].numpy(), topt.state[tp]["exp_avg_sq"].numpy()) <= 1e-6
