"""Command line of the launcher: torchrun's and ``torch.distributed.launch``'s flags -> :class:`LaunchConfig`.

Accepted (both spellings, ``--x-y`` and ``--x_y``, as torch accepts them): ``--nnodes N`` (or ``N:N``),
``--nproc-per-node N``, ``--node-rank R``, ``--master-addr A``, ``--master-port P``, ``--rdzv-endpoint A:P``
(static rendezvous: same as master addr/port), ``--rdzv-backend static|c10d`` (both mean the static
rendezvous at the endpoint; elastic membership is not supported), ``--rdzv-id ID``, ``--standalone``,
``--max-restarts 0``, ``--monitor-interval S``, ``--log-dir DIR``, ``--use-env`` (legacy launcher),
``-m/--module``, ``--no-python``; and two of the shim's own: ``--join-timeout S`` (how long ranks and nodes
wait for each other; torch's ``init_process_group(timeout=)`` takes precedence inside the workers) and
``--shutdown-timeout S`` (grace between SIGTERM and SIGKILL when stopping workers; torchrun has the same
flag). Any other option before the script is an error that names it (argparse's "unrecognized arguments").

Legacy mode (``python -m torch.distributed.launch``) passes ``--local-rank=<local_rank>`` to the script unless
``--use-env`` is given, as torch's legacy launcher does; torchrun mode never passes it.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from .agent import free_port
from .config import LaunchConfig


def _positive_int(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise SystemExit(f"launcher: {name} expects an integer, got {value!r}") from None
    if n < 1:
        raise SystemExit(f"launcher: {name} must be >= 1, got {n}")
    return n


def build_parser(legacy: bool) -> argparse.ArgumentParser:
    """The argparse parser (``legacy`` selects the ``torch.distributed.launch`` program name and defaults)."""
    prog = "python -m torch.distributed.launch" if legacy else "torchrun (shim)"
    p = argparse.ArgumentParser(prog=prog, allow_abbrev=False,
                                description="Start a MindSpore dynamic cluster (scheduler + workers) the way "
                                            "torchrun / torch.distributed.launch start a torch job.")
    p.add_argument("--nnodes", default="1", help="number of nodes: N or N:N (static)")
    p.add_argument("--nproc-per-node", "--nproc_per_node", default="1", help="workers on this node")
    p.add_argument("--node-rank", "--node_rank", type=int, default=0, help="this node's rank (0..nnodes-1)")
    p.add_argument("--master-addr", "--master_addr", default="127.0.0.1", help="address of node 0")
    p.add_argument("--master-port", "--master_port", type=int, default=29500,
                   help="port of node 0's rendezvous store (MindSpore's scheduler gets its own free port)")
    p.add_argument("--rdzv-endpoint", "--rdzv_endpoint", default="", help="HOST:PORT, same as master addr/port")
    p.add_argument("--rdzv-backend", "--rdzv_backend", default="static", help="static or c10d (both static)")
    p.add_argument("--rdzv-id", "--rdzv_id", default="none", help="job id (names the log folder)")
    p.add_argument("--standalone", action="store_true", help="single node on a free local port")
    p.add_argument("--max-restarts", "--max_restarts", type=int, default=0, help="only 0 is supported")
    p.add_argument("--monitor-interval", "--monitor_interval", type=float, default=0.1, help="seconds")
    p.add_argument("--log-dir", "--log_dir", default=None,
                   help="also write each rank's stdout/stderr to LOG_DIR/<run id>/attempt_0/<local rank>/")
    p.add_argument("--use-env", "--use_env", action="store_true",
                   help="(legacy launcher) do not pass --local-rank; read LOCAL_RANK from the environment")
    p.add_argument("-m", "--module", action="store_true", help="run the script as a module (python -m)")
    p.add_argument("--no-python", "--no_python", action="store_true", help="run the script as an executable")
    p.add_argument("--join-timeout", "--join_timeout", type=float, default=300.0,
                   help="seconds nodes and ranks wait for each other before failing with the missing ones")
    p.add_argument("--shutdown-timeout", "--shutdown_timeout", type=float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping workers")
    p.add_argument("training_script", help="the program to run on every worker")
    p.add_argument("training_script_args", nargs=argparse.REMAINDER)
    return p


def parse_args(argv: Sequence[str], *, legacy: bool = False) -> LaunchConfig:
    """Parse launcher arguments; errors (unknown flags, bad values, unsupported features) exit with a message
    naming the flag (``SystemExit``)."""
    args = build_parser(legacy).parse_args(list(argv))
    nnodes_text = str(args.nnodes)
    if ":" in nnodes_text:
        lo, hi = nnodes_text.split(":", 1)
        if lo != hi:
            raise SystemExit(f"launcher: --nnodes {nnodes_text}: elastic node ranges are not supported; "
                             f"give a fixed count N")
        nnodes_text = lo
    nnodes = _positive_int("--nnodes", nnodes_text)
    nproc = _positive_int("--nproc-per-node", str(args.nproc_per_node))
    if args.max_restarts != 0:
        raise SystemExit(f"launcher: --max-restarts {args.max_restarts}: restarts are not supported (only 0)")
    if args.rdzv_backend not in ("static", "c10d"):
        raise SystemExit(f"launcher: --rdzv-backend {args.rdzv_backend!r} not supported; use static or c10d "
                         f"(both mean a static rendezvous at --rdzv-endpoint / --master-addr:--master-port)")
    if not 0 <= args.node_rank < nnodes:
        raise SystemExit(f"launcher: --node-rank {args.node_rank} out of range for --nnodes {nnodes}")
    if args.module and args.no_python:
        raise SystemExit("launcher: --module and --no-python cannot be combined")
    addr, port = args.master_addr, args.master_port
    if args.rdzv_endpoint:
        host, _, port_text = args.rdzv_endpoint.rpartition(":")
        if not host or not port_text.isdigit():
            raise SystemExit(f"launcher: --rdzv-endpoint {args.rdzv_endpoint!r}: expected HOST:PORT")
        addr, port = host, int(port_text)
    if args.standalone:
        if nnodes != 1:
            raise SystemExit("launcher: --standalone needs --nnodes 1")
        addr, port = "127.0.0.1", free_port()
    if not 0 < port < 65536:
        raise SystemExit(f"launcher: master port {port} out of range")
    return LaunchConfig(
        nproc_per_node=nproc, nnodes=nnodes, node_rank=args.node_rank, master_addr=addr, master_port=port,
        use_env=(not legacy) or args.use_env, module=args.module, no_python=args.no_python,
        log_dir=args.log_dir, run_id=args.rdzv_id, monitor_interval=max(0.02, args.monitor_interval),
        join_timeout=args.join_timeout, shutdown_timeout=args.shutdown_timeout,
        script=args.training_script, script_args=list(args.training_script_args))
