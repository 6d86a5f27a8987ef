"""Reading megatron-core ``torch_dist`` (PyTorch DCP) checkpoint directories as global numpy arrays.

A ``torch_dist`` iteration directory holds ``metadata.json`` and ``common.pt`` (megatron-core's) and a DCP checkpoint:
``.metadata`` plus ``__<rank>_<n>.distcp`` data files (layout: shim/torch/distributed/checkpoint/filesystem.py).
Every saved tensor is assembled from its chunks into one global array ([global shape], the saved dtype; bfloat16
widened exactly to float32); byte items (megatron's ShardedObjects) are listed, not read.

Which reader (both give the same arrays, see tests/shim/test_dcp_metadata_format.py):
- ``import torch`` is real PyTorch (a reference machine, this tool's usual case): PyTorch's own DCP reader,
  ``torch.distributed.checkpoint.FileSystemReader`` and ``load(..., no_dist=True)`` into a tensor of the global
  shape, one key at a time;
- ``import torch`` is the shim's facade (the shim is active), or real torch is not installed: the facade's DCP
  reader in ``shim.torch.distributed.checkpoint.filesystem`` (importing ``shim.torch`` does not activate the shim;
  it loads MindSpore).
torch is imported only when a torch_dist checkpoint is read (the rest of the parity tool runs without it).
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .inputs import ParityInputError

__all__ = ["TorchDistCheckpoint", "open_torch_dist"]

METADATA_FILE = ".metadata"  # DCP's metadata file name (torch.distributed.checkpoint.filesystem)


@dataclasses.dataclass
class TorchDistCheckpoint:
    """What a torch_dist directory holds.

    Attributes:
        path: the iteration directory.
        backend: "torch" (real PyTorch's reader) or "shim" (the facade's reader).
        files: ``.metadata`` and the data files it names (absolute paths, sorted after ``.metadata``).
        tensors: ``{key: (dtype name, global shape)}`` for every saved tensor.
        objects: keys of byte items (not read).
        load: ``load(key) -> np.ndarray``, the global array of one tensor.
    """
    path: Path
    backend: str
    files: list
    tensors: dict
    objects: list
    load: Callable[[str], np.ndarray]


def _torch_module():
    """The importable torch (real or the active facade), or None when there is none. Imported here, not at module
    top: the parity tool needs torch only for torch checkpoint formats."""
    try:
        import torch  # optional dependency: real torch or the active facade
    except ImportError:
        return None
    return torch


def _dtype_name(dtype) -> str:
    return str(dtype).rpartition(".")[2]


def _open_real(path: Path, torch) -> TorchDistCheckpoint:
    # optional dependency (real torch), imported only to read a torch_dist checkpoint
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    md = dcp.FileSystemReader(str(path)).read_metadata()
    tensors = {k: v for k, v in md.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}

    def load(key: str) -> np.ndarray:
        saved = tensors[key]
        out = {key: torch.empty(tuple(saved.size), dtype=saved.properties.dtype)}
        dcp.load(out, storage_reader=dcp.FileSystemReader(str(path)), no_dist=True)
        t = out[key]
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    return _checkpoint(path, "torch", md, tensors, load)


def _open_facade(path: Path) -> TorchDistCheckpoint:
    # import cost (the facade loads MindSpore), paid only when a torch_dist checkpoint is read through it
    import shim.torch as ft
    from shim.torch.distributed.checkpoint import filesystem
    from shim.torch.distributed.checkpoint.metadata import TensorStorageMetadata

    md = filesystem._read_metadata(path)
    tensors = {k: v for k, v in md.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}

    def load(key: str) -> np.ndarray:
        with filesystem._ItemReader(path, md) as reader:
            t = filesystem._read_global_tensor(reader, key, tensors[key])
        return (t.float() if t.dtype == ft.bfloat16 else t).numpy()

    return _checkpoint(path, "shim", md, tensors, load)


def _checkpoint(path: Path, backend: str, md, tensors: dict, load) -> TorchDistCheckpoint:
    files = sorted({str(path / info.relative_path) for info in (md.storage_data or {}).values()})
    return TorchDistCheckpoint(
        path=path, backend=backend, files=[str(path / METADATA_FILE), *files],
        tensors={k: (_dtype_name(v.properties.dtype), tuple(int(d) for d in v.size)) for k, v in tensors.items()},
        objects=sorted(k for k in md.state_dict_metadata if k not in tensors), load=load)


def open_torch_dist(path, backend: Optional[str] = None) -> TorchDistCheckpoint:
    """Open the DCP checkpoint in directory `path` (megatron's iteration directory).

    Args:
        backend: "torch", "shim", or None to choose as the module docstring says.
    Raises:
        ParityInputError: no ``.metadata`` in `path`, no reader available, or an unreadable ``.metadata``.
    """
    path = Path(path)
    if not (path / METADATA_FILE).is_file():
        raise ParityInputError(f"{path}: an incomplete torch_dist checkpoint (no {METADATA_FILE} file)")
    if backend is None:
        torch = _torch_module()
        backend = "torch" if torch is not None and torch.__name__ == "torch" else "shim"
    if backend not in ("torch", "shim"):
        raise ParityInputError(f"torch_dist reader backend must be 'torch' or 'shim', got {backend!r}")
    try:
        if backend == "torch":
            import torch  # optional dependency: real torch (the module docstring says when)
            return _open_real(path, torch)
        return _open_facade(path)
    except ImportError as e:
        raise ParityInputError(f"{path}: reading a torch_dist checkpoint needs real torch or the shim's facade "
                               f"(MindSpore) ({e})") from e
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, OSError) as e:
        raise ParityInputError(f"{path}/{METADATA_FILE}: not a readable DCP metadata file "
                               f"({type(e).__name__}: {e})") from e
