"""torch.random / torch.Generator: torch's CPU random streams, bit for bit.

The generator is torch's CPU generator (MT19937 with torch's seeding, draw order and state layout), implemented
in NumPy in `shim/torch/_cpu_rng.py` (which says where each algorithm comes from in torch's sources). With the
same seed, `rand`, `randn`, `randint`, `randperm`, `normal_`, `uniform_`, `bernoulli_`, `exponential_`,
`multinomial`, dropout masks and the `nn.init` initialisers give real torch's values, and `get_rng_state()`
returns torch's 5056-byte `ByteTensor` layout: a state taken from real torch can be set here and vice versa,
and the following draws agree. Values are produced on the host in NumPy and handed to MindSpore.

The accelerator's generator is this one (see shim/torch/cuda/random.py). The default generator starts from
torch's default seed 67280421310721 (torch seeds its global generator nondeterministically at start-up; call
`torch.manual_seed` for reproducible streams, as with torch).
"""
from __future__ import annotations

import time

import numpy as np

from ._cpu_rng import Engine

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator", "fork_rng"]

_DEFAULT_SEED = 67280421310721  # c10's default_rng_seed_val


class Generator:
    """torch.Generator(device='cpu'): manual_seed, seed, initial_seed, get_state, set_state, clone_state."""

    def __init__(self, device="cpu"):
        from ._device import normalize_device
        self.device = normalize_device(device)
        self._eng = Engine(_DEFAULT_SEED)

    def manual_seed(self, seed) -> "Generator":
        """Seed the generator (torch's rules: negative seeds wrap modulo 2**64; RuntimeError outside
        [-0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff])."""
        seed = int(seed)
        if seed < -0x8000_0000_0000_0000 or seed > 0xFFFF_FFFF_FFFF_FFFF:
            raise RuntimeError("Overflow when unpacking long")
        self._eng.manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)
        return self

    def seed(self) -> int:
        """Reseed from a nondeterministic source; returns the new seed."""
        s = int.from_bytes(np.random.default_rng().bytes(8), "little") ^ time.time_ns()
        s &= 0xFFFF_FFFF_FFFF_FFFF
        self._eng.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed the generator was last seeded with."""
        return self._eng.seed

    def get_state(self):
        """torch's CPU generator state: a uint8 tensor of 5056 bytes (torch's `CPUGeneratorImplState`)."""
        from ._ops.creation import from_numpy
        return from_numpy(self._eng.get_state())

    def set_state(self, new_state) -> "Generator":
        """Restore a state from `get_state()` (or real torch's `get_rng_state()` bytes). TypeError for anything
        but a uint8 tensor; ValueError for a wrong size or an invalid MT19937 state."""
        from ._tensor import Tensor
        if not isinstance(new_state, Tensor) or new_state.dtype.name != "uint8":
            raise TypeError("set_state expects a torch.ByteTensor (uint8) holding a generator state, got "
                            f"{type(new_state).__name__}"
                            + (f" of dtype {new_state.dtype}" if isinstance(new_state, Tensor) else ""))
        self._eng.set_state(new_state._host())
        return self

    def clone_state(self) -> "Generator":
        """A new generator in the same state."""
        g = Generator(self.device)
        g._eng.set_state(self._eng.get_state())
        return g

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
