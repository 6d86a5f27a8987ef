"""torch dtypes over MindSpore dtypes: one table, torch's names, torch's type promotion.

`dtype` objects print like torch's (``str(torch.float32) == "torch.float32"``) and carry the matching
MindSpore dtype (``.ms``) and NumPy dtype (``.np``; bfloat16 has no NumPy dtype and maps to float32 for host
round trips). Promotion follows torch's rules (``torch.result_type``): dimensioned tensors outrank zero-dim
tensors, which outrank Python scalars, and a lower-priority operand only matters when it is of a higher
category (bool < integer < floating < complex).
"""
from __future__ import annotations

import builtins

import numpy as np
import mindspore as ms

__all__ = ["dtype", "finfo", "iinfo", "get_default_dtype", "set_default_dtype", "promote_types",
           "DTYPES", "from_ms", "from_np", "result_type_of"]

# bfloat16 is emulated where MindSpore's device target lacks bfloat16 kernels (CPU); native on Ascend.
# workaround "bfloat16" (shim/torch/_workarounds.py)
BF16_EMULATED = ms.get_context("device_target") == "CPU"

# Category of a dtype for promotion: 0 bool, 1 integer, 2 floating, 3 complex.
_BOOL, _INT, _FLOAT, _COMPLEX = 0, 1, 2, 3


class dtype:
    """A torch dtype (`torch.float32`, …) bound to a MindSpore dtype.

    Attributes: ``is_floating_point``, ``is_complex``, ``is_signed``, ``itemsize`` (bytes), ``ms`` (the
    MindSpore dtype), ``np`` (host NumPy dtype). Instances are unique per name; compare with ``==``/``is``.
    """

    __slots__ = ("name", "ms", "np", "itemsize", "_cat", "is_signed", "_rank", "sms", "emulated")

    def __init__(self, name, ms_dtype, np_dtype, itemsize, cat, signed, rank):
        self.name = name
        self.ms = ms_dtype
        self.np = np.dtype(np_dtype)
        self.itemsize = itemsize
        self._cat = cat
        self.is_signed = signed
        self._rank = rank  # position in the promotion lattice within its category
        # Storage dtype: what the MindSpore tensor behind a facade tensor of this dtype holds. On CPU,
        # MindSpore 2.10 lacks most bfloat16 kernels (even comparisons, setitem, sum), so bfloat16 is
        # *emulated*: stored as float32 holding bfloat16-rounded values, every result rounded to bfloat16.
        emulate = name == "bfloat16" and BF16_EMULATED
        self.sms = ms.float32 if emulate else ms_dtype
        self.emulated = emulate

    @property
    def is_floating_point(self) -> bool:
        """True for float16/bfloat16/float32/float64."""
        return self._cat == _FLOAT

    @property
    def is_complex(self) -> bool:
        """True for complex64/complex128."""
        return self._cat == _COMPLEX

    def to_real(self) -> "dtype":
        """The real counterpart of a complex dtype (self for real dtypes)."""
        return {"complex64": float32, "complex128": float64}.get(self.name, self)

    def __repr__(self) -> str:
        return "torch." + self.name

    __str__ = __repr__

    def __reduce__(self):
        return (_by_name, (self.name,))


def _by_name(name: str) -> "dtype":
    return DTYPES[name] if name in DTYPES else FLOAT8[name]


# name, MindSpore dtype, NumPy host dtype, itemsize, category, signed, rank
_TABLE = [
    ("bool", ms.bool_, np.bool_, 1, _BOOL, False, 0),
    ("uint8", ms.uint8, np.uint8, 1, _INT, False, 1),
    ("int8", ms.int8, np.int8, 1, _INT, True, 1),
    ("int16", ms.int16, np.int16, 2, _INT, True, 2),
    ("uint16", ms.uint16, np.uint16, 2, _INT, False, 2),
    ("int32", ms.int32, np.int32, 4, _INT, True, 3),
    ("uint32", ms.uint32, np.uint32, 4, _INT, False, 3),
    ("int64", ms.int64, np.int64, 8, _INT, True, 4),
    ("uint64", ms.uint64, np.uint64, 8, _INT, False, 4),
    ("float16", ms.float16, np.float16, 2, _FLOAT, True, 1),
    ("bfloat16", ms.bfloat16, np.float32, 2, _FLOAT, True, 1),
    ("float32", ms.float32, np.float32, 4, _FLOAT, True, 2),
    ("float64", ms.float64, np.float64, 8, _FLOAT, True, 3),
    ("complex64", ms.complex64, np.complex64, 8, _COMPLEX, True, 1),
    ("complex128", ms.complex128, np.complex128, 16, _COMPLEX, True, 2),
]
DTYPES: dict[str, dtype] = {row[0]: dtype(*row) for row in _TABLE}

