"""A writable copy of nanoGPT (``../shared/programs/nanoGPT``, unmodified) with a tiny character dataset.

Used by tests/shim/test_nanogpt.py and benchmarks/bench_nanogpt.py. The copy is needed because CI lays ``../shared``
read-only while nanoGPT writes ``out_dir`` and reads ``data/<dataset>`` relative to its working directory. The dataset
is nanoGPT's own ``prepare.py`` layout for a character-level set: ``data/tiny/{train,val}.bin`` (uint16 ids, a
90/10 split) and ``meta.pkl`` (``vocab_size``, ``stoi``, ``itos``); the text is seeded random words from a 9-word
list, repetitive enough that a few iterations of training move the loss.
"""
from __future__ import annotations

import pickle
import shutil
import stat
from pathlib import Path

import numpy as np

CHARS = "abcdefghijklmnopqrstuvwxyz .,\n"  # the 30-symbol vocabulary


def make_program(src: Path, root: Path, n_words: int) -> Path:
    """Copy nanoGPT from `src` to ``root/nanoGPT`` (made writable) and write ``data/tiny`` from `n_words` words
    (RandomState(0)); returns the copy's path."""
    dst = root / "nanoGPT"
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    data = dst / "data" / "tiny"
    data.mkdir(parents=True)
    words = np.random.RandomState(0).choice(["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far"], n_words)
    text = " ".join(words) + ".\n"
    stoi = {c: i for i, c in enumerate(CHARS)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    cut = int(len(ids) * 0.9)
    ids[:cut].tofile(data / "train.bin")
    ids[cut:].tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(CHARS), "stoi": stoi, "itos": {i: c for c, i in stoi.items()}}, f)
    return dst
