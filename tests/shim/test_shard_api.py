"""torch's legacy sharded-tensor surface in the facade (`torch.distributed._shard`, `remote_device`,
`Tensor._make_wrapper_subclass`) and the DCP helpers megatron-core's own `torch_dist` strategy calls, against real
torch imported beside the facade (`shim.torch`): the same parsed placements, the same accepted and rejected shard
layouts (same messages), the same ShardedTensor checks, the same write items / read items / file bins.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def both():
    """(real torch, facade) with a one-process default group each (gloo over a HashStore for torch, the facade's
    local one-process group); destroyed afterwards."""
    import torch
    import torch.distributed as tdist

    import shim.torch as ft

    tdist.init_process_group("gloo", store=tdist.HashStore(), rank=0, world_size=1)
    ft.distributed.init_process_group("gloo", rank=0, world_size=1)
    yield torch, ft
    tdist.destroy_process_group()
    ft.distributed.destroy_process_group()


def _outcome(fn):
    try:
        fn()
    except Exception as e:  # compared between the two backends
        return type(e).__name__, str(e)
    return None


def test_remote_device_parsing_equals_torch():
    from torch.distributed.remote_device import _remote_device as Real

    from shim.torch.distributed.remote_device import _remote_device as Fac

    for text in ("rank:0/cuda", "rank:3/cpu", "cpu", "cuda:1", "trainer0/cpu", "rank:1", "w/cuda:2"):
        r, f = Real(text), Fac(text)
        assert (repr(f), f.rank(), f.worker_name(), str(f.device())) == (
            repr(r), r.rank(), r.worker_name(), str(r.device())), text
    for text in ("a/b/c", "/cpu", "rank:x/cpu"):
        assert _outcome(lambda: Fac(text)) == _outcome(lambda: Real(text)), text
    assert Fac("rank:1/cpu") == Fac("rank:1/cpu") != Fac("rank:2/cpu")


def _layouts():
    """(shards as (offsets, sizes), tensor dims): valid grids, an overlap, a gap, an overflow, a rank mismatch."""
    return [
        ([([0, 0], [2, 6]), ([2, 0], [2, 6])], [4, 6]),
        ([([0, 0], [2, 3]), ([0, 3], [2, 3]), ([2, 0], [2, 3]), ([2, 3], [2, 3])], [4, 6]),
        ([([0, 0, 0], [1, 4, 6]), ([1, 0, 0], [1, 4, 6])], [2, 4, 6]),
        ([([0, 0], [3, 6]), ([2, 0], [2, 6])], [4, 6]),      # overlap
        ([([0, 0], [2, 3]), ([1, 2], [2, 3])], [4, 6]),      # overlap in two dimensions
        ([([0, 0], [1, 6]), ([2, 0], [2, 6])], [4, 6]),      # gap: volume short
        ([([0, 0], [2, 6]), ([2, 0], [3, 6])], [4, 6]),      # past the end
        ([([0, 0], [4, 6])], [4, 6, 1]),                    # rank mismatch
        ([([0], [0]), ([0], [0])], [0]),                    # repeated empty shards
    ]


def test_shard_layout_checks_equal_torch():
    from torch.distributed._shard.metadata import ShardMetadata as RealMD
    from torch.distributed._shard.sharding_spec import _internals as real

    from shim.torch.distributed._shard.metadata import ShardMetadata as FacMD
    from shim.torch.distributed._shard.sharding_spec import _internals as fac

    for shards, dims in _layouts():
        r = [RealMD(o, s, "rank:0/cpu") for o, s in shards]
        f = [FacMD(o, s, "rank:0/cpu") for o, s in shards]
        assert _outcome(lambda: fac.validate_non_overlapping_shards_metadata(f)) == \
            _outcome(lambda: real.validate_non_overlapping_shards_metadata(r)), shards
        assert _outcome(lambda: fac.check_tensor(f, dims)) == _outcome(lambda: real.check_tensor(r, dims)), shards
    for bad in (([0, 0], [1]), ([-1], [2]), ([0], [-2])):
        assert _outcome(lambda: FacMD(*bad)) == _outcome(lambda: RealMD(*bad)), bad


def _build(torch_mod, shard_offsets, size, rank_of, datas):
    """A ShardedTensor of `size` from shards at `shard_offsets` (shard i: tensor `datas[i]`, placed on rank
    `rank_of(i)`; the rank-0 ones are local), built as megatron-core's torch_dist strategy builds it."""
    from importlib import import_module

    root = "shim.torch" if torch_mod.__name__.startswith("shim") else "torch"
    st = import_module(f"{root}.distributed._shard.sharded_tensor")
    md = import_module(f"{root}.distributed._shard.metadata")
    tensors = [torch_mod.tensor(d) for d in datas]
    local = [st.Shard.from_tensor_and_offsets(t, list(o), 0)
             for i, (o, t) in enumerate(zip(shard_offsets, tensors)) if rank_of(i) == 0]
    metas = [md.ShardMetadata(list(o), list(t.shape), f"rank:{rank_of(i)}/cpu")
             for i, (o, t) in enumerate(zip(shard_offsets, tensors))]
    props = st.TensorProperties(dtype=tensors[0].dtype, layout=tensors[0].layout, requires_grad=False,
                                memory_format=torch_mod.contiguous_format, pin_memory=False)
    meta = st.ShardedTensorMetadata(shards_metadata=metas, size=torch_mod.Size(size), tensor_properties=props)
    return st.ShardedTensor._init_from_local_shards_and_global_metadata(local, sharded_tensor_metadata=meta,
                                                                         process_group=None)


