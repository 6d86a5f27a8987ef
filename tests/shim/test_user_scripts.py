"""A small CNN and a small transformer language model, written as users write them for real torch
(tests/shim/scripts/small_cnn.py, small_lm.py), run unmodified under ``SHIM_BACKEND=mindspore`` and on real torch
from the same seed: per-step losses within 1e-5 relative, the same predictions / sampled tokens.

The CNN picks its device with torch.accelerator (real torch CPU: ``cpu``; the shim: ``cuda``, its accelerator). The
LM runs under the shim with ``--compile`` (eager under the shim; the real-torch reference runs eagerly too) and
``--logdir`` (a TensorBoard event file read back here); a second shim run with ``--export-onnx`` must stop with the
facade's error naming ``torch.onnx.export``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCRIPTS = Path(__file__).parent / "scripts"
TOLERANCE = 1e-5


def _run(script, args, cwd, shim, expect_ok=True):
    env = dict(os.environ)
    env.pop("SHIM_BACKEND", None)
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if expect_ok:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _rel(a, b):
    return [abs(x - y) / abs(y) for x, y in zip(a, b)]


def test_small_cnn_matches_real_torch(tmp_path):
    _run("small_cnn.py", ["--out", tmp_path / "ref.json"], tmp_path, shim=False)
    _run("small_cnn.py", ["--out", tmp_path / "shim.json"], tmp_path, shim=True)
    ref, got = (json.loads((tmp_path / n).read_text()) for n in ("ref.json", "shim.json"))
    assert got["torch_version"].endswith("+mindspore") and not ref["torch_version"].endswith("+mindspore")
    assert (ref["device"], got["device"]) == ("cpu", "cuda")
    assert len(got["losses"]) == len(ref["losses"]) == 6
    assert max(_rel(got["losses"], ref["losses"])) <= TOLERANCE, (got["losses"], ref["losses"])
    assert got["accuracy"] == ref["accuracy"]


def test_small_lm_matches_real_torch(tmp_path):
    _run("small_lm.py", ["--out", tmp_path / "ref.json"], tmp_path, shim=False)
    _run("small_lm.py", ["--out", tmp_path / "shim.json", "--compile", "--logdir", tmp_path / "tb"], tmp_path,
         shim=True)
    ref, got = (json.loads((tmp_path / n).read_text()) for n in ("ref.json", "shim.json"))
    assert got["torch_version"].endswith("+mindspore")
    assert len(got["losses"]) == len(ref["losses"]) == 6 and ref["losses"][-1] < ref["losses"][0]
    assert max(_rel(got["losses"], ref["losses"])) <= TOLERANCE, (got["losses"], ref["losses"])
    assert got["tokens"] == ref["tokens"]  # Categorical sampling under the same seed
    scalars = EventAccumulator(str(tmp_path / "tb")).Reload().Scalars("train/loss")
    assert [s.step for s in scalars] == list(range(6))
    assert max(_rel([s.value for s in scalars], got["losses"])) <= 1e-7  # stored as float32


def test_small_lm_onnx_export_names_the_api(tmp_path):
    proc = _run("small_lm.py", ["--out", tmp_path / "x.json", "--steps", "1", "--export-onnx", tmp_path / "m.onnx"],
                tmp_path, shim=True, expect_ok=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("shim.torch._unsupported.UnsupportedAPI: torch.onnx.export is not implemented by the shim")
    assert "site-packages/mindspore" not in proc.stderr  # the facade's error, no MindSpore frames
