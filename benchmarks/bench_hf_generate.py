"""HF transformers ``generate`` tokens/s, unmodified, on real torch vs under the shim (``SHIM_BACKEND=mindspore``).

A tiny ``Qwen2ForCausalLM`` is made and saved by real torch (seeded), then each backend, in its own subprocess,
loads it with ``from_pretrained`` (fp32, sdpa attention), generates once untimed (warm-up) and then ``--repeat``
times timed: greedy (``do_sample=False``), KV cache on (``use_cache=True``), exactly ``--new-tokens`` new tokens
(``min_new_tokens`` = ``max_new_tokens``) after a prompt of ``--prompt-len`` tokens, for each batch size.
tokens/s = batch × new tokens / median wall time of one ``generate`` call (prefill included). The backends
alternate (torch, torch with one thread, shim, torch, ... ``--rounds`` each); each row is one backend's median over
its rounds, and the ratio is shim time / torch time per token. torch runs with its own thread count and with
``OMP_NUM_THREADS=1`` (``--torch-threads``; on a loaded machine torch's OpenMP workers wait at every parallel region
for a descheduled sibling, so the single-thread run is the fairer reference there); the shim with MindSpore's own. The greedy tokens of the two backends are compared (they must be
equal; a mismatch is printed, and the exit status is 1).

Sizes (``--size``): ``tiny`` = tests/shim/scripts/hf_tiny.py's model (hidden 32, 2 layers, 4/2 heads, vocab 128);
``small`` = hidden 256, 4 layers, 8/2 heads, intermediate 704, vocab 8192.

Usage: python benchmarks/bench_hf_generate.py [--size tiny,small] [--batch 1,4] [--new-tokens 32] [--prompt-len 16]
       [--repeat 3] [--rounds 2] [--torch-threads default,1] [--json OUT]
Load average is printed before and after (the machine may be shared: compare the ratio, not absolute rates).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=128, max_position_embeddings=256),
    "small": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=8192, max_position_embeddings=256),
}


def _init(size: str, out: str) -> None:
    """(real torch) a seeded random Qwen2 of ``size`` saved at ``out``."""
    import torch
    import transformers
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(tie_word_embeddings=False, **SIZES[size])
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(out, safe_serialization=True)


def _worker(model_dir: str, batches: list, new_tokens: int, prompt_len: int, repeat: int) -> dict:
    """(either backend) time generate for each batch size; returns {batch: {"times": [...], "tokens": [...]}}."""
    import torch
    import transformers
    model = transformers.Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    vocab = model.config.vocab_size
    out = {"torch_version": torch.__version__}
    for b in batches:
        ids = torch.tensor([[(7 * r + 13 * j + 1) % vocab for j in range(prompt_len)] for r in range(b)])
        kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                  pad_token_id=0, eos_token_id=None)
        with torch.no_grad():
            tokens = model.generate(ids, **kw)  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                model.generate(ids, **kw)
                times.append(time.perf_counter() - t0)
        out[str(b)] = {"times": times, "tokens": tokens[:, prompt_len:].tolist()}
    return out


def _env(shim: bool, threads=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SHIM_BACKEND"}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    return env


def _sub(args: list, shim: bool, threads=None) -> str:
    proc = subprocess.run([sys.executable, __file__, *args], env=_env(shim, threads), capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{'shim' if shim else 'torch'} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="tiny,small")
    p.add_argument("--batch", default="1,4")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--torch-threads", default="default,1",
                   help="torch runs per round: 'default' (torch's own thread count) and/or N (OMP_NUM_THREADS=N)")
    p.add_argument("--json")
    p.add_argument("--_init", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    batches = [int(x) for x in a.batch.split(",")]
    if a._init:
        _init(*a._init)
        return 0
    if a._worker:
        print("RESULT " + json.dumps(_worker(a._worker, batches, a.new_tokens, a.prompt_len, a.repeat)))
        return 0

    print(f"load average before: {os.getloadavg()}  ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})")
    rows, status = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.size.split(","):
            model_dir = os.path.join(tmp, size)
            _sub(["--_init", size, model_dir], shim=False)
            sides = [("torch" if t == "default" else f"torch {t}t", None if t == "default" else t)
                     for t in a.torch_threads.split(",")] + [("shim", None)]
            times = {name: {b: [] for b in batches} for name, _ in sides}
            tokens: dict = {}
            for _ in range(a.rounds):
                for name, threads in sides:
                    out = _sub(["--_worker", model_dir, "--batch", a.batch, "--new-tokens", str(a.new_tokens),
                                "--prompt-len", str(a.prompt_len), "--repeat", str(a.repeat)], shim=name == "shim",
                               threads=threads)
                    res = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
                    for b in batches:
                        times[name][b].extend(res[str(b)]["times"])
                        tokens.setdefault(name, {})[b] = res[str(b)]["tokens"]
            for b in batches:
                same = all(tokens[name][b] == tokens["shim"][b] for name, _ in sides)
                if not same:
                    status = 1
                    print(f"MISMATCH: greedy tokens differ, size {size}, batch {b}")
                s_med = statistics.median(times["shim"][b])
                n = b * a.new_tokens
                for name, _ in sides[:-1]:
                    t_med = statistics.median(times[name][b])
                    rows.append(dict(size=size, batch=b, new_tokens=a.new_tokens, torch=name, torch_tok_s=n / t_med,
                                     shim_tok_s=n / s_med, ratio=s_med / t_med, same_tokens=same))
    print(f"load average after:  {os.getloadavg()}")
    print(f"\n| model | batch | new tokens | torch run | torch tok/s | shim tok/s | shim/torch time | same greedy tokens |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['size']} | {r['batch']} | {r['new_tokens']} | {r['torch']} | {r['torch_tok_s']:.1f} | "
              f"{r['shim_tok_s']:.1f} | {r['ratio']:.2f}x | {'yes' if r['same_tokens'] else 'NO'} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