def test_sharded_tensor_from_local_shards_equals_torch(both):
    torch, ft = both
    data = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    r = _build(torch, [(0, 0)], (2, 3), lambda i: 0, [data])
    f = _build(ft, [(0, 0)], (2, 3), lambda i: 0, [data])
    assert isinstance(f, ft.Tensor) and type(f).__name__ == "ShardedTensor"
    assert (tuple(f.shape), str(f.dtype), f.requires_grad, f.is_pinned()) == (
        tuple(r.shape), str(r.dtype), r.requires_grad, r.is_pinned())
    assert f.local_tensor().tolist() == r.local_tensor().tolist() == data
    assert [s.metadata.shard_offsets for s in f.local_shards()] == [s.metadata.shard_offsets for s in r.local_shards()]
    assert repr(f.local_shards()[0].metadata.placement) == repr(r.local_shards()[0].metadata.placement)
    # rejected alike: overlapping shards, shards short of the size, a placement outside the world
    for args in (([(0, 0), (0, 1)], (2, 4), lambda i: 0, [data, data]),
                 ([(0, 0)], (4, 3), lambda i: 0, [data]),
                 ([(0, 0), (2, 0)], (4, 3), lambda i: i, [data, data])):
        offs, size, rank_of, d = args
        assert _outcome(lambda: _build(ft, offs, size, rank_of, d)) == \
            _outcome(lambda: _build(torch, offs, size, rank_of, d)), args
    with pytest.raises(NotImplementedError, match="sharding specs"):
        ft.distributed._shard.sharded_tensor.ShardedTensor(None, 2, 3)


