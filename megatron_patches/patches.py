"""The registered patches of megatron-core under the shim.

Each entry says what it replaces, why, and for which megatron-core versions; `registry.register` documents the
fields. Generic torch semantics belong in the facade (shim/torch); the blockers found while running
tools/train.py at TP=1 and TP=2 were fixed there. What is left here: a facade gap that only megatron-core's buffer
layout exposes (`param_gather_copies_into_params`), and megatron's `torch_dist` checkpoint strategies served without
PyTorch DCP's API (`torch_dist_strategies_without_dcp`, megatron's layer in torch_dist_strategy.py, the format in
shim/torch/distributed/checkpoint/).
"""
from __future__ import annotations

import os

from .registry import register, register_module_stand_in


def bucket_param_start(bucket, param) -> int:
    """Where `param` starts in `bucket.param_data`, in elements.

    The distributed optimizer's buffer aligns every parameter's start to 64 elements (megatron-core's
    `_pad_start_of_param_if_needed`), so a parameter whose predecessor's size is not a multiple of 64 starts after a
    gap. `bucket.param_to_index` does not count those gaps (it packs the parameters; megatron uses it only for its
    MXFP8 path, where no padding is applied), so it is not the parameter's place in the buffer. The place is read
    from `param.main_grad`, which megatron makes a view of the grad buffer at the parameter's padded start, with the
    same layout as the param buffer: its storage offset minus that of the bucket's `grad_data` view.
    """
    start = param.main_grad.storage_offset() - bucket.grad_data.storage_offset()
    if start < 0 or start + param.numel() > bucket.param_data.numel():
        raise RuntimeError(f"param_gather_copies_into_params: a parameter of shape {tuple(param.shape)} maps to "
                           f"elements [{start}, {start + param.numel()}) outside its bucket of "
                           f"{bucket.param_data.numel()} elements")
    return start


def _mirror_params(bucket) -> None:
    """Write every parameter's current values into its slice of `bucket.param_data` and remember the buffer's
    version counter (`_version`, bumped by every in-place write), so that a later write by the optimizer shows."""
    flat = bucket.param_data.view(-1)
    for param in bucket.params:
        start = bucket_param_start(bucket, param)
        flat[start:start + param.numel()].copy_(param.detach().reshape(-1))
    bucket.shim_param_data_version = bucket.param_data._version


def _buffer_starts_as_params(original):
    """Wrap `_ParamAndGradBuffer.__init__`: after megatron mapped the parameters onto the buffer, fill the param
    buffer with the parameters' values (`_mirror_params`), as torch's shared storage does."""

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.param_data is not None:
            for bucket in self.buckets:
                _mirror_params(bucket)

    return __init__


register(
    "param_buffer_starts_as_params",
    target="megatron.core.distributed.param_and_grad_buffer._ParamAndGradBuffer.__init__",
    replacement=_buffer_starts_as_params,
    reason=("DDP maps each parameter onto the flat param buffer with `param.data = buffer_view` and copies the "
            "parameter's values through it; on the shim `.data =` does not share storage, so the buffer stays "
            "zero. Fills it with the parameters and records its version for `param_gather_copies_into_params`."),
    versions=">=0.16,<0.17",
    stacks=True,
)


def _gather_into_params(original):
    """Wrap `_ParamAndGradBucketGroup.start_param_sync`: keep each bucket's param buffer and its parameters equal,
    as torch's shared storage does.

    Before the all-gather, a bucket whose buffer no optimizer wrote since the last sync (its `_version` is the one
    recorded then) gets the parameters' current values (`_mirror_params`): megatron-core's ChainedOptimizer syncs
    every bucket group of the model after each of its optimizers' steps, so the expert buckets (their own
    optimizer at EP > 1) are gathered after the dense step too, and a checkpoint load writes the parameters only.
    After a synchronous gather, each parameter's slice (at its padded start, `bucket_param_start`) is copied into
    the parameter and the buffer's version recorded."""

    def start_param_sync(self, force_sync: bool = False):
        for bucket in self.buckets:
            if bucket.param_data is not None and (
                    bucket.param_data._version == getattr(bucket, "shim_param_data_version", None)):
                _mirror_params(bucket)
        result = original(self, force_sync=force_sync)
        if self.param_gather_handle is None:  # gathered now (not an async op still in flight)
            for bucket in self.buckets:
                if bucket.param_data is None:
                    continue
                flat = bucket.param_data.view(-1)
                for param in bucket.params:
                    start = bucket_param_start(bucket, param)
                    param.detach().copy_(flat[start:start + param.numel()].view(param.shape))
                bucket.shim_param_data_version = bucket.param_data._version
        return result

    return start_param_sync


register(
    "param_gather_copies_into_params",
    target="megatron.core.distributed.param_and_grad_buffer._ParamAndGradBucketGroup.start_param_sync",
    replacement=_gather_into_params,
    reason=("DDP maps each parameter onto the flat param buffer with `param.data = buffer_view`; the shim's "
            "`.data` assignment copies values instead of sharing storage (a parameter's MindSpore tensor must "
            "keep its identity for autograd), so the distributed optimizer's all-gather into the buffer would "
            "not reach the parameters at DP>1, and a bucket no optimizer wrote (the expert buckets during the "
            "dense step at EP>1) would bring back stale values. Refreshes such buckets from the parameters "
            "before the gather and copies the gathered slices into the parameters."),
    versions=">=0.16,<0.17",
    stacks=True,
)


def _torch_dist_without_dcp(original):
    # imported when the patch is applied: the module imports megatron-core and the facade at its top
    from .torch_dist_strategy import default_strategy_without_dcp

    return default_strategy_without_dcp(original)


register(
    "torch_dist_strategies_without_dcp",
    target="megatron.core.dist_checkpointing.strategies.base.get_default_strategy",
    replacement=_torch_dist_without_dcp,
    reason=("megatron-core's 'torch_dist' checkpoint strategies (dist_checkpointing/strategies/torch.py) are built "
            "on PyTorch DCP internals (planners, torch ShardedTensor, FileSystemWriterAsync) that the shim does not "
            "implement, and get_default_strategy imports that module first for every action. Serves the "
            "('torch_dist', 1) sharded save/load defaults with megatron_patches.torch_dist_strategy, which writes "
            "and reads the same files through the facade's DCP format code (shim/torch/distributed/checkpoint: "
            ".metadata pickled under torch's class names, __<rank>_0.distcp items), and "
            "looks the common strategies up without the DCP import. Megatron-specific: the format's ShardedTensor/"
            "ShardedObject keys, prepend axes, replica dedup and all_local_plans are megatron-core's own layer."),
    versions=">=0.16,<0.17",
    stacks=False,
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
