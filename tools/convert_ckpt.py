"""Convert weights between an HF folder and a megatron-core TP × PP (× EP) checkpoint folder.

The original workflow's `w_ori -> w_transfer` step, and back. Directions: `hf2mg` (HF -> Megatron, also
`hf2megatron`/`hf_to_megatron`), `mg2hf` (Megatron -> HF, also `megatron2hf`/`megatron_to_hf`), `auto` (default:
the other format than the input's). `--model_path` takes an HF folder, a converted Megatron folder, a training
output folder, a training checkpoint or a ModelScope id (downloaded when online).

Training checkpoints (what tools/train.py saves: `<output>/checkpoints/iter_XXXXXXX`, megatron-core torch_dist at
any TP/PP/EP) convert too: pass the `iter_XXXXXXX` folder, or the checkpoints folder or a training output folder
without an HF export (`--no_export`) for the latest one (`latest_checkpointed_iteration.txt`), or any of the two
with `--iteration N` (a training output folder with its HF export converts that export unless `--iteration` is
given). The checkpoint is loaded in this one process at TP=1 PP=1 through training's resharding load
(`qwen_sft.loading.load_training_checkpoint_hf`); the run's `--model_path` must still exist (its config.json
builds the model) and its tokenizer files are copied unless `--tokenizer_path` says otherwise. Megatron-LM's converter flag names are accepted as
aliases (`--load-dir`, `--save-dir`, `--target-tensor-parallel-size`, `--target-pipeline-parallel-size`).
Formats: CONTRIBUTING.md (Formats); mapping: qwen_sft/weight_map.py (one table per model family:
Qwen2/Qwen2.5, Llama, Qwen3, Mixtral, Qwen2-MoE).

Examples::

    python tools/convert_ckpt.py --direction hf2mg --model_path w_ori --output_path w_transfer --tp 2 --pp 1
    python tools/convert_ckpt.py --direction mg2hf --model_path w_transfer --output_path w_hf
    python tools/convert_ckpt.py --direction mg2hf --model_path out/checkpoints --iteration 500 --output_path w_500

Exit status: 0 on success, 1 when the checkpoint cannot be converted (the message says why), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional

from qwen_sft.checkpointing import find_training_checkpoint
from qwen_sft.convert import ConvertConfig, convert_checkpoint
from qwen_sft.dtypes import DTYPE_NAMES
from qwen_sft.hf_io import DEFAULT_MAX_SHARD_BYTES

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
    """'5GB' / '500MB' / '2GiB' / '123456' → bytes (HF's decimal units; KiB/MiB/GiB binary)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 5GB, 500MB, 2GiB or a byte count")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(prog="convert_ckpt.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--direction", default="auto",
                   help="hf2mg | mg2hf | auto (default; also hf2megatron, hf_to_megatron, megatron2hf, megatron_to_hf)")
    p.add_argument("--model_path", "--load_dir", "--load-dir", dest="model_path", required=True,
                   help="input: HF folder, Megatron folder, training output folder or ModelScope id")
    p.add_argument("--output_path", "--save_dir", "--save-dir", dest="output_path", required=True,
                   help="output folder")
    p.add_argument("--tp", "--tensor_model_parallel_size", "--target_tensor_parallel_size",
                   "--target-tensor-parallel-size", dest="tp", type=int, default=1,
                   help="tensor-parallel size of the Megatron output (default 1)")
    p.add_argument("--pp", "--pipeline_model_parallel_size", "--target_pipeline_parallel_size",
                   "--target-pipeline-parallel-size", dest="pp", type=int, default=1,
                   help="pipeline-parallel size of the Megatron output (default 1)")
    p.add_argument("--ep", "--expert_model_parallel_size", "--target_expert_parallel_size",
                   "--target-expert-parallel-size", dest="ep", type=int, default=1,
                   help="expert-parallel size of the Megatron output (MoE models; default 1)")
    p.add_argument("--make_vocab_size_divisible_by", "--make-vocab-size-divisible-by", type=int, default=128,
                   help="pad the vocabulary to a multiple of this × TP (default 128, as Megatron-LM)")
    p.add_argument("--dtype", default=None, choices=sorted(DTYPE_NAMES),
                   help="cast weights to this dtype (default: keep the stored dtype)")
    p.add_argument("--tokenizer_path", default=None,
                   help="copy tokenizer files from here (default: from the input folder when it has them)")
    p.add_argument("--iteration", type=int, default=None,
                   help="with a training checkpoints or output folder: convert iter_N (default: the latest)")
    p.add_argument("--max_shard_size", type=parse_size, default=DEFAULT_MAX_SHARD_BYTES,
                   help="largest safetensors file of an HF output, e.g. 5GB (default), 500MB")
    return p


