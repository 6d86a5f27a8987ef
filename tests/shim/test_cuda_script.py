"""The GPU-style script (tests/shim/scripts/gpu_style_script.py) runs unmodified under the shim."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "shim" / "scripts" / "gpu_style_script.py"


def test_gpu_style_script_runs_unmodified_under_the_shim(tmp_path):
    import torch  # real torch, the reference: it reads the checkpoint the script wrote
    out = tmp_path / "result.json"
    env = {**os.environ, "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "shim", "run", str(SCRIPT), "--steps", "8", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["device"] == "cuda:1"  # set_device(local_rank) with LOCAL_RANK=1 of 2
    with open("/proc/cpuinfo") as fh:
        model = next(line.split(":", 1)[1].strip() for line in fh if line.lower().startswith("model name"))
    assert result["device_name"] == model
    assert result["elapsed_ms"] > 0.0 and result["max_memory_allocated"] > 100 * 2 ** 20
    losses = result["losses"]
    assert math.isinf(losses[2]) and all(math.isfinite(v) for i, v in enumerate(losses) if i != 2)
    assert losses[-1] < losses[0]  # it trains
    # under cuda autocast(float16): the Linear runs in float16, mse_loss in float32 (torch's cuda policy)
    assert result["autocast_dtypes"] == [["torch.float16", "torch.float32"]] * len(losses)
    # init 4096, overflow at step 2 -> 2048, four clean steps (3..6) -> 4096 (growth_interval=4)
    assert result["scales"] == [4096.0, 4096.0, 2048.0, 2048.0, 2048.0, 2048.0, 4096.0, 4096.0]
    assert result["scaler_state"] == {"scale": 4096.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                      "growth_interval": 4, "_growth_tracker": 1}
    assert result["checkpoint_roundtrip_equal"] is True
    ckpt = torch.load(tmp_path / "gpu_style.pt", weights_only=True, map_location="cpu")
    assert {k: tuple(v.shape) for k, v in ckpt["model"].items()} == {
        "0.weight": (32, 16), "0.bias": (32,), "2.weight": (1, 32), "2.bias": (1,)}
    assert set(ckpt["optimizer"]["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_module_cuda_moves_parameters_to_the_accelerator():
    import shim.torch as st

    layer = st.nn.Linear(2, 2).cuda()
    assert str(layer.weight.device) == "cuda:0"
    assert layer.weight.type() == "torch.cuda.FloatTensor"
