"""lr_scheduler parity: every schedule's lr sequence equals real torch's step by step (exact float equality,
since both run the same Python float recurrences), plus state_dict round trips and argument errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import torch
import shim.torch as mt


def _pair(groups_lrs=(0.1,)):
    """A facade optimizer and a real-torch optimizer with one parameter per group and the given lrs."""
    def build(lib):
        params = [lib.nn.Parameter(lib.zeros(2)) for _ in groups_lrs]
        return lib.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, groups_lrs)], lr=groups_lrs[0])
    return build(mt), build(torch)


def _trace(lib_opt, make_sched, steps):
    sched = make_sched(lib_opt)
    lrs = [[g["lr"] for g in lib_opt.param_groups]]
    for _ in range(steps):
        lib_opt.step()
        sched.step()
        lrs.append([g["lr"] for g in lib_opt.param_groups])
    return lrs, sched


CASES = {
    "lambda": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.95 ** s),
    "lambda_per_group": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(
        opt, [lambda s: 1.0 / (s + 1), lambda s: min(1.0, (s + 1) / 4)]),
    "linear": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0,
                                                               total_iters=7),
    "linear_decay": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.05,
                                                                     total_iters=10),
    "cosine": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=9, eta_min=1e-4),
    "cosine_past_tmax": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5),
    "step": lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "constant": lambda lib, opt: lib.optim.lr_scheduler.ConstantLR(opt, factor=0.25, total_iters=4),
    "exponential": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "sequential_warmup_cosine": lambda lib, opt: lib.optim.lr_scheduler.SequentialLR(
        opt,
        [lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=4),
         lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=1e-5)],
        milestones=[4]),
    "sequential_three": lambda lib, opt: lib.optim.lr_scheduler.SequentialLR(
        opt,
        [lib.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
         lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8),
         lib.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))],
        milestones=[3, 7]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch(name):
    lrs = (0.1, 0.03) if name == "lambda_per_group" else (0.1,)
    ours, ref = _pair(lrs)
    got, _ = _trace(ours, lambda o: CASES[name](mt, o), 20)
    want, _ = _trace(ref, lambda o: CASES[name](torch, o), 20)
    assert got == want  # exact: same float recurrences


def test_get_last_lr_and_initial_lr():
    ours, ref = _pair((0.2,))
    s1 = mt.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=4)
    s2 = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=4)
    for _ in range(3):
        ours.step(), ref.step(), s1.step(), s2.step()
    assert s1.get_last_lr() == s2.get_last_lr()
    assert ours.param_groups[0]["initial_lr"] == 0.2


def test_state_dict_round_trip_resumes_identically():
    full, _ = _pair((0.1,))
    make = CASES["sequential_warmup_cosine"]
    sched = make(mt, full)
    ref_lrs = []
    for i in range(15):
        full.step(), sched.step()
        ref_lrs.append(full.param_groups[0]["lr"])
    # restart from a checkpoint after step 6
    part, _ = _pair((0.1,))
    s_a = make(mt, part)
    for i in range(6):
        part.step(), s_a.step()
    saved_sched, saved_opt = s_a.state_dict(), part.state_dict()
    assert "_schedulers" in saved_sched and "optimizer" not in saved_sched
    resumed, _ = _pair((0.1,))
    s_b = make(mt, resumed)
    resumed.load_state_dict(saved_opt)
    s_b.load_state_dict(saved_sched)
    got = []
    for i in range(9):
        resumed.step(), s_b.step()
        got.append(resumed.param_groups[0]["lr"])
    assert got == ref_lrs[6:]


def test_lambda_state_dict_skips_plain_functions():
    ours, _ = _pair()
    s = mt.optim.lr_scheduler.LambdaLR(ours, lambda e: 1.0)
    assert s.state_dict()["lr_lambdas"] == [None]


def test_errors():
    ours, _ = _pair()
    with pytest.raises(ValueError, match="start_factor"):
        mt.optim.lr_scheduler.LinearLR(ours, start_factor=0.0)
    with pytest.raises(ValueError, match="milestones"):
        mt.optim.lr_scheduler.SequentialLR(ours, [mt.optim.lr_scheduler.ExponentialLR(ours, 0.9)], milestones=[3])
    with pytest.raises(TypeError, match="not an Optimizer"):
        mt.optim.lr_scheduler.StepLR(object(), 3)
    fresh, _ = _pair()
    with pytest.raises(KeyError, match="initial_lr"):
        mt.optim.lr_scheduler.StepLR(fresh, 3, last_epoch=5)


def test_cosine_closed_form_close_to_recurrence():
    ours, _ = _pair((1.0,))
    s = mt.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=10)
    for t in range(1, 11):
        ours.step(), s.step()
        assert math.isclose(ours.param_groups[0]["lr"], 0.5 * (1 + math.cos(math.pi * t / 10)), abs_tol=1e-12)
