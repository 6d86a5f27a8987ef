"""``torch.library``: Python custom operators (``custom_op``, ``register_autograd``, ``register_fake``) and the
``torch.ops`` namespace they are reachable through (``torch.ops.<namespace>.<name>``).

A custom op here is its Python implementation: calling it runs ``fn`` on facade tensors. With
``register_autograd`` it runs as a ``torch.autograd.Function`` whose forward is ``fn`` (not recorded), whose
context is filled by ``setup_context(ctx, inputs, output)`` and whose backward is the registered formula, as
torch's custom ops differentiate. ``register_fake`` stores the fake (meta) implementation, which only torch's
tracing uses; the shim never traces, so it is kept but not called. ``schema`` strings are accepted and not
parsed (arguments are passed through positionally as given). Defining operators in C++ (``Library``,
``impl``, ``define``) raises ``NotImplementedError`` naming the API.
"""
from __future__ import annotations

from typing import Callable, Optional

from ._unsupported import module_getattr as _module_getattr

__all__ = ["custom_op", "register_autograd", "register_fake", "CustomOpDef", "ops"]

_OPS: dict[str, "CustomOpDef"] = {}


class CustomOpDef:
    """A registered custom operator ``namespace::name``; call it like a function."""

    def __init__(self, qualname: str, fn: Callable):
        if not isinstance(qualname, str) or qualname.count("::") != 1:
            raise ValueError(f"torch.library.custom_op: name must be 'namespace::name', got {qualname!r}")
        self._qualname = qualname
        self._fn = fn
        self._fake: Optional[Callable] = None
        self._backward: Optional[Callable] = None
        self._setup_context: Optional[Callable] = None
        self._function = None

    def __call__(self, *args, **kwargs):
        if self._backward is None:
            return self._fn(*args, **kwargs)
        if kwargs:
            raise NotImplementedError(f"torch.library custom op {self._qualname} with autograd: keyword "
                                      "arguments are not supported by the shim; pass them positionally")
        return self._autograd_function().apply(*args)

    def _autograd_function(self):
        if self._function is None:
            from .autograd.function import Function
            op = self

            class _CustomOp(Function):
                @staticmethod
                def forward(ctx, *args):
                    out = op._fn(*args)
                    if op._setup_context is not None:
                        op._setup_context(ctx, args, out)
                    return out

                @staticmethod
                def backward(ctx, *grads):
                    return op._backward(ctx, *grads)

            _CustomOp.__name__ = self._qualname.replace("::", "_")
            self._function = _CustomOp
        return self._function

    def register_fake(self, fn: Callable) -> Callable:
        self._fake = fn
        return fn

    def register_autograd(self, backward: Callable, *, setup_context: Optional[Callable] = None) -> None:
        self._backward = backward
        self._setup_context = setup_context
        self._function = None

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"


def custom_op(name: str, fn: Optional[Callable] = None, /, *, mutates_args=(), device_types=None,
              schema: Optional[str] = None, tags=None):
    """Register ``fn`` as custom op ``name`` ("namespace::name"); without ``fn``, a decorator. Returns the
    :class:`CustomOpDef`. ``ValueError`` for a malformed or already-registered name."""
    def register(f: Callable) -> CustomOpDef:
        if name in _OPS:
            raise ValueError(f"torch.library.custom_op: {name!r} is already registered")
        op = CustomOpDef(name, f)
        _OPS[name] = op
        return op
    return register if fn is None else register(fn)


def _lookup(op, api: str) -> CustomOpDef:
    if isinstance(op, CustomOpDef):
        return op
    if isinstance(op, str) and op in _OPS:
        return _OPS[op]
    raise NotImplementedError(f"{api}({op!r}): only operators made with torch.library.custom_op are supported "
                              "by the shim")


def register_fake(op, func: Optional[Callable] = None, /, *, lib=None, _stacklevel: int = 1):
    """Store the fake implementation of custom op ``op`` (decorator without ``func``); see the module doc."""
    target = _lookup(op, "torch.library.register_fake")
    return target.register_fake if func is None else target.register_fake(func)


def register_autograd(op, backward: Callable, /, *, setup_context: Optional[Callable] = None, lib=None) -> None:
    """Give custom op ``op`` a backward formula (see the module doc)."""
    _lookup(op, "torch.library.register_autograd").register_autograd(backward, setup_context=setup_context)


class _Namespace:
    def __init__(self, ns: str):
        self._ns = ns

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        op = _OPS.get(f"{self._ns}::{name}")
        if op is None and self._ns == "aten":
            # a cycle inside the facade core: nn._aten composes torch.nn.functional, loaded after library
            from .nn._aten import _ATEN_OPS
            op = _ATEN_OPS.get(name)
        if op is None:
            from ._unsupported import UnsupportedAPI
            raise UnsupportedAPI(f"torch.ops.{self._ns}.{name} is not implemented by the shim (only operators "
                                 "registered with torch.library.custom_op and the aten operators listed in "
                                 "shim/torch/nn/_aten.py are)")
        return op


class _Ops:
    """``torch.ops``: ``torch.ops.<namespace>.<name>`` is the custom op registered under that name."""

    def __getattr__(self, ns: str):
        if ns.startswith("__"):
            raise AttributeError(ns)
        return _Namespace(ns)


ops = _Ops()

__getattr__ = _module_getattr("torch.library")
