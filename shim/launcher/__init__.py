"""torchrun / ``torch.distributed.launch`` compatible launcher that starts a MindSpore dynamic cluster.

``python -m shim.launcher [torchrun flags] SCRIPT ARGS...`` (torchrun semantics), and under the shim
``python -m torch.distributed.run`` / ``torchrun`` / ``python -m torch.distributed.launch`` (legacy semantics:
``--local-rank=N`` is passed to the script unless ``--use-env``). Flags: :mod:`shim.launcher.cli` (into a
:class:`~shim.launcher.config.LaunchConfig`); processes, environment, output and failure handling:
:mod:`shim.launcher.agent`.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from .agent import launch
from .cli import parse_args
from .config import LaunchConfig


def main(argv: Optional[Sequence[str]] = None, *, legacy: bool = False) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the job on this node, return the exit status."""
    cfg = parse_args(sys.argv[1:] if argv is None else argv, legacy=legacy)
    return launch(cfg)


__all__ = ["LaunchConfig", "parse_args", "main"]
