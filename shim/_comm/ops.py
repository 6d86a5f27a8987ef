"""Collectives of the communication core, on ``mindspore.Tensor`` (and numpy for the byte-level helpers).

Every function takes a :class:`~shim._comm.world.Group` whose member the calling process is, and must be
called by all members in the same order (as in torch). Results are new ``mindspore.Tensor`` objects with the
input's shape and dtype; writing them into the caller's tensor (torch's in-place contract) is the facade's job.

What runs natively and what is emulated is decided by :func:`shim._comm.table.is_native` only; which collectives
go over the direct host transport instead of MindSpore's kernels (``hostnet``: on MindSpore CPU, every one) by
:func:`shim._comm.table.host_transport_bytes`. There, tensors travel as host bytes and reductions are computed
locally as described below, so the results are the emulation's: identical on every member, reduced in rank order.
The emulation rests on two byte movers built from what works on every platform (see the table module):

* :func:`gather_bytes` — every member's equal-length bytes to every member: the host transport where it is used,
  else MindSpore ``AllGather`` of int32
  words where it is native for the group, otherwise a float32 ``AllReduce`` over a ``[group_size, words]``
  buffer in which each member fills its own row with 16-bit words (integers below 2**16 are exact in float32
  and adding zeros to them is exact, so the bytes arrive unchanged).
* :func:`broadcast_bytes` — one member's bytes to all: the host transport where it is used, else ``Broadcast`` of
  int32 words where native, else the same
  float32 ``AllReduce`` carrier with a single row that only the source fills.

Emulated reductions are computed locally after the gather, in rank order, in the tensor's own dtype (numpy
arithmetic: bfloat16/float16 round after every step, integers wrap), which is how gloo reduces on CPU.
"""
from __future__ import annotations

import pickle
import time
from typing import Optional, Sequence

import numpy as np

from . import hostnet, table
from .world import CommError, Group, ensure_created, backend as _backend, rank as _rank, state as _state
from .world import store as _store

REDUCE_OPS = ("sum", "avg", "max", "min", "prod")


def _ms():
    # import cost: MindSpore is imported at the first collective, not with `shim._comm` (see world.init)
    import mindspore

    return mindspore


# (Collectives over the host transport (`_host`) skip this meeting: `hostnet.exchange` itself waits up to
# ARRIVAL_TIMEOUT_S for the peers and fails at once when one is gone.)
# MindSpore 2.10's CPU collectives (mccl) give up when a member has not joined within about 30 s (measured: a
# Broadcast whose peer arrives 25 s late works, 35 s late fails with "CollectiveWait ... failed"). On a slow or
# loaded CPU a rank routinely waits longer for its peers (a pipeline stage for the other stage's forward/backward,
# the last stage for the first one's backward before the grad-norm all-reduce). So on mccl every collective first
# drains this process's PyNative queue (the kernel would wait for it anyway) and then waits in the launcher's
# store until every member has arrived (`_arrive`), up to ARRIVAL_TIMEOUT_S (torch's default process-group
# timeout); only then is the kernel launched, with all members present. Without a store (no launcher) or on
# other backends collectives start at once.
ARRIVAL_TIMEOUT_S = 1800.0


def _arrive(group: Group) -> None:
    """Wait until every member of ``group`` reached its next collective in it (store keys
    ``coll/<job>/<group name>/<n>/<rank>``, job numbering the jobs this process joined (``world.CommState.job``),
    n counting this group's collectives in the job; a member deletes its key n-1 at n, when every member has read
    it). Raises ``CommError`` naming the missing ranks when they have not all arrived ARRIVAL_TIMEOUT_S after this
    rank did (one deadline for the whole group; the process group's own `timeout` is not consulted), and the
    store's ``StoreError`` if the store connection is lost."""
    store = _store()
    if store is None or group.size < 2 or _backend() != "mccl":
        return
    # import cost: MindSpore, see _ms()
    from mindspore.common.api import _pynative_executor

    _pynative_executor.sync()
    me = _rank()
    st = _state()
    n = st.arrivals.get(group.name, 0)
    st.arrivals[group.name] = n + 1
    prefix = f"coll/{st.job}/{group.name}"
    store.set(f"{prefix}/{n}/{me}", "1")
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    missing = [r for r in group.ranks if r != me and store.get(
        f"{prefix}/{n}/{r}", timeout=max(0.001, deadline - time.monotonic())) is None]
    if missing:
        raise CommError(f"collective #{n} in group {list(group.ranks)}: rank(s) {missing} did not arrive within "
                        f"{ARRIVAL_TIMEOUT_S:.0f} s (rank {me} waiting)")
    if n > 0:
        store.delete(f"{prefix}/{n - 1}/{me}")


