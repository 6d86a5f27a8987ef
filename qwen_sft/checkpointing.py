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
    "find_training_checkpoint",
    "rng_state",
    "set_rng_state",
    "load_optimizer_state",
    "optimizer_sharding_for",
    "mark_expert_params",
    "padded_vocab_rows",
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


def _saved_iterations(checkpoints_dir: Path) -> list[int]:
    return sorted(int(p.name[5:]) for p in checkpoints_dir.glob("iter_*")
                  if p.name[5:].isdigit() and (p / "metadata.json").is_file())


def find_training_checkpoint(path: str | os.PathLike, iteration: Optional[int] = None) -> Optional[Path]:
    """The training checkpoint (`<output_path>/checkpoints/iter_XXXXXXX`, what `save_checkpoint` writes) that
    `path` names, or None when `path` is none of the forms below (an HF or converted Megatron folder, say).

    Forms: one checkpoint folder (`iter_XXXXXXX` with megatron-core's `metadata.json`); a checkpoints folder
    (`latest_checkpointed_iteration.txt` and no config.json, which would make it a converted Megatron folder); a
    training output folder holding `checkpoints/` with the tracker file. In the last two, `iteration` picks
    `iter_{iteration:07d}`; None picks the tracker's (the latest, as `--resume` does).

    Raises:
        FileNotFoundError: `iteration` was not saved there (the message lists the saved ones).
        ValueError: `iteration` given with a checkpoint folder of another iteration; a negative `iteration`; a
            tracker file naming a missing folder (`latest_checkpoint`).
    """
    root = Path(path)
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0):
        raise ValueError(f"iteration: expected an int >= 0, got {iteration!r}")
    if (root / "metadata.json").is_file() and not (root / records.TRACKER_FILE).is_file():
        if iteration is not None and root.name != records.iteration_dir(root.parent, iteration).name:
            raise ValueError(f"{root} is one checkpoint folder; --iteration {iteration} names another "
                             f"(pass the checkpoints folder with --iteration, or the iteration's folder alone)")
        return root
    if (root / records.TRACKER_FILE).is_file() and not (root / "config.json").is_file():
        ckpt_dir = root
    elif (root / "checkpoints" / records.TRACKER_FILE).is_file():
        ckpt_dir = root / "checkpoints"
    else:
        return None
    if iteration is None:
        return latest_checkpoint(ckpt_dir)
    chosen = records.iteration_dir(ckpt_dir, iteration)
    if not (chosen / "metadata.json").is_file():
        raise FileNotFoundError(f"{ckpt_dir} has no checkpoint of iteration {iteration} ({chosen} missing); saved "
                                f"iterations: {_saved_iterations(ckpt_dir) or 'none'}")
    return chosen


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


OPTIMIZER_SHARDING = "fully_reshardable"


def optimizer_sharding_for(optimizer) -> str:
    """The distributed optimizer's checkpoint format this run can save exactly: 'fully_reshardable' (loads at any
    TP/PP/DP), else 'dp_reshardable' (loads at the same TP and PP only).

    megatron-core 0.16.1's 'fully_reshardable' save concatenates each gradient bucket's unpadded elements but
    slices parameters at their padded buffer offsets (its issue #504): when a bucket other than a buffer's last
    has end padding, every later parameter is read shifted (it warns "param range exceeds unpadded buffer").
    That happens e.g. for tied embeddings at PP > 1, whose shared weight gets a bucket of its own.
    """
    for opt in _optimizers(optimizer):
        for buffer in getattr(opt, "buffers", []):
            if any(b.numel_unpadded != b.grad_data.numel() for b in buffer.buckets[:-1]):
                return "dp_reshardable"
    return OPTIMIZER_SHARDING


