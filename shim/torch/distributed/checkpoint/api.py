"""``torch.distributed.checkpoint.api``: how a failed checkpoint step is reported across ranks.

Same names and meaning as torch 2.13: a rank's failure is carried as a :data:`WRAPPED_EXCEPTION`, the pair
``(exception, traceback.StackSummary)`` (picklable, so it can travel through an object collective), and the
collected failures of all ranks are raised as one :class:`CheckpointException` (a ``BaseException``, as in torch,
so a plain ``except Exception`` does not swallow a failed checkpoint).
"""
from __future__ import annotations

import traceback
from typing import Any

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["CheckpointException"]

WRAPPED_EXCEPTION = tuple[BaseException, traceback.StackSummary]


def _wrap_exception(exc: BaseException) -> WRAPPED_EXCEPTION:
    """`exc` with the frames of its traceback, as a picklable pair (code objects, which do not pickle on newer
    Pythons, are dropped from the frames)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in frames:
        if getattr(frame, "_code", None) is not None:
            object.__setattr__(frame, "_code", None)
    return exc, frames


def _is_wrapped_exception(obj: Any) -> bool:
    """True for a pair made by :func:`_wrap_exception`."""
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], BaseException)
            and isinstance(obj[1], traceback.StackSummary))


class CheckpointException(BaseException):
    """A checkpoint save or load failed on one or more ranks; ``failures`` maps each failed rank to its
    :data:`WRAPPED_EXCEPTION`. ``str()`` shows every rank's traceback."""

    def __init__(self, msg: str, failures: dict):
        super().__init__(msg, failures)
        self._failures = failures

    @property
    def failures(self) -> dict:
        """``{rank: (exception, StackSummary)}`` of the ranks that failed."""
        return self._failures

    def __str__(self) -> str:
        lines = [f"CheckpointException ranks:{self._failures.keys()}\n"]
        for rank, (exc, frames) in self._failures.items():
            lines.append(f"Traceback (most recent call last): (RANK {rank})\n")
            if frames is not None:
                lines.extend(traceback.format_list(frames))
            lines.extend(traceback.format_exception_only(type(exc), exc))
        return "".join(lines)


__getattr__ = _module_getattr("torch.distributed.checkpoint.api")
