"""``torch.amp.GradScaler`` (and ``torch.cuda.amp.GradScaler``) on the shim, with torch's semantics.

Dynamic loss scaling for float16 training: ``scale(loss)`` multiplies by the current scale; ``unscale_(opt)``
divides the optimizer's gradients by it in place and records whether any is inf/NaN; ``step(opt)`` skips
``opt.step()`` when one was; ``update()`` multiplies the scale by ``backoff_factor`` after a skipped step, or by
``growth_factor`` after ``growth_interval`` consecutive unskipped steps.

Where the numbers live: torch keeps the scale and growth tracker in device tensors so that ``update`` needs no
host sync (``step`` syncs anyway to decide whether to skip). The shim keeps them on the host as a float32 scale
(``numpy.float32``; each update multiplies in float64 and rounds to float32, as torch's
``_amp_update_scale_`` CPU kernel does with its double factors) and an int tracker; the
per-step inf/NaN flag is read once in ``step`` (the same sync torch does). ``_scale`` and ``_growth_tracker``
are still offered as facade tensors for code that reads them. Gradients are multiplied by the float32
reciprocal of the scale computed in float64 (torch's rule), in the gradient's own dtype.
"""
from __future__ import annotations

import enum
import warnings
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

__all__ = ["GradScaler", "OptState"]