def mark_expert_params(model: torch.nn.Module) -> int:
    """Give a mixture-of-experts model's routed-expert parameters their own optimizer at every EP degree; returns
    how many parameters were marked (0 for a dense model).

    megatron-core 0.16.1 marks routed-expert weights `allreduce=False` only at EP > 1; those go to a second
    distributed optimizer (`ChainedOptimizer`: dense `chained_0`, experts `chained_1` in the checkpoint), while at
    EP = 1 they join the dense one (no prefix). A checkpoint saved at one EP degree then has key names the other
    cannot load. Marking them at EP = 1 as well (before `DistributedDataParallel` and the optimizer are built) gives
    every EP degree the same two optimizers, so a checkpoint moves between EP = 1 and EP = 2. The arithmetic is
    the same: at EP = 1 the expert-data-parallel group megatron reduces such gradients over is the data-parallel
    group, Adam is elementwise, and the chained optimizer clips by the norm over both parts.
    """
    marked = 0
    for module in model.modules():
        if getattr(module, "is_expert", False):  # megatron's expert Column/RowParallelLinear
            for param in module.parameters(recurse=False):
                param.allreduce = False
                marked += 1
    return marked


def layout_sizes(layout) -> dict:
    """The parallel degrees a checkpoint records (`layout` key) and a load compares: TP, PP, DP, EP."""
    return {"tensor_model_parallel_size": layout.tensor_model_parallel_size,
            "pipeline_model_parallel_size": layout.pipeline_model_parallel_size,
            "data_parallel_size": layout.data_parallel_size,
            "expert_model_parallel_size": layout.expert_model_parallel_size}


