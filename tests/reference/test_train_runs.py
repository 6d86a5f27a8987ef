"""End-to-end training runs of tools/train.py on real torch (CPU, gloo) with a tiny Qwen2 model and the real
Qwen2.5 tokenizer on ../shared/data/alpaca_zh_demo.json (converted by tools/data_convert.py).

- TP=1 in one process is the baseline (10 steps, checkpoints at 5 and 10, validation at 10, HF export);
- TP=2 (scripts/tune_qwen25_7b_4k_full_ms.sh → `python -m torch.distributed.launch`, with the original's
  `RANK_ID=0` exported to every process), PP=2 and DP=2 (`torchrun`) must reproduce its loss curve within 1e-4;
- a save killed half-way leaves the previous checkpoint valid, and `--resume` from step 5 reproduces steps 6–10
  exactly;
- the HF export loads in `transformers` and gives the validation loss the trainer computed.

The tiny model's vocabulary (151,665 rows = the tokenizer's ids) is padded differently at TP=1 (151,680) and
TP=2 (151,808): equal curves also show the padded rows never reach the loss.
"""
from __future__ import annotations

import concurrent.futures
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.session_run import run_in_session
from tests.conftest import free_port

pytestmark = [pytest.mark.multiproc, pytest.mark.shared, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TORCHRUN = [PY, "-m", "torch.distributed.run"]
SEED = 7
STEPS = 10
RUN_TIMEOUT_S = 420
COMMON = ["--seq_length", "256", "--batch_size", "4", "--micro_batch_size", "2", "--train_iters", str(STEPS),
          "--mixed_precision", "fp32", "--learning_rate", "1e-3", "--lr_warmup_fraction", "0.2", "--min_lr", "1e-4",
          "--weight_decay", "0.01", "--clip_grad", "1.0", "--seed", str(SEED), "--log_interval", "5"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "RANK_ID", "RANK_SIZE")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `cmd` from the repository root in its own session (tests.helpers.session_run)."""
    return run_in_session(cmd, env, REPO, timeout)


def _check(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout[-6000:]}"
    return r.stdout


def _metrics(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _train_records(out_dir: Path) -> list[dict]:
    return [r for r in _metrics(out_dir) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def work(tmp_path_factory, request) -> dict:
    """Converted alpaca_zh data (real tokenizer, seq 256) and a tiny tied-embedding Qwen2 model."""
    from tests.conftest import shared_path
    from qwen_sft.tiny import TinyQwen2Config, make_tiny_model

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    root = tmp_path_factory.mktemp("train_runs")
    data = root / "data"
    _check(_run([PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
                 "--output_path", str(data), "--seq_length", "256", "--split_ratio", "0.95", "--no_progress"],
                _env(), timeout=180))
    model = root / "tiny"
    make_tiny_model(model, TinyQwen2Config(vocab_size=151665, seed=3), tokenizer_dir=tokenizer)
    return {"root": root, "data": data, "model": model, "tokenizer": tokenizer}


def _args(work: dict, out: Path, *extra: str) -> list[str]:
    return ["--model_path", str(work["model"]), "--data_path", str(work["data"]), "--output_path", str(out),
            "--tokenizer_path", str(work["tokenizer"]), *COMMON, *extra]


@pytest.fixture(scope="module")
def baseline(work) -> dict:
    """TP=1, one process, no launcher: checkpoints every 5 steps, validation at step 10, HF export.

    Beside it (one process each, one per core; time limits doubled for the shared cores) runs the first half of
    the killed-save test: the same training whose save at step 10 dies half-way (`killed`: its output folder and
    exit status, checked by that test)."""
    out = work["root"] / "tp1"
    killed_out = work["root"] / "resume"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        main = pool.submit(_run, [PY, "tools/train.py", *_args(work, out, "--save_steps", "5", "--eval_interval",
                                                                "10")], _env(), 2 * RUN_TIMEOUT_S)
        killed = pool.submit(_run, [PY, "-c", _DYING_SAVE, *_args(work, killed_out, "--save_steps", "5",
                                                                  "--no_export")], _env(), 2 * RUN_TIMEOUT_S)
        log = _check(main.result())
        killed_run = killed.result()
    return {"out": out, "log": log, "train": _train_records(out), "all": _metrics(out),
            "killed": {"out": killed_out, "run": killed_run}}


def _assert_same_curve(records: list[dict], reference: list[dict], what: str) -> None:
    assert [r["step"] for r in records] == list(range(1, STEPS + 1)), what
    for r, ref in zip(records, reference):
        assert abs(r["loss"] - ref["loss"]) <= 1e-4, (what, r["step"], r["loss"], ref["loss"])
        assert abs(r["grad_norm"] - ref["grad_norm"]) <= 1e-4 * ref["grad_norm"], (what, r["step"])
        assert r["lr"] == pytest.approx(ref["lr"], rel=1e-12, abs=1e-15), (what, r["step"])
        assert (r["learnable_tokens"], r["total_tokens"]) == (ref["learnable_tokens"], ref["total_tokens"]), what


def _hf_state(out: Path) -> dict:
    from qwen_sft import hf_io

    return hf_io.load_hf_state_dict(out)


def _assert_same_export(out: Path, reference: Path, what: str) -> None:
    a, b = _hf_state(out), _hf_state(reference)
    assert sorted(a) == sorted(b), what
    for k in a:
        assert a[k].shape == b[k].shape, (what, k)
        assert torch.allclose(a[k], b[k], atol=2e-4, rtol=0), (what, k, (a[k] - b[k]).abs().max().item())


# --------------------------------------------------------------------------------------------- the baseline run
def test_metrics_jsonl_content(work, baseline):
    from qwen_sft.batching import SFTSampleDataset, global_batch_indices

    train = baseline["train"]
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))
    ds = SFTSampleDataset(work["data"], "train")
    warmup, lr_max, lr_min = 2, 1e-3, 1e-4
    for r in train:
        k = r["step"] - 1
        idx = global_batch_indices(len(ds), 4, SEED, k)
        learnable = sum(int(np.count_nonzero(ds[int(i)][1][1:] != -100)) for i in idx)
        assert r["learnable_tokens"] == learnable
        assert r["total_tokens"] == int((ds.lengths[idx] - 1).sum())
        assert r["padded_tokens"] == 4 * (int(ds.lengths[idx].max()) - 1) >= r["total_tokens"]
        # Megatron's schedule: linear warm-up from 0 over 2 steps, then cosine to min_lr at step 10.
        expected_lr = lr_max * k / warmup if k <= warmup else (
            lr_min + 0.5 * (math.cos(math.pi * (k - warmup) / (STEPS - warmup)) + 1) * (lr_max - lr_min))
        assert r["lr"] == pytest.approx(expected_lr, rel=1e-9, abs=1e-15)
        assert math.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["step_time_s"] > 0
        assert r["learnable_tokens_per_s"] == pytest.approx(r["learnable_tokens"] / r["step_time_s"])
        assert r["total_tokens_per_s"] == pytest.approx(r["total_tokens"] / r["step_time_s"])
        assert r["peak_rss_mib"] > 50 and r["skipped"] is False
    assert train[0]["loss"] == pytest.approx(math.log(151665), abs=0.1)  # a random tiny model: ~uniform
    assert train[-1]["loss"] < train[0]["loss"] - 0.05
    evals = [r for r in baseline["all"] if r["kind"] == "eval"]
    assert len(evals) == 1 and evals[0]["step"] == STEPS
    assert evals[0]["valid_ppl"] == pytest.approx(math.exp(evals[0]["valid_loss"]))
    for word in ("learnable tokens/s", "total tokens/s", "peak_rss_mib", "grad norm", "step time"):
        assert word in baseline["log"]


def test_manifest_and_checkpoints(work, baseline):
    import hashlib

    out = baseline["out"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["backend"] == "torch" and m["versions"]["torch"] == torch.__version__
    assert m["versions"]["megatron_core"] == "0.16.1"
    assert m["seed"] == SEED and m["device"]["type"] == "cpu" and m["device"]["process_group_backend"] == "gloo"
    assert m["parallel"] == {"world_size": 1, "tensor_model_parallel_size": 1, "pipeline_model_parallel_size": 1,
                             "expert_model_parallel_size": 1, "data_parallel_size": 1, "num_microbatches": 2}
    assert m["data"]["meta_sha256"] == hashlib.sha256((work["data"] / "meta.json").read_bytes()).hexdigest()
    assert m["model"]["fingerprint"]["kind"] == "content" and len(m["model"]["fingerprint"]["sha256"]) == 64
    ck = out / "checkpoints"
    assert (ck / "latest_checkpointed_iteration.txt").read_text().strip() == "10"
    assert sorted(p.name for p in ck.iterdir() if p.is_dir()) == ["iter_0000005", "iter_0000010"]
    assert (ck / "iter_0000005" / "metadata.json").is_file()


def test_hf_export_loads_and_matches_validation_loss(work, baseline):
    """The exported HF folder loads in transformers; its loss on the valid split equals the trainer's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from qwen_sft.batching import SFTSampleDataset

    out = baseline["out"]
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok) == 151665
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    valid = SFTSampleDataset(work["data"], "valid")
    used = len(valid) - len(valid) % 4
    loss_sum, count = 0.0, 0
    with torch.no_grad():
        for i in range(used):
            ids, labels = (torch.from_numpy(a.astype(np.int64)) for a in valid[i])
            logits = model(ids[None]).logits[0, :-1].float()
            loss_sum += torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=-100,
                                                          reduction="sum").item()
            count += int((labels[1:] != -100).sum())
    ev = [r for r in baseline["all"] if r["kind"] == "eval"][0]
    assert ev["valid_tokens"] == count
    assert loss_sum / count == pytest.approx(ev["valid_loss"], rel=1e-5)


