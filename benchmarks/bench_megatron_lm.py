"""Megatron-LM's own `pretrain_gpt.py` (core_v0.16.1, unmodified; ../shared/programs/Megatron-LM): one training
iteration's time on real torch (the CPU reference runner, `python -m qwen_sft.cpu_accelerator`) vs under the shim
(`SHIM_BACKEND=mindspore`), issue 10.

Configuration: the mock-data runs of tests/shim/test_megatron_lm_pretrain.py (`ARGS` there: GPT with 2 layers,
hidden 64, 4 heads, seq 64, NullTokenizer vocabulary 128, `--transformer-impl local`, fp32, micro-batch 2, global
batch 2, gloo), launched with `torch.distributed.run` (the shim's launcher under the shim) in a writable copy of the
program (`_program_copy` there). Layouts (`--layouts`):
- `tp1`: one process;
- `tp2`: two processes, `--tensor-model-parallel-size 2`;
- `moe_ep2`: two processes, `--num-experts 4 --moe-router-topk 2 --expert-model-parallel-size 2
  --moe-token-dispatcher-type alltoall --disable-bias-linear`, global batch 4 (DP=2, EP=2), as the test's MoE run
  without the distributed optimizer.
Each run trains `--iters` iterations (default 6); the first `--warmup` (default 2) are left out. Every rank runs
under this file's `--wrap` mode, which times megatron's `train_step` (megatron.training.training.train_step, one
iteration) with `time.perf_counter()` and `time.process_time()` (user + system CPU of every thread of the process)
and appends one JSON line per iteration to `$BENCH_MLM_OUT.rank<RANK>.jsonl`. Reported per run: median wall
seconds per iteration (rank 0), median CPU seconds per iteration summed over the ranks (on a loaded machine the
wall time mostly measures the scheduler's share, the CPU time the work), and the 1-minute load average before and
after. Backends alternate (reference, then shim) per layout so a load change hits both; `--rounds N` repeats.

Usage:
  .venv/bin/python benchmarks/bench_megatron_lm.py [--layouts tp1 tp2 moe_ep2] [--iters 6] [--warmup 2]
      [--rounds 1] [--json OUT]
Exit status 0 when every run finished; a failed run prints its log tail and exits 1. Needs ../shared.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
LAYOUTS = {
    "tp1": (1, []),
    "tp2": (2, ["--tensor-model-parallel-size", "2"]),
    "moe_ep2": (2, ["--num-experts", "4", "--moe-router-topk", "2", "--expert-model-parallel-size", "2",
                    "--moe-token-dispatcher-type", "alltoall", "--disable-bias-linear", "--global-batch-size", "4"]),
}


def _wrap(argv: list[str]) -> None:
    """`--wrap SCRIPT ARGS...`: run SCRIPT as `__main__` with megatron's `train_step` timed (module docstring)."""
    import runpy

    out = os.environ["BENCH_MLM_OUT"]
    from megatron.training import training

    inner = training.train_step
    path = f"{out}.rank{os.environ.get('RANK', '0')}.jsonl"
    count = [0]

    def train_step(*args, **kwargs):
        c0, w0 = time.process_time(), time.perf_counter()
        result = inner(*args, **kwargs)
        count[0] += 1
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"iteration": count[0], "cpu_s": time.process_time() - c0,
                                "wall_s": time.perf_counter() - w0}) + "\n")
        return result

    training.train_step = train_step
    script = argv[0]
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


def _load() -> float:
    return os.getloadavg()[0]


def _run(prog: Path, layout: str, shim: bool, iters: int, work: Path) -> dict:
    sys.path.insert(0, str(REPO))
    from tests.conftest import free_port
    from tests.shim.test_megatron_lm_pretrain import ARGS, _env

    nproc, extra = LAYOUTS[layout]
    args = [*ARGS, *extra]
    args[args.index("--train-iters") + 1] = str(iters)
    out = work / f"{layout}_{'shim' if shim else 'ref'}_{time.monotonic_ns()}"
    env = _env(prog, BENCH_MLM_OUT=str(out), **({"SHIM_BACKEND": "mindspore"} if shim else {}))
    head = [PY, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
            "--master-port", str(free_port())]
    runner = [] if shim else ["-m", "qwen_sft.cpu_accelerator"]
    cmd = [*head, *runner, str(Path(__file__).resolve()), "--wrap", "pretrain_gpt.py", *args]
    load0, t0 = _load(), time.perf_counter()
    res = subprocess.run(cmd, cwd=prog, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=1800)
    total = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stdout[-6000:], file=sys.stderr)
        raise SystemExit(f"{layout} {'shim' if shim else 'reference'}: exit {res.returncode}")
    ranks = [[json.loads(line) for line in Path(f"{out}.rank{r}.jsonl").read_text().splitlines()]
             for r in range(nproc)]
    return {"ranks": ranks, "load_before": load0, "load_after": _load(), "run_s": total}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--wrap":
        _wrap(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.iters <= a.warmup:
        ap.error("--iters must exceed --warmup")
    sys.path.insert(0, str(REPO))
    from tests.shim.test_megatron_lm_pretrain import _program_copy

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_mlm_") as tmp:
        prog = _program_copy(Path(tmp))
        for _ in range(a.rounds):
            for layout in a.layouts:
                for shim in (False, True):
                    r = _run(prog, layout, shim, a.iters, Path(tmp))
                    measured = [[it for it in rank if it["iteration"] > a.warmup] for rank in r["ranks"]]
                    wall = statistics.median(it["wall_s"] for it in measured[0])
                    cpu = statistics.median(sum(its) for its in zip(*[[it["cpu_s"] for it in rank]
                                                                      for rank in measured]))
                    rows.append({"backend": "shim" if shim else "torch", "layout": layout,
                                 "procs": len(r["ranks"]), "iters": len(measured[0]), "wall_s": wall,
                                 "cpu_s": cpu, "run_s": r["run_s"], "load_before": r["load_before"],
                                 "load_after": r["load_after"]})
                    row = rows[-1]
                    print(f"{row['backend']:6} {layout:8} procs {row['procs']} iters {row['iters']} "
                          f"wall/iter {wall:.3f} s  cpu/iter {cpu:.3f} s  run {row['run_s']:.0f} s  "
                          f"load {row['load_before']:.1f}->{row['load_after']:.1f}", flush=True)
    print("\n| layout | backend | processes | wall s/iteration (median, rank 0) | CPU s/iteration (all ranks) | "
          "shim/torch wall | shim/torch CPU | load 1-min |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ref = next(r for r in rows if r["layout"] == row["layout"] and r["backend"] == "torch")
        ratio = (f"{row['wall_s'] / ref['wall_s']:.2f}", f"{row['cpu_s'] / ref['cpu_s']:.2f}") \
            if row["backend"] == "shim" else ("", "")
        print(f"| {row['layout']} | {row['backend']} | {row['procs']} | {row['wall_s']:.3f} | {row['cpu_s']:.3f} | "
              f"{ratio[0]} | {ratio[1]} | {row['load_before']:.1f} → {row['load_after']:.1f} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
