"""The project's architecture, checked from its import graph (issue 15; CONTRIBUTING.md, "Layers").

The graph is read from the source with `ast` (nothing is imported; about two seconds on 2 cores): every
`import x.y`, `from x import y` (relative ones resolved) and `importlib.import_module("x")` / `__import__("x")`
with a literal name, at module top or inside functions, in the packages PACKAGES (tests/ and benchmarks/ are not
part of the graph). An edge goes to the longest project module the statement names: `from a import b` names the
module `a.b` when that is a module, else `a`; importing `a.b` also runs `a/__init__.py`, which is not counted as
an edge (a package's own structure, not a dependency). Imports of other distributions (torch, mindspore,
megatron) are not edges: the facade serving `torch` is activation, not an import of the facade.

Three rules, each failing with the offending file:line:
1. No upward edge between LAYERS (lower index = lower layer; an edge within one layer is fine) except those in
   ALLOWED_UPWARD, each with its reason (a stale entry is an error too); every module has a layer.
2. No import cycle outside the facade's core (FACADE_CORE): its modules follow torch's own package tree, in which
   a package and its submodules import each other (torch/__init__ imports torch.nn, torch.nn.functional needs
   torch's ops and dtypes), so cycles inside it are allowed; every other cycle is an error.
3. In REASON_REQUIRED (directories and files; the other areas join as they are cleaned), an import inside a
   function needs a reason in a comment on the statement or directly above it (or above the run of import
   statements it belongs to): optional dependency, import cost, a cycle inside the facade core, an ordering
   constraint. `noqa`/`type:`/`pragma` markers alone are not a reason.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]

# The project's packages (folders at the repository root); one that does not exist (yet) is skipped.
PACKAGES = ("shim", "megatron_patches", "parity", "qwen_sft", "tools")


class Layer(NamedTuple):
    name: str
    members: tuple[str, ...]   # module names; a member covers itself and, unless `exact`, every module below it
    exact: bool
    what: str


# Lowest first. A module belongs to the layer of the longest member that covers it.
LAYERS = (
    Layer("comm", ("shim._comm",), False,
          "the communication core on mindspore.Tensor: groups, collectives, p2p, the launcher's store"),
    Layer("facade", ("shim.torch", "shim.torch_npu"), False,
          "the torch API at torch's module paths (torch_npu: the Ascend extension's names)"),
    Layer("bootstrap", ("shim", "shim.__main__", "shim._import_hook", "shim._pth", "shim.check"), True,
          "activation (the import hook), `python -m shim`/shim-run, the .pth file; names the plugins; "
          "shim.check: `python -m shim check`, reads the facade without activating it"),
    Layer("launcher", ("shim.launcher",), False,
          "torchrun/torch.distributed.launch semantics: store, MindSpore scheduler, workers"),
    Layer("on the shim", ("megatron_patches", "parity", "shim.coverage"), False,
          "megatron-core's patches, the parity tool, the OpInfo coverage harness"),
    Layer("library", ("qwen_sft",), False, "the SFT workflow as a library"),
    Layer("programs", ("tools",), False, "thin CLIs over qwen_sft"),
)

# (importing module, imported module or package): why this edge goes upward and is still right.
ALLOWED_UPWARD = {
    ("shim.torch.distributed.run", "shim.launcher"):
        "torch.distributed.run is torchrun: under the shim, running the launcher is what the module means",
    ("shim.torch.distributed.launch", "shim.launcher"):
        "torch.distributed.launch is the legacy launcher: under the shim it runs the shim's launcher",
}

# Cycles allowed inside these packages (see rule 2 in the module docstring).
FACADE_CORE = ("shim.torch", "shim.torch_npu")

# Cycles being removed on another branch, tolerated until that lands (exact module sets: a cycle that changes
# or moves is an error). Delete an entry once its cycle is gone.
PENDING_CYCLES: dict = {}

# Where a function-level import must carry a reason comment (rule 3): folders end in "/", else files.
REASON_REQUIRED = (
    "shim/_comm/", "shim/launcher/",
    "shim/__init__.py", "shim/__main__.py", "shim/_import_hook.py", "shim/_pth.py", "shim/check.py",
    "megatron_patches/__init__.py", "megatron_patches/__main__.py", "megatron_patches/registry.py",
    "parity/", "shim/coverage/__main__.py", "shim/coverage/report.py",
)


# ----------------------------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Edge:
    src: str          # importing module
    dst: str          # imported project module
    path: str         # file of the importing module, relative to the root
    line: int
    in_function: bool

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class FunctionImport:
    path: str
    line: int
    text: str
    reason: str       # the comment found ("" when none)


def module_name(rel: Path) -> str:
    """`shim/_comm/ops.py` -> `shim._comm.ops`; `shim/__init__.py` -> `shim`."""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Module name -> file, for every .py file under the given top-level folders of `root`."""
    out = {}
    for pkg in packages:
        base = root / pkg
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*.py")):
            if "__pycache__" in f.parts:
                continue
            out[module_name(f.relative_to(root))] = f
    return out


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest project module that `name` or one of its prefixes names; None for other distributions."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _in_function(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def _imported_names(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The project modules one import statement (or literal import_module call) names."""
    out = []
    if isinstance(node, ast.Import):
        out = [_resolve(a.name, modules) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        for a in node.names:
            full = f"{prefix}.{a.name}" if prefix else a.name
            out.append(full if full in modules else _resolve(prefix, modules))
    elif isinstance(node, ast.Call):
        out = [_resolve(node.args[0].value, modules)]
    return [m for m in out if m is not None]


def _literal_import_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)) or arg.value.startswith("."):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "__import__") or (
        isinstance(f, ast.Attribute) and f.attr == "import_module"
        and isinstance(f.value, ast.Name) and f.value.id == "importlib")


