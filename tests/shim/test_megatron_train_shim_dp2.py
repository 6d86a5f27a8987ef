"""tools/train.py at DP=2 (2 processes, TP=1, megatron-core's distributed optimizer) on MindSpore CPU through
the shim's launcher, against the same run on real torch: per-step loss within 1e-4 absolute
(`parity.compare_runs`). This is the test of the `param_gather_copies_into_params` patch: without it
(`MEGATRON_PATCHES_DISABLE=param_gather_copies_into_params`) each rank keeps only its own optimizer shard's
update and the loss leaves the reference from step 2 on.
"""
from __future__ import annotations

import json

import pytest

from tests.helpers.megatron_runs import STEPS, two_process_runs

pytestmark = [pytest.mark.slow, pytest.mark.shared, pytest.mark.multiproc]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The DP=2 reference run and the DP=2 shim run."""
    return two_process_runs(tmp_path_factory.mktemp("megatron_shim_dp2"))


def test_dp2_shim_run_matches_reference(runs):
    from parity import Tolerance, compare_runs
    from parity.metrics import format_run_report

    manifest = json.loads((runs["shim"] / "manifest.json").read_text())
    assert manifest["parallel"]["data_parallel_size"] == 2
    cmp = compare_runs(runs["ref"], runs["shim"], step_range=(1, STEPS), tolerances={"loss": Tolerance(atol=1e-4)})
    assert cmp.ok, format_run_report(cmp)


def test_dp2_patch_applied_and_hit_on_both_ranks(runs):
    for path in (runs["state"], runs["state"].with_name(runs["state"].name + ".rank1")):
        rec = json.loads(path.read_text())["patches"]["param_gather_copies_into_params"]
        assert rec["applied"] and rec["hits"] >= STEPS, (path, rec)
