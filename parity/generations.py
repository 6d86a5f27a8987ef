"""Comparing two generation outputs token by token.

Input: the `--output_file` JSON Lines of `tools/generate.py` (written by `qwen_sft.generate_job.run_generate`), one
object per prompt: `index`, `prompt`, `prompt_token_ids`, `output` (decoded text), `output_token_ids` (stop token
included), `stop_reason` ("stop_token", "max_new_tokens", "seq_length"), `stop_token`, `num_prompt_tokens`,
`num_output_tokens`, `timings`, `sampling`. Only `output_token_ids` is required; records are matched by `index`
when every record has an integer one, else by position in the file.

Per matched record: the prompt token ids must be equal (else the runs generated from different inputs), the
output token ids are compared position by position (the first differing position is reported; a strict prefix
differs at the shorter length), and the stop reasons must be equal. Text equality and sampling parameters are
reported. Timings are ignored.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional, Union

from .inputs import ParityInputError, read_jsonl
from .text import format_table


@dataclasses.dataclass
class GenerationRecord:
    """One parsed output record: its key (index or position), line number and the fields used."""
    key: int
    line: int
    prompt_token_ids: Optional[list[int]]
    output_token_ids: list[int]
    stop_reason: Any
    output: Any
    prompt: Any
    sampling: Any


def first_difference(a: list, b: list) -> Optional[int]:
    """First position where two sequences differ (the shorter length when one is a strict prefix), or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def load_generations(path: Union[str, Path]) -> list[GenerationRecord]:
    """Read a generation output JSONL file.

    Returns:
        The records in file order, keyed by `index` when every record has an integer index, else by position.

    Raises:
        ParityInputError: missing file, invalid JSON (file:line), `output_token_ids` missing or not a list of
            integers, `prompt_token_ids` present but not a list of integers, duplicate `index`, empty file.
    """
    path = Path(path)
    rows = read_jsonl(path, "generation output")
    if not rows:
        raise ParityInputError(f"{path}: generation output has no records")
    by_index = all(isinstance(r.get("index"), int) and not isinstance(r.get("index"), bool) for _, r in rows)
    out, seen = [], {}
    for pos, (line, r) in enumerate(rows):
        if not _int_list(r.get("output_token_ids")):
            raise ParityInputError(f"{path}:{line}: 'output_token_ids' must be a list of integers (tools/generate.py "
                                   f"--output_file format)")
        prompt_ids = r.get("prompt_token_ids")
        if prompt_ids is not None and not _int_list(prompt_ids):
            raise ParityInputError(f"{path}:{line}: 'prompt_token_ids' must be a list of integers")
        key = r["index"] if by_index else pos
        if key in seen:
            raise ParityInputError(f"{path}:{line}: duplicate index {key} (first at line {seen[key]})")
        seen[key] = line
        out.append(GenerationRecord(key, line, prompt_ids, r["output_token_ids"], r.get("stop_reason"),
                                    r.get("output"), r.get("prompt"), r.get("sampling")))
    return out


@dataclasses.dataclass
class RecordComparison:
    """One record present in both outputs.

    Attributes:
        key: the record's index (or position).
        line_a, line_b: line numbers in the two files.
        prompt_difference: first differing prompt token position, or None (also None when a side lacks ids).
        first_difference: first differing output token position, or None when the outputs are identical.
        len_a, len_b: output lengths in tokens.
        token_a, token_b: the tokens at `first_difference` (None past the end of a sequence).
        stop_a, stop_b: the stop reasons.
        text_equal: the decoded `output` texts are equal.
        a, b: the parsed records.
    """
    key: int
    line_a: int
    line_b: int
    prompt_difference: Optional[int]
    first_difference: Optional[int]
    len_a: int
    len_b: int
    token_a: Optional[int]
    token_b: Optional[int]
    stop_a: Any
    stop_b: Any
    text_equal: bool
    a: GenerationRecord
    b: GenerationRecord

    @property
    def ok(self) -> bool:
        """Same prompt, same output tokens, same stop reason."""
        return self.prompt_difference is None and self.first_difference is None and self.stop_a == self.stop_b


@dataclasses.dataclass
class GenerationComparison:
    """Result of `compare_generations`.

    Attributes:
        path_a, path_b: the files.
        records: one `RecordComparison` per common key, in key order.
        only_in_a, only_in_b: keys present in one file only.
        notes: e.g. differing sampling parameters.
    """
    path_a: str
    path_b: str
    records: list[RecordComparison]
    only_in_a: list[int]
    only_in_b: list[int]
    notes: list[str]

    @property
    def failures(self) -> list[RecordComparison]:
        """Records that differ."""
        return [r for r in self.records if not r.ok]

    @property
    def ok(self) -> bool:
        """Every common record identical, no one-sided record, at least one compared."""
        return bool(self.records) and not self.failures and not self.only_in_a and not self.only_in_b

    def counts(self) -> dict[str, int]:
        """Summary counts: compared, identical, output_differs, stop_reason_differs, prompt_differs, only_in_a,
        only_in_b, tokens_compared (positions before the first difference, summed), tokens_total (max lengths)."""
        return {
            "compared": len(self.records),
            "identical": sum(r.ok for r in self.records),
            "output_differs": sum(r.first_difference is not None for r in self.records),
            "stop_reason_differs": sum(r.stop_a != r.stop_b for r in self.records),
            "prompt_differs": sum(r.prompt_difference is not None for r in self.records),
            "only_in_a": len(self.only_in_a),
            "only_in_b": len(self.only_in_b),
            "tokens_matching": sum(max(r.len_a, r.len_b) if r.first_difference is None else r.first_difference
                                   for r in self.records),
            "tokens_total": sum(max(r.len_a, r.len_b) for r in self.records),
        }


