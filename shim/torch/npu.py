"""``torch.npu``: Ascend's name for the accelerator namespace — the same module object as ``torch.cuda``.

Under the shim "cuda" and "npu" both mean this rank's accelerator (``shim.torch._device.DEVICE_TYPE_ALIASES``), so
``torch.npu.set_device``, ``torch.npu.Event``, ``torch.npu.max_memory_allocated`` … are ``torch.cuda``'s functions.
Importing this module replaces its own ``sys.modules`` entry with ``shim.torch.cuda`` (the import system then binds
``shim.torch.npu`` to that module), so ``torch.npu is torch.cuda``.
"""
import sys

from shim.torch import cuda as _cuda

sys.modules[__name__] = _cuda
