"""``torch_npu`` (Ascend's PyTorch adapter) served by the shim, so scripts written for it run unchanged.

What real ``import torch_npu`` provides and what it is here:
- ``torch_npu.npu`` and ``torch.npu``: the accelerator namespace — the shim's ``torch.cuda`` module itself (device
  selection, streams, events, memory statistics, RNG; see ``shim/torch/cuda``);
- ``"npu"`` / ``"npu:N"`` device strings and ``Tensor.npu()``: accepted by the facade everywhere; the facade reports
  such tensors as ``cuda`` devices (one accelerator vocabulary, ``shim.torch._device.DEVICE_TYPE_ALIASES``).
Other ``torch_npu`` names (custom fused kernels such as ``torch_npu.npu_rms_norm``, ``contrib``) raise
NotImplementedError naming the API (an AttributeError too, so feature probes with ``hasattr`` work).
"""
from __future__ import annotations

import sys

import shim.torch.npu  # noqa: F401  (binds shim.torch.npu to the torch.cuda module)
from shim.torch import cuda as npu
from shim.torch.cuda._backend import UnsupportedCudaAPI

__all__ = ["npu"]
__version__ = "2.13.0+mindspore"  # the torch API level the facade follows (torch_npu versions track torch's)

# `import torch_npu.npu` / `from torch_npu.npu import ...`: the submodule is the torch.cuda module
sys.modules[__name__ + ".npu"] = npu


def __getattr__(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module 'torch_npu' has no attribute '{name}'")
    raise UnsupportedCudaAPI(f"torch_npu.{name} is not supported by the shim (only torch_npu.npu, the torch.cuda "
                             f"mapping, is provided)")