# --------------------------------------------------------------------------------------------- killed save, resume
_DYING_SAVE = r"""
import os, runpy, sys
from megatron.core import dist_checkpointing
real_save = dist_checkpointing.save
def dying_save(sharded_state_dict, checkpoint_dir, *args, **kwargs):
    if checkpoint_dir.endswith("iter_0000010.tmp"):
        with open(os.path.join(checkpoint_dir, "__0_0.distcp"), "wb") as f:
            f.write(b"half a checkpoint")
        os._exit(9)  # the process dies in the middle of writing
    return real_save(sharded_state_dict, checkpoint_dir, *args, **kwargs)
dist_checkpointing.save = dying_save
sys.argv = ["tools/train.py"] + sys.argv[1:]
runpy.run_path("tools/train.py", run_name="__main__")
"""


def test_killed_save_keeps_previous_and_resume_reproduces_steps(work, baseline):
    out, r = baseline["killed"]["out"], baseline["killed"]["run"]  # run beside the baseline (its fixture)
    assert r.returncode == 9, r.stdout[-4000:]
    ck = out / "checkpoints"
    assert (ck / "latest_checkpointed_iteration.txt").read_text().strip() == "5"
    assert (ck / "iter_0000010.tmp").is_dir() and not (ck / "iter_0000010").exists()
    killed = _train_records(out)
    assert [x["loss"] for x in killed] == [x["loss"] for x in baseline["train"]]  # deterministic run

    log = _check(_run([PY, "tools/train.py", *_args(work, out, "--save_steps", "5", "--resume", "--no_export")],
                      _env()))
    assert "loaded checkpoint" in log and "step 5" in log
    resumed = _train_records(out)
    assert [x["step"] for x in resumed] == list(range(1, STEPS + 1))  # the interrupted tail was replaced
    for x, ref in zip(resumed[5:], baseline["train"][5:]):
        assert (x["step"], x["loss"], x["grad_norm"], x["lr"]) == (ref["step"], ref["loss"], ref["grad_norm"],
                                                                   ref["lr"])
    assert (ck / "latest_checkpointed_iteration.txt").read_text().strip() == "10"
    assert (ck / "iter_0000010" / "metadata.json").is_file() and not (ck / "iter_0000010.tmp").exists()


