"""qwen_sft.model: vocabulary padding, HF → TransformerConfig mapping, and GPTModel logits equal to HF transformers.

The logits tests build megatron-core's GPTModel from converted tiny random Qwen2 weights and compare with
`transformers.Qwen2ForCausalLM` on the same folder: TP=1 in-process (1-process gloo group), TP=2 as a 2-process
torchrun subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qwen_sft.model import causal_attention_mask, padded_vocab_size, transformer_config_from_hf
from qwen_sft.tiny import TinyQwen2Config, make_tiny_model
from tests.helpers.megatron_env import free_port, megatron_parallel

REPO = Path(__file__).resolve().parents[2]
VOCAB = 1000  # pads to 1024 at TP=1/2: the padding rows are exercised


def qwen_config(**kw):
    base = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=128, vocab_size=VOCAB, rms_norm_eps=1e-6, rope_theta=1e6,
                tie_word_embeddings=True, hidden_act="silu", attention_dropout=0.0, initializer_range=0.02)
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "vocab, tp, divisible, expected",
    [(151936, 1, 128, 151936), (151936, 2, 128, 152064), (151936, 4, 128, 152064), (151936, 8, 128, 152576),
     (152064, 4, 128, 152064), (1000, 1, 128, 1024), (1000, 2, 128, 1024), (1000, 3, 128, 1152), (7, 1, 1, 7)],
)
def test_padded_vocab_size(vocab, tp, divisible, expected):
    assert padded_vocab_size(vocab, tp, divisible) == expected


@pytest.mark.parametrize("args", [(0, 1), (100, 0), (100, 1, 0), (100.0, 1)])
def test_padded_vocab_size_rejects_bad_input(args):
    with pytest.raises(ValueError, match="must be a positive int"):
        padded_vocab_size(*args)


def test_transformer_config_maps_qwen_fields():
    cfg = transformer_config_from_hf(qwen_config(rms_norm_eps=1e-5, initializer_range=0.01),
                                     tensor_model_parallel_size=2, pipeline_model_parallel_size=2,
                                     params_dtype=torch.bfloat16, bf16=True)
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_query_groups) == (2, 64, 4, 2)
    assert (cfg.ffn_hidden_size, cfg.kv_channels, cfg.layernorm_epsilon) == (128, 16, 1e-5)
    assert cfg.normalization == "RMSNorm" and cfg.gated_linear_unit and cfg.activation_func is F.silu
    assert cfg.add_qkv_bias and not cfg.add_bias_linear
    assert cfg.hidden_dropout == 0.0 and cfg.attention_dropout == 0.0 and cfg.init_method_std == 0.01
    assert cfg.use_cpu_initialization and not cfg.sequence_parallel
    assert cfg.tensor_model_parallel_size == 2 and cfg.pipeline_model_parallel_size == 2
    assert cfg.params_dtype == torch.bfloat16 and cfg.pipeline_dtype == torch.bfloat16 and cfg.bf16
    assert not (cfg.apply_rope_fusion or cfg.masked_softmax_fusion or cfg.bias_activation_fusion)


def test_transformer_config_overrides_and_explicit_head_dim():
    cfg = transformer_config_from_hf(qwen_config(head_dim=32), hidden_dropout=0.1, calculate_per_token_loss=True)
    assert cfg.kv_channels == 32 and cfg.hidden_dropout == 0.1 and cfg.calculate_per_token_loss


@pytest.mark.parametrize(
    "config, kwargs, error, match",
    [
        (qwen_config(hidden_act="gelu"), {}, NotImplementedError, "hidden_act='gelu'"),
        (qwen_config(use_sliding_window=True), {}, NotImplementedError, "sliding-window"),
        (qwen_config(rope_scaling={"rope_type": "yarn", "factor": 4.0}), {}, NotImplementedError, "rope_scaling"),
        ({k: v for k, v in qwen_config().items() if k != "rms_norm_eps"}, {}, ValueError, "rms_norm_eps"),
        (qwen_config(), {"tensor_model_parallel_size": 4}, ValueError, "num_key_value_heads=2"),
        (qwen_config(), {"pipeline_model_parallel_size": 3}, ValueError, "num_hidden_layers=2"),
        (qwen_config(), {"bf16": True, "fp16": True}, ValueError, "mutually exclusive"),
        (qwen_config(), {"no_such_field": 1}, ValueError, "no_such_field"),
    ],
)
def test_transformer_config_errors(config, kwargs, error, match):
    with pytest.raises(error, match=match):
        transformer_config_from_hf(config, **kwargs)


def test_causal_attention_mask_is_megatron_convention():
    mask = causal_attention_mask(4, batch=3)
    assert mask.shape == (3, 1, 4, 4) and mask.dtype == torch.bool
    expected = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask[2, 0], expected)
    with pytest.raises(ValueError, match="seq_length"):
        causal_attention_mask(0)


def _hf_logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_gpt_model_logits_match_hf_tp1(tmp_path, tied):
    from qwen_sft import hf_io
    from qwen_sft.weight_map import hf_to_megatron
    from qwen_sft.model import build_gpt_model

    make_tiny_model(tmp_path, TinyQwen2Config(vocab_size=VOCAB, tie_word_embeddings=tied, seed=3))
    hf_config = hf_io.load_hf_config(tmp_path)
    shard = hf_to_megatron(hf_io.load_hf_state_dict(tmp_path), hf_config, 1, 1)[(0, 0)]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    reference = _hf_logits(tmp_path, ids)
    with megatron_parallel():
        config = transformer_config_from_hf(hf_config)
        model = build_gpt_model(hf_config, config, padded_vocab_size=padded_vocab_size(VOCAB, 1), seq_length=32,
                                pre_process=True, post_process=True)
        result = model.load_state_dict(shard, strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        model.eval()
        with torch.no_grad():
            logits = model(ids, torch.arange(24).expand(2, 24), causal_attention_mask(24, 2))
    assert logits.shape == (2, 24, 1024)
    rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
    assert rel.item() <= 1e-5, f"relative error {rel.item():.3e}"
    # The padding rows are zero, so the padded logits are exactly 0.
    assert torch.count_nonzero(logits[..., VOCAB:]) == 0


_TP2_WORKER = r"""
import json, os, sys, torch
from qwen_sft import cpu_accelerator, hf_io
from qwen_sft.weight_map import hf_to_megatron
from qwen_sft.model import build_gpt_model, causal_attention_mask, padded_vocab_size, transformer_config_from_hf
from tests.helpers.megatron_env import megatron_parallel
model_dir, out_dir, tp, pp = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
init = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
hf_config = hf_io.load_hf_config(model_dir)
shards = hf_to_megatron(hf_io.load_hf_state_dict(model_dir), hf_config, tp, pp)
ids = torch.randint(0, hf_config["vocab_size"], (2, 24), generator=torch.Generator().manual_seed(0))
with megatron_parallel(tp, pp, rank=rank, world_size=world, init_method=init):
    from megatron.core import parallel_state as ps
    t, p = ps.get_tensor_model_parallel_rank(), ps.get_pipeline_model_parallel_rank()
    config = transformer_config_from_hf(hf_config, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)
    model = build_gpt_model(hf_config, config, padded_vocab_size=padded_vocab_size(hf_config["vocab_size"], tp),
                            seq_length=32, pre_process=ps.is_pipeline_first_stage(),
                            post_process=ps.is_pipeline_last_stage(), parallel_output=False)
    own_keys = sorted(model.state_dict().keys())
    result = model.load_state_dict(shards[(t, p)], strict=True)
    model.eval()
    positions, mask = torch.arange(24).expand(2, 24), causal_attention_mask(24, 2)
    with torch.no_grad():
        if pp == 1:
            torch.save(model(ids, positions, mask), os.path.join(out_dir, f"logits_{rank}.pt"))
        elif p == 0:  # first stage: hidden states [s, b, h] go to the last stage (global rank 1)
            torch.distributed.send(model(ids, positions, mask).contiguous(), dst=1)
        else:
            hidden = torch.empty(24, 2, hf_config["hidden_size"])
            torch.distributed.recv(hidden, src=0)
            model.set_input_tensor(hidden)
            torch.save(model(None, positions, mask), os.path.join(out_dir, f"logits_{rank}.pt"))
    with open(os.path.join(out_dir, f"rank_{rank}.json"), "w") as f:
        json.dump({"tp_rank": t, "pp_rank": p, "keys": own_keys, "shard_keys": sorted(shards[(t, p)]),
                   "missing": result.missing_keys, "unexpected": result.unexpected_keys}, f)
