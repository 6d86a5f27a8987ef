"""torch.save / torch.load interop between the shim and real torch (the reference backend).

Real torch is imported directly in this process (the import hook is not active under pytest); the shim's
serialization is reached as ``shim.torch.serialization``. Facade tensors are made with ``wrap`` over MindSpore
tensors so that these tests depend only on the facade's storage/view model, not on its op coverage.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
import torch

from shim.torch import _dtype as D  # noqa: E402
from shim.torch import serialization as S  # noqa: E402
from shim.torch._tensor import Tensor as FTensor  # noqa: E402
from shim.torch._tensor import to_ms, wrap  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# dtype name -> (numpy values for the facade, the real torch dtype)
_SAMPLES = {
    "float64": np.array([1.0, -2.5, 1e300, np.inf], np.float64),
    "float32": np.array([[0.1, -3.0], [np.nan, 7.25]], np.float32),
    "float16": np.array([0.5, -65504.0, 6e-8], np.float16),
    "int64": np.array([-(2 ** 62), 0, 2 ** 62 + 3], np.int64),
    "int32": np.array([-7, 2 ** 31 - 1], np.int32),
    "int16": np.array([-32768, 5], np.int16),
    "int8": np.array([-128, 127, 3], np.int8),
    "uint8": np.array([0, 255, 17], np.uint8),
    "bool": np.array([True, False, True]),
    "complex64": np.array([1 + 2j, -0.5j], np.complex64),
}
# bfloat16 bit patterns: 1.0, -2.0, smallest subnormal, largest finite, -inf, 3.140625
_BF16_BITS = np.array([0x3F80, 0xC000, 0x0001, 0x7F7F, 0xFF80, 0x4049], np.uint16)


def _facade(arr: np.ndarray, dtype=None, device=None) -> FTensor:
    return wrap(ms.Tensor(np.ascontiguousarray(arr)), dtype=dtype, device=device)


def _facade_bf16(bits: np.ndarray, device=None) -> FTensor:
    return wrap(ms.Tensor(bits.astype(np.uint16)).view(ms.bfloat16), dtype=D.bfloat16, device=device)


def _values(t: FTensor) -> np.ndarray:
    """The facade tensor's values (bfloat16 as its uint16 bit patterns)."""
    arr = to_ms(t).asnumpy()
    return arr.view(np.uint16) if t.dtype is D.bfloat16 else arr


def _torch_values(t) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def _save_bytes(obj) -> bytes:
    buf = io.BytesIO()
    S.save(obj, buf)
    return buf.getvalue()


def test_every_dtype_loads_in_real_torch_weights_only(tmp_path):
    objs = {name: _facade(arr) for name, arr in _SAMPLES.items()}
    objs["bfloat16"] = _facade_bf16(_BF16_BITS)
    path = tmp_path / "all_dtypes.pt"
    S.save(objs, path)
    loaded = torch.load(path, weights_only=True)
    assert set(loaded) == set(objs)
    for name, t in loaded.items():
        assert t.dtype == getattr(torch, name), name
        expected = _BF16_BITS if name == "bfloat16" else _SAMPLES[name]
        np.testing.assert_array_equal(_torch_values(t), expected, err_msg=name)
    # the zip layout torch writes: one folder named after the file, storages 64-byte aligned
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert "all_dtypes/data.pkl" in names and "all_dtypes/byteorder" in names
        assert zf.read("all_dtypes/version") == b"3\n"
        raw = path.read_bytes()
        for info in zf.infolist():
            if "/data/" in info.filename:  # the padding is in the local header's extra field only (as torch's)
                name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
                    int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
                start = info.header_offset + 30 + name_len + extra_len
                assert start % 64 == 0, info.filename


def test_unsigned_wide_dtypes_round_trip_with_real_torch(tmp_path):
    """uint16/uint32/uint64 have no legacy storage class: torch writes them with _rebuild_tensor_v3."""
    arrs = {"uint16": np.array([0, 65535, 7], np.uint16), "uint32": np.array([2 ** 32 - 1, 1], np.uint32),
            "uint64": np.array([2 ** 64 - 1, 2], np.uint64)}
    path = tmp_path / "u.pt"
    S.save({k: _facade(v) for k, v in arrs.items()}, path)
    loaded = torch.load(path, weights_only=True)
    for k, v in arrs.items():
        assert loaded[k].dtype == getattr(torch, k)
        np.testing.assert_array_equal(loaded[k].numpy(), v)
    torch.save({k: torch.from_numpy(v) for k, v in arrs.items()}, tmp_path / "t.pt")
    back = S.load(tmp_path / "t.pt")
    for k, v in arrs.items():
        assert back[k].dtype is getattr(D, k)
        np.testing.assert_array_equal(_values(back[k]), v)


