"""`torch.optim.SGD` for the facade (torch's single-tensor algorithm; see `_functional.sgd_step`).

Written here because MindSpore's ``mint.optim.SGD`` leaves parameters unchanged on CPU
(notes/mindspore-cpu.md).
"""
from __future__ import annotations

# workaround "mint.optim.SGD" (shim/torch/_workarounds.py)
from ._functional import _torch, sgd_step
from .optimizer import Optimizer, required

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (``momentum_buffer`` state, created from the first
    gradient), dampening, Nesterov momentum, L2 weight decay and ``maximize``, as torch's.

    Raises ValueError for negative lr/momentum/weight_decay or Nesterov without momentum / with dampening;
    NotImplementedError for ``fused=True`` or ``differentiable=True``.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None) -> None:
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        for flag, name in ((fused, "fused"), (differentiable, "differentiable")):
            if flag:
                raise NotImplementedError(f"torch.optim.SGD({name}=True) is not supported by the MindSpore facade")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    @Optimizer._with_hooks
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` when given."""
        torch = _torch()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    momentum = group["momentum"]
                    buf = self.state[p].get("momentum_buffer") if momentum != 0 else None
                    buf = sgd_step(p, p.grad, buf, lr=group["lr"], momentum=group["momentum"],
                                   dampening=group["dampening"], weight_decay=group["weight_decay"],
                                   nesterov=group["nesterov"], maximize=group["maximize"], first=buf is None)
                    if momentum != 0:
                        self.state[p]["momentum_buffer"] = buf
        return loss