"""


def _torchrun(tmp_path: Path, model_dir: Path, tp: int, pp: int) -> list[dict]:
    worker = tmp_path / "worker.py"
    worker.write_text(_TP2_WORKER)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(tp * pp),
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(worker), str(model_dir), str(out), str(tp), str(pp)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank_{r}.json").read_text()) for r in range(tp * pp)], out


def test_gpt_model_logits_match_hf_tp2_torchrun(tmp_path):
    """2 processes, TP=2, untied: shards load strictly into each rank's model; gathered logits equal HF's."""
    model_dir = tmp_path / "tiny"
    make_tiny_model(model_dir, TinyQwen2Config(vocab_size=VOCAB, tie_word_embeddings=False, seed=5))
    ranks, out = _torchrun(tmp_path, model_dir, tp=2, pp=1)
    for info in ranks:
        assert info["keys"] == info["shard_keys"] and not info["missing"] and not info["unexpected"]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    reference = _hf_logits(model_dir, ids)
    for r in range(2):
        logits = torch.load(out / f"logits_{r}.pt")
        assert logits.shape == (2, 24, 1024)
        rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
        assert rel.item() <= 1e-5, f"rank {r}: relative error {rel.item():.3e}"


def test_shards_and_logits_pp2_tied_torchrun(tmp_path):
    """2 processes, PP=2, tied embeddings: each stage's shard has exactly the stage model's state_dict keys
    (the last stage holds output_layer.weight) and loads strictly; stage 0 → stage 1 logits equal HF's."""
    model_dir = tmp_path / "tiny"
    make_tiny_model(model_dir, TinyQwen2Config(vocab_size=VOCAB, tie_word_embeddings=True, seed=6))
    ranks, out = _torchrun(tmp_path, model_dir, tp=1, pp=2)
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    reference = _hf_logits(model_dir, ids)
    logits = torch.load(out / "logits_1.pt")
    assert logits.shape == (2, 24, 1024) and not (out / "logits_0.pt").exists()
    rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
    assert rel.item() <= 1e-5, f"relative error {rel.item():.3e}"
    by_stage = {info["pp_rank"]: info for info in ranks}
    for info in ranks:
        assert info["keys"] == info["shard_keys"] and not info["missing"] and not info["unexpected"]
    assert "embedding.word_embeddings.weight" in by_stage[0]["keys"]
    assert "output_layer.weight" not in by_stage[0]["keys"]
    assert "output_layer.weight" in by_stage[1]["keys"]


@pytest.mark.parametrize("rope", [{"rope_theta": 5e5}, {"rope_parameters": {"rope_theta": 5e5, "rope_type": "default"}}],
                         ids=["rope_theta", "transformers5_rope_parameters"])
def test_rotary_base_comes_from_config(rope):
    from qwen_sft.model import build_gpt_model

    config = {k: v for k, v in qwen_config().items() if k != "rope_theta"}
    config.update(rope)
    with megatron_parallel():
        model = build_gpt_model(config, transformer_config_from_hf(config), padded_vocab_size=1024, seq_length=16,
                                pre_process=True, post_process=True)
    inv_freq = model.rotary_pos_emb.inv_freq  # 1 / base^(2i / head_dim), head_dim 16
    assert inv_freq.shape == (8,)
    assert inv_freq[1].item() == pytest.approx(5e5 ** (-2 / 16), rel=1e-6)
