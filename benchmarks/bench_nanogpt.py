"""nanoGPT (``../shared/programs/nanoGPT``, unmodified) iteration time on real torch vs under the shim.

The program is copied to a temporary directory with a tiny character dataset (as tests/shim/test_nanogpt.py makes
it: ``data/tiny/{train,val}.bin`` + ``meta.pkl``) and ``train.py`` runs with ``--device=cpu`` on each backend in
its own process (``--shim-device cuda`` runs the shim on nanoGPT's default device instead: its accelerator path,
fused AdamW). The iteration time is nanoGPT's own ``iter N: ... time X ms`` line (the wall time from one logged
iteration to the next: ``gradient_accumulation_steps`` forward/backward passes, the optimizer step and the next
batch). Iteration 0 includes the evaluation and iteration 1 the warm-up, so both are left out; each run gives
the median of the others. Backends alternate (torch, torch with one thread, shim, torch, ... ``--rounds`` each); a
row is the median over a backend's rounds and the ratio is shim / torch. torch runs twice per round: with its own
thread count and with ``OMP_NUM_THREADS=1`` (``--torch-threads``): on a loaded machine torch's OpenMP workers wait
at every parallel region for a descheduled sibling (measured at load ~20 on 2 cores: 3.1 s vs 0.13 s per tiny
iteration), so the single-thread run is the fairer reference there. The shim runs with MindSpore's own threads. The printed losses of the two backends are compared (the
facade's random streams are torch's: they are equal to 4 decimals; a mismatch is printed and the exit status is 1).

Configurations (``--config``): ``tiny`` = the test's (2 layers, 2 heads, n_embd 32, block 32, batch 4, gradient
accumulation 2); ``small`` = 4 layers, 4 heads, n_embd 128, block 64, batch 8, gradient accumulation 2.

Usage: python benchmarks/bench_nanogpt.py [--config tiny,small] [--iters 12] [--rounds 2] [--shim-device cpu]
       [--torch-threads default,1]
       [--program ../shared/programs/nanoGPT] [--json OUT]
Load average is printed before and after (the machine may be shared: compare the ratio, not absolute times).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.nanogpt_program import make_program  # noqa: E402  (the test's program copy + data)
ITER = re.compile(r"iter (\d+): loss ([0-9.]+), time ([0-9.]+)ms")
CONFIGS = {
    "tiny": ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4"],
    "small": ["--n_layer=4", "--n_head=4", "--n_embd=128", "--block_size=64", "--batch_size=8"],
}
COMMON = ["--dataset=tiny", "--compile=False", "--dtype=float32", "--gradient_accumulation_steps=2",
          "--eval_interval=100000", "--eval_iters=1", "--log_interval=1", "--warmup_iters=2",
          "--learning_rate=0.001", "--min_lr=0.0001", "--always_save_checkpoint=False"]


def run_once(program: Path, config: str, iters: int, shim: bool, device: str, threads=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIM_BACKEND", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    if threads:
        env["OMP_NUM_THREADS"] = threads
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    args = [*CONFIGS[config], *COMMON, f"--max_iters={iters}", f"--lr_decay_iters={iters}",
            f"--out_dir=out_{'shim' if shim else 'torch'}"]
    if device:
        args.append(f"--device={device}")
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=program, env=env, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{'shim' if shim else 'torch'} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    found = {int(m[1]): (float(m[2]), float(m[3])) for m in ITER.finditer(proc.stdout)}
    if sorted(found) != list(range(iters + 1)):
        raise SystemExit(f"unexpected nanoGPT output:\n{proc.stdout[-2000:]}")
    timed = [found[i][1] for i in range(2, iters + 1)]
    return {"median_ms": statistics.median(timed), "losses": [found[i][0] for i in range(iters + 1)]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="tiny,small")
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--shim-device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--torch-threads", default="default,1",
                   help="torch runs per round: 'default' (torch's own thread count) and/or N (OMP_NUM_THREADS=N)")
    p.add_argument("--program", default=str(REPO.parent / "shared" / "programs" / "nanoGPT"))
    p.add_argument("--json")
    a = p.parse_args()
    src = Path(a.program)
    if not (src / "train.py").exists():
        raise SystemExit(f"nanoGPT not found at {src} (--program)")
    print(f"load average before: {os.getloadavg()}  ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})")
    rows, status = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        program = make_program(src, Path(tmp), n_words=4000)
        torch_sides = [("torch" if t == "default" else f"torch {t}t", None if t == "default" else t)
                       for t in a.torch_threads.split(",")]
        for config in a.config.split(","):
            per = {name: [] for name, _ in torch_sides}
            per["shim"] = []
            losses = {}
            for _ in range(a.rounds):
                for name, threads in [*torch_sides, ("shim", None)]:
                    shim = name == "shim"
                    res = run_once(program, config, a.iters, shim, a.shim_device if shim else "cpu", threads)
                    per[name].append(res["median_ms"])
                    losses[name] = res["losses"]
            same = all(v == losses["shim"] for v in losses.values())
            if not same:
                status = 1
                print(f"MISMATCH: printed losses differ ({config}): {losses}")
            s_ms = statistics.median(per["shim"])
            for name, _ in torch_sides:
                t_ms = statistics.median(per[name])
                rows.append(dict(config=config, torch=name, torch_ms=t_ms, shim_ms=s_ms, ratio=s_ms / t_ms,
                                 torch_runs=per[name], shim_runs=per["shim"], same_losses=same,
                                 shim_device=a.shim_device))
    print(f"load average after:  {os.getloadavg()}")
    print(f"\n| config | torch run | torch ms/iter | shim ms/iter ({a.shim_device}) | shim/torch | "
          f"per-run medians torch / shim | same losses |")
    print("|---|---|---:|---:|---:|---|---|")
    for r in rows:
        runs = (", ".join(f"{v:.0f}" for v in r["torch_runs"]) + " / " + ", ".join(f"{v:.0f}" for v in r["shim_runs"]))
        print(f"| {r['config']} | {r['torch']} | {r['torch_ms']:.1f} | {r['shim_ms']:.1f} | {r['ratio']:.2f}x | {runs} | "
              f"{'yes' if r['same_losses'] else 'NO'} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
