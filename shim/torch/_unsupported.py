"""The error every facade module raises for a torch API the shim does not provide.

`UnsupportedAPI` is a NotImplementedError (the project's rule: never a silent no-op) and also an
AttributeError, so that `hasattr(torch, "x")` probes in libraries still answer False instead of crashing.
Facade modules install `module_getattr("torch.x")` as their module-level `__getattr__`.
"""
from __future__ import annotations

__all__ = ["UnsupportedAPI", "module_getattr"]


class UnsupportedAPI(NotImplementedError, AttributeError):
    """Raised for torch APIs the shim does not implement; the message names the API."""


def module_getattr(torch_name: str, hint: str = ""):
    """A module-level __getattr__ raising UnsupportedAPI("torch_name.attr is not implemented by the shim")."""
    def __getattr__(name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module '{torch_name}' has no attribute '{name}'")
        raise UnsupportedAPI(f"{torch_name}.{name} is not implemented by the shim{hint}")
    return __getattr__
