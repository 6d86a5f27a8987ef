"""Acceptance: the unmodified torch script tests/shim/scripts/tiny_transformer.py gives the same 20-step loss
curve on real torch and under ``SHIM_BACKEND=mindspore`` (relative error ≤ 1e-5 per step) from identical
initial
weights (written by the real-torch run to an .npz), including a state_dict save/restore in the middle."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "tiny_transformer.py"
TOLERANCE = 1e-5


def _run(args, env_extra, cwd, timeout=900):
    env = dict(os.environ)
    env.pop("SHIM_BACKEND", None)
    env.update(env_extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    return proc


@pytest.mark.slow
def test_loss_curve_matches_real_torch(tmp_path):
    init = tmp_path / "init.npz"
    ref_out, shim_out = tmp_path / "torch.json", tmp_path / "shim.json"
    _run(["--write-init", str(init), "--out", str(ref_out)], {}, tmp_path)
    _run(["--init", str(init), "--out", str(shim_out)], {"SHIM_BACKEND": "mindspore"}, tmp_path)
    ref = json.loads(ref_out.read_text())
    got = json.loads(shim_out.read_text())
    assert ref["torch_version"].endswith("+cpu") or "mindspore" not in ref["torch_version"]
    assert got["torch_version"].endswith("+mindspore"), got["torch_version"]  # really ran on the facade
    assert len(got["losses"]) == len(ref["losses"]) == 20
    errors = [abs(a - b) / abs(b) for a, b in zip(got["losses"], ref["losses"])]
    assert max(errors) <= TOLERANCE, f"per-step relative loss errors: {errors}"
    norm_errors = [abs(a - b) / abs(b) for a, b in zip(got["grad_norms"], ref["grad_norms"])]
    assert max(norm_errors) <= TOLERANCE, f"grad-norm errors: {norm_errors}"
    assert got["lrs"] == ref["lrs"]
    assert got["restored_max_abs_diff"] == 0.0 and ref["restored_max_abs_diff"] == 0.0
    assert ref["losses"][-1] < ref["losses"][0]  # it actually trains
