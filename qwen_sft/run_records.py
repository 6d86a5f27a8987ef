"""What a run leaves besides weights: the manifest, file and model fingerprints, the metrics file, memory figures.

- `manifest.json` (`build_manifest`): backend, package versions, device, seed, parallel layout, data and model
  fingerprints, step range, argv and the full configuration — enough to say what produced a run's numbers.
- `metrics.jsonl` (`MetricsFile`): one JSON object per line, a `"kind": "train"` record per optimizer step and a
  `"kind": "eval"` record per validation pass; a resumed run drops the records after its checkpoint's step so the
  file reads as one uninterrupted run.
- fingerprints of the data and the model: `qwen_sft.fingerprints` (kept free of torch for data conversion).
"""
from __future__ import annotations

import json
import platform
import resource
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import shim
import torch

from parity.records import sha256_file
from qwen_sft.fingerprints import model_fingerprint, package_version

__all__ = [
    "backend_name",
    "peak_memory",
    "build_manifest",
    "write_manifest",
    "MetricsFile",
]

def backend_name() -> str:
    """'mindspore' when `torch` is the shim's facade in this process (`shim.is_active()`), else 'torch': the backend
    recorded in the manifest and with the RNG states a checkpoint holds."""
    return "mindspore" if shim.is_active() else "torch"


def peak_memory() -> dict:
    """Peak memory of this rank, labelled by what it measures.

    Returns:
        `{"peak_gpu_memory_mib": float}` (torch.cuda.max_memory_allocated) on a CUDA device, else
        `{"peak_rss_mib": float}`: the process's peak resident set size (getrusage ru_maxrss; Linux reports KiB).
    """
    if torch.cuda.is_available():
        return {"peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20}
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def build_manifest(*, config: dict, layout, num_microbatches: int, data_path: Path, train_samples: int,
                   steps_per_epoch: int, global_batch_size: int, model_dir: Path, model_kind: str,
                   padded_vocab_size: int, total_steps: int, start_step: int, megatron_version: Optional[str]
                   ) -> dict[str, Any]:
    """The run manifest (written as `<output_path>/manifest.json`).

    Args:
        config: the run's configuration as a dict (`dataclasses.asdict(TrainConfig)`).
        layout: the `qwen_sft.parallel.ParallelLayout` of this rank.
        megatron_version: `megatron.core.__version__` (None → the installed distribution's version).
        the rest: as named (counts in samples / steps).
    """
    meta_path = Path(data_path) / "meta.json"
    return {
        "backend": backend_name(),
        "versions": {
            "python": platform.python_version(),
            "torch": getattr(torch, "__version__", None),
            "megatron_core": megatron_version or package_version("megatron-core"),
            "numpy": np.__version__,
            "mindspore": package_version("mindspore"),
            "transformers": package_version("transformers"),
        },
        "device": {"type": layout.device.type, "name": (torch.cuda.get_device_name(layout.device)
                                                        if layout.device.type == "cuda" else platform.processor()),
                   "process_group_backend": layout.backend, "hostname": platform.node()},
        "seed": config["seed"],
        "parallel": {"world_size": layout.world_size, "tensor_model_parallel_size": layout.tensor_model_parallel_size,
                     "pipeline_model_parallel_size": layout.pipeline_model_parallel_size,
                     "expert_model_parallel_size": layout.expert_model_parallel_size,
                     "data_parallel_size": layout.data_parallel_size, "num_microbatches": num_microbatches},
        "data": {"path": str(Path(data_path).resolve()), "train_samples": train_samples,
                 "steps_per_epoch": steps_per_epoch,
                 "skipped_per_epoch": train_samples - steps_per_epoch * global_batch_size,
                 "meta_sha256": sha256_file(meta_path) if meta_path.is_file() else None},
        "model": {"path": str(model_dir.resolve()), "kind": model_kind, "padded_vocab_size": padded_vocab_size,
                  "fingerprint": model_fingerprint(model_dir)},
        "total_steps": total_steps,
        "start_step": start_step,
        "argv": sys.argv,
        "config": config,
    }


def write_manifest(output: Path, manifest: dict) -> Path:
    """Write `<output>/manifest.json` (indented UTF-8 JSON); returns its path."""
    output.mkdir(parents=True, exist_ok=True)
    path = output / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


class MetricsFile:
    """`<output>/metrics.jsonl`: one JSON record per line, appended as the run goes."""

    def __init__(self, output: Path):
        self.path = Path(output) / "metrics.jsonl"

    def start(self, step: int) -> None:
        """Begin a run at `step`: a fresh run (step 0) empties the file; a resumed one keeps the records up to
        `step` and drops those of the interrupted tail."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and step and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def append(self, record: dict) -> None:
        """Append one record."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
