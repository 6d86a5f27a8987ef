"""Named, versioned patches that let megatron-core run on the shim (see issue 6 and `registry.py`).

`install_import_hook()` (called by `shim.activate()` through the plugin hook `on_shim_activate()`; the shim's
bootstrap names this package in `shim.PLUGINS`) arranges for `apply_all()` to run right after
`megatron.core` is imported — or at once if it already is — in processes where the shim serves `torch`;
under real torch nothing is ever applied. The patches themselves live in `megatron_patches/patches.py`.
When $MEGATRON_PATCHES_STATE names a file, each process that imported megatron.core writes its patch state
(applied, hits) there at exit,
which `python -m megatron_patches --list --state FILE` reads back after a training run.
"""
from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import multiprocessing
import sys

from . import registry as _registry
from .registry import (DISABLE_ENV, STATE_ENV, ModuleStandIn, Patch, PatchError, apply_all, await_program_modules,
                       install_module_stand_ins,
                       megatron_core_version, module_stand_ins, register, register_module_stand_in, registered, state,
                       state_path, uninstall_module_stand_ins, write_state)
from . import patches as _patches  # noqa: F401  (registers the patches)

__all__ = ["Patch", "PatchError", "register", "registered", "apply_all", "await_program_modules", "state",
           "state_path", "write_state",
           "megatron_core_version", "install_import_hook", "on_shim_activate", "on_shim_deactivate", "STATE_ENV",
           "DISABLE_ENV", "ModuleStandIn", "register_module_stand_in", "module_stand_ins", "install_module_stand_ins",
           "uninstall_module_stand_ins"]

_TARGET = "megatron.core"


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds `megatron.core` through the other finders and wraps its loader so that the patches are applied
    right after the package's own code has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module, _exec=exec_module):
            _exec(module)
            _uninstall()
            apply_all()

        # Wrap on this one loader instance only (other modules keep their loaders untouched).
        loader.exec_module = exec_and_patch
        return spec


_FINDER = _PostImportFinder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install_import_hook() -> None:
    """Apply the patches when megatron.core gets imported (now, if it already is), wait for the Megatron-LM
    program modules that patches name (`await_program_modules`), and install the module stand-ins
    (`install_module_stand_ins`). Idempotent. Only the shim's activation calls this: the patches assume
    `torch` is the facade."""
    install_module_stand_ins()
    try:
        _registry.await_program_modules()
    except PatchError:  # megatron-core not installed: nothing of Megatron's can run here
        pass
    if _TARGET in sys.modules:
        apply_all()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    if not getattr(install_import_hook, "_atexit", False):
        install_import_hook._atexit = True
        atexit.register(_write_state_at_exit)


def on_shim_activate() -> None:
    """The shim's plugin hook, called by every `shim.activate()`: `install_import_hook()`."""
    install_import_hook()


def on_shim_deactivate() -> None:
    """The shim's plugin hook, called by `shim.deactivate()`: stop waiting for megatron.core's import and remove
    the stand-in finder (patches already applied and stand-ins already imported stay)."""
    _uninstall()
    uninstall_module_stand_ins()


def _write_state_at_exit() -> None:
    # Only processes that imported megatron.core report (a launcher running under the shim does not), and only the
    # ranks themselves: megatron's torch_dist writer starts helper processes (a spawned Manager, forked writers)
    # that import megatron.core too and exit after their rank; their state (no hits) would overwrite the rank's.
    if multiprocessing.parent_process() is not None:
        return
    if _registry._APPLIED[0] and state_path() is not None:
        try:
            write_state()
        except OSError as e:  # report, never mask the process's own exit status
            print(f"megatron_patches: could not write the patch state: {e}", file=sys.stderr)
