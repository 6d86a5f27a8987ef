"""`torch.save` under the shim writes the same bytes as real torch (shim/torch/_zip_writer.py).

Real torch is imported directly in this process (the import hook is not active under pytest); the same values are
saved once by real torch and once by the facade, and the two files must be equal byte for byte: the pickle, the
ZIP headers, torch's 64-byte padding records, the data descriptors, the ZIP64 end records and torch's
deterministic `.data/serialization_id` (record-name hash folded in libstdc++ `unordered_set` order, CRC-32s in
write order).
"""
from __future__ import annotations

import collections
import io

import numpy as np
import pytest

import mindspore as ms
import torch

from shim.torch import _dtype as D  # noqa: E402
from shim.torch import serialization as S  # noqa: E402
from shim.torch._tensor import wrap  # noqa: E402
from shim.torch._zip_writer import TorchZipWriter, hash_combine, std_hash_bytes, unordered_set_order  # noqa: E402

_ARRAYS = {
    "float32": np.array([[0.1, -3.0], [np.nan, 7.25]], np.float32),
    "float64": np.array([1.0, -2.5, 1e300], np.float64),
    "float16": np.array([0.5, -65504.0], np.float16),
    "int64": np.array([-(2 ** 62), 0, 2 ** 62 + 3], np.int64),
    "int32": np.array([-7, 2 ** 31 - 1], np.int32),
    "uint8": np.array([0, 255, 17], np.uint8),
    "bool": np.array([True, False, True]),
}
_BF16_BITS = np.array([0x3F80, 0xC000, 0x0001, 0x7F7F, 0xFF80], np.uint16)


def _pair(arr: np.ndarray):
    """(facade tensor, real torch tensor) with the same values (np.ascontiguousarray would make 0-d arrays 1-d)."""
    return wrap(ms.Tensor(arr.copy())), torch.from_numpy(arr.copy())


def _bf16_pair():
    facade = wrap(ms.Tensor(_BF16_BITS).view(ms.bfloat16), dtype=D.bfloat16)
    return facade, torch.from_numpy(_BF16_BITS.view(np.int16).copy()).view(torch.bfloat16)


def _save_pair(tmp_path, name, facade_obj, torch_obj, **kwargs) -> tuple[bytes, bytes]:
    (tmp_path / "shim").mkdir(exist_ok=True)
    (tmp_path / "torch").mkdir(exist_ok=True)
    S.save(facade_obj, tmp_path / "shim" / name, **kwargs)
    torch.save(torch_obj, tmp_path / "torch" / name, **kwargs)
    return (tmp_path / "shim" / name).read_bytes(), (tmp_path / "torch" / name).read_bytes()


def _assert_same(ours: bytes, theirs: bytes) -> None:
    if ours != theirs:
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        pytest.fail(f"files differ at byte {first} (sizes {len(ours)} vs {len(theirs)}): "
                    f"shim {ours[first:first + 24]!r} torch {theirs[first:first + 24]!r}")


def test_every_dtype_and_bf16_byte_identical(tmp_path):
    pairs = {name: _pair(arr) for name, arr in _ARRAYS.items()}
    pairs["bfloat16"] = _bf16_pair()
    ours, theirs = _save_pair(tmp_path, "dtypes.pt", {k: v[0] for k, v in pairs.items()},
                              {k: v[1] for k, v in pairs.items()})
    _assert_same(ours, theirs)
    assert b".data/serialization_id" in ours


