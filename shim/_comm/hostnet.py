"""Direct host transport of the communication core: byte exchanges between the members of a group over TCP.

Why: on MindSpore CPU every ``mccl`` collective costs ~0.5–3 ms of kernel time for ≤ 64 KB and runs at ~100–300 MB/s
for large buffers, and it needs a meeting in the launcher's store before each launch (``ops._arrive``: three store
round trips, because mccl gives up when a peer is ~30 s late). Measured at 2 ranks on 2 cores (2026-12-06,
``benchmarks/bench_collectives.py``): a 4 KB all-reduce 3.0 ms on mccl vs 0.26 ms on torch's gloo. Bytes sent
straight from process to process over loopback TCP cost about what gloo costs. Which sizes take this path is a row of
the data table (``table.HOST_TRANSPORT``); ``ops`` asks :func:`usable` and calls :func:`exchange`.

What it is: one listening socket per process (bound to the address this process uses to reach the launcher's store,
so it works across nodes; published in the store under ``host/<job>/<rank>``), and one TCP connection per
(group, peer) pair, made on the group's first exchange: the higher rank connects, the lower one accepts and sorts
incoming connections by the hello each sends (group name, rank), keeping early ones for later. Per-group
connections keep the order of collectives per group, as torch's process groups do: collectives of different groups
never share a stream. An exchange sends and receives on every involved connection at once (non-blocking sockets
under ``selectors``), so large buffers in both directions cannot deadlock on full socket buffers. Small
messages take a fast path: one ``sendmsg`` each (header and payload together); when all left whole, each receive
waits on its own socket with ``poll`` (measured 2026-12-06, load ~6: a 64 KB all-reduce ~1.7 -> ~1.0 ms).

Every message carries a 16-byte header (the group's message sequence number and the payload length, little-endian
uint64) which the receiver checks: a peer that sends another size (tensors of different shapes on different ranks)
or is out of step gets a ``CommError`` naming it, never silently misread bytes.

Failures: a peer that closes its end (it exited or was killed) raises ``CommError`` at once; a peer that does not
answer within ``timeout`` seconds raises ``CommError`` naming the missing ranks (the launcher also stops every
worker of a job when one fails). Nothing here needs MindSpore.
"""
from __future__ import annotations

import select
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .world import CommError, Group, state as _state

_HEADER = struct.Struct("<QQ")      # sequence number in the group, payload bytes
_HELLO = struct.Struct("<QH")       # sender's global rank, length of the group name (then the name, utf-8)
_HELLO_TIMEOUT_S = 60.0


@dataclass
class HostNet:
    """This process's endpoint of the host transport for one job (kept in ``world.CommState.hostnet``; closed
    by ``world.destroy``). ``conns``: socket per (group name, peer global rank); ``early``: accepted connections
    of groups this process has not used yet; ``seq``: messages so far per (group name, peer, direction)."""

    listener: socket.socket
    conns: dict = field(default_factory=dict)
    early: dict = field(default_factory=dict)
    seq: dict = field(default_factory=dict)

    def close(self) -> None:
        """Close the listener and every connection."""
        for sock in [self.listener, *self.conns.values(), *self.early.values()]:
            try:
                sock.close()
            except OSError:
                pass
        self.conns.clear()
        self.early.clear()


def usable() -> bool:
    """Whether this job can use the host transport: a launcher's store is there to publish addresses in."""
    return _state().store is not None


def _net() -> HostNet:
    st = _state()
    if st.hostnet is not None:
        return st.hostnet
    if st.store is None:  # pragma: no cover - callers check usable()
        raise CommError("host transport needs the launcher's store")
    # the interface this process reaches the store (on the master node) through is one its peers can reach
    host = st.store.local_address()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(128)
    st.store.set(f"host/{st.job}/{st.rank}", f"{host}:{listener.getsockname()[1]}")
    st.hostnet = HostNet(listener)
    return st.hostnet


