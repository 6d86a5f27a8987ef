"""`torch.optim.Optimizer` base class for the facade (torch 2.x semantics and state_dict format).

``param_groups`` is a list of dicts (``"params"`` plus hyper-parameters, defaults filled in); ``state`` maps
each
parameter to its per-parameter dict. ``state_dict()`` returns torch's format::

    {"state": {index: {name: value, ...}, ...},
     "param_groups": [{hyper-parameters..., "params": [index, ...]}, ...]}

where indices count parameters across groups in order, so a state dict saved here loads into real torch's
optimizer of the same class and vice versa. ``load_state_dict`` casts floating state tensors to the
parameter's
dtype and device (``"step"`` is kept as saved), like torch. Step pre/post hooks are supported.
"""
from __future__ import annotations

import copy
import functools
from collections import OrderedDict, defaultdict
from itertools import chain
from typing import Any, Callable, Iterable, Union

__all__ = ["Optimizer", "required", "ParamsT"]

# What an optimizer's `params` argument accepts (torch's type alias of that name): tensors, parameter-group dicts,
# or (name, tensor) pairs. A typing alias only (megatron's optimizers annotate with it).
ParamsT = Union[Iterable["torch.Tensor"], Iterable[dict[str, Any]], Iterable[tuple[str, "torch.Tensor"]]]


class _RequiredParameter:
    """Singleton marking a hyper-parameter without a default (torch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _torch():
    import importlib
    return importlib.import_module(__name__.rsplit(".", 2)[0])


class _RemovableHandle:
    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks = hooks
        self.id = key

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


_hook_ids = [0]


def _next_hook_id() -> int:
    _hook_ids[0] += 1
    return _hook_ids[0]


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors (Parameters), of ``(name, Tensor)`` pairs, or of dicts each defining a
            param group (``{"params": [...], "lr": ...}``).
        defaults: default hyper-parameters for every group.

    Raises TypeError when ``params`` is a single Tensor or holds non-Tensors, ValueError for an empty list, a
    parameter appearing in two groups, or a required hyper-parameter missing from a group.
    """

    def __init__(self, params, defaults: dict) -> None:
        torch = _torch()
        self.defaults = defaults
        self._optimizer_step_pre_hooks: dict = OrderedDict()
        self._optimizer_step_post_hooks: dict = OrderedDict()
        if isinstance(params, torch.Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(dict(group))

    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}"
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    text += f"\n    {key}: {group[key]}"
        return text + "\n)"

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group (``{"params": ..., hyper-parameters}``); missing hyper-parameters take the defaults.

        Raises TypeError for a non-dict group or a non-Tensor / non-leaf parameter, ValueError when a required
        hyper-parameter is missing or a parameter already belongs to another group.
        """
        torch = _torch()
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, torch.Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        names = []
        plain = []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2:
                names.append(p[0])
                plain.append(p[1])
            else:
                plain.append(p)
        if names and len(names) != len(plain):
            raise ValueError("all optimizer params should be with/without names; some param names are missing")
        param_group["params"] = plain
        if names:
            param_group["param_names"] = names
        for p in plain:
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not self.defaults.get("differentiable", False) and not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        if len({id(p) for p in plain}) != len(plain):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", stacklevel=3)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
        if any(id(p) in seen for p in plain):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    # torch zeroes .grad in place; MindSpore may hold a non-contiguous gradient whose in-place
                    # write is lost on CPU, so a zero tensor is installed through the .grad setter instead.
                    # workaround "copy_ non-contiguous" (shim/torch/_workarounds.py)
                    p.grad = _zeros_like(p.grad.detach())

    # ------------------------------------------------------------------ step + hooks
    def step(self, closure: Callable | None = None):
        """Perform one optimization step (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__}.step")

    def register_step_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """``hook(optimizer, args, kwargs)`` before each step; may return new ``(args, kwargs)``."""
        key = _next_hook_id()
        self._optimizer_step_pre_hooks[key] = hook
        return _RemovableHandle(self._optimizer_step_pre_hooks, key)

    def register_step_post_hook(self, hook: Callable) -> _RemovableHandle:
        """``hook(optimizer, args, kwargs)`` after each step."""
        key = _next_hook_id()
        self._optimizer_step_post_hooks[key] = hook
        return _RemovableHandle(self._optimizer_step_post_hooks, key)

    @staticmethod
    def _with_hooks(step_fn):
        """Decorator for subclasses' ``step``: run step hooks around it without recording gradients."""

        @functools.wraps(step_fn)
        def wrapper(self, *args, **kwargs):
            for hook in list(self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"optimizer step pre-hook must return None or (args, kwargs), got {result}")
                    args, kwargs = result
            out = step_fn(self, *args, **kwargs)
            for hook in list(self._optimizer_step_post_hooks.values()):
                hook(self, args, kwargs)
            return out

        return wrapper

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict:
        """torch's format: ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Tensors in ``state`` are the live state tensors (as in torch: copy or save before mutating)."""
        index_of: dict[int, int] = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                if id(p) not in index_of:
                    index_of[id(p)] = start
                    start += 1
                ids.append(index_of[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {index_of[id(p)]: v for p, v in self.state.items() if id(p) in index_of}
        return {"state": state, "param_groups": groups}

    @staticmethod
    def _cast_state_value(param, value, key: str | None):
        torch = _torch()
        if key == "step":
            return value
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                return value.to(dtype=param.dtype, device=param.device)
            return value.to(device=param.device)
        if isinstance(value, dict):
            return {k: Optimizer._cast_state_value(param, v, k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(Optimizer._cast_state_value(param, v, key) for v in value)
        return value

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from `state_dict` (ours or real torch's, same optimizer class).

        Raises ValueError when the number of groups or of parameters per group differs.
        """
        state_dict = copy.copy(state_dict)
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, sg in zip(groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = self._cast_state_value(param, v, None)
            else:
                state[k] = v
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            new_groups.append(saved)
        self.__setstate__({"state": state, "param_groups": new_groups})

    # ------------------------------------------------------------------ helpers for subclasses
    @staticmethod
    def _scalar_state(value: float):
        """A float32 scalar tensor, the type torch uses for ``state["step"]`` on CPU."""
        torch = _torch()
        return torch.tensor(float(value), dtype=torch.float32)


def _zeros_like(t):
    from .._ops.creation import zeros_like
    return zeros_like(t)
