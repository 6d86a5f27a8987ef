#!/usr/bin/env bash
# Step 3 of the Qwen2.5 SFT workflow: full-parameter fine-tuning (w_ori + d_convert -> w_tune).
# Same flags as the original workflow's training command, launched the same way
# (`python -m torch.distributed.launch --nproc_per_node=$DEVICE_NUM`). Every path and value can be overridden
# by an environment variable, e.g. a 2-process CPU run of a tiny model:
#   DEVICE_NUM=2 TP=2 MODEL_PATH=/tmp/tiny DATA_PATH=/tmp/d_convert TOKENIZER_PATH=/tmp/tiny OUTPUT_PATH=/tmp/w_tune \
#   SEQ_LENGTH=512 BATCH_SIZE=4 MIXED_PRECISION=fp32 bash scripts/tune_qwen25_7b_4k_full_ms.sh --train_iters 10
# Extra arguments are passed through to tools/train.py.
#
# Ranks come from the launcher (RANK / LOCAL_RANK / WORLD_SIZE for every process). RANK_SIZE and DEVICE_NUM are
# kept from the original (DEVICE_NUM = processes on this node, default RANK_SIZE); the original also exported
# RANK_ID=0 for every process, which is harmless here because RANK takes precedence over RANK_ID.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

export RANK_SIZE="${RANK_SIZE:-4}"
DEVICE_NUM="${DEVICE_NUM:-$RANK_SIZE}"
MASTER_PORT="${MASTER_PORT:-29500}"

MODEL_NAME="${MODEL_NAME:-qwen2.5-7b}"
MODEL_PATH="${MODEL_PATH:-w_ori}"
OUTPUT_PATH="${OUTPUT_PATH:-w_tune}"
DATA_PATH="${DATA_PATH:-d_convert}"
TOKENIZER_PATH="${TOKENIZER_PATH:-$MODEL_PATH}"
SEQ_LENGTH="${SEQ_LENGTH:-4096}"
BATCH_SIZE="${BATCH_SIZE:-8}"          # global batch in samples per optimizer step
MICRO_BATCH_SIZE="${MICRO_BATCH_SIZE:-1}"
TP="${TP:-2}"                          # tensor-parallel size
PP="${PP:-1}"                          # pipeline-parallel size
LEARNING_RATE="${LEARNING_RATE:-2e-5}"
EPOCHS="${EPOCHS:-3}"
SAVE_STEPS="${SAVE_STEPS:-1000}"
MIXED_PRECISION="${MIXED_PRECISION:-bf16}"
SEED="${SEED:-1234}"

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

# Flags that take a comment are kept on their own lines *without* a trailing comment, so every line but the last
# ends in a backslash (the original's `--tp 2 # comment` lines cut the command short).
exec "$PYTHON" -m torch.distributed.launch --nproc_per_node="$DEVICE_NUM" --master_port="$MASTER_PORT" \
    "$ROOT/tools/train.py" \
    --model_name "$MODEL_NAME" \
    --model_path "$MODEL_PATH" \
    --output_path "$OUTPUT_PATH" \
    --data_path "$DATA_PATH" \
    --tokenizer_path "$TOKENIZER_PATH" \
    --seq_length "$SEQ_LENGTH" \
    --batch_size "$BATCH_SIZE" \
    --micro_batch_size "$MICRO_BATCH_SIZE" \
    --tp "$TP" \
    --pp "$PP" \
    --learning_rate "$LEARNING_RATE" \
    --epochs "$EPOCHS" \
    --save_steps "$SAVE_STEPS" \
    --mixed_precision "$MIXED_PRECISION" \
    --seed "$SEED" \
    "$@"
