"""msshim: run torch-style programs on MindSpore.

`shim.activate()` makes `import torch` serve the facade (`shim.torch`); see shim/README.md for the ways in
(`shim-run`, `python -m shim run`, `SHIM_BACKEND=mindspore` via the installed .pth file).

This module, `__main__.py`, `_import_hook.py` and `_pth.py` are the bootstrap (CONTRIBUTING.md, "Layers"): above
the facade, below the launcher. The bootstrap names the plugins the activation calls (PLUGINS), so that the
activation core imports nothing built on the facade.
"""
from __future__ import annotations

from ._import_hook import activate, deactivate, is_active, register_plugin, TORCH_VERSION

__all__ = ["activate", "deactivate", "is_active", "TORCH_VERSION", "BACKEND_ENV", "PLUGINS"]

# Environment variable read at interpreter start by the installed .pth file (value "mindspore" activates).
BACKEND_ENV = "SHIM_BACKEND"

# Plugins called by every activation, in this order (module names; each defines on_shim_activate() and
# on_shim_deactivate(), see shim._import_hook.register_plugin). Registered here, when `shim` is first imported,
# so every way in (shim.activate(), shim-run, the .pth file's `shim._import_hook.activate()`, the launcher's
# workers) calls them.
#   megatron_patches: installs the post-import hook that applies megatron-core's named patches right after
#                     `megatron.core` is imported (issue 6), under the shim only.
PLUGINS = ("megatron_patches",)


def _register_plugins() -> None:
    for name in PLUGINS:
        register_plugin(name)


_register_plugins()