class OptState(enum.Enum):
    """Where an optimizer is within one scaler iteration."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_state() -> dict[str, Any]:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


def _facade():
    import shim.torch as facade

    return facade


class GradScaler:
    """torch.amp.GradScaler(device="cuda", init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True).

    Args:
        device: device type of the scaled tensors ("cuda"; "npu" is the same accelerator; "cpu").
        init_scale: first scale (float).
        growth_factor: multiplier after ``growth_interval`` unskipped steps (> 1).
        backoff_factor: multiplier after a step with inf/NaN gradients (< 1).
        growth_interval: number of consecutive unskipped steps between growths (int > 0).
        enabled: False makes every method a pass-through (``scale`` returns its input, ``step`` calls
            ``optimizer.step``); so does ``device="cuda"`` when ``torch.cuda.is_available()`` is False (warning).

    Raises:
        AssertionError: growth_factor <= 1 or backoff_factor >= 1 (torch raises the same).
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        device = "cuda" if str(device) == "npu" else str(device)
        self._device = device
        self._enabled = bool(enabled)
        if self._device == "cuda" and self._enabled and not _facade().cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                          stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = float(init_scale)
            self._scale_value: np.float32 | None = None  # None until the first scale() (torch's lazy init)
            self._growth_factor = float(growth_factor)
            self._backoff_factor = float(backoff_factor)
            self._growth_interval = int(growth_interval)
            self._init_growth_tracker = 0
            self._tracker: int | None = None
            self._per_optimizer_states: dict[int, dict[str, Any]] = defaultdict(_fresh_state)

    # -- state ----------------------------------------------------------------------------------------------
    def _lazy_init(self) -> None:
        if self._scale_value is None:
            self._scale_value = np.float32(self._init_scale)
            self._tracker = int(self._init_growth_tracker)

    def _check_initialised(self, funcname: str) -> None:
        if self._scale_value is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  This may indicate your script did not "
                                 f"use scaler.scale(loss or outputs) earlier in the iteration.")

    @property
    def _scale(self):
        """The current scale as a 0-dim float32 facade tensor on the scaler's device (None before ``scale``)."""
        if not self._enabled or self._scale_value is None:
            return None
        f = _facade()
        return f.tensor(float(self._scale_value), dtype=f.float32, device=self._device)

    @property
    def _growth_tracker(self):
        """The growth tracker as a 0-dim int32 facade tensor (None before ``scale``)."""
        if not self._enabled or self._tracker is None:
            return None
        f = _facade()
        return f.tensor(int(self._tracker), dtype=f.int32, device=self._device)

    # -- the four steps ------------------------------------------------------------------------------------
    def scale(self, outputs):
        """Multiply ``outputs`` (a tensor or a nested list/tuple/iterable of tensors) by the scale.

        Returns the same structure (a ``map`` object for other iterables, as torch). Output dtypes are kept:
        the scale is a 0-dim float32 tensor, which does not promote float16/bfloat16 tensors.
        Raises ValueError for anything else.
        """
        if not self._enabled:
            return outputs
        self._lazy_init()
        f = _facade()
        cache: dict[str, Any] = {}

        def apply(value):
            if isinstance(value, f.Tensor):
                key = str(value.device)
                if key not in cache:  # the scale made directly on the output's device (torch moves it there)
                    cache[key] = f.tensor(float(self._scale_value), dtype=f.float32, device=value.device)
                return value * cache[key]
            if isinstance(value, (list, tuple)):
                mapped = [apply(v) for v in value]
                return type(value)(mapped) if isinstance(value, list) else tuple(mapped)
            if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
                return map(apply, value)
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply(outputs)

    def _unscale_grads_(self, optimizer, inv_scale: float, allow_fp16: bool) -> dict[str, Any]:
        """Multiply every gradient of ``optimizer`` by ``inv_scale`` in place; return {device: found_inf tensor}."""
        f = _facade()
        flags: dict[str, list] = {}
        for group in optimizer.param_groups:
            for param in group["params"]:
                grad = getattr(param, "grad", None)
                if grad is None:
                    continue
                if (not allow_fp16) and grad.dtype == f.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                flags.setdefault(str(grad.device), []).append(f.isfinite(grad).all())  # checked before scaling
                if inv_scale != 1.0:
                    grad.mul_(inv_scale)
        found = {}
        for dev, per_grad in flags.items():  # one host read per device, as torch's step() does
            all_finite = bool(f.stack(per_grad).all().item())
            found[dev] = f.tensor(0.0 if all_finite else 1.0, dtype=f.float32, device=dev)
        return found

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place (once per iteration) and record inf/NaN.

        Raises RuntimeError when called twice before ``update`` or after ``step`` (torch's messages).
        """
        if not self._enabled:
            return
        self._check_initialised("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = float(np.float32(1.0 / np.float64(self._scale_value)))
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv_scale, allow_fp16=False)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not done yet) and call ``optimizer.step(*args, **kwargs)`` unless a gradient was inf/NaN.

        Returns what ``optimizer.step`` returned, or None for a skipped step.
        Raises RuntimeError for a ``closure`` keyword or a second ``step`` before ``update``.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_initialised("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            raise NotImplementedError("GradScaler.step with an optimizer that sets _step_supports_amp_scaling "
                                      "(fused/capturable scaling) is not supported by the shim")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if len(state["found_inf_per_device"]) == 0:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        skipped = any(float(v.item()) != 0.0 for v in state["found_inf_per_device"].values())
        retval = None if skipped else optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: float | Any = None) -> None:
        """Set the scale for the next iteration (torch's ``_amp_update_scale_`` rule) or to ``new_scale``.

        ``new_scale``: a float, or a one-element float tensor without ``requires_grad`` (AssertionError else).
        """
        if not self._enabled:
            return
        self._check_initialised("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                self._scale_value = np.float32(new_scale)
            else:
                reason = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                          "torch.FloatTensor with requires_grad=False.")
                f = _facade()
                if not isinstance(new_scale, f.Tensor) or new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError(reason)
                self._scale_value = np.float32(float(new_scale.reshape(()).item()))
        else:
            flags = [v for state in self._per_optimizer_states.values()
                     for v in state["found_inf_per_device"].values()]
            if not flags:
                raise AssertionError("No inf checks were recorded prior to update.")
            found_inf = sum(float(v.item()) for v in flags) > 0
            if found_inf:
                self._scale_value = np.float32(np.float64(self._scale_value) * self._backoff_factor)
                self._tracker = 0
            else:
                successful = self._tracker + 1
                if successful == self._growth_interval:
                    grown = np.float32(np.float64(self._scale_value) * self._growth_factor)
                    if np.isfinite(grown):  # torch keeps the old scale if growing would overflow float32
                        self._scale_value = grown
                    self._tracker = 0
                else:
                    self._tracker = successful
        self._per_optimizer_states = defaultdict(_fresh_state)

    # -- accessors -------------------------------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (``init_scale`` before the first ``scale``; 1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale_value is None else float(self._scale_value)

    def get_growth_factor(self) -> float:
        """The growth factor."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor."""
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        """The backoff factor."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor."""
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        """The growth interval (steps)."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval (steps)."""
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._tracker is None else int(self._tracker)

    def is_enabled(self) -> bool:
        """Whether scaling is on."""
        return self._enabled

    def _found_inf_per_device(self, optimizer) -> dict[str, Any]:
        return self._per_optimizer_states[id(optimizer)]["found_inf_per_device"]

    def _check_inf_per_device(self, optimizer) -> dict[str, Any]:
        self._check_initialised("_check_inf_per_device")
        result = self._unscale_grads_(optimizer, 1.0, allow_fp16=True)
        self._per_optimizer_states[id(optimizer)]["found_inf_per_device"] = result
        return result

    def state_dict(self) -> dict[str, Any]:
        """``{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}`` ({} if disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._get_growth_tracker(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (no-op when disabled; RuntimeError for an empty dict)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale_value is not None:
            self._scale_value = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._tracker is not None:
            self._tracker = int(state_dict["_growth_tracker"])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise AssertionError("A GradScaler instance may only be pickled at the beginning "
                                     "of an iteration, or at the end after scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale_value"] = None
            state["_tracker"] = None
            state["_per_optimizer_states"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._enabled:
            self._per_optimizer_states = defaultdict(_fresh_state)
