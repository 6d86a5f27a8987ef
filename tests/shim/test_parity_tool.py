"""The parity tool (`python -m parity`): training runs, checkpoints and generation outputs.

Inputs are hand-made files in the formats `tools/train.py` (metrics.jsonl + manifest.json, field names of
`qwen_sft/run_records.py`) and `tools/generate.py --output_file` write, with known differences; tests assert the
exact first diverging step, per-metric statistics, exit codes 0/1/2 and error messages naming file and line.
"""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from parity import (ParityInputError, Tolerance, compare_checkpoints, compare_generations, compare_runs,
                    load_checkpoint, load_run, parse_tolerance_overrides)
from parity.checkpoints import bf16_bits_to_float32, float32_to_bf16_bits
from parity.cli import main
from parity.metrics import tolerance_for
from parity.records import TRACKER_FILE, Tracker, iteration_dir, read_tracker, sha256_file
from parity.tolerance import check_scalar, compare_arrays
from parity.torch_dist import open_torch_dist

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ fixtures
def train_record(step: int, loss: float, grad_norm: float = 2.5, lr: float = 1e-5, **extra) -> dict:
    """A train record with the fields qwen_sft/run_records.py writes."""
    rec = {"kind": "train", "step": step, "epoch": 0, "consumed_samples": 4 * step, "loss": loss, "lr": lr,
           "grad_norm": grad_norm, "skipped": False, "learnable_tokens": 100 + step, "total_tokens": 300,
           "padded_tokens": 512, "seq_length_padded": 128, "step_time_s": 0.25 * step,
           "learnable_tokens_per_s": 400.0, "total_tokens_per_s": 1200.0, "peak_rss_mib": 900.0 + step}
    rec.update(extra)
    return rec


def manifest(**changes) -> dict:
    m = {"backend": "torch", "versions": {"python": "3.11.9", "torch": "2.13.0", "megatron_core": "0.16.1"},
         "device": {"type": "cpu", "name": "x86_64", "process_group_backend": "gloo"}, "seed": 1234,
         "parallel": {"world_size": 1, "tensor_model_parallel_size": 1, "pipeline_model_parallel_size": 1,
                      "data_parallel_size": 1, "num_microbatches": 4},
         "data": {"path": "/data/a", "train_samples": 40, "meta_sha256": "d" * 64},
         "model": {"path": "/models/a", "kind": "hf", "fingerprint": {"sha256": "m" * 64, "files": 3}},
         "total_steps": 10, "start_step": 0, "config": {"output_path": "/out/a", "seed": 1234,
                                                         "learning_rate": 1e-5}}
    for dotted, value in changes.items():
        node = m
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return m


