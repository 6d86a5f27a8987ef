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
    """`adam_step` for float32 tensors in five MindSpore kernel launches instead of torch's ~eight passes.

    The second moment is computed as torch does, ``v·β2 + (1-β2)·g²`` (three ops, given to ``exp_avg_sq`` with
    the facade's `assign`); decoupled weight decay multiplies the parameter by ``1 - lr·wd`` first, as torch
    does. Then MindSpore's ``Adam`` CPU kernel updates ``exp_avg`` and the parameter in place in one pass:
    ``m ← m + (g - m)·(1-β1)`` (torch's ``lerp``, up to the rounding of ``1-β1`` in float32: relative 2e-7 of
    the increment) and ``p ← p - lr_t·m/(√v + eps_t)``. It is given ``β2 = 1`` (it leaves ``v`` as it is: its
    own ``(1-β2)`` rounded in float32 would be 1.3e-5 off for β2 = 0.999), beta powers 0 (so it takes
    ``lr_t`` as given) and the bias corrections folded in double precision here: ``lr_t = lr·√(1-β2^t)/(1-β1^t)``,
    ``eps_t = eps·√(1-β2^t)``, which makes its update equal torch's ``lr/(1-β1^t) · m/(√v/√(1-β2^t) + eps)``
    up to float32 rounding. With ``amsgrad`` the kernel's ``v`` input is the new running maximum.

    The kernel (measured, MindSpore 2.10 CPU, 4.85M elements) takes ~3-5 ms where ``AdamWeightDecay``, used
    before, took ~22 ms; it writes its inputs in place only when they are not MindSpore views, so on the CPU
    target it is handed the memory of ``param`` (a base, or a view onto one contiguous run of its base: megatron's
    distributed optimizer hands Adam shards of its parameters) and of ``exp_avg`` as tensors that are not views;
    elsewhere (and with decoupled decay, whose product is a new tensor) the parameter is updated in a copy that is
    then written back through the facade, as any in-place op on a view.

    Callers check `fusable` (float32 tensors, not emulated bfloat16; the moments facade base tensors, which
    the kernel writes in place). ``grad`` may be any tensor. Limitation: a gradient element with
    ``|g| > 1.8e19`` (``g²`` overflows float32) makes the kernel's ``(g² - v)·0`` term NaN in that element's
    parameter and second moment, where torch's update of the parameter is 0 and its moment inf. Returns the new
    ``max_exp_avg_sq`` (amsgrad) or None.
    """
    from mindspore import mint
    from .. import _aliasing
    from .._tensor import unwrap
    g = unwrap(grad)
    if maximize:
        g = mint.neg(g)
    pm = unwrap(param)
    if weight_decay != 0 and not decoupled_weight_decay:
        g = mint.add(g, pm, alpha=weight_decay)
    v = mint.add(mint.mul(unwrap(exp_avg_sq), beta2), mint.mul(g, g), alpha=1 - beta2)
    _aliasing.assign(exp_avg_sq, v)
    new_max = None
    if amsgrad:
        v = mint.maximum(unwrap(max_exp_avg_sq), v)
        _aliasing.assign(max_exp_avg_sq, v)
        new_max = max_exp_avg_sq
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    lr_t = lr * bias_correction2_sqrt / bias_correction1
    decayed = decoupled_weight_decay and weight_decay != 0
    # workaround "view input copy" (shim/torch/_workarounds.py)
    # The kernel writes its inputs in place unless they are MindSpore views (it then writes a copy): on the CPU
    # target it is given the parameter's and exp_avg's own memory as tensors that are not views
    # (`_aliasing.host_region`), which also spares a view parameter (megatron's shards) its copy and write-back.
    target = None if decayed else _aliasing.host_region(param)
    if decayed:
        pm = mint.mul(pm, 1 - lr * weight_decay)  # a new tensor: the kernel writes it, assigned below
    elif target is None:
        pm = _aliasing.clone(pm)  # written by the kernel, then assigned below
    m_target = _aliasing.host_region(exp_avg)
    zero = _scalar(0.0)
    _adam_kernel()(pm if target is None else target, exp_avg._m if m_target is None else m_target, v, zero, zero,
                   _scalar(lr_t), _scalar(beta1), _scalar(1.0), _scalar(eps * bias_correction2_sqrt), g)
    exp_avg._ver += 1
    if target is not None:
        (param if param._vbase is None else param._vbase)._ver += 1
    else:
        _aliasing.assign(param, pm)
    return new_max


_KERNEL = []


def _adam_kernel():
    """MindSpore's ``Adam`` primitive (one instance; it writes its first three inputs in place)."""
    if not _KERNEL:
        from mindspore import ops
        _KERNEL.append(ops.Adam())
    return _KERNEL[0]


def _scalar(x: float):
    import mindspore as ms
    return ms.Tensor(x, ms.float32)


def fusable(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None) -> bool:
    """True when `adam_step_fused` may update these: every tensor float32 (not emulated bfloat16) and the
    moments facade base tensors (not views), whose storage the kernel may write in place."""
    f32 = _torch().float32
    for t in (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq):
        if t is not None and t._dt is not f32:
            return False
    return all(t is None or t._vbase is None for t in (exp_avg, exp_avg_sq, max_exp_avg_sq))


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
