"""torch's CPU random streams, reproduced in NumPy (private; the facade's `torch.Generator` holds an `Engine`).

Everything here was learned from torch's C++ sources (ATen, torch 2.x; checked bit for bit against the installed
torch 2.13 CPU wheel in tests/shim/test_random_streams.py) and written anew:

- **Engine** (`aten/src/ATen/core/MT19937RNGEngine.h`, `aten/src/ATen/CPUGeneratorImpl.cpp`): the standard
  32-bit Mersenne Twister, seeded with `init_genrand` from the low 32 bits of the seed (the full 64-bit seed is
  kept for `initial_seed()`). NumPy's `MT19937` (`_legacy_seeding`, `random_raw`) is the same engine, so raw draws
  are vectorised C. `CPUGeneratorImpl::random()` is one 32-bit output; `random64()` is two, the first in the high
  half (`make64BitsFrom32Bits`). The generator also caches the second Box–Muller value of the scalar normal path
  (`next_double_normal_sample`; `next_float_normal_sample` is never set on CPU).
- **State tensor** (`CPUGeneratorImpl::get_state/set_state`, struct `CPUGeneratorImplState`): 5056 bytes,
  little-endian x86-64 layout: u64 initial seed @0, i32 `left` @8, i32 `seeded` @12, u64 `next` @16, 624 × u64
  MT words @24, f64 `normal_x` @5016, f64 `normal_y` (the cached double normal) @5024, f64 `normal_rho` @5032,
  i32 `normal_is_valid` @5040, f32 `next_float_normal_sample` @5048, u8 its valid flag @5052, padding to 5056.
  torch's engine draws word `next` after decrementing `left` (twisting when it reaches 0); NumPy's position
  `pos` relates as `pos = 625 - left`.
- **uniform_** (`aten/src/ATen/native/cpu/DistributionTemplates.h` `uniform_kernel`,
  `aten/src/ATen/core/DistributionsHelper.h` `uniform_real_distribution`, `aten/src/ATen/core/TransformationHelper.h`
  `uniform_real`): one draw per element in memory order; float32 takes the low 24 bits of `random()` times 2^-24,
  float64 the low 53 bits of `random64()` times 2^-53 (bfloat16 and float16 are drawn as float32 and rounded; a value rounding up to `to` becomes `from`);
  then `x * (to - from) + from` in the element type, which torch's compiler contracts into one fused multiply-add.
- **normal_ / randn** (`DistributionTemplates.h` `normal_kernel`, `normal_fill`, `normal_fill_16`,
  `normal_fill_AVX2`, `normal_fill_16_AVX2`; `DistributionKernels.cpp` registers the normal kernel without its
  AVX512 build, so AVX2/AVX512 machines run the AVX2 one): a contiguous tensor of ≥ 16 elements is first filled
  with uniforms, then each block of 16 becomes 8 Box–Muller pairs (`u1 = 1 - d[j]`, `u2 = d[j+8]`,
  `d[j] = r cos θ`, `d[j+8] = r sin θ`); when the size is not a multiple of 16 the last 16 positions are redrawn
  and recomputed. float32 uses the AVX2 path whose log/sincos are the Cephes-style polynomials of
  `aten/src/ATen/native/cpu/avx_mathfun.h` (`log256_ps`, `sincos256_ps`), evaluated here in float32 NumPy with
  the fused multiply-adds GCC forms from those intrinsics (measured: every other rounding order differs from
  torch in ~0.1–1 % of the values). float64 uses libm `log`/`cos`/`sin` (Python's `math`, i.e. the same glibc).
  Fewer than 16 elements or a non-contiguous tensor: `normal_distribution<double>` per element (`u1`, `u2` from
  `random64()`, `r = sqrt(-2 log1p(-u2))`, `θ = 2π u1`, returns `r cos θ`, caches `r sin θ` for the next call).
  bfloat16/float16 (measured against torch 2.13): the float32 AVX2 path drawn block by block (so the overlapping
  last block follows the full blocks directly, without draws for the leftover elements), rounded to the type.
- **randint / random_(from, to)** (`random_from_to_kernel`, `uniform_int_from_to`): `(random() % range) + from`,
  `random64()` when `range >= 2^32`. **random_()** (`uniform_int_distribution`, `uniform_int`): int64/float64
  `random64() % (max+1)` (float64: `% (2^53 + 1)`), other types `random()` modulo their range.
- **bernoulli_(p)** (`bernoulli_kernel`; `DistributionKernels.cpp` `bernoulli_scalar_kernel`, whose MKL path is
  compiled out of torch's open-source builds): `uniform<double>(random64()) < p` per element; a tensor `p` of
  float32 compares `uniform<float>(random())`, of float64 `uniform<double>`.
- **exponential_** (`exponential_kernel`, `exponential_distribution<double>`, `transformation::exponential`):
  `(-1/λ) · log1p(-u)` with `u = uniform<double>`, in double (glibc `log1p`), rounded to the element type.
- **randperm** (`aten/src/ATen/native/TensorFactories.cpp` `randperm_cpu`): Fisher–Yates from the front,
  `z = random() % (n - i)` (`random64()` from `n >= (2^32 - 1) / 20` on), swap `r[i]`, `r[i + z]`.
- **multinomial** (`aten/src/ATen/native/Distributions.cpp` `multinomial_out`,
  `aten/src/ATen/native/cpu/MultinomialKernel.cpp` `multinomial_with_replacement_apply`): without replacement or
  for one sample, `q = exponential_(1)` shaped like the weights, `argmax(w / q)` or `topk(w / q, n)`; with
  replacement, a float cumulative sum normalised by its total (last bucket forced to 1) searched with
  `uniform<double>` draws (first bucket whose value is ≥ the draw).

The accelerator (`torch.cuda` under the shim) has no separate stream: see shim/torch/cuda/random.py.
"""
from __future__ import annotations

