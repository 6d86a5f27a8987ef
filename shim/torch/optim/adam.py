"""`torch.optim.Adam` for the facade (torch's single-tensor algorithm; see `_functional.adam_step`)."""
from __future__ import annotations

from ._functional import _torch, adam_step, adam_step_fused, fusable
from .optimizer import Optimizer

__all__ = ["Adam"]


def _check_hparams(lr, betas, eps, weight_decay) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's update rule and state (``step`` float32 scalar tensor, ``exp_avg``,
    ``exp_avg_sq``, ``max_exp_avg_sq`` with amsgrad). ``weight_decay`` is L2 added to the gradient unless
    ``decoupled_weight_decay=True`` (then it is AdamW).
    ``foreach``/``fused``/``capturable``/``differentiable``
    are accepted for compatibility. ``fused=True`` (torch: one fused kernel for the whole update, the same
    update rule) runs the facade's one implementation of that rule; as in torch it cannot be combined with
    ``foreach=True`` (RuntimeError). ``capturable=True`` and ``differentiable=True`` raise
    NotImplementedError. Tensor ``lr`` is not supported. Raises ValueError for out-of-range hyper-parameters.
    """

    _decoupled_default = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused=None, decoupled_weight_decay: bool | None = None) -> None:
        if not isinstance(lr, (int, float)):
            raise NotImplementedError(f"{type(self).__name__}: tensor lr is not supported by the MindSpore facade")
        _check_hparams(lr, betas, eps, weight_decay)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for flag, name in ((capturable, "capturable"), (differentiable, "differentiable")):
            if flag:
                raise NotImplementedError(f"torch.optim.{type(self).__name__}({name}=True) is not supported by the "
                                          f"MindSpore facade; leave it unset")
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
            group.setdefault("decoupled_weight_decay", self._decoupled_default)

    def _next_step(self, p, step_t) -> int:
        """The step count after this update. ``state["step"]`` stays a float32 scalar tensor (torch's format);
        its value is cached on the host per tensor object so that no device read happens per parameter."""
        cached = self._step_cache.get(id(p))
        if cached is not None and cached[0] is step_t:
            return cached[1] + 1
        return int(step_t.item()) + 1

    @property
    def _step_cache(self) -> dict:
        cache = self.__dict__.get("_step_cache_dict")
        if cache is None:
            cache = self.__dict__["_step_cache_dict"] = {}
        return cache

    @Optimizer._with_hooks
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` (evaluated with grad
        enabled)
        when given. Raises RuntimeError for sparse gradients."""
        torch = _torch()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad
                    if getattr(grad, "is_sparse", False):
                        raise RuntimeError("Adam does not support sparse gradients")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = self._scalar_state(0.0)
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        if group["amsgrad"]:
                            state["max_exp_avg_sq"] = torch.zeros_like(p)
                    step_t = state["step"]
                    step = self._next_step(p, step_t)
                    state["step"] = step_t = self._scalar_state(float(step))
                    self._step_cache[id(p)] = (step_t, step)
                    update = adam_step_fused if fusable(p, grad, state["exp_avg"], state["exp_avg_sq"],
                                                        state.get("max_exp_avg_sq")) else adam_step
                    new_max = update(p, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                                     step, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                                     weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                                     maximize=group["maximize"],
                                     decoupled_weight_decay=group["decoupled_weight_decay"])
                    if new_max is not None:
                        state["max_exp_avg_sq"] = new_max
        return loss
