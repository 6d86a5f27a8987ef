"""Writes this worker's launcher-provided environment and argv to $SHIM_TEST_OUT/env_rank<RANK>.json and
prints one line (no communication: exercises the launcher alone)."""
import json
import os
import sys

KEYS = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
        "MASTER_PORT", "RANK_ID", "RANK_SIZE", "DEVICE_ID", "MS_ROLE", "MS_NODE_ID", "MS_WORKER_NUM",
        "MS_SCHED_HOST", "MS_SCHED_PORT", "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS"]
env = {k: os.environ.get(k) for k in KEYS}
with open(os.path.join(os.environ["SHIM_TEST_OUT"], f"env_rank{os.environ['RANK']}.json"), "w") as f:
    json.dump({"env": env, "argv": sys.argv[1:]}, f)
print(f"hello from rank {os.environ['RANK']}", flush=True)
print(f"stderr line of rank {os.environ['RANK']}", file=sys.stderr, flush=True)
