"""Tiny, seeded, randomly initialised HF checkpoints of the supported families (Qwen2, Llama, Qwen3, Mixtral,
Qwen2-MoE).

The folder is a regular HF model folder: `config.json`, `model.safetensors`, `generation_config.json` and,
optionally, the tokenizer files. `model_type` picks the family and its config.json field set:
- "qwen2": Qwen2.5's (`Qwen2ForCausalLM`, bias on q/k/v);
- "llama": Llama-3.2's (`LlamaForCausalLM`, no bias, `attention_bias`/`mlp_bias` false, optional `rope_scaling`
  e.g. `{"rope_type": "llama3", "factor": 32.0, ...}`, optional explicit `head_dim`);
- "qwen3": Qwen3's (`Qwen3ForCausalLM`, no bias, per-head `q_norm`/`k_norm` RMSNorm weights of size `head_dim`,
  explicit `head_dim`, which may differ from hidden_size / num_attention_heads);
- "mixtral": Mixtral-8x7B's (`MixtralForCausalLM`, no bias, `num_local_experts` routed SwiGLU experts of
  `intermediate_size` each, top-`num_experts_per_tok` routing, renormalised; the Hub's tensor names
  `block_sparse_moe.gate` and `block_sparse_moe.experts.{e}.w1/w2/w3`);
- "qwen2_moe": Qwen1.5-MoE's (`Qwen2MoeForCausalLM`, bias on q/k/v, `num_experts` routed experts of
  `moe_intermediate_size`, `norm_topk_prob`, and a shared expert of `shared_expert_intermediate_size` whose output
  is scaled by sigmoid(`shared_expert_gate` · x); tensor names `mlp.gate`, `mlp.experts.{e}.gate_proj/up_proj/
  down_proj`, `mlp.shared_expert.*`, `mlp.shared_expert_gate`). Every layer is sparse (`decoder_sparse_step` 1).
`transformers.AutoModelForCausalLM.from_pretrained` loads each, and so do our converters. Every family uses the
Qwen2.5 token ids (bos/eos written only when the vocabulary holds them), because the tokenizer the project ships
(the stand-in, `qwen_sft.tokenizer`) is Qwen2.5's: a tiny Llama here is the Llama architecture, not its tokenizer.

Initialisation (all from one `torch.Generator` seeded with `seed`, so the same arguments give bit-identical files):
linear weights and biases ~ N(0, initializer_range²); embeddings ~ N(0, initializer_range²); RMSNorm weights
~ 1 + N(0, 0.1²) (not all ones, so a swapped norm is visible in tests); Qwen3's q/k norms likewise; MoE routers
~ N(0, 1/hidden_size) (router logits of order 1, so routing is decisive: no near-ties between experts). Tensors are
drawn in float32 and then cast to `dtype`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch

from qwen_sft import hf_io
from qwen_sft.dtypes import CANONICAL_DTYPE_NAMES, DTYPE_NAMES

__all__ = ["TinyModelConfig", "TinyQwen2Config", "MODEL_TYPES", "MOE_TYPES", "tiny_hf_config", "tiny_hf_state_dict",
           "make_tiny_model", "DTYPES", "QWEN25_VOCAB_ROWS"]

PathLike = Union[str, os.PathLike]

QWEN25_VOCAB_ROWS = 151936  # embedding rows of Qwen2.5-0.5B/1.5B/3B (7B: 152064)
_QWEN_BOS = 151643  # <|endoftext|>
_QWEN_EOS = 151645  # <|im_end|>
_QWEN_TOKENIZER_IDS = 151665  # len(tokenizer) of Qwen2.5: 151,643 BPE tokens + 22 added tokens
#: The dtypes a tiny model can be written in (the torch names of `qwen_sft.dtypes`).
DTYPES = {name: DTYPE_NAMES[name] for name in CANONICAL_DTYPE_NAMES}
#: model_type → HF architecture the maker writes.
MODEL_TYPES = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM",
               "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM"}
#: The mixture-of-experts model types.
MOE_TYPES = ("mixtral", "qwen2_moe")


@dataclass
class TinyModelConfig:
    """Shape of a tiny model (HF config names). Defaults: Qwen2, 2 layers, hidden 64, 4 heads / 2 KV heads.

    `head_dim` None = hidden_size / num_attention_heads (written to config.json only when set, and always for
    Qwen3, whose config carries it). `rope_scaling` is written as given (Llama only; None = unscaled).
    MoE fields (used for model_type mixtral / qwen2_moe only): `num_experts` routed experts, `num_experts_per_tok`
    per token; Mixtral's experts are `intermediate_size` wide, Qwen2-MoE's `moe_intermediate_size` (None = half of
    intermediate_size) with a shared expert of `shared_expert_intermediate_size` (None = intermediate_size);
    `norm_topk_prob` (Qwen2-MoE's switch; Mixtral always renormalises), `router_aux_loss_coef`.
    """

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 128
    vocab_size: int = QWEN25_VOCAB_ROWS
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 4096
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    dtype: str = "float32"
    seed: int = 0
    model_type: str = "qwen2"
    head_dim: Optional[int] = None
    rope_scaling: Optional[dict] = None
    num_experts: int = 4
    num_experts_per_tok: int = 2
    moe_intermediate_size: Optional[int] = None
    shared_expert_intermediate_size: Optional[int] = None
    norm_topk_prob: bool = False
    router_aux_loss_coef: float = 0.02

    @property
    def moe(self) -> bool:
        """A mixture-of-experts family."""
        return self.model_type in MOE_TYPES

    @property
    def expert_size(self) -> int:
        """One routed expert's intermediate size."""
        if self.model_type == "qwen2_moe":
            return self.moe_intermediate_size or self.intermediate_size // 2
        return self.intermediate_size

    @property
    def shared_size(self) -> int:
        """The shared expert's intermediate size (Qwen2-MoE; 0 for the others)."""
        if self.model_type == "qwen2_moe":
            return self.shared_expert_intermediate_size or self.intermediate_size
        return 0

    @property
    def head_size(self) -> int:
        """Attention head size: `head_dim`, else hidden_size / num_attention_heads."""
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {sorted(MODEL_TYPES)}, got {self.model_type!r}")
        if self.head_dim is not None and (not isinstance(self.head_dim, int) or self.head_dim < 1):
            raise ValueError(f"head_dim must be a positive int or None, got {self.head_dim!r}")
        if self.rope_scaling is not None and self.model_type != "llama":
            raise ValueError(f"rope_scaling is written for model_type 'llama' only, got {self.model_type!r}")
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                     "intermediate_size", "vocab_size", "max_position_embeddings", "num_experts",
                     "num_experts_per_tok"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_attention_heads={self.num_attention_heads}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} must be divisible by "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.head_size % 2:
            raise ValueError(f"head size {self.head_size} (head_dim or hidden_size/num_attention_heads) must be "
                             f"even for RoPE")
        if self.num_experts_per_tok > self.num_experts:
            raise ValueError(f"num_experts_per_tok={self.num_experts_per_tok} exceeds num_experts={self.num_experts}")
        for name in ("moe_intermediate_size", "shared_expert_intermediate_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")


