"""The torch.distributed acceptance script: the same file runs under real torch (torchrun, gloo) and under the
shim (python -m shim.launcher, MindSpore mccl).

Every rank checks each result against numpy-computed values (failures listed) and records the results by
name in ``$SHIM_TEST_OUT/<tag>_rank<R>.json`` so the test can compare the shim's run with real torch's.
``TEST_BACKEND`` picks the backend string (gloo for real torch; the shim accepts it too).
Operations real torch's gloo lacks are recorded as ``"unsupported: <error>"`` and compared only where both
sides ran.
"""
import json
import os
import sys
import time

import warnings

import numpy as np
import torch
import torch.distributed as dist

warnings.simplefilter("ignore", FutureWarning)  # real torch's deprecation notes on *_tensor collectives
T0 = time.time()
OUT, TAG = os.environ["SHIM_TEST_OUT"], os.environ.get("SHIM_TEST_TAG", "run")
dist.init_process_group(backend=os.environ.get("TEST_BACKEND", "gloo"), init_method="env://")
R, N = dist.get_rank(), dist.get_world_size()
results, failures = {}, []
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int64": torch.int64}


def values(t):
    return t.detach().to(torch.float64).reshape(-1).tolist() if t.dtype != torch.int64 else t.reshape(-1).tolist()


def record(name, got, want=None):
    """Store ``got`` (tensor or list of tensors) under ``name``; compare with numpy ``want`` if given."""
    tensors = got if isinstance(got, (list, tuple)) else [got]
    vals = [values(t) for t in tensors]
    results[name] = vals
    if want is not None:
        w = [np.asarray(x, np.float64).reshape(-1).tolist() for x in (want if isinstance(got, (list, tuple)) else [want])]
        if vals != w:
            failures.append(f"{name}: got {vals} want {w}")


def attempt(name, fn):
    try:
        fn()
    except (RuntimeError, NotImplementedError, ValueError) as exc:
        results[name] = "unsupported: " + str(exc).splitlines()[0][:120]


def base(rank, shape=(2, 3)):
    return (np.arange(int(np.prod(shape))) % 5 + rank + 1).reshape(shape)


def make(rank, dt, shape=(2, 3)):
    return torch.tensor(base(rank, shape).tolist(), dtype=DTYPES[dt])


def done(work, async_op):
    if async_op:
        assert work is not None and work.wait() is True, "async_op=True must return a Work whose wait() is True"
    else:
        assert work is None, "async_op=False must return None"


