"""Acceptance: HF transformers (as installed) runs unmodified under ``SHIM_BACKEND=mindspore``.

tests/shim/scripts/hf_tiny.py is run on real torch and under the shim for tiny ``Qwen2ForCausalLM`` and
``LlamaForCausalLM`` (hidden 32, 2 layers, vocab 128): ``from_pretrained`` of the directory real torch saved,
forward with labels, backward, one ``torch.optim.AdamW`` step, ``generate`` (greedy; sampling after
``torch.manual_seed``) and ``save_pretrained``, whose output real torch then loads back. Compared: loss (fp32,
1e-5 relative), every gradient and updated weight (1e-5 relative to the tensor's largest magnitude), greedy
and sampled tokens (equal), and the re-loaded weights (equal to the shim's updated weights, bit for bit). ``transformers.Trainer`` (with
accelerate) runs 3 steps on an in-memory dataset in one process on both; its logged losses, grad norms,
learning rates and final weights are compared the same way.

Adam's first step is ``lr * g / (|g| + eps)`` per element, whose derivative in ``g`` is
``lr * eps / (|g| + eps)**2``: for gradients near ``eps`` (1e-8; HF's k_proj bias gradient is analytically zero,
rounding noise on both backends) a gradient difference far inside the 1e-5 tolerance moves the step by a visible
amount. Each updated weight is therefore held to ``1e-5 * max|w| + 2 * lr * eps * |g_ref - g_shim| /
(min(|g_ref|, |g_shim|) + eps)**2`` — the tolerance plus what the measured gradient difference explains.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

SCRIPT = Path(__file__).parent / "scripts" / "hf_tiny.py"
ARCHS = ("qwen2", "llama")
TOL = 1e-5
LR = 1e-2
EPS = 1e-8  # torch.optim.AdamW default


def _run(args, shim: bool, cwd, timeout=600):
    env = dict(os.environ)
    env.pop("SHIM_BACKEND", None)
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    init, ref, shim, back = root / "init", root / "ref", root / "shim", root / "back"
    _run(["init", "--dir", str(init)], False, root)
    _run(["run", "--dir", str(init), "--out", str(ref)], False, root)
    _run(["run", "--dir", str(init), "--out", str(shim)], True, root)
    _run(["load", "--dir", str(shim), "--out", str(back)], False, root)  # real torch reads the shim's save
    _run(["trainer", "--archs", "qwen2", "--dir", str(init), "--out", str(ref)], False, root)
    _run(["trainer", "--archs", "qwen2", "--dir", str(init), "--out", str(shim)], True, root)
    return root


def _result(root, side, arch):
    return json.loads((root / side / arch / "result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_loss_and_tokens_match_real_torch(runs, arch):
    ref, got = _result(runs, "ref", arch), _result(runs, "shim", arch)
    assert got["torch_version"].endswith("+mindspore") and not ref["torch_version"].endswith("+mindspore")
    for key in ("loss", "loss_after_step"):
        assert abs(got[key] - ref[key]) <= TOL * abs(ref[key]), (key, got[key], ref[key])
    assert ref["loss_after_step"] < ref["loss"]  # the step trained
    assert got["logits_shape"] == ref["logits_shape"] == [2, 8, 128]
    assert got["greedy"] == ref["greedy"] and len(ref["greedy"][0]) == 12
    assert got["sampled"] == ref["sampled"]
    assert ref["sampled"] != ref["greedy"]  # sampling really sampled


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_and_adamw_step_match_real_torch(runs, arch):
    ref = np.load(runs / "ref" / arch / "arrays.npz")
    got = np.load(runs / "shim" / arch / "arrays.npz")
    assert sorted(ref.files) == sorted(got.files) and len(ref.files) > 20
    for key in ref.files:
        x, y = ref[key], got[key]
        assert x.shape == y.shape, key
        scale = float(np.abs(x).max())
        diff = np.abs(x - y)
        if key.startswith("grad/"):
            assert scale > 0 and float(diff.max()) <= TOL * scale, (key, float(diff.max()), scale)
            continue
        g_ref, g_got = ref["grad/" + key[len("weight/"):]], got["grad/" + key[len("weight/"):]]
        explained = 2 * LR * EPS * np.abs(g_ref - g_got) / (np.minimum(np.abs(g_ref), np.abs(g_got)) + EPS) ** 2
        excess = diff - (TOL * scale + explained)
        assert float(excess.max()) <= 0, (key, float(diff.max()), scale)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_save_pretrained_under_shim_loads_in_real_torch(runs, arch):
    back = np.load(runs / "back" / f"{arch}.npz")
    got = np.load(runs / "shim" / arch / "arrays.npz")
    for name in back.files:
        np.testing.assert_array_equal(back[name], got["weight/" + name], err_msg=name)
    assert len(back.files) == len([k for k in got.files if k.startswith("weight/")])


@pytest.mark.slow
def test_trainer_steps_match_real_torch(runs):
    ref = json.loads((runs / "ref" / "qwen2" / "trainer.json").read_text())
    got = json.loads((runs / "shim" / "qwen2" / "trainer.json").read_text())
    assert got["torch_version"].endswith("+mindspore")
    assert len(got["losses"]) == len(ref["losses"]) == 3
    for key in ("losses", "grad_norms"):
        for a, b in zip(got[key], ref[key]):
            assert abs(a - b) <= TOL * abs(b), (key, got[key], ref[key])
    assert got["lrs"] == ref["lrs"]
    assert ref["losses"][-1] < ref["losses"][0]
    # Trainer does not expose its gradients, so the Adam-amplification bound of the model test cannot be
    # computed per element here: elements with near-zero gradients (there measured and explained) may move by
    # more than 1e-5. Held: at most 2% of each tensor's first 64 elements beyond 1e-5 of its largest magnitude,
    # and every element within 1e-3 of it; k_proj.bias (analytically zero gradient: a key bias adds the same
    # q.b to every score of a query, which softmax cancels) only within the 3 steps' reach, 3 * lr.
    for name, w in ref["weights"].items():
        w, g = np.array(w), np.array(got["weights"][name])
        diff, scale = np.abs(w - g), np.abs(w).max()
        if name.endswith("k_proj.bias"):
            assert diff.max() <= 3 * LR, name
            continue
        assert (diff > TOL * scale).mean() <= 0.02 and diff.max() <= 1e-3 * scale, (name, diff.max(), scale)
