"""torch._C: the few private names third-party code reaches (megatron-core annotates with
`torch._C._distributed_c10d.ProcessGroup`). Names resolve to the facade's public objects; anything else raises
UnsupportedAPI naming it."""
from __future__ import annotations

import importlib
import types

from .._unsupported import UnsupportedAPI

# torch._C.<module>.<name> -> (facade module, attribute)
_ALIASES = {
    "_distributed_c10d": {
        "ProcessGroup": ("shim.torch.distributed", "ProcessGroup"),
        "ReduceOp": ("shim.torch.distributed", "ReduceOp"),
        "Work": ("shim.torch.distributed", "Work"),
        "Backend": ("shim.torch.distributed", "Backend"),
        "Store": ("shim.torch.distributed", "Store"),
    },
}


class _AliasModule(types.ModuleType):
    """A torch._C sub-namespace whose attributes come from facade modules on first access."""

    def __init__(self, name, table):
        super().__init__(f"torch._C.{name}")
        self._table = table

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._table:
            mod, name = self._table[attr]
            value = getattr(importlib.import_module(mod), name)
            setattr(self, attr, value)
            return value
        raise UnsupportedAPI(f"{self.__name__}.{attr} is not implemented by the shim")


_distributed_c10d = _AliasModule("_distributed_c10d", _ALIASES["_distributed_c10d"])


def _get_tracing_state():
    """No TorchScript tracing in the shim."""
    return None


def _log_api_usage_once(*args, **kwargs):
    """Usage logging hook: nothing to log to."""
    return None


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedAPI(f"torch._C.{name} is not implemented by the shim")