import math

import numpy as np

STATE_BYTES = 5056
_MT_N = 624
_F32 = np.float32
_U32 = np.uint64(0xFFFFFFFF)


class Engine:
    """torch's CPU generator state: the MT19937 words, the seed, the cached double normal."""

    __slots__ = ("bg", "seed", "next_double_normal", "next_float_normal")

    def __init__(self, seed: int) -> None:
        self.bg = np.random.MT19937(0)
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> None:
        """`CPUGeneratorImpl::set_current_seed`: reseed from the low 32 bits, drop the normal caches."""
        self.seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
        self.bg._legacy_seeding(self.seed & 0xFFFFFFFF)
        self.next_double_normal = None
        self.next_float_normal = None

    # ---- raw draws ------------------------------------------------------------------------------------------
    def random32(self, n: int) -> np.ndarray:
        """The next `n` outputs of `random()` (uint64 array holding 32-bit values)."""
        if n <= 0:
            return np.zeros(0, np.uint64)
        return self.bg.random_raw(int(n))

    def random64(self, n: int) -> np.ndarray:
        """The next `n` outputs of `random64()` (uint64)."""
        if n <= 0:
            return np.zeros(0, np.uint64)
        a = self.bg.random_raw(2 * int(n)).reshape(-1, 2)
        return (a[:, 0] << np.uint64(32)) | a[:, 1]

    # ---- state tensor ---------------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """torch's `CPUGeneratorImplState` bytes (uint8, 5056)."""
        st = self.bg.state["state"]
        key, pos = st["key"], int(st["pos"])
        buf = np.zeros(STATE_BYTES, np.uint8)
        left = _MT_N + 1 - pos
        nxt = pos
        if pos == _MT_N and np.array_equal(key, _seeded_key(self.seed)):
            nxt = 0  # freshly seeded: torch keeps next=0, left=1 until the first draw twists
        buf[0:8] = np.array([self.seed], np.uint64).view(np.uint8)
        buf[8:12] = np.array([left], np.int32).view(np.uint8)
        buf[12:16] = np.array([1], np.int32).view(np.uint8)
        buf[16:24] = np.array([nxt], np.uint64).view(np.uint8)
        buf[24:24 + 8 * _MT_N] = key.astype(np.uint64).view(np.uint8)
        if self.next_double_normal is not None:
            buf[5024:5032] = np.array([self.next_double_normal], np.float64).view(np.uint8)
            buf[5040:5044] = np.array([1], np.int32).view(np.uint8)
        if self.next_float_normal is not None:
            buf[5048:5052] = np.array([self.next_float_normal], np.float32).view(np.uint8)
            buf[5052] = 1
        return buf

    def set_state(self, data: np.ndarray) -> None:
        """Load torch's `CPUGeneratorImplState` bytes; ValueError for a wrong size or an invalid engine state."""
        data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
        if data.size != STATE_BYTES:
            raise ValueError(f"Expected a CPUGeneratorImplState of size {STATE_BYTES} but found the input RNG state "
                             f"size to be {data.size}")
        seed = int(data[0:8].view(np.uint64)[0])
        left = int(data[8:12].view(np.int32)[0])
        seeded = int(data[12:16].view(np.int32)[0])
        nxt = int(data[16:24].view(np.uint64)[0]) & 0xFFFFFFFF
        words = data[24:24 + 8 * _MT_N].view(np.uint64)
        # torch's mt19937::is_valid
        if not (seeded == 1 and 0 < left <= _MT_N and nxt <= _MT_N):
            raise ValueError("Invalid mt19937 state")
        key = (words & _U32).astype(np.uint32)
        self.bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": _MT_N + 1 - left}}
        self.seed = seed
        valid = int(data[5040:5044].view(np.int32)[0])
        self.next_double_normal = float(data[5024:5032].view(np.float64)[0]) if valid else None
        self.next_float_normal = float(data[5048:5052].view(np.float32)[0]) if data[5052] else None

    def clone_state(self):
        return (self.bg.state, self.seed, self.next_double_normal, self.next_float_normal)

    def restore(self, snap) -> None:
        self.bg.state, self.seed, self.next_double_normal, self.next_float_normal = snap