def build_graph(root: Path, packages: Iterable[str]) -> tuple[set[str], list[Edge]]:
    """(modules, edges) of the project under `root` (see the module docstring)."""
    files = project_files(root, packages)
    modules = set(files)
    edges = []
    for mod, f in files.items():
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        parents = _parents(tree)
        rel = f.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if not (isinstance(node, (ast.Import, ast.ImportFrom)) or _literal_import_call(node)):
                continue
            inside = _in_function(node, parents)
            for dst in _imported_names(node, mod, f.name == "__init__.py", modules):
                if dst != mod:
                    edges.append(Edge(mod, dst, rel, node.lineno, inside))
    return modules, edges


# ------------------------------------------------------------------------------------------------- rule 1
def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index in `layers` of the layer holding `module` (longest covering member), None when none does."""
    best, best_len = None, -1
    for i, layer in enumerate(layers):
        for m in layer.members:
            covers = module == m or (not layer.exact and module.startswith(m + "."))
            if covers and len(m) > best_len:
                best, best_len = i, len(m)
    return best


def _allowed(edge: Edge, allowed) -> tuple | None:
    for key in allowed:
        src, dst = key
        if edge.src == src and (edge.dst == dst or edge.dst.startswith(dst + ".")):
            return key
    return None


def layer_violations(modules: set[str], edges: list[Edge], layers=LAYERS, allowed=ALLOWED_UPWARD) -> list[str]:
    """Messages for modules without a layer, upward edges not in `allowed`, and entries of `allowed` that no edge
    uses any more."""
    problems = [f"{m}: no layer covers this module; add it to LAYERS in tests/test_architecture.py"
                for m in sorted(modules) if layer_of(m, layers) is None]
    used = set()
    for e in edges:
        lo, hi = layer_of(e.src, layers), layer_of(e.dst, layers)
        if lo is None or hi is None or hi <= lo:
            continue
        key = _allowed(e, allowed)
        if key is not None:
            used.add(key)
            continue
        problems.append(f"{e.where()}: upward import {e.src} ({layers[lo].name}) -> {e.dst} ({layers[hi].name})"
                        + (" inside a function" if e.in_function else ""))
    problems += [f"ALLOWED_UPWARD entry {k} is not used by any import any more: remove it"
                 for k in allowed if k not in used]
    return problems


# ------------------------------------------------------------------------------------------------- rule 2
def strongly_connected(nodes: Iterable[str], edges: list[Edge]) -> list[list[str]]:
    """The components of more than one module (iterative Tarjan), each sorted."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ.setdefault(e.src, []).append(e.dst)
        succ.setdefault(e.dst, [])
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, iter(sorted(set(succ[start]))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(set(succ[nxt])))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _in_core(module: str, core) -> bool:
    return any(module == c or module.startswith(c + ".") for c in core)


