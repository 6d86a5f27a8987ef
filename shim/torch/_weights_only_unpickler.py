"""Safe unpickling for ``torch.load(..., weights_only=True)`` on the shim.

What it accepts (the allow-list): the globals that a checkpoint made of tensors, containers and plain Python
values needs — the tensor/parameter rebuild functions and legacy storage classes that torch's own ``torch.save``
writes (``torch._utils._rebuild_tensor_v2`` …, ``torch.FloatStorage`` …), ``torch.<dtype>``, ``torch.device``,
``torch.Size``, ``collections.OrderedDict`` and ``_codecs.encode`` (protocol-2 pickles write ``bytes`` through
it), plus anything the user registered with ``torch.serialization.add_safe_globals``. Any other global raises
``pickle.UnpicklingError`` naming it — the same contract as torch's weights-only loader (torch implements its
own opcode interpreter; this one restricts ``find_class`` of the standard unpickler, which is the mechanism the
Python documentation recommends, and every allowed callable only builds data).

The module is independent of the facade: callers pass the resolution table (``(module, name) -> object``).
"""
from __future__ import annotations

import pickle
from typing import Any, Callable, Mapping

__all__ = ["WeightsOnlyUnpickler", "SAFE_BUILTINS", "user_safe_globals"]

# builtins/containers that only build data (torch's weights-only loader accepts the same kinds)
SAFE_BUILTINS: dict[tuple[str, str], Any] = {}


def _init_builtins() -> None:
    import _codecs
    import builtins
    import collections

    for name in ("set", "frozenset", "complex", "bytearray", "slice", "range"):
        SAFE_BUILTINS[("builtins", name)] = getattr(builtins, name)
        SAFE_BUILTINS[("__builtin__", name)] = getattr(builtins, name)
    SAFE_BUILTINS[("collections", "OrderedDict")] = collections.OrderedDict
    SAFE_BUILTINS[("collections", "Counter")] = collections.Counter
    SAFE_BUILTINS[("_codecs", "encode")] = _codecs.encode


_init_builtins()

# (module, qualname) -> object registered through torch.serialization.add_safe_globals
user_safe_globals: dict[tuple[str, str], Any] = {}


class WeightsOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only from an allow-list.

    Args:
        file: binary file-like object positioned at the pickle.
        allowed: ``(module, name) -> object`` for the torch names the facade serves (rebuild functions,
            storage stand-ins, dtypes, ``device``, ``Size``).
        persistent_load: the callback for persistent ids (torch's storages).

    Raises:
        pickle.UnpicklingError: for any global outside ``allowed``, :data:`SAFE_BUILTINS` and
            :data:`user_safe_globals`, with the offending ``module.name`` and how to allow it.
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], Any], persistent_load: Callable[[Any], Any]):
        super().__init__(file)
        self._allowed = allowed
        self._persistent_load_fn = persistent_load

    def persistent_load(self, pid):  # noqa: D102 - pickle protocol hook
        return self._persistent_load_fn(pid)

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle protocol hook
        key = (module, name)
        for table in (self._allowed, SAFE_BUILTINS, user_safe_globals):
            if key in table:
                return table[key]
        raise pickle.UnpicklingError(
            f"Weights only load failed: unsupported global {module}.{name} in the checkpoint. "
            f"If you trust the file, load it with torch.load(..., weights_only=False), or allow the global with "
            f"torch.serialization.add_safe_globals([{module}.{name}])."
        )
