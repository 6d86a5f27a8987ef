"""The dtype names the workflow's flags and config files use, in one table.

Both spellings are accepted everywhere a dtype is named (`--dtype` of convert_ckpt/generate/evaluate, config.json
`torch_dtype` / `dtype`, `--mixed_precision`): the torch name (`float32`) and the short one (`fp32`).
"""
from __future__ import annotations

from typing import Union

import torch

__all__ = ["DTYPE_NAMES", "CANONICAL_DTYPE_NAMES", "dtype_name", "resolve_dtype", "config_with_weight_dtype"]

#: name → torch dtype (torch names and the short names of --mixed_precision / Megatron-LM).
DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}
#: The torch names only (what is written into config.json and offered where one spelling is enough).
CANONICAL_DTYPE_NAMES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` → "bfloat16" (the spelling config.json and the manifests use)."""
    return str(dtype).replace("torch.", "")


def config_with_weight_dtype(hf_config: dict, dtype: torch.dtype) -> dict:
    """A copy of config.json's dict that names the dtype its weights are written in: `dtype` (transformers >= 5),
    and `torch_dtype` too when the config has that older key (as training's HF export writes it)."""
    out = dict(hf_config)
    out["dtype"] = dtype_name(dtype)
    if "torch_dtype" in out:
        out["torch_dtype"] = out["dtype"]
    return out


def resolve_dtype(dtype: Union[str, torch.dtype, None], hf_config: dict) -> torch.dtype:
    """A dtype argument as the loaders take it: a torch.dtype, a name of `DTYPE_NAMES`, or "auto"/None for
    config.json's `torch_dtype` (else `dtype`, else float32).

    Raises:
        ValueError: an unknown name (in the argument or in config.json), naming the accepted ones.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        name = hf_config.get("torch_dtype") or hf_config.get("dtype") or "float32"
        if name not in DTYPE_NAMES:
            raise ValueError(f"config.json torch_dtype {name!r}: expected one of {sorted(DTYPE_NAMES)}")
        return DTYPE_NAMES[name]
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype {dtype!r}: expected 'auto' or one of {sorted(DTYPE_NAMES)}")
    return DTYPE_NAMES[dtype]
