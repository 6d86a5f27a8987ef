"""torch.utils.cpp_extension: importable (megatron-core imports it at module level), but building C++/CUDA
extensions is not possible on the facade: `load`, `load_inline` and the build helpers raise UnsupportedAPI."""
from __future__ import annotations

from .._unsupported import UnsupportedAPI, module_getattr

CUDA_HOME = None
ROCM_HOME = None


def _unsupported(name):
    def fn(*args, **kwargs):
        raise UnsupportedAPI(f"torch.utils.cpp_extension.{name} is not implemented by the shim (no C++/CUDA "
                             "extension builds on MindSpore)")
    fn.__name__ = name
    return fn


load = _unsupported("load")
load_inline = _unsupported("load_inline")
CppExtension = _unsupported("CppExtension")
CUDAExtension = _unsupported("CUDAExtension")
BuildExtension = _unsupported("BuildExtension")

__getattr__ = module_getattr("torch.utils.cpp_extension")
