"""Model-folder fingerprints and package versions (the file hash itself is `parity.records.sha256_file`).

No torch, so data conversion and the tokenizer code use it without importing torch.
"""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Optional

from parity.records import TRACKER_FILE, sha256_file

__all__ = ["model_fingerprint", "package_version"]

# Files that make up a model folder's fingerprint: weights, configs, and the Megatron tracker.
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json")
_FINGERPRINT_NAMES = (TRACKER_FILE,)
_FINGERPRINT_CONTENT_LIMIT = 2**30  # bytes; larger models are fingerprinted by file names and sizes only


def model_fingerprint(model_path: Path) -> dict:
    """sha256 over config.json and the weight files (content when they total <= 1 GiB, else names and sizes).

    Returns:
        `{"sha256": hex, "kind": "content" | "names_and_sizes", "files": count, "bytes": total size}`.
    """
    files = sorted(p for p in model_path.rglob("*") if p.is_file() and (
        p.suffix in _FINGERPRINT_SUFFIXES or p.name in _FINGERPRINT_NAMES))
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    kind = "content" if total <= _FINGERPRINT_CONTENT_LIMIT else "names_and_sizes"
    for p in files:
        h.update(str(p.relative_to(model_path)).encode())
        h.update(str(p.stat().st_size).encode())
        if kind == "content":
            h.update(sha256_file(p).encode())
    return {"sha256": h.hexdigest(), "kind": kind, "files": len(files), "bytes": total}


def package_version(name: str) -> Optional[str]:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
