"""The launcher (shim/launcher): flags, per-rank environment, output, failures, signals, multi-node.

These runs need no collectives (workers run with SHIM_BACKEND=off and never initialise communication), so
each takes a few seconds; the MindSpore cluster itself is exercised in test_distributed*.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shim.launcher.cli import parse_args
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "shim" / "dist_scripts"
PY = sys.executable


def _env(out: Path, **extra) -> dict:
    env = dict(os.environ, SHIM_BACKEND="off", SHIM_TEST_OUT=str(out), PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _launch(args, out: Path, timeout: float = 90, module: str = "shim.launcher", **extra):
    return subprocess.run([PY, "-m", module, *map(str, args)], cwd=REPO, env=_env(out, **extra),
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------- flag parsing
def test_parse_torchrun_and_legacy_spellings():
    cfg = parse_args(["--nproc_per_node=4", "--nnodes", "2:2", "--node-rank", "1", "--master_addr", "10.0.0.1",
                      "--master-port", "1234", "train.py", "--tp", "2"])
    assert (cfg.nproc_per_node, cfg.nnodes, cfg.node_rank, cfg.world_size) == (4, 2, 1, 8)
    assert (cfg.master_addr, cfg.master_port, cfg.use_env) == ("10.0.0.1", 1234, True)
    assert (cfg.script, cfg.script_args) == ("train.py", ["--tp", "2"])
    legacy = parse_args(["--nproc_per_node", "2", "t.py"], legacy=True)
    assert legacy.use_env is False
    assert parse_args(["--use_env", "t.py"], legacy=True).use_env is True
    rdzv = parse_args(["--rdzv-endpoint", "host1:4321", "--rdzv-backend", "c10d", "t.py"])
    assert (rdzv.master_addr, rdzv.master_port) == ("host1", 4321)


@pytest.mark.parametrize("argv, message", [
    (["--max-restarts", "3", "t.py"], "--max-restarts 3"),
    (["--nnodes", "1:4", "t.py"], "elastic"),
    (["--nnodes", "2", "--node-rank", "2", "t.py"], "--node-rank 2"),
    (["--rdzv-backend", "etcd", "t.py"], "etcd"),
    (["--nproc-per-node", "0", "t.py"], "--nproc-per-node"),
    (["--rdzv-endpoint", "nohostport", "t.py"], "HOST:PORT"),
])
def test_parse_rejects_unsupported_values(argv, message):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert message in str(exc.value)


def test_unknown_flag_is_named(tmp_path):
    proc = _launch(["--bogus-flag", "--nproc-per-node", "1", "--tee=3", str(SCRIPTS / "env_dump.py")], tmp_path)
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus-flag --tee=3" in proc.stderr
    assert not list(tmp_path.glob("env_rank*.json")), "no worker may start"


# ------------------------------------------------------------------------------------------ environment
def test_env_output_prefix_and_logs_per_rank(tmp_path):
    logs = tmp_path / "logs"
    proc = _launch(["--nproc-per-node", "3", "--master-port", free_port(), "--log-dir", logs, "--rdzv-id", "job7",
                    SCRIPTS / "env_dump.py", "--flag", "v"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for r in range(3):
        d = json.loads((tmp_path / f"env_rank{r}.json").read_text())
        env = d["env"]
        assert env["RANK"] == env["RANK_ID"] == env["MS_NODE_ID"] == str(r)
        assert env["LOCAL_RANK"] == env["DEVICE_ID"] == str(r)
        assert env["WORLD_SIZE"] == env["RANK_SIZE"] == env["MS_WORKER_NUM"] == env["LOCAL_WORLD_SIZE"] == "3"
        assert env["GROUP_RANK"] == "0" and env["MS_ROLE"] == "MS_WORKER" and env["MASTER_ADDR"] == "127.0.0.1"
        assert env["TORCHELASTIC_RUN_ID"] == "job7" and env["OMP_NUM_THREADS"] == "1"
        assert int(env["MS_SCHED_PORT"]) != int(env["MASTER_PORT"])
        assert d["argv"] == ["--flag", "v"]  # torchrun semantics: no --local-rank
        assert f"[rank{r}]: hello from rank {r}" in proc.stdout
        assert f"[rank{r}]: stderr line of rank {r}" in proc.stderr
        assert (logs / "job7" / "attempt_0" / str(r) / "stdout.log").read_text() == f"hello from rank {r}\n"
        assert "stderr line" in (logs / "job7" / "attempt_0" / str(r) / "stderr.log").read_text()


def test_legacy_launcher_passes_local_rank(tmp_path):
    proc = _launch(["--nproc_per_node=2", "--master_port", free_port(), SCRIPTS / "env_dump.py", "--x"], tmp_path,
                   module="shim.torch.distributed.launch")
    assert proc.returncode == 0, proc.stderr
    for r in range(2):
        assert json.loads((tmp_path / f"env_rank{r}.json").read_text())["argv"] == [f"--local-rank={r}", "--x"]
    proc = _launch(["--use_env", "--nproc_per_node=2", "--master_port", free_port(), SCRIPTS / "env_dump.py"],
                   tmp_path, module="shim.torch.distributed.launch")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "env_rank1.json").read_text())["argv"] == []


def test_torch_distributed_run_module_is_the_launcher(tmp_path):
    proc = _launch(["--nproc-per-node", "2", "--master-port", free_port(), SCRIPTS / "env_dump.py"], tmp_path,
                   module="shim.torch.distributed.run")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "env_rank1.json").read_text())["env"]["RANK"] == "1"


def test_two_nodes_on_loopback_form_one_job(tmp_path):
    port = free_port()
    common = ["--nnodes", "2", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", port]
    node1 = subprocess.Popen([PY, "-m", "shim.launcher", *map(str, common), "--node-rank", "1",
                              str(SCRIPTS / "env_dump.py")], cwd=REPO, env=_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    node0 = _launch([*common, "--node-rank", "0", SCRIPTS / "env_dump.py"], tmp_path)
    out1, err1 = node1.communicate(timeout=60)
    assert node0.returncode == 0, node0.stderr
    assert node1.returncode == 0, err1
    envs = [json.loads((tmp_path / f"env_rank{r}.json").read_text())["env"] for r in range(4)]
    assert [e["GROUP_RANK"] for e in envs] == ["0", "0", "1", "1"]
    assert [e["LOCAL_RANK"] for e in envs] == ["0", "1", "0", "1"]
    assert {e["WORLD_SIZE"] for e in envs} == {"4"} and {e["MS_SCHED_PORT"] for e in envs} == {envs[0]["MS_SCHED_PORT"]}
    assert "[rank3]: hello from rank 3" in out1


# --------------------------------------------------------------------------------------------- failures
def test_failing_worker_stops_the_others_and_is_named(tmp_path):
    t0 = time.monotonic()
    proc = _launch(["--nproc-per-node", "3", "--master-port", free_port(), SCRIPTS / "fail_rank.py"], tmp_path,
                   FAIL_RANK=1)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1
    assert elapsed < 30, f"launcher took {elapsed:.1f} s to stop the job"
    assert "rank 1 (local_rank 1" in proc.stderr and "exit code 1" in proc.stderr
    assert "boom" in proc.stderr.split("Last stderr lines of rank 1")[1]


def test_busy_master_port_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _launch(["--nproc-per-node", "2", "--master-port", port, SCRIPTS / "env_dump.py"], tmp_path)
    assert proc.returncode == 1
    assert f"master port {port} on 127.0.0.1 is busy" in proc.stderr
    assert not list(tmp_path.glob("env_rank*.json")), "no worker may start"


def test_unreachable_master_is_a_clear_error(tmp_path):
    port = free_port()
    t0 = time.monotonic()
    proc = _launch(["--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "1", "--master-port", port,
                    "--join-timeout", "2", SCRIPTS / "env_dump.py"], tmp_path)
    assert proc.returncode == 1
    assert f"cannot reach the master's store at 127.0.0.1:{port} within 2 s" in proc.stderr
    assert time.monotonic() - t0 < 20


def test_rank_that_never_joins_is_named(tmp_path):
    proc = _launch(["--nproc-per-node", "3", "--master-port", free_port(), SCRIPTS / "never_join.py"], tmp_path,
                   JOIN_TIMEOUT=3)
    assert proc.returncode == 1
    assert "waiting for rank(s) [1, 2] of world_size 3 to join" in proc.stderr


def test_sigterm_is_forwarded_to_every_worker(tmp_path):
    port = free_port()
    launcher = subprocess.Popen([PY, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port", str(port),
                                 str(SCRIPTS / "signal_wait.py")], cwd=REPO, env=_env(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready_rank{r}").exists() for r in range(2)):
        assert time.monotonic() < deadline and launcher.poll() is None, "workers did not start"
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 128 + signal.SIGTERM
    assert "received SIGTERM" in err
    for r in range(2):
        assert (tmp_path / f"signal_rank{r}.txt").read_text() == "SIGTERM"


def test_killed_launcher_leaves_no_orphans(tmp_path):
    launcher = subprocess.Popen([PY, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port", str(free_port()),
                                 str(SCRIPTS / "signal_wait.py")], cwd=REPO, env=_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready_rank{r}").exists() for r in range(2)):
        assert time.monotonic() < deadline and launcher.poll() is None, "workers did not start"
        time.sleep(0.1)
    pids = subprocess.run(["pgrep", "-f", str(SCRIPTS / "signal_wait.py")], capture_output=True, text=True).stdout.split()
    workers = [int(p) for p in pids if int(p) != launcher.pid]
    assert len(workers) == 2
    launcher.kill()  # SIGKILL: the launcher cannot forward anything
    launcher.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2] for p in workers):
        assert time.monotonic() < deadline, "workers outlived a killed launcher"
        time.sleep(0.1)


def test_torchrun_command_serves_the_launcher_when_the_shim_is_active(tmp_path):
    torchrun = Path(PY).parent / "torchrun"
    assert torchrun.exists(), "no torchrun console script (real torch, the reference backend, not installed)"
    env = _env(tmp_path, SHIM_BACKEND="mindspore")  # activation at interpreter start (msshim-activate.pth)
    proc = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--master-port", str(free_port()),
                           str(SCRIPTS / "env_dump.py")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    env1 = json.loads((tmp_path / "env_rank1.json").read_text())["env"]
    assert env1["MS_NODE_ID"] == "1" and env1["MS_ROLE"] == "MS_WORKER"  # MindSpore cluster variables: ours
    assert "[rank1]: hello from rank 1" in proc.stdout


def test_failure_on_one_node_stops_the_other_node(tmp_path):
    port = free_port()
    common = ["--nnodes", "2", "--nproc-per-node", "2", "--master-port", str(port), str(SCRIPTS / "fail_rank.py")]
    node0 = subprocess.Popen([PY, "-m", "shim.launcher", "--node-rank", "0", *common], cwd=REPO,
                             env=_env(tmp_path, FAIL_RANK=3), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    node1 = _launch(["--node-rank", "1", *common], tmp_path, FAIL_RANK=3)
    _, err0 = node0.communicate(timeout=60)
    assert time.monotonic() - t0 < 30
    assert node1.returncode == 1 and "rank 3 (local_rank 1, node 1" in node1.stderr
    assert node0.returncode == 1
    assert "stopping local workers because rank 3 on node 1 failed (exit code 1)" in err0


def test_same_master_port_can_be_reused_by_the_next_job(tmp_path):
    port = free_port()
    for attempt in range(2):
        proc = _launch(["--nproc-per-node", "2", "--master-port", port, SCRIPTS / "env_dump.py"], tmp_path)
        assert proc.returncode == 0, (attempt, proc.stderr)


def test_scheduler_death_stops_the_job_with_its_log(tmp_path):
    launcher = subprocess.Popen([PY, "-m", "shim.launcher", "--nproc-per-node", "2", "--master-port", str(free_port()),
                                 str(SCRIPTS / "signal_wait.py")], cwd=REPO, env=_env(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready_rank{r}").exists() for r in range(2)):
        assert time.monotonic() < deadline and launcher.poll() is None, "workers did not start"
        time.sleep(0.1)
    found = subprocess.run(["pgrep", "-P", str(launcher.pid), "-f", "shim._comm.scheduler"], capture_output=True,
                           text=True).stdout.split()
    assert len(found) == 1, found
    os.kill(int(found[0]), signal.SIGKILL)  # only the scheduler this test's launcher started
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 1
    assert "MindSpore's scheduler" in err and "ended with signal SIGKILL while rank(s) [0, 1] were running" in err
    for r in range(2):  # the workers were stopped (SIGTERM reached their handler)
        assert (tmp_path / f"signal_rank{r}.txt").read_text() == "SIGTERM"
