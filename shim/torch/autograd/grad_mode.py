"""Gradient-recording modes: no_grad, enable_grad, set_grad_enabled, inference_mode.

MindSpore PyNative records an op when two flags are on: `grad_flag` (recording machinery; the facade turns it
on once at import) and `enable_grad` (MindSpore's own no_grad switch, which its engine also turns off while it
runs a backward pass). torch's modes map onto `enable_grad`; the facade keeps a copy of the flag (`_GRAD`) so
hot paths check it with one list read, and `is_grad_enabled()` asks MindSpore (true inside backward too).
Each class works as a context manager and as a decorator, like torch's.
"""
from __future__ import annotations

import functools
import inspect

from mindspore.graph.api import _pynative_executor

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]

# _GRAD[0]: recording on/off (torch's default: on). _INFERENCE[0]: inside inference_mode.
_GRAD = [True]
_INFERENCE = [False]


def _set(enabled: bool) -> None:
    # Always forwarded to MindSpore: its engine switches the flag itself while running backward (so a custom
    # Function's backward that recomputes under enable_grad must really turn it back on).
    enabled = bool(enabled)
    _GRAD[0] = enabled
    _pynative_executor.set_enable_grad(enabled)


_pynative_executor.set_grad_flag(True)
_pynative_executor.set_enable_grad(True)

# MindSpore clears `grad_flag` whenever an op raises (its PyNative executor resets its resources on any error:
# measured on 2.10, `grad_flag()` is False after e.g. a failing CumSum, `enable_grad()` unchanged), and with it
# off no later op records a gradient. The facade re-asserts it where it hands tensors to MindSpore
# (`_tensor.unwrap`): one bound pybind getter call (~0.3 us) per operand, the setter only after an error.
grad_flag = _pynative_executor._executor.grad_flag
_set_grad_flag = _pynative_executor._executor.set_grad_flag


def restore_grad_flag() -> None:
    """Turn MindSpore's `grad_flag` back on (after an op raised and MindSpore cleared it)."""
    _set_grad_flag(True)


def _sync() -> None:
    """Re-read MindSpore's enable_grad into the facade's cache (after MindSpore ran code that flips it itself:
    a custom Function's forward, a backward pass with hooks)."""
    _GRAD[0] = bool(_pynative_executor.enable_grad())


def is_grad_enabled() -> bool:
    """torch.is_grad_enabled: whether operations are being recorded for autograd (False inside backward)."""
    return bool(_pynative_executor.enable_grad())


def is_inference_mode_enabled() -> bool:
    """torch.is_inference_mode_enabled."""
    return _INFERENCE[0]


class _DecoratorContextManager:
    """Context manager usable as a decorator (`@torch.no_grad()` and `@torch.no_grad`)."""

    def __call__(self, func):
        if inspect.isclass(func):
            raise TypeError(f"{type(self).__name__} cannot decorate a class")
        if inspect.isgeneratorfunction(func):
            return self._wrap_generator(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper

    def _wrap_generator(self, func):
        """A generator function whose body runs inside a fresh copy of this context at every resume (the
        grad mode is restored to the caller's while the generator is suspended), as torch's decorator does."""
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            gen = func(*args, **kwargs)
            to_send = None
            try:
                while True:
                    with self.clone():
                        item = gen.send(to_send)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as exc:  # thrown into us: forward to the generator
                        with self.clone():
                            item = gen.throw(exc)
                        to_send = None
                        # the thrown exception was handled by gen, which yielded ``item``; hand it out
                        while True:
                            try:
                                to_send = yield item
                                break
                            except GeneratorExit:
                                with self.clone():
                                    gen.close()
                                raise
                            except BaseException as exc2:
                                with self.clone():
                                    item = gen.throw(exc2)
            except StopIteration as stop:
                return stop.value
        return wrapper

    def clone(self):
        return self.__class__()


class no_grad(_DecoratorContextManager):
    """torch.no_grad: disable recording inside the block (results have requires_grad=False)."""

    def __new__(cls, orig_func=None):
        if orig_func is None or cls is not no_grad:
            return super().__new__(cls)
        return cls()(orig_func)  # used as a bare decorator: @torch.no_grad

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set(False)

    def __exit__(self, *exc):
        _set(self.prev)
        return False


class enable_grad(_DecoratorContextManager):
    """torch.enable_grad: enable recording inside the block."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set(True)

    def __exit__(self, *exc):
        _set(self.prev)
        return False


class set_grad_enabled(_DecoratorContextManager):
    """torch.set_grad_enabled(mode): sets the mode at construction (so it also works as a plain call) and
    restores the previous mode on exit when used as a context manager."""

    def __init__(self, mode: bool):
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set(self.mode)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _set(self.prev)
        return False

    def clone(self):
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """torch.inference_mode(mode=True): recording off (the facade has no separate inference tensors; tensors
    created inside behave like no_grad tensors — documented difference: using them later in autograd does not
    raise)."""

    def __new__(cls, mode_or_func=True):
        if callable(mode_or_func) and not isinstance(mode_or_func, bool):
            return cls(True)(mode_or_func)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode) if isinstance(mode, bool) else True

    def __enter__(self):
        self.prev, self.prev_inf = is_grad_enabled(), _INFERENCE[0]
        if self.mode:
            _set(False)
            _INFERENCE[0] = True

    def __exit__(self, *exc):
        _set(self.prev)
        _INFERENCE[0] = self.prev_inf
        return False

    def clone(self):
        return self.__class__(self.mode)
