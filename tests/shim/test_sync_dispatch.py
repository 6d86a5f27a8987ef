"""SHIM_SYNC_DISPATCH (shim/torch/_dispatch.py): 1 switches MindSpore to synchronous dispatch when the facade is
imported, 0/unset leaves MindSpore's default, anything else is refused with the variable's name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shim.torch import _dispatch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["", "0"])
def test_unset_or_zero_keeps_mindspore_default(value):
    assert _dispatch.configure({_dispatch.ENV: value} if value else {}) is False


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_other_values_are_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"SHIM_SYNC_DISPATCH must be 0 or 1.*{value!r}"):
        _dispatch.configure({_dispatch.ENV: value})


@pytest.mark.parametrize("value,expected", [("1", "True True"), ("0", "False False")])
def test_import_applies_it_and_results_are_unchanged(value, expected):
    code = ("import shim.torch as t\n"
            "from mindspore._c_expression import RuntimeConf\n"
            "x = t.arange(6, dtype=t.float32).reshape(2, 3)\n"
            "y = (x @ x.t()) / 2\n"
            "assert y.tolist() == [[2.5, 7.0], [7.0, 25.0]], y.tolist()\n"
            "print(t._dispatch.SYNC, RuntimeConf.get_instance().is_launch_blocking())\n")
    env = {k: v for k, v in os.environ.items() if k != "SHIM_BACKEND"}
    env.update({_dispatch.ENV: value, "PYTHONPATH": str(REPO)})
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == expected