_SEEDED_CACHE: dict = {}


def _seeded_key(seed: int) -> np.ndarray:
    s = seed & 0xFFFFFFFF
    key = _SEEDED_CACHE.get(s)
    if key is None:
        bg = np.random.MT19937(0)
        bg._legacy_seeding(s)
        key = bg.state["state"]["key"]
        if len(_SEEDED_CACHE) > 64:
            _SEEDED_CACHE.clear()
        _SEEDED_CACHE[s] = key
    return key


# ---- exact fused multiply-add ------------------------------------------------------------------------------

def fma32(a, b, c) -> np.ndarray:
    """Correctly rounded float32 `a*b + c` (what an FMA instruction computes), vectorised.

    With float32 inputs a*b is exact in float64 and the float64 sum s is rounded once; rounding s to float32
    gives the correctly rounded result except when s lands exactly halfway between two float32 values (its 29
    dropped mantissa bits are 1000…0) while the exact sum is not: those rare elements are recomputed with the
    exact error of the sum (TwoSum) steering the rounding. Subnormal float32 results take the same check."""
    a64 = np.asarray(a, np.float64)
    s = a64 * np.asarray(b, np.float64)
    s += np.asarray(c, np.float64)
    r = s.astype(_F32)
    tail = s.view(np.uint64) & np.uint64(0x1FFFFFFF)
    cand = tail == np.uint64(0x10000000)
    tiny = (np.abs(s) < 2.0 ** -126) & (s != 0)
    if cand.any() or tiny.any():
        shape = s.shape
        bb = np.broadcast_to(np.asarray(b, np.float64), shape)
        cc = np.broadcast_to(np.asarray(c, np.float64), shape)
        aa = np.broadcast_to(a64, shape)
        if cand.any():
            i = np.nonzero(cand & ~tiny)
            p_, si, ci = aa[i] * bb[i], s[i], cc[i]
            t = si - p_
            err = (p_ - (si - t)) + (ci - t)          # TwoSum: exact sum = si + err
            ri = r[i]
            up = (ri.astype(np.float64) < si) & (err > 0)
            down = (ri.astype(np.float64) > si) & (err < 0)
            ri = np.where(up, np.nextafter(ri, _F32(np.inf)), np.where(down, np.nextafter(ri, _F32(-np.inf)), ri))
            r[i] = ri
        if tiny.any():
            i = np.nonzero(tiny)
            r[i] = _fma32_exact(aa[i], bb[i], cc[i])
    return r


