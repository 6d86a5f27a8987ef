"""msshim: run torch-style programs on MindSpore.

`shim.activate()` makes `import torch` serve the facade (`shim.torch`); see shim/README.md for the ways in
(`shim-run`, `python -m shim run`, `SHIM_BACKEND=mindspore` via the installed .pth file).
"""
from __future__ import annotations

from ._import_hook import activate, deactivate, is_active, TORCH_VERSION

__all__ = ["activate", "deactivate", "is_active", "TORCH_VERSION", "BACKEND_ENV"]

# Environment variable read at interpreter start by the installed .pth file (value "mindspore" activates).
BACKEND_ENV = "SHIM_BACKEND"
