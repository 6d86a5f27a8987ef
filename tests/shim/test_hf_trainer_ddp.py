"""Acceptance: ``transformers.Trainer`` under torchrun with 2 processes (DDP), unmodified, on the shim vs real torch.

tests/shim/scripts/hf_tiny.py (mode ``trainer``) trains a tiny ``Qwen2ForCausalLM`` (hidden 32, 2 layers, vocab
128; saved by real torch) for 3 steps on 8 fixed rows, batch 2 per rank, AdamW (lr 1e-2), gradient clipping at 1.0:
- real torch: ``torchrun --nproc-per-node 2 ... --use-cpu true`` (accelerate's MULTI_CPU: DDP over gloo; without
  ``use_cpu`` accelerate on a machine without CUDA would train each rank alone);
- the shim: ``SHIM_BACKEND=mindspore torchrun --nproc-per-node 2 ... --use-cpu false``, the program as a GPU user
  runs it (accelerate's MULTI_GPU: ``DistributedDataParallel(device_ids=[local_rank])`` on ``cuda:<rank>``,
  backend ``nccl``; accelerate imports ``torch.distributed.algorithms.ddp_comm_hooks`` on this path).
Compared, per rank: the logged losses and gradient norms (the mean over ranks; 1e-5 relative), learning rates
(equal), step 1's gradients as the optimizer sees them (DDP-averaged and clipped; 1e-5 of each tensor's largest
magnitude), every weight after step 1 (the same tolerance plus Adam's amplification of the measured gradient
difference, as in test_hf_transformers.py: ``2 * lr * eps * |dg| / (min|g| + eps)**2``) and after step 3 (1e-5 of
the tensor's largest magnitude wherever step 1's gradient was at least 1e-6 = 100 eps; elements with smaller
gradients, where Adam turns rounding noise into steps of up to ~lr, within 3 lr: measured ~6e-6 relative and
~5e-6 absolute); both ranks hold identical weights.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers.session_run import run_in_session

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "shim" / "scripts" / "hf_tiny.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"
TOL = 1e-5
LR = 1e-2
EPS = 1e-8  # TrainingArguments.adam_epsilon default


def _env(shim: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIM_BACKEND", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    return env


def _run(cmd: list, shim: bool, cwd: Path) -> None:
    proc = run_in_session(cmd, _env(shim), cwd, timeout=400)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-6000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not TORCHRUN.exists():
        pytest.fail(f"real torch's torchrun is missing at {TORCHRUN} (the reference backend is a test dependency)")
    root = tmp_path_factory.mktemp("hf_ddp")
    _run([sys.executable, str(SCRIPT), "init", "--archs", "qwen2", "--dir", str(root / "init")], False, root)
    for side, shim, use_cpu in (("ref", False, "true"), ("shim", True, "false")):
        _run([str(TORCHRUN), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
              str(free_port()), str(SCRIPT), "trainer", "--archs", "qwen2", "--dir", str(root / "init"), "--out",
              str(root / side), "--use-cpu", use_cpu], shim, root)
    return root


def _load(root: Path, side: str, rank: int):
    base = root / side / "qwen2"
    return (json.loads((base / f"trainer_rank{rank}.json").read_text()),
            np.load(base / f"trainer_rank{rank}.npz"))


@pytest.mark.multiproc
@pytest.mark.slow
def test_trainer_ddp_runs_the_gpu_path_and_logs_torchs_losses(runs):
    for rank in (0, 1):
        ref, _ = _load(runs, "ref", rank)
        got, _ = _load(runs, "shim", rank)
        assert ref["torch_version"].endswith("+cpu") and got["torch_version"].endswith("+mindspore")
        assert (ref["backend"], ref["distributed_type"]) == ("gloo", "DistributedType.MULTI_CPU")
        assert (got["backend"], got["distributed_type"]) == ("nccl", "DistributedType.MULTI_GPU")
        assert got["device"] == f"cuda:{rank}" and got["world_size"] == 2 and got["rank"] == rank
        assert ref["wrapped"] == "torch.nn.parallel.distributed.DistributedDataParallel"
        assert got["wrapped"] == "shim.torch.nn.parallel.distributed.DistributedDataParallel"
        assert len(got["losses"]) == len(ref["losses"]) == 3
        for key in ("losses", "grad_norms"):
            for a, b in zip(got[key], ref[key]):
                assert abs(a - b) <= TOL * abs(b), (rank, key, got[key], ref[key])
        assert got["lrs"] == ref["lrs"]
        assert ref["grad_norms"][0] > 1.0  # clipping was active (max_grad_norm 1.0)
        assert ref["losses"][-1] < ref["losses"][0]


@pytest.mark.multiproc
@pytest.mark.slow
def test_trainer_ddp_gradients_and_weights_match_real_torch(runs):
    for rank in (0, 1):
        _, ref = _load(runs, "ref", rank)
        _, got = _load(runs, "shim", rank)
        assert sorted(ref.files) == sorted(got.files) and len(ref.files) == 3 * 27
        for key in ref.files:
            x, y = ref[key], got[key]
            assert x.shape == y.shape, key
            scale = float(np.abs(x).max())
            diff = np.abs(x - y)
            kind, name = key.split("/", 1)
            if kind == "grad":
                assert scale > 0 and float(diff.max()) <= TOL * scale, (rank, key, float(diff.max()), scale)
            elif kind == "step1":
                g_ref, g_got = ref["grad/" + name], got["grad/" + name]
                explained = 2 * LR * EPS * np.abs(g_ref - g_got) / (np.minimum(np.abs(g_ref), np.abs(g_got)) + EPS) ** 2
                assert float((diff - (TOL * scale + explained)).max()) <= 0, (rank, key, float(diff.max()), scale)
            else:  # final: where step 1's gradient was >= 1e-6 (100 eps) Adam does not amplify; elsewhere an
                # element moves by at most ~lr per step on either side
                g_min = np.minimum(np.abs(ref["grad/" + name]), np.abs(got["grad/" + name]))
                steady = g_min >= 1e-6
                assert float(diff[steady].max(initial=0.0)) <= TOL * scale, (rank, key, float(diff.max()), scale)
                assert float(diff.max()) <= 3 * LR, (rank, key, float(diff.max()))
    # DDP kept the replicas identical
    _, r0 = _load(runs, "shim", 0)
    _, r1 = _load(runs, "shim", 1)
    for key in r0.files:
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)
