"""Run a training script with the CPU time of each `qwen_sft.training._Trainer.train_step` recorded.

Used by benchmarks/bench_megatron_shim.py: on a shared, overloaded machine the wall-clock step time mostly measures
the scheduler's share, while the process CPU time (`time.process_time()`: user + system of every thread of this
process, MindSpore's and torch's worker threads included) measures the work a step costs.

Usage: python benchmarks/_step_cpu.py [--local-rank=N] SCRIPT.py ARGS...   (a launcher may put --local-rank first)
Environment: BENCH_STEP_CPU_OUT=PREFIX — each process appends one JSON line per step to PREFIX.rank<RANK>.jsonl:
{"step": 1-based step, "cpu_s": process CPU seconds of the step, "wall_s": wall seconds}.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    script = next((i for i, a in enumerate(argv) if a.endswith(".py")), None)
    if script is None:
        raise SystemExit("usage: _step_cpu.py [--local-rank=N] SCRIPT.py ARGS...")
    out_prefix = os.environ.get("BENCH_STEP_CPU_OUT")
    if not out_prefix:
        raise SystemExit("_step_cpu.py: BENCH_STEP_CPU_OUT is not set")
    from qwen_sft import training

    inner = training._Trainer.train_step
    path = f"{out_prefix}.rank{os.environ.get('RANK', '0')}.jsonl"

    def train_step(self):
        c0, w0 = time.process_time(), time.perf_counter()
        record = inner(self)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": self.step, "cpu_s": time.process_time() - c0,
                                "wall_s": time.perf_counter() - w0}) + "\n")
        return record

    training._Trainer.train_step = train_step
    sys.argv = [argv[script], *argv[:script], *argv[script + 1:]]
    runpy.run_path(argv[script], run_name="__main__")


if __name__ == "__main__":
    main()
