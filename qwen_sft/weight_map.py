"""The HF ↔ megatron-core weight mapping as data: one table of rows per model family, one applier each way.

A row says, for one Megatron tensor of the local layer spec: which HF tensor(s) it comes from (name patterns, `{g}`
= the HF model's global layer index), its Megatron name pattern (`{l}` = the layer index local to its pipeline
stage), where it sits in the pipeline (`Stage`), how it is cut over tensor-parallel ranks (`Split`), the HF shape of
each part (names of `Dims` attributes) and whether its Megatron module carries an `_extra_state` entry in
`GPTModel.state_dict()`. `hf_to_megatron` and `megatron_to_hf` walk the table; nothing about a family is written
anywhere else (the few model-shape switches a family implies, such as bias on `linear_qkv` or QK-norm, are
`Family` attributes that `qwen_sft.model` reads). Families: Qwen2/Qwen2.5, Llama (Llama-3 style), Qwen3, Mixtral and
Qwen2-MoE. Adding a family is a new `Family` in `FAMILIES`.

Mixture-of-experts families (`Family.moe` set) map to megatron-core's MoE layer with local (SequentialMLP) experts:
the router (`mlp.router.weight`, replicated), per-expert rows (`Row.expert`: `{e}` = global expert index in the HF
name, `{x}` = the expert's index local to its expert-parallel rank in the Megatron name) and, for Qwen2-MoE, the
shared expert with its sigmoid gate (`mlp.shared_experts.{linear_fc1,linear_fc2,gate_weight}`). Expert parallelism
(EP ranks `e` of `EP`): with `n = num_experts / EP` experts per rank, global expert `i` is local expert `i % n` of
EP rank `i // n` (megatron's `SequentialMLP.local_expert_indices`); every other tensor is the same on all EP ranks
(they are data-parallel replicas there; checked equal on the way back). Experts are cut over TP like a dense MLP
(megatron's expert tensor-parallel size defaults to TP).

Pipeline placement: layer `g` of the HF model is layer `g - stage * layers_per_stage` of pipeline stage
`g // layers_per_stage`; `Stage.FIRST` rows live on stage 0, `Stage.LAST` rows on the last stage.

Shard keys: `(tp_rank, pp_rank)` at EP = 1, `(tp_rank, pp_rank, ep_rank)` at EP > 1.

Splits (TP rank `r` of `TP`):
- `replicated`: every rank holds the whole tensor (checked equal on the way back);
- `rows` / `columns`: the r-th contiguous chunk of dim 0 / dim 1;
- `rows (vocab)`: zero rows pad the vocabulary to `padded_vocab_size` (Megatron-LM's rule,
  `qwen_sft.sizes.padded_vocab_size`), then `rows`; the padding is stripped on the way back;
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

from qwen_sft.sizes import head_dim_from_hf, padded_vocab_size

__all__ = [
    "Stage",
    "Split",
    "Row",
    "Family",
    "MoE",
    "QWEN2",
    "LLAMA",
    "QWEN3",
    "MIXTRAL",
    "QWEN2_MOE",
    "FAMILIES",
    "family_for",
    "Dims",
    "hf_to_megatron",
    "megatron_to_hf",
    "mapping_table_markdown",
]

Shards = dict[tuple[int, ...], dict[str, Any]]


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
        expert: one tensor per routed expert (`{e}` in `hf` = global expert, `{x}` in `mg` = local expert); the
            experts are spread over expert-parallel ranks (module docstring).
    """

    hf: tuple[str, ...]
    mg: str
    stage: Stage
    split: Split
    shape: tuple[str, ...]
    extra_state: bool = False
    tied_to: Optional[str] = None
    expert: bool = False

    @property
    def module(self) -> str:
        """The Megatron module pattern (the name without `.weight` / `.bias`)."""
        return self.mg.rsplit(".", 1)[0]


@dataclass(frozen=True)
class MoE:
    """Where a mixture-of-experts family's config.json keeps its MoE settings (names of config.json keys).

    Attributes:
        num_experts: routed experts per layer (Mixtral `num_local_experts`, Qwen2-MoE `num_experts`).
        expert_ffn: one routed expert's intermediate size (Mixtral `intermediate_size`, Qwen2-MoE
            `moe_intermediate_size`).
        topk: experts per token (`num_experts_per_tok`).
        norm_topk_prob: key of the switch that renormalises the top-k softmax probabilities to sum 1, or None when
            the family always does (Mixtral). Without renormalisation the weights are the top-k entries of the
            softmax over all experts (megatron's `moe_router_pre_softmax`).
        shared_expert_ffn: key of the shared expert's intermediate size (Qwen2-MoE), None = no shared expert. The
            shared expert's output is scaled by sigmoid(`shared_expert_gate` · x) (megatron `moe_shared_expert_gate`).
        aux_loss_coef: key of the load-balancing loss coefficient (`router_aux_loss_coef`).
    """

    num_experts: str
    expert_ffn: str
    topk: str = "num_experts_per_tok"
    norm_topk_prob: Optional[str] = None
    shared_expert_ffn: Optional[str] = None
    aux_loss_coef: str = "router_aux_loss_coef"


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
        moe: the config.json keys of a mixture-of-experts family (`MoE`), None for a dense one.
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
    moe: Optional[MoE] = None


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

