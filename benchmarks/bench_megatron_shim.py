"""tools/train.py on real torch vs on MindSpore through the shim (`SHIM_BACKEND=mindspore`), plus a profile of the
shim's training step.

Configuration (the one of tests/shim/test_megatron_train_shim.py): a tiny untied Qwen2 (hidden 64, 2 layers, 4 heads
/ 2 KV heads, intermediate 128, vocabulary 151,665 rows padded by megatron to 151,680 at TP=1/2), seq_length 64,
global batch 2 = 2 micro-batches of 1, lr 1e-3, seed 7. Data: ../shared/data/alpaca_zh_demo.json tokenized with the
real Qwen2.5 tokenizer (../shared/assets/qwen2.5-tokenizer) when ../shared is present, else the built-in demo
dataset (qwen_sft.demo_data) with the labelled stand-in tokenizer (qwen_sft.tokenizer); never the network.

`--family` picks the model family of the tiny model (tools/make_tiny_model.py `--model_type`: qwen2 (default),
llama, qwen3, mixtral, qwen2_moe; same shape, the MoE families with the maker's 4 experts, top-2, hidden 64).

Measure mode (default): for every precision (`--precision`, fp32 and bf16) and layout (`--layouts`: tp1, tp2, dp2 =
1, 2 and 2 processes; `epN` = N processes at `--ep N`, i.e. DP=N with the experts split N ways, for an MoE family;
`tpNepM` etc. combine) it runs the reference backend and then the shim (alternately, so a load change hits both;
`--rounds N` repeats the alternation), `--steps` steps each, and
prints one row per run: backend, layout, precision, measured steps (the first `--warmup_steps` left out: lazy
initialisation), median step time (s), median CPU seconds per step (process CPU time of the step summed over the
ranks, recorded by benchmarks/_step_cpu.py; on an overloaded machine the wall time mostly measures the scheduler's
share, the CPU time the work), learnable and total tokens/s (sums over the measured steps from metrics.jsonl), peak
memory (the largest `peak_*` field in metrics.jsonl: `peak_rss_mib` = rank 0's peak RSS) and the 1-minute load
average before and after the run. `--memory_table` also prints, per run, rank 0's memory after each step
(benchmarks/_step_cpu.py's /proc fields: peak and current RSS, anonymous and file-backed RSS, Python's allocated
blocks) at steps 1, 5, 10, 20, ... and each field's growth per step after warm-up; `--json` keeps it as
`memory_by_step`. `--backends ... shim-base --base_repo DIR` adds runs of another checkout's facade
(e.g. `git archive HEAD | tar -x -C DIR` before a change) for before/after numbers; `shim` and `shim-base` run the
facade in its default configuration, `shim-async` with SHIM_SYNC_DISPATCH=0 (MindSpore's asynchronous dispatch),
`shim-sync` with SHIM_SYNC_DISPATCH=1 (synchronous, the facade's default on the CPU target,
shim/torch/_dispatch.py). With `--native` (default on,
fp32 only) it adds the same tiny model's step hand-written three ways in one process each
(benchmarks/bench_shim_step.py's builders): native MindSpore PyNative (mint/ops + value_and_grad + AdamW in
MindSpore ops), the same torch-style model on the facade, and on real torch; that splits the shim's cost into the
framework's own and the facade's / megatron-core's.

Profile mode (`--profile`): one shim run (fp32; `--profile_backend torch`: the reference run, for a side-by-side) in
`--profile_layout` (default tp1) with every rank under cProfile,
enabled only inside `_Trainer.train_step` for the steps after the warm-up ones; with several ranks each prints its
own summary, where the collectives' category includes the time spent waiting for the peers. `--blocking` (default on) runs MindSpore with
`mindspore.runtime.launch_blocking()` so that each op's kernel time is charged to the Python call that launched it
(asynchronous dispatch charges it to whichever later call waits: `.shape`, `.dtype`, `asnumpy`, setitem). Prints the
top functions by own time and the time per category (MindSpore op execution, autograd backward, facade Python,
megatron-core Python, training loop, host syncs). `--profile_out F` keeps the pstats file.

Usage:
  .venv/bin/python benchmarks/bench_megatron_shim.py [--steps 4] [--layouts tp1 tp2 dp2] [--precision fp32 bf16]
      [--rounds N] [--backends torch shim shim-base --base_repo DIR] [--family F] [--json OUT]
  MoE step, EP=1 vs EP=2:
  .venv/bin/python benchmarks/bench_megatron_shim.py --family mixtral --layouts tp1 ep2 --precision fp32 --no-native
  .venv/bin/python benchmarks/bench_megatron_shim.py --profile [--profile_layout tp2] [--steps 3] [--no-blocking]
      [--profile_out F] [--profile_backend torch]
Exit status 0 when every run finished; a failed run prints its log tail and exits 1.
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
SHARED = REPO.parent / "shared"
PY = sys.executable
TRAIN_ARGS = ["--seq_length", "64", "--batch_size", "2", "--micro_batch_size", "1", "--learning_rate", "1e-3",
              "--seed", "7", "--save_steps", "0", "--no_export", "--log_interval", "1"]
# The tiny model of the megatron shim tests (tests/shim/test_megatron_train_shim.py) in bench_shim_step's terms;
# vocab = megatron's padded_vocab_size for 151,665 rows at TP=1 (multiple of 128).
TINY_STEP_CFG = dict(vocab=151680, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128, batch=2, seq=64,
                     rope_base=1e6, eps=1e-6, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, adam_eps=1e-8)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(shim: bool, repo: Path = REPO) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SHIM_BACKEND")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(repo))
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    return env


def _load() -> float:
    return os.getloadavg()[0]


def _check(r: subprocess.CompletedProcess, what: str) -> None:
    if r.returncode:
        raise RuntimeError(f"{what} failed (exit {r.returncode}):\n{(r.stdout or '')[-3000:]}\n"
                           f"{(r.stderr or '')[-3000:]}")


FAMILIES = ("qwen2", "llama", "qwen3", "mixtral", "qwen2_moe")  # tools/make_tiny_model.py --model_type


def prepare(work: Path, family: str = "qwen2") -> dict:
    """Tiny model of `family` + tokenized data in `work`. Returns {"model", "data", "tokenizer", "source"}
    (paths, str)."""
    tokenizer = SHARED / "assets" / "qwen2.5-tokenizer"
    alpaca = SHARED / "data" / "alpaca_zh_demo.json"
    model_args = ["--untie_word_embeddings", "--seed", "3", "--model_type", family]
    if tokenizer.is_dir() and alpaca.is_file():
        source = f"{alpaca.name} + real Qwen2.5 tokenizer"
        model_args += ["--vocab_size", "151665"]
    else:
        from qwen_sft.demo_data import write_demo_dataset
        from qwen_sft.tokenizer import standin_tokenizer_dir

        tokenizer = Path(standin_tokenizer_dir())
        alpaca = Path(write_demo_dataset(work / "demo.json", n=512))
        source = "built-in demo data + stand-in tokenizer (../shared absent)"
    model, data = work / "tiny", work / "data"
    r = subprocess.run([PY, str(REPO / "tools" / "make_tiny_model.py"), "--output_path", str(model), *model_args,
                        "--tokenizer_path", str(tokenizer)], cwd=REPO, env=_env(False), capture_output=True,
                       text=True, timeout=600)
    _check(r, "make_tiny_model.py")
    r = subprocess.run([PY, str(REPO / "tools" / "data_convert.py"), "--input_path", str(alpaca), "--tokenizer_path",
                        str(tokenizer), "--output_path", str(data), "--seq_length", "64", "--overlength",
                        "truncate", "--no_progress"], cwd=REPO, env=_env(False), capture_output=True, text=True,
                       timeout=600)
    _check(r, "data_convert.py")
    return {"model": str(model), "data": str(data), "tokenizer": str(tokenizer), "source": source}


def parse_layout(text: str) -> tuple[int, int, int]:
    """``"tp2"`` -> (2, 1, 1), ``"dp2"`` -> (1, 2, 1), ``"tp2dp2"`` -> (2, 2, 1), ``"ep2"`` -> (1, 2, 2),
    ``"dp4ep2"`` -> (1, 4, 2): (TP, DP, EP); processes = TP x DP. Expert parallelism splits the data-parallel
    ranks (megatron-core: EP divides DP), so ``epN`` alone means DP = N."""
    import re

    m = re.fullmatch(r"(?:tp(\d+))?(?:dp(\d+))?(?:ep(\d+))?", text.lower())
    if not m or not text:
        raise argparse.ArgumentTypeError(f"layout {text!r}: expected tpN, dpN, epN or a combination (tpNdpMepK)")
    tp, ep = int(m.group(1) or 1), int(m.group(3) or 1)
    dp = int(m.group(2) or ep)
    if dp % ep:
        raise argparse.ArgumentTypeError(f"layout {text!r}: EP={ep} must divide DP={dp}")
    return tp, dp, ep


def layout_name(tp: int, dp: int = 1, ep: int = 1) -> str:
    return f"TP={tp}" + (f",DP={dp}" if dp > 1 else "") + (f",EP={ep}" if ep > 1 else "")


def _train_cmd(backend: str, tp: int, precision: str, steps: int, inputs: dict, out: Path, dp: int = 1,
               ep: int = 1) -> list[str]:
    args = ["--model_path", inputs["model"], "--data_path", inputs["data"], "--output_path", str(out),
            "--train_iters", str(steps), "--mixed_precision", precision, "--tp", str(tp), *TRAIN_ARGS]
    if ep > 1:
        args += ["--ep", str(ep)]
    wrapper = str(REPO / "benchmarks" / "_step_cpu.py")  # records each step's process CPU time
    if backend == "torch" and tp * dp == 1:
        return [PY, wrapper, "tools/train.py", *args]
    # real torch: the legacy launcher of torch; shim: the same command served by the facade's launcher. DP is what
    # the processes left over by TP make (tools/train.py: world size / (TP x PP)).
    return [PY, "-m", "torch.distributed.launch", "--nproc_per_node", str(tp * dp), "--master_port",
            str(_free_port()), wrapper, "tools/train.py", *args]


def run_train(backend: str, tp: int, precision: str, steps: int, warmup: int, inputs: dict, work: Path,
              timeout: float, base_repo: Path | None = None, dp: int = 1, tag: str = "", ep: int = 1) -> dict:
    """One tools/train.py run; returns its row (median step time over steps > warmup, tokens/s, peak memory).

    backend: "torch" (real torch), "shim" (this checkout's facade in its default configuration),
    "shim-async" (the same with SHIM_SYNC_DISPATCH=0, MindSpore's asynchronous dispatch), "shim-sync" (with
    SHIM_SYNC_DISPATCH=1, the CPU default, shim/torch/_dispatch.py) or "shim-base" (the facade of another checkout,
    `base_repo`, e.g. `git archive` of an older commit, default configuration: its tools/, qwen_sft/ and shim/ are
    used, for before/after comparisons in one session). ``dp``: data-parallel processes (TP x DP in all); ``ep``:
    expert-parallel size (`--ep`, dividing DP)."""
    out = work / f"{backend}_tp{tp}_dp{dp}_ep{ep}_{precision}{tag}"
    repo = REPO
    if backend == "shim-base":
        if base_repo is None or not (Path(base_repo) / "shim").is_dir():
            raise ValueError(f"backend shim-base needs --base_repo pointing at a checkout with shim/, got {base_repo}")
        repo = Path(base_repo).resolve()
    load0, t0 = _load(), time.time()
    env = _env(backend != "torch", repo)
    env.pop("SHIM_SYNC_DISPATCH", None)
    if backend in ("shim-sync", "shim-async"):
        env["SHIM_SYNC_DISPATCH"] = "1" if backend == "shim-sync" else "0"
    cpu_tag = f"{backend}_tp{tp}_dp{dp}_ep{ep}_{precision}{tag}"
    env["BENCH_STEP_CPU_OUT"] = str(work / f"cpu_{cpu_tag}")
    r = subprocess.run(_train_cmd(backend, tp, precision, steps, inputs, out, dp, ep), cwd=repo,
                       env=env, capture_output=True, text=True, timeout=timeout)
    wall, load1 = time.time() - t0, _load()
    _check(r, f"{backend} {layout_name(tp, dp, ep)} {precision}")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in records if x["kind"] == "train"]
    measured = [x for x in train if x["step"] > warmup]
    if not measured:
        raise RuntimeError(f"--steps {steps} leaves no step after --warmup_steps {warmup}")
    time_s = sum(x["step_time_s"] for x in measured)
    peaks = {k: max(x[k] for x in train if k in x) for k in {k for x in train for k in x if k.startswith("peak_")}}
    cpu: dict[int, float] = {}  # step -> CPU seconds summed over the ranks
    memory = []  # rank 0's memory after each step (benchmarks/_step_cpu.py's fields)
    for f in work.glob(f"cpu_{cpu_tag}.rank*.jsonl"):
        for rec in map(json.loads, f.read_text().splitlines()):
            cpu[rec["step"]] = cpu.get(rec["step"], 0.0) + rec["cpu_s"]
            if f.name.endswith(".rank0.jsonl"):
                memory.append({k: v for k, v in rec.items() if k not in ("cpu_s", "wall_s")})
    cpu_measured = [v for k, v in cpu.items() if k > warmup]
    return {"backend": backend, "tp": tp, "dp": dp, "ep": ep, "precision": precision, "steps": len(measured),
            "median_step_s": statistics.median(x["step_time_s"] for x in measured),
            "median_step_cpu_s": statistics.median(cpu_measured) if cpu_measured else None,
            "step_times_s": [x["step_time_s"] for x in train],
            "learnable_tokens_per_s": sum(x["learnable_tokens"] for x in measured) / time_s,
            "total_tokens_per_s": sum(x["total_tokens"] for x in measured) / time_s,
            "peak": peaks, "peak_by_step": [max((x[k] for k in x if k.startswith("peak_")), default=None)
                                            for x in train], "losses": [x["loss"] for x in train], "load_before": load0, "load_after": load1,
            "memory_by_step": sorted(memory, key=lambda m: m["step"]), "wall_s": wall}


MEMORY_FIELDS = (("hwm_mib", "peak RSS MiB"), ("rss_mib", "RSS MiB"), ("anon_mib", "anon MiB"),
                 ("file_mib", "file MiB"), ("py_blocks", "Python blocks"))


def format_memory(row: dict, every: int = 10) -> str:
    """Rank 0's memory after step 1, 5, and every `every`-th step of one run (`memory_by_step`), one line per
    field, then the growth per step from the warm-up's end (step 30, or the middle of a shorter run) to the last
    step."""
    mem = row["memory_by_step"]
    if not mem:
        return f"{row['backend']}: no memory records"
    picks = [m for m in mem if m["step"] in (1, 5) or m["step"] % every == 0 or m is mem[-1]]
    head = f"{'rank 0 after step':18s}" + "".join(f"{m['step']:>9d}" for m in picks)
    lines = [f"{row['backend']} {layout_name(row['tp'], row['dp'], row['ep'])} {row['precision']}", head]
    settled = next((m for m in mem if m["step"] >= min(30, mem[-1]["step"] // 2)), mem[0])
    span = mem[-1]["step"] - settled["step"]
    for key, label in MEMORY_FIELDS:
        if key not in mem[-1]:
            continue
        vals = "".join(f"{m[key]:>9.0f}" if key == "py_blocks" else f"{m[key]:>9.1f}" for m in picks)
        rate = (mem[-1][key] - settled[key]) / span if span else 0.0
        lines.append(f"{label:18s}{vals}   {rate:+.3f}/step after step {settled['step']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# the tiny step written directly (bench_shim_step's builders with the tiny configuration)


def _step_child(mode: str, steps: int, warmup: int) -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_shim_step as b

    if mode == "native":
        step = b.build_native(TINY_STEP_CFG)
    elif mode == "shim-plain":
        import shim.torch as torch
        step = b.build_torch_style(torch, TINY_STEP_CFG)
    elif mode == "torch-plain":
        import torch
        step = b.build_torch_style(torch, TINY_STEP_CFG)
    else:
        raise ValueError(f"unknown step mode {mode!r} (expected native, shim-plain or torch-plain)")
    times, cpu, first = [], [], None
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        if first is None:
            first = loss
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"median_step_s": statistics.median(times), "median_step_cpu_s": statistics.median(cpu),
            "first_loss": first}


def run_step_mode(mode: str, steps: int, warmup: int, timeout: float) -> dict:
    load0 = _load()
    env = _env(False)
    r = subprocess.run([PY, os.path.abspath(__file__), "--_step_child", mode, "--steps", str(steps),
                        "--warmup_steps", str(warmup)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=timeout)
    _check(r, f"step mode {mode}")
    row = json.loads(r.stdout.strip().splitlines()[-1])
    row.update(backend=mode, tp=1, precision="fp32", steps=steps, load_before=load0, load_after=_load(),
               learnable_tokens_per_s=None, total_tokens_per_s=TINY_STEP_CFG["batch"] * TINY_STEP_CFG["seq"]
               / row["median_step_s"], peak={})
    return row


# ----------------------------------------------------------------------------------------------------------
# profile


_CATEGORIES = (  # (name, predicate on (file, function name)); first match wins
    # socket waits are the collectives' (the host transport's and the store's), hence first
    ("collectives (shim/_comm; socket waits included: time waiting for the peers)", lambda f, n: "/shim/_comm/" in f
     or n in ("<method 'poll' of 'select.epoll' objects>", "<method 'poll' of 'select.poll' objects>",
              "<method 'recv_into' of '_socket.socket' objects>",
              "<method 'send' of '_socket.socket' objects>")),
    ("autograd backward (MindSpore run_backward, incl. its kernels)", lambda f, n: "run_backward" in n),
    ("host syncs (asnumpy / item / setitem write-backs)",
     lambda f, n: "asnumpy" in n or "setitem_index_info" in n or "_data_ptr" in n),
    ("framework op execution (MindSpore pyboost / primitives / tensor methods; torch builtins)",
     lambda f, n: f == "~" or "/mindspore/" in f),
    ("facade Python (shim/torch; includes ops run through Tensor operators)", lambda f, n: "/shim/" in f),
    ("megatron-core Python", lambda f, n: "/megatron/" in f),
    ("training loop (qwen_sft, tools)", lambda f, n: "/qwen_sft/" in f or "/tools/" in f),
)


def summarize_profile(path: str, top: int = 25) -> str:
    """Text summary of a pstats file: time per category (own time) and the top functions by own time."""
    import pstats

    st = pstats.Stats(path)
    total = sum(v[2] for v in st.stats.values())
    cats: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        cat = next((c for c, pred in _CATEGORIES if pred(file, name)), "other Python (numpy, stdlib, ...)")
        cats[cat] = cats.get(cat, 0.0) + tt
    lines = [f"profiled time {total:.2f} s, {sum(v[1] for v in st.stats.values())} calls"]
    for cat, t in sorted(cats.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {t:8.2f} s {100 * t / total:5.1f}%  {cat}")
    lines.append(f"top {top} functions by own time:")
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, name), (_cc, nc, tt, ct, _callers) in rows:
        where = name if file == "~" else f"{Path(file).parent.name}/{Path(file).name}:{line}({name})"
        lines.append(f"  {tt:8.2f} s own {ct:8.2f} s cum {nc:7d} calls  {where}")
    return "\n".join(lines)


def _profile_child(prof_out: str, warmup: int, blocking: bool, train_argv: list[str]) -> None:
    """Runs in the shim process: tools/train.py with cProfile around the measured train steps."""
    import cProfile
    import runpy

    if blocking and os.environ.get("SHIM_BACKEND") == "mindspore":
        import mindspore
        mindspore.runtime.launch_blocking()
    from qwen_sft import training

    prof = cProfile.Profile()
    inner = training._Trainer.train_step

    def train_step(self):
        if self.step >= warmup:
            prof.enable()
            try:
                return inner(self)
            finally:
                prof.disable()
        return inner(self)

    training._Trainer.train_step = train_step
    sys.argv = train_argv
    if os.environ.get("WORLD_SIZE", "1") != "1":  # one profile per rank
        prof_out = f"{prof_out}.rank{os.environ['RANK']}"
    try:
        runpy.run_path(train_argv[0], run_name="__main__")
    finally:
        prof.dump_stats(prof_out)


def run_profile(args, inputs: dict, work: Path) -> str:
    out = work / "profile_run"
    prof = args.profile_out or str(work / "shim_step.prof")
    tp, dp, ep = args.profile_layout
    train_argv = ["tools/train.py", "--model_path", inputs["model"], "--data_path", inputs["data"], "--output_path",
                  str(out), "--train_iters", str(args.steps), "--mixed_precision", "fp32", "--tp", str(tp),
                  *TRAIN_ARGS, *(["--ep", str(ep)] if ep > 1 else [])]
    cmd = [PY, os.path.abspath(__file__), "--_profile_child", prof, "--warmup_steps", str(args.warmup_steps),
           *(["--blocking"] if args.blocking else ["--no-blocking"]), "--", *train_argv]
    if tp * dp > 1:  # every rank profiles itself (PROF.rank<N>)
        cmd = [PY, "-m", "torch.distributed.run", "--nproc-per-node", str(tp * dp), "--master-port",
               str(_free_port()), *cmd[1:]]
    load0 = _load()
    shim = args.profile_backend == "shim"
    r = subprocess.run(cmd, cwd=REPO, env=_env(shim), capture_output=True, text=True, timeout=args.timeout)
    _check(r, "profile run")
    train = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step_time_s"] for x in train if x["kind"] == "train" and x["step"] > args.warmup_steps]
    head = (f"{args.profile_backend} {layout_name(tp, dp, ep)} fp32, profiled steps {len(steps)} (after {args.warmup_steps} warm-up), step times "
            f"{', '.join(f'{s:.2f}' for s in steps)} s (under cProfile{', launch_blocking' if args.blocking and shim else ''}), "
            f"load average {load0:.1f} -> {_load():.1f}")
    if tp * dp == 1:
        return head + "\n" + summarize_profile(prof, args.profile_top)
    return head + "".join(f"\n--- rank {r}\n" + summarize_profile(f"{prof}.rank{r}", args.profile_top)
                          for r in range(tp * dp))


# ----------------------------------------------------------------------------------------------------------


def format_table(rows: list[dict]) -> str:
    hdr = (f"{'backend':<12}{'layout':<18}{'prec':<6}{'steps':>6}{'median step s':>15}{'CPU s/step':>12}"
           f"{'learn tok/s':>13}{'total tok/s':>13}{'peak MiB':>10}{'load before/after':>19}")
    out = [hdr]
    for r in rows:
        peak = max(r["peak"].values()) if r["peak"] else None
        learn = f"{r['learnable_tokens_per_s']:.1f}" if r["learnable_tokens_per_s"] is not None else "-"
        cpu = f"{r['median_step_cpu_s']:.2f}" if r.get("median_step_cpu_s") is not None else "-"
        out.append(f"{r['backend']:<12}{layout_name(r['tp'], r.get('dp', 1), r.get('ep', 1)):<18}{r['precision']:<6}{r['steps']:>6}"
                   f"{r['median_step_s']:>15.3f}{cpu:>12}{learn:>13}{r['total_tokens_per_s']:>13.1f}"
                   f"{(f'{peak:.0f}' if peak is not None else '-'):>10}"
                   f"{r['load_before']:>10.1f} / {r['load_after']:<6.1f}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4, help="train steps per run (default 4)")
    p.add_argument("--warmup_steps", type=int, default=1, help="first steps left out of the statistics (default 1)")
    p.add_argument("--layouts", type=parse_layout, nargs="+", default=[(1, 1, 1), (2, 1, 1), (1, 2, 1)],
                   help="tpN / dpN / epN / tpNdpMepK (processes = TP x DP; epN alone: DP = N); default tp1 tp2 dp2")
    p.add_argument("--family", "--model", dest="family", choices=FAMILIES, default="qwen2",
                   help="tiny model family (make_tiny_model.py --model_type); default qwen2")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every backend this many times per layout, alternately (the table shows each run)")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    p.add_argument("--backends", nargs="+", default=["torch", "shim"],
                   choices=("torch", "shim", "shim-sync", "shim-async", "shim-base"),
                   help="shim: the facade's default configuration; shim-sync / shim-async: SHIM_SYNC_DISPATCH=1 / 0 "
                        "(synchronous / asynchronous MindSpore dispatch); shim-base: the facade of --base_repo in "
                        "its default configuration (before/after comparisons)")
    p.add_argument("--base_repo", default=None, help="checkout used by the shim-base backend")
    p.add_argument("--native", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the tiny step hand-written (native MindSpore / facade / torch), fp32")
    p.add_argument("--profile", action="store_true", help="profile one fp32 run instead (--profile_layout, --profile_backend)")
    p.add_argument("--profile_layout", type=parse_layout, default=(1, 1, 1),
                   help="layout of the profiled run (tp1)")
    p.add_argument("--blocking", action=argparse.BooleanOptionalAction, default=True,
                   help="profile with mindspore.runtime.launch_blocking() (kernel time charged to its op)")
    p.add_argument("--profile_backend", choices=("shim", "torch"), default="shim",
                   help="backend of the profiled run (shim; torch profiles the reference run the same way, for a "
                        "side-by-side of where a step goes)")
    p.add_argument("--profile_top", type=int, default=25)
    p.add_argument("--profile_out", default=None, help="keep the pstats file here")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--memory_table", action="store_true",
                   help="also print each run's rank-0 memory by step (peak and current RSS, anonymous and "
                        "file-backed RSS, Python blocks) and its growth per step after warm-up")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    p.add_argument("--_step_child", help=argparse.SUPPRESS)
    p.add_argument("--_profile_child", help=argparse.SUPPRESS)
    p.add_argument("train_argv", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._step_child:
        print(json.dumps(_step_child(args._step_child, args.steps, args.warmup_steps)))
        return 0
    if args._profile_child:
        _profile_child(args._profile_child, args.warmup_steps, args.blocking, args.train_argv)
        return 0
    if args.steps <= args.warmup_steps:
        p.error("--steps must exceed --warmup_steps")
    with tempfile.TemporaryDirectory(prefix="bench_megatron_shim_") as tmp:
        work = Path(tmp)
        if any(ep > 1 for _, _, ep in [*args.layouts, args.profile_layout]) and args.family not in (
                "mixtral", "qwen2_moe"):
            p.error(f"an epN layout needs an MoE --family (mixtral, qwen2_moe), not {args.family}")
        inputs = prepare(work, args.family)
        print(f"data: {inputs['source']}; {os.cpu_count()} CPUs; load average at start {_load():.1f}", flush=True)
        if args.profile:
            print(run_profile(args, inputs, work))
            return 0
        rows = []
        for precision in args.precision:
            for tp, dp, ep in args.layouts:
                for i in range(args.rounds):
                    for backend in args.backends:
                        row = run_train(backend, tp, precision, args.steps, args.warmup_steps, inputs, work,
                                        args.timeout, args.base_repo, dp=dp, tag=f"_r{i}", ep=ep)
                        rows.append(row)
                        print(format_table([row]).splitlines()[-1], flush=True)
        if args.native and "fp32" in args.precision and args.family == "qwen2":  # the hand-written step is Qwen2
            for mode in ("torch-plain", "native", "shim-plain"):
                rows.append(run_step_mode(mode, max(args.steps - args.warmup_steps, 1), args.warmup_steps,
                                          args.timeout))
                print(format_table([rows[-1]]).splitlines()[-1], flush=True)
    shape = {"qwen2": "Qwen2", "llama": "Llama", "qwen3": "Qwen3", "mixtral": "Mixtral, 4 experts top-2",
             "qwen2_moe": "Qwen2-MoE, 4 experts top-2 + shared expert"}[args.family]
    print(f"\ntools/train.py, tiny untied {shape} (hidden 64, 2 layers, vocab 151665), seq 64, global batch 2 "
          f"(2 x micro-batch 1); median of {args.steps - args.warmup_steps} steps after {args.warmup_steps} warm-up")
    print(format_table(rows))
    if any(r["backend"] in ("torch-plain", "native", "shim-plain") for r in rows):
        print("(*-plain / native: the same tiny model's step hand-written in one process, bench_shim_step.py builders; "
              "total tok/s = 128 tokens per step)")
    if args.memory_table:
        for row in rows:
            if "memory_by_step" in row:
                print("\n" + format_memory(row))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
