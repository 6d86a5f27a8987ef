"""Training checkpoints: megatron-core distributed checkpoints of the whole training state, save, load, resume.

What a checkpoint holds (`sharded_state`): the model's and the distributed optimizer's sharded state dicts, every
rank's RNG states (`rng_state`), the LR scheduler, the data position (step, consumed samples, epoch, seed), the
step and the run's configuration. Format: megatron-core `dist_checkpointing` (torch_dist), one folder
`<output_path>/checkpoints/iter_XXXXXXX` per saved step, named by Megatron-LM's tracker file
(`parity.records`).

Atomic save (`save_checkpoint`): `iter_XXXXXXX.tmp` is written first; after every rank finished, rank 0 renames it
and then replaces `latest_checkpointed_iteration.txt` (write-then-rename), so a killed save leaves the previous
checkpoint and the tracker file valid.

Load (`load_checkpoint`): megatron-core 0.16.1 with torch.optim.AdamW standing in for TE/Apex Adam needs two
repairs around `DistributedOptimizer.load_state_dict`, both here: an AdamW state for every parameter before the
loading template is built (`init_empty_optimizer_state`), and the AdamW step count brought back from the saved
param groups (`restore_adam_steps`).
"""
from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
from megatron.core import dist_checkpointing, tensor_parallel
from megatron.core.dist_checkpointing.mapping import ShardedObject

from parity import records
from qwen_sft.run_records import backend_name

__all__ = [
    "latest_checkpoint",
    "checkpoint_to_load",
    "rng_state",
    "set_rng_state",
    "sharded_state",
    "save_checkpoint",
    "init_empty_optimizer_state",
    "restore_adam_steps",
    "load_checkpoint",
]


def latest_checkpoint(checkpoints_dir: str | os.PathLike) -> Optional[Path]:
    """The checkpoint directory named by `<checkpoints_dir>/latest_checkpointed_iteration.txt`, or None.

    Raises:
        ValueError: the tracker file does not hold an integer, or names a missing directory.
    """
    if not (Path(checkpoints_dir) / records.TRACKER_FILE).is_file():
        return None
    iteration, release = records.read_tracker(checkpoints_dir)
    if release:
        raise ValueError(f"{Path(checkpoints_dir) / records.TRACKER_FILE}: expected an iteration number, found "
                         f"'release' (a converted checkpoint, not a training one)")
    path = records.iteration_dir(checkpoints_dir, iteration)
    if not path.is_dir():
        raise ValueError(f"{Path(checkpoints_dir) / records.TRACKER_FILE} names iteration {iteration} but {path} "
                         f"does not exist")
    return path


def checkpoint_to_load(load: Optional[str], resume: bool, checkpoints_dir: Path) -> Optional[Path]:
    """The checkpoint a run starts from: `--load` (a checkpoints folder → its latest, or one `iter_*` folder), else
    with `--resume` the latest under `checkpoints_dir`, else None (also for `--resume` with nothing saved yet).

    Raises:
        FileNotFoundError: `--load` names no megatron-core distributed checkpoint.
    """
    if load:
        source = Path(load)
        path = latest_checkpoint(source) if (source / records.TRACKER_FILE).is_file() else source
        if path is None or not (path / "metadata.json").is_file():
            raise FileNotFoundError(f"--load {load}: no megatron-core distributed checkpoint there "
                                    f"(expected {records.TRACKER_FILE} or a checkpoint directory with metadata.json)")
        return path
    if resume:
        return latest_checkpoint(checkpoints_dir)
    return None


def rng_state() -> dict:
    """This rank's RNG states: Python, NumPy, torch's default generator, the accelerator's, megatron's tracker."""
    return {
        "backend": backend_name(),
        "random": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "tracker": tensor_parallel.get_cuda_rng_tracker().get_states(),
    }


def _state_numel(state) -> int:
    return int(state.numel()) if hasattr(state, "numel") else len(state)


def set_rng_state(state: dict) -> Optional[str]:
    """Restore a checkpoint's RNG states on either backend.

    The torch generator states cross backends: the shim's CPU generator is torch's Mersenne Twister bit for bit and
    its `get_rng_state` is torch's 5056-byte uint8 state, and both backends' accelerator and megatron-tracker states
    are that same CPU state here (real torch through `qwen_sft/cpu_accelerator.py`, the shim's `torch.cuda`). A
    state whose size does not fit this run's generator (e.g. a CUDA Philox state from a GPU run, 16 bytes) is not
    restored; that generator keeps this run's seeding and the returned note names it.

    Args:
        state: `rng_state()`'s dict as saved (`backend`, `random`, `numpy`, `torch`, `cuda`, `tracker`).

    Returns:
        None when every state was restored, else a note naming the generators left alone and why.
    """
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    saved_backend = state.get("backend", backend_name())
    skipped = []

    def fits(name, saved, current):
        if _state_numel(saved) == _state_numel(current):
            return True
        skipped.append(f"{name} ({_state_numel(saved)}-byte state from {saved_backend}, this generator's is "
                       f"{_state_numel(current)} bytes)")
        return False

    if fits("torch", state["torch"], torch.get_rng_state()):
        torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        if fits("accelerator", state["cuda"], torch.cuda.get_rng_state()):
            torch.cuda.set_rng_state(state["cuda"])
    tracker = tensor_parallel.get_cuda_rng_tracker()
    current = tracker.get_states()
    restore = {}
    for name, saved in state["tracker"].items():
        if name not in current or fits(f"tracker {name!r}", saved, current[name]):
            restore[name] = saved
        else:
            restore[name] = current[name]
    tracker.set_states(restore)
    if skipped:
        return ("RNG states not restored (they keep this run's seeding, so dropout masks differ from the saving "
                "run): " + "; ".join(skipped))
    return None


