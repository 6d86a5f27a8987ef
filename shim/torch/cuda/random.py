"""``torch.cuda`` RNG functions on the shim.

Mapping: the facade draws every random number on the host with torch's CPU generator algorithm
(``shim.torch.random.default_generator``, see shim/torch/_cpu_rng.py), whatever device the tensor reports. So the
accelerator's generator *is* that generator: ``torch.cuda.default_generators[i]`` is ``torch.default_generator``
for every ``i``, ``torch.cuda.get_rng_state()`` equals ``torch.get_rng_state()``, and ``torch.cuda.manual_seed(s)``
reseeds it. This is the same choice the reference backend makes on CPU-only torch (``qwen_sft/cpu_accelerator.py``
maps the CUDA RNG to the CPU default generator), so both backends follow one seeding story.

What the facade promises for the accelerator:
- draws on "cuda" tensors are real torch's **CPU** stream bit for bit (what CPU-only torch under
  ``qwen_sft.cpu_accelerator`` gives), not real CUDA's Philox stream: a program seeded with ``torch.manual_seed``
  or ``torch.cuda.manual_seed`` draws the same initial weights and dropout masks on both backends of this project,
  but not the numbers it would draw on a real GPU;
- ``torch.cuda.get_rng_state()`` is torch's 5056-byte CPU state (a real CUDA state is 16 bytes: seed and offset),
  so states move between this facade and real CPU torch, not to or from a real GPU;
- ``get_rng_state`` / ``set_rng_state`` round-trip exactly (the following draws repeat, dropout masks included),
  which is what megatron-core's ``CudaRNGStatesTracker`` needs (``add`` / ``fork`` / ``get_states`` /
  ``set_states``). Difference from torch on a GPU: CPU and accelerator draws share one stream (megatron's
  ``fork`` logs "CPU RNG state changed within GPU RNG context" after drawing inside a fork, as it does on the
  reference backend);
- dropout under ``torch.autocast`` / bfloat16 draws the same mask as float32 (the mask does not depend on the
  dtype) and scales in the tensor's dtype as torch does.
"""
from __future__ import annotations

from typing import Any, Iterable

from shim.torch.cuda import _backend

__all__ = ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "manual_seed",
           "manual_seed_all", "seed", "seed_all", "initial_seed", "default_generators"]


def _random():
    from shim.torch import random

    return random


def _generator(device: Any = "cuda", api: str = "torch.cuda.random"):
    if isinstance(device, str) and device == "cuda":
        device = None
    _backend.device_index(device, api=api)  # validates the device argument
    return _random().default_generator


def default_generators() -> tuple:
    """``torch.cuda.default_generators``: one entry per accelerator index, all the facade's default generator."""
    gen = _random().default_generator
    return tuple(gen for _ in range(_backend.device_count()))


def get_rng_state(device: Any = "cuda"):
    """The RNG state of the accelerator as a uint8 tensor (see module doc: the facade's default generator)."""
    return _generator(device, "torch.cuda.get_rng_state").get_state()


def get_rng_state_all() -> list:
    """The RNG state of every accelerator index (one list entry each)."""
    return [get_rng_state(i) for i in range(_backend.device_count())]


def set_rng_state(new_state, device: Any = "cuda") -> None:
    """Restore a state returned by :func:`get_rng_state` (TypeError/ValueError for anything else)."""
    _generator(device, "torch.cuda.set_rng_state").set_state(new_state)


def set_rng_state_all(new_states: Iterable) -> None:
    """Restore the states of every accelerator index from :func:`get_rng_state_all`."""
    for index, state in enumerate(new_states):
        set_rng_state(state, index)


def manual_seed(seed: int) -> None:
    """Seed the accelerator's generator (the facade's default generator; see module doc)."""
    _random().default_generator.manual_seed(int(seed))


def manual_seed_all(seed: int) -> None:
    """Seed the generator of every accelerator index (one shared generator: the same as :func:`manual_seed`)."""
    _random().default_generator.manual_seed(int(seed))


def seed() -> None:
    """Seed the accelerator's generator from a non-deterministic source."""
    _random().default_generator.seed()


def seed_all() -> None:
    """Seed every accelerator's generator from a non-deterministic source (one shared generator)."""
    _random().default_generator.seed()


def initial_seed() -> int:
    """The seed the accelerator's generator was last seeded with."""
    return int(_random().default_generator.initial_seed())