def test_shared_storage_views_are_saved_once_and_share_in_real_torch(tmp_path):
    base = _facade(np.arange(12, dtype=np.float32).reshape(3, 4))
    window = base.as_strided((2, 2), (4, 1), 5)  # base[1:, 1:3]
    column = base.as_strided((3,), (4,), 2)  # base[:, 2]
    path = tmp_path / "views.pt"
    S.save({"base": base, "window": window, "column": column}, path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(n for n in zf.namelist() if "/data/" in n) == ["views/data/0"]
    loaded = torch.load(path, weights_only=True)
    b, w, c = loaded["base"], loaded["window"], loaded["column"]
    assert w.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() == c.untyped_storage().data_ptr()
    assert (w.storage_offset(), w.stride(), c.storage_offset(), c.stride()) == (5, (4, 1), 2, (4,))
    np.testing.assert_array_equal(w.numpy(), [[5, 6], [9, 10]])
    b[1, 2] = 100.0  # aliasing survived: the write shows in both views
    assert w[0, 1].item() == 100.0 and c[1].item() == 100.0


def test_real_torch_views_load_as_views_in_the_shim(tmp_path):
    base = torch.arange(20, dtype=torch.bfloat16).reshape(4, 5)
    torch.save({"base": base, "t": base.t(), "row": base[2], "tail": base.view(-1)[7:]}, tmp_path / "v.pt")
    loaded = S.load(tmp_path / "v.pt", weights_only=True)
    b = loaded["base"]
    for key, ref in (("base", base), ("t", base.t()), ("row", base[2]), ("tail", base.view(-1)[7:])):
        t = loaded[key]
        assert tuple(t.shape) == tuple(ref.shape) and t.dtype is D.bfloat16
        assert t.stride() == ref.stride() and t.storage_offset() == ref.storage_offset(), key
        np.testing.assert_array_equal(_values(t), _torch_values(ref.contiguous()), err_msg=key)
        assert t is b or t._base is b._base or t._base is b, f"{key} does not view the loaded storage"
    # writing through the base shows in a view (the facade's aliasing)
    b.copy_(_facade(np.zeros((4, 5), np.float32), dtype=D.bfloat16))
    assert float(np.abs(_values(loaded["row"]).astype(np.float64)).sum()) == 0.0


def test_real_torch_optimizer_state_dict_and_bf16_model_load_in_shim(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)).to(torch.bfloat16)
    fp32 = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(fp32.parameters(), lr=1e-3)
    for _ in range(2):
        fp32(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "iteration": 7,
                "dtype": torch.bfloat16, "device": torch.device("cpu"), "size": torch.Size([2, 3])}, path)
    loaded = S.load(path, weights_only=True)
    sd = loaded["model"]
    assert isinstance(sd, collections.OrderedDict)
    assert list(sd) == list(model.state_dict())
    assert sd._metadata == model.state_dict()._metadata  # the OrderedDict's attribute survives
    for k, v in model.state_dict().items():
        assert sd[k].dtype is D.bfloat16
        np.testing.assert_array_equal(_values(sd[k]), _torch_values(v), err_msg=k)
    ref = opt.state_dict()
    got = loaded["optimizer"]
    assert got["param_groups"] == ref["param_groups"]
    for pid, state in ref["state"].items():
        assert set(got["state"][pid]) == set(state)
        for k, v in state.items():
            assert got["state"][pid][k].dtype is getattr(D, str(v.dtype)[len("torch."):])
            np.testing.assert_array_equal(_values(got["state"][pid][k]), v.numpy(), err_msg=f"{pid}.{k}")
    assert loaded["iteration"] == 7 and loaded["dtype"] is D.bfloat16
    assert str(loaded["device"]) == "cpu" and tuple(loaded["size"]) == (2, 3)
    assert type(loaded["size"]).__name__ == "Size"


