"""``torch.nn.parallel.DistributedDataParallel`` on the shim: data-parallel training over the facade's
``torch.distributed`` collectives (MindSpore communication underneath).

What it does, as torch's DDP does:
- at construction (``init_sync=True``): checks that every rank holds parameters of the same shapes and dtypes
  (``RuntimeError`` naming the first mismatch), then broadcasts parameters and buffers from group rank 0;
- groups the parameters that require grad into *buckets* as torch does (one dtype per bucket, byte caps: a first
  bucket of 1 MiB (torch's ``_DEFAULT_FIRST_BUCKET_BYTES``) when ``bucket_cap_mb`` is left at its default of 25,
  else ``bucket_cap_mb`` MiB for all): at construction in registration order, reduced last bucket first, and
  with a single bucket unless ``find_unused_parameters`` is set; after the first synchronised backward (without
  ``find_unused_parameters``, or with ``static_graph``) rebuilt once in the order the gradients became ready;
- during ``backward``, a post-accumulate-grad hook marks each parameter ready; when a bucket is complete, and every
  bucket before it has been reduced (buckets are reduced in index order, identically on every rank), its gradients
  are flattened, divided by the group size and all-reduced (SUM), and written back into each ``param.grad``;
- ``no_sync()`` / ``require_backward_grad_sync = False`` before the forward: gradients accumulate locally and are
  averaged by the first synchronised backward;
- ``find_unused_parameters=True`` (or ``static_graph=True``): after the forward the autograd graph is walked from
  the outputs; parameters it does not reach count as ready with a zero contribution, and a parameter unused on every
  rank keeps its ``.grad`` untouched (one extra all-reduce of the usage map per backward). Without it, a parameter
  that got no gradient leaves the reduction unfinished and the next forward raises ``RuntimeError`` (torch's
  "Expected to have finished reduction in the prior iteration" error);
- ``broadcast_buffers`` / ``forward_sync_buffers`` (default True): buffers are broadcast from group rank 0 before
  each forward while ``require_forward_param_sync`` is True;
- ``.module`` is the wrapped module, so ``state_dict()`` keys carry torch's ``module.`` prefix;
- ``register_comm_hook(state, hook)``: each complete bucket's flattened gradients go to ``hook(state, bucket)``
  (a ``torch.distributed.GradBucket``) instead of the mean all-reduce, and the value of the Future it returns is
  copied into the gradients (``torch.distributed.algorithms.ddp_comm_hooks``: ``allreduce_hook`` gives the same
  values as no hook; ``fp16_compress_hook``/``bf16_compress_hook`` reduce in half precision). The Future is waited
  for at once (the reduction stays synchronous).

Differences from torch: ``gradient_as_bucket_view=True`` is accepted but gradients are not views of the bucket (it
is a memory optimisation in torch; values are the same); ``device_ids``/``output_device`` name this rank's
accelerator (at most one device, as torch requires for single-device modules) and inputs are not moved;
``join``, ``mixed_precision``, ``device_mesh``, ``delay_all_reduce_named_params``,
``param_to_hook_all_reduce`` and ``bucket_cap_mb_list`` raise ``NotImplementedError`` naming themselves.
Reductions run synchronously inside the backward pass (no overlap with computation).
"""
from __future__ import annotations

import contextlib
import inspect
import sys
import warnings
import weakref
from typing import Any, Optional

from ... import cat, float32, is_grad_enabled, no_grad, tensor, zeros
from ... import distributed as dist
from ..._tensor import Tensor
from ...futures import Future
from ..modules.module import Module

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024
_DEFAULT_BUCKET_CAP_MB = 25
_DEFAULT_FIRST_BUCKET_BYTES = 1024 * 1024  # torch.distributed._DEFAULT_FIRST_BUCKET_BYTES


