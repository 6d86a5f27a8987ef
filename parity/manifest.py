"""Comparing two run manifests (`<output_path>/manifest.json` of `tools/train.py`, written by
`qwen_sft/run_records.py`).

The manifest holds backend, versions, device, seed, parallel sizes, data and model fingerprints and the training
configuration. Fields are flattened to dotted names (`parallel.tensor_model_parallel_size`,
`model.fingerprint.sha256`) and classified by `MANIFEST_RULES` (first matching pattern wins):

- "expected": differences are normal between a reference and a shim run (backend, versions, device, paths,
  logging/saving cadence) — shown for information.
- "warn": differences that change what is computed or make the comparison unfair (seed, data and model
  fingerprints, parallel sizes, hyper-parameters, unknown fields) — reported as warnings. They fail the
  comparison only with `strict=True` (`--strict-manifest`): comparing TP=1 against TP=2 is a legitimate use.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Optional

# (fnmatch pattern over the dotted field name, category). First match wins; unmatched fields are "warn".
MANIFEST_RULES: tuple[tuple[str, str], ...] = (
    ("backend", "expected"),
    ("versions.*", "expected"),
    ("device.*", "expected"),
    ("argv", "expected"),
    ("data.path", "expected"),
    ("model.path", "expected"),
    ("model.kind", "expected"),
    ("start_step", "expected"),
    ("config.output_path", "expected"),
    ("config.data_path", "expected"),
    ("config.model_path", "expected"),
    ("config.tokenizer_path", "expected"),
    ("config.load", "expected"),
    ("config.resume", "expected"),
    ("config.save_steps", "expected"),
    ("config.log_interval", "expected"),
    ("config.eval_interval", "expected"),
    ("config.backend", "expected"),
    ("config.local_rank", "expected"),
    ("config.export_hf", "expected"),
    ("config.model_name", "expected"),
    ("seed", "warn"),
    ("data.*", "warn"),
    ("model.*", "warn"),
    ("parallel.*", "warn"),
    ("config.*", "warn"),
)

_ABSENT = object()


def classify_field(name: str) -> str:
    """Category of a flattened manifest field: "expected" or "warn" (see `MANIFEST_RULES`)."""
    for pattern, category in MANIFEST_RULES:
        if fnmatch.fnmatchcase(name, pattern):
            return category
    return "warn"


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into `{dotted.name: leaf}` (lists and scalars are leaves)."""
    if isinstance(obj, dict) and (obj or not prefix):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: obj}


@dataclasses.dataclass
class FieldDifference:
    """One manifest field whose value differs (or exists on one side only).

    Attributes:
        name: dotted field name.
        a, b: the values (the string "<absent>" when the field is missing on that side).
        category: "expected" or "warn".
    """
    name: str
    a: Any
    b: Any
    category: str


@dataclasses.dataclass
class ManifestComparison:
    """Result of `compare_manifests`.

    Attributes:
        differences: every differing field, in name order.
        same_fields: number of fields equal on both sides.
        notes: e.g. "manifest of B absent".
        strict: whether "warn" differences fail the comparison.
    """
    differences: list[FieldDifference]
    same_fields: int
    notes: list[str]
    strict: bool = False

    @property
    def warnings(self) -> list[FieldDifference]:
        """The differences of category "warn"."""
        return [d for d in self.differences if d.category == "warn"]

    @property
    def ok(self) -> bool:
        """False only in strict mode with warnings."""
        return not (self.strict and self.warnings)


def compare_manifests(a: Optional[dict], b: Optional[dict], strict: bool = False) -> ManifestComparison:
    """Compare two run manifests field by field.

    Args:
        a, b: parsed `manifest.json` objects, or None when a run has none (noted, nothing compared).
        strict: make "warn" differences fail (`ManifestComparison.ok`).

    Returns:
        `ManifestComparison`.
    """
    notes = []
    if a is None or b is None:
        for side, m in (("A", a), ("B", b)):
            if m is None:
                notes.append(f"manifest of {side} absent: run metadata (seed, data, model, parallel sizes) "
                             f"not compared")
        return ManifestComparison([], 0, notes, strict)
    fa, fb = flatten(a), flatten(b)
    diffs, same = [], 0
    for name in sorted(set(fa) | set(fb)):
        va, vb = fa.get(name, _ABSENT), fb.get(name, _ABSENT)
        if va is not _ABSENT and vb is not _ABSENT and type(va) is type(vb) and va == vb:
            same += 1
            continue
        diffs.append(FieldDifference(name, "<absent>" if va is _ABSENT else va,
                                     "<absent>" if vb is _ABSENT else vb, classify_field(name)))
    return ManifestComparison(diffs, same, notes, strict)
