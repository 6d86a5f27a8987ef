"""The one model loader: any checkpoint form → this rank's megatron-core `GPTModel` with its weights.

`load_gpt` is used by training (any TP × PP layout), generation and evaluation (TP × PP processes, no data
parallelism, through `load_model_for_inference`; `load_model_tp1` is its one-process form). Steps: resolve the path (a ModelScope id becomes its local folder,
`qwen_sft.hf_io.resolve_model_path`); `qwen_sft.convert.load_any_checkpoint` → HF config + HF-named weights (an HF
folder, a training output folder, or a converted Megatron folder merged back); `qwen_sft.weight_map.hf_to_megatron`
for the layout; `qwen_sft.model.transformer_config_from_hf` + `build_gpt_model` for this rank's stage; the rank's
shard loaded (floating tensors cast to the parameter dtype first); the model moved to the layout's device.

Host memory while loading: every rank reads the whole checkpoint and keeps its own shard (≈ 2 × the model's size
per rank: ~30 GB for a bf16 7B model; the original workflow's 512 GB hosts have room for 4–8 ranks).
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.distributed as dist
from megatron.core import dist_checkpointing, parallel_state

from qwen_sft import checkpointing, hf_io, sizes
from qwen_sft.convert import is_megatron_checkpoint, load_any_checkpoint
from qwen_sft.dtypes import config_with_weight_dtype, dtype_name, resolve_dtype
from qwen_sft.tokenizer import has_tokenizer_files
from qwen_sft.model import build_gpt_model, transformer_config_from_hf
from qwen_sft.parallel import ParallelLayout, destroy, init_distributed, launch_env
from qwen_sft.weight_map import Dims, family_for, hf_to_megatron, megatron_to_hf

__all__ = ["LoadedGPT", "load_gpt", "load_model_for_inference", "load_model_tp1", "load_training_checkpoint_hf"]


@dataclasses.dataclass
class LoadedGPT:
    """What `load_gpt` returns.

    Attributes:
        model: this rank's `GPTModel` (train mode as megatron builds it), on `layout.device`.
        hf_config: the checkpoint's config.json (a dict).
        config: the megatron `TransformerConfig` the model was built with.
        model_dir: the local folder that was read (a ModelScope id resolved).
        kind: "megatron" (a converted Megatron folder) or "hf" (an HF or training output folder).
        vocab_size: HF vocabulary rows; padded_vocab_size: Megatron's rows over all TP ranks.
        dtype: the parameter dtype.
        load_s: wall seconds the load took.
    """

    model: torch.nn.Module
    hf_config: dict
    config: Any
    model_dir: Path
    kind: str
    vocab_size: int
    padded_vocab_size: int
    dtype: torch.dtype
    load_s: float


def load_gpt(model_path: Union[str, os.PathLike], layout: ParallelLayout, dtype: Union[str, torch.dtype, None], *,
             seq_length: int, make_vocab_size_divisible_by: int = 128, parallel_output: bool = True,
             padded_vocab_size: Optional[int] = None, **config_overrides: Any) -> LoadedGPT:
    """Load any checkpoint form as this rank's `GPTModel` of `layout` (see the module docstring).

    Args:
        model_path: HF directory, converted Megatron checkpoint, training output directory or ModelScope id.
        layout: this rank's place (`qwen_sft.parallel.init_distributed` has set up megatron's parallel state).
        dtype: parameter dtype: a torch.dtype, a name of `qwen_sft.dtypes.DTYPE_NAMES`, or "auto"/None
            (config.json's `torch_dtype`, else float32). bf16/fp16 also set megatron's bf16/fp16 flags.
        seq_length: the model's `max_sequence_length`.
        make_vocab_size_divisible_by: Megatron's vocabulary padding multiple.
        parallel_output: False gathers the logits over TP ranks (generation); True keeps them split (training).
        padded_vocab_size: build the embedding and output layer with this many rows instead of Megatron's
            padding of `make_vocab_size_divisible_by` × TP (a training checkpoint saved in another layout; see
            `qwen_sft.sizes.vocab_padding_multiple`).
        config_overrides: more `TransformerConfig` fields (e.g. `calculate_per_token_loss=True`).

    Returns:
        A `LoadedGPT`.

    Raises:
        FileNotFoundError / ConnectionError: from `resolve_model_path` / `load_any_checkpoint`.
        ValueError: a bad dtype, a config the model cannot be built from, or weights that do not fit the model
            (the message names the ranks and the first missing / unexpected keys).
    """
    t0 = time.perf_counter()
    model_dir = hf_io.resolve_model_path(model_path)
    hf_config, hf_state = load_any_checkpoint(str(model_dir))
    hf_config = dict(hf_config)
    kind = "megatron" if is_megatron_checkpoint(model_dir) else "hf"
    params_dtype = resolve_dtype(dtype, hf_config)
    tp, pp = layout.tensor_model_parallel_size, layout.pipeline_model_parallel_size
    vocab_size = int(hf_config["vocab_size"])
    if padded_vocab_size is not None:
        make_vocab_size_divisible_by = sizes.vocab_padding_multiple(padded_vocab_size, vocab_size, tp,
                                                                    make_vocab_size_divisible_by)
    ep = layout.expert_model_parallel_size
    shards = hf_to_megatron(hf_state, hf_config, tp, pp, make_vocab_size_divisible_by, ep)
    shard = shards[(layout.tp_rank, layout.pp_rank) + ((layout.ep_rank,) if ep > 1 else ())]
    del hf_state, shards
    padded = sizes.padded_vocab_size(vocab_size, tp, make_vocab_size_divisible_by)
    config = transformer_config_from_hf(
        hf_config, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp, expert_model_parallel_size=ep,
        params_dtype=params_dtype,
        bf16=params_dtype == torch.bfloat16, fp16=params_dtype == torch.float16, **config_overrides)
    model = build_gpt_model(hf_config, config, padded_vocab_size=padded, seq_length=seq_length,
                            pre_process=layout.is_first_stage, post_process=layout.is_last_stage,
                            parallel_output=parallel_output)
    shard = {k: (v.to(params_dtype) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in shard.items()}
    missing, unexpected = model.load_state_dict(shard, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise ValueError(f"weights from {model_path} do not fit the model (TP rank {layout.tp_rank}, "
                         f"PP rank {layout.pp_rank}, EP rank {layout.ep_rank}): missing {missing[:5]}, "
                         f"unexpected {list(unexpected)[:5]}")
    del shard
    model.to(layout.device)
    return LoadedGPT(model=model, hf_config=hf_config, config=config, model_dir=Path(model_dir), kind=kind,
                     vocab_size=vocab_size, padded_vocab_size=padded, dtype=params_dtype,
                     load_s=time.perf_counter() - t0)


def load_model_for_inference(model_path: Union[str, os.PathLike], *, seq_length: int,
                             dtype: Union[str, torch.dtype, None] = "auto", make_vocab_size_divisible_by: int = 128,
                             seed: int = 1234, tensor_model_parallel_size: int = 1,
                             pipeline_model_parallel_size: int = 1, parallel_output: bool = False):
    """`load_gpt` for generation and evaluation: TP × PP processes (one process when both are 1), model in eval mode.

    Every process of the launch holds one (TP rank, PP rank) of the model: the world size must be exactly
    TP × PP (no data parallelism; a process group of another size is an error naming both numbers). Sets up
    `torch.distributed` + megatron `parallel_state` (`qwen_sft.parallel.init_distributed`: a one-process gloo group
    when alone, the launcher's env:// rendezvous under torchrun / torch.distributed.launch) and loads with
    `parallel_output=False` by default (full-vocabulary logits on every TP rank of the last stage). Any checkpoint form loads
    at any layout its config allows: the weights are merged to HF names and split again for this layout.

    Args:
        model_path: HF directory, converted Megatron checkpoint directory (any layout), or training output
            directory.
        seq_length: the model's `max_sequence_length` (>= 1).
        dtype: "auto" (config.json `torch_dtype`, else float32), "float32"/"fp32", "bfloat16"/"bf16",
            "float16"/"fp16", or a torch.dtype.
        make_vocab_size_divisible_by: Megatron's vocabulary padding multiple (padding rows are never used).
        seed: seeds torch / megatron RNGs (weights are loaded, so it only matters for reproducibility of set-up).
        tensor_model_parallel_size, pipeline_model_parallel_size: TP and PP degrees (>= 1).
        parallel_output: True keeps each TP rank's vocabulary slice of the logits (evaluation's vocabulary-
            parallel cross entropy); False (default) gathers them.

    Returns:
        `(model, hf_config, info)`; info holds model_path, vocab_size (HF rows), padded_vocab_size, dtype, device
        (a torch.device), num_parameters (this rank's), load_s and layout (the `ParallelLayout`).

    Raises:
        FileNotFoundError / ValueError: from `load_gpt` (a layout the config does not allow: heads, query groups or
            the FFN size not divisible by TP, layers not divisible by PP) or bad arguments.
        RuntimeError: a world size other than TP × PP, or megatron parallel_state already set up with another TP/PP.
    """
    t0 = time.perf_counter()
    if not isinstance(seq_length, int) or seq_length < 1:
        raise ValueError(f"seq_length must be an int >= 1, got {seq_length!r}")
    tp, pp = tensor_model_parallel_size, pipeline_model_parallel_size
    for name, value in (("tensor_model_parallel_size", tp), ("pipeline_model_parallel_size", pp)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    model_dir = hf_io.resolve_model_path(model_path)
    if (model_dir / "config.json").is_file():  # every checkpoint form has one; a missing one fails in load_gpt
        # The layout is checked against the config first, so a bad --tp/--pp fails the same way in one process
        # as in a launch (and before the process group waits for ranks that will never come).
        hf_config = hf_io.load_hf_config(model_dir)
        try:
            Dims(hf_config, tp, pp, make_vocab_size_divisible_by, family_for(hf_config))
        except ValueError as exc:
            raise ValueError(f"{model_path}: cannot run at TP={tp}, PP={pp}: {exc}") from None
    world = dist.get_world_size() if dist.is_initialized() else launch_env().world_size
    if world != tp * pp:
        raise RuntimeError(
            f"generation and evaluation run one process per (TP, PP) rank: TP={tp} × PP={pp} needs {tp * pp} "
            f"process(es), this launch has world size {world}"
            + (". Run the tool without a launcher, or pass --tp/--pp." if tp * pp == 1 else
               f". Launch with torchrun --nproc_per_node {tp * pp}."))
    if parallel_state.model_parallel_is_initialized() and (
            parallel_state.get_tensor_model_parallel_world_size() != tp
            or parallel_state.get_pipeline_model_parallel_world_size() != pp):
        raise RuntimeError(f"megatron parallel_state is initialised with "
                           f"TP={parallel_state.get_tensor_model_parallel_world_size()}, "
                           f"PP={parallel_state.get_pipeline_model_parallel_world_size()}; this load needs TP={tp}, "
                           f"PP={pp}")
    layout = init_distributed(tp, pp, seed=seed)
    loaded = load_gpt(model_dir, layout, dtype, seq_length=seq_length,
                      make_vocab_size_divisible_by=make_vocab_size_divisible_by, parallel_output=parallel_output)
    model = loaded.model.eval()
    info = {
        "model_path": str(model_path),
        "vocab_size": loaded.vocab_size,
        "padded_vocab_size": loaded.padded_vocab_size,
        "dtype": dtype_name(loaded.dtype),
        "device": layout.device,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "load_s": time.perf_counter() - t0,
        "layout": layout,
    }
    return model, loaded.hf_config, info


def load_model_tp1(model_path: Union[str, os.PathLike], *, seq_length: int,
                   dtype: Union[str, torch.dtype, None] = "auto", make_vocab_size_divisible_by: int = 128,
                   seed: int = 1234):
    """`load_model_for_inference` in one process at TP = PP = 1 (same arguments and errors; info without the
    layout)."""
    model, hf_config, info = load_model_for_inference(
        model_path, seq_length=seq_length, dtype=dtype, make_vocab_size_divisible_by=make_vocab_size_divisible_by,
        seed=seed)
    info.pop("layout")
    return model, hf_config, info


def load_training_checkpoint_hf(checkpoint: Union[str, os.PathLike], *, seed: int = 1234
                                ) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """A training checkpoint (`qwen_sft.checkpointing.save_checkpoint`'s megatron-core torch_dist folder, saved at
    any TP × PP × EP) as HF-named weights, read in this one process at TP = PP = EP = 1.

    The path training's resume takes: the model is built by `load_gpt` from the run's `--model_path` (recorded in
    the checkpoint's `train_config`; it supplies config.json and is then overwritten) with the checkpoint's padded
    vocabulary (`checkpointing.padded_vocab_rows`) in the run's `--mixed_precision` dtype, megatron-core's
    `dist_checkpointing.load` reshards the saved model tensors into it (the optimizer, scheduler and RNG states are
    not read), and `weight_map.megatron_to_hf` names them as HF (vocabulary padding stripped). Sets up and tears
    down a one-process `torch.distributed` group; call it outside a launch.

    Args:
        checkpoint: one `iter_XXXXXXX` folder (`checkpointing.find_training_checkpoint` resolves the other forms).
        seed: seeds the set-up (the weights are loaded, so it does not change them).

    Returns:
        `(hf_config, hf_state, info)`: config.json of the run's model with `dtype` (and `torch_dtype` when present)
        set to the weights' dtype, as training's HF export writes it; the HF state dict; info with iteration,
        layout (the saving run's TP/PP/DP/EP degrees), model_path, dtype and tokenizer_path (the run's
        `--tokenizer_path`, else its model folder, when it has tokenizer files; else None).

    Raises:
        FileNotFoundError: the run's `--model_path` is gone (its config.json is needed to build the model).
        ValueError: a checkpoint without `train_config` (not one tools/train.py saved).
    """
    path = Path(checkpoint)
    common = dist_checkpointing.load_common_state_dict(str(path))
    train_config = common.get("train_config") if isinstance(common, dict) else None
    if not train_config or not train_config.get("model_path"):
        raise ValueError(f"{path}: not a tools/train.py checkpoint (no train_config with model_path in its common "
                         f"state)")
    model_path = train_config["model_path"]
    try:
        hf_io.resolve_model_path(model_path)
    except (FileNotFoundError, ConnectionError) as exc:
        raise FileNotFoundError(f"{path}: the model the run started from ({model_path!r}, train_config.model_path) "
                                f"is needed for its config.json and cannot be read: {exc}") from None
    layout = init_distributed(1, 1, seed=seed)
    try:
        loaded = load_gpt(model_path, layout, train_config.get("mixed_precision") or "fp32",
                          seq_length=int(train_config.get("seq_length") or 1),
                          make_vocab_size_divisible_by=int(train_config.get("make_vocab_size_divisible_by") or 128),
                          padded_vocab_size=checkpointing.padded_vocab_rows(path))
        gpt = loaded.model
        state = dist_checkpointing.load({"model": gpt.sharded_state_dict()}, str(path))
        with torch.no_grad():
            gpt.load_state_dict(state["model"], strict=False)
        shard = {k: v.detach().cpu() for k, v in gpt.state_dict().items()
                 if not k.endswith("_extra_state") and v is not None}
    finally:
        destroy()
    hf_state = megatron_to_hf({(0, 0): shard}, loaded.hf_config, 1, 1)
    hf_config = config_with_weight_dtype(loaded.hf_config, loaded.dtype)
    tokenizer = train_config.get("tokenizer_path") or str(loaded.model_dir)
    info = {"iteration": common.get("iteration"), "layout": common.get("layout"), "model_path": model_path,
            "dtype": dtype_name(loaded.dtype), "tokenizer_path": tokenizer if has_tokenizer_files(tokenizer) else None}
    return hf_config, hf_state, info
