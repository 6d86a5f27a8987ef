"""Unit tests of the training building blocks (no process group in this process): batching, data order,
launcher environment, configuration and CLI, the shell script's command line, the CPU accelerator mapping.

The multi-process training runs (TP/PP/DP parity, resume, killed save, HF export) are in test_train_runs.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qwen_sft import batching, parallel, run_records
from qwen_sft.batching import (SFTSampleDataset, collate_micro_batch, global_batch_indices, masked_token_loss,
                               steps_per_epoch)
from qwen_sft.checkpointing import latest_checkpoint
from qwen_sft.training import TrainConfig

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import train as train_tool  # noqa: E402  (tools/train.py)


def _sample(ids, labels):
    return np.asarray(ids, dtype=np.int32), np.asarray(labels, dtype=np.int32)


# ------------------------------------------------------------------------------------------------ batching
def test_collate_shifts_pads_and_masks():
    a = _sample([10, 11, 12, 13, 14], [-100, -100, 12, 13, 14])
    b = _sample([20, 21, 22], [-100, 21, 22])
    batch = collate_micro_batch([a, b], pad_token_id=99, pad_to=5)
    assert batch["tokens"].dtype == torch.int64 and batch["tokens"].shape == (2, 5)
    assert batch["tokens"].tolist() == [[10, 11, 12, 13, 99], [20, 21, 99, 99, 99]]
    # labels[1:] for the real positions; masked and padded positions hold 0 with loss_mask 0
    assert batch["labels"].tolist() == [[0, 12, 13, 14, 0], [21, 22, 0, 0, 0]]
    assert batch["loss_mask"].tolist() == [[0, 1, 1, 1, 0], [1, 1, 0, 0, 0]]
    assert batch["loss_mask"].dtype == torch.float32
    assert batch["position_ids"].tolist() == [list(range(5))] * 2
    mask = batch["attention_mask"]
    assert mask.shape == (2, 1, 5, 5) and mask.dtype == torch.bool
    assert mask[0, 0].tolist() == [[j > i for j in range(5)] for i in range(5)]


def test_collate_default_pads_to_longest_and_rejects_bad_samples():
    batch = collate_micro_batch([_sample([1, 2, 3], [1, 2, 3]), _sample([4, 5], [4, 5])], pad_token_id=0)
    assert batch["tokens"].shape == (2, 2)
    with pytest.raises(ValueError, match="pad_to=1"):
        collate_micro_batch([_sample([1, 2, 3], [1, 2, 3])], pad_token_id=0, pad_to=1)
    with pytest.raises(ValueError, match="at least 2"):
        collate_micro_batch([_sample([1], [1])], pad_token_id=0)
    with pytest.raises(ValueError, match="3 ids but 2 labels"):
        collate_micro_batch([_sample([1, 2, 3], [1, 2])], pad_token_id=0)
    with pytest.raises(ValueError, match="empty"):
        collate_micro_batch([], pad_token_id=0)


def test_masked_token_loss_sums_learnable_tokens_only():
    losses = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    loss_sum, num, report = masked_token_loss(mask, losses)
    assert loss_sum.item() == 9.0 and num.item() == 3 and num.dtype == torch.int32
    assert report.tolist() == [9.0, 3.0]
    loss_sum.backward()
    assert losses.grad.tolist() == mask.tolist()


# ------------------------------------------------------------------------------------------------ data order
def test_global_batch_order_is_a_seeded_permutation_per_epoch():
    n, gbs, seed = 10, 3, 5
    assert steps_per_epoch(n, gbs) == 3  # 1 sample skipped per epoch
    epoch0 = np.concatenate([global_batch_indices(n, gbs, seed, s) for s in range(3)])
    expected = np.random.Generator(np.random.PCG64([seed, 0])).permutation(n)[:9]
    assert epoch0.tolist() == expected.tolist()
    assert len(set(epoch0.tolist())) == 9
    epoch1 = global_batch_indices(n, gbs, seed, 3)
    assert epoch1.tolist() == np.random.Generator(np.random.PCG64([seed, 1])).permutation(n)[:3].tolist()
    assert global_batch_indices(n, gbs, seed, 4).tolist() == global_batch_indices(n, gbs, seed, 4).tolist()
    assert global_batch_indices(n, gbs, seed + 1, 0).tolist() != global_batch_indices(n, gbs, seed, 0).tolist()
    with pytest.raises(ValueError, match="fewer than one global batch"):
        steps_per_epoch(2, 3)


def test_dp_slices_cover_the_global_batch_with_one_padded_length(tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    lengths = [3, 7, 4, 5, 2, 6]
    for kind in ("input_ids", "labels"):
        builder = IndexedDatasetBuilder(str(tmp_path / f"train_{kind}.bin"), dtype=np.int32)
        for i, n in enumerate(lengths):
            values = np.arange(n, dtype=np.int32) + 100 * i
            if kind == "labels":
                values[0] = -100
            builder.add_document(torch.from_numpy(values), [n])
        builder.finalize(str(tmp_path / f"train_{kind}.idx"))
    ds = SFTSampleDataset(tmp_path, "train")
    assert len(ds) == 6 and ds.lengths.tolist() == lengths
    indices = np.array([5, 1, 0, 2])
    seen = []
    for dp_rank in range(2):
        batches, stats = batching.step_micro_batches(ds, indices, dp_rank, 2, 1, pad_token_id=0)
        assert len(batches) == 2
        assert {tuple(b["tokens"].shape) for b in batches} == {(1, 6)}  # longest (7) - 1, every micro-batch
        seen += [int(b["tokens"][0, 0]) // 100 for b in batches]
        assert stats == {"learnable_tokens": 5 + 6 + 2 + 3, "total_tokens": 5 + 6 + 2 + 3,
                         "padded_tokens": 4 * 6, "seq_length_padded": 6}
    assert seen == [5, 1, 0, 2]
    with pytest.raises(ValueError, match="split"):
        SFTSampleDataset(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="valid_input_ids"):
        SFTSampleDataset(tmp_path, "valid")


# ------------------------------------------------------------------------------------------------ launcher env
def test_launch_env_prefers_launcher_rank_over_rank_id():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "RANK_ID": "0", "RANK_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}
    e = parallel.launch_env(env)
    assert (e.rank, e.world_size, e.local_rank, e.source, e.master_port) == (1, 2, 1, "RANK", 29511)


def test_launch_env_falls_back_to_rank_id_and_single_process():
    e = parallel.launch_env({"RANK_ID": "3", "RANK_SIZE": "4", "MASTER_PORT": "29512"})
    assert (e.rank, e.world_size, e.local_rank, e.source) == (3, 4, 3, "RANK_ID")
    e = parallel.launch_env({}, local_rank_arg=None)
    assert (e.rank, e.world_size, e.local_rank, e.source) == (0, 1, 0, "single-process")
    assert 0 < e.master_port < 65536
    e = parallel.launch_env({"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "1"}, local_rank_arg=1)
    assert e.local_rank == 1


@pytest.mark.parametrize("env, message", [
    ({"RANK": "0"}, "WORLD_SIZE is missing"),
    ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_PORT": "1"}, "0 <= rank < 2"),
    ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x'"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, ">= 1"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_PORT is not set"),
])
def test_launch_env_errors(env, message):
    with pytest.raises(ValueError, match=message):
        parallel.launch_env(env)


def test_backend_for_device():
    assert [parallel.backend_for_device(d) for d in ("cuda", "cpu", "npu")] == ["nccl", "gloo", "hccl"]
    with pytest.raises(ValueError, match="'xpu'"):
        parallel.backend_for_device("xpu")


# ------------------------------------------------------------------------------------------------ config / CLI
def test_cli_original_flags_and_aliases():
    cfg = train_tool.config_from_args([
        "--model_name", "qwen2.5-7b", "--model_path", "w", "--output_path", "o", "--data_path", "d",
        "--tokenizer_path", "t", "--seq_length", "4096", "--batch_size", "8", "--tp", "2", "--pp", "1",
        "--learning_rate", "2e-5", "--epochs", "3", "--save_steps", "1000", "--mixed_precision", "bf16",
        "--local-rank=1"])
    assert (cfg.global_batch_size, cfg.tensor_model_parallel_size, cfg.pipeline_model_parallel_size) == (8, 2, 1)
    assert (cfg.learning_rate, cfg.epochs, cfg.save_steps, cfg.mixed_precision) == (2e-5, 3, 1000, "bf16")
    assert cfg.local_rank == 1 and cfg.model_name == "qwen2.5-7b" and cfg.tokenizer_path == "t"
    cfg = train_tool.config_from_args(["--model_path", "w", "--output_path", "o", "--data_path", "d",
                                       "--global_batch_size", "16", "--micro_batch_size", "2", "--local_rank", "0",
                                       "--train_iters", "5", "--lr_warmup_fraction", "0.1", "--min_lr", "1e-6",
                                       "--weight_decay", "0.1", "--clip_grad", "0.5", "--seed", "3",
                                       "--log_interval", "2", "--eval_interval", "4", "--load", "ck", "--resume"])
    assert (cfg.global_batch_size, cfg.micro_batch_size, cfg.train_iters, cfg.local_rank) == (16, 2, 5, 0)
    assert (cfg.lr_warmup_fraction, cfg.min_lr, cfg.weight_decay, cfg.clip_grad) == (0.1, 1e-6, 0.1, 0.5)
    assert (cfg.seed, cfg.log_interval, cfg.eval_interval, cfg.load, cfg.resume) == (3, 2, 4, "ck", True)


@pytest.mark.parametrize("extra, message", [
    (["--mixed_precision", "fp8"], "invalid choice"),
    (["--batch_size", "6", "--micro_batch_size", "4"], "not divisible by micro_batch_size"),
    (["--min_lr", "1"], "min_lr"),
    (["--lr_warmup_fraction", "1.5"], "lr_warmup_fraction"),
    (["--tp", "0"], "tensor_model_parallel_size"),
])
def test_cli_rejects_bad_values(extra, message, capsys):
    with pytest.raises(SystemExit) as exc:
        train_tool.config_from_args(["--model_path", "w", "--output_path", "o", "--data_path", "d", *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_latest_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("abc")
    with pytest.raises(ValueError, match="an iteration number"):
        latest_checkpoint(tmp_path)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("5\n")
    with pytest.raises(ValueError, match="iter_0000005 does not exist"):
        latest_checkpoint(tmp_path)
    (tmp_path / "iter_0000005").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "iter_0000005"


def test_peak_memory_is_labelled():
    mem = run_records.peak_memory()
    assert list(mem) == (["peak_gpu_memory_mib"] if torch.cuda.is_available() else ["peak_rss_mib"])
    assert next(iter(mem.values())) > 10  # this process has imported torch: well over 10 MiB


# ------------------------------------------------------------------------------------------------ shell script
def test_tune_script_passes_every_flag(tmp_path):
    """The script's command reaches the program whole (the original lost every flag after `--tp 2 # ...`)."""
    stub = tmp_path / "python"
    stub.write_text("#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"$ARGS_OUT\"\n"
                    "env | grep -E '^(RANK_SIZE|RANK_ID)=' >> \"$ARGS_OUT\"\n")
    stub.chmod(0o755)
    out = tmp_path / "args.txt"
    env = dict(os.environ, PYTHON=str(stub), ARGS_OUT=str(out), RANK_SIZE="2", RANK_ID="0", TP="2", PP="1",
               MODEL_PATH="/m", DATA_PATH="/d", OUTPUT_PATH="/o", SEQ_LENGTH="512", BATCH_SIZE="4")
    script = REPO / "scripts" / "tune_qwen25_7b_4k_full_ms.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    r = subprocess.run(["bash", str(script), "--train_iters", "3"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    args = out.read_text().split("\n")
    assert args[:3] == ["-m", "torch.distributed.launch", "--nproc_per_node=2"]
    assert args[4] == str(REPO / "tools" / "train.py")
    pairs = dict(zip(args[5::2], args[6::2]))
    expected = {"--model_name": "qwen2.5-7b", "--model_path": "/m", "--output_path": "/o", "--data_path": "/d",
                "--tokenizer_path": "/m", "--seq_length": "512", "--batch_size": "4", "--tp": "2", "--pp": "1",
                "--learning_rate": "2e-5", "--epochs": "3", "--save_steps": "1000", "--mixed_precision": "bf16",
                "--train_iters": "3"}
    for flag, value in expected.items():
        assert pairs.get(flag) == value, (flag, pairs)
    assert "RANK_SIZE=2" in args


