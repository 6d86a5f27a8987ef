"""``torch.distributed.checkpoint.hf_storage``: the safetensors-directory storage reader/writer types.

Not implemented by the shim: the classes exist so libraries import them (HF transformers does at module
level); constructing one raises ``NotImplementedError`` naming the API. Single-process safetensors files are
read and written by ``safetensors.torch`` / ``save_pretrained`` instead.
"""
from __future__ import annotations

__all__ = ["HuggingFaceStorageReader", "HuggingFaceStorageWriter"]


class HuggingFaceStorageReader:
    """Constructing one raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.distributed.checkpoint.hf_storage.HuggingFaceStorageReader is not "
                                  "implemented by the shim")


class HuggingFaceStorageWriter:
    """Constructing one raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.distributed.checkpoint.hf_storage.HuggingFaceStorageWriter is not "
                                  "implemented by the shim")
