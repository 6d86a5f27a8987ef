"""`torch.nn` for the MindSpore facade.

Module semantics are torch's (pure Python, shim/torch/nn/modules/module.py); layers compute with
`torch.nn.functional`, which runs MindSpore PyNative ops so autograd flows through MindSpore's engine.
"""
from .parameter import Buffer, Parameter, UninitializedParameter
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from . import functional, init, parameter, utils
from . import modules

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "functional", "init", "utils", "modules"] + \
    list(_modules_all)


import importlib as _importlib  # noqa: E402

from .._unsupported import module_getattr as _module_getattr  # noqa: E402

_unsupported_getattr = _module_getattr("torch.nn")


def __getattr__(name):
    # torch.nn.parallel loads on first use (as `torch.nn.parallel.X` after a bare `import torch`): it brings in
    # torch.distributed and the communication core, which `import torch` does not load.
    if name == "parallel":
        return _importlib.import_module(f"{__name__}.parallel")
    if name == "DataParallel":  # torch.nn.DataParallel: a type only (see nn/parallel/data_parallel.py)
        return _importlib.import_module(f"{__name__}.parallel").DataParallel
    return _unsupported_getattr(name)
