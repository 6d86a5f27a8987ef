"""Command line of the parity tool (`python -m parity`, console script `shim-parity`).

    compare A B               two training runs (alias compare-runs): A, B = run directories
                              (`tools/train.py --output_path`) or metrics.jsonl files
    compare-checkpoints A B   two checkpoints tensor by tensor (HF dirs, .safetensors, .pt/.bin, Megatron dirs)
    compare-generations A B   two `tools/generate.py --output_file` JSONL files token by token

Exit status: 0 everything within tolerance, 1 mismatch, 2 bad input (missing file, invalid JSON — the message
names the file and line — or bad arguments). `--json FILE` also writes a machine-readable summary.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Optional, Sequence

from .checkpoints import DTYPE_TOLERANCES, compare_checkpoints, format_checkpoint_report
from .generations import compare_generations, format_generation_report
from .inputs import ParityInputError
from .metrics import (DEFAULT_METRIC_TOLERANCES, DEFAULT_SHOWN, FALLBACK_TOLERANCE, REPORT_ONLY_PATTERNS,
                      compare_runs, format_run_report, load_run, report_dict, tolerance_for)
from .tolerance import parse_tolerance_overrides

PROG = "shim-parity"
EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


def _tolerance_epilog() -> str:
    lines = ["default tolerances (rule: |a-b| <= max(atol, rtol*max(|a|,|b|)); NaN agrees only with NaN):"]
    for name, tol in DEFAULT_METRIC_TOLERANCES.items():
        lines.append(f"  {name:20s} {tol.describe()}")
    lines.append(f"  {'(reported only)':20s} {', '.join(REPORT_ONLY_PATTERNS)}")
    lines.append(f"  {'(any other field)':20s} {FALLBACK_TOLERANCE.describe()}")
    lines.append("override: --tol loss=atol:1e-5,rtol:0  --tol grad_norm=exact  --tol lr=off (report only)")
    return "\n".join(lines)


def _dtype_epilog() -> str:
    lines = ["default tolerances per dtype (the looser one when the two dtypes differ; integers exact):"]
    lines += [f"  {name:10s} {tol.describe()}" for name, tol in DTYPE_TOLERANCES.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the three subcommands."""
    p = argparse.ArgumentParser(prog=PROG, description="Compare two runs, checkpoints or generation outputs "
                                "(reference vs shim) number by number.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fmt = argparse.RawDescriptionHelpFormatter
    for name in ("compare", "compare-runs"):
        c = sub.add_parser(name, help="compare two training runs (metrics.jsonl + manifest.json)" if name == "compare"
                           else "alias of compare", formatter_class=fmt, epilog=_tolerance_epilog())
        c.add_argument("a", metavar="A", help="reference run: output directory or metrics.jsonl")
        c.add_argument("b", metavar="B", help="compared run: output directory or metrics.jsonl")
        c.add_argument("--manifest-a", default=None, help="manifest of A (default: manifest.json next to the "
                                                          "metrics)")
        c.add_argument("--manifest-b", default=None, help="manifest of B")
        c.add_argument("--tol", action="append", default=[], metavar="NAME=SPEC",
                       help="tolerance override, repeatable: NAME=atol:X,rtol:Y | NAME=exact | NAME=off")
        c.add_argument("--steps", default=None, metavar="FIRST:LAST",
                       help="compare only these steps (inclusive); 'N' means 1:N")
        c.add_argument("--allow-missing-steps", action="store_true",
                       help="steps present in one run only do not fail the comparison")
        c.add_argument("--strict-manifest", action="store_true",
                       help="manifest warnings (seed, data/model fingerprints, parallel sizes, hyper-parameters) "
                            "fail the comparison")
        c.add_argument("--show", default=",".join(DEFAULT_SHOWN),
                       help=f"metrics whose side-by-side table is printed, comma-separated, or 'all' (default "
                            f"{','.join(DEFAULT_SHOWN)}; failing metrics are always shown)")
        c.add_argument("--max-rows", type=int, default=40,
                       help="rows per table before the middle is elided (0 = all; default 40)")
        c.add_argument("--plot", default=None, metavar="PNG", help="write curves and their difference to PNG")
        c.add_argument("--plot-metrics", default="loss,grad_norm",
                       help="metrics plotted with --plot, comma-separated (default loss,grad_norm)")
        c.add_argument("--json", default=None, metavar="FILE", help="also write a JSON summary")

    k = sub.add_parser("compare-checkpoints", help="compare two checkpoints tensor by tensor", formatter_class=fmt,
                       epilog=_dtype_epilog())
    k.add_argument("a", metavar="A", help="reference checkpoint (HF dir, .safetensors, .pt/.bin, Megatron dir)")
    k.add_argument("b", metavar="B", help="compared checkpoint")
    k.add_argument("--atol", type=float, default=None, help="absolute tolerance for every tensor")
    k.add_argument("--rtol", type=float, default=None, help="relative tolerance for every tensor")
    k.add_argument("--exact", action="store_true", help="values must be equal (atol = rtol = 0)")
    k.add_argument("--ignore-dtype", action="store_true", help="a dtype difference alone is not a mismatch")
    k.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                   help="leave out tensors whose name matches this fnmatch pattern (repeatable)")
    k.add_argument("--unsafe-pickle", action="store_true",
                   help="torch.load with weights_only=False (runs code in the file: trusted files only)")
    k.add_argument("--all", action="store_true", help="list every tensor, not only failures and the largest")
    k.add_argument("--max-rows", type=int, default=50, help="list every tensor up to this many (default 50)")
    k.add_argument("--json", default=None, metavar="FILE", help="also write a JSON summary")

    g = sub.add_parser("compare-generations", help="compare two generate.py output files token by token")
    g.add_argument("a", metavar="A", help="reference JSONL (tools/generate.py --output_file)")
    g.add_argument("b", metavar="B", help="compared JSONL")
    g.add_argument("--max-rows", type=int, default=50, help="differing records listed (0 = all; default 50)")
    g.add_argument("--json", default=None, metavar="FILE", help="also write a JSON summary")
    return p


