"""``torch.distributed.checkpoint._traverse``: walking a nested state dict to its leaves (torch 2.13's rule, which
fixes the flattened key names a checkpoint stores, so it must match torch for checkpoints to interchange).

The rule: a Mapping is always entered (its keys become ``str``); a list is entered only when some element, at any
depth through lists, is a tensor or a Mapping; a tuple reached that way is entered element by element; every other
value is a leaf. A path (:data:`OBJ_PATH`) is the tuple of keys (``str``) and list positions (``int``) to a leaf.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["traverse_state_dict", "set_element", "get_element"]

OBJ_PATH = tuple  # tuple[str | int, ...]
STATE_DICT_ITEM = object


def _is_tensor(value: Any) -> bool:
    from ... import Tensor  # the facade's torch.Tensor, at call time (this package loads before it)

    return isinstance(value, Tensor)


def _keep_visiting_tensors(value: Any) -> bool:
    return _is_tensor(value)


def traverse_state_dict(state_dict: dict, visitor: Callable[[tuple, Any], None],
                        keep_traversing: Callable[[Any], bool] = _keep_visiting_tensors) -> None:
    """Call ``visitor(path, leaf)`` for every leaf of `state_dict` (see the module docstring)."""

    def terminal(value: Any) -> bool:
        if isinstance(value, Mapping):
            return False
        if not isinstance(value, list):
            return True
        for entry in value:
            if isinstance(entry, (Mapping, list)) and not terminal(entry):
                return False
            if keep_traversing is not None and keep_traversing(entry):
                return False
        return True

    def walk(path: tuple, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(path + (str(k),), v)
        elif terminal(value):
            visitor(path, value)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(path + (i,), v)

    for key, value in state_dict.items():
        walk((str(key),), value)


def set_element(root: dict, path: tuple, value: Any) -> None:
    """Put `value` at `path` in `root`, creating the dicts and lists (padded with None) on the way."""
    cur = root
    for i in range(1, len(path)):
        key, nxt = path[i - 1], path[i]
        empty = {} if isinstance(nxt, str) else []
        if isinstance(cur, dict):
            cur = cur.setdefault(key, empty)
        else:
            while len(cur) <= key:
                cur.append(None)
            if cur[key] is None:
                cur[key] = empty
            cur = cur[key]
    last = path[-1]
    if isinstance(last, int):
        while len(cur) <= last:
            cur.append(None)
    cur[last] = value


def get_element(root: dict, path: tuple, default: Any = None) -> Any:
    """The value at `path` in `root`, or `default` when the path does not exist."""
    cur: Any = root
    for part in path:
        if isinstance(part, str) and isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(part, int) and isinstance(cur, list) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            return default
    return cur


__getattr__ = _module_getattr("torch.distributed.checkpoint._traverse")
