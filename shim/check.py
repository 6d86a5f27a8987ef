"""`python -m shim check script.py [more files or directories]`: which torch APIs a program uses that the facade lacks.

The program is not run and the shim is not activated: each file is parsed with `ast`, and every torch name it
uses is looked up in the facade (`shim.torch`, served as `torch` under the shim). What counts as a use:
- `import torch.x.y [as z]` (the module `torch.x.y`) and `from torch.x import y [as z]` (`torch.x.y`);
- attribute chains on a name bound to torch by those imports: `torch.a.b.c(...)` -> `torch.a.b.c`, `nn.Conv2d`
  after `from torch import nn` -> `torch.nn.Conv2d`, `F.gelu` after `import torch.nn.functional as F`,
  `DDP.no_sync` after `from torch.nn.parallel import DistributedDataParallel as DDP`. The longest chain is
  reported (`torch.cuda.amp.autocast`, not also `torch.cuda`); chains through calls or subscripts stop there
  (`torch.finfo(x).eps` reports `torch.finfo`). Tensor methods (`x.view(...)`) are not checked: the type of `x`
  is unknown without running the program.
Relative imports, `from torch import *`, and rebinding of the alias later in the file are not followed.

Each name gets one status:
- `ok`: it resolves in the facade and is not a stub;
- `unsupported`: looking it up raises NotImplementedError (the facade's `UnsupportedAPI`, raised by module
  `__getattr__`s installed with `shim/torch/_unsupported.module_getattr`), or it resolves to a *stub* — a function
  (or a class whose `__init__`/`__new__` is one) whose body, after its docstring, is a single `raise` of
  `NotImplementedError`/`UnsupportedAPI`;
- `missing`: it does not resolve at all (AttributeError, or no such facade module).
A supported name can still reject some arguments at run time (e.g. `F.pad(mode="reflect")`); those raise
NotImplementedError naming the API when called, and are not found by this static check.

Output: one row per use that is not ok (`file:line  torch name  status  detail`), sorted by file and line, then a
summary line; `--all` lists the ok uses too. Exit status: 0 when every use is ok, 1 when some are unsupported or
missing, 2 for usage errors (no such file, a file that does not parse).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

from . import torch as facade

__all__ = ["Use", "Finding", "scan_source", "scan_paths", "resolve", "check", "main"]

OK, UNSUPPORTED, MISSING = "ok", "unsupported", "missing"


@dataclass(frozen=True)
class Use:
    """One use of a torch name in a file (`name` is the full dotted torch path)."""
    path: str
    line: int
    name: str


@dataclass(frozen=True)
class Finding:
    use: Use
    status: str      # OK, UNSUPPORTED or MISSING
    detail: str      # the facade's message, or what is stubbed / missing; "" for ok


# ------------------------------------------------------------------------------------------- finding uses
class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.aliases: dict[str, str] = {}   # local name -> torch dotted path
        self.uses: list[Use] = []

    def _use(self, node: ast.AST, name: str) -> None:
        self.uses.append(Use(self.path, node.lineno, name))

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name == "torch" or a.name.startswith("torch."):
                if a.name != "torch":
                    self._use(node, a.name)
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    self.aliases["torch"] = "torch"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level or not (mod == "torch" or mod.startswith("torch.")):
            return
        for a in node.names:
            if a.name == "*":
                continue
            full = f"{mod}.{a.name}"
            self._use(node, full)
            self.aliases[a.asname or a.name] = full

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if isinstance(cur, ast.Name) and cur.id in self.aliases:
            self._use(node, ".".join([self.aliases[cur.id]] + parts[::-1]))
            return  # the inner attributes are prefixes of this chain
        self.generic_visit(node)


def scan_source(source: str, path: str = "<string>") -> list[Use]:
    """The torch uses in one file's source, in the order found. SyntaxError when it does not parse."""
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source, filename=path))
    return scanner.uses


