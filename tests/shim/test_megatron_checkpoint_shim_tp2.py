"""megatron-core `torch_dist` checkpoints of tools/train.py at TP=2 (2 processes) under the shim, against real torch.

Same tiny model and data as test_megatron_train_shim.py. Phase 1 (in parallel): a 2-process reference run R2 (real
torch, gloo) and a 2-process shim run A2, 2 steps with `--save_steps 1 --tp 2`. Phase 2 (in parallel), continuing to
step 2 from A2's step-1 checkpoint with `--load`: B2 under the shim and D2 on real torch. Checked: both ranks wrote
their `__<rank>_<n>.distcp` files (megatron-core's own torch_dist writer on the facade: the same files as the
reference's) and one `.metadata` lists both ranks' chunks; the shim checkpoints equal the
reference ones tensor by tensor within 1e-4; B2's step 2 equals A2's within 1e-6; D2's equals R2's within 1e-4.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import free_port
from tests.helpers.megatron_runs import (PY, checkpoint_args, checkpoint_dir, model_and_data, run_parallel,
                                         tool_env, train_records)

pytestmark = [pytest.mark.slow, pytest.mark.shared, pytest.mark.multiproc]

LAUNCH2 = [PY, "-m", "torch.distributed.launch", "--nproc_per_node", "2"]


def _cmd(*args: str) -> list:
    return [*LAUNCH2, "--master_port", str(free_port()), "tools/train.py", *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Model, data, R2 and A2, then B2 and D2."""
    root = tmp_path_factory.mktemp("megatron_ckpt_shim_tp2")
    model, data = model_and_data(root)
    base = ["--model_path", str(model), "--data_path", str(data), *checkpoint_args(2), "--tp", "2", "--no_export"]
    out = {k: root / k for k in ("R2", "A2", "B2", "D2")}
    shim_env = tool_env(SHIM_BACKEND="mindspore")
    logs = dict(zip(("R2", "A2"), run_parallel(
        (_cmd(*base, "--output_path", str(out["R2"])), tool_env(), 480),
        (_cmd(*base, "--output_path", str(out["A2"])), shim_env, 840))))
    cont = list(base)
    cont[cont.index("--save_steps") + 1] = "0"
    step1 = str(checkpoint_dir(out["A2"], 1))
    logs.update(zip(("B2", "D2"), run_parallel(
        (_cmd(*cont, "--load", step1, "--output_path", str(out["B2"])), shim_env, 840),
        (_cmd(*cont, "--load", step1, "--output_path", str(out["D2"])), tool_env(), 480))))
    return {**out, "logs": logs}


def test_tp2_shim_checkpoint_layout_and_values(runs):
    import pickle

    from parity.tolerance import Tolerance, compare_arrays
    from parity.torch_dist import open_torch_dist

    for step in (1, 2):
        shim_dir, ref_dir = checkpoint_dir(runs["A2"], step), checkpoint_dir(runs["R2"], step)
        files = sorted(p.name for p in shim_dir.iterdir())
        assert files == sorted(p.name for p in ref_dir.iterdir()) == [  # megatron's writer: 2 files per rank
            ".metadata", "__0_0.distcp", "__0_1.distcp", "__1_0.distcp", "__1_1.distcp", "common.pt",
            "metadata.json"]
        with open(shim_dir / ".metadata", "rb") as f:
            md = pickle.load(f)  # real torch's classes
        assert len(md.all_local_plans) == 2
        assert {info.relative_path for info in md.storage_data.values()} == {n for n in files if n.endswith("distcp")}
        qkv = md.state_dict_metadata["decoder.layers.self_attention.linear_qkv.weight"]
        assert len(qkv.chunks) == 4  # 2 layers x 2 tensor-parallel shards
        shim_ck, ref_ck = open_torch_dist(shim_dir, backend="shim"), open_torch_dist(ref_dir, backend="torch")
        assert shim_ck.tensors == ref_ck.tensors  # keys, dtypes, global shapes
        for key in ref_ck.tensors:
            ref = ref_ck.load(key)
            diff = compare_arrays(shim_ck.load(key), ref, Tolerance(atol=1e-4, rtol=0.0))
            assert diff.mismatches == 0 and diff.numel == ref.size, (step, key, diff)


def test_tp2_resume_under_shim_and_real_torch_load(runs):
    a2, b2, r2, d2 = (train_records(runs[k]) for k in ("A2", "B2", "R2", "D2"))
    assert "loaded checkpoint" in runs["logs"]["B2"] and "loaded checkpoint" in runs["logs"]["D2"]
    assert sorted(b2) == sorted(d2) == [2]
    for field in ("loss", "grad_norm", "lr"):
        assert abs(a2[2][field] - b2[2][field]) <= 1e-6, (field, a2[2][field], b2[2][field])
    assert abs(d2[2]["loss"] - r2[2]["loss"]) <= 1e-4, (d2[2]["loss"], r2[2]["loss"])
    manifest = json.loads((runs["B2"] / "manifest.json").read_text())
    assert manifest["parallel"]["tensor_model_parallel_size"] == 2
