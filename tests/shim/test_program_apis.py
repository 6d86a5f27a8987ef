"""Program-level torch APIs that real programs touch (issue 12 item 3): torch.backends, torch.accelerator,
torch.compile, torch.testing.assert_close — each against real torch in the same process."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mt = pytest.importorskip("shim.torch")


# ------------------------------------------------------------------------------------------- torch.backends
BACKEND_FLAGS = [
    ("cuda.matmul", "allow_tf32"), ("cuda.matmul", "allow_fp16_reduced_precision_reduction"),
    ("cuda.matmul", "allow_bf16_reduced_precision_reduction"), ("cudnn", "allow_tf32"), ("cudnn", "enabled"),
    ("cudnn", "benchmark"), ("cudnn", "deterministic"), ("cudnn", "benchmark_limit"),
]


def _obj(lib, path):
    obj = lib.backends
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path,name", BACKEND_FLAGS, ids=[f"{p}.{n}" for p, n in BACKEND_FLAGS])
def test_backend_flag_defaults_match_torch_and_are_settable(path, name):
    ours, ref = _obj(mt, path), _obj(torch, path)
    assert getattr(ours, name) == getattr(ref, name)
    old = getattr(ours, name)
    new = (not old) if isinstance(old, bool) else 5
    try:
        setattr(ours, name, new)
        assert getattr(ours, name) == new
    finally:
        setattr(ours, name, old)


def test_backend_errors_and_queries():
    with pytest.raises(AttributeError, match="Unknown attribute foo"):
        mt.backends.cuda.matmul.foo = True
    with pytest.raises(AttributeError, match="Unknown attribute foo"):
        torch.backends.cuda.matmul.foo = True
    with pytest.raises(TypeError, match="cudnn.benchmark expects a bool"):
        mt.backends.cudnn.benchmark = "yes"
    with pytest.raises(NotImplementedError, match="torch.backends.cudnn.rnn"):
        mt.backends.cudnn.rnn
    assert mt.backends.mps.is_available() is False and mt.backends.mps.is_built() is False
    assert mt.backends.cudnn.is_available() is False and mt.backends.cudnn.version() is None
    assert mt.backends.cuda.is_built() is mt.cuda.is_available() is True  # "cuda" is the shim's accelerator
    assert mt.backends.cpu.get_cpu_capability() == torch.backends.cpu.get_cpu_capability()
    with mt.backends.cudnn.flags(enabled=False, deterministic=True):
        assert mt.backends.cudnn.enabled is False and mt.backends.cudnn.deterministic is True
    assert mt.backends.cudnn.enabled is True and mt.backends.cudnn.deterministic is False
    mt.backends.cuda.enable_flash_sdp(False)
    try:
        assert mt.backends.cuda.flash_sdp_enabled() is False
    finally:
        mt.backends.cuda.enable_flash_sdp(True)


# ---------------------------------------------------------------------------------------- torch.accelerator
def test_accelerator_is_the_shims_cuda():
    acc = mt.accelerator
    assert acc.current_accelerator() == mt.device("cuda") and acc.current_accelerator().type == "cuda"
    assert acc.is_available() is True and acc.device_count() == mt.cuda.device_count() >= 1
    assert acc.current_device_index() == mt.cuda.current_device() == 0
    with acc.device_index(0):
        assert acc.current_device_index() == 0
    acc.synchronize()
    assert acc.current_stream() == mt.cuda.current_stream()
    free, total = acc.get_memory_info()
    assert 0 < free <= total
    assert isinstance(acc.memory_allocated(), int)
    with pytest.raises(NotImplementedError, match="torch.accelerator.get_device_capability"):
        acc.get_device_capability()


# -------------------------------------------------------------------------------------------- torch.compile
def test_compile_is_eager_and_returns_the_callable():
    m = mt.nn.Linear(2, 2)
    assert mt.compile(m) is m

    def f(x):
        return x * 2
    assert mt.compile(f) is f
    assert mt.compile(mode="max-autotune")(f) is f


# --------------------------------------------------------------------------------- torch.testing.assert_close
def _cases(lib):
    t = lib.tensor
    nan, inf = float("nan"), float("inf")
    return [
        (t([1., 2., 3., 4.]), t([1., 2.1, 3., 5.]), {}),
        (t([1, 2]), t([1., 2.]), {}),
        (t([1., 2.]), t([1., 2., 3.]), {}),
        ([t(1.)], [t(2.)], {}),
        ({"a": t(1.)}, {"a": t(2.)}, {}),
        ((t([1.]), {"b": [t([1., 2.])]}), (t([1.]), {"b": [t([1., 2.5])]}), {}),
        (1.0, 1.1, {}), (1, 1.0, {}), (3, 3, {}),
        (t([nan]), t([nan]), {}), (t([nan]), t([nan]), {"equal_nan": True}),
        (t([inf, 1.]), t([inf, 1.]), {}), (t([inf]), t([-inf]), {}),
        (t([1, 2]), t([1, 3]), {}),
        (t([[1., 2.], [3., 4.]]), t([[1., 2.], [3., 4.5]]), {}),
        (t([[1., 2.], [3., 4.]]), t([[1., 2.], [3., 4.5]]), {"rtol": 0.2, "atol": 0.0}),
        (t([1., 2.]), t([1., 2.00001]), {}),
        (t([1., 2.]).bfloat16(), t([1., 2.01]).bfloat16(), {}),
        (t([1., 2.]).half(), t([1., 2.01]).half(), {}),
        (t([1., 2.]), t([1., 2.]).double(), {}),
        (t([1., 2.]), t([1., 2.]).double(), {"check_dtype": False}),
        (t([1., 2.]).double(), t([1., 2. + 1e-6]).double(), {}),
        (t([True]), t([False]), {}),
        ([1, 2], [1, 2, 3], {}),
        ({"a": 1}, {"b": 1}, {}),
        (t([1., 2.]), t([1., 2.5]), {"msg": "custom"}),
        (t([1., 2.]), t([1., 2.5]), {"msg": lambda m: "prefix: " + m.splitlines()[0]}),
        (t(1.), t(1.), {"rtol": 1e-3}),
        (np.array([1., 2.]), np.array([1., 2.5]), {}),
    ]


def _outcome(lib, actual, expected, kwargs):
    try:
        lib.testing.assert_close(actual, expected, **kwargs)
        return "ok"
    except (AssertionError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("i", range(len(_cases(torch))))
def test_assert_close_matches_torch(i):
    ours, ref = _cases(mt)[i], _cases(torch)[i]
    assert _outcome(mt, *ours) == _outcome(torch, *ref)
