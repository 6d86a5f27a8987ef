"""Validation loss and perplexity of a model on a split of a tokenized SFT dataset.

The number is the training objective evaluated without gradients: the mean, over every learnable token of the
split, of the next-token cross-entropy in nats,

    loss = sum over samples, positions t with labels[t+1] != -100 of  -log p(input_ids[t+1] | input_ids[:t+1])
           / (number of such positions),            perplexity = exp(loss).

It is token-weighted over the whole split (not a mean of per-batch means), so it does not depend on the micro-batch
size or the order of samples. The batches go through the same code as training: `qwen_sft.batching`'s
`SFTSampleDataset` (the `data_convert` output: unshifted labels, -100 = masked), `collate_micro_batch` (shift, right
padding per micro-batch, explicit causal mask) and `masked_token_loss` on megatron-core's per-token loss
(`qwen_sft.batching.token_losses`: vocabulary-parallel cross entropy in float32 over the real vocabulary, the
output layer's padding rows excluded as in training). The model is loaded by
`qwen_sft.loading.load_model_for_inference` (HF directory, converted Megatron checkpoint or training output
directory; one process, or TP processes launched with torchrun at `tensor_model_parallel_size` = TP: the logits
stay split over the vocabulary and the cross entropy is megatron's vocabulary-parallel one, as in training; every
rank gets the same sums, rank 0 writes the output file; PP = 1). Samples are sorted by length into micro-batches to keep padding small; memory per
micro-batch is about `micro_batch_size × longest sample × padded vocabulary × 4 bytes × 3` for the logits and the
cross entropy.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from qwen_sft.batching import IGNORE_INDEX, SFTSampleDataset, collate_micro_batch, masked_token_loss, token_losses
from qwen_sft.hf_io import resolve_model_path
from qwen_sft.loading import load_model_for_inference
from qwen_sft.tokenizer import has_tokenizer_files, load_tokenizer, tokenizer_fingerprint

__all__ = ["EvaluateConfig", "EvalResult", "evaluate_loss", "check_tokenizer", "run_evaluate"]


@dataclasses.dataclass
class EvaluateConfig:
    """Arguments of `run_evaluate` (the flags of tools/evaluate.py).

    Attributes:
        model_path: HF directory, converted Megatron checkpoint, or training output directory.
        data_path: a `tools/data_convert.py` output directory.
        split: "valid" (default) or "train".
        micro_batch_size: samples per forward pass (>= 1).
        max_samples: evaluate only the first N samples of the split (None = all).
        dtype: "auto" or a dtype name (see `qwen_sft.loading.load_model_tp1`).
        make_vocab_size_divisible_by: Megatron vocabulary padding multiple.
        output_file: also write the result as JSON here (None = print only).
        progress: show a tqdm progress bar on stderr.
        tensor_model_parallel_size: TP degree; the launch must have exactly TP processes.
    """

    model_path: str
    data_path: str
    split: str = "valid"
    micro_batch_size: int = 4
    max_samples: Optional[int] = None
    dtype: str = "auto"
    make_vocab_size_divisible_by: int = 128
    output_file: Optional[str] = None
    progress: bool = True
    tensor_model_parallel_size: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first bad argument."""
        if not isinstance(self.tensor_model_parallel_size, int) or self.tensor_model_parallel_size < 1:
            raise ValueError(f"tensor_model_parallel_size must be an int >= 1, got {self.tensor_model_parallel_size!r}")
        if self.split not in ("train", "valid"):
            raise ValueError(f"split must be 'train' or 'valid', got {self.split!r}")
        if not isinstance(self.micro_batch_size, int) or self.micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be an int >= 1, got {self.micro_batch_size!r}")
        if self.max_samples is not None and (not isinstance(self.max_samples, int) or self.max_samples < 1):
            raise ValueError(f"max_samples must be an int >= 1 or None, got {self.max_samples!r}")


