"""``torch.cuda`` streams and events on the shim.

Ascend/GPU (``device_streams`` in the backend table): a :class:`Stream` wraps ``mindspore.runtime.Stream`` and an
:class:`Event` wraps ``mindspore.runtime.Event`` — record/wait/synchronize/elapsed_time are MindSpore's.

CPU: MindSpore has no CPU streams (``mindspore.runtime.current_stream()`` returns None there). PyNative executes
CPU work in issue order on one queue, so every facade stream is that queue: ``wait_stream``/``wait_event`` are
satisfied by the issue order (nothing to enforce), ``synchronize`` drains the queue
(the PyNative executor's ``sync``, see ``_backend.synchronize``). An :class:`Event` records a host timestamp *after draining the queue*, so
``elapsed_time`` between two events is the real wall time of the work issued between them (milliseconds, like
torch); the cost is that ``record`` blocks until queued work is done.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from shim.torch.cuda import _backend

__all__ = ["Stream", "ExternalStream", "Event", "StreamContext", "current_stream", "default_stream", "set_stream",
           "stream"]

_ids = itertools.count(1)
_local = threading.local()
_defaults: dict[int, "Stream"] = {}


def _runtime():
    from mindspore import runtime

    return runtime


def _device_of(device: Any):
    from shim.torch._device import device as _device

    return _device("cuda", _backend.device_index(device, api="torch.cuda.Stream"))


class Stream:
    """An accelerator stream (torch.cuda.Stream(device=None, priority=0)).

    Attributes: ``device`` (``torch.device('cuda', i)``), ``priority``, ``stream_id`` (unique per process; 0 is the
    default stream), ``cuda_stream`` (the same integer, torch's handle attribute).
    """

    def __init__(self, device: Any = None, priority: int = 0, *, _default: bool = False, _ms_stream: Any = None):
        self.device = _device_of(device)
        self.priority = int(priority)
        self.stream_id = 0 if _default else next(_ids)
        self._ms = _ms_stream
        if self._ms is None and _backend.traits().device_streams and not _default:
            self._ms = _runtime().Stream(priority=self.priority)

    @property
    def cuda_stream(self) -> int:
        """The stream handle as an integer (the facade's stream id)."""
        return self.stream_id

    def synchronize(self) -> None:
        """Wait until all work issued to this stream is done."""
        if self._ms is not None:
            self._ms.synchronize()
        else:
            _backend.synchronize()

    def query(self) -> bool:
        """True when all work on the stream is done (CPU: drains the queue first, so always True)."""
        if self._ms is not None:
            return bool(self._ms.query())
        _backend.synchronize()
        return True

    def wait_stream(self, stream: "Stream") -> None:
        """Make future work on this stream wait for work issued so far to ``stream``."""
        if not isinstance(stream, Stream):
            raise TypeError(f"Stream.wait_stream: expected a torch.cuda.Stream, got {type(stream).__name__}")
        if self._ms is not None and stream._ms is not None:
            self._ms.wait_stream(stream._ms)
        elif _backend.traits().device_streams:
            _backend.synchronize()  # one side is the default stream wrapper: drain to be safe
        # CPU: one in-order queue; the ordering already holds.

    def wait_event(self, event: "Event") -> None:
        """Make future work on this stream wait for ``event``."""
        event.wait(self)

    def record_event(self, event: "Event | None" = None) -> "Event":
        """Record ``event`` (a new one when None) on this stream and return it."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and other.stream_id == self.stream_id and other.device == self.device

    def __hash__(self) -> int:
        return hash((self.stream_id, str(self.device)))

    def __repr__(self) -> str:
        return f"<torch.cuda.Stream device={self.device} cuda_stream={self.stream_id:#x}>"


class ExternalStream(Stream):
    """torch.cuda.ExternalStream wraps a stream pointer made outside torch: not supported (raises)."""

    def __init__(self, stream_ptr: int, device: Any = None):
        raise NotImplementedError("torch.cuda.ExternalStream is not supported by the shim (no foreign stream "
                                  "pointers under MindSpore); use torch.cuda.Stream()")


def default_stream(device: Any = None) -> Stream:
    """The default stream of ``device`` (the current accelerator when None)."""
    index = _backend.device_index(device, api="torch.cuda.default_stream")
    if index not in _defaults:
        ms_stream = _runtime().default_stream() if _backend.traits().device_streams else None
        _defaults[index] = Stream(index, _default=True, _ms_stream=ms_stream)
    return _defaults[index]


def _current_map() -> dict[int, Stream]:
    current = getattr(_local, "current", None)
    if current is None:
        current = _local.current = {}
    return current


def current_stream(device: Any = None) -> Stream:
    """The stream work is issued to on ``device`` in this thread (the default stream unless one was set)."""
    index = _backend.device_index(device, api="torch.cuda.current_stream")
    return _current_map().get(index) or default_stream(index)


def set_stream(stream_: Stream) -> None:
    """Make ``stream_`` the current stream of its device (``mindspore.runtime.set_cur_stream`` where streams exist)."""
    if stream_ is None:
        return
    if not isinstance(stream_, Stream):
        raise TypeError(f"torch.cuda.set_stream: expected a torch.cuda.Stream, got {type(stream_).__name__}")
    _current_map()[stream_.device.index] = stream_
    if stream_._ms is not None:
        _runtime().set_cur_stream(stream_._ms)


class StreamContext:
    """``with torch.cuda.stream(s):`` — work inside is issued to ``s``; the previous stream is restored after.

    A None stream makes the context do nothing (torch's rule).
    """

    def __init__(self, stream_: Stream | None):
        self.stream = stream_
        self._previous: Stream | None = None

    def __enter__(self):
        if self.stream is not None:
            self._previous = current_stream(self.stream.device)
            set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self.stream is not None and self._previous is not None:
            set_stream(self._previous)
        return False


def stream(stream_: Stream | None) -> StreamContext:
    """torch.cuda.stream(s): the context manager selecting ``s`` (see :class:`StreamContext`)."""
    return StreamContext(stream_)


class Event:
    """torch.cuda.Event(enable_timing=False, blocking=False, interprocess=False).

    ``record(stream)`` marks a point in a stream, ``elapsed_time(end)`` returns the milliseconds between this
    event and ``end`` (both recorded, both with ``enable_timing=True``, else RuntimeError like torch).
    ``interprocess=True`` raises NotImplementedError (no IPC event handles under MindSpore).
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        if interprocess:
            raise NotImplementedError("torch.cuda.Event(interprocess=True) is not supported by the shim")
        self.enable_timing = bool(enable_timing)
        self.blocking = bool(blocking)
        self._ms = None
        if _backend.traits().device_streams:
            self._ms = _runtime().Event(enable_timing=self.enable_timing, blocking=self.blocking)
        self._time_ns: int | None = None
        self._recorded = False

    def record(self, stream: Stream | None = None) -> None:
        """Record the event on ``stream`` (the current stream when None)."""
        stream = current_stream() if stream is None else stream
        if self._ms is not None:
            self._ms.record(stream._ms)
        else:
            _backend.synchronize()  # CPU: the work issued before this point is done now
            self._time_ns = time.perf_counter_ns()
        self._recorded = True

    def wait(self, stream: Stream | None = None) -> None:
        """Make future work on ``stream`` wait for this event (CPU: the in-order queue already does)."""
        stream = current_stream() if stream is None else stream
        if self._ms is not None and stream._ms is not None:
            self._ms.wait(stream._ms)

    def query(self) -> bool:
        """True when the work before the recorded point is done (and for an event never recorded, as torch)."""
        if self._ms is not None:
            return bool(self._ms.query())
        return True

    def synchronize(self) -> None:
        """Wait for the work before the recorded point (CPU: ``record`` already waited)."""
        if self._ms is not None:
            self._ms.synchronize()

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds from this event to ``end_event`` (both recorded, both with ``enable_timing=True``)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("torch.cuda.Event.elapsed_time: both events must be created with enable_timing=True")
        if not (self._recorded and end_event._recorded):
            raise RuntimeError("torch.cuda.Event.elapsed_time: both events must be recorded before calculating "
                               "elapsed time")
        if self._ms is not None:
            return float(self._ms.elapsed_time(end_event._ms))
        end_event.synchronize()
        return (end_event._time_ns - self._time_ns) / 1e6

    def ipc_handle(self):
        """Not supported (raises NotImplementedError)."""
        raise NotImplementedError("torch.cuda.Event.ipc_handle is not supported by the shim")

    def __repr__(self) -> str:
        return f"<torch.cuda.Event recorded={self._recorded} enable_timing={self.enable_timing}>"
