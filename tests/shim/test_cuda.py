"""torch.cuda on the shim (MindSpore CPU target here): devices, events, streams, memory, nvtx, RNG, torch_npu."""
from __future__ import annotations

import mmap
import os
import time

import numpy as np
import psutil
import pytest

import mindspore as ms
import shim.torch.cuda as cuda  # noqa: E402
from shim.torch import random as facade_random  # noqa: E402
from shim.torch._device import device  # noqa: E402
from shim.torch._ops import creation  # noqa: E402
from shim.torch.cuda import _backend  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_current_device():
    before = _backend.state.current_index
    yield
    _backend.state.current_index = before


def test_backend_table_rows_are_complete_and_cpu_is_current():
    assert set(_backend.BACKENDS) == {"Ascend", "GPU", "CPU"}
    for target, row in _backend.BACKENDS.items():
        assert row.ms_target == target and row.name_source in ("hal", "cpuinfo")
    assert _backend.device_target() == "CPU"
    assert _backend.traits() is _backend.BACKENDS["CPU"]


def test_availability_and_device_selection(monkeypatch):
    assert cuda.is_available() is True  # the shim's accelerator (here MindSpore's CPU) is usable
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert cuda.device_count() == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert cuda.device_count() == 4
    cuda.set_device(2)
    assert cuda.current_device() == 2
    cuda.set_device("npu:3")
    assert cuda.current_device() == 3
    cuda.set_device(device("cuda", 1))
    assert cuda.current_device() == 1
    with cuda.device(3):
        assert cuda.current_device() == 3
    assert cuda.current_device() == 1
    with cuda.device_of(creation.zeros(1, device="cuda:2")):
        assert cuda.current_device() == 2
    with cuda.device_of(creation.zeros(1)):  # a CPU tensor changes nothing
        assert cuda.current_device() == 1
    assert cuda.current_device() == 1
    with pytest.raises(RuntimeError, match="invalid device ordinal 4"):
        cuda.set_device(4)
    with pytest.raises(ValueError, match="expected a cuda"):
        cuda.set_device("cpu")
    cuda.set_device(-1)  # ignored, as torch does
    assert cuda.current_device() == 1
    cuda.init()
    assert cuda.is_initialized()


def test_device_name_properties_and_capability():
    with open("/proc/cpuinfo") as fh:
        model = next(line.split(":", 1)[1].strip() for line in fh if line.lower().startswith("model name"))
    assert cuda.get_device_name() == model == cuda.get_device_name(0)
    props = cuda.get_device_properties(0)
    assert props.name == model
    assert props.total_memory == psutil.virtual_memory().total
    assert props.multi_processor_count == os.cpu_count()
    assert cuda.get_device_capability() == (0, 0)
    assert cuda.is_bf16_supported() is True


def test_event_elapsed_time_is_real_time_including_queued_work(monkeypatch):
    """Events measure wall time in milliseconds, and record() drains MindSpore's queue before stamping, so queued
    work between two events is counted. What share of the wall time the events see is measured by
    benchmarks/bench_cuda_events.py (a timing ratio, not asserted here)."""
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    start.record()
    time.sleep(0.05)
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) >= 50.0 - 0.5  # at least the sleep (the clock's resolution aside)
    syncs = []
    drain = _backend.synchronize
    monkeypatch.setattr(_backend, "synchronize", lambda: (syncs.append(True), drain())[1])
    x = ms.Tensor(np.ones((256, 256), np.float32))
    t0 = time.perf_counter()
    start.record()
    for _ in range(5):
        x = ms.ops.matmul(x, x) * 1e-3
    end.record()
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert len(syncs) == 2  # each record() drained the queue first
    assert 0.0 < start.elapsed_time(end) <= wall_ms + 1.0  # inside the wall-clock interval around the records
    with pytest.raises(RuntimeError, match="enable_timing"):
        cuda.Event().elapsed_time(end)
    with pytest.raises(RuntimeError, match="recorded"):
        cuda.Event(enable_timing=True).elapsed_time(end)
    assert cuda.Event().query() is True
    with pytest.raises(NotImplementedError, match="interprocess"):
        cuda.Event(interprocess=True)


