"""The ZIP container exactly as real ``torch.save`` lays it out, byte for byte.

``torch.save`` hands its records to PyTorch's C++ ``PyTorchStreamWriter`` (``caffe2/serialize/inline_container.cc``),
which writes them with the bundled miniz in ZIP64 mode. Python's :mod:`zipfile` writes a valid archive that real
torch loads, but not the same bytes (other header fields, other padding, a random ``serialization_id``). A
checkpoint written under the shim has to be *byte-identical* to the reference run's (the parity checks compare
files), so this module reproduces the writer's observable layout. It was derived from the format description
below and checked against files written by torch 2.13.

Layout, per record, in write order:

* local header (30 bytes): signature ``PK\\x03\\x04``, version needed 0, flags ``0x0808`` (sizes and CRC follow
  in a data descriptor; UTF-8 names), method 0 (stored), time and date 0, CRC and both sizes 0, name length,
  extra length;
* the name (``<archive>/<record>``);
* extra fields: a ZIP64 field (tag 1: uncompressed and compressed size when the record is >= 4 GiB - 1, local
  header offset when the header starts at >= 4 GiB - 1) only when needed, then torch's padding field
  ``b"FB" + <u16 n> + b"Z" * n`` that puts the record's first data byte on a multiple of the storage alignment
  (64). The padding field is always present, also with n = 0, and on every record (``data.pkl`` too);
* the data;
* the data descriptor: ``PK\\x07\\x08``, CRC-32, compressed and uncompressed size (4 bytes each, or 8 each
  when the record has a ZIP64 field). An empty record (a zero-element storage) has flags ``0x0800`` and no data
  descriptor.

Then the central directory (one 46-byte header per record, version made by/needed 0, the same flags, real CRC
and sizes, clamped to 0xFFFFFFFF with a ZIP64 field carrying the real values when clamped; no padding field),
always followed by a ZIP64 end-of-central-directory record (version made by 0x031E, needed 0x002D), its locator,
and the classic end record (counts clamped to 0xFFFF, size and offset to 0xFFFFFFFF).

``.data/serialization_id`` (40 decimal digits) is deterministic in torch: 20 digits of a combined hash of the
record names (C++ ``std::hash<std::string>`` of libstdc++ — MurmurHash2-64A with seed 0xc70f6907 — folded with
``hash_combine`` over the names in the iteration order of the ``std::unordered_set`` that holds them, see
:func:`unordered_set_order`) and 20 digits of the CRC-32s of the records written before it, folded in write
order with the same ``hash_combine``. It is computed here the same way.

Checked byte for byte against torch 2.13: every dtype, shared views, empty and 0-d tensors, 70 storages, buffers,
``_disable_byteorder_record`` (tests/shim/test_serialization_bytes.py) and converted Megatron checkpoints
(tests/shim/test_tools_shim.py). Not compared with torch (too large for tests): records of 4 GiB or more and
records starting beyond 4 GiB, which follow miniz's ZIP64 rules as described above; real torch and
:mod:`zipfile` read them either way.
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

__all__ = ["TorchZipWriter", "SERIALIZATION_ID_RECORD"]

SERIALIZATION_ID_RECORD = ".data/serialization_id"

_U32_MAX = 0xFFFFFFFF
_U16_MAX = 0xFFFF
_MASK64 = (1 << 64) - 1
_FLAGS = 0x0808  # bit 3: data descriptor; bit 11: UTF-8 name
_FLAGS_EMPTY = 0x0800  # an empty record: no data descriptor
_MURMUR_MUL = 0xC6A4A7935BD1E995
_STD_HASH_SEED = 0xC70F6907


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def std_hash_bytes(data: bytes, seed: int = _STD_HASH_SEED) -> int:
    """libstdc++'s 64-bit ``std::hash<std::string>`` (``_Hash_bytes``, MurmurHash2-64A variant) of ``data``."""
    n = len(data)
    h = (seed ^ (n * _MURMUR_MUL)) & _MASK64
    whole = n & ~7
    for i in range(0, whole, 8):
        k = (_shift_mix((int.from_bytes(data[i:i + 8], "little") * _MURMUR_MUL) & _MASK64) * _MURMUR_MUL) & _MASK64
        h = ((h ^ k) * _MURMUR_MUL) & _MASK64
    if n & 7:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * _MURMUR_MUL) & _MASK64
    h = (_shift_mix(h) * _MURMUR_MUL) & _MASK64
    return _shift_mix(h)