def _fma32_exact(a, b, c) -> np.ndarray:
    from fractions import Fraction
    return np.array([float(_F32(_round_fraction_to_f32(Fraction(x) * Fraction(y) + Fraction(z))))
                     for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())], _F32)


def _round_fraction_to_f32(q) -> float:
    """Round an exact rational to the nearest float32 (ties to even)."""
    from fractions import Fraction
    if q == 0:
        return 0.0
    lo = _F32(float(q))                      # float() rounds q correctly to double; step to float32 neighbours
    cands = {float(lo), float(np.nextafter(lo, _F32(np.inf))), float(np.nextafter(lo, _F32(-np.inf)))}
    best = min(cands, key=lambda v: (abs(Fraction(v) - q),
                                     int(np.array([v], _F32).view(np.uint32)[0]) & 1))
    return best


def _fma64_scalar(a: float, b: float, c: float) -> float:
    from fractions import Fraction
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def fma64(a, b, c) -> np.ndarray:
    """Correctly rounded float64 `a*b + c` (exact rational arithmetic per element; used off the hot paths)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))
    if a.size == 0:
        return a.astype(np.float64)
    out = [_fma64_scalar(x, y, z) for x, y, z in zip(a.ravel().tolist(), b.ravel().tolist(), c.ravel().tolist())]
    return np.array(out, np.float64).reshape(a.shape)


def _libm(fn, x: np.ndarray) -> np.ndarray:
    """glibc's double `fn` elementwise (through Python's math module: NumPy's SIMD versions differ in the last
    bit for some inputs, and torch calls libm)."""
    return np.fromiter(map(fn, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


# ---- uniform -----------------------------------------------------------------------------------------------

_DIGITS = {"float32": 24, "float64": 53}


def uniform01(eng: Engine, n: int, kind: str) -> np.ndarray:
    """`uniform_real_distribution<T>(0, 1)` n times: float64 for kind float64, else float32 values."""
    d = _DIGITS[kind]
    if kind == "float64":
        return (eng.random64(n) & np.uint64((1 << 53) - 1)).astype(np.float64) * (2.0 ** -53)
    return (eng.random32(n) & np.uint64((1 << d) - 1)).astype(_F32) * _F32(2.0 ** -d)


def uniform(eng: Engine, n: int, kind: str, low: float, high: float) -> np.ndarray:
    """`uniform_(low, high)` on n elements of `kind` ("float32", "float64", "bfloat16", "float16"): float64
    values for float64, float32 values otherwise (bfloat16/float16 already rounded: torch draws them as float32
    and rounds, replacing a value that rounds up to `high` by `low`, so the range stays half-open)."""
    if kind == "float64":
        x = uniform01(eng, n, kind)
        lo, hi = float(low), float(high)
        if lo == 0.0 and hi == 1.0:
            return x
        return fma64(x, hi - lo, lo)
    x = uniform01(eng, n, "float32")
    lo, hi = _F32(low), _F32(high)
    v = x if (lo == 0 and hi == 1) else fma32(x, _F32(hi - lo), lo)
    if kind == "float32":
        return v
    v = round_half(v, kind)
    lo_h, hi_h = round_half(np.array([lo]), kind)[0], round_half(np.array([hi]), kind)[0]
    return np.where(v >= hi_h, lo_h, v).astype(_F32)


# ---- normal ------------------------------------------------------------------------------------------------

_LOG_P = [_F32(v) for v in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                            1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                            3.3333331174E-1)]
_MIN_NORM = np.array([0x00800000], np.int32).view(_F32)[0]
_HALF_BITS = np.array([0.5], _F32).view(np.int32)[0]


def _log_avx(x: np.ndarray) -> np.ndarray:
    """avx_mathfun's `log256_ps` on float32 inputs in (0, 1] (with GCC's fused multiply-adds)."""
    x = np.maximum(x, _MIN_NORM)
    bits = x.view(np.int32)
    e = ((bits.view(np.uint32) >> np.uint32(23)).astype(np.int32) - 127).astype(_F32) + _F32(1)
    x = ((bits & np.int32(~0x7f800000)) | _HALF_BITS).view(_F32)
    small = x < _F32(0.707106781186547524)
    tmp = np.where(small, x, _F32(0))
    x = x - _F32(1)
    e = e - np.where(small, _F32(1), _F32(0))
    x = x + tmp
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = fma32(y, x, p)
    y = y * x
    y = fma32(y, z, e * _F32(-2.12194440e-4))
    y = fma32(-z, _F32(0.5), y)
    x = x + y
    return fma32(e, _F32(0.693359375), x)


def _sincos_avx(x: np.ndarray):
    """avx_mathfun's `sincos256_ps` on non-negative float32 inputs (with GCC's fused multiply-adds)."""
    x = np.abs(x)
    j = (x * _F32(1.27323954473516)).astype(np.int32)
    j = (j + 1) & np.int32(~1)
    y = j.astype(_F32)
    sign_sin = (j & 4) << 29
    sign_cos = (~(j - 2) & 4) << 29
    poly = (j & 2) == 0
    x = fma32(y, _F32(-0.78515625), x)
    x = fma32(y, _F32(-2.4187564849853515625e-4), x)
    x = fma32(y, _F32(-3.77489497744594108e-8), x)
    z = x * x
    yc = fma32(np.full_like(z, _F32(2.443315711809948E-005)), z, _F32(-1.388731625493765E-003))
    yc = fma32(yc, z, _F32(4.166664568298827E-002))
    yc = yc * z
    yc = fma32(yc, z, -(z * _F32(0.5)))
    yc = yc + _F32(1)
    ys = fma32(np.full_like(z, _F32(-1.9515295891E-4)), z, _F32(8.3321608736E-3))
    ys = fma32(ys, z, _F32(-1.6666654611E-1))
    ys = ys * z
    ys = fma32(ys, x, x)
    ysin2 = np.where(poly, ys, _F32(0))
    ysin1 = np.where(poly, _F32(0), yc)
    s = ysin1 + ysin2
    c = (yc - ysin1) + (ys - ysin2)
    return (s.view(np.int32) ^ sign_sin).view(_F32), (c.view(np.int32) ^ sign_cos).view(_F32)


_TWO_PI_F = _F32(2.0 * math.pi)
_CHUNK_BLOCKS = 4096


def _fill16_f32(blocks: np.ndarray, mean: float, std: float) -> np.ndarray:
    u1 = _F32(1) - blocks[:, :8]
    u2 = blocks[:, 8:]
    r = np.sqrt(_F32(-2) * _log_avx(u1))
    s, c = _sincos_avx(_TWO_PI_F * u2)
    out = np.concatenate([r * c, r * s], axis=1)
    m, sd = _F32(mean), _F32(std)
    if m == 0 and sd == 1:
        return out
    return fma32(out, sd, m)


def _fill16_f64(blocks: np.ndarray, mean: float, std: float) -> np.ndarray:
    u1 = 1.0 - blocks[:, :8]
    u2 = blocks[:, 8:]
    r = np.sqrt(-2.0 * _libm(math.log, u1))
    th = (2.0 * math.pi) * u2
    n1, n2 = r * _libm(math.cos, th), r * _libm(math.sin, th)
    out = np.concatenate([n1, n2], axis=1)
    if mean == 0.0 and std == 1.0:
        return out
    return fma64(out, std, mean)


def round_half(x: np.ndarray, kind: str) -> np.ndarray:
    """Round float32/float64 values to bfloat16 or float16 (nearest even), returned as float32."""
    x = np.asarray(x)
    if kind == "float16":
        return x.astype(np.float16).astype(_F32)
    # a double goes through float first, as c10::BFloat16(float(x)) does
    u = x.astype(_F32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> np.uint64(16)) & np.uint64(1))) & np.uint64(0xFFFF0000)
    return u.astype(np.uint32).view(_F32)


def normal(eng: Engine, n: int, kind: str, mean: float = 0.0, std: float = 1.0,
           contiguous: bool = True) -> np.ndarray:
    """`normal_(mean, std)` on n elements of `kind` (float64 values for float64, float32 otherwise)."""
    if n >= 16 and contiguous and kind in ("float32", "float64"):
        fill = _fill16_f32 if kind == "float32" else _fill16_f64
        d = uniform01(eng, n, kind)
        k = n // 16
        blocks = d[:16 * k].reshape(k, 16)
        for i in range(0, k, _CHUNK_BLOCKS):  # cache-sized chunks: ~4x faster than whole-array passes at 10M
            blocks[i:i + _CHUNK_BLOCKS] = fill(blocks[i:i + _CHUNK_BLOCKS], mean, std)
        if n % 16:
            d[n - 16:] = fill(uniform01(eng, 16, kind).reshape(1, 16), mean, std).reshape(-1)
        return d
    if n >= 16 and contiguous:
        # bfloat16 / float16: torch's float32 path drawn block by block (16 uniforms per block, then 16 more for
        # the overlapping last block: no draws for the n % 16 leftovers), rounded to the 16-bit type
        k = n // 16
        d = np.empty(n, _F32)
        blocks = uniform01(eng, 16 * k, "float32").reshape(k, 16)
        for i in range(0, k, _CHUNK_BLOCKS):
            blocks[i:i + _CHUNK_BLOCKS] = _fill16_f32(blocks[i:i + _CHUNK_BLOCKS], mean, std)
        d[:16 * k] = blocks.reshape(-1)
        if n % 16:
            d[n - 16:] = _fill16_f32(uniform01(eng, 16, "float32").reshape(1, 16), mean, std).reshape(-1)
        return round_half(d, kind)
    return _normal_serial(eng, n, mean, std).astype(np.float64 if kind == "float64" else _F32)


def _normal_serial(eng: Engine, n: int, mean: float, std: float) -> np.ndarray:
    """`normal_distribution<double>(mean, std)` n times (with the generator's cached second value)."""
    out = np.empty(n, np.float64)
    for i in range(n):
        if eng.next_double_normal is not None:
            ret = eng.next_double_normal
            eng.next_double_normal = None
        else:
            u1, u2 = uniform01(eng, 2, "float64").tolist()
            r = math.sqrt(-2.0 * math.log1p(-u2))
            th = 2.0 * math.pi * u1
            eng.next_double_normal = r * math.sin(th)
            ret = r * math.cos(th)
        out[i] = ret if (mean == 0.0 and std == 1.0) else _fma64_scalar(ret, std, mean)
    return out


# ---- integers, bernoulli, exponential, permutations, multinomial -------------------------------------------

def randint(eng: Engine, n: int, low: int, high: int, wide_ok: bool = True) -> np.ndarray:
    """`random_(low, high)` n times as int64 (`wide_ok`: the element type may take 64-bit draws)."""
    rng = int(high) - int(low)
    if rng <= 0:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    raw = eng.random64(n) if (wide_ok and rng >= 1 << 32) else eng.random32(n)
    return (raw % np.uint64(rng)).astype(np.int64) + np.int64(low)


def random_full(eng: Engine, n: int, kind: str) -> np.ndarray:
    """`random_()` without bounds n times for element type `kind` (int64 values)."""
    if kind in ("int64", "float64"):
        mod = (1 << 63) if kind == "int64" else (1 << 53) + 1
        return (eng.random64(n) % np.uint64(mod)).astype(np.int64)
    mods = {"float32": (1 << 24) + 1, "bfloat16": (1 << 8) + 1, "float16": (1 << 11) + 1, "int32": 1 << 31,
            "int16": 1 << 15, "int8": 1 << 7, "uint8": 1 << 8, "bool": 2}
    return (eng.random32(n) % np.uint64(mods[kind])).astype(np.int64)


def bernoulli_scalar(eng: Engine, n: int, p: float) -> np.ndarray:
    """`bernoulli_(p)` n times (bool array)."""
    return uniform01(eng, n, "float64") < float(p)


def bernoulli_tensor(eng: Engine, p: np.ndarray) -> np.ndarray:
    """`bernoulli_(p_tensor)`: one draw per element of the (already broadcast, row-major) probabilities."""
    flat = p.reshape(-1)
    if flat.dtype == np.float64:
        u = uniform01(eng, flat.size, "float64")
    else:
        flat = flat.astype(_F32)
        u = uniform01(eng, flat.size, "float32")
    return (u < flat).reshape(p.shape)


def exponential(eng: Engine, n: int, lambd: float) -> np.ndarray:
    """`exponential_(lambd)` n times, float64 values (round to the element type afterwards)."""
    u = uniform01(eng, n, "float64")
    return (-1.0 / float(lambd)) * _libm(math.log1p, -u)


def cauchy(eng: Engine, n: int, median: float, sigma: float) -> np.ndarray:
    """`cauchy_(median, sigma)` n times (`cauchy_kernel`: `cauchy_distribution<double>`, one float64 uniform u
    per element, `median + sigma * tan(pi * (u - 0.5))` with libm's tan, the multiply-add fused), float64 values
    (round to the element type afterwards)."""
    u = uniform01(eng, n, "float64")
    t = _libm(math.tan, math.pi * (u - 0.5))
    return fma64(t, float(sigma), float(median))


def log_normal(eng: Engine, n: int, mean: float, std: float) -> np.ndarray:
    """`log_normal_(mean, std)` n times (`log_normal_kernel`: `lognormal_distribution<double>`, i.e. libm's exp
    of the serial `normal_distribution<double>` draw, which shares the generator's cached second value)."""
    return _libm(math.exp, _normal_serial(eng, n, float(mean), float(std)))


def geometric(eng: Engine, n: int, p: float) -> np.ndarray:
    """`geometric_(p)` n times (`geometric_kernel`: `geometric_distribution<double>`, one float64 uniform u per
    element, `ceil(log(u) / log1p(-p))` with libm's log/log1p), float64 values."""
    u = uniform01(eng, n, "float64")
    return np.ceil(_libm(math.log, u) / math.log1p(-float(p))) if n else u


RANDPERM_32BIT_LIMIT = (2 ** 32 - 1) // 20


def randperm(eng: Engine, n: int) -> np.ndarray:
    """`randperm(n)` as int64."""
    n = int(n)
    r = list(range(n))
    if n > 1:
        if n < RANDPERM_32BIT_LIMIT:
            draws = eng.random32(n - 1).tolist()
        else:
            draws = eng.random64(n - 1).tolist()
        for i, d in enumerate(draws):
            j = i + d % (n - i)
            r[i], r[j] = r[j], r[i]
    return np.array(r, np.int64)


def multinomial(eng: Engine, w: np.ndarray, num_samples: int, replacement: bool) -> np.ndarray:
    """torch.multinomial on CPU weights `w` (1-D or 2-D float array): int64 indices [.., num_samples]."""
    rows = w.reshape(-1, w.shape[-1])
    if not replacement or num_samples == 1:
        q = exponential(eng, rows.size, 1.0).astype(rows.dtype).reshape(rows.shape)
        q = (rows / q).astype(rows.dtype)
        if num_samples == 1:
            out = np.argmax(q, axis=-1)[:, None]
        else:
            out = np.argsort(-q, axis=-1, kind="stable")[:, :num_samples]
    else:
        acc = _F32 if rows.dtype != np.float64 else np.float64
        out = np.empty((rows.shape[0], num_samples), np.int64)
        for i, row in enumerate(rows.astype(acc)):
            cum = np.cumsum(row, dtype=acc)
            cum = (cum / cum[-1]).astype(acc)
            cum[-1] = 1
            u = uniform01(eng, num_samples, "float64")
            out[i] = np.searchsorted(cum.astype(np.float64), u, side="left")
    return out.astype(np.int64).reshape(w.shape[:-1] + (num_samples,))
