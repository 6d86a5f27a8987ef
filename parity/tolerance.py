"""The closeness rule shared by every comparison, and the `--tol` override syntax.

Rule (Python's `math.isclose`, symmetric in A and B): two finite numbers agree when

    |a - b| <= max(atol, rtol * max(|a|, |b|))

so `atol` bounds the absolute difference, `rtol` the relative difference `|a - b| / max(|a|, |b|)` (reported as
"rel"; 0 when both are 0), and atol = rtol = 0 means exact equality. Non-finite values agree only with themselves:
NaN with NaN (counted as "both NaN"), +inf with +inf, -inf with -inf. `None` agrees only with `None`; booleans,
strings and other non-numbers agree when equal. A `Tolerance` with `compare=False` marks a quantity that is
reported but never compared (timings, memory).

Override syntax (`--tol`, repeatable): `NAME=atol:1e-5,rtol:0` (a part left out keeps the default), `NAME=exact`
(atol = rtol = 0), `NAME=off` (report only).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .inputs import ParityInputError


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance of one quantity (see the module docstring for the rule).

    Attributes:
        atol: largest allowed |a - b| (same unit as the quantity), >= 0.
        rtol: largest allowed |a - b| / max(|a|, |b|), >= 0.
        compare: False for report-only quantities (never cause a mismatch).
    """
    atol: float = 0.0
    rtol: float = 0.0
    compare: bool = True

    def describe(self) -> str:
        """Short human form: "atol 1e-04 rtol 0", "exact" or "reported only"."""
        if not self.compare:
            return "reported only"
        if self.atol == 0 and self.rtol == 0:
            return "exact"
        return f"atol {self.atol:g} rtol {self.rtol:g}"

    def loosest(self, other: "Tolerance") -> "Tolerance":
        """The element-wise larger of two tolerances (used when two dtypes meet)."""
        return Tolerance(max(self.atol, other.atol), max(self.rtol, other.rtol), self.compare and other.compare)


@dataclasses.dataclass(frozen=True)
class ScalarCheck:
    """Outcome of comparing two scalar values.

    Attributes:
        ok: the values agree under the tolerance (always True when the tolerance is report-only).
        abs_diff: |a - b| for two numbers (inf/nan when one side is not finite), None for non-numbers.
        rel_diff: |a - b| / max(|a|, |b|) for two finite numbers (0 when both are 0), else None.
        note: "" or a short reason ("both NaN", "NaN in A", "missing in B", "type differs", ...).
    """
    ok: bool
    abs_diff: Optional[float]
    rel_diff: Optional[float]
    note: str = ""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_scalar(a: Any, b: Any, tol: Tolerance) -> ScalarCheck:
    """Compare two JSON scalars (number, bool, None, string, list) under `tol`.

    Returns:
        `ScalarCheck`; for a report-only tolerance `ok` is True and the differences are still computed.
    """
    if a is None and b is None:
        return ScalarCheck(True, None, None, "both null")
    if not (_is_number(a) and _is_number(b)):
        same = type(a) is type(b) and a == b
        note = "" if same else ("type differs" if type(a) is not type(b) else "differs")
        return ScalarCheck(same or not tol.compare, None, None, note)
    if isinstance(a, int) and isinstance(b, int):
        diff = abs(a - b)
        scale = max(abs(a), abs(b))
        rel = diff / scale if scale else 0.0
        ok = diff <= max(tol.atol, tol.rtol * scale)
        return ScalarCheck(ok or not tol.compare, float(diff), rel)
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        if math.isnan(fa) and math.isnan(fb):
            return ScalarCheck(True, 0.0, 0.0, "both NaN")
        return ScalarCheck(not tol.compare, math.nan, None, "NaN in A" if math.isnan(fa) else "NaN in B")
    if fa == fb:
        return ScalarCheck(True, 0.0, 0.0)
    diff = abs(fa - fb)
    if math.isinf(diff):
        return ScalarCheck(not tol.compare, math.inf, None, "inf")
    scale = max(abs(fa), abs(fb))
    ok = diff <= max(tol.atol, tol.rtol * scale)
    return ScalarCheck(ok or not tol.compare, diff, diff / scale)


