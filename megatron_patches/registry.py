"""The patch registry: named, versioned replacements of megatron-core attributes, applied under the shim only.

A `Patch` names its target by dotted path (`megatron.core.pkg.module.Attr[.attr...]`: the longest importable
module prefix, then attributes), a factory `replacement(original) -> new` (so a patch may wrap what it
replaces), a reason, the megatron-core versions it applies to (a PEP 440 specifier such as ">=0.16,<0.17"),
and `stacks`: whether it may be applied on top of another patch of the same target (True: it wraps the value
the earlier patch installed; False: a second patch of that target is an error). A patch with `defines=True` sets a
module global that Megatron's code reads but, in some installations, never binds (a name imported only when an
optional package is present): its replacement receives `ABSENT` when the name is missing.

`apply_all()` applies every registered patch whose specifier matches the installed megatron-core:
- a target that cannot be imported or has no such attribute raises `PatchError` (never skipped silently);
- the new value replaces the attribute, and every already-imported `megatron*` module that bound the original
  under some name (`from x import f`) is rebound to the new value as well;
- function replacements are wrapped so that a call records a *hit* (count per patch);
- $MEGATRON_PATCHES_DISABLE (comma-separated names) leaves the named patches out, to show what one fixes.
State (applied, hit count, rebound names) is kept per process; `write_state(path)` stores it as JSON and
`python -m megatron_patches --list` shows it (see `megatron_patches/__main__.py`).

A *module stand-in* (`register_module_stand_in`) is the other kind: a whole megatron module that exists only for
CUDA and cannot even be imported without a CUDA-only package (Triton kernels behind `import triton`) is served
from a file of this package instead, only while that package is not importable. Its names keep Megatron's API;
using the missing feature raises an error naming it. `install_module_stand_ins()` puts the finder in
`sys.meta_path`; the shim's activation does so, and so does the CPU reference runner (`qwen_sft.cpu_accelerator`),
since the missing package is as absent under real torch on this machine.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import os
import sys
import threading
import types
from typing import Any, Callable, Dict, List, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet

__all__ = ["Patch", "PatchError", "ABSENT", "register", "registered", "apply_all", "await_program_modules", "state",
           "write_state",
           "megatron_core_version", "STATE_ENV", "DISABLE_ENV", "ModuleStandIn", "register_module_stand_in",
           "module_stand_ins", "install_module_stand_ins", "uninstall_module_stand_ins"]

# Environment variable naming the JSON file each process writes its patch state into at exit. "{rank}" in
# the value is replaced by the process's RANK (default 0); without it, ranks other than 0 append ".rank<N>".
STATE_ENV = "MEGATRON_PATCHES_STATE"
# Comma-separated patch names NOT to apply (diagnosis: show what a patch fixes); unknown names are an error.
DISABLE_ENV = "MEGATRON_PATCHES_DISABLE"


class PatchError(RuntimeError):
    """A patch cannot be applied: missing target, conflicting patches, bad specifier or replacement."""


class _Absent:
    """The `original` handed to a `defines=True` patch's replacement when its module global does not exist."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclasses.dataclass
class Patch:
    """One named replacement of a megatron-core attribute.

    name: unique identifier (shown by `--list`); target: dotted path of the attribute to replace;
    replacement: `f(original) -> new value` (a function, or a class for class targets); reason: why megatron-core
    needs it under the shim; versions: PEP 440 specifier of the megatron-core versions it applies to;
    stacks: True if it may wrap another patch of the same target (applied in registration order).
    """

    name: str
    target: str
    replacement: Callable[[Any], Any]
    reason: str
    versions: str
    stacks: bool
    # Megatron-LM module (absent from the megatron-core wheel) whose import triggers this patch; None: applied with
    # the others right after megatron.core is imported.
    on_import: Optional[str] = None
    # True for a patch of a CUDA-only part of Megatron, or of a Megatron-LM defect that stops real torch alike: the
    # CPU reference runner (real torch) applies it too.
    cpu_reference: bool = False
    # True: the target is a module global that may be missing (the replacement then gets ABSENT); the module itself
    # must still exist.
    defines: bool = False
    # For an `on_import` module outside `megatron.` (a Megatron-LM program module imported by its top-level name,
    # e.g. tools/checkpoint's `saver_base`): the file's path inside Megatron-LM; a module of that name loaded from
    # any other file is left alone.
    program_file: Optional[str] = None
    # runtime state
    applied: bool = False
    hits: int = 0
    rebound: List[str] = dataclasses.field(default_factory=list)
    skipped_reason: Optional[str] = None

    def record_hit(self) -> None:
        """Count one use of the replacement (called by the hit-counting wrapper)."""
        with _LOCK:
            self.hits += 1