# --------------------------------------------------------------------------------------------- parallel layouts
def test_tp2_via_script_and_legacy_launcher_matches_tp1(work, baseline):
    out = work["root"] / "tp2"
    env = _env(RANK_SIZE="2", DEVICE_NUM="2", RANK_ID="0", TP="2", PP="1", MASTER_PORT=str(free_port()),
               MODEL_PATH=str(work["model"]), DATA_PATH=str(work["data"]), OUTPUT_PATH=str(out),
               TOKENIZER_PATH=str(work["tokenizer"]), SEQ_LENGTH="256", BATCH_SIZE="4", MICRO_BATCH_SIZE="2",
               LEARNING_RATE="1e-3", EPOCHS="1", SAVE_STEPS="0", MIXED_PRECISION="fp32", SEED=str(SEED),
               PYTHON=PY)
    _check(_run(["bash", "scripts/tune_qwen25_7b_4k_full_ms.sh", "--train_iters", str(STEPS),
                 "--lr_warmup_fraction", "0.2", "--min_lr", "1e-4", "--log_interval", "5"], env))
    m = json.loads((out / "manifest.json").read_text())
    assert (m["parallel"]["world_size"], m["parallel"]["tensor_model_parallel_size"]) == (2, 2)
    _assert_same_curve(_train_records(out), baseline["train"], "TP=2")
    _assert_same_export(out, baseline["out"], "TP=2")


