"""Validation loss and perplexity of a (fine-tuned) Qwen2/Qwen2.5, Llama, Qwen3, Mixtral or Qwen2-MoE model on a
tokenized SFT dataset.

Reads the ``--split`` (default ``valid``) of a ``tools/data_convert.py`` output directory and prints the mean
next-token cross-entropy over learnable tokens (nats) and its exponential, the perplexity; see
``qwen_sft/evaluation.py`` for the exact definition. ``--model_path`` takes an HF directory, a converted Megatron
checkpoint or a training output directory. ``--tp N`` under ``torchrun --nproc_per_node N`` splits the model over N
tensor-parallel ranks (same loss; rank 0 prints and writes ``--output_file``).

With ``--alpaca_eval OUT`` instead of ``--data_path`` it runs the original workflow's AlpacaEval step
(``qwen_sft/alpacaeval.py``): answers for ``--instructions`` (JSON list or JSON Lines; default AlpacaEval's own set when
it is in the Hugging Face cache), generated like tools/generate.py (KV cache, batches, chat template as in training),
written to ``OUT/model_outputs.json`` in AlpacaEval's format; then, when the ``alpaca_eval`` package and a judge are
configured, AlpacaEval's judging against ``--reference_outputs`` and its win rate and length-controlled win rate.

Examples::

    python tools/evaluate.py --model_path w_tune --data_path d_convert --output_file w_tune/eval_valid.json
    OPENAI_API_KEY=... python tools/evaluate.py --model_path w_tune --alpaca_eval w_tune/alpaca_eval

Exit status: 0 on success, 1 when the model, data, instructions or judge cannot be used (the message says which),
2 on bad command-line arguments, 3 when the AlpacaEval outputs were written but could not be judged (the message says
what to install or configure).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from qwen_sft.alpacaeval import DEFAULT_ANNOTATORS_CONFIG, AlpacaEvalConfig, AlpacaEvalNotRun, run_alpaca_eval
from qwen_sft.evaluation import EvaluateConfig, run_evaluate
from qwen_sft.generation import PromptTooLongError
from qwen_sft.sampling import SamplingParams

#: Exit status when AlpacaEval's outputs were written but not judged.
EXIT_NOT_JUDGED = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(prog="evaluate.py",
                                description="Loss (mean over learnable tokens) and perplexity on a split of a "
                                            "data_convert output directory (--data_path), or the AlpacaEval step "
                                            "(--alpaca_eval OUT).")
    p.add_argument("--model_path", required=True,
                   help="HF model directory, converted Megatron checkpoint, or training output directory")
    p.add_argument("--data_path", default=None, help="tools/data_convert.py output directory (loss/perplexity)")
    p.add_argument("--split", choices=("valid", "train"), default="valid", help="split to evaluate (default valid)")
    p.add_argument("--micro_batch_size", type=int, default=4, help="samples per forward pass (default 4)")
    p.add_argument("--max_samples", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--dtype", default="auto",
                   choices=("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"),
                   help="parameter dtype (default auto: config.json torch_dtype)")
    p.add_argument("--make_vocab_size_divisible_by", type=int, default=128,
                   help="Megatron vocabulary padding multiple (default 128)")
    p.add_argument("--output_file", default=None, help="also write the result as JSON here")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--tp", "--tensor_model_parallel_size", dest="tensor_model_parallel_size", type=int, default=1,
                   help="loss/perplexity: tensor-parallel size (launch TP processes, e.g. torchrun "
                        "--nproc_per_node TP; rank 0 prints and writes --output_file)")
    p.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=None,
                   help=argparse.SUPPRESS)  # the legacy launcher's; LOCAL_RANK is what qwen_sft.parallel reads
    a = p.add_argument_group("AlpacaEval (--alpaca_eval OUT)")
    a.add_argument("--alpaca_eval", metavar="OUT", default=None,
                   help="generate answers, write OUT/model_outputs.json (AlpacaEval format) and judge them with "
                        "AlpacaEval")
    a.add_argument("--instructions", default=None,
                   help="instruction set: JSON list or JSON Lines of {instruction[, input, dataset]} (default: "
                        "AlpacaEval's own set from the Hugging Face cache)")
    a.add_argument("--reference_outputs", default=None,
                   help="outputs to compare against, AlpacaEval format with 'output' (default: AlpacaEval's set)")
    a.add_argument("--annotators_config", default=DEFAULT_ANNOTATORS_CONFIG,
                   help=f"alpaca_eval annotator config: one of its names or a configs.yaml path (default "
                        f"{DEFAULT_ANNOTATORS_CONFIG}, which needs OPENAI_API_KEY)")
    a.add_argument("--judge_fn", default=None, metavar="MODULE:FUNCTION",
                   help="a local completion function (alpaca_eval's decoder signature) replacing the config's "
                        "fn_completions; MODULE may be a FILE.py path")
    a.add_argument("--model_name", default=None, help="the 'generator' name (default: the model folder's name)")
    a.add_argument("--tokenizer_path", default=None, help="tokenizer directory (default: the model's own)")
    a.add_argument("--seq_length", type=int, default=4096, help="context budget, prompt + answer (default 4096)")
    a.add_argument("--max_new_tokens", type=int, default=2048, help="most tokens per answer (default 2048)")
    a.add_argument("--batch_size", type=int, default=8, help="prompts generated together (default 8)")
    a.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    a.add_argument("--top_p", type=float, default=1.0, help="sampling: nucleus mass (1 = off)")
    a.add_argument("--seed", type=int, default=1234, help="sampling seed (default 1234)")
    a.add_argument("--system_prompt", default=None, help="system prompt (default: the chat template's)")
    a.add_argument("--generate_only", action="store_true", help="write model_outputs.json and stop (no judge)")
    return p


def parse_config(argv: list[str] | None = None) -> EvaluateConfig | AlpacaEvalConfig:
    """Parse the command line into an `EvaluateConfig` (--data_path) or an `AlpacaEvalConfig` (--alpaca_eval)
    (argparse exits with status 2 on errors)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if (a.data_path is None) == (a.alpaca_eval is None):
        parser.error("give --data_path DIR (loss and perplexity) or --alpaca_eval OUT (AlpacaEval), one of them")
    if a.alpaca_eval is not None:
        if a.tensor_model_parallel_size != 1:
            parser.error("--tp applies to loss/perplexity (--data_path); AlpacaEval generates in one process")
        try:
            acfg = AlpacaEvalConfig(
                model_path=a.model_path, output_dir=a.alpaca_eval, instructions=a.instructions,
                reference_outputs=a.reference_outputs, annotators_config=a.annotators_config, judge_fn=a.judge_fn,
                model_name=a.model_name, tokenizer_path=a.tokenizer_path, seq_length=a.seq_length,
                max_new_tokens=a.max_new_tokens, batch_size=a.batch_size,
                sampling=SamplingParams(temperature=a.temperature, top_p=a.top_p, seed=a.seed),
                system_prompt=a.system_prompt, dtype=a.dtype,
                make_vocab_size_divisible_by=a.make_vocab_size_divisible_by, max_samples=a.max_samples,
                generate_only=a.generate_only, progress=not a.no_progress)
            acfg.validate()
        except ValueError as exc:
            parser.error(str(exc))
        return acfg
    cfg = EvaluateConfig(model_path=a.model_path, data_path=a.data_path, split=a.split,
                         micro_batch_size=a.micro_batch_size, max_samples=a.max_samples, dtype=a.dtype,
                         make_vocab_size_divisible_by=a.make_vocab_size_divisible_by, output_file=a.output_file,
                         progress=not a.no_progress, tensor_model_parallel_size=a.tensor_model_parallel_size)
    try:
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print loss and perplexity (or AlpacaEval's win rates). Returns the exit status."""
    cfg = parse_config(argv)
    if isinstance(cfg, AlpacaEvalConfig):
        return _main_alpaca_eval(cfg)
    try:
        res = run_evaluate(cfg)
    except (FileNotFoundError, ConnectionError, ValueError, RuntimeError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # every rank computed the same loss; rank 0 reports it
    print(f"evaluate: {res.split} loss {res.loss:.6f} nats/token, perplexity {res.perplexity:.4f} over "
          f"{res.learnable_tokens} learnable tokens in {res.samples} samples (skipped {res.skipped_samples} "
          f"{json.dumps(res.skipped_by_reason)}); {res.tokens_per_s:.0f} tokens/s; tokenizer vs dataset: "
          f"{res.tokenizer_check}")
    if cfg.output_file:
        print(f"evaluate: wrote {cfg.output_file}")
    return 0


def _main_alpaca_eval(cfg: AlpacaEvalConfig) -> int:
    def warn(message: str) -> None:
        print(f"evaluate: warning: {message}", file=sys.stderr)

    try:
        res = run_alpaca_eval(cfg, log=print, warn=warn)
    except AlpacaEvalNotRun as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return EXIT_NOT_JUDGED
    except (PromptTooLongError, FileNotFoundError, ConnectionError, ValueError, RuntimeError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    if not res.evaluated:
        print(f"evaluate: {res.instructions} AlpacaEval outputs in {res.model_outputs} (not judged: --generate_only)")
        return 0
    lc = (f"length-controlled win rate {res.lc_win_rate:.2f}% (± {res.lc_standard_error:.2f}, GLM {res.glm})"
          if res.lc_win_rate is not None else f"length-controlled win rate not computed: {res.lc_problem}")
    print(f"evaluate: AlpacaEval of {res.generator} vs {res.reference_source} judged by {res.annotators_config}: "
          f"win rate {res.win_rate:.2f}% (± {res.standard_error:.2f}; {res.n_wins} wins, {res.n_draws} draws of "
          f"{res.n_total}); {lc}")
    print(f"evaluate: wrote {res.model_outputs} and {res.results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
