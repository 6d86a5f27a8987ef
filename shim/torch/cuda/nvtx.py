"""``torch.cuda.nvtx``: profiling range markers, served by MindSpore's ``mstx`` markers.

NVTX ranges annotate a timeline for Nsight; MindSpore's equivalent is ``mindspore.profiler.mstx``
(``range_start``/``range_end``/``mark``), which the MindSpore profiler (msprof on Ascend) shows on its timeline.
Like NVTX without a profiler attached, the markers cost little and record nothing when no profiler runs.
The push/pop nesting (torch's return values: the zero-based depth) is kept here per thread.
"""
from __future__ import annotations

import contextlib
import threading

__all__ = ["range_push", "range_pop", "range", "mark", "range_start", "range_end"]

_local = threading.local()


def _stack() -> list:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _mstx():
    from mindspore.profiler import mstx

    return mstx


def range_push(msg: str) -> int:
    """Open a nested range named ``msg``; returns the zero-based depth of the new range (torch's contract).

    Raises TypeError when ``msg`` is not a str. Maps to ``mindspore.profiler.mstx.range_start(msg)``.
    """
    if not isinstance(msg, str):
        raise TypeError(f"torch.cuda.nvtx.range_push: msg must be a str, got {type(msg).__name__}")
    stack = _stack()
    stack.append(_mstx().range_start(msg))
    return len(stack) - 1


def range_pop() -> int:
    """Close the innermost range; returns the depth of the range that ended, or -1 when none was open (torch)."""
    stack = _stack()
    if not stack:
        return -1
    range_id = stack.pop()
    _mstx().range_end(range_id)
    return len(stack)


def range_start(msg: str) -> int:
    """Start a non-nested range; returns its id for :func:`range_end` (maps to ``mstx.range_start``)."""
    if not isinstance(msg, str):
        raise TypeError(f"torch.cuda.nvtx.range_start: msg must be a str, got {type(msg).__name__}")
    return int(_mstx().range_start(msg))


def range_end(range_id: int) -> None:
    """End the range ``range_id`` returned by :func:`range_start` (maps to ``mstx.range_end``)."""
    _mstx().range_end(range_id)


def mark(msg: str) -> None:
    """An instantaneous marker (maps to ``mstx.mark``)."""
    if not isinstance(msg, str):
        raise TypeError(f"torch.cuda.nvtx.mark: msg must be a str, got {type(msg).__name__}")
    _mstx().mark(msg)


@contextlib.contextmanager
def range(msg: str, *args, **kwargs):  # noqa: A001 - torch's name
    """Context manager / decorator-free form of push/pop: ``with torch.cuda.nvtx.range("fwd"): ...``.

    ``msg`` is formatted with ``args``/``kwargs`` as torch does (``msg.format(*args, **kwargs)``).
    """
    range_push(msg.format(*args, **kwargs) if (args or kwargs) else msg)
    try:
        yield
    finally:
        range_pop()