@pytest.mark.parametrize("layout", ["pp2", "dp2"])
def test_torchrun_layouts_match_tp1(work, baseline, layout):
    out = work["root"] / layout
    extra = ["--pp", "2"] if layout == "pp2" else []
    args = _args(work, out, *extra)
    if layout == "pp2":
        # --model_path also takes a converted Megatron checkpoint (here TP=2 shards, resharded to PP=2).
        converted = work["root"] / "tiny_megatron_tp2"
        _check(_run([PY, "tools/convert_ckpt.py", "--model_path", str(work["model"]), "--output_path",
                     str(converted), "--tp", "2", "--pp", "1"], _env(), timeout=180))
        args[args.index("--model_path") + 1] = str(converted)
    cmd = [*TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "tools/train.py", *args]
    _check(_run(cmd, _env()))
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["kind"] == ("megatron" if layout == "pp2" else "hf")
    expected = {"pp2": (1, 2, 1, 2), "dp2": (1, 1, 2, 1)}[layout]
    p = m["parallel"]
    assert (p["tensor_model_parallel_size"], p["pipeline_model_parallel_size"], p["data_parallel_size"],
            p["num_microbatches"]) == expected
    _assert_same_curve(_train_records(out), baseline["train"], layout)
    _assert_same_export(out, baseline["out"], layout)


# --------------------------------------------------------------------------------------------- resume across layouts
def _torchrun(nproc: int, args: list[str]) -> list[str]:
    return [*TORCHRUN, "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1", "--master_port",
            str(free_port()), "tools/train.py", *args]


