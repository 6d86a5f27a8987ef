"""Validation loss and perplexity of a (fine-tuned) Qwen2/Qwen2.5 model on a tokenized SFT dataset.

Reads the ``--split`` (default ``valid``) of a ``tools/data_convert.py`` output directory and prints the mean
next-token cross-entropy over learnable tokens (nats) and its exponential, the perplexity; see
``qwen_sft/evaluation.py`` for the exact definition. ``--model_path`` takes an HF directory, a converted Megatron
checkpoint or a training output directory.

Example::

    python tools/evaluate.py --model_path w_tune --data_path d_convert --output_file w_tune/eval_valid.json

Exit status: 0 on success, 1 when the model or data cannot be used (the message says which), 2 on bad
command-line arguments.
"""
from __future__ import annotations

import argparse
import json
import sys

from qwen_sft.evaluation import EvaluateConfig, run_evaluate


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(prog="evaluate.py",
                                description="Loss (mean over learnable tokens) and perplexity on a split of a "
                                            "data_convert output directory.")
    p.add_argument("--model_path", required=True,
                   help="HF model directory, converted Megatron checkpoint, or training output directory")
    p.add_argument("--data_path", required=True, help="tools/data_convert.py output directory")
    p.add_argument("--split", choices=("valid", "train"), default="valid", help="split to evaluate (default valid)")
    p.add_argument("--micro_batch_size", type=int, default=4, help="samples per forward pass (default 4)")
    p.add_argument("--max_samples", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--dtype", default="auto",
                   choices=("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"),
                   help="parameter dtype (default auto: config.json torch_dtype)")
    p.add_argument("--make_vocab_size_divisible_by", type=int, default=128,
                   help="Megatron vocabulary padding multiple (default 128)")
    p.add_argument("--output_file", default=None, help="also write the result as JSON here")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def parse_config(argv: list[str] | None = None) -> EvaluateConfig:
    """Parse the command line into an `EvaluateConfig` (argparse exits with status 2 on errors)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    cfg = EvaluateConfig(model_path=a.model_path, data_path=a.data_path, split=a.split,
                         micro_batch_size=a.micro_batch_size, max_samples=a.max_samples, dtype=a.dtype,
                         make_vocab_size_divisible_by=a.make_vocab_size_divisible_by, output_file=a.output_file,
                         progress=not a.no_progress)
    try:
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print loss and perplexity. Returns the exit status."""
    cfg = parse_config(argv)
    try:
        res = run_evaluate(cfg)
    except (FileNotFoundError, ConnectionError, ValueError, RuntimeError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(f"evaluate: {res.split} loss {res.loss:.6f} nats/token, perplexity {res.perplexity:.4f} over "
          f"{res.learnable_tokens} learnable tokens in {res.samples} samples (skipped {res.skipped_samples} "
          f"{json.dumps(res.skipped_by_reason)}); {res.tokens_per_s:.0f} tokens/s; tokenizer vs dataset: "
          f"{res.tokenizer_check}")
    if cfg.output_file:
        print(f"evaluate: wrote {cfg.output_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
