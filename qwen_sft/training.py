"""Supervised fine-tuning of a megatron-core Qwen2 `GPTModel`: batching, loss, the loop, checkpoints, resume, metrics.

Data (the tokenized-dataset contract in CONTRIBUTING.md): `D/{split}_input_ids` and `D/{split}_labels`, megatron
indexed datasets of int32, one document per sample, labels unshifted with -100 where the token is not learned.
The model sees `tokens = input_ids[:-1]` and learns `labels[1:]` (next-token prediction, megatron's convention).

Global-batch order: for epoch e the training samples are permuted by `numpy.random.Generator(PCG64([seed, e]))`
and cut into global batches of `global_batch_size` samples (the last incomplete batch of an epoch is skipped and
counted). The order depends only on the seed and the epoch, never on TP/PP/DP: data-parallel rank r takes the
r-th contiguous slice of the global batch and cuts it into micro-batches, so loss curves compare across layouts.

Padding: every micro-batch of a global batch is padded (right, with the tokenizer's pad id, loss-masked) to the
longest sample *of that global batch*, not to `seq_length`. All micro-batches of a step then have one shape, which
the pipeline schedule's point-to-point buffers require (`seq_length` argument of the schedule = that length);
megatron's `variable_seq_lengths` (a shape exchange per micro-batch) is not used. Steps differ in length.

Loss: the mean over learnable tokens of the whole global batch. Each micro-batch's loss function returns
(sum of token losses, number of learnable tokens, report); with `calculate_per_token_loss=True` megatron-core's
schedules do not divide per micro-batch, and `finalize_model_grads` divides the gradients by the token count
all-reduced over data-parallel ranks — exact under gradient accumulation and DP.

Checkpoints: megatron-core `dist_checkpointing` (torch_dist) of the model's and the distributed optimizer's sharded
state dicts, every rank's RNG states, the scheduler, the data position and the step, under
`<output_path>/checkpoints/iter_XXXXXXX`. A save writes `iter_XXXXXXX.tmp` first; after every rank finished, rank 0
renames it and then replaces `latest_checkpointed_iteration.txt` (write-then-rename), so a killed save leaves the
previous checkpoint and the tracker file valid.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

import numpy as np
import torch

__all__ = [
    "TrainConfig",
    "SFTSampleDataset",
    "collate_micro_batch",
    "masked_token_loss",
    "token_losses",
    "global_batch_indices",
    "steps_per_epoch",
    "peak_memory",
    "latest_checkpoint",
    "train",
]

IGNORE_INDEX = -100
TRACKER_FILE = "latest_checkpointed_iteration.txt"
MIXED_PRECISION = ("bf16", "fp16", "fp32")


# ----------------------------------------------------------------------------------------------------- config
@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs (the CLI flags of tools/train.py, Megatron-LM names where they exist).

    Sizes are in samples (batch sizes) or tokens (seq_length); learning rates are absolute; `clip_grad` is the
    global L2 gradient-norm bound (0 disables clipping); `lr_warmup_fraction` is a fraction of the total steps.
    """

    model_path: str
    output_path: str
    data_path: str
    tokenizer_path: Optional[str] = None
    model_name: str = "qwen2.5"
    seq_length: int = 4096
    global_batch_size: int = 8
    micro_batch_size: int = 1
    tensor_model_parallel_size: int = 1
    pipeline_model_parallel_size: int = 1
    learning_rate: float = 2e-5
    min_lr: float = 0.0
    lr_warmup_fraction: float = 0.0
    weight_decay: float = 0.01
    clip_grad: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    epochs: int = 1
    train_iters: Optional[int] = None
    save_steps: int = 0
    mixed_precision: str = "bf16"
    seed: int = 1234
    log_interval: int = 1
    eval_interval: int = 0
    load: Optional[str] = None
    resume: bool = False
    make_vocab_size_divisible_by: int = 128
    backend: Optional[str] = None
    local_rank: Optional[int] = None
    export_hf: bool = True

    def validate(self) -> None:
        """Check ranges and combinations that do not need the world size.

        Raises:
            ValueError: naming the field and what was expected.
        """
        positive = ("seq_length", "global_batch_size", "micro_batch_size", "tensor_model_parallel_size",
                    "pipeline_model_parallel_size", "epochs", "log_interval", "make_vocab_size_divisible_by")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        for name in ("save_steps", "eval_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0 (0 = off), got {getattr(self, name)}")
        if self.train_iters is not None and self.train_iters < 1:
            raise ValueError(f"train_iters: expected >= 1, got {self.train_iters}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision: expected one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate}")
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ValueError(f"min_lr: expected 0 <= min_lr <= learning_rate={self.learning_rate}, got {self.min_lr}")
        if not 0.0 <= self.lr_warmup_fraction < 1.0:
            raise ValueError(f"lr_warmup_fraction: expected in [0, 1), got {self.lr_warmup_fraction}")
        if self.weight_decay < 0 or self.clip_grad < 0:
            raise ValueError(f"weight_decay and clip_grad: expected >= 0, got {self.weight_decay}, {self.clip_grad}")
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(f"global_batch_size={self.global_batch_size} is not divisible by "
                             f"micro_batch_size={self.micro_batch_size}")