# ------------------------------------------------------------------------------------------------ CPU accelerator
_ACCEL_PROBE = r"""
import json, torch
from qwen_sft import cpu_accelerator
assert cpu_accelerator.enable() is True and cpu_accelerator.enable() is True
out = {}
out["zeros"] = str(torch.zeros(2, device="cuda").device)
out["index"] = str(torch.empty(2, device=torch.cuda.current_device()).device)
out["to"] = str(torch.ones(1).to("cuda:0").device)
out["cuda"] = str(torch.ones(1).cuda().device)
out["type"] = torch.ones(1).type()
out["int_type"] = torch.ones(1, dtype=torch.int64).type()
state = torch.cuda.get_rng_state()
a = torch.rand(3)
torch.cuda.set_rng_state(state)
out["rng_roundtrip"] = bool(torch.equal(a, torch.rand(3)))
torch.cuda.manual_seed(7); b = torch.rand(2); torch.manual_seed(7)
out["seed_is_cpu"] = bool(torch.equal(b, torch.rand(2)))
torch.cuda.synchronize()
out["stream"] = type(torch.cuda.current_stream()).__name__
print(json.dumps(out))
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the mapping is only installed on a CPU-only torch")
def test_cpu_accelerator_maps_cuda_to_cpu():
    r = subprocess.run([sys.executable, "-c", _ACCEL_PROBE], capture_output=True, text=True, timeout=120,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["zeros"] == out["index"] == out["to"] == out["cuda"] == "cpu"
    assert out["type"] == "torch.cuda.FloatTensor" and out["int_type"] == "torch.LongTensor"
    assert out["rng_roundtrip"] is True and out["seed_is_cpu"] is True
    assert out["stream"] == "Stream"


def test_train_config_validate_messages():
    cfg = TrainConfig(model_path="m", output_path="o", data_path="d")
    cfg.validate()
    for field, value, message in (("save_steps", -1, "save_steps"), ("train_iters", 0, "train_iters"),
                                  ("learning_rate", 0.0, "learning_rate"), ("clip_grad", -1.0, "clip_grad")):
        bad = TrainConfig(model_path="m", output_path="o", data_path="d", **{field: value})
        with pytest.raises(ValueError, match=message):
            bad.validate()


def test_rng_states_cross_backends_and_a_foreign_generator_state_is_named():
    """A checkpoint's torch and tracker RNG states saved by the shim restore on real torch (both are torch's
    5056-byte CPU Mersenne Twister state); a state of another size (a GPU's 16-byte Philox state) is left alone and
    the note names it."""
    from megatron.core import tensor_parallel

    from qwen_sft.checkpointing import rng_state, set_rng_state

    tracker = tensor_parallel.get_cuda_rng_tracker()
    tracker.reset()
    torch.manual_seed(7)
    tracker.set_states({"model-parallel-rng": torch.get_rng_state()})
    saved = rng_state()
    saved["backend"] = "mindspore"   # as the shim writes it
    expected = torch.rand(5)
    torch.manual_seed(99)
    assert set_rng_state(saved) is None
    assert torch.equal(torch.rand(5), expected)

    saved["tracker"] = {"model-parallel-rng": torch.zeros(16, dtype=torch.uint8)}
    torch.manual_seed(99)
    note = set_rng_state(saved)
    assert note is not None and "tracker 'model-parallel-rng'" in note and "16-byte" in note, note
    assert torch.equal(torch.rand(5), expected)                # the torch state still restored
    assert tracker.get_states()["model-parallel-rng"].numel() == 5056
    tracker.reset()


def test_vocab_padding_multiple_gives_back_a_checkpoints_padded_rows():
    """A checkpoint saved at TP=2 (151,808 rows for 151,665) resumes at TP=1 with 151,808 rows, and one saved at
    TP=1 (151,680) at TP=2 with 151,680, through Megatron's own padding rule; an indivisible TP is named."""
    from qwen_sft.sizes import padded_vocab_size, vocab_padding_multiple

    for rows, tp in ((151808, 1), (151680, 2), (151680, 1), (151808, 2)):
        m = vocab_padding_multiple(rows, 151665, tp, 128)
        assert padded_vocab_size(151665, tp, m) == rows, (rows, tp)
    assert vocab_padding_multiple(151680, 151665, 1, 128) == 128          # the run's own padding: unchanged
    with pytest.raises(ValueError, match="tensor_model_parallel_size=7"):
        vocab_padding_multiple(151680, 151665, 7, 128)
    with pytest.raises(ValueError, match="151600 rows"):
        vocab_padding_multiple(151600, 151665, 1, 128)
