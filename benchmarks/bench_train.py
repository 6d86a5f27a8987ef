"""Training throughput of tools/train.py for a tiny Qwen2 model at TP=1 (one process) and TP=2 (torchrun, 2 processes).

Prints one row per layout: learnable tokens/s (tokens whose label is learned) and total tokens/s (every real,
non-padding input position), each the mean over the measured steps (the first `--warmup_steps` steps are left
out: they include lazy initialisation), plus the mean step time and the padded positions per step.

Data: `--input_path` (default ../shared/data/alpaca_zh_demo.json) with `--tokenizer_path` (default the real Qwen2.5
tokenizer in ../shared); without ../shared, the built-in demo dataset (qwen_sft.demo_data) with the labelled
stand-in tokenizer. Run: `.venv/bin/python benchmarks/bench_train.py [--steps 12] [--mixed_precision bf16]`.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    return env


def _prepare(work: Path, args) -> tuple[Path, Path, Path]:
    """(data dir, model dir, tokenizer dir) for the benchmark."""
    from qwen_sft.tiny import TinyQwen2Config, make_tiny_model

    input_path, tokenizer = args.input_path, args.tokenizer_path
    if input_path is None and (SHARED / "data" / "alpaca_zh_demo.json").is_file():
        input_path = str(SHARED / "data" / "alpaca_zh_demo.json")
    if tokenizer is None and (SHARED / "assets" / "qwen2.5-tokenizer").is_dir():
        tokenizer = str(SHARED / "assets" / "qwen2.5-tokenizer")
    if tokenizer is None:
        from qwen_sft.tokenizer import standin_tokenizer_dir

        tokenizer = str(standin_tokenizer_dir())
    if input_path is None:
        from qwen_sft.demo_data import write_demo_dataset

        input_path = str(write_demo_dataset(work / "demo.json", n=512))
    data = work / "data"
    subprocess.run([sys.executable, str(REPO / "tools" / "data_convert.py"), "--input_path", input_path,
                    "--tokenizer_path", tokenizer, "--output_path", str(data), "--seq_length", str(args.seq_length),
                    "--no_progress"], check=True, env=_env(), stdout=subprocess.DEVNULL)
    model = work / "model"
    make_tiny_model(model, TinyQwen2Config(hidden_size=args.hidden_size, num_hidden_layers=args.num_layers,
                                           seed=0), tokenizer_dir=tokenizer)
    return data, model, Path(tokenizer)


def _run(tp: int, work: Path, data: Path, model: Path, tokenizer: Path, args) -> dict:
    out = work / f"tp{tp}"
    train_args = ["--model_path", str(model), "--data_path", str(data), "--output_path", str(out),
                  "--tokenizer_path", str(tokenizer), "--seq_length", str(args.seq_length),
                  "--batch_size", str(args.batch_size), "--micro_batch_size", str(args.micro_batch_size),
                  "--train_iters", str(args.steps), "--mixed_precision", args.mixed_precision,
                  "--learning_rate", "1e-4", "--tp", str(tp), "--no_export", "--log_interval", str(args.steps)]
    if tp == 1:
        cmd = [sys.executable, str(REPO / "tools" / "train.py"), *train_args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(tp), "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), str(REPO / "tools" / "train.py"), *train_args]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=args.timeout)
    if r.returncode:
        raise RuntimeError(f"TP={tp} run failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    measured = [x for x in records if x["kind"] == "train" and x["step"] > args.warmup_steps]
    if not measured:
        raise RuntimeError(f"--steps {args.steps} leaves no step after --warmup_steps {args.warmup_steps}")
    time_s = sum(x["step_time_s"] for x in measured)
    return {
        "tp": tp,
        "steps": len(measured),
        "learnable_tokens_per_s": sum(x["learnable_tokens"] for x in measured) / time_s,
        "total_tokens_per_s": sum(x["total_tokens"] for x in measured) / time_s,
        "step_time_s": statistics.mean(x["step_time_s"] for x in measured),
        "padded_tokens_per_step": statistics.mean(x["padded_tokens"] for x in measured),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input_path", default=None, help="Alpaca JSON (default: ../shared alpaca_zh_demo.json)")
    p.add_argument("--tokenizer_path", default=None, help="tokenizer dir (default: ../shared Qwen2.5 tokenizer)")
    p.add_argument("--seq_length", type=int, default=512)
    p.add_argument("--batch_size", type=int, default=8, help="global batch (samples per step)")
    p.add_argument("--micro_batch_size", type=int, default=2)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup_steps", type=int, default=2)
    p.add_argument("--hidden_size", type=int, default=64)
    p.add_argument("--num_layers", type=int, default=2)
    p.add_argument("--mixed_precision", choices=("bf16", "fp16", "fp32"), default="fp32")
    p.add_argument("--tp", type=int, nargs="+", default=[1, 2], help="TP sizes to measure (one process per rank)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        data, model, tokenizer = _prepare(work, args)
        rows = [_run(tp, work, data, model, tokenizer, args) for tp in args.tp]
    print(f"train throughput: tiny Qwen2 (hidden {args.hidden_size}, {args.num_layers} layers, vocab 151936), "
          f"{args.mixed_precision}, global batch {args.batch_size}, micro-batch {args.micro_batch_size}, "
          f"seq <= {args.seq_length}, mean of {args.steps - args.warmup_steps} steps, {os.cpu_count()} CPUs")
    print(f"{'layout':<16}{'learnable tok/s':>16}{'total tok/s':>14}{'step time s':>13}{'padded tok/step':>17}")
    for r in rows:
        layout = f"TP={r['tp']} ({r['tp']} proc)"
        print(f"{layout:<16}{r['learnable_tokens_per_s']:>16.1f}{r['total_tokens_per_s']:>14.1f}"
              f"{r['step_time_s']:>13.3f}{r['padded_tokens_per_step']:>17.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
