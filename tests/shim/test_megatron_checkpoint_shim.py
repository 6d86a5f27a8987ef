"""megatron-core `torch_dist` checkpoints of tools/train.py under the shim, against real torch (TP=1, one process).

Same tiny model and data as test_megatron_train_shim.py (fp32, seq_length 64). One module fixture runs:
- phase 1 (in parallel): the reference run R (real torch) and the shim run A, each 2 steps with `--save_steps 1`
  (checkpoints at steps 1 and 2) and the final HF export;
- phase 2 (in parallel), each continuing from a step-1 checkpoint to step 2 with `--load <iter_0000001>`:
  B = shim from A's checkpoint, C = shim from R's checkpoint, D = real torch from A's checkpoint.
Checked: the shim checkpoint has the torch_dist layout and its `.metadata` unpickles on real torch with the
reference's keys, shapes and dtypes; tensor by tensor (all keys: model, optimizer buffers) it equals the reference
checkpoint of the same step within 1e-4 (fp32); B's step 2 equals A's step 2 within 1e-6 (resume under the shim
reproduces the uninterrupted run); C and D's step 2 equal the reference step 2 within 1e-4 (each backend loads the
other's checkpoint); the shim's HF export equals the reference export within 1e-4 per tensor (safetensors read
back by the parity tool), config.json with the same keys; megatron-core's own torch_dist strategy wrote the
shim's checkpoints (no megatron patch serves it; the same data files as the reference's: two per rank).
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers.megatron_runs import (PY, checkpoint_args, checkpoint_dir, model_and_data, run_parallel,
                                         tool_env, train_records)

pytestmark = [pytest.mark.slow, pytest.mark.shared]

STEPS = 2
COMMON = checkpoint_args(STEPS)
LAUNCH = [PY, "-m", "torch.distributed.launch", "--nproc_per_node", "1"]
RETIRED_PATCH = "torch_dist_strategies_without_dcp"  # megatron's own strategy runs on the facade instead


def _shim_cmd(*args: str) -> list:
    return [*LAUNCH, "--master_port", str(free_port()), "tools/train.py", *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Model, data, R and A (phase 1), then B, C and D (phase 2)."""
    root = tmp_path_factory.mktemp("megatron_ckpt_shim")
    model, data = model_and_data(root)
    base = ["--model_path", str(model), "--data_path", str(data), *COMMON]
    out = {k: root / k for k in "RABCD"}
    state = root / "patch_state.json"
    shim_env = tool_env(SHIM_BACKEND="mindspore", MEGATRON_PATCHES_STATE=str(state))
    logs = dict(zip("RA", run_parallel(
        ([PY, "tools/train.py", *base, "--output_path", str(out["R"])], tool_env(), 420),
        (_shim_cmd(*base, "--output_path", str(out["A"])), shim_env, 720))))
    step1 = {k: out[k] / "checkpoints" / "iter_0000001" for k in "RA"}
    cont = [*base, "--no_export"]  # continue to step 2 without saving
    cont[cont.index("--save_steps") + 1] = "0"
    logs.update(zip("BCD", run_parallel(
        (_shim_cmd(*cont, "--load", str(step1["A"]), "--output_path", str(out["B"])), tool_env(SHIM_BACKEND="mindspore"),
         600),
        (_shim_cmd(*cont, "--load", str(step1["R"]), "--output_path", str(out["C"])), tool_env(SHIM_BACKEND="mindspore"),
         600),
        ([PY, "tools/train.py", *cont, "--load", str(step1["A"]), "--output_path", str(out["D"])], tool_env(), 420))))
    return {**out, "logs": logs, "state": state}


