"""torch.autograd.Function on MindSpore's `_Function` (C++ FunctionBase: records one graph node whose backward
calls ours).

Supported: `forward(ctx, *args)` + `backward(ctx, *grads)`, or `forward(*args)` + `setup_context(ctx, inputs,
output)`; `ctx.save_for_backward` / `saved_tensors`, `ctx.needs_input_grad`, `ctx.mark_non_differentiable`,
`ctx.set_materialize_grads`, arbitrary ctx attributes, non-tensor inputs and outputs. Facade dtypes (incl.
emulated bfloat16) survive the round trip through MindSpore's engine."""
from __future__ import annotations

import mindspore as ms
from mindspore.common._grad_function import _Function as _MsFunction

from .. import _tensor as _T
from .grad_mode import _sync

__all__ = ["Function", "FunctionCtx", "once_differentiable", "InplaceFunction"]


class FunctionCtx:
    """The `ctx` a facade Function sees. Attributes set on it live until backward."""

    def __init__(self, ms_ctx, needs_input_grad):
        self._ms_ctx = ms_ctx
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, _T.Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument {t!r} is not a tensor")
        self._saved = tensors

    @property
    def saved_tensors(self):
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self._ms_ctx.mark_non_differentiable(*[_T.unwrap(t) for t in tensors])

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = bool(value)
        self._ms_ctx.set_materialize_grads(bool(value))

    def mark_dirty(self, *tensors):
        raise NotImplementedError("torch.autograd.function.FunctionCtx.mark_dirty is not supported by the shim")


def _facade_args(ms_args, templates):
    out = []
    for a, tmpl in zip(ms_args, templates):
        if isinstance(tmpl, _T.Tensor):
            out.append(tmpl if a is None else _T._new(a, tmpl._dt, tmpl._dev))
        else:
            out.append(tmpl)
    return out


class _Bridge(_MsFunction):
    """MindSpore-side function: forward/backward convert to and from facade tensors."""

    @staticmethod
    def forward(ctx, *args):
        state = _Bridge._pending.pop()
        cls, templates = state["cls"], state["templates"]
        needs = tuple(bool(isinstance(t, _T.Tensor) and t.requires_grad) for t in templates)
        fctx = FunctionCtx(ctx, needs)
        ctx._facade_ctx = fctx
        fargs = _facade_args(args, templates)
        from .grad_mode import no_grad
        with no_grad():
            if state["setup"]:
                out = cls.forward(*fargs)
                cls.setup_context(fctx, tuple(fargs), out)
            else:
                out = cls.forward(fctx, *fargs)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        fctx._out_meta = tuple((o._dt, o._dev) if isinstance(o, _T.Tensor) else None for o in outs)
        state["single"] = single
        state["meta"] = fctx._out_meta
        ms_outs = tuple(_T.unwrap(o) if isinstance(o, _T.Tensor) else o for o in outs)
        # every tensor output must be a fresh MindSpore tensor (an input passed through would alias)
        ms_args_ids = {id(a) for a in args}
        ms_outs = tuple(_T._clone(o) if isinstance(o, ms.Tensor) and id(o) in ms_args_ids else o
                        for o in ms_outs)
        state["cls_backward"] = cls.backward
        fctx._templates = templates
        fctx._cls = cls
        return ms_outs[0] if single else ms_outs

    @staticmethod
    def backward(ctx, *grads):
        fctx = ctx._facade_ctx
        fgrads = []
        for g, meta in zip(grads, fctx._out_meta):
            if g is None or meta is None:
                fgrads.append(None if g is None or meta is None else g)
            else:
                fgrads.append(_T._new(g, meta[0], meta[1]))
        # workaround "Function enable_grad" (shim/torch/_workarounds.py): MindSpore runs this with enable_grad off
        # (torch runs a backward without recording too); the facade's cached flag is re-read before and after the
        # user's backward, so its ops and the hooks that run later in the pass take their non-recording paths
        # (tiled broadcasts; `add_` without the recording workaround). The pass's end re-reads it again.
        _sync()
        try:
            res = fctx._cls.backward(fctx, *fgrads)
        finally:
            _sync()
        if not isinstance(res, tuple):
            res = (res,)
        n_in = len(fctx._templates)
        if len(res) < n_in:
            raise RuntimeError(f"function {fctx._cls.__name__}Backward returned an incorrect number of gradients "
                               f"(expected {n_in}, got {len(res)})")
        out = []
        for g, tmpl in zip(res[:n_in], fctx._templates):
            if g is None or not isinstance(tmpl, _T.Tensor):
                out.append(None)
            else:
                m = _T.unwrap(g)
                if g._dt is not tmpl._dt:
                    m = _T._cast_storage(m, g._dt, tmpl._dt)
                out.append(m)
        return out[0] if len(out) == 1 else tuple(out)


_Bridge._pending = []


class _FunctionMeta(type):
    pass


class Function(metaclass=_FunctionMeta):
    """torch.autograd.Function: subclass with static forward/backward (and optionally setup_context), call
    `.apply(*args)`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            import inspect
            sig = inspect.signature(cls.forward)
            setup = cls.setup_context is not Function.setup_context
            bound = sig.bind(*((None,) if not setup else ()), *args, **kwargs)
            bound.apply_defaults()
            args = bound.args[0 if setup else 1:]
        setup = cls.setup_context is not Function.setup_context
        state = {"cls": cls, "templates": args, "setup": setup}
        _Bridge._pending.append(state)
        ms_args = tuple(_T.unwrap(a) if isinstance(a, _T.Tensor) else a for a in args)
        try:
            out = _Bridge.apply(*ms_args)
        finally:
            if _Bridge._pending and _Bridge._pending[-1] is state:
                _Bridge._pending.pop()
            # workaround "Function enable_grad" (shim/torch/_workarounds.py)
            _sync()
        meta = state.get("meta")
        if state.get("single", True):
            return _T._new(out, meta[0][0], meta[0][1]) if isinstance(out, ms.Tensor) else out
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(_T._new(o, m[0], m[1]) if isinstance(o, ms.Tensor) and m is not None else o
                     for o, m in zip(outs, meta))


InplaceFunction = Function


def once_differentiable(fn):
    """Marks a backward as not twice differentiable (the shim does not build double-backward graphs through
    custom functions anyway)."""
    return fn
