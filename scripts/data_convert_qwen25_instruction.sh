#!/usr/bin/env bash
# Step 1 of the Qwen2.5 SFT workflow: Alpaca JSON -> tokenized Megatron dataset (d_ori -> d_convert).
# Same flags as the original workflow's data-conversion command; every path/value can be overridden by an
# environment variable, e.g.
#   INPUT_PATH=../shared/data/alpaca_zh_demo.json TOKENIZER_PATH=../shared/assets/qwen2.5-tokenizer \
#   OUTPUT_PATH=/tmp/d_convert bash scripts/data_convert_qwen25_instruction.sh
# TOKENIZER_PATH may be set to an empty string to use the labelled stand-in tokenizer (tests, demo).
# Extra arguments are passed through to tools/data_convert.py (e.g. --workers 2 --skip_bad_records).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

INPUT_PATH="${INPUT_PATH:-d_ori/alpaca_data.json}"
TOKENIZER_PATH="${TOKENIZER_PATH-w_ori}"
OUTPUT_PATH="${OUTPUT_PATH:-d_convert}"
SEQ_LENGTH="${SEQ_LENGTH:-4096}"
SPLIT_RATIO="${SPLIT_RATIO:-0.95}"
SEED="${SEED:-1234}"
WORKERS="${WORKERS:-1}"
OVERLENGTH="${OVERLENGTH:-drop}"

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

TOKENIZER_ARGS=()
if [[ -n "$TOKENIZER_PATH" ]]; then
    TOKENIZER_ARGS=(--tokenizer_path "$TOKENIZER_PATH")
fi
SYSTEM_ARGS=()
if [[ -n "${SYSTEM_PROMPT:-}" ]]; then
    SYSTEM_ARGS=(--system_prompt "$SYSTEM_PROMPT")
fi

exec "$PYTHON" "$ROOT/tools/data_convert.py" \
    --input_path "$INPUT_PATH" \
    "${TOKENIZER_ARGS[@]}" \
    --output_path "$OUTPUT_PATH" \
    --seq_length "$SEQ_LENGTH" \
    --split_ratio "$SPLIT_RATIO" \
    --seed "$SEED" \
    --workers "$WORKERS" \
    --overlength "$OVERLENGTH" \
    "${SYSTEM_ARGS[@]}" \
    "$@"