def cycle_violations(modules: set[str], edges: list[Edge], core=FACADE_CORE, pending=PENDING_CYCLES) -> list[str]:
    """One message per import cycle with a module outside `core`, listing the edges that close it."""
    problems = []
    for comp in strongly_connected(modules, edges):
        if all(_in_core(m, core) for m in comp) or frozenset(comp) in pending:
            continue
        members = set(comp)
        inner = sorted({(e.where(), e.src, e.dst, e.in_function) for e in edges
                        if e.src in members and e.dst in members})
        lines = [f"  {w}: {s} -> {d}" + (" (inside a function)" if f else "") for w, s, d, f in inner]
        problems.append(f"import cycle among {', '.join(comp)}:\n" + "\n".join(lines))
    return problems


# ------------------------------------------------------------------------------------------------- rule 3
_MARKERS = re.compile(r"noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?|pragma:[^#]*",
                      re.IGNORECASE)


def _comments(source: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _is_reason(comment: str) -> bool:
    return bool(re.search(r"[A-Za-z]", _MARKERS.sub("", comment)))


def _run_start(node: ast.stmt, parent: ast.AST) -> int:
    """First line after the statement that precedes the run of import statements `node` belongs to (or after
    the header of the block that holds the run)."""
    for _, value in ast.iter_fields(parent):
        if isinstance(value, list) and node in value:
            i = value.index(node)
            while i > 0 and isinstance(value[i - 1], (ast.Import, ast.ImportFrom)):
                i -= 1
            return value[i - 1].end_lineno + 1 if i > 0 else parent.lineno + 1
    return node.lineno


def function_imports(path: Path, rel: str) -> list[FunctionImport]:
    """Every import statement inside a function of the file, with the reason comment found for it: on the
    statement's own lines, or on the comment lines directly above it or above the run of import statements it
    belongs to."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    parents = _parents(tree)
    comments = _comments(source)
    lines = source.splitlines()
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or not _in_function(node, parents):
            continue
        span = range(_run_start(node, parents[node]), node.end_lineno + 1)
        reason = next((comments[n] for n in span if n in comments and _is_reason(comments[n])), "")
        out.append(FunctionImport(rel, node.lineno, lines[node.lineno - 1].strip(), reason))
    return sorted(out, key=lambda f: f.line)


def _enforced(rel: str, required) -> bool:
    return any(rel.startswith(r) if r.endswith("/") else rel == r for r in required)


def reason_violations(root: Path, packages: Iterable[str], required=REASON_REQUIRED) -> list[str]:
    """Function-level imports without a reason comment in the files `required` covers."""
    problems = []
    for f in project_files(root, packages).values():
        rel = f.relative_to(root).as_posix()
        if not _enforced(rel, required):
            continue
        problems += [f"{fi.path}:{fi.line}: import inside a function without a reason comment: {fi.text}"
                     for fi in function_imports(f, rel) if not fi.reason]
    return problems


# -------------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def graph():
    return build_graph(REPO, PACKAGES)


def test_the_graph_is_the_projects(graph):
    # a walk that found nothing would pass every rule
    modules, edges = graph
    assert {"shim", "shim._comm.world", "shim.torch", "shim.launcher.agent", "megatron_patches.registry",
            "qwen_sft.training", "tools.train"} <= modules
    assert any(e.src == "shim._comm.ops" and e.dst == "shim._comm.world" for e in edges)
    assert any(e.src == "tools.train" and e.dst == "qwen_sft.training" for e in edges)


def test_no_upward_import_between_layers(graph):
    problems = layer_violations(*graph)
    assert not problems, "\n".join(problems)


def test_no_import_cycle_outside_the_facade_core(graph):
    problems = cycle_violations(*graph)
    assert not problems, "\n\n".join(problems)


def test_function_level_imports_state_their_reason():
    # every entry names something that exists (a renamed folder must not silently end the rule)
    assert all((REPO / r).exists() for r in REASON_REQUIRED), [r for r in REASON_REQUIRED if not (REPO / r).exists()]
    problems = reason_violations(REPO, PACKAGES)
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------- the rules fail on a synthetic project
def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in {(tmp_path / rel).parent for rel in files}:
        while d != tmp_path:
            (d / "__init__.py").touch()
            d = d.parent
    return tmp_path


def test_synthetic_upward_edge_inside_a_function_is_reported_with_file_and_line(tmp_path):
    root = _project(tmp_path, {
        "shim/_comm/world.py": "import os\n\n\ndef f():\n    from shim.launcher import agent\n    return agent\n",
        "shim/launcher/agent.py": "from shim._comm import world\n",
        "shim/torch/distributed/run.py": "def main():\n    from shim.launcher import agent\n",
    })
    problems = layer_violations(*build_graph(root, PACKAGES))
    assert problems == ["shim/_comm/world.py:5: upward import shim._comm.world (comm) -> shim.launcher.agent "
                        "(launcher) inside a function",
                        "ALLOWED_UPWARD entry ('shim.torch.distributed.launch', 'shim.launcher') is not used by "
                        "any import any more: remove it"]


def test_synthetic_relative_and_literal_imports_resolve(tmp_path):
    root = _project(tmp_path, {
        "qwen_sft/a.py": "from . import b\nfrom .b import X\n",
        "qwen_sft/b.py": "X = 1\n",
        "megatron_patches/p.py": "import importlib\nimportlib.import_module('qwen_sft.a')\n",
        "tools/t.py": "import numpy\nimport qwen_sft.b\n",
    })
    modules, edges = build_graph(root, PACKAGES)
    assert sorted((e.src, e.dst, e.line) for e in edges) == [
        ("megatron_patches.p", "qwen_sft.a", 2), ("qwen_sft.a", "qwen_sft.b", 1), ("qwen_sft.a", "qwen_sft.b", 2),
        ("tools.t", "qwen_sft.b", 2)]
    problems = layer_violations(modules, edges, allowed={})
    assert problems == ["megatron_patches/p.py:2: upward import megatron_patches.p (on the shim) -> qwen_sft.a "
                        "(library)"]
    assert layer_violations({"shim.newthing"}, [], allowed={}) == [
        "shim.newthing: no layer covers this module; add it to LAYERS in tests/test_architecture.py"]


def test_synthetic_cycle_is_reported_unless_inside_the_facade_core(tmp_path):
    root = _project(tmp_path, {
        "shim/launcher/agent.py": "from .cli import X\n",
        "shim/launcher/cli.py": "X = 1\n\n\ndef parse():\n    from .agent import free_port\n",
        "shim/torch/a.py": "from shim.torch import b\n",
        "shim/torch/b.py": "from shim.torch import a\n",
    })
    problems = cycle_violations(*build_graph(root, PACKAGES))
    assert problems == ["import cycle among shim.launcher.agent, shim.launcher.cli:\n"
                        "  shim/launcher/agent.py:1: shim.launcher.agent -> shim.launcher.cli\n"
                        "  shim/launcher/cli.py:5: shim.launcher.cli -> shim.launcher.agent (inside a function)"]


def test_synthetic_function_import_without_reason_is_reported(tmp_path):
    root = _project(tmp_path, {"shim/_comm/ops.py": (
        "def a():\n"
        "    import json\n"                                   # 2: no reason
        "\n"
        "def b():\n"
        "    # import cost: MindSpore\n"
        "    import mindspore\n"                              # 6: reason above
        "    from mindspore import ops\n"                     # 7: same run of imports
        "\n"
        "def c():\n"
        "    import pickle  # noqa: F401\n"                   # 10: a marker is not a reason
        "\n"
        "def d():\n"
        "    import pickle  # noqa: F401  (optional dependency)\n"  # 13: reason after the marker
        "\n"
        "def e():\n"
        "    x = 1\n"
        "    from mindspore import (\n"                       # 17: multi-line, no reason
        "        ops)\n")})
    assert reason_violations(root, PACKAGES) == [
        "shim/_comm/ops.py:2: import inside a function without a reason comment: import json",
        "shim/_comm/ops.py:10: import inside a function without a reason comment: import pickle  # noqa: F401",
        "shim/_comm/ops.py:17: import inside a function without a reason comment: from mindspore import ("]
    # outside REASON_REQUIRED the rule is not applied (yet)
    assert reason_violations(root, PACKAGES, required=("qwen_sft/",)) == []
