"""torch.utils.tensorboard.writer: `SummaryWriter` and `FileWriter`, writing TensorBoard event files.

The file format is TensorBoard's: `events.out.tfevents.<time>.<host>.<pid>.<n><suffix>` files of TFRecord-framed
`tensorboard.Event` protocol buffers, written by the `tensorboard` package's own `EventFileWriter` (first record:
`file_version = "brain.Event:2"`); the messages are built from its protos (`tensorboard.compat.proto`). What each
`add_*` call writes follows torch 2.13's `SummaryWriter` (checked record for record against real torch in
tests/shim/test_program_apis2.py):

- `add_scalar(tag, v)`: one `Summary.Value(tag, simple_value=float(v))`; with `new_style=True` a `DT_FLOAT`
  (`double_precision=True`: `DT_DOUBLE`) tensor with the `scalars` plugin's metadata.
- `add_scalars(main_tag, {tag: v})`: one writer per `tag` in the sub-directory
  `<logdir>/<main_tag with "/" -> "_">_<tag>`, each value written under `main_tag`.
- `add_histogram(tag, values, bins="tensorflow")`: a `HistogramProto` of the values as float64 (min, max, num,
  sum, sum of squares); the buckets are `numpy.histogram`'s over `bins` ("tensorflow": TensorBoard's default
  edges ±1e-12·1.1^k up to 1e20, and 0), optionally merged down to `max_bins`, trimmed to the non-empty range
  with one empty bucket on the left; only right bucket edges are stored, as TensorBoard reads them.
- `add_text(tag, text)`: a `DT_STRING` tensor of shape [1] holding the UTF-8 text, under `<tag>/text_summary`,
  with the `text` plugin's metadata.

Values may be facade tensors (one element for scalars), NumPy arrays or Python numbers. Steps are stored as int64,
wall times in seconds since the epoch (`time.time()` unless `walltime` is given). Other SummaryWriter methods
(`add_image`, `add_graph`, `add_hparams`, `add_embedding`, ...) raise UnsupportedAPI naming them; being an
AttributeError too, `hasattr(writer, "add_hparams")` is False, as libraries probe it.
"""
from __future__ import annotations

import os
import socket
import time
from datetime import datetime

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ..._unsupported import UnsupportedAPI

__all__ = ["FileWriter", "SummaryWriter"]


def _numpy(x, what: str) -> np.ndarray:
    """A NumPy array of `x` (facade tensor, array, number or sequence of numbers)."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception:
        raise TypeError(f"{what}: expected a tensor, NumPy array or number, got {type(x).__name__}") from None


def _scalar_value(value, what: str) -> float:
    arr = _numpy(value, what).squeeze()
    if arr.ndim != 0:
        raise ValueError(f"{what}: expected one value, got {arr.size} values of shape {tuple(arr.shape)}")
    return float(arr)


def _tensorflow_bins() -> list:
    """TensorBoard's default histogram edges: -1e20 < … -1e-12, 0, 1e-12 … < 1e20, growing by 1.1."""
    pos, v = [], 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    return [-p for p in reversed(pos)] + [0] + pos


def _histogram_proto(values: np.ndarray, bins, max_bins=None) -> HistogramProto:
    values = values.astype(np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("add_histogram: values has no element")
    counts, edges = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        pad = (-len(counts)) % group
        counts = np.concatenate([counts, np.zeros(pad, counts.dtype)]).reshape(-1, group).sum(axis=1)
        edges = np.concatenate([edges[:-1:group], edges[-1:]])
    nonzero = np.flatnonzero(counts)
    first, last = int(nonzero[0]), int(nonzero[-1])
    # one empty bucket left of the first non-empty one, so that its left edge is kept (only right edges are stored)
    kept = counts[first - 1:last + 1] if first > 0 else np.concatenate([[0], counts[:last + 1]])
    return HistogramProto(min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
                          sum_squares=values.dot(values), bucket_limit=edges[first:last + 2].tolist(),
                          bucket=kept.tolist())


class FileWriter:
    """torch.utils.tensorboard.writer.FileWriter: one event file in `log_dir` (created on construction), written
    asynchronously by tensorboard's EventFileWriter (queue of `max_queue` events, flushed every `flush_secs`)."""

    def __init__(self, log_dir, max_queue=10, flush_secs=120, filename_suffix="") -> None:
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self) -> str:
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None) -> None:
        self.add_event(Event(summary=summary), global_step, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()

    def reopen(self) -> None:
        self.event_writer.reopen()


class SummaryWriter:
    """torch.utils.tensorboard.SummaryWriter: logs scalars, histograms and text to TensorBoard event files.

    `log_dir` defaults to `runs/<Mon DD_HH-MM-SS>_<hostname><comment>` as in torch; `purge_step` writes torch's
    two restart events (file version and SessionLog START at that step) so TensorBoard hides later steps of a
    crashed run. See the module docstring for what each method writes.
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix="") -> None:
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", stamp + "_" + socket.gethostname() + comment)
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = _tensorflow_bins()

    def _get_file_writer(self) -> FileWriter:
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                step, self.purge_step = self.purge_step, None
                self.file_writer.add_event(Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
        return self.file_writer

    def get_logdir(self) -> str:
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False) -> None:
        """One scalar under `tag` at `global_step` (see the module docstring for the record written)."""
        value = _scalar_value(scalar_value, f"add_scalar({tag!r})")
        if new_style:
            tensor = (TensorProto(double_val=[value], dtype="DT_DOUBLE") if double_precision
                      else TensorProto(float_val=[value], dtype="DT_FLOAT"))
            meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
            summary = Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=meta)])
        else:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None) -> None:
        """Several scalars, one event file per key in `<logdir>/<main_tag>_<key>`, all under `main_tag`."""
        walltime = time.time() if walltime is None else walltime
        root = self._get_file_writer().get_logdir()
        for tag, scalar_value in tag_scalar_dict.items():
            sub = root + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(sub)
            if fw is None:
                fw = self.all_writers[sub] = FileWriter(sub, self.max_queue, self.flush_secs, self.filename_suffix)
            value = _scalar_value(scalar_value, f"add_scalars({main_tag!r}, {tag!r})")
            fw.add_summary(Summary(value=[Summary.Value(tag=main_tag, simple_value=value)]), global_step,
                           walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None,
                      max_bins=None) -> None:
        """A histogram of `values` (any shape, finite); `bins` is numpy.histogram's argument or "tensorflow"."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        histo = _histogram_proto(_numpy(values, f"add_histogram({tag!r})"), bins, max_bins)
        self._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, histo=histo)]), global_step,
                                            walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None) -> None:
        """`text_string` (str, rendered as Markdown by TensorBoard) under `<tag>/text_summary`."""
        if not isinstance(text_string, str):
            raise TypeError(f"add_text({tag!r}): text_string must be a str, got {type(text_string).__name__}")
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf_8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        summary = Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=tensor)])
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def flush(self) -> None:
        """Writes every pending event of every event file to disk."""
        for w in (self.all_writers or {}).values():
            w.flush()

    def close(self) -> None:
        """Flushes and closes every event file; a later add_* call opens a new one."""
        for w in (self.all_writers or {}).values():
            w.flush()
            w.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise UnsupportedAPI(f"torch.utils.tensorboard.SummaryWriter.{name} is not implemented by the shim")