def test_dcp_items_of_a_sharded_tensor_equal_torch(both):
    """megatron-core's layer-stacked layout (two [1, 3] local shards of a [2, 3] tensor): the write items, the read
    items and ``find_state_dict_object`` agree with torch's."""
    torch, ft = both
    from torch.distributed.checkpoint import metadata as rmd
    from torch.distributed.checkpoint import planner_helpers as rph
    from torch.distributed.checkpoint import utils as rutils

    from shim.torch.distributed.checkpoint import metadata as fmd
    from shim.torch.distributed.checkpoint import planner_helpers as fph
    from shim.torch.distributed.checkpoint import utils as futils

    data = [[7.0, 8.0, 9.0]]
    r = _build(torch, [(0, 0), (1, 0)], (2, 3), lambda i: 0, [[[1.0, 2.0, 3.0]], data])
    f = _build(ft, [(0, 0), (1, 0)], (2, 3), lambda i: 0, [[[1.0, 2.0, 3.0]], data])

    def plain(items):
        return [(i.index.fqn, tuple(i.index.offset), i.type.name, tuple(i.tensor_data.chunk.offsets),
                 tuple(i.tensor_data.chunk.sizes), tuple(i.tensor_data.size), str(i.tensor_data.properties.dtype))
                for i in items]

    assert plain(fph._create_write_items("k", f)) == plain(rph._create_write_items("k", r))
    saved = {"r": rmd.TensorStorageMetadata(rmd.TensorProperties(dtype=torch.float32), torch.Size([2, 3]),
                                            [rmd.ChunkStorageMetadata(torch.Size([0, 0]), torch.Size([2, 3]))]),
             "f": fmd.TensorStorageMetadata(fmd.TensorProperties(dtype=ft.float32), ft.Size([2, 3]),
                                            [fmd.ChunkStorageMetadata(ft.Size([0, 0]), ft.Size([2, 3]))])}

    def reads(items):
        return sorted((tuple(i.dest_index.offset), tuple(i.dest_offsets), tuple(i.storage_offsets),
                       tuple(i.lengths)) for i in items)

    assert reads(fph._create_read_items("k", saved["f"], f)) == reads(rph._create_read_items("k", saved["r"], r))
    assert futils.find_state_dict_object({"k": f}, fmd.MetadataIndex("k", [1, 0])).tolist() == \
        rutils.find_state_dict_object({"k": r}, rmd.MetadataIndex("k", [1, 0])).tolist() == data
    for index in (("k", [0, 1]), ("k", None), ("x", None)):
        assert _outcome(lambda: futils.find_state_dict_object({"k": f}, fmd.MetadataIndex(*index))) == \
            _outcome(lambda: rutils.find_state_dict_object({"k": r}, rmd.MetadataIndex(*index))), index


def test_split_by_size_and_type_equals_torch(both):
    torch, ft = both
    from torch.distributed.checkpoint import filesystem as rfs
    from torch.distributed.checkpoint import planner_helpers as rph

    from shim.torch.distributed.checkpoint import filesystem as ffs
    from shim.torch.distributed.checkpoint import planner_helpers as fph

    shapes = [(4, 6), (10,), (2, 2), (4, 6), (30,), (1,)]
    dtypes = ["float32", "bfloat16", "int64", "float16", "float32", "float32"]

    def items(mod, helpers):
        out = [helpers._create_write_items(f"t{i}", mod.zeros(s, dtype=getattr(mod, d)))[0]
               for i, (s, d) in enumerate(zip(shapes, dtypes))]
        return out[:2] + [helpers._create_write_item_for_bytesio("b0", None)] + out[2:] + \
            [helpers._create_write_item_for_bytesio("b1", None)]

    for bins in (1, 2, 3):
        got = [[i.index.fqn for i in b] for b in ffs._split_by_size_and_type(bins, items(ft, fph))]
        want = [[i.index.fqn for i in b] for b in rfs._split_by_size_and_type(bins, items(torch, rph))]
        assert got == want, bins
    assert [ffs._item_size(i) for i in items(ft, fph) if i.tensor_data] == \
        [rfs._item_size(i) for i in items(torch, rph) if i.tensor_data]


def test_make_wrapper_subclass_reports_metadata_and_refuses_ops():
    import shim.torch as ft

    class Wrapper(ft.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            raise NotImplementedError

    w = ft.Tensor._make_wrapper_subclass(Wrapper, (2, 3), dtype=ft.bfloat16, requires_grad=True)
    assert isinstance(w, Wrapper) and isinstance(w, ft.Tensor)
    assert (tuple(w.shape), w.dtype, w.requires_grad, w.is_leaf, w.numel(), w.stride(), w.dim()) == (
        (2, 3), ft.bfloat16, True, True, 6, (3, 1), 2)
    with pytest.raises(NotImplementedError, match="Wrapper is a wrapper tensor subclass"):
        w.sum()

    class NoDispatch(ft.Tensor):
        pass

    with pytest.raises(TypeError, match="must define __torch_dispatch__"):
        ft.Tensor._make_wrapper_subclass(NoDispatch, (2,))
    with pytest.raises(RuntimeError, match="floating point"):
        ft.Tensor._make_wrapper_subclass(Wrapper, (2,), dtype=ft.int64, requires_grad=True)
