"""The MindSpore communication core (shim/_comm): tables, store, group names, local reductions, and the
multi-process acceptance runs on mindspore tensors (2 ranks on one node; 4 ranks as two loopback nodes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shim._comm import table
from shim._comm.ops import _reduce_rows
from shim._comm.store import StoreClient, StoreError, StoreServer
from shim._comm.world import group_name
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "shim" / "dist_scripts" / "core_collectives.py"


# ------------------------------------------------------------------------------------------------- tables
def test_backend_table_maps_every_torch_name_and_rejects_others():
    for name in ("nccl", "gloo", "hccl", "mccl", None, "NCCL"):
        assert table.resolve_backend(name) == "platform"
    with pytest.raises(ValueError, match="backend 'mpi' is not supported"):
        table.resolve_backend("mpi")


def test_native_table_matches_measured_cpu_matrix():
    # measured on MindSpore 2.10 CPU (mccl): SUM-only float all-reduce on any group; gather/broadcast world-only
    assert table.is_native("mccl", "all_reduce", "float32", op="sum", world=False)
    assert not table.is_native("mccl", "all_reduce", "float32", op="max")
    assert not table.is_native("mccl", "all_reduce", "int64")
    assert not table.is_native("mccl", "all_reduce", "bfloat16")
    assert table.is_native("mccl", "all_gather", "int32", world=True)
    assert not table.is_native("mccl", "all_gather", "int32", world=False)
    assert not table.is_native("mccl", "reduce_scatter", "float32")
    text = table.describe("mccl")
    for name in table.EMULATION:  # every collective has a line saying native or emulated
        assert name in text
    assert "send/recv       emulated" in text and "all_reduce      native" in text


def test_group_names_are_deterministic():
    assert group_name((0, 2)) == "shim_g_0_2"
    long = tuple(range(0, 40, 2))
    assert group_name(long) == group_name(list(long)) and group_name(long).startswith("shim_g_n20_")


@pytest.mark.parametrize("dtype", ["float32", "int64", "float16"])
def test_local_reduction_in_rank_order(dtype):
    rows = np.array([[1, -4, 3], [2, 5, -6], [3, 1, 2]], dtype=dtype)
    assert _reduce_rows(rows, "sum").tolist() == [6, 2, -1]
    assert _reduce_rows(rows, "max").tolist() == [3, 5, 3]
    assert _reduce_rows(rows, "min").tolist() == [1, -4, -6]
    assert _reduce_rows(rows, "prod").tolist() == [6, -20, -36]
    if dtype == "int64":
        with pytest.raises(NotImplementedError, match="AVG on integer dtype int64"):
            _reduce_rows(rows, "avg")
        big = np.array([[2 ** 62], [2 ** 62]], np.int64)
        assert _reduce_rows(big, "sum").tolist() == [-(2 ** 63)]  # wraps like torch's int64
    else:
        assert _reduce_rows(rows, "avg").tolist() == [2, pytest.approx(2 / 3, rel=1e-3), pytest.approx(-1 / 3, rel=1e-3)]


def test_store_set_get_wait_keys_and_unreachable():
    server = StoreServer("127.0.0.1", 0)
    try:
        client = StoreClient("127.0.0.1", server.port, connect_timeout=5)
        client.set("joined/1", "a")
        server.set("joined/0", "b")
        assert client.keys("joined/") == ["joined/0", "joined/1"]
        assert client.get("joined/1") == "a" and client.get("missing", timeout=0.2) is None
        client.close()
    finally:
        server.close()
    with pytest.raises(StoreError, match=f"cannot reach the master's store at 127.0.0.1:{server.port} within 1 s"):
        StoreClient("127.0.0.1", server.port, connect_timeout=1)


def test_world_of_one_needs_no_cluster():
    code = ("from shim._comm import world, ops\n"
            "import mindspore as ms, numpy as np\n"
            "world.init()\n"
            "t = ms.Tensor(np.array([1.5, 2.0], np.float32))\n"
            "print(world.rank(), world.world_size(), world.backend(),"
            " ops.all_reduce(t, 'max', world.world()).asnumpy().tolist(),"
            " [x.asnumpy().tolist() for x in ops.all_gather(t, world.world())])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MS_", "RANK", "WORLD_SIZE"))}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 1 local [1.5, 2.0] [[1.5, 2.0]]"
    env["WORLD_SIZE"] = "2"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "world_size=2 needs the launcher" in out.stderr


def test_destroy_replaces_the_whole_state_but_keeps_what_mindspore_did(monkeypatch):
    from shim._comm import p2p, world

    for name in ("MS_ROLE", "RANK", "WORLD_SIZE", "SHIM_STORE_ADDR", "SHIM_STORE_PORT"):
        monkeypatch.delenv(name, raising=False)
    world.init()  # a one-process world: no MindSpore cluster, no store
    try:
        st = world.state()
        assert (st.rank, st.world_size, st.backend, st.local) == (0, 1, "local", True)
        st.prims[("all_reduce", "g", ("sum",))] = object()
        st.arrivals["g"] = 3
        st.p2p_seq[(0, 1)] = 2
        st.p2p_pending.append(object())
        st.mindspore.created.add("shim_g_0_1")
        assert p2p.pending() == 1
    finally:
        world.destroy()
    fresh = world.state()
    assert fresh is not st and not world.is_initialized()
    assert (fresh.prims, fresh.arrivals, fresh.p2p_seq, fresh.p2p_pending, fresh.groups) == ({}, {}, {}, [], {})
    assert (fresh.rank, fresh.world_size, fresh.world, fresh.store, fresh.job) == (-1, 0, None, None, 0)
    assert p2p.pending() == 0
    # MindSpore's own state outlives the job: its groups stay created in this process
    assert fresh.mindspore is st.mindspore and "shim_g_0_1" in fresh.mindspore.created
    fresh.mindspore.created.discard("shim_g_0_1")


# ------------------------------------------------------------------------------------ multi-process runs
def _env(out: Path) -> dict:
    return dict(os.environ, SHIM_BACKEND="off", SHIM_TEST_OUT=str(out), PYTHONUNBUFFERED="1")


def _check_summaries(out: Path, n: int) -> None:
    for r in range(n):
        summary = json.loads((out / f"core_rank{r}.json").read_text())
        assert summary["failures"] == [], summary["failures"][:5]
        assert summary["backend"] == "mccl" and summary["world_size"] == n
        assert summary["checks"] == {2: 38, 4: 76}[n]  # every check ran (sub-groups only with 4)


@pytest.mark.multiproc
@pytest.mark.parametrize("host_bytes", [None, "0"], ids=["host-transport", "mindspore-kernels"])
def test_core_collectives_two_ranks(tmp_path, host_bytes):
    env = _env(tmp_path)
    env.pop(table.HOST_TRANSPORT_ENV, None)
    if host_bytes is not None:  # "0": every collective on MindSpore's mccl kernels (with the store meeting)
        env[table.HOST_TRANSPORT_ENV] = host_bytes
    proc = subprocess.run([sys.executable, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port",
                           str(free_port()), str(SCRIPT)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_summaries(tmp_path, 2)


@pytest.mark.multiproc
def test_host_transport_names_a_size_mismatch(tmp_path):
    """Ranks all-reducing tensors of different sizes get a CommError naming the peer and both sizes (the
    host transport's header check), not misread bytes or a hang."""
    proc = subprocess.run([sys.executable, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port",
                           str(free_port()), str(REPO / "tests" / "shim" / "dist_scripts" / "host_mismatch.py")],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = dict(line.split("HOSTERR ", 1)[1].split(" ", 1) for line in proc.stdout.splitlines()
                  if "HOSTERR " in line)  # the launcher prefixes "[rank<N>]: "
    assert set(errors) == {"0", "1"}, proc.stdout[-2000:]
    assert "rank 1 sent message #0 of 16 bytes where rank 0 expected #0 of 12 bytes" in errors["0"]
    assert "rank 0 sent message #0 of 12 bytes where rank 1 expected #0 of 16 bytes" in errors["1"]


def test_host_transport_limit_is_the_table_row_or_the_environment(monkeypatch):
    monkeypatch.delenv(table.HOST_TRANSPORT_ENV, raising=False)
    assert table.host_transport_bytes("mccl") == table.HOST_TRANSPORT["mccl"] > 0
    assert table.host_transport_bytes("hccl") == 0  # Ascend: HCCL's own kernels
    monkeypatch.setenv(table.HOST_TRANSPORT_ENV, "0")
    assert table.host_transport_bytes("mccl") == 0
    monkeypatch.setenv(table.HOST_TRANSPORT_ENV, "65536")
    assert table.host_transport_bytes("hccl") == 65536
    monkeypatch.setenv(table.HOST_TRANSPORT_ENV, "lots")
    with pytest.raises(ValueError, match="SHIM_COMM_HOST_BYTES='lots': expected an integer"):
        table.host_transport_bytes("mccl")


@pytest.mark.multiproc
@pytest.mark.slow
def test_core_collectives_four_ranks_on_two_loopback_nodes(tmp_path):
    port = str(free_port())
    common = ["--nnodes", "2", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", port]
    node1 = subprocess.Popen([sys.executable, "-m", "shim.launcher", *common, "--node-rank", "1", str(SCRIPT)],
                             cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    node0 = subprocess.run([sys.executable, "-m", "shim.launcher", *common, "--node-rank", "0", str(SCRIPT)],
                           cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    _, err1 = node1.communicate(timeout=120)
    assert node0.returncode == 0, node0.stderr[-3000:]
    assert node1.returncode == 0, err1[-3000:]
    _check_summaries(tmp_path, 4)


@pytest.mark.multiproc
def test_worker_dying_while_peers_block_in_a_collective(tmp_path):
    import time

    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port",
                           str(free_port()), str(REPO / "tests" / "shim" / "dist_scripts" / "fail_in_collective.py")],
                          cwd=REPO, env=dict(_env(tmp_path), FAIL_RANK="1"), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 1
    assert "rank 1 (local_rank 1, node 0" in proc.stderr and "failing on purpose after init" in proc.stderr
    report = proc.stderr.split("launcher: rank 1")[1]
    stop_seconds = float(report.split("local worker(s) in ")[1].split(" s")[0])
    assert stop_seconds <= 30, report  # the blocked rank 0 was stopped within the bound
    assert time.monotonic() - t0 < 120


@pytest.mark.parametrize("kwargs, env, message", [
    ({"world_size": 3}, {}, "world_size=3 but the launcher started 2 processes"),
    ({"rank": 0}, {"MS_NODE_ID": "1", "RANK": "1"}, "rank=0 but the launcher gave this process rank 1"),
    ({"init_method": "tcp://127.0.0.1:1"}, {}, "does not name the launcher's master 127.0.0.1:29500"),
    ({"init_method": "file:///tmp/x"}, {}, "init_method 'file:///tmp/x' is not supported"),
])
def test_init_rejects_disagreement_with_the_launcher(monkeypatch, kwargs, env, message):
    from shim._comm import world

    base = {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "0", "MS_WORKER_NUM": "2", "RANK": "0", "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    for k, v in {**base, **env}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SHIM_STORE_ADDR", raising=False)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        world.init(**kwargs)
    assert not world.is_initialized()