_LOCK = threading.Lock()
_PATCHES: Dict[str, Patch] = {}
_APPLIED = [False]


def register(name: str, *, target: str, replacement: Callable[[Any], Any], reason: str, versions: str,
             stacks: bool, on_import: Optional[str] = None, cpu_reference: bool = False,
             defines: bool = False, program_file: Optional[str] = None) -> Patch:
    """Add a patch to the registry (see `Patch` for the fields). Raises PatchError for a duplicate name, an
    empty reason, a target outside `megatron.` (or outside its `on_import` module; a target outside `megatron.`
    needs `on_import` and `program_file`) or an invalid version specifier."""
    if on_import is not None and not target.startswith(on_import + "."):
        raise PatchError(f"patch {name!r}: target {target!r} is not inside its on_import module {on_import!r}")
    if name in _PATCHES or name in _STAND_INS:
        raise PatchError(f"patch {name!r} is registered twice")
    if program_file is not None and on_import is None:
        raise PatchError(f"patch {name!r}: program_file {program_file!r} needs an on_import module")
    if not target.startswith("megatron.") and program_file is None:
        raise PatchError(f"patch {name!r}: target {target!r} is not a megatron dotted path (a Megatron-LM program "
                         f"module needs on_import and program_file)")
    if not reason.strip():
        raise PatchError(f"patch {name!r}: a reason is required")
    try:
        SpecifierSet(versions)
    except InvalidSpecifier as e:
        raise PatchError(f"patch {name!r}: invalid megatron-core version specifier {versions!r}: {e}") from None
    if not isinstance(stacks, bool):
        raise PatchError(f"patch {name!r}: stacks must be True or False, got {stacks!r}")
    p = Patch(name=name, target=target, replacement=replacement, reason=reason, versions=versions, stacks=stacks,
              on_import=on_import, cpu_reference=bool(cpu_reference), defines=bool(defines),
              program_file=program_file)
    _PATCHES[name] = p
    return p


def registered() -> List[Patch]:
    """Every registered patch, in registration (= application) order."""
    return list(_PATCHES.values())


def megatron_core_version() -> str:
    """The installed megatron-core distribution's version (PatchError when it is not installed)."""
    try:
        return importlib.metadata.version("megatron-core")
    except importlib.metadata.PackageNotFoundError:
        raise PatchError("megatron-core is not installed") from None


def _resolve(target: str, defines: bool = False):
    """(owner object, attribute name, current value) of a dotted target; PatchError when missing (with `defines`, a
    missing last attribute of a module gives ABSENT as the value)."""
    parts = target.split(".")
    module = None
    for i in range(len(parts) - 1, 0, -1):
        modname = ".".join(parts[:i])
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname or (e.name and modname.startswith(e.name + ".") and e.name != "megatron"):
                continue  # this prefix is not a module: try a shorter one (the rest are attributes)
            raise PatchError(f"target {target!r}: importing {modname} failed: {e}") from e
        attrs = parts[i:]
        break
    if module is None:
        raise PatchError(f"target {target!r}: no importable module prefix")
    owner = module
    for a in attrs[:-1]:
        if not hasattr(owner, a):
            raise PatchError(f"target {target!r}: {owner!r} has no attribute {a!r}")
        owner = getattr(owner, a)
    if defines and isinstance(owner, types.ModuleType) and not hasattr(owner, attrs[-1]):
        return owner, attrs[-1], ABSENT
    if attrs[-1] not in vars(owner) if isinstance(owner, type) else not hasattr(owner, attrs[-1]):
        raise PatchError(f"target {target!r}: {getattr(owner, '__name__', owner)!r} has no attribute "
                         f"{attrs[-1]!r}")
    value = vars(owner)[attrs[-1]] if isinstance(owner, type) else getattr(owner, attrs[-1])
    return owner, attrs[-1], value


