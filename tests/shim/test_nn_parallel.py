"""torch.nn.parallel.DistributedDataParallel on the shim against real torch's DDP (gloo), 2 processes on loopback.

tests/shim/dist_scripts/ddp_scenarios.py runs unmodified on both backends (real torch under torchrun, the shim
under its launcher) and records, per rank: parameters after the initial broadcast, buffers after the forward-time
broadcast, averaged gradients over several buckets, no_sync / require_backward_grad_sync accumulation,
find_unused_parameters with a rank-dependent branch and a globally unused layer, the unfinished-reduction error,
and state_dict keys; communication hooks (torch's default hooks, the compress wrappers, noop, a hook of the script's
own recording the buckets it is handed, before and after torch's bucket rebuild). Every value must equal real
torch's (fp32, rtol 1e-5).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "shim" / "dist_scripts" / "ddp_scenarios.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"


def _run(tmp: Path, tag: str, shim: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SHIM_BACKEND"}
    env.update(SHIM_TEST_OUT=str(tmp), SHIM_TEST_TAG=tag, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
        cmd = [sys.executable, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port", str(free_port()),
               str(SCRIPT)]
    else:
        cmd = [str(TORCHRUN), "--nproc-per-node", "2", "--master-port", str(free_port()), str(SCRIPT)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {r: json.loads((tmp / f"{tag}_rank{r}.json").read_text()) for r in range(2)}


def _assert_same(want, got, path: str) -> None:
    if isinstance(want, dict):
        assert set(want) == set(got), f"{path}: keys {sorted(want)} vs {sorted(got)}"
        for k in want:
            _assert_same(want[k], got[k], f"{path}.{k}")
    elif want is None or isinstance(want, (str, bool)):
        assert got == want, f"{path}: shim {got!r} torch {want!r}"
    elif isinstance(want, list) and want and isinstance(want[0], str):
        assert got == want, f"{path}: shim {got} torch {want}"
    elif isinstance(want, list) and any(isinstance(v, (dict, str)) for v in want):  # records (hook_buckets)
        assert len(got) == len(want), f"{path}: {len(got)} records vs torch's {len(want)}"
        for i, (w, g) in enumerate(zip(want, got)):
            _assert_same(w, g, f"{path}[{i}]")
    elif path.endswith(".shapes"):
        assert got == want, f"{path}: shim {got} torch {want}"
    elif path.endswith("buffer_sum"):  # a sum of up to 266k float32 gradients: summation order differs
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5), path
    elif path.endswith("big.weight"):  # [sum, first row] of a 520x512 gradient
        assert got[0] == pytest.approx(want[0], rel=1e-4, abs=1e-5), path
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-7, err_msg=path)
    else:
        np.testing.assert_allclose(np.array(got, dtype=np.float64), np.array(want, dtype=np.float64),
                                   rtol=1e-5, atol=1e-7, err_msg=path)


@pytest.mark.multiproc
@pytest.mark.slow
def test_ddp_two_ranks_equals_real_torch(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip("real torch's torchrun is not installed (the reference backend)")
    ref = _run(tmp_path, "torch", shim=False)
    got = _run(tmp_path, "shim", shim=True)
    for r in range(2):
        t, s = ref[r], got[r]
        assert t["backend"] == "gloo" and s["backend"] == "nccl"  # each answers the name its script asked for
        # the error text is torch's first sentence; the rest names the parameters
        first = "Expected to have finished reduction in the prior iteration before starting a new one."
        assert t["unfinished_error"].startswith(first) and s["unfinished_error"].startswith(first)
        for key in t:
            if key not in ("backend", "unfinished_error"):
                _assert_same(t[key], s[key], f"rank{r}.{key}")
    # the values are really averaged: both ranks hold the same gradients, unlike their local ones
    for key in ("basic_grads", "after_sync_grads", "flag_sync_grads", "unused_grads"):
        _assert_same(got[0][key], got[1][key], key)
    assert got[0]["no_sync_local_grads"]["fc1.weight"] != got[1]["no_sync_local_grads"]["fc1.weight"]
    # the globally unused layer keeps grad None; rank 1 got rank 0's half of the side branch
    assert got[1]["unused_grads"]["never.weight"] is None and got[1]["unused_grads"]["side.weight"] is not None
    assert got[1]["init_params"] == got[0]["init_params"]
    assert got[1]["stat_after_forward"] == [10.0, 10.0] and got[1]["stat_not_broadcast"] == [2.0, 2.0]
    assert "module.fc1.weight" in got[0]["state_dict_keys"] and "module.stat" in got[0]["state_dict_keys"]
    # communication hooks: the allreduce hook is DDP's mean; the compressed ones really reduced in half precision
    # (their values differ from the mean); noop leaves local gradients; the program's hook saw torch's buckets
    # (one at first, then the rebuilt two) and its SUM + 1 reached the gradients
    hooks = got[0]["hook_grads"]
    _assert_same(hooks["allreduce"], got[1]["hook_grads"]["allreduce"], "allreduce rank0 vs rank1")
    assert hooks["fp16"]["fc2.bias"] != hooks["allreduce"]["fc2.bias"] != hooks["bf16"]["fc2.bias"]
    assert hooks["noop"]["fc2.bias"] != got[1]["hook_grads"]["noop"]["fc2.bias"]
    assert [b["index"] for b in got[0]["hook_buckets"] if isinstance(b, dict)] == [0, 0, 1]


# ------------------------------------------------------------------------------ in-process (a world of one)
@pytest.fixture
def one_rank_world():
    import shim.torch.distributed as dist
    saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE", "MS_ROLE") if k in os.environ}
    dist.init_process_group("nccl", init_method="env://", world_size=1, rank=0)
    try:
        yield dist
    finally:
        dist.destroy_process_group()
        os.environ.update(saved)


def test_ddp_one_rank_equals_plain_training_and_refuses_what_it_lacks(one_rank_world):
    import shim.torch as mt
    from shim.torch.nn.parallel import DistributedDataParallel as DDP

    assert one_rank_world.get_backend() == "nccl"
    assert mt.nn.parallel.DistributedDataParallel is DDP  # reachable as an attribute, as in torch
    torch = pytest.importorskip("torch")
    w0 = np.random.RandomState(0).uniform(-1, 1, size=(3, 4)).astype(np.float32)
    x = np.random.RandomState(1).uniform(-1, 1, size=(5, 4)).astype(np.float32)
    ref = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(w0))
    (ref(torch.tensor(x)) ** 2).mean().backward()
    m = mt.nn.Linear(4, 3, bias=False)
    with mt.no_grad():
        m.weight.copy_(mt.tensor(w0))
    ddp = DDP(m, device_ids=[0])
    (ddp(mt.tensor(x)) ** 2).mean().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert list(ddp.state_dict()) == ["module.weight"] and ddp.module is m
    with ddp.no_sync():
        assert ddp.require_backward_grad_sync is False
    assert ddp.require_backward_grad_sync is True

    with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
        DDP(mt.nn.Linear(2, 2).requires_grad_(False))
    with pytest.raises(ValueError, match="device_ids must be None or a list of one device"):
        DDP(mt.nn.Linear(2, 2), device_ids=[0, 1])
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        DDP(lambda v: v)
    with pytest.raises(NotImplementedError, match=r"DistributedDataParallel\(device_mesh=...\)"):
        DDP(mt.nn.Linear(2, 2), device_mesh=object())
    with pytest.raises(TypeError, match="Communication hook must be callable"):
        ddp.register_comm_hook(None, None)
    with pytest.raises(TypeError, match="must take a parameter named 'bucket'"):
        ddp.register_comm_hook(None, lambda state, b: b)
    with pytest.raises(NotImplementedError, match="DataParallel"):  # a type (for isinstance), not constructible
        mt.nn.parallel.DataParallel(mt.nn.Linear(2, 2))


def test_ddp_needs_an_initialised_group():
    import shim.torch as mt
    from shim.torch.nn.parallel import DistributedDataParallel as DDP
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        DDP(mt.nn.Linear(2, 2))


def test_comm_hooks_in_one_rank_world(one_rank_world):
    """The hook plumbing in a world of one: what a hook receives and returns, and the refusals (values across
    ranks are compared with real torch in test_ddp_two_ranks_equals_real_torch)."""
    import shim.torch as mt
    from shim.torch.distributed.algorithms import ddp_comm_hooks as hooks
    from shim.torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
    from shim.torch.nn.parallel import DistributedDataParallel as DDP

    def fresh():
        m = mt.nn.Linear(3, 2)
        with mt.no_grad():
            m.weight.copy_(mt.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]))
            m.bias.copy_(mt.tensor([0.01, -0.02]))
        return m, DDP(m)

    x = mt.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    plain, _ = fresh()
    (plain(x) ** 2).sum().backward()

    seen = []

    def doubling(state, bucket):
        seen.append((state, bucket.index(), bucket.is_last(), bucket.buffer().numel(), len(bucket.parameters())))
        bucket.gradients()[0].mul_(0.0)  # a view: writes the buffer
        fut = mt.futures.Future()
        fut.set_result(bucket.buffer() * 2)
        return fut

    m, ddp = fresh()
    ddp.register_comm_hook("my-state", doubling)
    (ddp(x) ** 2).sum().backward()
    assert seen == [("my-state", 0, True, 8, 2)]
    # bucket order is registration order (weight, bias); the hook zeroed the weight's view and doubled the rest
    np.testing.assert_array_equal(m.weight.grad.numpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_allclose(m.bias.grad.numpy(), 2 * plain.bias.grad.numpy(), rtol=1e-6)

    m, ddp = fresh()
    hooks.register_ddp_comm_hook(hooks.DDPCommHookType.ALLREDUCE, ddp)
    (ddp(x) ** 2).sum().backward()
    np.testing.assert_array_equal(m.weight.grad.numpy(), plain.weight.grad.numpy())  # a mean over one rank

    m, ddp = fresh()
    ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    (ddp(x) ** 2).sum().backward()
    assert m.weight.grad.dtype == mt.float32
    np.testing.assert_array_equal(m.weight.grad.numpy(),
                                  plain.weight.grad.numpy().astype(np.float16).astype(np.float32))

    # a Work's future holds the output tensors
    t = mt.ones(3)
    fut = one_rank_world.all_reduce(t, async_op=True).get_future()
    assert fut.done() and fut.value()[0] is t

    def returns_list(state, bucket):
        f = mt.futures.Future()
        f.set_result([bucket.buffer()])
        return f

    for bad, err in ((returns_list, "the value of its Future must be a Tensor, got list"),
                     (lambda state, bucket: bucket.buffer(), "must return a torch.futures.Future, got Tensor")):
        _, ddp = fresh()
        ddp.register_comm_hook(None, bad)
        with pytest.raises(RuntimeError, match=err):
            (ddp(x) ** 2).sum().backward()

    def wrong_annotation(state, bucket: int):
        return None

    with pytest.raises(ValueError, match="bucket annotation should be dist.GradBucket"):
        fresh()[1].register_comm_hook(None, wrong_annotation)
    with pytest.raises(TypeError, match="must be a DDPCommHookType"):
        hooks.register_ddp_comm_hook("FP16_COMPRESS", fresh()[1])
    with pytest.raises(NotImplementedError, match="powerSGD_hook.PowerSGDState is not implemented"):
        hooks.DDPCommHookType.POWER_SGD.value(model=fresh()[1], state=None)
    with pytest.raises(NotImplementedError, match="powerSGD_hook.powerSGD_hook is not implemented"):
        powerSGD_hook.powerSGD_hook(None, None)
    bucket = one_rank_world.GradBucket(0, True, mt.zeros(8), [mt.zeros(2, 3), mt.zeros(2)])
    with pytest.raises(ValueError, match="expected a 1-D tensor of 8 elements, got shape \\(7,\\)"):
        bucket.set_buffer(mt.zeros(7))