def sharded_state(*, gpt, optimizer, scheduler, layout, step: int, global_batch_size: int, steps_per_epoch: int,
                  seed: int, train_config: dict, is_loading: bool, load_rng: bool = True,
                  optimizer_sharding: Optional[str] = None) -> dict:
    """The state a checkpoint holds (for saving) or the template it is loaded into (`is_loading=True`).

    The model's and the optimizer's states are layout-independent: megatron-core's sharded state dicts name every
    tensor by its global shape and offset, and the distributed optimizer's 'fully_reshardable' format (gathered on
    DP rank 0 when saving; each rank slices what it owns when loading) keeps Adam's moments per parameter, so a
    checkpoint loads into any TP/PP/DP layout (except where megatron-core cannot write that format exactly and
    'dp_reshardable' is used: `optimizer_sharding_for`). The per-rank RNG states are not: they are one object per
    (PP, TP, DP) rank, loaded only into the layout that saved them (`load_rng=False` leaves them out of the
    template).

    Args:
        gpt: this rank's `GPTModel` (unwrapped); optimizer: megatron's (distributed) optimizer; scheduler: its
            `OptimizerParamScheduler`; layout: this rank's `ParallelLayout`.
        step, global_batch_size, steps_per_epoch, seed: the data position.
        train_config: the run's configuration as a dict.
        load_rng: include the RNG states in a loading template.
        optimizer_sharding: the distributed optimizer's `distrib_optim_sharding_type`: when saving, None picks
            `optimizer_sharding_for(optimizer)`; when loading, the saved one ('dp_reshardable' loads only into the
            same TP and PP).
    """
    if optimizer_sharding is None:
        optimizer_sharding = optimizer_sharding_for(optimizer)
    model_sd = gpt.sharded_state_dict()
    state = {
        "model": model_sd,
        "optimizer": optimizer.sharded_state_dict(
            model_sd, is_loading=is_loading, metadata={"distrib_optim_sharding_type": optimizer_sharding}),
        "layout": layout_sizes(layout),
        "iteration": step,
        "scheduler": scheduler.state_dict(),
        "data_position": {"step": step, "consumed_samples": step * global_batch_size,
                          "epoch": step // steps_per_epoch, "seed": seed},
        "train_config": train_config,
    }
    if not is_loading or load_rng:
        state["rng_state"] = ShardedObject(
            "rng_state", None if is_loading else rng_state(),
            (layout.pipeline_model_parallel_size, layout.tensor_model_parallel_size, layout.data_parallel_size),
            (layout.pp_rank, layout.tp_rank, layout.dp_rank), replica_id=0)
    return state


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


def load_optimizer_state(optimizer, saved: Any) -> None:
    """`optimizer.load_state_dict(saved)`, for each (chained) distributed optimizer, with the parameter state of a
    'fully_reshardable' checkpoint loaded without the AdamW 'step' placeholders.

    megatron-core 0.16.1's `DistributedOptimizer.load_state_dict` gives every per-parameter state a 'step' when
    neither Apex nor TE provides Adam, and then `load_parameter_state_from_fully_reshardable` copies every key of
    that state from the checkpoint, which keeps the step in the param groups only (KeyError 'step'). So the
    parameter state is loaded in a second call with the steps out of the way; `restore_adam_steps` sets them.
    """
    optimizers = _optimizers(optimizer)
    states = [saved] if len(optimizers) == 1 else [saved[i] for i in range(len(optimizers))]
    for opt, state in zip(optimizers, states):
        if state.get("param_state_sharding_type") != "fully_reshardable":
            opt.load_state_dict(state)
            continue
        rest = {k: v for k, v in state.items() if k not in ("param_state", "param_state_sharding_type")}
        opt.load_state_dict(rest)
        for per_param in opt.optimizer.state.values():
            per_param.pop("step", None)
        opt.load_parameter_state_from_fully_reshardable(state["param_state"])


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


def padded_vocab_rows(path: Path) -> Optional[int]:
    """The embedding's global row count (the padded vocabulary) a training checkpoint holds, from its metadata.

    Loading into a model of another row count is undefined in megatron-core's torch_dist loader (a layout change
    changes Megatron's padding: it rounds to `make_vocab_size_divisible_by` × TP), so a resumed run builds its
    model with the checkpoint's rows (`qwen_sft.sizes.vocab_padding_multiple`). None when the checkpoint holds no embedding.
    """
    meta = dist_checkpointing.load_tensors_metadata(str(path))
    entry = meta.get("embedding.word_embeddings.weight")
    return None if entry is None else int(entry.global_shape[0])


def _describe(sizes: dict) -> str:
    return (f"TP={sizes['tensor_model_parallel_size']} PP={sizes['pipeline_model_parallel_size']} "
            f"DP={sizes['data_parallel_size']} EP={sizes['expert_model_parallel_size']}")


def load_checkpoint(path: Path, *, build_template: Callable[..., dict], gpt, optimizer, scheduler,
                    layout) -> tuple[dict, Optional[str]]:
    """Load a checkpoint into the model, optimizer, scheduler and RNGs of this rank, from any TP/PP/DP layout.

    Args:
        build_template: `build_template(load_rng=..., optimizer_sharding=...)` returns
            `sharded_state(..., is_loading=True)` with those arguments; called once the optimizer state exists.
        layout: this rank's `ParallelLayout`, compared with the layout the checkpoint records.

    Returns:
        `(state, note)`: the loaded state (its `iteration` and `data_position` tell where the run resumes) and a note
        for the log (None when every RNG state was restored): saved in another layout, the RNG states are not
        restored (this run's seeding stays; with dropout off the resumed losses do not depend on them).

    Raises:
        ValueError: the checkpoint's optimizer state is 'dp_reshardable' (`optimizer_sharding_for`) and the TP or
            PP degree differs.
    """
    common = dist_checkpointing.load_common_state_dict(str(path))
    here = layout_sizes(layout)
    saved = {"expert_model_parallel_size": 1, **(common.get("layout") or here)}  # no record: the same layout
    sharding = (common.get("optimizer") or {}).get("param_state_sharding_type", OPTIMIZER_SHARDING)
    model_parallel = ("tensor_model_parallel_size", "pipeline_model_parallel_size")
    if sharding == "dp_reshardable" and any(saved[k] != here[k] for k in model_parallel):
        raise ValueError(f"checkpoint {path}: its optimizer state is 'dp_reshardable' (saved at {_describe(saved)}), "
                         f"which megatron-core loads only at the same TP and PP; this run is {_describe(here)} "
                         f"(see qwen_sft.checkpointing.optimizer_sharding_for for when a run saves that format)")
    same_layout = saved == here
    init_empty_optimizer_state(optimizer)
    state = dist_checkpointing.load(build_template(load_rng=same_layout, optimizer_sharding=sharding), str(path))
    with torch.no_grad():  # fp32 main params are views of the (leaf) model params
        gpt.load_state_dict(state["model"], strict=False)
        load_optimizer_state(optimizer, state["optimizer"])
        restore_adam_steps(optimizer, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if not same_layout:
        return state, (f"checkpoint saved at {_describe(saved)}, loaded at {_describe(here)}: model and optimizer "
                       f"resharded; its per-rank RNG states do not map to this layout and were not restored "
                       f"(this run's seeding stays)")
    return state, set_rng_state(state["rng_state"])
