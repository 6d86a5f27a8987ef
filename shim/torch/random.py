"""torch.random / torch.Generator over NumPy's Philox counter-based generator.

`manual_seed(s)` reseeds the default generator; `get_rng_state()` returns the generator state as a uint8
tensor (torch's ByteTensor convention) and `set_rng_state(t)` restores it, so a saved state reproduces the
following draws exactly. The bit streams are not torch's (documented): parity tests must load weights, not
rely on the same random draws.
"""
from __future__ import annotations

import pickle
import time

import numpy as np

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator", "fork_rng"]

_DEFAULT_SEED = 67280421310721  # torch's default_generator initial seed


class Generator:
    """torch.Generator(device='cpu'): manual_seed, seed, initial_seed, get_state, set_state."""

    def __init__(self, device="cpu"):
        from ._device import normalize_device
        self.device = normalize_device(device)
        self._seed = _DEFAULT_SEED
        self._np = np.random.Generator(np.random.Philox(self._seed))

    def manual_seed(self, seed) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed &= 0xFFFF_FFFF_FFFF_FFFF
        self._seed = seed
        self._np = np.random.Generator(np.random.Philox(seed))
        return self

    def seed(self) -> int:
        """Reseed from the clock; returns the new seed."""
        s = time.time_ns() & 0xFFFF_FFFF_FFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed the generator was last seeded with."""
        return self._seed

    def get_state(self):
        """The state as a uint8 tensor (opaque; pass back to set_state)."""
        from ._ops.creation import from_numpy
        blob = pickle.dumps((self._seed, self._np.bit_generator.state), protocol=4)
        return from_numpy(np.frombuffer(blob, dtype=np.uint8).copy())

    def set_state(self, new_state) -> "Generator":
        """Restore a state from `get_state()`; TypeError/ValueError for anything else."""
        from ._tensor import Tensor
        if not isinstance(new_state, Tensor) or new_state.dtype.name != "uint8":
            raise TypeError("set_state expects a torch.ByteTensor returned by get_state()")
        try:
            seed, state = pickle.loads(new_state._host().tobytes())
        except Exception as exc:
            raise ValueError(f"invalid RNG state tensor: {exc}") from None
        self._seed = seed
        bg = np.random.Philox()
        bg.state = state
        self._np = np.random.Generator(bg)
        return self

    def __repr__(self):
        return f"<torch.Generator object (shim, device={self.device})>"


default_generator = Generator()


def _default_or(gen):
    return default_generator if gen is None else gen


def manual_seed(seed) -> Generator:
    """Seed the default generator (and, when loaded, the shim's cuda generators, as torch does)."""
    import sys
    default_generator.manual_seed(seed)
    cuda = sys.modules.get("shim.torch.cuda")
    if cuda is not None and hasattr(cuda, "manual_seed_all"):
        cuda.manual_seed_all(seed)
    return default_generator


def seed() -> int:
    """Reseed from the clock; returns the new seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state():
    """torch.get_rng_state: the default generator's state as a uint8 tensor."""
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    """torch.set_rng_state: restore a state returned by get_rng_state (TypeError/ValueError otherwise)."""
    default_generator.set_state(new_state)


class fork_rng:
    """Context manager that restores the default generator's state on exit."""

    def __init__(self, devices=None, enabled=True, **kwargs):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            self._state = get_rng_state()

    def __exit__(self, *exc):
        if self.enabled:
            set_rng_state(self._state)
        return False
