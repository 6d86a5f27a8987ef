"""`python -m parity …`: see `parity.cli`."""
import sys

from parity.cli import main

if __name__ == "__main__":
    sys.exit(main())
