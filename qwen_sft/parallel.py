"""Distributed start-up from the launcher's environment, and megatron-core `parallel_state` set-up.

Rank sources, in order (one table, `_RANK_ENV`):
- `RANK` / `WORLD_SIZE` / `LOCAL_RANK`, which `torchrun` and `python -m torch.distributed.launch` set for every
  process they start (torch's "env://" rendezvous contract);
- `RANK_ID` / `RANK_SIZE` only when the launcher variables are absent (the Ascend convention). The original
  workflow exported `RANK_ID=0` for every process and passed it to `init_process_group(rank=...)`, so every
  process claimed rank 0; here `RANK` always wins over `RANK_ID`;
- the legacy launcher's `--local-rank` / `--local_rank` argument, when passed, for the local rank;
- nothing at all: a single process (rank 0 of 1) on a free loopback port.

The process-group backend follows the device (`_BACKEND_FOR_DEVICE`): nccl with CUDA, gloo on CPU, hccl on Ascend
NPUs; an explicit backend name is accepted as given.

Seeding (see `../shared/notes/megatron-core-cpu.md`): `torch.manual_seed(seed)` then megatron's
`model_parallel_cuda_manual_seed(seed)`. The first makes every tensor-parallel rank draw the same CPU-initialised
weights; the second creates megatron's tracked RNG states (data-parallel and tensor-parallel streams).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import random
import socket
from typing import Mapping, Optional

import numpy as np
import torch
import torch.distributed as dist
from megatron.core import parallel_state, tensor_parallel

__all__ = [
    "LaunchEnv",
    "ParallelLayout",
    "launch_env",
    "backend_for_device",
    "init_distributed",
    "set_seeds",
    "destroy",
]

# (rank variable, world-size variable), in priority order.
_RANK_ENV = (("RANK", "WORLD_SIZE"), ("RANK_ID", "RANK_SIZE"))
# device type → torch.distributed backend.
_BACKEND_FOR_DEVICE = {"cuda": "nccl", "cpu": "gloo", "npu": "hccl"}
_KNOWN_BACKENDS = ("nccl", "gloo", "hccl", "mccl", "mpi")


@dataclasses.dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits among the launched processes.

    Attributes:
        rank: global rank, 0 <= rank < world_size.
        world_size: number of processes.
        local_rank: rank on this node (device index).
        master_addr, master_port: the rendezvous address (env:// contract).
        source: which variables gave the rank ("RANK", "RANK_ID" or "single-process").
    """

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    source: str


@dataclasses.dataclass(frozen=True)
class ParallelLayout:
    """The parallel layout of this process after `init_distributed`.

    Attributes:
        rank, world_size, local_rank: as in `LaunchEnv`.
        tensor_model_parallel_size, pipeline_model_parallel_size, data_parallel_size: TP, PP and DP degrees
            (DP = world_size / (TP * PP)).
        tp_rank, pp_rank, dp_rank: this process's rank in each group.
        device: the torch device this rank computes on (`cuda:<local_rank>` or `cpu`).
        backend: the process-group backend in use.
        expert_model_parallel_size, ep_rank: EP degree and this rank's place in its expert-parallel group
            (megatron's; EP groups are made of data-parallel ranks, so EP divides world_size / (TP * PP)).
        expert_dp_rank: this rank's index among the ranks holding the same experts (expert data parallelism).
    """

    rank: int
    world_size: int
    local_rank: int
    tensor_model_parallel_size: int
    pipeline_model_parallel_size: int
    data_parallel_size: int
    tp_rank: int
    pp_rank: int
    dp_rank: int
    device: torch.device
    backend: str
    expert_model_parallel_size: int = 1
    ep_rank: int = 0
    expert_dp_rank: int = 0

    @property
    def is_first_stage(self) -> bool:
        """This rank holds the first pipeline stage (the embedding)."""
        return self.pp_rank == 0

    @property
    def is_last_stage(self) -> bool:
        """This rank holds the last pipeline stage (final norm, output layer, loss)."""
        return self.pp_rank == self.pipeline_model_parallel_size - 1