def _prim(kind: str, group: Group, *extra):
    """The MindSpore collective primitive of ``kind`` for ``group`` (cached). Every call site launches it at
    once, so this is also where the members meet before the launch (`_arrive`)."""
    _arrive(group)
    prims = _state().prims
    key = (kind, group.name, extra)
    prim = prims.get(key)
    if prim is None:
        from mindspore import ops  # import cost: MindSpore, see _ms()

        ensure_created(group)
        if kind == "all_reduce":
            prim = ops.AllReduce(op=extra[0], group=group.name)
        elif kind == "all_gather":
            prim = ops.AllGather(group=group.name)
        elif kind == "broadcast":
            prim = ops.Broadcast(extra[0], group=group.name)
        else:  # pragma: no cover - internal misuse
            raise KeyError(kind)
        prims[key] = prim
    return prim


def to_numpy(t) -> np.ndarray:
    """A host numpy copy of a ``mindspore.Tensor`` (bfloat16 keeps MindSpore's numpy bfloat16 dtype)."""
    return t.asnumpy()


def from_numpy(a: np.ndarray):
    """A ``mindspore.Tensor`` holding ``a`` (same dtype, bfloat16 included)."""
    return _ms().Tensor(np.ascontiguousarray(a))


def dtype_name(t) -> str:
    """Numpy-style dtype name of a ``mindspore.Tensor`` (``"float32"``, ``"bfloat16"``, ``"int64"`` ...)."""
    return str(t.dtype).lower()


def _native(kind: str, dtype: str, group: Group, op: str = "sum") -> bool:
    return table.is_native(_backend(), kind, dtype, op=op, world=group.is_world)


def _host(group: Group, nbytes: int) -> bool:
    """Whether a collective moving ``nbytes`` per rank in ``group`` goes over the direct host transport
    (``hostnet``; ``table.HOST_TRANSPORT`` says up to which size, per backend). It needs the launcher's store
    (to find the peers); it waits for late peers itself, so no ``_arrive`` meeting precedes it."""
    return group.size > 1 and nbytes <= table.host_transport_bytes(_backend()) and hostnet.usable()


def _check_member(group: Group, what: str) -> int:
    me = _rank()
    if me not in group.ranks:
        raise CommError(f"{what}: rank {me} is not a member of group {list(group.ranks)}")
    return group.ranks.index(me)


# ----------------------------------------------------------------------------------------------- byte movers
def _carrier_words(buf: np.ndarray) -> np.ndarray:
    """uint8 bytes -> float32 array of 16-bit words (padded to an even length)."""
    if buf.size % 2:
        buf = np.concatenate([buf, np.zeros(1, np.uint8)])
    return buf.view(np.uint16).astype(np.float32)


def _words_to_bytes(words: np.ndarray, nbytes: int) -> np.ndarray:
    return np.ascontiguousarray(words.astype(np.uint16)).view(np.uint8)[..., :nbytes]


def gather_bytes(group: Group, buf: np.ndarray) -> np.ndarray:
    """All-gather equal-length bytes: ``buf`` (1-D uint8, same length on every member) -> ``[group.size,
    nbytes]`` uint8, row ``i`` from group rank ``i``. Exact for any content."""
    me = _check_member(group, "gather_bytes")
    buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
    n, nbytes = group.size, buf.size
    if n == 1 or nbytes == 0:
        return np.tile(buf, (n, 1))
    if _host(group, nbytes):
        return hostnet.all_gather(group, buf, ARRIVAL_TIMEOUT_S)
    if _native("all_gather", "int32", group):
        pad = (-nbytes) % 4
        words = np.concatenate([buf, np.zeros(pad, np.uint8)]).view(np.int32) if pad else buf.view(np.int32)
        out = to_numpy(_prim("all_gather", group)(from_numpy(words)))
        return np.ascontiguousarray(out).reshape(n, -1).view(np.uint8)[:, :nbytes]
    words = _carrier_words(buf)
    rows = np.zeros((n, words.size), np.float32)
    rows[me] = words
    out = to_numpy(_prim("all_reduce", group, "sum")(from_numpy(rows)))
    return _words_to_bytes(out, nbytes)


