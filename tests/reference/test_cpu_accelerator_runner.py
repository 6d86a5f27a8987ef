"""`python -m qwen_sft.cpu_accelerator SCRIPT.py args...`: any script, unmodified, on CPU-only real torch with its
CUDA calls mapped to the CPU (the reference runner of issue 10), also under torchrun (`-m qwen_sft.cpu_accelerator`).

The probe script below is what a CUDA program does (asserts `torch.cuda.is_available()` as Megatron-LM's
`initialize_megatron` does, `device="cuda"` factories, `.cuda()`, `torch.cuda` RNG and streams) and reports what it
saw; megatron's Triton-only module comes from megatron_patches' stand-in.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import free_port
from tests.helpers.session_run import run_in_session

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the runner maps CUDA only on a CPU-only torch")

_PROBE = r'''
import json, os, sys
import torch


def spawned_child(queue):
    # runs in a process started with multiprocessing's spawn method (a fresh interpreter that re-imports
    # this script as __mp_main__): the runner must be set up there too
    from megatron.core.transformer.custom_layers import batch_invariant_kernels as bik
    queue.put({"available": torch.cuda.is_available(), "device": str(torch.ones(1, device="cuda").device),
               "type": torch.ones(1).cuda().type(), "bik_enabled": bik.is_batch_invariant_mode_enabled()})


if __name__ == "__main__":
    assert torch.cuda.is_available(), "Megatron requires CUDA."
    out = {"name": __name__, "argv": sys.argv[1:], "path0": sys.path[0]}
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    x = torch.arange(4.0, device="cuda") + torch.ones(4).cuda()
    out["device"] = str(x.device)
    out["value"] = x.tolist()
    out["type"] = x.type()
    torch.cuda.manual_seed(11)
    state = torch.cuda.get_rng_state()
    a = torch.rand(3, device="cuda")
    torch.cuda.set_rng_state(state)
    out["rng_repeats"] = bool(torch.equal(a, torch.rand(3, device="cuda")))
    torch.cuda.current_stream().wait_stream(torch.cuda.current_stream())
    torch.cuda.synchronize()
    # Megatron-LM's get_device_arch_version(): torch's get_device_properties checks isinstance(d, torch.cuda.device)
    props = torch.cuda.get_device_properties(torch.device("cuda:0"))
    with torch.cuda.device(0) as ctx:
        out["device_ctx"] = isinstance(ctx, torch.cuda.device)
    out["capability"] = [props.major, props.minor, list(torch.cuda.get_device_capability())]
    out["total_memory_positive"] = props.total_memory > 0
    # Megatron-LM's text-generation server: timing events, a sampling generator on the device, the model run on an
    # HTTP request thread, megatron's `tensor.is_cuda` assert before its broadcasts
    import threading, time
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    time.sleep(0.02)
    end.record()
    end.synchronize()
    out["event_ms_at_least_20"] = start.elapsed_time(end) >= 20.0
    gen = torch.Generator(device=torch.cuda.current_device())
    out["generator"] = [str(gen.device), isinstance(gen, torch.Generator)]
    seen = {}
    worker = threading.Thread(target=lambda: seen.update(device=str(torch.zeros(1, device="cuda").device)))
    worker.start()
    worker.join()
    out["thread_device"] = seen.get("device")
    from megatron.core.inference import communication_utils
    communication_utils._is_cuda_contiguous(torch.ones(2, device="cuda"))
    from megatron.core.transformer.custom_layers import batch_invariant_kernels as bik
    out["bik_enabled"] = bik.is_batch_invariant_mode_enabled()
    try:
        bik.enable_batch_invariant_mode()
    except NotImplementedError as e:
        out["bik_error"] = str(e)
    if "RANK" in os.environ:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        t = torch.full((2,), float(dist.get_rank() + 1), device="cuda")
        dist.all_reduce(t)
        out["all_reduce"] = t.tolist()
        out["rank"] = dist.get_rank()
        # megatron's pipeline schedules: isend a stage's output, pseudo-free it (`.data = empty(1)`), wait later
        x = torch.arange(4096.0, device="cuda") * 3
        if dist.get_rank() == 0:
            ptr = x.data_ptr()
            work = dist.isend(x, 1)
            x.data = torch.empty((1,), device="cuda")
            junk = [torch.full((4096,), -1.0) for _ in range(64)]  # would reuse the freed storage
            out["send_keeps_storage"] = work._keep.data_ptr() == ptr
            work.wait()
            out["released_after_wait"] = work._keep is None
        else:
            y = torch.zeros(4096, device="cuda")
            dist.irecv(y, 0).wait()
            out["received_intact"] = bool(torch.equal(y, torch.arange(4096.0) * 3))
        dist.destroy_process_group()
    if os.environ.get("PROBE_SPAWN"):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=spawned_child, args=(queue,))
        child.start()
        out["spawned"] = queue.get(timeout=180)
        child.join(60)
        out["spawned_exit"] = child.exitcode
    if os.environ.get("PROBE_DIR"):  # one file per rank: ranks share stdout under torchrun
        with open(os.path.join(os.environ["PROBE_DIR"], f"rank{os.environ.get('RANK', '0')}.json"), "w") as f:
            json.dump(out, f)
    else:
        print("PROBE " + json.dumps(out))
    sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
'''


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SHIM_BACKEND")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _probes(stdout: str) -> list[dict]:
    return [json.loads(ln[len("PROBE "):]) for ln in stdout.splitlines() if ln.startswith("PROBE ")]


def _check_probe(out: dict, script: Path) -> None:
    assert out["name"] == "__main__" and out["path0"] == str(script.parent)
    assert out["device"] == "cpu" and out["value"] == [1.0, 2.0, 3.0, 4.0]
    assert out["type"] == "torch.cuda.FloatTensor" and out["rng_repeats"] is True
    assert out["device_ctx"] is True and out["capability"] == [0, 0, [0, 0]] and out["total_memory_positive"]
    assert out["bik_enabled"] is False and "--batch-invariant-mode" in out["bik_error"]
    assert "triton" in out["bik_error"]
    assert out["event_ms_at_least_20"] is True and out["generator"] == ["cpu", True]
    assert out["thread_device"] == "cpu"


def test_runner_runs_a_cuda_script_on_the_cpu(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    r = subprocess.run([PY, "-m", "qwen_sft.cpu_accelerator", str(script), "a", "--b=1"], cwd=tmp_path,
                       env=_env(PROBE_SPAWN="1"), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    (out,) = _probes(r.stdout)
    assert out["argv"] == ["a", "--b=1"]
    _check_probe(out, script)
    # a child started with the spawn method (a fresh interpreter importing the script as __mp_main__, as
    # megatron-core's torch_dist writer starts its Manager) runs under the runner too: mapping and stand-ins
    assert out["spawned"] == {"available": True, "device": "cpu", "type": "torch.cuda.FloatTensor",
                              "bik_enabled": False} and out["spawned_exit"] == 0, out
    # Without the runner the same script stops at the assert, as Megatron-LM does on real torch here.
    plain = subprocess.run([PY, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=240)
    assert plain.returncode != 0 and "Megatron requires CUDA." in plain.stderr


def test_runner_exit_status_module_form_and_usage(tmp_path):
    (tmp_path / "probe_mod.py").write_text(_PROBE)
    r = subprocess.run([PY, "-m", "qwen_sft.cpu_accelerator", "-m", "probe_mod", "x"], cwd=tmp_path,
                       env=_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}", PROBE_EXIT="3"), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 3, r.stderr[-4000:]  # the program's own sys.exit status
    (out,) = _probes(r.stdout)
    assert out["name"] == "__main__" and out["argv"] == ["x"] and out["device"] == "cpu"
    for args, message in (([], "usage: python -m qwen_sft.cpu_accelerator"),
                          (["missing.py"], "script 'missing.py' not found"),
                          (["-m"], "-m needs a module name")):
        bad = subprocess.run([PY, "-m", "qwen_sft.cpu_accelerator", *args], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)


@pytest.mark.slow
@pytest.mark.multiproc
def test_runner_under_torchrun(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    cmd = [PY, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "qwen_sft.cpu_accelerator", str(script), "--flag"]
    probe_dir = tmp_path / "probes"
    probe_dir.mkdir()
    r = run_in_session(cmd, _env(PROBE_DIR=str(probe_dir)), tmp_path, 300)
    assert r.returncode == 0, r.stdout[-4000:]
    outs = sorted((json.loads(p.read_text()) for p in probe_dir.glob("rank*.json")), key=lambda o: o["rank"])
    assert [o["rank"] for o in outs] == [0, 1]
    for out in outs:
        assert out["argv"] == ["--flag"] and out["all_reduce"] == [3.0, 3.0]
        if out["rank"] == 0:  # the runner's isend keeps the sent storage until wait (pseudo-freed meanwhile)
            assert out["send_keeps_storage"] is True and out["released_after_wait"] is True
        else:
            assert out["received_intact"] is True
        _check_probe(out, script)