def hash_combine(seed: int, value: int) -> int:
    """c10's ``hash_combine`` on 64-bit ``size_t``: ``seed ^ (value + 0x9e3779b9 + (seed << 6) + (seed >> 2))``."""
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & _MASK64)) & _MASK64


# Bucket counts a libstdc++ unordered container passes through while it grows one element at a time with the
# default max_load_factor 1.0 (_Prime_rehash_policy: 13 buckets at the first insert, then the first prime of its
# prime table >= twice the current count once the element count exceeds the bucket count). Checked against
# g++'s std::unordered_set: the iteration order for up to 100,001 keys, the bucket counts up to 13 million keys
# (tests/shim/test_serialization_bytes.py compares whole files with real torch's).
_GROWTH_BUCKETS = (13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061,
                   712697, 1447153, 2938679, 5967347, 12117689, 24607243)


class _Node:
    __slots__ = ("key", "hash", "next")

    def __init__(self, key, h):
        self.key, self.hash, self.next = key, h, None


def unordered_set_order(keys: list[str]) -> list[str]:
    """The iteration order of a libstdc++ ``std::unordered_set<std::string>`` after inserting ``keys`` (distinct)
    in this order: a singly linked list in which a key whose bucket is empty goes to the front and a key whose
    bucket is occupied goes right after that bucket's predecessor node; a rehash relinks the nodes in list order
    by the same rule. torch folds the record names in this order into its serialization id.

    Raises:
        NotImplementedError: more than 24,607,243 records (beyond the checked bucket table above).
    """
    head = _Node(None, 0)  # the container's "before begin" node
    buckets: list = [None]  # one bucket and no allowance before the first insert
    allowance = 0  # elements the current bucket count holds at load factor 1.0
    size = 0
    for key in keys:
        node = _Node(key, std_hash_bytes(key.encode("utf-8")))
        if size + 1 > allowance:  # rehash into the next bucket count before inserting
            grown = [b for b in _GROWTH_BUCKETS if b > allowance]
            if not grown:
                raise NotImplementedError(f"torch.save: more than {_GROWTH_BUCKETS[-1]:,} records in one file "
                                          "(torch's serialization id is not reproduced beyond that)")
            count = allowance = grown[0]
            new = [None] * count
            p, head.next, first_bkt = head.next, None, 0
            while p is not None:
                nxt, b = p.next, p.hash % count
                if new[b] is None:
                    p.next, head.next, new[b] = head.next, p, head
                    if p.next is not None:
                        new[first_bkt] = p
                    first_bkt = b
                else:
                    p.next, new[b].next = new[b].next, p
                p = nxt
            buckets = new
        b = node.hash % len(buckets)
        if buckets[b] is not None:
            node.next, buckets[b].next = buckets[b].next, node
        else:
            node.next, head.next = head.next, node
            if node.next is not None:
                buckets[node.next.hash % len(buckets)] = node
            buckets[b] = head
        size += 1
    out, p = [], head.next
    while p is not None:
        out.append(p.key)
        p = p.next
    return out


def _zip64_extra(uncomp: int | None, comp: int | None, offset: int | None) -> bytes:
    body = b"".join(struct.pack("<Q", v) for v in (uncomp, comp, offset) if v is not None)
    return struct.pack("<HH", 1, len(body)) + body if body else b""


