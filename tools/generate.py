"""Generate answers with a (fine-tuned) Qwen2/Qwen2.5, Llama, Qwen3, Mixtral or Qwen2-MoE model on megatron-core,
KV-cached, greedy or sampled.

Flags as in the original workflow (``--model_name --model_path --tokenizer_path --seq_length --max_new_tokens
--prompt``) plus ``--input_file --output_file --temperature --top_k --top_p --repetition_penalty --seed
--system_prompt --batch_size --no_kv_cache --dtype --make_vocab_size_divisible_by --no_progress --tp --pp``.
See ``qwen_sft/sampling.py`` for the decoding rules (HF ``transformers`` semantics), ``qwen_sft/generation.py`` for batching and the length
budget (a prompt of ``--seq_length`` tokens or more is an error; generation stops at ``--seq_length``).

Tensor / pipeline parallel (one process per rank; the world size must be TP × PP; greedy tokens equal TP=1's)::

    torchrun --nproc_per_node 2 tools/generate.py --tp 2 --model_path W --prompt "..."
    python -m torch.distributed.launch --nproc_per_node 2 tools/generate.py --pp 2 ...   (legacy launcher)

Only rank 0 prints and writes ``--output_file``.

Example (the original command)::

    python tools/generate.py --model_name qwen2.5-7b --model_path w_tune --tokenizer_path w_ori \\
        --seq_length 4096 --max_new_tokens 512 --prompt "请详细解释什么是大语言模型的全量微调？"

``--model_path`` takes an HF directory, a converted Megatron checkpoint or a training output directory. Without
``--tokenizer_path`` the tokenizer saved with the model is used; with it, a warning is printed when the two differ.

Exit status: 0 on success, 1 when the model, tokenizer or a prompt cannot be used (the message says which),
2 on bad command-line arguments.
"""
from __future__ import annotations

import argparse
import json
import sys