def tiny_hf_config(cfg: TinyModelConfig) -> dict[str, Any]:
    """The HF `config.json` dict for `cfg` (its family's field set; token ids only when the vocabulary holds them).

    A Qwen2 config has exactly the keys, in the order, the maker wrote before families existed."""
    cfg.validate()
    qwen = cfg.model_type in ("qwen2", "qwen3", "qwen2_moe")
    mixtral, qwen_moe = cfg.model_type == "mixtral", cfg.model_type == "qwen2_moe"
    items: list[tuple[str, Any]] = [
        ("architectures", [MODEL_TYPES[cfg.model_type]]),
        ("model_type", cfg.model_type),
        ("attention_bias", False) if cfg.model_type in ("llama", "qwen3") else None,
        ("attention_dropout", 0.0),
        ("decoder_sparse_step", 1) if qwen_moe else None,
        ("head_dim", cfg.head_size) if cfg.model_type == "qwen3" or cfg.head_dim is not None else None,
        ("hidden_act", "silu"),
        ("hidden_size", cfg.hidden_size),
        ("initializer_range", cfg.initializer_range),
        ("intermediate_size", cfg.intermediate_size),
        ("max_position_embeddings", cfg.max_position_embeddings),
        ("max_window_layers", cfg.num_hidden_layers) if qwen else None,
        ("mlp_bias", False) if cfg.model_type == "llama" else None,
        ("mlp_only_layers", []) if qwen_moe else None,
        ("moe_intermediate_size", cfg.expert_size) if qwen_moe else None,
        ("norm_topk_prob", cfg.norm_topk_prob) if qwen_moe else None,
        ("num_attention_heads", cfg.num_attention_heads),
        ("num_experts", cfg.num_experts) if qwen_moe else None,
        ("num_experts_per_tok", cfg.num_experts_per_tok) if cfg.moe else None,
        ("num_hidden_layers", cfg.num_hidden_layers),
        ("num_key_value_heads", cfg.num_key_value_heads),
        ("num_local_experts", cfg.num_experts) if mixtral else None,
        ("output_router_logits", False) if cfg.moe else None,
        ("pretraining_tp", 1) if cfg.model_type == "llama" else None,
        ("rms_norm_eps", cfg.rms_norm_eps),
        ("rope_scaling", dict(cfg.rope_scaling) if cfg.rope_scaling else None),  # a copy: transformers edits it
        ("rope_theta", cfg.rope_theta),
        ("router_aux_loss_coef", cfg.router_aux_loss_coef) if cfg.moe else None,
        ("router_jitter_noise", 0.0) if mixtral else None,
        ("shared_expert_intermediate_size", cfg.shared_size) if qwen_moe else None,
        ("sliding_window", None) if qwen or mixtral else None,
        ("tie_word_embeddings", cfg.tie_word_embeddings),
        ("torch_dtype", cfg.dtype),
        ("use_cache", True),
        ("use_sliding_window", False) if qwen else None,
        ("vocab_size", cfg.vocab_size),
    ]
    config: dict[str, Any] = dict(item for item in items if item is not None)
    if cfg.vocab_size > _QWEN_EOS:
        config["bos_token_id"] = _QWEN_BOS
        config["eos_token_id"] = _QWEN_EOS
    return config


