"""`torch.nn.Parameter` and `torch.nn.Buffer` for the facade.

A `Parameter` is a facade Tensor (a subclass of ``shim.torch.Tensor``) that a `Module` registers as trainable.
``Parameter(data)`` takes over ``data``'s MindSpore storage through the core's ``Tensor._make_subclass``
(torch
shares storage the same way) and defaults to ``requires_grad=True``; ``repr`` starts with "Parameter
containing:".
"""
from __future__ import annotations

import functools

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "is_lazy"]


@functools.lru_cache(maxsize=None)
def _tensor_type():
    """The facade's Tensor class (imported lazily so this module loads before the core finishes)."""
    from .._tensor import Tensor
    return Tensor


class _ParameterMeta(type):
    """Make ``isinstance(x, Parameter)`` true for facade Tensors flagged ``_is_param`` (torch does the
    same)."""

    def __instancecheck__(cls, instance):
        if cls is Parameter:
            return type.__instancecheck__(cls, instance) or (
                isinstance(instance, _tensor_type()) and getattr(instance, "_is_param", False))
        return type.__instancecheck__(cls, instance)


def _make_parameter_class():
    Tensor = _tensor_type()
    meta = type(Tensor)
    if meta is not type:
        bases_meta = type("_ParameterMetaCombined", (_ParameterMeta, meta), {})
    else:
        bases_meta = _ParameterMeta

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            from .._ops.creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a torch.Tensor, got {type(data).__name__}")
        return Tensor._make_subclass(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach().clone(), self.requires_grad)
        for key, value in getattr(self, "__dict__", {}).items():
            if key not in result.__dict__:
                import copy
                result.__dict__[key] = copy.deepcopy(value, memo)
        memo[id(self)] = result
        return result

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self.detach(), self.requires_grad))

    namespace = {
        "__doc__": "A Tensor that is a module parameter (torch.nn.Parameter): ``Parameter(data, requires_grad=True)``"
                   " aliases ``data``'s storage; raises TypeError when ``data`` is not a Tensor.",
        "__new__": __new__,
        "__init__": __init__,
        "__deepcopy__": __deepcopy__,
        "__repr__": __repr__,
        "__reduce_ex__": __reduce_ex__,
        "_is_param": True,
        "__module__": __name__,
    }
    return bases_meta("Parameter", (Tensor,), namespace)


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)


Parameter = _make_parameter_class()


class Buffer:
    """Marker for `Module` attribute assignment: ``self.x = nn.Buffer(t, persistent=True)`` registers ``t``
    as a buffer (torch >= 2.5). The module stores the tensor itself, not the marker."""

    def __init__(self, data, *, persistent: bool = True) -> None:
        if not isinstance(data, _tensor_type()):
            raise TypeError(f"Buffer: data must be a torch.Tensor, got {type(data).__name__}")
        self.data = data
        self.persistent = persistent


class UninitializedParameter(Parameter):
    """A parameter without shape or values yet (torch.nn.parameter.UninitializedParameter), held by lazy modules
    until their first forward: ``materialize(shape, device=None, dtype=None)`` gives it storage of ``shape``
    (uninitialised values: the facade's empty is zero-filled) and turns it into a plain ``Parameter``, keeping
    its identity. Until then it holds an empty [0] tensor; reading its values is a mistake the module's first
    forward prevents."""

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        from .._ops.creation import empty
        return _tensor_type()._make_subclass(cls, empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the parameter storage of ``shape`` (``device``/``dtype`` default to its own) and make it a
        ``Parameter``."""
        from .._ops.creation import empty
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
        self.data = empty(shape, device=device if device is not None else self.device,
                          dtype=dtype if dtype is not None else self.dtype)
        self.__class__ = Parameter

    def __repr__(self):
        return "<UninitializedParameter>"

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, self.device, self.dtype)
        return memo[id(self)]


def is_lazy(param) -> bool:
    """True for a parameter that a lazy module has not materialised yet."""
    return isinstance(param, UninitializedParameter)
