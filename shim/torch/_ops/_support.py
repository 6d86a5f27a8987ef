"""How a facade op is computed, as a marker the coverage report reads (shim/API.md's `kind` column).

`@emulated("how")` marks a function computed from other MindSpore kernels (because the CPU target lacks the
direct one, or because the direct one is not accurate enough to match torch) or by a documented approximation.
Unmarked facade functions are `native` (one MindSpore kernel of the same meaning, plus dtype handling).
"""
from __future__ import annotations


def emulated(how: str):
    """Decorator: record on `fn` (as `fn.__shim_emulated__`) how the facade computes it; returns `fn`."""
    def mark(fn):
        fn.__shim_emulated__ = how
        return fn
    return mark
