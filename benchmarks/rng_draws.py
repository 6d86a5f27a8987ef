"""Cost of the facade's torch-exact random draws (shim/torch/_cpu_rng.py) next to real torch's, per call.

Usage: python benchmarks/rng_draws.py [--repeat N]
Prints, per draw and size, the median seconds per call on the facade and on real torch (CPU). The float32
normal path (randn / normal_ / nn.init normal and trunc_normal) is the expensive one: torch's AVX2 Box-Muller
with avx_mathfun's log/sincos, emulated in float32 NumPy with exact fused multiply-adds.
"""
from __future__ import annotations

import argparse
import statistics
import time


def _time(fn, repeat):
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import torch
    import shim.torch as st
    print(f"{'draw':28s} {'n':>9s} {'facade s':>10s} {'torch s':>9s}")
    for n in (1_000, 100_000, 9_707_520):   # 9.7M: a 151,680 x 64 embedding (the tiny Qwen2's vocabulary)
        rows = [
            ("randn float32", lambda T: T.randn(n)),
            ("rand float32", lambda T: T.rand(n)),
            ("normal_(0, 0.02) float32", lambda T: T.empty(n).normal_(0, 0.02)),
            ("uniform_(-a, a) float32", lambda T: T.empty(n).uniform_(-0.1, 0.1)),
            ("dropout(0.1) float32", lambda T: T.nn.functional.dropout(T.ones(n), 0.1)),
        ]
        for name, f in rows:
            ts = _time(lambda: f(st), args.repeat)
            tt = _time(lambda: f(torch), args.repeat)
            print(f"{name:28s} {n:9d} {ts:10.4f} {tt:9.4f}")


if __name__ == "__main__":
    main()