def broadcast_bytes(group: Group, buf: Optional[np.ndarray], nbytes: int, src_group_rank: int) -> np.ndarray:
    """Broadcast ``nbytes`` bytes from group rank ``src_group_rank`` (which passes ``buf``; others pass None)
    to every member; returns 1-D uint8 of length ``nbytes``."""
    me = _check_member(group, "broadcast_bytes")
    if me == src_group_rank:
        if buf is None or buf.size != nbytes:
            raise CommError(f"broadcast_bytes: source must pass exactly {nbytes} bytes")
        buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
    if group.size == 1 or nbytes == 0:
        return buf if buf is not None else np.zeros(nbytes, np.uint8)
    if _host(group, nbytes):
        return hostnet.broadcast(group, buf, nbytes, group.ranks[src_group_rank], ARRIVAL_TIMEOUT_S)
    if _native("broadcast", "int32", group):
        nwords = (nbytes + 3) // 4
        if me == src_group_rank:
            words = np.concatenate([buf, np.zeros(nwords * 4 - nbytes, np.uint8)]).view(np.int32)
        else:
            words = np.zeros(nwords, np.int32)
        out = to_numpy(_prim("broadcast", group, src_group_rank)((from_numpy(words),))[0])
        return np.ascontiguousarray(out).view(np.uint8)[:nbytes]
    nwords = (nbytes + 1) // 2
    words = _carrier_words(buf) if me == src_group_rank else np.zeros(nwords, np.float32)
    out = to_numpy(_prim("all_reduce", group, "sum")(from_numpy(words)))
    return _words_to_bytes(out, nbytes)


def gather_varbytes(group: Group, payload: bytes) -> list[bytes]:
    """All-gather byte strings of any lengths: every member gets the list of all members' payloads."""
    lengths = gather_bytes(group, np.array([len(payload)], np.int64).view(np.uint8)).view(np.int64).reshape(-1)
    width = int(lengths.max()) if lengths.size else 0
    buf = np.zeros(width, np.uint8)
    buf[:len(payload)] = np.frombuffer(payload, np.uint8)
    rows = gather_bytes(group, buf)
    return [rows[i, :int(lengths[i])].tobytes() for i in range(group.size)]


# ------------------------------------------------------------------------------------------------ reductions
_REDUCE_UFUNCS = {"sum": np.add, "avg": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}
_BOOL_UFUNCS = {"sum": np.logical_or, "max": np.logical_or, "min": np.logical_and, "prod": np.logical_and}


