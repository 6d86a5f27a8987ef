"""Full backward hooks of `Module` (``register_full_backward_hook`` / ``register_full_backward_pre_hook``).

As torch's ``BackwardHook``: the module's tensor inputs that require grad and its tensor outputs pass through
identity autograd functions (the facade's ``torch.autograd.Function`` over MindSpore's ``_Function``). When
backward reaches the outputs' identity, the pre-hooks see ``grad_output`` (and may replace it); when it
reaches
the inputs' identity, the hooks see ``(grad_input, grad_output)`` (and may replace ``grad_input``). When no
input
requires grad, the hooks run at the output stage with ``grad_input`` all None, as torch does.
"""
from __future__ import annotations

from ..._tensor import Tensor


def _identity_fn():
    from ...autograd.function import Function

    class _HookIdentity(Function):
        @staticmethod
        def forward(ctx, callback, *tensors):
            ctx.callback = callback
            outs = tuple(t.clone() for t in tensors)
            return outs if len(outs) != 1 else outs[0]

        @staticmethod
        def backward(ctx, *grads):
            new = ctx.callback(grads)
            if new is not None:
                grads = tuple(new)
            return (None,) + tuple(grads)

    return _HookIdentity


_IDENTITY = []


def _apply_identity(callback, tensors):
    if not _IDENTITY:
        _IDENTITY.append(_identity_fn())
    out = _IDENTITY[0].apply(callback, *tensors)
    return out if isinstance(out, tuple) else (out,)


class BackwardHook:
    """Wires one forward call of ``module`` to its full backward hooks and pre-hooks."""

    def __init__(self, module, hooks: list, pre_hooks: list) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_positions: list[int] = []

    def _on_input_grads(self, grads):
        full = [None] * self.n_inputs
        for pos, g in zip(self.input_positions, grads):
            full[pos] = g
        grad_input = tuple(full)
        for hook in self.hooks:
            res = hook(self.module, grad_input, self.grad_outputs)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_input):
                    raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(res)}, "
                                       f"but expected {len(grad_input)}")
                grad_input = res
        return tuple(grad_input[pos] for pos in self.input_positions)

    def _on_output_grads(self, grads):
        grad_output = tuple(grads)
        for hook in self.pre_hooks:
            res = hook(self.module, grad_output)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_output):
                    raise RuntimeError(f"Backward pre hook returned an invalid number of grad_output, got "
                                       f"{len(res)}, but expected {len(grad_output)}")
                grad_output = res
        self.grad_outputs = grad_output
        if not self.input_positions:
            import warnings
            warnings.warn("Full backward hook is firing when gradients are computed with respect to module outputs "
                          "since no inputs require gradients (as in torch).", UserWarning, stacklevel=2)
            grad_input = (None,) * self.n_inputs
            for hook in self.hooks:
                hook(self.module, grad_input, self.grad_outputs)
        return grad_output

    def setup_input_hook(self, args: tuple) -> tuple:
        """Route the tensor args that require grad through the input identity; returns the new args."""
        self.n_inputs = sum(1 for a in args if isinstance(a, Tensor))
        tensor_idx = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        chosen = [(k, i) for k, i in enumerate(tensor_idx) if args[i].requires_grad]
        self.input_positions = [k for k, _ in chosen]
        if not chosen or not self.hooks:
            if not self.hooks:
                self.input_positions = []
            return args
        new = _apply_identity(self._on_input_grads, [args[i] for _, i in chosen])
        out = list(args)
        for (_, i), t in zip(chosen, new):
            out[i] = t
        return tuple(out)

    def setup_output_hook(self, result):
        """Route the tensor outputs that require grad through the output identity; returns the new result."""
        single = isinstance(result, Tensor)
        items = [result] if single else (list(result) if isinstance(result, (tuple, list)) else None)
        if items is None:
            return result
        idx = [i for i, r in enumerate(items) if isinstance(r, Tensor) and r.requires_grad]
        if not idx:
            return result
        new = _apply_identity(self._on_output_grads, [items[i] for i in idx])
        for i, t in zip(idx, new):
            items[i] = t
        if single:
            return items[0]
        return type(result)(items) if isinstance(result, tuple) and not hasattr(result, "_fields") else \
            (type(result)(*items) if hasattr(result, "_fields") else items)
