"""``torch.distributed.checkpoint._nested_dict``: a nested state dict flattened to one level and back.

A leaf (see ``_traverse``) at path ``("a", "b", 0)`` gets the key ``"a.b.0"`` (path parts joined by ``.``, as
torch 2.13 does, so flattened keys match real torch's checkpoints); :data:`FLATTEN_MAPPING` maps each new key to
its path, which :func:`unflatten_state_dict` uses to rebuild the nesting.
"""
from __future__ import annotations

from ..._unsupported import module_getattr as _module_getattr
from ._traverse import set_element, traverse_state_dict

__all__ = ["flatten_state_dict", "unflatten_state_dict"]

FLATTEN_MAPPING = dict  # dict[str, OBJ_PATH]


def flatten_state_dict(state_dict: dict) -> tuple:
    """``(flat state dict, mapping)``. Raises ValueError when two paths flatten to the same key."""
    flat, mapping = {}, {}

    def visit(path, value):
        key = ".".join(map(str, path))
        if key in flat:
            raise ValueError(f"duplicated flatten key {key}")
        flat[key], mapping[key] = value, path

    traverse_state_dict(state_dict, visit)
    return flat, mapping


def unflatten_state_dict(state_dict: dict, mapping: dict) -> dict:
    """The nested state dict that `state_dict` (flat) and `mapping` (from :func:`flatten_state_dict`) describe."""
    nested: dict = {}
    for key, value in state_dict.items():
        set_element(nested, mapping[key], value)
    return nested


__getattr__ = _module_getattr("torch.distributed.checkpoint._nested_dict")
