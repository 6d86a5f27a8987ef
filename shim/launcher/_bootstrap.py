"""Worker entry: ``python -m shim.launcher._bootstrap [-m] SCRIPT ARGS...`` (what the launcher runs per rank).

Activates the shim (``import torch`` served by the facade) when ``SHIM_BACKEND`` is ``mindspore`` (the
launcher's default), then runs SCRIPT (or module, with ``-m``) as ``__main__`` with ``sys.argv`` set as
``python SCRIPT ARGS...`` would, so the program cannot tell it was wrapped.
"""
from __future__ import annotations

import os
import runpy
import sys


def _activate() -> None:
    if os.environ.get("SHIM_BACKEND", "mindspore").lower() != "mindspore":
        return
    shim = sys.modules.get("shim")
    if shim is not None and getattr(shim, "__file__", None) is None:
        # `shim` was imported as a namespace package before the working directory was on sys.path (the
        # activation .pth runs that early, and a stale editable install maps `shim` to a namespace): forget it
        # and import the real package now.
        for name in [n for n in sys.modules if n == "shim" or n.startswith("shim.")]:
            del sys.modules[name]
    # imported here, after a stale namespace-package `shim` was dropped above (a module-top import would bind it)
    import shim

    activate = getattr(shim, "activate", None)
    if activate is None:
        raise RuntimeError("SHIM_BACKEND=mindspore but this shim has no shim.activate(); set SHIM_BACKEND=off "
                           "to run workers without the torch facade")
    is_active = getattr(shim, "is_active", None)
    if is_active is None or not is_active():
        activate()


def main(argv: list[str]) -> None:
    """Run ``argv`` (``[SCRIPT, ARGS...]`` or ``["-m", MODULE, ARGS...]``) as the worker's main program."""
    if not argv:
        raise SystemExit("shim.launcher._bootstrap: missing script")
    _activate()
    if argv[0] == "-m":
        if len(argv) < 2:
            raise SystemExit("shim.launcher._bootstrap: -m needs a module name")
        sys.argv = [argv[1]] + argv[2:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
