"""torch.autograd.variable: the legacy `Variable` (an alias of Tensor for isinstance checks and construction)
and `Variable._execution_engine.run_backward`, the engine entry megatron-core's pipeline schedules call
directly (no shape check between output and gradient, unlike torch.autograd.backward)."""
from __future__ import annotations

__all__ = ["Variable"]


class _ExecutionEngine:
    """The autograd engine object (`Variable._execution_engine`): MindSpore's run_backward underneath."""

    def run_backward(self, tensors, grad_tensors, keep_graph=False, create_graph=False, inputs=(),
                     allow_unreachable=True, accumulate_grad=True):
        """Backpropagate `grad_tensors` from `tensors`; accumulate into leaves' .grad (accumulate_grad=True)
        or return the gradients of `inputs`."""
        from mindspore._c_expression import run_backward
        from .._tensor import unwrap, _new, _cast_storage
        from . import grad_mode
        ms_grads = []
        for t, g in zip(tensors, grad_tensors):
            gm = unwrap(g)
            if g._dt is not t._dt:
                gm = _cast_storage(gm, g._dt, t._dt)
            ms_grads.append(gm)
        try:
            res = run_backward(tuple(unwrap(t) for t in tensors), tuple(ms_grads), bool(keep_graph),
                               bool(create_graph), tuple(unwrap(i) for i in inputs), bool(allow_unreachable),
                               accumulate_grad=bool(accumulate_grad))
        finally:
            # workaround "Function enable_grad" (shim/torch/_workarounds.py)
            grad_mode._sync()
        if accumulate_grad or not inputs:
            return None
        res = res if isinstance(res, (tuple, list)) else (res,)
        return tuple(None if g is None else _new(g, i._dt, i._dev) for g, i in zip(res, inputs))


class _VariableMeta(type):
    def __instancecheck__(cls, obj):
        from .._tensor import Tensor
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """Legacy `Variable(data, requires_grad=False)`: returns `data` (marked requires_grad when asked);
    `isinstance(t, Variable)` is True for every facade tensor."""

    _execution_engine = _ExecutionEngine()

    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if requires_grad:
            data.requires_grad_(True)
        return data
