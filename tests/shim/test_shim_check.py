"""`python -m shim check` (shim/check.py): the torch uses it finds in a program and their status in the facade,
on synthetic files with known findings and on nanoGPT (../shared/programs/nanoGPT, unmodified)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shim.check import MISSING, OK, UNSUPPORTED, check, main, resolve, scan_source
from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent('''\
    import os
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.distributed
    from torch import optim
    from torch.nn import functional as G, Linear
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader
    from .local import torch as not_torch
    import numpy as np

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(2, 2)
            self.act = nn.GELU()

        def forward(self, x):
            return F.relu(self.fc(x)) + G.gelu(x) + torch.finfo(x.dtype).eps

    model = torch.compile(Net())
    opt = optim.AdamW(model.parameters())
    if torch.distributed.is_available():
        DDP.no_sync
    torch.onnx.export(model, (torch.zeros(1, 2),), "m.onnx")
    torch.fx.symbolic_trace(torch.eye(2), torch.ones(2))
    torch.nn.init.dirac_(torch.empty(3, 3, 3))
    torch.not_a_torch_name(1)
    os.path.join(np.pi)
    not_torch.foo
''')

EXPECTED = [
    (3, "torch.nn", OK),
    (4, "torch.nn.functional", OK),
    (5, "torch.distributed", OK),
    (6, "torch.optim", OK),
    (7, "torch.nn.Linear", OK),
    (7, "torch.nn.functional", OK),
    (8, "torch.nn.parallel.DistributedDataParallel", OK),
    (9, "torch.utils.data.DataLoader", OK),
    (13, "torch.nn.Module", OK),
    (17, "torch.nn.GELU", OK),
    (20, "torch.finfo", OK),
    (20, "torch.nn.functional.gelu", OK),
    (20, "torch.nn.functional.relu", OK),
    (22, "torch.compile", OK),
    (23, "torch.optim.AdamW", OK),
    (24, "torch.distributed.is_available", OK),
    (25, "torch.nn.parallel.DistributedDataParallel.no_sync", OK),
    (26, "torch.onnx.export", UNSUPPORTED),
    (26, "torch.zeros", OK),
    (27, "torch.eye", OK),
    (27, "torch.fx.symbolic_trace", UNSUPPORTED),
    (27, "torch.ones", OK),
    (28, "torch.empty", OK),
    (28, "torch.nn.init.dirac_", UNSUPPORTED),
    (29, "torch.not_a_torch_name", UNSUPPORTED),
]


def test_findings_on_a_synthetic_program(tmp_path):
    f = tmp_path / "prog.py"
    f.write_text(PROGRAM)
    got = [(x.use.line, x.use.name, x.status) for x in check([f])]
    assert got == EXPECTED
    assert all(x.use.path == str(f) for x in check([f]))


def test_resolve_statuses_and_details():
    assert resolve("torch") == (OK, "")
    assert resolve("torch.onnx.export") == (UNSUPPORTED, "torch.onnx.export is a stub that raises NotImplementedError")
    assert resolve("torch.fx.symbolic_trace") == (UNSUPPORTED, "torch.fx is not implemented by the shim")
    assert resolve("torch.utils.cpp_extension.load")[0] == UNSUPPORTED  # a stub made by a factory
    assert resolve("torch.nn.attention.flex_attention.BlockMask")[0] == UNSUPPORTED  # a class whose __new__ raises
    assert resolve("torch.nn.Module.not_a_method") == (MISSING,
                                                       "torch.nn.Module.not_a_method does not exist in the facade")
    assert resolve("torch.utils.tensorboard.SummaryWriter") == (OK, "")
    assert resolve("torch.distributions.Normal") == (OK, "")
    assert resolve("torch.float32.is_floating_point") == (OK, "")
    with pytest.raises(ValueError, match="expected a name starting with 'torch'"):
        resolve("numpy.zeros")


def test_scan_forms():
    uses = scan_source("import torch.cuda.amp\nx = torch.cuda.amp.autocast\nfrom torch import *\n"
                       "y = torch.finfo(torch.float32).eps[0].real\n", "s.py")
    assert [(u.line, u.name) for u in uses] == [(1, "torch.cuda.amp"), (2, "torch.cuda.amp.autocast"),
                                                (4, "torch.finfo"), (4, "torch.float32")]
    with pytest.raises(SyntaxError):
        scan_source("import torch\ndef f(:\n", "bad.py")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "shim", "check", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def test_cli_table_and_exit_codes(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\ntorch.onnx.export(None, ())\nz = torch.zeros(2)\n")
    good = tmp_path / "pkg" / "good.py"
    good.parent.mkdir()
    good.write_text("import torch\nz = torch.zeros(2)\n")
    r = _cli(bad)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["where", "torch", "name", "status", "detail"]
    assert lines[1].split()[:3] == [f"{bad}:2", "torch.onnx.export", "unsupported"]
    assert lines[-1] == "2 torch uses of 2 names: 1 ok, 1 unsupported, 0 missing (1 names not provided)"
    r = _cli("--all", tmp_path / "pkg")
    assert r.returncode == 0 and r.stdout.splitlines() == [
        r.stdout.splitlines()[0], f"{good}:2".ljust(len(f"{good}:2")) + "  torch.zeros  ok",
        "1 torch uses of 1 names: 1 ok, 0 unsupported, 0 missing (0 names not provided)"]


def test_main_in_process(tmp_path, capsys):
    (tmp_path / "good.py").write_text("import torch\nz = torch.zeros(2)\n")
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1 torch uses of 1 names: 1 ok, 0 unsupported, 0 missing (0 names not provided)"]
    assert main([str(tmp_path / "nope.py")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "syntax.py").write_text("def f(:\n")
    assert main([str(tmp_path)]) == 2


def test_nanogpt_uses_only_supported_apis_except_the_profiler():
    root = shared_path("programs", "nanoGPT")
    findings = check([root])
    by_file: dict = {}
    for f in findings:
        by_file.setdefault(Path(f.use.path).name, []).append(f)
    assert {k: len(v) for k, v in by_file.items()} == {"bench.py": 25, "model.py": 50, "sample.py": 15,
                                                       "train.py": 25}
    for name in ("train.py", "model.py", "sample.py"):  # what the nanoGPT test runs: everything provided
        assert [f for f in by_file[name] if f.status != OK] == []
    got = {(f.use.line, f.use.name) for f in by_file["train.py"] + by_file["model.py"]}
    assert {(27, "torch.nn.parallel.DistributedDataParallel"), (28, "torch.distributed.init_process_group"),
            (64, "torch.nn.functional.scaled_dot_product_attention"), (208, "torch.compile")} <= got
    # torch.profiler imports and names its activity kinds (libraries import them); profiling itself is unsupported
    assert [(f.use.line, f.use.name, f.status) for f in by_file["bench.py"] if f.status != OK] == [
        (72, "torch.profiler.profile", UNSUPPORTED), (74, "torch.profiler.schedule", UNSUPPORTED),
        (75, "torch.profiler.tensorboard_trace_handler", UNSUPPORTED)]
