"""The data, checkpoint-conversion, generation and evaluation tools, unmodified, on MindSpore CPU through the shim.

Each tool runs once on real torch (the reference) and once with `SHIM_BACKEND=mindspore` (the installed .pth
activates the shim at interpreter start), on a tiny untied Qwen2 model with the real Qwen2.5 vocabulary and the
real tokenizer, and ../shared/data/alpaca_zh_demo.json:

* `scripts/data_convert_qwen25_instruction.sh` pointed at the tiny inputs by its environment overrides, with
  WORKERS=2 (the tokenizer pool forks after MindSpore is loaded), writes the same bytes as `tools/data_convert.py`
  on real torch: every .bin/.idx and meta.json;
* `tools/convert_ckpt.py` HF → Megatron at TP=2 PP=2 (legacy per-rank `torch.save` files) and Megatron → HF
  (safetensors, config) write the same bytes as on real torch;
* `scripts/generate_qwen25_7b_ms.sh` (env overrides, TP=1) generates the same greedy tokens as
  `tools/generate.py` on real torch (`python -m parity compare-generations`), and so does `tools/generate.py --tp 2`
  in two shim processes;
* `tools/evaluate.py` gives the same valid loss within 1e-5 relative (fp32);
* a one-step `tools/train.py` run through `python -m torch.distributed.launch` with a checkpoint save leaves a
  $MEGATRON_PATCHES_STATE file in which `python -m megatron_patches --list` shows every registered patch applied
  and hit.

Each shim run is checked to be one: it runs with PYTHONPROFILEIMPORTTIME=1 (Python's `-X importtime` as an
environment variable; the command line stays the same) and its log must show `mindspore` and `shim.torch`
imported. Same output paths for both runs (the reference
output is moved aside first) so that files recording their own arguments can be compared byte for byte.
"""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers.megatron_runs import PY, REPO, run_tool, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.shared]

SEQ_LENGTH = 64
PROMPTS = ["Reverse the word cat.", "请详细解释什么是大语言模型的全量微调？", "What is the capital of France?"]
MAX_NEW_TOKENS = 8
EVAL_SAMPLES = 8


def _shim_env(**extra: str) -> dict:
    return tool_env(SHIM_BACKEND="mindspore", PYTHONPROFILEIMPORTTIME="1", **extra)


def _assert_ran_on_shim(log: str) -> None:
    """The import-time log of a shim run shows MindSpore and the facade imported (top-level rows of -X importtime
    end with `| <module>`)."""
    modules = {line.rsplit("|", 1)[-1].strip() for line in log.splitlines() if line.count("|") >= 2}
    assert {"mindspore", "shim.torch"} <= modules, "the run did not import torch from the shim"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_tree(ref: Path, shim: Path) -> list[str]:
    a, b = _files(ref), _files(shim)
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    differing = [name for name in a if a[name] != b[name]]
    assert differing == [], f"files differ between {ref} and {shim}: {differing}"
    return sorted(a)


