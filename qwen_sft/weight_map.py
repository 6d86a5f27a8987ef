"""The HF ↔ megatron-core weight mapping as data: one table of rows per model family, one applier each way.

A row says, for one Megatron tensor of the local layer spec: which HF tensor(s) it comes from (name patterns, `{g}`
= the HF model's global layer index), its Megatron name pattern (`{l}` = the layer index local to its pipeline
stage), where it sits in the pipeline (`Stage`), how it is cut over tensor-parallel ranks (`Split`), the HF shape of
each part (names of `Dims` attributes) and whether its Megatron module carries an `_extra_state` entry in
`GPTModel.state_dict()`. `hf_to_megatron` and `megatron_to_hf` walk the table; nothing about a family is written
anywhere else (the few model-shape switches a family implies, such as bias on `linear_qkv` or QK-norm, are
`Family` attributes that `qwen_sft.model` reads). Families: Qwen2/Qwen2.5, Llama (Llama-3 style), Qwen3. Adding a
family (issue 13: MoE next) is a new `Family` in `FAMILIES`; a new kind of split
(experts over EP ranks) is a new `Split` member and one case in each of `_split` / `_merge`.

Pipeline placement: layer `g` of the HF model is layer `g - stage * layers_per_stage` of pipeline stage
`g // layers_per_stage`; `Stage.FIRST` rows live on stage 0, `Stage.LAST` rows on the last stage.

Splits (TP rank `r` of `TP`):
- `replicated`: every rank holds the whole tensor (checked equal on the way back);
- `rows` / `columns`: the r-th contiguous chunk of dim 0 / dim 1;
- `rows (vocab)`: zero rows pad the vocabulary to `padded_vocab_size` (Megatron-LM's rule,
  `qwen_sft.model.padded_vocab_size`), then `rows`; the padding is stripped on the way back;
- `fused qkv`: `linear_qkv` holds, for each of the `ng` query groups in order, that group's `nh/ng` query heads
  followed by its key head and its value head (each `head_dim` rows); rank r holds groups `r*ng/TP … (r+1)*ng/TP-1`;
- `fused gate-up`: `linear_fc1` on rank r is `[gate_r; up_r]`, the r-th row chunks of gate and up stacked.

Tied embeddings (`tie_word_embeddings`): a row with `tied_to` set (the output layer) takes the tensor named there
when the config ties them, and HF stores no tensor of its own. With PP = 1 megatron's output layer reuses the
embedding (no `output_layer.weight` key); with PP > 1 the last stage holds its own copy (megatron keeps it equal
through the embedding group), so the converter writes the embedding there and checks on the way back that both
copies agree. Every module with `extra_state` gets an `_extra_state` entry (value None) in the shards, so that
`model.load_state_dict(shard, strict=True)` succeeds.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch

from qwen_sft.model import head_dim_from_hf, padded_vocab_size

__all__ = [
    "Stage",
    "Split",
    "Row",
    "Family",
    "QWEN2",
    "LLAMA",
    "QWEN3",
    "FAMILIES",
    "family_for",
    "Dims",
    "hf_to_megatron",
    "megatron_to_hf",
    "mapping_table_markdown",
]

Shards = dict[tuple[int, int], dict[str, Any]]


class Stage(enum.Enum):
    """Which pipeline stage holds a row's tensor."""

    FIRST = "first stage"
    LAYER = "per layer"
    LAST = "last stage"


class Split(enum.Enum):
    """How a row's tensor is cut over tensor-parallel ranks (see the module docstring)."""

    REPLICATED = "replicated"
    ROWS = "rows"
    COLUMNS = "columns"
    VOCAB_ROWS = "rows (vocab)"
    FUSED_QKV = "fused qkv"
    FUSED_GATE_UP = "fused gate-up"
    # Issue 13 adds EXPERTS (routed experts over expert-parallel ranks) here, with its case in _split / _merge.


