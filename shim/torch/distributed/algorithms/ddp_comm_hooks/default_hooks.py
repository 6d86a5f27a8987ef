"""``torch.distributed.algorithms.ddp_comm_hooks.default_hooks``: the standard DDP communication hooks.

A hook is called as ``hook(state, bucket)`` by ``DistributedDataParallel`` (``register_comm_hook``) once per
gradient bucket during the backward pass (``bucket``: a ``torch.distributed.GradBucket``; ``state``: here a
process group, None meaning the default group). It returns a ``torch.futures.Future`` whose value is a 1-D tensor
of the bucket's numel: DDP copies it into the parameters' gradients.

- ``allreduce_hook``: divides the bucket by the group size and all-reduces it (SUM): the mean gradient, the same
  values as DDP without a hook;
- ``fp16_compress_hook`` / ``bf16_compress_hook``: cast the bucket to float16 / bfloat16, divide by the group size
  in that dtype, all-reduce in that dtype, and write the result back into the (full precision) buffer;
- ``fp16_compress_wrapper(hook)`` / ``bf16_compress_wrapper(hook)``: run ``hook`` on a half-precision copy of the
  bucket; its result is cast back to the gradients' dtype when DDP copies it.

These are torch's semantics (torch 2.13). Under the shim the all-reduce is the facade's
``torch.distributed.all_reduce``; bfloat16 collectives are emulated on MindSpore's CPU backend
(``shim/_comm/table.py``), native with HCCL. Unlike torch on a CPU-only build, the bf16 hooks are accepted: the
shim's device is the accelerator ("cuda"), whose backend reduces bfloat16.
"""
from typing import Any, Callable

from .... import bfloat16, float16
from ...._tensor import Tensor
from ....futures import Future
from ... import distributed_c10d as _c10d
from ..._grad_bucket import GradBucket

__all__ = ["allreduce_hook", "fp16_compress_hook", "bf16_compress_hook", "fp16_compress_wrapper",
           "bf16_compress_wrapper"]


def _group(process_group):
    """The group a hook reduces over: ``process_group``, or the default group when it is None."""
    group = process_group if process_group is not None else _c10d.group.WORLD
    if group is None:
        raise RuntimeError("DDP communication hook: the default process group has not been initialized "
                           "(call torch.distributed.init_process_group first)")
    return group


def _allreduce_fut(process_group, tensor: Tensor) -> Future:
    """Divide ``tensor`` in place by the group size, all-reduce it (SUM) in place; a Future of ``tensor``."""
    group = _group(process_group)
    tensor.div_(group.size())
    work = _c10d.all_reduce(tensor, group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def allreduce_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """The mean of the bucket over the group (``process_group``; None: the default group); DDP's own result."""
    return _allreduce_fut(process_group, bucket.buffer())


def _compressed_allreduce(dtype, process_group, bucket) -> Future:
    group = _group(process_group)
    # torch's hook also accepts a 1-tuple (buffer,) in place of a bucket
    full = bucket[0] if isinstance(bucket, tuple) else bucket.buffer()
    half = full.to(dtype)
    half.div_(group.size())
    work = _c10d.all_reduce(half, group=group, async_op=True)

    def write_back(fut):
        reduced = fut if isinstance(fut, Tensor) else fut.value()[0]
        full.copy_(reduced)
        return full

    return work.get_future().then(write_back)


def fp16_compress_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """Mean over the group computed in float16 (cast, divide by the group size, all-reduce), written back into
    the bucket's buffer (its own dtype)."""
    return _compressed_allreduce(float16, process_group, bucket)


def bf16_compress_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """As ``fp16_compress_hook`` in bfloat16."""
    return _compressed_allreduce(bfloat16, process_group, bucket)


def _compress_wrapper(dtype, hook: Callable, name: str) -> Callable:
    def wrapped(hook_state, bucket: GradBucket) -> Future[Tensor]:
        bucket.set_buffer(bucket.buffer().to(dtype))
        inner = hook(hook_state, bucket)

        def write_back(fut):
            out = bucket.buffer()
            out.copy_(fut.value())
            return out

        return inner.then(write_back)

    wrapped.__name__ = wrapped.__qualname__ = name
    return wrapped


def fp16_compress_wrapper(hook: Callable[[Any, GradBucket], Future]) -> Callable[[Any, GradBucket], Future]:
    """A hook that runs ``hook`` on a float16 copy of the bucket (its result is cast back by DDP's copy)."""
    return _compress_wrapper(float16, hook, "fp16_compress_wrapper_hook")


def bf16_compress_wrapper(hook: Callable[[Any, GradBucket], Future]) -> Callable[[Any, GradBucket], Future]:
    """As ``fp16_compress_wrapper`` with bfloat16."""
    return _compress_wrapper(bfloat16, hook, "bf16_compress_wrapper_hook")
