"""Entry point of MindSpore's scheduler process (``python -m shim._comm.scheduler``), started by the launcher.

MindSpore's dynamic cluster needs one scheduler (``MS_ROLE=MS_SCHED``) at ``MS_SCHED_HOST:MS_SCHED_PORT``;
in that role ``mindspore.communication.init()`` serves the cluster (registration, topology, heartbeats) until
the workers have left, then returns or ends the process. The launcher owns its lifetime.
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    """Serve as MindSpore's scheduler; the environment must carry ``MS_ROLE=MS_SCHED`` and the MS_SCHED_* /
    MS_WORKER_NUM variables (``SystemExit`` with a message naming the missing one otherwise)."""
    for name in ("MS_SCHED_HOST", "MS_SCHED_PORT", "MS_WORKER_NUM"):
        if not os.environ.get(name):
            raise SystemExit(f"shim._comm.scheduler: environment variable {name} is not set")
    os.environ["MS_ROLE"] = "MS_SCHED"
    # imported once MS_ROLE is set: MindSpore's communication takes its role from the environment
    from mindspore.communication import init

    init()
    return 0


if __name__ == "__main__":
    sys.exit(main())
