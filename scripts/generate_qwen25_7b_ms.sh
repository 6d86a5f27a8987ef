#!/usr/bin/env bash
# Step 4 of the Qwen2.5 SFT workflow: generate with the fine-tuned model (w_tune), chat-templated, KV-cached.
# Same flags as the original workflow's generation command; every path/value can be overridden by an environment
# variable, e.g.
#   MODEL_PATH=/tmp/w_tune TOKENIZER_PATH= PROMPT="Reverse the word cat." bash scripts/generate_qwen25_7b_ms.sh
# TOKENIZER_PATH may be set to an empty string to use the tokenizer saved with the model (recommended: it is the
# one the model was trained with; tools/generate.py warns when --tokenizer_path differs from it).
# INPUT_FILE / OUTPUT_FILE add a prompt file (Alpaca JSON, JSON Lines or text) and a JSON Lines result file;
# PROMPT may be set to an empty string when INPUT_FILE is given.
# Generation runs in one process (TP=1): RANK_SIZE / DEVICE_NUM of the training script do not apply here.
# Extra arguments are passed through to tools/generate.py (e.g. --temperature 0.7 --top_p 0.8 --batch_size 4).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

MODEL_NAME="${MODEL_NAME:-qwen2.5-7b}"
MODEL_PATH="${MODEL_PATH:-w_tune}"
TOKENIZER_PATH="${TOKENIZER_PATH-w_ori}"
SEQ_LENGTH="${SEQ_LENGTH:-4096}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-512}"
PROMPT="${PROMPT-请详细解释什么是大语言模型的全量微调？}"
INPUT_FILE="${INPUT_FILE:-}"
OUTPUT_FILE="${OUTPUT_FILE:-}"

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

TOKENIZER_ARGS=()
if [[ -n "$TOKENIZER_PATH" ]]; then
    TOKENIZER_ARGS=(--tokenizer_path "$TOKENIZER_PATH")
fi
PROMPT_ARGS=()
if [[ -n "$PROMPT" ]]; then
    PROMPT_ARGS=(--prompt "$PROMPT")
fi
FILE_ARGS=()
if [[ -n "$INPUT_FILE" ]]; then
    FILE_ARGS+=(--input_file "$INPUT_FILE")
fi
if [[ -n "$OUTPUT_FILE" ]]; then
    FILE_ARGS+=(--output_file "$OUTPUT_FILE")
fi
SYSTEM_ARGS=()
if [[ -n "${SYSTEM_PROMPT:-}" ]]; then
    SYSTEM_ARGS=(--system_prompt "$SYSTEM_PROMPT")
fi

exec "$PYTHON" "$ROOT/tools/generate.py" \
    --model_name "$MODEL_NAME" \
    --model_path "$MODEL_PATH" \
    "${TOKENIZER_ARGS[@]}" \
    --seq_length "$SEQ_LENGTH" \
    --max_new_tokens "$MAX_NEW_TOKENS" \
    "${PROMPT_ARGS[@]}" \
    "${FILE_ARGS[@]}" \
    "${SYSTEM_ARGS[@]}" \
    "$@"
