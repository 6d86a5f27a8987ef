"""Per-op cost of the torch facade vs the same MindSpore call, on small tensors (dispatch-bound).

Usage: python benchmarks/facade_op_overhead.py [--repeat N]
Prints, per op, the median time per call in microseconds for the facade and for raw MindSpore, and the
difference (the facade's own overhead). Each timing loop ends with a host sync so queued work is counted.
"""
from __future__ import annotations

import argparse
import statistics
import time


def _time(fn, sync, repeat, inner=200):
    fn()
    sync()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - t0) / inner * 1e6)
    return statistics.median(samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    import mindspore as ms
    from mindspore import mint
    import shim.torch as torch
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    am, bm = torch.unwrap(a), torch.unwrap(b)
    w = torch.randn(64, 64, requires_grad=True)
    wm = torch.unwrap(w)
    flat = torch.zeros(64 * 64)
    view = flat[128:256]
    one = torch.ones(128)
    onem = torch.unwrap(one)
    rows = [
        ("a + b", lambda: a + b, lambda: am + bm),
        ("a * 2.0", lambda: a * 2.0, lambda: am * 2.0),
        ("a @ b", lambda: a @ b, lambda: mint.matmul(am, bm)),
        ("a.sum(-1)", lambda: a.sum(-1), lambda: mint.sum(am, -1)),
        ("softmax", lambda: torch.softmax(a, -1), lambda: mint.softmax(am, -1)),
        ("a.view(-1)", lambda: a.view(-1), lambda: am.reshape(-1)),
        ("a.t()", lambda: a.t(), lambda: mint.transpose(am, 0, 1)),
        ("a[1:3]", lambda: a[1:3], lambda: am[1:3]),
        ("w * a (grad)", lambda: w * a, lambda: wm * am),
        ("view.add_(one)", lambda: view.add_(one), lambda: (lambda r: r)(onem + onem)),
    ]
    sync_f = lambda: a._host()  # noqa: E731
    print(f"{'op':16s} {'facade us':>10s} {'mindspore us':>13s} {'overhead us':>12s}")
    for name, f, g in rows:
        tf = _time(f, sync_f, args.repeat)
        tg = _time(g, sync_f, args.repeat)
        print(f"{name:16s} {tf:10.1f} {tg:13.1f} {tf - tg:12.1f}")


if __name__ == "__main__":
    main()
