"""Print what the demo's training changed: held-out accuracy per task before vs after, and example answers.

Reads two ``tools/generate.py --output_file`` results over the held-out demo prompts
(``tools/make_demo_data.py --heldout_path``): one from the untrained model, one from the trained one, in the same
prompt order. An answer is correct when it equals the reference exactly (surrounding whitespace stripped).

With ``--markdown FILE`` it also writes the demo's report (scripts/demo.sh: ``runs/demo/REPORT.md``), a markdown
file with three sections: "Parity verdict" (PASS/FAIL and the text ``python -m parity compare`` printed, from
``--parity_text``), "Loss curves" (the PNG's path, from ``--plot``, linked relative to the report) and
"Held-out answers before and after training" (the same tables as printed).

Example::

    python tools/demo_report.py --before generate_w_ori.jsonl --after generate_w_tune.jsonl --examples 8
    python tools/demo_report.py --before ... --after ... --parity_text parity.txt --parity_ok 1 \\
        --plot loss_curves.png --steps 150 --ref_steps 150 --markdown REPORT.md

Exit status: 0 on success (whatever the accuracy or parity verdict), 2 on bad arguments or unreadable / mismatched
files.
"""
from __future__ import annotations

import argparse
import io
import json
import os
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


def _tables(before: list[dict], after: list[dict], acc_before: dict, acc_after: dict, examples: int) -> str:
    """The example answers (``examples`` prompts spread over the tasks) and the accuracy table, as printed."""
    out = io.StringIO()
    if examples > 0:
        # Spread the examples over the tasks: round-robin over tasks, in file order within a task.
        by_task: dict[str, list[int]] = {}
        for i, row in enumerate(after):
            by_task.setdefault(record_task(row), []).append(i)
        picked: list[int] = []
        while len(picked) < min(examples, len(after)):
            for idxs in by_task.values():
                if idxs and len(picked) < examples:
                    picked.append(idxs.pop(0))
        print(f"{'held-out prompt':42s} | {'reference':11s} | {'before training':18s} | after training", file=out)
        for i in picked:
            prompt = str(after[i].get("prompt", "")).replace("\n", " / ")
            mark = "ok" if after[i].get("output", "").strip() == after[i]["reference"].strip() else "--"
            print(f"{_cell(prompt, 42)} | {_cell(after[i]['reference'], 11)} | "
                  f"{_cell(before[i].get('output', ''), 18)} | {_cell(after[i].get('output', ''), 14)} {mark}",
                  file=out)
        print(file=out)
    print("held-out prompts (a phrasing never trained on for that word): exact answer / answer of the right kind",
          file=out)
    print(f"  {'task':8s} {'before: exact, kind':>19s}   {'after: exact, kind':>18s}", file=out)

    def row(name: str, b: tuple[int, int], a: tuple[int, int], n: int) -> str:
        return f"  {name:8s} {'':6s}{b[0]:3d}/{n:<2d}  {b[1]:3d}/{n:<2d}   {'':5s}{a[0]:3d}/{n:<2d}  {a[1]:3d}/{n:<2d}"

    sums = [0, 0, 0, 0, 0]  # before exact, before kind, after exact, after kind, prompts
    for task, a in acc_after.items():
        b = acc_before.get(task, {"correct": 0, "kind": 0})
        vals = (b["correct"], b["kind"], a["correct"], a["kind"], a["total"])
        print(row(task, vals[:2], vals[2:4], vals[4]), file=out)
        sums = [x + y for x, y in zip(sums, vals)]
    print(row("all", sums[:2], sums[2:4], sums[4]), file=out)
    return out.getvalue()


def _markdown(args: argparse.Namespace, tables: str, parity_text: str) -> str:
    """The demo's REPORT.md: parity verdict, loss-curve picture, held-out answers (sections named in the module doc)."""
    md = Path(args.markdown).resolve()
    ok = bool(args.parity_ok)
    steps, ref_steps = args.steps, args.ref_steps
    lines = ["# Demo report", "",
             "The tiny Qwen2 was converted to a megatron-core checkpoint and fine-tuned with 2 processes on "
             "MindSpore through the shim; the same training ran on real PyTorch (the reference backend) from the same "
             "checkpoint and data order.", "",
             "## Parity verdict", "",
             f"**{'PASS' if ok else 'FAIL'}**: `python -m parity compare <reference run> <shim run>` over steps "
             f"1-{ref_steps} (the tool's default tolerances: loss atol 1e-4, grad_norm rtol 1e-3, lr rtol 1e-9, "
             "token and sample counts exact)."]
    if ref_steps is not None and steps is not None and ref_steps < steps:
        lines += ["", f"The shim run trained {steps} steps; the reference run trained only its first {ref_steps} "
                  "(constant learning rate, so those steps are the same computation), and parity compares those."]
    lines += ["", "```", parity_text.rstrip("\n"), "```", "", "## Loss curves", ""]
    if args.plot:
        rel = os.path.relpath(Path(args.plot).resolve(), md.parent)
        lines += [f"Reference (A, real PyTorch) and shim (B, MindSpore) loss and gradient norm per step, with B - A "
                  f"below: `{Path(args.plot).resolve()}`", "", f"![loss curves]({rel})"]
    else:
        lines += ["(no picture)"]
    lines += ["", "## Held-out answers before and after training", "",
              "Generated on the shim (MindSpore) by the untrained and the trained model.", "",
              "```", tables.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="demo_report.py", description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="generate results of the untrained model (.jsonl)")
    p.add_argument("--after", required=True, help="generate results of the trained model (.jsonl)")
    p.add_argument("--examples", type=int, default=8, help="example prompts to show (default 8, 0 = none)")
    p.add_argument("--markdown", help="also write the markdown report to this file")
    p.add_argument("--parity_text", help="with --markdown: the output of `python -m parity compare` (text file)")
    p.add_argument("--parity_ok", type=int, choices=(0, 1), help="with --markdown: 1 if parity passed, 0 if not")
    p.add_argument("--plot", help="with --markdown: the loss-curve PNG written by `parity compare --plot`")
    p.add_argument("--steps", type=int, help="with --markdown: optimizer steps of the shim run")
    p.add_argument("--ref_steps", type=int, help="with --markdown: steps of the reference run (compared by parity)")
    args = p.parse_args(argv)
    try:
        before, after = _read_rows(args.before), _read_rows(args.after)
        if [r.get("prompt") for r in before] != [r.get("prompt") for r in after]:
            raise ValueError(f"{args.before} and {args.after} do not hold the same prompts in the same order")
        acc_before, acc_after = score_generations(before), score_generations(after)
        parity_text = ""
        if args.markdown:
            if not args.parity_text or args.parity_ok is None:
                raise ValueError("--markdown needs --parity_text and --parity_ok")
            if not Path(args.parity_text).is_file():
                raise ValueError(f"--parity_text {args.parity_text!r} does not exist")
            if args.plot and not Path(args.plot).is_file():
                raise ValueError(f"--plot {args.plot!r} does not exist")
            parity_text = Path(args.parity_text).read_text(encoding="utf-8")
    except ValueError as e:
        p.error(str(e))

    tables = _tables(before, after, acc_before, acc_after, args.examples)
    print(tables, end="")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(_markdown(args, tables, parity_text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
