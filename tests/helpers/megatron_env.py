"""Run code under a torch.distributed process group with megatron-core `parallel_state` initialised.

`megatron_parallel(tp=1, pp=1)` is a context manager for the one-process case inside the pytest process: it
creates a gloo group of world size 1 on a free loopback port, initialises megatron's model parallel state and
seeds the RNGs (default generator and megatron's CUDA RNG tracker, which on CPU torch seeds nothing by itself),
and tears everything down afterwards, so tests can build `GPTModel`s without a launcher. It enables
`qwen_sft.cpu_accelerator` (CPU plays the CUDA device on a CPU-only torch); that process-wide mapping stays.
"""
from __future__ import annotations

import contextlib
import socket
from typing import Iterator

import torch
import torch.distributed as dist


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def megatron_parallel(
    tensor_model_parallel_size: int = 1,
    pipeline_model_parallel_size: int = 1,
    seed: int = 1234,
    *,
    rank: int = 0,
    world_size: int = 1,
    init_method: str | None = None,
) -> Iterator[None]:
    """Initialise a gloo process group + megatron `parallel_state`; destroy both on exit.

    With the defaults (one process, TP=PP=1) it needs no launcher. For multi-process use pass `rank`,
    `world_size` and a shared `init_method` (e.g. "tcp://127.0.0.1:PORT"), one call per process.

    Raises:
        RuntimeError: a process group is already initialised in this process.
    """
    from megatron.core import parallel_state, tensor_parallel

    from qwen_sft import cpu_accelerator

    # On CPU-only torch megatron's RNG tracker and device queries need the CPU to play the accelerator
    # (a no-op returning False on a CUDA build or under the shim).
    cpu_accelerator.enable()
    if dist.is_initialized():
        raise RuntimeError("megatron_parallel: torch.distributed is already initialised in this process")
    if init_method is None:
        init_method = f"tcp://127.0.0.1:{free_port()}"
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    try:
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=tensor_model_parallel_size,
            pipeline_model_parallel_size=pipeline_model_parallel_size,
        )
        torch.manual_seed(seed)
        tensor_parallel.model_parallel_cuda_manual_seed(seed)
        yield
    finally:
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()
