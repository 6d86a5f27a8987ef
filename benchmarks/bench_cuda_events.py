"""torch.cuda.Event timing on the shim vs wall time (target: the events see the queued compute, ratio > 0.5).

Usage: python benchmarks/bench_cuda_events.py [--repeat N] [--size S] [--ops K] [--check]
`Event.record()` drains MindSpore's asynchronous queue before stamping the time (shim/torch/cuda), so the time
between two events includes the work queued between them, not only its dispatch. Per repeat: K chained
S x S float32 matmuls queued between two events; prints event time, wall time around the block (ms) and their
ratio (event / wall; target > 0.5: most of the wall time is compute the events saw). `--check` exits 1 when the
median ratio misses the target. The same ratio is noisy on a loaded machine, which is why it is not a test.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

TARGET_RATIO = 0.5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--ops", type=int, default=20)
    ap.add_argument("--check", action="store_true", help="exit 1 when the median ratio misses the target")
    args = ap.parse_args(argv)
    import mindspore as ms
    import numpy as np

    import shim.torch.cuda as cuda

    print(f"{'repeat':>6s} {'event ms':>10s} {'wall ms':>10s} {'ratio':>7s}")
    ratios = []
    for i in range(args.repeat):
        x = ms.Tensor(np.ones((args.size, args.size), np.float32))
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        for _ in range(args.ops):
            x = ms.ops.matmul(x, x) * 1e-3
        end.record()
        wall_ms = (time.perf_counter() - t0) * 1e3
        elapsed = start.elapsed_time(end)
        ratios.append(elapsed / wall_ms)
        print(f"{i:6d} {elapsed:10.2f} {wall_ms:10.2f} {ratios[-1]:7.2f}")
    median = statistics.median(ratios)
    met = median > TARGET_RATIO
    print(f"median ratio {median:.2f} (target > {TARGET_RATIO}): {'met' if met else 'MISSED'}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