class TorchZipWriter:
    """Writes records into ``fh`` (binary, write-only is enough: nothing is read back or seeked) the way
    ``PyTorchStreamWriter`` does.

    Args:
        fh: the destination stream, positioned where the archive starts (offsets are counted from there).
        archive_name: the top-level folder of every record (the file's stem, or ``archive`` for a buffer).
        alignment: the storage alignment in bytes (torch's default 64).

    Use :meth:`write_record` for each record in torch's order, then :meth:`finish` (which writes the
    serialization id and the directory). Raises ``ValueError`` for a record name written twice.
    """

    def __init__(self, fh: BinaryIO, archive_name: str, alignment: int = 64):
        self._fh = fh
        self._prefix = archive_name + "/"
        self._alignment = alignment
        self._pos = 0
        self._central: list[bytes] = []
        self._names: set[str] = set()
        self._order: list[str] = []
        self._combined_crc = 0

    def _write(self, data) -> None:
        self._fh.write(data)
        self._pos += memoryview(data).nbytes

    def write_record(self, name: str, data) -> None:
        """Write one stored record: ``data`` is bytes or any C-contiguous buffer (written in 64 MiB slices)."""
        if name in self._names:
            raise ValueError(f"torch.save: record {name!r} written twice")
        view = memoryview(data).cast("B")
        size = view.nbytes
        full = (self._prefix + name).encode("utf-8")
        offset = self._pos
        big_size, big_offset = size >= _U32_MAX, offset >= _U32_MAX
        local_zip64 = _zip64_extra(size if big_size else None, 0 if big_size else None,
                                   offset if big_offset else None)
        start = offset + 30 + len(full) + len(local_zip64) + 4
        pad = (-start) % self._alignment
        extra = local_zip64 + b"FB" + struct.pack("<H", pad) + b"Z" * pad
        flags = _FLAGS if size else _FLAGS_EMPTY
        self._write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flags, 0, 0, 0, 0, 0, 0, len(full), len(extra)))
        self._write(full)
        self._write(extra)
        crc = 0
        chunk = 64 << 20
        for begin in range(0, size, chunk):
            piece = view[begin:begin + chunk]
            crc = zlib.crc32(piece, crc)
            self._write(piece)
        if size:  # an empty record has no data descriptor (and adds nothing to the combined CRC)
            if local_zip64:
                self._write(struct.pack("<IIQQ", 0x08074B50, crc, size, size))
            else:
                self._write(struct.pack("<IIII", 0x08074B50, crc, size, size))
            self._combined_crc = hash_combine(self._combined_crc, crc)
        central_zip64 = _zip64_extra(size if big_size else None, size if big_size else None,
                                     offset if big_offset else None)
        clamp = min(size, _U32_MAX)
        self._central.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, flags, 0, 0, 0, crc, clamp, clamp, len(full),
                        len(central_zip64), 0, 0, 0, 0, min(offset, _U32_MAX)) + full + central_zip64)
        self._names.add(name)
        self._order.append(name)

    def serialization_id(self) -> str:
        """torch's 40-digit id of the records written so far (see the module docstring)."""
        names = 0
        for name in unordered_set_order(self._order):
            names = hash_combine(names, std_hash_bytes(name.encode("utf-8")))
        return f"{names:020d}{self._combined_crc:020d}"

    def finish(self) -> None:
        """Write ``.data/serialization_id``, the central directory and the end records."""
        self.write_record(SERIALIZATION_ID_RECORD, self.serialization_id().encode("ascii"))
        cd_offset = self._pos
        for header in self._central:
            self._write(header)
        cd_size = self._pos - cd_offset
        count = len(self._central)
        eocd64_offset = self._pos
        self._write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, count, count, cd_size,
                                cd_offset))
        self._write(struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1))
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, _U16_MAX), min(count, _U16_MAX),
                                min(cd_size, _U32_MAX), min(cd_offset, _U32_MAX), 0))
