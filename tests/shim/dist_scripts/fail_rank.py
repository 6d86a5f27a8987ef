"""Rank $FAIL_RANK writes to stderr and exits 1 at once; the other ranks sleep (the launcher must stop them)."""
import os
import sys
import time

if os.environ["RANK"] == os.environ.get("FAIL_RANK", "1"):
    print("worker failing on purpose: boom", file=sys.stderr, flush=True)
    sys.exit(1)
time.sleep(120)
