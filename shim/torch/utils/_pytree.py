"""torch.utils._pytree: flatten/unflatten nested lists, tuples, namedtuples and dicts (the container kinds
torch registers by default); everything else is a leaf."""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["TreeSpec", "LeafSpec", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure",
           "register_pytree_node"]

# type -> (flatten_fn: x -> (children, context), unflatten_fn: (children, context) -> x), as torch's registry.
_REGISTRY: dict = {}


def register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None, to_dumpable_context=None,
                         from_dumpable_context=None, flatten_with_keys_fn=None) -> None:
    """Register container type ``cls``: ``flatten_fn(x) -> (children, context)`` and
    ``unflatten_fn(children, context) -> x``. Exact type match, as torch's. The serialization and key-path
    arguments are accepted and unused (the shim has no pytree serialization or key paths).
    ``ValueError`` if ``cls`` is already registered."""
    if cls in _REGISTRY:
        raise ValueError(f"{cls} is already registered as pytree node.")
    _REGISTRY[cls] = (flatten_fn, unflatten_fn)


def _dict_flatten_with_keys(d):
    """(key-path, value) pairs of a dict and its keys (the helper torch's registry entries name)."""
    keys = list(d.keys())
    return [(k, d[k]) for k in keys], keys


class TreeSpec:
    """Structure of a pytree: container kind, its context (keys / namedtuple type) and child specs."""

    def __init__(self, kind, context, children):
        self.kind, self.context, self.children_specs = kind, context, children
        self.num_leaves = sum(c.num_leaves for c in children)

    def __eq__(self, other):
        return (isinstance(other, TreeSpec) and (self.kind, self.context, self.children_specs) ==
                (other.kind, other.context, other.children_specs))

    def __repr__(self):
        return f"TreeSpec({self.kind}, {self.context!r}, {self.children_specs!r})"


class LeafSpec(TreeSpec):
    def __init__(self):
        self.kind, self.context, self.children_specs, self.num_leaves = "leaf", None, [], 1

    def __repr__(self):
        return "*"


def _children(x):
    reg = _REGISTRY.get(type(x))
    if reg is not None:
        kids, ctx = reg[0](x)
        return type(x), ctx, list(kids)
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return "namedtuple", type(x), list(x)
    if isinstance(x, (list, tuple)):
        return type(x).__name__ if type(x) in (list, tuple) else None, None, list(x)
    if isinstance(x, dict):
        keys = list(x.keys())
        return "dict", keys, [x[k] for k in keys]
    return None, None, None


def tree_flatten(tree: Any):
    """(leaves, spec) with leaves in depth-first order."""
    kind, ctx, kids = _children(tree)
    if kind is None:
        return [tree], LeafSpec()
    leaves, specs = [], []
    for k in kids:
        l, s = tree_flatten(k)
        leaves.extend(l)
        specs.append(s)
    return leaves, TreeSpec(kind, ctx, specs)


def tree_unflatten(leaves, spec: TreeSpec):
    """Inverse of tree_flatten."""
    it = iter(leaves)

    def build(s):
        if isinstance(s, LeafSpec):
            return next(it)
        kids = [build(c) for c in s.children_specs]
        if s.kind == "list":
            return kids
        if s.kind == "tuple":
            return tuple(kids)
        if s.kind == "namedtuple":
            return s.context(*kids)
        if s.kind in _REGISTRY:
            return _REGISTRY[s.kind][1](kids, s.context)
        return dict(zip(s.context, kids))
    return build(spec)


def tree_leaves(tree):
    return tree_flatten(tree)[0]


def tree_structure(tree):
    return tree_flatten(tree)[1]


def tree_map(fn: Callable, tree: Any, *rests):
    leaves, spec = tree_flatten(tree)
    others = [tree_flatten(r)[0] for r in rests]
    return tree_unflatten([fn(*xs) for xs in zip(leaves, *others)], spec)