def sharded_state(*, gpt, optimizer, scheduler, layout, step: int, global_batch_size: int, steps_per_epoch: int,
                  seed: int, train_config: dict, is_loading: bool) -> dict:
    """The state a checkpoint holds (for saving) or the template it is loaded into (`is_loading=True`).

    Args:
        gpt: this rank's `GPTModel` (unwrapped); optimizer: megatron's (distributed) optimizer; scheduler: its
            `OptimizerParamScheduler`; layout: this rank's `ParallelLayout`.
        step, global_batch_size, steps_per_epoch, seed: the data position.
        train_config: the run's configuration as a dict.
    """
    model_sd = gpt.sharded_state_dict()
    return {
        "model": model_sd,
        # 'dp_reshardable': each rank's optimizer buffers as their own shards (megatron-core 0.16.1's
        # default 'fully_sharded_model_space' relies on ShardedTensor.flattened_range, which its torch_dist
        # saver rejects). The format follows the distributed optimizer's buffers; resuming under a different
        # TP/PP/DP layout than the one that saved is not tested here.
        "optimizer": optimizer.sharded_state_dict(
            model_sd, is_loading=is_loading, metadata={"distrib_optim_sharding_type": "dp_reshardable"}),
        "rng_state": ShardedObject(
            "rng_state", None if is_loading else rng_state(),
            (layout.pipeline_model_parallel_size, layout.tensor_model_parallel_size, layout.data_parallel_size),
            (layout.pp_rank, layout.tp_rank, layout.dp_rank), replica_id=0),
        "iteration": step,
        "scheduler": scheduler.state_dict(),
        "data_position": {"step": step, "consumed_samples": step * global_batch_size,
                          "epoch": step // steps_per_epoch, "seed": seed},
        "train_config": train_config,
    }


def save_checkpoint(checkpoints_dir: Path, step: int, build_state: Callable[[], dict], rank: int,
                    log: Callable[[str], None]) -> Path:
    """Save step `step` atomically (see the module docstring); every rank calls it. Returns the final folder.

    Args:
        build_state: returns `sharded_state(..., is_loading=False)`; called after the temporary folder exists.
        rank: this process's global rank (rank 0 creates, renames and points the tracker).
        log: receives the "saved checkpoint" line (rank 0).
    """
    final = records.iteration_dir(checkpoints_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    dist.barrier()
    t0 = time.perf_counter()
    dist_checkpointing.save(build_state(), str(tmp))
    dist.barrier()
    if rank == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        records.write_tracker(checkpoints_dir, step)
        log(f"saved checkpoint {final} in {time.perf_counter() - t0:.2f} s")
    dist.barrier()
    return final


def _optimizers(optimizer) -> list:
    return getattr(optimizer, "chained_optimizers", [optimizer])


def init_empty_optimizer_state(optimizer) -> None:
    """Give every parameter an AdamW state (step 0, zero moments) so the checkpoint can be loaded into it.

    megatron-core 0.16.1's DistributedOptimizer.state_dict() (used to build the loading template) requires a
    'step' in every parameter's state when torch.optim.AdamW stands in for TE/Apex Adam, which exists only
    after a first step. The checkpoint then overwrites these values.
    """
    for opt in _optimizers(optimizer):
        inner = opt.optimizer
        for group in inner.param_groups:
            for p in group["params"]:
                if len(inner.state[p]) == 0:
                    inner.state[p]["step"] = torch.tensor(0.0)
                    inner.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    inner.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def restore_adam_steps(optimizer, optimizer_state: Any) -> None:
    """Set every parameter's AdamW 'step' to the checkpoint's value, one tensor per parameter.

    With torch.optim.AdamW standing in for TE/Apex Adam, megatron-core 0.16.1 keeps the step count only in the
    saved param_groups, and its DistributedOptimizer.load_state_dict does not bring it back into the per-param
    state once that state exists (it stays at the placeholder 0 of `init_empty_optimizer_state`, and is one
    tensor shared by all parameters, which AdamW would advance once per parameter). Either changes Adam's bias
    correction, so the resumed curve would drift from the uninterrupted one from the second resumed step on.

    Raises:
        ValueError: the checkpoint holds no step, or different steps in different param groups.
    """
    optimizers = _optimizers(optimizer)
    states = [optimizer_state] if len(optimizers) == 1 else [optimizer_state[i] for i in range(len(optimizers))]
    for opt, saved in zip(optimizers, states):
        steps = {g.get("step") for g in saved["optimizer"]["param_groups"]}
        if len(steps) != 1 or None in steps:
            raise ValueError(f"checkpoint optimizer state: expected one AdamW step count, found {steps}")
        step = float(steps.pop())
        for state in opt.optimizer.state.values():
            state["step"] = torch.tensor(step, dtype=torch.float32)


def load_checkpoint(path: Path, *, build_template: Callable[[], dict], gpt, optimizer, scheduler) -> tuple[dict, Optional[str]]:
    """Load a checkpoint into the model, optimizer, scheduler and RNGs of this rank.

    Args:
        build_template: returns `sharded_state(..., is_loading=True)`; called once the optimizer state exists.

    Returns:
        `(state, rng_note)`: the loaded state (its `iteration` and `data_position` tell where the run resumes)
        and `set_rng_state`'s note (None when every RNG state was restored).
    """
    init_empty_optimizer_state(optimizer)
    state = dist_checkpointing.load(build_template(), str(path))
    with torch.no_grad():  # fp32 main params are views of the (leaf) model params
        gpt.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        restore_adam_steps(optimizer, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state, set_rng_state(state["rng_state"])