def _counting(patch: Patch, new):
    """Wrap a function replacement so that each call records a hit; other values are returned unchanged
    (a class replacement records hits itself by calling `patch.record_hit()`)."""
    if isinstance(new, staticmethod):
        return staticmethod(_counting(patch, new.__func__))
    if isinstance(new, classmethod):
        return classmethod(_counting(patch, new.__func__))
    if isinstance(new, types.FunctionType):
        @functools.wraps(new)
        def hit(*args, **kwargs):
            patch.record_hit()
            return new(*args, **kwargs)
        hit.__megatron_patch__ = patch.name
        return hit
    return new


def _rebind(original, new, skip_owner) -> List[str]:
    """Rebind every `megatron*` module global that is `original` to `new`; returns 'module.name' entries."""
    out = []
    for modname, mod in list(sys.modules.items()):
        if mod is None or mod is skip_owner or not modname.startswith("megatron"):
            continue
        d = getattr(mod, "__dict__", None)
        if not d:
            continue
        for k, v in list(d.items()):
            if v is original:
                d[k] = new
                out.append(f"{modname}.{k}")
    return out


def apply_all(version: Optional[str] = None, cpu_reference_only: bool = False) -> List[Patch]:
    """Apply every registered patch whose specifier matches megatron-core `version` (default: installed).

    A patch with `on_import` is applied when that module is imported (now, if it already is; the finder goes
    into `sys.meta_path`). `cpu_reference_only`: apply only the `cpu_reference` patches (the CPU reference runner
    on real torch). Idempotent (a second call does nothing). Returns the patches applied now. Raises PatchError on
    a missing target or two non-stacking patches of one target."""
    with _LOCK:
        if _APPLIED[0]:
            return [p for p in _PATCHES.values() if p.applied]
        _APPLIED[0] = True
    version = version or megatron_core_version()
    disabled = _disabled_names()
    done: List[Patch] = []
    for p in _PATCHES.values():
        if version not in SpecifierSet(p.versions):
            p.skipped_reason = f"megatron-core {version} not in {p.versions}"
            continue
        if p.name in disabled:
            p.skipped_reason = f"disabled by ${DISABLE_ENV}"
            continue
        if cpu_reference_only and not p.cpu_reference:
            p.skipped_reason = "not a CUDA-only patch (the CPU reference runner applies only those)"
            continue
        if p.applied or p in _ON_IMPORT.get(p.on_import, ()):
            continue  # a program-module patch applied or awaited since `await_program_modules()`
        if p.on_import is not None and p.on_import not in sys.modules:
            _await(p)
            continue
        if p.program_file is not None and not _is_program_module(sys.modules[p.on_import], p):
            p.skipped_reason = f"{p.on_import} is not Megatron-LM's {p.program_file}"
            continue
        _apply_one(p)
        done.append(p)
    return done


def _await(p: Patch) -> None:
    _ON_IMPORT.setdefault(p.on_import, []).append(p)
    if _ON_IMPORT_FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _ON_IMPORT_FINDER)


def _is_program_module(module, p: Patch) -> bool:
    origin = os.path.abspath(getattr(module, "__file__", None) or "")
    return origin.endswith(os.sep + os.path.normpath(p.program_file))