bool = DTYPES["bool"]  # noqa: A001  (torch.bool)
uint8 = DTYPES["uint8"]
int8 = DTYPES["int8"]
int16 = DTYPES["int16"]
uint16 = DTYPES["uint16"]
int32 = DTYPES["int32"]
uint32 = DTYPES["uint32"]
int64 = DTYPES["int64"]
uint64 = DTYPES["uint64"]
float16 = DTYPES["float16"]
bfloat16 = DTYPES["bfloat16"]
float32 = DTYPES["float32"]
float64 = DTYPES["float64"]
complex64 = DTYPES["complex64"]
complex128 = DTYPES["complex128"]

# float8 dtypes: names (and finfo limits) for code that refers to them, e.g. HF transformers' dtype tables and
# its FP8 cache class body. They are kept out of DTYPES (no promotion, no host dtype: NumPy has no float8); a
# tensor of one is not supported (tensor creation raises NotImplementedError naming the dtype).
# name -> (MindSpore dtype, finfo: bits, eps, max, tiny) from the OCP FP8 formats torch implements.
_FLOAT8 = {
    "float8_e4m3fn": (getattr(ms, "float8_e4m3fn", None), (8, 0.125, 448.0, 2.0 ** -6)),
    "float8_e5m2": (getattr(ms, "float8_e5m2", None), (8, 0.25, 57344.0, 2.0 ** -14)),
}
FLOAT8: dict[str, dtype] = {n: dtype(n, m, np.uint8, 1, _FLOAT, True, 0) for n, (m, _) in _FLOAT8.items()}
float8_e4m3fn = FLOAT8["float8_e4m3fn"]
float8_e5m2 = FLOAT8["float8_e5m2"]

# torch's aliases (torch.float is float32, torch.half is float16, …).
ALIASES = {"float": float32, "double": float64, "half": float16, "short": int16, "int": int32,
           "long": int64, "cfloat": complex64, "cdouble": complex128}

_FROM_MS = {}
for _d in DTYPES.values():
    _FROM_MS.setdefault(_d.ms, _d)
_FROM_NP = {np.dtype(np.bool_): bool, np.dtype(np.uint8): uint8, np.dtype(np.int8): int8,
            np.dtype(np.int16): int16, np.dtype(np.uint16): uint16, np.dtype(np.int32): int32,
            np.dtype(np.uint32): uint32, np.dtype(np.int64): int64, np.dtype(np.uint64): uint64,
            np.dtype(np.float16): float16, np.dtype(np.float32): float32, np.dtype(np.float64): float64,
            np.dtype(np.complex64): complex64, np.dtype(np.complex128): complex128}


def from_ms(ms_dtype) -> dtype:
    """The torch dtype for a MindSpore dtype; KeyError-free: raises TypeError naming unknown ones."""
    try:
        return _FROM_MS[ms_dtype]
    except KeyError:
        raise TypeError(f"MindSpore dtype {ms_dtype} has no torch equivalent in the shim") from None


def from_np(np_dtype) -> dtype:
    """The torch dtype for a NumPy dtype (as torch.from_numpy maps them); TypeError for others."""
    try:
        return _FROM_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"can't convert np.ndarray of type {np.dtype(np_dtype)}; the supported types are: "
                        "float64, float32, float16, complex64, complex128, int64, int32, int16, int8, "
                        "uint8, and bool") from None


_default_dtype = [float32]


