"""Write the built-in demo instruction dataset (generated zh/en tasks, Alpaca format) to a file.

The records come from :func:`qwen_sft.demo_data.make_demo_records`: add two digits, reverse / upper-case / double a
short word, each in English and Chinese, half with the operand in ``input``. They are generated, not stored, so the
demo needs no data outside the repository.

Example::

    python tools/make_demo_data.py --output_path d_ori/demo.json --num_samples 512 --seed 0

Exit status: 0 on success, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import sys

from qwen_sft.demo_data import write_demo_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_demo_data.py", description=__doc__.splitlines()[0])
    p.add_argument("--output_path", required=True, help="output file, .json (a list) or .jsonl")
    p.add_argument("--num_samples", type=int, default=512, help="records to write (default 512)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    args = p.parse_args(argv)
    try:
        path = write_demo_dataset(args.output_path, n=args.num_samples, seed=args.seed)
    except ValueError as e:
        p.error(str(e))
    print(f"make_demo_data: wrote {args.num_samples} records to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
