"""Shared test fixtures.

`shared_dir` points at `<repo>/../shared` (real Qwen2.5 tokenizer, Alpaca data); tests that need it skip
with a reason when it is absent, as on a fresh clone without it. CI always has it.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def shared_path(*parts: str) -> Path:
    """Return `<repo>/../shared/<parts>`, skipping the calling test when it does not exist."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared real-input folder); absent on this machine")
    return path


@pytest.fixture
def shared_tokenizer_dir() -> Path:
    """The real Qwen2.5 tokenizer directory from ../shared (skips when absent)."""
    return shared_path("assets", "qwen2.5-tokenizer")


@pytest.fixture
def alpaca_zh_path() -> Path:
    """../shared/data/alpaca_zh_demo.json (skips when absent)."""
    return shared_path("data", "alpaca_zh_demo.json")


@pytest.fixture
def alpaca_en_path() -> Path:
    """../shared/data/alpaca_en_demo.json (skips when absent)."""
    return shared_path("data", "alpaca_en_demo.json")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
