"""torch.types: type aliases used in annotations."""
from __future__ import annotations

from typing import Sequence, Union

from ._tensor import Tensor, Size
from ._device import device as _device
from ._dtype import dtype as _dtype

Number = Union[int, float, bool]
_int = int
_float = float
_bool = bool
_dtype = _dtype
_device = _device
_size = Union[Size, Sequence[int]]
Device = Union[_device, str, int, None]
_TensorOrTensors = Union[Tensor, Sequence[Tensor]]