@dataclass(frozen=True)
class Row:
    """One Megatron tensor and the HF tensor(s) it is made of.

    Attributes:
        hf: HF name pattern(s), `{g}` = global layer; several for a fused row, in fusion order (q, k, v / gate, up).
        mg: Megatron name pattern, `{l}` = layer index local to the stage.
        stage: pipeline placement.
        split: tensor-parallel split.
        shape: the HF shape of each part, as names of `Dims` attributes (e.g. `("q_size", "hidden")`).
        extra_state: the Megatron module (`mg` without its last component) has an `_extra_state` entry.
        tied_to: HF name used instead of `hf` when `tie_word_embeddings` is set (the output layer only).
    """

    hf: tuple[str, ...]
    mg: str
    stage: Stage
    split: Split
    shape: tuple[str, ...]
    extra_state: bool = False
    tied_to: Optional[str] = None

    @property
    def module(self) -> str:
        """The Megatron module pattern (the name without `.weight` / `.bias`)."""
        return self.mg.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Family:
    """A model family's mapping.

    Attributes:
        name: shown in messages ("a Qwen2 model of this config.json ...").
        model_types: config.json `model_type` values that select it; architectures: `architectures` values.
        rows: the table, in the order Megatron shards are written (per rank: first-stage rows, each layer's rows
            and then its `_extra_state` entries, last-stage rows and their `_extra_state` entries).
        ignorable_hf: regular expression of HF keys that carry no learned weight and are dropped.
        hf_export_order: per-layer HF names in the order an HF export writes them (it decides where safetensors
            shards are cut); None = table order. Must be a permutation of the layer rows' HF names (tested).
        qkv_bias: q/k/v projections carry a bias (Megatron `add_qkv_bias`; the table then has a bias row).
        qk_layernorm: per-head RMSNorm on queries and keys before RoPE (Megatron `qk_layernorm`; Qwen3).
        rope_types: the config.json `rope_scaling` / `rope_parameters` `rope_type` values the model supports
            ("default" = none); `qwen_sft.model` raises NotImplementedError for others.
        transformers_class: the `transformers` class that loads an HF folder of this family (tests, the maker).
    """

    name: str
    model_types: tuple[str, ...]
    architectures: tuple[str, ...]
    rows: tuple[Row, ...]
    ignorable_hf: str = r"^$"
    hf_export_order: Optional[tuple[str, ...]] = None
    qkv_bias: bool = False
    qk_layernorm: bool = False
    rope_types: tuple[str, ...] = ("default",)
    transformers_class: str = ""


QWEN2 = Family(
    name="Qwen2",
    model_types=("qwen2",),
    architectures=("Qwen2ForCausalLM",),
    rows=(
        Row(("model.embed_tokens.weight",), "embedding.word_embeddings.weight", Stage.FIRST, Split.VOCAB_ROWS,
            ("vocab", "hidden")),
        Row(("model.layers.{g}.input_layernorm.weight",), "decoder.layers.{l}.input_layernorm.weight", Stage.LAYER,
            Split.REPLICATED, ("hidden",)),
        Row(("model.layers.{g}.self_attn.o_proj.weight",), "decoder.layers.{l}.self_attention.linear_proj.weight",
            Stage.LAYER, Split.COLUMNS, ("hidden", "q_size"), extra_state=True),
        Row(("model.layers.{g}.self_attn.q_proj.weight", "model.layers.{g}.self_attn.k_proj.weight",
             "model.layers.{g}.self_attn.v_proj.weight"), "decoder.layers.{l}.self_attention.linear_qkv.weight",
            Stage.LAYER, Split.FUSED_QKV, ("q_size|kv_size", "hidden"), extra_state=True),
        Row(("model.layers.{g}.self_attn.q_proj.bias", "model.layers.{g}.self_attn.k_proj.bias",
             "model.layers.{g}.self_attn.v_proj.bias"), "decoder.layers.{l}.self_attention.linear_qkv.bias",
            Stage.LAYER, Split.FUSED_QKV, ("q_size|kv_size",), extra_state=True),
        Row(("model.layers.{g}.post_attention_layernorm.weight",), "decoder.layers.{l}.pre_mlp_layernorm.weight",
            Stage.LAYER, Split.REPLICATED, ("hidden",)),
        Row(("model.layers.{g}.mlp.gate_proj.weight", "model.layers.{g}.mlp.up_proj.weight"),
            "decoder.layers.{l}.mlp.linear_fc1.weight", Stage.LAYER, Split.FUSED_GATE_UP, ("ffn", "hidden"),
            extra_state=True),
        Row(("model.layers.{g}.mlp.down_proj.weight",), "decoder.layers.{l}.mlp.linear_fc2.weight", Stage.LAYER,
            Split.COLUMNS, ("hidden", "ffn"), extra_state=True),
        Row(("model.norm.weight",), "decoder.final_layernorm.weight", Stage.LAST, Split.REPLICATED, ("hidden",)),
        Row(("lm_head.weight",), "output_layer.weight", Stage.LAST, Split.VOCAB_ROWS, ("vocab", "hidden"),
            extra_state=True, tied_to="model.embed_tokens.weight"),
    ),
    # The RoPE frequency buffer some older exports contain; megatron recomputes it from rope_theta.
    ignorable_hf=r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$",
    hf_export_order=(
        "model.layers.{g}.input_layernorm.weight",
        "model.layers.{g}.post_attention_layernorm.weight",
        "model.layers.{g}.self_attn.o_proj.weight",
        "model.layers.{g}.mlp.down_proj.weight",
        "model.layers.{g}.self_attn.q_proj.weight",
        "model.layers.{g}.self_attn.q_proj.bias",
        "model.layers.{g}.self_attn.k_proj.weight",
        "model.layers.{g}.self_attn.k_proj.bias",
        "model.layers.{g}.self_attn.v_proj.weight",
        "model.layers.{g}.self_attn.v_proj.bias",
        "model.layers.{g}.mlp.gate_proj.weight",
        "model.layers.{g}.mlp.up_proj.weight",
    ),
    qkv_bias=True,
    transformers_class="Qwen2ForCausalLM",
)

