"""tools/train.py at TP=2 in 2 processes on MindSpore CPU through the shim's launcher
(`SHIM_BACKEND=mindspore python -m torch.distributed.launch --nproc_per_node 2`), against the same run on real
torch (`python -m torch.distributed.launch --nproc_per_node 2`, gloo): per-step loss within 1e-4 absolute, other
metrics under the parity tool's default tolerances (`parity.compare_runs`); both ranks report their
megatron-core patch state. Same tiny model and data as test_megatron_train_shim.py.
"""
from __future__ import annotations

import json

import pytest

from tests.helpers.megatron_runs import STEPS, two_process_runs

pytestmark = [pytest.mark.slow, pytest.mark.shared, pytest.mark.multiproc]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The TP=2 reference run and the TP=2 shim run."""
    return two_process_runs(tmp_path_factory.mktemp("megatron_shim_tp2"), "--tp", "2")


def test_tp2_shim_run_matches_reference(runs):
    from parity import Tolerance, compare_runs
    from parity.metrics import format_run_report

    manifest = json.loads((runs["shim"] / "manifest.json").read_text())
    assert manifest["parallel"]["tensor_model_parallel_size"] == 2 and manifest["parallel"]["world_size"] == 2
    cmp = compare_runs(runs["ref"], runs["shim"], step_range=(1, STEPS), tolerances={"loss": Tolerance(atol=1e-4)})
    assert cmp.ok, format_run_report(cmp)
    steps = [json.loads(x)["step"] for x in (runs["shim"] / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == list(range(1, STEPS + 1))


def test_tp2_both_ranks_report_patch_state(runs):
    for path in (runs["state"], runs["state"].with_name(runs["state"].name + ".rank1")):
        st = json.loads(path.read_text())
        assert st["applied_all"] is True and st["megatron_core"] == "0.16.1", path
    assert json.loads(runs["state"].with_name(runs["state"].name + ".rank1").read_text())["rank"] == 1