# The attention half of a layer (everything before the MLP) and the model's ends, by Megatron name.
_ATTENTION_ROWS = tuple(r for r in _DENSE_ROWS if r.stage is Stage.LAYER and ".mlp." not in r.mg)
_ENDS = {s: tuple(r for r in _DENSE_ROWS if r.stage is s) for s in (Stage.FIRST, Stage.LAST)}


def _moe_rows(hf_mlp: str, gate: str, fc1: tuple[str, str], fc2: str) -> tuple[Row, ...]:
    """The router and routed-expert rows of a MoE layer whose HF block is `model.layers.{g}.<hf_mlp>`."""
    base = "model.layers.{g}." + hf_mlp
    experts = "decoder.layers.{l}.mlp.experts.local_experts.{x}."
    return (
        Row((f"{base}.{gate}.weight",), "decoder.layers.{l}.mlp.router.weight", Stage.LAYER, Split.REPLICATED,
            ("experts", "hidden")),
        Row(tuple(f"{base}.experts.{{e}}.{n}.weight" for n in fc1), experts + "linear_fc1.weight", Stage.LAYER,
            Split.FUSED_GATE_UP, ("expert_ffn", "hidden"), extra_state=True, expert=True),
        Row((f"{base}.experts.{{e}}.{fc2}.weight",), experts + "linear_fc2.weight", Stage.LAYER, Split.COLUMNS,
            ("hidden", "expert_ffn"), extra_state=True, expert=True),
    )


MIXTRAL = Family(
    name="Mixtral",
    model_types=("mixtral",),
    architectures=("MixtralForCausalLM",),
    # HF's on-disk names (the Hub's Mixtral files): block_sparse_moe.gate, experts.{e}.w1 (gate) / w3 (up) / w2 (down).
    rows=(_ENDS[Stage.FIRST] + _ATTENTION_ROWS
          + _moe_rows("block_sparse_moe", "gate", ("w1", "w3"), "w2") + _ENDS[Stage.LAST]),
    ignorable_hf=QWEN2.ignorable_hf,
    transformers_class="MixtralForCausalLM",
    moe=MoE(num_experts="num_local_experts", expert_ffn="intermediate_size"),
)

_QWEN2_ATTENTION_ROWS = tuple(r for r in QWEN2.rows if r.stage is Stage.LAYER and ".mlp." not in r.mg)

QWEN2_MOE = Family(
    name="Qwen2-MoE",
    model_types=("qwen2_moe",),
    architectures=("Qwen2MoeForCausalLM",),
    rows=(_ENDS[Stage.FIRST] + _QWEN2_ATTENTION_ROWS
          + _moe_rows("mlp", "gate", ("gate_proj", "up_proj"), "down_proj")
          + (Row(("model.layers.{g}.mlp.shared_expert_gate.weight",),
                 "decoder.layers.{l}.mlp.shared_experts.gate_weight", Stage.LAYER, Split.REPLICATED, ("one", "hidden")),
             Row(("model.layers.{g}.mlp.shared_expert.gate_proj.weight",
                  "model.layers.{g}.mlp.shared_expert.up_proj.weight"),
                 "decoder.layers.{l}.mlp.shared_experts.linear_fc1.weight", Stage.LAYER, Split.FUSED_GATE_UP,
                 ("shared_ffn", "hidden"), extra_state=True),
             Row(("model.layers.{g}.mlp.shared_expert.down_proj.weight",),
                 "decoder.layers.{l}.mlp.shared_experts.linear_fc2.weight", Stage.LAYER, Split.COLUMNS,
                 ("hidden", "shared_ffn"), extra_state=True))
          + _ENDS[Stage.LAST]),
    ignorable_hf=QWEN2.ignorable_hf,
    qkv_bias=True,
    transformers_class="Qwen2MoeForCausalLM",
    moe=MoE(num_experts="num_experts", expert_ffn="moe_intermediate_size", norm_topk_prob="norm_topk_prob",
            shared_expert_ffn="shared_expert_intermediate_size"),
)