# Rows every family of this decoder shape shares, by Megatron name (the Qwen2 table minus its qkv bias).
_DENSE_ROWS = tuple(r for r in QWEN2.rows if not r.mg.endswith("linear_qkv.bias"))

LLAMA = Family(
    name="Llama",
    model_types=("llama",),
    architectures=("LlamaForCausalLM",),
    rows=_DENSE_ROWS,
    ignorable_hf=QWEN2.ignorable_hf,
    # transformers' save_pretrained order for LlamaForCausalLM layers (as Qwen2's, without the biases).
    hf_export_order=tuple(n for n in QWEN2.hf_export_order if not n.endswith("_proj.bias")),
    # Llama-3.1/3.2/3.3 ship rope_type "llama3" (frequency-dependent scaling; megatron-core's `rope_scaling`).
    rope_types=("default", "llama3"),
    transformers_class="LlamaForCausalLM",
)

_QK_NORM_ROWS = (
    Row(("model.layers.{g}.self_attn.q_norm.weight",), "decoder.layers.{l}.self_attention.q_layernorm.weight",
        Stage.LAYER, Split.REPLICATED, ("head_dim",)),
    Row(("model.layers.{g}.self_attn.k_norm.weight",), "decoder.layers.{l}.self_attention.k_layernorm.weight",
        Stage.LAYER, Split.REPLICATED, ("head_dim",)),
)

QWEN3 = Family(
    name="Qwen3",
    model_types=("qwen3",),
    architectures=("Qwen3ForCausalLM",),
    # q/k norms sit after linear_qkv in the layer's Megatron order (input_layernorm, linear_proj, linear_qkv, …).
    rows=_DENSE_ROWS[:3] + _QK_NORM_ROWS + _DENSE_ROWS[3:],
    ignorable_hf=QWEN2.ignorable_hf,
    hf_export_order=(
        "model.layers.{g}.input_layernorm.weight",
        "model.layers.{g}.post_attention_layernorm.weight",
        "model.layers.{g}.self_attn.k_norm.weight",
        "model.layers.{g}.self_attn.q_norm.weight",
        "model.layers.{g}.self_attn.o_proj.weight",
        "model.layers.{g}.mlp.down_proj.weight",
        "model.layers.{g}.self_attn.q_proj.weight",
        "model.layers.{g}.self_attn.k_proj.weight",
        "model.layers.{g}.self_attn.v_proj.weight",
        "model.layers.{g}.mlp.gate_proj.weight",
        "model.layers.{g}.mlp.up_proj.weight",
    ),
    qk_layernorm=True,
    transformers_class="Qwen3ForCausalLM",
)

#: Every family the converter knows, in the order they are listed in errors.
FAMILIES: tuple[Family, ...] = (QWEN2, LLAMA, QWEN3)


