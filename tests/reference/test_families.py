"""Model families beyond Qwen2 (issue 13): Llama (Llama-3 style) and Qwen3, through the whole HF ↔ Megatron path.

Each family on tiny random fp32 models made by the project's maker (`qwen_sft.tiny`, `tools/make_tiny_model.py`):
the family is chosen from config.json; the HF config maps to the right TransformerConfig (no qkv bias; Qwen3's
QK-norm and explicit head_dim ≠ hidden/heads; Llama's `rope_type: llama3` scaling); the conversion round-trips bit
for bit at TP × PP ∈ {1, 2}²; megatron-core's logits equal HF transformers' (relative error ≤ 1e-5) at TP=1
in-process and at TP=2 / PP=2 under torchrun; greedy generation equals HF `generate`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qwen_sft import hf_io
from qwen_sft.convert import load_megatron_checkpoint, save_megatron_checkpoint
from qwen_sft.model import build_gpt_model, causal_attention_mask, padded_vocab_size, transformer_config_from_hf
from qwen_sft.tiny import TinyModelConfig, describe, make_tiny_model, tiny_hf_config, tiny_hf_state_dict
from qwen_sft.weight_map import LLAMA, QWEN2, QWEN3, family_for, hf_to_megatron, megatron_to_hf
from tests.helpers.megatron_env import megatron_parallel

VOCAB = 1000  # pads to 1024 at TP=1/2
LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2)]
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}
# Llama-3.2's rope_theta and context; head size 16 (64 / 4) unless head_dim is given.
FAMILY_KW = {
    "llama": dict(model_type="llama", rope_theta=500000.0, max_position_embeddings=131072),
    "llama_scaled": dict(model_type="llama", rope_theta=500000.0, max_position_embeddings=131072,
                         rope_scaling=LLAMA3_SCALING),
    "qwen3": dict(model_type="qwen3", head_dim=32),  # 4 heads × 32 = 128 ≠ hidden 64: kv_channels really differs
}


def tiny_cfg(kind: str, tied: bool = True, **kw) -> TinyModelConfig:
    return TinyModelConfig(vocab_size=VOCAB, tie_word_embeddings=tied, **{**FAMILY_KW[kind], **kw})


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def hf_logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    import transformers

    cls = getattr(transformers, family_for(hf_io.load_hf_config(model_dir)).transformers_class)
    model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(ids).logits


# ------------------------------------------------------------------------------------------- config mapping

def test_family_is_chosen_by_model_type_and_architectures():
    assert family_for({"model_type": "llama"}) is LLAMA and family_for({"model_type": "qwen3"}) is QWEN3
    assert family_for({"architectures": ["LlamaForCausalLM"]}) is LLAMA
    assert family_for({"architectures": ["Qwen3ForCausalLM"]}) is QWEN3
    assert family_for({"model_type": "qwen2"}) is QWEN2
    with pytest.raises(ValueError, match=r"model_type 'gemma'.*supported: Qwen2 \(model_type qwen2\), Llama "
                                         r"\(model_type llama\), Qwen3 \(model_type qwen3\)"):
        family_for({"model_type": "gemma"})


@pytest.mark.parametrize("kind, bias, qk_norm, kv_channels", [
    ("llama", False, False, 16), ("qwen3", False, True, 32), (None, True, False, 16)])
def test_transformer_config_follows_the_family(kind, bias, qk_norm, kv_channels):
    config = tiny_hf_config(tiny_cfg(kind) if kind else TinyModelConfig(vocab_size=VOCAB))
    cfg = transformer_config_from_hf(config, tensor_model_parallel_size=2)
    assert cfg.add_qkv_bias is bias and cfg.qk_layernorm is qk_norm and cfg.kv_channels == kv_channels
    assert not cfg.add_bias_linear and cfg.gated_linear_unit and cfg.normalization == "RMSNorm"
    assert (cfg.num_attention_heads, cfg.num_query_groups, cfg.hidden_size) == (4, 2, 64)


@pytest.mark.parametrize("change, error, match", [
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, NotImplementedError,
     r"rope_scaling=.*rope_type 'yarn' is not supported for Llama \(supported: default, llama3"),
    ({"rope_scaling": dict(LLAMA3_SCALING, low_freq_factor=2.0)}, NotImplementedError,
     "megatron-core 0.16.1's llama3 RoPE scaling supports only low_freq_factor=1"),
    ({"rope_scaling": dict(LLAMA3_SCALING, original_max_position_embeddings=4096)}, NotImplementedError,
     "original_max_position_embeddings=8192"),
    ({"rope_parameters": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 5e5}}, NotImplementedError,
     "rope_parameters=.*'dynamic'"),
    ({"attention_bias": True}, NotImplementedError, "attention_bias=true: Llama with biased projections"),
    ({"mlp_bias": True}, NotImplementedError, "mlp_bias=true"),
])
def test_llama_config_errors(change, error, match):
    config = dict(tiny_hf_config(tiny_cfg("llama")), **change)
    with pytest.raises(error, match=match):
        transformer_config_from_hf(config)


def test_qwen3_rejects_llama3_scaling():
    config = dict(tiny_hf_config(tiny_cfg("qwen3")), rope_scaling=LLAMA3_SCALING)
    with pytest.raises(NotImplementedError, match="rope_type 'llama3' is not supported for Qwen3"):
        transformer_config_from_hf(config)


def test_llama3_rope_frequencies_equal_hf():
    """megatron's scaled inverse frequencies equal HF's llama3 ones (and differ from the unscaled)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = tiny_hf_config(tiny_cfg("llama_scaled"))
    with megatron_parallel():
        model = build_gpt_model(config, transformer_config_from_hf(config), padded_vocab_size=1024, seq_length=16,
                                pre_process=True, post_process=True)
    ours = model.rotary_pos_emb.inv_freq
    # transformers >= 5 rewrites a rope_scaling dict in place (adds rope_theta): give it a copy
    hf_cfg = LlamaConfig(**{k: v for k, v in json.loads(json.dumps(config)).items() if k != "architectures"})
    hf = LlamaRotaryEmbedding(hf_cfg).inv_freq
    plain = 1.0 / (500000.0 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
    assert ours.shape == hf.shape == (8,)
    torch.testing.assert_close(ours, hf.to(ours.dtype), rtol=1e-6, atol=0)
    assert not torch.allclose(ours, plain)  # the scaling really changes the low frequencies


# ------------------------------------------------------------------------------------------- the maker

@pytest.mark.parametrize("kind", ["llama", "qwen3"])
def test_maker_cli_writes_a_model_transformers_loads(tmp_path, kind):
    import transformers

    from tools.make_tiny_model import main

    args = ["--output_path", str(tmp_path / "m"), "--model_type", kind, "--vocab_size", str(VOCAB), "--no_tokenizer",
            "--seed", "4", "--untie_word_embeddings"]
    args += ["--head_dim", "32"] if kind == "qwen3" else ["--rope_scaling_factor", "32", "--rope_theta", "500000",
                                                          "--max_position_embeddings", "131072"]
    assert main(args) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == kind and "attention_bias" in config and config["attention_bias"] is False
    if kind == "qwen3":
        assert config["head_dim"] == 32 and config["architectures"] == ["Qwen3ForCausalLM"]
    else:
        assert config["rope_scaling"] == LLAMA3_SCALING and config["architectures"] == ["LlamaForCausalLM"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32)
    assert type(model).__name__ == family_for(config).transformers_class
    cfg = tiny_cfg("qwen3" if kind == "qwen3" else "llama_scaled", tied=False, seed=4)
    assert describe(cfg)["parameters"] == sum(p.numel() for p in model.parameters())
    hf_state = hf_io.load_hf_state_dict(tmp_path / "m")
    assert_same_state(hf_state, tiny_hf_state_dict(cfg))
    # every HF parameter is in the file under its transformers name (nothing initialised by from_pretrained)
    assert sorted(hf_state) == sorted(model.state_dict())


def test_maker_rejects_scaling_for_other_families(tmp_path, capsys):
    from tools.make_tiny_model import main

    with pytest.raises(SystemExit) as exc:
        main(["--output_path", str(tmp_path), "--model_type", "qwen3", "--rope_scaling_factor", "8"])
    assert exc.value.code == 2 and "--rope_scaling_factor is for --model_type llama only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="model_type must be one of"):
        TinyModelConfig(model_type="gemma").validate()


# ------------------------------------------------------------------------------------------- conversion

@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("tp, pp", LAYOUTS, ids=[f"tp{t}pp{p}" for t, p in LAYOUTS])
@pytest.mark.parametrize("kind", ["llama", "qwen3"])
def test_roundtrip_bit_exact_through_folder(tmp_path, kind, tp, pp, tied):
    cfg = tiny_cfg(kind, tied, num_hidden_layers=4, seed=tp + 2 * pp)
    config, state = tiny_hf_config(cfg), tiny_hf_state_dict(cfg)
    shards = hf_to_megatron(state, config, tp, pp)
    assert not any(k.endswith("linear_qkv.bias") for s in shards.values() for k in s)
    save_megatron_checkpoint(tmp_path, shards, config, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)
    config2, loaded, tp2, pp2 = load_megatron_checkpoint(tmp_path)
    assert (tp2, pp2) == (tp, pp) and config2 == config
    assert_same_state(megatron_to_hf(loaded, config2, tp2, pp2), state)


def test_qwen3_qk_norm_and_head_dim_layout():
    """QK-norm weights are replicated per layer; linear_qkv uses head_dim 32 (not hidden/heads = 16)."""
    cfg = tiny_cfg("qwen3", False, num_hidden_layers=4)
    config, state = tiny_hf_config(cfg), tiny_hf_state_dict(cfg)
    shards = hf_to_megatron(state, config, 2, 2)
    hd, h = 32, 64
    for t in range(2):
        assert torch.equal(shards[(t, 1)]["decoder.layers.1.self_attention.q_layernorm.weight"],
                           state["model.layers.3.self_attn.q_norm.weight"])
        assert torch.equal(shards[(t, 0)]["decoder.layers.0.self_attention.k_layernorm.weight"],
                           state["model.layers.0.self_attn.k_norm.weight"])
    qkv = shards[(1, 0)]["decoder.layers.0.self_attention.linear_qkv.weight"]  # group 1: q heads 2,3; k 1; v 1
    assert qkv.shape == (4 * hd, h)
    assert torch.equal(qkv[: 2 * hd], state["model.layers.0.self_attn.q_proj.weight"][2 * hd: 4 * hd])
    assert torch.equal(qkv[2 * hd: 3 * hd], state["model.layers.0.self_attn.k_proj.weight"][hd:])
    assert torch.equal(qkv[3 * hd:], state["model.layers.0.self_attn.v_proj.weight"][hd:])
    proj = shards[(0, 0)]["decoder.layers.0.self_attention.linear_proj.weight"]
    assert torch.equal(proj, state["model.layers.0.self_attn.o_proj.weight"][:, : 2 * hd])
    bad = dict(state, **{"model.layers.0.self_attn.q_norm.weight": torch.ones(16)})
    with pytest.raises(ValueError, match=r"q_norm.weight' has shape \(16,\), expected \(32,\)"):
        hf_to_megatron(bad, config, 1, 1)


def test_family_rejects_other_families_weights():
    """A Qwen2 checkpoint's qkv biases are not silently dropped when config.json says llama."""
    qwen = TinyModelConfig(vocab_size=VOCAB)
    config = dict(tiny_hf_config(qwen), model_type="llama", architectures=["LlamaForCausalLM"])
    with pytest.raises(ValueError, match="a Llama model of this config.json does not use: .*q_proj.bias"):
        hf_to_megatron(tiny_hf_state_dict(qwen), config, 1, 1)
    llama = tiny_cfg("llama")
    config = dict(tiny_hf_config(llama), model_type="qwen3", architectures=["Qwen3ForCausalLM"])
    with pytest.raises(KeyError, match="q_norm.weight"):
        hf_to_megatron(tiny_hf_state_dict(llama), config, 1, 1)


# ------------------------------------------------------------------------------------------- logits vs HF

@pytest.mark.parametrize("kind, tied", [("llama", True), ("llama_scaled", False), ("qwen3", True), ("qwen3", False)])
def test_logits_match_hf_tp1(tmp_path, kind, tied):
    make_tiny_model(tmp_path, tiny_cfg(kind, tied, seed=3))
    hf_config = hf_io.load_hf_config(tmp_path)
    shard = hf_to_megatron(hf_io.load_hf_state_dict(tmp_path), hf_config, 1, 1)[(0, 0)]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    reference = hf_logits(tmp_path, ids)
    with megatron_parallel():
        config = transformer_config_from_hf(hf_config)
        model = build_gpt_model(hf_config, config, padded_vocab_size=padded_vocab_size(VOCAB, 1), seq_length=32,
                                pre_process=True, post_process=True)
        assert sorted(model.state_dict()) == sorted(shard)
        model.load_state_dict(shard, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(ids, torch.arange(24).expand(2, 24), causal_attention_mask(24, 2))
    rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
    print(f"{kind} tied={tied} TP=1: max |Δlogits| / max |logits| = {rel.item():.3e}")
    assert rel.item() <= 1e-5, f"relative error {rel.item():.3e}"
    assert torch.count_nonzero(logits[..., VOCAB:]) == 0


@pytest.mark.parametrize("kind, tied, tp, pp", [("llama_scaled", False, 2, 1), ("qwen3", False, 2, 1),
                                                ("qwen3", True, 1, 2)])
def test_logits_match_hf_torchrun(tmp_path, kind, tied, tp, pp):
    """2 processes: each rank's shard loads strictly into its model; TP-gathered / last-stage logits equal HF's."""
    from tests.reference.test_model import _torchrun

    model_dir = tmp_path / "tiny"
    make_tiny_model(model_dir, tiny_cfg(kind, tied, seed=5))
    ranks, out = _torchrun(tmp_path, model_dir, tp=tp, pp=pp)
    for info in ranks:
        assert info["keys"] == info["shard_keys"] and not info["missing"] and not info["unexpected"]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    reference = hf_logits(model_dir, ids)
    holders = range(tp) if pp == 1 else [1]
    for r in holders:
        logits = torch.load(out / f"logits_{r}.pt")
        assert logits.shape == (2, 24, 1024)
        rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
        print(f"{kind} tied={tied} TP={tp} PP={pp} rank {r}: relative error {rel.item():.3e}")
        assert rel.item() <= 1e-5, f"rank {r}: relative error {rel.item():.3e}"


# ------------------------------------------------------------------------------------------- generation

@pytest.mark.parametrize("kind", ["qwen3", "llama_scaled"])
def test_greedy_generation_equals_hf_generate(tmp_path, kind):
    """tools/generate.py's generator (KV cache and recompute) gives HF `generate`'s greedy tokens."""
    import transformers

    from qwen_sft.generation import load_generator
    from qwen_sft.parallel import destroy
    from qwen_sft.tokenizer import render_prompt_ids, standin_tokenizer_dir

    cfg = TinyModelConfig(tie_word_embeddings=False, seed=1, **FAMILY_KW[kind])  # Qwen2.5's 151,936 rows
    make_tiny_model(tmp_path, cfg, tokenizer_dir=standin_tokenizer_dir())
    hf = getattr(transformers, family_for(tiny_hf_config(cfg)).transformers_class).from_pretrained(
        tmp_path, dtype=torch.float32).eval()
    try:
        gen, tok, _ = load_generator(tmp_path, seq_length=128)
        prompts = [render_prompt_ids(tok, p) for p in ("What is the capital of France?", "hi", "请解释微调。")]
        outs = gen.generate_ids(prompts, max_new_tokens=10)
        recompute = gen.generate_ids(prompts[:1], max_new_tokens=10, use_kv_cache=False)
    finally:
        destroy()
    for ids, out in zip(prompts, outs):
        with torch.no_grad():
            expected = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                   max_new_tokens=10, do_sample=False, eos_token_id=sorted(gen.stop_ids),
                                   pad_token_id=151643)[0, len(ids):].tolist()
        assert out.output_ids == expected
    assert recompute[0].output_ids == outs[0].output_ids
    assert len({tuple(o.output_ids) for o in outs}) == len(outs)  # a degenerate model would make this vacuous


# ------------------------------------------------------------------------------------------- training

@pytest.mark.multiproc
@pytest.mark.shared
@pytest.mark.slow
def test_llama_train_tp2_matches_tp1(tmp_path):
    """tools/train.py, 3 steps of a tiny untied Llama (llama3 RoPE scaling, real Qwen2.5 tokenizer, alpaca_zh) on
    real torch: TP=2 under torchrun gives TP=1's per-step losses within 1e-4 and its learning rates."""
    from tests.conftest import free_port, shared_path
    from tests.reference.test_train_runs import PY, TORCHRUN, _check, _env, _run, _train_records

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    data, model = tmp_path / "data", tmp_path / "tiny_llama"
    _check(_run([PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
                 "--output_path", str(data), "--seq_length", "256", "--split_ratio", "0.95", "--no_progress"],
                _env(), timeout=180))
    make_tiny_model(model, TinyModelConfig(vocab_size=151665, tie_word_embeddings=False, seed=3,
                                           **FAMILY_KW["llama_scaled"]), tokenizer_dir=tokenizer)
    steps = 3

    def args(out: Path) -> list[str]:
        return ["--model_path", str(model), "--data_path", str(data), "--output_path", str(out), "--tokenizer_path",
                str(tokenizer), "--seq_length", "256", "--batch_size", "4", "--micro_batch_size", "2",
                "--train_iters", str(steps), "--mixed_precision", "fp32", "--learning_rate", "1e-3",
                "--lr_warmup_fraction", "0.2", "--min_lr", "1e-4", "--seed", "7", "--log_interval", "1"]

    _check(_run([PY, "tools/train.py", *args(tmp_path / "tp1")], _env()))
    _check(_run([*TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                 str(free_port()), "tools/train.py", *args(tmp_path / "tp2"), "--tp", "2"], _env()))
    tp1, tp2 = _train_records(tmp_path / "tp1"), _train_records(tmp_path / "tp2")
    assert [r["step"] for r in tp1] == [r["step"] for r in tp2] == list(range(1, steps + 1))
    assert json.loads((tmp_path / "tp2" / "manifest.json").read_text())["parallel"]["tensor_model_parallel_size"] == 2
    for a, b in zip(tp1, tp2):
        print(f"llama step {a['step']}: loss TP=1 {a['loss']:.7f} TP=2 {b['loss']:.7f} "
              f"|Δ| {abs(a['loss'] - b['loss']):.2e}")
        assert abs(a["loss"] - b["loss"]) <= 1e-4, (a["step"], a["loss"], b["loss"])
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
    assert tp1[-1]["loss"] < tp1[0]["loss"]  # it trains
