"""Comparing two checkpoints tensor by tensor.

Readable inputs (`load_checkpoint`):
- HF directories: `model.safetensors.index.json` (sharded: `{"weight_map": {name: shard file}}`), else
  `model.safetensors`, else every `*.safetensors` file of the directory; then `pytorch_model.bin.index.json` /
  `pytorch_model.bin` (torch files, see below). A training output directory (`tools/train.py --output_path`) is
  an HF directory (its final export).
- Single `.safetensors` files. They are read with safetensors' numpy API (`safe_open(framework="np")`); numpy has
  no bfloat16, so BF16 tensors are read as their raw 16-bit patterns from the file (format: 8-byte little-endian
  header size, JSON header with `data_offsets` relative to the byte buffer after it) and widened exactly to
  float32 by shifting the bits into the high half of a 32-bit word. Dtypes numpy cannot represent (F8_*, ...)
  are compared byte for byte.
- torch files (`.pt`, `.pth`, `.bin`), only when `import torch` works: `torch.load(map_location="cpu",
  weights_only=True)` (`unsafe_pickle=True` allows arbitrary pickles — only for files you trust). Nested
  dicts/lists are flattened with "/" (`model/decoder.layers.0...`); non-tensor leaves are listed, not compared.
- Megatron-LM checkpoint directories (`latest_checkpointed_iteration.txt` → `release/` or `iter_XXXXXXX/` →
  `mp_rank_*/model_optim_rng.pt`), tensor names prefixed by the rank folder (`mp_rank_00/model/...`).
- megatron-core distributed checkpoints (`tools/train.py`'s `iter_XXXXXXX/` with metadata.json, common.pt, a DCP
  `.metadata` and `*.distcp` files; the directory itself or its parent with the tracker file), format "torch_dist":
  one entry per saved global tensor (`model/...`, `optimizer/...` keys as megatron named them), read by
  `parity.torch_dist` (real torch's DCP reader, or the shim facade's); ShardedObject blobs are listed, not
  compared.

Per tensor: missing/extra names, shape and dtype mismatches, max |diff|, max relative diff, number of elements
outside the tolerance (rule in `parity.tolerance`). Default tolerances depend on the dtype
(`DTYPE_TOLERANCES`; the looser of the two when dtypes differ); `atol`/`rtol` arguments override them.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import struct
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .inputs import ParityInputError, read_json
from .records import TRACKER_FILE, iteration_dir, read_tracker
from .text import fmt_diff, format_table
from .tolerance import ArrayDiff, Tolerance, compare_arrays
from .torch_dist import open_torch_dist

# Default tolerance per dtype (atol, rtol): a few units in the last place of the format, so that two
# bit-different but numerically equivalent saves agree and a real drift does not. bf16 has 8 significant bits
# (relative spacing 2**-7 ~ 7.8e-3), fp16 11 (2**-10 ~ 9.8e-4), fp32 24 (2**-23 ~ 1.2e-7).
DTYPE_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(atol=1e-12, rtol=1e-10),
    "float32": Tolerance(atol=1e-6, rtol=1e-5),
    "float16": Tolerance(atol=1e-3, rtol=1e-3),
    "bfloat16": Tolerance(atol=1e-2, rtol=8e-3),
}
INTEGER_TOLERANCE = Tolerance(0.0, 0.0)   # integer and boolean tensors: exact

# safetensors dtype codes → numpy dtype names (BF16 is handled separately, others are compared as raw bytes).
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32",
              "I16": "int16", "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8",
              "BOOL": "bool"}
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 values given as their raw 16-bit patterns (uint16/int16 array) to float32, exactly.

    bfloat16 is the upper half of an IEEE float32, so the widened value is `bits << 16` reinterpreted.
    """
    return (bits.astype(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round-to-nearest-even, NaN kept) and return their uint16 bit patterns.

    The inverse of `bf16_bits_to_float32` on bf16-representable values; used to write bf16 test files.
    """
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0), rounded).astype(np.uint16)


@dataclasses.dataclass
class TensorEntry:
    """One named tensor of a checkpoint, loaded on demand.

    Attributes:
        name: the tensor's name in the checkpoint (flattened, see the module docstring).
        dtype: dtype name ("float32", "bfloat16", "int64", "F8_E4M3", ...).
        shape: the shape.
        source: the file it comes from.
        load: returns the values as a numpy array (bf16 widened to float32), or the raw bytes (uint8) when
            `raw` is True.
        raw: the dtype has no numpy equivalent; values are compared byte for byte.
    """
    name: str
    dtype: str
    shape: tuple
    source: str
    load: Callable[[], np.ndarray]
    raw: bool = False


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint: tensor entries by name, plus the non-tensor entries that are not compared.

    Attributes:
        label: the path given.
        format: "safetensors", "safetensors-sharded", "torch", "megatron", "torch_dist".
        files: the files read.
        tensors: `{name: TensorEntry}`.
        non_tensors: `{name: type name}` of leaves that are not tensors (not compared, listed in reports).
        notes: what else was left out and why (e.g. tensors in a shard that its index does not list).
    """
    label: str
    format: str
    files: list[str]
    tensors: dict[str, TensorEntry]
    non_tensors: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------------------------------------ reading
def _safetensors_header(path: Path) -> tuple[dict, int]:
    """(header dict, byte offset of the data buffer) of a safetensors file."""
    try:
        with open(path, "rb") as f:
            size_bytes = f.read(8)
            if len(size_bytes) != 8:
                raise ParityInputError(f"{path}: not a safetensors file (shorter than its 8-byte header size)")
            (n,) = struct.unpack("<Q", size_bytes)
            header = json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        if isinstance(exc, ParityInputError):
            raise
        raise ParityInputError(f"{path}: cannot read the safetensors header ({exc})") from exc
    return header, 8 + n


def _read_safetensors(path: Path, prefix: str = "") -> dict[str, TensorEntry]:
    from safetensors import safe_open  # imported on use: the parity tool's run comparisons need no safetensors

    try:
        with safe_open(str(path), framework="np") as f:
            specs = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ParityInputError(f"{path}: not a readable safetensors file ({exc})") from exc
    header, data_start = (None, 0)
    entries = {}
    for name, (code, shape) in specs.items():
        if code in _ST_DTYPES:
            def load(name=name):
                with safe_open(str(path), framework="np") as f:
                    return f.get_tensor(name)
            entries[prefix + name] = TensorEntry(prefix + name, _ST_DTYPES[code], shape, str(path), load)
            continue
        if header is None:
            header, data_start = _safetensors_header(path)
        begin, end = header[name]["data_offsets"]

        def load_bytes(begin=begin, end=end):
            return np.fromfile(path, dtype=np.uint8, count=end - begin, offset=data_start + begin)

        if code == "BF16":
            entries[prefix + name] = TensorEntry(
                prefix + name, "bfloat16", shape, str(path),
                lambda lb=load_bytes, shape=shape: bf16_bits_to_float32(lb().view("<u2")).reshape(shape))
        else:
            entries[prefix + name] = TensorEntry(prefix + name, code, shape, str(path), load_bytes, raw=True)
    return entries


def _import_torch():
    try:
        import torch  # optional: torch checkpoint files only; may be absent where the tool runs
    except ImportError as exc:
        raise ParityInputError(f"reading torch checkpoint files needs torch, which is not importable here ({exc}); "
                               f"compare safetensors exports instead") from exc
    return torch


def _torch_tensor_entry(torch, name: str, t, source: str) -> TensorEntry:
    t = t.detach().cpu()
    dtype = str(t.dtype).replace("torch.", "")
    shape = tuple(t.shape)
    if dtype == "bfloat16":
        try:
            values = bf16_bits_to_float32(t.contiguous().view(torch.int16).numpy().view(np.uint16)).reshape(shape)
        except (RuntimeError, TypeError, NotImplementedError, AttributeError):
            values = t.float().numpy()
        return TensorEntry(name, dtype, shape, source, lambda v=values: v)
    try:
        values = t.numpy()
    except (RuntimeError, TypeError) as exc:  # dtypes numpy lacks (float8, ...): bytes
        try:
            values = t.contiguous().view(torch.uint8).numpy().reshape(-1)
        except (RuntimeError, TypeError) as exc2:
            raise ParityInputError(f"{source}: tensor {name!r} of dtype {dtype} cannot be read as numpy ({exc}; "
                                   f"{exc2})") from exc2
        return TensorEntry(name, dtype, shape, source, lambda v=values: v, raw=True)
    return TensorEntry(name, dtype, shape, source, lambda v=values: v)


def _read_torch(path: Path, prefix: str, unsafe_pickle: bool, ckpt: Checkpoint) -> None:
    torch = _import_torch()
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=not unsafe_pickle)
    except Exception as exc:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        hint = "" if unsafe_pickle else " (if the file holds trusted non-tensor objects, retry with --unsafe-pickle)"
        raise ParityInputError(f"{path}: torch.load failed: {exc}{hint}") from exc

    def walk(value: Any, name: str) -> None:
        if isinstance(value, torch.Tensor):
            ckpt.tensors[name] = _torch_tensor_entry(torch, name, value, str(path))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{name}/{k}" if name else str(k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{name}/{i}" if name else str(i))
        else:
            ckpt.non_tensors[name or "<root>"] = type(value).__name__

    if isinstance(obj, torch.Tensor):
        walk(obj, prefix.rstrip("/") or path.name)
    else:
        walk(obj, prefix.rstrip("/"))
    ckpt.files.append(str(path))