def family_for(hf_config: Mapping[str, Any]) -> Family:
    """The family of an HF `config.json`: by `model_type`, else by `architectures`.

    A config with neither (written by hand before families existed) is taken as Qwen2, the only family the
    workflow had then.

    Raises:
        ValueError: an unknown model_type / architecture (the message lists the supported ones).
    """
    model_type = hf_config.get("model_type")
    archs = hf_config.get("architectures") or []
    for family in FAMILIES:
        if model_type in family.model_types or (model_type is None and any(a in family.architectures for a in archs)):
            return family
    if model_type is None and not archs:
        return QWEN2
    supported = ", ".join(f"{f.name} (model_type {'/'.join(f.model_types)})" for f in FAMILIES)
    raise ValueError(f"config.json model_type {model_type!r} / architectures {archs}: not a supported model "
                     f"family; supported: {supported}")


class Dims:
    """Sizes derived from an HF config and a parallel layout (validated); the `shape` names of rows are attributes."""

    def __init__(self, hf_config: Mapping[str, Any], tp: int, pp: int, make_vocab_size_divisible_by: int,
                 family: Family):
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
            raise ValueError(f"hf_config (config.json) lacks the {family.name} key {exc.args[0]!r}") from None
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
        self.padded_vocab = padded_vocab_size(self.vocab, tp, make_vocab_size_divisible_by)
        self.q_per_group = self.heads // self.groups
        self.q_size = self.heads * self.head_dim
        self.kv_size = self.groups * self.head_dim

    def part_shapes(self, row: Row) -> list[tuple[int, ...]]:
        """The HF shape of each of `row.hf`'s parts. A `a|b` dimension is `a` for the first part, `b` for the rest."""
        shapes = []
        for i in range(len(row.hf)):
            dims = []
            for name in row.shape:
                first, _, rest = name.partition("|")
                dims.append(getattr(self, first if i == 0 or not rest else rest))
            shapes.append(tuple(dims))
        return shapes

    def merged_shape(self, row: Row) -> tuple[int, ...]:
        """The shape of the TP-merged Megatron tensor (padded vocabulary not included)."""
        shapes = self.part_shapes(row)
        if row.split in (Split.FUSED_QKV, Split.FUSED_GATE_UP):
            return (sum(s[0] for s in shapes),) + shapes[0][1:]
        return shapes[0]