def _tensors_in(obj, out: list) -> list:
    """The facade tensors inside (nested) tuples, lists, dicts and dataclass-like outputs, in order."""
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensors_in(v, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensors_in(v, out)
    return out


def _leaf_key(node) -> int:
    """Identity of an autograd graph node that survives re-wrapping (MindSpore's node id)."""
    return node._n._unique_id()


def _accumulate_node_key(p) -> int:
    """Identity of ``p``'s gradient-accumulator node (torch's ``p.expand_as(p).grad_fn.next_functions[0][0]``)."""
    return _leaf_key(p.expand_as(p).grad_fn.next_functions[0][0])


class _Bucket:
    __slots__ = ("indices", "pending")

    def __init__(self, indices: list) -> None:
        self.indices = indices
        self.pending = len(indices)


def _assign_buckets(params: list, order: list, limits: list) -> list:
    """Parameter indices grouped into buckets, as torch's ``_compute_bucket_assignment_by_size``: walk ``order``
    keeping one open bucket per dtype; a bucket closes once it holds at least its byte limit (each dtype's k-th
    bucket uses ``limits[min(k, len(limits) - 1)]``); open buckets follow the closed ones. Returns index lists in
    closing order, each in walk order."""
    closed: list = []
    open_: dict = {}  # dtype -> [indices, bytes, buckets closed so far]
    for i in order:
        p = params[i]
        entry = open_.setdefault(p.dtype, [[], 0, 0])
        entry[0].append(i)
        entry[1] += p.numel() * p.element_size()
        if entry[1] >= limits[min(entry[2], len(limits) - 1)]:
            closed.append(entry[0])
            entry[0], entry[1], entry[2] = [], 0, entry[2] + 1
    return closed + [e[0] for e in open_.values() if e[0]]


def _initial_buckets(params: list, limits: list) -> list:
    """torch's first-iteration buckets: assigned in registration order, sorted by their smallest index, then
    reversed (the last-registered parameters, whose gradients come first, are reduced first)."""
    buckets = sorted(_assign_buckets(params, list(range(len(params))), limits), key=min)
    return [_Bucket(b) for b in reversed(buckets)]


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``process_group`` (default: the world).

    Arguments are torch's (see the module docstring for what each does here). Raises ``RuntimeError`` before
    ``init_process_group`` or when no parameter requires grad, ``ValueError`` for more than one device in
    ``device_ids``, ``TypeError`` when ``module`` is not a ``torch.nn.Module``.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=None, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params=False, bucket_cap_mb_list=None, batched_grad_copy=False,
                 forward_sync_buffers: Optional[bool] = None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a torch.nn.Module, got {type(module).__name__}")
        for value, name in ((device_mesh, "device_mesh"), (mixed_precision, "mixed_precision"),
                            (delay_all_reduce_named_params, "delay_all_reduce_named_params"),
                            (param_to_hook_all_reduce, "param_to_hook_all_reduce"),
                            (bucket_cap_mb_list, "bucket_cap_mb_list")):
            if value is not None:
                raise NotImplementedError(f"torch.nn.parallel.DistributedDataParallel({name}=...) is not "
                                          f"implemented by the shim")
        if device_ids is not None:
            if not isinstance(device_ids, (list, tuple)) or len(device_ids) > 1:
                raise ValueError(f"DistributedDataParallel: device_ids must be None or a list of one device for a "
                                 f"single-device module, got {device_ids!r}")
        self.process_group = process_group if process_group is not None else dist.distributed_c10d._get_default_group()
        self.module = module
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.device_ids = list(device_ids) if device_ids is not None else None
        self.output_device = output_device
        self.dim = dim
        self.device = params[0].device
        if broadcast_buffers is not None:
            warnings.warn("`broadcast_buffers` is deprecated. Use `forward_sync_buffers` instead.", FutureWarning,
                          stacklevel=2)
        if forward_sync_buffers is not None:
            self.forward_sync_buffers = bool(forward_sync_buffers)
            init_sync_buffers = True
        else:
            self.forward_sync_buffers = True if broadcast_buffers is None else bool(broadcast_buffers)
            init_sync_buffers = self.forward_sync_buffers
        self.find_unused_parameters = bool(find_unused_parameters)
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.skip_all_reduce_unused_params = bool(skip_all_reduce_unused_params)
        self.batched_grad_copy = bool(batched_grad_copy)
        self.bucket_bytes_cap = int((_DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb) * _MB)
        self.modules_buffers = list(module.buffers())
        self._params = params
        self._world = dist.get_world_size(self.process_group)
        self._src = dist.get_global_rank(self.process_group, 0)
        if init_sync:
            self._verify_shapes()
            self._broadcast(params + (self.modules_buffers if init_sync_buffers else []))
        # torch's BucketCapacityConfig: a small first bucket only with the default cap; before the rebuild
        # (see _rebuild_buckets) one bucket for everything unless unused parameters are searched for
        self._first_bucket_bytes_cap = (_DEFAULT_FIRST_BUCKET_BYTES if bucket_cap_mb is None
                                        else self.bucket_bytes_cap)
        if self.static_graph or not self.find_unused_parameters:
            limits = [sys.maxsize]
        elif self._first_bucket_bytes_cap < self.bucket_bytes_cap:
            limits = [self._first_bucket_bytes_cap, self.bucket_bytes_cap]
        else:
            limits = [self.bucket_bytes_cap]
        self._set_buckets(_initial_buckets(params, limits))
        self._rebuild_pending = self.static_graph or not self.find_unused_parameters
        self._ready_order: list = []
        self._acc_keys = None  # accumulator-node ids, computed on first use (find_unused_parameters)
        self._expect_hooks = False
        self._ready: set = set()
        self._next_bucket = 0
        self._locally_used: Optional[list] = None
        self._global_used: Optional[list] = None
        self._marked_unused = False
        self._comm_hook = None  # (hook, state) from register_comm_hook
        ref = weakref.ref(self)
        self._hook_handles = [p.register_post_accumulate_grad_hook(_make_hook(ref, i)) for i, p in enumerate(params)]

    # ------------------------------------------------------------------------------------------ public API
    @property
    def broadcast_buffers(self) -> bool:
        """Whether buffers are broadcast from rank 0 before each forward (same as ``forward_sync_buffers``)."""
        return self.forward_sync_buffers

    @broadcast_buffers.setter
    def broadcast_buffers(self, value: bool) -> None:
        self.forward_sync_buffers = bool(value)

    def will_sync_module_buffers(self) -> bool:
        """True when the next forward broadcasts the module's buffers from group rank 0."""
        return self.require_forward_param_sync and self.forward_sync_buffers and len(self.modules_buffers) > 0

    @contextlib.contextmanager
    def no_sync(self):
        """Within the block, forward/backward passes accumulate gradients locally without communication; the
        first synchronised backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def forward(self, *inputs, **kwargs):
        """Run the wrapped module (after broadcasting buffers when configured) and arm the gradient reduction
        for the backward pass of its outputs when grad mode is on and ``require_backward_grad_sync`` is set."""
        grad_sync = is_grad_enabled() and self.require_backward_grad_sync
        if grad_sync:
            self._check_prior_reduction_finished()
        if is_grad_enabled() and self._rebuild_pending and self._ready_order:
            if len(self._ready_order) == len(self._params):
                self._rebuild_buckets()
            else:  # rebuilt only from a backward pass that readied every parameter
                self._ready_order = []
        if self.will_sync_module_buffers():
            self._broadcast(self.modules_buffers)
        output = self.module(*inputs, **kwargs)
        if grad_sync:
            self._prepare_for_backward(output)
        else:
            self._expect_hooks = False
        return output

    def register_comm_hook(self, state: object, hook) -> None:
        """Reduce each gradient bucket with ``hook(state, bucket)`` instead of DDP's mean all-reduce.

        ``bucket`` is a ``torch.distributed.GradBucket`` (its ``buffer()``: the bucket's gradients flattened, not
        divided by the group size); ``hook`` returns a ``torch.futures.Future`` whose value is a 1-D tensor of
        ``bucket.buffer().numel()`` elements, copied (and cast) into the parameters' gradients. The hook is called
        once per bucket during each synchronised backward, in bucket order, on every rank (hooks from
        ``torch.distributed.algorithms.ddp_comm_hooks`` or the program's own). Checks as torch's: ``hook``
        callable (``TypeError``), its ``bucket`` parameter annotated ``GradBucket`` or not at all and its return
        annotated ``Future[Tensor]`` or not at all (``ValueError``), at most one hook per model
        (``RuntimeError``). A hook without a parameter named ``bucket`` raises ``TypeError`` (torch raises a
        bare ``KeyError('bucket')``). torch refuses the bf16 hooks on builds without CUDA/NCCL; under the shim
        the device is the accelerator and its backend reduces bfloat16, so they are accepted."""
        if not callable(hook):
            raise TypeError("Communication hook must be callable.")
        sig = inspect.signature(hook)
        if "bucket" not in sig.parameters:
            raise TypeError(f"Communication hook {getattr(hook, '__qualname__', hook)!r} must take a parameter named "
                            f"'bucket' (torch reads its annotation by that name); got parameters "
                            f"{list(sig.parameters)}")
        if sig.parameters["bucket"].annotation not in (inspect.Parameter.empty, dist.GradBucket):
            raise ValueError("Communication hook: bucket annotation should be dist.GradBucket.")
        if sig.return_annotation not in (inspect.Signature.empty, Future[Tensor]):
            raise ValueError("Communication hook: return annotation should be torch.futures.Future[torch.Tensor].")
        if self._comm_hook is not None:
            raise RuntimeError("register_comm_hook or register_builtin_comm_hook can only be called once.")
        self._comm_hook = (hook, state)

    def join(self, divide_by_initial_world_size: bool = True, enable: bool = True, throw_on_early_termination=False):
        raise NotImplementedError("torch.nn.parallel.DistributedDataParallel.join is not implemented by the shim")

    def _set_static_graph(self) -> None:
        """torch's private switch: behaves as ``static_graph=True``."""
        self.static_graph = True

    # ---------------------------------------------------------------------------------------- internals
    def _verify_shapes(self) -> None:
        mine = [(tuple(p.shape), str(p.dtype)) for p in self._params]
        everyone: list = [None] * self._world
        dist.all_gather_object(everyone, mine, group=self.process_group)
        for r, theirs in enumerate(everyone):
            if theirs != mine:
                if len(theirs) != len(mine):
                    raise RuntimeError(f"DistributedDataParallel: rank {dist.get_rank(self.process_group)} has "
                                       f"{len(mine)} parameters requiring grad, group rank {r} has {len(theirs)}")
                for i, (a, b) in enumerate(zip(mine, theirs)):
                    if a != b:
                        raise RuntimeError(f"DistributedDataParallel: parameter {i} has shape/dtype {a} on rank "
                                           f"{dist.get_rank(self.process_group)} but {b} on group rank {r}")

    def _broadcast(self, tensors: list) -> None:
        """Overwrite ``tensors`` with group rank 0's values (one flat broadcast per dtype)."""
        if self._world == 1 or not tensors:
            return
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        with no_grad():
            for group in by_dtype.values():
                flat = cat([t.detach().reshape(-1) for t in group])
                dist.broadcast(flat, src=self._src, group=self.process_group)
                offset = 0
                for t in group:
                    n = t.numel()
                    t.copy_(flat[offset:offset + n].view(t.shape))
                    offset += n

    def _set_buckets(self, buckets: list) -> None:
        self._buckets = buckets
        self._bucket_of = {i: b for b, bucket in enumerate(buckets) for i in bucket.indices}

    def _rebuild_buckets(self) -> None:
        """torch's bucket rebuild, once, before the forward after the first synchronised backward (only without
        unused-parameter search, or with ``static_graph``): buckets follow the order in which the gradients
        became ready (group rank 0's order, broadcast), with the byte limits [first bucket cap, bucket cap]."""
        order = [list(self._ready_order)]
        if self._world > 1:
            dist.broadcast_object_list(order, src=self._src, group=self.process_group)
        limits = [self._first_bucket_bytes_cap, self.bucket_bytes_cap]
        self._set_buckets([_Bucket(b) for b in _assign_buckets(self._params, order[0], limits)])
        self._rebuild_pending = False
        self._ready_order = []

    def _check_prior_reduction_finished(self) -> None:
        if self._expect_hooks and 0 < len(self._ready) < len(self._params):
            missing = [i for i in range(len(self._params)) if i not in self._ready]
            names = {id(p): n for n, p in self.module.named_parameters()}
            listed = ", ".join(names.get(id(self._params[i]), str(i)) for i in missing[:8])
            self._expect_hooks = False
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This error "
                "indicates that your module has parameters that were not used in producing loss. You can enable "
                "unused parameter detection by passing the keyword argument `find_unused_parameters=True` to "
                f"`torch.nn.parallel.DistributedDataParallel`. Parameters that did not receive a gradient: {listed}")

    def _prepare_for_backward(self, output) -> None:
        self._ready = set()
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.pending = len(bucket.indices)
        self._marked_unused = False
        self._global_used = None
        self._locally_used = None
        if self.find_unused_parameters or self.static_graph:
            self._locally_used = self._find_used(output)
        self._expect_hooks = True

    def _find_used(self, output) -> list:
        """Which parameters the autograd graph of ``output`` reaches (a walk from its tensors' grad_fn)."""
        if self._acc_keys is None:
            self._acc_keys = {_accumulate_node_key(p): i for i, p in enumerate(self._params)}
        used = [False] * len(self._params)
        seen: set = set()
        stack = []
        for t in _tensors_in(output, []):
            if not t.requires_grad:
                continue
            if t.grad_fn is None:
                for i, p in enumerate(self._params):
                    if p is t:
                        used[i] = True
                continue
            stack.append(t.grad_fn)
        while stack:
            node = stack.pop()
            key = _leaf_key(node)
            if key in seen:
                continue
            seen.add(key)
            i = self._acc_keys.get(key)
            if i is not None:
                used[i] = True
                continue
            for child, _ in node.next_functions:
                if child is not None:
                    stack.append(child)
        return used

    def _on_ready(self, i: int) -> None:
        if not self._expect_hooks:
            return
        if self._rebuild_pending:
            self._ready_order.append(i)
        if not self._marked_unused:
            self._marked_unused = True
            if self._locally_used is not None:
                self._sync_usage()
                for j, u in enumerate(self._locally_used):
                    if not u and j != i:
                        self._mark_ready(j)
        self._mark_ready(i)

    def _sync_usage(self) -> None:
        flags = tensor([1.0 if u else 0.0 for u in self._locally_used], dtype=float32)
        if self._world > 1:
            dist.all_reduce(flags, group=self.process_group)
        self._global_used = [v > 0 for v in flags.tolist()]

    def _mark_ready(self, i: int) -> None:
        if i in self._ready:
            raise RuntimeError(f"DistributedDataParallel: parameter {i} was marked ready twice in one backward pass "
                               f"(reentrant backward or a parameter used by two DDP forwards is not supported)")
        self._ready.add(i)
        bucket = self._buckets[self._bucket_of[i]]
        bucket.pending -= 1
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].pending == 0:
            self._reduce(self._buckets[self._next_bucket])
            self._next_bucket += 1
        if self._next_bucket == len(self._buckets):
            self._expect_hooks = False

    def _reduce(self, bucket: _Bucket) -> None:
        params = [self._params[i] for i in bucket.indices]
        keep = [True] * len(params)
        if self._global_used is not None:
            keep = [self._global_used[i] or self._params[i].grad is not None for i in bucket.indices]
        with no_grad():
            parts = []
            for p in params:
                g = p.grad
                parts.append(zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None
                             else g.detach().reshape(-1))
            flat = cat(parts)
            if self._comm_hook is not None:
                flat = self._run_comm_hook(bucket, flat, params)
            elif self._world > 1:
                flat = flat / self._world
                dist.all_reduce(flat, group=self.process_group)
            offset = 0
            for p, k in zip(params, keep):
                n = p.numel()
                if k:
                    avg = flat[offset:offset + n].view(p.shape)
                    if p.grad is None:  # (a hook's result may have another dtype: cast, as torch's copy does)
                        p.grad = avg.clone() if avg.dtype == p.dtype else avg.to(p.dtype)
                    else:
                        p.grad.copy_(avg)
                offset += n

    def _run_comm_hook(self, bucket: _Bucket, flat, params: list):
        """``flat`` reduced by the registered communication hook: the value of the Future it returns."""
        hook, state = self._comm_hook
        index = self._buckets.index(bucket)
        grad_bucket = dist.GradBucket(index, index == len(self._buckets) - 1, flat, params)
        fut = hook(state, grad_bucket)
        if not isinstance(fut, Future):
            raise RuntimeError(f"DDP communication hook {getattr(hook, '__qualname__', hook)!r} must return a "
                               f"torch.futures.Future, got {type(fut).__name__}")
        result = fut.wait()
        if not isinstance(result, Tensor):
            raise RuntimeError(f"DDP communication hook {getattr(hook, '__qualname__', hook)!r}: the value of its "
                               f"Future must be a Tensor, got {type(result).__name__}")
        if result.numel() != flat.numel():
            raise RuntimeError(f"DDP communication hook {getattr(hook, '__qualname__', hook)!r}: the value of its "
                               f"Future has {result.numel()} elements, the bucket {flat.numel()}")
        return result.reshape(-1)


def _make_hook(ref, i: int):
    def hook(_param) -> None:
        ddp = ref()
        if ddp is not None:
            ddp._on_ready(i)
    return hook
