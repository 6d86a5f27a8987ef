"""`bash scripts/demo.sh`, the README's main-job command, end to end with tiny overrides (DEMO_STEPS=3,
DEMO_SAMPLES=64): demo data, tiny model, data conversion, HF -> Megatron (TP=2), 2-process TP=2 training and the
held-out generations on MindSpore through the shim, the same training on real torch, then the parity verdict,
the loss-curve PNG and runs/demo/REPORT.md.

Checked: exit 0; a progress line for each of the 8 stages in order; the shim run's manifest says backend
"mindspore" and the reference run's a real torch; the parity table and its PASS line (the runs agree under the
tool's default tolerances); the PNG's signature; REPORT.md's sections, verdict and picture path; the held-out
accuracy table. Whether the demo's full default run visibly learns is not a test's business (it takes minutes;
BENCHMARKS.md records it); the numbers this test trains on are compared step for step by the parity verdict it
checks.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers.megatron_runs import REPO, run_tool, tool_env

STEPS = 3


def test_demo_report_markdown_fail_verdict_and_short_reference(tmp_path, capsys):
    """tools/demo_report.py --markdown alone (no training): a FAIL verdict, a reference run shorter than the shim
    run, and the errors for a missing parity file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_report", REPO / "tools" / "demo_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    from qwen_sft.demo_data import make_heldout_records

    held = make_heldout_records()[:2]
    rows = [{"id": r["id"], "prompt": f"{r['instruction']}\n{r['input']}" if r["input"] else r["instruction"],
             "reference": r["output"], "output": r["output"] if i else "x"} for i, r in enumerate(held)]
    for name in ("before", "after"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    (tmp_path / "parity.txt").write_text("steps: ...\nMISMATCH: first diverging step 7 (train.loss)\n", "utf-8")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    md = tmp_path / "out" / "REPORT.md"
    base = ["--before", str(tmp_path / "before.jsonl"), "--after", str(tmp_path / "after.jsonl"), "--examples", "0"]
    assert report.main(base + ["--markdown", str(md), "--parity_text", str(tmp_path / "parity.txt"),
                               "--parity_ok", "0", "--plot", str(tmp_path / "plots" / "c.png"),
                               "--steps", "150", "--ref_steps", "20"]) == 0
    text = md.read_text("utf-8")
    assert "**FAIL**" in text and "steps 1-20" in text and "its first 20" in text, text
    assert "MISMATCH: first diverging step 7 (train.loss)" in text
    assert "](../plots/c.png)" in text and str(tmp_path / "plots" / "c.png") in text
    printed = capsys.readouterr().out
    assert printed.rstrip("\n") in text  # the held-out tables, as printed
    with pytest.raises(SystemExit) as exc:
        report.main(base + ["--markdown", str(md), "--parity_text", str(tmp_path / "nope.txt"), "--parity_ok", "1"])
    assert exc.value.code == 2 and "nope.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        report.main(base + ["--markdown", str(md)])
    assert exc.value.code == 2 and "--markdown needs --parity_text and --parity_ok" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.multiproc
def test_demo_script_shim_then_reference_then_parity(tmp_path):
    out_dir = tmp_path / "demo"
    res = run_tool(["bash", str(REPO / "scripts" / "demo.sh")],
                   tool_env(DEMO_DIR=str(out_dir), DEMO_STEPS=str(STEPS), DEMO_SAMPLES="64"), timeout=900)
    out = res.stdout

    stages = re.findall(r"^== (\d)/8 (.+?)   \[\d+ s\]$", out, re.M)
    assert [int(n) for n, _ in stages] == list(range(1, 9)), out[-4000:]
    assert "training on MindSpore (shim)" in stages[4][1] and "reference backend" in stages[5][1], stages

    shim = json.loads((out_dir / "w_tune" / "manifest.json").read_text())
    ref = json.loads((out_dir / "w_tune_ref" / "manifest.json").read_text())
    assert shim["backend"] == "mindspore" and shim["versions"]["torch"].endswith("+mindspore"), shim["versions"]
    assert ref["backend"] != "mindspore" and not ref["versions"]["torch"].endswith("+mindspore"), ref["versions"]
    for m in (shim, ref):
        assert m["parallel"]["tensor_model_parallel_size"] == 2 and m["parallel"]["world_size"] == 2, m["parallel"]

    parity = (out_dir / "parity.txt").read_text()
    assert parity and parity in out  # the verdict is printed, not only written
    assert re.search(r"^OK: ", parity, re.M), parity
    assert re.search(r"^parity verdict: PASS ", out, re.M), out[-4000:]
    assert "loss" in parity

    png = out_dir / "loss_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss curves: {png}" in out

    report = (out_dir / "REPORT.md").read_text()
    for section in ("## Parity verdict", "## Loss curves", "## Held-out answers before and after training"):
        assert section in report, report
    assert "**PASS**" in report and str(png) in report and "](loss_curves.png)" in report
    assert re.search(r"^  all\s+\d+/24\s+\d+/24\s+\d+/24\s+\d+/24$", report, re.M), report
    assert f"report: {out_dir / 'REPORT.md'}" in out
    assert "demo finished in" in out