def test_bf16_bits_survive_torch_to_shim_to_torch(tmp_path):
    bits = np.array([0x7FC1, 0x0001, 0x8000, 0x3F81, 0x7F80], np.uint16)  # NaN payload, subnormal, -0, 1+ulp, inf
    src = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
    torch.save(src, tmp_path / "a.pt")
    shim_t = S.load(tmp_path / "a.pt")
    np.testing.assert_array_equal(_values(shim_t)[[1, 2, 3, 4]], bits[[1, 2, 3, 4]])
    assert np.isnan(to_ms(shim_t).asnumpy().astype(np.float32)[0])
    S.save(shim_t, tmp_path / "b.pt")
    back = torch.load(tmp_path / "b.pt", weights_only=True)
    np.testing.assert_array_equal(_torch_values(back)[1:], bits[1:])


def test_shim_round_trip_containers_parameters_and_metadata(tmp_path):
    from shim.torch.nn.parameter import Parameter

    sd = collections.OrderedDict(weight=_facade(np.ones((2, 3), np.float32)), bias=_facade(np.zeros(3, np.float16)))
    sd._metadata = {"": {"version": 2}}
    param = Parameter(_facade(np.full((2,), 3.5, np.float32)))
    obj = {"sd": sd, "nested": [(1, "two", 3.0, None, b"bytes"), {"k": {5, 6}}], "p": param,
           "dt": D.int8, "dev": S._device_ctor("cuda", 0)}
    buf = io.BytesIO()
    S.save(obj, buf)
    buf.seek(0)
    back = S.load(buf, weights_only=True)
    assert list(back["sd"]) == ["weight", "bias"] and back["sd"]._metadata == {"": {"version": 2}}
    np.testing.assert_array_equal(_values(back["sd"]["weight"]), np.ones((2, 3), np.float32))
    assert back["sd"]["bias"].dtype is D.float16
    assert back["nested"] == [(1, "two", 3.0, None, b"bytes"), {"k": {5, 6}}]
    assert isinstance(back["p"], Parameter) and back["p"].requires_grad
    np.testing.assert_array_equal(_values(back["p"]), [3.5, 3.5])
    assert back["dt"] is D.int8 and str(back["dev"]) == "cuda:0"
    # real torch reads the same bytes (Parameter included)
    buf.seek(0)
    ref = torch.load(buf, weights_only=True)
    assert isinstance(ref["p"], torch.nn.Parameter) and ref["dt"] == torch.int8
    assert ref["dev"] == torch.device("cuda", 0)


def test_python_attributes_on_tensors_and_parameters_travel_both_ways(tmp_path):
    from shim.torch.nn.parameter import Parameter

    t = torch.ones(2)
    t.tag = "x"
    p = torch.nn.Parameter(torch.zeros(3))
    p.tensor_model_parallel = True
    torch.save({"t": t, "p": p}, tmp_path / "torch.pt")  # torch writes _rebuild_from_type_v2 / ..._with_state
    loaded = S.load(tmp_path / "torch.pt")
    assert loaded["t"].tag == "x" and loaded["t"].tolist() == [1.0, 1.0]
    assert isinstance(loaded["p"], Parameter) and loaded["p"].tensor_model_parallel is True
    S.save(loaded, tmp_path / "shim.pt")
    back = torch.load(tmp_path / "shim.pt", weights_only=True)
    assert back["t"].tag == "x" and back["p"].tensor_model_parallel is True
    assert isinstance(back["p"], torch.nn.Parameter)


