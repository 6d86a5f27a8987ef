"""Rank 0 joins with a short timeout; the other ranks never join: rank 0 must fail naming them."""
import os
import time

from shim._comm import world

if os.environ["RANK"] == "0":
    world.init(timeout=float(os.environ.get("JOIN_TIMEOUT", "4")))
else:
    time.sleep(120)