# ----------------------------------------------------------------------------------------------------- data
class SFTSampleDataset:
    """One split of a tokenized SFT dataset written by tools/data_convert.py.

    Reads `<data_dir>/<split>_input_ids.{bin,idx}` and `<data_dir>/<split>_labels.{bin,idx}` with megatron-core's
    `IndexedDataset` (memory-mapped). Item i is `(input_ids, labels)`, two int32 numpy arrays of the same length
    (unshifted labels, -100 = not learned). `lengths` is an int64 array of every sample's token count.

    Raises:
        FileNotFoundError: a missing file (names it).
        ValueError: split not 'train'/'valid', or the two files disagree in sample count or a sample's length.
    """

    def __init__(self, data_dir: str | os.PathLike, split: str = "train"):
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        if split not in ("train", "valid"):
            raise ValueError(f"split: expected 'train' or 'valid', got {split!r}")
        self.data_dir = Path(data_dir)
        self.split = split
        prefixes = {name: self.data_dir / f"{split}_{name}" for name in ("input_ids", "labels")}
        for prefix in prefixes.values():
            for ext in (".bin", ".idx"):
                if not prefix.with_name(prefix.name + ext).is_file():
                    raise FileNotFoundError(
                        f"tokenized dataset file {prefix}{ext} not found (expected tools/data_convert.py output)")
        self._ids = IndexedDataset(str(prefixes["input_ids"]), mmap=True)
        self._labels = IndexedDataset(str(prefixes["labels"]), mmap=True)
        if len(self._ids) != len(self._labels):
            raise ValueError(f"{self.data_dir}: {split}_input_ids has {len(self._ids)} samples but "
                             f"{split}_labels has {len(self._labels)}")
        self.lengths = np.asarray(self._ids.sequence_lengths, dtype=np.int64)
        label_lengths = np.asarray(self._labels.sequence_lengths, dtype=np.int64)
        bad = np.nonzero(self.lengths != label_lengths)[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{self.data_dir}: sample {i} of {split} has {self.lengths[i]} ids but "
                             f"{label_lengths[i]} labels")

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(self._ids[index], dtype=np.int32)
        labels = np.asarray(self._labels[index], dtype=np.int32)
        return ids, labels

    def meta(self) -> dict:
        """`meta.json` of the dataset directory ({} when absent)."""
        path = self.data_dir / "meta.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def collate_micro_batch(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    pad_token_id: int,
    pad_to: Optional[int] = None,
) -> Dict[str, torch.Tensor]:
    """Shift, pad and mask a list of `(input_ids, labels)` samples into one megatron micro-batch.

    For a sample of n tokens, positions 0..n-2 take `tokens = input_ids[:-1]` and predict `labels[1:]`. Rows are
    right-padded to `pad_to` (default: the longest n-1 in `samples`) with `pad_token_id`; padded and -100 positions
    get loss_mask 0 and label 0 (a valid index for the vocabulary-parallel cross entropy).

    Returns:
        dict with `tokens` [b, s] int64, `labels` [b, s] int64, `loss_mask` [b, s] float32 (1 = learned),
        `attention_mask` [b, 1, s, s] bool (True = masked out; causal), `position_ids` [b, s] int64.

    Raises:
        ValueError: empty `samples`, a sample shorter than 2 tokens, ids/labels of different lengths, or a sample
            longer than `pad_to` + 1.
    """
    from qwen_sft.model import causal_attention_mask

    if not samples:
        raise ValueError("collate_micro_batch: samples is empty")
    lengths = []
    for i, (ids, labels) in enumerate(samples):
        if len(ids) != len(labels):
            raise ValueError(f"collate_micro_batch: sample {i} has {len(ids)} ids but {len(labels)} labels")
        if len(ids) < 2:
            raise ValueError(f"collate_micro_batch: sample {i} has {len(ids)} tokens; at least 2 are needed")
        lengths.append(len(ids) - 1)
    seq = max(lengths) if pad_to is None else int(pad_to)
    if max(lengths) > seq:
        raise ValueError(f"collate_micro_batch: a sample needs {max(lengths)} positions but pad_to={seq}")
    b = len(samples)
    tokens = np.full((b, seq), pad_token_id, dtype=np.int64)
    labels_out = np.full((b, seq), IGNORE_INDEX, dtype=np.int64)
    for row, (ids, labels) in enumerate(samples):
        n = lengths[row]
        tokens[row, :n] = ids[:-1]
        labels_out[row, :n] = labels[1:]
    loss_mask = labels_out != IGNORE_INDEX
    labels_out[~loss_mask] = 0
    return {
        "tokens": torch.from_numpy(tokens),
        "labels": torch.from_numpy(labels_out),
        "loss_mask": torch.from_numpy(loss_mask.astype(np.float32)),
        "attention_mask": causal_attention_mask(seq, b),
        "position_ids": torch.arange(seq, dtype=torch.int64).unsqueeze(0).expand(b, seq).contiguous(),
    }