def test_weights_only_rejects_unknown_globals_and_allows_registered_ones(tmp_path):
    path = tmp_path / "evil.pt"
    S.save({"obj": collections.Counter(a=1), "fn": os.getcwd}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"posix\.getcwd|os\.getcwd"):
        S.load(path)  # weights_only is the default (torch >= 2.6)
    assert S.load(path, weights_only=False)["fn"] is os.getcwd
    with S.safe_globals([os.getcwd]):
        assert S.load(path)["fn"] is os.getcwd
    with pytest.raises(pickle.UnpicklingError):
        S.load(path)
    # the same file is rejected by real torch's weights-only loader, too
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_map_location_forms(tmp_path):
    path = tmp_path / "dev.pt"
    S.save({"acc": _facade(np.arange(3, dtype=np.float32), device="cuda:0"),
            "host": _facade(np.arange(2, dtype=np.int64))}, path)
    # real torch on a CPU machine needs map_location for the accelerator tensor, as for a GPU checkpoint
    ref = torch.load(path, weights_only=True, map_location="cpu")
    np.testing.assert_array_equal(ref["acc"].numpy(), [0, 1, 2])

    def devices(obj):
        return str(obj["acc"].device), str(obj["host"].device)

    assert devices(S.load(path)) == ("cuda:0", "cpu")
    assert devices(S.load(path, map_location="cpu")) == ("cpu", "cpu")
    assert devices(S.load(path, map_location=S._device_ctor("cuda", 0))) == ("cuda:0", "cuda:0")
    assert devices(S.load(path, map_location={"cuda:0": "cpu"})) == ("cpu", "cpu")
    seen = []

    def fn(storage, location):
        seen.append(location)
        return storage if location == "cpu" else storage.cpu()

    assert devices(S.load(path, map_location=fn)) == ("cpu", "cpu")
    assert sorted(seen) == ["cpu", "cuda:0"]
    assert devices(S.load(path, map_location=lambda s, loc: s.cuda())) == ("cuda:0", "cuda:0")
    with pytest.raises(TypeError, match="map_location"):
        S.load(path, map_location=lambda s, loc: 3)


