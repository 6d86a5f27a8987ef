"""PNG plot of two runs: each metric's curves (A and B over the step) above their difference B − A.

matplotlib is used through its object API with the Agg canvas (no pyplot, no display, no global backend
switch), so plotting works headless and does not disturb a program that uses pyplot itself.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence, Union

from .inputs import ParityInputError
from .metrics import RunComparison

DEFAULT_PLOT_METRICS = ("loss", "grad_norm")


def _numeric(steps: list[int], values: list) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for s, v in zip(steps, values):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(s)
            ys.append(float(v))
    return xs, ys


def plot_runs(cmp: RunComparison, path: Union[str, Path], metrics: Sequence[str] = DEFAULT_PLOT_METRICS,
              kind: str = "train", labels: Sequence[str] = ("A", "B"), dpi: int = 100) -> Path:
    """Write a PNG with one column per metric: top A and B over the step, bottom B − A on the common steps.

    NaN values appear as gaps. For a compared metric the allowed difference (±max(atol, rtol·max(|a|,|b|)))
    is shaded in the difference panel; a diverging step is marked with a vertical line.

    Args:
        cmp: the comparison (its runs give the full curves, its metrics the tolerances).
        path: the output PNG file (parent directories are created).
        metrics: field names to plot; names absent from both runs are an error.
        kind: the record kind ("train" or "eval").
        labels: legend names of A and B.
        dpi: resolution (the figure is 5.5 x 6 inches per metric).

    Returns:
        The written path.

    Raises:
        ParityInputError: a metric is in neither run, or no metric has a numeric value.
    """
    # matplotlib costs ~0.5 s to import; only a plot needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = []
    for name in metrics:
        sa, va = _numeric(*cmp.run_a.series(kind, name))
        sb, vb = _numeric(*cmp.run_b.series(kind, name))
        if not sa and not sb:
            raise ParityInputError(f"--plot: metric {name!r} has no numeric {kind} value in either run")
        series.append((name, sa, va, sb, vb))
    fig = Figure(figsize=(5.5 * len(series), 6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(series), squeeze=False, sharex="col")
    by_name = {(m.kind, m.name): m for m in cmp.metrics}
    first = cmp.first_diverging_step
    for col, (name, sa, va, sb, vb) in enumerate(series):
        top, bottom = axes[0][col], axes[1][col]
        top.plot(sa, va, label=labels[0], linewidth=1.5)
        top.plot(sb, vb, label=labels[1], linewidth=1.0, linestyle="--")
        top.set_title(f"{kind} {name}")
        top.set_ylabel(name)
        top.legend()
        common = sorted(set(sa) & set(sb))
        da, db = dict(zip(sa, va)), dict(zip(sb, vb))
        diff = [db[s] - da[s] if not (math.isinf(da[s]) or math.isinf(db[s])) else math.nan for s in common]
        bottom.plot(common, diff, marker=".", linewidth=1.0, color="tab:red")
        bottom.axhline(0.0, color="black", linewidth=0.5)
        m = by_name.get((kind, name))
        tol = m.tolerance if m is not None else None
        if tol is not None and tol.compare and (tol.atol > 0 or tol.rtol > 0) and common:
            # The allowed difference at each step: max(atol, rtol * max(|a|, |b|)) (parity.tolerance).
            band = [max(tol.atol, tol.rtol * max((abs(v) for v in (da[s], db[s]) if math.isfinite(v)), default=0.0))
                    for s in common]
            bottom.fill_between(common, [-x for x in band], band, color="tab:green", alpha=0.15,
                                label=f"allowed ({tol.describe()})")
            bottom.legend()
        if first is not None:
            for ax in (top, bottom):
                ax.axvline(first, color="gray", linestyle=":", linewidth=1.0)
        bottom.set_xlabel("step")
        bottom.set_ylabel(f"{labels[1]} − {labels[0]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