def tiny_hf_state_dict(cfg: TinyModelConfig) -> dict[str, torch.Tensor]:
    """Seeded random weights in the family's HF naming (no `lm_head.weight` when tied), dtype `cfg.dtype`.

    Qwen2 draws exactly as before families existed (same seed → the same tensors as older versions)."""
    cfg.validate()
    gen = torch.Generator().manual_seed(cfg.seed)
    std = cfg.initializer_range
    h, f = cfg.hidden_size, cfg.intermediate_size
    hd = cfg.head_size
    bias = cfg.model_type in ("qwen2", "qwen2_moe")
    q_rows, kv_rows = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    def norm(size: int = h) -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(size, generator=gen)

    state: dict[str, torch.Tensor] = {"model.embed_tokens.weight": normal(cfg.vocab_size, h)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        state[p + "input_layernorm.weight"] = norm()
        for name, rows in (("q", q_rows), ("k", kv_rows), ("v", kv_rows)):
            state[p + f"self_attn.{name}_proj.weight"] = normal(rows, h)
            if bias:
                state[p + f"self_attn.{name}_proj.bias"] = normal(rows)
        state[p + "self_attn.o_proj.weight"] = normal(h, q_rows)
        if cfg.model_type == "qwen3":
            state[p + "self_attn.q_norm.weight"] = norm(hd)
            state[p + "self_attn.k_norm.weight"] = norm(hd)
        state[p + "post_attention_layernorm.weight"] = norm()
        if not cfg.moe:
            state[p + "mlp.gate_proj.weight"] = normal(f, h)
            state[p + "mlp.up_proj.weight"] = normal(f, h)
            state[p + "mlp.down_proj.weight"] = normal(h, f)
            continue
        block = p + ("block_sparse_moe." if cfg.model_type == "mixtral" else "mlp.")
        gate, up, down = ("w1", "w3", "w2") if cfg.model_type == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        fe = cfg.expert_size
        state[block + "gate.weight"] = torch.randn(cfg.num_experts, h, generator=gen) / h ** 0.5
        for e in range(cfg.num_experts):
            state[block + f"experts.{e}.{gate}.weight"] = normal(fe, h)
            state[block + f"experts.{e}.{up}.weight"] = normal(fe, h)
            state[block + f"experts.{e}.{down}.weight"] = normal(h, fe)
        if cfg.model_type == "qwen2_moe":
            fs = cfg.shared_size
            state[block + "shared_expert.gate_proj.weight"] = normal(fs, h)
            state[block + "shared_expert.up_proj.weight"] = normal(fs, h)
            state[block + "shared_expert.down_proj.weight"] = normal(h, fs)
            state[block + "shared_expert_gate.weight"] = normal(1, h)
    state["model.norm.weight"] = norm()
    if not cfg.tie_word_embeddings:
        state["lm_head.weight"] = normal(cfg.vocab_size, h)
    dtype = DTYPES[cfg.dtype]
    return {k: v.to(dtype) for k, v in state.items()}


def make_tiny_model(
    out_dir: PathLike,
    cfg: Optional[TinyModelConfig] = None,
    tokenizer_dir: Optional[PathLike] = None,
) -> list[Path]:
    """Write a tiny random HF model folder (the family of `cfg.model_type`) to `out_dir`.

    Args:
        out_dir: target folder (created; weight/config files in it are replaced).
        cfg: the family, model shape, seed and dtype (default `TinyModelConfig()`, a Qwen2).
        tokenizer_dir: copy the tokenizer files from here (e.g. the real Qwen2.5 tokenizer or
            `qwen_sft.tokenizer.standin_tokenizer_dir()`); None writes no tokenizer.

    Returns:
        The paths written.

    Raises:
        ValueError: an inconsistent `cfg`, or a tokenizer whose ids (151,665 for Qwen2.5) do not fit the
            vocabulary (`vocab_size` too small to be used with it).
    """
    cfg = cfg or TinyModelConfig()
    cfg.validate()
    if tokenizer_dir is not None and cfg.vocab_size < _QWEN_TOKENIZER_IDS:
        raise ValueError(
            f"vocab_size={cfg.vocab_size} is smaller than the Qwen2.5 tokenizer's {_QWEN_TOKENIZER_IDS} ids; use "
            f"vocab_size >= {_QWEN_TOKENIZER_IDS} (Qwen2.5 uses {QWEN25_VOCAB_ROWS}) or write no tokenizer"
        )
    config = tiny_hf_config(cfg)
    generation: dict[str, Any] = {"do_sample": False}
    if cfg.vocab_size > _QWEN_EOS:
        generation.update(bos_token_id=_QWEN_BOS, pad_token_id=_QWEN_BOS, eos_token_id=[_QWEN_EOS, _QWEN_BOS])
    return hf_io.save_hf_checkpoint(
        out_dir, config, tiny_hf_state_dict(cfg), tokenizer_dir=tokenizer_dir, generation_config=generation
    )


def describe(cfg: TinyModelConfig) -> dict[str, Any]:
    """`cfg` as a plain dict plus its parameter count (for CLI output)."""
    d = asdict(cfg)
    h, f, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_size
    bias = 1 if cfg.model_type in ("qwen2", "qwen2_moe") else 0
    if cfg.moe:  # router, routed experts, shared expert and its gate
        mlp = cfg.num_experts * h + cfg.num_experts * 3 * h * cfg.expert_size
        mlp += (3 * h * cfg.shared_size + h) if cfg.shared_size else 0
    else:
        mlp = 3 * h * f
    per_layer = (
        2 * h
        + (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * hd * (h + bias)
        + h * cfg.num_attention_heads * hd
        + mlp
        + (2 * hd if cfg.model_type == "qwen3" else 0)
    )
    embeddings = cfg.vocab_size * h * (1 if cfg.tie_word_embeddings else 2)
    d["parameters"] = embeddings + cfg.num_hidden_layers * per_layer + h
    return d


#: The name the maker had while it wrote Qwen2 only (kept for existing callers).
TinyQwen2Config = TinyModelConfig