def _assert_resumed_tail(out: Path, log: str, reference: list[dict], what: str) -> None:
    """Steps 6-10 of a run resumed from a step-5 checkpoint saved in another layout repeat the uninterrupted run."""
    assert "loaded checkpoint" in log and "step 5" in log, (what, log[-3000:])
    assert "resharded" in log, (what, log[-3000:])   # the note: other layout, RNG states kept from this run
    resumed = _train_records(out)
    assert [r["step"] for r in resumed] == list(range(6, STEPS + 1)), what
    for r, ref in zip(resumed, reference[5:]):
        assert abs(r["loss"] - ref["loss"]) <= 1e-5, (what, r["step"], r["loss"], ref["loss"])
        assert abs(r["grad_norm"] - ref["grad_norm"]) <= 1e-4 * ref["grad_norm"], (what, r["step"])
        assert r["lr"] == pytest.approx(ref["lr"], rel=1e-12, abs=1e-15), (what, r["step"])


def test_tp1_checkpoint_resumes_at_tp2pp2(work, baseline):
    out = work["root"] / "tp1_to_tp2pp2"
    load = baseline["out"] / "checkpoints" / "iter_0000005"
    log = _check(_run(_torchrun(4, _args(work, out, "--tp", "2", "--pp", "2", "--load", str(load), "--no_export")),
                      _env()))
    _assert_resumed_tail(out, log, baseline["train"], "TP=1 PP=1 -> TP=2 PP=2")


def test_tp2pp2_checkpoint_resumes_at_tp1_and_pp2(work):
    """An untied model (Qwen2.5-7B's kind) trained at TP=2 PP=2 for 10 steps, resumed from its step-5 checkpoint
    at TP=1 PP=1 and at TP=1 PP=2: steps 6-10 repeat the uninterrupted run. (A tied model at PP > 1 saves the
    optimizer as 'dp_reshardable', resumable at its own TP and PP only: `optimizer_sharding_for`.) Its last
    checkpoint (the output folder, latest iteration) converted by `convert_ckpt.py mg2hf` at TP=1 PP=1 equals its
    final HF export bit for bit."""
    from qwen_sft.tiny import TinyQwen2Config, make_tiny_model

    untied = work["root"] / "tiny_untied"
    make_tiny_model(untied, TinyQwen2Config(vocab_size=151665, seed=3, tie_word_embeddings=False),
                    tokenizer_dir=work["tokenizer"])
    model = ["--model_path", str(untied)]
    saved = work["root"] / "tp2pp2"
    _check(_run(_torchrun(4, [*_args(work, saved, "--tp", "2", "--pp", "2", "--save_steps", "5"), *model]), _env()))
    uninterrupted = _train_records(saved)
    converted = work["root"] / "tp2pp2_iter10_hf"
    log = _check(_run([PY, "tools/convert_ckpt.py", "--direction", "mg2hf", "--model_path", str(saved),
                       "--iteration", "10", "--output_path", str(converted)], _env(), timeout=180))
    assert "iteration 10, saved at TP=2 PP=2 EP=1) loaded at TP=1 PP=1" in log, log[-3000:]
    a, b = _hf_state(converted), _hf_state(saved)
    assert sorted(a) == sorted(b) and "lm_head.weight" in a
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert json.loads((converted / "config.json").read_text()) == json.loads((saved / "config.json").read_text())
    load = saved / "checkpoints" / "iter_0000005"
    to_tp1, to_pp2 = work["root"] / "tp2pp2_to_tp1", work["root"] / "tp2pp2_to_pp2"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the two resumes side by side (1 + 2 processes)
        tp1 = pool.submit(_run, [PY, "tools/train.py", *_args(work, to_tp1, "--load", str(load), "--no_export"),
                                 *model], _env(), 2 * RUN_TIMEOUT_S)
        pp2 = pool.submit(_run, _torchrun(2, [*_args(work, to_pp2, "--pp", "2", "--load", str(load), "--no_export"),
                                              *model]), _env(), 2 * RUN_TIMEOUT_S)
        tp1_log, pp2_log = _check(tp1.result()), _check(pp2.result())
    _assert_resumed_tail(to_tp1, tp1_log, uninterrupted, "TP=2 PP=2 -> TP=1 PP=1")
    _assert_resumed_tail(to_pp2, pp2_log, uninterrupted, "TP=2 PP=2 -> TP=1 PP=2")
