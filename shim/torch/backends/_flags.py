"""Settable flag objects shared by torch.backends.cuda / cudnn: known names only, as torch refuses others."""
from __future__ import annotations

import sys
import types


class FlagSet:
    """Attributes named in ``defaults`` (type-checked as bool/int like torch's setters); others raise
    AttributeError("Unknown attribute NAME") as torch's ``cuBLASModule`` does."""

    def __init__(self, owner: str, defaults: dict) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_values", dict(defaults))

    def __getattr__(self, name: str):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"Unknown attribute {name}")

    def __setattr__(self, name: str, value) -> None:
        values = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"Unknown attribute {name}")
        values[name] = _check(f"{self._owner}.{name}", value, values[name])


def _check(what: str, value, current):
    if isinstance(current, bool):
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise TypeError(f"{what} expects a bool, got {value!r}")
        return bool(value)
    if isinstance(current, int) and value is not None and not isinstance(value, int):
        raise TypeError(f"{what} expects an int or None, got {value!r}")
    return value


class FlagModule(types.ModuleType):
    """A module whose names in ``_flags`` are settable, checked attributes (torch's ``cudnn.benchmark = True``
    style): install with ``install(__name__, defaults)`` at the end of the module."""

    def __setattr__(self, name: str, value) -> None:
        flags = self.__dict__.get("_flags")
        if flags is not None and name in flags:
            flags[name] = _check(f"{self.__name__.replace('shim.', '', 1)}.{name}", value, flags[name])
            return
        super().__setattr__(name, value)

    def __getattr__(self, name: str):
        flags = self.__dict__.get("_flags")
        if flags is not None and name in flags:
            return flags[name]
        fallback = self.__dict__.get("_missing")
        if fallback is not None:
            return fallback(name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def install(module_name: str, defaults: dict, missing=None) -> None:
    """Turn ``sys.modules[module_name]`` into a FlagModule holding ``defaults``; ``missing(name)`` answers
    unknown attributes (e.g. the shim's UnsupportedAPI)."""
    mod = sys.modules[module_name]
    mod.__class__ = FlagModule
    mod.__dict__["_flags"] = dict(defaults)
    mod.__dict__["_missing"] = missing
