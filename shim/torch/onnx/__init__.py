"""torch.onnx: importable; exporting is not provided by the shim.

The shim runs models eagerly on MindSpore PyNative and has no tracer or graph capture to build an ONNX graph from,
so `export` raises UnsupportedAPI (a NotImplementedError) naming `torch.onnx.export`. Export the model with real
torch instead (a checkpoint the shim saved with `torch.save`/`save_pretrained` loads there unchanged).
Any other `torch.onnx.X` (e.g. `dynamo_export`, which torch 2.13 no longer has either) raises UnsupportedAPI
naming it. `is_in_onnx_export()` is False: no export is ever in progress under the shim, which is what programs
that branch on it want to know.
"""
from __future__ import annotations

from .._unsupported import UnsupportedAPI, module_getattr

__all__ = ["export", "is_in_onnx_export"]

_HINT = " (the shim runs eagerly and cannot capture an ONNX graph; export with real torch)"


def export(model, args=(), f=None, **kwargs):
    """torch.onnx.export: not supported; raises UnsupportedAPI (NotImplementedError) naming it."""
    raise UnsupportedAPI(f"torch.onnx.export is not implemented by the shim{_HINT}")


def is_in_onnx_export() -> bool:
    """False: the shim never runs an ONNX export."""
    return False


__getattr__ = module_getattr("torch.onnx", _HINT)
