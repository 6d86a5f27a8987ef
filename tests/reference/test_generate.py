"""tools/generate.py and qwen_sft.generation on real torch (CPU): greedy tokens equal HF `transformers` `generate`
on the same weights, with and without megatron's KV cache; batching, sampling, stop tokens, length budget, the
output file and the CLI.

Models are tiny random Qwen2 checkpoints (`qwen_sft.tiny`, hidden 64, 2 layers, GQA 4/2 heads, untied embeddings so
greedy output depends on the prompt) with Qwen2.5's 151,936 vocabulary rows, so the real tokenizer and the stand-in
both fit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qwen_sft.generate_job import read_prompt_file
from qwen_sft.generation import MegatronGenerator, PromptTooLongError, load_generator
from qwen_sft.sampling import SamplingParams, choose_next_tokens, process_logits, sequence_generator
from qwen_sft.tiny import TinyQwen2Config, make_tiny_model
from qwen_sft.tokenizer import render_prompt_ids, resolve_tokenizer_dir, standin_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]
IM_END, ENDOFTEXT = 151645, 151643

PROMPTS = [
    "What is the capital of France?",
    "Reverse the word 'banana'.",
    "请详细解释什么是大语言模型的全量微调？",
    {"instruction": "把下面的句子翻译成英文。", "input": "今天天气很好。"},
    {"instruction": "Add the two numbers.", "input": "12 + 30", "system": "You are a calculator."},
    "hi",
]


def _tiny(path: Path, tokenizer_dir, seed: int = 0) -> Path:
    make_tiny_model(path, TinyQwen2Config(tie_word_embeddings=False, seed=seed), tokenizer_dir=tokenizer_dir)
    return path


@pytest.fixture(scope="module")
def standin_model(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory.mktemp("gen") / "tiny_standin", standin_tokenizer_dir(), seed=0)


@pytest.fixture(scope="module")
def loaded(standin_model):
    """(generator, tokenizer, info) for the stand-in model; tears the one-process group down afterwards."""
    from qwen_sft.parallel import destroy

    try:
        yield load_generator(standin_model, seq_length=256)
    finally:
        destroy()


@pytest.fixture(scope="module")
def hf_model(standin_model):
    from transformers import Qwen2ForCausalLM

    return Qwen2ForCausalLM.from_pretrained(standin_model, dtype=torch.float32).eval()


def hf_generate(model, ids, max_new_tokens, stop_ids, **kwargs) -> list[int]:
    """HF transformers' generate for one unpadded prompt; the new tokens (stop token included)."""
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new_tokens, eos_token_id=sorted(stop_ids), pad_token_id=ENDOFTEXT,
                             **kwargs)
    return out[0, len(ids):].tolist()


def _ids(tokenizer, prompts=PROMPTS):
    return [render_prompt_ids(tokenizer, p) for p in prompts]


# --------------------------------------------------------------------------------------------- greedy vs HF

@pytest.mark.parametrize("use_kv_cache", [True, False], ids=["kv_cache", "no_kv_cache"])
def test_greedy_equals_hf_generate_standin(loaded, hf_model, use_kv_cache):
    gen, tok, _ = loaded
    prompts = _ids(tok) if use_kv_cache else _ids(tok)[:3]  # the recompute path is slow: fewer prompts
    outs = gen.generate_ids(prompts, max_new_tokens=10, use_kv_cache=use_kv_cache)
    for ids, out in zip(prompts, outs):
        expected = hf_generate(hf_model, ids, 10, gen.stop_ids, do_sample=False)
        assert out.output_ids == expected
        assert out.prompt_ids == ids
        assert out.stop_reason == "max_new_tokens" and len(out.output_ids) == 10
    # the prompts really produce different continuations (a degenerate model would make this test vacuous)
    assert len({tuple(o.output_ids) for o in outs}) == len(outs)


