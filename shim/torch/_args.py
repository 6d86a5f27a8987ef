"""Argument normalisation shared by the facade's functions and Tensor methods (torch's calling conventions).

Pure Python on ints, tuples and dtypes: nothing here touches MindSpore. Re-exported by `_tensor.py` under the
`_`-prefixed names the op families import (`_shape_arg`, `_norm_dim`, `_dtype_arg`, `_infer_shape`)."""
from __future__ import annotations

import builtins
import functools
import inspect

from . import _dtype as D

__all__ = ["shape_arg", "norm_dim", "dtype_arg", "infer_shape", "NUMPY_KEYWORDS", "with_numpy_keywords"]

# torch's argument parser accepts NumPy's keyword names for these parameters in every function and Tensor method
# that has them (torch/csrc/utils/python_arg_parser.cpp, `numpy_compatibility_arg_names`):
# `t.sum(axis=1)`, `torch.mean(t, axis=0, keepdims=True)`, `torch.add(x1=a, x2=b)`. NumPy name -> torch name.
NUMPY_KEYWORDS = {"axis": "dim", "keepdims": "keepdim", "x": "input", "a": "input", "x1": "input", "x2": "other"}


def shape_arg(args, name="size"):
    """Accept f(2, 3), f((2, 3)), f([2, 3]), f(torch.Size([2, 3])) -> tuple of ints.

    One-element tensors count as ints (through `Tensor.__int__`, i.e. `int(t.item())`). Raises TypeError naming
    `name` for anything else."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    try:
        return tuple(int(a) for a in args)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of ints, got {args!r}") from None


def norm_dim(dim, ndim, name="dim"):
    """`dim` as a non-negative index into `ndim` dimensions (0-D tensors accept -1 and 0, as torch); IndexError
    with torch's message when out of range."""
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def dtype_arg(d):
    """A torch dtype from a dtype, None (kept), Python `float`/`int`/`bool` (torch's mapping: the default float
    dtype, int64, bool) or a name ('float32', 'torch.float32', aliases such as 'float'). TypeError otherwise;
    NotImplementedError for the float8 dtypes (names only in the shim, see ``_dtype.FLOAT8``)."""
    if d is None or isinstance(d, D.dtype):
        if d is not None and d.name in D.FLOAT8:
            raise NotImplementedError(f"tensors of dtype torch.{d.name} are not supported by the shim")
        return d
    if d is builtins.float:
        return D.get_default_dtype()
    if d is builtins.int:
        return D.int64
    if d is builtins.bool:
        return D.bool
    if isinstance(d, str):
        name = d[len("torch."):] if d.startswith("torch.") else d
        if name in D.DTYPES:
            return D.DTYPES[name]
        if name in D.ALIASES:
            return D.ALIASES[name]
    raise TypeError(f"expected a torch dtype, got {d!r}")


def infer_shape(shape, numel):
    """`shape` with a single -1 resolved for `numel` elements; RuntimeError (torch's messages) when more than one
    -1 is given or the sizes do not multiply to `numel`."""
    if -1 in shape:
        if shape.count(-1) > 1:
            raise RuntimeError("only one dimension can be inferred")
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def with_numpy_keywords(fn):
    """`fn`, accepting NumPy's keyword names (`NUMPY_KEYWORDS`) for its `dim` / `keepdim` / `input` / `other`
    parameters as torch does; `fn` itself when it has none of them (or takes **kwargs, or has no signature).

    The wrapper renames the keywords and calls `fn` (it keeps `fn` as `__wrapped__`). Giving both names of one
    parameter (`dim=1, axis=1`) raises TypeError, as torch (which rejects the second spelling)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn
    aliases = {alias: name for alias, name in NUMPY_KEYWORDS.items() if name in params and alias not in params}
    if not aliases:
        return fn
    names = frozenset(aliases)

    def numpy_keywords(*args, **kwargs):
        if kwargs and not names.isdisjoint(kwargs):
            for alias in names.intersection(kwargs):
                name = aliases[alias]
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}() got an unexpected keyword argument '{alias}'")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    functools.update_wrapper(numpy_keywords, fn)
    return numpy_keywords
