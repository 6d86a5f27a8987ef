"""Comparing two training runs recorded by `tools/train.py`.

Inputs (written by `qwen_sft/run_records.py` for `tools/train.py`): `<output_path>/metrics.jsonl`, one JSON
object per line —
`{"kind": "train", "step": 1-based optimizer step, "epoch", "consumed_samples", "loss", "lr", "grad_norm",
"skipped", "learnable_tokens", "total_tokens", "padded_tokens", "seq_length_padded", "step_time_s",
"learnable_tokens_per_s", "total_tokens_per_s", "peak_rss_mib" | "peak_gpu_memory_mib", ["loss_scale"]}` and,
every `eval_interval` steps, `{"kind": "eval", "step", "valid_loss", "valid_ppl", "valid_tokens",
"valid_samples_used"}` — and `<output_path>/manifest.json` (see `parity.manifest`). A record without
"kind" counts as "train".

Records are matched by (kind, step). Every field of the matched records is compared under its tolerance
(`tolerance_for`): the stated defaults `DEFAULT_METRIC_TOLERANCES`, timing/throughput/memory fields
(`REPORT_ONLY_PATTERNS`) reported and never compared, any other field with `FALLBACK_TOLERANCE`; `--tol`
overrides any of them. A field present on one side only, a NaN on one side only, or a step present in one run
only (unless allowed) is a mismatch; NaN on both sides agrees.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .inputs import ParityInputError, read_json, read_jsonl
from .manifest import ManifestComparison, compare_manifests
from .text import fmt_diff, fmt_value, format_table, shorten, step_ranges
from .tolerance import ScalarCheck, Tolerance, check_scalar

METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "manifest.json"

EXACT = Tolerance(0.0, 0.0)
# Stated defaults (units: loss in nats per learnable token; lr as a plain number; counts are integers).
DEFAULT_METRIC_TOLERANCES: dict[str, Tolerance] = {
    "loss": Tolerance(atol=1e-4, rtol=0.0),
    "grad_norm": Tolerance(atol=0.0, rtol=1e-3),
    "lr": Tolerance(atol=0.0, rtol=1e-9),
    "loss_scale": EXACT,
    "skipped": EXACT,
    "epoch": EXACT,
    "consumed_samples": EXACT,
    "learnable_tokens": EXACT,
    "total_tokens": EXACT,
    "padded_tokens": EXACT,
    "seq_length_padded": EXACT,
    "valid_loss": Tolerance(atol=1e-4, rtol=0.0),
    "valid_ppl": Tolerance(atol=0.0, rtol=2e-4),   # exp(valid_loss): a 1e-4 loss difference moves it ~1e-4 rel
    "valid_tokens": EXACT,
    "valid_samples_used": EXACT,
}
# Timing, throughput and memory: they differ between machines by nature; reported, never compared.
REPORT_ONLY_PATTERNS: tuple[str, ...] = ("*_s", "*_per_s", "peak_*", "*_mib", "*memory*")
# Any other field (a metric added to train.py later): compared, nearly exactly.
FALLBACK_TOLERANCE = Tolerance(atol=0.0, rtol=1e-6)
# Fields that identify a record rather than measure something.
KEY_FIELDS = ("kind", "step")
# Metrics whose side-by-side table is printed by default (plus every metric with a mismatch).
DEFAULT_SHOWN = ("loss", "grad_norm", "lr", "valid_loss")

_ABSENT = object()


def tolerance_for(name: str, overrides: Optional[Mapping[str, Tolerance]] = None) -> Tolerance:
    """The tolerance of metric `name`: override, else stated default, else report-only pattern, else fallback."""
    if overrides and name in overrides:
        return overrides[name]
    if name in DEFAULT_METRIC_TOLERANCES:
        return DEFAULT_METRIC_TOLERANCES[name]
    if any(fnmatch.fnmatchcase(name, p) for p in REPORT_ONLY_PATTERNS):
        return Tolerance(compare=False)
    return FALLBACK_TOLERANCE


@dataclasses.dataclass
class Run:
    """A loaded training run.

    Attributes:
        label: how the run is named in reports (the path given).
        metrics_path: the metrics JSONL file.
        manifest_path: the manifest file, or None when there is none.
        manifest: the parsed manifest, or None.
        records: `{(kind, step): record}`.
        lines: `{(kind, step): line number in metrics_path}`.
    """
    label: str
    metrics_path: Path
    manifest_path: Optional[Path]
    manifest: Optional[dict]
    records: dict[tuple[str, int], dict]
    lines: dict[tuple[str, int], int]

    def steps(self, kind: str) -> list[int]:
        """Sorted steps that have a record of `kind`."""
        return sorted(s for k, s in self.records if k == kind)

    def series(self, kind: str, name: str) -> tuple[list[int], list[Any]]:
        """(steps, values) of metric `name` over the records of `kind` that have it."""
        steps, values = [], []
        for step in self.steps(kind):
            value = self.records[(kind, step)].get(name, _ABSENT)
            if value is not _ABSENT:
                steps.append(step)
                values.append(value)
        return steps, values


def load_run(path: Union[str, Path], manifest_path: Union[str, Path, None] = None) -> Run:
    """Load a run from its output directory or its metrics file.

    Args:
        path: a `tools/train.py --output_path` directory (reads `metrics.jsonl`, and `manifest.json` when
            present) or a metrics JSONL file (its sibling `manifest.json` is used when present).
        manifest_path: an explicit manifest file (must exist), overriding the automatic one.

    Returns:
        `Run`.

    Raises:
        ParityInputError: missing metrics file, invalid JSON (file:line), a record without an integer "step",
            a duplicate (kind, step), no records at all, a manifest that is not a JSON object.
    """
    path = Path(path)
    if path.is_dir():
        metrics_path = path / METRICS_FILE
        if not metrics_path.is_file():
            raise ParityInputError(f"{path}: run directory has no {METRICS_FILE} (expected the --output_path of "
                                   f"tools/train.py, or a metrics JSONL file)")
    else:
        metrics_path = path
    records: dict[tuple[str, int], dict] = {}
    lines: dict[tuple[str, int], int] = {}
    for lineno, record in read_jsonl(metrics_path, "metrics file"):
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ParityInputError(f"{metrics_path}:{lineno}: record has no integer 'step' >= 0 "
                                   f"(got {step!r})")
        kind = record.get("kind", "train")
        if not isinstance(kind, str):
            raise ParityInputError(f"{metrics_path}:{lineno}: 'kind' must be a string, got {kind!r}")
        key = (kind, step)
        if key in records:
            raise ParityInputError(f"{metrics_path}:{lineno}: duplicate {kind} record for step {step} (first at "
                                   f"line {lines[key]})")
        records[key] = record
        lines[key] = lineno
    if not records:
        raise ParityInputError(f"{metrics_path}: metrics file has no records")
    if manifest_path is not None:
        manifest_path = Path(manifest_path)
    elif (metrics_path.parent / MANIFEST_FILE).is_file():
        manifest_path = metrics_path.parent / MANIFEST_FILE
    manifest = None
    if manifest_path is not None:
        manifest = read_json(manifest_path, "run manifest")
        if not isinstance(manifest, dict):
            raise ParityInputError(f"{manifest_path}: run manifest must be a JSON object, got "
                                   f"{type(manifest).__name__}")
    return Run(str(path), metrics_path, manifest_path, manifest, records, lines)


@dataclasses.dataclass
class Row:
    """One step of one metric: the two values and their check (`ScalarCheck`)."""
    step: int
    a: Any
    b: Any
    check: ScalarCheck


@dataclasses.dataclass
class MetricComparison:
    """One metric of one record kind over the common steps.

    Attributes:
        kind: "train" or "eval" (or another record kind).
        name: the field name.
        tolerance: the tolerance applied (report-only when `tolerance.compare` is False).
        rows: one per common step where at least one side has the field.
    """
    kind: str
    name: str
    tolerance: Tolerance
    rows: list[Row]

    @property
    def failures(self) -> list[Row]:
        """Rows that do not agree (empty for report-only metrics)."""
        return [r for r in self.rows if not r.check.ok]

    @property
    def first_failure(self) -> Optional[int]:
        """First step where the metric disagrees, or None."""
        fails = self.failures
        return fails[0].step if fails else None

    @property
    def max_abs(self) -> Optional[float]:
        """Largest |a - b| over rows with numeric values (NaN/inf included when present), or None."""
        vals = [r.check.abs_diff for r in self.rows if r.check.abs_diff is not None]
        if not vals:
            return None
        if any(math.isnan(v) for v in vals):
            return math.nan
        return max(vals)

    @property
    def max_rel(self) -> Optional[float]:
        """Largest relative difference over rows where it is defined, or None."""
        vals = [r.check.rel_diff for r in self.rows if r.check.rel_diff is not None]
        return max(vals) if vals else None


@dataclasses.dataclass
class RunComparison:
    """Result of `compare_runs`.

    Attributes:
        run_a, run_b: the runs.
        metrics: one `MetricComparison` per (kind, field), compared and report-only ones.
        common_steps: `{kind: [steps in both runs]}`.
        only_in_a, only_in_b: `{kind: [steps]}` present in one run only (after the step range filter).
        allow_missing_steps: whether one-sided steps are tolerated.
        manifest: the manifest comparison.
        step_range: the (first, last) step filter applied, or None.
    """
    run_a: Run
    run_b: Run
    metrics: list[MetricComparison]
    common_steps: dict[str, list[int]]
    only_in_a: dict[str, list[int]]
    only_in_b: dict[str, list[int]]
    allow_missing_steps: bool
    manifest: ManifestComparison
    step_range: Optional[tuple[int, int]] = None

    @property
    def compared(self) -> list[MetricComparison]:
        """The metrics that are compared (not report-only)."""
        return [m for m in self.metrics if m.tolerance.compare]

    @property
    def first_diverging_step(self) -> Optional[int]:
        """The first step at which any compared metric (of any kind) disagrees, or None."""
        steps = [m.first_failure for m in self.compared if m.first_failure is not None]
        return min(steps) if steps else None

    def diverging_at(self, step: int) -> list[MetricComparison]:
        """The compared metrics that disagree at `step`."""
        return [m for m in self.compared if any(r.step == step for r in m.failures)]

    @property
    def missing_steps(self) -> bool:
        """Whether some step is present in one run only."""
        return any(self.only_in_a.values()) or any(self.only_in_b.values())

    @property
    def ok(self) -> bool:
        """True when at least one step was compared, every compared metric agrees, no step is one-sided (unless
        allowed) and the manifest comparison passes (it fails only in strict mode)."""
        return (any(self.common_steps.values()) and self.first_diverging_step is None
                and (self.allow_missing_steps or not self.missing_steps) and self.manifest.ok)


def compare_runs(a: Union[Run, str, Path], b: Union[Run, str, Path],
                 tolerances: Optional[Mapping[str, Tolerance]] = None,
                 step_range: Optional[tuple[int, int]] = None, allow_missing_steps: bool = False,
                 strict_manifest: bool = False) -> RunComparison:
    """Compare two training runs step by step.

    Args:
        a, b: `Run`s or paths for `load_run` (A is conventionally the reference).
        tolerances: per-metric overrides `{name: Tolerance}` (see `parity.tolerance.parse_tolerance_overrides`).
        step_range: only steps first..last (inclusive) are considered, e.g. (1, 10).
        allow_missing_steps: steps present in one run only are reported but do not fail the comparison.
        strict_manifest: manifest differences of category "warn" fail the comparison.

    Returns:
        `RunComparison` (`.ok`, `.first_diverging_step`, `format_run_report` prints it).

    Raises:
        ParityInputError: from `load_run`.
    """
    run_a = a if isinstance(a, Run) else load_run(a)
    run_b = b if isinstance(b, Run) else load_run(b)

    def in_range(step: int) -> bool:
        return step_range is None or step_range[0] <= step <= step_range[1]

    kinds = sorted({k for k, _ in run_a.records} | {k for k, _ in run_b.records},
                   key=lambda k: (k != "train", k))
    common, only_a, only_b, metrics = {}, {}, {}, []
    for kind in kinds:
        sa = {s for s in run_a.steps(kind) if in_range(s)}
        sb = {s for s in run_b.steps(kind) if in_range(s)}
        common[kind] = sorted(sa & sb)
        only_a[kind] = sorted(sa - sb)
        only_b[kind] = sorted(sb - sa)
        names: list[str] = []
        for step in common[kind]:
            for rec in (run_a.records[(kind, step)], run_b.records[(kind, step)]):
                names.extend(n for n in rec if n not in KEY_FIELDS and n not in names)
        for name in names:
            tol = tolerance_for(name, tolerances)
            rows = []
            for step in common[kind]:
                va = run_a.records[(kind, step)].get(name, _ABSENT)
                vb = run_b.records[(kind, step)].get(name, _ABSENT)
                if va is _ABSENT and vb is _ABSENT:
                    continue
                if va is _ABSENT or vb is _ABSENT:
                    check = ScalarCheck(not tol.compare, None, None,
                                        "missing in A" if va is _ABSENT else "missing in B")
                    rows.append(Row(step, None if va is _ABSENT else va, None if vb is _ABSENT else vb, check))
                else:
                    rows.append(Row(step, va, vb, check_scalar(va, vb, tol)))
            metrics.append(MetricComparison(kind, name, tol, rows))
    manifest = compare_manifests(run_a.manifest, run_b.manifest, strict=strict_manifest)
    return RunComparison(run_a, run_b, metrics, common, only_a, only_b, allow_missing_steps, manifest, step_range)


def _select_rows(rows: list[Row], focus: Optional[int], max_rows: int) -> list[Optional[Row]]:
    """All rows when few; else the head, the tail and a window around `focus`, with None marking a gap."""
    if max_rows <= 0 or len(rows) <= max_rows:
        return list(rows)
    keep = set(range(min(10, len(rows)))) | set(range(max(0, len(rows) - 5), len(rows)))
    if focus is not None:
        idx = next(i for i, r in enumerate(rows) if r.step == focus)
        keep |= set(range(max(0, idx - 5), min(len(rows), idx + 6)))
    out: list[Optional[Row]] = []
    prev = -1
    for i in sorted(keep):
        if i != prev + 1:
            out.append(None)
        out.append(rows[i])
        prev = i
    return out


def _metric_table(m: MetricComparison, max_rows: int) -> str:
    rows = []
    for r in _select_rows(m.rows, m.first_failure, max_rows):
        if r is None:
            rows.append(["…"])
            continue
        ok = "ok" if r.check.ok else "FAIL"
        if r.check.note:
            ok += f" ({r.check.note})"
        rows.append([str(r.step), fmt_value(r.a), fmt_value(r.b), fmt_diff(r.check.abs_diff),
                     fmt_diff(r.check.rel_diff), ok])
    return format_table(["step", "A", "B", "|diff|", "rel", "ok"], rows, indent="    ")


def _run_description(run: Run) -> str:
    m = run.manifest or {}
    dev = m.get("device") if isinstance(m.get("device"), dict) else {}
    parts = [f"backend {m.get('backend', '?')}", f"device {dev.get('type', '?')}"]
    par = m.get("parallel") if isinstance(m.get("parallel"), dict) else {}
    if par:
        parts.append("TP{} PP{} DP{}".format(par.get("tensor_model_parallel_size", "?"),
                                              par.get("pipeline_model_parallel_size", "?"),
                                              par.get("data_parallel_size", "?")))
    return f"{run.metrics_path}" + (f" ({', '.join(parts)})" if run.manifest else " (no manifest)")


def _reported_summary(m: MetricComparison) -> Optional[list[str]]:
    nums_a = [float(r.a) for r in m.rows if isinstance(r.a, (int, float)) and not isinstance(r.a, bool)]
    nums_b = [float(r.b) for r in m.rows if isinstance(r.b, (int, float)) and not isinstance(r.b, bool)]
    if not nums_a or not nums_b:
        return None
    peak = m.name.startswith("peak_") or "memory" in m.name
    stat = "max" if peak else "mean"
    va = max(nums_a) if peak else sum(nums_a) / len(nums_a)
    vb = max(nums_b) if peak else sum(nums_b) / len(nums_b)
    ratio = f"{vb / va:.3f}" if va else "-"
    return [f"{m.kind}.{m.name}", stat, f"{va:.6g}", f"{vb:.6g}", ratio]


def format_run_report(cmp: RunComparison, show: Sequence[str] = DEFAULT_SHOWN, max_rows: int = 40) -> str:
    """Human-readable report of a `RunComparison`.

    Sections: the two runs, the manifest comparison, step coverage, a per-metric summary (tolerance, max |diff|,
    max rel, failures, first failing step), side-by-side tables (step, A, B, |diff|, rel, ok) for the metrics in
    `show` ("all" for every compared metric) and for every failing metric, report-only quantities (mean or max,
    B/A ratio), and the verdict with the first diverging step.

    Args:
        cmp: the comparison.
        show: metric names whose table is printed; "all" prints every compared metric.
        max_rows: rows per table before eliding the middle (head, tail and the first divergence stay); 0 = all.
    """
    out = [f"A: {_run_description(cmp.run_a)}", f"B: {_run_description(cmp.run_b)}"]
    man = cmp.manifest
    out.append("")
    out.append("manifest:")
    for note in man.notes:
        out.append(f"  note: {note}")
    if cmp.run_a.manifest is not None and cmp.run_b.manifest is not None:
        out.append(f"  {man.same_fields} fields equal, {len(man.differences)} differ "
                   f"({len(man.warnings)} warning(s))")
        for d in man.differences:
            tag = "WARNING" if d.category == "warn" else "expected"
            out.append(f"  {tag}: {d.name}: A={shorten(fmt_value(d.a))} B={shorten(fmt_value(d.b))}")
    out.append("")
    out.append("steps:")
    for kind in cmp.common_steps:
        line = f"  {kind}: {len(cmp.common_steps[kind])} common ({step_ranges(cmp.common_steps[kind]) or '-'})"
        if cmp.only_in_a[kind]:
            line += f"; only in A: {step_ranges(cmp.only_in_a[kind])}"
        if cmp.only_in_b[kind]:
            line += f"; only in B: {step_ranges(cmp.only_in_b[kind])}"
        out.append(line)
    if cmp.step_range:
        out.append(f"  (restricted to steps {cmp.step_range[0]}..{cmp.step_range[1]})")
    out.append("")
    out.append("compared metrics:")
    summary = []
    for m in cmp.compared:
        summary.append([f"{m.kind}.{m.name}", m.tolerance.describe(), str(len(m.rows)), fmt_diff(m.max_abs),
                        fmt_diff(m.max_rel), str(len(m.failures)),
                        str(m.first_failure) if m.first_failure is not None else "-"])
    out.append(format_table(["metric", "tolerance", "steps", "max|diff|", "max rel", "fails", "first fail"],
                            summary))
    show_all = "all" in show
    for m in cmp.compared:
        if show_all or m.name in show or m.failures:
            out.append("")
            out.append(f"  {m.kind}.{m.name} ({m.tolerance.describe()}):")
            out.append(_metric_table(m, max_rows))
    reported = [r for r in (_reported_summary(m) for m in cmp.metrics if not m.tolerance.compare) if r]
    if reported:
        out.append("")
        out.append("reported only (never compared):")
        out.append(format_table(["metric", "stat", "A", "B", "B/A"], reported))
    out.append("")
    out.append(verdict_line(cmp))
    return "\n".join(out)


def verdict_line(cmp: RunComparison) -> str:
    """One line: "OK: …" or "MISMATCH: …" naming the first diverging step and its metrics."""
    reasons = []
    first = cmp.first_diverging_step
    if first is not None:
        names = ", ".join(f"{m.kind}.{m.name}" for m in cmp.diverging_at(first))
        reasons.append(f"first diverging step {first} ({names})")
    if not any(cmp.common_steps.values()):
        reasons.append("no step in common")
    if cmp.missing_steps and not cmp.allow_missing_steps:
        reasons.append("steps present in one run only")
    if not cmp.manifest.ok:
        reasons.append(f"{len(cmp.manifest.warnings)} manifest warning(s) with --strict-manifest")
    if reasons:
        return "MISMATCH: " + "; ".join(reasons)
    n = sum(len(v) for v in cmp.common_steps.values())
    return f"OK: {len(cmp.compared)} metrics agree on {n} records"


def report_dict(cmp: RunComparison) -> dict:
    """A JSON-serializable summary (for `--json`): verdict, first diverging step, per-metric statistics."""
    return {
        "ok": cmp.ok,
        "first_diverging_step": cmp.first_diverging_step,
        "common_steps": cmp.common_steps,
        "only_in_a": cmp.only_in_a,
        "only_in_b": cmp.only_in_b,
        "manifest_differences": [dataclasses.asdict(d) for d in cmp.manifest.differences],
        "metrics": [{"kind": m.kind, "name": m.name, "compared": m.tolerance.compare,
                     "atol": m.tolerance.atol, "rtol": m.tolerance.rtol, "steps": len(m.rows),
                     "max_abs": m.max_abs, "max_rel": m.max_rel, "failures": len(m.failures),
                     "first_failure": m.first_failure} for m in cmp.metrics],
    }