@dataclasses.dataclass
class ArrayDiff:
    """Element-wise comparison of two arrays of one shape.

    Attributes:
        numel: number of elements compared.
        mismatches: elements that do not agree under the tolerance (non-finite ones included).
        nonfinite_mismatches: elements where one side is NaN/inf and the other is not the same value.
        max_abs: largest |a - b| over elements where both are finite (0.0 for empty arrays).
        max_rel: largest |a - b| / max(|a|, |b|) over those elements.
        first_mismatch: flat (C-order) index of the first disagreeing element, or None.
    """
    numel: int
    mismatches: int = 0
    nonfinite_mismatches: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    first_mismatch: Optional[int] = None


def compare_arrays(a: np.ndarray, b: np.ndarray, tol: Tolerance, chunk_elems: int = 1 << 22) -> ArrayDiff:
    """Compare two numeric arrays of the same shape element by element (in float64, chunked to bound memory).

    Integer and boolean pairs are compared exactly in int64 arithmetic regardless of `tol`'s size (their
    differences are still measured against it). Floating values follow the module's rule.

    Args:
        a, b: arrays of equal shape (any numeric dtypes; bf16 must already be widened to float32).
        tol: the tolerance.
        chunk_elems: elements per processed chunk (memory: a few float64 copies of one chunk).

    Raises:
        ValueError: the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(f"compare_arrays: shapes differ {a.shape} vs {b.shape}")
    fa, fb = a.reshape(-1), b.reshape(-1)
    out = ArrayDiff(numel=int(fa.size))
    integral = fa.dtype.kind in "biu" and fb.dtype.kind in "biu"
    for start in range(0, fa.size, chunk_elems):
        if integral:
            x = fa[start:start + chunk_elems].astype(np.int64)
            y = fb[start:start + chunk_elems].astype(np.int64)
            diff = np.abs(x - y).astype(np.float64)
            scale = np.maximum(np.abs(x), np.abs(y)).astype(np.float64)
            finite = np.ones(diff.shape, dtype=bool)
        else:
            x = fa[start:start + chunk_elems].astype(np.float64)
            y = fb[start:start + chunk_elems].astype(np.float64)
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            finite = np.isfinite(x) & np.isfinite(y)
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.where(same, 0.0, np.abs(x - y))
            scale = np.where(finite, np.maximum(np.abs(x), np.abs(y)), 0.0)
            nonfinite_bad = ~finite & ~same
            out.nonfinite_mismatches += int(nonfinite_bad.sum())
        diff_f = np.where(finite, diff, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(scale > 0, diff_f / np.where(scale > 0, scale, 1.0), 0.0)
        bad = ~(diff_f <= np.maximum(tol.atol, tol.rtol * scale))
        if not integral:
            bad = (bad & finite) | nonfinite_bad
        if diff_f.size:
            out.max_abs = max(out.max_abs, float(diff_f.max()))
            out.max_rel = max(out.max_rel, float(rel.max()))
        n_bad = int(bad.sum())
        if n_bad and out.first_mismatch is None:
            out.first_mismatch = start + int(np.argmax(bad))
        out.mismatches += n_bad
    return out


def parse_tolerance_overrides(specs: Iterable[str],
                              default_for: Callable[[str], Tolerance]) -> dict[str, Tolerance]:
    """Parse `--tol` values into tolerances.

    Args:
        specs: strings `NAME=atol:X,rtol:Y` (either part optional), `NAME=exact` or `NAME=off`.
        default_for: the default tolerance of a name; a part left out of a spec keeps the default's value.

    Returns:
        `{name: Tolerance}` for the names in `specs` only.

    Raises:
        ParityInputError: a spec that does not follow the syntax (the message quotes it).
    """
    result: dict[str, Tolerance] = {}
    for spec in specs:
        name, sep, body = spec.partition("=")
        name, body = name.strip(), body.strip()
        if not sep or not name or not body:
            raise ParityInputError(f"--tol {spec!r}: expected NAME=atol:X,rtol:Y, NAME=exact or NAME=off")
        base = result.get(name) or default_for(name)
        if body == "off":
            result[name] = Tolerance(base.atol, base.rtol, compare=False)
            continue
        if body == "exact":
            result[name] = Tolerance(0.0, 0.0)
            continue
        atol, rtol = base.atol, base.rtol
        for part in body.split(","):
            key, sep2, value = part.partition(":")
            key = key.strip()
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not sep2 or key not in ("atol", "rtol") or not (number >= 0 and math.isfinite(number)):
                raise ParityInputError(f"--tol {spec!r}: bad part {part!r} (expected atol:<number >= 0> or "
                                       f"rtol:<number >= 0>)")
            if key == "atol":
                atol = number
            else:
                rtol = number
        result[name] = Tolerance(atol, rtol)
    return result
