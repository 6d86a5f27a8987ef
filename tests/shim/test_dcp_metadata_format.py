"""The facade's DCP format code (shim/torch/distributed/checkpoint/) against real torch's: a `.metadata` pickled by the
facade unpickles on real torch into torch's own classes with equal values and real torch's unpickles into the
facade's; the resharding read items and the global save plan equal real torch's; a checkpoint real torch's
`torch.distributed.checkpoint.save` writes reads back through the facade's reader with the same values, and one the
facade's writer writes loads with real torch's `torch.distributed.checkpoint.load`.
"""
from __future__ import annotations

import io
import pickle

import pytest


def _facade_metadata():
    import shim.torch as ft
    from shim.torch.distributed.checkpoint import filesystem as ffs
    from shim.torch.distributed.checkpoint import metadata as fmd
    from shim.torch.distributed.checkpoint import planner as fpl

    props = fmd.TensorProperties(dtype=ft.float32, layout=ft.strided, requires_grad=False,
                                 memory_format=ft.contiguous_format, pin_memory=False)
    chunks = [fmd.ChunkStorageMetadata(offsets=ft.Size([i, 0, 0]), sizes=ft.Size([1, 4, 3])) for i in range(2)]
    md = fmd.Metadata(
        state_dict_metadata={"w": fmd.TensorStorageMetadata(properties=props, size=ft.Size([2, 4, 3]), chunks=chunks),
                             "obj/shard_0_1": fmd.BytesStorageMetadata()},
        planner_data=None,
        storage_data={fmd.MetadataIndex("w", [0, 0, 0]): ffs._StorageInfo("__0_0.distcp", 0, 100),
                      fmd.MetadataIndex("w", [1, 0, 0], 1): ffs._StorageInfo("__0_0.distcp", 100, 100),
                      fmd.MetadataIndex("obj/shard_0_1"): ffs._StorageInfo("__0_0.distcp", 200, 17)},
        storage_meta=fmd.StorageMeta(checkpoint_id="/ckpt", save_id="id", load_id=None, modules=[]),
        version="1.0.0")
    md.all_local_plans = [fpl.SavePlan(items=[
        fpl.WriteItem(index=fmd.MetadataIndex("w", [0, 0, 0]), type=fpl.WriteItemType.SHARD,
                      tensor_data=fpl.TensorWriteData(chunk=chunks[0], properties=props, size=ft.Size([2, 4, 3]))),
        fpl.WriteItem(index=fmd.MetadataIndex("obj/shard_0_1"), type=fpl.WriteItemType.BYTE_IO)],
        storage_data=None, planner_data={}, usable=True)]
    return md


def test_facade_metadata_unpickles_on_real_torch():
    import torch
    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata,
                                                       MetadataIndex, TensorProperties, TensorStorageMetadata)
    from torch.distributed.checkpoint.planner import WriteItemType

    from shim.torch.distributed.checkpoint import filesystem as ffs

    buf = io.BytesIO()
    ffs._dump_metadata(_facade_metadata(), buf)
    assert b"shim" not in buf.getvalue()  # only torch's names in the file
    md = pickle.loads(buf.getvalue())
    assert type(md) is Metadata and md.version == "1.0.0"
    w = md.state_dict_metadata["w"]
    assert type(w) is TensorStorageMetadata and w.size == torch.Size([2, 4, 3])
    assert w.properties == TensorProperties(dtype=torch.float32, layout=torch.strided, requires_grad=False,
                                            memory_format=torch.contiguous_format, pin_memory=False)
    assert w.chunks == [ChunkStorageMetadata(torch.Size([i, 0, 0]), torch.Size([1, 4, 3])) for i in range(2)]
    assert type(md.state_dict_metadata["obj/shard_0_1"]) is BytesStorageMetadata
    info = md.storage_data[MetadataIndex("w", [1, 0, 0])]
    assert info == _StorageInfo("__0_0.distcp", 100, 100) and info.transform_descriptors is None
    assert md.storage_meta.checkpoint_id == "/ckpt"
    items = md.all_local_plans[0].items
    assert [i.type for i in items] == [WriteItemType.SHARD, WriteItemType.BYTE_IO]
    assert items[0].tensor_data.size == torch.Size([2, 4, 3])


def test_real_torch_metadata_unpickles_into_the_facade():
    import torch
    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import (ChunkStorageMetadata, Metadata, MetadataIndex,
                                                       TensorProperties, TensorStorageMetadata)

    import shim.torch as ft
    from shim.torch.distributed.checkpoint import filesystem as ffs
    from shim.torch.distributed.checkpoint import metadata as fmd

    props = TensorProperties.create_from_tensor(torch.zeros(2, dtype=torch.bfloat16))
    real = Metadata(state_dict_metadata={"b": TensorStorageMetadata(props, torch.Size([6]), [
        ChunkStorageMetadata(torch.Size([0]), torch.Size([6]))])},
        storage_data={MetadataIndex("b", [0]): _StorageInfo("__1_1.distcp", 8, 64)}, version="1.0.0")
    md = ffs._load_metadata(io.BytesIO(pickle.dumps(real)))
    assert type(md) is fmd.Metadata
    b = md.state_dict_metadata["b"]
    assert b.size == ft.Size([6]) and type(b.size) is ft.Size
    assert b.properties.dtype is ft.bfloat16 and b.properties.layout is ft.strided
    assert b.properties.memory_format is ft.contiguous_format
    assert md.storage_data[fmd.MetadataIndex("b", [0])].relative_path == "__1_1.distcp"


