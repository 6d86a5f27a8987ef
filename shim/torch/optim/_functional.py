"""Per-parameter update rules of Adam / AdamW / SGD, written as torch's single-tensor (CPU) algorithms.

The arithmetic follows torch's order of operations so that trajectories match real torch to float32 rounding:
Adam(W) ``exp_avg.lerp_(grad, 1 - beta1)``, ``exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)``,
``denom = (exp_avg_sq.sqrt() / sqrt(1 - beta2**step)).add_(eps)``,
``param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))``; AdamW first decays ``param.mul_(1 -
lr*wd)``,
Adam adds ``wd * param`` to the gradient. Callers run these under ``no_grad``.
"""
from __future__ import annotations


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, *, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
              decoupled_weight_decay: bool):
    """One Adam/AdamW update of ``param``, ``exp_avg`` and ``exp_avg_sq`` (in place) given the gradient;
    ``step`` is the 1-based step count after incrementing. Returns the new ``max_exp_avg_sq`` (amsgrad; a new
    tensor, torch writes it in place) or None."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    if amsgrad:
        max_exp_avg_sq = _torch().maximum(max_exp_avg_sq, exp_avg_sq)
        denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    else:
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)
    return max_exp_avg_sq


def adam_step_fused(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, *, lr: float, beta1: float,
                    beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
                    decoupled_weight_decay: bool):
    """`adam_step` computed on the MindSpore storage of base (non-view) tensors, writing each tensor once.

    Same formulas and order as torch (lerp as ``m + w (g - m)``, ``v β2 + (1-β2) g²``,
    ``sqrt(v) / sqrt(1-β2^t) + eps``, decay then ``p - lr/(1-β1^t) · m / denom``); only the intermediate
    roundings of the in-place chain are skipped, so results agree with torch to float32 rounding. The
    parameter
    receives a single in-place write (MindSpore needs the leaf's tensor object kept), the moments are rebound.
    Returns the new ``max_exp_avg_sq`` (amsgrad) or None.
    """
    from .._tensor import unwrap, _new
    from mindspore import mint
    torch = _torch()
    g = unwrap(grad)
    if maximize:
        g = -g
    p = unwrap(param)
    if weight_decay != 0 and not decoupled_weight_decay:
        g = g + p * weight_decay
    m = unwrap(exp_avg)
    v = unwrap(exp_avg_sq)
    m = m + (g - m) * (1 - beta1)
    v = v * beta2 + g * g * (1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    new_max = None
    if amsgrad:
        vmax = mint.maximum(unwrap(max_exp_avg_sq), v)
        new_max = _new(vmax, max_exp_avg_sq._dt, max_exp_avg_sq._dev)
        denom = mint.sqrt(vmax) / bias_correction2_sqrt + eps
    else:
        denom = mint.sqrt(v) / bias_correction2_sqrt + eps
    if weight_decay != 0 and decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    p = p + (m / denom) * (-lr / bias_correction1)
    exp_avg.copy_(_new(m, exp_avg._dt if not exp_avg._dt.emulated else torch.float32, exp_avg._dev))
    exp_avg_sq.copy_(_new(v, exp_avg_sq._dt if not exp_avg_sq._dt.emulated else torch.float32, exp_avg_sq._dev))
    param.copy_(_new(p, param._dt if not param._dt.emulated else torch.float32, param._dev))
    return new_max


def fusable(*tensors) -> bool:
    """True when every tensor is a facade base tensor (not a view), so `adam_step_fused` may write it."""
    return all(t is None or getattr(t, "_vbase", 0) is None for t in tensors)


def sgd_step(param, grad, buf, *, lr: float, momentum: float, dampening: float, weight_decay: float,
             nesterov: bool, maximize: bool, first: bool):
    """One SGD update of ``param`` (in place). ``buf`` is the momentum buffer (None when momentum is 0 or on
    the
    first step); returns the (possibly new) buffer."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    if momentum != 0:
        if buf is None:
            buf = _torch().zeros_like(grad).add_(grad)  # a detached copy of the gradient (torch.clone(grad))
        else:
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(buf, alpha=momentum) if nesterov else buf
    param.add_(grad, alpha=-lr)
    return buf


def _torch():
    import importlib
    return importlib.import_module(__name__.rsplit(".", 2)[0])
