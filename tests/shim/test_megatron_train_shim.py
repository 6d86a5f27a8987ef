"""tools/train.py, unmodified, on MindSpore CPU through the shim: the same steps as on real torch.

A tiny untied Qwen2 model (hidden 64, 2 layers, 4 heads / 2 kv heads, the real Qwen2.5 vocabulary) trains for
STEPS steps on ../shared/data/alpaca_zh_demo.json (converted with the real tokenizer, seq_length 64) in fp32 at
TP=1, once on real torch and once with `SHIM_BACKEND=mindspore` through the legacy launcher
(`python -m torch.distributed.launch --nproc_per_node 1`, served by the facade). Same initial weights, same data
order: the per-step loss must agree within 1e-4 absolute (grad norm, lr and token counts under the parity tool's
default tolerances), checked with `parity.compare_runs`. The shim run also writes its megatron-core patch
state ($MEGATRON_PATCHES_STATE), which `python -m megatron_patches --list` reads back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.session_run import run_in_session
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.shared]

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
# The acceptance list's first 10 steps. A shim step of this run measured 11-15 s at TP=1 on the 2 cores at load
# average 3-7 (2026-11-30; a 10-step shim run 137 s) but 34-105 s at load 11-33, so the shim run's time limit is
# per step (shim_timeout) and generous. The TP=1, TP=2 and DP=2 modules at 10 steps took 7.8, 7.3 and 7.7 min
# run side by side at load ~15 (alone on an idle machine expect about half).
STEPS = 10
RUN_TIMEOUT_S = 480


def shim_timeout(steps: int) -> float:
    """Seconds allowed for a shim training run of `steps` steps: start-up plus 120 s a step (the worst step
    measured on the loaded shared machine was 105 s)."""
    return 300.0 + 120.0 * steps


ARGS = ["--seq_length", "64", "--batch_size", "2", "--micro_batch_size", "1", "--train_iters", str(STEPS),
        "--mixed_precision", "fp32", "--learning_rate", "1e-3", "--seed", "7", "--save_steps", "0", "--no_export",
        "--log_interval", "1"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SHIM_BACKEND",
                        "MEGATRON_PATCHES_STATE")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `cmd` from the repository root in its own session (tests.helpers.session_run)."""
    res = run_in_session(cmd, env, REPO, timeout)
    assert res.returncode == 0, f"{' '.join(cmd[:6])} ... exit {res.returncode}:\n{res.stdout[-6000:]}"
    return res


def model_and_data(root: Path) -> tuple[Path, Path]:
    """The tiny model (`root/tiny`) and the converted alpaca_zh data (`root/data`, seq_length 64)."""
    from tests.conftest import shared_path

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    data, model = root / "data", root / "tiny"
    _run([PY, "tools/make_tiny_model.py", "--output_path", str(model), "--untie_word_embeddings",
          "--vocab_size", "151665", "--seed", "3", "--tokenizer_path", str(tokenizer)], _env())
    _run([PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
          "--output_path", str(data), "--seq_length", "64", "--overlength", "truncate", "--no_progress"], _env())
    return model, data


def train_args(model: Path, data: Path, steps: int = STEPS, precision: str = "fp32") -> list[str]:
    """tools/train.py's flags for these runs: ARGS with `steps` and `precision` put in."""
    args = list(ARGS)
    args[args.index("--train_iters") + 1] = str(steps)
    args[args.index("--mixed_precision") + 1] = precision
    return ["--model_path", str(model), "--data_path", str(data), *args]


def tp1_runs(root: Path, *extra: str, steps: int = STEPS, precision: str = "fp32") -> dict:
    """In `root`: the tiny model, the converted data, a reference run and a shim run at TP=1 (one process,
    legacy launcher for the shim) of `steps` steps in `precision` with `extra` flags. Returns the output
    directories {"ref", "shim"}, the shim run's patch-state path {"state"} and its output {"log"}."""
    model, data = model_and_data(root)
    common = [*train_args(model, data, steps, precision), *extra]
    ref = root / "ref"
    _run([PY, "tools/train.py", *common, "--output_path", str(ref)], _env())
    shim = root / "shim"
    state = root / "patch_state.json"
    log = _run([PY, "-m", "torch.distributed.launch", "--nproc_per_node", "1", "--master_port", str(free_port()),
                "tools/train.py", *common, "--output_path", str(shim)],
               _env(SHIM_BACKEND="mindspore", MEGATRON_PATCHES_STATE=str(state)),
               timeout=shim_timeout(steps))
    return {"ref": ref, "shim": shim, "state": state, "log": log.stdout}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The tiny model, the converted data, the reference run and the shim run (TP=1, fp32)."""
    return tp1_runs(tmp_path_factory.mktemp("megatron_shim"))


def test_shim_run_matches_reference_per_step(runs):
    from parity import Tolerance, compare_runs
    from parity.metrics import format_run_report

    manifest = json.loads((runs["shim"] / "manifest.json").read_text())
    assert manifest["versions"]["torch"].endswith("+mindspore"), manifest["versions"]
    ref_loss = [r["loss"] for r in map(json.loads, (runs["ref"] / "metrics.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    assert len(ref_loss) == STEPS
    cmp = compare_runs(runs["ref"], runs["shim"], step_range=(1, STEPS), tolerances={"loss": Tolerance(atol=1e-4)})
    assert cmp.ok, format_run_report(cmp)
    shim_loss = [r["loss"] for r in map(json.loads, (runs["shim"] / "metrics.jsonl").read_text().splitlines())
                 if r["kind"] == "train"]
    assert [abs(a - b) <= 1e-4 for a, b in zip(ref_loss, shim_loss)] == [True] * STEPS, (ref_loss, shim_loss)
    assert shim_loss[-1] != shim_loss[0]  # it trained: the parameters moved


def test_patch_state_written_and_listed(runs):
    import megatron_patches

    state = json.loads(runs["state"].read_text())
    assert state["megatron_core"] == "0.16.1" and state["applied_all"] is True
    assert set(state["patches"]) == {p.name for p in megatron_patches.registered()}
    for name, rec in state["patches"].items():
        assert rec["applied"], (name, rec)
    # this run saves no checkpoint (--save_steps 0 --no_export), so only the training-path patch is reached
    rec = state["patches"]["param_gather_copies_into_params"]
    assert rec["hits"] >= STEPS, rec
    r = subprocess.run([PY, "-m", "megatron_patches", "--list", "--state", str(runs["state"])], cwd=REPO,
                       env=_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "state from 1 process(es)" in r.stdout
