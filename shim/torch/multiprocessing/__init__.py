"""torch.multiprocessing: Python's multiprocessing (documented difference: facade tensors cross process
boundaries by pickling — a copy — not through shared memory; `share_memory_()` is a no-op on them)."""
from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import *  # noqa: F401,F403

__all__ = list(getattr(_mp, "__all__", [])) + ["spawn", "start_processes", "get_all_sharing_strategies",
                                               "get_sharing_strategy", "set_sharing_strategy"]

_strategy = ["file_system"]


def get_all_sharing_strategies():
    return {"file_system"}


def get_sharing_strategy():
    return _strategy[0]


def set_sharing_strategy(new_strategy):
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"unknown sharing strategy {new_strategy!r}")
    _strategy[0] = new_strategy


class ProcessRaisedException(Exception):
    """An exception raised in a spawned process (message carries its traceback)."""


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Run fn(i, *args) in `nprocs` processes; with join, wait and raise if any exits non-zero."""
    ctx = _mp.get_context(start_method)
    procs = [ctx.Process(target=fn, args=(i,) + tuple(args), daemon=daemon) for i in range(nprocs)]
    for p in procs:
        p.start()
    if not join:
        return procs
    for p in procs:
        p.join()
    bad = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if bad:
        raise ProcessRaisedException(f"process {bad[0][0]} terminated with exit code {bad[0][1]}")
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """torch.multiprocessing.spawn: start_processes with the spawn method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