def _parse_steps(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    first, sep, last = text.partition(":")
    try:
        lo, hi = (int(first), int(last)) if sep else (1, int(first))
    except ValueError:
        raise ParityInputError(f"--steps {text!r}: expected FIRST:LAST or N (integers)") from None
    if lo > hi:
        raise ParityInputError(f"--steps {text!r}: FIRST must be <= LAST")
    return lo, hi


def _json_default(obj):
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def _clean(value):
    """Non-finite floats → strings, so the JSON summary is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_json(path: Optional[str], data: dict) -> None:
    if path:
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(_clean(data), f, indent=2, default=_json_default, allow_nan=False)
                f.write("\n")
        except OSError as exc:
            raise ParityInputError(f"{path}: cannot write the JSON summary ({exc})") from exc


def _cmd_compare(args) -> int:
    overrides = parse_tolerance_overrides(args.tol, tolerance_for)
    run_a = load_run(args.a, args.manifest_a)
    run_b = load_run(args.b, args.manifest_b)
    cmp = compare_runs(run_a, run_b, tolerances=overrides, step_range=_parse_steps(args.steps),
                       allow_missing_steps=args.allow_missing_steps, strict_manifest=args.strict_manifest)
    unknown = sorted(set(overrides) - {m.name for m in cmp.metrics})
    if unknown:
        print(f"{PROG}: warning: --tol names no metric of these runs: {', '.join(unknown)}", file=sys.stderr)
    show = [s.strip() for s in args.show.split(",") if s.strip()]
    print(format_run_report(cmp, show=show, max_rows=args.max_rows))
    if args.plot:
        from .plot import plot_runs  # imported on use: matplotlib costs ~0.5 s and only --plot needs it

        metrics = [s.strip() for s in args.plot_metrics.split(",") if s.strip()]
        path = plot_runs(cmp, args.plot, metrics=metrics)
        print(f"plot: {path}")
    _write_json(args.json, report_dict(cmp))
    return EXIT_OK if cmp.ok else EXIT_MISMATCH


def _cmd_checkpoints(args) -> int:
    atol, rtol = args.atol, args.rtol
    if args.exact:
        atol, rtol = 0.0, 0.0
    for flag, v in (("--atol", atol), ("--rtol", rtol)):
        if v is not None and not (v >= 0 and math.isfinite(v)):
            raise ParityInputError(f"{flag} {v}: expected a finite number >= 0")
    cmp = compare_checkpoints(args.a, args.b, atol=atol, rtol=rtol, ignore_dtype=args.ignore_dtype,
                              ignore=args.ignore, unsafe_pickle=args.unsafe_pickle)
    print(format_checkpoint_report(cmp, max_rows=args.max_rows, show_all=args.all))
    _write_json(args.json, {
        "ok": cmp.ok, "only_in_a": cmp.only_in_a, "only_in_b": cmp.only_in_b, "ignored": cmp.ignored,
        "tensors": [{"name": t.name, "dtype_a": t.dtype_a, "dtype_b": t.dtype_b, "shape_a": list(t.shape_a),
                     "shape_b": list(t.shape_b), "atol": t.tolerance.atol, "rtol": t.tolerance.rtol,
                     "diff": dataclasses.asdict(t.diff) if t.diff else None, "problems": t.problems}
                    for t in cmp.tensors]})
    return EXIT_OK if cmp.ok else EXIT_MISMATCH


def _cmd_generations(args) -> int:
    cmp = compare_generations(args.a, args.b)
    print(format_generation_report(cmp, max_rows=args.max_rows))
    _write_json(args.json, {
        "ok": cmp.ok, "counts": cmp.counts(), "only_in_a": cmp.only_in_a, "only_in_b": cmp.only_in_b,
        "notes": cmp.notes,
        "differing": [{"index": r.key, "first_difference": r.first_difference, "token_a": r.token_a,
                       "token_b": r.token_b, "len_a": r.len_a, "len_b": r.len_b, "stop_a": r.stop_a,
                       "stop_b": r.stop_b, "prompt_difference": r.prompt_difference} for r in cmp.failures]})
    return EXIT_OK if cmp.ok else EXIT_MISMATCH


_COMMANDS = {"compare": _cmd_compare, "compare-runs": _cmd_compare, "compare-checkpoints": _cmd_checkpoints,
             "compare-generations": _cmd_generations}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the parity tool; returns the exit status (0 ok, 1 mismatch, 2 bad input or arguments).

    Argument errors exit through argparse with status 2 (SystemExit).
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ParityInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
