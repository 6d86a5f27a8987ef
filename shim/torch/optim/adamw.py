"""`torch.optim.AdamW` for the facade: Adam with decoupled weight decay (``param *= 1 - lr * weight_decay``
before
the Adam update), default ``weight_decay=1e-2``, as torch's AdamW (a subclass of Adam in torch 2.x)."""
from __future__ import annotations

# workaround "mint.optim.AdamW" (shim/torch/_workarounds.py)
from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter) with torch's exact update rule; see `Adam` for arguments and errors."""

    _decoupled_default = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
