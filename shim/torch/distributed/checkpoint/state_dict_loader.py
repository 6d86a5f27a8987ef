"""``torch.distributed.checkpoint.state_dict_loader``: :func:`load` (torch 2.13's signature and protocol).

A load, as in torch: every rank reads the checkpoint's ``Metadata``, sets up its planner and storage reader and
plans its reads (resharding: each rank reads the saved chunks overlapping the tensors it holds); the coordinator
gathers and may adjust the plans; every rank reads its items into its state dict in place. A failure on any rank
is raised on every rank as ``CheckpointException``. Without an initialized process group, or with
``no_dist=True``, it is the one-process case.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Union

from ..._unsupported import module_getattr as _module_getattr
from .default_planner import DefaultLoadPlanner
from .filesystem import FileSystemReader
from .state_dict_saver import _is_stateful, _storage, _use_dist
from .utils import _DistWrapper

__all__ = ["load", "load_state_dict"]


def load(state_dict: dict, *, checkpoint_id: Optional[Union[str, os.PathLike]] = None, storage_reader=None,
         planner=None, process_group=None, no_dist: bool = False) -> None:
    """Load a DCP checkpoint into `state_dict` in place: its tensors are filled (their shapes and dtypes kept; the
    saved values cast), other values replaced by the saved objects, ``Stateful`` values loaded through
    ``load_state_dict``. Keys of `state_dict` choose what is read (with the default planner a key missing from
    the checkpoint is an error).

    Args:
        checkpoint_id: the checkpoint directory (default reader ``FileSystemReader(checkpoint_id)``; with
            `storage_reader` it is passed to ``storage_reader.reset``).
        storage_reader: a ``StorageReader``; planner: a ``LoadPlanner`` (default ``DefaultLoadPlanner()``).
        process_group, no_dist: as in ``save``.
    Raises:
        RuntimeError: neither `checkpoint_id` nor `storage_reader`. TypeError: `state_dict` is not a dict.
        CheckpointException: a step failed on some rank (e.g. a missing ``.metadata``, a key missing from the
            checkpoint, a shape mismatch); every rank raises it.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"torch.distributed.checkpoint.load: state_dict must be a dict, got "
                        f"{type(state_dict).__name__}")
    reader = _storage(storage_reader, checkpoint_id, FileSystemReader, "load")
    stateful = {k: v for k, v in state_dict.items() if _is_stateful(v)}
    to_load = {k: (v.state_dict() if k in stateful else v) for k, v in state_dict.items()}
    _load_state_dict(to_load, reader, process_group, 0, not _use_dist(no_dist, "load"), planner)
    for key, obj in stateful.items():
        obj.load_state_dict(to_load[key])
    for key, value in to_load.items():
        if key not in stateful:
            state_dict[key] = value


def _load_state_dict(state_dict: dict, reader, process_group, coordinator_rank: int, no_dist: bool,
                     planner) -> None:
    """The load protocol (module docstring) into `state_dict` in place, with `coordinator_rank` of
    `process_group` planning; `no_dist` True: this process alone."""
    planner = DefaultLoadPlanner() if planner is None else planner
    dist = _DistWrapper(process_group, not no_dist, coordinator_rank)

    def local_step():
        metadata = reader.read_metadata()
        planner.set_up_planner(state_dict, metadata, dist.is_coordinator)
        reader.set_up_storage_reader(metadata, dist.is_coordinator)
        return reader.prepare_local_plan(planner.create_local_plan())

    def global_step(all_plans):
        return reader.prepare_global_plan(planner.create_global_plan(all_plans))

    central_plan = dist.reduce_scatter("plan", local_step, global_step)

    def read_data():
        reader.read_data(planner.finish_plan(central_plan), planner).wait()

    dist.all_gather("read", read_data)


def load_state_dict(state_dict: dict, storage_reader, process_group=None, coordinator_rank: int = 0,
                    no_dist: bool = False, planner=None) -> None:
    """torch's deprecated form of :func:`load` (megatron-core's ``torch_dist`` strategy calls it): loads into
    `state_dict` in place through `storage_reader` (reset first), `coordinator_rank` of `process_group` planning,
    ``no_dist`` True for this process alone (no fallback: without it a process group must be initialized).
    ``Stateful`` values are not unwrapped (as in torch). Warns FutureWarning as torch does."""
    warnings.warn("`load_state_dict` is deprecated and will be removed in future versions. Please use `load` "
                  "instead.", FutureWarning, stacklevel=2)
    storage_reader.reset()
    _load_state_dict(state_dict, storage_reader, process_group, coordinator_rank, no_dist, planner)


__getattr__ = _module_getattr("torch.distributed.checkpoint.state_dict_loader")
