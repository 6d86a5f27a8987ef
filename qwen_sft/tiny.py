"""Tiny, seeded, randomly initialised HF Qwen2 checkpoints for tests and the demo.

The folder is a regular HF Qwen2 model folder: `config.json` (Qwen2.5's field set, `architectures:
["Qwen2ForCausalLM"]`, `model_type: qwen2`), `model.safetensors`, `generation_config.json` and, optionally, the
tokenizer files. `transformers.Qwen2ForCausalLM.from_pretrained` loads it, and so do our converters.

Initialisation (all from one `torch.Generator` seeded with `seed`, so the same arguments give bit-identical files):
linear weights and biases ~ N(0, initializer_range²); embeddings ~ N(0, initializer_range²); RMSNorm weights
~ 1 + N(0, 0.1²) (not all ones, so a swapped norm is visible in tests). Tensors are drawn in float32 and then
cast to `dtype`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch

from qwen_sft import hf_io
from qwen_sft.dtypes import CANONICAL_DTYPE_NAMES, DTYPE_NAMES

__all__ = ["TinyQwen2Config", "tiny_hf_config", "tiny_hf_state_dict", "make_tiny_model", "DTYPES", "QWEN25_VOCAB_ROWS"]

PathLike = Union[str, os.PathLike]

QWEN25_VOCAB_ROWS = 151936  # embedding rows of Qwen2.5-0.5B/1.5B/3B (7B: 152064)
_QWEN_BOS = 151643  # <|endoftext|>
_QWEN_EOS = 151645  # <|im_end|>
_QWEN_TOKENIZER_IDS = 151665  # len(tokenizer) of Qwen2.5: 151,643 BPE tokens + 22 added tokens
#: The dtypes a tiny model can be written in (the torch names of `qwen_sft.dtypes`).
DTYPES = {name: DTYPE_NAMES[name] for name in CANONICAL_DTYPE_NAMES}


@dataclass
class TinyQwen2Config:
    """Shape of a tiny Qwen2 model (HF config names). Defaults: 2 layers, hidden 64, 4 heads / 2 KV heads."""

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

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                     "intermediate_size", "vocab_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_attention_heads={self.num_attention_heads}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} must be divisible by "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(f"head size hidden_size/num_attention_heads must be even for RoPE")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")


def tiny_hf_config(cfg: TinyQwen2Config) -> dict[str, Any]:
    """The HF `config.json` dict for `cfg` (Qwen2.5's field set; token ids only when the vocabulary holds them)."""
    cfg.validate()
    config: dict[str, Any] = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": cfg.hidden_size,
        "initializer_range": cfg.initializer_range,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "max_window_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_key_value_heads": cfg.num_key_value_heads,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": cfg.rope_theta,
        "sliding_window": None,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "torch_dtype": cfg.dtype,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": cfg.vocab_size,
    }
    if cfg.vocab_size > _QWEN_EOS:
        config["bos_token_id"] = _QWEN_BOS
        config["eos_token_id"] = _QWEN_EOS
    return config


def tiny_hf_state_dict(cfg: TinyQwen2Config) -> dict[str, torch.Tensor]:
    """Seeded random weights in HF `Qwen2ForCausalLM` naming (no `lm_head.weight` when tied), dtype `cfg.dtype`."""
    cfg.validate()
    gen = torch.Generator().manual_seed(cfg.seed)
    std = cfg.initializer_range
    h, f = cfg.hidden_size, cfg.intermediate_size
    hd = h // cfg.num_attention_heads
    q_rows, kv_rows = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    def norm() -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(h, generator=gen)

    state: dict[str, torch.Tensor] = {"model.embed_tokens.weight": normal(cfg.vocab_size, h)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        state[p + "input_layernorm.weight"] = norm()
        state[p + "self_attn.q_proj.weight"] = normal(q_rows, h)
        state[p + "self_attn.q_proj.bias"] = normal(q_rows)
        state[p + "self_attn.k_proj.weight"] = normal(kv_rows, h)
        state[p + "self_attn.k_proj.bias"] = normal(kv_rows)
        state[p + "self_attn.v_proj.weight"] = normal(kv_rows, h)
        state[p + "self_attn.v_proj.bias"] = normal(kv_rows)
        state[p + "self_attn.o_proj.weight"] = normal(h, q_rows)
        state[p + "post_attention_layernorm.weight"] = norm()
        state[p + "mlp.gate_proj.weight"] = normal(f, h)
        state[p + "mlp.up_proj.weight"] = normal(f, h)
        state[p + "mlp.down_proj.weight"] = normal(h, f)
    state["model.norm.weight"] = norm()
    if not cfg.tie_word_embeddings:
        state["lm_head.weight"] = normal(cfg.vocab_size, h)
    dtype = DTYPES[cfg.dtype]
    return {k: v.to(dtype) for k, v in state.items()}


def make_tiny_model(
    out_dir: PathLike,
    cfg: Optional[TinyQwen2Config] = None,
    tokenizer_dir: Optional[PathLike] = None,
) -> list[Path]:
    """Write a tiny random HF Qwen2 model folder to `out_dir`.

    Args:
        out_dir: target folder (created; weight/config files in it are replaced).
        cfg: the model shape, seed and dtype (default `TinyQwen2Config()`).
        tokenizer_dir: copy the tokenizer files from here (e.g. the real Qwen2.5 tokenizer or
            `qwen_sft.tokenizer.standin_tokenizer_dir()`); None writes no tokenizer.

    Returns:
        The paths written.

    Raises:
        ValueError: an inconsistent `cfg`, or a tokenizer whose ids (151,665 for Qwen2.5) do not fit the
            vocabulary (`vocab_size` too small to be used with it).
    """
    cfg = cfg or TinyQwen2Config()
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


def describe(cfg: TinyQwen2Config) -> dict[str, Any]:
    """`cfg` as a plain dict plus its parameter count (for CLI output)."""
    d = asdict(cfg)
    h, f, hd = cfg.hidden_size, cfg.intermediate_size, cfg.hidden_size // cfg.num_attention_heads
    per_layer = (
        2 * h
        + (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * hd * (h + 1)
        + h * cfg.num_attention_heads * hd
        + 3 * h * f
    )
    embeddings = cfg.vocab_size * h * (1 if cfg.tie_word_embeddings else 2)
    d["parameters"] = embeddings + cfg.num_hidden_layers * per_layer + h
    return d