def test_unknown_memory_format_encoding_is_an_error():
    from shim.torch.distributed.checkpoint import metadata as fmd

    p = fmd.TensorProperties.__new__(fmd.TensorProperties)
    with pytest.raises(RuntimeError, match="Invalid torch.memory_format encoding"):
        p.__setstate__((None, None, False, 7, False))


def test_unimplemented_dcp_names_still_raise():
    from shim.torch.distributed.checkpoint import filesystem, planner

    with pytest.raises(NotImplementedError,
                       match=r"torch\.distributed\.checkpoint\.filesystem\.FileSystem is not implemented"):
        filesystem.FileSystem
    with pytest.raises(NotImplementedError, match="torch.distributed.checkpoint.planner.no_such_name"):
        planner.no_such_name


# ------------------------------------------------------------------------------------------------ planning
SAVED = [((0, 0), (2, 6)), ((2, 0), (2, 3)), ((2, 3), (2, 3))]   # a [4, 6] tensor saved as three boxes
WANTED = [((1, 2), (2, 4)), ((0, 0), (4, 1)), ((3, 5), (1, 1))]  # boxes a loader wants


def _read_item_rows(items):
    return sorted((tuple(i.dest_index.offset), tuple(i.dest_offsets), tuple(i.storage_index.offset),
                   tuple(i.storage_offsets), tuple(i.lengths), i.dest_index.index, i.storage_index.index)
                  for i in items)


def test_resharding_read_items_equal_real_torch():
    import torch
    from torch.distributed.checkpoint import metadata as tmd
    from torch.distributed.checkpoint.planner_helpers import create_read_items_for_chunk_list as real_create

    import shim.torch as ft
    from shim.torch.distributed.checkpoint import metadata as fmd
    from shim.torch.distributed.checkpoint.planner_helpers import create_read_items_for_chunk_list

    def md(mod, size_cls):
        props = mod.TensorProperties()
        return mod.TensorStorageMetadata(props, size_cls([4, 6]), [
            mod.ChunkStorageMetadata(size_cls(o), size_cls(s)) for o, s in SAVED])

    real_local = [tmd.ChunkStorageMetadata(torch.Size(o), torch.Size(s)) for o, s in WANTED]
    fac_local = [fmd.ChunkStorageMetadata(ft.Size(o), ft.Size(s)) for o, s in WANTED]
    real = _read_item_rows(real_create("w", md(tmd, torch.Size), real_local))
    mine = create_read_items_for_chunk_list("w", md(fmd, ft.Size), fac_local)
    assert _read_item_rows(mine) == real and len(real) == 6
    assert all(type(i.lengths) is ft.Size for i in mine)


def test_global_save_plan_equals_real_torch():
    import torch
    from torch.distributed.checkpoint import default_planner as tdp
    from torch.distributed.checkpoint import metadata as tmd
    from torch.distributed.checkpoint import planner as tpl

    import shim.torch as ft
    from shim.torch.distributed.checkpoint import default_planner as fdp
    from shim.torch.distributed.checkpoint import metadata as fmd
    from shim.torch.distributed.checkpoint import planner as fpl

    def plans(md_mod, pl_mod, size_cls, dtype):
        props = md_mod.TensorProperties(dtype=dtype)
        out = []
        for rank in range(2):
            chunks = [md_mod.ChunkStorageMetadata(size_cls(o), size_cls(s)) for o, s in SAVED[rank::2]]
            items = [pl_mod.WriteItem(index=md_mod.MetadataIndex("w", c.offsets), type=pl_mod.WriteItemType.SHARD,
                                      tensor_data=pl_mod.TensorWriteData(c, props, size_cls([4, 6])))
                     for c in chunks]
            if rank == 1:
                items.append(pl_mod.WriteItem(index=md_mod.MetadataIndex("blob"), type=pl_mod.WriteItemType.BYTE_IO))
            out.append(pl_mod.SavePlan(items))
        return out

    for hints in (True, False):
        rp, rmd = tdp.create_default_global_save_plan(plans(tmd, tpl, torch.Size, torch.bfloat16), hints)
        fp, fmd_ = fdp.create_default_global_save_plan(plans(fmd, fpl, ft.Size, ft.bfloat16), hints)
        assert [[(tuple(i.index.offset or ()), i.index.index, i.type.value) for i in p.items] for p in fp] == \
            [[(tuple(i.index.offset or ()), i.index.index, i.type.value) for i in p.items] for p in rp]
        w_real, w_mine = rmd.state_dict_metadata["w"], fmd_.state_dict_metadata["w"]
        assert [(tuple(c.offsets), tuple(c.sizes)) for c in w_mine.chunks] == \
            [(tuple(c.offsets), tuple(c.sizes)) for c in w_real.chunks]
        assert tuple(w_mine.size) == (4, 6) and w_mine.properties.dtype is ft.bfloat16
        assert type(fmd_.state_dict_metadata["blob"]) is fmd.BytesStorageMetadata
    with pytest.raises(ValueError, match="'blob' is written twice"):
        fdp.create_default_global_save_plan(plans(fmd, fpl, ft.Size, ft.float32) * 2)


