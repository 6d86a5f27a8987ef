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


from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn")
