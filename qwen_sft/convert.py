"""HF Qwen2/Qwen2.5 state dict ↔ megatron-core `GPTModel` state dicts split over TP × PP, and checkpoint folders.

Name and layout mapping (HF `Qwen2ForCausalLM` → megatron-core local layer spec, layer `g` of the HF model is layer
`g - stage * layers_per_stage` of pipeline stage `g // layers_per_stage`):

| HF | Megatron | TP split |
|---|---|---|
| model.embed_tokens.weight [V, h] | embedding.word_embeddings.weight [Vp, h] (first stage) | rows (vocab) |
| model.layers.g.input_layernorm.weight | decoder.layers.l.input_layernorm.weight | replicated |
| self_attn.{q,k,v}_proj.{weight,bias} | self_attention.linear_qkv.{weight,bias} | rows, by query group |
| self_attn.o_proj.weight [h, nh*d] | self_attention.linear_proj.weight | columns |
| post_attention_layernorm.weight | pre_mlp_layernorm.weight | replicated |
| mlp.{gate,up}_proj.weight [f, h] | mlp.linear_fc1.weight [2f/TP, h] per rank = [gate_r; up_r] | rows |
| mlp.down_proj.weight [h, f] | mlp.linear_fc2.weight | columns |
| model.norm.weight | decoder.final_layernorm.weight (last stage) | replicated |
| lm_head.weight [V, h] | output_layer.weight [Vp, h] (last stage) | rows (vocab) |

`linear_qkv` holds, for each of the `ng` query groups in order, that group's `nh/ng` query heads followed by its
key head and its value head (each `d` rows); TP rank `r` holds groups `r*ng/TP … (r+1)*ng/TP - 1`, i.e. the
r-th contiguous chunk. The vocabulary is padded with zero rows to `padded_vocab_size` (Megatron-LM's rule, see
`qwen_sft.model.padded_vocab_size`) and the padding is stripped on the way back.

Tied embeddings (`tie_word_embeddings`): HF stores only `model.embed_tokens.weight`. With PP = 1 megatron's
output layer reuses the embedding (no `output_layer.weight` key); with PP > 1 the last stage holds its own copy
as `output_layer.weight` (megatron keeps it equal to the embedding through the embedding group), so the
converter writes the embedding there and checks on the way back that both copies agree.

Every linear layer of the local spec carries an `_extra_state` entry (value None) in `GPTModel.state_dict()`;
the shards include them so that `model.load_state_dict(shard, strict=True)` succeeds.

Checkpoint folder (CONTRIBUTING.md, Formats): `OUT/latest_checkpointed_iteration.txt` = `release`,
`OUT/release/mp_rank_{tp:02d}[_{pp:03d}]/model_optim_rng.pt` = `{"model": shard, "checkpoint_version": 3.0,
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

from qwen_sft import hf_io
from qwen_sft.model import head_dim_from_hf, padded_vocab_size as _padded_vocab_size

__all__ = [
    "hf_to_megatron",
    "megatron_to_hf",
    "save_megatron_checkpoint",
    "load_megatron_checkpoint",
    "load_any_checkpoint",
    "megatron_rank_dir_name",
    "is_megatron_checkpoint",
    "CONVERT_META_FILE",
    "CHECKPOINT_VERSION",
    "convert_checkpoint",
    "ConvertConfig",
    "DTYPE_NAMES",
]

PathLike = Union[str, os.PathLike]
Shards = dict[tuple[int, int], dict[str, Any]]

CONVERT_META_FILE = "megatron_convert.json"
CHECKPOINT_VERSION = 3.0
_TRACKER_FILE = "latest_checkpointed_iteration.txt"
_RANK_FILE = "model_optim_rng.pt"

# HF keys that carry no learned weights: the RoPE frequency buffer some older exports contain, which megatron
# recomputes from rope_theta. They are dropped; any other key that is not mapped is an error.
_IGNORABLE_HF_KEY = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")

_LAYER_HF = {
    "input_layernorm.weight": "model.layers.{g}.input_layernorm.weight",
    "pre_mlp_layernorm.weight": "model.layers.{g}.post_attention_layernorm.weight",
    "self_attention.linear_proj.weight": "model.layers.{g}.self_attn.o_proj.weight",
    "mlp.linear_fc2.weight": "model.layers.{g}.mlp.down_proj.weight",
}
_LINEAR_EXTRA_STATE = (
    "self_attention.linear_proj._extra_state",
    "self_attention.linear_qkv._extra_state",
    "mlp.linear_fc1._extra_state",
    "mlp.linear_fc2._extra_state",
)


class _Dims:
    """Sizes derived from an HF config and a parallel layout (validated)."""

    def __init__(self, hf_config: Mapping[str, Any], tp: int, pp: int, make_vocab_size_divisible_by: int):
        for name, value in (("tensor_model_parallel_size", tp), ("pipeline_model_parallel_size", pp)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        try:
            self.hidden = int(hf_config["hidden_size"])
            self.layers = int(hf_config["num_hidden_layers"])
            self.heads = int(hf_config["num_attention_heads"])
            self.groups = int(hf_config.get("num_key_value_heads") or self.heads)
            self.ffn = int(hf_config["intermediate_size"])
            self.vocab = int(hf_config["vocab_size"])
        except KeyError as exc:
            raise ValueError(f"hf_config (config.json) lacks the Qwen2 key {exc.args[0]!r}") from None
        self.head_dim = head_dim_from_hf(hf_config)
        self.tied = bool(hf_config.get("tie_word_embeddings", False))
        self.tp, self.pp = tp, pp
        if self.heads % self.groups:
            raise ValueError(f"num_attention_heads={self.heads} is not divisible by num_key_value_heads={self.groups}")
        if self.groups % tp or self.heads % tp:
            raise ValueError(
                f"num_attention_heads={self.heads} and num_key_value_heads={self.groups} must be divisible by "
                f"tensor_model_parallel_size={tp}"
            )
        if self.ffn % tp:
            raise ValueError(f"intermediate_size={self.ffn} is not divisible by tensor_model_parallel_size={tp}")
        if self.layers % pp:
            raise ValueError(f"num_hidden_layers={self.layers} is not divisible by pipeline_model_parallel_size={pp}")
        self.layers_per_stage = self.layers // pp
        self.padded_vocab = _padded_vocab_size(self.vocab, tp, make_vocab_size_divisible_by)
        self.q_per_group = self.heads // self.groups


def _need(state: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if key not in state:
        raise KeyError(f"{what} lacks {key!r}")
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} {key!r} is a {type(value).__name__}, expected a tensor")
    if tuple(value.shape) != shape:
        raise ValueError(f"{what} {key!r} has shape {tuple(value.shape)}, expected {shape} from config.json")
    return value


def _own(t: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor with its own storage (torch.save of a view would store the whole base tensor)."""
    return t.contiguous().clone()