def _own(t: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor with its own storage (torch.save of a view would store the whole base tensor)."""
    return t.contiguous().clone()


def _pad_vocab(weight: torch.Tensor, padded: int) -> torch.Tensor:
    if weight.shape[0] == padded:
        return weight
    pad = weight.new_zeros((padded - weight.shape[0],) + tuple(weight.shape[1:]))
    return torch.cat([weight, pad], dim=0)


def _qkv_fuse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, d: Dims) -> torch.Tensor:
    """HF q [nh*hd, ...], k/v [ng*hd, ...] → megatron linear_qkv [ng*(nh/ng+2)*hd, ...] (per-group interleave)."""
    tail = tuple(q.shape[1:])
    q = q.reshape((d.groups, d.q_per_group * d.head_dim) + tail)
    k = k.reshape((d.groups, d.head_dim) + tail)
    v = v.reshape((d.groups, d.head_dim) + tail)
    return torch.cat([q, k, v], dim=1).reshape((-1,) + tail)


def _qkv_split(qkv: torch.Tensor, d: Dims) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of `_qkv_fuse` on the full (TP-merged) linear_qkv weight or bias."""
    tail = tuple(qkv.shape[1:])
    per_group = (d.q_per_group + 2) * d.head_dim
    grouped = qkv.reshape((d.groups, per_group) + tail)
    qn = d.q_per_group * d.head_dim
    q = grouped[:, :qn].reshape((d.heads * d.head_dim,) + tail)
    k = grouped[:, qn : qn + d.head_dim].reshape((d.groups * d.head_dim,) + tail)
    v = grouped[:, qn + d.head_dim :].reshape((d.groups * d.head_dim,) + tail)
    return q, k, v


def _split(row: Row, parts: list[torch.Tensor], d: Dims) -> list[torch.Tensor]:
    """HF part(s) of a row → one tensor per TP rank (views; the caller copies)."""
    tp = d.tp
    if row.split is Split.REPLICATED:
        return [parts[0]] * tp
    if row.split is Split.ROWS:
        return list(parts[0].chunk(tp, dim=0))
    if row.split is Split.COLUMNS:
        return list(parts[0].chunk(tp, dim=1))
    if row.split is Split.VOCAB_ROWS:
        return list(_pad_vocab(parts[0], d.padded_vocab).chunk(tp, dim=0))
    if row.split is Split.FUSED_QKV:
        return list(_qkv_fuse(*parts, d).chunk(tp, dim=0))
    if row.split is Split.FUSED_GATE_UP:
        gate, up = (p.chunk(tp, dim=0) for p in parts)
        return [torch.cat([gate[t], up[t]], dim=0) for t in range(tp)]
    raise NotImplementedError(f"weight_map: no HF→Megatron split for {row.split}")


def _need(state: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if key not in state:
        raise KeyError(f"{what} lacks {key!r}")
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} {key!r} is a {type(value).__name__}, expected a tensor")
    if tuple(value.shape) != shape:
        raise ValueError(f"{what} {key!r} has shape {tuple(value.shape)}, expected {shape} from config.json")
    return value


def hf_to_megatron(
    hf_state: Mapping[str, torch.Tensor],
    hf_config: Mapping[str, Any],
    tensor_model_parallel_size: int,
    pipeline_model_parallel_size: int,
    make_vocab_size_divisible_by: int = 128,
) -> Shards:
    """Split an HF state dict into the `GPTModel.state_dict()` of every (tp_rank, pp_rank), by its family's table.

    Args:
        hf_state: HF tensors (`model.…`, `lm_head.weight` unless tied); dtypes are kept.
        hf_config: the parsed `config.json` (its `model_type` picks the family, `family_for`).
        tensor_model_parallel_size, pipeline_model_parallel_size: target TP and PP degrees.
        make_vocab_size_divisible_by: Megatron's per-rank vocabulary multiple (padding rule).

    Returns:
        `{(tp_rank, pp_rank): state_dict}`, each keyed exactly like megatron-core's `GPTModel.state_dict()` on
        that rank (layer indices local to the stage, `_extra_state` entries = None), tensors contiguous with
        their own storage.

    Raises:
        KeyError: a weight the config implies is missing from `hf_state`.
        ValueError: a shape disagreeing with the config, unknown extra keys in `hf_state`, sizes not divisible by
            the parallel degrees, an unsupported model family, or a tied copy that differs from the embedding.
    """
    family = family_for(hf_config)
    d = Dims(hf_config, tensor_model_parallel_size, pipeline_model_parallel_size, make_vocab_size_divisible_by,
             family)
    what = "HF state dict"
    used: set[str] = set()

    def rank_parts(row: Row, g: Optional[int]) -> Optional[list[torch.Tensor]]:
        """The row's tensor per TP rank, or None when it has no Megatron tensor (tied output at PP = 1)."""
        shapes = d.part_shapes(row)
        if row.tied_to is not None and d.tied:
            if row.hf[0] in hf_state:  # some exports keep the tied copy; it must be the same matrix
                used.add(row.hf[0])
                if not torch.equal(hf_state[row.hf[0]], hf_state.get(row.tied_to)):
                    raise ValueError(f"config.json says tie_word_embeddings=true but {row.hf[0]} differs from "
                                     f"{row.tied_to}")
            if d.pp == 1:
                return None
            used.add(row.tied_to)
            parts = [_need(hf_state, row.tied_to, shapes[0], what)]
        else:
            names = [name.format(g=g) for name in row.hf]
            used.update(names)
            parts = [_need(hf_state, name, shape, what) for name, shape in zip(names, shapes)]
        return _split(row, parts, d)

    def extra_states(rows: list[Row], local: Optional[int]) -> list[str]:
        modules: list[str] = []
        for row in rows:
            if row.extra_state and row.module not in modules:
                modules.append(row.module)
        return [m.format(l=local) + "._extra_state" for m in modules]

    by_stage = {s: [r for r in family.rows if r.stage is s] for s in Stage}
    tp = d.tp
    shards: Shards = {(t, p): {} for p in range(d.pp) for t in range(tp)}
    for p in range(d.pp):
        stages = [Stage.LAYER] + ([Stage.FIRST] if p == 0 else []) + ([Stage.LAST] if p == d.pp - 1 else [])
        if Stage.FIRST in stages:
            for row in by_stage[Stage.FIRST]:
                parts = rank_parts(row, None)
                for t in range(tp):
                    if parts is not None:
                        shards[(t, p)][row.mg] = _own(parts[t])
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            per_row = [(row, rank_parts(row, g)) for row in by_stage[Stage.LAYER]]
            for t in range(tp):
                out = shards[(t, p)]
                for row, parts in per_row:
                    out[row.mg.format(l=local)] = _own(parts[t])
                for key in extra_states(by_stage[Stage.LAYER], local):
                    out[key] = None
        if Stage.LAST in stages:
            per_row = [(row, rank_parts(row, None)) for row in by_stage[Stage.LAST]]
            for t in range(tp):
                out = shards[(t, p)]
                for row, parts in per_row:
                    if parts is not None:
                        out[row.mg] = _own(parts[t])
                for key in extra_states(by_stage[Stage.LAST], None):
                    out[key] = None

    ignorable = re.compile(family.ignorable_hf)
    unknown = sorted(k for k in hf_state if k not in used and not ignorable.match(k))
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" … ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise ValueError(f"HF state dict has keys a {family.name} model of this config.json does not use: {shown}")
    return shards


def megatron_to_hf(
    shards: Mapping[tuple[int, int], Mapping[str, Any]],
    hf_config: Mapping[str, Any],
    tensor_model_parallel_size: int,
    pipeline_model_parallel_size: int,
) -> dict[str, torch.Tensor]:
    """Merge per-rank `GPTModel` state dicts back into one HF state dict (inverse of `hf_to_megatron`).

    The vocabulary padding is stripped to `hf_config["vocab_size"]` rows. With tied embeddings no
    `lm_head.weight` is returned (HF's convention); with PP > 1 the last stage's copy must equal the embedding.
    The padded vocabulary size is read from the shards (any multiple rule is accepted). Tensors come out in the
    family's HF export order (`Family.hf_export_order`).

    Args:
        shards: `{(tp_rank, pp_rank): state_dict}` for every rank of the layout.
        hf_config: the parsed `config.json` of the model.
        tensor_model_parallel_size, pipeline_model_parallel_size: the layout the shards were made for.

    Returns:
        `{hf_key: tensor}` in HF naming, tensors contiguous.

    Raises:
        KeyError: a rank or a key missing from `shards`.
        ValueError: shapes disagreeing with the config, leftover unknown keys, or tied copies that differ.
    """
    family = family_for(hf_config)
    tp, pp = tensor_model_parallel_size, pipeline_model_parallel_size
    d = Dims(hf_config, tp, pp, 1, family)
    missing = [(t, p) for p in range(pp) for t in range(tp) if (t, p) not in shards]
    if missing:
        raise KeyError(f"megatron shards lack ranks (tp_rank, pp_rank) {missing} for TP={tp}, PP={pp}")
    extra = sorted(set(shards) - {(t, p) for p in range(pp) for t in range(tp)})
    if extra:
        raise ValueError(f"megatron shards hold ranks {extra} outside TP={tp}, PP={pp}")
    used: dict[tuple[int, int], set[str]] = {r: set() for r in shards}

    def take(rank: tuple[int, int], key: str) -> torch.Tensor:
        state = shards[rank]
        if key not in state:
            raise KeyError(f"megatron shard (tp_rank={rank[0]}, pp_rank={rank[1]}) lacks {key!r}")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"megatron shard {rank} {key!r} is a {type(value).__name__}, expected a tensor")
        used[rank].add(key)
        return value

    def check(key: str, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if tuple(value.shape) != shape:
            raise ValueError(f"merged megatron {key!r} has shape {tuple(value.shape)}, expected {shape}")
        return value.contiguous()

    def merge(row: Row, p: int, key: str) -> list[torch.Tensor]:
        """The row's HF part(s) from the TP ranks of stage p."""
        merged_shape = d.merged_shape(row)
        if row.split is Split.REPLICATED:
            parts = [take((t, p), key) for t in range(tp)]
            for t, part in enumerate(parts[1:], start=1):
                if not torch.equal(part, parts[0]):
                    raise ValueError(f"{key!r} is replicated over TP but differs between tp_rank 0 and {t} "
                                     f"(pp_rank {p})")
            return [check(key, parts[0], merged_shape)]
        if row.split is Split.FUSED_GATE_UP:
            pieces = []
            per_rank = (merged_shape[0] // tp,) + merged_shape[1:]
            for t in range(tp):
                fc1 = take((t, p), key)
                if tuple(fc1.shape) != per_rank:
                    raise ValueError(f"megatron shard {(t, p)} {key} has shape {tuple(fc1.shape)}, "
                                     f"expected {per_rank}")
                pieces.append(fc1.chunk(len(row.hf), dim=0))
            return [torch.cat([piece[i] for piece in pieces], dim=0).contiguous() for i in range(len(row.hf))]
        dim = 1 if row.split is Split.COLUMNS else 0
        value = torch.cat([take((t, p), key) for t in range(tp)], dim=dim)
        if row.split is Split.VOCAB_ROWS:
            if value.dim() != 2 or value.shape[1] != d.hidden or value.shape[0] < d.vocab:
                raise ValueError(
                    f"merged megatron {key!r} has shape {tuple(value.shape)}, expected [>= {d.vocab}, {d.hidden}] "
                    f"(padded vocabulary × hidden)"
                )
            return [value[: d.vocab].contiguous()]
        value = check(key, value, merged_shape)
        if row.split is Split.FUSED_QKV:
            return [part.contiguous() for part in _qkv_split(value, d)]
        if row.split in (Split.ROWS, Split.COLUMNS):
            return [value]
        raise NotImplementedError(f"weight_map: no Megatron→HF merge for {row.split}")

    def mark_extra_states(rows: list[Row], p: int, local: Optional[int]) -> None:
        for row in rows:
            if row.extra_state:
                key = row.module.format(l=local) + "._extra_state"
                for t in range(tp):
                    if key in shards[(t, p)]:
                        used[(t, p)].add(key)

    by_stage = {s: [r for r in family.rows if r.stage is s] for s in Stage}
    out: dict[str, torch.Tensor] = {}
    for row in by_stage[Stage.FIRST]:
        out.update(zip(row.hf, merge(row, 0, row.mg)))
    for p in range(pp):
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            layer: dict[str, torch.Tensor] = {}
            for row in by_stage[Stage.LAYER]:
                names = [name.format(g=g) for name in row.hf]
                layer.update(zip(names, merge(row, p, row.mg.format(l=local))))
            order = family.hf_export_order or [name for row in by_stage[Stage.LAYER] for name in row.hf]
            out.update((name.format(g=g), layer[name.format(g=g)]) for name in order)
            mark_extra_states(by_stage[Stage.LAYER], p, local)
    last = pp - 1
    for row in by_stage[Stage.LAST]:
        if row.tied_to is not None and d.tied:
            if pp > 1:
                (copy,) = merge(row, last, row.mg)
                if not torch.equal(copy, out[row.tied_to]):
                    source = next(r.mg for r in family.rows if row.tied_to in r.hf)
                    raise ValueError(
                        f"tied embeddings: the last pipeline stage's {row.mg} differs from the first stage's "
                        f"{source} (megatron keeps these equal; the checkpoint is inconsistent)"
                    )
        else:
            out.update(zip(row.hf, merge(row, last, row.mg)))
    mark_extra_states(by_stage[Stage.LAST], last, None)

    for rank, state in shards.items():
        left = sorted(k for k in state if k not in used[rank])
        if left:
            shown = ", ".join(left[:8]) + (f" … ({len(left)} in all)" if len(left) > 8 else "")
            raise ValueError(f"megatron shard (tp_rank={rank[0]}, pp_rank={rank[1]}) has unmapped keys: {shown}")
    return out


def mapping_table_markdown(family: Family) -> str:
    """The family's table as the Markdown table quoted in `qwen_sft.convert`'s docstring (a test keeps them equal)."""
    lines = ["| HF | Megatron | stage | TP split |", "|---|---|---|---|"]
    for row in family.rows:
        hf = " + ".join(row.hf)
        if row.tied_to:
            hf += f" (tied: {row.tied_to})"
        lines.append(f"| {hf} | {row.mg} | {row.stage.value} | {row.split.value} |")
    return "\n".join(lines)