def get_default_dtype() -> dtype:
    """The floating dtype that Python floats and `torch.tensor([1.0])` get (float32 unless changed)."""
    return _default_dtype[0]


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype; torch accepts float16/bfloat16/float32/float64 only (TypeError else)."""
    if not isinstance(d, dtype) or d._cat != _FLOAT:
        raise TypeError(f"only floating-point types are supported as the default type, got {d!r}")
    _default_dtype[0] = d


def _promote_same_cat(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a._cat == _FLOAT:
        # float16 with bfloat16 promotes to float32 (torch).
        if a._rank == b._rank:
            return float32
        return a if a._rank > b._rank else b
    if a._cat == _INT:
        if a._rank == b._rank:
            # uint8 with int8 -> int16; other same-size signed/unsigned pairs: torch only has uint8 here.
            return int16 if a._rank == 1 else (a if a.is_signed else b)
        hi, lo = (a, b) if a._rank > b._rank else (b, a)
        return hi
    return a if a._rank >= b._rank else b


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both `a` and `b` convert to without losing category."""
    if a is b:
        return a
    if a._cat != b._cat:
        hi, lo = (a, b) if a._cat > b._cat else (b, a)
        if hi._cat == _COMPLEX and lo is float64:
            return complex128
        return hi
    return _promote_same_cat(a, b)


def _scalar_cat(v) -> int:
    if isinstance(v, builtins.bool):
        return _BOOL
    if isinstance(v, int):
        return _INT
    if isinstance(v, float):
        return _FLOAT
    if isinstance(v, complex):
        return _COMPLEX
    raise TypeError(f"unsupported scalar operand of type {type(v).__name__}")


def _default_for_cat(cat: int) -> dtype:
    if cat == _BOOL:
        return bool
    if cat == _INT:
        return int64
    if cat == _FLOAT:
        return _default_dtype[0]
    return complex64 if _default_dtype[0] is not float64 else complex128


def result_type_of(dim_dtypes, zero_dim_dtypes, scalars) -> dtype:
    """torch.result_type over operands split by priority.

    dim_dtypes: dtypes of tensors with dim > 0; zero_dim_dtypes: of 0-dim tensors; scalars: Python numbers.
    A lower-priority group participates only if its category exceeds the higher groups' category, and then
    with its own dtype (0-dim tensors) or the default dtype of its category (scalars).
    """
    result = None
    for group in (dim_dtypes, zero_dim_dtypes):
        if not group:
            continue
        g = group[0]
        for d in group[1:]:
            g = promote_types(g, d)
        if result is None:
            result = g
        elif g._cat > result._cat:
            result = promote_types(result, g) if g._cat != _COMPLEX else g
    if scalars:
        cat = max(_scalar_cat(s) for s in scalars)
        if result is None:
            result = _default_for_cat(cat)
        elif cat > result._cat:
            result = _default_for_cat(cat)
            if cat == _COMPLEX and result is not complex128 and any(
                    d is float64 for d in list(dim_dtypes) + list(zero_dim_dtypes)):
                result = complex128
    return result


class finfo:
    """torch.finfo: machine limits of a floating dtype (bits, eps, max, min, tiny, smallest_normal,
    resolution, dtype). bfloat16 values are bfloat16's own (8 exponent bits, 7 mantissa bits)."""

    def __init__(self, type: dtype = None):  # noqa: A002  (torch's argument name)
        type = type or get_default_dtype()
        if not isinstance(type, dtype) or type._cat not in (_FLOAT, _COMPLEX):
            raise TypeError(f"torch.finfo() requires a floating point input type, got {type!r}")
        type = type.to_real()
        if type.name in _FLOAT8:
            self.bits, self.eps, self.max, self.tiny = _FLOAT8[type.name][1]
            self.smallest_normal = self.tiny
            self.resolution = {"float8_e4m3fn": 1.0, "float8_e5m2": 1.0}[type.name]
        elif type is bfloat16:
            self.bits, self.eps, self.max = 16, 2.0 ** -7, float.fromhex("0x1.fep127")
            self.tiny = self.smallest_normal = 2.0 ** -126
            self.resolution = 0.01
        else:
            info = np.finfo(type.np)
            self.bits, self.eps, self.max = info.bits, float(info.eps), float(info.max)
            self.tiny = self.smallest_normal = float(info.tiny)
            self.resolution = float(info.resolution)
        self.min = -self.max
        self.dtype = type.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:.6e}, max={self.max:.6e}, eps={self.eps:.6e}, "
                f"smallest_normal={self.smallest_normal:.6e}, tiny={self.tiny:.6e}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: limits of an integer dtype (bits, min, max, dtype)."""

    def __init__(self, type: dtype):  # noqa: A002
        if not isinstance(type, dtype) or type._cat not in (_INT, _BOOL):
            raise TypeError(f"torch.iinfo() requires an integer input type, got {type!r}")
        if type is bool:
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = np.iinfo(type.np)
            self.bits, self.min, self.max = info.bits, int(info.min), int(info.max)
        self.dtype = type.name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
