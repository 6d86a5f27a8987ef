"""Plain-text formatting shared by the reports: aligned tables, numbers at full precision, step ranges."""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence


def fmt_value(x: Any) -> str:
    """A metric value as text: floats with 10 significant digits (full enough for 1e-4 parity), else str()."""
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return str(x)
        return f"{x:.10g}"
    if x is None:
        return "null"
    return str(x)


def shorten(text: str, limit: int = 100) -> str:
    """`text` cut to `limit` characters, marking the cut with "…" and the original length."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def fmt_diff(x: Optional[float]) -> str:
    """A difference as text: "-" when undefined, 0 as "0", else 3 significant digits in e-notation."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.3e}"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned first column, right-aligned others; a row of a single "…" cell is printed as an elision."""
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        if len(r) == len(headers):
            widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(headers)]
    for r in rows:
        out.append(indent + r[0] if len(r) != len(headers) else line(r))
    return "\n".join(out)


def step_ranges(steps: Iterable[int]) -> str:
    """Compress sorted integers into "1-3, 7, 9-12"."""
    steps = sorted(set(steps))
    parts = []
    i = 0
    while i < len(steps):
        j = i
        while j + 1 < len(steps) and steps[j + 1] == steps[j] + 1:
            j += 1
        parts.append(str(steps[i]) if i == j else f"{steps[i]}-{steps[j]}")
        i = j + 1
    return ", ".join(parts)
