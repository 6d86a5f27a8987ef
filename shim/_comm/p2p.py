"""Point-to-point transfers of the communication core (``send``/``recv``/``isend``/``irecv``/batches).

MindSpore has no CPU ``Send``/``Receive`` kernel, so a transfer between global ranks ``a`` and ``b`` is a
broadcast (``ops.broadcast_bytes``) inside the two-member group ``{a, b}`` with the sender as root. Such a
broadcast needs both ranks at the same time, so transfers are *queued* and run when someone waits (a blocking
``send``/``recv``, ``Work.wait()`` or a batch): the whole queue of this process then runs in one global order,
key ``(min(a,b), max(a,b), sender, sequence number of that direction)``. Both ends of a transfer compute the
same key, and every process runs its transfers in increasing key order, so matched transfers never deadlock
(the smallest pending key always has both ends ready) — rings and ``batch_isend_irecv`` exchanges included.

On MindSpore CPU (``mccl``) the broadcast goes over the direct host transport (``hostnet``: the sender's bytes
straight to the receiver over TCP; the receiver waits as long as the process group's arrival bound allows). Where a
MindSpore kernel carries it instead (a backend without the host transport, or a payload above
``table.HOST_TRANSPORT``), it starts only once both ends have arrived (``ops._arrive``, a rendezvous in the
launcher's store), because MindSpore's CPU collectives give up when the peer has not joined within about 30 s and a
pipeline stage often waits longer than that for the other stage.

Contract kept from torch: a receive's buffer has the sender's shape and dtype (sizes are not sent).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import world as _w
from .ops import broadcast_bytes


@dataclass
class Transfer:
    """One queued transfer. ``payload`` (uint8) for a send; ``nbytes`` for a receive, whose bytes are handed
    to ``on_done``. ``done`` turns True once it ran."""

    peer: int
    is_send: bool
    nbytes: int
    payload: Optional[np.ndarray]
    on_done: Optional[Callable[[np.ndarray], None]]
    key: tuple = ()
    done: bool = False
    result: Optional[np.ndarray] = field(default=None, repr=False)


def _pair_group(a: int, b: int) -> _w.Group:
    if _w.world_size() == 2:
        return _w.world()
    return _w.new_group([a, b])


def enqueue(peer: int, *, payload: Optional[np.ndarray] = None, nbytes: Optional[int] = None,
            on_done: Optional[Callable[[np.ndarray], None]] = None) -> Transfer:
    """Queue a send of ``payload`` (1-D uint8) to global rank ``peer``, or (``payload`` None) a receive of
    ``nbytes`` bytes from ``peer``; returns the :class:`Transfer`. Raises ``ValueError`` for a peer that is
    this rank or out of range."""
    me, size = _w.rank(), _w.world_size()
    if not 0 <= peer < size or peer == me:
        raise ValueError(f"point-to-point peer {peer} invalid for rank {me} of world_size {size}")
    is_send = payload is not None
    src, dst = (me, peer) if is_send else (peer, me)
    st = _w.state()
    seq = st.p2p_seq.get((src, dst), 0)
    st.p2p_seq[(src, dst)] = seq + 1
    if is_send:
        payload = np.ascontiguousarray(payload, dtype=np.uint8).reshape(-1)
        nbytes = payload.size
    tr = Transfer(peer=peer, is_send=is_send, nbytes=int(nbytes or 0), payload=payload, on_done=on_done,
                  key=(min(src, dst), max(src, dst), src, seq))
    st.p2p_pending.append(tr)
    return tr


def flush() -> None:
    """Run every queued transfer of this process in global key order (blocks until they all ran)."""
    pending = _w.state().p2p_pending
    while pending:
        pending.sort(key=lambda t: t.key)
        tr = pending.pop(0)
        me = _w.rank()
        group = _pair_group(me, tr.peer)
        src = me if tr.is_send else tr.peer
        src_g = group.group_rank(src)
        out = broadcast_bytes(group, tr.payload if tr.is_send else None, tr.nbytes, src_g)
        tr.result = out
        tr.done = True
        if tr.on_done is not None:
            tr.on_done(out)


def pending() -> int:
    """Number of queued transfers."""
    return len(_w.state().p2p_pending)