def _twice(ref_cmd: list[str], shim_cmd: list[str], out: Path, shim_extra: dict | None = None
           ) -> tuple[Path, Path, str]:
    """Run the reference into `out`, move it to `out`_ref, run the shim into `out`, move it to `out`_shim.
    Returns both folders and the shim run's log."""
    run_tool(ref_cmd, tool_env())
    ref = out.with_name(out.name + "_ref")
    out.rename(ref)
    log = run_tool(shim_cmd, _shim_env(**(shim_extra or {}))).stdout
    shim = out.with_name(out.name + "_shim")
    out.rename(shim)
    return ref, shim, log


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every reference and shim run of this module, in two lanes side by side."""
    from tests.conftest import shared_path

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    root = tmp_path_factory.mktemp("tools_shim")
    r: dict = {"root": root}
    tiny = root / "tiny"
    run_tool([PY, "tools/make_tiny_model.py", "--output_path", str(tiny), "--untie_word_embeddings", "--vocab_size",
          "151665", "--seed", "3", "--tokenizer_path", str(tokenizer)], tool_env())

    def data_eval_train() -> None:
        """Lane 1: data conversion, then what reads the converted data (evaluation, one training step)."""
        # data: the tool on real torch vs the workflow script on the shim (same flags as the script passes)
        data = root / "data"
        r["data_ref"], r["data_shim"], r["data_log"] = _twice(
            [PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
             "--output_path", str(data), "--seq_length", str(SEQ_LENGTH), "--split_ratio", "0.95", "--seed", "1234",
             "--workers", "2", "--overlength", "truncate", "--no_progress"],
            ["bash", "scripts/data_convert_qwen25_instruction.sh", "--no_progress"], data,
            dict(PYTHON=PY, INPUT_PATH=str(alpaca), TOKENIZER_PATH=str(tokenizer), OUTPUT_PATH=str(data),
                 SEQ_LENGTH=str(SEQ_LENGTH), WORKERS="2", OVERLENGTH="truncate"))

        # evaluation on the valid split (fp32)
        r["eval_ref"], r["eval_shim"] = root / "eval_ref.json", root / "eval_shim.json"
        ev = [PY, "tools/evaluate.py", "--model_path", str(tiny), "--data_path", str(r["data_ref"]), "--max_samples",
              str(EVAL_SAMPLES), "--micro_batch_size", "4", "--no_progress", "--output_file"]
        run_tool(ev + [str(r["eval_ref"])], tool_env())
        r["eval_log"] = run_tool(ev + [str(r["eval_shim"])], _shim_env()).stdout

        # one training step with a checkpoint save, for the patch listing
        r["train_state"] = root / "state_train.json"
        run_tool([PY, "-m", "torch.distributed.launch", "--nproc_per_node", "1", "--master_port", str(free_port()),
                  "tools/train.py", "--model_path", str(tiny), "--data_path", str(r["data_ref"]), "--seq_length",
                  str(SEQ_LENGTH), "--batch_size", "2", "--micro_batch_size", "1", "--train_iters", "1",
                  "--mixed_precision", "fp32", "--learning_rate", "1e-3", "--seed", "7", "--save_steps", "1",
                  "--no_export", "--log_interval", "1", "--output_path", str(root / "train")],
                 tool_env(SHIM_BACKEND="mindspore", MEGATRON_PATCHES_STATE=str(r["train_state"])))

    def convert_generate() -> None:
        """Lane 2: checkpoint conversion both ways, then generation (needs only the tiny model)."""
        # checkpoints: HF -> Megatron TP=2 PP=2, then the reference Megatron checkpoint -> HF
        mg = root / "mg"
        hf2mg = [PY, "tools/convert_ckpt.py", "--direction", "hf2mg", "--model_path", str(tiny), "--output_path",
                 str(mg), "--tp", "2", "--pp", "2"]
        r["mg_ref"], r["mg_shim"], r["hf2mg_log"] = _twice(hf2mg, hf2mg, mg)
        hf = root / "hf"
        mg2hf = [PY, "tools/convert_ckpt.py", "--direction", "mg2hf", "--load-dir", str(r["mg_ref"]), "--save-dir",
                 str(hf)]
        r["hf_ref"], r["hf_shim"], r["mg2hf_log"] = _twice(mg2hf, mg2hf, hf)

        # generation: the tool on real torch vs the workflow script on the shim (TP=1, greedy, KV cache)
        prompts = root / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": p}, ensure_ascii=False) + "\n" for p in PROMPTS))
        r["gen_ref"], r["gen_shim"] = root / "gen_ref.jsonl", root / "gen_shim.jsonl"
        run_tool([PY, "tools/generate.py", "--model_name", "qwen2.5-7b", "--model_path", str(tiny), "--seq_length",
                  "128", "--max_new_tokens", str(MAX_NEW_TOKENS), "--input_file", str(prompts), "--output_file",
                  str(r["gen_ref"]), "--batch_size", "2", "--no_progress"], tool_env())
        r["gen_log"] = run_tool(["bash", "scripts/generate_qwen25_7b_ms.sh", "--batch_size", "2", "--no_progress"],
                                _shim_env(PYTHON=PY, MODEL_PATH=str(tiny), TOKENIZER_PATH="", SEQ_LENGTH="128",
                                          MAX_NEW_TOKENS=str(MAX_NEW_TOKENS), PROMPT="", INPUT_FILE=str(prompts),
                                          OUTPUT_FILE=str(r["gen_shim"]))).stdout
        # ... and tools/generate.py at TP=2 on the shim (2 processes, legacy launcher served by the facade)
        r["gen_shim_tp2"] = root / "gen_shim_tp2.jsonl"
        r["gen_tp2_log"] = run_tool(
            [PY, "-m", "torch.distributed.launch", "--nproc_per_node", "2", "--master_port", str(free_port()),
             "tools/generate.py", "--tp", "2", "--model_path", str(tiny), "--seq_length", "128", "--max_new_tokens",
             str(MAX_NEW_TOKENS), "--input_file", str(prompts), "--output_file", str(r["gen_shim_tp2"]),
             "--batch_size", "2", "--no_progress"], _shim_env()).stdout

    # Most of these runs are one process each: two independent lanes keep both cores busy. Every pair that is
    # compared byte for byte still runs one after the other into the same path (files record their arguments).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for lane in [pool.submit(data_eval_train), pool.submit(convert_generate)]:
            lane.result()
    return r


def test_data_convert_script_with_two_workers_is_byte_identical(runs):
    names = _assert_same_tree(runs["data_ref"], runs["data_shim"])
    assert names == sorted(["meta.json"] + [f"{s}_{k}.{e}" for s in ("train", "valid")
                                            for k in ("input_ids", "labels") for e in ("bin", "idx")])
    _assert_ran_on_shim(runs["data_log"])
    meta = json.loads((runs["data_shim"] / "meta.json").read_text())
    assert meta["args"]["workers"] == 2
    assert meta["counts"]["train"] > 0 and meta["counts"]["valid"] > 0, meta["counts"]


def test_hf_to_megatron_tp2_pp2_is_byte_identical(runs):
    _assert_ran_on_shim(runs["hf2mg_log"])
    names = _assert_same_tree(runs["mg_ref"], runs["mg_shim"])
    shards = [n for n in names if n.endswith("model_optim_rng.pt")]
    assert shards == [f"release/mp_rank_{t:02d}_{p:03d}/model_optim_rng.pt" for t in range(2) for p in range(2)]
    # the shim-written files are torch's own format: real torch reads them back
    import torch

    payload = torch.load(runs["mg_shim"] / shards[-1], weights_only=True)
    assert payload["checkpoint_version"] == 3.0
    assert payload["model"]["output_layer.weight"].shape == (151808 // 2, 64)


def test_megatron_to_hf_is_byte_identical(runs):
    _assert_ran_on_shim(runs["mg2hf_log"])
    names = _assert_same_tree(runs["hf_ref"], runs["hf_shim"])
    assert {"config.json", "model.safetensors", "generation_config.json", "vocab.json"} <= set(names)


def test_generate_script_tokens_equal_reference(runs):
    ref = [json.loads(line) for line in runs["gen_ref"].read_text().splitlines()]
    shim = [json.loads(line) for line in runs["gen_shim"].read_text().splitlines()]
    assert [r["prompt"] for r in shim] == PROMPTS
    assert [r["output_token_ids"] for r in shim] == [r["output_token_ids"] for r in ref]
    assert all(len(r["output_token_ids"]) == MAX_NEW_TOKENS for r in shim)
    assert [r["model_name"] for r in shim] == ["qwen2.5-7b"] * 3
    _assert_ran_on_shim(runs["gen_log"])
    cmp = subprocess.run([PY, "-m", "parity", "compare-generations", str(runs["gen_ref"]), str(runs["gen_shim"])],
                         cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=120)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert "OK: 3 records identical token by token" in cmp.stdout


def test_generate_at_tp2_tokens_equal_reference(runs):
    """Two shim processes at TP=2 (vocabulary-parallel output layer gathered, KV cache) give real torch's TP=1
    greedy tokens."""
    ref = [json.loads(line) for line in runs["gen_ref"].read_text().splitlines()]
    tp2 = [json.loads(line) for line in runs["gen_shim_tp2"].read_text().splitlines()]
    assert [r["output_token_ids"] for r in tp2] == [r["output_token_ids"] for r in ref]
    assert "TP=2 PP=1" in runs["gen_tp2_log"]
    _assert_ran_on_shim(runs["gen_tp2_log"])


def test_evaluate_loss_equals_reference(runs):
    ref, shim = json.loads(runs["eval_ref"].read_text()), json.loads(runs["eval_shim"].read_text())
    _assert_ran_on_shim(runs["eval_log"])
    assert shim["samples"] == ref["samples"] == EVAL_SAMPLES
    assert shim["learnable_tokens"] == ref["learnable_tokens"] > 0
    assert abs(shim["loss"] - ref["loss"]) <= 1e-5 * abs(ref["loss"]), (ref["loss"], shim["loss"])
    assert 10.0 < ref["loss"] < 13.0  # an untrained model over 151,665 tokens: about ln(151665) = 11.93


def test_patch_list_after_shim_training_shows_each_patch_applied_and_hit(runs):
    import megatron_patches

    res = subprocess.run([PY, "-m", "megatron_patches", "--list", "--state", str(runs["train_state"])], cwd=REPO,
                         env=tool_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "state from 1 process(es)" in res.stdout
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines() if line and not line[0].isspace()}
    # patches applied at activation: each applied and hit (the state is the rank's own: megatron's checkpoint
    # writer helper processes do not write it)
    names = [p.name for p in megatron_patches.registered() if p.on_import is None]
    assert names, "no patch registered"
    for name in names:
        assert name in rows, (name, res.stdout)
        applied, hits = rows[name][1], rows[name][2]
        assert applied == "yes" and int(hits) > 0, (name, applied, hits)
    # `on_import` patches apply when their module is imported: tools/train.py imports megatron-core's norm and MoE
    # utilities (applied, not hit: a dense model without sequence parallelism), never megatron.legacy's fused
    # kernels or Megatron-LM's converter modules (listed, not applied)
    for p in megatron_patches.registered():
        if p.on_import is not None:
            want = "yes" if p.on_import.startswith("megatron.core.") else "no"
            assert p.name in rows and rows[p.name][1] == want, (p.name, want, res.stdout)