def test_state_dict_with_many_storages_byte_identical(tmp_path):
    """70 storages: the record-name set grows past 13, 29 and 59 buckets (three rehashes), so the serialization
    id depends on the simulated unordered_set order; OrderedDict with `_metadata` like a module's state dict."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, i % 5 + 1)).astype(np.float32) for i in range(70)]
    facade, real = collections.OrderedDict(), collections.OrderedDict()
    for i, arr in enumerate(arrays):
        facade[f"layers.{i}.weight"], real[f"layers.{i}.weight"] = _pair(arr)
    facade._metadata = real._metadata = collections.OrderedDict({"": {"version": 1}})
    ours, theirs = _save_pair(tmp_path, "model_optim_rng.pt", {"model": facade, "checkpoint_version": 3.0},
                              {"model": real, "checkpoint_version": 3.0})
    _assert_same(ours, theirs)


def test_shared_views_empty_and_scalars_byte_identical(tmp_path):
    base_np = np.arange(12, dtype=np.float32).reshape(3, 4)
    fb, tb = _pair(base_np)
    f_obj = {"base": fb, "window": fb.as_strided((2, 2), (4, 1), 5), "empty": _pair(np.zeros((0, 3), np.float32))[0],
             "scalar": _pair(np.array(2.5, np.float32))[0], "step": 7, "name": "x"}
    t_obj = {"base": tb, "window": tb.as_strided((2, 2), (4, 1), 5), "empty": torch.zeros((0, 3)),
             "scalar": torch.tensor(2.5), "step": 7, "name": "x"}
    _assert_same(*_save_pair(tmp_path, "views.pt", f_obj, t_obj))


def test_buffer_target_and_no_byteorder_flag_byte_identical(tmp_path):
    f, t = _pair(np.linspace(0, 1, 33, dtype=np.float32))
    buf_s, buf_t = io.BytesIO(), io.BytesIO()
    S.save({"w": f}, buf_s)
    torch.save({"w": t}, buf_t)
    _assert_same(buf_s.getvalue(), buf_t.getvalue())
    assert buf_s.getvalue().count(b"archive/data.pkl") == 2  # local header + central directory
    # torch's writer appends the byteorder record at the end even when asked to leave it out
    ours, theirs = _save_pair(tmp_path, "nobo.pt", {"w": f}, {"w": t}, _disable_byteorder_record=True)
    _assert_same(ours, theirs)


def test_shim_file_loads_in_real_torch_and_back(tmp_path):
    f, t = _pair(np.arange(6, dtype=np.float32).reshape(2, 3))
    S.save({"w": f}, tmp_path / "a.pt")
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], t)


def test_hash_helpers_match_known_values():
    """Values of libstdc++'s std::hash<std::string> (g++ 13, x86_64) and torch's id of a real file."""
    assert std_hash_bytes(b"data.pkl") == 4941642132189851806
    assert std_hash_bytes(b"version") == 1565691551459181974
    assert std_hash_bytes(b"abcdefghij") == 18042067762304121004
    assert hash_combine(0, 1) == 0x9E3779BA
    # iteration order of std::unordered_set<std::string> after inserting these six names (printed by g++)
    names = ["data.pkl", ".format_version", ".storage_alignment", "byteorder", "data/0", "data/1"]
    assert unordered_set_order(names) == ["data/0", "data/1", "byteorder", ".storage_alignment", ".format_version",
                                          "data.pkl"]


def test_writer_rejects_duplicate_records():
    zw = TorchZipWriter(io.BytesIO(), "archive")
    zw.write_record("data.pkl", b"x")
    with pytest.raises(ValueError, match="'data.pkl' written twice"):
        zw.write_record("data.pkl", b"y")


def test_parameters_and_unsigned_wide_dtypes_byte_identical(tmp_path):
    """nn.Parameter goes through torch._utils._rebuild_parameter; uint16/uint32 through _rebuild_tensor_v3 with
    an UntypedStorage."""
    from shim.torch.nn.parameter import Parameter

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    u16 = np.array([0, 1, 65535], np.uint16)
    u32 = np.array([7, 2 ** 32 - 1], np.uint32)
    f_obj = {"weight": Parameter(_pair(w)[0]), "frozen": Parameter(_pair(w)[0], requires_grad=False),
             "u16": _pair(u16)[0], "u32": _pair(u32)[0]}
    t_obj = {"weight": torch.nn.Parameter(torch.from_numpy(w.copy())),
             "frozen": torch.nn.Parameter(torch.from_numpy(w.copy()), requires_grad=False),
             "u16": torch.from_numpy(u16.copy()), "u32": torch.from_numpy(u32.copy())}
    _assert_same(*_save_pair(tmp_path, "params.pt", f_obj, t_obj))
