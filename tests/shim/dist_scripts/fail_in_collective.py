"""Every rank joins the MindSpore cluster; then rank $FAIL_RANK exits 1 while the others block in an
all-reduce that can never complete (the launcher must stop them within its bound)."""
import os
import sys

import numpy as np

from shim._comm import ops, world

world.init(timeout=120)
import mindspore as ms  # noqa: E402

ops.barrier(world.world())
if world.rank() == int(os.environ.get("FAIL_RANK", "1")):
    print("worker failing on purpose after init", file=sys.stderr, flush=True)
    sys.exit(1)
print(f"rank {world.rank()} entering a collective its peer never joins", flush=True)
ops.all_reduce(ms.Tensor(np.ones(4, np.float32)), "sum", world.world()).asnumpy()
