"""torch.autograd.graph: grad_fn nodes over MindSpore's BackwardNode, tensor and node hooks.

`Node` wraps a MindSpore `BackwardNode`: `name()`, `next_functions` ((Node or None, input_nr) pairs),
`register_hook(fn)` (on an accumulate-grad node it runs *after* the gradient was accumulated into the leaf's
.grad: megatron-core's DDP relies on that), `register_prehook(fn)`. Hook functions receive facade tensors.
"""
from __future__ import annotations

import mindspore as ms

__all__ = ["Node", "RemovableHandle", "saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks"]


class RemovableHandle:
    """Returned by register_*hook; `remove()` detaches the hook (idempotent)."""

    def __init__(self, remove_fn):
        self._remove = remove_fn

    def remove(self):
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _to_facade(x):
    from .._tensor import wrap
    if isinstance(x, ms.Tensor):
        return wrap(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_to_facade(v) for v in x)
    return x


def _to_ms(x):
    from .._tensor import Tensor, unwrap
    if isinstance(x, Tensor):
        return unwrap(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_to_ms(v) for v in x)
    return x


def _ms_handle(obj, key):
    def remove():
        if hasattr(key, "remove"):
            key.remove()
        elif hasattr(obj, "remove_hook"):
            obj.remove_hook(key)
        elif hasattr(obj, "_remove_hook"):
            obj._remove_hook(key)
    return RemovableHandle(remove)


class Node:
    """A node of the backward graph (torch.autograd.graph.Node)."""

    __slots__ = ("_n", "__weakref__")

    def __init__(self, ms_node):
        self._n = ms_node

    def name(self) -> str:
        return self._n.name()

    @property
    def next_functions(self):
        return tuple((None if n is None else Node(n), i) for n, i in self._n.next_functions)

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) -> None; on an accumulate node it fires after accumulation."""
        def hook(*args):
            r = fn(*_to_facade(args))
            return None if r is None else _to_ms(r)
        return _ms_handle(self._n, self._n.register_hook(hook))

    def register_prehook(self, fn):
        def hook(*args):
            r = fn(*_to_facade(args))
            return None if r is None else _to_ms(r)
        return _ms_handle(self._n, self._n.register_prehook(hook))

    def __eq__(self, other):
        return isinstance(other, Node) and other._n is self._n

    def __hash__(self):
        return id(self._n)

    def __repr__(self):
        return f"<{self.name()} object (shim)>"


def _node(ms_node) -> Node:
    return Node(ms_node)


def _tensor_hook(t, hook):
    from .._tensor import unwrap, _new
    m = unwrap(t)
    if not m._requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    dt, dev = t._dt, t._dev

    def ms_hook(g):
        r = hook(_new(g, dt, dev))
        return None if r is None else unwrap(r)
    key = m.register_hook(ms_hook)
    return _ms_handle(m, key)


def _post_accumulate_hook(t, hook):
    from .._tensor import unwrap
    from mindspore import mint
    from .grad_mode import enable_grad
    m = unwrap(t)
    if not (m._is_leaf and m._requires_grad):
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    with enable_grad():
        acc = mint.broadcast_to(m, tuple(m.shape))._grad_node.next_functions[0][0]
    holder = t.__dict__.setdefault("_post_acc_nodes", [])
    holder.append(acc)
    return _ms_handle(acc, acc.register_hook(lambda *a: hook(t)))


class saved_tensors_hooks:
    """torch.autograd.graph.saved_tensors_hooks: not supported (MindSpore owns saved tensors)."""

    def __init__(self, pack_hook, unpack_hook):
        raise NotImplementedError("torch.autograd.graph.saved_tensors_hooks is not supported by the shim")


class save_on_cpu(saved_tensors_hooks):
    def __init__(self, pin_memory=False, device_type="cuda"):
        raise NotImplementedError("torch.autograd.graph.save_on_cpu is not supported by the shim")


class disable_saved_tensors_hooks:
    """No saved-tensor hooks exist in the shim, so disabling them is trivially true."""

    def __init__(self, error_message="saved tensors default hooks are disabled"):
        self.msg = error_message

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