def _read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def _connect(net: HostNet, group: Group, peer: int, timeout: float) -> socket.socket:
    """The connection to ``peer`` for ``group`` (made on first use)."""
    key = (group.name, peer)
    sock = net.conns.get(key)
    if sock is not None:
        return sock
    st = _state()
    me = st.rank
    deadline = time.monotonic() + timeout
    if me > peer:
        addr = st.store.get(f"host/{st.job}/{peer}", timeout=timeout)
        if addr is None:
            raise CommError(f"group {list(group.ranks)}: rank {peer} did not publish its host-transport address "
                            f"within {timeout:.0f} s (rank {me} waiting)")
        host, _, port = addr.rpartition(":")
        try:
            sock = socket.create_connection((host, int(port)), timeout=max(1.0, deadline - time.monotonic()))
            name = group.name.encode()
            sock.sendall(_HELLO.pack(me, len(name)) + name)
        except OSError as exc:
            raise CommError(f"group {list(group.ranks)}: cannot connect to rank {peer} at {addr}: {exc}") from exc
    else:
        sock = net.early.pop(key, None)
        while sock is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommError(f"group {list(group.ranks)}: rank {peer} did not connect within {timeout:.0f} s "
                                f"(rank {me} waiting)")
            net.listener.settimeout(min(left, 1.0))
            try:
                conn, _ = net.listener.accept()
            except socket.timeout:
                continue
            try:
                hello_deadline = time.monotonic() + _HELLO_TIMEOUT_S
                rank, nlen = _HELLO.unpack(_read_exact(conn, _HELLO.size, hello_deadline))
                name = _read_exact(conn, nlen, hello_deadline).decode()
            except (OSError, ConnectionError, UnicodeDecodeError):
                conn.close()  # not one of ours, or a peer that died while connecting
                continue
            if (name, rank) == key:
                sock = conn
            else:
                net.early[(name, rank)] = conn
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    net.conns[key] = sock
    return sock


def exchange(group: Group, sends: dict, recvs: dict, timeout: float) -> None:
    """Send and receive at once within ``group``: ``sends`` maps a peer's global rank to the bytes for it (a
    C-contiguous numpy array or bytes-like), ``recvs`` maps a peer to a writable C-contiguous uint8 numpy array
    that must be filled with exactly its size from that peer. Blocks until all are done.

    Raises ``CommError`` when a peer closed its connection, sent another number of bytes than expected, is out
    of step, or did not finish within ``timeout`` seconds (naming the ranks)."""
    net = _net()
    me = _state().rank
    peers = sorted(set(sends) | set(recvs))
    socks = {p: _connect(net, group, p, timeout) for p in peers}
    deadline = time.monotonic() + timeout
    out: dict[int, list] = {}
    for p, payload in sends.items():
        view = memoryview(payload).cast("B")
        seq_key = (group.name, p, "out")
        n = net.seq.get(seq_key, 0)
        net.seq[seq_key] = n + 1
        out[p] = [memoryview(_HEADER.pack(n, view.nbytes)), view]
    inc: dict[int, list] = {}
    for p, buf in recvs.items():
        seq_key = (group.name, p, "in")
        n = net.seq.get(seq_key, 0)
        net.seq[seq_key] = n + 1
        # [header buffer, bytes of it read, payload view, bytes of it read, expected sequence number]
        inc[p] = [bytearray(_HEADER.size), 0, memoryview(buf).cast("B"), 0, n]
    # Fast path (small messages, the common case): each message goes out with one non-blocking ``sendmsg``
    # (header and payload in one system call, so the peer wakes once); when every message left whole, the
    # receives wait on their socket alone. Anything left over (a full socket buffer) takes the selector loop.
    for p in list(out):
        _send_some(sock=socks[p], out=out, p=p, group=group, me=me)
    if not out:
        for p in list(inc):
            _recv_wait(socks[p], inc, p, group, me, deadline, timeout)
        return
    sel = selectors.DefaultSelector()
    try:
        for p in peers:
            events = (selectors.EVENT_WRITE if p in out else 0) | (selectors.EVENT_READ if p in inc else 0)
            sel.register(socks[p], events, p)
        while out or inc:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(out) | set(inc))
                raise CommError(f"collective in group {list(group.ranks)}: rank(s) {missing} did not take part "
                                f"within {timeout:.0f} s (rank {me} waiting)")
            for key, mask in sel.select(min(left, 5.0)):
                p = key.data
                sock = socks[p]
                if mask & selectors.EVENT_WRITE and p in out:
                    _send_some(sock, out, p, group, me)
                if mask & selectors.EVENT_READ and p in inc:
                    _recv_some(sock, inc, p, group, me)
                events = (selectors.EVENT_WRITE if p in out else 0) | (selectors.EVENT_READ if p in inc else 0)
                if events:
                    sel.modify(sock, events, p)
                else:
                    sel.unregister(sock)
    finally:
        sel.close()