def _merge(ckpt: Checkpoint, entries: dict[str, TensorEntry]) -> None:
    for name, e in entries.items():
        if name in ckpt.tensors:
            raise ParityInputError(f"{e.source}: tensor {name!r} also in {ckpt.tensors[name].source}")
        ckpt.tensors[name] = e


def load_checkpoint(path: Union[str, Path], unsafe_pickle: bool = False) -> Checkpoint:
    """Open a checkpoint (file or directory; formats in the module docstring) without loading tensor values.

    Args:
        path: an HF directory, a training output directory, a `.safetensors` / `.pt` / `.pth` / `.bin` file, or
            a Megatron-LM checkpoint directory.
        unsafe_pickle: pass `weights_only=False` to `torch.load` (arbitrary code in the file can run).

    Returns:
        `Checkpoint` (torch files are loaded eagerly, safetensors tensors on demand).

    Raises:
        ParityInputError: the path is missing or holds nothing readable (the message says what was looked for),
            a sharded index names a missing shard or tensor, a torch file needs torch and torch is absent,
            a megatron-core distributed checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise ParityInputError(f"{path}: checkpoint not found")
    if path.is_file():
        ckpt = Checkpoint(str(path), "", [], {})
        if path.suffix == ".safetensors":
            ckpt.format = "safetensors"
            _merge(ckpt, _read_safetensors(path))
            ckpt.files.append(str(path))
        elif path.suffix in _TORCH_SUFFIXES:
            ckpt.format = "torch"
            _read_torch(path, "", unsafe_pickle, ckpt)
        elif path.name.endswith(".index.json"):
            return _load_index(path, unsafe_pickle)
        else:
            raise ParityInputError(f"{path}: unknown checkpoint file type (expected .safetensors, .pt, .pth, .bin "
                                   f"or a *.index.json)")
        return ckpt
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index_name).is_file():
            ckpt = _load_index(path / index_name, unsafe_pickle)
            ckpt.label = str(path)
            return ckpt
    ckpt = Checkpoint(str(path), "safetensors", [], {})
    singles = [path / "model.safetensors"] if (path / "model.safetensors").is_file() else \
        sorted(path.glob("*.safetensors"))
    if singles:
        for f in singles:
            _merge(ckpt, _read_safetensors(f))
            ckpt.files.append(str(f))
        return ckpt
    if (path / "pytorch_model.bin").is_file():
        ckpt.format = "torch"
        _read_torch(path / "pytorch_model.bin", "", unsafe_pickle, ckpt)
        return ckpt
    if (path / TRACKER_FILE).is_file():
        return _load_megatron(path, unsafe_pickle)
    if (path / "metadata.json").is_file():
        return _load_torch_dist(path)
    raise ParityInputError(f"{path}: no checkpoint found (looked for model.safetensors.index.json, "
                           f"model.safetensors, *.safetensors, pytorch_model.bin.index.json, pytorch_model.bin, "
                           f"latest_checkpointed_iteration.txt, metadata.json)")


def _load_index(index_path: Path, unsafe_pickle: bool) -> Checkpoint:
    index = read_json(index_path, "checkpoint index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ParityInputError(f"{index_path}: expected a sharded-checkpoint index with a 'weight_map' "
                               f"{{tensor name: shard file}}")
    torch_index = index_path.name.startswith("pytorch_model")
    ckpt = Checkpoint(str(index_path), "torch-sharded" if torch_index else "safetensors-sharded", [], {})
    by_shard: dict[str, set] = {}
    for name, shard in weight_map.items():
        by_shard.setdefault(shard, set()).add(name)
    for shard, names in sorted(by_shard.items()):
        shard_path = index_path.parent / shard
        if not shard_path.is_file():
            raise ParityInputError(f"{index_path}: shard {shard!r} (of {len(names)} tensors) not found")
        if torch_index:
            part = Checkpoint(str(shard_path), "torch", [], {})
            _read_torch(shard_path, "", unsafe_pickle, part)
            entries = part.tensors
        else:
            entries = _read_safetensors(shard_path)
        unlisted = sorted(set(entries) - names)
        if unlisted:
            ckpt.notes.append(f"{shard}: {len(unlisted)} tensor(s) not listed in {index_path.name}, not compared "
                              f"(first: {unlisted[0]!r})")
            entries = {k: v for k, v in entries.items() if k in names}
        absent = sorted(names - set(entries))
        if absent:
            raise ParityInputError(f"{index_path}: {len(absent)} tensor(s) listed for shard {shard!r} are not in "
                                   f"it (first: {absent[0]!r})")
        _merge(ckpt, entries)
        ckpt.files.append(str(shard_path))
    return ckpt


def _load_torch_dist(it_dir: Path) -> Checkpoint:
    """A megatron-core distributed checkpoint directory (metadata.json, common.pt, .metadata, *.distcp) through
    `parity.torch_dist` (real torch's DCP reader, or the shim facade's)."""
    try:
        meta = json.loads((it_dir / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ParityInputError(f"{it_dir / 'metadata.json'}: not readable JSON ({e})") from e
    backend = meta.get("sharded_backend") if isinstance(meta, dict) else None
    if backend != "torch_dist":
        raise ParityInputError(f"{it_dir}: a megatron-core distributed checkpoint with sharded_backend "
                               f"{backend!r}; only 'torch_dist' is readable")
    dcp = open_torch_dist(it_dir)
    ckpt = Checkpoint(str(it_dir), "torch_dist", list(dcp.files), {})
    for key in dcp.objects:
        ckpt.non_tensors[key] = "bytes"
    for key, (dtype, shape) in sorted(dcp.tensors.items()):
        ckpt.tensors[key] = TensorEntry(name=key, dtype=dtype, shape=shape, source=str(it_dir),
                                        load=lambda key=key: dcp.load(key))
    return ckpt


def _load_megatron(path: Path, unsafe_pickle: bool) -> Checkpoint:
    try:
        iteration, release = read_tracker(path)
    except ValueError as e:
        raise ParityInputError(str(e)) from e
    it_dir = iteration_dir(path, iteration, release)
    if not it_dir.is_dir():
        raise ParityInputError(f"{path / TRACKER_FILE}: names {it_dir.name!r}, which is not a directory of {path}")
    if (it_dir / "metadata.json").is_file():
        return _load_torch_dist(it_dir)
    ckpt = Checkpoint(str(path), "megatron", [], {})
    rank_dirs = sorted(d for d in it_dir.glob("mp_rank_*") if d.is_dir())
    if not rank_dirs:
        raise ParityInputError(f"{it_dir}: no mp_rank_* directories")
    for d in rank_dirs:
        files = sorted(d.glob("*.pt"))
        if not files:
            raise ParityInputError(f"{d}: no .pt file")
        for f in files:
            prefix = f"{d.name}/" if len(files) == 1 else f"{d.name}/{f.stem}/"
            _read_torch(f, prefix, unsafe_pickle, ckpt)
    return ckpt


# ------------------------------------------------------------------------------------------------ comparing
def default_tolerance(dtype: str) -> Tolerance:
    """The stated default tolerance for a dtype name (`DTYPE_TOLERANCES`, exact for integers and the rest)."""
    return DTYPE_TOLERANCES.get(dtype, INTEGER_TOLERANCE)


@dataclasses.dataclass
class TensorComparison:
    """One tensor name present in both checkpoints.

    Attributes:
        name: the tensor name.
        dtype_a, dtype_b / shape_a, shape_b: as stored.
        tolerance: the tolerance applied.
        diff: the element-wise statistics (None when shapes differ or values are not comparable).
        problems: reasons for a mismatch ("shape", "dtype", "values", "raw bytes differ", ...); empty when ok.
    """
    name: str
    dtype_a: str
    dtype_b: str
    shape_a: tuple
    shape_b: tuple
    tolerance: Tolerance
    diff: Optional[ArrayDiff]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


@dataclasses.dataclass
class CheckpointComparison:
    """Result of `compare_checkpoints`.

    Attributes:
        a, b: the checkpoints.
        tensors: one `TensorComparison` per common name, in name order.
        only_in_a, only_in_b: names present in one checkpoint only (after `ignore`).
        ignored: names excluded by the `ignore` patterns (both sides).
    """
    a: Checkpoint
    b: Checkpoint
    tensors: list[TensorComparison]
    only_in_a: list[str]
    only_in_b: list[str]
    ignored: list[str]

    @property
    def failures(self) -> list[TensorComparison]:
        """Tensors with a problem."""
        return [t for t in self.tensors if not t.ok]

    @property
    def ok(self) -> bool:
        """Every common tensor agrees, none is missing on either side, and at least one was compared."""
        return bool(self.tensors) and not self.failures and not self.only_in_a and not self.only_in_b


def compare_checkpoints(a: Union[Checkpoint, str, Path], b: Union[Checkpoint, str, Path],
                        atol: Optional[float] = None, rtol: Optional[float] = None, ignore_dtype: bool = False,
                        ignore: Sequence[str] = (), unsafe_pickle: bool = False) -> CheckpointComparison:
    """Compare two checkpoints tensor by tensor.

    Args:
        a, b: `Checkpoint`s or paths for `load_checkpoint`.
        atol, rtol: override the per-dtype defaults (`DTYPE_TOLERANCES`) for every floating tensor; 0 and 0 means
            bit-exact values. Integer tensors are always exact unless an override is given.
        ignore_dtype: a dtype difference alone is not a problem (values are still compared, at the looser
            tolerance).
        ignore: fnmatch patterns of tensor names to leave out on both sides.
        unsafe_pickle: see `load_checkpoint`.

    Returns:
        `CheckpointComparison`.

    Raises:
        ParityInputError: from `load_checkpoint`.
    """
    ca = a if isinstance(a, Checkpoint) else load_checkpoint(a, unsafe_pickle)
    cb = b if isinstance(b, Checkpoint) else load_checkpoint(b, unsafe_pickle)

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in ignore)

    names_a = {n for n in ca.tensors if not ignored(n)}
    names_b = {n for n in cb.tensors if not ignored(n)}
    skipped = sorted((set(ca.tensors) | set(cb.tensors)) - names_a - names_b)
    results = []
    for name in sorted(names_a & names_b):
        ea, eb = ca.tensors[name], cb.tensors[name]
        tol = default_tolerance(ea.dtype).loosest(default_tolerance(eb.dtype))
        if atol is not None or rtol is not None:
            tol = Tolerance(tol.atol if atol is None else atol, tol.rtol if rtol is None else rtol)
        problems = []
        if ea.shape != eb.shape:
            problems.append(f"shape {list(ea.shape)} vs {list(eb.shape)}")
        if ea.dtype != eb.dtype and not ignore_dtype:
            problems.append(f"dtype {ea.dtype} vs {eb.dtype}")
        diff = None
        if ea.shape == eb.shape:
            if ea.raw and eb.raw and ea.dtype == eb.dtype:
                if not np.array_equal(ea.load(), eb.load()):
                    problems.append("raw bytes differ")
            elif ea.raw or eb.raw:
                if ea.dtype == eb.dtype or ignore_dtype:
                    problems.append(f"values not comparable ({ea.dtype} vs {eb.dtype})")
            else:
                xa, xb = ea.load(), eb.load()
                if tuple(xa.shape) != tuple(ea.shape):
                    xa = xa.reshape(ea.shape)
                if tuple(xb.shape) != tuple(eb.shape):
                    xb = xb.reshape(eb.shape)
                diff = compare_arrays(xa, xb, tol)
                if diff.mismatches:
                    problems.append(f"values: {diff.mismatches}/{diff.numel} outside tolerance")
        results.append(TensorComparison(name, ea.dtype, eb.dtype, ea.shape, eb.shape, tol, diff, problems))
    return CheckpointComparison(ca, cb, results, sorted(names_a - names_b), sorted(names_b - names_a), skipped)


def format_checkpoint_report(cmp: CheckpointComparison, max_rows: int = 50, show_all: bool = False) -> str:
    """Human-readable report: sources, key coverage, a per-tensor table, totals and the verdict.

    The table lists every tensor when there are at most `max_rows` (or `show_all`); otherwise every failing
    tensor plus the 10 largest max |diff|.
    """
    out = [f"A: {cmp.a.label} ({cmp.a.format}, {len(cmp.a.files)} file(s), {len(cmp.a.tensors)} tensors)",
           f"B: {cmp.b.label} ({cmp.b.format}, {len(cmp.b.files)} file(s), {len(cmp.b.tensors)} tensors)"]
    for side, c in (("A", cmp.a), ("B", cmp.b)):
        if c.non_tensors:
            names = sorted(c.non_tensors)
            out.append(f"{side}: {len(names)} non-tensor entries not compared: {', '.join(names[:8])}"
                       + (" …" if len(names) > 8 else ""))
    for side, c in (("A", cmp.a), ("B", cmp.b)):
        out += [f"{side}: note: {n}" for n in c.notes]
    if cmp.ignored:
        out.append(f"ignored by pattern: {len(cmp.ignored)} tensor(s)")
    for side, names in (("A", cmp.only_in_a), ("B", cmp.only_in_b)):
        if names:
            out.append(f"only in {side} ({len(names)}): {', '.join(names[:20])}" + (" …" if len(names) > 20 else ""))
    rows_src = cmp.tensors
    if not show_all and len(rows_src) > max_rows:
        top = sorted((t for t in cmp.tensors if t.diff), key=lambda t: -t.diff.max_abs)[:10]
        keep = {t.name for t in cmp.failures} | {t.name for t in top}
        rows_src = [t for t in cmp.tensors if t.name in keep]
        out.append(f"(showing {len(rows_src)} of {len(cmp.tensors)} tensors: failures and the 10 largest "
                   f"differences; --all shows every tensor)")
    rows = []
    for t in rows_src:
        dtype = t.dtype_a if t.dtype_a == t.dtype_b else f"{t.dtype_a}/{t.dtype_b}"
        shape = "x".join(map(str, t.shape_a)) if t.shape_a == t.shape_b else \
            f"{'x'.join(map(str, t.shape_a))}/{'x'.join(map(str, t.shape_b))}"
        d = t.diff
        rows.append([t.name, dtype, shape or "scalar", fmt_diff(d.max_abs) if d else "-",
                     fmt_diff(d.max_rel) if d else "-", f"{d.mismatches}/{d.numel}" if d else "-",
                     t.tolerance.describe(), "ok" if t.ok else "FAIL: " + "; ".join(t.problems)])
    if rows:
        out.append(format_table(["tensor", "dtype", "shape", "max|diff|", "max rel", "outside", "tolerance", "ok"],
                                rows))
    diffs = [t.diff for t in cmp.tensors if t.diff]
    if diffs:
        out.append(f"overall: max |diff| {fmt_diff(max(d.max_abs for d in diffs))}, max rel "
                   f"{fmt_diff(max(d.max_rel for d in diffs))} over {sum(d.numel for d in diffs)} elements")
    if cmp.ok:
        out.append(f"OK: {len(cmp.tensors)} tensors agree")
    else:
        reasons = []
        if cmp.failures:
            reasons.append(f"{len(cmp.failures)} of {len(cmp.tensors)} tensors differ (first: {cmp.failures[0].name})")
        if cmp.only_in_a or cmp.only_in_b:
            reasons.append(f"{len(cmp.only_in_a)} only in A, {len(cmp.only_in_b)} only in B")
        if not cmp.tensors:
            reasons.append("no tensor in common")
        out.append("MISMATCH: " + "; ".join(reasons))
    return "\n".join(out)
