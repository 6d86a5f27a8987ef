"""``torch.distributed.checkpoint.default_planner``: names only; the shim has no DCP (see the package doc)."""
from ..._unsupported import module_getattr as _module_getattr

__all__ = ["DefaultSavePlanner", "DefaultLoadPlanner"]


class _NotImplementedPlanner:
    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"torch.distributed.checkpoint.default_planner.{type(self).__name__} is not "
                                  f"implemented by the shim (no torch.distributed.checkpoint support)")


class DefaultSavePlanner(_NotImplementedPlanner):
    """torch's default DCP save planner: constructing it raises ``NotImplementedError``."""


class DefaultLoadPlanner(_NotImplementedPlanner):
    """torch's default DCP load planner: constructing it raises ``NotImplementedError``."""


__getattr__ = _module_getattr("torch.distributed.checkpoint.default_planner")