def _send_some(sock: socket.socket, out: dict, p: int, group: Group, me: int) -> None:
    parts = out[p]
    try:
        while parts:
            sent = sock.sendmsg(parts)
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = parts[0][sent:]
            if parts:
                return
    except BlockingIOError:
        return
    except OSError as exc:
        raise CommError(f"collective in group {list(group.ranks)}: rank {p} is gone ({exc}; rank {me} "
                        f"sending)") from exc
    del out[p]


def _recv_wait(sock: socket.socket, inc: dict, p: int, group: Group, me: int, deadline: float,
               timeout: float) -> None:
    """Receive ``inc[p]`` completely from ``sock`` alone, waiting for it with ``poll`` until ``deadline``
    (``CommError`` naming rank ``p`` after ``timeout`` seconds)."""
    waiter = None
    while p in inc:
        _recv_some(sock, inc, p, group, me)
        if p not in inc:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise CommError(f"collective in group {list(group.ranks)}: rank(s) {[p]} did not take part "
                            f"within {timeout:.0f} s (rank {me} waiting)")
        if waiter is None:
            waiter = select.poll()
            waiter.register(sock, select.POLLIN)
        waiter.poll(min(left, 5.0) * 1000.0)


def _recv_some(sock: socket.socket, inc: dict, p: int, group: Group, me: int) -> None:
    state = inc[p]
    header, hgot, payload, pgot, seq = state
    try:
        while hgot < _HEADER.size:
            n = sock.recv_into(memoryview(header)[hgot:])
            if n == 0:
                raise ConnectionError("connection closed")
            hgot += n
            state[1] = hgot
            if hgot == _HEADER.size:
                got_seq, nbytes = _HEADER.unpack(header)
                if got_seq != seq or nbytes != payload.nbytes:
                    raise CommError(f"collective in group {list(group.ranks)}: rank {p} sent message #{got_seq} "
                                    f"of {nbytes} bytes where rank {me} expected #{seq} of {payload.nbytes} bytes "
                                    f"(do all ranks call the same collectives in the same order, with tensors of "
                                    f"the same shape and dtype?)")
        while pgot < payload.nbytes:
            n = sock.recv_into(payload[pgot:])
            if n == 0:
                raise ConnectionError("connection closed")
            pgot += n
            state[3] = pgot
    except BlockingIOError:
        return
    except OSError as exc:  # ConnectionError included; CommError (a RuntimeError) passes through
        raise CommError(f"collective in group {list(group.ranks)}: rank {p} is gone ({exc}; rank {me} "
                        f"receiving)") from exc
    del inc[p]


def gather_rows(group: Group, buf: np.ndarray, timeout: float) -> list:
    """Every member's ``buf`` (1-D uint8, same length on all) to every member, as a list in group-rank order:
    this rank's entry is ``buf`` itself, the others new arrays."""
    me = _state().rank
    rows = [buf if r == me else np.empty(buf.size, np.uint8) for r in group.ranks]
    others = [r for r in group.ranks if r != me]
    exchange(group, {r: buf for r in others}, {r: rows[group.ranks.index(r)] for r in others}, timeout)
    return rows


def all_gather(group: Group, buf: np.ndarray, timeout: float) -> np.ndarray:
    """Every member's ``buf`` (1-D uint8, same length on all) -> ``[group.size, nbytes]`` uint8 in group-rank
    order, over direct connections."""
    me = _state().rank
    rows = np.empty((group.size, buf.size), np.uint8)
    mine = group.ranks.index(me)
    rows[mine] = buf
    others = [r for r in group.ranks if r != me]
    exchange(group, {r: buf for r in others}, {r: rows[group.ranks.index(r)] for r in others}, timeout)
    return rows


def broadcast(group: Group, buf: Optional[np.ndarray], nbytes: int, src: int, timeout: float) -> np.ndarray:
    """``nbytes`` bytes of global rank ``src`` (which passes ``buf``, 1-D uint8) to every member -> 1-D uint8."""
    me = _state().rank
    if me == src:
        exchange(group, {r: buf for r in group.ranks if r != me}, {}, timeout)
        return buf
    out = np.empty(nbytes, np.uint8)
    exchange(group, {}, {src: out}, timeout)
    return out


__all__ = ["HostNet", "usable", "exchange", "gather_rows", "all_gather", "broadcast"]
