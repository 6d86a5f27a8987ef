"""Command line: `python -m shim run script.py args…`, `shim-run script.py args…`, `python -m shim install-pth`.

  run [-m module | script] [args…]   activate the shim, then run the script (or module) as __main__ with
                                     sys.argv = [script, args…] — the program's own `import torch` gets the facade.
  install-pth [--site-packages DIR]  install the .pth file that honours SHIM_BACKEND=mindspore at start-up.
  uninstall-pth [--site-packages DIR]
  version                            print the torch version the facade reports and the MindSpore version.
  check [--all] paths…               list the torch APIs the given files (or directories of .py files) use that the
                                     facade does not provide; exit 1 when there are some (see shim/check.py).

`shim-run` (console script) is `run` without the word `run`. Exit status: the program's own, 2 for usage errors.
"""
from __future__ import annotations

import importlib.metadata
import os
import runpy
import sys

from . import TORCH_VERSION, activate
from ._pth import install_pth, uninstall_pth

USAGE = __doc__


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: shim-run [-m module | script.py] [args…]", file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    activate()
    if argv[0] == "-m":
        if len(argv) < 2:
            print("shim-run: -m needs a module name", file=sys.stderr)
            return 2
        sys.argv = [argv[1]] + argv[2:]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        print(f"shim-run: can't open file '{script}': no such file", file=sys.stderr)
        return 2
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


def _site_arg(argv):
    if argv[:1] == ["--site-packages"] and len(argv) == 2:
        return argv[1]
    if argv:
        raise SystemExit(f"unexpected arguments: {argv}")
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m shim` and of the `shim-run` console script."""
    if argv is None:
        argv = sys.argv[1:]
        prog = os.path.basename(sys.argv[0])
        if prog.startswith("shim-run"):
            return _exit(_run, argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return _exit(_run, rest)
    if cmd == "install-pth":
        print(install_pth(_site_arg(rest)))
        return 0
    if cmd == "uninstall-pth":
        print("removed" if uninstall_pth(_site_arg(rest)) else "not installed")
        return 0
    if cmd == "check":
        from .check import main as check_main  # import cost: the checker loads the facade (MindSpore)
        return check_main(rest)
    if cmd == "version":
        print(f"torch (facade) {TORCH_VERSION}; mindspore {importlib.metadata.version('mindspore')}")
        return 0
    print(f"unknown command {cmd!r}\n{USAGE}", file=sys.stderr)
    return 2


def _exit(fn, argv):
    try:
        return fn(argv)
    except SystemExit as exc:  # the program called sys.exit(): pass its status through
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