def parse_config(argv: list[str] | None = None) -> ConvertConfig:
    """Parse the command line into a ConvertConfig (argparse exits with status 2 on bad arguments)."""
    return _parse(argv)[0]


def _parse(argv: list[str] | None) -> tuple[ConvertConfig, Optional[int]]:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.iteration is not None and a.iteration < 0:
        parser.error(f"--iteration must be >= 0, got {a.iteration}")
    cfg = ConvertConfig(
        model_path=a.model_path, output_path=a.output_path, direction=a.direction,
        tensor_model_parallel_size=a.tp, pipeline_model_parallel_size=a.pp, expert_model_parallel_size=a.ep,
        make_vocab_size_divisible_by=a.make_vocab_size_divisible_by, dtype=a.dtype,
        tokenizer_path=a.tokenizer_path, max_shard_bytes=a.max_shard_size)
    try:
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg, a.iteration


def _training_weights(cfg: ConvertConfig, iteration: Optional[int]) -> Optional[dict]:
    """`convert_checkpoint` keywords for a training checkpoint input, or None for the other input forms.

    Raises:
        FileNotFoundError / ValueError: from `find_training_checkpoint` / `load_training_checkpoint_hf`; also
            `--iteration` with an input that is no training checkpoint.
    """
    found = find_training_checkpoint(cfg.model_path, iteration) if Path(cfg.model_path).is_dir() else None
    if found is None:
        if iteration is not None:
            raise ValueError(f"--iteration {iteration}: {cfg.model_path} holds no training checkpoints "
                             f"(expected an output folder with checkpoints/ or a checkpoints folder with "
                             f"latest_checkpointed_iteration.txt)")
        return None
    from qwen_sft.loading import load_training_checkpoint_hf  # megatron-core: only for this input form
    hf_config, hf_state, info = load_training_checkpoint_hf(found)
    saved = info["layout"]
    saved = (f"saved at TP={saved['tensor_model_parallel_size']} PP={saved['pipeline_model_parallel_size']} "
             f"EP={saved.get('expert_model_parallel_size', 1)}") if saved else "saving layout not recorded"
    print(f"training checkpoint {found} (iteration {info['iteration']}, {saved}) loaded at TP=1 PP=1 "
          f"on the run's model {info['model_path']}")
    if cfg.tokenizer_path is None:
        cfg.tokenizer_path = info["tokenizer_path"]
    return {"weights": (hf_config, hf_state), "input_format": "training"}


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; print what was written. Returns the exit status."""
    cfg, iteration = _parse(argv)
    try:
        extra = _training_weights(cfg, iteration) or {}
        summary = convert_checkpoint(**vars(cfg), **extra)
    except (FileNotFoundError, ConnectionError, KeyError, ValueError, TypeError, NotImplementedError) as exc:
        print(f"convert_ckpt.py: error: {exc}", file=sys.stderr)
        return 1
    files = summary.pop("files")
    ep = f" EP={summary['ep']}" if summary.get("ep", 1) > 1 else ""
    layout = f"TP={summary['tp']} PP={summary['pp']}{ep} padded_vocab_size={summary['padded_vocab_size']}" \
        if summary["direction"] == "hf2mg" else "HF safetensors"
    print(f"{summary['direction']}: {summary['input']} ({summary['input_format']}) -> {summary['output']} "
          f"[{layout}, {summary['tensors']} tensors, {summary['parameters']:,} parameters, {summary['dtype']}]")
    if summary["tokenizer"] is None:
        print("note: no tokenizer files copied (the input has none; pass --tokenizer_path)")
    total = 0
    for f in files:
        size = Path(f).stat().st_size
        total += size
        print(f"  wrote {f} ({size:,} bytes)")
    print(json.dumps(dict(summary, files=len(files), bytes=total)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
