"""tools/train.py runs on real torch and under the shim, shared by the megatron-under-the-shim test modules
(tests/shim/test_megatron_train_shim*.py, test_megatron_checkpoint_shim*.py, test_tools_shim.py,
test_real_input_e2e_shim.py).

The runs: a tiny untied Qwen2 model (hidden 64, 2 layers, 4 heads / 2 kv heads, the real Qwen2.5 vocabulary) made
by tools/make_tiny_model.py and ../shared/data/alpaca_zh_demo.json converted with the real tokenizer (seq_length
64); the reference run is `tools/train.py` on real torch, the shim run the same command with
`SHIM_BACKEND=mindspore` through the legacy launcher (`python -m torch.distributed.launch`, served by the facade).
Every command runs from the repository root in its own session (tests.helpers.session_run) and must exit 0.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, shared_path
from tests.helpers.session_run import run_in_session

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
# The acceptance list's first 10 steps. A shim step of this run measured 11-15 s at TP=1 on the 2 cores at load
# average 3-7 (2026-11-30; a 10-step shim run 137 s) but 34-105 s at load 11-33, so the shim run's time limit is
# per step (shim_timeout) and generous. The TP=1, TP=2 and DP=2 modules at 10 steps took 7.8, 7.3 and 7.7 min
# run side by side at load ~15 (alone on an idle machine expect about half).
STEPS = 10
RUN_TIMEOUT_S = 480

ARGS = ["--seq_length", "64", "--batch_size", "2", "--micro_batch_size", "1", "--train_iters", str(STEPS),
        "--mixed_precision", "fp32", "--learning_rate", "1e-3", "--seed", "7", "--save_steps", "0", "--no_export",
        "--log_interval", "1"]


def shim_timeout(steps: int) -> float:
    """Seconds allowed for a shim training run of `steps` steps: start-up plus 120 s a step (the worst step
    measured on the loaded shared machine was 105 s)."""
    return 300.0 + 120.0 * steps


def tool_env(**extra: str) -> dict:
    """The environment of a tool run: this process's, without launcher/shim variables, offline HF, one OpenMP
    thread, the repository on PYTHONPATH, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SHIM_BACKEND",
                        "MEGATRON_PATCHES_STATE")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def run_tool(cmd: list[str], env: dict, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `cmd` from the repository root in its own session; fails the calling test unless it exits 0 within
    `timeout` seconds (the output's tail in the message)."""
    res = run_in_session(cmd, env, REPO, timeout)
    assert res.returncode == 0, f"{' '.join(cmd[:6])} ... exit {res.returncode}:\n{res.stdout[-6000:]}"
    return res


def run_parallel(*jobs) -> list[str]:
    """Run `(cmd, env, timeout)` jobs at once (each through `run_tool`); their outputs in order."""
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(run_tool, cmd, env, timeout) for cmd, env, timeout in jobs]
        return [f.result().stdout for f in futures]


_MODEL_AND_DATA: dict[str, tuple[Path, Path]] = {}


def model_and_data(root: Path) -> tuple[Path, Path]:
    """The tiny model (`tiny`) and the converted alpaca_zh data (`data`, seq_length 64); skips the calling test
    when ../shared is absent.

    Built once per test process, in the `root` of the first caller (the tmp_path_factory folders live for the
    whole session), and shared by every later caller: the inputs are deterministic (`make_tiny_model.py --seed 3`,
    data_convert's fixed split seed) and no run writes into them, so each module gets the same files it would have
    built itself, without ~20 s of conversion per module.
    """
    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    cached = _MODEL_AND_DATA.get("tiny_untied_seq64")
    if cached is not None and (cached[0] / "config.json").is_file() and (cached[1] / "meta.json").is_file():
        return cached
    data, model = root / "data", root / "tiny"
    run_tool([PY, "tools/make_tiny_model.py", "--output_path", str(model), "--untie_word_embeddings",
              "--vocab_size", "151665", "--seed", "3", "--tokenizer_path", str(tokenizer)], tool_env())
    run_tool([PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
              "--output_path", str(data), "--seq_length", "64", "--overlength", "truncate", "--no_progress"],
             tool_env())
    _MODEL_AND_DATA["tiny_untied_seq64"] = (model, data)
    return model, data


def train_args(model: Path, data: Path, steps: int = STEPS, precision: str = "fp32") -> list[str]:
    """tools/train.py's flags for these runs: ARGS with `steps` and `precision` put in."""
    args = list(ARGS)
    args[args.index("--train_iters") + 1] = str(steps)
    args[args.index("--mixed_precision") + 1] = precision
    return ["--model_path", str(model), "--data_path", str(data), *args]


def tp1_runs(root: Path, *extra: str, steps: int = STEPS, precision: str = "fp32", also_ref: dict | None = None
             ) -> dict:
    """In `root`: a reference run and a shim run at TP=1 (one process each, legacy launcher for the shim) of
    `steps` steps in `precision` with `extra` flags, on the shared tiny model and data (`model_and_data`).
    The runs are one process each, so they run side by side (one per core). `also_ref` ({name: flags for
    tools/train.py}) adds more reference runs beside them, each into `root/<name>`.
    Returns the output directories {"ref", "shim", **also_ref}, the shim run's patch-state path {"state"}, its
    output {"log"} and the inputs {"model", "data"}."""
    model, data = model_and_data(root)
    common = [*train_args(model, data, steps, precision), *extra]
    ref, shim, state = root / "ref", root / "shim", root / "patch_state.json"
    also_ref = also_ref or {}
    logs = run_parallel(
        ([PY, "-m", "torch.distributed.launch", "--nproc_per_node", "1", "--master_port", str(free_port()),
          "tools/train.py", *common, "--output_path", str(shim)],
         tool_env(SHIM_BACKEND="mindspore", MEGATRON_PATCHES_STATE=str(state)), shim_timeout(steps)),
        ([PY, "tools/train.py", *common, "--output_path", str(ref)], tool_env(), RUN_TIMEOUT_S),
        *(([PY, "tools/train.py", *flags, "--output_path", str(root / name)], tool_env(), RUN_TIMEOUT_S)
          for name, flags in also_ref.items()))
    return {"ref": ref, "shim": shim, "state": state, "log": logs[0], "model": model, "data": data,
            **{name: root / name for name in also_ref}}


def launcher_runs(root, *extra: str, nproc: int = 2, steps: int = STEPS, env: dict | None = None,
                  ref_timeout: float = 420) -> dict:
    """In `root`: model, data, then an `nproc`-process reference run and an `nproc`-process shim run of
    `steps` steps with `extra` flags (`env` adds variables to the shim run's environment). Returns the output
    directories {"ref", "shim"} and the shim run's patch-state path {"state"} (rank r > 0 writes
    `<state>.rank<r>`)."""
    model, data = model_and_data(root)
    common = [*train_args(model, data, steps), *extra]
    launch = [PY, "-m", "torch.distributed.launch", "--nproc_per_node", str(nproc)]
    ref, shim, state = root / "ref", root / "shim", root / "patch_state.json"
    run_tool([*launch, "--master_port", str(free_port()), "tools/train.py", *common, "--output_path", str(ref)],
             tool_env(), timeout=ref_timeout)
    run_tool([*launch, "--master_port", str(free_port()), "tools/train.py", *common, "--output_path", str(shim)],
             tool_env(SHIM_BACKEND="mindspore", MEGATRON_PATCHES_STATE=str(state), **(env or {})),
             timeout=shim_timeout(steps) * (1.5 if nproc > 2 else 1.0))
    return {"ref": ref, "shim": shim, "state": state}


def two_process_runs(root, *extra: str, env: dict | None = None) -> dict:
    """`launcher_runs` with 2 processes and STEPS (10) steps (the TP=2 and DP=2 runs)."""
    return launcher_runs(root, *extra, nproc=2, env=env)


def train_records(run: Path) -> dict:
    """`{step: record}` of the train records in `<run>/metrics.jsonl`."""
    return {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"}


def checkpoint_dir(run: Path, step: int) -> Path:
    """`<run>/checkpoints/iter_<step, 7 digits>` (tools/train.py's megatron-core checkpoint of `step`)."""
    return run / "checkpoints" / f"iter_{step:07d}"


def checkpoint_args(steps: int = 2) -> list[str]:
    """ARGS for the checkpoint runs: `steps` steps, a checkpoint every step (`--save_steps 1`), with the HF
    export."""
    args = [a for a in ARGS if a != "--no_export"]
    args[args.index("--train_iters") + 1] = str(steps)
    args[args.index("--save_steps") + 1] = "1"
    return args
