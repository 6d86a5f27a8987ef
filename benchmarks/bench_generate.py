"""Benchmark generation: new tokens/s with megatron's KV cache (batch 1 and batched) and without it (full recompute).

Usage::

    .venv/bin/python benchmarks/bench_generate.py [--model_path DIR] [--prompts 8] [--max_new_tokens 64]
                                                  [--batch_size 8] [--repeat 2] [--json out.json]

Default model: a tiny random Qwen2 (`qwen_sft.tiny` defaults, untied embeddings: hidden 64, 2 layers, 4 heads /
2 KV heads, 151,936 vocabulary rows) written to a temporary folder with the stand-in tokenizer; `--model_path` takes
any model folder `tools/generate.py` accepts. Prompts are built-in zh/en instructions rendered with the chat
template (about 30–45 tokens each). Stop tokens are disabled so every run generates exactly `--max_new_tokens`
per prompt, greedy. tokens/s = new tokens / wall seconds of generation (prefill included, model loading
excluded); the best of `--repeat` runs is reported. Results on 2 shared CPU cores are noisy: run it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "请详细解释什么是大语言模型的全量微调？",
    "What is the capital of France?",
    "把下面的句子翻译成英文：今天天气很好。",
    "Reverse the letters of the word \"river\".",
    "写一首关于春天的短诗。",
    "Explain gradient accumulation in one paragraph.",
    "3 加 4 等于多少？只回答数字。",
    "List three colours of the rainbow.",
]


def _run(gen, prompt_ids, max_new_tokens, batch_size, use_kv_cache, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        outs = gen.generate_batches(prompt_ids, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                    use_kv_cache=use_kv_cache)
        elapsed = time.perf_counter() - t0
        tokens = sum(len(o.output_ids) for o in outs)
        if best is None or elapsed < best[1]:
            best = (tokens, elapsed)
    return {"new_tokens": best[0], "seconds": best[1], "tokens_per_s": best[0] / best[1]}


def main(argv=None) -> int:
    """Run the benchmark and print a table; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model_path", default=None, help="model folder (default: a tiny random Qwen2)")
    p.add_argument("--prompts", type=int, default=8, help="number of prompts (cycled from the built-in list)")
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=8, help="batch size of the batched KV-cache run")
    p.add_argument("--repeat", type=int, default=2, help="runs per configuration; the best is reported")
    p.add_argument("--no_kv_prompts", type=int, default=2,
                   help="prompts for the (slow) no-KV-cache run (default 2)")
    p.add_argument("--json", default=None, help="also write the numbers here")
    a = p.parse_args(argv)

    import torch

    from qwen_sft.generation import load_generator
    from qwen_sft.tiny import TinyQwen2Config, make_tiny_model
    from qwen_sft.tokenizer import render_prompt_ids, standin_tokenizer_dir

    tmp = None
    model_path = a.model_path
    if model_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_generate_")
        model_path = str(Path(tmp.name) / "tiny")
        make_tiny_model(model_path, TinyQwen2Config(tie_word_embeddings=False), tokenizer_dir=standin_tokenizer_dir())
    seq_length = 1024
    gen, tok, info = load_generator(model_path, seq_length=seq_length)
    gen.stop_ids = {}  # fixed-length runs
    prompt_ids = [render_prompt_ids(tok, PROMPTS[i % len(PROMPTS)]) for i in range(a.prompts)]
    gen.generate_ids(prompt_ids[:1], max_new_tokens=2)  # warm-up

    rows = [
        ("KV cache, batch 1", _run(gen, prompt_ids, a.max_new_tokens, 1, True, a.repeat), a.prompts),
        (f"KV cache, batch {a.batch_size}", _run(gen, prompt_ids, a.max_new_tokens, a.batch_size, True, a.repeat),
         a.prompts),
        ("no KV cache (recompute), batch 1",
         _run(gen, prompt_ids[:a.no_kv_prompts], a.max_new_tokens, 1, False, 1), a.no_kv_prompts),
    ]
    mean_prompt = sum(len(p) for p in prompt_ids) / len(prompt_ids)
    label = info["model_path"] if a.model_path else "tiny random Qwen2 (hidden 64, 2 layers, 151,936 vocab)"
    print(f"generate benchmark: model {label}, {info['num_parameters']:,} parameters, {info['dtype']}, "
          f"{info['device']}; torch {torch.__version__}, {os.cpu_count()} CPU(s), {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"prompts of {mean_prompt:.0f} tokens on average, {a.max_new_tokens} new tokens each, greedy, "
          f"stop tokens off; best of {a.repeat}")
    print(f"{'mode':<36} {'prompts':>7} {'new tokens':>10} {'seconds':>8} {'tokens/s':>9}")
    for name, r, n in rows:
        print(f"{name:<36} {n:>7} {r['new_tokens']:>10} {r['seconds']:>8.2f} {r['tokens_per_s']:>9.1f}")
    speedup = rows[0][1]["tokens_per_s"] / rows[2][1]["tokens_per_s"]
    print(f"KV cache speed-up at batch 1: {speedup:.1f}x")
    if a.json:
        Path(a.json).write_text(json.dumps({"info": {k: str(v) for k, v in info.items()},
                                            "max_new_tokens": a.max_new_tokens, "mean_prompt_tokens": mean_prompt,
                                            "rows": [{"mode": n, "prompts": k, **r} for n, r, k in rows]},
                                           indent=2) + "\n", encoding="utf-8")
    from qwen_sft.parallel import destroy

    destroy()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
