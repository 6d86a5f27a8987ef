"""Megatron-LM's checkpoint tracker file: `<root>/latest_checkpointed_iteration.txt` names the checkpoint to load.

Content: `release` (a converted checkpoint, weights under `<root>/release/`) or an iteration number N (a training
checkpoint under `<root>/iter_{N:07d}/`). Used by `qwen_sft.convert` (release folders) and
`qwen_sft.checkpointing` (training checkpoints). The parity tool reads the same file; when its reader
(`parity.records`) is the shared one, this module is where to switch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

__all__ = ["TRACKER_FILE", "RELEASE", "read_tracker", "iteration_dir", "write_tracker"]

TRACKER_FILE = "latest_checkpointed_iteration.txt"
RELEASE = "release"

PathLike = Union[str, os.PathLike]


def read_tracker(root: PathLike, allow_release: bool = True) -> Optional[Union[str, int]]:
    """The tracker's tag: `"release"`, an iteration number, or None when `root` has no tracker file.

    Raises:
        ValueError: the content is neither (or is `release` when `allow_release` is False); the message names
            the file and what was found.
    """
    tracker = Path(root) / TRACKER_FILE
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    if allow_release and text == RELEASE:
        return RELEASE
    try:
        return int(text)
    except ValueError:
        expected = "'release' or an iteration number" if allow_release else "an iteration number"
        raise ValueError(f"{tracker}: expected {expected}, found {text!r}") from None


def iteration_dir(root: PathLike, tag: Union[str, int]) -> Path:
    """The folder a tag names: `<root>/release` or `<root>/iter_{N:07d}`."""
    return Path(root) / (RELEASE if tag == RELEASE else f"iter_{int(tag):07d}")


def write_tracker(root: PathLike, tag: Union[str, int]) -> Path:
    """Point the tracker at `tag` atomically (a temporary file renamed over the old one); returns its path.

    `release` is written bare, an iteration number with a trailing newline (the forms this project has always
    written; `read_tracker` accepts both with or without).
    """
    path = Path(root) / TRACKER_FILE
    tmp = path.with_name(TRACKER_FILE + ".tmp")
    tmp.write_text(RELEASE if tag == RELEASE else f"{int(tag)}\n")
    os.replace(tmp, path)
    return path