from qwen_sft.generate_job import GenerateConfig, run_generate
from qwen_sft.generation import PromptTooLongError
from qwen_sft.sampling import SamplingParams


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flag names as in the original scripts)."""
    p = argparse.ArgumentParser(prog="generate.py",
                                description="Chat-templated text generation with a Qwen2/Qwen2.5, Llama, Qwen3, "
                                            "Mixtral or Qwen2-MoE model on megatron-core (KV cache, greedy or "
                                            "sampling).")
    p.add_argument("--model_name", default=None, help="a label for the model, recorded in the output "
                                                       "(e.g. qwen2.5-7b)")
    p.add_argument("--model_path", required=True,
                   help="HF model directory, converted Megatron checkpoint, or training output directory")
    p.add_argument("--tokenizer_path", default=None,
                   help="tokenizer directory (default: the tokenizer saved with the model)")
    p.add_argument("--seq_length", type=int, default=4096,
                   help="context budget in tokens, prompt + new tokens (default 4096)")
    p.add_argument("--max_new_tokens", type=int, default=512, help="most new tokens per prompt (default 512)")
    p.add_argument("--prompt", action="append", default=[],
                   help="a user prompt (rendered with the chat template); may be repeated")
    p.add_argument("--input_file", default=None,
                   help="more prompts: Alpaca JSON list, JSON Lines (Alpaca records, {\"prompt\": ...} or "
                        "strings) or plain text with one prompt per line")
    p.add_argument("--output_file", default=None,
                   help="write one JSON object per prompt (prompt, output text, token ids, stop reason, timings)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 = greedy (default); > 0 samples with this temperature")
    p.add_argument("--top_k", type=int, default=0, help="sampling: keep the k most likely tokens (0 = off)")
    p.add_argument("--top_p", type=float, default=1.0, help="sampling: nucleus mass in (0, 1] (1 = off)")
    p.add_argument("--repetition_penalty", type=float, default=1.0,
                   help="HF-style repetition penalty over prompt and output tokens (1 = off)")
    p.add_argument("--seed", type=int, default=1234, help="sampling seed (default 1234)")
    p.add_argument("--system_prompt", default=None,
                   help="system prompt for prompts without their own 'system' (default: the template's)")
    p.add_argument("--batch_size", type=int, default=8, help="prompts generated together (default 8)")
    p.add_argument("--no_kv_cache", action="store_true",
                   help="recompute the whole sequence every step (benchmark baseline; slow)")
    p.add_argument("--dtype", default="auto",
                   choices=("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"),
                   help="parameter dtype (default auto: config.json torch_dtype)")
    p.add_argument("--make_vocab_size_divisible_by", type=int, default=128,
                   help="Megatron vocabulary padding multiple (default 128)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--tp", "--tensor_model_parallel_size", dest="tensor_model_parallel_size", type=int, default=1,
                   help="tensor-parallel size (launch TP × PP processes, e.g. with torchrun)")
    p.add_argument("--pp", "--pipeline_model_parallel_size", dest="pipeline_model_parallel_size", type=int,
                   default=1, help="pipeline-parallel size (launch TP × PP processes)")
    # The legacy launcher (python -m torch.distributed.launch) passes --local-rank=N (older: --local_rank=N);
    # LOCAL_RANK, which it also sets, is what qwen_sft.parallel reads.
    p.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=None,
                   help=argparse.SUPPRESS)
    return p


def parse_config(argv: list[str] | None = None) -> GenerateConfig:
    """Parse the command line into a `GenerateConfig` (argparse exits with status 2 on errors)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        sampling = SamplingParams(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p,
                                  repetition_penalty=a.repetition_penalty, seed=a.seed)
        cfg = GenerateConfig(
            model_path=a.model_path, model_name=a.model_name, tokenizer_path=a.tokenizer_path,
            seq_length=a.seq_length, max_new_tokens=a.max_new_tokens, prompts=list(a.prompt),
            input_file=a.input_file, output_file=a.output_file, system_prompt=a.system_prompt, sampling=sampling,
            batch_size=a.batch_size, use_kv_cache=not a.no_kv_cache, dtype=a.dtype,
            make_vocab_size_divisible_by=a.make_vocab_size_divisible_by, progress=not a.no_progress,
            tensor_model_parallel_size=a.tensor_model_parallel_size,
            pipeline_model_parallel_size=a.pipeline_model_parallel_size)
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run generation; print each answer (prompts from --prompt, or all when no --output_file) and tokens/s."""
    cfg = parse_config(argv)

    def warn(message: str) -> None:
        print(f"generate: warning: {message}", file=sys.stderr)

    try:
        summary = run_generate(cfg, log=print, warn=warn)
    except PromptTooLongError as exc:
        print(f"generate: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ConnectionError, ValueError, RuntimeError) as exc:
        print(f"generate: error: {exc}", file=sys.stderr)
        return 1
    if summary.info.get("rank", 0) != 0:
        return 0  # every rank generated the same tokens; rank 0 reports them
    for rec in summary.records:
        if rec["index"] < len(cfg.prompts) or not cfg.output_file:
            print(f"\n### prompt {rec['index']}: {rec['prompt']}\n{rec['output']}\n"
                  f"[{rec['num_output_tokens']} tokens, stop: {rec['stop_reason']}"
                  f"{' ' + rec['stop_token'] if rec['stop_token'] else ''}]")
    mode = "KV cache" if cfg.use_kv_cache else "no KV cache"
    print(f"\ngenerate: {summary.prompts} prompt(s), {summary.prompt_tokens} prompt tokens, {summary.new_tokens} "
          f"new tokens in {summary.generate_s:.2f} s: {summary.tokens_per_s:.1f} tokens/s ({mode}, batch_size "
          f"{cfg.batch_size}); stop reasons {json.dumps(summary.stop_reasons)}")
    if cfg.output_file:
        print(f"generate: wrote {summary.prompts} record(s) to {cfg.output_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