def test_streams_contexts_and_ordering():
    default = cuda.default_stream()
    assert cuda.current_stream() == default and default.stream_id == 0
    side = cuda.Stream()
    assert side != default and side.device == device("cuda", 0)
    with cuda.stream(side) as entered:
        assert entered is side and cuda.current_stream() is side
        side.wait_stream(default)
        ev = side.record_event()
        assert isinstance(ev, cuda.Event) and ev.query()
    assert cuda.current_stream() == default
    with cuda.stream(None):
        assert cuda.current_stream() == default
    assert side.query() is True
    side.synchronize()
    cuda.synchronize()
    with pytest.raises(TypeError, match="torch.cuda.Stream"):
        side.wait_stream("not a stream")
    with pytest.raises(NotImplementedError, match="ExternalStream"):
        cuda.ExternalStream(0)


def _vm_rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def test_memory_statistics_track_the_process_on_cpu():
    cuda.empty_cache()
    before = cuda.memory_allocated()
    assert abs(before - _vm_rss()) < 16 * 2 ** 20
    cuda.reset_peak_memory_stats()
    # 48 MiB in a fresh anonymous mapping, every page touched: resident whatever the heap allocator keeps cached
    # (np.ones could reuse memory a long-running process already holds, and RSS would not grow).
    block = mmap.mmap(-1, 48 * 2 ** 20)
    block.write(b"\x01" * (48 * 2 ** 20))
    grown = cuda.memory_allocated()
    assert grown - before > 40 * 2 ** 20
    peak = cuda.max_memory_allocated()
    assert peak >= grown and cuda.max_memory_reserved() >= cuda.memory_reserved() > 0
    block.close()
    cuda.reset_peak_memory_stats()
    assert cuda.max_memory_allocated() < peak - 30 * 2 ** 20  # the peak restarted at the current level
    free, total = cuda.mem_get_info()
    assert total == psutil.virtual_memory().total and 0 < free <= total
    stats = cuda.memory_stats()
    assert stats["allocated_bytes.all.peak"] >= stats["allocated_bytes.all.current"] > 0
    assert "VmRSS" in cuda.memory_summary()
    with pytest.raises(NotImplementedError, match="MemPool"):
        cuda.MemPool()
    with pytest.raises(NotImplementedError, match="set_per_process_memory_fraction"):
        cuda.set_per_process_memory_fraction(0.5)


def test_nvtx_ranges_nest_and_report_depth():
    assert cuda.nvtx.range_push("outer") == 0
    assert cuda.nvtx.range_push("inner") == 1
    assert cuda.nvtx.range_pop() == 1
    assert cuda.nvtx.range_pop() == 0
    assert cuda.nvtx.range_pop() == -1
    with cuda.nvtx.range("step {}", 3):
        assert cuda.nvtx.range_push("x") == 1
        cuda.nvtx.range_pop()
    cuda.nvtx.mark("here")
    with pytest.raises(TypeError, match="str"):
        cuda.nvtx.range_push(3)


def test_rng_functions_reproduce_draws():
    cuda.manual_seed(1234)
    first = creation.randn(5).tolist()
    cuda.manual_seed(1234)
    assert creation.randn(5).tolist() == first
    assert cuda.initial_seed() == 1234
    state = cuda.get_rng_state()
    a = creation.rand(4).tolist()
    cuda.set_rng_state(state)
    assert creation.rand(4).tolist() == a
    states = cuda.get_rng_state_all()
    b = creation.randn(3).tolist()
    cuda.set_rng_state_all(states)
    assert creation.randn(3).tolist() == b
    gens = cuda.default_generators
    assert len(gens) == cuda.device_count() and gens[0] is facade_random.default_generator
    cuda.manual_seed_all(7)
    assert facade_random.initial_seed() == 7
    with pytest.raises(TypeError):
        cuda.set_rng_state([1, 2, 3])


class _Tracker:
    """megatron-core's CudaRNGStatesTracker usage pattern (add / fork / get_states / set_states), written against
    the torch.cuda RNG API exactly as megatron/core/tensor_parallel/random.py calls it."""

    def __init__(self):
        self.states = {}

    def add(self, name, seed):
        orig = cuda.get_rng_state()
        cuda.manual_seed(seed)
        self.states[name] = cuda.get_rng_state()
        cuda.set_rng_state(orig)

    def fork(self, name):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            orig = cuda.get_rng_state()
            cuda.default_generators[cuda.current_device()].set_state(self.states[name])
            try:
                yield
            finally:
                self.states[name] = cuda.get_rng_state()
                cuda.set_rng_state(orig)

        return ctx()