def await_program_modules(version: Optional[str] = None) -> List[Patch]:
    """Wait for the Megatron-LM program modules that patches name (`program_file`): a Megatron-LM tool imports
    them before megatron.core (tools/checkpoint/convert.py imports its loader and saver first), so the shim's
    activation calls this rather than waiting for `apply_all`. A module already imported is patched now. Same
    version/$MEGATRON_PATCHES_DISABLE rules as `apply_all`; idempotent. Returns the patches now awaited or
    applied."""
    version = version or megatron_core_version()
    disabled = _disabled_names()
    out: List[Patch] = []
    with _LOCK:
        pending = [p for p in _PATCHES.values() if p.program_file is not None and not p.applied
                   and p not in _ON_IMPORT.get(p.on_import, ()) and p.name not in disabled
                   and version in SpecifierSet(p.versions)]
    for p in pending:
        module = sys.modules.get(p.on_import)
        if module is None:
            _await(p)
        elif _is_program_module(module, p):
            _apply_one(p)
        else:
            continue
        out.append(p)
    return out


_BY_TARGET: Dict[str, Patch] = {}


def _apply_one(p: Patch) -> None:
    prev = _BY_TARGET.get(p.target)
    if prev is not None and not p.stacks:
        raise PatchError(f"patch {p.name!r} does not stack but {prev.name!r} already patched {p.target}")
    owner, attr, original = _resolve(p.target, p.defines)
    new = _counting(p, p.replacement(original))
    setattr(owner, attr, new)
    # Functions bound under other names by `from x import f` (class attributes are found through the class).
    if not isinstance(owner, type) and original is not ABSENT:
        p.rebound = _rebind(original, new, owner)
    p.applied = True
    _BY_TARGET[p.target] = p


# on_import module -> the patches waiting for its import
_ON_IMPORT: Dict[str, List[Patch]] = {}


class _OnImportFinder(importlib.abc.MetaPathFinder):
    """Finds a module that patches wait for through the other finders and wraps its loader so that those patches
    are applied right after the module's own code has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _ON_IMPORT:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module, _exec=exec_module):
            _exec(module)
            for p in _ON_IMPORT.pop(fullname, []):
                if p.program_file is not None and not _is_program_module(module, p):
                    p.skipped_reason = f"{fullname} is not Megatron-LM's {p.program_file}"
                    continue
                _apply_one(p)
            if not _ON_IMPORT and self in sys.meta_path:
                sys.meta_path.remove(self)

        spec.loader.exec_module = exec_and_patch
        return spec


_ON_IMPORT_FINDER = _OnImportFinder()


def _disabled_names() -> set:
    """The names in $MEGATRON_PATCHES_DISABLE; PatchError when one names neither a patch nor a stand-in."""
    disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    unknown = disabled - set(_PATCHES) - set(_STAND_INS)
    if unknown:
        raise PatchError(f"${DISABLE_ENV} names unknown patches: {', '.join(sorted(unknown))}")
    return disabled


# ------------------------------------------------------------------------------------------ module stand-ins
@dataclasses.dataclass
class ModuleStandIn:
    """A megatron module served from `source` (a file of this package) while `needs` cannot be imported.

    name: unique identifier (shares the namespace of patches: `--list`, $MEGATRON_PATCHES_DISABLE); module: the
    dotted megatron module replaced; source: path of the stand-in file; needs: the top-level package whose
    absence makes Megatron's module unimportable; reason; versions: PEP 440 specifier of megatron-core.
    """

    name: str
    module: str
    source: str
    needs: str
    reason: str
    versions: str
    served: int = 0  # how many times this process imported the stand-in in place of Megatron's module


_STAND_INS: Dict[str, ModuleStandIn] = {}


def register_module_stand_in(name: str, *, module: str, source: str, needs: str, reason: str,
                             versions: str) -> ModuleStandIn:
    """Add a module stand-in (see `ModuleStandIn`). PatchError for a duplicate name, a module outside `megatron.`,
    a missing source file, an empty reason or an invalid version specifier."""
    if name in _STAND_INS or name in _PATCHES:
        raise PatchError(f"patch {name!r} is registered twice")
    if not module.startswith("megatron."):
        raise PatchError(f"stand-in {name!r}: module {module!r} is not a megatron module")
    if not os.path.isfile(source):
        raise PatchError(f"stand-in {name!r}: source file {source!r} does not exist")
    if not reason.strip():
        raise PatchError(f"stand-in {name!r}: a reason is required")
    try:
        SpecifierSet(versions)
    except InvalidSpecifier as e:
        raise PatchError(f"stand-in {name!r}: invalid megatron-core version specifier {versions!r}: {e}") from None
    s = ModuleStandIn(name=name, module=module, source=source, needs=needs, reason=reason, versions=versions)
    _STAND_INS[name] = s
    return s


def module_stand_ins() -> List[ModuleStandIn]:
    """Every registered module stand-in, in registration order."""
    return list(_STAND_INS.values())


class _StandInFinder(importlib.abc.MetaPathFinder):
    """Serves a registered megatron module from its stand-in file when the package it needs is not importable,
    the installed megatron-core matches the stand-in's versions and $MEGATRON_PATCHES_DISABLE does not name it.
    Otherwise it finds nothing and Megatron's own module is imported (and fails as it would without us)."""

    def find_spec(self, fullname, path=None, target=None):
        for s in _STAND_INS.values():
            if s.module != fullname:
                continue
            if s.name in _disabled_names() or megatron_core_version() not in SpecifierSet(s.versions):
                return None
            if importlib.util.find_spec(s.needs) is not None:
                return None
            with _LOCK:
                s.served += 1
            return importlib.util.spec_from_file_location(fullname, s.source)
        return None


