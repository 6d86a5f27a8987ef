"""The launcher's agent: rendezvous store, MindSpore scheduler, workers, output, failures, signals.

One agent runs per node (as torchrun's). Node 0's agent serves the rendezvous store at
``MASTER_ADDR:MASTER_PORT`` (a busy port is reported as such), starts MindSpore's scheduler
(``python -m shim._comm.scheduler``) on a free port it publishes in the store, and starts its workers. Other
nodes' agents read the scheduler port from the store (an unreachable master is reported after
``join_timeout``) and start theirs. Each worker's environment: MindSpore's (``MS_ROLE``, ``MS_SCHED_HOST``,
``MS_SCHED_PORT``, ``MS_WORKER_NUM``, ``MS_NODE_ID``), torch's (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``GROUP_RANK``, ``ROLE_RANK``, ``ROLE_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``,
``TORCHELASTIC_RUN_ID``), Ascend's (``RANK_ID``, ``RANK_SIZE``, ``DEVICE_ID``), the store address
(``SHIM_STORE_ADDR``, ``SHIM_STORE_PORT``), ``SHIM_BACKEND=mindspore`` unless already set, ``GLOG_v=3``
(MindSpore's log: errors only) and ``OMP_NUM_THREADS=1`` (as torchrun, for more than one worker) unless set.

Output: every line of a worker's stdout/stderr is printed as ``[rank<R>]: line`` (to the launcher's
stdout/stderr), and with ``--log-dir`` also written to ``LOG_DIR/<run id>/attempt_0/<local rank>/``.

Failures: when a worker exits non-zero (or by a signal), or another node reports a failure through the store,
the others get SIGTERM, then SIGKILL after ``shutdown_timeout`` seconds; the launcher prints the failing rank,
its exit code and the tail of its stderr, and exits with that code (1 when it died by a signal). SIGINT and
SIGTERM sent to the launcher are forwarded to every worker; it then exits with 128 + the signal number.
"""
from __future__ import annotations

import collections
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from shim._comm.store import StoreClient, StoreError, StoreServer

from .config import LaunchConfig

STDERR_TAIL_LINES = 20


class LaunchError(RuntimeError):
    """A launcher failure before or around the workers (busy port, unreachable master, mismatched nodes)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _resolve(addr: str) -> str:
    try:
        return socket.gethostbyname(addr)
    except OSError as exc:
        raise LaunchError(f"cannot resolve master address {addr!r}: {exc}") from exc


@dataclass
class _Proc:
    rank: int
    local_rank: int
    proc: subprocess.Popen
    started: float
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=STDERR_TAIL_LINES))
    threads: list = field(default_factory=list)


_print_lock = threading.Lock()


def _die_with_launcher() -> None:
    """``preexec_fn`` of every child: on Linux, SIGKILL the child when the launcher dies (even by SIGKILL), so
    a killed launcher leaves no orphaned workers or scheduler behind."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass


def _pump(stream: IO[bytes], prefix: str, sink: Optional[IO[str]], log: Optional[IO[bytes]],
          tail: Optional[collections.deque]) -> None:
    for raw in iter(stream.readline, b""):
        if log is not None:
            log.write(raw)
            log.flush()
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if tail is not None:
            tail.append(line)
        if sink is None:
            continue
        with _print_lock:
            try:
                sink.write(f"{prefix}{line}\n")
                sink.flush()
            except (OSError, ValueError):  # our stdout went away (closed pipe): keep draining the worker
                pass
    stream.close()
    if log is not None:
        log.close()