def test_megatron_rng_tracker_pattern_repeats_draws_after_restoring_states():
    cuda.manual_seed(42)
    tracker = _Tracker()
    tracker.add("model-parallel-rng", 42 + 2718 + 1)
    default_before = cuda.get_rng_state()
    saved = dict(tracker.states)
    with tracker.fork("model-parallel-rng"):
        forked = creation.rand(6).tolist()
    # the default stream is untouched by the fork
    assert cuda.get_rng_state().tolist() == default_before.tolist()
    with tracker.fork("model-parallel-rng"):
        forked_next = creation.rand(6).tolist()
    assert forked_next != forked  # the tracked state advanced
    tracker.states = saved  # set_states(get_states() from before): the same draws again
    with tracker.fork("model-parallel-rng"):
        assert creation.rand(6).tolist() == forked


def test_dropout_masks_repeat_after_restoring_the_cuda_rng_state():
    from shim.torch.nn import functional as F

    x = creation.ones(64, device="cuda")
    state = cuda.get_rng_state()
    first = F.dropout(x, p=0.5, training=True).tolist()
    cuda.set_rng_state(state)
    assert F.dropout(x, p=0.5, training=True).tolist() == first


def test_unsupported_names_raise_not_implemented_and_fail_hasattr():
    # CUDAGraph exists as a type (libraries annotate with it) but refuses construction, naming itself
    with pytest.raises(NotImplementedError, match="torch.cuda.CUDAGraph"):
        cuda.CUDAGraph()
    assert not hasattr(cuda, "graph_pool_handle")
    with pytest.raises(NotImplementedError, match="torch.cuda.graph_pool_handle"):
        cuda.graph_pool_handle  # noqa: B018
    from shim.torch.cuda import _lazy_call, _lazy_init  # megatron-core imports these

    calls = []
    _lazy_call(lambda: calls.append(1))
    _lazy_init()
    assert calls == [1]


def test_legacy_cuda_tensor_types_check_dtype_and_device():
    acc = creation.zeros(2, device="cuda")
    host = creation.zeros(2)
    assert isinstance(acc, cuda.FloatTensor) and not isinstance(host, cuda.FloatTensor)
    assert not isinstance(acc, cuda.BFloat16Tensor)
    made = cuda.FloatTensor([1.0, 2.0])
    assert made.device.type == "cuda" and made.tolist() == [1.0, 2.0]


def test_torch_npu_and_torch_npu_namespace_are_the_cuda_mapping():
    import shim.torch as facade
    import shim.torch_npu as torch_npu
    from shim.torch_npu.npu import Event

    assert torch_npu.npu is cuda and facade.npu is cuda and Event is cuda.Event
    assert not hasattr(torch_npu, "npu_rms_norm")
    with pytest.raises(NotImplementedError, match="torch_npu.npu_fusion_attention"):
        torch_npu.npu_fusion_attention  # noqa: B018


def test_megatron_cuda_rng_states_tracker_under_the_shim():
    """megatron-core's own CudaRNGStatesTracker (add / fork / get_states / set_states) on the shim's torch.cuda.

    Runs in a subprocess with the import hook active; megatron-core failing to import under the shim is a failure.
    """
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    script = textwrap.dedent("""
        import shim; shim.activate()
        import torch
        from megatron.core.tensor_parallel import random as mrandom
        torch.manual_seed(42)
        torch.cuda.manual_seed(42)
        tracker = mrandom.get_cuda_rng_tracker()
        tracker.reset()
        tracker.add("model-parallel-rng", 42 + 2718)
        saved = tracker.get_states()
        default_before = torch.cuda.get_rng_state()
        with tracker.fork():
            first = torch.rand(8, device="cuda").tolist()
        assert torch.equal(torch.cuda.get_rng_state(), default_before), "fork leaked the tracked state"
        with tracker.fork():
            second = torch.rand(8, device="cuda").tolist()
        assert second != first
        tracker.set_states(saved)
        with tracker.fork():
            assert torch.rand(8, device="cuda").tolist() == first
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=str(repo))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout, proc.stdout + proc.stderr[-2000:]
