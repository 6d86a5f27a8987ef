"""Stand-in for `megatron.core.transformer.custom_layers.batch_invariant_kernels` where `triton` is not installed.

Megatron's module defines Triton GPU kernels (persistent matmul, log-softmax, mean) and imports `triton` at its
top; `megatron.training.initialize` imports it unconditionally, so without triton no Megatron-LM program starts
(`import megatron.training` fails), even though the kernels only run under `--batch-invariant-mode` on a CUDA GPU.
This module is served under Megatron's module name instead (see `registry.register_module_stand_in`) only when
`triton` cannot be imported. It keeps the module's public API (its `__all__`):

- `is_batch_invariant_mode_enabled()` -> False: the mode is never on here (true meaning, not a stub);
- `disable_batch_invariant_mode()` does nothing: the mode is already off, which is what disabling means;
- `enable_batch_invariant_mode()` and `set_batch_invariant_mode(True)` raise `NotImplementedError` naming the
  feature (`--batch-invariant-mode`) and the missing dependency; `set_batch_invariant_mode(False)` is a context in
  which the mode is off.

The rest of Megatron's module (its kernels and helpers, named in `_KERNEL_NAMES`) raises `NotImplementedError`
naming it when looked up on this module; other names are an AttributeError as usual.
"""
from __future__ import annotations

import contextlib

__all__ = [
    "set_batch_invariant_mode",
    "is_batch_invariant_mode_enabled",
    "disable_batch_invariant_mode",
    "enable_batch_invariant_mode",
]

_WHY = ("Megatron's batch-invariant mode (--batch-invariant-mode, "
        "megatron.core.transformer.custom_layers.batch_invariant_kernels) runs Triton GPU kernels; "
        "the 'triton' package is not installed here, so megatron_patches serves this module without them")


def is_batch_invariant_mode_enabled() -> bool:
    """Always False: batch-invariant mode cannot be enabled without triton."""
    return False


def enable_batch_invariant_mode() -> None:
    """Raises NotImplementedError: the mode's kernels are Triton kernels and triton is absent."""
    raise NotImplementedError(_WHY)


def disable_batch_invariant_mode() -> None:
    """Nothing to undo: the mode is never enabled here."""
    return None


@contextlib.contextmanager
def set_batch_invariant_mode(enabled: bool = True):
    """Context manager: `enabled=True` raises NotImplementedError (see the module docstring); False runs the
    block with the mode off, as it always is here."""
    if enabled:
        raise NotImplementedError(_WHY)
    yield


# The other public names of Megatron's module (megatron-core 0.16.1): Triton kernels and what is built on them.
_KERNEL_NAMES = frozenset({
    "matmul_kernel_persistent", "matmul_persistent", "get_compute_units", "log_softmax", "mean_kernel", "mean_dim",
    "mm_batch_invariant", "addmm_batch_invariant", "mean_batch_invariant", "rmsnorm_batch_invariant",
    "get_batch_invariant_attention_block_size", "AttentionBlockSize", "BatchInvariantTEGemmFn",
    "BatchInvariantRMSNormFn",
})


def __getattr__(name: str):
    if name in _KERNEL_NAMES:
        raise NotImplementedError(f"batch_invariant_kernels.{name}: {_WHY}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
