"""``torch.hub``: the cache-directory part (where torch keeps downloaded files); fetching models is not provided.

Libraries import ``torch.hub`` to find torch's cache folder (megatron-core's HF tokenizer wrapper imports
``_get_torch_home``). The location rules are torch's (torch 2.13, ``torch/hub.py``): ``$TORCH_HOME`` if set, else
``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``; the hub folder is ``<that>/hub`` unless ``set_dir`` chose one.
These are plain paths (str, user-expanded); nothing is created or downloaded.

Not provided (``UnsupportedAPI`` naming the function): ``load``, ``list``, ``help``, ``download_url_to_file``,
``load_state_dict_from_url`` — they download code or weights from the network, which the shim does not do.
"""
from __future__ import annotations

import os

from ._unsupported import UnsupportedAPI, module_getattr

__all__ = ["get_dir", "set_dir", "load", "list", "help", "download_url_to_file", "load_state_dict_from_url"]

ENV_TORCH_HOME = "TORCH_HOME"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
DEFAULT_CACHE_DIR = "~/.cache"

_hub_dir: "str | None" = None


def _get_torch_home() -> str:
    """torch's cache root: ``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (expanded)."""
    cache = os.getenv(ENV_XDG_CACHE_HOME, DEFAULT_CACHE_DIR)
    return os.path.expanduser(os.getenv(ENV_TORCH_HOME, os.path.join(cache, "torch")))


def get_dir() -> str:
    """The hub cache folder: the one ``set_dir`` chose, else ``<torch home>/hub``."""
    if _hub_dir is not None:
        return _hub_dir
    return os.path.join(_get_torch_home(), "hub")


def set_dir(d) -> None:
    """Choose the hub cache folder (a str or os.PathLike; user-expanded). TypeError for anything else."""
    global _hub_dir
    if not isinstance(d, (str, os.PathLike)):
        raise TypeError(f"torch.hub.set_dir(d): expected a str or os.PathLike path, got {type(d).__name__}")
    _hub_dir = os.path.expanduser(os.fspath(d))


def _network(name: str):
    def unsupported(*args, **kwargs):
        raise UnsupportedAPI(f"torch.hub.{name} is not implemented by the shim (it downloads from the network)")
    unsupported.__name__ = name
    unsupported.__doc__ = f"Not provided: raises UnsupportedAPI (torch.hub.{name} downloads from the network)."
    return unsupported


load = _network("load")
list = _network("list")  # noqa: A001  (torch's name)
help = _network("help")  # noqa: A001  (torch's name)
download_url_to_file = _network("download_url_to_file")
load_state_dict_from_url = _network("load_state_dict_from_url")

__getattr__ = module_getattr("torch.hub")
