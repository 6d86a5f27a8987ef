"""``python -m torch.distributed.launch`` under the shim: the legacy launcher's semantics (passes
``--local-rank=<local rank>`` to the script unless ``--use-env``/``--use_env``), on the shim's launcher."""
from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the legacy launcher's command line ``args`` (default ``sys.argv[1:]``); returns the exit status."""
    from shim.launcher import main as _main

    return _main(args, legacy=True)


if __name__ == "__main__":
    sys.exit(main())
