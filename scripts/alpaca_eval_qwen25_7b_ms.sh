#!/usr/bin/env bash
# Step 5 of the Qwen2.5 SFT workflow: AlpacaEval on the fine-tuned model (w_tune), the original walkthrough's last
# step. Runs tools/evaluate.py --alpaca_eval (needs the `eval` extra: pip install -e '.[eval]'): answers for the
# instruction set, OUT/model_outputs.json in AlpacaEval's format, then AlpacaEval's judging, win rate and
# length-controlled win rate. Every value can be overridden by an environment variable, e.g.
#   OPENAI_API_KEY=... MODEL_PATH=/tmp/w_tune bash scripts/alpaca_eval_qwen25_7b_ms.sh
#   INSTRUCTIONS=my.jsonl REFERENCE_OUTPUTS=ref.json ANNOTATORS_CONFIG=my_judge/configs.yaml bash scripts/…
# INSTRUCTIONS / REFERENCE_OUTPUTS empty (default): AlpacaEval's own set from the Hugging Face cache
# (`hf download tatsu-lab/alpaca_eval --repo-type dataset`). ANNOTATORS_CONFIG empty: AlpacaEval 2.0's default judge
# (GPT-4 Turbo, needs OPENAI_API_KEY). Exit status 3: outputs written, not judged (the message says what to set).
# Generation runs in one process (TP=1). Extra arguments are passed through to tools/evaluate.py
# (e.g. --batch_size 16 --max_samples 50 --generate_only --judge_fn my_judge.py:complete).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

MODEL_NAME="${MODEL_NAME:-qwen2.5-7b-sft}"
MODEL_PATH="${MODEL_PATH:-w_tune}"
OUT="${OUT:-$MODEL_PATH/alpaca_eval}"
SEQ_LENGTH="${SEQ_LENGTH:-4096}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-2048}"
INSTRUCTIONS="${INSTRUCTIONS:-}"
REFERENCE_OUTPUTS="${REFERENCE_OUTPUTS:-}"
ANNOTATORS_CONFIG="${ANNOTATORS_CONFIG:-}"

ARGS=()
if [[ -n "$INSTRUCTIONS" ]]; then
    ARGS+=(--instructions "$INSTRUCTIONS")
fi
if [[ -n "$REFERENCE_OUTPUTS" ]]; then
    ARGS+=(--reference_outputs "$REFERENCE_OUTPUTS")
fi
if [[ -n "$ANNOTATORS_CONFIG" ]]; then
    ARGS+=(--annotators_config "$ANNOTATORS_CONFIG")
fi

exec "$PYTHON" "$ROOT/tools/evaluate.py" \
    --model_path "$MODEL_PATH" \
    --alpaca_eval "$OUT" \
    --model_name "$MODEL_NAME" \
    --seq_length "$SEQ_LENGTH" \
    --max_new_tokens "$MAX_NEW_TOKENS" \
    "${ARGS[@]}" \
    "$@"
