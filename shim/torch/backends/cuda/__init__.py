"""``torch.backends.cuda`` on the shim ("cuda" is this rank's accelerator; see ``torch.backends`` for what each
switch means here). ``matmul.allow_tf32`` and friends are recorded permissions: float32 matmuls stay full
float32. The SDPA switches are recorded: ``F.scaled_dot_product_attention`` has one implementation."""
from __future__ import annotations

from shim.torch._unsupported import module_getattr as _module_getattr

from .._flags import FlagSet

__all__ = ["is_built", "matmul", "flash_sdp_enabled", "enable_flash_sdp", "mem_efficient_sdp_enabled",
           "enable_mem_efficient_sdp", "math_sdp_enabled", "enable_math_sdp", "cudnn_sdp_enabled",
           "enable_cudnn_sdp", "is_flash_attention_available", "preferred_linalg_library"]

matmul = FlagSet("torch.backends.cuda.matmul", {
    "allow_tf32": False,
    "allow_fp16_reduced_precision_reduction": True,
    "allow_bf16_reduced_precision_reduction": True,
    "allow_fp16_accumulation": False,
})

_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    """True: the facade's ``cuda`` (this rank's accelerator) is always present, matching
    ``torch.cuda.is_available()`` under the shim."""
    return True


def _set_sdp(kind: str, enabled) -> None:
    if not isinstance(enabled, bool):
        raise TypeError(f"torch.backends.cuda.enable_{kind}_sdp expects a bool, got {enabled!r}")
    _sdp[kind] = enabled


def flash_sdp_enabled() -> bool:
    """The recorded flash-SDPA switch (default True)."""
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    """Record the flash-SDPA switch (the facade's SDPA has one implementation)."""
    _set_sdp("flash", enabled)


def mem_efficient_sdp_enabled() -> bool:
    """The recorded memory-efficient-SDPA switch (default True)."""
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    """Record the memory-efficient-SDPA switch (the facade's SDPA has one implementation)."""
    _set_sdp("mem_efficient", enabled)


def math_sdp_enabled() -> bool:
    """The recorded math-SDPA switch (default True)."""
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    """Record the math-SDPA switch (the facade's SDPA has one implementation)."""
    _set_sdp("math", enabled)


def cudnn_sdp_enabled() -> bool:
    """The recorded cuDNN-SDPA switch (default True)."""
    return _sdp["cudnn"]


def enable_cudnn_sdp(enabled: bool) -> None:
    """Record the cuDNN-SDPA switch (the facade's SDPA has one implementation)."""
    _set_sdp("cudnn", enabled)


def is_flash_attention_available() -> bool:
    """False: there is no FlashAttention kernel behind the facade's SDPA."""
    return False


_linalg = ["default"]


def preferred_linalg_library(backend=None) -> str:
    """Record/return the preferred linalg library name ("default", "cusolver", "magma"); linalg runs on
    MindSpore whatever is chosen."""
    if backend is not None:
        if backend not in ("default", "cusolver", "magma"):
            raise RuntimeError(f"Unknown input value {backend!r}: expected 'default', 'cusolver' or 'magma'")
        _linalg[0] = backend
    return _linalg[0]


__getattr__ = _module_getattr("torch.backends.cuda")
