"""Batching and losses of SFT training: the tokenized dataset, the global-batch order, micro-batches, the loss.

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
all-reduced over data-parallel ranks — exact under gradient accumulation and DP. Evaluation
(`qwen_sft.evaluation`) uses the same collation and loss.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from megatron.core import parallel_state, tensor_parallel
from megatron.core.datasets.indexed_dataset import IndexedDataset

from qwen_sft.data import IGNORE_INDEX
from qwen_sft.model import causal_attention_mask

__all__ = [
    "IGNORE_INDEX",
    "SFTSampleDataset",
    "collate_micro_batch",
    "token_losses",
    "masked_token_loss",
    "steps_per_epoch",
    "global_batch_indices",
    "step_micro_batches",
]


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


def step_micro_batches(dataset: SFTSampleDataset, indices: np.ndarray, dp_rank: int, dp_size: int,
                        micro_batch_size: int, pad_token_id: int) -> tuple[list, dict]:
    """This DP rank's micro-batches of one global batch, all padded to the global batch's longest sample.

    Returns:
        `(batches, stats)`: the `collate_micro_batch` dicts of this rank's slice, and the global batch's
        `learnable_tokens`, `total_tokens`, `padded_tokens` and `seq_length_padded` (the same on every rank).
    """
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
