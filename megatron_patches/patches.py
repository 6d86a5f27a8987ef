"""The registered patches of megatron-core under the shim.

Each entry says what it replaces, why, and for which megatron-core versions; `registry.register` documents the
fields. Generic torch semantics belong in the facade (shim/torch); the blockers found while running
tools/train.py at TP=1 and TP=2 were fixed there. What is left here works around a facade gap that only
megatron-core's buffer layout exposes.
"""
from __future__ import annotations

from .registry import register


def _gather_into_params(original):
    """Wrap `_ParamAndGradBucketGroup.start_param_sync`: after a synchronous parameter all-gather, copy each
    parameter's slice of the bucket's gathered `param_data` into the parameter."""

    def start_param_sync(self, force_sync: bool = False):
        result = original(self, force_sync=force_sync)
        if self.param_gather_handle is None:  # gathered now (not an async op still in flight)
            for bucket in self.buckets:
                if bucket.param_data is None:
                    continue
                flat = bucket.param_data.view(-1)
                for param in bucket.params:
                    start, end = bucket.param_to_index[param]
                    param.detach().copy_(flat[start:end].view(param.shape))
        return result

    return start_param_sync


register(
    "param_gather_copies_into_params",
    target="megatron.core.distributed.param_and_grad_buffer._ParamAndGradBucketGroup.start_param_sync",
    replacement=_gather_into_params,
    reason=("DDP maps each parameter onto the flat param buffer with `param.data = buffer_view`; the shim's "
            "`.data` assignment copies values instead of sharing storage (a parameter's MindSpore tensor must "
            "keep its identity for autograd), so the distributed optimizer's all-gather into the buffer would "
            "not reach the parameters at DP>1. Copies the gathered slices into the parameters."),
    versions=">=0.16,<0.17",
    stacks=True,
)
