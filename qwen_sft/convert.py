"""HF checkpoint folders ↔ Megatron-LM-style TP × PP checkpoint folders, and the convert_ckpt job.

The tensors are mapped by `qwen_sft.weight_map` (one table per model family, one applier each way). For Qwen2 /
Qwen2.5 (HF `Qwen2ForCausalLM` → megatron-core local layer spec) the table reads:

| HF | Megatron | stage | TP split |
|---|---|---|---|
| model.embed_tokens.weight | embedding.word_embeddings.weight | first stage | rows (vocab) |
| model.layers.{g}.input_layernorm.weight | decoder.layers.{l}.input_layernorm.weight | per layer | replicated |
| model.layers.{g}.self_attn.o_proj.weight | decoder.layers.{l}.self_attention.linear_proj.weight | per layer | columns |
| model.layers.{g}.self_attn.q_proj.weight + model.layers.{g}.self_attn.k_proj.weight + model.layers.{g}.self_attn.v_proj.weight | decoder.layers.{l}.self_attention.linear_qkv.weight | per layer | fused qkv |
| model.layers.{g}.self_attn.q_proj.bias + model.layers.{g}.self_attn.k_proj.bias + model.layers.{g}.self_attn.v_proj.bias | decoder.layers.{l}.self_attention.linear_qkv.bias | per layer | fused qkv |
| model.layers.{g}.post_attention_layernorm.weight | decoder.layers.{l}.pre_mlp_layernorm.weight | per layer | replicated |
| model.layers.{g}.mlp.gate_proj.weight + model.layers.{g}.mlp.up_proj.weight | decoder.layers.{l}.mlp.linear_fc1.weight | per layer | fused gate-up |
| model.layers.{g}.mlp.down_proj.weight | decoder.layers.{l}.mlp.linear_fc2.weight | per layer | columns |
| model.norm.weight | decoder.final_layernorm.weight | last stage | replicated |
| lm_head.weight (tied: model.embed_tokens.weight) | output_layer.weight | last stage | rows (vocab) |

Checkpoint folder (CONTRIBUTING.md, Formats): `OUT/latest_checkpointed_iteration.txt` = `release`,
`OUT/release/mp_rank_{tp:02d}[_{pp:03d}][_{ep:03d}]/model_optim_rng.pt` (the EP part only at EP > 1, as
Megatron-LM) = `{"model": shard, "checkpoint_version": 3.0,
"iteration": 0, ...}`, `OUT/config.json`, `OUT/megatron_convert.json`, tokenizer files.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from parity import records
from qwen_sft import hf_io
from qwen_sft.dtypes import DTYPE_NAMES, dtype_name
from qwen_sft.model import padded_vocab_size as _padded_vocab_size
from qwen_sft.tokenizer import has_tokenizer_files
from qwen_sft.weight_map import hf_to_megatron, megatron_to_hf

__all__ = [
    "save_megatron_checkpoint",
    "load_megatron_checkpoint",
    "load_any_checkpoint",
    "megatron_rank_dir_name",
    "is_megatron_checkpoint",
    "CONVERT_META_FILE",
    "CHECKPOINT_VERSION",
    "convert_checkpoint",
    "ConvertConfig",
]

PathLike = Union[str, os.PathLike]
Shards = dict[tuple[int, ...], dict[str, Any]]

CONVERT_META_FILE = "megatron_convert.json"
CHECKPOINT_VERSION = 3.0
_RANK_FILE = "model_optim_rng.pt"


def megatron_rank_dir_name(tp_rank: int, pp_rank: int, pipeline_model_parallel_size: int,
                           ep_rank: Optional[int] = None) -> str:
    """Megatron-LM's per-rank folder name: `mp_rank_{tp:02d}` with PP = 1, `mp_rank_{tp:02d}_{pp:03d}` with PP > 1,
    then `_{ep:03d}` when the layout has expert parallelism (`ep_rank` given, EP > 1)."""
    name = f"mp_rank_{tp_rank:02d}" if pipeline_model_parallel_size == 1 else f"mp_rank_{tp_rank:02d}_{pp_rank:03d}"
    return name if ep_rank is None else f"{name}_{ep_rank:03d}"


def _dtype_name(shards: Mapping[tuple[int, int], Mapping[str, Any]]) -> str:
    dtypes = {v.dtype for s in shards.values() for v in s.values() if isinstance(v, torch.Tensor)}
    if len(dtypes) != 1:
        return "mixed:" + ",".join(sorted(dtype_name(x) for x in dtypes))
    return dtype_name(dtypes.pop())


def save_megatron_checkpoint(
    out_dir: PathLike,
    shards: Mapping[tuple[int, int], Mapping[str, Any]],
    hf_config: Mapping[str, Any],
    tokenizer_dir: Optional[PathLike] = None,
    *,
    tensor_model_parallel_size: Optional[int] = None,
    pipeline_model_parallel_size: Optional[int] = None,
    make_vocab_size_divisible_by: int = 128,
    extra_files_dir: Optional[PathLike] = None,
) -> list[Path]:
    """Write shards as a Megatron-LM-style release checkpoint folder (format: CONTRIBUTING.md, Formats).

    Writes `out_dir/latest_checkpointed_iteration.txt` (`release`), `out_dir/release/<rank dir>/model_optim_rng.pt`
    for every rank (`torch.save` of `{"model", "checkpoint_version": 3.0, "iteration": 0,
    "tensor_model_parallel_size", "pipeline_model_parallel_size"}`), `out_dir/config.json`,
    `out_dir/megatron_convert.json` (tp, pp, ep, padded_vocab_size, vocab_size, make_vocab_size_divisible_by, dtype,
    num_layers_per_stage) and, when `tokenizer_dir` is given, its tokenizer files. `generation_config.json` is
    copied from `extra_files_dir` when that folder has one.

    Args:
        out_dir: target folder (created; existing rank files are overwritten).
        shards: from `hf_to_megatron` (keys `(tp, pp)`, or `(tp, pp, ep)` with expert parallelism).
        hf_config: the HF config the shards came from.
        tokenizer_dir: folder with the tokenizer files, or None.
        tensor_model_parallel_size, pipeline_model_parallel_size: layout; inferred from the shard keys if None.
        make_vocab_size_divisible_by: recorded in megatron_convert.json.
        extra_files_dir: HF source folder to copy generation_config.json from, or None.

    Returns:
        The paths written, in order.

    Raises:
        ValueError: shards do not form a full TP × PP (× EP) grid.
    """
    out = Path(out_dir)
    tp = tensor_model_parallel_size or (max(k[0] for k in shards) + 1)
    pp = pipeline_model_parallel_size or (max(k[1] for k in shards) + 1)
    ep = 1 + max((k[2] for k in shards if len(k) == 3), default=0)
    expected = {(t, p) + ((e,) if ep > 1 else ()) for t in range(tp) for p in range(pp) for e in range(ep)}
    if set(shards) != expected:
        raise ValueError(f"save_megatron_checkpoint: shards {sorted(shards)} are not the full TP={tp} × PP={pp} "
                         f"× EP={ep} grid")
    embed = shards[next(k for k in sorted(shards) if k[1] == 0)].get("embedding.word_embeddings.weight")
    if not isinstance(embed, torch.Tensor):
        raise ValueError("save_megatron_checkpoint: shard (0, 0) lacks embedding.word_embeddings.weight")
    written: list[Path] = []
    release = out / "release"
    for key, state in sorted(shards.items(), key=lambda kv: (kv[0][1], kv[0][0]) + kv[0][2:]):
        t, p = key[0], key[1]
        rank_dir = release / megatron_rank_dir_name(t, p, pp, key[2] if ep > 1 else None)
        rank_dir.mkdir(parents=True, exist_ok=True)
        path = rank_dir / _RANK_FILE
        payload = {
            "model": dict(state),
            "checkpoint_version": CHECKPOINT_VERSION,
            "iteration": 0,
            "tensor_model_parallel_size": tp,
            "pipeline_model_parallel_size": pp,
            "expert_model_parallel_size": ep,
        }
        tmp = path.with_suffix(".pt.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        written.append(path)
    meta = {
        "tensor_model_parallel_size": tp,
        "pipeline_model_parallel_size": pp,
        "expert_model_parallel_size": ep,
        "padded_vocab_size": int(embed.shape[0]) * tp,
        "vocab_size": int(hf_config["vocab_size"]),
        "make_vocab_size_divisible_by": make_vocab_size_divisible_by,
        "num_layers_per_stage": int(hf_config["num_hidden_layers"]) // pp,
        "dtype": _dtype_name(shards),
        "checkpoint_version": CHECKPOINT_VERSION,
        "format": "megatron-lm release checkpoint, GPTModel local layer spec (qwen_sft.convert)",
    }
    hf_io.write_json(out / "config.json", dict(hf_config))
    hf_io.write_json(out / CONVERT_META_FILE, meta)
    written += [out / "config.json", out / CONVERT_META_FILE, records.write_tracker(out, release=True)]
    if extra_files_dir is not None:
        written += hf_io.copy_extra_files(extra_files_dir, out)
    if tokenizer_dir is not None:
        written += [out / n for n in hf_io.copy_tokenizer(tokenizer_dir, out)]
    return written


def is_megatron_checkpoint(path: PathLike) -> bool:
    """True when `path` is a folder with `latest_checkpointed_iteration.txt` and `config.json` (our Megatron format)."""
    p = Path(path)
    return (p / records.TRACKER_FILE).is_file() and (p / "config.json").is_file()


def load_megatron_checkpoint(
    ckpt_dir: PathLike,
) -> tuple[dict[str, Any], dict[tuple[int, int], dict[str, Any]], int, int]:
    """Read a folder written by `save_megatron_checkpoint` (or Megatron-LM's legacy layout with our config.json).

    The iteration comes from `latest_checkpointed_iteration.txt` (`release` → `release/`, a number N →
    `iter_{N:07d}/`). TP, PP and EP come from `megatron_convert.json` when present, else TP and PP from the rank
    folder names (EP = 1).

    Returns:
        `(hf_config, shards, tp, pp)` with `shards[(tp_rank, pp_rank)]` the `"model"` state dict of that rank;
        with expert parallelism (EP > 1 in megatron_convert.json) the keys are `(tp_rank, pp_rank, ep_rank)`.

    Raises:
        FileNotFoundError: the folder, tracker file, config.json or a rank file is missing.
        ValueError: the tracker file's content or the rank folders do not form a TP × PP grid.
    """
    root = Path(ckpt_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Megatron checkpoint folder {str(root)!r} does not exist")
    if not (root / records.TRACKER_FILE).is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a Megatron checkpoint: no {records.TRACKER_FILE}")
    it_dir = records.iteration_dir(root, *records.read_tracker(root))
    hf_config = hf_io.load_hf_config(root)
    meta_path = root / CONVERT_META_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        tp, pp = int(meta["tensor_model_parallel_size"]), int(meta["pipeline_model_parallel_size"])
        ep = int(meta.get("expert_model_parallel_size", 1))
    else:
        ep = 1
        ranks = []
        for child in it_dir.iterdir() if it_dir.is_dir() else []:
            m = re.fullmatch(r"mp_rank_(\d{2})(?:_(\d{3}))?", child.name)
            if m:
                ranks.append((int(m.group(1)), int(m.group(2) or 0)))
        if not ranks:
            raise FileNotFoundError(f"{str(it_dir)!r} has no mp_rank_* folders")
        tp, pp = max(r[0] for r in ranks) + 1, max(r[1] for r in ranks) + 1
    shards: Shards = {}
    for p in range(pp):
        for t in range(tp):
            for e in range(ep):
                path = it_dir / megatron_rank_dir_name(t, p, pp, e if ep > 1 else None) / _RANK_FILE
                if not path.is_file():
                    raise FileNotFoundError(f"Megatron checkpoint {str(root)!r} lacks {path} (TP={tp}, PP={pp}, "
                                            f"EP={ep})")
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if not isinstance(payload, dict) or "model" not in payload:
                    raise ValueError(f"{path}: expected a dict with a 'model' state dict")
                shards[(t, p) + ((e,) if ep > 1 else ())] = payload["model"]
    return hf_config, shards, tp, pp


def load_any_checkpoint(path: PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load HF-named weights from any checkpoint form this project uses.

    Accepts: an HF folder (config.json + model.safetensors / sharded index / pytorch_model.bin), a training output
    folder (its HF export sits at its root, CONTRIBUTING.md), a converted Megatron folder (merged back to HF
    names), or a ModelScope model id (resolved through `hf_io.resolve_model_path`).

    Returns:
        `(hf_config, hf_state_dict)`.

    Raises:
        FileNotFoundError: the path is none of those forms (the message lists what was looked for).
    """
    root = hf_io.resolve_model_path(path)
    if is_megatron_checkpoint(root):
        hf_config, shards, tp, pp = load_megatron_checkpoint(root)
        ep = 1 + max((k[2] for k in shards if len(k) == 3), default=0)
        return hf_config, megatron_to_hf(shards, hf_config, tp, pp, ep)
    if hf_io.is_hf_checkpoint(root):
        return hf_io.load_hf_config(root), hf_io.load_hf_state_dict(root)
    if (root / records.TRACKER_FILE).is_file():
        raise FileNotFoundError(
            f"{str(root)!r} holds megatron-core distributed checkpoints (training's checkpoints/ folder) but no "
            f"config.json; pass the training output folder itself (its HF export sits at its root), or convert one "
            f"of its checkpoints to an HF folder with tools/convert_ckpt.py --direction mg2hf"
        )
    if (root / "checkpoints" / records.TRACKER_FILE).is_file():
        raise FileNotFoundError(
            f"{str(root)!r} is a training output folder without an HF export (a --no_export run): convert one of "
            f"its checkpoints to an HF folder with tools/convert_ckpt.py --direction mg2hf (--iteration N; the "
            f"latest by default)"
        )
    raise FileNotFoundError(
        f"{str(root)!r} is neither an HF model folder (config.json with model.safetensors, "
        f"model.safetensors.index.json or pytorch_model.bin) nor a converted Megatron checkpoint "
        f"(config.json + {records.TRACKER_FILE})"
    )


_DIRECTIONS = {
    "hf2mg": "hf2mg",
    "hf2megatron": "hf2mg",
    "hf_to_megatron": "hf2mg",
    "mg2hf": "mg2hf",
    "megatron2hf": "mg2hf",
    "megatron_to_hf": "mg2hf",
    "auto": "auto",
}


@dataclass
class ConvertConfig:
    """Arguments of `tools/convert_ckpt.py` (see `convert_checkpoint` for their meaning)."""

    model_path: str
    output_path: str
    direction: str = "auto"
    tensor_model_parallel_size: int = 1
    pipeline_model_parallel_size: int = 1
    make_vocab_size_divisible_by: int = 128
    dtype: Optional[str] = None
    tokenizer_path: Optional[str] = None
    max_shard_bytes: int = hf_io.DEFAULT_MAX_SHARD_BYTES
    expert_model_parallel_size: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (flag names as on the command line)."""
        if self.direction.strip().lower().replace("-", "_") not in _DIRECTIONS:
            raise ValueError(f"--direction {self.direction!r}: expected one of {sorted(_DIRECTIONS)}")
        for flag, value in (("--tp", self.tensor_model_parallel_size), ("--pp", self.pipeline_model_parallel_size),
                            ("--ep", self.expert_model_parallel_size),
                            ("--make_vocab_size_divisible_by", self.make_vocab_size_divisible_by),
                            ("--max_shard_size", self.max_shard_bytes)):
            if value < 1:
                raise ValueError(f"{flag} must be >= 1, got {value}")
        if self.dtype is not None and self.dtype not in DTYPE_NAMES:
            raise ValueError(f"--dtype {self.dtype!r}: expected one of {sorted(DTYPE_NAMES)}")


def convert_checkpoint(
    model_path: PathLike,
    output_path: PathLike,
    *,
    direction: str = "auto",
    tensor_model_parallel_size: int = 1,
    pipeline_model_parallel_size: int = 1,
    make_vocab_size_divisible_by: int = 128,
    dtype: Optional[str] = None,
    tokenizer_path: Optional[PathLike] = None,
    max_shard_bytes: int = hf_io.DEFAULT_MAX_SHARD_BYTES,
    expert_model_parallel_size: int = 1,
    weights: Optional[tuple[Mapping[str, Any], Mapping[str, torch.Tensor]]] = None,
    input_format: Optional[str] = None,
) -> dict[str, Any]:
    """Convert a checkpoint between the HF folder format and the Megatron TP × PP folder format.

    `model_path` may be anything `load_any_checkpoint` reads (HF folder, training output folder, Megatron folder,
    ModelScope id); `direction` picks the output format: `hf2mg` writes a Megatron folder for the given TP/PP
    (a Megatron input is thereby re-sharded), `mg2hf` writes an HF folder, `auto` writes the other format than the
    input's. Tokenizer files come from `tokenizer_path`, else from the input folder when it has them.

    Args:
        dtype: cast floating tensors to this dtype name (float32/bf16/…); None keeps the stored dtype.
        expert_model_parallel_size: EP of a Megatron output (MoE families; experts spread over EP rank folders).
        max_shard_bytes: shard limit for HF safetensors output.
        weights: `(hf_config, hf_state)` already read from `model_path` by the caller (a training checkpoint:
            `qwen_sft.loading.load_training_checkpoint_hf`, which this module cannot import without a cycle);
            None reads `model_path` with `load_any_checkpoint`.
        input_format: the summary's name for the input form with `weights` (e.g. "training"); `auto` then
            writes an HF folder.

    Returns:
        A summary: direction, input and output folders, tp, pp, padded_vocab_size (hf2mg), dtype, tensor count,
        parameter count, tokenizer source, and the list of files written.

    Raises:
        ValueError: an unknown direction or dtype, or output_path equal to the input folder.
        FileNotFoundError / ConnectionError: from `load_any_checkpoint`.
    """
    key = direction.strip().lower().replace("-", "_")
    if key not in _DIRECTIONS:
        raise ValueError(f"--direction {direction!r}: expected one of {sorted(_DIRECTIONS)}")
    direction = _DIRECTIONS[key]
    if dtype is not None and dtype not in DTYPE_NAMES:
        raise ValueError(f"--dtype {dtype!r}: expected one of {sorted(DTYPE_NAMES)}")
    src = hf_io.resolve_model_path(model_path)
    out = Path(output_path)
    if out.exists() and out.resolve() == src.resolve():
        raise ValueError(f"--output_path {str(out)!r} is the input folder; choose a new folder")
    if weights is None:
        input_format = "megatron" if is_megatron_checkpoint(src) else "hf"
        hf_config, hf_state = load_any_checkpoint(src)
    else:
        input_format = input_format or "megatron"
        hf_config, hf_state = dict(weights[0]), dict(weights[1])
    if direction == "auto":
        direction = "hf2mg" if input_format == "hf" else "mg2hf"
    if dtype is not None:
        target = DTYPE_NAMES[dtype]
        hf_state = {k: v.to(target) if v.is_floating_point() else v for k, v in hf_state.items()}
        hf_config = dict(hf_config, torch_dtype=dtype_name(target))
    tok_src: Optional[Path] = Path(tokenizer_path) if tokenizer_path is not None else (src if has_tokenizer_files(src) else None)
    summary: dict[str, Any] = {
        "direction": direction,
        "input": str(src),
        "input_format": input_format,
        "output": str(out),
        "tensors": len(hf_state),
        "parameters": sum(v.numel() for v in hf_state.values()),
        "dtype": _dtype_name({(0, 0): hf_state}),
        "tokenizer": str(tok_src) if tok_src else None,
    }
    if direction == "hf2mg":
        shards = hf_to_megatron(
            hf_state, hf_config, tensor_model_parallel_size, pipeline_model_parallel_size, make_vocab_size_divisible_by,
            expert_model_parallel_size,
        )
        del hf_state
        summary.update(
            tp=tensor_model_parallel_size,
            pp=pipeline_model_parallel_size,
            ep=expert_model_parallel_size,
            padded_vocab_size=_padded_vocab_size(
                int(hf_config["vocab_size"]), tensor_model_parallel_size, make_vocab_size_divisible_by
            ),
        )
        files = save_megatron_checkpoint(
            out, shards, hf_config, tok_src,
            tensor_model_parallel_size=tensor_model_parallel_size,
            pipeline_model_parallel_size=pipeline_model_parallel_size,
            make_vocab_size_divisible_by=make_vocab_size_divisible_by,
            extra_files_dir=src,
        )
    else:
        files = hf_io.save_hf_checkpoint(
            out, hf_config, hf_state, tokenizer_dir=tok_src, max_shard_bytes=max_shard_bytes, extra_files_dir=src
        )
    summary["files"] = [str(f) for f in files]
    return summary
