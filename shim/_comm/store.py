"""A small TCP key-value store: the launcher's rendezvous point (the role torch's ``TCPStore`` plays).

The launcher on node 0 serves it at ``MASTER_ADDR:MASTER_PORT``. Other nodes' launchers read the MindSpore
scheduler port from it, and every worker records ``joined/<rank>`` in it at ``init_process_group`` so that a
rank that never joins is reported *by rank* after the timeout instead of hanging in MindSpore's topology
build. Failure of any node is published under ``job/failed`` so every launcher stops its workers.

Collectives that run on MindSpore's CPU kernels meet in it first (``coll/...`` keys, see ``ops._arrive``); the
direct host transport (``hostnet``) publishes each rank's address in it (``host/<job>/<rank>``).

Protocol: one JSON object per line, request ``{"op": "set"|"get"|"keys"|"delete"|"ping", ...}``, reply
``{"ok": true, "value": ...}`` or ``{"ok": false, "error": "..."}``. Values are strings.
"""
from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from typing import Optional


class StoreError(RuntimeError):
    """Raised when the store cannot be reached or a wait for keys times out."""


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:  # one connection, many requests
        store: StoreServer = self.server.owner  # type: ignore[attr-defined]
        for line in self.rfile:
            try:
                req = json.loads(line)
                reply = store._apply(req)
            except Exception as exc:  # malformed request: answer, do not kill the server
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            try:
                self.wfile.write((json.dumps(reply) + "\n").encode())
                self.wfile.flush()
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    # SO_REUSEADDR: a port left in TIME_WAIT by the previous job can be reused at once (users run torchrun on
    # the same --master-port again and again); a port someone is *listening* on still fails with EADDRINUSE.
    allow_reuse_address = True


class StoreServer:
    """The store's server side, run by the node-0 launcher in a daemon thread.

    Raises ``OSError`` (``errno.EADDRINUSE``) from the constructor when ``host:port`` cannot be bound; the
    launcher turns that into its "port is busy" error.
    """

    def __init__(self, host: str, port: int) -> None:
        self._data: dict[str, str] = {}
        self._cond = threading.Condition()
        self._server = _Server((host, port), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="shim-store", daemon=True)
        self._thread.start()

    def _apply(self, req: dict) -> dict:
        op = req.get("op")
        if op == "ping":
            return {"ok": True, "value": "pong"}
        if op == "set":
            with self._cond:
                self._data[str(req["key"])] = str(req["value"])
                self._cond.notify_all()
            return {"ok": True, "value": None}
        if op == "get":
            key, timeout = str(req["key"]), float(req.get("timeout", 0.0))
            deadline = time.monotonic() + timeout
            with self._cond:
                while key not in self._data:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return {"ok": True, "value": None}
                    self._cond.wait(min(left, 1.0))
                return {"ok": True, "value": self._data[key]}
        if op == "delete":
            with self._cond:
                return {"ok": True, "value": self._data.pop(str(req["key"]), None) is not None}
        if op == "keys":
            prefix = str(req.get("prefix", ""))
            with self._cond:
                return {"ok": True, "value": sorted(k for k in self._data if k.startswith(prefix))}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def set(self, key: str, value: str) -> None:
        """Set ``key`` locally (no socket)."""
        self._apply({"op": "set", "key": key, "value": value})

    def get(self, key: str) -> Optional[str]:
        """The value of ``key`` or None, without waiting."""
        with self._cond:
            return self._data.get(key)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


class StoreClient:
    """Client of :class:`StoreServer`.

    ``connect_timeout`` (seconds) bounds the retries while the server is not up yet; past it a
    :class:`StoreError` names the address ("master unreachable").
    """

    def __init__(self, host: str, port: int, connect_timeout: float = 30.0) -> None:
        self.host, self.port = host, int(port)
        deadline = time.monotonic() + connect_timeout
        last: Optional[BaseException] = None
        while True:
            try:
                self._sock = socket.create_connection((host, self.port), timeout=5.0)
                break
            except OSError as exc:
                last = exc
                if time.monotonic() >= deadline:
                    raise StoreError(f"cannot reach the master's store at {host}:{port} within "
                                     f"{connect_timeout:.0f} s ({last}); is the node-0 launcher running and "
                                     f"MASTER_ADDR/MASTER_PORT right?") from exc
                time.sleep(0.2)
        self._sock.settimeout(None)
        self._file = self._sock.makefile("rwb")
        self._lock = threading.Lock()

    def _call(self, req: dict):
        with self._lock:
            try:
                self._file.write((json.dumps(req) + "\n").encode())
                self._file.flush()
                line = self._file.readline()
            except OSError as exc:
                raise StoreError(f"store at {self.host}:{self.port} failed: {exc}") from exc
        if not line:
            raise StoreError(f"store at {self.host}:{self.port} closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise StoreError(f"store request {req.get('op')} failed: {reply.get('error')}")
        return reply["value"]

    def set(self, key: str, value: str) -> None:
        """Set ``key`` to ``value`` (strings)."""
        self._call({"op": "set", "key": key, "value": value})

    def get(self, key: str, timeout: float = 0.0) -> Optional[str]:
        """The value of ``key``, waiting up to ``timeout`` seconds for it to appear; None if it does not."""
        return self._call({"op": "get", "key": key, "timeout": timeout})

    def keys(self, prefix: str = "") -> list[str]:
        """All keys that start with ``prefix``, sorted."""
        return self._call({"op": "keys", "prefix": prefix})

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        return self._call({"op": "delete", "key": key})

    def local_address(self) -> str:
        """The IP address of this end of the connection: the interface through which this host reaches the
        store, hence one other nodes of the job can reach this host at (``hostnet`` listens on it)."""
        return self._sock.getsockname()[0]

    def close(self) -> None:
        """Close the connection."""
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass
