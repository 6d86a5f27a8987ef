"""`torch.nn.modules`: Module, containers and layers of the facade."""
from .module import Module, RemovableHandle, _IncompatibleKeys, register_module_forward_hook, \
    register_module_forward_pre_hook
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .linear import Identity, Linear
from .sparse import Embedding
from .normalization import LayerNorm, RMSNorm
from .dropout import Dropout
from .activation import GELU, GLU, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .loss import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity",
           "Linear", "Embedding", "LayerNorm", "RMSNorm", "Dropout", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU",
           "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax", "GLU", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "L1Loss"]


from ..._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn.modules")