_STAND_IN_FINDER = _StandInFinder()


def install_module_stand_ins() -> None:
    """Put the stand-in finder first in `sys.meta_path` (idempotent). A stand-in module already imported is not
    replaced: install before the megatron module is imported."""
    if _STAND_IN_FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _STAND_IN_FINDER)


def uninstall_module_stand_ins() -> None:
    """Remove the stand-in finder from `sys.meta_path` (modules already served stay imported)."""
    if _STAND_IN_FINDER in sys.meta_path:
        sys.meta_path.remove(_STAND_IN_FINDER)


def state() -> dict:
    """This process's patch state: megatron-core version, rank, and per patch applied/hits/rebound."""
    try:
        version = megatron_core_version()
    except PatchError:
        version = None
    return {
        "megatron_core": version,
        "rank": int(os.environ.get("RANK", "0")),
        "applied_all": _APPLIED[0],
        "patches": {p.name: {"target": p.target, "versions": p.versions, "stacks": p.stacks, "reason": p.reason,
                             "applied": p.applied, "hits": p.hits, "rebound": list(p.rebound),
                             "on_import": p.on_import, "cpu_reference": p.cpu_reference, "defines": p.defines,
                             "program_file": p.program_file,
                             "skipped_reason": p.skipped_reason} for p in _PATCHES.values()},
        "module_stand_ins": {s.name: {"module": s.module, "needs": s.needs, "versions": s.versions,
                                      "reason": s.reason, "served": s.served} for s in _STAND_INS.values()},
    }


def state_path(value: Optional[str] = None) -> Optional[str]:
    """The state file of this process from `value` (default: $MEGATRON_PATCHES_STATE), or None when unset."""
    value = value if value is not None else os.environ.get(STATE_ENV)
    if not value:
        return None
    rank = int(os.environ.get("RANK", "0"))
    if "{rank}" in value:
        return value.replace("{rank}", str(rank))
    return value if rank == 0 else f"{value}.rank{rank}"


def write_state(path: Optional[str] = None) -> Optional[str]:
    """Write `state()` as JSON to `path` (default: `state_path()`); returns the path written, or None."""
    path = path or state_path()
    if path is None:
        return None
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(state(), f, indent=1)
    os.replace(tmp, path)
    return path
