"""Sizes derived from an HF config that the weight map and the model builder both need: Megatron's padded
vocabulary and the attention head size. No torch, no megatron: importable by anything in `qwen_sft`."""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["padded_vocab_size", "head_dim_from_hf"]


def padded_vocab_size(vocab_size: int, tensor_model_parallel_size: int, make_vocab_size_divisible_by: int = 128) -> int:
    """Round `vocab_size` up to a multiple of `make_vocab_size_divisible_by * tensor_model_parallel_size`.

    This is Megatron-LM's rule (`_vocab_size_with_padding`): every tensor-parallel rank then holds an equal
    slice of the embedding and output layer whose row count is a multiple of `make_vocab_size_divisible_by`.
    Example: Qwen2.5-0.5B's 151,936 rows (= 128 × 1,187) stay 151,936 at TP=1 and pad to 152,064 at TP=2 and
    TP=4, 152,576 at TP=8; Qwen2.5-7B's 152,064 rows stay 152,064 up to TP=4.

    Args:
        vocab_size: rows of the HF embedding (`config.json` `vocab_size`), > 0.
        tensor_model_parallel_size: TP degree, >= 1.
        make_vocab_size_divisible_by: per-rank multiple, >= 1 (Megatron-LM's default is 128).

    Returns:
        The padded row count (>= vocab_size).

    Raises:
        ValueError: a non-positive argument.
    """
    for name, value in (
        ("vocab_size", vocab_size),
        ("tensor_model_parallel_size", tensor_model_parallel_size),
        ("make_vocab_size_divisible_by", make_vocab_size_divisible_by),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"padded_vocab_size: {name} must be a positive int, got {value!r}")
    multiple = make_vocab_size_divisible_by * tensor_model_parallel_size
    return ((vocab_size + multiple - 1) // multiple) * multiple


def head_dim_from_hf(hf_config: Mapping[str, Any]) -> int:
    """Attention head size (Megatron `kv_channels`): `head_dim` when config.json has it, else hidden / heads.

    Raises:
        ValueError: hidden_size not divisible by num_attention_heads and no explicit `head_dim`.
    """
    if hf_config.get("head_dim"):
        return int(hf_config["head_dim"])
    hidden, heads = int(hf_config["hidden_size"]), int(hf_config["num_attention_heads"])
    if hidden % heads:
        raise ValueError(f"hf_config hidden_size={hidden} is not divisible by num_attention_heads={heads}")
    return hidden // heads


def vocab_padding_multiple(saved_rows: int, vocab_size: int, tensor_model_parallel_size: int,
                           make_vocab_size_divisible_by: int) -> int:
    """The `make_vocab_size_divisible_by` that gives this run's model the checkpoint's padded vocabulary.

    Megatron's rule pads `vocab_size` up to a multiple of `m × TP`; the saved row count `P` comes back for any TP
    that divides it with `m = P / TP` (a single padded slice per rank of `P / TP` rows). Returns
    `make_vocab_size_divisible_by` itself when it already gives `P`.

    Raises:
        ValueError: `P` is not divisible by this run's TP, or smaller than `vocab_size`.
    """
    if padded_vocab_size(vocab_size, tensor_model_parallel_size, make_vocab_size_divisible_by) == saved_rows:
        return make_vocab_size_divisible_by
    if saved_rows < vocab_size or saved_rows % tensor_model_parallel_size:
        raise ValueError(f"the checkpoint's embedding has {saved_rows} rows (padded vocabulary), which cannot be "
                         f"split over tensor_model_parallel_size={tensor_model_parallel_size} for a vocabulary "
                         f"of {vocab_size}; resume at a TP that divides {saved_rows}")
    return saved_rows // tensor_model_parallel_size
