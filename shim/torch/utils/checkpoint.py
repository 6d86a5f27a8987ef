"""torch.utils.checkpoint: activation checkpointing by recomputation.

`checkpoint(fn, *args)` runs `fn` without recording, keeps only its inputs, and during backward re-runs `fn`
with recording (restoring the RNG state of the first run, so dropout masks repeat) and backpropagates through
the recomputed graph: gradients reach both the tensor inputs and any parameters `fn` uses, as in torch's
reentrant implementation. Both `use_reentrant=True` and `False` are served by this one implementation
(documented: the non-reentrant variant's early-stop and nested-checkpoint features are not separate here).
"""
from __future__ import annotations

import sys

from .. import _tensor as _T
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, no_grad

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointFunction", "detach_variable"]


def detach_variable(inputs):
    """Detached copies of a tuple of inputs that keep each tensor's requires_grad (torch's helper)."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: "
                           f"{type(inputs).__name__}")
    out = []
    for inp in inputs:
        if not isinstance(inp, _T.Tensor):
            out.append(inp)
            continue
        x = inp.detach()
        x.requires_grad_(inp.requires_grad)
        out.append(x)
    return tuple(out)


def _rng_states():
    from .. import random as _random
    cuda = sys.modules.get("shim.torch.cuda")
    cuda_state = None
    if cuda is not None and hasattr(cuda, "get_rng_state"):
        try:
            cuda_state = cuda.get_rng_state()
        except Exception:  # a cuda facade without device RNG: nothing to restore
            cuda_state = None
    return _random.get_rng_state(), cuda_state


def _set_rng_states(states):
    from .. import random as _random
    cpu, cuda_state = states
    _random.set_rng_state(cpu)
    cuda = sys.modules.get("shim.torch.cuda")
    if cuda_state is not None and cuda is not None:
        cuda.set_rng_state(cuda_state)


class CheckpointFunction(Function):
    """The recompute-in-backward autograd function behind `checkpoint`."""

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve = preserve_rng_state
        if preserve_rng_state:
            ctx.rng = _rng_states()
        ctx.tensor_idx = [i for i, a in enumerate(args) if isinstance(a, _T.Tensor)]
        ctx.inputs = list(args)
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_idx])
        with no_grad():
            out = run_function(*args)
        return out

    @staticmethod
    def backward(ctx, *grads):
        from ..autograd import backward as _backward
        inputs = list(ctx.inputs)
        saved = ctx.saved_tensors
        for j, i in enumerate(ctx.tensor_idx):
            t = saved[j].detach()
            t.requires_grad_(saved[j].requires_grad)
            inputs[i] = t
        current = None
        if ctx.preserve:
            current = _rng_states()
            _set_rng_states(ctx.rng)
        try:
            with enable_grad():
                outs = ctx.run_function(*inputs)
        finally:
            if current is not None:
                _set_rng_states(current)
        outs = outs if isinstance(outs, tuple) else (outs,)
        pairs = [(o, g) for o, g in zip(outs, grads)
                 if isinstance(o, _T.Tensor) and o.requires_grad and g is not None]
        if pairs:
            _backward([o for o, _ in pairs], [g for _, g in pairs])
        result = [None, None]
        for a in inputs:
            result.append(a.grad if isinstance(a, _T.Tensor) and a.requires_grad else None)
        return tuple(result)


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    """Run `function(*args, **kwargs)` keeping only its inputs; recompute it during backward.

    Returns what `function` returns. Raises NotImplementedError for `context_fn` (selective checkpointing)."""
    if context_fn is not None:
        raise NotImplementedError("torch.utils.checkpoint.checkpoint(context_fn=...) is not supported by the shim")
    if kwargs:
        fn = function

        def function(*a):  # noqa: F811 - bind keyword arguments
            return fn(*a, **kwargs)
    return CheckpointFunction.apply(function, preserve_rng_state, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Checkpoint a sequence of modules/functions in `segments` chunks (the last chunk runs normally)."""
    funcs = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = max(len(funcs) // segments, 1)

    def run(start, end):
        def f(x):
            for fn in funcs[start:end + 1]:
                x = fn(x)
            return x
        return f
    end = -1
    for start in range(0, len(funcs) - size, size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(funcs) - 1)(input)
