"""torch.distributed.checkpoint's API in the facade (`save`/`load`, FileSystemWriter/Reader, the default planners,
the import surface megatron-core needs) against real torch, which is imported beside the facade (`shim.torch`):
a checkpoint the facade's `save` writes loads with real torch's `dcp.load` to the same values, and one real torch's
`dcp.save` writes loads with the facade's `load`; one process (`no_dist`) and two ranks over a process group.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _values():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 6)).astype(np.float32), "b": np.arange(5, dtype=np.int64),
            "h": rng.standard_normal((3,)).astype(np.float16)}


def _nested(torch_mod, vals):
    return {"model": {"w": torch_mod.tensor(vals["w"]), "b": torch_mod.tensor(vals["b"])},
            "extra": {"h": torch_mod.tensor(vals["h"]), "step": 7, "names": ["a", "b"]}}


def _zeros_like(torch_mod, sd):
    out = {}
    for k, v in sd.items():
        if isinstance(v, dict):
            out[k] = _zeros_like(torch_mod, v)
        elif hasattr(v, "shape"):
            out[k] = torch_mod.zeros(tuple(v.shape), dtype=v.dtype)
        else:
            out[k] = None
    return out


def _assert_loaded(sd, vals):
    np.testing.assert_array_equal(np.asarray(sd["model"]["w"].numpy()), vals["w"])
    np.testing.assert_array_equal(np.asarray(sd["model"]["b"].numpy()), vals["b"])
    np.testing.assert_array_equal(np.asarray(sd["extra"]["h"].numpy()), vals["h"])
    assert sd["extra"]["step"] == 7 and sd["extra"]["names"] == ["a", "b"]


def test_import_surface_megatron_core_needs():
    import shim.torch.distributed.checkpoint as dcp
    from shim.torch.distributed.checkpoint import api, filesystem, planner, storage, utils

    assert issubclass(dcp.FileSystemWriter, storage.StorageWriter)
    assert issubclass(dcp.FileSystemReader, storage.StorageReader)
    for name in ("WRAPPED_EXCEPTION", "_wrap_exception", "CheckpointException"):
        assert hasattr(api, name)
    for name in ("DEFAULT_SUFFIX", "_StoragePrefix", "_write_item", "FileSystemReader", "FileSystemWriter"):
        assert hasattr(filesystem, name)
    assert filesystem.DEFAULT_SUFFIX == ".distcp"
    assert {"SavePlanner", "LoadPlanner", "SavePlan", "LoadPlan", "WriteItem", "ReadItem"} <= set(dir(planner))
    assert hasattr(utils, "_DistWrapper") and hasattr(utils, "_get_failure_dict")

    class Sub(dcp.FileSystemWriter):  # megatron-core's FileSystemWriterAsync subclasses it with torch's arguments
        def __init__(self, path, *args, **kwargs):
            super().__init__(path, *args, **kwargs)

    w = Sub("/tmp/unused", thread_count=3)
    assert (w.thread_count, w.single_file_per_rank, str(w.checkpoint_id)) == (3, True, "/tmp/unused")
    with pytest.raises(NotImplementedError, match="FileSystemWriter.*cache_staged_state_dict"):
        dcp.FileSystemWriter("/tmp/unused", cache_staged_state_dict=True)


def test_check_point_exception_carries_every_rank_failure():
    from shim.torch.distributed.checkpoint import api, utils

    try:
        raise ValueError("bad shard")
    except ValueError as e:
        wrapped = api._wrap_exception(e)
    failures = utils._get_failure_dict([1, wrapped, 2])
    assert list(failures) == [1]
    text = str(api.CheckpointException("write", failures))
    assert "RANK 1" in text and "ValueError: bad shard" in text
    dw = utils._DistWrapper(None, use_dist=False, coordinator_rank=0)
    with pytest.raises(api.CheckpointException, match="ValueError"):
        dw.all_reduce("step", lambda: (_ for _ in ()).throw(ValueError("x")), lambda xs: xs)


@pytest.mark.parametrize("how", ["checkpoint_id", "storage"])
def test_facade_save_loads_on_real_torch(tmp_path, how):
    import torch
    import torch.distributed.checkpoint as tdcp

    import shim.torch as ft
    import shim.torch.distributed.checkpoint as fdcp

    vals = _values()
    if how == "checkpoint_id":
        md = fdcp.save(_nested(ft, vals), checkpoint_id=tmp_path)
    else:
        md = fdcp.save(_nested(ft, vals), storage_writer=fdcp.FileSystemWriter(tmp_path))
    assert sorted(md.state_dict_metadata) == ["extra.h", "extra.names", "extra.step", "model.b", "model.w"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".metadata", "__0_0.distcp"]
    dest = _zeros_like(torch, _nested(torch, vals))
    tdcp.load(dest, checkpoint_id=tmp_path)
    _assert_loaded(dest, vals)
    assert dest["extra"]["h"].dtype == torch.float16


@pytest.mark.parametrize("how", ["checkpoint_id", "storage"])
def test_real_torch_save_loads_on_facade(tmp_path, how):
    import torch
    import torch.distributed.checkpoint as tdcp

    import shim.torch as ft
    import shim.torch.distributed.checkpoint as fdcp

    vals = _values()
    tdcp.save(_nested(torch, vals), checkpoint_id=tmp_path)
    dest = _zeros_like(ft, _nested(ft, vals))
    if how == "checkpoint_id":
        fdcp.load(dest, checkpoint_id=tmp_path)
    else:
        fdcp.load(dest, storage_reader=fdcp.FileSystemReader(tmp_path))
    _assert_loaded(dest, vals)
    assert dest["extra"]["h"].dtype == ft.float16


def test_facade_roundtrip_and_errors(tmp_path):
    import shim.torch as ft
    import shim.torch.distributed.checkpoint as fdcp

    vals = _values()
    with pytest.warns(UserWarning, match="assuming the intent is to save in a single process"):
        fdcp.save({"x": ft.zeros(1)}, checkpoint_id=tmp_path / "warned")
    fdcp.save(_nested(ft, vals), checkpoint_id=tmp_path, no_dist=True)
    dest = _zeros_like(ft, _nested(ft, vals))
    fdcp.load(dest, checkpoint_id=tmp_path, no_dist=True)
    _assert_loaded(dest, vals)

    again = _zeros_like(ft, _nested(ft, vals))
    with pytest.warns(FutureWarning, match="load_state_dict"):
        fdcp.load_state_dict(again, fdcp.FileSystemReader(tmp_path), no_dist=True)
    _assert_loaded(again, vals)
    with pytest.raises(fdcp.CheckpointException, match="Missing key in checkpoint state_dict: other"):
        fdcp.load({"other": ft.zeros(2)}, checkpoint_id=tmp_path)
    partial = {"model": {"w": ft.zeros(4, 6)}, "other": ft.zeros(2)}
    fdcp.load(partial, planner=fdcp.DefaultLoadPlanner(allow_partial_load=True), checkpoint_id=tmp_path)
    np.testing.assert_array_equal(partial["model"]["w"].numpy(), vals["w"])
    with pytest.raises(fdcp.CheckpointException, match="Size mismatch"):
        fdcp.load({"model": {"w": ft.zeros(4, 5)}}, checkpoint_id=tmp_path)
    with pytest.raises(fdcp.CheckpointException, match="no .metadata"):
        fdcp.load({"x": ft.zeros(1)}, checkpoint_id=tmp_path / "missing")
    with pytest.raises(RuntimeError, match="checkpoint_id"):
        fdcp.save({"x": ft.zeros(1)})
    with pytest.raises(fdcp.CheckpointException, match="Checkpoint already exists"):
        fdcp.save({"x": ft.zeros(1)}, storage_writer=fdcp.FileSystemWriter(tmp_path, overwrite=False))


_TWO_RANKS = textwrap.dedent("""
    import os, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    ckpt, mode = sys.argv[1], sys.argv[2]
    full = np.arange(24, dtype=np.float32).reshape(4, 6)
    if mode == "save":
        # replicated tensor "r" (both ranks plan it: written once), per-rank tensor and object
        sd = {"r": torch.tensor(full), f"own{rank}": torch.full((2,), float(rank)), f"obj{rank}": ["rank", rank]}
        dcp.save(sd, checkpoint_id=ckpt)
    else:
        sd = {"r": torch.zeros(4, 6), f"own{rank}": torch.zeros(2), f"obj{rank}": None}
        dcp.load(sd, checkpoint_id=ckpt)
        assert np.array_equal(sd["r"].numpy(), full), sd["r"]
        assert np.array_equal(sd[f"own{rank}"].numpy(), np.full((2,), float(rank), np.float32))
        assert sd[f"obj{rank}"] == ["rank", rank], sd
    dist.barrier()
    dist.destroy_process_group()
    print("RANK_OK", rank)
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two(tmp_path, ckpt, mode, shim: bool):
    script = tmp_path / "two_ranks.py"
    script.write_text(_TWO_RANKS)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SHIM_BACKEND")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(script), str(ckpt), mode]
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.count("RANK_OK") == 2, (out.stdout + out.stderr)[-4000:]


