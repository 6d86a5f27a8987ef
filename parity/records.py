"""Small readers of run records shared by the parity tool and the SFT workflow: file fingerprints and Megatron's
checkpoint tracker file (read and written here: its one home).

Tracker format (Megatron-LM's ``latest_checkpointed_iteration.txt`` in a checkpoints directory, read by megatron's
``checkpointing.read_metadata``; written by ``tools/train.py`` and ``tools/convert_hf_to_megatron.py``): one line,
surrounding whitespace ignored, either ``release`` (the checkpoint is in ``<dir>/release/``) or a non-negative
decimal iteration number N (the checkpoint is in ``<dir>/iter_{N:07d}/``).

Plain Python (hashlib, pathlib): no torch, no numpy.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple, Optional, Union

__all__ = ["TRACKER_FILE", "RELEASE", "Tracker", "sha256_file", "read_tracker", "iteration_dir", "write_tracker"]

TRACKER_FILE = "latest_checkpointed_iteration.txt"
RELEASE = "release"
_BLOCK = 1 << 20  # bytes read at a time while hashing

PathLike = Union[str, os.PathLike]


def sha256_file(path: PathLike) -> str:
    """The sha256 of a file's bytes as 64 lowercase hex digits (read in 1 MiB blocks: any file size).

    Raises:
        OSError: the file cannot be read (FileNotFoundError when it does not exist, IsADirectoryError for a
            directory).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


class Tracker(NamedTuple):
    """A tracker file's content: ``iteration`` (int, or None for a release checkpoint) and ``release`` (bool).
    Unpacks as ``iteration, release = read_tracker(d)``."""

    iteration: Optional[int]
    release: bool


def read_tracker(checkpoints_dir: PathLike) -> Tracker:
    """Read ``<checkpoints_dir>/latest_checkpointed_iteration.txt`` (format in the module docstring).

    Returns:
        ``Tracker(iteration=N, release=False)`` for a number, ``Tracker(iteration=None, release=True)`` for
        ``release``.
    Raises:
        FileNotFoundError: no tracker file in `checkpoints_dir` (the message names the path).
        ValueError: the file holds neither ``release`` nor a non-negative decimal number (the message names the
            file and quotes its content).
    """
    tracker = Path(checkpoints_dir) / TRACKER_FILE
    if not tracker.is_file():
        raise FileNotFoundError(f"{tracker}: no Megatron checkpoint tracker file")
    text = tracker.read_text(encoding="utf-8").strip()
    if text == RELEASE:
        return Tracker(iteration=None, release=True)
    if text.isascii() and text.isdigit():
        return Tracker(iteration=int(text), release=False)
    raise ValueError(f"{tracker}: expected {RELEASE!r} or an iteration number, found {text!r}")


def iteration_dir(checkpoints_dir: PathLike, iteration: Optional[int], release: bool = False) -> Path:
    """The directory a tracker points to: ``<checkpoints_dir>/release`` when `release`, else
    ``<checkpoints_dir>/iter_{iteration:07d}`` (Megatron-LM's naming). Does not check that it exists.

    Raises:
        ValueError: neither `release` nor a non-negative int `iteration`.
    """
    if release:
        return Path(checkpoints_dir) / RELEASE
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ValueError(f"iteration_dir: expected release=True or a non-negative int iteration, got {iteration!r}")
    return Path(checkpoints_dir) / f"iter_{iteration:07d}"


def write_tracker(checkpoints_dir: PathLike, iteration: Optional[int] = None, release: bool = False) -> Path:
    """Point ``<checkpoints_dir>/latest_checkpointed_iteration.txt`` at a checkpoint, atomically (a temporary file
    renamed over the old one, so a reader sees the old or the new content, never a partial one).

    Writes ``release`` bare for a release checkpoint and ``N`` with a trailing newline for an iteration (the forms
    this project has always written; `read_tracker` accepts both). Returns the tracker's path.

    Raises:
        ValueError: neither `release` nor a non-negative int `iteration` (as `iteration_dir`).
    """
    iteration_dir(checkpoints_dir, iteration, release)  # validates the arguments
    path = Path(checkpoints_dir) / TRACKER_FILE
    tmp = path.with_name(TRACKER_FILE + ".tmp")
    tmp.write_text(RELEASE if release else f"{iteration}\n")
    os.replace(tmp, path)
    return path

