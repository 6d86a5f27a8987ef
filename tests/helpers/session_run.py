"""Run a (possibly multi-process) command in its own session, bounded in time, leaving nothing behind."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest


def run_in_session(cmd: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run `cmd` in a new session and return its exit status and combined output.

    Output goes to a file, not a pipe: a process killed on purpose may leave helper processes (dist_checkpointing's
    writers, launcher workers) that would hold a pipe open. After the command ends, or on timeout, every process
    left in its session is killed. A timeout fails the calling test with the tail of the output.
    """
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        log.seek(0)
        out = log.read()
    if timed_out:
        pytest.fail(f"{' '.join(cmd[:6])} ... timed out after {timeout} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)