def test_shim_checkpoint_layout_and_metadata_read_by_real_torch(runs):
    import torch  # real torch in the test process
    from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata

    assert not torch.__version__.endswith("+mindspore")
    assert (runs["A"] / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    for step in range(1, STEPS + 1):
        shim_dir, ref_dir = checkpoint_dir(runs["A"], step), checkpoint_dir(runs["R"], step)
        assert sorted(p.name for p in shim_dir.iterdir()) == sorted(p.name for p in ref_dir.iterdir()) == [
            ".metadata", "__0_0.distcp", "__0_1.distcp", "common.pt", "metadata.json"]
        assert json.loads((shim_dir / "metadata.json").read_text()) == json.loads(
            (ref_dir / "metadata.json").read_text())
        with open(shim_dir / ".metadata", "rb") as f:
            shim_md = pickle.load(f)
        with open(ref_dir / ".metadata", "rb") as f:
            ref_md = pickle.load(f)
        assert type(shim_md) is Metadata and shim_md.version == ref_md.version == "1.0.0"
        assert shim_md.state_dict_metadata.keys() == ref_md.state_dict_metadata.keys()
        for key, ref in ref_md.state_dict_metadata.items():
            got = shim_md.state_dict_metadata[key]
            assert type(got) is type(ref), key
            if isinstance(ref, TensorStorageMetadata):
                assert (got.size, got.properties, got.chunks) == (ref.size, ref.properties, ref.chunks), key
        assert {i.fqn for i in shim_md.storage_data} == {i.fqn for i in ref_md.storage_data}
        assert len(shim_md.all_local_plans) == 1
        common = torch.load(shim_dir / "common.pt", weights_only=False)
        assert common["iteration"] == step and common["data_position"]["consumed_samples"] == 2 * step


def test_shim_checkpoint_equals_reference_tensor_by_tensor(runs):
    from parity import compare_checkpoints, load_checkpoint
    from parity.checkpoints import format_checkpoint_report

    for step in range(1, STEPS + 1):
        shim_ck, ref_ck = load_checkpoint(checkpoint_dir(runs["A"], step)), load_checkpoint(checkpoint_dir(runs["R"], step))
        assert shim_ck.format == ref_ck.format == "torch_dist"
        cmp = compare_checkpoints(shim_ck, ref_ck, atol=1e-4, rtol=0.0)
        assert cmp.ok, format_checkpoint_report(cmp)
        names = [t.name for t in cmp.tensors]
        assert len(names) == len(ref_ck.tensors) > 10 and not cmp.only_in_a and not cmp.only_in_b
        assert any(n.startswith("optimizer.state.exp_avg_sq.") for n in names)  # optimizer state compared too
        assert all(t.diff is not None and t.diff.numel == int(np.prod(t.shape_a)) for t in cmp.tensors)
        assert shim_ck.non_tensors.keys() == ref_ck.non_tensors.keys() and "rng_state/shard_0.0.0_1.1.1" in \
            shim_ck.non_tensors
        if step > 1:  # the weights moved between the saves: not two copies of one state
            now = shim_ck.tensors["output_layer.weight"].load()
            earlier = load_checkpoint(checkpoint_dir(runs["A"], step - 1)).tensors["output_layer.weight"].load()
            assert not np.array_equal(now, earlier)


def test_facade_reader_reads_what_real_torch_reads(runs):
    """The facade's DCP reader (shim/torch/distributed/checkpoint) and real torch's DCP reader give the same keys,
    dtypes, shapes and values for the checkpoints both backends wrote."""
    from parity.torch_dist import open_torch_dist

    for run in ("A", "R"):
        d = checkpoint_dir(runs[run], STEPS)
        facade, real = open_torch_dist(d, backend="shim"), open_torch_dist(d, backend="torch")
        assert (facade.tensors, facade.objects, facade.files) == (real.tensors, real.objects, real.files)
        assert len(facade.tensors) > 10 and facade.objects
        for key in facade.tensors:
            np.testing.assert_array_equal(facade.load(key), real.load(key), err_msg=f"{run} {key}")


def test_parity_cli_compares_torch_dist_checkpoints(runs, capsys):
    """`python -m parity compare-checkpoints` reads torch_dist directories (the checkpoints root with its
    tracker file, or an iter_ directory): equal within 1e-4, and a default-tolerance mismatch is not hidden."""
    from parity.cli import main

    shim_root, ref_root = runs["A"] / "checkpoints", runs["R"] / "checkpoints"
    assert main(["compare-checkpoints", str(shim_root), str(ref_root), "--atol", "1e-4", "--rtol", "0"]) == 0
    out = capsys.readouterr().out
    assert "output_layer.weight" in out and "exp_avg_sq" in out
    assert main(["compare-checkpoints", str(checkpoint_dir(runs["A"], 1)), str(checkpoint_dir(runs["A"], STEPS)),
                 "--atol", "1e-4", "--rtol", "0"]) == 1  # step 1 vs step 2: the weights moved
    assert "MISMATCH" in capsys.readouterr().out


def test_resume_under_shim_reproduces_uninterrupted_run(runs):
    assert "loaded checkpoint" in runs["logs"]["B"] and "note:" not in runs["logs"]["B"]
    a, b = train_records(runs["A"]), train_records(runs["B"])
    assert sorted(b) == [2]
    for field in ("loss", "grad_norm", "lr"):
        assert abs(a[2][field] - b[2][field]) <= 1e-6, (field, a[2][field], b[2][field])
    assert (a[2]["consumed_samples"], a[2]["learnable_tokens"]) == (b[2]["consumed_samples"], b[2]["learnable_tokens"])


@pytest.mark.parametrize("run, saved_by", [("D", "mindspore"), ("C", "torch")])
def test_each_backend_loads_the_others_checkpoint(runs, run, saved_by):
    """D: real torch continues from the shim's step-1 checkpoint; C: the shim from real torch's. Step 2 matches
    the reference's step 2; every RNG state is restored (both backends hold torch's CPU generator state), so the
    load logs no RNG note."""
    log = runs["logs"][run]
    assert "loaded checkpoint" in log and "RNG states not restored" not in log, log[-3000:]
    ref, got = train_records(runs["R"]), train_records(runs[run])
    assert sorted(got) == [2]
    assert abs(got[2]["loss"] - ref[2]["loss"]) <= 1e-4, (got[2]["loss"], ref[2]["loss"])
    assert abs(got[2]["grad_norm"] - ref[2]["grad_norm"]) <= 1e-4 * ref[2]["grad_norm"]
    assert got[2]["lr"] == pytest.approx(ref[2]["lr"], rel=1e-9)


def test_shim_hf_export_equals_reference(runs):
    from parity import compare_checkpoints
    from parity.checkpoints import format_checkpoint_report

    cmp = compare_checkpoints(runs["A"], runs["R"], atol=1e-4, rtol=0.0)
    assert cmp.ok, format_checkpoint_report(cmp)
    assert len(cmp.tensors) >= 10 and not cmp.only_in_a and not cmp.only_in_b
    shim_cfg = json.loads((runs["A"] / "config.json").read_text())
    ref_cfg = json.loads((runs["R"] / "config.json").read_text())
    assert shim_cfg.keys() == ref_cfg.keys()


def test_megatron_own_torch_dist_strategy_saved_under_the_shim(runs):
    """No patch stands in for megatron's torch_dist strategy any more: the run's patch state lists none for it, and
    the checkpoint files are those megatron-core's FileSystemWriterAsync writes (checked in the layout test)."""
    state = json.loads(runs["state"].read_text())
    assert RETIRED_PATCH not in state["patches"]
    assert state["patches"]["param_gather_copies_into_params"]["applied"]  # the state file is this run's