@dataclasses.dataclass
class EvalResult:
    """Result of an evaluation.

    Attributes:
        loss: mean next-token cross-entropy over learnable tokens, nats.
        perplexity: exp(loss).
        learnable_tokens: number of tokens the loss averages over.
        total_tokens: number of input tokens fed (sum of sample lengths - 1, padding excluded).
        samples: samples evaluated; skipped_samples: samples of the split not evaluated (`max_samples`) and
            samples with no learnable token after shifting (they add nothing to the loss), with reasons in
            `skipped_by_reason`.
        split, data_path, model_path: what was evaluated.
        elapsed_s: wall seconds of the forward passes; tokens_per_s: total_tokens / elapsed_s.
        tokenizer_check: "same", "different" or "unknown: <why>" (see `check_tokenizer`).
    """

    loss: float
    perplexity: float
    learnable_tokens: int
    total_tokens: int
    samples: int
    skipped_samples: int
    skipped_by_reason: dict
    split: str
    data_path: str
    model_path: str
    elapsed_s: float
    tokens_per_s: float
    tokenizer_check: str = "unknown"

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict."""
        return dataclasses.asdict(self)


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, samples: list[tuple[np.ndarray, np.ndarray]], *, micro_batch_size: int,
                  device: Union[str, torch.device] = "cpu", pad_token_id: int = 0, vocab_size: Optional[int] = None,
                  progress: Optional[Callable[[int], None]] = None) -> tuple[float, int, int]:
    """Summed masked next-token loss of `samples` under a PP=1 megatron `GPTModel` (this TP rank's part).

    Args:
        model: a `GPTModel` with pre_process and post_process (put in eval mode here); at TP > 1 loaded with
            `parallel_output=True` (each rank's vocabulary slice; `vocab_size` must be given), every rank gets the
            same sums.
        samples: `(input_ids, labels)` int arrays of equal length (unshifted labels, -100 = masked), >= 2 tokens.
        micro_batch_size: samples per forward pass.
        device: where batches are placed.
        pad_token_id: id used for right padding (masked out, so its value does not change the result).
        vocab_size: the real vocabulary size (HF `vocab_size`). When given, the output layer's padding rows
            (megatron pads to `padded_vocab_size`) are excluded from the softmax exactly as in training
            (`qwen_sft.batching.token_losses`), so the loss equals HF's; when None, megatron's own per-token loss
            over all padded rows is used.
        progress: called with the number of samples done after each micro-batch.

    Returns:
        `(loss_sum_nats, learnable_tokens, total_tokens)` — loss_sum accumulated in float64.

    Raises:
        ValueError: a sample shorter than 2 tokens or with ids/labels of different lengths (from
            `collate_micro_batch`).
    """
    model.eval()
    order = sorted(range(len(samples)), key=lambda i: len(samples[i][0]))
    loss_sum = 0.0
    learnable = 0
    total = 0
    for first in range(0, len(order), micro_batch_size):
        chunk = [samples[i] for i in order[first:first + micro_batch_size]]
        batch = collate_micro_batch(chunk, pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        if vocab_size is None:
            per_token = model(batch["tokens"], batch["position_ids"], batch["attention_mask"], labels=batch["labels"])
        else:
            logits = model(batch["tokens"], batch["position_ids"], batch["attention_mask"])
            per_token = token_losses(logits, batch["labels"], vocab_size)
        batch_sum, batch_tokens, _ = masked_token_loss(batch["loss_mask"], per_token)
        loss_sum += float(batch_sum.double().item())
        learnable += int(batch_tokens.item())
        total += sum(len(ids) - 1 for ids, _ in chunk)
        if progress is not None:
            progress(len(chunk))
    return loss_sum, learnable, total


def check_tokenizer(model_path: Union[str, os.PathLike], meta: dict) -> str:
    """Compare the tokenizer saved with the model against the one recorded in the dataset's `meta.json`.

    Uses `qwen_sft.tokenizer.tokenizer_fingerprint` (SHA-256 over the tokenizer files, and of the chat template),
    the fingerprint data_convert records under `meta["tokenizer"]`.

    Returns:
        "same", "different", or "unknown: <reason>" (no fingerprint in meta.json, no tokenizer files next to the
        model, or the model's tokenizer cannot be loaded).
    """
    recorded = meta.get("tokenizer") or {}
    if not recorded.get("files_sha256"):
        return "unknown: the dataset's meta.json records no tokenizer fingerprint"
    try:
        model_dir = resolve_model_path(model_path)
    except (FileNotFoundError, ConnectionError) as exc:
        return f"unknown: {exc}"
    if not has_tokenizer_files(model_dir):
        return f"unknown: {model_dir} holds no tokenizer files"
    try:
        current = tokenizer_fingerprint(load_tokenizer(model_dir))
    except (FileNotFoundError, ValueError) as exc:
        return f"unknown: the model's tokenizer cannot be loaded ({exc})"
    same = (current.get("files_sha256") == recorded.get("files_sha256")
            and current.get("chat_template_sha256") == recorded.get("chat_template_sha256"))
    return "same" if same else "different"


def run_evaluate(cfg: EvaluateConfig, log: Callable[[str], None] = print) -> EvalResult:
    """Load the model and the split, compute loss and perplexity, and write `cfg.output_file` when given.

    Raises:
        ValueError: bad config, an empty split, or no learnable token in the evaluated samples.
        FileNotFoundError: missing dataset files or model.
        RuntimeError: a launch whose world size is not TP (see `load_model_for_inference`).
    """
    cfg.validate()
    meta_path = Path(cfg.data_path) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    if meta:
        counts = meta.get("counts", {})
        if counts.get(cfg.split) == 0:
            raise ValueError(f"{cfg.data_path}: the {cfg.split} split has no samples (meta.json counts "
                             f"{cfg.split} = 0; data_convert --split_ratio 1.0 puts every sample in train)")
    dataset = SFTSampleDataset(cfg.data_path, cfg.split)
    if len(dataset) == 0:
        raise ValueError(f"{cfg.data_path}: the {cfg.split} split has no samples (data_convert --split_ratio 1.0 "
                         f"writes an empty valid split)")
    count = len(dataset) if cfg.max_samples is None else min(cfg.max_samples, len(dataset))
    skipped = {"max_samples": len(dataset) - count, "no_learnable_token": 0}
    samples = []
    for i in range(count):
        ids, labels = dataset[i]
        if len(ids) < 2 or not np.any(labels[1:] != IGNORE_INDEX):
            skipped["no_learnable_token"] += 1
            continue
        samples.append((ids, labels))
    if not samples:
        raise ValueError(f"{cfg.data_path}: none of the {count} evaluated {cfg.split} samples has a learnable token")
    tokenizer_check = check_tokenizer(cfg.model_path, meta)
    longest = max(len(ids) for ids, _ in samples)
    tp = cfg.tensor_model_parallel_size
    model, hf_config, info = load_model_for_inference(
        cfg.model_path, seq_length=longest, dtype=cfg.dtype,
        make_vocab_size_divisible_by=cfg.make_vocab_size_divisible_by, tensor_model_parallel_size=tp,
        parallel_output=tp > 1)  # TP > 1: vocabulary-parallel cross entropy on each rank's logit slice
    writer = info.pop("layout").rank == 0  # every rank computes the same sums; rank 0 reports
    if not writer:
        log = lambda message: None  # noqa: E731
    if tokenizer_check == "different":
        log(f"evaluate: warning: {cfg.data_path} was tokenized with a different tokenizer (files or chat template) "
            f"than the one saved with the model in {cfg.model_path}; the loss is computed anyway")
    too_big = [int(ids.max()) for ids, _ in samples if int(ids.max()) >= info["vocab_size"]]
    if too_big:
        raise ValueError(f"{cfg.data_path}: token id {max(too_big)} is outside the model's vocabulary "
                         f"[0, {info['vocab_size']}): dataset and model use different tokenizers")
    log(f"evaluate: model {info['model_path']} ({info['num_parameters']:,} parameters, {info['dtype']}, "
        f"{info['device']}), {len(samples)} {cfg.split} samples from {cfg.data_path}")
    bar = None
    if cfg.progress and writer:
        bar = tqdm(total=len(samples), desc="evaluate", unit="sample")
    t0 = time.perf_counter()
    try:
        loss_sum, learnable, total = evaluate_loss(model, samples, micro_batch_size=cfg.micro_batch_size,
                                                   device=info["device"], vocab_size=info["vocab_size"],
                                                   progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    loss = loss_sum / learnable
    result = EvalResult(
        loss=loss, perplexity=math.exp(loss) if loss < 700 else float("inf"), learnable_tokens=learnable,
        total_tokens=total, samples=len(samples), skipped_samples=sum(skipped.values()),
        skipped_by_reason=skipped, split=cfg.split, data_path=str(cfg.data_path), model_path=str(cfg.model_path),
        elapsed_s=elapsed, tokens_per_s=total / elapsed if elapsed > 0 else float("nan"),
        tokenizer_check=tokenizer_check)
    if cfg.output_file and writer:
        out = Path(cfg.output_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    return result
