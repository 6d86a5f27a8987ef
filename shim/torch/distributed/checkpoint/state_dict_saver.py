"""``torch.distributed.checkpoint.state_dict_saver``: :func:`save` (torch 2.13's signature and protocol).

A save, as in torch: every rank sets up its planner and storage writer and makes its local plan; the coordinator
(rank 0 of `process_group`) gathers the plans, makes the global plan and the checkpoint ``Metadata`` and hands each
rank its part; every rank writes its items; the coordinator gathers every rank's write results and the writer's
``finish`` writes ``.metadata``. A failure on any rank is raised on every rank as ``CheckpointException``
(``utils._DistWrapper``). Without an initialized process group, or with ``no_dist=True``, it is the one-process
case (no collectives).
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Union

from ..._unsupported import module_getattr as _module_getattr
from .default_planner import DefaultSavePlanner
from .filesystem import FileSystemWriter
from .utils import _DistWrapper

__all__ = ["save", "save_state_dict"]


def _use_dist(no_dist: bool, what: str) -> bool:
    """Whether to run over the process group; like torch, warns when falling back to one process unasked."""
    from ... import distributed  # the facade's torch.distributed, at call time

    if no_dist:
        return False
    if distributed.is_available() and distributed.is_initialized():
        return True
    warnings.warn(f"torch.distributed is disabled, unavailable or uninitialized, assuming the intent is to {what} "
                  f"in a single process.", stacklevel=3)
    return False


def _is_stateful(value: Any) -> bool:
    """torch's ``Stateful`` protocol: an object with ``state_dict`` and ``load_state_dict`` methods (tensors
    excluded)."""
    from ... import Tensor  # the facade's torch.Tensor, at call time

    return (not isinstance(value, Tensor) and callable(getattr(value, "state_dict", None))
            and callable(getattr(value, "load_state_dict", None)))


def _storage(storage, checkpoint_id, default_cls, what: str):
    if storage is None:
        if checkpoint_id is None:
            raise RuntimeError(f"torch.distributed.checkpoint.{what}: give checkpoint_id (a directory) or "
                               f"storage_{'writer' if what == 'save' else 'reader'}")
        return default_cls(checkpoint_id)
    storage.reset(checkpoint_id)
    return storage


def save(state_dict: dict, *, checkpoint_id: Optional[Union[str, os.PathLike]] = None, storage_writer=None,
         planner=None, process_group=None, no_dist: bool = False, use_collectives: bool = True):
    """Save `state_dict` (tensors, nested dicts/lists, picklable objects, ``Stateful`` objects saved through their
    ``state_dict()``) as a DCP checkpoint; returns its ``Metadata`` (on every rank).

    Args:
        checkpoint_id: the checkpoint directory (default writer ``FileSystemWriter(checkpoint_id)``; with
            `storage_writer` it is passed to ``storage_writer.reset``).
        storage_writer: a ``StorageWriter``; planner: a ``SavePlanner`` (default ``DefaultSavePlanner()``).
        process_group: the group saving together (None: the default group); no_dist: save from this process only.
        use_collectives: False (torch's per-rank metadata mode) raises NotImplementedError.
    Raises:
        RuntimeError: neither `checkpoint_id` nor `storage_writer`. TypeError: `state_dict` is not a dict.
        CheckpointException: a step failed on some rank (every rank raises it).
    """
    if not use_collectives:
        raise NotImplementedError("torch.distributed.checkpoint.save(use_collectives=False) is not implemented by "
                                  "the shim")
    if not isinstance(state_dict, dict):
        raise TypeError(f"torch.distributed.checkpoint.save: state_dict must be a dict, got "
                        f"{type(state_dict).__name__}")
    writer = _storage(storage_writer, checkpoint_id, FileSystemWriter, "save")
    state_dict = {k: (v.state_dict() if _is_stateful(v) else v) for k, v in state_dict.items()}
    return _save_state_dict(state_dict, writer, process_group, 0, not _use_dist(no_dist, "save"), planner,
                            use_collectives)


def _save_state_dict(state_dict: dict, writer, process_group, coordinator_rank: int, no_dist: bool, planner,
                     use_collectives: bool = True):
    """The save protocol (module docstring), `coordinator_rank` of `process_group` coordinating; `no_dist` True:
    this process alone. Returns the checkpoint's ``Metadata``."""
    planner = DefaultSavePlanner() if planner is None else planner
    dist = _DistWrapper(process_group, not no_dist, coordinator_rank)
    global_metadata = None

    def local_step():
        planner.set_up_planner(state_dict, writer.storage_meta(), dist.is_coordinator)
        writer.set_up_storage_writer(dist.is_coordinator, rank=dist.rank, use_collectives=use_collectives)
        return writer.prepare_local_plan(planner.create_local_plan())

    def global_step(all_plans):
        nonlocal global_metadata
        all_plans, global_metadata = planner.create_global_plan(all_plans)
        return writer.prepare_global_plan(all_plans)

    central_plan = dist.reduce_scatter("plan", local_step, global_step)

    def write_data():
        final_plan = planner.finish_plan(central_plan)
        return writer.write_data(final_plan, planner).wait()

    def finish(all_results):
        writer.finish(metadata=global_metadata, results=all_results)
        return global_metadata

    return dist.all_reduce("write", write_data, finish)


def save_state_dict(state_dict: dict, storage_writer, process_group=None, coordinator_rank: int = 0,
                    no_dist: bool = False, planner=None):
    """torch's deprecated form of :func:`save`: saves through `storage_writer` (reset first), `coordinator_rank` of
    `process_group` coordinating, ``no_dist`` True for this process alone. Returns the ``Metadata``. Warns
    FutureWarning as torch does."""
    warnings.warn("`save_state_dict` is deprecated and will be removed in future versions.Please use `save` "
                  "instead.", FutureWarning, stacklevel=2)
    storage_writer.reset()
    return _save_state_dict(state_dict, storage_writer, process_group, coordinator_rank, no_dist, planner)


__getattr__ = _module_getattr("torch.distributed.checkpoint.state_dict_saver")
