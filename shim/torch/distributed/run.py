"""``python -m torch.distributed.run`` / ``torchrun`` under the shim: the launcher with torchrun semantics
(``shim.launcher``; flags in ``shim/launcher/cli.py``). Workers start a MindSpore dynamic cluster."""
from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run torchrun's command line ``args`` (default ``sys.argv[1:]``); returns the exit status."""
    from shim.launcher import main as _main

    return _main(args, legacy=False)


def run(args) -> int:
    """torch's ``run(args)`` takes a parsed namespace; the shim's launcher parses its own flags."""
    raise NotImplementedError("torch.distributed.run.run(namespace) is not supported by the shim; "
                              "call torch.distributed.run.main(argv) with torchrun's command-line arguments")


if __name__ == "__main__":
    sys.exit(main())