@pytest.mark.multiproc
def test_two_ranks_facade_save_real_torch_load_and_back(tmp_path):
    a, b = tmp_path / "by_shim", tmp_path / "by_torch"
    _run_two(tmp_path, a, "save", shim=True)
    assert sorted(p.name for p in a.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    _run_two(tmp_path, a, "load", shim=False)
    _run_two(tmp_path, b, "save", shim=False)
    _run_two(tmp_path, b, "load", shim=True)


def test_planner_extension_points_as_megatron_core_uses_them(tmp_path):
    """megatron-core's MCoreSavePlanner overrides `transform_object` to write pre-serialized io.BytesIO values as
    they are, and its MCoreLoadPlanner wraps `resolve_tensor`/`commit_tensor` through super()."""
    import io

    import torch
    import torch.distributed.checkpoint as tdcp

    import shim.torch as ft
    import shim.torch.distributed.checkpoint as fdcp

    class PassBytes(fdcp.DefaultSavePlanner):
        def transform_object(self, write_item, obj):
            return obj if isinstance(obj, io.BytesIO) else super().transform_object(write_item, obj)

    class Wrapping(fdcp.DefaultLoadPlanner):
        seen = 0

        def resolve_tensor(self, read_item):
            return super().resolve_tensor(read_item)

        def commit_tensor(self, read_item, tensor):
            Wrapping.seen += 1
            return super().commit_tensor(read_item, tensor)

    blob = io.BytesIO()
    torch.save({"k": 3}, blob)  # serialized by the caller (megatron's ShardedObject path)
    blob.seek(0)
    fdcp.save({"w": ft.arange(6, dtype=ft.float32).reshape(2, 3), "obj": blob}, checkpoint_id=tmp_path,
              planner=PassBytes(flatten_state_dict=False))
    dest = {"w": torch.zeros(2, 3), "obj": None}
    tdcp.load(dest, checkpoint_id=tmp_path)
    assert dest["obj"] == {"k": 3} and dest["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    back = {"w": ft.zeros(2, 3)}
    fdcp.load(back, checkpoint_id=tmp_path, planner=Wrapping())
    assert Wrapping.seen == 1 and back["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
