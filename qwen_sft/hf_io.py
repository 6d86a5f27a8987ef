"""HF model folder I/O: config.json, safetensors (single file or sharded index), pytorch_model.bin, ModelScope ids.

Formats follow the Hugging Face conventions that `transformers` reads and writes:
- `config.json` — the model configuration (for Qwen2.5: `architectures: ["Qwen2ForCausalLM"]`, `model_type: qwen2`);
- `model.safetensors` — all tensors in one file, or `model-0000i-of-0000n.safetensors` shards plus
  `model.safetensors.index.json` = `{"metadata": {"total_size": bytes}, "weight_map": {tensor name: shard file}}`;
- legacy `pytorch_model.bin` (a `torch.save`d state dict), read only.
Tensors are read and written with the `safetensors` library (`safetensors.torch`), with `{"format": "pt"}` metadata
as `transformers` writes it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional, Union

# The module, not its functions: under the shim `safetensors.torch`'s functions are replaced by the facade's
# when the shim activates (shim/torch/_safetensors.py), so they are looked up at call time.
import safetensors.torch
import torch

from qwen_sft.tokenizer import copy_tokenizer_files

__all__ = [
    "resolve_model_path",
    "load_hf_config",
    "load_hf_state_dict",
    "save_hf_checkpoint",
    "is_hf_checkpoint",
    "copy_tokenizer",
    "copy_extra_files",
    "write_json",
    "DEFAULT_MAX_SHARD_BYTES",
    "OFFLINE_ENV_VARS",
]

PathLike = Union[str, os.PathLike]

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN_FILE = "pytorch_model.bin"
DEFAULT_MAX_SHARD_BYTES = 5_000_000_000  # transformers' default max_shard_size "5GB"
# Files besides weights and tokenizer that travel with a model folder.
EXTRA_MODEL_FILES = ("generation_config.json",)
# Any of these set to 1/true/yes means "do not touch the network" (the project's offline switch is HF_HUB_OFFLINE).
OFFLINE_ENV_VARS = ("QWEN_SFT_OFFLINE", "MODELSCOPE_OFFLINE", "HF_HUB_OFFLINE")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_ENV_VARS)


def resolve_model_path(path_or_model_id: PathLike, cache_dir: Optional[PathLike] = None) -> Path:
    """Turn a `--model_path` value into a local folder.

    An existing local folder is returned as is. A value shaped like a ModelScope model id (`owner/name`, e.g.
    `Qwen/Qwen2.5-7B-Instruct`) that is not a local path is looked up in the ModelScope cache and, when online,
    downloaded with `modelscope.snapshot_download` (the original workflow's way of fetching weights).

    Offline (any of `OFFLINE_ENV_VARS` set, e.g. `HF_HUB_OFFLINE=1`) only the local cache is used.

    Args:
        path_or_model_id: local folder or ModelScope model id.
        cache_dir: ModelScope cache folder (default: ModelScope's own, `$MODELSCOPE_CACHE` or ~/.cache/modelscope).

    Returns:
        The local folder.

    Raises:
        FileNotFoundError: a local-looking path that does not exist.
        ConnectionError: a model id that is not cached and could not be downloaded (offline or unreachable); the
            message says how to pass a local path instead.
    """
    text = os.fspath(path_or_model_id)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise FileNotFoundError(f"model path {text!r} is a file; expected a model folder or a ModelScope model id")
    if not _MODEL_ID.match(text) or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model path {text!r} does not exist (and is not a ModelScope id like 'Qwen/Qwen2.5-7B-Instruct')")
    how = (
        f"Download it on a machine with network access (e.g. `modelscope download --model {text} "
        f"--local_dir DIR`, or `snapshot_download('{text}')`), copy it here, and pass the folder: "
        f"--model_path /path/to/DIR"
    )
    try:  # optional dependency, needed only for model ids
        from modelscope import snapshot_download
    except ImportError as exc:
        raise ConnectionError(
            f"--model_path {text!r} is not a local folder and looks like a ModelScope model id, but the "
            f"`modelscope` package is not installed ({exc}). {how}"
        ) from exc
    kwargs: dict[str, Any] = {} if cache_dir is None else {"cache_dir": str(cache_dir)}
    try:
        return Path(snapshot_download(text, local_files_only=True, **kwargs))
    except Exception:  # not cached: fall through to the download (or the offline error)
        pass
    if _offline():
        set_vars = [v for v in OFFLINE_ENV_VARS if os.environ.get(v)]
        raise ConnectionError(
            f"--model_path {text!r} is not a local folder and not in the ModelScope cache, and this process is "
            f"offline ({', '.join(f'{v}={os.environ[v]}' for v in set_vars)}), so it cannot be downloaded. {how}"
        )
    try:
        return Path(snapshot_download(text, **kwargs))
    except Exception as exc:
        raise ConnectionError(
            f"could not download {text!r} from ModelScope: the network is offline or ModelScope is unreachable "
            f"({type(exc).__name__}: {exc}). {how}"
        ) from exc


def load_hf_config(model_dir: PathLike) -> dict[str, Any]:
    """Read `model_dir/config.json` into a dict.

    Raises:
        FileNotFoundError: no config.json.
        ValueError: not valid JSON or not a JSON object.
    """
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} has no config.json (expected an HF model folder)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(config).__name__}")
    return config


def is_hf_checkpoint(model_dir: PathLike) -> bool:
    """True when `model_dir` has config.json and HF weights (safetensors, sharded index or pytorch_model.bin)."""
    p = Path(model_dir)
    return (p / "config.json").is_file() and any(
        (p / n).is_file() for n in (SAFETENSORS_FILE, SAFETENSORS_INDEX, TORCH_BIN_FILE)
    )


def load_hf_state_dict(model_dir: PathLike) -> dict[str, torch.Tensor]:
    """Read every weight of an HF model folder (dtype as stored, on CPU).

    Looks, in order, for `model.safetensors.index.json` (sharded), `model.safetensors`, `pytorch_model.bin`.

    Raises:
        FileNotFoundError: none of those files, or a shard named in the index is missing.
        ValueError: a malformed index, or a tensor name in two shards.
    """
    root = Path(model_dir)
    index_path = root / SAFETENSORS_INDEX
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{index_path}: not a safetensors index with a 'weight_map' ({exc})") from exc
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = root / shard
            if not shard_path.is_file():
                raise FileNotFoundError(f"{index_path} names shard {shard!r}, which is missing")
            for name, tensor in safetensors.torch.load_file(str(shard_path)).items():
                if name in state:
                    raise ValueError(f"{root}: tensor {name!r} appears in more than one shard")
                state[name] = tensor
        missing = sorted(set(weight_map) - set(state))
        if missing:
            raise ValueError(f"{index_path}: tensors listed but not found in their shards: {missing[:8]}")
        return state
    if (root / SAFETENSORS_FILE).is_file():
        return safetensors.torch.load_file(str(root / SAFETENSORS_FILE))
    if (root / TORCH_BIN_FILE).is_file():
        state = torch.load(root / TORCH_BIN_FILE, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{root / TORCH_BIN_FILE}: expected a state dict, found {type(state).__name__}")
        return state
    raise FileNotFoundError(
        f"{str(root)!r} has no weights: expected {SAFETENSORS_FILE}, {SAFETENSORS_INDEX} or {TORCH_BIN_FILE}"
    )


def write_json(path: PathLike, obj: Any) -> None:
    """Write `obj` as indented UTF-8 JSON (atomically: a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def copy_tokenizer(tokenizer_dir: PathLike, dst_dir: PathLike) -> list[str]:
    """Copy the tokenizer files of `tokenizer_dir` into `dst_dir` (via `qwen_sft.tokenizer.copy_tokenizer_files`).

    Returns:
        The copied file names.

    Raises:
        FileNotFoundError / ValueError: from `copy_tokenizer_files` (no folder, no tokenizer files in it).
    """
    return copy_tokenizer_files(tokenizer_dir, dst_dir)


def copy_extra_files(src_dir: PathLike, dst_dir: PathLike) -> list[Path]:
    """Copy the non-weight model files (`generation_config.json`) that `src_dir` has into `dst_dir`."""
    src, dst = Path(src_dir), Path(dst_dir)
    written = []
    for name in EXTRA_MODEL_FILES:
        if (src / name).is_file() and (src / name).resolve() != (dst / name).resolve():
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, dst / name)
            written.append(dst / name)
    return written


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def save_hf_checkpoint(
    out_dir: PathLike,
    hf_config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    tokenizer_dir: Optional[PathLike] = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    *,
    extra_files_dir: Optional[PathLike] = None,
    generation_config: Optional[Mapping[str, Any]] = None,
) -> list[Path]:
    """Write an HF model folder that `transformers.AutoModelForCausalLM.from_pretrained` loads.

    Writes `config.json`, the weights as `model.safetensors` (total size <= max_shard_bytes) or as
    `model-0000i-of-0000n.safetensors` shards with `model.safetensors.index.json` (tensors kept in the given order,
    a new shard started when the next tensor would exceed the limit; a single tensor larger than the limit gets a
    shard of its own), the tokenizer files of `tokenizer_dir`, and `generation_config.json` (from
    `generation_config`, else copied from `extra_files_dir` when present). Stale weight files of the other layout
    in `out_dir` are removed so the folder is unambiguous.

    Args:
        out_dir: target folder (created).
        hf_config: the config.json content.
        state_dict: HF-named tensors (any dtype; written as is, made contiguous).
        tokenizer_dir: folder to copy tokenizer files from, or None.
        max_shard_bytes: shard size limit in bytes (> 0).

    Returns:
        The paths written.

    Raises:
        ValueError: max_shard_bytes <= 0 or a non-tensor value in state_dict.
    """
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be > 0, got {max_shard_bytes}")
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict[{name!r}] is a {type(value).__name__}, expected a tensor")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / SAFETENSORS_FILE, out / SAFETENSORS_INDEX, out / TORCH_BIN_FILE, *out.glob("model-*-of-*.safetensors")]:
        if stale.is_file():
            stale.unlink()
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    total = 0
    for name, tensor in state_dict.items():
        n = _nbytes(tensor)
        total += n
        if shards[-1] and size + n > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.detach().to("cpu").contiguous()
        size += n
    written: list[Path] = []
    metadata = {"format": "pt"}
    if len(shards) == 1:
        path = out / SAFETENSORS_FILE
        safetensors.torch.save_file(shards[0], str(path), metadata=metadata)
        written.append(path)
    else:
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards, start=1):
            fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            safetensors.torch.save_file(shard, str(out / fname), metadata=metadata)
            written.append(out / fname)
            weight_map.update({name: fname for name in shard})
        write_json(out / SAFETENSORS_INDEX, {"metadata": {"total_size": total}, "weight_map": weight_map})
        written.append(out / SAFETENSORS_INDEX)
    write_json(out / "config.json", dict(hf_config))
    written.append(out / "config.json")
    if generation_config is not None:
        write_json(out / "generation_config.json", dict(generation_config))
        written.append(out / "generation_config.json")
    elif extra_files_dir is not None:
        written += copy_extra_files(extra_files_dir, out)
    if tokenizer_dir is not None:
        written += [out / n for n in copy_tokenizer(tokenizer_dir, out)]
    return written
