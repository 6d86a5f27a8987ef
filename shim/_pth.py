"""The `.pth` hook that honours SHIM_BACKEND=mindspore at interpreter start.

`python -m shim install-pth` writes PTH_NAME into the interpreter's site-packages (purelib); Python's `site`
executes its single `import` line at start-up, which activates the shim only when the environment variable
SHIM_BACKEND equals "mindspore" (case-insensitive) — otherwise it costs one environment lookup. The name sorts
after setuptools' `__editable__*.pth`, so with an editable install `shim` is importable when it runs.
"""
from __future__ import annotations

import os
import sysconfig
from pathlib import Path

__all__ = ["PTH_NAME", "PTH_LINE", "pth_path", "install_pth", "uninstall_pth"]

PTH_NAME = "msshim-activate.pth"
PTH_LINE = ("import os; os.environ.get('SHIM_BACKEND', '').strip().lower() == 'mindspore' and "
            "__import__('importlib').import_module('shim._import_hook').activate()\n")


def pth_path(site_packages: str | None = None) -> Path:
    """Where the .pth file goes: the given directory or this interpreter's purelib site-packages."""
    return Path(site_packages or sysconfig.get_paths()["purelib"]) / PTH_NAME


def install_pth(site_packages: str | None = None) -> Path:
    """Write the .pth file (idempotent). Returns its path. Raises OSError if the directory is not writable."""
    path = pth_path(site_packages)
    if not path.exists() or path.read_text() != PTH_LINE:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(PTH_LINE)
        os.replace(tmp, path)
    return path


def uninstall_pth(site_packages: str | None = None) -> bool:
    """Remove the .pth file; True if it existed."""
    path = pth_path(site_packages)
    if path.exists():
        path.unlink()
        return True
    return False
