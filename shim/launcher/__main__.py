"""``python -m shim.launcher``: the launcher with torchrun semantics (see :mod:`shim.launcher`)."""
import sys

from shim.launcher import main

if __name__ == "__main__":
    sys.exit(main())
