"""``torch.nn.attention.flex_attention``: not implemented by the shim.

``BlockMask`` exists as a type for annotations and ``isinstance`` checks (nothing is ever one); building a block
mask or running flex attention raises ``NotImplementedError`` naming the API.
"""
from __future__ import annotations

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["BlockMask", "create_block_mask", "flex_attention", "AuxRequest"]

# torch's default block size for block masks (a constant libraries read; 128 in torch).
_DEFAULT_SPARSE_BLOCK_SIZE = 128


class BlockMask:
    """flex attention's block-sparse mask type; constructing one raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.nn.attention.flex_attention.BlockMask is not implemented by the shim")

    @classmethod
    def from_kv_blocks(cls, *args, **kwargs):
        raise NotImplementedError("torch.nn.attention.flex_attention.BlockMask.from_kv_blocks is not implemented "
                                  "by the shim")


class AuxRequest:
    """flex attention's request for auxiliary outputs; constructing one raises ``NotImplementedError``."""

    def __new__(cls, *args, **kwargs):
        raise NotImplementedError("torch.nn.attention.flex_attention.AuxRequest is not implemented by the shim")


def create_block_mask(*args, **kwargs):
    raise NotImplementedError("torch.nn.attention.flex_attention.create_block_mask is not implemented by the shim")


def flex_attention(*args, **kwargs):
    raise NotImplementedError("torch.nn.attention.flex_attention.flex_attention is not implemented by the shim")


__getattr__ = _module_getattr("torch.nn.attention.flex_attention")