def _pad_vocab(weight: torch.Tensor, padded: int) -> torch.Tensor:
    if weight.shape[0] == padded:
        return weight
    pad = weight.new_zeros((padded - weight.shape[0],) + tuple(weight.shape[1:]))
    return torch.cat([weight, pad], dim=0)


def _qkv_fuse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, d: _Dims) -> torch.Tensor:
    """HF q [nh*hd, ...], k/v [ng*hd, ...] → megatron linear_qkv [ng*(nh/ng+2)*hd, ...] (per-group interleave)."""
    tail = tuple(q.shape[1:])
    q = q.reshape((d.groups, d.q_per_group * d.head_dim) + tail)
    k = k.reshape((d.groups, d.head_dim) + tail)
    v = v.reshape((d.groups, d.head_dim) + tail)
    return torch.cat([q, k, v], dim=1).reshape((-1,) + tail)


def _qkv_split(qkv: torch.Tensor, d: _Dims) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of `_qkv_fuse` on the full (TP-merged) linear_qkv weight or bias."""
    tail = tuple(qkv.shape[1:])
    per_group = (d.q_per_group + 2) * d.head_dim
    grouped = qkv.reshape((d.groups, per_group) + tail)
    qn = d.q_per_group * d.head_dim
    q = grouped[:, :qn].reshape((d.heads * d.head_dim,) + tail)
    k = grouped[:, qn : qn + d.head_dim].reshape((d.groups * d.head_dim,) + tail)
    v = grouped[:, qn + d.head_dim :].reshape((d.groups * d.head_dim,) + tail)
    return q, k, v


def hf_to_megatron(
    hf_state: Mapping[str, torch.Tensor],
    hf_config: Mapping[str, Any],
    tensor_model_parallel_size: int,
    pipeline_model_parallel_size: int,
    make_vocab_size_divisible_by: int = 128,
) -> Shards:
    """Split an HF Qwen2 state dict into the `GPTModel.state_dict()` of every (tp_rank, pp_rank).

    Args:
        hf_state: HF `Qwen2ForCausalLM` tensors (`model.…`, `lm_head.weight` unless tied); dtypes are kept.
        hf_config: the parsed `config.json`.
        tensor_model_parallel_size, pipeline_model_parallel_size: target TP and PP degrees.
        make_vocab_size_divisible_by: Megatron's per-rank vocabulary multiple (padding rule).

    Returns:
        `{(tp_rank, pp_rank): state_dict}`, each keyed exactly like megatron-core's `GPTModel.state_dict()` on
        that rank (layer indices local to the stage, `_extra_state` entries = None), tensors contiguous with
        their own storage.

    Raises:
        KeyError: a weight the config implies is missing from `hf_state`.
        ValueError: a shape disagreeing with the config, unknown extra keys in `hf_state`, or sizes not
            divisible by the parallel degrees.
    """
    d = _Dims(hf_config, tensor_model_parallel_size, pipeline_model_parallel_size, make_vocab_size_divisible_by)
    what = "HF state dict"
    used: set[str] = set()

    def take(key: str, shape: tuple[int, ...]) -> torch.Tensor:
        used.add(key)
        return _need(hf_state, key, shape, what)

    h, hd, tp = d.hidden, d.head_dim, d.tp
    embed = take("model.embed_tokens.weight", (d.vocab, h))
    if d.tied:
        if "lm_head.weight" in hf_state:  # some exports keep the tied copy; it must be the same matrix
            used.add("lm_head.weight")
            if not torch.equal(hf_state["lm_head.weight"], embed):
                raise ValueError(
                    "config.json says tie_word_embeddings=true but lm_head.weight differs from "
                    "model.embed_tokens.weight"
                )
        output = embed
    else:
        output = take("lm_head.weight", (d.vocab, h))
    final_norm = take("model.norm.weight", (h,))

    shards: Shards = {(t, p): {} for p in range(d.pp) for t in range(tp)}
    embed_parts = _pad_vocab(embed, d.padded_vocab).chunk(tp, dim=0)
    output_parts = _pad_vocab(output, d.padded_vocab).chunk(tp, dim=0)
    for p in range(d.pp):
        first, last = p == 0, p == d.pp - 1
        for t in range(tp):
            if first:
                shards[(t, p)]["embedding.word_embeddings.weight"] = _own(embed_parts[t])
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            pre = f"model.layers.{g}."
            q_w = take(pre + "self_attn.q_proj.weight", (d.heads * hd, h))
            k_w = take(pre + "self_attn.k_proj.weight", (d.groups * hd, h))
            v_w = take(pre + "self_attn.v_proj.weight", (d.groups * hd, h))
            q_b = take(pre + "self_attn.q_proj.bias", (d.heads * hd,))
            k_b = take(pre + "self_attn.k_proj.bias", (d.groups * hd,))
            v_b = take(pre + "self_attn.v_proj.bias", (d.groups * hd,))
            qkv_w = _qkv_fuse(q_w, k_w, v_w, d).chunk(tp, dim=0)
            qkv_b = _qkv_fuse(q_b, k_b, v_b, d).chunk(tp, dim=0)
            o_w = take(pre + "self_attn.o_proj.weight", (h, d.heads * hd)).chunk(tp, dim=1)
            gate = take(pre + "mlp.gate_proj.weight", (d.ffn, h)).chunk(tp, dim=0)
            up = take(pre + "mlp.up_proj.weight", (d.ffn, h)).chunk(tp, dim=0)
            down = take(pre + "mlp.down_proj.weight", (h, d.ffn)).chunk(tp, dim=1)
            in_norm = take(pre + "input_layernorm.weight", (h,))
            post_norm = take(pre + "post_attention_layernorm.weight", (h,))
            for t in range(tp):
                out = shards[(t, p)]
                mp = f"decoder.layers.{local}."
                out[mp + "input_layernorm.weight"] = _own(in_norm)
                out[mp + "self_attention.linear_proj.weight"] = _own(o_w[t])
                out[mp + "self_attention.linear_qkv.weight"] = _own(qkv_w[t])
                out[mp + "self_attention.linear_qkv.bias"] = _own(qkv_b[t])
                out[mp + "pre_mlp_layernorm.weight"] = _own(post_norm)
                out[mp + "mlp.linear_fc1.weight"] = _own(torch.cat([gate[t], up[t]], dim=0))
                out[mp + "mlp.linear_fc2.weight"] = _own(down[t])
                for key in _LINEAR_EXTRA_STATE:
                    out[mp + key] = None
        if last:
            for t in range(tp):
                out = shards[(t, p)]
                out["decoder.final_layernorm.weight"] = _own(final_norm)
                if not d.tied or d.pp > 1:
                    out["output_layer.weight"] = _own(output_parts[t])
                out["output_layer._extra_state"] = None

    unknown = sorted(k for k in hf_state if k not in used and not _IGNORABLE_HF_KEY.match(k))
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" … ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise ValueError(f"HF state dict has keys a Qwen2 model of this config.json does not use: {shown}")
    return shards


def megatron_to_hf(
    shards: Mapping[tuple[int, int], Mapping[str, Any]],
    hf_config: Mapping[str, Any],
    tensor_model_parallel_size: int,
    pipeline_model_parallel_size: int,
) -> dict[str, torch.Tensor]:
    """Merge per-rank `GPTModel` state dicts back into one HF Qwen2 state dict (inverse of `hf_to_megatron`).

    The vocabulary padding is stripped to `hf_config["vocab_size"]` rows. With tied embeddings no
    `lm_head.weight` is returned (HF's convention); with PP > 1 the last stage's copy must equal the embedding.
    The padded vocabulary size is read from the shards (any multiple rule is accepted).

    Args:
        shards: `{(tp_rank, pp_rank): state_dict}` for every rank of the layout.
        hf_config: the parsed `config.json` of the model.
        tensor_model_parallel_size, pipeline_model_parallel_size: the layout the shards were made for.

    Returns:
        `{hf_key: tensor}` in HF `Qwen2ForCausalLM` naming, tensors contiguous.

    Raises:
        KeyError: a rank or a key missing from `shards`.
        ValueError: shapes disagreeing with the config, leftover unknown keys, or tied copies that differ.
    """
    tp, pp = tensor_model_parallel_size, pipeline_model_parallel_size
    d = _Dims(hf_config, tp, pp, 1)
    missing = [(t, p) for p in range(pp) for t in range(tp) if (t, p) not in shards]
    if missing:
        raise KeyError(f"megatron shards lack ranks (tp_rank, pp_rank) {missing} for TP={tp}, PP={pp}")
    extra = sorted(set(shards) - {(t, p) for p in range(pp) for t in range(tp)})
    if extra:
        raise ValueError(f"megatron shards hold ranks {extra} outside TP={tp}, PP={pp}")
    used: dict[tuple[int, int], set[str]] = {r: set() for r in shards}
    h, hd = d.hidden, d.head_dim

    def take(rank: tuple[int, int], key: str) -> torch.Tensor:
        state = shards[rank]
        if key not in state:
            raise KeyError(f"megatron shard (tp_rank={rank[0]}, pp_rank={rank[1]}) lacks {key!r}")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"megatron shard {rank} {key!r} is a {type(value).__name__}, expected a tensor")
        used[rank].add(key)
        return value

    def cat(p: int, key: str, dim: int) -> torch.Tensor:
        return torch.cat([take((t, p), key) for t in range(tp)], dim=dim)

    def same(p: int, key: str) -> torch.Tensor:
        parts = [take((t, p), key) for t in range(tp)]
        for t, part in enumerate(parts[1:], start=1):
            if not torch.equal(part, parts[0]):
                raise ValueError(f"{key!r} is replicated over TP but differs between tp_rank 0 and {t} (pp_rank {p})")
        return parts[0]

    def check(key: str, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if tuple(value.shape) != shape:
            raise ValueError(f"merged megatron {key!r} has shape {tuple(value.shape)}, expected {shape}")
        return value.contiguous()

    def vocab_rows(key: str, value: torch.Tensor) -> torch.Tensor:
        if value.dim() != 2 or value.shape[1] != h or value.shape[0] < d.vocab:
            raise ValueError(
                f"merged megatron {key!r} has shape {tuple(value.shape)}, expected [>= {d.vocab}, {h}] "
                f"(padded vocabulary × hidden)"
            )
        return value[: d.vocab].contiguous()

    out: dict[str, torch.Tensor] = {}
    embed = vocab_rows("embedding.word_embeddings.weight", cat(0, "embedding.word_embeddings.weight", 0))
    out["model.embed_tokens.weight"] = embed
    for p in range(pp):
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            mp, pre = f"decoder.layers.{local}.", f"model.layers.{g}."
            for mkey, hkey in _LAYER_HF.items():
                dim = {"self_attention.linear_proj.weight": 1, "mlp.linear_fc2.weight": 1}.get(mkey)
                value = cat(p, mp + mkey, dim) if dim is not None else same(p, mp + mkey)
                shape = {
                    "input_layernorm.weight": (h,),
                    "pre_mlp_layernorm.weight": (h,),
                    "self_attention.linear_proj.weight": (h, d.heads * hd),
                    "mlp.linear_fc2.weight": (h, d.ffn),
                }[mkey]
                out[hkey.format(g=g)] = check(mp + mkey, value, shape)
            qkv_rows = (d.heads + 2 * d.groups) * hd
            qkv_w = check(mp + "self_attention.linear_qkv.weight", cat(p, mp + "self_attention.linear_qkv.weight", 0), (qkv_rows, h))
            qkv_b = check(mp + "self_attention.linear_qkv.bias", cat(p, mp + "self_attention.linear_qkv.bias", 0), (qkv_rows,))
            for name, w, b in zip("qkv", _qkv_split(qkv_w, d), _qkv_split(qkv_b, d)):
                out[pre + f"self_attn.{name}_proj.weight"] = w.contiguous()
                out[pre + f"self_attn.{name}_proj.bias"] = b.contiguous()
            gates, ups = [], []
            for t in range(tp):
                fc1 = take((t, p), mp + "mlp.linear_fc1.weight")
                if tuple(fc1.shape) != (2 * d.ffn // tp, h):
                    raise ValueError(
                        f"megatron shard {(t, p)} {mp}mlp.linear_fc1.weight has shape {tuple(fc1.shape)}, "
                        f"expected {(2 * d.ffn // tp, h)}"
                    )
                gate, up = fc1.chunk(2, dim=0)
                gates.append(gate)
                ups.append(up)
            out[pre + "mlp.gate_proj.weight"] = torch.cat(gates, dim=0).contiguous()
            out[pre + "mlp.up_proj.weight"] = torch.cat(ups, dim=0).contiguous()
            for t in range(tp):
                for key in _LINEAR_EXTRA_STATE:
                    if mp + key in shards[(t, p)]:
                        used[(t, p)].add(mp + key)
    last = pp - 1
    out["model.norm.weight"] = check("decoder.final_layernorm.weight", same(last, "decoder.final_layernorm.weight"), (h,))
    for t in range(tp):
        if "output_layer._extra_state" in shards[(t, last)]:
            used[(t, last)].add("output_layer._extra_state")
    if not d.tied:
        out["lm_head.weight"] = vocab_rows("output_layer.weight", cat(last, "output_layer.weight", 0))
    elif pp > 1:
        copy = vocab_rows("output_layer.weight", cat(last, "output_layer.weight", 0))
        if not torch.equal(copy, embed):
            raise ValueError(
                "tied embeddings: the last pipeline stage's output_layer.weight differs from the first stage's "
                "embedding.word_embeddings.weight (megatron keeps these equal; the checkpoint is inconsistent)"
            )

    for rank, state in shards.items():
        left = sorted(k for k in state if k not in used[rank])
        if left:
            shown = ", ".join(left[:8]) + (f" … ({len(left)} in all)" if len(left) > 8 else "")
            raise ValueError(f"megatron shard (tp_rank={rank[0]}, pp_rank={rank[1]}) has unmapped keys: {shown}")
    return out


def megatron_rank_dir_name(tp_rank: int, pp_rank: int, pipeline_model_parallel_size: int) -> str:
    """Megatron-LM's per-rank folder name: `mp_rank_{tp:02d}` with PP = 1, `mp_rank_{tp:02d}_{pp:03d}` with PP > 1."""
    if pipeline_model_parallel_size == 1:
        return f"mp_rank_{tp_rank:02d}"
    return f"mp_rank_{tp_rank:02d}_{pp_rank:03d}"


def _dtype_name(shards: Mapping[tuple[int, int], Mapping[str, Any]]) -> str:
    dtypes = {v.dtype for s in shards.values() for v in s.values() if isinstance(v, torch.Tensor)}
    if len(dtypes) != 1:
        return "mixed:" + ",".join(sorted(str(x).replace("torch.", "") for x in dtypes))
    return str(dtypes.pop()).replace("torch.", "")


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
    `out_dir/megatron_convert.json` (tp, pp, padded_vocab_size, vocab_size, make_vocab_size_divisible_by, dtype,
    num_layers_per_stage) and, when `tokenizer_dir` is given, its tokenizer files. `generation_config.json` is
    copied from `extra_files_dir` when that folder has one.

    Args:
        out_dir: target folder (created; existing rank files are overwritten).
        shards: from `hf_to_megatron`.
        hf_config: the HF config the shards came from.
        tokenizer_dir: folder with the tokenizer files, or None.
        tensor_model_parallel_size, pipeline_model_parallel_size: layout; inferred from the shard keys if None.
        make_vocab_size_divisible_by: recorded in megatron_convert.json.
        extra_files_dir: HF source folder to copy generation_config.json from, or None.

    Returns:
        The paths written, in order.

    Raises:
        ValueError: shards do not form a full TP × PP grid.
    """
    out = Path(out_dir)
    tp = tensor_model_parallel_size or (max(t for t, _ in shards) + 1)
    pp = pipeline_model_parallel_size or (max(p for _, p in shards) + 1)
    expected = {(t, p) for t in range(tp) for p in range(pp)}
    if set(shards) != expected:
        raise ValueError(f"save_megatron_checkpoint: shards {sorted(shards)} are not the full TP={tp} × PP={pp} grid")
    embed = shards[(0, 0)].get("embedding.word_embeddings.weight")
    if not isinstance(embed, torch.Tensor):
        raise ValueError("save_megatron_checkpoint: shard (0, 0) lacks embedding.word_embeddings.weight")
    written: list[Path] = []
    release = out / "release"
    for (t, p), state in sorted(shards.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rank_dir = release / megatron_rank_dir_name(t, p, pp)
        rank_dir.mkdir(parents=True, exist_ok=True)
        path = rank_dir / _RANK_FILE
        payload = {
            "model": dict(state),
            "checkpoint_version": CHECKPOINT_VERSION,
            "iteration": 0,
            "tensor_model_parallel_size": tp,
            "pipeline_model_parallel_size": pp,
        }
        tmp = path.with_suffix(".pt.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        written.append(path)
    meta = {
        "tensor_model_parallel_size": tp,
        "pipeline_model_parallel_size": pp,
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
    (out / _TRACKER_FILE).write_text("release")
    written += [out / "config.json", out / CONVERT_META_FILE, out / _TRACKER_FILE]
    if extra_files_dir is not None:
        written += hf_io.copy_extra_files(extra_files_dir, out)
    if tokenizer_dir is not None:
        written += [out / n for n in hf_io.copy_tokenizer(tokenizer_dir, out)]
    return written


def is_megatron_checkpoint(path: PathLike) -> bool:
    """True when `path` is a folder with `latest_checkpointed_iteration.txt` and `config.json` (our Megatron format)."""
    p = Path(path)
    return (p / _TRACKER_FILE).is_file() and (p / "config.json").is_file()


def load_megatron_checkpoint(
    ckpt_dir: PathLike,
) -> tuple[dict[str, Any], dict[tuple[int, int], dict[str, Any]], int, int]:
    """Read a folder written by `save_megatron_checkpoint` (or Megatron-LM's legacy layout with our config.json).

    The iteration comes from `latest_checkpointed_iteration.txt` (`release` → `release/`, a number N →
    `iter_{N:07d}/`). TP and PP come from `megatron_convert.json` when present, else from the rank folder names.

    Returns:
        `(hf_config, shards, tp, pp)` with `shards[(tp_rank, pp_rank)]` the `"model"` state dict of that rank.

    Raises:
        FileNotFoundError: the folder, tracker file, config.json or a rank file is missing.
        ValueError: the tracker file's content or the rank folders do not form a TP × PP grid.
    """
    root = Path(ckpt_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Megatron checkpoint folder {str(root)!r} does not exist")
    tracker = root / _TRACKER_FILE
    if not tracker.is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a Megatron checkpoint: no {_TRACKER_FILE}")
    tag = tracker.read_text().strip()
    if tag == "release":
        it_dir = root / "release"
    elif tag.isdigit():
        it_dir = root / f"iter_{int(tag):07d}"
    else:
        raise ValueError(f"{tracker}: expected 'release' or an iteration number, found {tag!r}")
    hf_config = hf_io.load_hf_config(root)
    meta_path = root / CONVERT_META_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        tp, pp = int(meta["tensor_model_parallel_size"]), int(meta["pipeline_model_parallel_size"])
    else:
        ranks = []
        for child in it_dir.iterdir() if it_dir.is_dir() else []:
            m = re.fullmatch(r"mp_rank_(\d{2})(?:_(\d{3}))?", child.name)
            if m:
                ranks.append((int(m.group(1)), int(m.group(2) or 0)))
        if not ranks:
            raise FileNotFoundError(f"{str(it_dir)!r} has no mp_rank_* folders")
        tp, pp = max(r[0] for r in ranks) + 1, max(r[1] for r in ranks) + 1
    shards: dict[tuple[int, int], dict[str, Any]] = {}
    for p in range(pp):
        for t in range(tp):
            path = it_dir / megatron_rank_dir_name(t, p, pp) / _RANK_FILE
            if not path.is_file():
                raise FileNotFoundError(f"Megatron checkpoint {str(root)!r} lacks {path} (TP={tp}, PP={pp})")
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or "model" not in payload:
                raise ValueError(f"{path}: expected a dict with a 'model' state dict")
            shards[(t, p)] = payload["model"]
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
        return hf_config, megatron_to_hf(shards, hf_config, tp, pp)
    if hf_io.is_hf_checkpoint(root):
        return hf_io.load_hf_config(root), hf_io.load_hf_state_dict(root)
    if (root / _TRACKER_FILE).is_file():
        raise FileNotFoundError(
            f"{str(root)!r} holds megatron-core distributed checkpoints (training's checkpoints/ folder) but no "
            f"config.json; pass the training output folder itself (its HF export sits at its root)"
        )
    raise FileNotFoundError(
        f"{str(root)!r} is neither an HF model folder (config.json with model.safetensors, "
        f"model.safetensors.index.json or pytorch_model.bin) nor a converted Megatron checkpoint "
        f"(config.json + {_TRACKER_FILE})"
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
DTYPE_NAMES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}


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

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (flag names as on the command line)."""
        if self.direction.strip().lower().replace("-", "_") not in _DIRECTIONS:
            raise ValueError(f"--direction {self.direction!r}: expected one of {sorted(_DIRECTIONS)}")
        for flag, value in (("--tp", self.tensor_model_parallel_size), ("--pp", self.pipeline_model_parallel_size),
                            ("--make_vocab_size_divisible_by", self.make_vocab_size_divisible_by),
                            ("--max_shard_size", self.max_shard_bytes)):
            if value < 1:
                raise ValueError(f"{flag} must be >= 1, got {value}")
        if self.dtype is not None and self.dtype not in DTYPE_NAMES:
            raise ValueError(f"--dtype {self.dtype!r}: expected one of {sorted(DTYPE_NAMES)}")


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


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
) -> dict[str, Any]:
    """Convert a checkpoint between the HF folder format and the Megatron TP × PP folder format.

    `model_path` may be anything `load_any_checkpoint` reads (HF folder, training output folder, Megatron folder,
    ModelScope id); `direction` picks the output format: `hf2mg` writes a Megatron folder for the given TP/PP
    (a Megatron input is thereby re-sharded), `mg2hf` writes an HF folder, `auto` writes the other format than the
    input's. Tokenizer files come from `tokenizer_path`, else from the input folder when it has them.

    Args:
        dtype: cast floating tensors to this dtype name (float32/bf16/…); None keeps the stored dtype.
        max_shard_bytes: shard limit for HF safetensors output.

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
    input_format = "megatron" if is_megatron_checkpoint(src) else "hf"
    if direction == "auto":
        direction = "mg2hf" if input_format == "megatron" else "hf2mg"
    hf_config, hf_state = load_any_checkpoint(src)
    if dtype is not None:
        target = DTYPE_NAMES[dtype]
        hf_state = {k: v.to(target) if v.is_floating_point() else v for k, v in hf_state.items()}
        hf_config = dict(hf_config, torch_dtype=str(target).replace("torch.", ""))
    tok_src: Optional[Path] = Path(tokenizer_path) if tokenizer_path is not None else (src if _has_tokenizer(src) else None)
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
            hf_state, hf_config, tensor_model_parallel_size, pipeline_model_parallel_size, make_vocab_size_divisible_by
        )
        del hf_state
        summary.update(
            tp=tensor_model_parallel_size,
            pp=pipeline_model_parallel_size,
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
