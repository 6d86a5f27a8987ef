"""Run a training script with the CPU time of each `qwen_sft.training._Trainer.train_step` recorded.

Used by benchmarks/bench_megatron_shim.py: on a shared, overloaded machine the wall-clock step time mostly measures
the scheduler's share, while the process CPU time (`time.process_time()`: user + system of every thread of this
process, MindSpore's and torch's worker threads included) measures the work a step costs.

Usage: python benchmarks/_step_cpu.py [--local-rank=N] SCRIPT.py ARGS...   (a launcher may put --local-rank first)
Environment: BENCH_STEP_CPU_OUT=PREFIX — each process appends one JSON line per step to PREFIX.rank<RANK>.jsonl:
{"step": 1-based step, "cpu_s": process CPU seconds of the step, "wall_s": wall seconds, and the process's memory
after the step from /proc/self/status (Linux; MiB): "hwm_mib" (VmHWM, the peak resident set so far), "rss_mib"
(VmRSS), "anon_mib" (RssAnon: heap, MindSpore's and torch's allocators), "file_mib" (RssFile: mapped files such
as the libraries and the memory-mapped dataset), plus "py_blocks" (sys.getallocatedblocks(): Python objects'
memory blocks, a count)}.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import time


def _memory() -> dict:
    """The memory fields of a step record (empty where /proc/self/status is missing)."""
    fields = {"VmHWM": "hwm_mib", "VmRSS": "rss_mib", "RssAnon": "anon_mib", "RssFile": "file_mib"}
    out = {"py_blocks": sys.getallocatedblocks()}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in fields:
                    out[fields[key]] = int(rest.split()[0]) / 1024  # kB -> MiB
    except OSError:
        pass
    return out


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
        cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": self.step, "cpu_s": cpu_s, "wall_s": wall_s, **_memory()}) + "\n")
        return record

    training._Trainer.train_step = train_step
    sys.argv = [argv[script], *argv[:script], *argv[script + 1:]]
    runpy.run_path(argv[script], run_name="__main__")


if __name__ == "__main__":
    main()
