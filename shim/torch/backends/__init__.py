"""``torch.backends`` on the shim: the switches torch programs set for NVIDIA/Apple/CPU kernel libraries.

What each switch means here (the facade runs every op on MindSpore; "cuda" is this rank's accelerator):

- ``cuda.matmul.allow_tf32`` (torch default False): recorded. A *permission* for float32 matmuls to use TF32
  tensor cores; the facade's float32 matmuls always run in full float32 (MindSpore CPU has no reduced mode; on
  Ascend the facade does not turn on HF32), which every value of the switch allows.
- ``cuda.matmul.allow_fp16_reduced_precision_reduction`` / ``..._bf16_...`` (True): recorded; a permission, as
  above (reductions keep float32 accumulation).
- ``cudnn.allow_tf32`` (True): recorded; a permission for cuDNN convolutions, as above.
- ``cudnn.enabled``, ``cudnn.benchmark``, ``cudnn.deterministic``, ``cudnn.benchmark_limit`` (True, False, False,
  None: a torch build without cuDNN): recorded; there is no cuDNN (``cudnn.is_available()`` is False): kernels are
  MindSpore's and are not chosen by benchmarking.
- ``cuda.enable_flash_sdp`` / ``mem_efficient`` / ``math`` / ``cudnn_sdp`` (all True): recorded;
  ``F.scaled_dot_product_attention`` has one implementation, used whatever is enabled.
- ``mps.is_available()`` / ``is_built()``: False (no Apple GPU backend).

Every other ``torch.backends.X`` raises NotImplementedError naming it.
"""
from __future__ import annotations

from shim.torch._unsupported import module_getattr as _module_getattr

from . import cpu, cuda, cudnn, mps  # noqa: F401

__all__ = ["cpu", "cuda", "cudnn", "mps"]

__getattr__ = _module_getattr("torch.backends")
