"""The launch description shared by the launcher's command line (:mod:`.cli`, which builds it) and its agent
(:mod:`.agent`, which runs it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class LaunchConfig:
    """Everything a launch needs. Ranks: node ``node_rank`` runs global ranks
    ``node_rank * nproc_per_node + local_rank``; ``world_size = nnodes * nproc_per_node``."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    use_env: bool = True            # False only in legacy mode without --use-env: pass --local-rank=N
    module: bool = False
    no_python: bool = False
    log_dir: Optional[str] = None
    run_id: str = "none"
    monitor_interval: float = 0.1
    join_timeout: float = 300.0
    shutdown_timeout: float = 10.0
    script: str = ""
    script_args: list[str] = field(default_factory=list)

    @property
    def world_size(self) -> int:
        """Total number of worker processes over all nodes."""
        return self.nnodes * self.nproc_per_node