@pytest.mark.parametrize("penalty", [1.3, 0.5])
def test_greedy_with_repetition_penalty_equals_hf(loaded, hf_model, penalty):
    """HF semantics over prompt + output tokens; a penalty < 1 favours seen tokens, so it visibly changes output."""
    gen, tok, _ = loaded
    sampling = SamplingParams(repetition_penalty=penalty)
    prompts = _ids(tok)[:3]
    outs = gen.generate_ids(prompts, max_new_tokens=12, sampling=sampling)
    for ids, out in zip(prompts, outs):
        assert out.output_ids == hf_generate(hf_model, ids, 12, gen.stop_ids, do_sample=False,
                                             repetition_penalty=penalty)
    if penalty < 1:
        plain = gen.generate_ids(prompts, max_new_tokens=12)
        assert [o.output_ids for o in outs] != [o.output_ids for o in plain]


def test_greedy_equals_hf_generate_real_tokenizer(loaded, shared_tokenizer_dir, tmp_path):
    from transformers import Qwen2ForCausalLM

    model_dir = _tiny(tmp_path / "tiny_real", shared_tokenizer_dir, seed=3)
    gen, tok, info = load_generator(model_dir, seq_length=256)
    assert not (Path(info["tokenizer_path"]) / "STANDIN_README.md").exists()
    hf = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompts = _ids(tok)
    assert gen.stop_ids == {IM_END: "<|im_end|>", ENDOFTEXT: "<|endoftext|>"}
    outs = gen.generate_ids(prompts, max_new_tokens=8)
    for out, ids in zip(outs, prompts):
        assert out.output_ids == hf_generate(hf, ids, 8, gen.stop_ids, do_sample=False)
    no_cache = gen.generate_ids(prompts[2:3], max_new_tokens=8, use_kv_cache=False)  # the zh prompt
    assert no_cache[0].output_ids == outs[2].output_ids


# --------------------------------------------------------------------------------------------- batching

def test_batched_equals_unbatched_and_recompute(loaded):
    gen, tok, _ = loaded
    prompts = _ids(tok)
    assert len({len(p) for p in prompts}) > 3  # ragged lengths exercise the token-by-token prompt feeding
    single = [gen.generate_ids([p], max_new_tokens=8)[0].output_ids for p in prompts]
    in_order = gen.generate_ids(prompts, max_new_tokens=8)  # one batch, input order
    batches = gen.generate_batches(prompts, max_new_tokens=8, batch_size=4)  # sorted by length, 2 batches
    assert [o.output_ids for o in in_order] == single
    assert [o.output_ids for o in batches] == single
    assert [o.index for o in batches] == list(range(len(prompts)))
    assert sorted({o.batch_index for o in batches}) == [0, 1]
    no_cache = gen.generate_batches(prompts[:2], max_new_tokens=8, batch_size=2, use_kv_cache=False)
    assert [o.output_ids for o in no_cache] == single[:2]


# --------------------------------------------------------------------------------------------- sampling

