"""Facade op implementations, one module per family; `install()` attaches the Tensor methods.

Each family module exposes ``FUNCTIONS`` (name -> function served as ``torch.<name>``) and ``METHODS``
(name -> function served as ``torch.Tensor.<name>``)."""
from __future__ import annotations

from . import creation, pointwise, reduction, shape, indexing, linalg  # noqa: F401

FAMILIES = (creation, pointwise, reduction, shape, indexing, linalg)


def install(tensor_cls) -> None:
    """Attach every family's METHODS to the Tensor class (existing class attributes win)."""
    for fam in FAMILIES:
        for name, fn in getattr(fam, "METHODS", {}).items():
            if name not in tensor_cls.__dict__:
                setattr(tensor_cls, name, fn)


def functions() -> dict:
    """All torch.<name> functions implemented by the families."""
    out = {}
    for fam in FAMILIES:
        out.update(getattr(fam, "FUNCTIONS", {}))
    return out
