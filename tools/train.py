"""Full-parameter SFT of a Qwen2/Qwen2.5, Llama, Qwen3, Mixtral or Qwen2-MoE model with megatron-core over
TP × PP × DP ranks (and EP for the MoE families: `--ep`, with megatron-core's alltoall token dispatcher).

Launch with one process per device, e.g.
    torchrun --nproc_per_node 2 tools/train.py --model_path W --data_path D --output_path OUT --tp 2 ...
    python -m torch.distributed.launch --nproc_per_node 2 tools/train.py ...   (legacy launcher; passes --local-rank)
or alone for one process. Flags: the original workflow's (`--model_name --model_path --output_path --data_path
--tokenizer_path --seq_length --batch_size --tp --pp --learning_rate --epochs --save_steps --mixed_precision`) plus
Megatron-LM's names. `--batch_size` is the global batch in samples per optimizer step (alias of
`--global_batch_size`). The work is done by `qwen_sft.training.train`; batching and loss semantics are in
`qwen_sft/batching.py`, checkpoint and resume semantics in `qwen_sft/checkpointing.py`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from qwen_sft.training import MIXED_PRECISION, TrainConfig, train


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of tools/train.py."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model_name", default="qwen2.5", help="a label for logs and the manifest")
    p.add_argument("--model_path", required=True,
                   help="HF model directory (config.json + safetensors) or a converted Megatron checkpoint")
    p.add_argument("--output_path", required=True,
                   help="run directory: final HF export, checkpoints/, metrics.jsonl, manifest.json")
    p.add_argument("--data_path", required=True, help="directory written by tools/data_convert.py")
    p.add_argument("--tokenizer_path", default=None,
                   help="tokenizer files exported with the model (default: those in --model_path)")
    p.add_argument("--seq_length", type=int, default=4096, help="maximum tokens per sample")
    p.add_argument("--batch_size", "--global_batch_size", dest="global_batch_size", type=int, default=8,
                   help="global batch in samples per optimizer step (over all data-parallel ranks)")
    p.add_argument("--micro_batch_size", type=int, default=1, help="samples per forward/backward pass per rank")
    p.add_argument("--tp", "--tensor_model_parallel_size", dest="tensor_model_parallel_size", type=int, default=1,
                   help="tensor-parallel size")
    p.add_argument("--pp", "--pipeline_model_parallel_size", dest="pipeline_model_parallel_size", type=int,
                   default=1, help="pipeline-parallel size")
    p.add_argument("--ep", "--expert_model_parallel_size", dest="expert_model_parallel_size", type=int, default=1,
                   help="expert-parallel size (MoE models: experts spread over data-parallel ranks, tokens exchanged "
                        "with all-to-all)")
    p.add_argument("--learning_rate", "--lr", dest="learning_rate", type=float, default=2e-5, help="peak learning rate")
    p.add_argument("--min_lr", type=float, default=0.0, help="learning rate at the end of the cosine decay")
    p.add_argument("--lr_warmup_fraction", type=float, default=0.0,
                   help="fraction of the steps with linear warm-up from 0")
    p.add_argument("--weight_decay", type=float, default=0.01, help="AdamW decoupled weight decay")
    p.add_argument("--clip_grad", type=float, default=1.0, help="global gradient-norm clip (0 = off)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training split")
    p.add_argument("--train_iters", type=int, default=None, help="optimizer steps (overrides --epochs)")
    p.add_argument("--save_steps", type=int, default=0, help="checkpoint every N steps and at the end (0 = never)")
    p.add_argument("--mixed_precision", choices=MIXED_PRECISION, default="bf16",
                   help="parameter/compute precision; the optimizer keeps fp32 master weights")
    p.add_argument("--seed", type=int, default=1234, help="seed of weights-independent randomness and data order")
    p.add_argument("--log_interval", type=int, default=1, help="print every N steps (metrics.jsonl has every step)")
    p.add_argument("--eval_interval", type=int, default=0,
                   help="validation loss on the valid split every N steps (0 = never)")
    p.add_argument("--load", default=None,
                   help="resume from this checkpoints directory (its latest) or one iter_XXXXXXX directory; "
                        "takes precedence over --resume; an error when no checkpoint is there")
    p.add_argument("--resume", action="store_true",
                   help="resume from the latest checkpoint under <output_path>/checkpoints, if any")
    p.add_argument("--make_vocab_size_divisible_by", type=int, default=128,
                   help="vocabulary padding multiple per TP rank (Megatron-LM's rule)")
    p.add_argument("--distributed_backend", dest="backend", default=None,
                   choices=("nccl", "gloo", "hccl", "mccl"), help="process-group backend (default: from device)")
    p.add_argument("--no_export", dest="export_hf", action="store_false",
                   help="skip the final HF export at <output_path>")
    # The legacy launcher (python -m torch.distributed.launch) passes --local-rank=N (older: --local_rank=N).
    p.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=None,
                   help=argparse.SUPPRESS)
    return p


def config_from_args(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """Parse command-line arguments into a validated `TrainConfig` (argparse exits with status 2 on bad flags)."""
    args = build_parser().parse_args(argv)
    cfg = TrainConfig(**vars(args))
    try:
        cfg.validate()
    except ValueError as e:
        build_parser().error(str(e))
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: train, print where the results are, return the exit status."""
    cfg = config_from_args(argv)
    records = train(cfg)
    if records and records[-1].get("step") is not None:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"[train] done: {len(records)} steps, last loss {records[-1]['loss']:.6f}; "
                  f"outputs in {cfg.output_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
