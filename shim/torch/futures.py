"""``torch.futures``: ``Future`` (a value or an error that arrives later), ``collect_all``, ``wait_all``.

torch's ``Future`` is a C++ object; here it is a Python one with the same contract (torch 2.13,
``torch/futures/__init__.py``), thread-safe (a ``threading.Condition``):
- ``set_result(v)`` / ``set_exception(e)`` complete it exactly once (a second completion is a RuntimeError:
  "Attempting to mark a completed Future as complete again..."); ``set_exception`` of a non-exception is an
  AssertionError, as in torch;
- ``wait()`` blocks until it completes and returns the value or raises the stored exception; ``value()`` does not
  block: it returns the value, raises the stored exception, or raises RuntimeError when not yet completed;
- ``then(cb)`` returns a new Future completed with ``cb(self)`` once this one completes (at once if it already
  has; the callback runs on the completing thread); if ``cb`` raises, the new Future holds a RuntimeError
  "Got the following error when running the callback: <Type>: <message>" chained to it;
- ``add_done_callback(cb)`` runs ``cb(self)`` on completion; an exception from ``cb`` is printed to stderr and
  ignored (torch logs it);
- ``Future[T]`` works in annotations (a ``typing.Generic``).
``devices`` (CUDA devices whose streams a value lives on) is validated like torch's (each needs an index) and kept;
the facade has no per-device streams to synchronise, so it changes nothing else.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable, Generic, List, Optional, TypeVar

from ._device import device as _device

__all__ = ["Future", "collect_all", "wait_all"]

T = TypeVar("T")
S = TypeVar("S")

_ONCE = ("Attempting to mark a completed Future as complete again. Note that a Future can only be marked "
         "completed once.")


class Future(Generic[T]):
    """A value or an exception that becomes available later (see the module docstring)."""

    def __init__(self, *, devices: Optional[list] = None):
        self._cond = threading.Condition()
        self._done = False
        self._value = None
        self._error: Optional[BaseException] = None
        self._callbacks: List[Callable[["Future[T]"], None]] = []
        parsed = []
        for d in devices or []:
            dev = _device(d) if not isinstance(d, _device) else d
            if dev.index is None:
                raise ValueError(f"Expected devices to have indices, got {d}")
            parsed.append(dev)
        self._devices = parsed

    def done(self) -> bool:
        """True once a result or an exception has been set."""
        with self._cond:
            return self._done

    def wait(self) -> T:
        """Block until completed; return the value, or raise the exception that was set."""
        with self._cond:
            while not self._done:
                self._cond.wait()
        return self.value()

    def value(self) -> T:
        """The value without waiting; raises the stored exception, or RuntimeError when not completed yet."""
        with self._cond:
            if not self._done:
                raise RuntimeError("torch.futures.Future.value(): the Future has not completed yet (call wait() "
                                   "first, or read it inside a then()/add_done_callback() callback)")
            if self._error is not None:
                raise self._error
            return self._value

    def _complete(self, value, error) -> None:
        with self._cond:
            if self._done:
                raise RuntimeError(_ONCE)
            self._done = True
            self._value, self._error = value, error
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        for cb in callbacks:
            cb(self)

    def set_result(self, result: T) -> None:
        """Complete with `result` (RuntimeError if already completed); runs the callbacks."""
        self._complete(result, None)

    def set_exception(self, result: BaseException) -> None:
        """Complete with the exception `result` (AssertionError if it is not one); `wait()`/`value()` raise it."""
        assert isinstance(result, BaseException), f"{result} is of type {type(result)}, not an Exception."
        self._complete(None, result)

    def _on_done(self, cb: Callable[["Future[T]"], None]) -> None:
        with self._cond:
            if not self._done:
                self._callbacks.append(cb)
                return
        cb(self)

    def then(self, callback: Callable[["Future[T]"], S]) -> "Future[S]":
        """A new Future completed with `callback(self)` once this one completes (see the module docstring)."""
        out: Future = Future(devices=self._devices)

        def run(fut):
            try:
                result = callback(fut)
            except BaseException as e:  # torch wraps every callback error in a RuntimeError on the new future
                err = RuntimeError(f"Got the following error when running the callback: {type(e).__name__}: {e}")
                err.__cause__ = e
                out.set_exception(err)
                return
            out.set_result(result)

        self._on_done(run)
        return out

    def add_done_callback(self, callback: Callable[["Future[T]"], None]) -> None:
        """Run `callback(self)` on completion (now if completed); its exceptions are printed and ignored."""

        def run(fut):
            try:
                callback(fut)
            except Exception as e:  # torch logs and drops errors of done-callbacks
                print(f"Got the following error when running the callback: {type(e).__name__}: {e}",
                      file=sys.stderr)

        self._on_done(run)

    def __repr__(self) -> str:
        state = "completed" if self.done() else "pending"
        return f"<torch.futures.Future ({state})>"


def collect_all(futures: List[Future]) -> Future:
    """A Future completed with the list `futures` once all of them are; if one failed, it holds that error."""
    out: Future = Future()
    futures = list(futures)
    remaining = [len(futures)]
    lock = threading.Lock()
    if not futures:
        out.set_result([])
        return out

    def one_done(_fut):
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            errors = [f._error for f in futures if f._error is not None]
            if errors:
                out.set_exception(errors[0])
            else:
                out.set_result(futures)

    for f in futures:
        f._on_done(one_done)
    return out


def wait_all(futures: List[Future]) -> list:
    """Wait for every Future and return their values in order; raises the first stored exception."""
    return [f.wait() for f in futures]