def test_bad_inputs_raise_clear_errors(tmp_path):
    legacy = tmp_path / "legacy.pt"
    torch.save({"x": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(NotImplementedError, match="legacy"):
        S.load(legacy)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="not a torch checkpoint"):
        S.load(junk)
    with pytest.raises(NotImplementedError, match="mmap"):
        S.load(legacy, mmap=True)
    with pytest.raises(NotImplementedError, match="legacy"):
        S.save({}, io.BytesIO(), _use_new_zipfile_serialization=False)
    with pytest.raises(TypeError, match="writable"):
        S.save({}, 42)


def _run_shim_safetensors(tmp_path, install: bool):
    import safetensors.torch as st_real

    ref = tmp_path / "ref.safetensors"
    st_real.save_file({"w": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3),
                       "b": torch.ones(2), "i": torch.tensor([-3, 7], dtype=torch.int64)}, str(ref),
                      metadata={"format": "pt"})
    out = tmp_path / "shim.safetensors"
    script = textwrap.dedent(f"""
        import shim; shim.activate()
        if {install!r}:
            from shim.torch import _safetensors; _safetensors.install()
        import torch, safetensors.torch as st
        assert "shim" in torch.__file__, torch.__file__
        d = st.load_file({str(ref)!r})
        assert d["w"].dtype == torch.bfloat16 and tuple(d["w"].shape) == (2, 3)
        assert d["w"].float().tolist() == [[0, 1, 2], [3, 4, 5]], d["w"].float().tolist()
        assert d["i"].tolist() == [-3, 7] and d["i"].dtype == torch.int64
        acc = st.load_file({str(ref)!r}, device="cuda:0")
        assert str(acc["b"].device) == "cuda:0"
        st.save_file({{"w": d["w"], "b": d["b"] * 2}}, {str(out)!r}, metadata={{"format": "pt"}})
        again = st.load(st.save({{"x": d["i"]}}))
        assert again["x"].tolist() == [-3, 7]
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          cwd=str(REPO), env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
    back = st_real.load_file(str(out))
    assert back["w"].dtype == torch.bfloat16
    assert back["w"].float().tolist() == [[0, 1, 2], [3, 4, 5]] and back["b"].tolist() == [2.0, 2.0]
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        assert fh.metadata() == {"format": "pt"}


def test_safetensors_torch_works_under_the_shim_with_the_patch(tmp_path):
    """safetensors.torch imports torch: run it in a subprocess with the shim's import hook active."""
    _run_shim_safetensors(tmp_path, install=True)


def test_safetensors_torch_works_under_plain_activation(tmp_path):
    _run_shim_safetensors(tmp_path, install=False)


def test_safetensors_bits_round_trip_in_process(tmp_path):
    from shim.torch import _safetensors

    bits = _BF16_BITS
    tensors = {"bf": _facade_bf16(bits), "f": _facade(_SAMPLES["float32"]), "u8": _facade(_SAMPLES["uint8"])}
    path = tmp_path / "x.safetensors"
    _safetensors.save_file(tensors, path)
    import safetensors.torch as st_real

    ref = st_real.load_file(str(path))
    np.testing.assert_array_equal(_torch_values(ref["bf"]), bits)
    np.testing.assert_array_equal(ref["f"].numpy(), _SAMPLES["float32"])
    back = _safetensors.load_file(path)
    np.testing.assert_array_equal(_values(back["bf"]), bits)
    np.testing.assert_array_equal(_values(back["u8"]), _SAMPLES["uint8"])
    base = _facade(np.arange(6, dtype=np.float32))
    with pytest.raises(RuntimeError, match="share memory"):
        _safetensors.save({"a": base, "b": base.as_strided((3,), (1,), 2)})
    with pytest.raises(ValueError, match="non contiguous"):
        _safetensors.save({"t": base.as_strided((3,), (2,), 0)})
    with pytest.raises(ValueError, match="expected torch.Tensor"):
        _safetensors.save({"t": np.zeros(2)})


def test_megatron_style_checkpoint_with_numpy_rng_and_namespace(tmp_path):
    """megatron-core registers Namespace / numpy classes with add_safe_globals and saves RNG states that way."""
    import argparse

    from numpy.core.multiarray import _reconstruct

    safe = [argparse.Namespace, _reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    np_state = np.random.RandomState(5).get_state()
    ckpt = {"args": argparse.Namespace(tensor_model_parallel_size=2, seq_length=64),
            "rng_state": [{"np_rng_state": np_state, "cuda_rng_state": _facade(np.arange(4, dtype=np.uint8))}],
            "checkpoint_version": 3.0}
    path = tmp_path / "model_optim_rng.pt"
    S.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError, match="argparse.Namespace"):
        S.load(path)
    with S.safe_globals(safe):
        got = S.load(path)
    assert got["args"].tensor_model_parallel_size == 2 and got["checkpoint_version"] == 3.0
    st = got["rng_state"][0]["np_rng_state"]
    assert st[0] == "MT19937" and np.array_equal(st[1], np_state[1]) and st[2:] == np_state[2:]
    np.testing.assert_array_equal(_values(got["rng_state"][0]["cuda_rng_state"]), np.arange(4, dtype=np.uint8))
    with torch.serialization.safe_globals(safe):
        ref = torch.load(path, weights_only=True)
    assert ref["args"].seq_length == 64 and np.array_equal(ref["rng_state"][0]["np_rng_state"][1], np_state[1])


def test_facade_classes_pickle_under_torch_names(tmp_path):
    import shim.torch as st

    path = tmp_path / "objs.pt"
    S.save({"fn": st.nn.functional.relu, "cls": st.nn.Linear}, path)
    with zipfile.ZipFile(path) as zf:
        text = zf.read("objs/data.pkl")
    assert b"torch.nn.functional\nrelu" in text and b"shim.torch" not in text
    got = S.load(path, weights_only=False)
    assert got["fn"] is st.nn.functional.relu and got["cls"] is st.nn.Linear
    ref = torch.load(path, weights_only=False)  # real torch resolves the same names to its own objects
    assert ref["fn"] is torch.nn.functional.relu and ref["cls"] is torch.nn.Linear


def test_shim_optimizer_state_dict_loads_into_real_torch_optimizer(tmp_path):
    import shim.torch as st

    st.manual_seed(0)
    layer = st.nn.Linear(3, 2)
    opt = st.optim.AdamW(layer.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        layer(st.ones(4, 3)).pow(2).sum().backward()
        opt.step()
    path = tmp_path / "opt.pt"
    S.save({"model": layer.state_dict(), "optimizer": opt.state_dict()}, path)
    ckpt = torch.load(path, weights_only=True)
    ref_layer = torch.nn.Linear(3, 2)
    ref_layer.load_state_dict(ckpt["model"])
    ref_opt = torch.optim.AdamW(ref_layer.parameters(), lr=1e-2)
    ref_opt.load_state_dict(ckpt["optimizer"])
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(ref_layer.state_dict()[name].numpy(), _values(value), err_msg=name)
    state = ref_opt.state_dict()["state"]
    assert set(state) == {0, 1} and float(state[0]["step"]) == 2.0
    np.testing.assert_array_equal(state[0]["exp_avg"].numpy(), _values(opt.state_dict()["state"][0]["exp_avg"]))
