"""The table of MindSpore workarounds (shim/torch/_workarounds.py): its rows point at real code sites, every site
names its row, and every probe still finds its defect on the installed MindSpore.

A probe that finds its defect gone FAILS the test (it does not warn): the row then documents a defect that no
longer exists and the facade keeps a slower or emulated path for nothing, and a warning in a long test log is
what nobody reads after an upgrade. The failure names the rows; the fix is to restore the direct MindSpore call
at the row's sites and delete the row (or, when the defect only moved, re-measure and update the row)."""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import warnings
import sys

import pytest

from shim.torch import _workarounds as W

ROOT = pathlib.Path(__file__).resolve().parents[2]
FACADE = ROOT / "shim" / "torch"
REF = re.compile(r'workaround "([^"]+)"')


def test_rows_are_complete_and_unique():
    keys = [r.key for r in W.WORKAROUNDS]
    assert len(keys) == len(set(keys)), "duplicate workaround keys"
    for r in W.WORKAROUNDS:
        assert r.op and r.workaround and r.reason and r.measured.startswith("MindSpore "), r.key
        assert (r.probe is None) == bool(r.unprobed), f"{r.key}: a row has a probe or says why it has none"


@pytest.mark.parametrize("row", [r for r in W.WORKAROUNDS if r.sites], ids=lambda r: r.key)
def test_sites_exist_and_name_their_row(row):
    for site in row.sites:
        path, symbol = site.split("::")
        text = (FACADE / path).read_text()
        assert re.search(rf"\b{re.escape(symbol)}\b", text), f"{row.key}: {symbol} not found in shim/torch/{path}"
        assert f'workaround "{row.key}"' in text, f'{row.key}: shim/torch/{path} has no comment workaround "{row.key}"'


def test_every_reference_names_a_row():
    keys = {r.key for r in W.WORKAROUNDS}
    dangling = []
    for path in FACADE.rglob("*.py"):
        if path.name == "_workarounds.py":
            continue
        for key in REF.findall(path.read_text()):
            if key not in keys:
                dangling.append(f"{path.relative_to(FACADE)}: {key}")
    assert not dangling, f"comments naming no row of _workarounds.py: {dangling}"


def test_every_probe_still_finds_its_defect():
    # A process of its own (`-P`: the script's folder, shim/torch, must not shadow stdlib modules such as
    # `random`): probes leave MindSpore kernel caches and flags behind.
    proc = subprocess.run([sys.executable, "-P", str(FACADE / "_workarounds.py")], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    results = report["results"]
    assert set(results) == {r.key for r in W.WORKAROUNDS}
    timed = {r.key for r in W.WORKAROUNDS if r.timed}
    gone = [k for k, v in results.items() if v == "gone" and k not in timed]
    timed_gone = [k for k, v in results.items() if v == "gone" and k in timed]
    if timed_gone:  # wall-time probes: a loaded machine can hide a slow path; say so, do not fail
        warnings.warn(f"timed probes found no slow path (re-measure on an idle machine): {timed_gone}")
    broken = {k: v for k, v in results.items() if v.startswith("error")}
    assert not broken, f"probes that failed to run (fix the probe): {broken}"
    assert not gone, (f"MindSpore {report['mindspore']} no longer has the defect of rows {gone}: restore the direct "
                      f"MindSpore call at their sites and delete the rows from shim/torch/_workarounds.py")
    expected = {r.key for r in W.WORKAROUNDS if r.probe is not None and r.target == report["target"]}
    assert {k for k, v in results.items() if v == "present"} | set(timed_gone) == expected, results
