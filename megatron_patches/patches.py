"""The registered patches of megatron-core under the shim.

Each entry says what it replaces, why, and for which megatron-core versions; `registry.register` documents the
fields. Generic torch semantics belong in the facade (shim/torch); the blockers found while running
tools/train.py at TP=1 and TP=2 were fixed there. What is left here: a facade gap that only megatron-core's buffer
layout exposes (`param_gather_copies_into_params`) and the CUDA-only parts of Megatron-LM. megatron's own
`torch_dist` checkpoint strategy runs on the facade's `torch.distributed.checkpoint` and `torch.distributed._shard`
(the patch `torch_dist_strategies_without_dcp` that served it before is retired).
"""
from __future__ import annotations

import os

from .registry import register, register_module_stand_in


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


register_module_stand_in(
    "batch_invariant_kernels_without_triton",
    module="megatron.core.transformer.custom_layers.batch_invariant_kernels",
    source=os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_invariant_without_triton.py"),
    needs="triton",
    reason=("Megatron-LM's megatron.training.initialize imports batch_invariant_kernels, whose top-level "
            "`import triton` fails where triton (a CUDA-only kernel compiler, ~1 GB) is not installed, so no "
            "Megatron-LM program (pretrain_gpt.py, tools/preprocess_data.py) can even start. Served without the "
            "Triton kernels: the mode reports disabled; enabling it (--batch-invariant-mode) raises "
            "NotImplementedError naming the feature. CUDA-only, so it applies on the CPU reference runner too."),
    versions=">=0.16,<0.17",
)


def _fused_kernels_load_without_nvcc(original):
    """Wrap `megatron.legacy.fused_kernels.load(args)`: without a CUDA toolkit (`cpp_extension.CUDA_HOME` None)
    skip it, since in this version it builds nothing; with one, call Megatron's own."""

    def load(args):
        from torch.utils import cpp_extension  # the facade's or real torch's, whichever serves `torch` now

        if cpp_extension.CUDA_HOME is not None:
            return original(args)
        return None

    return load


register(
    "fused_kernels_load_without_nvcc",
    target="megatron.legacy.fused_kernels.load",
    replacement=_fused_kernels_load_without_nvcc,
    reason=("Megatron-LM's initialize_megatron always calls megatron.legacy.fused_kernels.load, which in "
            "core_v0.16.1 compiles no kernel (its build helper is defined, never called) but first runs "
            "`CUDA_HOME + '/bin/nvcc -V'`, a TypeError where no CUDA toolkit exists. Without one it is skipped; "
            "with one Megatron's load runs. CUDA-only, so the CPU reference runner applies it too."),
    versions=">=0.16,<0.17",
    stacks=False,
    on_import="megatron.legacy.fused_kernels",
    cpu_reference=True,
)