def test_process_logits_equals_hf_processors():
    from transformers.generation.logits_process import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                                        TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, generator=g) * 3
    histories = [[1, 2, 3, 3], [10, 49, 0], [7] * 5]
    params = SamplingParams(temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.2)
    hf = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.2), TemperatureLogitsWarper(0.7),
                              TopKLogitsWarper(20), TopPLogitsWarper(0.8)])
    # HF takes a padded [b, L] history; padding with a seen id of the same row changes nothing
    width = max(len(h) for h in histories)
    input_ids = torch.tensor([h + [h[0]] * (width - len(h)) for h in histories])
    expected = hf(input_ids, logits.clone())
    ours = process_logits(logits, histories, params)
    assert torch.equal(torch.isinf(ours), torch.isinf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(ours[finite], expected[finite], rtol=0, atol=1e-6)
    assert 0 < int(finite.sum()) < logits.numel()  # top-k / top-p removed some tokens but not all
    # greedy: only the repetition penalty applies
    greedy = process_logits(logits, histories, SamplingParams(repetition_penalty=1.2))
    torch.testing.assert_close(greedy, RepetitionPenaltyLogitsProcessor(1.2)(input_ids, logits.clone()))


def test_sampling_reproducible_and_topk1_is_greedy(loaded):
    gen, tok, _ = loaded
    prompts = _ids(tok)[:3]
    s = SamplingParams(temperature=1.0, top_k=50, top_p=0.95, seed=7)
    a = gen.generate_batches(prompts, max_new_tokens=6, batch_size=3, sampling=s)
    b = gen.generate_batches(prompts, max_new_tokens=6, batch_size=1, sampling=s)
    c = gen.generate_batches(prompts, max_new_tokens=6, batch_size=3, sampling=SamplingParams(
        temperature=1.0, top_k=50, top_p=0.95, seed=8))
    greedy = gen.generate_ids(prompts, max_new_tokens=6)
    assert [o.output_ids for o in a] == [o.output_ids for o in b]  # seed per sequence, not per batch
    assert [o.output_ids for o in a] != [o.output_ids for o in c]
    assert [o.output_ids for o in a] != [o.output_ids for o in greedy]
    top1 = gen.generate_ids(prompts, max_new_tokens=6, sampling=SamplingParams(temperature=0.7, top_k=1, seed=3))
    assert [o.output_ids for o in top1] == [o.output_ids for o in greedy]


def test_sampling_draws_follow_the_processed_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    params = SamplingParams(temperature=0.8, top_k=3, seed=0)
    probs = process_logits(logits, [[]], params).softmax(-1)[0]
    gen = sequence_generator(0, 0)
    draws = torch.tensor([choose_next_tokens(logits, [[]], params, [gen])[0] for _ in range(3000)])
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    assert freq[3] == 0 and freq[4] == 0  # outside the top 3: never drawn
    torch.testing.assert_close(freq, probs.double(), rtol=0, atol=0.03)
    again = sequence_generator(0, 0)
    assert [choose_next_tokens(logits, [[]], params, [again])[0] for _ in range(50)] == draws[:50].tolist()


def test_sampling_params_validation():
    for kwargs, field in [({"temperature": -0.1}, "temperature"), ({"top_k": -1}, "top_k"), ({"top_p": 0.0}, "top_p"),
                          ({"top_p": 1.5}, "top_p"), ({"repetition_penalty": 0.0}, "repetition_penalty"),
                          ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=field):
            SamplingParams(**kwargs)
    assert SamplingParams().greedy and not SamplingParams(temperature=0.5).greedy


# --------------------------------------------------------------------------------------------- stopping

def test_stops_at_im_end_like_hf(tmp_path, loaded):
    """Make <|im_end|> likely (its output row = 1.05 × the row of a token greedy picks): generation stops there."""
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2ForCausalLM

    gen0, tok, _ = loaded
    model_dir = _tiny(tmp_path / "tiny_stop", standin_tokenizer_dir(), seed=0)
    prompts = _ids(tok)[:4]
    first = gen0.generate_ids(prompts, max_new_tokens=6)
    target = first[0].output_ids[3]
    state = load_file(model_dir / "model.safetensors")
    state["lm_head.weight"][IM_END] = 1.05 * state["lm_head.weight"][target]
    save_file(state, model_dir / "model.safetensors", metadata={"format": "pt"})

    gen, _, _ = load_generator(model_dir, seq_length=256)
    hf = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    outs = gen.generate_ids(prompts, max_new_tokens=12)
    stopped = [o for o in outs if o.stop_reason == "stop_token"]
    assert stopped, "no sequence reached <|im_end|>"
    assert len({len(o.output_ids) for o in outs}) > 1  # sequences finish at different steps in one batch
    for ids, out in zip(prompts, outs):
        assert out.output_ids == hf_generate(hf, ids, 12, gen.stop_ids, do_sample=False)
        if out.stop_reason == "stop_token":
            assert out.output_ids[-1] == IM_END and out.stop_token == "<|im_end|>"
            assert IM_END not in out.output_ids[:-1]
        else:
            assert out.stop_reason == "max_new_tokens" and len(out.output_ids) == 12
    assert [o.output_ids for o in outs] == [gen.generate_ids([p], max_new_tokens=12)[0].output_ids for p in prompts]


def test_custom_stop_ids_and_seq_length_budget(loaded):
    gen, tok, _ = loaded
    ids = _ids(tok)[0]
    free = gen.generate_ids([ids], max_new_tokens=6)[0].output_ids
    custom = MegatronGenerator(gen.model, vocab_size=gen.vocab_size, seq_length=len(ids) + 3,
                                 stop_ids={free[4]: "x"}, device=gen.device)
    out = custom.generate_ids([ids], max_new_tokens=10)[0]
    assert out.stop_reason == "seq_length" and out.output_ids == free[:3]  # prompt + 3 = seq_length
    roomy = MegatronGenerator(gen.model, vocab_size=gen.vocab_size, seq_length=256, stop_ids={free[2]: "x"},
                                device=gen.device)
    out = roomy.generate_ids([ids], max_new_tokens=10)[0]
    assert out.stop_reason == "stop_token" and out.output_ids == free[:3] and out.stop_token == "x"
    out = roomy.generate_ids([ids], max_new_tokens=10, use_kv_cache=False)[0]
    assert out.stop_reason == "stop_token" and out.output_ids == free[:3]


def test_prompt_too_long_is_a_clear_error(loaded):
    gen, tok, _ = loaded
    short, long_ = _ids(tok)[5], list(range(300))
    with pytest.raises(PromptTooLongError, match=r"prompt 1 has 300 tokens; --seq_length 256") as err:
        gen.generate_ids([short, long_], max_new_tokens=4)
    assert err.value.index == 1 and err.value.prompt_tokens == 300
    with pytest.raises(PromptTooLongError, match="256 tokens"):
        gen.generate_ids([list(range(256))], max_new_tokens=1)  # no room for a new token
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        gen.generate_ids([[1, 2, 151936]], max_new_tokens=1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        gen.generate_ids([short], max_new_tokens=0)


# --------------------------------------------------------------------------------------------- files, tokenizer, CLI

def test_read_prompt_file_formats(tmp_path):
    alpaca = tmp_path / "a.json"
    alpaca.write_text(json.dumps([{"instruction": "i1", "input": "x", "output": "o1"}, "plain"]), encoding="utf-8")
    assert read_prompt_file(alpaca) == [{"instruction": "i1", "input": "x", "output": "o1"}, "plain"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "p1", "id": 5}\n\n"s2"\n{"instruction": "i3"}\n', encoding="utf-8")
    assert read_prompt_file(jsonl) == [{"instruction": "p1", "id": 5}, "s2", {"instruction": "i3"}]
    text = tmp_path / "p.txt"
    text.write_text("first prompt\n\n  second  \n", encoding="utf-8")
    assert read_prompt_file(text) == ["first prompt", "second"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"question": "?"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl line 2: a prompt object needs an 'instruction'"):
        read_prompt_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_prompt_file(broken)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_prompt_file(tmp_path / "missing.json")


def test_tokenizer_resolution_and_mismatch_warning(standin_model, tmp_path):
    messages = []
    assert resolve_tokenizer_dir(standin_model, None, warn=messages.append) == standin_model
    same = tmp_path / "same"
    same.mkdir()
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        (same / f).write_bytes((standin_model / f).read_bytes())
    assert resolve_tokenizer_dir(standin_model, same, warn=messages.append) == same
    assert messages == []
    cfg = json.loads((same / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["chat_template"] = cfg["chat_template"].replace("<|im_start|>system", "<|im_start|>system ")
    (same / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert resolve_tokenizer_dir(standin_model, same, warn=messages.append) == same
    assert len(messages) == 1 and "tokenizer_config.json" in messages[0] and "differs" in messages[0]
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no tokenizer files"):
        resolve_tokenizer_dir(no_tok, None)


def _import_tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_main_output_file_and_errors(loaded, standin_model, tmp_path, capsys):
    gen, tok, _ = loaded
    tool = _import_tool("generate")
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps([PROMPTS[3], {**PROMPTS[4], "output": "42"}], ensure_ascii=False), encoding="utf-8")
    out_file = tmp_path / "out" / "gen.jsonl"
    rc = tool.main(["--model_name", "tiny", "--model_path", str(standin_model), "--seq_length", "256",
                    "--max_new_tokens", "5", "--prompt", PROMPTS[2], "--input_file", str(inp), "--output_file",
                    str(out_file), "--batch_size", "2", "--no_progress"])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert "tokens/s" in stdout and "3 prompt(s)" in stdout
    records = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert records[0]["prompt"] == PROMPTS[2]
    assert records[1]["prompt"] == "把下面的句子翻译成英文。\n今天天气很好。"
    assert records[2]["system"] == "You are a calculator." and records[2]["reference"] == "42"
    expected = gen.generate_ids(_ids(tok, [PROMPTS[2], PROMPTS[3], PROMPTS[4]]), max_new_tokens=5)
    for rec, exp in zip(records, expected):
        assert rec["model_name"] == "tiny"
        assert rec["prompt_token_ids"] == exp.prompt_ids and rec["num_prompt_tokens"] == len(exp.prompt_ids)
        assert rec["output_token_ids"] == exp.output_ids and rec["num_output_tokens"] == 5
        assert rec["output"] == tok.decode(exp.output_ids, skip_special_tokens=True)
        assert rec["stop_reason"] == "max_new_tokens" and rec["stop_token"] is None
        assert rec["timings"]["batch_size"] in (1, 2) and rec["timings"]["prefill_s"] > 0
        assert rec["sampling"]["temperature"] == 0.0

    long_prompt = "word " * 300
    rc = tool.main(["--model_path", str(standin_model), "--seq_length", "64", "--prompt", long_prompt,
                    "--no_progress"])
    captured = capsys.readouterr()
    assert rc == 1 and "generate: error: prompt 0 has" in captured.err and "--seq_length 64" in captured.err
    assert "generate: model" not in captured.out  # rejected before the model is loaded
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{"instruction": 5}\n', encoding="utf-8")
    rc = tool.main(["--model_path", str(standin_model), "--input_file", str(bad), "--no_progress"])
    assert rc == 1 and "prompt 1: field 'instruction' must be a string" in capsys.readouterr().err
    rc = tool.main(["--model_path", str(standin_model), "--seq_length", "64", "--max_new_tokens", "60",
                    "--prompt", "hi", "--no_progress"])
    captured = capsys.readouterr()
    assert rc == 0 and "exceed seq_length 64" in captured.err
    with pytest.raises(SystemExit) as exc:
        tool.main(["--model_path", str(standin_model)])  # no prompt
    assert exc.value.code == 2
    assert "no prompt" in capsys.readouterr().err


def test_megatron_checkpoint_input_gives_same_tokens(loaded, standin_model, tmp_path):
    from qwen_sft.convert import load_any_checkpoint, save_megatron_checkpoint
    from qwen_sft.weight_map import hf_to_megatron

    gen, tok, _ = loaded
    hf_config, state = load_any_checkpoint(standin_model)
    mg_dir = tmp_path / "mg_tp2"
    save_megatron_checkpoint(mg_dir, hf_to_megatron(state, hf_config, 2, 1), hf_config, standin_model)
    gen2, tok2, _ = load_generator(mg_dir, seq_length=256)
    prompts = _ids(tok)[:3]
    assert [o.output_ids for o in gen2.generate_ids(prompts, max_new_tokens=6)] == \
        [o.output_ids for o in gen.generate_ids(prompts, max_new_tokens=6)]


def test_cli_subprocess(standin_model, tmp_path):
    out_file = tmp_path / "o.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "MASTER_ADDR"):
        env.pop(k, None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "generate.py"), "--model_name", "qwen2.5-tiny", "--model_path",
         str(standin_model), "--tokenizer_path", str(standin_model), "--seq_length", "128", "--max_new_tokens", "4",
         "--prompt", "请详细解释什么是大语言模型的全量微调？", "--output_file", str(out_file), "--temperature", "0.8",
         "--top_p", "0.9", "--seed", "11", "--no_kv_cache"],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tokens/s (no KV cache" in proc.stdout and "### prompt 0" in proc.stdout
    (rec,) = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert rec["num_output_tokens"] == 4 and rec["sampling"]["seed"] == 11 and rec["sampling"]["top_p"] == 0.9


def test_generate_script_passes_every_flag(tmp_path):
    """scripts/generate_qwen25_7b_ms.sh: the original flags reach the program (a stub stands in for python)."""
    stub = tmp_path / "python_stub.sh"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    stub.chmod(0o755)
    script = REPO / "scripts" / "generate_qwen25_7b_ms.sh"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHON": str(stub)}
    defaults = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.splitlines() == [
        str(REPO / "tools" / "generate.py"), "--model_name", "qwen2.5-7b", "--model_path", "w_tune",
        "--tokenizer_path", "w_ori", "--seq_length", "4096", "--max_new_tokens", "512",
        "--prompt", "请详细解释什么是大语言模型的全量微调？"]
    env.update(MODEL_PATH="/m", TOKENIZER_PATH="", SEQ_LENGTH="128", MAX_NEW_TOKENS="7", PROMPT="",
               INPUT_FILE="/in.json", OUTPUT_FILE="/out.jsonl", SYSTEM_PROMPT="be brief")
    custom = subprocess.run(["bash", str(script), "--temperature", "0.7"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert custom.returncode == 0, custom.stderr
    assert custom.stdout.splitlines()[1:] == [
        "--model_name", "qwen2.5-7b", "--model_path", "/m", "--seq_length", "128", "--max_new_tokens", "7",
        "--input_file", "/in.json", "--output_file", "/out.jsonl", "--system_prompt", "be brief",
        "--temperature", "0.7"]


# --------------------------------------------------------------------------------------------- TP=2 and PP=2
def test_bad_layouts_are_clear_errors(loaded, standin_model):
    """A layout the config does not allow, or a launch of the wrong size, fails before anything is loaded."""
    from qwen_sft.loading import load_model_for_inference

    with pytest.raises(ValueError, match=r"cannot run at TP=3, PP=1: num_attention_heads=4 and "
                                         r"num_key_value_heads=2 must be divisible by tensor_model_parallel_size=3"):
        load_model_for_inference(standin_model, seq_length=64, tensor_model_parallel_size=3)
    with pytest.raises(ValueError, match=r"cannot run at TP=1, PP=4: num_hidden_layers=2 is not divisible by "
                                         r"pipeline_model_parallel_size=4"):
        load_model_for_inference(standin_model, seq_length=64, pipeline_model_parallel_size=4)
    with pytest.raises(RuntimeError, match=r"TP=2 × PP=1 needs 2 process\(es\), this launch has world size 1"):
        load_model_for_inference(standin_model, seq_length=64, tensor_model_parallel_size=2)


@pytest.mark.slow
def test_tp2_and_pp2_launches_give_tp1_greedy_tokens(loaded, standin_model, tmp_path):
    """tools/generate.py at TP=2 under torchrun (from the HF folder) and at PP=2 under the legacy launcher (from a
    Megatron checkpoint converted at TP=2, so the weights are resharded on load) gives TP=1's greedy tokens, with
    the KV cache and batches of 2 (prompts of different lengths, so sequences finish and leave every stage's cache
    at different steps). Both launches run side by side (~20 s on an idle 2-core machine)."""
    from qwen_sft.convert import load_any_checkpoint, save_megatron_checkpoint
    from qwen_sft.weight_map import hf_to_megatron
    from tests.conftest import free_port
    from tests.helpers.megatron_runs import PY, run_parallel, tool_env

    gen, tok, _ = loaded
    prompts = PROMPTS[:4]
    expected = [o.output_ids for o in gen.generate_ids(_ids(tok, prompts), max_new_tokens=8)]
    hf_config, state = load_any_checkpoint(standin_model)
    mg_tp2 = tmp_path / "mg_tp2"
    save_megatron_checkpoint(mg_tp2, hf_to_megatron(state, hf_config, 2, 1), hf_config, standin_model)
    inp = tmp_path / "prompts.json"
    inp.write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
    common = ["--seq_length", "256", "--max_new_tokens", "8", "--input_file", str(inp), "--batch_size", "2",
              "--no_progress", "--tokenizer_path", str(standin_model)]
    out_tp2, out_pp2 = tmp_path / "tp2.jsonl", tmp_path / "pp2.jsonl"
    logs = run_parallel(
        ([PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
          "tools/generate.py", "--tp", "2", "--model_path", str(standin_model), *common, "--output_file",
          str(out_tp2)], tool_env(), 300),
        ([PY, "-m", "torch.distributed.launch", "--nproc_per_node", "2", "--master_port", str(free_port()),
          "tools/generate.py", "--pp", "2", "--model_path", str(mg_tp2), *common, "--output_file", str(out_pp2)],
         tool_env(), 300))
    for out, log, layout in ((out_tp2, logs[0], "TP=2 PP=1"), (out_pp2, logs[1], "TP=1 PP=2")):
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["output_token_ids"] for r in records] == expected, layout
        assert layout in log and log.count("generate: wrote 4 record(s)") == 1, log[-3000:]  # rank 0 alone
