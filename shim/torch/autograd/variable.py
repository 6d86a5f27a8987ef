"""torch.autograd.variable: the legacy `Variable` (an alias of Tensor for isinstance checks and construction)
and `Variable._execution_engine.run_backward`, the engine entry megatron-core's pipeline schedules call
directly (no shape check between output and gradient, unlike torch.autograd.backward), and
`Variable._execution_engine.is_checkpoint_valid()` (`torch.autograd._is_checkpoint_valid`)."""
from __future__ import annotations

import contextlib
import threading

__all__ = ["Variable"]

# Per thread, as torch's engine keeps it: False while a backward pass that computes only some gradients
# (torch.autograd.grad, or backward with `inputs`) runs; True otherwise (also outside any backward pass).
_CHECKPOINT = threading.local()


def _checkpoint_valid() -> bool:
    return getattr(_CHECKPOINT, "valid", True)


@contextlib.contextmanager
def backward_pass(inputs) -> None:
    """The scope of one backward pass: inside it `is_checkpoint_valid()` is False when `inputs` (the tensors
    whose gradients alone are computed) is non-empty or an enclosing pass already made it False, as in torch's
    engine (a reentrant checkpoint cannot recompute under `torch.autograd.grad`); restored on exit."""
    prev = _checkpoint_valid()
    _CHECKPOINT.valid = prev and not inputs
    try:
        yield
    finally:
        _CHECKPOINT.valid = prev


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
            with backward_pass(inputs):
                res = run_backward(tuple(unwrap(t) for t in tensors), tuple(ms_grads), bool(keep_graph),
                                   bool(create_graph), tuple(unwrap(i) for i in inputs),
                                   bool(allow_unreachable), accumulate_grad=bool(accumulate_grad))
        finally:
            # workaround "Function enable_grad" (shim/torch/_workarounds.py)
            grad_mode._sync()
        if accumulate_grad or not inputs:
            return None
        res = res if isinstance(res, (tuple, list)) else (res,)
        return tuple(None if g is None else _new(g, i._dt, i._dev) for g, i in zip(res, inputs))

    def is_checkpoint_valid(self) -> bool:
        """False while a backward pass that computes the gradients of given inputs only (`torch.autograd.grad`,
        `backward(inputs=...)`) runs in this thread, True otherwise: where a reentrant activation checkpoint's
        backward may recompute and run a nested backward pass (torch's engine flag)."""
        return _checkpoint_valid()


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
