"""torch.utils: `checkpoint` (here), `data` (shim-nn's), `hooks`. Submodules load on first access."""
from __future__ import annotations

import importlib

from .._unsupported import UnsupportedAPI

_SUBMODULES = ("checkpoint", "data", "hooks", "_pytree", "cpp_extension", "dlpack", "benchmark", "tensorboard")


def __getattr__(name):
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                raise UnsupportedAPI(f"torch.utils.{name} is not implemented by the shim") from None
            raise
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedAPI(f"torch.utils.{name} is not implemented by the shim")
