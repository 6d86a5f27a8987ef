"""Replacements for Megatron-LM core_v0.16.1's checkpoint converter (tools/checkpoint/convert.py with
`--loader llama_mistral --saver core`), registered in patches.py.

The converter's loader and saver are Megatron-LM program modules imported by their top-level names (`loader_*`,
`saver_*`, from tools/checkpoint on sys.path), so these patches name them with `program_file`. In this release the
HF -> core path stops on every machine, real torch with CUDA included, before a weight is written:
- the loader's transformers check compares the minor version alone (`major >= 4 and minor >= 31`), rejecting 5.x;
- the legacy model the loader builds reads `args.apply_layernorm_1p`, an argument 0.16.1's parser no longer defines
  (NVIDIA/Megatron-LM#3432);
- the saver's core models ask `ProcessGroupCollection.use_mpu_process_groups()` for data-parallel groups the
  converter never fakes, and read the tensor-parallel size through `get_pg_size`, which is 1 unless
  torch.distributed is initialised: so a `--target-tensor-parallel-size 2` model would be built unsplit
  (NVIDIA/Megatron-LM#3080, #3132).
Where only CUDA is missing, the loader's arguments ask for kernels that exist only with Transformer Engine
(fused RoPE) or APEX (gradient-accumulation fusion), and the saver asks for Transformer Engine's version even with
`--saver-transformer-impl local`. None of these changes a weight: the kernels are not run by a conversion.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import sys

from packaging.version import Version

# The oldest transformers the loader supports (its own check means 4.31).
_MIN_TRANSFORMERS = Version("4.31")


def transformers_version_check(original):
    """`verify_transformers_version()`: transformers >= 4.31 as one version number (AssertionError, as
    Megatron's, when older)."""

    def verify_transformers_version():
        import transformers

        installed = Version(transformers.__version__)
        assert installed >= _MIN_TRANSFORMERS, (
            f"the llama_mistral loader needs transformers >= {_MIN_TRANSFORMERS}, found {installed}")

    return verify_transformers_version


def _fused_rope_available() -> bool:
    from megatron.core.models.common.embeddings import rope_utils

    return (getattr(rope_utils, "fused_apply_rotary_pos_emb", None) is not None
            or getattr(rope_utils, "fused_apply_rotary_pos_emb_thd", None) is not None)


def _apex_grad_accumulation_fusion_available() -> bool:
    return importlib.util.find_spec("fused_weight_gradient_mlp_cuda") is not None


def loader_args_for_this_release(original):
    """Wrap `load_args_from_checkpoint(args, model_size)`: after Megatron's own, give the arguments the legacy
    model reads but 0.16.1's parser lacks (`apply_layernorm_1p=False`: Qwen/Llama RMSNorm has no +1), and turn
    off the fused kernels whose library is absent (`apply_rope_fusion` without Transformer Engine's fused RoPE,
    `gradient_accumulation_fusion` without APEX's `fused_weight_gradient_mlp_cuda`), printing each change. The
    saver takes these values over with the loader's arguments."""

    def load_args_from_checkpoint(args, model_size):
        original(args, model_size)
        if not hasattr(args, "apply_layernorm_1p"):
            args.apply_layernorm_1p = False
        if getattr(args, "apply_rope_fusion", False) and not _fused_rope_available():
            args.apply_rope_fusion = False
            print("megatron_patches: apply_rope_fusion off (Transformer Engine's fused RoPE is not installed)")
        if getattr(args, "gradient_accumulation_fusion", False) and not _apex_grad_accumulation_fusion_available():
            args.gradient_accumulation_fusion = False
            print("megatron_patches: gradient_accumulation_fusion off (APEX's fused_weight_gradient_mlp_cuda is "
                  "not installed)")

    return load_args_from_checkpoint


def _transformer_engine_installed() -> bool:
    try:
        importlib.metadata.version("transformer-engine")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def saver_without_transformer_engine(original):
    """Wrap `MegatronCheckpointSaverBase.insert_megatron_path_and_check_te(self)`: with
    `--saver-transformer-impl local` and no Transformer Engine installed, only put Megatron-LM on sys.path (the
    folder two levels above tools/checkpoint, then `--megatron-path` first) without the version check; otherwise
    Megatron's own (which raises without Transformer Engine)."""

    def insert_megatron_path_and_check_te(self):
        if getattr(self.args, "saver_transformer_impl", None) != "local" or _transformer_engine_installed():
            return original(self)
        tools_dir = os.path.dirname(os.path.abspath(sys.modules[original.__module__].__file__))
        sys.path.append(os.path.abspath(os.path.join(tools_dir, os.path.pardir, os.path.pardir)))
        if self.args.megatron_path is not None:
            sys.path.insert(0, self.args.megatron_path)

    return insert_megatron_path_and_check_te


# The parallel_state groups the saver's core models and megatron.training.save_checkpoint ask for that the
# converter does not fake itself (it fakes the tensor- and expert-parallel groups).
_DATA_PARALLEL_GROUPS = ("_DATA_PARALLEL_GROUP", "_DATA_PARALLEL_GROUP_WITH_CP",
                         "_INTRA_PARTIAL_DATA_PARALLEL_GROUP_WITH_CP", "_EXPERT_DATA_PARALLEL_GROUP")


class _PipelineGroupView:
    """A stand-in pipeline group for the converter's one process: its rank and size are the ones the saver sets
    with `mpu.set_pipeline_model_parallel_rank/_world_size` while it fills stage after stage, so models built
    through `pg_collection.pp` (layer count and offset per stage) see the stage being filled."""

    def rank(self) -> int:
        from megatron.core import parallel_state

        return parallel_state._MPU_PIPELINE_MODEL_PARALLEL_RANK or 0

    def size(self) -> int:
        from megatron.core import parallel_state

        return parallel_state._MPU_PIPELINE_MODEL_PARALLEL_WORLD_SIZE or 1


def saver_process_groups(original):
    """Wrap `MegatronCheckpointSaverBase.initialize_megatron_env(self)`: after Megatron's own (which fakes the
    tensor- and expert-parallel groups with `_ConverterFakeProcessGroup`), initialise a one-process gloo group on a
    free loopback port (so `get_pg_size` reads the fake groups' sizes), stand in for the pipeline group
    (`_PipelineGroupView`: the stage the saver is filling) and fake the data-parallel groups (size 1), as the
    converter does for the others. No collective runs on
    them: the saver builds models and writes files in one process."""

    def initialize_megatron_env(self):
        original(self)
        import torch
        from megatron.core import parallel_state

        fake = sys.modules[original.__module__]._ConverterFakeProcessGroup
        if not torch.distributed.is_initialized():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                                 world_size=1)
        parallel_state._PIPELINE_MODEL_PARALLEL_GROUP = _PipelineGroupView()
        for name in _DATA_PARALLEL_GROUPS:
            if getattr(parallel_state, name) is None:
                setattr(parallel_state, name, fake(size=1))

    return initialize_megatron_env
