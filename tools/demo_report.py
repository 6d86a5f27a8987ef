"""Print what the demo's training changed: held-out accuracy per task before vs after, and example answers.

Reads two ``tools/generate.py --output_file`` results over the held-out demo prompts
(``tools/make_demo_data.py --heldout_path``): one from the untrained model, one from the trained one, in the same
prompt order. An answer is correct when it equals the reference exactly (surrounding whitespace stripped).

Example::

    python tools/demo_report.py --before generate_w_ori.jsonl --after generate_w_tune.jsonl --examples 8

Exit status: 0 on success (whatever the accuracy), 2 on bad arguments or unreadable / mismatched files.
"""
from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

from qwen_sft.demo_data import record_task, score_generations


def _read_rows(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path!r} does not exist")
    rows = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {lineno}: not JSON ({exc})") from exc
    if not rows:
        raise ValueError(f"{path}: no generate results")
    return rows


def _width(text: str) -> int:
    """Display columns of ``text`` (East Asian wide / full-width characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(text: str, width: int) -> str:
    """``repr(text)`` cut and padded to ``width`` display columns."""
    text = repr(text)
    if _width(text) > width:
        while _width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (width - _width(text))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="demo_report.py", description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="generate results of the untrained model (.jsonl)")
    p.add_argument("--after", required=True, help="generate results of the trained model (.jsonl)")
    p.add_argument("--examples", type=int, default=8, help="example prompts to show (default 8, 0 = none)")
    args = p.parse_args(argv)
    try:
        before, after = _read_rows(args.before), _read_rows(args.after)
        if [r.get("prompt") for r in before] != [r.get("prompt") for r in after]:
            raise ValueError(f"{args.before} and {args.after} do not hold the same prompts in the same order")
        acc_before, acc_after = score_generations(before), score_generations(after)
    except ValueError as e:
        p.error(str(e))

    if args.examples > 0:
        # Spread the examples over the tasks: round-robin over tasks, in file order within a task.
        by_task: dict[str, list[int]] = {}
        for i, row in enumerate(after):
            by_task.setdefault(record_task(row), []).append(i)
        picked: list[int] = []
        while len(picked) < min(args.examples, len(after)):
            for idxs in by_task.values():
                if idxs and len(picked) < args.examples:
                    picked.append(idxs.pop(0))
        print(f"{'held-out prompt':42s} | {'reference':11s} | {'before training':18s} | after training")
        for i in picked:
            prompt = str(after[i].get("prompt", "")).replace("\n", " / ")
            mark = "ok" if after[i].get("output", "").strip() == after[i]["reference"].strip() else "--"
            print(f"{_cell(prompt, 42)} | {_cell(after[i]['reference'], 11)} | "
                  f"{_cell(before[i].get('output', ''), 18)} | {_cell(after[i].get('output', ''), 14)} {mark}")
        print()
    print("held-out prompts (a phrasing never trained on for that word): exact answer / answer of the right kind")
    print(f"  {'task':8s} {'before: exact, kind':>19s}   {'after: exact, kind':>18s}")
    def row(name: str, b: tuple[int, int], a: tuple[int, int], n: int) -> str:
        return f"  {name:8s} {'':6s}{b[0]:3d}/{n:<2d}  {b[1]:3d}/{n:<2d}   {'':5s}{a[0]:3d}/{n:<2d}  {a[1]:3d}/{n:<2d}"

    sums = [0, 0, 0, 0, 0]  # before exact, before kind, after exact, after kind, prompts
    for task, a in acc_after.items():
        b = acc_before.get(task, {"correct": 0, "kind": 0})
        vals = (b["correct"], b["kind"], a["correct"], a["kind"], a["total"])
        print(row(task, vals[:2], vals[2:4], vals[4]))
        sums = [x + y for x, y in zip(sums, vals)]
    print(row("all", sums[:2], sums[2:4], sums[4]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