groups = [("world", None, list(range(N)))]
if N == 4:
    g02, g13 = dist.new_group([0, 2]), dist.new_group([1, 3])
    mine = g02 if R % 2 == 0 else g13
    groups.append(("sub", mine, dist.get_process_group_ranks(mine)))
    record("sub group rank", torch.tensor([dist.get_rank(mine), dist.get_world_size(mine)]), [R // 2, 2])

for gname, g, members in groups:
    me = members.index(R)
    n = len(members)
    allv = np.stack([base(r) for r in members]).astype(np.float64)
    for dt in DTYPES:
        for async_op in (False, True):
            key = f"{gname} {dt} {'async' if async_op else 'sync'}"
            for opname, ref in (("SUM", allv.sum(0)), ("MAX", allv.max(0)), ("MIN", allv.min(0)),
                                ("PRODUCT", allv.prod(0))):
                x = make(R, dt)
                done(dist.all_reduce(x, op=getattr(dist.ReduceOp, opname), group=g, async_op=async_op), async_op)
                record(f"{key} all_reduce {opname}", x, ref)
            outs = [torch.zeros(2, 3, dtype=DTYPES[dt]) for _ in members]
            done(dist.all_gather(outs, make(R, dt), group=g, async_op=async_op), async_op)
            record(f"{key} all_gather", outs, list(allv))
            big = torch.zeros(2 * n, 3, dtype=DTYPES[dt])
            done(dist.all_gather_into_tensor(big, make(R, dt), group=g, async_op=async_op), async_op)
            record(f"{key} all_gather_into_tensor", big, allv.reshape(2 * n, 3))
            x = make(R, dt)
            done(dist.broadcast(x, src=members[-1], group=g, async_op=async_op), async_op)
            record(f"{key} broadcast", x, base(members[-1]))
            x = make(R, dt)
            done(dist.reduce(x, dst=members[0], group=g, async_op=async_op), async_op)
            if R == members[0]:
                record(f"{key} reduce", x, allv.sum(0))

            def rs_tensor(dt=dt, key=key, async_op=async_op):
                out = torch.zeros(2, dtype=DTYPES[dt])
                inp = torch.tensor(np.concatenate([base(R, (2,)) + i for i in range(n)]).tolist(), dtype=DTYPES[dt])
                done(dist.reduce_scatter_tensor(out, inp, group=g, async_op=async_op), async_op)
                record(f"{key} reduce_scatter_tensor", out, sum(base(r, (2,)) + me for r in members))

            attempt(f"{key} reduce_scatter_tensor", rs_tensor)

            def rs_list(dt=dt, key=key, async_op=async_op):
                out = torch.zeros(2, dtype=DTYPES[dt])
                inp = [torch.tensor((base(R, (2,)) + i).tolist(), dtype=DTYPES[dt]) for i in range(n)]
                done(dist.reduce_scatter(out, inp, group=g, async_op=async_op), async_op)
                record(f"{key} reduce_scatter", out, sum(base(r, (2,)) + me for r in members))

            attempt(f"{key} reduce_scatter", rs_list)
            glist = [torch.zeros(2, 3, dtype=DTYPES[dt]) for _ in members] if R == members[0] else None
            done(dist.gather(make(R, dt), gather_list=glist, dst=members[0], group=g, async_op=async_op), async_op)
            if R == members[0]:
                record(f"{key} gather", glist, list(allv))
            x = torch.zeros(2, 3, dtype=DTYPES[dt])
            slist = [make(100 + i, dt) for i in range(n)] if R == members[-1] else None
            done(dist.scatter(x, scatter_list=slist, src=members[-1], group=g, async_op=async_op), async_op)
            record(f"{key} scatter", x, base(100 + me))

            def a2a_single(dt=dt, key=key, async_op=async_op):
                inp = torch.tensor([10 * R + j for j in range(n) for _ in range(2)], dtype=DTYPES[dt])
                out = torch.zeros(2 * n, dtype=DTYPES[dt])
                done(dist.all_to_all_single(out, inp, group=g, async_op=async_op), async_op)
                record(f"{key} all_to_all_single", out, [10 * r + me for r in members for _ in range(2)])

            attempt(f"{key} all_to_all_single", a2a_single)

            def rows(src, dst):  # rows group rank `src` sends to group rank `dst`: 0, 1 or 2 (some pairs send none)
                return (src + 2 * dst) % 3

            def a2a_single_uneven(dt=dt, key=key, async_op=async_op):
                # megatron's MoE alltoall dispatcher: [tokens, hidden] rows, split sizes differing per pair;
                # values < 256 (exact in bfloat16)
                sent = [rows(me, j) for j in range(n)]
                got = [rows(i, me) for i in range(n)]
                inp = torch.tensor([[30 * R + 7 * j + k + c for c in range(3)]
                                    for j in range(n) for k in range(sent[j])], dtype=DTYPES[dt]).reshape(sum(sent), 3)
                out = torch.zeros(sum(got), 3, dtype=DTYPES[dt])
                # the split sizes as NumPy arrays, as megatron-core's dispatcher passes them
                done(dist.all_to_all_single(out, inp, output_split_sizes=np.asarray(got),
                                            input_split_sizes=np.asarray(sent), group=g, async_op=async_op),
                     async_op)
                want = [[30 * members[i] + 7 * me + k + c for c in range(3)] for i in range(n) for k in range(got[i])]
                record(f"{key} all_to_all_single uneven", out, np.asarray(want, np.float64).reshape(sum(got), 3))

            attempt(f"{key} all_to_all_single uneven", a2a_single_uneven)

            def a2a(dt=dt, key=key, async_op=async_op):
                ins = [torch.tensor([10 * R + j, -j], dtype=DTYPES[dt]) for j in range(n)]
                outs = [torch.zeros(2, dtype=DTYPES[dt]) for _ in range(n)]
                done(dist.all_to_all(outs, ins, group=g, async_op=async_op), async_op)
                record(f"{key} all_to_all", outs, [[10 * r + me, -me] for r in members])

            attempt(f"{key} all_to_all", a2a)
    done(dist.barrier(group=g), False)

# a group of all ranks is its own group: destroying it (megatron's destroy_model_parallel does) keeps the world
gw = dist.new_group(list(range(N)))
x = torch.tensor([float(R)])
dist.all_reduce(x, group=gw)
dist.destroy_process_group(gw)
dist.all_reduce(x)
record("all-ranks group destroyed, world intact", x, [N * N * (N - 1) / 2])

# in-place through a view of a larger buffer (megatron DDP's grad buffer pattern)
buf = torch.zeros(10)
view = buf[2:8]
view.copy_(torch.tensor([float(R + 1)] * 6))
dist.all_reduce(view)
record("all_reduce into a view", buf, [0, 0] + [N * (N + 1) / 2] * 6 + [0, 0])

# point-to-point: ring with isend/irecv, blocking send/recv in even/odd order, batch_isend_irecv
nxt, prv = (R + 1) % N, (R - 1) % N
out = torch.zeros(4, dtype=torch.int64)
reqs = [dist.isend(torch.tensor([R, R * 10, R * 100, -R], dtype=torch.int64), nxt), dist.irecv(out, prv)]
for q in reqs:
    q.wait()
record("p2p ring isend/irecv", out, [prv, prv * 10, prv * 100, -prv])
y = torch.zeros(3)
if R % 2 == 0:
    dist.send(torch.tensor([R + 0.5] * 3), nxt)
    dist.recv(y, prv)
else:
    dist.recv(y, prv)
    dist.send(torch.tensor([R + 0.5] * 3), nxt)
record("p2p send/recv", y, [prv + 0.5] * 3)
a, b = torch.zeros(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bfloat16)
ops = [dist.P2POp(dist.isend, torch.tensor([R + 1.0, -R], dtype=torch.bfloat16), nxt),
       dist.P2POp(dist.irecv, a, prv),
       dist.P2POp(dist.isend, torch.tensor([R * 2.0, 1.0], dtype=torch.bfloat16), prv),
       dist.P2POp(dist.irecv, b, nxt)]
for q in dist.batch_isend_irecv(ops):
    q.wait()
record("batch_isend_irecv from prev", a, [prv + 1.0, -prv])
record("batch_isend_irecv from next", b, [nxt * 2.0, 1.0])

# object collectives
objs = [None] * N
dist.all_gather_object(objs, {"rank": R, "text": "x" * (R + 1)})
record("all_gather_object", torch.tensor([o["rank"] * 100 + len(o["text"]) for o in objs]),
       [r * 100 + r + 1 for r in range(N)])
# an empty tensor (Megatron-LM's get_batch_on_this_tp_rank broadcasts an empty int32 cu_seqlens)
empty = torch.empty(0, dtype=torch.int32)
dist.broadcast(empty, src=0)
record("broadcast empty", torch.tensor([empty.numel(), int(empty.dtype == torch.int32)]), [0, 1])
lst = [f"from {R}", R, None] if R == N - 1 else [None, None, None]
dist.broadcast_object_list(lst, src=N - 1)
record("broadcast_object_list", torch.tensor([lst[1], len(lst[0])]), [N - 1, len(f"from {N - 1}")])
gl = [None] * N if R == 0 else None
dist.gather_object(("r", R), gl, dst=0)
if R == 0:
    record("gather_object", torch.tensor([o[1] for o in gl]), list(range(N)))


# collectives inside an autograd Function (megatron's tensor-parallel mappings): forward all-reduce,
# backward all-gather + pick own piece
class ReduceFwd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        dist.all_reduce(g)
        return g


w = torch.tensor([1.0 * (R + 1), 2.0], requires_grad=True)
y = ReduceFwd.apply(w * 3.0)
loss = (y * torch.tensor([1.0, float(R + 1)])).sum()
loss.backward()
tot = N * (N + 1) / 2
record("autograd fwd all_reduce", y, [3.0 * tot, 6.0 * N])
record("autograd bwd all_reduce", w.grad, [3.0 * N, 3.0 * tot])


# megatron-core's pipeline pattern (1F1B with one micro-batch over a chain of N stages): a stage receives into
# `torch.empty(..., requires_grad=True)`, sends its output (batch_isend_irecv), then shrinks it with
# `out.data = torch.empty((1,))` (deallocate_output_tensor); backward runs through the engine from the shrunk
# output with the received full-shape gradient (custom_backward); the last stage shrinks its 0-d loss the
# same way and scales it before its backward; each stage but the first sends its input's gradient back.
# Values are small dyadic numbers, so float32 results equal numpy's exactly.
x0 = np.array([1.0, 2.0, -1.0])
ws = [np.array([r + 1.0, 0.5, 2.0]) for r in range(N)]
wp = torch.tensor(ws[R].tolist(), requires_grad=True)
if R == 0:
    inp = torch.tensor(x0.tolist())
else:
    inp = torch.empty(3, requires_grad=True)
    for q in dist.batch_isend_irecv([dist.P2POp(dist.irecv, inp, R - 1)]):
        q.wait()
h = inp * wp
eng = torch.autograd.Variable._execution_engine
if R < N - 1:
    for q in dist.batch_isend_irecv([dist.P2POp(dist.isend, h, R + 1)]):
        q.wait()
    h.data = torch.empty((1,))
    g_out = torch.empty(3)
    for q in dist.batch_isend_irecv([dist.P2POp(dist.irecv, g_out, R + 1)]):
        q.wait()
    eng.run_backward(tensors=(h,), grad_tensors=(g_out,), keep_graph=False, create_graph=False, inputs=(),
                     allow_unreachable=True, accumulate_grad=True)
else:
    loss = (h * h).sum()
    loss.data = torch.empty((1,))
    scaled = loss * 1.0
    eng.run_backward(tensors=(scaled,), grad_tensors=(torch.ones_like(scaled),), keep_graph=False,
                     create_graph=False, inputs=(), allow_unreachable=True, accumulate_grad=True)
if R > 0:
    for q in dist.batch_isend_irecv([dist.P2POp(dist.isend, inp.grad, R - 1)]):
        q.wait()
hs = [x0 * ws[0]]
for r in range(1, N):
    hs.append(hs[-1] * ws[r])
g = 2 * hs[-1]
for r in range(N - 1, R, -1):
    g = g * ws[r]
record("pipeline .data-shrunk output backward: weight grad", wp.grad, g * (hs[R - 1] if R > 0 else x0))

summary = {"rank": R, "world_size": N, "backend": dist.get_backend(), "results": results, "failures": failures,
           "seconds": round(time.time() - T0, 2)}
with open(os.path.join(OUT, f"{TAG}_rank{R}.json"), "w") as f:
    json.dump(summary, f)
print(f"rank {R}: {len(results)} results, {len(failures)} failures, backend {dist.get_backend()}", flush=True)
for line in failures:
    print("FAIL", line, file=sys.stderr, flush=True)
dist.destroy_process_group()
sys.exit(1 if failures else 0)
