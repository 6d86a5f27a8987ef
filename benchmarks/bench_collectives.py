"""Collective benchmarks: the shim (torch.distributed on MindSpore mccl) next to real torch (gloo).

Measures, for each backend and each world size (default 2 and 4 ranks on this machine):
* job start-up: seconds from starting the launcher to every rank having returned from
  ``init_process_group`` (``python -m shim.launcher`` vs real ``torchrun``);
* ``new_group`` time: ``new_group([0, 1])`` plus the first all-reduce in it (MindSpore builds the
  communicator lazily on first use);
* all-reduce (float32, SUM, in place, default group) bus bandwidth in MB/s for 1 KB ... 64 MB:
  ``busbw = bytes * 2 * (n - 1) / n / seconds`` (the NCCL-tests convention), median over iterations:
  up to 200 per size (32 MB worth, at least 3) after up to 10 warm-up ones. A sub-millisecond median of
  fewer iterations measured mostly when the scheduler ran the peer (30 iterations gave 0.7-1.7 ms on either
  side of this change for what 200 measure at 0.25-0.3 ms, idle, 2 ranks, 2 cores).

Usage: ``.venv/bin/python benchmarks/bench_collectives.py [--nproc 2 4] [--max-mb 64] [--json out.json]``.
``--backends torch shim shim-base --base_repo DIR`` adds the facade of another checkout (e.g. ``git archive main |
tar -x -C DIR``) for before/after numbers; ``--rounds N`` repeats the backends alternately N times and reports,
per size, the median over the rounds (a load change then hits every backend alike).
The same file is the worker (``--worker``) that both launchers start. Prints a table; ``--json`` keeps the
numbers. Run it alone on the machine: results on 2 shared cores are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------- worker
def worker(out_dir: str, max_mb: int) -> None:
    """Runs on every rank (torch API only, so it is the same code on both backends)."""
    import torch
    import torch.distributed as dist

    dist.init_process_group(backend="gloo")
    t_init = time.time()
    rank, n = dist.get_rank(), dist.get_world_size()
    dist.barrier()
    t0 = time.perf_counter()
    g = dist.new_group([0, 1])
    if rank in (0, 1):
        x = torch.ones(4)
        dist.all_reduce(x, group=g)
        float(x[0])
    t_group = time.perf_counter() - t0
    dist.barrier()
    rows = []
    size = 1024
    while size <= max_mb * 1024 * 1024:
        numel = size // 4
        x = torch.ones(numel)
        iters = max(3, min(200, (32 * 1024 * 1024) // size))
        for _ in range(min(iters, 10)):  # warm-up (communicator, buffers, the peer's threads)
            dist.all_reduce(x)
            float(x[0])
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            dist.all_reduce(x)
            float(x[0])  # forces completion on backends that dispatch asynchronously
            times.append(time.perf_counter() - t)
        sec = statistics.median(times)
        rows.append({"bytes": size, "iters": iters, "seconds": sec,
                     "busbw_MBps": size * 2 * (n - 1) / n / sec / 1e6})
        size *= 4
    if rank == 0:
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump({"init_done": t_init, "new_group_s": t_group, "allreduce": rows,
                       "backend": dist.get_backend()}, f)
    dist.barrier()
    dist.destroy_process_group()


# ------------------------------------------------------------------------------------------- orchestrator
def run_one(backend: str, nproc: int, max_mb: int, timeout: float, base_repo: str = None) -> dict:
    """Launch ``nproc`` workers on ``backend`` ("shim", "shim-base" (the checkout ``base_repo``) or "torch") and
    return rank 0's numbers plus the start-up time measured from here."""
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if backend == "shim-base":
            env["PYTHONPATH"] = str(Path(base_repo).resolve())
        if backend.startswith("shim"):
            env["SHIM_BACKEND"] = "mindspore"
            cmd = [sys.executable, "-m", "shim.launcher"]
        else:
            env.pop("SHIM_BACKEND", None)
            cmd = [str(Path(sys.executable).parent / "torchrun")]
        cmd += ["--nproc-per-node", str(nproc), "--master-port", str(_free_port()), str(Path(__file__).resolve()),
                "--worker", "--out", out, "--max-mb", str(max_mb)]
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=base_repo if backend == "shim-base" else REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{backend} x{nproc} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        res = json.loads(Path(out, "result.json").read_text())
        res["startup_s"] = res.pop("init_done") - t0
        return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, nargs="+", default=[2, 4])
    p.add_argument("--max-mb", type=int, default=64)
    p.add_argument("--backends", nargs="+", default=["shim", "torch"], choices=["shim", "torch", "shim-base"])
    p.add_argument("--base_repo", default=None, help="checkout whose facade the shim-base backend runs")
    p.add_argument("--rounds", type=int, default=1, help="alternate the backends this many times (median)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--json", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.out, args.max_mb)
        return 0
    if "shim-base" in args.backends and not args.base_repo:
        p.error("--backends shim-base needs --base_repo")
    results = {}
    for n in args.nproc:
        runs: dict = {}
        for i in range(args.rounds):
            for b in args.backends:
                print(f"running {b} with {n} ranks (round {i + 1}) ...", file=sys.stderr, flush=True)
                runs.setdefault(b, []).append(run_one(b, n, args.max_mb, args.timeout, args.base_repo))
        for b, rs in runs.items():
            res = dict(rs[0])
            for key in ("startup_s", "new_group_s"):
                res[key] = statistics.median(r[key] for r in rs)
            res["allreduce"] = []
            for i, row in enumerate(rs[0]["allreduce"]):
                sec = statistics.median(r["allreduce"][i]["seconds"] for r in rs)
                res["allreduce"].append(dict(row, seconds=sec, busbw_MBps=row["bytes"] * 2 * (n - 1) / n / sec / 1e6))
            results[f"{b}x{n}"] = res
    print("\njob start-up (launcher start -> init_process_group returned on rank 0) and new_group([0,1]) + "
          "first all-reduce, seconds")
    for key, r in results.items():
        print(f"  {key:10s} start-up {r['startup_s']:6.2f}   new_group {r['new_group_s']:6.3f}   ({r['backend']})")
    for n in args.nproc:
        print(f"\nall-reduce float32 SUM bus bandwidth, {n} ranks (MB/s; median latency in ms)")
        cols = [b for b in args.backends if f"{b}x{n}" in results]
        print("  " + f"{'size':>10s}" + "".join(f"{c + ' MB/s':>14s}{c + ' ms':>12s}" for c in cols))
        sizes = [row["bytes"] for row in results[f"{cols[0]}x{n}"]["allreduce"]]
        for i, size in enumerate(sizes):
            label = f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"
            line = f"  {label:>10s}"
            for c in cols:
                row = results[f"{c}x{n}"]["allreduce"][i]
                line += f"{row['busbw_MBps']:14.1f}{row['seconds'] * 1e3:12.3f}"
            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