#: Every family the converter knows, in the order they are listed in errors.
FAMILIES: tuple[Family, ...] = (QWEN2, LLAMA, QWEN3, MIXTRAL, QWEN2_MOE)


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
                 family: Family, ep: int = 1):
        for name, value in (("tensor_model_parallel_size", tp), ("pipeline_model_parallel_size", pp),
                            ("expert_model_parallel_size", ep)):
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
        if self.ffn % tp and family.moe is None:
            raise ValueError(f"intermediate_size={self.ffn} is not divisible by tensor_model_parallel_size={tp}")
        if self.layers % pp:
            raise ValueError(f"num_hidden_layers={self.layers} is not divisible by pipeline_model_parallel_size={pp}")
        self.layers_per_stage = self.layers // pp
        self.ep = ep
        self.one = 1
        self.experts = 0
        moe = family.moe
        if moe is None:
            if ep != 1:
                raise ValueError(f"expert_model_parallel_size={ep}: a {family.name} model has no experts (use 1)")
        else:
            try:
                self.experts = int(hf_config[moe.num_experts])
                self.expert_ffn = int(hf_config[moe.expert_ffn])
                self.shared_ffn = int(hf_config[moe.shared_expert_ffn]) if moe.shared_expert_ffn else 0
            except KeyError as exc:
                raise ValueError(f"hf_config (config.json) lacks the {family.name} key {exc.args[0]!r}") from None
            if self.experts % ep:
                raise ValueError(f"{moe.num_experts}={self.experts} is not divisible by "
                                 f"expert_model_parallel_size={ep}")
            for key, size in ((moe.expert_ffn, self.expert_ffn), (moe.shared_expert_ffn, self.shared_ffn)):
                if key and size % tp:
                    raise ValueError(f"{key}={size} is not divisible by tensor_model_parallel_size={tp}")
        self.local_experts = self.experts // ep
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
    expert_model_parallel_size: int = 1,
) -> Shards:
    """Split an HF state dict into the `GPTModel.state_dict()` of every (tp_rank, pp_rank[, ep_rank]), by its table.

    Args:
        hf_state: HF tensors (`model.…`, `lm_head.weight` unless tied); dtypes are kept.
        hf_config: the parsed `config.json` (its `model_type` picks the family, `family_for`).
        tensor_model_parallel_size, pipeline_model_parallel_size: target TP and PP degrees.
        make_vocab_size_divisible_by: Megatron's per-rank vocabulary multiple (padding rule).
        expert_model_parallel_size: EP degree (MoE families; 1 for a dense one).

    Returns:
        `{(tp_rank, pp_rank): state_dict}` at EP = 1, `{(tp_rank, pp_rank, ep_rank): state_dict}` at EP > 1, each
        keyed exactly like megatron-core's `GPTModel.state_dict()` on that rank (layer indices local to the stage,
        expert indices local to the EP rank, `_extra_state` entries = None), tensors contiguous with their own
        storage.

    Raises:
        KeyError: a weight the config implies is missing from `hf_state`.
        ValueError: a shape disagreeing with the config, unknown extra keys in `hf_state`, sizes not divisible by
            the parallel degrees, an unsupported model family, or a tied copy that differs from the embedding.
    """
    family = family_for(hf_config)
    d = Dims(hf_config, tensor_model_parallel_size, pipeline_model_parallel_size, make_vocab_size_divisible_by,
             family, expert_model_parallel_size)
    what = "HF state dict"
    used: set[str] = set()

    def rank_parts(row: Row, g: Optional[int], e: Optional[int] = None) -> Optional[list[torch.Tensor]]:
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
            names = [name.format(g=g, e=e) for name in row.hf]
            used.update(names)
            parts = [_need(hf_state, name, shape, what) for name, shape in zip(names, shapes)]
        return _split(row, parts, d)

    def extra_states(rows: list[Row], local: Optional[int]) -> list[str]:
        modules: list[str] = []
        for row in rows:
            for x in range(d.local_experts) if row.expert else [None]:
                module = row.module.format(l=local, x=x)
                if row.extra_state and module not in modules:
                    modules.append(module)
        return [m + "._extra_state" for m in modules]

    by_stage = {s: [r for r in family.rows if r.stage is s] for s in Stage}
    tp, ep = d.tp, d.ep
    shards: Shards = {(t, p, e): {} for p in range(d.pp) for t in range(tp) for e in range(ep)}

    def put_all(p: int, key: str, parts: list[torch.Tensor]) -> None:
        """A tensor that is the same on every EP rank (its TP split in `parts`)."""
        for t in range(tp):
            own = _own(parts[t])
            for e in range(ep):
                shards[(t, p, e)][key] = own

    for p in range(d.pp):
        stages = [Stage.LAYER] + ([Stage.FIRST] if p == 0 else []) + ([Stage.LAST] if p == d.pp - 1 else [])
        if Stage.FIRST in stages:
            for row in by_stage[Stage.FIRST]:
                parts = rank_parts(row, None)
                if parts is not None:
                    put_all(p, row.mg, parts)
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            for row in by_stage[Stage.LAYER]:
                if not row.expert:
                    put_all(p, row.mg.format(l=local), rank_parts(row, g))
                    continue
                for e_rank in range(ep):
                    for x in range(d.local_experts):
                        parts = rank_parts(row, g, e_rank * d.local_experts + x)
                        for t in range(tp):
                            shards[(t, p, e_rank)][row.mg.format(l=local, x=x)] = _own(parts[t])
            for key in extra_states(by_stage[Stage.LAYER], local):
                for shard in (s for (_, sp, _), s in shards.items() if sp == p):
                    shard[key] = None
        if Stage.LAST in stages:
            for row in by_stage[Stage.LAST]:
                parts = rank_parts(row, None)
                if parts is not None:
                    put_all(p, row.mg, parts)
            for key in extra_states(by_stage[Stage.LAST], None):
                for shard in (s for (_, sp, _), s in shards.items() if sp == p):
                    shard[key] = None

    ignorable = re.compile(family.ignorable_hf)
    unknown = sorted(k for k in hf_state if k not in used and not ignorable.match(k))
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" … ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise ValueError(f"HF state dict has keys a {family.name} model of this config.json does not use: {shown}")
    if ep == 1:
        return {(t, p): state for (t, p, _), state in shards.items()}
    return shards


