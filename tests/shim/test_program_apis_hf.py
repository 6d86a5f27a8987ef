"""The torch APIs added for HF transformers, at torch's paths, checked against real torch (in process, the
facade imported as ``shim.torch`` without activation) or against known values."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch as real

import shim.torch as torch


# ---------------------------------------------------------------------------------------- distributed
def test_placements_and_shard_arithmetic_follow_torch_chunk():
    from shim.torch.distributed.tensor import Partial, Replicate, Shard
    from shim.torch.distributed.tensor._utils import compute_local_shape_and_global_offset
    from shim.torch.distributed.tensor.placement_types import _StridedShard

    assert Shard(1) == Shard(1) and Shard(0) != Shard(1) and Replicate() == Replicate()
    assert Shard(0).is_shard() and Shard(0).is_shard(0) and not Shard(0).is_shard(1)
    assert Partial().is_partial("sum") and not Replicate().is_shard() and Replicate().is_replicate()
    assert len({Shard(0), Shard(0), Replicate()}) == 2
    with pytest.raises(NotImplementedError, match="_StridedShard"):
        _StridedShard(0, split_factor=2)

    class Mesh:  # what compute_local_shape_and_global_offset reads of a DeviceMesh
        def __init__(self, shape, coord):
            self._shape, self._coord, self.ndim = shape, coord, len(shape)

        def get_coordinate(self):
            return self._coord

        def size(self, d=None):
            return self._shape[d]

    # reference: real torch.chunk of an arange gives each shard's size and offset
    for n, k in [(10, 3), (5, 4), (7, 7), (3, 4), (0, 2)]:
        chunks = list(real.arange(n).chunk(k)) if n else []
        for i in range(k):
            got = compute_local_shape_and_global_offset((n, 6), Mesh((k,), [i]), [Shard(0)])
            if i < len(chunks):
                assert got == ((len(chunks[i]), 6), (int(chunks[i][0]) if len(chunks[i]) else 0, 0))
            else:
                assert got[0] == (0, 6)
    # two mesh dims over two tensor dims, and a replicated dim
    assert compute_local_shape_and_global_offset((10, 7), Mesh((2, 3), [1, 2]), [Shard(0), Shard(1)]) == ((5, 1), (5, 6))
    assert compute_local_shape_and_global_offset((10, 7), Mesh((2, 3), [1, 2]), [Replicate(), Shard(1)]) == ((10, 1), (0, 6))
    assert compute_local_shape_and_global_offset((4,), Mesh((2,), None), [Shard(0)]) == ((0,), ())


def test_dtensor_is_a_type_and_construction_names_itself():
    from shim.torch.distributed.tensor import DTensor, distribute_tensor
    from shim.torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel, MixedPrecisionPolicy, fully_shard

    assert not isinstance(torch.zeros(2), DTensor)
    with pytest.raises(NotImplementedError, match="torch.distributed.tensor.DTensor.from_local"):
        DTensor.from_local(torch.zeros(2), None, None)
    with pytest.raises(NotImplementedError, match="torch.distributed.tensor.distribute_tensor"):
        distribute_tensor(torch.zeros(2), None)
    with pytest.raises(NotImplementedError, match="torch.distributed.fsdp.fully_shard"):
        fully_shard(torch.nn.Linear(2, 2))
    with pytest.raises(NotImplementedError, match="FullyShardedDataParallel"):
        FullyShardedDataParallel(torch.nn.Linear(2, 2))
    assert not isinstance(torch.nn.Linear(2, 2), (FSDPModule, FullyShardedDataParallel))
    assert MixedPrecisionPolicy().param_dtype is None  # torch's defaults
    assert MixedPrecisionPolicy(param_dtype=torch.bfloat16).param_dtype is torch.bfloat16


def test_device_mesh_in_a_one_rank_world():
    import shim.torch.distributed as dist
    from shim.torch.distributed.device_mesh import DeviceMesh, init_device_mesh
    from shim.torch.distributed._functional_collectives import wait_tensor

    saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE", "MS_ROLE") if k in os.environ}
    try:
        with pytest.raises(RuntimeError, match="not initialized"):
            DeviceMesh("cpu", [0])
        mesh = init_device_mesh("cpu", (1,), mesh_dim_names=("dp",))
        assert dist.is_initialized()
        assert (mesh.ndim, mesh.shape, mesh.size(), mesh.get_coordinate(), mesh.get_local_rank()) == (1, (1,), 1, [0], 0)
        assert mesh.mesh.tolist() == [0] and mesh["dp"] is mesh and mesh.mesh_dim_names == ("dp",)
        assert dist.get_process_group_ranks(mesh.get_group("dp")) == [0]
        x = torch.tensor([3.0])
        dist.all_reduce(x, group=mesh.get_group())
        assert wait_tensor(x) is x and x.tolist() == [3.0]
        assert mesh == DeviceMesh("cpu", [0], mesh_dim_names=("dp",)) and hash(mesh) == hash(DeviceMesh("cpu", [0], mesh_dim_names=("dp",)))
        with pytest.raises(ValueError, match="needs a world of at least 2"):
            DeviceMesh("cpu", [[0, 1]])
        with pytest.raises(ValueError, match="duplicate"):
            DeviceMesh("cpu", [0, 0])
        with pytest.raises(KeyError, match="tp"):
            mesh.get_group("tp")
        with pytest.raises(NotImplementedError, match="_flatten"):
            mesh._flatten()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        os.environ.update(saved)


# ---------------------------------------------------------------------------------------- core facade
def test_isin_matches_real_torch():
    a = np.array([[1, 2, 5], [3, 4, 2]])
    for test, kw in [(np.array([2, 4, 9]), {}), (np.array([2]), {"invert": True}), (np.array([], dtype=np.int64), {})]:
        want = real.isin(real.tensor(a), real.tensor(test), **kw)
        got = torch.isin(torch.tensor(a), torch.tensor(test), **kw)
        assert got.dtype == torch.bool and got.tolist() == want.tolist()
    assert torch.isin(torch.tensor(a), 3).tolist() == real.isin(real.tensor(a), 3).tolist()
    assert torch.isin(4, torch.tensor(a)).tolist() == real.isin(4, real.tensor(a)).tolist()


def test_untyped_storage_identity_and_size_as_torch():
    a, r = torch.zeros(4, 3), real.zeros(4, 3)
    v, rv = a[1:], r[1:]
    assert a.untyped_storage().nbytes() == v.untyped_storage().nbytes() == r.untyped_storage().nbytes() == 48
    assert a.untyped_storage().data_ptr() == v.untyped_storage().data_ptr() == a.data_ptr()
    assert torch.zeros(2).untyped_storage().data_ptr() != a.untyped_storage().data_ptr()
    assert (rv.untyped_storage().data_ptr() == r.untyped_storage().data_ptr())  # the rule being mirrored
    with pytest.raises(NotImplementedError, match="UntypedStorage.resize_"):
        a.untyped_storage().resize_(0)


def test_device_scopes_and_default_device():
    assert torch.get_default_device() == torch.device("cpu") and str(real.get_default_device()) == "cpu"
    with torch.device("meta"):
        assert torch.get_default_device().type == "meta"
        assert torch.empty(2).device.type == "meta" and torch.nn.Linear(2, 2).weight.device.type == "meta"
        with torch.device("cpu"):
            assert torch.tensor([]).device.type == "cpu"
        assert torch.tensor([]).device.type == "meta"
    with real.device("meta"):
        assert real.tensor([]).device.type == "meta"  # the behaviour HF checks for
    assert torch.tensor([]).device.type == "cpu"
    with pytest.raises(NotImplementedError, match="default-device scope"):
        with torch.device("cuda:0"):
            pass


def test_no_grad_decorates_generators_as_torch():
    def make(mod):
        @mod.no_grad()
        def gen(n):
            for _ in range(n):
                yield mod.is_grad_enabled()
            return "done"
        return gen

    for mod in (torch, real):
        it = make(mod)(2)
        assert next(it) is False and mod.is_grad_enabled() is True and next(it) is False
        with pytest.raises(StopIteration) as stop:
            next(it)
        assert stop.value.value == "done"


def test_custom_op_with_autograd_matches_real_torch():
    def define(mod, ns):
        def scale3(x):
            return x * 3

        mod.library.custom_op(f"{ns}::scale3", scale3, mutates_args=(), schema="(Tensor x) -> Tensor")

        def setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 + x  # deliberately not the true derivative: shows the registered formula is used

        mod.library.register_autograd(f"{ns}::scale3", backward, setup_context=setup)
        mod.library.register_fake(f"{ns}::scale3", lambda x: mod.empty_like(x))
        return scale3

    results = []
    for mod, ns in ((torch, "shimtest"), (real, "shimtest_real")):
        define(mod, ns)
        x = mod.tensor([1.0, 2.0], requires_grad=True)
        y = getattr(getattr(mod.ops, ns), "scale3")(x)
        y.sum().backward()
        results.append((y.tolist(), x.grad.tolist()))
    assert results[0] == results[1] == ([3.0, 6.0], [4.0, 5.0])
    with pytest.raises(NotImplementedError, match="torch.ops.shimtest.missing"):
        torch.ops.shimtest.missing


def test_pytree_registered_nodes_round_trip():
    from shim.torch.utils import _pytree as pt

    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

    pt.register_pytree_node(Pair, lambda p: ([p.a, p.b], None), lambda kids, ctx: Pair(*kids))
    leaves, spec = pt.tree_flatten({"x": Pair(1, [2, 3])})
    assert leaves == [1, 2, 3]
    back = pt.tree_unflatten([10, 20, 30], spec)
    assert isinstance(back["x"], Pair) and back["x"].a == 10 and back["x"].b == [20, 30]
    with pytest.raises(ValueError, match="already registered"):
        pt.register_pytree_node(Pair, lambda p: ([], None), lambda k, c: None)


def test_float8_dtypes_are_names_with_torch_limits():
    for name in ("float8_e4m3fn", "float8_e5m2"):
        mine, ref = torch.finfo(getattr(torch, name)), real.finfo(getattr(real, name))
        assert (mine.bits, mine.eps, mine.max, mine.min, mine.tiny) == (ref.bits, ref.eps, ref.max, ref.min, ref.tiny)
        with pytest.raises(NotImplementedError, match=f"torch.{name}"):
            torch.zeros(2, dtype=getattr(torch, name))


def test_compiler_and_dynamo_answer_as_eager_torch():
    import shim.torch.compiler as compiler
    import shim.torch._dynamo as dynamo

    f = lambda x: x  # noqa: E731
    assert compiler.is_compiling() is False and real.compiler.is_compiling() is False
    assert compiler.disable(f) is f and compiler.disable()(f) is f and dynamo.allow_in_graph(f) is f
    assert dynamo.mark_static_address(torch.zeros(1)) is None
    from shim.torch._dynamo._trace_wrapped_higher_order_op import TransformGetItemToIndex
    with pytest.raises(NotImplementedError, match="TransformGetItemToIndex"):
        with TransformGetItemToIndex():
            pass


def test_sdpa_kernel_accepts_math_only():
    from shim.torch.nn.attention import SDPBackend, sdpa_kernel

    assert SDPBackend.MATH == real.nn.attention.SDPBackend.MATH.value
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]):
        pass
    with pytest.raises(NotImplementedError, match="only the MATH"):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            pass


@pytest.fixture
def safetensors_restored():
    """`_safetensors.install()` patches safetensors process-wide; put everything back for the later tests."""
    import sys

    import safetensors
    import safetensors.torch as st_torch
    from shim.torch import _safetensors

    saved = ({n: getattr(st_torch, n) for n in ("save", "save_file", "load", "load_file")}, safetensors.safe_open,
             list(sys.meta_path), _safetensors._installed[0], _safetensors._ORIGINAL_SAFE_OPEN[0],
             getattr(st_torch, "__shim_patched__", None))
    yield
    fns, safe_open, meta_path, installed, original, flag = saved
    for n, f in fns.items():
        setattr(st_torch, n, f)
    safetensors.safe_open = safe_open
    sys.meta_path[:] = meta_path
    _safetensors._installed[0], _safetensors._ORIGINAL_SAFE_OPEN[0] = installed, original
    if flag is None and hasattr(st_torch, "__shim_patched__"):
        del st_torch.__shim_patched__


def test_safe_open_pt_serves_facade_tensors(tmp_path, safetensors_restored):
    import safetensors
    from safetensors.torch import save_file as real_save  # noqa: F401  (imported before or after: both patched)
    from shim.torch import _safetensors

    _safetensors.install()
    path = tmp_path / "w.safetensors"
    import safetensors.numpy as stn
    stn.save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(path))
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert list(f.keys()) == ["w"]
        t = f.get_tensor("w")
        sl = f.get_slice("w")
        part = sl[1:, :2]
    assert isinstance(t, torch.Tensor) and t.tolist() == np.arange(12).reshape(3, 4).tolist()
    assert sl.get_shape() == [3, 4] and part.tolist() == [[4.0, 5.0], [8.0, 9.0]]
    with safetensors.safe_open(str(path), framework="numpy") as f:  # other frameworks pass through
        assert isinstance(f.get_tensor("w"), np.ndarray)


def test_reduce_lr_on_plateau_matches_real_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7]
    lrs = []
    for mod in (torch, real):
        p = mod.nn.Parameter(mod.zeros(1))
        opt = mod.optim.SGD([p], lr=1.0)
        sched = mod.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
        seen = []
        for m in metrics:
            sched.step(m)
            seen.append(opt.param_groups[0]["lr"])
        lrs.append((seen, sched.get_last_lr(), sched.num_bad_epochs, sched.best))
    assert lrs[0] == lrs[1]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), factor=1.0)


def test_diff_matches_real_torch():
    a = np.array([[1, 4, 9, 16], [2, 3, 5, 8]])
    cases = [({}, None), ({"n": 2, "dim": 1}, None), ({"dim": 0}, np.zeros((1, 4), dtype=np.int64)), ({"n": 5}, None)]
    for kw, pre in cases:
        want = real.diff(real.tensor(a), **kw, **({"prepend": real.tensor(pre)} if pre is not None else {}))
        got = torch.diff(torch.tensor(a), **kw, **({"prepend": torch.tensor(pre)} if pre is not None else {}))
        assert got.tolist() == want.tolist() and tuple(got.shape) == tuple(want.shape)
    b = [True, False, False, True]
    assert torch.diff(torch.tensor(b)).tolist() == real.diff(real.tensor(b)).tolist()
    x = np.array([0.5, 1.5, 4.0], dtype=np.float32)
    assert torch.diff(torch.tensor(x), append=torch.tensor([10.0])).tolist() == \
        real.diff(real.tensor(x), append=real.tensor([10.0])).tolist()
