"""Write the built-in demo instruction dataset (generated zh/en tasks, Alpaca format) to a file.

The records come from :mod:`qwen_sft.demo_data`: translate a word English → Chinese and Chinese → English,
upper-case a word, repeat a word twice, each phrased in English and Chinese, with the word inline or in ``input``.
They are generated, not stored, so the demo needs no data outside the repository. ``--heldout_path`` also writes
the held-out evaluation prompts (each (task, word) in the one phrasing training never shows, with the answer as
``output`` and an ``id``), for ``tools/generate.py --input_file`` and ``tools/demo_report.py``.

Example::

    python tools/make_demo_data.py --output_path d_ori/demo.json --num_samples 2048 --seed 0 \\
        --heldout_path d_ori/heldout.jsonl

Exit status: 0 on success, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import sys

from qwen_sft.demo_data import DEMO_TASKS, DEMO_WORDS, write_demo_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_demo_data.py", description=__doc__.splitlines()[0])
    p.add_argument("--output_path", required=True, help="training records, .json (a list) or .jsonl")
    p.add_argument("--num_samples", type=int, default=512, help="training records to write (default 512)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--heldout_path", default=None,
                   help="also write the held-out evaluation prompts here (.json or .jsonl)")
    args = p.parse_args(argv)
    try:
        path = write_demo_dataset(args.output_path, n=args.num_samples, seed=args.seed)
        held = write_demo_dataset(args.heldout_path, split="heldout") if args.heldout_path else None
    except ValueError as e:
        p.error(str(e))
    print(f"make_demo_data: wrote {args.num_samples} training records to {path} "
          f"({len(DEMO_TASKS)} tasks {', '.join(DEMO_TASKS)}; {len(DEMO_WORDS)} words; en + zh)")
    if held is not None:
        print(f"make_demo_data: wrote {len(DEMO_TASKS) * len(DEMO_WORDS)} held-out prompts to {held}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
