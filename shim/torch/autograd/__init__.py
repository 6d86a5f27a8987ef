"""torch.autograd on MindSpore PyNative's reverse-mode engine (`mindspore._c_expression.run_backward`).

backward() accumulates into leaves' .grad (torch semantics: a second backward adds); grad() returns the
gradients without touching .grad. Grad modes live in grad_mode, graph nodes/hooks in graph, custom functions
in function. `torch.autograd.functional`, forward-mode AD and anomaly detection are not provided
(NotImplementedError names them).
"""
from __future__ import annotations

from .grad_mode import (no_grad, enable_grad, set_grad_enabled, inference_mode, is_grad_enabled,  # noqa: F401
                        is_inference_mode_enabled)
from . import grad_mode, graph, function  # noqa: F401
from .function import Function, FunctionCtx, once_differentiable  # noqa: F401

__all__ = ["backward", "grad", "Function", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "Variable", "graph", "function", "grad_mode", "detect_anomaly", "set_detect_anomaly"]


def _run_backward():
    from mindspore._c_expression import run_backward
    return run_backward


def _as_tuple(x):
    if x is None:
        return ()
    from .._tensor import Tensor
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _make_grads(outputs, grad_outputs, who):
    from .._tensor import Tensor, unwrap, _cast_storage
    from mindspore import mint
    grads = []
    gos = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(gos) != len(outputs):
        raise RuntimeError(f"{who}: got {len(gos)} gradients for {len(outputs)} outputs")
    for i, (o, g) in enumerate(zip(outputs, gos)):
        om = unwrap(o)
        if not om._requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if o.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            grads.append(mint.ones(tuple(om.shape), dtype=om.dtype))
        else:
            if not isinstance(g, Tensor):
                from .._ops.creation import tensor
                g = tensor(g, dtype=o.dtype)
            gm = unwrap(g)
            if g._dt is not o._dt:
                gm = _cast_storage(gm, g._dt, o._dt)
            if tuple(gm.shape) != tuple(om.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(gm.shape)} and "
                                   f"output[{i}] has a shape of {tuple(om.shape)}.")
            grads.append(gm)
    return tuple(grads)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """torch.autograd.backward: accumulate gradients of `tensors` into the .grad of the graph's leaves
    (or only of `inputs`). RuntimeError when an output does not require grad or a non-scalar output has no
    gradient given."""
    from .._tensor import unwrap
    outputs = _as_tuple(tensors)
    if grad_variables is not None:
        grad_tensors = grad_variables
    grads = _make_grads(outputs, grad_tensors, "backward")
    keep = create_graph if retain_graph is None else bool(retain_graph)
    ins = tuple(unwrap(t) for t in _as_tuple(inputs))
    try:
        with enable_grad() if create_graph else _Null(), backward_pass(ins):
            _run_backward()(tuple(unwrap(o) for o in outputs), grads, keep, bool(create_graph), ins, True,
                            accumulate_grad=True)
    finally:
        grad_mode._sync()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: gradients of `outputs` w.r.t. `inputs` (a tuple), .grad untouched.

    allow_unused=False (default) raises RuntimeError when an input is not reached; with allow_unused=True
    its gradient is None (or zeros with materialize_grads=True)."""
    from .._tensor import unwrap, _new
    from mindspore import mint
    if is_grads_batched:
        raise NotImplementedError("torch.autograd.grad(is_grads_batched=True) is not supported by the shim")
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    grads = _make_grads(outs, grad_outputs, "grad")
    keep = create_graph if retain_graph is None else bool(retain_graph)
    ms_ins = tuple(unwrap(t) for t in ins)
    for i, m in enumerate(ms_ins):
        if not m._requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad")
    try:
        with backward_pass(ms_ins):
            res = _run_backward()(tuple(unwrap(o) for o in outs), grads, keep, bool(create_graph), ms_ins, True,
                                  accumulate_grad=False)
    finally:
        grad_mode._sync()
    if not isinstance(res, (tuple, list)):
        res = (res,)
    out = []
    for t, g in zip(ins, res):
        if g is None or _is_unreached(g, t):
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph. "
                                   "Set allow_unused=True if this is the desired behavior.")
            out.append(_new(mint.zeros(tuple(t.shape), dtype=t._dt.sms), t._dt, t._dev)
                       if materialize_grads else None)
        else:
            out.append(_new(g, t._dt, t._dev))
    return tuple(out)


def _is_unreached(g, t):
    # MindSpore returns a zero-size or scalar-zero placeholder for inputs the graph does not reach
    return tuple(g.shape) != tuple(unwrap_shape(t))


def unwrap_shape(t):
    return tuple(t.shape)


from .variable import Variable, backward_pass  # noqa: E402


def _is_checkpoint_valid() -> bool:
    """torch.autograd._is_checkpoint_valid: False inside a backward pass that computes only the gradients of
    given inputs (`grad`, `backward(inputs=...)`), True otherwise (see `Variable._execution_engine`)."""
    return Variable._execution_engine.is_checkpoint_valid()


class detect_anomaly:
    """Anomaly detection is not available on MindSpore's engine."""

    def __init__(self, check_nan=True):
        raise NotImplementedError("torch.autograd.detect_anomaly is not supported by the shim")


def set_detect_anomaly(mode, check_nan=True):
    if mode:
        raise NotImplementedError("torch.autograd.set_detect_anomaly(True) is not supported by the shim")


from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.autograd")