def compare_generations(a: Union[str, Path], b: Union[str, Path]) -> GenerationComparison:
    """Compare two `tools/generate.py` output files token by token.

    Args:
        a, b: the JSONL files (A is conventionally the reference).

    Returns:
        `GenerationComparison`.

    Raises:
        ParityInputError: from `load_generations`.
    """
    ra = {r.key: r for r in load_generations(a)}
    rb = {r.key: r for r in load_generations(b)}
    notes = []
    samp_a = {repr(r.sampling) for r in ra.values()}
    samp_b = {repr(r.sampling) for r in rb.values()}
    if samp_a != samp_b:
        notes.append(f"sampling parameters differ: A {sorted(samp_a)} B {sorted(samp_b)}")
    results = []
    for key in sorted(set(ra) & set(rb)):
        x, y = ra[key], rb[key]
        pd = None
        if x.prompt_token_ids is not None and y.prompt_token_ids is not None:
            pd = first_difference(x.prompt_token_ids, y.prompt_token_ids)
        fd = first_difference(x.output_token_ids, y.output_token_ids)

        def tok(ids: list[int]) -> Optional[int]:
            return ids[fd] if fd is not None and fd < len(ids) else None

        results.append(RecordComparison(key, x.line, y.line, pd, fd, len(x.output_token_ids),
                                        len(y.output_token_ids), tok(x.output_token_ids), tok(y.output_token_ids),
                                        x.stop_reason, y.stop_reason, x.output == y.output, x, y))
    return GenerationComparison(str(a), str(b), results, sorted(set(ra) - set(rb)), sorted(set(rb) - set(ra)),
                                notes)


def _snippet(text: Any, limit: int = 60) -> str:
    s = repr(text) if not isinstance(text, str) else repr(text[:limit] + ("…" if len(text) > limit else ""))
    return s


def format_generation_report(cmp: GenerationComparison, max_rows: int = 50) -> str:
    """Human-readable report: counts, one row per differing record (first differing position, the two tokens,
    lengths, stop reasons, text snippets), one-sided records, verdict."""
    c = cmp.counts()
    out = [f"A: {cmp.path_a}", f"B: {cmp.path_b}"]
    out += [f"note: {n}" for n in cmp.notes]
    out.append(f"records: {c['compared']} compared, {c['identical']} identical, {c['output_differs']} with different "
               f"output tokens, {c['stop_reason_differs']} with a different stop reason, {c['prompt_differs']} with "
               f"different prompt tokens; {c['tokens_matching']}/{c['tokens_total']} output tokens agree before "
               f"the first difference")
    for side, keys in (("A", cmp.only_in_a), ("B", cmp.only_in_b)):
        if keys:
            out.append(f"only in {side}: {len(keys)} record(s): {', '.join(map(str, keys[:20]))}"
                       + (" …" if len(keys) > 20 else ""))
    rows = []
    for r in cmp.failures[:max_rows if max_rows > 0 else None]:
        what = []
        if r.prompt_difference is not None:
            what.append(f"prompt differs at {r.prompt_difference}")
        if r.stop_a != r.stop_b:
            what.append("stop reason")
        rows.append([str(r.key), "-" if r.first_difference is None else str(r.first_difference),
                     "-" if r.token_a is None else str(r.token_a), "-" if r.token_b is None else str(r.token_b),
                     f"{r.len_a}/{r.len_b}", f"{r.stop_a}/{r.stop_b}", ", ".join(what) or "output tokens"])
    if rows:
        out.append("differing records:")
        out.append(format_table(["index", "first diff", "A token", "B token", "len A/B", "stop A/B", "what"], rows))
        if max_rows > 0 and len(cmp.failures) > max_rows:
            out.append(f"  … {len(cmp.failures) - max_rows} more")
        for r in cmp.failures[:min(5, len(cmp.failures))]:
            if not r.text_equal:
                out.append(f"  index {r.key}: A {_snippet(r.a.output)}")
                out.append(f"  {' ' * len(f'index {r.key}:')} B {_snippet(r.b.output)}")
    if cmp.ok:
        out.append(f"OK: {c['compared']} records identical token by token")
    else:
        reasons = []
        if cmp.failures:
            reasons.append(f"{len(cmp.failures)} of {c['compared']} records differ (first: index "
                           f"{cmp.failures[0].key})")
        if cmp.only_in_a or cmp.only_in_b:
            reasons.append(f"{len(cmp.only_in_a)} only in A, {len(cmp.only_in_b)} only in B")
        if not cmp.records:
            reasons.append("no record in common")
        out.append("MISMATCH: " + "; ".join(reasons))
    return "\n".join(out)
