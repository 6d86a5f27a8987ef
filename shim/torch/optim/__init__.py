"""`torch.optim` for the MindSpore facade: Optimizer base, Adam, AdamW, SGD (torch's exact update rules,
written
here and tested against real torch) and `lr_scheduler`."""
from .optimizer import Optimizer
from .adam import Adam
from .adamw import AdamW
from .sgd import SGD
from . import lr_scheduler

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "lr_scheduler"]


from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.optim")
