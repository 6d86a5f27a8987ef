"""torch.utils.data on the facade: batches, collation and shuffling order compared with real torch."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import torch
import shim.torch as mt
from shim.torch.utils import data as mdata  # noqa: E402
from torch.utils import data as tdata  # noqa: E402


def _as_py(x):
    """Batches → nested Python lists / dicts (tensors of either backend via .tolist(), keeping dtype
    names)."""
    if hasattr(x, "tolist") and hasattr(x, "dtype"):
        return ("tensor", str(x.dtype), list(x.shape), x.tolist())
    if isinstance(x, dict):
        return {k: _as_py(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x).__name__, [_as_py(v) for v in x]
    return x


class _Squares:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.arange(3, dtype=np.float32) + i, "y": i * i, "w": float(i) / 2, "name": f"s{i}"}


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (4, False), (4, True), (10, False)])
def test_sequential_batches_and_default_collate_match_torch(batch_size, drop_last):
    ds = _Squares(10)
    got = [_as_py(b) for b in mdata.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)]
    want = [_as_py(b) for b in tdata.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)]
    assert got == want
    assert len(mdata.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)) == len(want)


def test_collate_types_match_torch():
    Point = collections.namedtuple("Point", "a b")
    samples = [(Point(1, 2.5), [True, 3], np.int64(7), np.float32(1.5)) for _ in range(3)]
    assert _as_py(mdata.default_collate(samples)) == _as_py(tdata.default_collate(samples))
    t_samples = [mt.tensor([1.0, 2.0]) * k for k in range(3)]
    out = mdata.default_collate(t_samples)
    assert out.shape == (3, 2) and out.tolist() == [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]
    with pytest.raises(TypeError, match="found <class 'object'>"):
        mdata.default_collate([object(), object()])


@pytest.mark.parametrize("seed", [0, 7, 123456])
def test_shuffle_with_generator_matches_torch_order(seed):
    ds = list(range(23))
    g_m = mt.Generator()
    g_m.manual_seed(seed)
    g_t = torch.Generator()
    g_t.manual_seed(seed)
    dl_m = mdata.DataLoader(ds, batch_size=5, shuffle=True, generator=g_m)
    dl_t = tdata.DataLoader(ds, batch_size=5, shuffle=True, generator=g_t)
    for _epoch in range(3):  # the stream continues across epochs as in torch
        assert [b.tolist() for b in dl_m] == [b.tolist() for b in dl_t]


def test_random_sampler_and_random_split_match_torch():
    g_m, g_t = mt.Generator(), torch.Generator()
    g_m.manual_seed(3), g_t.manual_seed(3)
    assert list(mdata.RandomSampler(range(40), generator=g_m)) == list(tdata.RandomSampler(range(40), generator=g_t))
    assert list(mdata.RandomSampler(range(9), num_samples=20, generator=g_m)) == \
        list(tdata.RandomSampler(range(9), num_samples=20, generator=g_t))
    g_m.manual_seed(11), g_t.manual_seed(11)
    parts_m = mdata.random_split(range(30), [0.5, 0.3, 0.2], generator=g_m)
    parts_t = tdata.random_split(range(30), [0.5, 0.3, 0.2], generator=g_t)
    assert [list(p) for p in parts_m] == [list(p) for p in parts_t]


@pytest.mark.parametrize("n,replicas,shuffle,drop_last", [(23, 4, True, False), (23, 4, True, True),
                                                          (8, 3, False, False), (100, 2, True, False)])
def test_distributed_sampler_matches_torch(n, replicas, shuffle, drop_last):
    for epoch in (0, 1, 5):
        for rank in range(replicas):
            s_m = mdata.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=17,
                                           drop_last=drop_last)
            s_t = tdata.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=17,
                                           drop_last=drop_last)
            s_m.set_epoch(epoch), s_t.set_epoch(epoch)
            assert list(s_m) == list(s_t)
            assert len(s_m) == len(s_t)


def test_distributed_sampler_errors():
    with pytest.raises(ValueError, match="Invalid rank 4"):
        mdata.DistributedSampler(range(5), num_replicas=4, rank=4)


def test_iterable_dataset_batches():
    class Stream(mdata.IterableDataset):
        def __iter__(self):
            return iter(range(7))

    assert [b.tolist() for b in mdata.DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in mdata.DataLoader(Stream(), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="shuffle"):
        mdata.DataLoader(Stream(), shuffle=True)


def test_sampler_and_batch_sampler_arguments():
    ds = list(range(10))
    dl = mdata.DataLoader(ds, batch_sampler=mdata.BatchSampler(mdata.SequentialSampler(ds), 3, False))
    assert [b.tolist() for b in dl] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    dl = mdata.DataLoader(ds, batch_size=4, sampler=[9, 8, 7, 6, 5])
    assert [b.tolist() for b in dl] == [[9, 8, 7, 6], [5]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        mdata.DataLoader(ds, sampler=[1], shuffle=True)
    with pytest.raises(ValueError, match="mutually exclusive"):
        mdata.DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        mdata.BatchSampler(range(3), 0, False)


def test_num_workers_served_in_process_with_warning():
    with pytest.warns(UserWarning, match="calling process"):
        dl = mdata.DataLoader(list(range(6)), batch_size=2, num_workers=2)
    assert [b.tolist() for b in dl] == [[0, 1], [2, 3], [4, 5]]
    assert mdata.get_worker_info() is None


def test_tensor_dataset_and_concat():
    x = mt.arange(6).reshape(3, 2)
    y = mt.tensor([1, 0, 1])
    ds = mdata.TensorDataset(x, y)
    assert len(ds) == 3 and ds[1][0].tolist() == [2, 3] and int(ds[1][1]) == 0
    cat = mdata.ConcatDataset([list(range(3)), list(range(10, 12))])
    assert [cat[i] for i in range(len(cat))] == [0, 1, 2, 10, 11] and cat[-1] == 11
    with pytest.raises(ValueError, match="Size mismatch"):
        mdata.TensorDataset(x, mt.tensor([1, 2]))


def test_shuffle_without_generator_is_deterministic_under_manual_seed():
    def order():
        mt.manual_seed(5)
        return [b.tolist() for b in mdata.DataLoader(list(range(12)), batch_size=4, shuffle=True)]

    first, second = order(), order()
    assert first == second
    assert sorted(sum(first, [])) == list(range(12)) and sum(first, []) != list(range(12))