def megatron_to_hf(
    shards: Mapping[tuple[int, ...], Mapping[str, Any]],
    hf_config: Mapping[str, Any],
    tensor_model_parallel_size: int,
    pipeline_model_parallel_size: int,
    expert_model_parallel_size: int = 1,
) -> dict[str, torch.Tensor]:
    """Merge per-rank `GPTModel` state dicts back into one HF state dict (inverse of `hf_to_megatron`).

    The vocabulary padding is stripped to `hf_config["vocab_size"]` rows. With tied embeddings no
    `lm_head.weight` is returned (HF's convention); with PP > 1 the last stage's copy must equal the embedding.
    The padded vocabulary size is read from the shards (any multiple rule is accepted). Tensors come out in the
    family's HF export order (`Family.hf_export_order`; else table order, each expert's tensors together,
    experts in index order).

    Args:
        shards: `{(tp_rank, pp_rank): state_dict}` (EP = 1) or `{(tp_rank, pp_rank, ep_rank): state_dict}`
            (EP > 1) for every rank of the layout.
        hf_config: the parsed `config.json` of the model.
        tensor_model_parallel_size, pipeline_model_parallel_size, expert_model_parallel_size: the layout the shards
            were made for.

    Returns:
        `{hf_key: tensor}` in HF naming, tensors contiguous.

    Raises:
        KeyError: a rank or a key missing from `shards`.
        ValueError: shapes disagreeing with the config, leftover unknown keys, tied copies that differ, or a tensor
            replicated over TP or EP ranks that differs between them.
    """
    family = family_for(hf_config)
    tp, pp, ep = tensor_model_parallel_size, pipeline_model_parallel_size, expert_model_parallel_size
    d = Dims(hf_config, tp, pp, 1, family, ep)
    grid = [(t, p) for p in range(pp) for t in range(tp)] if ep == 1 else \
        [(t, p, e) for p in range(pp) for t in range(tp) for e in range(ep)]
    names = "(tp_rank, pp_rank)" if ep == 1 else "(tp_rank, pp_rank, ep_rank)"
    missing = [r for r in grid if r not in shards]
    if missing:
        raise KeyError(f"megatron shards lack ranks {names} {missing} for TP={tp}, PP={pp}, EP={ep}")
    extra = sorted(set(shards) - set(grid))
    if extra:
        raise ValueError(f"megatron shards hold ranks {extra} outside {names} of TP={tp}, PP={pp}, EP={ep}")
    by_rank = {(r[0], r[1], r[2] if ep > 1 else 0): shards[r] for r in grid}
    used: dict[tuple[int, int, int], set[str]] = {r: set() for r in by_rank}

    def label(rank: tuple[int, int, int]) -> str:
        text = f"tp_rank={rank[0]}, pp_rank={rank[1]}"
        return text + (f", ep_rank={rank[2]}" if ep > 1 else "")

    def take(rank: tuple[int, int, int], key: str) -> torch.Tensor:
        state = by_rank[rank]
        if key not in state:
            raise KeyError(f"megatron shard ({label(rank)}) lacks {key!r}")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"megatron shard ({label(rank)}) {key!r} is a {type(value).__name__}, expected a tensor")
        used[rank].add(key)
        return value

    def check(key: str, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if tuple(value.shape) != shape:
            raise ValueError(f"merged megatron {key!r} has shape {tuple(value.shape)}, expected {shape}")
        return value.contiguous()

    def merge_tp(row: Row, p: int, e: int, key: str) -> list[torch.Tensor]:
        """The row's HF part(s) from the TP ranks of stage p, EP rank e."""
        merged_shape = d.merged_shape(row)
        if row.split is Split.REPLICATED:
            parts = [take((t, p, e), key) for t in range(tp)]
            for t, part in enumerate(parts[1:], start=1):
                if not torch.equal(part, parts[0]):
                    raise ValueError(f"{key!r} is replicated over TP but differs between tp_rank 0 and {t} "
                                     f"(pp_rank {p})")
            return [check(key, parts[0], merged_shape)]
        if row.split is Split.FUSED_GATE_UP:
            pieces = []
            per_rank = (merged_shape[0] // tp,) + merged_shape[1:]
            for t in range(tp):
                fc1 = take((t, p, e), key)
                if tuple(fc1.shape) != per_rank:
                    raise ValueError(f"megatron shard ({label((t, p, e))}) {key} has shape {tuple(fc1.shape)}, "
                                     f"expected {per_rank}")
                pieces.append(fc1.chunk(len(row.hf), dim=0))
            return [torch.cat([piece[i] for piece in pieces], dim=0).contiguous() for i in range(len(row.hf))]
        dim = 1 if row.split is Split.COLUMNS else 0
        value = torch.cat([take((t, p, e), key) for t in range(tp)], dim=dim)
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

    def merge(row: Row, p: int, key: str) -> list[torch.Tensor]:
        """A non-expert row's HF part(s): merged over TP on EP rank 0, the same on every other EP rank."""
        parts = merge_tp(row, p, 0, key)
        for e in range(1, ep):
            if not all(torch.equal(a, b) for a, b in zip(parts, merge_tp(row, p, e, key))):
                raise ValueError(f"{key!r} is replicated over EP but differs between ep_rank 0 and {e} (pp_rank {p})")
        return parts

    def mark_extra_states(rows: list[Row], p: int, local: Optional[int]) -> None:
        for row in rows:
            if not row.extra_state:
                continue
            for x in range(d.local_experts) if row.expert else [None]:
                key = row.module.format(l=local, x=x) + "._extra_state"
                for rank, state in by_rank.items():
                    if rank[1] == p and key in state:
                        used[rank].add(key)

    by_stage = {s: [r for r in family.rows if r.stage is s] for s in Stage}
    out: dict[str, torch.Tensor] = {}
    for row in by_stage[Stage.FIRST]:
        out.update(zip(row.hf, merge(row, 0, row.mg)))
    for p in range(pp):
        for local in range(d.layers_per_stage):
            g = p * d.layers_per_stage + local
            layer: dict[str, torch.Tensor] = {}
            table_order: list[str] = []
            expert_rows = [row for row in by_stage[Stage.LAYER] if row.expert]
            for row in by_stage[Stage.LAYER]:
                if not row.expert:
                    row_names = [name.format(g=g) for name in row.hf]
                    layer.update(zip(row_names, merge(row, p, row.mg.format(l=local))))
                    table_order += row_names
                    continue
                if row is not expert_rows[0]:
                    continue
                for e in range(d.experts):  # all of expert 0's tensors, then expert 1's, … (HF's grouping)
                    for expert_row in expert_rows:
                        row_names = [name.format(g=g, e=e) for name in expert_row.hf]
                        key = expert_row.mg.format(l=local, x=e % d.local_experts)
                        layer.update(zip(row_names, merge_tp(expert_row, p, e // d.local_experts, key)))
                        table_order += row_names
            order = [n.format(g=g) for n in family.hf_export_order] if family.hf_export_order else table_order
            out.update((name, layer[name]) for name in order)
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

    for rank, state in by_rank.items():
        left = sorted(k for k in state if k not in used[rank])
        if left:
            shown = ", ".join(left[:8]) + (f" … ({len(left)} in all)" if len(left) > 8 else "")
            raise ValueError(f"megatron shard ({label(rank)}) has unmapped keys: {shown}")
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
