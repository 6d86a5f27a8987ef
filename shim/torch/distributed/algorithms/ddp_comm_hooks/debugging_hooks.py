"""``torch.distributed.algorithms.ddp_comm_hooks.debugging_hooks``: ``noop_hook``.

``noop_hook(state, bucket)`` communicates nothing: its Future holds the bucket's buffer unchanged, so each rank
keeps its local gradients (torch uses it to measure DDP without all-reduce). The same under the shim.
"""
from ...._tensor import Tensor
from ....futures import Future
from ..._grad_bucket import GradBucket

__all__ = ["noop_hook"]


def noop_hook(_: object, bucket: GradBucket) -> Future[Tensor]:
    """A completed Future of ``bucket.buffer()``: no communication, gradients stay local."""
    fut: Future = Future()
    fut.set_result(bucket.buffer())
    return fut