def _reduce_rows(rows, op: str, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Reduce ``rows`` (an ``[n, ...]`` array, or a sequence of n arrays of one shape and dtype) in rank order,
    ``((r0 op r1) op r2) ...``, every step rounded to the rows' dtype (bfloat16/float16 round after each step,
    integers wrap), as gloo reduces on CPU. ``out``: where to write the result (same shape and dtype; may be
    ``rows[0]`` or ``rows[1]``, which it overwrites; default a new array). AVG on integer or bool dtypes raises
    ``NotImplementedError``."""
    first = rows[0]
    if op == "avg" and first.dtype.kind in "iub":
        raise NotImplementedError(f"ReduceOp.AVG on integer dtype {first.dtype}: use SUM and divide "
                                  f"(torch's gloo backend has no AVG at all)")
    if out is None:
        out = np.empty_like(first)
    ufunc = _BOOL_UFUNCS[op] if first.dtype == np.bool_ else _REDUCE_UFUNCS[op]
    if len(rows) == 1:
        np.copyto(out, first)
    acc = first
    for row in rows[1:]:
        ufunc(acc, row, out=out)
        acc = out
    if op == "avg":
        np.true_divide(out, np.asarray(len(rows), out.dtype), out=out)
    return out


def _check_op(op: str) -> str:
    op = op.lower()
    if op not in REDUCE_OPS:
        raise ValueError(f"reduce op {op!r} not supported; expected one of {REDUCE_OPS}")
    return op


def all_gather(t, group: Group) -> list:
    """Every member's ``t`` (same shape and dtype on all) to every member: a list of ``group.size`` tensors in
    group-rank order."""
    _check_member(group, "all_gather")
    dt = dtype_name(t)
    if group.size == 1:
        return [t]
    if _native("all_gather", dt, group) and not _host(group, t.nbytes):
        out = _prim("all_gather", group)(t.reshape(-1))
        out = out.reshape((group.size,) + tuple(t.shape))
        return [out[i] for i in range(group.size)]
    host = np.ascontiguousarray(to_numpy(t))
    rows = gather_bytes(group, host.reshape(-1).view(np.uint8))
    return [from_numpy(rows[i].copy().view(host.dtype).reshape(host.shape)) for i in range(group.size)]


def all_reduce(t, op: str, group: Group):
    """Reduce ``t`` over the members with ``op`` (``sum``/``avg``/``max``/``min``/``prod``); every member
    gets the result (same shape/dtype). AVG on integer dtypes raises ``NotImplementedError``."""
    op = _check_op(op)
    _check_member(group, "all_reduce")
    dt = dtype_name(t)
    if group.size == 1:
        return t.copy() if hasattr(t, "copy") else t
    native_op = "sum" if op == "avg" else op
    if _native("all_reduce", dt, group, native_op) and not _host(group, t.nbytes):
        out = _prim("all_reduce", group, native_op)(t)
        if op == "avg":
            out = (out / group.size).astype(t.dtype)
        return out
    host = np.ascontiguousarray(to_numpy(t))
    if _host(group, host.nbytes):
        # the other members' rows arrive in buffers of their own; the result overwrites one of them (never this
        # rank's input, which may share the tensor's memory), so it is handed to MindSpore without a copy
        rows = hostnet.gather_rows(group, host.reshape(-1).view(np.uint8), ARRIVAL_TIMEOUT_S)
        rows = [r.view(host.dtype).reshape(host.shape) for r in rows]
        mine = group.ranks.index(_rank())
        out = _reduce_rows(rows, op, out=rows[1] if mine == 0 else rows[0])
        return _ms().Tensor.from_numpy(out)
    rows = gather_bytes(group, host.reshape(-1).view(np.uint8))
    rows = np.ascontiguousarray(rows).view(host.dtype).reshape((group.size,) + host.shape)
    return from_numpy(_reduce_rows(rows, op))


def broadcast(t, src: int, group: Group):
    """``t`` of global rank ``src`` to every member (others' ``t`` gives shape/dtype only)."""
    me = _check_member(group, "broadcast")
    src_g = group.group_rank(src)
    if group.size == 1:
        return t
    dt = dtype_name(t)
    if _native("broadcast", dt, group) and not _host(group, t.nbytes):
        return _prim("broadcast", group, src_g)((t,))[0]
    host = np.ascontiguousarray(to_numpy(t))
    out = broadcast_bytes(group, host.reshape(-1).view(np.uint8) if me == src_g else None, host.nbytes, src_g)
    return from_numpy(out.copy().view(host.dtype).reshape(host.shape))


def reduce_scatter(chunks: Sequence, op: str, group: Group):
    """``chunks[i]`` (one per group rank, same shapes on all members) reduced over the members; group rank
    ``i`` gets the reduction of everyone's ``chunks[i]``."""
    me = _check_member(group, "reduce_scatter")
    if len(chunks) != group.size:
        raise ValueError(f"reduce_scatter: expected {group.size} input chunks (one per group rank), got {len(chunks)}")
    ms = _ms()
    flat = ms.ops.cat([c.reshape(-1) for c in chunks]) if len(chunks) > 1 else chunks[0].reshape(-1)
    out = all_reduce(flat, op, group)
    start = sum(int(np.prod(c.shape)) for c in chunks[:me])
    return out[start:start + int(np.prod(chunks[me].shape))].reshape(chunks[me].shape)


def all_to_all(inputs: Sequence, group: Group) -> list:
    """``inputs[j]`` goes to group rank ``j``; returns the list whose element ``i`` came from group rank ``i``.
    Shapes may differ per pair (dtype must be one for all)."""
    me = _check_member(group, "all_to_all")
    if len(inputs) != group.size:
        raise ValueError(f"all_to_all: expected {group.size} input tensors (one per group rank), got {len(inputs)}")
    hosts = [np.ascontiguousarray(to_numpy(x)) for x in inputs]
    dtypes = {h.dtype for h in hosts}
    if len(dtypes) != 1:
        raise ValueError(f"all_to_all: inputs must share one dtype, got {sorted(map(str, dtypes))}")
    # Shapes travel as a header so receivers need no preallocated shape.
    header = pickle.dumps([h.shape for h in hosts])
    payload = header + b"".join(h.tobytes() for h in hosts)
    blobs = gather_varbytes(group, len(header).to_bytes(8, "little") + payload)
    out = []
    dtype = hosts[0].dtype
    for blob in blobs:
        hlen = int.from_bytes(blob[:8], "little")
        shapes = pickle.loads(blob[8:8 + hlen])
        offset = 8 + hlen
        for j, shape in enumerate(shapes):
            size = int(np.prod(shape)) * dtype.itemsize
            if j == me:
                out.append(from_numpy(np.frombuffer(blob, dtype, count=int(np.prod(shape)), offset=offset)
                                      .reshape(shape).copy()))
            offset += size
    return out


def barrier(group: Group) -> None:
    """Return when every member has reached the barrier (a synchronised one-element all-reduce)."""
    _check_member(group, "barrier")
    if group.size == 1:
        return
    if _host(group, 1):
        gather_bytes(group, np.ones(1, np.uint8))
        return
    ms = _ms()
    to_numpy(_prim("all_reduce", group, "sum")(ms.Tensor(np.ones(1, np.float32))))


def synchronize(t) -> None:
    """Block until ``t`` (the result of an asynchronously dispatched MindSpore op) is computed."""
    if hasattr(t, "data_sync"):
        t.data_sync(True)
    else:  # pragma: no cover
        t.asnumpy()


__all__ = ["REDUCE_OPS", "gather_bytes", "broadcast_bytes", "gather_varbytes", "all_gather", "all_reduce",
           "broadcast", "reduce_scatter", "all_to_all", "barrier", "synchronize", "to_numpy", "from_numpy",
           "dtype_name"]
