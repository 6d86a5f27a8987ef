"""Write a small, seeded, randomly initialised HF checkpoint of a supported family (for tests and the demo).

`--model_type` picks the family: qwen2 (default, `Qwen2ForCausalLM`), llama (`LlamaForCausalLM`, Llama-3 field set;
`--rope_scaling_factor` writes a llama3 `rope_scaling`), qwen3 (`Qwen3ForCausalLM`, QK-norm; `--head_dim` may
differ from hidden/heads), mixtral (`MixtralForCausalLM`: `--num_experts` routed experts of `--intermediate_size`,
top `--num_experts_per_tok`) or qwen2_moe (`Qwen2MoeForCausalLM`: routed experts of `--moe_intermediate_size`, a
shared expert of `--shared_expert_intermediate_size`, `--norm_topk_prob`). See qwen_sft/tiny.py for each family's
config.json fields.

Output: `config.json` (the family's HF format), `model.safetensors`, `generation_config.json` and the
tokenizer files (from `--tokenizer_path`, default the labelled stand-in of the Qwen2.5 tokenizer, see
qwen_sft/tokenizer.py; `--no_tokenizer` writes none). Same arguments, same seed → identical files.

Example::

    python tools/make_tiny_model.py --output_path w_tiny --hidden_size 128 --num_layers 2
    python tools/make_tiny_model.py --output_path w_qwen3 --model_type qwen3 --head_dim 32 --no_tokenizer
    python tools/make_tiny_model.py --output_path w_moe --model_type mixtral --num_experts 4 --no_tokenizer

Exit status: 0 on success, 1 when the model cannot be written, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qwen_sft.tiny import DTYPES, MODEL_TYPES, QWEN25_VOCAB_ROWS, TinyModelConfig, describe, make_tiny_model
from qwen_sft.tokenizer import standin_tokenizer_dir


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (HF config names; Megatron's spellings as aliases)."""
    d = TinyModelConfig()
    p = argparse.ArgumentParser(prog="make_tiny_model.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_path", required=True, help="output folder")
    p.add_argument("--model_type", choices=sorted(MODEL_TYPES), default=d.model_type,
                   help=f"model family (default {d.model_type})")
    p.add_argument("--hidden_size", type=int, default=d.hidden_size, help=f"default {d.hidden_size}")
    p.add_argument("--num_layers", "--num_hidden_layers", dest="num_layers", type=int, default=d.num_hidden_layers,
                   help=f"default {d.num_hidden_layers}")
    p.add_argument("--num_attention_heads", type=int, default=d.num_attention_heads,
                   help=f"default {d.num_attention_heads}")
    p.add_argument("--num_key_value_heads", "--num_query_groups", dest="num_key_value_heads", type=int,
                   default=d.num_key_value_heads, help=f"GQA key/value heads (default {d.num_key_value_heads})")
    p.add_argument("--intermediate_size", "--ffn_hidden_size", dest="intermediate_size", type=int,
                   default=d.intermediate_size, help=f"default {d.intermediate_size}")
    p.add_argument("--vocab_size", type=int, default=QWEN25_VOCAB_ROWS,
                   help=f"embedding rows (default {QWEN25_VOCAB_ROWS}, Qwen2.5's)")
    tie = p.add_mutually_exclusive_group()
    tie.add_argument("--tie_word_embeddings", dest="tie", action="store_true", default=True,
                     help="share embedding and output weights (default, as Qwen2.5-0.5B/1.5B/3B)")
    tie.add_argument("--untie_word_embeddings", "--untie-embeddings-and-output-weights", dest="tie",
                     action="store_false", help="separate lm_head (as Qwen2.5-7B)")
    p.add_argument("--max_position_embeddings", type=int, default=d.max_position_embeddings,
                   help=f"default {d.max_position_embeddings}")
    p.add_argument("--rope_theta", type=float, default=d.rope_theta, help=f"default {d.rope_theta:g}")
    p.add_argument("--head_dim", "--kv_channels", dest="head_dim", type=int, default=None,
                   help="attention head size (default hidden_size / num_attention_heads)")
    p.add_argument("--rope_scaling_factor", type=float, default=None,
                   help="llama only: write rope_scaling {rope_type: llama3, factor: F, low_freq_factor: 1, "
                        "high_freq_factor: 4, original_max_position_embeddings: 8192} (Llama-3.1/3.2's form)")
    p.add_argument("--num_experts", "--num_local_experts", dest="num_experts", type=int, default=d.num_experts,
                   help=f"MoE only: routed experts per layer (default {d.num_experts})")
    p.add_argument("--num_experts_per_tok", "--moe_router_topk", dest="num_experts_per_tok", type=int,
                   default=d.num_experts_per_tok, help=f"MoE only: experts per token (default {d.num_experts_per_tok})")
    p.add_argument("--moe_intermediate_size", type=int, default=None,
                   help="qwen2_moe only: routed expert width (default intermediate_size / 2)")
    p.add_argument("--shared_expert_intermediate_size", type=int, default=None,
                   help="qwen2_moe only: shared expert width (default intermediate_size)")
    p.add_argument("--norm_topk_prob", action="store_true",
                   help="qwen2_moe only: renormalise the top-k routing weights (Mixtral always does)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=d.dtype, help=f"default {d.dtype}")
    p.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    p.add_argument("--tokenizer_path", default=None, help="copy tokenizer files from here (default: the stand-in)")
    p.add_argument("--no_tokenizer", action="store_true", help="write no tokenizer files")
    return p


def parse_config(argv: list[str] | None = None) -> tuple[TinyModelConfig, argparse.Namespace]:
    """Parse the command line into a TinyModelConfig (argparse exits with status 2 on bad arguments)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.no_tokenizer and a.tokenizer_path:
        parser.error("--no_tokenizer and --tokenizer_path exclude each other")
    rope_scaling = None
    if a.rope_scaling_factor is not None:
        if a.model_type != "llama":
            parser.error("--rope_scaling_factor is for --model_type llama only")
        rope_scaling = {"rope_type": "llama3", "factor": a.rope_scaling_factor, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    moe_only = {"--num_experts": a.num_experts != TinyModelConfig.num_experts,
                "--num_experts_per_tok": a.num_experts_per_tok != TinyModelConfig.num_experts_per_tok}
    qwen_moe_only = {"--moe_intermediate_size": a.moe_intermediate_size is not None,
                     "--shared_expert_intermediate_size": a.shared_expert_intermediate_size is not None,
                     "--norm_topk_prob": a.norm_topk_prob}
    for flag, given in moe_only.items():
        if given and a.model_type not in ("mixtral", "qwen2_moe"):
            parser.error(f"{flag} is for --model_type mixtral / qwen2_moe only")
    for flag, given in qwen_moe_only.items():
        if given and a.model_type != "qwen2_moe":
            parser.error(f"{flag} is for --model_type qwen2_moe only")
    cfg = TinyModelConfig(
        hidden_size=a.hidden_size, num_hidden_layers=a.num_layers, num_attention_heads=a.num_attention_heads,
        num_key_value_heads=a.num_key_value_heads, intermediate_size=a.intermediate_size,
        vocab_size=a.vocab_size, tie_word_embeddings=a.tie, max_position_embeddings=a.max_position_embeddings,
        rope_theta=a.rope_theta, dtype=a.dtype, seed=a.seed, model_type=a.model_type, head_dim=a.head_dim,
        rope_scaling=rope_scaling, num_experts=a.num_experts, num_experts_per_tok=a.num_experts_per_tok,
        moe_intermediate_size=a.moe_intermediate_size, shared_expert_intermediate_size=a.shared_expert_intermediate_size,
        norm_topk_prob=a.norm_topk_prob)
    try:
        cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return cfg, a


def main(argv: list[str] | None = None) -> int:
    """Write the model; print the files and the model description. Returns the exit status."""
    cfg, a = parse_config(argv)
    try:
        if a.no_tokenizer:
            tokenizer_dir = None
        elif a.tokenizer_path:
            tokenizer_dir = Path(a.tokenizer_path)
        else:
            tokenizer_dir = standin_tokenizer_dir()
        files = make_tiny_model(a.output_path, cfg, tokenizer_dir=tokenizer_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"make_tiny_model.py: error: {exc}", file=sys.stderr)
        return 1
    for f in files:
        print(f"  wrote {f} ({Path(f).stat().st_size:,} bytes)")
    print(json.dumps(dict(describe(cfg), output_path=str(a.output_path),
                          tokenizer=str(tokenizer_dir) if tokenizer_dir else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