def write_run(path: Path, records: list[dict], man: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    if man is not None:
        (path / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    return path


def base_losses(n: int = 10) -> list[float]:
    return [10.0 * math.exp(-0.05 * s) + 0.123456789 for s in range(1, n + 1)]


@pytest.fixture
def run_a(tmp_path) -> Path:
    return write_run(tmp_path / "a", [train_record(s, l) for s, l in enumerate(base_losses(), 1)], manifest())


# ------------------------------------------------------------------------------------------------ tolerance
def test_check_scalar_rule():
    tol = Tolerance(atol=1e-4, rtol=0.0)
    assert check_scalar(1.0, 1.0 + 0.5e-4, tol).ok
    c = check_scalar(1.0, 1.0 + 2e-4, tol)
    assert not c.ok and c.abs_diff == pytest.approx(2e-4) and c.rel_diff == pytest.approx(2e-4 / 1.0002)
    assert check_scalar(100.0, 100.05, Tolerance(0.0, 1e-3)).ok          # rel 5e-4 <= 1e-3
    assert not check_scalar(0.01, 0.0101, Tolerance(0.0, 1e-3)).ok       # rel ~9.9e-3
    assert check_scalar(math.nan, math.nan, tol).note == "both NaN"
    nan_one = check_scalar(1.0, math.nan, tol)
    assert not nan_one.ok and nan_one.note == "NaN in B"
    assert check_scalar(math.inf, math.inf, tol).ok and not check_scalar(math.inf, -math.inf, tol).ok
    assert check_scalar(7, 7, Tolerance()).ok and not check_scalar(7, 8, Tolerance()).ok
    assert not check_scalar(None, 1.0, tol).ok and check_scalar(None, None, tol).ok
    assert not check_scalar(False, True, tol).ok
    assert check_scalar(1.0, 2.0, Tolerance(compare=False)).ok           # report-only never fails


def test_parse_tolerance_overrides():
    o = parse_tolerance_overrides(["loss=atol:1e-5,rtol:0", "grad_norm=rtol:1e-2", "lr=off", "epoch=exact",
                                   "step_time_s=atol:1"], tolerance_for)
    assert o["loss"] == Tolerance(1e-5, 0.0)
    assert o["grad_norm"] == Tolerance(0.0, 1e-2)          # atol kept from the default (0)
    assert o["lr"].compare is False
    assert o["epoch"] == Tolerance(0.0, 0.0)
    assert o["step_time_s"] == Tolerance(1.0, 0.0)         # a report-only metric made compared
    for bad in ["loss", "loss=", "loss=atol", "loss=atol:x", "loss=btol:1", "loss=atol:-1"]:
        with pytest.raises(ParityInputError, match="--tol"):
            parse_tolerance_overrides([bad], tolerance_for)


def test_compare_arrays_counts_and_nonfinite():
    a = np.array([1.0, 2.0, np.nan, np.inf, 0.0, 5.0], dtype=np.float32)
    b = np.array([1.0, 2.1, np.nan, np.inf, 1e-7, np.nan], dtype=np.float32)
    d = compare_arrays(a, b, Tolerance(atol=1e-6, rtol=1e-5), chunk_elems=4)
    assert d.numel == 6 and d.mismatches == 2 and d.nonfinite_mismatches == 1 and d.first_mismatch == 1
    assert d.max_abs == pytest.approx(0.1, rel=1e-5)
    ints = compare_arrays(np.array([1, 2, 3]), np.array([1, 2, 4]), Tolerance())
    assert ints.mismatches == 1 and ints.first_mismatch == 2 and ints.max_abs == 1.0


# ------------------------------------------------------------------------------------------------ runs
def test_identical_runs_pass(run_a, tmp_path, capsys):
    b = write_run(tmp_path / "b", [train_record(s, l, step_time_s=9.0, peak_rss_mib=5000.0)
                                   for s, l in enumerate(base_losses(), 1)],
                  manifest(backend="mindspore", versions__torch="2.13.0+mindspore", config__output_path="/out/b"))
    cmp = compare_runs(run_a, b)
    assert cmp.ok and cmp.first_diverging_step is None
    assert cmp.common_steps == {"train": list(range(1, 11))}
    assert not cmp.manifest.warnings
    assert {d.name for d in cmp.manifest.differences} == {"backend", "versions.torch", "config.output_path"}
    reported = {m.name for m in cmp.metrics if not m.tolerance.compare}
    assert reported == {"step_time_s", "learnable_tokens_per_s", "total_tokens_per_s", "peak_rss_mib"}
    assert main(["compare", str(run_a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "expected: backend: A=torch B=mindspore" in out
    assert "OK: " in out and "reported only" in out and "train.peak_rss_mib" in out


def test_first_diverging_step_and_table(run_a, tmp_path, capsys):
    losses = base_losses()
    losses[6] += 1.5e-4            # step 7: outside the default loss atol 1e-4
    losses[7] += 0.5e-4            # step 8: inside
    losses[8] += 3e-4
    gn = [2.5] * 10
    gn[4] = 2.5 * (1 + 2e-3)       # step 5: grad_norm rel 2e-3 > rtol 1e-3
    b = write_run(tmp_path / "b", [train_record(s, l, g) for s, (l, g) in enumerate(zip(losses, gn), 1)],
                  manifest())
    cmp = compare_runs(run_a, b)
    loss = next(m for m in cmp.metrics if m.name == "loss")
    assert [r.step for r in loss.failures] == [7, 9]
    assert loss.max_abs == pytest.approx(3e-4, rel=1e-6)
    assert cmp.first_diverging_step == 5
    assert [m.name for m in cmp.diverging_at(5)] == ["grad_norm"]
    assert not cmp.ok
    assert main(["compare", str(run_a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: first diverging step 5 (train.grad_norm)" in out
    row7 = next(line for line in out.splitlines() if line.strip().startswith("7 ") and "FAIL" in line)
    assert f"{base_losses()[6]:.10g}" in row7 and "1.500e-04" in row7
    # Loosen grad_norm and loss: the remaining failure moves, then disappears.
    assert main(["compare", str(run_a), str(b), "--tol", "grad_norm=rtol:1e-2"]) == 1
    assert "first diverging step 7 (train.loss)" in capsys.readouterr().out
    assert main(["compare", str(run_a), str(b), "--tol", "grad_norm=rtol:1e-2", "--tol", "loss=atol:5e-4"]) == 0
    assert main(["compare", str(run_a), str(b), "--tol", "grad_norm=off", "--tol", "loss=off"]) == 0
    # Tightening works too: step 8 (5e-5) fails under atol 1e-5.
    cmp = compare_runs(run_a, b, tolerances={"loss": Tolerance(1e-5, 0.0), "grad_norm": Tolerance(0.0, 1.0)})
    assert [r.step for r in next(m for m in cmp.metrics if m.name == "loss").failures] == [7, 8, 9]


def test_token_counts_exact_and_lr(run_a, tmp_path):
    recs = [train_record(s, l) for s, l in enumerate(base_losses(), 1)]
    recs[2]["learnable_tokens"] += 1
    recs[3]["lr"] = recs[3]["lr"] * (1 + 1e-7)
    cmp = compare_runs(run_a, write_run(tmp_path / "b", recs, manifest()))
    fails = {m.name: [r.step for r in m.failures] for m in cmp.compared if m.failures}
    assert fails == {"learnable_tokens": [3], "lr": [4]}
    assert cmp.first_diverging_step == 3


def test_nan_handling(tmp_path):
    a = write_run(tmp_path / "a", [train_record(1, 5.0), train_record(2, math.nan), train_record(3, 4.0)])
    b = write_run(tmp_path / "b", [train_record(1, 5.0), train_record(2, math.nan), train_record(3, math.nan)])
    cmp = compare_runs(a, b)
    loss = next(m for m in cmp.metrics if m.name == "loss")
    assert [(r.step, r.check.ok, r.check.note) for r in loss.rows] == [
        (1, True, ""), (2, True, "both NaN"), (3, False, "NaN in B")]
    assert cmp.first_diverging_step == 3
    assert math.isnan(loss.max_abs)


def test_missing_steps_and_fields(run_a, tmp_path, capsys):
    recs = [train_record(s, l) for s, l in enumerate(base_losses(), 1) if s not in (4, 5)]
    recs += [train_record(11, 1.0), train_record(12, 1.0)]
    del recs[0]["grad_norm"]
    b = write_run(tmp_path / "b", recs, manifest())
    cmp = compare_runs(run_a, b)
    assert cmp.only_in_a == {"train": [4, 5]} and cmp.only_in_b == {"train": [11, 12]}
    gn = next(m for m in cmp.metrics if m.name == "grad_norm")
    assert gn.failures[0].step == 1 and gn.failures[0].check.note == "missing in B"
    assert main(["compare", str(run_a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "only in A: 4-5" in out and "only in B: 11-12" in out and "steps present in one run only" in out
    # Without the field difference, --allow-missing-steps accepts the one-sided steps; --steps restricts.
    recs[0]["grad_norm"] = 2.5
    b = write_run(tmp_path / "b2", recs, manifest())
    assert not compare_runs(run_a, b).ok
    assert compare_runs(run_a, b, allow_missing_steps=True).ok
    assert main(["compare", str(run_a), str(b), "--steps", "6:10"]) == 0
    assert main(["compare", str(run_a), str(b), "--steps", "3"]) == 0      # 1:3
    assert main(["compare", str(run_a), str(b), "--steps", "5"]) == 1      # 4-5 only in A


def test_eval_records_compared(tmp_path):
    ev = {"kind": "eval", "step": 2, "valid_loss": 3.0, "valid_ppl": math.exp(3.0), "valid_tokens": 77,
          "valid_samples_used": 8}
    a = write_run(tmp_path / "a", [train_record(1, 5.0), train_record(2, 4.0), ev])
    ev_b = dict(ev, valid_loss=3.001, valid_ppl=math.exp(3.001))
    b = write_run(tmp_path / "b", [train_record(1, 5.0), train_record(2, 4.0), ev_b])
    cmp = compare_runs(a, b)
    assert cmp.common_steps == {"train": [1, 2], "eval": [2]}
    assert {(m.kind, m.name) for m in cmp.compared if m.failures} == {("eval", "valid_loss"), ("eval", "valid_ppl")}


def test_manifest_warnings(run_a, tmp_path, capsys):
    man = manifest(seed=42, parallel__tensor_model_parallel_size=2, model__fingerprint__sha256="x" * 64,
                   data__meta_sha256="e" * 64, backend="mindspore")
    b = write_run(tmp_path / "b", [train_record(s, l) for s, l in enumerate(base_losses(), 1)], man)
    cmp = compare_runs(run_a, b)
    assert {d.name for d in cmp.manifest.warnings} == {"seed", "parallel.tensor_model_parallel_size",
                                                       "model.fingerprint.sha256", "data.meta_sha256"}
    assert cmp.ok                                     # warnings alone do not fail…
    assert main(["compare", str(run_a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: seed: A=1234 B=42" in out and "expected: backend" in out
    assert main(["compare", str(run_a), str(b), "--strict-manifest"]) == 1   # …unless strict


def test_metrics_file_inputs_and_manifest_options(run_a, tmp_path):
    run = load_run(run_a / "metrics.jsonl")
    assert run.manifest_path == run_a / "manifest.json" and run.manifest["seed"] == 1234
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "m.jsonl").write_text((run_a / "metrics.jsonl").read_text())
    assert load_run(lone / "m.jsonl").manifest is None
    cmp = compare_runs(run_a, lone / "m.jsonl")
    assert cmp.ok and "manifest of B absent" in cmp.manifest.notes[0]
    assert main(["compare", str(run_a / "metrics.jsonl"), str(lone / "m.jsonl"),
                 "--manifest-b", str(run_a / "manifest.json")]) == 0


@pytest.mark.parametrize("content,message", [
    (None, "metrics file not found"),
    ('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": \n', "metrics.jsonl:2: invalid JSON"),
    ('{"step": 1}\n[1, 2]\n', "metrics.jsonl:2: expected a JSON object"),
    ('{"loss": 1.0}\n', "metrics.jsonl:1: record has no integer 'step'"),
    ('{"step": 1}\n{"step": 1}\n', "metrics.jsonl:2: duplicate train record for step 1 (first at line 1)"),
    ("\n", "metrics file has no records"),
])
def test_bad_run_inputs_exit_2(run_a, tmp_path, capsys, content, message):
    bad = tmp_path / "bad" / "metrics.jsonl"
    if content is not None:
        bad.parent.mkdir()
        bad.write_text(content)
    with pytest.raises(ParityInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_run(bad)
    assert main(["compare", str(run_a), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message.split(": ", 1)[-1] in err


def test_bad_manifest_and_directory(run_a, tmp_path, capsys):
    d = write_run(tmp_path / "b", [train_record(1, 1.0)])
    (d / "manifest.json").write_text('{"seed": 1,\n "x": }')
    assert main(["compare", str(run_a), str(d)]) == 2
    assert f"{d / 'manifest.json'}:2:" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(run_a), str(tmp_path / "empty")]) == 2
    assert "has no metrics.jsonl" in capsys.readouterr().err
    assert main(["compare", str(run_a), str(run_a), "--steps", "5:1"]) == 2
    with pytest.raises(SystemExit) as exc:          # argparse: bad arguments exit 2
        main(["compare", str(run_a)])
    assert exc.value.code == 2


def test_plot_png_and_json(run_a, tmp_path):
    losses = base_losses()
    losses[5] += 1e-3
    b = write_run(tmp_path / "b", [train_record(s, l) for s, l in enumerate(losses, 1)], manifest())
    png, js = tmp_path / "plots" / "parity.png", tmp_path / "r.json"
    assert main(["compare", str(run_a), str(b), "--plot", str(png), "--json", str(js)]) == 1
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])       # IHDR: 2 metrics x 5.5 in at 100 dpi, 6 in high
    assert (width, height) == (1100, 600)
    import matplotlib.image

    img = matplotlib.image.imread(str(png))
    assert img.shape[:2] == (600, 1100) and float(img.std()) > 0.01      # not a blank canvas
    report = json.loads(js.read_text())
    assert report["ok"] is False and report["first_diverging_step"] == 6
    loss = next(m for m in report["metrics"] if m["name"] == "loss")
    assert loss["failures"] == 1 and loss["max_abs"] == pytest.approx(1e-3, rel=1e-9)
    assert main(["compare", str(run_a), str(b), "--plot", str(png), "--plot-metrics", "nope"]) == 2


def test_cli_module_subprocess_does_not_import_torch(run_a, tmp_path):
    """`python -m parity` in a fresh interpreter: exit codes, and neither torch nor mindspore imported."""
    losses = base_losses()
    losses[2] += 1.0
    b = write_run(tmp_path / "b", [train_record(s, l) for s, l in enumerate(losses, 1)], manifest())
    env = {k: v for k, v in os.environ.items() if k != "SHIM_BACKEND"}
    code = ("import runpy, sys; sys.argv = ['parity'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('parity', run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert 'torch' not in sys.modules and 'mindspore' not in sys.modules, sorted(sys.modules)\n"
            "    raise\n")
    p = subprocess.run([sys.executable, "-c", code, "compare", str(run_a), str(b)], capture_output=True, text=True,
                       env=env, timeout=120, cwd=REPO)
    assert p.returncode == 1, p.stderr
    assert "first diverging step 3 (train.loss)" in p.stdout
    p = subprocess.run([sys.executable, "-m", "parity", "compare", str(run_a), str(tmp_path / "none")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert p.returncode == 2 and "none: metrics file not found" in p.stderr


# ------------------------------------------------------------------------------------------------ checkpoints
def _bf16_file(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write a safetensors file whose float tensors are BF16 (header per the safetensors format)."""
    header, chunks, offset = {}, [], 0
    for name, x in tensors.items():
        raw = float32_to_bf16_bits(x).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(x.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def test_bf16_bit_conversion():
    x = np.array([1.0, -2.5, 3.140625, 0.0, np.inf, 1e-3], dtype=np.float32)
    bits = float32_to_bf16_bits(x)
    assert bits.tolist()[:5] == [0x3F80, 0xC020, 0x4049, 0x0000, 0x7F80]
    back = bf16_bits_to_float32(bits)
    assert back.dtype == np.float32 and back.tolist()[:5] == [1.0, -2.5, 3.140625, 0.0, np.inf]
    assert back[5] == pytest.approx(1e-3, rel=2 ** -8)
    # Round to nearest even: 1 + 2**-8 is a tie between 1 and 1 + 2**-7, goes to 1.
    assert bf16_bits_to_float32(float32_to_bf16_bits(np.array([1 + 2 ** -8], np.float32)))[0] == 1.0


def test_checkpoints_fp32_identical_and_different(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = {"model.embed_tokens.weight": rng.standard_normal((16, 8)).astype(np.float32),
         "model.norm.weight": np.ones(8, np.float32), "step": np.array([3], np.int64)}
    save_file(w, str(tmp_path / "a.safetensors"))
    save_file(w, str(tmp_path / "same.safetensors"))
    assert compare_checkpoints(tmp_path / "a.safetensors", tmp_path / "same.safetensors").ok
    w2 = dict(w)
    w2["model.embed_tokens.weight"] = w["model.embed_tokens.weight"].copy()
    w2["model.embed_tokens.weight"][3, 5] += 1e-3
    w2["model.norm.weight"] = w["model.norm.weight"] + 1e-7        # within fp32 default (atol 1e-6)
    save_file(w2, str(tmp_path / "b.safetensors"))
    cmp = compare_checkpoints(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    t = {x.name: x for x in cmp.tensors}
    emb = t["model.embed_tokens.weight"]
    assert not emb.ok and emb.diff.mismatches == 1 and emb.diff.first_mismatch == 3 * 8 + 5
    assert emb.diff.max_abs == pytest.approx(1e-3, rel=1e-3)
    assert t["model.norm.weight"].ok and t["step"].ok and t["step"].tolerance == Tolerance(0, 0)
    assert main(["compare-checkpoints", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]) == 1
    out = capsys.readouterr().out
    assert "model.embed_tokens.weight" in out and "1/128 outside tolerance" in out and "MISMATCH" in out
    assert main(["compare-checkpoints", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"),
                 "--atol", "2e-3"]) == 0
    assert main(["compare-checkpoints", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"),
                 "--atol", "2e-3", "--exact"]) == 1      # --exact wins: norm's 1e-7 now counts


def test_checkpoints_bf16_sharded_missing_and_shape(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = {f"model.layers.{i}.mlp.weight": rng.standard_normal((4, 6)).astype(np.float32) for i in range(3)}
    base["lm_head.weight"] = rng.standard_normal((10, 6)).astype(np.float32)
    # A: one bf16 file.
    a = tmp_path / "a"
    a.mkdir()
    _bf16_file(a / "model.safetensors", base)
    # B: two bf16 shards with an index; one element moved by one bf16 ulp, one by 4 ulps, lm_head missing,
    # an extra tensor, layer 2 with another shape.
    b = tmp_path / "b"
    b.mkdir()
    moved = dict(base)
    bits = float32_to_bf16_bits(base["model.layers.0.mlp.weight"])
    bits[0, 0] += 1
    bits[1, 1] += 4
    moved["model.layers.0.mlp.weight"] = bf16_bits_to_float32(bits)
    moved["model.layers.2.mlp.weight"] = rng.standard_normal((6, 4)).astype(np.float32)
    moved["extra.bias"] = np.zeros(3, np.float32)
    del moved["lm_head.weight"]
    shard1 = {k: moved[k] for k in ("model.layers.0.mlp.weight", "model.layers.1.mlp.weight")}
    shard2 = {k: moved[k] for k in ("model.layers.2.mlp.weight", "extra.bias")}
    _bf16_file(b / "model-00001-of-00002.safetensors", shard1)
    _bf16_file(b / "model-00002-of-00002.safetensors", shard2 | {"unlisted.w": np.ones(2, np.float32)})
    wm = {k: "model-00001-of-00002.safetensors" for k in shard1} | {k: "model-00002-of-00002.safetensors"
                                                                   for k in shard2}
    (b / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    ck = load_checkpoint(b)
    assert ck.format == "safetensors-sharded" and ck.tensors["extra.bias"].dtype == "bfloat16"
    assert "unlisted.w" not in ck.tensors and ck.notes == [
        "model-00002-of-00002.safetensors: 1 tensor(s) not listed in model.safetensors.index.json, not compared "
        "(first: 'unlisted.w')"]
    vals = ck.tensors["model.layers.0.mlp.weight"].load()
    assert vals.dtype == np.float32 and vals.shape == (4, 6)
    np.testing.assert_array_equal(vals, moved["model.layers.0.mlp.weight"])
    cmp = compare_checkpoints(a, b)
    assert cmp.only_in_a == ["lm_head.weight"] and cmp.only_in_b == ["extra.bias"]
    t = {x.name: x for x in cmp.tensors}
    l0 = t["model.layers.0.mlp.weight"]
    assert l0.diff.mismatches == 1 and l0.diff.first_mismatch == 1 * 6 + 1   # 1 ulp passes, 4 ulps do not
    assert t["model.layers.1.mlp.weight"].ok
    assert t["model.layers.2.mlp.weight"].problems == ["shape [4, 6] vs [6, 4]"]
    assert main(["compare-checkpoints", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "only in A (1): lm_head.weight" in out and "only in B (1): extra.bias" in out
    assert "shape [4, 6] vs [6, 4]" in out and "B: note: model-00002-of-00002.safetensors: 1 tensor(s)" in out
    assert main(["compare-checkpoints", str(a), str(b), "--ignore", "lm_head.*", "--ignore", "extra.*",
                 "--ignore", "model.layers.2.*", "--rtol", "5e-2"]) == 0


def test_checkpoints_dtype_mismatch(tmp_path):
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    save_file({"w": x}, str(tmp_path / "f32.safetensors"))
    _bf16_file(tmp_path / "bf16.safetensors", {"w": x})
    cmp = compare_checkpoints(tmp_path / "f32.safetensors", tmp_path / "bf16.safetensors")
    (t,) = cmp.tensors
    assert t.problems == ["dtype float32 vs bfloat16"] and t.diff.mismatches == 0   # values within bf16 tol
    assert t.tolerance == Tolerance(1e-2, 8e-3)
    assert compare_checkpoints(tmp_path / "f32.safetensors", tmp_path / "bf16.safetensors", ignore_dtype=True).ok


def test_checkpoints_torch_files(tmp_path):
    import torch

    assert not torch.__version__.endswith("+mindspore"), "the test process must hold real torch"
    sd = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
          "b.weight": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16)}
    torch.save(sd, tmp_path / "pytorch_model.bin")
    save_file({"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "x.safetensors"))
    _bf16_file(tmp_path / "y.safetensors", {"b.weight": np.array([1.0, -2.5, 3.140625], np.float32)})
    ck = load_checkpoint(tmp_path / "pytorch_model.bin")
    assert ck.tensors["b.weight"].dtype == "bfloat16"
    assert ck.tensors["b.weight"].load().tolist() == [1.0, -2.5, 3.140625]
    # A .bin against the same tensors in safetensors (a directory of two files), exactly.
    st = tmp_path / "st"
    st.mkdir()
    (tmp_path / "x.safetensors").rename(st / "x.safetensors")
    (tmp_path / "y.safetensors").rename(st / "y.safetensors")
    assert compare_checkpoints(tmp_path / "pytorch_model.bin", st, atol=0, rtol=0).ok
    # Megatron-LM layout: nested dict, non-tensor leaves listed.
    rel = tmp_path / "meg" / "release" / "mp_rank_00"
    rel.mkdir(parents=True)
    torch.save({"model": {"w": torch.ones(2)}, "checkpoint_version": 3.0}, rel / "model_optim_rng.pt")
    (tmp_path / "meg" / "latest_checkpointed_iteration.txt").write_text("release")
    meg = load_checkpoint(tmp_path / "meg")
    assert list(meg.tensors) == ["mp_rank_00/model/w"] and meg.non_tensors == {"mp_rank_00/checkpoint_version":
                                                                                 "float"}


def test_bad_checkpoint_inputs(tmp_path, capsys):
    assert main(["compare-checkpoints", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "nope: checkpoint not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare-checkpoints", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"\x01\x02")
    assert main(["compare-checkpoints", str(tmp_path / "junk.safetensors"), str(tmp_path / "junk.safetensors")]) == 2
    assert "junk.safetensors: not a readable safetensors file" in capsys.readouterr().err
    idx = tmp_path / "sharded"
    idx.mkdir()
    (idx / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "missing.safetensors"}}))
    assert main(["compare-checkpoints", str(idx), str(idx)]) == 2
    assert "shard 'missing.safetensors'" in capsys.readouterr().err
    td = tmp_path / "dist" / "iter_0000005"
    td.mkdir(parents=True)
    (td / "metadata.json").write_text("{}")
    (tmp_path / "dist" / "latest_checkpointed_iteration.txt").write_text("5")
    assert main(["compare-checkpoints", str(tmp_path / "dist"), str(tmp_path / "dist")]) == 2
    assert "torch_dist" in capsys.readouterr().err
    (td / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist"}))
    assert main(["compare-checkpoints", str(tmp_path / "dist"), str(tmp_path / "dist")]) == 2
    assert "iter_0000005: an incomplete torch_dist checkpoint (no .metadata file)" in capsys.readouterr().err
    (td / ".metadata").write_bytes(b"not a pickle")
    for backend in ("torch", "shim"):
        with pytest.raises(ParityInputError, match=r"\.metadata: not a readable DCP metadata file"):
            open_torch_dist(td, backend=backend)
    (tmp_path / "dist" / TRACKER_FILE).write_text("latest")
    assert main(["compare-checkpoints", str(tmp_path / "dist"), str(tmp_path / "dist")]) == 2
    assert "expected 'release' or an iteration number, found 'latest'" in capsys.readouterr().err
    (tmp_path / "dist" / TRACKER_FILE).write_text("6")
    assert main(["compare-checkpoints", str(tmp_path / "dist"), str(tmp_path / "dist")]) == 2
    assert "names 'iter_0000006', which is not a directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ records
def test_sha256_file_known_digests(tmp_path):
    import hashlib

    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_file(str(tmp_path / "abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = bytes(range(256)) * 5000  # > one 1 MiB block
    (tmp_path / "big").write_bytes(big)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(big).hexdigest()
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "missing")


def test_read_tracker_and_iteration_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{TRACKER_FILE}: no Megatron checkpoint tracker file"):
        read_tracker(tmp_path)
    cases = (("12\n", Tracker(12, False)), ("  0 ", Tracker(0, False)), ("release\n", Tracker(None, True)))
    for text, expected in cases:
        (tmp_path / TRACKER_FILE).write_text(text)
        assert read_tracker(tmp_path) == expected
    iteration, release = read_tracker(tmp_path)
    assert iteration_dir(tmp_path, iteration, release) == tmp_path / "release"
    assert iteration_dir(tmp_path, 12) == tmp_path / "iter_0000012"
    for bad in ("", "-3", "1.5", "Release", "７"):
        (tmp_path / TRACKER_FILE).write_text(bad)
        with pytest.raises(ValueError, match="expected 'release' or an iteration number"):
            read_tracker(tmp_path)
    for bad in (None, -1, True, 2.0):
        with pytest.raises(ValueError, match="non-negative int iteration"):
            iteration_dir(tmp_path, bad)


# ------------------------------------------------------------------------------------------------ generations
def gen_record(index: int, out_ids: list[int], stop: str = "stop_token", prompt_ids=(1, 2, 3), text=None) -> dict:
    """A record in tools/generate.py --output_file format."""
    return {"index": index, "model_name": "tiny", "prompt": f"p{index}", "prompt_token_ids": list(prompt_ids),
            "output": text if text is not None else " ".join(map(str, out_ids)), "output_token_ids": out_ids,
            "stop_reason": stop, "stop_token": "<|im_end|>" if stop == "stop_token" else None,
            "num_prompt_tokens": len(prompt_ids), "num_output_tokens": len(out_ids),
            "timings": {"batch_index": 0, "batch_size": 4, "prefill_s": 0.1, "decode_s": 0.5 + index,
                        "tokens_per_s": 10.0},
            "sampling": {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0, "seed": 1234}}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_generations_identical_and_differences(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [gen_record(0, [5, 6, 7, 99]), gen_record(1, [8, 9, 99]),
                                           gen_record(2, [4, 4, 4], "max_new_tokens"), gen_record(3, [1, 99])])
    same = write_jsonl(tmp_path / "same.jsonl", [json.loads(line) for line in a.read_text().splitlines()][::-1])
    assert compare_generations(a, same).ok                     # matched by index, not line order
    assert main(["compare-generations", str(a), str(same)]) == 0
    assert "OK: 4 records identical token by token" in capsys.readouterr().out
    b = write_jsonl(tmp_path / "b.jsonl", [
        gen_record(0, [5, 6, 17, 99]),                          # differs at position 2
        gen_record(1, [8, 9]),  # strict prefix, stopped earlier
        gen_record(2, [4, 4, 4], "max_new_tokens", prompt_ids=(1, 2, 4)),   # prompt differs at 2
        gen_record(4, [1])])                                    # 3 missing, 4 extra
    cmp = compare_generations(a, b)
    by = {r.key: r for r in cmp.records}
    assert (by[0].first_difference, by[0].token_a, by[0].token_b) == (2, 7, 17)
    assert (by[1].first_difference, by[1].token_a, by[1].token_b, by[1].len_a, by[1].len_b) == (2, 99, None, 3, 2)
    assert by[2].first_difference is None and by[2].prompt_difference == 2 and not by[2].ok
    assert cmp.only_in_a == [3] and cmp.only_in_b == [4]
    c = cmp.counts()
    assert (c["compared"], c["identical"], c["output_differs"], c["prompt_differs"]) == (3, 0, 2, 1)
    assert (c["tokens_matching"], c["tokens_total"]) == (2 + 2 + 3, 4 + 3 + 3)
    assert main(["compare-generations", str(a), str(b), "--json", str(tmp_path / "g.json")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: 3 of 3 records differ (first: index 0); 1 only in A, 1 only in B" in out
    assert "prompt differs at 2" in out
    summary = json.loads((tmp_path / "g.json").read_text())
    assert summary["differing"][0] == {"index": 0, "first_difference": 2, "token_a": 7, "token_b": 17, "len_a": 4,
                                       "len_b": 4, "stop_a": "stop_token", "stop_b": "stop_token",
                                       "prompt_difference": None}


def test_generations_stop_reason_and_bad_input(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [gen_record(0, [5, 6])])
    b = write_jsonl(tmp_path / "b.jsonl", [gen_record(0, [5, 6], "seq_length")])
    cmp = compare_generations(a, b)
    assert cmp.counts()["stop_reason_differs"] == 1 and not cmp.ok
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(gen_record(0, [1])) + "\n" + '{"index": 1, "output_token_ids": "abc"}\n')
    assert main(["compare-generations", str(a), str(bad)]) == 2
    assert f"{bad}:2: 'output_token_ids' must be a list of integers" in capsys.readouterr().err
    bad.write_text(json.dumps(gen_record(0, [1])) + "\n{oops\n")
    assert main(["compare-generations", str(a), str(bad)]) == 2
    assert f"{bad}:2: invalid JSON" in capsys.readouterr().err
    assert main(["compare-generations", str(a), str(tmp_path / "missing.jsonl")]) == 2


def test_console_scripts_and_packages_in_pyproject():
    """pyproject.toml's console scripts name importable callables (`shim-parity` -> parity.cli:main) and the
    package list includes the top-level `parity` package (an editable or wheel install would miss it otherwise)."""
    import importlib
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    assert scripts["shim-parity"] == "parity.cli:main"
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
    assert "parity*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
