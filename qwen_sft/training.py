"""Supervised fine-tuning of a megatron-core `GPTModel`: the run — configuration, model and optimizer set-up, the
step loop, validation, checkpoints at the configured steps, the final HF export.

The pieces live by concern: batches and the loss in `qwen_sft.batching` (data order, padding, loss semantics),
checkpoints in `qwen_sft.checkpointing` (contents, atomic save, resume), the manifest and metrics in
`qwen_sft.run_records`, model loading in `qwen_sft.loading`. Outputs (CONTRIBUTING.md, Formats):
`<output_path>/` the final HF export, `checkpoints/`, `metrics.jsonl`, `manifest.json`.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Iterator, Optional

import megatron.core
import numpy as np
import torch
import torch.distributed as dist
from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig, finalize_model_grads
from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
from megatron.core.pipeline_parallel import get_forward_backward_func
from megatron.core.transformer.module import Float16Module
from megatron.core.transformer.moe import moe_utils

from qwen_sft import checkpointing, hf_io, parallel, run_records
from qwen_sft.batching import (SFTSampleDataset, global_batch_indices, masked_token_loss, step_micro_batches,
                               steps_per_epoch, token_losses)
from qwen_sft.dtypes import DTYPE_NAMES, config_with_weight_dtype
from qwen_sft.loading import load_gpt
from qwen_sft.weight_map import megatron_to_hf

__all__ = ["TrainConfig", "MIXED_PRECISION", "train"]

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
    expert_model_parallel_size: int = 1
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
                    "pipeline_model_parallel_size", "expert_model_parallel_size", "epochs", "log_interval",
                    "make_vocab_size_divisible_by")
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


# ----------------------------------------------------------------------------------------------------- trainer
class _Trainer:
    """One rank's training run. Built by `train()`; not part of the public API."""

    def __init__(self, cfg: TrainConfig):
        cfg.validate()
        self.cfg = cfg
        self.layout = parallel.init_distributed(
            cfg.tensor_model_parallel_size, cfg.pipeline_model_parallel_size, seed=cfg.seed,
            backend=cfg.backend, local_rank_arg=cfg.local_rank,
            expert_model_parallel_size=cfg.expert_model_parallel_size)
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
        self.ckpt_to_load = checkpointing.checkpoint_to_load(cfg.load, cfg.resume, self.ckpt_root)
        self._build_model()
        self._build_optimizer()
        self.step = 0
        self._load_if_requested()

    # ---------------------------------------------------------------- model
    def _params_dtype(self) -> torch.dtype:
        return DTYPE_NAMES[self.cfg.mixed_precision]

    def _build_model(self) -> None:
        cfg, lay = self.cfg, self.layout
        mp = cfg.mixed_precision
        # resuming: the model gets the checkpoint's padded vocabulary (another layout pads differently)
        rows = None if self.ckpt_to_load is None else checkpointing.padded_vocab_rows(self.ckpt_to_load)
        loaded = load_gpt(cfg.model_path, lay, self._params_dtype(), seq_length=cfg.seq_length,
                          make_vocab_size_divisible_by=cfg.make_vocab_size_divisible_by, padded_vocab_size=rows,
                          calculate_per_token_loss=True)
        self.hf_config, self.tconfig, self.gpt = loaded.hf_config, loaded.config, loaded.model
        self.model_dir, self.loaded_kind, self.padded_vocab_size = loaded.model_dir, loaded.kind, loaded.padded_vocab_size
        # routed experts in their own optimizer at every EP degree, so checkpoints move between EP layouts
        checkpointing.mark_expert_params(self.gpt)
        module = Float16Module(self.tconfig, self.gpt) if mp in ("bf16", "fp16") else self.gpt
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=True,
            # fp16: an overflow is expected now and then and handled by the dynamic loss scaler (the step is
            # skipped and the scale lowered), so the NaN check that would abort the run is for bf16/fp32 only.
            check_for_nan_in_grad=mp != "fp16", average_in_collective=False)
        self.model = DistributedDataParallel(self.tconfig, ddp_config, module)
        # Make every DP replica start from identical weights (they were loaded identically; this is megatron's
        # own consistency step).
        self.model.broadcast_params()

    # ---------------------------------------------------------------- optimizer
    def _build_optimizer(self) -> None:
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
    def _checkpoint_state(self, is_loading: bool, **load_options) -> dict:
        cfg = self.cfg
        return checkpointing.sharded_state(
            gpt=self.gpt, optimizer=self.optimizer, scheduler=self.scheduler, layout=self.layout, step=self.step,
            global_batch_size=cfg.global_batch_size, steps_per_epoch=self.per_epoch, seed=cfg.seed,
            train_config=dataclasses.asdict(cfg), is_loading=is_loading, **load_options)

    def save_checkpoint(self) -> Path:
        """Save step `self.step` atomically (`qwen_sft.checkpointing.save_checkpoint`); returns the final directory."""
        return checkpointing.save_checkpoint(self.ckpt_root, self.step, partial(self._checkpoint_state, False),
                                             self.layout.rank, self._log)

    def _load_if_requested(self) -> None:
        cfg = self.cfg
        path = self.ckpt_to_load
        if path is None:
            if cfg.resume and not cfg.load:
                self._log(f"--resume: no checkpoint under {self.ckpt_root}; starting from step 0")
            return
        state, rng_note = checkpointing.load_checkpoint(
            path, build_template=partial(self._checkpoint_state, True), gpt=self.gpt, optimizer=self.optimizer,
            scheduler=self.scheduler, layout=self.layout)
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
        totals = torch.zeros(2, dtype=torch.float64)
        if self.layout.is_last_stage and self.layout.tp_rank == 0:
            for r in reports:
                totals += r.double()
        dist.all_reduce(totals)
        loss_sum, tokens = float(totals[0]), int(totals[1])
        return (loss_sum / tokens if tokens else float("nan")), tokens

    def _moe_aux_loss(self) -> Optional[float]:
        """The step's router load-balancing loss (MoE models; None for dense ones), identical on every rank.

        megatron's routers record, per layer and micro-batch, the switch-transformer load-balancing loss of the
        tokens they routed (without the coefficient `moe_aux_loss_coeff`; what the backward uses is that times the
        coefficient). Reported: its mean over the MoE layers, the micro-batches and the data-parallel ranks. Read
        from megatron's tracker and reset for the next step (reduced here with sums, which every backend has).
        """
        if not self.tconfig.num_moe_experts:
            return None
        tracked = moe_utils.get_moe_layer_wise_logging_tracker().get("load_balancing_loss")
        values = torch.zeros(self.tconfig.num_layers, dtype=torch.float32)
        if tracked is not None:
            values += tracked["values"].detach().float().cpu()
        values = values.to(self.layout.device)
        dist.all_reduce(values)  # each layer's stage: TP ranks hold the same value, DP ranks their own tokens'
        moe_utils.clear_aux_losses_tracker()
        lay = self.layout
        per_layer = values / (lay.tensor_model_parallel_size * lay.data_parallel_size * self.num_microbatches)
        return float(per_layer.mean())

    def train_step(self) -> dict:
        """One optimizer step on the global batch of `self.step`; returns its metrics (step is 1-based)."""
        cfg, lay = self.cfg, self.layout
        indices = global_batch_indices(len(self.train_data), cfg.global_batch_size, cfg.seed, self.step)
        batches, stats = step_micro_batches(self.train_data, indices, lay.dp_rank, lay.data_parallel_size,
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
        aux = self._moe_aux_loss()
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
            **({"moe_aux_loss": aux} if aux is not None else {}),
            **stats,
            "step_time_s": step_time,
            "learnable_tokens_per_s": stats["learnable_tokens"] / step_time,
            "total_tokens_per_s": stats["total_tokens"] / step_time,
            **run_records.peak_memory(),
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
                batches, stats = step_micro_batches(data, indices, lay.dp_rank, lay.data_parallel_size,
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
        cfg = self.cfg
        manifest = run_records.build_manifest(
            config=dataclasses.asdict(cfg), layout=self.layout, num_microbatches=self.num_microbatches,
            data_path=Path(cfg.data_path), train_samples=len(self.train_data), steps_per_epoch=self.per_epoch,
            global_batch_size=cfg.global_batch_size, model_dir=self.model_dir, model_kind=self.loaded_kind,
            padded_vocab_size=self.padded_vocab_size, total_steps=self.total_steps, start_step=self.step,
            megatron_version=getattr(megatron.core, "__version__", None))
        run_records.write_manifest(self.output, manifest)

    def run(self) -> list[dict]:
        cfg = self.cfg
        self.write_manifest()
        records = []
        metrics = run_records.MetricsFile(self.output)
        if self.is_logger:
            metrics.start(self.step)
        self._log(f"{self.total_steps} steps ({self.per_epoch} per epoch), global batch {cfg.global_batch_size} "
                  f"= {self.num_microbatches} micro-batches × {cfg.micro_batch_size} × DP "
                  f"{self.layout.data_parallel_size}; TP {cfg.tensor_model_parallel_size} PP "
                  f"{cfg.pipeline_model_parallel_size} EP {cfg.expert_model_parallel_size}; {cfg.mixed_precision}")
        while self.step < self.total_steps:
            record = self.train_step()
            records.append(record)
            self._emit(record, metrics)
            if cfg.save_steps and (self.step % cfg.save_steps == 0 or self.step == self.total_steps):
                self.save_checkpoint()
            if cfg.eval_interval and self.step % cfg.eval_interval == 0:
                self._emit(self.evaluate(), metrics)
        if cfg.export_hf:
            self.export_hf()
        return records

    def _emit(self, record: dict, metrics: run_records.MetricsFile) -> None:
        if not self.is_logger:
            return
        metrics.append(record)
        if record["kind"] == "eval":
            self._log(f"step {record['step']} | valid loss {record['valid_loss']:.6f} | "
                      f"valid ppl {record['valid_ppl']:.4f}")
            return
        if record["step"] % self.cfg.log_interval and record["step"] != self.total_steps:
            return
        mem = ", ".join(f"{k} {v:.1f}" for k, v in record.items() if k.startswith("peak_"))
        gn = record["grad_norm"]
        aux = f"moe aux loss {record['moe_aux_loss']:.6f} | " if "moe_aux_loss" in record else ""
        self._log(f"step {record['step']}/{self.total_steps} | loss {record['loss']:.6f} | {aux}"
                  f"lr {record['lr']:.3e} | "
                  f"grad norm {gn if gn is None else f'{gn:.4f}'} | learnable tokens/s "
                  f"{record['learnable_tokens_per_s']:.1f} | total tokens/s {record['total_tokens_per_s']:.1f} | "
                  f"step time {record['step_time_s']:.3f} s | {mem}")

    def export_hf(self) -> None:
        """Gather every TP/PP(/EP) shard on rank 0, convert to HF and write `<output_path>` (with tokenizer files)."""
        lay = self.layout
        tmp = self.output / ".export_shards"
        if lay.rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        dist.barrier()
        ep = lay.expert_model_parallel_size
        # One writer per (TP, PP, EP) rank: the first of the ranks holding the same experts (at EP = 1, DP rank 0).
        if lay.expert_dp_rank == 0:
            state = {k: v.detach().cpu() for k, v in self.gpt.state_dict().items()
                     if not k.endswith("_extra_state") and v is not None}
            torch.save(state, tmp / f"shard_tp{lay.tp_rank:02d}_pp{lay.pp_rank:03d}_ep{lay.ep_rank:03d}.pt")
        dist.barrier()
        if lay.rank == 0:
            shards = {}
            for tp in range(lay.tensor_model_parallel_size):
                for pp in range(lay.pipeline_model_parallel_size):
                    for e in range(ep):
                        key = (tp, pp, e) if ep > 1 else (tp, pp)
                        shards[key] = torch.load(tmp / f"shard_tp{tp:02d}_pp{pp:03d}_ep{e:03d}.pt", weights_only=True)
            hf_state = megatron_to_hf(shards, self.hf_config, lay.tensor_model_parallel_size,
                                      lay.pipeline_model_parallel_size, ep)
            tokenizer_dir = self.cfg.tokenizer_path or self.model_dir
            # The weights are written in the training precision; config.json says so
            hf_config = config_with_weight_dtype(self.hf_config, next(iter(hf_state.values())).dtype)
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
    try:
        trainer = _Trainer(cfg)
        return trainer.run()
    finally:
        parallel.destroy()
