#!/usr/bin/env bash
# The main job on the embedded default (no data or weights outside the repository, no network):
#   1. generate a small zh/en instruction dataset and its held-out prompts (tools/make_demo_data.py)
#   2. make a tiny random Qwen2 model with the labelled stand-in Qwen2.5 tokenizer (tools/make_tiny_model.py)
#   3. convert the data with the chat template and label masks (scripts/data_convert_qwen25_instruction.sh)
#   4. train with 2 processes through `python -m torch.distributed.launch` (scripts/tune_qwen25_7b_4k_full_ms.sh;
#      TP=2 by default, DP=2 with DEMO_TP=1)
#   5. generate the held-out prompts before and after training (scripts/generate_qwen25_7b_ms.sh), evaluate the
#      valid split, and print the accuracy per task before vs after (tools/demo_report.py).
# Runs on the reference backend (real PyTorch). Everything lands in $DEMO_DIR (default runs/demo).
# DEMO_STEPS (optimizer steps), DEMO_SAMPLES (generated training records), DEMO_TP (1 or 2) may be overridden.
# Usage: bash scripts/setup_env.sh && bash scripts/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DEMO_DIR="${DEMO_DIR:-$ROOT/runs/demo}"
DEMO_TP="${DEMO_TP:-2}"
DEMO_STEPS="${DEMO_STEPS:-150}"
DEMO_SAMPLES="${DEMO_SAMPLES:-2048}"
# A short system prompt for conversion and generation alike: Qwen2.5's default one would make every sample about
# 40% longer, and the 151,936-wide output layer runs over every position, so the step time grows with it.
DEMO_SYSTEM_PROMPT="Answer briefly."
# Quiet the dependencies' deprecation / fallback warnings (Apex, Transformer Engine, torch.distributed.launch) so
# the demo's own output stays readable; the launcher's OMP_NUM_THREADS notice goes away when it is set.
export PYTHON HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
START=$(date +%s)
stage() { echo "== $1   [$(( $(date +%s) - START )) s]"; }

stage "1/5 demo data"
"$PYTHON" "$ROOT/tools/make_demo_data.py" --output_path "$DEMO_DIR/d_ori/demo.json" \
    --num_samples "$DEMO_SAMPLES" --seed 0 --heldout_path "$DEMO_DIR/d_ori/heldout.jsonl"

stage "2/5 tiny Qwen2 model (stand-in Qwen2.5 tokenizer)"
"$PYTHON" "$ROOT/tools/make_tiny_model.py" --output_path "$DEMO_DIR/w_ori" \
    --hidden_size 128 --num_layers 2 --num_attention_heads 4 --num_key_value_heads 2 \
    --intermediate_size 256 --untie_word_embeddings --seed 0 | grep -v '^  wrote'

stage "3/5 data conversion"
INPUT_PATH="$DEMO_DIR/d_ori/demo.json" TOKENIZER_PATH="$DEMO_DIR/w_ori" OUTPUT_PATH="$DEMO_DIR/d_convert" \
SEQ_LENGTH=64 SPLIT_RATIO=0.95 SYSTEM_PROMPT="$DEMO_SYSTEM_PROMPT" \
    bash "$ROOT/scripts/data_convert_qwen25_instruction.sh" --no_progress

stage "4/5 training: 2 processes, TP=$DEMO_TP, $DEMO_STEPS steps"
MASTER_PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
OMP_NUM_THREADS=1 RANK_SIZE=2 DEVICE_NUM=2 TP="$DEMO_TP" PP=1 MASTER_PORT="$MASTER_PORT" \
MODEL_PATH="$DEMO_DIR/w_ori" TOKENIZER_PATH="$DEMO_DIR/w_ori" DATA_PATH="$DEMO_DIR/d_convert" \
OUTPUT_PATH="$DEMO_DIR/w_tune" SEQ_LENGTH=64 BATCH_SIZE=16 LEARNING_RATE=3e-3 EPOCHS=1 SAVE_STEPS=0 \
MIXED_PRECISION=fp32 \
    bash "$ROOT/scripts/tune_qwen25_7b_4k_full_ms.sh" \
    --micro_batch_size "$(( DEMO_TP == 2 ? 16 : 8 ))" --train_iters "$DEMO_STEPS" --lr_warmup_fraction 0.05 \
    --min_lr 3e-4 --weight_decay 0.0 --log_interval 10 2>&1 \
    | grep --line-buffered -v -e '^Implicit initialization' -e '^RerunStateMachine'

stage "5/5 generation of the held-out prompts before and after training"
for W in w_ori w_tune; do
    MODEL_PATH="$DEMO_DIR/$W" TOKENIZER_PATH="" SEQ_LENGTH=64 MAX_NEW_TOKENS=6 PROMPT="" \
    SYSTEM_PROMPT="$DEMO_SYSTEM_PROMPT" \
    INPUT_FILE="$DEMO_DIR/d_ori/heldout.jsonl" OUTPUT_FILE="$DEMO_DIR/generate_$W.jsonl" \
        bash "$ROOT/scripts/generate_qwen25_7b_ms.sh" --no_progress --batch_size 32
done
"$PYTHON" "$ROOT/tools/evaluate.py" --model_path "$DEMO_DIR/w_tune" --data_path "$DEMO_DIR/d_convert" --no_progress

echo
"$PYTHON" "$ROOT/tools/demo_report.py" --before "$DEMO_DIR/generate_w_ori.jsonl" \
    --after "$DEMO_DIR/generate_w_tune.jsonl" --examples 8
echo "demo finished in $(( $(date +%s) - START )) s; outputs in $DEMO_DIR"
