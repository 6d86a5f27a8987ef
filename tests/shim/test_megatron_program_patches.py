"""megatron_patches for Megatron-LM program modules (`on_import` + `program_file`, e.g. tools/checkpoint's
`loader_llama_mistral`, imported by its top-level name before megatron.core): awaited from
`await_program_modules()` (the shim's activation calls it), applied only to the module loaded from Megatron-LM's file,
never to a same-named module elsewhere; `register` refuses a target outside `megatron.` without them.

Each case runs in a fresh interpreter on real torch (no megatron.core import needed): a stand-in
`tools/checkpoint/loader_llama_mistral.py` whose `verify_transformers_version` fails as core_v0.16.1's does with
transformers 5.x (the installed version).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

_LOADER = '''
import transformers
def verify_transformers_version():
    major, minor, patch = map(int, transformers.__version__.split("."))
    assert major >= 4 and minor >= 31
def load_args_from_checkpoint(args, model_size):  # the other patch of this module needs its target
    pass
'''

_CHECK = '''
import sys, megatron_patches
from megatron_patches import registry
awaited = [p.name for p in megatron_patches.await_program_modules()]
sys.path.insert(0, sys.argv[1])
import loader_llama_mistral
try:
    loader_llama_mistral.verify_transformers_version()
    outcome = "passed"
except AssertionError:
    outcome = "AssertionError"
p = {q.name: q for q in registry.registered()}["hf_loader_transformers_version"]
print("RESULT", outcome, p.applied, p.skipped_reason, "hf_loader_transformers_version" in awaited)
'''


def _run(folder: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIM_BACKEND", "MEGATRON_PATCHES_DISABLE")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([PY, "-c", _CHECK, str(folder)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-4000:]
    return [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]


def test_program_module_patch_applies_to_megatron_lms_file_only(tmp_path):
    import transformers

    assert int(transformers.__version__.split(".")[0]) >= 5  # the defect this patch serves needs 5.x
    megatron_lm = tmp_path / "Megatron-LM" / "tools" / "checkpoint"
    elsewhere = tmp_path / "other"
    for folder in (megatron_lm, elsewhere):
        folder.mkdir(parents=True)
        (folder / "loader_llama_mistral.py").write_text(_LOADER)
    assert _run(megatron_lm) == "RESULT passed True None True"
    assert _run(elsewhere) == ("RESULT AssertionError False loader_llama_mistral is not Megatron-LM's "
                               "tools/checkpoint/loader_llama_mistral.py True")


def test_register_refuses_a_program_target_without_program_file():
    from megatron_patches.registry import PatchError, register

    with pytest.raises(PatchError, match="not a megatron dotted path"):
        register("test_program_no_file", target="saver_base.X.y", replacement=lambda o: o, reason="r",
                 versions=">=0", stacks=False, on_import="saver_base")
    with pytest.raises(PatchError, match="needs an on_import module"):
        register("test_program_no_module", target="megatron.core.x", replacement=lambda o: o, reason="r",
                 versions=">=0", stacks=False, program_file="tools/x.py")