def _py_files(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(f for f in sorted(p.rglob("*.py")) if "__pycache__" not in f.parts)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out


def scan_paths(paths) -> list[Use]:
    """The torch uses in the given files and, recursively, the .py files of the given directories."""
    uses = []
    for f in _py_files(paths):
        uses.extend(scan_source(f.read_text(encoding="utf-8"), str(f)))
    return uses


# -------------------------------------------------------------------------------------- resolving names
def _is_stub_function(fn) -> bool:
    """True when `fn`'s body (after its docstring) is one `raise NotImplementedError(...)`/`UnsupportedAPI(...)`."""
    fn = inspect.unwrap(fn)
    if not isinstance(fn, types.FunctionType):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defs:
        return False
    body = defs[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id in ("NotImplementedError", "UnsupportedAPI")


def _is_stub(obj) -> bool:
    if isinstance(obj, type):
        if not obj.__module__.startswith(facade.__name__):
            return False
        return any(_is_stub_function(obj.__dict__[m]) for m in ("__init__", "__new__") if m in obj.__dict__)
    return _is_stub_function(obj)


def _child(obj, part: str):
    """obj.part, importing a facade submodule when `obj` is a facade package that does not load it by itself."""
    if isinstance(obj, types.ModuleType) and hasattr(obj, "__path__"):
        sub = f"{obj.__name__}.{part}"
        if importlib.util.find_spec(sub) is not None:
            return importlib.import_module(sub)
    return getattr(obj, part)


_CACHE: dict[str, tuple[str, str]] = {}


def resolve(name: str) -> tuple[str, str]:
    """(status, detail) of the dotted torch name `name` ("torch" or "torch.x...") in the facade."""
    if name in _CACHE:
        return _CACHE[name]
    parts = name.split(".")
    if parts[0] != "torch":
        raise ValueError(f"resolve: expected a name starting with 'torch', got {name!r}")
    obj = facade
    result = (OK, "")
    for i, part in enumerate(parts[1:], start=1):
        here = ".".join(parts[:i + 1])
        try:
            obj = _child(obj, part)
        except NotImplementedError as exc:
            result = (UNSUPPORTED, str(exc).splitlines()[0] if str(exc) else here)
            break
        except (AttributeError, ImportError):
            result = (MISSING, f"{here} does not exist in the facade")
            break
        except Exception as exc:  # an error while loading a facade module: report it, do not crash the scan
            result = (MISSING, f"{here}: {type(exc).__name__}: {exc}")
            break
        if _is_stub(obj):
            result = (UNSUPPORTED, f"{here} is a stub that raises NotImplementedError")
            break
    _CACHE[name] = result
    return result


def check(paths) -> list[Finding]:
    """Every torch use in `paths` with its status, sorted by file, line and name (duplicates on a line merged)."""
    uses = sorted(set(scan_paths(paths)), key=lambda u: (u.path, u.line, u.name))
    return [Finding(u, *resolve(u.name)) for u in uses]


# --------------------------------------------------------------------------------------------------- CLI
def _table(rows: list[Finding]) -> str:
    cells = [(f"{f.use.path}:{f.use.line}", f.use.name, f.status, f.detail) for f in rows]
    head = ("where", "torch name", "status", "detail")
    widths = [max(len(r[i]) for r in cells + [head]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in [head] + cells]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m shim check`: prints the table and the summary; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shim check",
                                     description="List the torch APIs a program uses that the shim's facade lacks.")
    parser.add_argument("paths", nargs="+", help="Python files or directories (searched for *.py)")
    parser.add_argument("--all", action="store_true", help="list the supported uses too")
    args = parser.parse_args(argv)
    try:
        findings = check(args.paths)
    except (FileNotFoundError, SyntaxError, UnicodeDecodeError) as exc:
        print(f"shim check: {exc}", file=sys.stderr)
        return 2
    bad = [f for f in findings if f.status != OK]
    shown = findings if args.all else bad
    if shown:
        print(_table(shown))
    names = {f.use.name for f in findings}
    bad_names = {f.use.name for f in bad}
    print(f"{len(findings)} torch uses of {len(names)} names: {len(findings) - len(bad)} ok, "
          f"{sum(f.status == UNSUPPORTED for f in findings)} unsupported, "
          f"{sum(f.status == MISSING for f in findings)} missing ({len(bad_names)} names not provided)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
