"""Multi-process check of the communication core (shim/_comm) on mindspore tensors, run under the launcher.

Every rank computes the expected value of every collective with numpy from the same deterministic inputs
and compares exactly; the summary goes to ``$SHIM_TEST_OUT/core_rank<R>.json`` and the exit code is 1 on any
mismatch. Covers the world group and, with 4 ranks, the sub-groups [0, 2] / [1, 3]; float32 / bfloat16 /
int64 / float64; SUM/AVG/MAX/MIN/PROD; all_gather, broadcast, reduce_scatter, all_to_all (uneven shapes),
barrier, a point-to-point ring and an all-pairs exchange, variable-length byte gathers and a 4 MB all-reduce.
Run over the direct host transport (the default on CPU) or, with SHIM_COMM_HOST_BYTES=0, MindSpore's kernels.
"""
import json
import os
import sys
import time

import numpy as np

from shim._comm import ops, p2p, world

t_start = time.time()
world.init(timeout=120)
import mindspore as ms  # noqa: E402  (after init: what a worker does)

R, N = world.rank(), world.world_size()
OUT = os.environ["SHIM_TEST_OUT"]
failures, checks = [], 0

MS_DT = {"float32": ms.float32, "bfloat16": ms.bfloat16, "int64": ms.int64, "float64": ms.float64}


def host(dt, a):
    """numpy values in the dtype the result will have (bfloat16 via MindSpore's numpy bfloat16)."""
    return ms.Tensor(np.asarray(a, np.float64).astype(np.float32)).astype(MS_DT[dt]).asnumpy() \
        if dt == "bfloat16" else np.asarray(a).astype(dt)


def make(rank, dt, shape=(2, 3)):
    vals = (np.arange(int(np.prod(shape))) % 5 + rank + 1).reshape(shape)
    return ms.Tensor(vals.astype(np.float32)).astype(MS_DT[dt]), vals


def check(name, got, want):
    global checks
    checks += 1
    g = got.asnumpy() if hasattr(got, "asnumpy") else np.asarray(got)
    if str(g.dtype) == "bfloat16":
        g = g.astype(np.float32)
    w = np.asarray(want)
    if g.shape != w.shape or not np.array_equal(g.astype(np.float64), w.astype(np.float64)):
        failures.append(f"{name}: got {g.tolist()} want {w.tolist()}")


groups = [("world", world.world())]
if N == 4:
    g02, g13 = world.new_group([0, 2]), world.new_group([1, 3])
    again = world.new_group([2, 0])
    check("new_group reuses identical rank sets", np.array([again is g02]), np.array([True]))
    check("group names deterministic", np.array([g02.name == "shim_g_0_2", g13.name == "shim_g_1_3"]),
          np.array([True, True]))
    groups.append(("sub", g02 if R % 2 == 0 else g13))

for gname, g in groups:
    members = g.ranks
    for dt in ("float32", "bfloat16", "int64", "float64"):
        x, _ = make(R, dt)
        allv = np.stack([make(r, dt)[1] for r in members]).astype(np.float64)
        for op, ref in (("sum", allv.sum(0)), ("max", allv.max(0)), ("min", allv.min(0)), ("prod", allv.prod(0)),
                        ("avg", allv.sum(0) / len(members))):
            if op == "avg" and dt == "int64":
                continue
            want = ref if op != "avg" else host(dt, ref)
            check(f"{gname} all_reduce {op} {dt}", ops.all_reduce(x, op, g), want)
        parts = ops.all_gather(x, g)
        check(f"{gname} all_gather {dt}", np.stack([p.asnumpy().astype(np.float64) for p in parts]), allv)
        src = members[-1]
        check(f"{gname} broadcast {dt}", ops.broadcast(x, src, g), make(src, dt)[1])
        chunks = [make(R, dt, (2,))[0] + i for i in range(len(members))] if dt != "bfloat16" else \
            [(make(R, "float32", (2,))[0] + i).astype(ms.bfloat16) for i in range(len(members))]
        me = members.index(R)
        want_rs = sum(make(r, dt, (2,))[1] + me for r in members)
        check(f"{gname} reduce_scatter sum {dt}", ops.reduce_scatter(chunks, "sum", g), want_rs)
    # all_to_all with uneven shapes: rank r sends j+1 copies of (10*r + j) to group rank j
    me = members.index(R)
    sends = [ms.Tensor(np.full(j + 1, 10 * R + j, np.int64)) for j in range(len(members))]
    got = ops.all_to_all(sends, g)
    for i, r in enumerate(members):
        check(f"{gname} all_to_all from {r}", got[i], np.full(me + 1, 10 * r + me, np.int64))
    blobs = ops.gather_varbytes(g, bytes([R]) * (R + 1))
    check(f"{gname} gather_varbytes", np.array([len(b) for b in blobs]), np.array([r + 1 for r in members]))
    ops.barrier(g)

# point-to-point: a ring (send to r+1, receive from r-1), queued then flushed
got = {}
p2p.enqueue((R + 1) % N, payload=np.arange(5, dtype=np.int64).view(np.uint8) + 0 * R)
payload = (np.arange(5, dtype=np.int64) * (R + 1)).view(np.uint8)
p2p.enqueue((R + 1) % N, payload=payload)
p2p.enqueue((R - 1) % N, nbytes=40, on_done=lambda b: got.setdefault("first", b.copy()))
p2p.enqueue((R - 1) % N, nbytes=40, on_done=lambda b: got.setdefault("second", b.copy()))
p2p.flush()
prev = (R - 1) % N
check("p2p ring first message", got["first"].view(np.int64), np.arange(5))
check("p2p ring second message (order kept)", got["second"].view(np.int64), np.arange(5) * (prev + 1))
# all-pairs exchange in one batch
recv = {}
for peer in range(N):
    if peer != R:
        p2p.enqueue(peer, payload=np.array([100 * R + peer], np.int64).view(np.uint8))
        p2p.enqueue(peer, nbytes=8, on_done=lambda b, peer=peer: recv.__setitem__(peer, int(b.view(np.int64)[0])))
p2p.flush()
check("p2p all-pairs", np.array([recv[p] for p in sorted(recv)]),
      np.array([100 * p + R for p in range(N) if p != R]))
# 4 MB each way at once: more than the socket buffers hold (the host transport must not deadlock on it)
big = ms.Tensor(np.full(1 << 20, R + 1, np.float32))
check("world all_reduce sum float32 4 MB", ops.all_reduce(big, "sum", world.world()),
      np.full(1 << 20, N * (N + 1) // 2, np.float32))
ops.barrier(world.world())

with open(os.path.join(OUT, f"core_rank{R}.json"), "w") as f:
    json.dump({"rank": R, "world_size": N, "backend": world.backend(), "checks": checks, "failures": failures,
               "seconds": round(time.time() - t_start, 2)}, f)
print(f"rank {R}: {checks} checks, {len(failures)} failures", flush=True)
for line in failures:
    print("FAIL", line, file=sys.stderr, flush=True)
sys.exit(1 if failures else 0)