def _int_env(environ: Mapping[str, str], name: str) -> Optional[int]:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env(environ: Optional[Mapping[str, str]] = None, local_rank_arg: Optional[int] = None) -> LaunchEnv:
    """Read this process's rank, world size and local rank from the launcher's environment.

    Args:
        environ: the environment (default `os.environ`).
        local_rank_arg: the value of a `--local-rank`/`--local_rank` argument, when the legacy launcher passed one;
            used only when `LOCAL_RANK` is not set.

    Returns:
        A `LaunchEnv`. `RANK`/`WORLD_SIZE` take precedence over `RANK_ID`/`RANK_SIZE`; with neither, rank 0 of 1
        on 127.0.0.1 and a free port (unless MASTER_ADDR / MASTER_PORT are set).

    Raises:
        ValueError: a non-integer variable, a rank outside [0, world_size), a world size < 1, or a rank variable
            without its world-size partner.
    """
    env = os.environ if environ is None else environ
    rank = world = None
    source = "single-process"
    for rank_name, world_name in _RANK_ENV:
        r, w = _int_env(env, rank_name), _int_env(env, world_name)
        if r is None and w is None:
            continue
        if r is None or w is None:
            missing = rank_name if r is None else world_name
            # A world size with no rank (or the reverse) cannot place this process.
            if rank_name == "RANK":
                raise ValueError(
                    f"launcher environment: {rank_name} and {world_name} must be set together; {missing} is missing"
                )
            if r is None:
                raise ValueError(f"environment: {world_name} is set but {rank_name} is not")
            w = w if w is not None else 1
        rank, world, source = r, w, rank_name
        break
    if rank is None:
        rank, world = 0, 1
    if world < 1:
        raise ValueError(f"world size from {source}: expected >= 1, got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"rank from {source}: expected 0 <= rank < {world}, got {rank}")
    local_rank = _int_env(env, "LOCAL_RANK")
    if local_rank is None:
        local_rank = local_rank_arg if local_rank_arg is not None else (rank if source != "RANK" else 0)
    if local_rank < 0:
        raise ValueError(f"local rank: expected >= 0, got {local_rank}")
    master_addr = env.get("MASTER_ADDR") or "127.0.0.1"
    port = _int_env(env, "MASTER_PORT")
    if port is None:
        if world > 1:
            raise ValueError(
                f"{world} processes but MASTER_PORT is not set: start them with torchrun or "
                "`python -m torch.distributed.launch`, which set MASTER_ADDR/MASTER_PORT"
            )
        port = _free_port()
    return LaunchEnv(rank, world, local_rank, master_addr, port, source)


def backend_for_device(device_type: str) -> str:
    """The torch.distributed backend for a device type: cuda → nccl, cpu → gloo, npu → hccl.

    Raises:
        ValueError: an unknown device type.
    """
    try:
        return _BACKEND_FOR_DEVICE[device_type]
    except KeyError:
        raise ValueError(f"no process-group backend known for device type {device_type!r}; "
                         f"known: {sorted(_BACKEND_FOR_DEVICE)}") from None


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy, torch's default generator and megatron's tracked RNG states.

    `torch.manual_seed(seed)` comes first: on a CPU build `torch.cuda.manual_seed` seeds nothing, and weights are
    drawn from the default generator with `use_cpu_initialization`, so every TP rank must start from the same
    state. Then `model_parallel_cuda_manual_seed(seed)` (requires parallel_state initialised).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    tensor_parallel.model_parallel_cuda_manual_seed(seed)
    # With the CPU playing the accelerator, the tracker's states live in the CPU generator: reseed it so model
    # construction draws from `seed` on every rank.
    torch.manual_seed(seed)


def init_distributed(
    tensor_model_parallel_size: int = 1,
    pipeline_model_parallel_size: int = 1,
    *,
    seed: int = 1234,
    backend: Optional[str] = None,
    local_rank_arg: Optional[int] = None,
    timeout_s: float = 600.0,
    expert_model_parallel_size: int = 1,
) -> ParallelLayout:
    """Initialise torch.distributed and megatron-core `parallel_state` for this process.

    Steps: read `launch_env`; pick the device (`cuda:<local_rank>` when CUDA is available, else CPU, with
    `qwen_sft.cpu_accelerator` mapping megatron's CUDA calls to the CPU); `init_process_group(backend, env://)`
    with the launcher's rank and world size; `parallel_state.initialize_model_parallel(TP, PP, EP)` (DP derived;
    the expert tensor-parallel size is megatron's default, TP); `set_seeds(seed)`.

    Args:
        tensor_model_parallel_size, pipeline_model_parallel_size: TP and PP degrees (>= 1).
        seed: the run's seed.
        backend: process-group backend; default from the device (nccl / gloo). "hccl" is accepted by name.
        local_rank_arg: the legacy launcher's `--local-rank` value, if any.
        timeout_s: collective timeout in seconds.
        expert_model_parallel_size: EP degree (>= 1) for mixture-of-experts models.

    Returns:
        The `ParallelLayout` of this process.

    Raises:
        ValueError: TP, PP or EP < 1, world size not divisible by TP * PP (or by TP * PP * EP), an unknown backend,
            bad launcher env.
    """
    for name, value in (("tensor_model_parallel_size", tensor_model_parallel_size),
                        ("pipeline_model_parallel_size", pipeline_model_parallel_size),
                        ("expert_model_parallel_size", expert_model_parallel_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    env = launch_env(local_rank_arg=local_rank_arg)
    model_parallel = tensor_model_parallel_size * pipeline_model_parallel_size
    if env.world_size % model_parallel:
        raise ValueError(
            f"world size {env.world_size} is not divisible by tensor_model_parallel_size × "
            f"pipeline_model_parallel_size = {tensor_model_parallel_size} × {pipeline_model_parallel_size}"
        )
    if env.world_size % (model_parallel * expert_model_parallel_size):
        raise ValueError(
            f"world size {env.world_size} is not divisible by tensor × pipeline × expert_model_parallel_size = "
            f"{tensor_model_parallel_size} × {pipeline_model_parallel_size} × {expert_model_parallel_size} (expert "
            f"parallelism spreads experts over data-parallel ranks)"
        )
    if torch.cuda.is_available():
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    else:
        # Imported only here: it is for a CPU-only real torch and needs `torch.overrides`, which the shim's
        # facade (whose torch.cuda is served by the accelerator) does not have.
        from qwen_sft import cpu_accelerator

        cpu_accelerator.enable()
        device = torch.device("cpu")
    if backend is None:
        backend = backend_for_device(device.type)
    if backend not in _KNOWN_BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {_KNOWN_BACKENDS}")
    os.environ["MASTER_ADDR"] = env.master_addr
    os.environ["MASTER_PORT"] = str(env.master_port)

    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=env.rank,
            world_size=env.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=tensor_model_parallel_size,
            pipeline_model_parallel_size=pipeline_model_parallel_size,
            expert_model_parallel_size=expert_model_parallel_size,
        )
    set_seeds(seed)
    return ParallelLayout(
        rank=env.rank,
        world_size=env.world_size,
        local_rank=env.local_rank,
        tensor_model_parallel_size=tensor_model_parallel_size,
        pipeline_model_parallel_size=pipeline_model_parallel_size,
        data_parallel_size=env.world_size // model_parallel,
        tp_rank=parallel_state.get_tensor_model_parallel_rank(),
        pp_rank=parallel_state.get_pipeline_model_parallel_rank(),
        dp_rank=parallel_state.get_data_parallel_rank(),
        device=device,
        backend=backend,
        expert_model_parallel_size=expert_model_parallel_size,
        ep_rank=parallel_state.get_expert_model_parallel_rank(),
        expert_dp_rank=parallel_state.get_expert_data_parallel_rank(),
    )


def destroy() -> None:
    """Tear down megatron's parallel groups and the default process group (safe to call when not initialised)."""
    parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()