# ------------------------------------------------------------------------------------------------ files
def test_real_torch_checkpoint_reads_through_the_facade(tmp_path):
    """real torch's dcp.save (one process; its writer may use several data files) -> the facade's reader."""
    import numpy as np
    import torch
    import torch.distributed.checkpoint as dcp

    import shim.torch as ft
    from shim.torch.distributed.checkpoint import filesystem as ffs
    from shim.torch.distributed.checkpoint import metadata as fmd

    w = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    b = (torch.arange(5, dtype=torch.float32) - 2).to(torch.bfloat16)
    dcp.save({"w": w, "b": b, "step": 3}, storage_writer=dcp.FileSystemWriter(str(tmp_path), thread_count=2),
             no_dist=True)
    md = ffs._read_metadata(tmp_path)
    assert type(md) is fmd.Metadata and isinstance(md.state_dict_metadata["step"], fmd.BytesStorageMetadata)
    with ffs._ItemReader(tmp_path, md) as reader:
        got_w = ffs._read_global_tensor(reader, "w", md.state_dict_metadata["w"])
        got_b = ffs._read_global_tensor(reader, "b", md.state_dict_metadata["b"])
        box = ft.zeros(2, 3)
        assert ffs._read_box(reader, "w", md.state_dict_metadata["w"], (1, 2), box) == 6
    np.testing.assert_array_equal(got_w.numpy(), w.numpy())
    assert got_b.dtype is ft.bfloat16
    np.testing.assert_array_equal(got_b.float().numpy(), b.float().numpy())
    np.testing.assert_array_equal(box.numpy(), w[1:3, 2:5].numpy())


def test_facade_checkpoint_loads_on_real_torch_across_chunks(tmp_path):
    """The facade's writer, two simulated ranks each saving chunks of one [4, 6] tensor (SAVED) and rank 1 a blob:
    real torch's dcp.load assembles the whole tensor; the facade's reader fills a box spanning three chunks."""
    import numpy as np
    import torch
    import torch.distributed.checkpoint as dcp

    import shim.torch as ft
    from shim.torch.distributed.checkpoint import default_planner, filesystem, metadata, planner, planner_helpers

    full = np.arange(24, dtype=np.float32).reshape(4, 6) * 0.5
    plans, results = [], []
    for rank in range(2):
        items = []
        for (r, c), (nr, nc) in SAVED[rank::2]:
            chunk = ft.tensor(full[r:r + nr, c:c + nc])
            items.append((planner_helpers._create_write_item_for_chunk("w", chunk, (r, c), (4, 6)), chunk))
        if rank == 1:
            items.append((planner_helpers._create_write_item_for_bytesio("blob"), b"\x00raw"))
        results.append(filesystem._write_data_file(tmp_path, f"__{rank}_0.distcp", items))
        plans.append(planner.SavePlan([item for item, _ in items]))
    _, md = default_planner.create_default_global_save_plan(plans)
    filesystem._write_metadata(tmp_path, md, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]

    target = {"w": torch.zeros(4, 6)}
    dcp.load(target, storage_reader=dcp.FileSystemReader(str(tmp_path)), no_dist=True)
    np.testing.assert_array_equal(target["w"].numpy(), full)

    md = filesystem._read_metadata(tmp_path)
    with filesystem._ItemReader(tmp_path, md) as reader:
        box = ft.zeros(3, 4, dtype=ft.float64)
        assert filesystem._read_box(reader, "w", md.state_dict_metadata["w"], (1, 1), box) == 12
        assert reader.read_bytes(metadata.MetadataIndex("blob")) == b"\x00raw"
    np.testing.assert_array_equal(box.numpy(), full[1:4, 1:5].astype(np.float64))


def test_facade_reader_errors_name_the_problem(tmp_path):
    from shim.torch.distributed.checkpoint import filesystem, metadata

    with pytest.raises(FileNotFoundError, match="no .metadata file"):
        filesystem._read_metadata(tmp_path)
    md = metadata.Metadata(state_dict_metadata={}, storage_data={})
    with filesystem._ItemReader(tmp_path, md) as reader, pytest.raises(KeyError, match="no stored item 'x'"):
        reader.read_bytes(metadata.MetadataIndex("x", [0]))


def test_facade_torch_save_pickles_layouts_as_real_torch_does():
    import torch

    import shim.torch as ft

    buf = io.BytesIO()
    ft.save({"layout": ft.strided}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=False) == {"layout": torch.strided}
    buf = io.BytesIO()
    torch.save({"layout": torch.strided}, buf)
    buf.seek(0)
    assert ft.load(buf, weights_only=False)["layout"] is ft.strided
