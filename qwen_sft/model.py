"""HF decoder config (Qwen2/Qwen2.5, Llama, Qwen3, Mixtral, Qwen2-MoE) → megatron-core `TransformerConfig` and
`GPTModel`.

The model is megatron-core's `GPTModel` with the local (non-Transformer-Engine) layer spec: RMSNorm, SwiGLU MLP
(`linear_fc1` = [gate; up] fused, `linear_fc2`), rotary position embedding with base `rope_theta`, grouped-query
attention, and the vocabulary padded as Megatron-LM pads it. What differs between families is read from the
family's `qwen_sft.weight_map.Family` (chosen by config.json's `model_type`, `family_for`): bias on `linear_qkv`
(Qwen2), per-head QK RMSNorm (Qwen3, Megatron `qk_layernorm`), the RoPE scaling types accepted (Llama: "llama3").
An explicit `head_dim` (Qwen3, some Llama) becomes Megatron's `kv_channels`. Mixture-of-experts families (Mixtral,
Qwen2-MoE) replace the MLP with megatron-core's `MoELayer` (top-k router, local `SequentialMLP` experts, the
alltoall token dispatcher, Qwen2-MoE's gated shared expert; see `_moe_config`).

Every function that builds parallel layers (`build_gpt_model`) needs `megatron.core.parallel_state` to be
initialised by the caller (`parallel_state.initialize_model_parallel(...)` after
`torch.distributed.init_process_group`), even for one process, because megatron's layers read their tensor- and
pipeline-parallel rank and size from it. `transformer_config_from_hf` and `padded_vocab_size` need nothing.

CPU notes (see `../shared/notes/megatron-core-cpu.md`): `use_cpu_initialization=True` keeps weight creation and
RoPE frequencies off `torch.cuda`; the fusion flags stay off; callers must pass an explicit attention mask
(`causal_attention_mask`) because megatron's default causal mask is created with `device="cuda"`.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Mapping

import torch
import torch.nn.functional as F

from qwen_sft.sizes import head_dim_from_hf, padded_vocab_size  # noqa: F401 (served here as before)
from qwen_sft.weight_map import family_for

if TYPE_CHECKING:  # megatron-core is imported inside the functions: `padded_vocab_size` users stay light
    from megatron.core.models.gpt import GPTModel
    from megatron.core.transformer import TransformerConfig

__all__ = [
    "padded_vocab_size",
    "transformer_config_from_hf",
    "build_gpt_model",
    "causal_attention_mask",
    "head_dim_from_hf",
]

# HF config keys every supported config must carry for the model to be built.
_REQUIRED_HF_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "rms_norm_eps",
)


# megatron-core 0.16.1's Llama-3 RoPE scaling (`RotaryEmbedding._apply_scaling`) takes only `factor` from
# GPTModel; the other three parameters are fixed at these values (those of every Llama-3.1/3.2/3.3 release).
_MEGATRON_LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def _family(hf_config: Mapping[str, Any]):
    return family_for(hf_config)


def _check_hf_config(hf_config: Mapping[str, Any]):
    """Validate `hf_config` for the model builder; returns its `Family`."""
    if not isinstance(hf_config, Mapping):
        raise TypeError(f"hf_config must be a dict (the parsed config.json), got {type(hf_config).__name__}")
    family = _family(hf_config)
    missing = [k for k in _REQUIRED_HF_KEYS if k not in hf_config]
    if missing:
        raise ValueError(f"hf_config (config.json) lacks required {family.name} keys: {', '.join(missing)}")
    act = hf_config.get("hidden_act", "silu")
    if act != "silu":
        raise NotImplementedError(f"hf_config hidden_act={act!r}: only 'silu' (SwiGLU, as in Qwen2/Llama/Qwen3) is "
                                  f"supported")
    if hf_config.get("use_sliding_window"):
        raise NotImplementedError(
            "hf_config use_sliding_window=true: sliding-window attention is not supported (Qwen2.5/Qwen3 releases "
            "ship with it off)"
        )
    if not family.qkv_bias:
        for key in ("attention_bias", "mlp_bias"):  # Llama/Qwen3 switches, false in every release
            if hf_config.get(key):
                raise NotImplementedError(f"hf_config {key}=true: {family.name} with biased projections is not "
                                          f"supported (releases ship with {key}=false)")
    _rope_scaling_factor(hf_config, family)
    _moe_config(hf_config, family)
    return family


def _moe_config(hf_config: Mapping[str, Any], family) -> dict[str, Any]:
    """The MoE `TransformerConfig` fields of a mixture-of-experts config.json (empty for a dense family).

    HF key → Megatron field: the family's expert count → num_moe_experts, `num_experts_per_tok` → moe_router_topk,
    the expert width (Mixtral `intermediate_size`, Qwen2-MoE `moe_intermediate_size`) → moe_ffn_hidden_size,
    `shared_expert_intermediate_size` → moe_shared_expert_intermediate_size with moe_shared_expert_gate=True
    (HF scales the shared expert by sigmoid(shared_expert_gate · x), megatron's `SharedExpertMLP` gate likewise),
    `router_aux_loss_coef` → moe_aux_loss_coeff (load-balancing loss "aux_loss", added in training only).
    Routing: both compute softmax over the router logits in fp32 and keep the top k. Renormalised top-k
    probabilities (Mixtral always, Qwen2-MoE with `norm_topk_prob` true) are megatron's default (softmax over the
    top-k logits: the same numbers); the raw top-k softmax probabilities (Qwen2-MoE `norm_topk_prob` false) are
    megatron's `moe_router_pre_softmax=True`. No token dropping (capacity factor None), as HF.
    Dispatcher: "alltoall" (expert parallelism exchanges tokens with all-to-all collectives).

    Raises:
        NotImplementedError: router jitter noise, dense layers among sparse ones (Qwen2-MoE `decoder_sparse_step`
            != 1 or `mlp_only_layers`), Mixtral's sliding-window attention, or Qwen2-MoE without qkv bias.
        ValueError: a missing MoE key, or top-k larger than the expert count.
    """
    moe = family.moe
    if moe is None:
        return {}
    try:
        experts = int(hf_config[moe.num_experts])
        topk = int(hf_config[moe.topk])
        expert_ffn = int(hf_config[moe.expert_ffn])
        shared = int(hf_config[moe.shared_expert_ffn]) if moe.shared_expert_ffn else 0
    except KeyError as exc:
        raise ValueError(f"hf_config (config.json) lacks the {family.name} key {exc.args[0]!r}") from None
    if not 1 <= topk <= experts:
        raise ValueError(f"hf_config {moe.topk}={topk} must be between 1 and {moe.num_experts}={experts}")
    if float(hf_config.get("router_jitter_noise") or 0.0):
        raise NotImplementedError(f"hf_config router_jitter_noise={hf_config['router_jitter_noise']}: router input "
                                  f"jitter is not supported (Mixtral releases ship 0)")
    if int(hf_config.get("decoder_sparse_step", 1)) != 1 or hf_config.get("mlp_only_layers"):
        raise NotImplementedError(
            f"hf_config decoder_sparse_step={hf_config.get('decoder_sparse_step')} / mlp_only_layers="
            f"{hf_config.get('mlp_only_layers')}: dense MLP layers between MoE layers are not supported (every layer "
            f"must be sparse: decoder_sparse_step 1, mlp_only_layers [])")
    if family.name == "Mixtral" and hf_config.get("sliding_window") is not None:
        raise NotImplementedError(f"hf_config sliding_window={hf_config['sliding_window']}: sliding-window attention "
                                  f"is not supported (Mixtral-8x7B/8x22B ship null)")
    if family.qkv_bias and hf_config.get("qkv_bias") is False:
        raise NotImplementedError(f"hf_config qkv_bias=false: {family.name} without q/k/v bias is not supported")
    normalise = bool(hf_config.get(moe.norm_topk_prob, False)) if moe.norm_topk_prob else True
    fields: dict[str, Any] = dict(
        num_moe_experts=experts,
        moe_router_topk=topk,
        moe_ffn_hidden_size=expert_ffn,
        moe_router_pre_softmax=not normalise,
        moe_token_dispatcher_type="alltoall",
        moe_router_load_balancing_type="aux_loss",
        moe_aux_loss_coeff=float(hf_config.get(moe.aux_loss_coef, 0.0) or 0.0),
    )
    if shared:
        fields.update(moe_shared_expert_intermediate_size=shared, moe_shared_expert_gate=True)
    return fields


def _define_te_general_gemm_without_te() -> None:
    """megatron-core 0.16.1 defect: `moe_utils` binds `te_general_gemm` only when Transformer Engine imports, yet the
    router's `RouterGatingLinearFunction` tests `te_general_gemm is not None` unconditionally, so every MoE forward
    without TE raises NameError. Binding the name to None (what the test expects for "no TE") makes the router take
    its own torch.mm path; nothing else reads the name. Done here, where a MoE model is built, because it concerns
    both backends (real torch and the shim) and any TE-less install; a no-op when TE is present."""
    from megatron.core.transformer.moe import moe_utils

    if not moe_utils.HAVE_TE and not hasattr(moe_utils, "te_general_gemm"):
        moe_utils.te_general_gemm = None


def _rope_scaling_factor(hf_config: Mapping[str, Any], family) -> float | None:
    """The Llama-3 RoPE scaling factor of the config, None for unscaled RoPE.

    Reads `rope_scaling` (transformers < 5 and most released config.json files) and `rope_parameters`
    (transformers >= 5). Raises NotImplementedError for a rope_type the family does not list, or llama3
    parameters megatron-core 0.16.1 cannot express (see `_MEGATRON_LLAMA3_FIXED`).
    """
    factor = None
    for key in ("rope_scaling", "rope_parameters"):
        scaling = hf_config.get(key)
        if not scaling:
            continue
        if not isinstance(scaling, Mapping):
            raise NotImplementedError(f"hf_config {key}={scaling!r}: expected a dict with a rope_type")
        rope_type = scaling.get("rope_type", scaling.get("type")) or "default"
        if rope_type not in family.rope_types:
            raise NotImplementedError(
                f"hf_config {key}={dict(scaling)!r}: rope_type {rope_type!r} is not supported for {family.name} "
                f"(supported: {', '.join(family.rope_types)}; 'default' = no scaling)"
            )
        if rope_type == "llama3":
            for name, fixed in _MEGATRON_LLAMA3_FIXED.items():
                if float(scaling.get(name, fixed)) != fixed:
                    raise NotImplementedError(
                        f"hf_config {key} {name}={scaling.get(name)!r}: megatron-core 0.16.1's llama3 RoPE scaling "
                        f"supports only {name}={fixed:g}"
                    )
            if "factor" not in scaling:
                raise ValueError(f"hf_config {key} rope_type 'llama3' lacks its 'factor'")
            factor = float(scaling["factor"])
    return factor


def _rope_theta(hf_config: Mapping[str, Any]) -> float:
    if "rope_theta" in hf_config:
        return float(hf_config["rope_theta"])
    params = hf_config.get("rope_parameters")  # transformers >= 5 may nest it here
    if isinstance(params, Mapping) and "rope_theta" in params:
        return float(params["rope_theta"])
    return 10000.0


def transformer_config_from_hf(
    hf_config: Mapping[str, Any],
    *,
    tensor_model_parallel_size: int = 1,
    pipeline_model_parallel_size: int = 1,
    expert_model_parallel_size: int = 1,
    params_dtype: torch.dtype = torch.float32,
    bf16: bool = False,
    fp16: bool = False,
    **overrides: Any,
) -> TransformerConfig:
    """Megatron `TransformerConfig` equivalent to an HF `config.json` of a supported family (Qwen2, Llama, Qwen3).

    Mapping (HF key → Megatron field): hidden_size → hidden_size, num_hidden_layers → num_layers,
    num_attention_heads → num_attention_heads, num_key_value_heads → num_query_groups (GQA; defaults to the head
    count), intermediate_size → ffn_hidden_size, rms_norm_eps → layernorm_epsilon (normalization="RMSNorm"),
    head_dim (or hidden/heads) → kv_channels, initializer_range → init_method_std, attention_dropout →
    attention_dropout, hidden_dropout (absent in these configs: 0.0) → hidden_dropout. Fixed for every family:
    gated_linear_unit=True with activation_func=silu (SwiGLU), add_bias_linear=False. From the family
    (`qwen_sft.weight_map.family_for`): add_qkv_bias (Qwen2 True; Llama, Qwen3 False), qk_layernorm (Qwen3 True).
    The rotary base (`rope_theta`) and the Llama-3 RoPE scaling factor are not TransformerConfig fields;
    `build_gpt_model` passes them to GPTModel. MoE families add the fields of `_moe_config`.

    CPU-safe settings: use_cpu_initialization=True, sequence_parallel=False, all fusions off (their defaults).
    With PP > 1, `pipeline_dtype` defaults to `params_dtype` (megatron requires it set).

    Args:
        hf_config: the parsed HF `config.json`.
        tensor_model_parallel_size, pipeline_model_parallel_size: TP and PP degrees (>= 1).
        expert_model_parallel_size: EP degree (>= 1; > 1 only for a MoE family, dividing its expert count).
        params_dtype: dtype parameters are created in (torch.float32, torch.bfloat16 or torch.float16).
        bf16, fp16: megatron's mixed-precision flags (at most one True).
        **overrides: any other TransformerConfig field, applied last (e.g. `recompute_granularity`,
            `variable_seq_lengths`, `hidden_dropout`).

    Returns:
        A validated `TransformerConfig` (its __post_init__ checks head/group divisibility by TP).

    Raises:
        ValueError: missing config keys, bad parallel sizes, num_layers not divisible by PP, both bf16 and fp16,
            or an unknown override name.
        NotImplementedError: an activation other than silu, biased Llama/Qwen3 projections, a RoPE scaling
            scheme the family does not support, or a MoE setting `_moe_config` refuses.
    """
    # megatron-core (~3 s to import) only where a model is built: the converter uses this module's size helpers.
    from megatron.core.transformer import TransformerConfig

    family = _check_hf_config(hf_config)
    if bf16 and fp16:
        raise ValueError("transformer_config_from_hf: bf16 and fp16 are mutually exclusive")
    for name, value in (
        ("tensor_model_parallel_size", tensor_model_parallel_size),
        ("pipeline_model_parallel_size", pipeline_model_parallel_size),
        ("expert_model_parallel_size", expert_model_parallel_size),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"transformer_config_from_hf: {name} must be an int >= 1, got {value!r}")
    moe_fields = _moe_config(hf_config, family)
    if expert_model_parallel_size > 1:
        if not moe_fields:
            raise ValueError(f"transformer_config_from_hf: expert_model_parallel_size={expert_model_parallel_size} "
                             f"needs a mixture-of-experts model; {family.name} has no experts")
        if moe_fields["num_moe_experts"] % expert_model_parallel_size:
            raise ValueError(f"transformer_config_from_hf: {moe_fields['num_moe_experts']} experts are not divisible "
                             f"by expert_model_parallel_size={expert_model_parallel_size}")
    num_layers = int(hf_config["num_hidden_layers"])
    if num_layers % pipeline_model_parallel_size:
        raise ValueError(
            f"num_hidden_layers={num_layers} is not divisible by pipeline_model_parallel_size="
            f"{pipeline_model_parallel_size}"
        )
    heads = int(hf_config["num_attention_heads"])
    groups = int(hf_config.get("num_key_value_heads") or heads)
    if heads % tensor_model_parallel_size or groups % tensor_model_parallel_size:
        raise ValueError(
            f"num_attention_heads={heads} and num_key_value_heads={groups} must both be divisible by "
            f"tensor_model_parallel_size={tensor_model_parallel_size}"
        )
    kwargs: dict[str, Any] = dict(
        num_layers=num_layers,
        hidden_size=int(hf_config["hidden_size"]),
        num_attention_heads=heads,
        num_query_groups=groups,
        kv_channels=head_dim_from_hf(hf_config),
        ffn_hidden_size=int(hf_config["intermediate_size"]),
        normalization="RMSNorm",
        layernorm_epsilon=float(hf_config["rms_norm_eps"]),
        gated_linear_unit=True,
        activation_func=F.silu,
        add_qkv_bias=family.qkv_bias,
        qk_layernorm=family.qk_layernorm,
        add_bias_linear=False,
        hidden_dropout=float(hf_config.get("hidden_dropout", 0.0)),
        attention_dropout=float(hf_config.get("attention_dropout", 0.0)),
        init_method_std=float(hf_config.get("initializer_range", 0.02)),
        tensor_model_parallel_size=tensor_model_parallel_size,
        pipeline_model_parallel_size=pipeline_model_parallel_size,
        expert_model_parallel_size=expert_model_parallel_size,
        sequence_parallel=False,
        use_cpu_initialization=True,
        params_dtype=params_dtype,
        bf16=bf16,
        fp16=fp16,
    )
    kwargs.update(moe_fields)
    if pipeline_model_parallel_size > 1:
        kwargs["pipeline_dtype"] = params_dtype
    known = {f.name for f in dataclasses.fields(TransformerConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"transformer_config_from_hf: unknown TransformerConfig field(s) in overrides: {unknown}")
    kwargs.update(overrides)
    return TransformerConfig(**kwargs)


def build_gpt_model(
    hf_config: Mapping[str, Any],
    config: TransformerConfig,
    *,
    padded_vocab_size: int,
    seq_length: int,
    pre_process: bool,
    post_process: bool,
    parallel_output: bool = True,
) -> GPTModel:
    """Build this rank's megatron-core `GPTModel` for a supported HF config (weights randomly initialised).

    Uses `get_gpt_layer_local_spec(num_experts=config.num_moe_experts, normalization="RMSNorm",
    qk_layernorm=config.qk_layernorm)` (MoE: megatron's `MoELayer` with local `SequentialMLP` experts),
    `position_embedding_type="rope"` with `rotary_base = rope_theta` (and, for a Llama `rope_type: llama3` config,
    `rope_scaling=True, rope_scaling_factor=factor`), and `share_embeddings_and_output_weights = tie_word_embeddings` (with PP > 1 and
    tied weights the last stage holds its own `output_layer.weight`, which megatron zero-fills and then all-reduces
    from the first stage over the embedding group at construction).

    Requires `megatron.core.parallel_state` initialised by the caller with the same TP/PP as `config`.

    Args:
        hf_config: the parsed HF `config.json` (for rope_theta, rope scaling, tie_word_embeddings).
        config: from `transformer_config_from_hf`.
        padded_vocab_size: embedding/output rows over all TP ranks (see `padded_vocab_size`).
        seq_length: maximum sequence length the model will see (Megatron `max_sequence_length`).
        pre_process: this rank holds the embedding (first pipeline stage).
        post_process: this rank holds the final norm and output layer (last pipeline stage).
        parallel_output: if True (megatron's default) logits stay split over TP ranks along the vocabulary;
            False gathers them to full `padded_vocab_size` on every TP rank.

    Returns:
        The `GPTModel`. Forward: `model(input_ids [b, s] int64, position_ids [b, s] int64,
        attention_mask [b, 1, s, s] bool (True = masked))` → logits `[b, s, padded_vocab_size / TP]`
        (or `[b, s, padded_vocab_size]` with parallel_output=False), or per-token loss `[b, s]` when `labels=`
        is given.

    Raises:
        ValueError: padded_vocab_size smaller than the config's vocab_size or not divisible by TP, or seq_length < 1.
        AssertionError: (from megatron) parallel_state not initialised.
    """
    # megatron-core (~3 s to import) only where a model is built: the converter uses this module's size helpers.
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec

    family = _check_hf_config(hf_config)
    rope_factor = _rope_scaling_factor(hf_config, family)
    tp = config.tensor_model_parallel_size
    if padded_vocab_size < int(hf_config["vocab_size"]) or padded_vocab_size % tp:
        raise ValueError(
            f"padded_vocab_size={padded_vocab_size} must be >= vocab_size={hf_config['vocab_size']} and divisible "
            f"by tensor_model_parallel_size={tp}"
        )
    if seq_length < 1:
        raise ValueError(f"seq_length must be >= 1, got {seq_length}")
    if config.num_moe_experts:
        _define_te_general_gemm_without_te()
    spec = get_gpt_layer_local_spec(num_experts=config.num_moe_experts, normalization="RMSNorm",
                                    qk_layernorm=config.qk_layernorm)
    return GPTModel(
        config=config,
        transformer_layer_spec=spec,
        vocab_size=padded_vocab_size,
        max_sequence_length=seq_length,
        pre_process=pre_process,
        post_process=post_process,
        parallel_output=parallel_output,
        share_embeddings_and_output_weights=bool(hf_config.get("tie_word_embeddings", False)),
        position_embedding_type="rope",
        rotary_percent=1.0,
        rotary_base=_rope_theta(hf_config),
        rope_scaling=rope_factor is not None,
        rope_scaling_factor=rope_factor if rope_factor is not None else 8.0,
    )


def causal_attention_mask(seq_length: int, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean causal mask `[batch, 1, seq_length, seq_length]`, True where attention is NOT allowed.

    Megatron's convention (True = masked out, i.e. key position j > query position j). Built explicitly because
    megatron-core's default mask (`get_default_causal_mask`) is created with `device="cuda"`.

    Raises:
        ValueError: seq_length or batch < 1.
    """
    if seq_length < 1 or batch < 1:
        raise ValueError(f"causal_attention_mask: seq_length and batch must be >= 1, got {seq_length}, {batch}")
    mask = torch.ones(seq_length, seq_length, dtype=torch.bool, device=device).triu(diagonal=1)
    return mask.view(1, 1, seq_length, seq_length).expand(batch, 1, seq_length, seq_length)