def token_losses(logits: torch.Tensor, labels: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Per-token cross entropy over the model's real vocabulary, from tensor-parallel logits.

    Megatron pads the output layer to `padded_vocab_size` rows (a multiple of TP × make_vocab_size_divisible_by,
    so it changes with TP); those rows give logit 0 and would enter the softmax. Here every column at or beyond
    `vocab_size` (the HF `config.json` vocab_size) is set to -inf first, so the loss equals HF's
    `Qwen2ForCausalLM` loss and does not depend on the TP degree. The cross entropy is megatron-core's
    `vocab_parallel_cross_entropy` (computed in fp32).

    Args:
        logits: [b, s, padded_vocab_size / TP] this TP rank's slice (`GPTModel(...)` without labels).
        labels: [b, s] int64 target ids (< vocab_size; masked positions may hold any valid id, e.g. 0).
        vocab_size: the real vocabulary size (HF `vocab_size`).

    Returns:
        [b, s] float32 losses in nats.

    Raises:
        ValueError: logits and labels disagree in [b, s].
    """
    from megatron.core import parallel_state, tensor_parallel

    if logits.shape[:2] != labels.shape:
        raise ValueError(f"token_losses: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in [b, s]")
    local = logits.shape[-1]
    first = parallel_state.get_tensor_model_parallel_rank() * local
    logits = logits.float()
    if first + local > vocab_size:
        column = torch.arange(first, first + local, device=logits.device)
        logits = logits.masked_fill(column >= vocab_size, float("-inf"))
    # megatron's kernel is documented for [s, b, v] / [s, b] but only flattens the leading dimensions, so [b, s]
    # works as is (no transposed copies of the large logits tensor).
    return tensor_parallel.vocab_parallel_cross_entropy(logits, labels)


def masked_token_loss(loss_mask: torch.Tensor, output_tensor: torch.Tensor):
    """Loss function for megatron-core's schedules with `calculate_per_token_loss=True`.

    Args:
        loss_mask: [b, s] float, 1 where the token is learned.
        output_tensor: [b, s] per-token cross-entropy (nats) from `GPTModel(..., labels=...)`.

    Returns:
        `(loss_sum, num_tokens, report)`: the summed masked loss (fp32 scalar, what backward runs on), the number of
        learnable tokens (int32 scalar; the schedule sums it and `finalize_model_grads` divides gradients by the
        DP-wide total), and `report = tensor([loss_sum, num_tokens])` (fp32, detached) for logging.
    """
    losses = output_tensor.float()
    mask = loss_mask.to(losses.dtype).reshape(losses.shape)
    loss_sum = torch.sum(losses * mask)
    num_tokens = mask.sum().to(torch.int)
    report = torch.stack([loss_sum.detach().clone(), num_tokens.detach().float()])
    return loss_sum, num_tokens, report


def steps_per_epoch(num_samples: int, global_batch_size: int) -> int:
    """Whole global batches in one epoch (the incomplete last batch is skipped).

    Raises:
        ValueError: fewer samples than one global batch.
    """
    if num_samples < global_batch_size:
        raise ValueError(f"the training split has {num_samples} samples, fewer than one global batch "
                         f"({global_batch_size}); lower --global_batch_size/--batch_size")
    return num_samples // global_batch_size


def global_batch_indices(num_samples: int, global_batch_size: int, seed: int, step: int) -> np.ndarray:
    """Sample indices of the global batch of 0-based optimizer step `step` (independent of TP/PP/DP).

    Epoch `e = step // steps_per_epoch`; the epoch's order is `Generator(PCG64([seed, e])).permutation(n)`; the
    batch is its slice `[b * gbs, (b + 1) * gbs)` with `b = step % steps_per_epoch`.

    Returns:
        int64 array of `global_batch_size` indices.
    """
    per_epoch = steps_per_epoch(num_samples, global_batch_size)
    epoch, b = divmod(step, per_epoch)
    order = np.random.Generator(np.random.PCG64([seed, epoch])).permutation(num_samples)
    return order[b * global_batch_size:(b + 1) * global_batch_size].astype(np.int64)


def _step_micro_batches(dataset: SFTSampleDataset, indices: np.ndarray, dp_rank: int, dp_size: int,
                        micro_batch_size: int, pad_token_id: int) -> tuple[list, dict]:
    """This DP rank's micro-batches of one global batch, all padded to the global batch's longest sample."""
    lengths = dataset.lengths[indices]
    pad_len = int(lengths.max()) - 1
    per_rank = len(indices) // dp_size
    mine = indices[dp_rank * per_rank:(dp_rank + 1) * per_rank]
    batches = []
    for start in range(0, per_rank, micro_batch_size):
        samples = [dataset[int(i)] for i in mine[start:start + micro_batch_size]]
        batches.append(collate_micro_batch(samples, pad_token_id, pad_to=pad_len))
    learnable = 0
    for i in indices:
        learnable += int(np.count_nonzero(dataset[int(i)][1][1:] != IGNORE_INDEX))
    stats = {
        "learnable_tokens": learnable,
        "total_tokens": int((lengths - 1).sum()),
        "padded_tokens": int(len(indices) * pad_len),
        "seq_length_padded": pad_len,
    }
    return batches, stats


# ----------------------------------------------------------------------------------------------------- utilities
def peak_memory() -> dict:
    """Peak memory of this rank, labelled by what it measures.

    Returns:
        `{"peak_gpu_memory_mib": float}` (torch.cuda.max_memory_allocated) on a CUDA device, else
        `{"peak_rss_mib": float}`: the process's peak resident set size (getrusage ru_maxrss; Linux reports KiB).
    """
    if torch.cuda.is_available():
        return {"peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20}
    import resource

    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_fingerprint(model_path: Path) -> dict:
    """sha256 over config.json and the weight files (content when they total <= 1 GiB, else names and sizes)."""
    files = sorted(p for p in model_path.rglob("*") if p.is_file() and (
        p.suffix in (".safetensors", ".bin", ".pt", ".json") or p.name == "latest_checkpointed_iteration.txt"))
    total = sum(p.stat().st_size for p in files)
    h = hashlib.sha256()
    kind = "content" if total <= 2**30 else "names_and_sizes"
    for p in files:
        h.update(str(p.relative_to(model_path)).encode())
        h.update(str(p.stat().st_size).encode())
        if kind == "content":
            h.update(_sha256_file(p).encode())
    return {"sha256": h.hexdigest(), "kind": kind, "files": len(files), "bytes": total}


def _package_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _backend_name() -> str:
    """'mindspore' when `torch` is the shim's facade (its version ends in "+mindspore"), else 'torch': the backend
    recorded in the manifest and with the RNG states a checkpoint holds."""
    return "mindspore" if str(getattr(torch, "__version__", "")).endswith("+mindspore") else "torch"


def latest_checkpoint(checkpoints_dir: str | os.PathLike) -> Optional[Path]:
    """The checkpoint directory named by `<checkpoints_dir>/latest_checkpointed_iteration.txt`, or None.

    Raises:
        ValueError: the tracker file does not hold an integer, or names a missing directory.
    """
    root = Path(checkpoints_dir)
    tracker = root / TRACKER_FILE
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    try:
        iteration = int(text)
    except ValueError:
        raise ValueError(f"{tracker}: expected an iteration number, found {text!r}") from None
    path = root / f"iter_{iteration:07d}"
    if not path.is_dir():
        raise ValueError(f"{tracker} names iteration {iteration} but {path} does not exist")
    return path


# ----------------------------------------------------------------------------------------------------- trainer
class _Trainer:
    """One rank's training run. Built by `train()`; not part of the public API."""

    def __init__(self, cfg: TrainConfig):
        from qwen_sft import parallel

        cfg.validate()
        self.cfg = cfg
        self.layout = parallel.init_distributed(
            cfg.tensor_model_parallel_size, cfg.pipeline_model_parallel_size, seed=cfg.seed,
            backend=cfg.backend, local_rank_arg=cfg.local_rank)
        lay = self.layout
        if cfg.global_batch_size % (cfg.micro_batch_size * lay.data_parallel_size):
            raise ValueError(
                f"global_batch_size={cfg.global_batch_size} must be divisible by micro_batch_size × "
                f"data_parallel_size = {cfg.micro_batch_size} × {lay.data_parallel_size}")
        self.num_microbatches = cfg.global_batch_size // (cfg.micro_batch_size * lay.data_parallel_size)
        self.output = Path(cfg.output_path)
        self.ckpt_root = self.output / "checkpoints"
        if lay.rank == 0:
            self.ckpt_root.mkdir(parents=True, exist_ok=True)
        self.is_logger = lay.rank == 0

        self.train_data = SFTSampleDataset(cfg.data_path, "train")
        self.valid_data = None
        if cfg.eval_interval:
            self.valid_data = SFTSampleDataset(cfg.data_path, "valid")
        too_long = int(np.count_nonzero(self.train_data.lengths > cfg.seq_length))
        if too_long:
            raise ValueError(f"{too_long} training samples are longer than --seq_length {cfg.seq_length}; "
                             f"convert the data with the same --seq_length")
        self.per_epoch = steps_per_epoch(len(self.train_data), cfg.global_batch_size)
        self.total_steps = cfg.train_iters or cfg.epochs * self.per_epoch
        self._build_model()
        self._build_optimizer()
        self.step = 0
        self._load_if_requested()

    # ---------------------------------------------------------------- model
    def _params_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.cfg.mixed_precision]

    def _build_model(self) -> None:
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.transformer.module import Float16Module

        from qwen_sft import model as qmodel

        cfg, lay = self.cfg, self.layout
        self.hf_config, hf_state, self.loaded_kind = self._read_model(cfg.model_path)
        self.padded_vocab_size = qmodel.padded_vocab_size(
            int(self.hf_config["vocab_size"]), cfg.tensor_model_parallel_size, cfg.make_vocab_size_divisible_by)
        mp = cfg.mixed_precision
        self.tconfig = qmodel.transformer_config_from_hf(
            self.hf_config,
            tensor_model_parallel_size=cfg.tensor_model_parallel_size,
            pipeline_model_parallel_size=cfg.pipeline_model_parallel_size,
            params_dtype=self._params_dtype(), bf16=mp == "bf16", fp16=mp == "fp16",
            calculate_per_token_loss=True,
        )
        gpt = qmodel.build_gpt_model(
            self.hf_config, self.tconfig, padded_vocab_size=self.padded_vocab_size, seq_length=cfg.seq_length,
            pre_process=lay.is_first_stage, post_process=lay.is_last_stage)
        shard = hf_state[(lay.tp_rank, lay.pp_rank)]
        missing, unexpected = gpt.load_state_dict(shard, strict=False)
        missing = [k for k in missing if not k.endswith("_extra_state")]
        if missing or unexpected:
            raise ValueError(f"weights from {cfg.model_path} do not fit the model (TP rank {lay.tp_rank}, "
                             f"PP rank {lay.pp_rank}): missing {missing[:5]}, unexpected {list(unexpected)[:5]}")
        del hf_state
        self.gpt = gpt
        module = Float16Module(self.tconfig, gpt) if mp in ("bf16", "fp16") else gpt
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=True,
            # fp16: an overflow is expected now and then and handled by the dynamic loss scaler (the step is
            # skipped and the scale lowered), so the NaN check that would abort the run is for bf16/fp32 only.
            check_for_nan_in_grad=mp != "fp16", average_in_collective=False)
        self.model = DistributedDataParallel(self.tconfig, ddp_config, module)
        # Make every DP replica start from identical weights (they were loaded identically; this is megatron's
        # own consistency step).
        self.model.broadcast_params()

    def _read_model(self, model_path: str):
        """(hf_config, {(tp, pp): megatron state dict}, kind) from an HF directory or a converted checkpoint.

        Every rank reads the whole checkpoint and keeps its own shard (host memory per rank ≈ 2 × the model's
        size while loading: ~30 GB for a bf16 7B model; the original workflow's 512 GB hosts have room for 4–8).
        """
        from qwen_sft import convert

        from qwen_sft import hf_io

        cfg = self.cfg
        path = hf_io.resolve_model_path(model_path)  # a local folder, or a ModelScope id resolved (or a clear error)
        hf_config, hf_state = convert.load_any_checkpoint(str(path))
        shards = convert.hf_to_megatron(hf_state, hf_config, cfg.tensor_model_parallel_size,
                                        cfg.pipeline_model_parallel_size, cfg.make_vocab_size_divisible_by)
        kind = "megatron" if convert.is_megatron_checkpoint(path) else "hf"
        self.model_dir = Path(path)
        return dict(hf_config), shards, kind

    # ---------------------------------------------------------------- optimizer
    def _build_optimizer(self) -> None:
        from megatron.core.distributed import finalize_model_grads
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

        cfg = self.cfg
        mp = cfg.mixed_precision
        ocfg = OptimizerConfig(
            optimizer="adam", lr=cfg.learning_rate, min_lr=cfg.min_lr, weight_decay=cfg.weight_decay,
            adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2, adam_eps=cfg.adam_eps,
            clip_grad=cfg.clip_grad, bf16=mp == "bf16", fp16=mp == "fp16", params_dtype=self._params_dtype(),
            use_distributed_optimizer=True, decoupled_weight_decay=True,
            # The backward runs on a token *sum* (see masked_token_loss), hundreds of times a mean: start the
            # fp16 dynamic loss scale lower than megatron's 2**32 default.
            initial_loss_scale=2.0**8 if mp == "fp16" else None)
        self.optimizer = get_megatron_optimizer(ocfg, [self.model])
        warmup = int(round(cfg.lr_warmup_fraction * self.total_steps))
        self.scheduler = OptimizerParamScheduler(
            self.optimizer, init_lr=0.0, max_lr=cfg.learning_rate, min_lr=cfg.min_lr,
            lr_warmup_steps=warmup, lr_decay_steps=self.total_steps, lr_decay_style="cosine",
            start_wd=cfg.weight_decay, end_wd=cfg.weight_decay, wd_incr_steps=self.total_steps,
            wd_incr_style="constant")
        self.tconfig.no_sync_func = self.model.no_sync
        self.tconfig.finalize_model_grads_func = finalize_model_grads
        self.tconfig.grad_scale_func = self.optimizer.scale_loss

    # ---------------------------------------------------------------- checkpoints
    def _sharded_state(self, is_loading: bool) -> dict:
        from megatron.core.dist_checkpointing.mapping import ShardedObject

        lay = self.layout
        model_sd = self.gpt.sharded_state_dict()
        state = {
            "model": model_sd,
            # 'dp_reshardable': each rank's optimizer buffers as their own shards (megatron-core 0.16.1's
            # default 'fully_sharded_model_space' relies on ShardedTensor.flattened_range, which its torch_dist
            # saver rejects). The format follows the distributed optimizer's buffers; resuming under a different
            # TP/PP/DP layout than the one that saved is not tested here.
            "optimizer": self.optimizer.sharded_state_dict(
                model_sd, is_loading=is_loading, metadata={"distrib_optim_sharding_type": "dp_reshardable"}),
            "rng_state": ShardedObject(
                "rng_state", None if is_loading else self._rng_state(),
                (lay.pipeline_model_parallel_size, lay.tensor_model_parallel_size, lay.data_parallel_size),
                (lay.pp_rank, lay.tp_rank, lay.dp_rank), replica_id=0),
            "iteration": self.step,
            "scheduler": self.scheduler.state_dict(),
            "data_position": {"step": self.step, "consumed_samples": self.step * self.cfg.global_batch_size,
                              "epoch": self.step // self.per_epoch, "seed": self.cfg.seed},
            "train_config": dataclasses.asdict(self.cfg),
        }
        return state

    @staticmethod
    def _rng_state() -> dict:
        from megatron.core import tensor_parallel

        return {
            "backend": _backend_name(),
            "random": __import__("random").getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "tracker": tensor_parallel.get_cuda_rng_tracker().get_states(),
        }

    @staticmethod
    def _set_rng_state(state: dict) -> Optional[str]:
        """Restore the checkpoint's RNG states. The torch/accelerator/megatron-tracker generator states are opaque
        per backend (real torch: Mersenne Twister states; the shim: NumPy Philox states), so a checkpoint saved by
        the other backend restores only Python's and NumPy's; returns a note saying so (None when all were)."""
        from megatron.core import tensor_parallel

        __import__("random").setstate(state["random"])
        np.random.set_state(state["numpy"])
        saved_backend = state.get("backend", _backend_name())
        if saved_backend != _backend_name():
            return (f"the checkpoint's torch/accelerator RNG states come from the {saved_backend} backend and cannot "
                    f"seed {_backend_name()}'s generators: Python and NumPy RNG states restored, torch/accelerator/"
                    f"tracker generators keep this run's seeding (dropout masks differ from the saving run)")
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
        tensor_parallel.get_cuda_rng_tracker().set_states(state["tracker"])
        return None

    def save_checkpoint(self) -> Path:
        """Save step `self.step` atomically; returns the final directory."""
        import torch.distributed as dist
        from megatron.core import dist_checkpointing

        final = self.ckpt_root / f"iter_{self.step:07d}"
        tmp = self.ckpt_root / f"iter_{self.step:07d}.tmp"
        if self.layout.rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        dist.barrier()
        t0 = time.perf_counter()
        dist_checkpointing.save(self._sharded_state(is_loading=False), str(tmp))
        dist.barrier()
        if self.layout.rank == 0:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            tracker_tmp = self.ckpt_root / (TRACKER_FILE + ".tmp")
            tracker_tmp.write_text(f"{self.step}\n")
            os.replace(tracker_tmp, self.ckpt_root / TRACKER_FILE)
            self._log(f"saved checkpoint {final} in {time.perf_counter() - t0:.2f} s")
        dist.barrier()
        return final

    def _init_empty_optimizer_state(self) -> None:
        """Give every parameter an AdamW state (step 0, zero moments) so the checkpoint can be loaded into it.

        megatron-core 0.16.1's DistributedOptimizer.state_dict() (used to build the loading template) requires a
        'step' in every parameter's state when torch.optim.AdamW stands in for TE/Apex Adam, which exists only
        after a first step. The checkpoint then overwrites these values.
        """
        optimizers = getattr(self.optimizer, "chained_optimizers", [self.optimizer])
        for opt in optimizers:
            inner = opt.optimizer
            for group in inner.param_groups:
                for p in group["params"]:
                    if len(inner.state[p]) == 0:
                        inner.state[p]["step"] = torch.tensor(0.0)
                        inner.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                        inner.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _restore_adam_steps(self, optimizer_state: Any) -> None:
        """Set every parameter's AdamW 'step' to the checkpoint's value, one tensor per parameter.

        With torch.optim.AdamW standing in for TE/Apex Adam, megatron-core 0.16.1 keeps the step count only in the
        saved param_groups, and its DistributedOptimizer.load_state_dict does not bring it back into the per-param
        state once that state exists (it stays at the placeholder 0 of `_init_empty_optimizer_state`, and is one
        tensor shared by all parameters, which AdamW would advance once per parameter). Either changes Adam's bias
        correction, so the resumed curve would drift from the uninterrupted one from the second resumed step on.

        Raises:
            ValueError: the checkpoint holds no step, or different steps in different param groups.
        """
        optimizers = getattr(self.optimizer, "chained_optimizers", [self.optimizer])
        states = [optimizer_state] if len(optimizers) == 1 else [optimizer_state[i] for i in range(len(optimizers))]
        for opt, saved in zip(optimizers, states):
            steps = {g.get("step") for g in saved["optimizer"]["param_groups"]}
            if len(steps) != 1 or None in steps:
                raise ValueError(f"checkpoint optimizer state: expected one AdamW step count, found {steps}")
            step = float(steps.pop())
            for state in opt.optimizer.state.values():
                state["step"] = torch.tensor(step, dtype=torch.float32)

    def _load_if_requested(self) -> None:
        from megatron.core import dist_checkpointing

        cfg = self.cfg
        if cfg.load:
            source = Path(cfg.load)
            path = latest_checkpoint(source) if (source / TRACKER_FILE).is_file() else source
            if path is None or not (path / "metadata.json").is_file():
                raise FileNotFoundError(f"--load {cfg.load}: no megatron-core distributed checkpoint there "
                                        f"(expected {TRACKER_FILE} or a checkpoint directory with metadata.json)")
        elif cfg.resume:
            path = latest_checkpoint(self.ckpt_root)
            if path is None:
                self._log(f"--resume: no checkpoint under {self.ckpt_root}; starting from step 0")
                return
        else:
            return
        self._init_empty_optimizer_state()
        state = dist_checkpointing.load(self._sharded_state(is_loading=True), str(path))
        with torch.no_grad():  # fp32 main params are views of the (leaf) model params
            self.gpt.load_state_dict(state["model"], strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
            self._restore_adam_steps(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng_note = self._set_rng_state(state["rng_state"])
        if rng_note:
            self._log(f"note: {rng_note}")
        self.step = int(state["iteration"])
        saved_seed = state["data_position"]["seed"]
        if saved_seed != cfg.seed:
            raise ValueError(f"checkpoint {path} was trained with --seed {saved_seed}; resuming with --seed "
                             f"{cfg.seed} would change the data order")
        self._log(f"loaded checkpoint {path} (step {self.step}, consumed_samples "
                  f"{state['data_position']['consumed_samples']})")

    # ---------------------------------------------------------------- steps
    def _log(self, message: str) -> None:
        if self.is_logger:
            print(f"[train] {message}", flush=True)

    def _pad_token_id(self) -> int:
        for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
            value = self.hf_config.get(key)
            if isinstance(value, int):
                return value
        return 0

    def _run_schedule(self, batches: list, seq_len: int, forward_only: bool):
        from megatron.core.pipeline_parallel import get_forward_backward_func

        vocab_size = int(self.hf_config["vocab_size"])

        def loss_func(labels, loss_mask, logits):
            return masked_token_loss(loss_mask, token_losses(logits, labels, vocab_size))

        def forward_step(data_iterator: Iterator, model):
            batch = next(data_iterator)
            output = model(batch["tokens"], batch["position_ids"], batch["attention_mask"])
            return output, partial(loss_func, batch["labels"], batch["loss_mask"])

        fwd_bwd = get_forward_backward_func()
        return fwd_bwd(
            forward_step_func=forward_step, data_iterator=iter(batches), model=[self.model],
            num_microbatches=len(batches), seq_length=seq_len, micro_batch_size=self.cfg.micro_batch_size,
            forward_only=forward_only)

    def _reduce_loss(self, reports: list) -> tuple[float, int]:
        """(mean loss over learnable tokens of the global batch, their count), identical on every rank."""
        import torch.distributed as dist

        totals = torch.zeros(2, dtype=torch.float64)
        if self.layout.is_last_stage and self.layout.tp_rank == 0:
            for r in reports:
                totals += r.double()
        dist.all_reduce(totals)
        loss_sum, tokens = float(totals[0]), int(totals[1])
        return (loss_sum / tokens if tokens else float("nan")), tokens

    def train_step(self) -> dict:
        """One optimizer step on the global batch of `self.step`; returns its metrics (step is 1-based)."""
        cfg, lay = self.cfg, self.layout
        indices = global_batch_indices(len(self.train_data), cfg.global_batch_size, cfg.seed, self.step)
        batches, stats = _step_micro_batches(self.train_data, indices, lay.dp_rank, lay.data_parallel_size,
                                             cfg.micro_batch_size, self._pad_token_id())
        if stats["learnable_tokens"] == 0:
            raise ValueError(f"step {self.step + 1}: the global batch has no learnable token")
        t0 = time.perf_counter()
        self.model.zero_grad_buffer()
        self.optimizer.zero_grad()
        reports = self._run_schedule(batches, stats["seq_length_padded"], forward_only=False)
        ok, grad_norm, _ = self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        if ok:
            self.scheduler.step(increment=1)
        loss, learned = self._reduce_loss(reports)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        step_time = time.perf_counter() - t0
        if learned != stats["learnable_tokens"]:
            raise RuntimeError(f"step {self.step + 1}: the loss counted {learned} learnable tokens, the data "
                               f"{stats['learnable_tokens']}")
        self.step += 1
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": (self.step - 1) // self.per_epoch,
            "consumed_samples": self.step * cfg.global_batch_size,
            "loss": loss,
            "lr": float(lr),
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "skipped": not ok,
            **stats,
            "step_time_s": step_time,
            "learnable_tokens_per_s": stats["learnable_tokens"] / step_time,
            "total_tokens_per_s": stats["total_tokens"] / step_time,
            **peak_memory(),
        }
        if cfg.mixed_precision == "fp16":
            record["loss_scale"] = float(self.optimizer.get_loss_scale())
        return record

    def evaluate(self) -> dict:
        """Mean loss over the learnable tokens of the whole valid split (forward only)."""
        cfg, lay = self.cfg, self.layout
        data = self.valid_data
        gbs = cfg.global_batch_size
        loss_sum, tokens = 0.0, 0
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(data) - len(data) % gbs, gbs):
                indices = np.arange(start, start + gbs)
                batches, stats = _step_micro_batches(data, indices, lay.dp_rank, lay.data_parallel_size,
                                                     cfg.micro_batch_size, self._pad_token_id())
                reports = self._run_schedule(batches, stats["seq_length_padded"], forward_only=True)
                mean, count = self._reduce_loss(reports)
                loss_sum += mean * count
                tokens += count
        self.model.train()
        valid_loss = loss_sum / tokens if tokens else float("nan")
        return {"kind": "eval", "step": self.step, "valid_loss": valid_loss,
                "valid_ppl": math.exp(valid_loss) if tokens else float("nan"), "valid_tokens": tokens,
                "valid_samples_used": len(data) - len(data) % gbs}

    # ---------------------------------------------------------------- run
    def write_manifest(self) -> None:
        if not self.is_logger:
            return
        import megatron.core

        cfg, lay = self.cfg, self.layout
        meta_path = Path(cfg.data_path) / "meta.json"
        backend = _backend_name()
        manifest = {
            "backend": backend,
            "versions": {
                "python": platform.python_version(),
                "torch": getattr(torch, "__version__", None),
                "megatron_core": getattr(megatron.core, "__version__", _package_version("megatron-core")),
                "numpy": np.__version__,
                "mindspore": _package_version("mindspore"),
                "transformers": _package_version("transformers"),
            },
            "device": {"type": lay.device.type, "name": (torch.cuda.get_device_name(lay.device)
                                                         if lay.device.type == "cuda" else platform.processor()),
                       "process_group_backend": lay.backend, "hostname": platform.node()},
            "seed": cfg.seed,
            "parallel": {"world_size": lay.world_size, "tensor_model_parallel_size": lay.tensor_model_parallel_size,
                         "pipeline_model_parallel_size": lay.pipeline_model_parallel_size,
                         "data_parallel_size": lay.data_parallel_size, "num_microbatches": self.num_microbatches},
            "data": {"path": str(Path(cfg.data_path).resolve()), "train_samples": len(self.train_data),
                     "steps_per_epoch": self.per_epoch,
                     "skipped_per_epoch": len(self.train_data) - self.per_epoch * cfg.global_batch_size,
                     "meta_sha256": _sha256_file(meta_path) if meta_path.is_file() else None},
            "model": {"path": str(self.model_dir.resolve()), "kind": self.loaded_kind,
                      "padded_vocab_size": self.padded_vocab_size,
                      "fingerprint": _model_fingerprint(self.model_dir)},
            "total_steps": self.total_steps,
            "start_step": self.step,
            "argv": sys.argv,
            "config": dataclasses.asdict(cfg),
        }
        self.output.mkdir(parents=True, exist_ok=True)
        (self.output / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")

    def run(self) -> list[dict]:
        cfg = self.cfg
        self.write_manifest()
        records = []
        metrics_path = self.output / "metrics.jsonl"
        if self.is_logger and metrics_path.exists():
            # A fresh run starts a new file; a resumed one keeps the records up to the checkpoint's step and drops
            # those of the interrupted tail, so the file reads as one uninterrupted run.
            kept = [line for line in metrics_path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and self.step and json.loads(line).get("step", 0) <= self.step]
            metrics_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self._log(f"{self.total_steps} steps ({self.per_epoch} per epoch), global batch {cfg.global_batch_size} "
                  f"= {self.num_microbatches} micro-batches × {cfg.micro_batch_size} × DP "
                  f"{self.layout.data_parallel_size}; TP {cfg.tensor_model_parallel_size} PP "
                  f"{cfg.pipeline_model_parallel_size}; {cfg.mixed_precision}")
        while self.step < self.total_steps:
            record = self.train_step()
            records.append(record)
            self._emit(record, metrics_path)
            if cfg.save_steps and (self.step % cfg.save_steps == 0 or self.step == self.total_steps):
                self.save_checkpoint()
            if cfg.eval_interval and self.step % cfg.eval_interval == 0:
                self._emit(self.evaluate(), metrics_path)
        if cfg.export_hf:
            self.export_hf()
        return records

    def _emit(self, record: dict, metrics_path: Path) -> None:
        if not self.is_logger:
            return
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if record["kind"] == "eval":
            self._log(f"step {record['step']} | valid loss {record['valid_loss']:.6f} | "
                      f"valid ppl {record['valid_ppl']:.4f}")
            return
        if record["step"] % self.cfg.log_interval and record["step"] != self.total_steps:
            return
        mem = ", ".join(f"{k} {v:.1f}" for k, v in record.items() if k.startswith("peak_"))
        gn = record["grad_norm"]
        self._log(f"step {record['step']}/{self.total_steps} | loss {record['loss']:.6f} | lr {record['lr']:.3e} | "
                  f"grad norm {gn if gn is None else f'{gn:.4f}'} | learnable tokens/s "
                  f"{record['learnable_tokens_per_s']:.1f} | total tokens/s {record['total_tokens_per_s']:.1f} | "
                  f"step time {record['step_time_s']:.3f} s | {mem}")

    def export_hf(self) -> None:
        """Gather every TP/PP shard on rank 0, convert to HF and write `<output_path>` (with tokenizer files)."""
        import torch.distributed as dist

        from qwen_sft import convert, hf_io

        lay = self.layout
        tmp = self.output / ".export_shards"
        if lay.rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        dist.barrier()
        if lay.dp_rank == 0:
            state = {k: v.detach().cpu() for k, v in self.gpt.state_dict().items()
                     if not k.endswith("_extra_state") and v is not None}
            torch.save(state, tmp / f"shard_tp{lay.tp_rank:02d}_pp{lay.pp_rank:03d}.pt")
        dist.barrier()
        if lay.rank == 0:
            shards = {}
            for tp in range(lay.tensor_model_parallel_size):
                for pp in range(lay.pipeline_model_parallel_size):
                    shards[(tp, pp)] = torch.load(tmp / f"shard_tp{tp:02d}_pp{pp:03d}.pt", weights_only=True)
            hf_state = convert.megatron_to_hf(shards, self.hf_config, lay.tensor_model_parallel_size,
                                              lay.pipeline_model_parallel_size)
            tokenizer_dir = self.cfg.tokenizer_path or self.model_dir
            hf_config = dict(self.hf_config)
            # The weights are written in the training precision; say so in config.json ("dtype" in
            # transformers >= 5, "torch_dtype" before).
            dtype_name = str(next(iter(hf_state.values())).dtype).replace("torch.", "")
            hf_config["dtype"] = dtype_name
            if "torch_dtype" in hf_config:
                hf_config["torch_dtype"] = dtype_name
            hf_io.save_hf_checkpoint(str(self.output), hf_config, hf_state, tokenizer_dir)
            shutil.rmtree(tmp)
            self._log(f"exported the final model as an HF directory at {self.output}")
        dist.barrier()


def train(cfg: TrainConfig) -> list[dict]:
    """Run SFT as one rank of the launched job; returns this rank's per-step metric records.

    Every rank must call it (under torchrun / torch.distributed.launch, or alone for one process). Writes
    `<output_path>/metrics.jsonl`, `manifest.json`, checkpoints and the final HF export (rank 0 writes the shared
    files). Tears down the process groups at the end.

    Raises:
        ValueError / FileNotFoundError: bad configuration or inputs (named in the message).
    """
    from qwen_sft import parallel

    try:
        trainer = _Trainer(cfg)
        return trainer.run()
    finally:
        parallel.destroy()
