"""The facade's DCP metadata classes (shim/torch/distributed/checkpoint/{metadata,planner,filesystem}.py) pickle to and
from real torch's: a `.metadata` written by megatron_patches.torch_dist_strategy's pickler unpickles on real torch
into torch's own classes with equal values, and real torch's pickle unpickles into the facade's classes.
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

    from megatron_patches.torch_dist_strategy import _facade_pickler_class

    buf = io.BytesIO()
    _facade_pickler_class()(buf).dump(_facade_metadata())
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
    from megatron_patches.torch_dist_strategy import _MetadataUnpickler
    from shim.torch.distributed.checkpoint import metadata as fmd

    props = TensorProperties.create_from_tensor(torch.zeros(2, dtype=torch.bfloat16))
    real = Metadata(state_dict_metadata={"b": TensorStorageMetadata(props, torch.Size([6]), [
        ChunkStorageMetadata(torch.Size([0]), torch.Size([6]))])},
        storage_data={MetadataIndex("b", [0]): _StorageInfo("__1_1.distcp", 8, 64)}, version="1.0.0")
    md = _MetadataUnpickler(io.BytesIO(pickle.dumps(real)), facade=True).load()
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

    with pytest.raises(NotImplementedError, match="torch.distributed.checkpoint.filesystem.FileSystemReader"):
        filesystem.FileSystemReader
    with pytest.raises(NotImplementedError, match="torch.distributed.checkpoint.planner.SavePlanner"):
        planner.SavePlanner
