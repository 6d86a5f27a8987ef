"""Ranks all-reduce tensors of different sizes (rank r: 3 + r float32) over the host transport; every rank must
get a ``CommError`` naming the peer and both sizes. Prints ``HOSTERR <rank> <message>`` and exits 0, or exits 3
when no error came."""
import sys

import numpy as np

from shim._comm import ops, world

world.init(timeout=120)
import mindspore as ms  # noqa: E402  (after init: what a worker does)

try:
    ops.all_reduce(ms.Tensor(np.ones(3 + world.rank(), np.float32)), "sum", world.world())
except world.CommError as exc:
    print(f"HOSTERR {world.rank()} {exc}", flush=True)
    sys.exit(0)
print(f"rank {world.rank()}: no error for mismatched sizes", flush=True)
sys.exit(3)
