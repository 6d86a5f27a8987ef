#!/usr/bin/env bash
# The main job on the embedded default (no data or weights outside the repository, no network):
#   1. generate a small zh/en instruction dataset (tools/make_demo_data.py)
#   2. make a tiny random Qwen2 model with the labelled stand-in Qwen2.5 tokenizer (tools/make_tiny_model.py)
#   3. convert the data with the chat template and label masks (scripts/data_convert_qwen25_instruction.sh)
#   4. train with 2 processes through `python -m torch.distributed.launch` (scripts/tune_qwen25_7b_4k_full_ms.sh;
#      DP=2 by default, TP=2 with DEMO_TP=2)
#   5. generate before and after training (scripts/generate_qwen25_7b_ms.sh) and evaluate the valid split.
# Runs on the reference backend (real PyTorch). Everything lands in $DEMO_DIR (default runs/demo).
# Usage: bash scripts/setup_env.sh && bash scripts/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DEMO_DIR="${DEMO_DIR:-$ROOT/runs/demo}"
DEMO_TP="${DEMO_TP:-1}"
DEMO_STEPS="${DEMO_STEPS:-60}"
export PYTHON HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
START=$(date +%s)

echo "== 1/5 demo data"
"$PYTHON" "$ROOT/tools/make_demo_data.py" --output_path "$DEMO_DIR/d_ori/demo.json" --num_samples 1024 --seed 0

echo "== 2/5 tiny Qwen2 model (stand-in Qwen2.5 tokenizer)"
"$PYTHON" "$ROOT/tools/make_tiny_model.py" --output_path "$DEMO_DIR/w_ori" \
    --hidden_size 128 --num_layers 2 --num_attention_heads 4 --num_key_value_heads 2 \
    --intermediate_size 256 --seed 0

echo "== 3/5 data conversion"
INPUT_PATH="$DEMO_DIR/d_ori/demo.json" TOKENIZER_PATH="$DEMO_DIR/w_ori" OUTPUT_PATH="$DEMO_DIR/d_convert" \
SEQ_LENGTH=128 SPLIT_RATIO=0.95 \
    bash "$ROOT/scripts/data_convert_qwen25_instruction.sh" --no_progress

PROMPTS="$DEMO_DIR/prompts.jsonl"
cat > "$PROMPTS" <<'JSON'
{"instruction": "What is 3 + 4? Answer with the number only.", "input": ""}
{"instruction": "Reverse the letters of the word \"star\".", "input": ""}
{"instruction": "把单词“moon”写成大写字母。", "input": ""}
{"instruction": "Repeat the word twice.", "input": "fish"}
JSON

echo "== 4/5 training: 2 processes, TP=$DEMO_TP, $DEMO_STEPS steps"
MASTER_PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RANK_SIZE=2 DEVICE_NUM=2 TP="$DEMO_TP" PP=1 MASTER_PORT="$MASTER_PORT" \
MODEL_PATH="$DEMO_DIR/w_ori" TOKENIZER_PATH="$DEMO_DIR/w_ori" DATA_PATH="$DEMO_DIR/d_convert" \
OUTPUT_PATH="$DEMO_DIR/w_tune" SEQ_LENGTH=128 BATCH_SIZE=16 LEARNING_RATE=3e-3 EPOCHS=1 SAVE_STEPS=0 \
MIXED_PRECISION=fp32 \
    bash "$ROOT/scripts/tune_qwen25_7b_4k_full_ms.sh" \
    --micro_batch_size 8 --train_iters "$DEMO_STEPS" --lr_warmup_fraction 0.05 --min_lr 3e-4 \
    --weight_decay 0.0 --log_interval 10

echo "== 5/5 generation before and after training"
for W in w_ori w_tune; do
    MODEL_PATH="$DEMO_DIR/$W" TOKENIZER_PATH="" SEQ_LENGTH=128 MAX_NEW_TOKENS=8 PROMPT="" \
    INPUT_FILE="$PROMPTS" OUTPUT_FILE="$DEMO_DIR/generate_$W.jsonl" \
        bash "$ROOT/scripts/generate_qwen25_7b_ms.sh" --no_progress
done
"$PYTHON" "$ROOT/tools/evaluate.py" --model_path "$DEMO_DIR/w_tune" --data_path "$DEMO_DIR/d_convert" --no_progress

"$PYTHON" - "$DEMO_DIR" <<'PY'
import json, sys
d = sys.argv[1]
rows = {w: [json.loads(l) for l in open(f"{d}/generate_{w}.jsonl", encoding="utf-8")] for w in ("w_ori", "w_tune")}
print(f"{'prompt':48s} | {'before training':20s} | after training")
for a, b in zip(rows["w_ori"], rows["w_tune"]):
    p = a.get("prompt_text") or a.get("prompt") or ""
    p = p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)
    print(f"{p[-48:].replace(chr(10), ' '):48s} | {a.get('output', '')[:20]!r:20s} | {b.get('output', '')!r}")
PY
echo "demo finished in $(( $(date +%s) - START )) s; outputs in $DEMO_DIR"
