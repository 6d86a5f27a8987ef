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
from . import activation as _activation, batchnorm as _batchnorm, conv as _conv, flatten as _flatten, \
    instancenorm as _instancenorm, linear as _linear, loss as _loss, normalization as _normalization, \
    padding as _padding, pooling as _pooling, rnn as _rnn, \
    transformer as _transformer

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity",
           "Linear", "Embedding", "LayerNorm", "RMSNorm", "Dropout", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU",
           "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax", "GLU", "CrossEntropyLoss", "NLLLoss", "MSELoss",
           "L1Loss"]

# the layers added for torch's module catalogue (issue 11): every name in those files' __all__
for _m in (_activation, _batchnorm, _conv, _flatten, _instancenorm, _linear, _loss, _normalization, _padding,
           _pooling, _rnn, _transformer):
    for _name in _m.__all__:
        if _name not in __all__:
            globals()[_name] = getattr(_m, _name)
            __all__.append(_name)
del _m, _name


from ..._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn.modules")
