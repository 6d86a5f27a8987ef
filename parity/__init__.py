"""Parity tool: compare two training runs, two checkpoints or two generation outputs, number by number.

A reference run (real PyTorch, e.g. on a GPU) and a candidate run (the same tools under the shim, e.g. on Ascend)
are recorded by `tools/train.py` (`metrics.jsonl` + `manifest.json`), saved as HF / torch checkpoints, and by
`tools/generate.py --output_file` (JSON Lines). This package compares them:

    python -m parity compare A B                 # training runs (alias: compare-runs)
    python -m parity compare-checkpoints A B     # tensor by tensor
    python -m parity compare-generations A B     # token by token

Exit status: 0 within tolerance, 1 mismatch, 2 bad input (see `parity.cli`).

The package is plain Python + numpy + safetensors (numpy API) + matplotlib (Agg, only for `--plot`); it never
activates the shim and imports torch only to read `.pt`/`.bin` checkpoints when torch is importable, and torch (or
the shim's facade, `shim.torch`) to read megatron-core `torch_dist` checkpoints (`torch_dist`).

Modules (one concern each): `inputs` (file reading, `ParityInputError`), `tolerance` (the closeness rule),
`metrics` (training runs), `manifest` (run manifests), `checkpoints`, `torch_dist` (DCP checkpoint reading),
`generations`, `plot`, `text` (tables), `records` (file fingerprints, Megatron tracker files), `cli`.
"""
from __future__ import annotations

from .checkpoints import CheckpointComparison, compare_checkpoints, load_checkpoint
from .generations import GenerationComparison, compare_generations
from .inputs import ParityInputError
from .manifest import ManifestComparison, compare_manifests
from .metrics import DEFAULT_METRIC_TOLERANCES, RunComparison, compare_runs, load_run
from .tolerance import Tolerance, parse_tolerance_overrides

__all__ = [
    "ParityInputError", "Tolerance", "parse_tolerance_overrides",
    "DEFAULT_METRIC_TOLERANCES", "RunComparison", "compare_runs", "load_run",
    "ManifestComparison", "compare_manifests",
    "CheckpointComparison", "compare_checkpoints", "load_checkpoint",
    "GenerationComparison", "compare_generations",
]
