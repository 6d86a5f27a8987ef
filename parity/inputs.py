"""Reading the parity tool's inputs: JSON and JSON Lines files, with errors that name the file and line.

Every problem with an input (missing file, unreadable file, invalid JSON, a record of the wrong shape) raises
`ParityInputError`; the command line turns it into exit status 2.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, Path]


class ParityInputError(ValueError):
    """An input cannot be used: the message names the file (and line) and what was expected."""


def read_json(path: PathLike, what: str) -> Any:
    """Read one JSON document.

    Args:
        path: the file.
        what: what the file is meant to be (e.g. "run manifest"), used in error messages.

    Returns:
        The parsed value (Python's `json`, which also accepts `NaN` / `Infinity` as written by `json.dumps`).

    Raises:
        ParityInputError: the file is missing or unreadable, or is not valid JSON (message: `file:line:col`).
    """
    path = Path(path)
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParityInputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON in {what} ({exc.msg})") from exc


def read_jsonl(path: PathLike, what: str) -> list[tuple[int, dict]]:
    """Read a JSON Lines file of objects (blank lines are skipped).

    Args:
        path: the file.
        what: what the file is meant to be (e.g. "metrics file"), used in error messages.

    Returns:
        `[(line_number, record), ...]` in file order, line numbers 1-based.

    Raises:
        ParityInputError: missing/unreadable file, a line that is not valid JSON or not a JSON object
            (message: `file:line`).
    """
    path = Path(path)
    text = _read_text(path, what)
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParityInputError(f"{path}:{lineno}: invalid JSON in {what} ({exc.msg} at column {exc.colno})") \
                from exc
        if not isinstance(record, dict):
            raise ParityInputError(f"{path}:{lineno}: expected a JSON object per line in {what}, got "
                                   f"{type(record).__name__}")
        records.append((lineno, record))
    return records


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise ParityInputError(f"{path}: {what} not found")
    if not path.is_file():
        raise ParityInputError(f"{path}: {what} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParityInputError(f"{path}: cannot read {what} ({exc})") from exc
