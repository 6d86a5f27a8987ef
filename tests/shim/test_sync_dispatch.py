"""SHIM_SYNC_DISPATCH (shim/torch/_dispatch.py): 1 switches MindSpore to synchronous dispatch when the facade is
imported, 0 leaves MindSpore's asynchronous default, unset means synchronous on the CPU target (these machines)
and asynchronous elsewhere; anything else is refused with the variable's name."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shim.torch import _dispatch

REPO = Path(__file__).resolve().parents[2]


def test_zero_keeps_mindspore_default():
    assert _dispatch.configure({_dispatch.ENV: "0"}) is False


@pytest.mark.parametrize("environ", [{}, {_dispatch.ENV: ""}])
def test_unset_is_synchronous_on_the_cpu_target(environ):
    import mindspore

    assert mindspore.get_context("device_target") == "CPU"  # these machines; elsewhere the default is async
    assert _dispatch.configure(environ) is True


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_other_values_are_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"SHIM_SYNC_DISPATCH must be 0 or 1.*{value!r}"):
        _dispatch.configure({_dispatch.ENV: value})


@pytest.mark.parametrize("value,expected", [("1", "True True"), ("0", "False False"), (None, "True True")])
def test_import_applies_it_and_results_are_unchanged(value, expected):
    code = ("import shim.torch as t\n"
            "from mindspore._c_expression import RuntimeConf\n"
            "x = t.arange(6, dtype=t.float32).reshape(2, 3)\n"
            "y = (x @ x.t()) / 2\n"
            "assert y.tolist() == [[2.5, 7.0], [7.0, 25.0]], y.tolist()\n"
            "print(t._dispatch.SYNC, RuntimeConf.get_instance().is_launch_blocking())\n")
    env = {k: v for k, v in os.environ.items() if k != "SHIM_BACKEND"}
    env.pop(_dispatch.ENV, None)
    env.update({_dispatch.ENV: value} if value is not None else {})
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == expected
