"""The whole workflow under the shim, through the workflow scripts: `SHIM_BACKEND=mindspore bash
scripts/real_input_e2e.sh` (data_convert_qwen25_instruction.sh on ../shared/data/alpaca_zh_demo.json with the real
tokenizer, make_tiny_model, convert_ckpt.py hf2mg at TP=2, tune_qwen25_7b_4k_full_ms.sh with 2 processes at TP=2
for STEPS = 2 steps (the script saves every 5 steps and at the end: a checkpoint at step 2) and exporting HF
weights, generate_qwen25_7b_ms.sh, evaluate.py), every
Python process served by the facade on MindSpore CPU (fp32, to keep it short; bf16 is covered by
test_megatron_train_shim_bf16.py).

Checked: exit 0; the training manifest says backend "mindspore", TP=2, world size 2; STEPS finite training losses;
the last step's torch_dist checkpoint and the tracker file; the HF export (config.json, model.safetensors); a
generation record with output token ids; evaluate's loss line. Step-for-step equality with real torch is the
subject of the other test_megatron_* modules; this one proves the scripts, launched as users launch them, run on
the shim end to end.
"""
from __future__ import annotations

import json
import math
import re

import pytest

from tests.helpers.megatron_runs import REPO, run_tool, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.shared, pytest.mark.multiproc]

STEPS = 2  # a step at seq 1024 x batch 4 is the run's dearest part; 2 steps train, save at the end, export


def test_real_input_e2e_script_under_shim(tmp_path):
    from tests.conftest import SHARED_DIR, shared_path

    shared_path("assets", "qwen2.5-tokenizer")
    shared_path("data", "alpaca_zh_demo.json")
    work = tmp_path / "e2e"
    res = run_tool(["bash", str(REPO / "scripts" / "real_input_e2e.sh")],
               tool_env(SHIM_BACKEND="mindspore", SHARED=str(SHARED_DIR), WORK_DIR=str(work), TRAIN_ITERS=str(STEPS),
                    MIXED_PRECISION="fp32", TP="2", PP="1"),
               timeout=1800)
    out = res.stdout
    assert "real_input_e2e: done" in out, out[-4000:]

    tune = work / "w_tune"
    manifest = json.loads((tune / "manifest.json").read_text())
    assert manifest["backend"] == "mindspore", manifest["backend"]
    assert manifest["versions"]["torch"].endswith("+mindspore"), manifest["versions"]
    assert manifest["parallel"]["tensor_model_parallel_size"] == 2 and manifest["parallel"]["world_size"] == 2
    train = [json.loads(x) for x in (tune / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in train if r["kind"] == "train"]
    assert len(losses) == STEPS and all(math.isfinite(v) and 0 < v < 20 for v in losses), losses

    ckpts = tune / "checkpoints"
    assert (ckpts / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    it_dir = ckpts / f"iter_{STEPS:07d}"
    assert (it_dir / "metadata.json").is_file() and (it_dir / ".metadata").is_file()
    # megatron-core's own torch_dist writer: two data files per rank (tensors, then the rest), as on real torch
    assert sorted(p.name for p in it_dir.glob("*.distcp")) == ["__0_0.distcp", "__0_1.distcp", "__1_0.distcp",
                                                                "__1_1.distcp"]
    assert (tune / "config.json").is_file() and (tune / "model.safetensors").is_file()

    gens = [json.loads(x) for x in (work / "generate.jsonl").read_text().splitlines() if x.strip()]
    assert gens and all(len(g["output_token_ids"]) >= 1 for g in gens), gens
    m = re.search(r"evaluate: valid loss ([0-9.]+) nats/token", out)
    assert m and 0 < float(m.group(1)) < 20, out[-3000:]
