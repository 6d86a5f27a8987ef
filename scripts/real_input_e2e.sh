#!/usr/bin/env bash
# The workflow end to end on real input, through the three workflow scripts with the original flags:
#   data_convert_qwen25_instruction.sh  (../shared/data/alpaca_zh_demo.json, the real Qwen2.5 tokenizer)
#   convert_ckpt.py hf2mg               (w_ori -> w_transfer, TP=2: the original's conversion step)
#   tune_qwen25_7b_4k_full_ms.sh        (2 processes, TP=2 by default, from the converted checkpoint)
#   generate_qwen25_7b_ms.sh            (the original's prompt) and evaluate.py
# The model is a tiny random model (2 layers) of MODEL_FAMILY carrying the real Qwen2.5 tokenizer, so it runs on
# 2 CPU cores in minutes: qwen2 (default), llama (Llama-3 style: no bias, rope_theta 5e5, llama3 RoPE scaling,
# untied), qwen3 (QK-norm, head_dim 32 != hidden/heads), mixtral (4 routed experts, top 2) or qwen2_moe (4 routed
# experts of width 64, top 2, a gated shared expert of width 128). The MoE families convert and train with expert
# parallelism: EP=2, TP=1 unless TP/EP are given (the 2 processes are the expert-parallel group). Point MODEL_PATH
# at a real model directory (and raise the sizes) for a real run; its config.json decides the family then.
# Env: SHARED (default <repo>/../shared), WORK_DIR (default runs/real_input), TP, PP, EP, TRAIN_ITERS, MODEL_PATH,
#      MODEL_FAMILY (qwen2 | llama | qwen3 | mixtral | qwen2_moe; default qwen2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SHARED="${SHARED:-$ROOT/../shared}"
WORK_DIR="${WORK_DIR:-$ROOT/runs/real_input}"
PP="${PP:-1}"
TRAIN_ITERS="${TRAIN_ITERS:-10}"
MODEL_FAMILY="${MODEL_FAMILY:-qwen2}"
case "$MODEL_FAMILY" in
    qwen2) FAMILY_ARGS=() ;;
    llama) FAMILY_ARGS=(--rope_theta 500000 --rope_scaling_factor 32 --max_position_embeddings 131072
                        --untie_word_embeddings) ;;
    qwen3) FAMILY_ARGS=(--head_dim 32) ;;
    mixtral) FAMILY_ARGS=(--num_experts 4 --num_experts_per_tok 2 --untie_word_embeddings) ;;
    qwen2_moe) FAMILY_ARGS=(--num_experts 4 --num_experts_per_tok 2 --moe_intermediate_size 64
                            --shared_expert_intermediate_size 128 --untie_word_embeddings) ;;
    *) echo "real_input_e2e: MODEL_FAMILY=$MODEL_FAMILY is not one of qwen2, llama, qwen3, mixtral, qwen2_moe" >&2
       exit 2 ;;
esac
case "$MODEL_FAMILY" in
    mixtral|qwen2_moe) TP="${TP:-1}"; EP="${EP:-2}" ;;
    *) TP="${TP:-2}"; EP="${EP:-1}" ;;
esac
TOKENIZER="$SHARED/assets/qwen2.5-tokenizer"
DATA="$SHARED/data/alpaca_zh_demo.json"
export PYTHON HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
for f in "$TOKENIZER/vocab.json" "$DATA"; do
    [[ -e "$f" ]] || { echo "real_input_e2e: missing $f (set SHARED=/path/to/shared)" >&2; exit 2; }
done
mkdir -p "$WORK_DIR"

echo "== data_convert (real tokenizer, alpaca_zh_demo.json)"
INPUT_PATH="$DATA" TOKENIZER_PATH="$TOKENIZER" OUTPUT_PATH="$WORK_DIR/d_convert" SEQ_LENGTH=1024 \
    bash "$ROOT/scripts/data_convert_qwen25_instruction.sh" --no_progress

if [[ -z "${MODEL_PATH:-}" ]]; then
    echo "== tiny $MODEL_FAMILY model with the real tokenizer"
    "$PYTHON" "$ROOT/tools/make_tiny_model.py" --output_path "$WORK_DIR/w_ori" --tokenizer_path "$TOKENIZER" \
        --model_type "$MODEL_FAMILY" --hidden_size 64 --num_layers 2 --num_attention_heads 4 \
        --num_key_value_heads 2 --intermediate_size 128 "${FAMILY_ARGS[@]}"
    MODEL_PATH="$WORK_DIR/w_ori"
fi

echo "== convert_ckpt hf2mg (TP=$TP, PP=$PP, EP=$EP)"
"$PYTHON" "$ROOT/tools/convert_ckpt.py" --direction hf2mg --model_path "$MODEL_PATH" \
    --output_path "$WORK_DIR/w_transfer" --tp "$TP" --pp "$PP" --ep "$EP"

echo "== train: 2 processes, TP=$TP PP=$PP EP=$EP, $TRAIN_ITERS steps"
MASTER_PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RANK_SIZE=2 DEVICE_NUM=2 TP="$TP" PP="$PP" MASTER_PORT="$MASTER_PORT" \
MODEL_PATH="$WORK_DIR/w_transfer" TOKENIZER_PATH="$TOKENIZER" DATA_PATH="$WORK_DIR/d_convert" \
OUTPUT_PATH="$WORK_DIR/w_tune" SEQ_LENGTH=1024 BATCH_SIZE=4 LEARNING_RATE=1e-4 SAVE_STEPS=5 \
MIXED_PRECISION="${MIXED_PRECISION:-bf16}" \
    bash "$ROOT/scripts/tune_qwen25_7b_4k_full_ms.sh" --train_iters "$TRAIN_ITERS" --log_interval 1 --ep "$EP"

echo "== generate (the original prompt) and evaluate"
MODEL_PATH="$WORK_DIR/w_tune" TOKENIZER_PATH="" SEQ_LENGTH=1024 MAX_NEW_TOKENS=16 \
OUTPUT_FILE="$WORK_DIR/generate.jsonl" \
    bash "$ROOT/scripts/generate_qwen25_7b_ms.sh" --no_progress
"$PYTHON" "$ROOT/tools/evaluate.py" --model_path "$WORK_DIR/w_tune" --data_path "$WORK_DIR/d_convert" \
    --max_samples 16 --no_progress
echo "real_input_e2e: done; outputs in $WORK_DIR"
