"""Legacy tensor type objects: torch.FloatTensor, torch.LongTensor, … (and, through `legacy_types(cuda=True)`,
the torch.cuda.* ones). `isinstance(t, torch.FloatTensor)` checks dtype and device kind, calling one builds
a tensor like the legacy constructor (`torch.FloatTensor(2, 3)` / `torch.FloatTensor([1, 2])`)."""
from __future__ import annotations

from . import _dtype as D

__all__ = ["legacy_types", "LEGACY_NAMES"]

LEGACY_NAMES = {
    "FloatTensor": D.float32, "DoubleTensor": D.float64, "HalfTensor": D.float16, "BFloat16Tensor": D.bfloat16,
    "LongTensor": D.int64, "IntTensor": D.int32, "ShortTensor": D.int16, "CharTensor": D.int8,
    "ByteTensor": D.uint8, "BoolTensor": D.bool,
}


class _LegacyMeta(type):
    def __instancecheck__(cls, obj):
        from ._tensor import Tensor
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and (obj.device.type == "cuda") == cls.is_cuda

    def __repr__(cls):
        return f"<class '{cls.__module__}.{cls.__name__}'>"


def legacy_types(cuda: bool = False) -> dict:
    """name -> legacy type object for cpu (torch.X) or accelerator (torch.cuda.X) tensors."""
    out = {}
    for name, dt in LEGACY_NAMES.items():
        def new(cls, *args, device=None, _dt=dt):
            from ._tensor import Tensor
            dev = device if device is not None else ("cuda" if cls.is_cuda else None)
            return Tensor(*args, dtype=_dt, device=dev)
        out[name] = _LegacyMeta(name, (), {"dtype": dt, "is_cuda": cuda, "__new__": new,
                                           "__module__": "torch.cuda" if cuda else "torch"})
    return out