class Agent:
    """Runs one node's share of a job described by a :class:`~shim.launcher.config.LaunchConfig`."""

    def __init__(self, cfg: LaunchConfig) -> None:
        self.cfg = cfg
        self.server: Optional[StoreServer] = None
        self.client: Optional[StoreClient] = None
        self.scheduler: Optional[subprocess.Popen] = None
        self.scheduler_tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.workers: list[_Proc] = []
        self._signal: Optional[int] = None
        self.sched_port: int = 0
        self.log_root: Optional[Path] = None

    # ------------------------------------------------------------------------------------------ rendezvous
    def _rendezvous(self) -> None:
        cfg = self.cfg
        if cfg.node_rank == 0:
            bind_host = cfg.master_addr if _resolve(cfg.master_addr).startswith("127.") else ""
            try:
                self.server = StoreServer(bind_host, cfg.master_port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise LaunchError(f"master port {cfg.master_port} on {cfg.master_addr} is busy (address "
                                      f"already in use); choose another --master-port") from exc
                raise LaunchError(f"cannot listen on {cfg.master_addr}:{cfg.master_port}: {exc}") from exc
            self.sched_port = free_port("" if not bind_host else bind_host)
            self.server.set("job/world_size", str(cfg.world_size))
            self.server.set("job/nproc_per_node", str(cfg.nproc_per_node))
            self.server.set("job/sched_port", str(self.sched_port))
        try:
            self.client = StoreClient(cfg.master_addr, cfg.master_port, connect_timeout=cfg.join_timeout)
            if cfg.node_rank != 0:
                size = self.client.get("job/world_size", timeout=cfg.join_timeout)
                port = self.client.get("job/sched_port", timeout=cfg.join_timeout)
                if size is None or port is None:
                    raise LaunchError(f"master at {cfg.master_addr}:{cfg.master_port} answered but published "
                                      f"no job within {cfg.join_timeout:.0f} s")
                if int(size) != cfg.world_size:
                    raise LaunchError(f"node {cfg.node_rank}: world size mismatch: node 0 runs {size} workers "
                                      f"in all, this node computes --nnodes {cfg.nnodes} x --nproc-per-node "
                                      f"{cfg.nproc_per_node} = {cfg.world_size}")
                self.sched_port = int(port)
            self.client.set(f"node/{cfg.node_rank}", str(os.getpid()))
        except StoreError as exc:
            raise LaunchError(f"node {cfg.node_rank}: {exc}") from exc

    # ----------------------------------------------------------------------------------------- processes
    def _base_env(self) -> dict[str, str]:
        cfg = self.cfg
        env = dict(os.environ)
        env.update({
            "MASTER_ADDR": cfg.master_addr, "MASTER_PORT": str(cfg.master_port),
            "WORLD_SIZE": str(cfg.world_size), "LOCAL_WORLD_SIZE": str(cfg.nproc_per_node),
            "GROUP_RANK": str(cfg.node_rank), "ROLE_WORLD_SIZE": str(cfg.world_size),
            "ROLE_NAME": "default", "TORCHELASTIC_RUN_ID": cfg.run_id,
            "RANK_SIZE": str(cfg.world_size),
            "MS_SCHED_HOST": _resolve(cfg.master_addr), "MS_SCHED_PORT": str(self.sched_port),
            "MS_WORKER_NUM": str(cfg.world_size),
            "MS_TOPO_TIMEOUT": str(int(cfg.join_timeout) + 30),
            "SHIM_STORE_ADDR": cfg.master_addr, "SHIM_STORE_PORT": str(cfg.master_port),
            "PYTHONUNBUFFERED": "1",
        })
        env.setdefault("SHIM_BACKEND", "mindspore")
        env.setdefault("GLOG_v", "3")
        if cfg.world_size > 1:
            env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def _worker_cmd(self, local_rank: int) -> list[str]:
        cfg = self.cfg
        args = list(cfg.script_args)
        if not cfg.use_env:
            args = [f"--local-rank={local_rank}"] + args
        if cfg.no_python:
            return [cfg.script] + args
        boot = [sys.executable, "-u", "-m", "shim.launcher._bootstrap"]
        return boot + (["-m", cfg.script] if cfg.module else [cfg.script]) + args

    def _start_scheduler(self, env: dict[str, str]) -> None:
        senv = dict(env, MS_ROLE="MS_SCHED", SHIM_BACKEND="off")  # the scheduler runs no user code
        self.scheduler = subprocess.Popen([sys.executable, "-m", "shim._comm.scheduler"], env=senv,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_launcher)
        # Its (MindSpore) log is kept as a tail for failure reports and, with --log-dir, in scheduler.log;
        # it is not printed.
        log = open(self.log_root / "scheduler.log", "wb") if self.log_root is not None else None
        t = threading.Thread(target=_pump, args=(self.scheduler.stdout, "", None, log, self.scheduler_tail),
                             daemon=True)
        t.start()

    def _start_workers(self, env: dict[str, str]) -> None:
        cfg = self.cfg
        for local_rank in range(cfg.nproc_per_node):
            rank = cfg.node_rank * cfg.nproc_per_node + local_rank
            wenv = dict(env, RANK=str(rank), LOCAL_RANK=str(local_rank), ROLE_RANK=str(rank),
                        RANK_ID=str(rank), DEVICE_ID=str(local_rank), MS_ROLE="MS_WORKER", MS_NODE_ID=str(rank))
            proc = subprocess.Popen(self._worker_cmd(local_rank), env=wenv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    preexec_fn=_die_with_launcher)
            w = _Proc(rank, local_rank, proc, time.monotonic())
            logs: list[Optional[IO[bytes]]] = [None, None]
            if self.log_root is not None:
                d = self.log_root / "attempt_0" / str(local_rank)
                d.mkdir(parents=True, exist_ok=True)
                logs = [open(d / "stdout.log", "wb"), open(d / "stderr.log", "wb")]
            prefix = f"[rank{rank}]: "
            for stream, sink, log, tail in ((proc.stdout, sys.stdout, logs[0], None),
                                            (proc.stderr, sys.stderr, logs[1], w.tail)):
                t = threading.Thread(target=_pump, args=(stream, prefix, sink, log, tail), daemon=True)
                t.start()
                w.threads.append(t)
            self.workers.append(w)

    def _signal_all(self, sig: int, procs: list[subprocess.Popen]) -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def _stop(self, procs: list[subprocess.Popen], first: int = signal.SIGTERM) -> None:
        """``first`` to every live process, SIGKILL to the rest after ``shutdown_timeout``; reap all."""
        self._signal_all(first, procs)
        deadline = time.monotonic() + self.cfg.shutdown_timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_all(signal.SIGKILL, procs)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # ------------------------------------------------------------------------------------------------ run
    def _on_signal(self, signum, _frame) -> None:
        self._signal = signum

    def _remote_failure(self) -> Optional[dict]:
        try:
            value = (self.server.get("job/failed") if self.server is not None
                     else self.client.get("job/failed") if self.client is not None else None)
        except StoreError:
            return {"rank": "?", "node": 0, "exitcode": "?", "why": "lost the connection to node 0's store"}
        return json.loads(value) if value else None

    def run(self) -> int:
        """Run the job on this node; returns the launcher's exit status (0: every worker on every node
        succeeded). Raises :class:`LaunchError` for set-up failures (busy port, unreachable master)."""
        cfg = self.cfg
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._rendezvous()
            if cfg.log_dir:
                self.log_root = Path(cfg.log_dir) / cfg.run_id
                self.log_root.mkdir(parents=True, exist_ok=True)
            env = self._base_env()
            if cfg.node_rank == 0:
                self._start_scheduler(env)
            self._start_workers(env)
            return self._monitor()
        finally:
            procs = [w.proc for w in self.workers] + ([self.scheduler] if self.scheduler else [])
            if any(p.poll() is None for p in procs):
                self._stop(procs)
            for w in self.workers:
                for t in w.threads:
                    t.join(timeout=5)
            if self.client is not None:
                self.client.close()
            if self.server is not None:
                self.server.close()
            for s, h in old.items():
                signal.signal(s, h)

    def _monitor(self) -> int:
        cfg = self.cfg
        last_remote_check = 0.0
        while True:
            if self._signal is not None:
                sig = self._signal
                print(f"launcher: received {signal.Signals(sig).name}; forwarding it to {len(self.workers)} "
                      f"worker(s)", file=sys.stderr, flush=True)
                self._stop([w.proc for w in self.workers], first=sig)
                return 128 + sig
            failed = [w for w in self.workers if w.proc.poll() not in (None, 0)]
            if failed:
                return self._fail(failed[0])
            if all(w.proc.poll() == 0 for w in self.workers):
                return self._finish()
            if self.scheduler is not None and self.scheduler.poll() not in (None, 0):
                return self._scheduler_failed()
            now = time.monotonic()
            if now - last_remote_check > 0.5 and cfg.nnodes > 1:
                last_remote_check = now
                remote = self._remote_failure()
                if remote is not None:
                    return self._fail_remote(remote)
            time.sleep(cfg.monitor_interval)

    def _fail(self, w: _Proc) -> int:
        code = w.proc.returncode
        for t in w.threads:
            t.join(timeout=2)
        what = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        info = {"rank": w.rank, "node": self.cfg.node_rank, "exitcode": code, "why": what}
        try:
            if self.client is not None:
                self.client.set("job/failed", json.dumps(info))
        except StoreError:
            pass
        t0 = time.monotonic()
        others = [x.proc for x in self.workers if x is not w]
        self._stop(others)
        lines = "\n".join(f"    {line}" for line in w.tail) or "    (no stderr output)"
        print(f"launcher: rank {w.rank} (local_rank {w.local_rank}, node {self.cfg.node_rank}, pid {w.proc.pid}) "
              f"failed with {what} after {time.monotonic() - w.started:.1f} s; stopped the other "
              f"{len(others)} local worker(s) in {time.monotonic() - t0:.1f} s. Last stderr lines of rank "
              f"{w.rank}:\n{lines}", file=sys.stderr, flush=True)
        return code if 0 < code < 256 else 1

    def _scheduler_failed(self) -> int:
        """MindSpore's scheduler ended abnormally while workers still run: they cannot communicate any more.
        Give them a few seconds to finish on their own, then stop them and report the scheduler's log tail."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(w.proc.poll() is None for w in self.workers):
            time.sleep(0.1)
        failed = [w for w in self.workers if w.proc.poll() not in (None, 0)]
        if not any(w.proc.poll() is None for w in self.workers) and not failed:
            return self._finish()
        code = self.scheduler.returncode
        what = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        running = [w.rank for w in self.workers if w.proc.poll() is None]
        self._stop([w.proc for w in self.workers])
        tail = "\n".join(f"    {line}" for line in self.scheduler_tail) or "    (no output)"
        print(f"launcher: MindSpore's scheduler (pid {self.scheduler.pid}) ended with {what} while rank(s) "
              f"{running} were running; stopped them. Last scheduler log lines:\n{tail}", file=sys.stderr, flush=True)
        try:
            if self.client is not None:
                self.client.set("job/failed", json.dumps({"rank": "scheduler", "node": 0, "exitcode": 1,
                                                          "why": f"MindSpore scheduler ended with {what}"}))
        except StoreError:
            pass
        return 1

    def _fail_remote(self, info: dict) -> int:
        self._stop([w.proc for w in self.workers])
        print(f"launcher: node {self.cfg.node_rank}: stopping local workers because rank {info.get('rank')} on "
              f"node {info.get('node')} failed ({info.get('why')})", file=sys.stderr, flush=True)
        code = info.get("exitcode")
        return code if isinstance(code, int) and 0 < code < 256 else 1

    def _finish(self) -> int:
        """All local workers succeeded: tell node 0; node 0 waits for every node, then stops the scheduler."""
        cfg = self.cfg
        if self.client is not None:
            self.client.set(f"done/{cfg.node_rank}", "1")
        if cfg.node_rank == 0 and cfg.nnodes > 1:
            deadline = time.monotonic() + cfg.join_timeout
            while len(self.client.keys("done/")) < cfg.nnodes:
                remote = self._remote_failure()
                if remote is not None:
                    return self._fail_remote(remote)
                if self._signal is not None or time.monotonic() > deadline:
                    missing = sorted(set(range(cfg.nnodes)) - {int(k.split('/')[1]) for k in self.client.keys('done/')})
                    print(f"launcher: node(s) {missing} did not finish", file=sys.stderr, flush=True)
                    return 1
                time.sleep(0.2)
        if self.scheduler is not None:
            # Every worker of every node has exited: nothing needs the scheduler any more (it would otherwise
            # wait for heartbeats of workers that never initialised communication).
            self._stop([self.scheduler])
        return 0


def launch(cfg: LaunchConfig) -> int:
    """Run ``cfg`` on this node and return the exit status; set-up failures print a one-line error and
    return 1."""
    try:
        return Agent(cfg).run()
    except LaunchError as exc:
        print(f"launcher: error: {exc}", file=sys.stderr, flush=True)
        return 1
