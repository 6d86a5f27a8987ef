"""Activation: a meta-path finder that serves `torch` and `torch.*` from the facade `shim.torch`.

`import torch.nn` returns the very module object `shim.torch.nn` (aliasing, not a copy: sys.modules holds the
same object under both names), `importlib.metadata.version("torch")` answers TORCH_VERSION, and while the
finder is active real torch cannot be imported (every `torch*` name is answered by the facade).

Plugins: packages built on the facade that must act at activation (megatron_patches) are named by module with
`register_plugin` — by the bootstrap, `shim/__init__.py` — so that this module imports nothing above the facade.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import pathlib
import sys

__all__ = ["activate", "deactivate", "is_active", "register_plugin", "plugins", "TORCH_VERSION", "ShimFinder"]

# The torch API level the facade follows, plus a local version tag naming the backend (PEP 440 local label).
TORCH_VERSION = "2.13.0+mindspore"
_PREFIX = "torch"
_FACADE = "shim.torch"


def _facade_name(fullname: str) -> str:
    return _FACADE + fullname[len(_PREFIX):]


class _AliasLoader(importlib.abc.Loader):
    """Loads `torch.x` by importing `shim.torch.x` and handing back that same module object."""

    def __init__(self, facade_name: str):
        self.facade_name = facade_name

    def create_module(self, spec):
        return importlib.import_module(self.facade_name)

    def exec_module(self, module):
        return None  # already executed under its facade name

    def get_code(self, fullname):
        """The facade module's code: `python -m torch.distributed.launch` (runpy) runs it as __main__."""
        return importlib.util.find_spec(self.facade_name).loader.get_code(self.facade_name)


class _TorchDistribution(importlib.metadata.Distribution):
    """Package metadata for the facade's `torch` (name torch, version TORCH_VERSION)."""

    def read_text(self, filename):
        if filename in ("METADATA", "PKG-INFO"):
            return (f"Metadata-Version: 2.1\nName: torch\nVersion: {TORCH_VERSION}\n"
                    "Summary: torch API served by MindSpore PyNative (msshim facade)\n")
        if filename == "top_level.txt":
            return "torch\n"
        return None

    def locate_file(self, path):
        return pathlib.Path(__file__).parent / "torch" / path


class ShimFinder(importlib.abc.MetaPathFinder):
    """Serves `torch`/`torch.*` from `shim.torch`/`shim.torch.*`; answers torch's distribution metadata."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _PREFIX and not fullname.startswith(_PREFIX + "."):
            return None
        facade = _facade_name(fullname)
        try:
            facade_spec = importlib.util.find_spec(facade)
        except ModuleNotFoundError:
            facade_spec = None
        if facade_spec is None:
            # No such facade module: fail like a missing module (never fall through to real torch).
            raise ModuleNotFoundError(f"No module named '{fullname}' (the shim's torch facade has no "
                                      f"'{facade}')", name=fullname)
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(facade),
                                              is_package=facade_spec.submodule_search_locations is not None)
        spec.origin = facade_spec.origin
        return spec

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        name = getattr(context, "name", None)
        if name is None or name.lower() == "torch":
            return iter([_TorchDistribution()])
        return iter(())

    def invalidate_caches(self):
        pass


_finder = ShimFinder()

# Module names of the plugins, in registration (= call) order; see register_plugin.
_PLUGINS: list[str] = []

# The names of the plugin hooks a plugin module defines.
ACTIVATE_HOOK = "on_shim_activate"
DEACTIVATE_HOOK = "on_shim_deactivate"


def register_plugin(module: str) -> None:
    """Name a module to call at activation. Each `activate()` imports it after `torch` is served by the facade
    and calls its `on_shim_activate()`; `deactivate()` calls its `on_shim_deactivate()` when it was imported.
    A module whose top-level package is not installed is passed over (the plugin is optional, e.g. a deployment
    without megatron_patches); one that is installed but fails to import raises. Idempotent per name; raises
    ValueError for a name that is not a dotted module name."""
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(f"register_plugin: expected a dotted module name, got {module!r}")
    if module not in _PLUGINS:
        _PLUGINS.append(module)


def plugins() -> tuple[str, ...]:
    """The registered plugin module names, in call order."""
    return tuple(_PLUGINS)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None


def _hook(module, name: str):
    hook = getattr(module, name, None)
    if not callable(hook):
        raise TypeError(f"shim plugin {module.__name__!r} defines no {name}() (see shim._import_hook.register_plugin)")
    return hook


def is_active() -> bool:
    """Whether the torch facade is installed as `torch`."""
    return _finder in sys.meta_path


def activate() -> None:
    """Serve `import torch` from the facade for the rest of this process, then call each registered plugin's
    `on_shim_activate()` (see register_plugin).

    Raises RuntimeError if real torch was already imported (its objects would mix with the facade's).
    Idempotent."""
    if is_active():
        return
    loaded = sys.modules.get(_PREFIX)
    if loaded is not None and not getattr(loaded, "__name__", "").startswith(_FACADE):
        raise RuntimeError("real torch is already imported in this process; activate the shim before anything "
                           "imports torch (use shim-run, SHIM_BACKEND=mindspore, or call shim.activate() first)")
    sys.meta_path.insert(0, _finder)
    # import cost: the facade imports MindSpore; it is loaded at activation, never by `import shim`
    import shim.torch as facade
    sys.modules[_PREFIX] = facade
    # safetensors.torch must hand out facade tensors (import cost: part of the facade, as above)
    from shim.torch import _safetensors
    _safetensors.install()
    for name in _PLUGINS:
        if _installed(name):
            _hook(importlib.import_module(name), ACTIVATE_HOOK)()


def deactivate() -> None:
    """Remove the finder and the `torch*` aliases (used by tests; real torch may then be imported); imported
    plugins get `on_shim_deactivate()`, in reverse registration order."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in reversed(_PLUGINS):
        if name in sys.modules:
            _hook(sys.modules[name], DEACTIVATE_HOOK)()
    for name in [n for n in sys.modules if n == _PREFIX or n.startswith(_PREFIX + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith(_FACADE):
            del sys.modules[name]
