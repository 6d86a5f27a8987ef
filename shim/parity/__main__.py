"""`python -m shim.parity …`: see `shim.parity.cli`."""
import sys

from shim.parity.cli import main

if __name__ == "__main__":
    sys.exit(main())
