"""Activation: the three ways in, module aliasing, torch's metadata version, real torch never imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

# A probe program: reports what `import torch` gave it, as JSON on the last line of stdout.
PROBE = textwrap.dedent("""
    import importlib.metadata as md, importlib.util, json, sys
    import torch, torch.nn, torch.autograd
    real = sorted(n for n, m in list(sys.modules.items())
                  if (n == "torch" or n.startswith("torch.")) and not getattr(m, "__name__", "").startswith("shim."))
    t = torch.ones(2) * 3
    print(json.dumps({
        "name": torch.__name__, "version": torch.__version__, "md_version": md.version("torch"),
        "alias_nn": sys.modules["torch.nn"] is sys.modules.get("shim.torch.nn"),
        "alias_autograd": torch.autograd is sys.modules.get("shim.torch.autograd"),
        "spec_origin": importlib.util.find_spec("torch").origin,
        "real_torch_modules": real, "value": t.tolist(), "argv": sys.argv[1:],
    }))
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
""")


def _env(**extra):
    env = dict(os.environ)
    env.pop("SHIM_BACKEND", None)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _run(cmd, env=None, cwd=None, timeout=120):
    return subprocess.run(cmd, env=env or _env(), cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout)


def _report(proc):
    assert proc.stdout.strip(), f"no output; stderr:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_facade(rep, argv):
    from shim import TORCH_VERSION
    assert rep["name"] == "shim.torch"
    assert rep["version"] == TORCH_VERSION == "2.13.0+mindspore"
    assert rep["md_version"] == TORCH_VERSION
    assert rep["alias_nn"] and rep["alias_autograd"]
    assert rep["spec_origin"].endswith(os.path.join("shim", "torch", "__init__.py"))
    assert rep["real_torch_modules"] == []
    assert rep["value"] == [3.0, 3.0]
    assert rep["argv"] == argv


@pytest.fixture
def probe_script(tmp_path):
    p = tmp_path / "probe.py"
    p.write_text(PROBE)
    return p


def test_facade_importable_next_to_real_torch():
    import torch as real_torch
    import shim.torch as facade
    assert real_torch.__name__ == "torch" and facade.__name__ == "shim.torch"
    assert facade.ones(3).sum().item() == real_torch.ones(3).sum().item() == 3.0
    assert str(facade.float32) == str(real_torch.float32) == "torch.float32"


def test_activate_in_process_call(probe_script):
    code = "import sys; import shim; shim.activate(); sys.argv = ['probe', '7', 'x']; " \
           f"exec(compile(open({str(probe_script)!r}).read(), 'probe', 'exec'))"
    proc = _run([PY, "-c", code])
    assert proc.returncode == 7, proc.stderr[-3000:]
    _check_facade(_report(proc), ["7", "x"])


def test_python_m_shim_run_passes_args_and_exit_status(probe_script):
    proc = _run([PY, "-m", "shim", "run", str(probe_script), "5", "--flag"])
    assert proc.returncode == 5, proc.stderr[-3000:]
    _check_facade(_report(proc), ["5", "--flag"])


def test_shim_run_console_script(probe_script):
    exe = Path(PY).with_name("shim-run")
    assert exe.exists(), f"console script {exe} not installed (pip install -e . creates it)"
    proc = _run([str(exe), str(probe_script), "a", "b"], cwd=probe_script.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_facade(_report(proc), ["a", "b"])


def test_pth_file_activates_only_with_env(tmp_path, probe_script):
    from shim._pth import install_pth, PTH_LINE
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    path = install_pth(str(site_dir))
    assert path.read_text() == PTH_LINE
    # `site.addsitedir` runs .pth files exactly as interpreter start-up does for site-packages.
    code = f"import site, sys; site.addsitedir({str(site_dir)!r}); sys.argv = ['probe']; " \
           f"exec(compile(open({str(probe_script)!r}).read(), 'probe', 'exec'))"
    on = _run([PY, "-c", code], env=_env(SHIM_BACKEND="mindspore"))
    assert on.returncode == 0, on.stderr[-3000:]
    _check_facade(_report(on), [])
    off = _run([PY, "-c", code])
    assert off.returncode == 0, off.stderr[-3000:]
    rep = _report(off)
    assert rep["name"] == "torch" and rep["md_version"].startswith("2.13.0") and "mindspore" not in rep["version"]


def test_installed_pth_in_site_packages(probe_script):
    from shim._pth import pth_path, PTH_LINE
    path = pth_path()
    assert path.exists(), f"{path} not installed; run `python -m shim install-pth` (scripts/setup_env.sh does)"
    assert path.read_text() == PTH_LINE
    proc = _run([PY, str(probe_script), "0"], env=_env(SHIM_BACKEND="mindspore"), cwd=probe_script.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_facade(_report(proc), ["0"])


def test_every_way_in_calls_the_plugins_the_bootstrap_names(tmp_path):
    """The activation core imports no plugin; `shim/__init__.py` registers shim.PLUGINS, so even the .pth file's
    `shim._import_hook.activate()` installs megatron_patches' post-import hook. A plugin's hooks run at each
    activate/deactivate; a plugin package that is not installed is passed over; one without hooks is an error."""
    (tmp_path / "probe_plugin.py").write_text(
        "calls = []\ndef on_shim_activate(): calls.append('on')\ndef on_shim_deactivate(): calls.append('off')\n")
    (tmp_path / "hookless_plugin.py").write_text("x = 1\n")
    code = textwrap.dedent(f"""
        import importlib, json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        hook = importlib.import_module('shim._import_hook')  # what the .pth file runs
        import shim
        out = {{"plugins": list(hook.plugins()), "PLUGINS": list(shim.PLUGINS)}}
        hook.register_plugin('probe_plugin')
        hook.register_plugin('no_such_plugin_package')
        hook.activate()
        import megatron_patches, probe_plugin
        out["megatron_hook"] = megatron_patches._FINDER in sys.meta_path
        hook.deactivate()
        out["megatron_hook_after_deactivate"] = megatron_patches._FINDER in sys.meta_path
        hook.activate()
        out["calls"] = list(probe_plugin.calls)
        out["no_such"] = 'no_such_plugin_package' in sys.modules
        try:
            hook.register_plugin('not a module')
        except ValueError as e:
            out["bad_name"] = str(e)
        hook.deactivate()
        hook.register_plugin('hookless_plugin')
        try:
            hook.activate()
        except TypeError as e:
            out["hookless"] = str(e)
        print(json.dumps(out))
    """)
    proc = _run([PY, "-c", code])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = _report(proc)
    assert rep["plugins"] == rep["PLUGINS"] == ["megatron_patches"]
    assert rep["megatron_hook"] is True and rep["megatron_hook_after_deactivate"] is False
    assert rep["calls"] == ["on", "off", "on"]
    assert rep["no_such"] is False
    assert rep["bad_name"] == "register_plugin: expected a dotted module name, got 'not a module'"
    assert rep["hookless"] == ("shim plugin 'hookless_plugin' defines no on_shim_activate() "
                               "(see shim._import_hook.register_plugin)")


def test_activate_refuses_after_real_torch():
    code = "import torch, shim\ntry:\n    shim.activate()\nexcept RuntimeError as e:\n    print('refused:', e)\n"
    proc = _run([PY, "-c", code])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused: real torch is already imported" in proc.stdout


def test_missing_facade_module_is_module_not_found_and_unknown_api_raises():
    code = textwrap.dedent("""
        import shim; shim.activate()
        import sys, torch
        try:
            import torch._no_such_module
        except ModuleNotFoundError as e:
            print('missing:', e.name)
        try:
            torch.no_such_function
        except NotImplementedError as e:
            print('unsupported:', e)
        print('hasattr:', hasattr(torch, 'no_such_function'))
        print('real:', [n for n, m in sys.modules.items() if n.startswith('torch') and not m.__name__.startswith('shim.')])
    """)
    proc = _run([PY, "-c", code])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "missing: torch._no_such_module" in out
    assert "unsupported: torch.no_such_function is not implemented by the shim" in out
    assert "hasattr: False" in out
    assert "real: []" in out


def test_megatron_core_imports_under_the_shim():
    code = textwrap.dedent("""
        import shim; shim.activate()
        import sys
        import megatron.core
        from megatron.core.models.gpt import GPTModel
        from megatron.core.distributed import DistributedDataParallel
        from megatron.core.pipeline_parallel import schedules
        from megatron.core.tensor_parallel import random as tp_random
        print('real:', [n for n, m in sys.modules.items() if n.startswith('torch')
                        and not getattr(m, '__name__', '').startswith('shim.')])
        print('ok')
    """)
    proc = _run([PY, "-c", code], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "real: []" in proc.stdout and proc.stdout.strip().endswith("ok")
