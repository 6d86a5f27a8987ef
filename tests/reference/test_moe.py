"""Mixture-of-experts families (issue 13): Mixtral and Qwen2-MoE through the HF ↔ Megatron path on real torch.

Tiny random fp32 models from the project's maker (`qwen_sft.tiny`: 2 layers, hidden 32, 4 experts, top-2): the
family is chosen from config.json; the HF config maps to megatron-core's MoE fields (router normalisation, shared
expert and its gate); the conversion round-trips bit for bit at TP × PP × EP; megatron-core's MoE logits equal HF
transformers' (relative error ≤ 1e-5) at TP=1 and at TP=2 under torchrun; greedy generation equals HF `generate`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qwen_sft import hf_io
from qwen_sft.model import build_gpt_model, causal_attention_mask, padded_vocab_size, transformer_config_from_hf
from qwen_sft.tiny import TinyModelConfig, describe, make_tiny_model, tiny_hf_config, tiny_hf_state_dict
from qwen_sft.weight_map import MIXTRAL, QWEN2_MOE, family_for, hf_to_megatron, megatron_to_hf
from tests.helpers.megatron_env import megatron_parallel

VOCAB = 1000  # pads to 1024 at TP=1/2
MOE_KW = dict(hidden_size=32, intermediate_size=64, num_experts=4, num_experts_per_tok=2)


def tiny_cfg(kind: str, tied: bool = False, **kw) -> TinyModelConfig:
    """kind: "mixtral", "qwen2_moe" (norm_topk_prob false, as Qwen1.5-MoE) or "qwen2_moe_norm" (true)."""
    model_type = "qwen2_moe" if kind.startswith("qwen2_moe") else kind
    extra = {"norm_topk_prob": True} if kind == "qwen2_moe_norm" else {}
    return TinyModelConfig(model_type=model_type, vocab_size=VOCAB, tie_word_embeddings=tied,
                           **{**MOE_KW, **extra, **kw})


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def hf_model(model_dir: Path):
    import transformers

    cls = getattr(transformers, family_for(hf_io.load_hf_config(model_dir)).transformers_class)
    return cls.from_pretrained(model_dir, dtype=torch.float32).eval()


# ------------------------------------------------------------------------------------------- config mapping

def test_family_is_chosen_by_model_type_and_architectures():
    assert family_for({"model_type": "mixtral"}) is MIXTRAL
    assert family_for({"architectures": ["MixtralForCausalLM"]}) is MIXTRAL
    assert family_for({"model_type": "qwen2_moe"}) is QWEN2_MOE
    assert family_for({"architectures": ["Qwen2MoeForCausalLM"]}) is QWEN2_MOE
    with pytest.raises(ValueError, match=r"supported: .*Mixtral \(model_type mixtral\), Qwen2-MoE "
                                         r"\(model_type qwen2_moe\)"):
        family_for({"model_type": "qwen3_moe"})


@pytest.mark.parametrize("kind, pre_softmax, bias, shared", [
    ("mixtral", False, False, None), ("qwen2_moe", True, True, 64), ("qwen2_moe_norm", False, True, 64)])
def test_transformer_config_moe_fields(kind, pre_softmax, bias, shared):
    """Mixtral renormalises the top-k softmax (megatron's default: softmax over the top-k logits); Qwen2-MoE with
    norm_topk_prob false keeps the raw softmax probabilities (megatron's moe_router_pre_softmax)."""
    config = tiny_hf_config(tiny_cfg(kind))
    cfg = transformer_config_from_hf(config, expert_model_parallel_size=2)
    assert (cfg.num_moe_experts, cfg.moe_router_topk, cfg.expert_model_parallel_size) == (4, 2, 2)
    assert cfg.moe_ffn_hidden_size == (64 if kind == "mixtral" else 32)  # Qwen2-MoE: moe_intermediate_size
    assert cfg.moe_router_pre_softmax is pre_softmax and cfg.add_qkv_bias is bias
    assert cfg.moe_shared_expert_intermediate_size == shared and bool(cfg.moe_shared_expert_gate) is bool(shared)
    assert cfg.moe_token_dispatcher_type == "alltoall" and cfg.moe_aux_loss_coeff == pytest.approx(0.02)
    assert cfg.moe_router_load_balancing_type == "aux_loss" and not cfg.add_bias_linear


@pytest.mark.parametrize("kind, change, error, match", [
    ("mixtral", {"router_jitter_noise": 0.1}, NotImplementedError, "router_jitter_noise=0.1"),
    ("mixtral", {"sliding_window": 4096}, NotImplementedError, "sliding_window=4096"),
    ("qwen2_moe", {"decoder_sparse_step": 2}, NotImplementedError, "decoder_sparse_step=2"),
    ("qwen2_moe", {"mlp_only_layers": [1]}, NotImplementedError, r"mlp_only_layers=\[1\]"),
    ("qwen2_moe", {"num_experts_per_tok": 5}, ValueError, "num_experts_per_tok=5 must be between 1 and num_experts=4"),
    ("mixtral", {"num_local_experts": None}, ValueError, None),
])
def test_moe_config_errors(kind, change, error, match):
    config = dict(tiny_hf_config(tiny_cfg(kind)), **change)
    if change.get("num_local_experts", 0) is None:
        del config["num_local_experts"]
        match = "lacks the Mixtral key 'num_local_experts'"
    with pytest.raises(error, match=match):
        transformer_config_from_hf(config)


def test_expert_parallel_size_errors():
    with pytest.raises(ValueError, match="4 experts are not divisible by expert_model_parallel_size=3"):
        transformer_config_from_hf(tiny_hf_config(tiny_cfg("mixtral")), expert_model_parallel_size=3)
    dense = tiny_hf_config(TinyModelConfig(vocab_size=VOCAB))
    with pytest.raises(ValueError, match="needs a mixture-of-experts model; Qwen2 has no experts"):
        transformer_config_from_hf(dense, expert_model_parallel_size=2)
    with pytest.raises(ValueError, match="a Qwen2 model has no experts"):
        hf_to_megatron(tiny_hf_state_dict(TinyModelConfig(vocab_size=VOCAB)), dense, 1, 1, 128, 2)


# ------------------------------------------------------------------------------------------- the maker

@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe"])
def test_maker_cli_writes_a_model_transformers_loads(tmp_path, kind):
    """The files carry the Hub's per-expert names; transformers (which fuses experts on load) reads every one."""
    from tools.make_tiny_model import main

    args = ["--output_path", str(tmp_path / "m"), "--model_type", kind, "--vocab_size", str(VOCAB), "--no_tokenizer",
            "--seed", "4", "--untie_word_embeddings", "--hidden_size", "32", "--intermediate_size", "64"]
    assert main(args) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg = tiny_cfg(kind, seed=4)
    assert config == tiny_hf_config(cfg) and config["architectures"] == [family_for(config).transformers_class]
    model = hf_model(tmp_path / "m")
    assert describe(cfg)["parameters"] == sum(p.numel() for p in model.parameters())
    hf_state = hf_io.load_hf_state_dict(tmp_path / "m")
    assert_same_state(hf_state, tiny_hf_state_dict(cfg))
    # transformers' fused expert tensors hold exactly our per-expert ones
    block, (gate, up, down) = (("block_sparse_moe", ("w1", "w3", "w2")) if kind == "mixtral"
                               else ("mlp", ("gate_proj", "up_proj", "down_proj")))
    experts = model.model.layers[1].mlp.experts
    for e in range(4):
        name = f"model.layers.1.{block}.experts.{e}."
        assert torch.equal(experts.gate_up_proj[e], torch.cat([hf_state[name + f"{gate}.weight"],
                                                               hf_state[name + f"{up}.weight"]]))
        assert torch.equal(experts.down_proj[e], hf_state[name + f"{down}.weight"])
    assert torch.equal(model.model.layers[1].mlp.gate.weight, hf_state[f"model.layers.1.{block}.gate.weight"])


def test_maker_rejects_moe_flags_for_other_families(tmp_path, capsys):
    from tools.make_tiny_model import main

    with pytest.raises(SystemExit) as exc:
        main(["--output_path", str(tmp_path), "--model_type", "mixtral", "--norm_topk_prob"])
    assert exc.value.code == 2 and "--norm_topk_prob is for --model_type qwen2_moe only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--output_path", str(tmp_path), "--model_type", "llama", "--num_experts", "8"])
    assert "--num_experts is for --model_type mixtral / qwen2_moe only" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- conversion

LAYOUTS = [(1, 1, 1), (2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 2), (1, 1, 4)]


@pytest.mark.parametrize("tp, pp, ep", LAYOUTS, ids=[f"tp{t}pp{p}ep{e}" for t, p, e in LAYOUTS])
@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe"])
def test_roundtrip_bit_exact(kind, tp, pp, ep):
    cfg = tiny_cfg(kind, tied=(tp == 2), num_hidden_layers=4, seed=tp + 2 * pp + 3 * ep)
    config, state = tiny_hf_config(cfg), tiny_hf_state_dict(cfg)
    shards = hf_to_megatron(state, config, tp, pp, 128, ep)
    ranks = [(t, p) for t in range(tp) for p in range(pp)]
    assert sorted(shards) == sorted(ranks if ep == 1 else [(t, p, e) for t, p in ranks for e in range(ep)])
    local = 4 // ep
    for shard in shards.values():
        assert sum(k.endswith("local_experts.0.linear_fc1.weight") for k in shard) == 4 // pp
        assert not any(f"local_experts.{local}." in k for k in shard)
    back = megatron_to_hf(shards, config, tp, pp, ep)
    assert_same_state(back, state)
    experts = [k for k in back if k.startswith("model.layers.0.") and ".experts." in k]
    assert experts == sorted(experts, key=lambda k: int(k.split(".experts.")[1].split(".")[0]))  # index order


def test_expert_placement_over_ep_and_tp():
    """EP=2 × TP=2: global expert 3 is local expert 1 of EP rank 1; its fc1 is [gate_r; up_r] per TP rank, fc2 the
    r-th column chunk of down; the router and the shared expert are the same on both EP ranks."""
    cfg = tiny_cfg("qwen2_moe")
    config, state = tiny_hf_config(cfg), tiny_hf_state_dict(cfg)
    shards = hf_to_megatron(state, config, 2, 1, 128, 2)
    src = "model.layers.0.mlp."
    for t in range(2):
        fc1 = shards[(t, 0, 1)]["decoder.layers.0.mlp.experts.local_experts.1.linear_fc1.weight"]
        rows = slice(16 * t, 16 * (t + 1))  # moe_intermediate_size 32 over TP=2
        assert torch.equal(fc1, torch.cat([state[src + "experts.3.gate_proj.weight"][rows],
                                           state[src + "experts.3.up_proj.weight"][rows]]))
        fc2 = shards[(t, 0, 1)]["decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight"]
        assert torch.equal(fc2, state[src + "experts.3.down_proj.weight"][:, rows])
        assert torch.equal(shards[(t, 0, 0)]["decoder.layers.0.mlp.experts.local_experts.1.linear_fc2.weight"],
                           state[src + "experts.1.down_proj.weight"][:, rows])
        for e in range(2):
            assert torch.equal(shards[(t, 0, e)]["decoder.layers.0.mlp.router.weight"], state[src + "gate.weight"])
            assert torch.equal(shards[(t, 0, e)]["decoder.layers.0.mlp.shared_experts.gate_weight"],
                               state[src + "shared_expert_gate.weight"])
    # a router that differs between EP ranks is an inconsistent checkpoint, not silently averaged
    for t in range(2):
        shards[(t, 0, 1)]["decoder.layers.0.mlp.router.weight"] = torch.zeros(4, 32)
    with pytest.raises(ValueError, match="router.weight' is replicated over EP but differs between ep_rank 0 and 1"):
        megatron_to_hf(shards, config, 2, 1, 2)
    with pytest.raises(KeyError, match=r"lack ranks \(tp_rank, pp_rank, ep_rank\)"):
        megatron_to_hf({k: v for k, v in shards.items() if k != (0, 0, 1)}, config, 2, 1, 2)


def test_missing_expert_is_named():
    cfg = tiny_cfg("mixtral")
    state = tiny_hf_state_dict(cfg)
    del state["model.layers.1.block_sparse_moe.experts.2.w3.weight"]
    with pytest.raises(KeyError, match=r"experts\.2\.w3\.weight"):
        hf_to_megatron(state, tiny_hf_config(cfg), 1, 1)


# ------------------------------------------------------------------------------------------- logits vs HF

@pytest.mark.parametrize("kind, tied", [("mixtral", False), ("qwen2_moe", True), ("qwen2_moe_norm", False)])
def test_logits_match_hf_tp1(tmp_path, kind, tied):
    make_tiny_model(tmp_path, tiny_cfg(kind, tied, seed=3))
    hf_config = hf_io.load_hf_config(tmp_path)
    shard = hf_to_megatron(hf_io.load_hf_state_dict(tmp_path), hf_config, 1, 1)[(0, 0)]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = hf_model(tmp_path)(ids).logits
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


def test_routing_matters():
    """The routing really selects: logits with the router rows of two experts swapped differ from the real ones
    (so the logits comparison above cannot pass with an ignored router), and all experts are used."""
    cfg = tiny_cfg("mixtral", seed=3)
    hf_config, state = tiny_hf_config(cfg), tiny_hf_state_dict(cfg)
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    swapped = dict(state)
    gate = "model.layers.0.block_sparse_moe.gate.weight"
    swapped[gate] = state[gate][[1, 0, 2, 3]]
    outs, counts = [], torch.zeros(4)

    def count(module, inputs, output) -> None:  # TopKRouter returns (probs, routing_map [tokens, experts])
        counts.add_(output[1].sum(0).float())

    with megatron_parallel():
        config = transformer_config_from_hf(hf_config)
        for weights in (state, swapped):
            model = build_gpt_model(hf_config, config, padded_vocab_size=1024, seq_length=32, pre_process=True,
                                    post_process=True)
            model.load_state_dict(hf_to_megatron(weights, hf_config, 1, 1)[(0, 0)], strict=True)
            router = model.decoder.layers[0].mlp.router
            handle = router.register_forward_hook(count)
            with torch.no_grad():
                outs.append(model.eval()(ids, torch.arange(24).expand(2, 24), causal_attention_mask(24, 2)))
            handle.remove()
    assert (outs[0] - outs[1]).abs().max() > 1e-3
    assert bool((counts > 0).all()) and counts.sum() == 2 * 2 * 2 * 24  # 2 runs × top-2 × 48 tokens


@pytest.mark.parametrize("kind", ["qwen2_moe"])
def test_logits_match_hf_tp2_torchrun(tmp_path, kind):
    """2 processes at TP=2: experts and the shared expert cut over TP; every rank's gathered logits equal HF's."""
    from tests.reference.test_model import _torchrun

    model_dir = tmp_path / "tiny"
    make_tiny_model(model_dir, tiny_cfg(kind, seed=5))
    ranks, out = _torchrun(tmp_path, model_dir, tp=2, pp=1)
    for info in ranks:
        assert info["keys"] == info["shard_keys"] and not info["missing"] and not info["unexpected"]
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = hf_model(model_dir)(ids).logits
    for r in range(2):
        logits = torch.load(out / f"logits_{r}.pt")
        rel = (logits[..., :VOCAB] - reference).abs().max() / reference.abs().max()
        print(f"{kind} TP=2 rank {r}: relative error {rel.item():.3e}")
        assert rel.item() <= 1e-5, f"rank {r}: relative error {rel.item():.3e}"


# ------------------------------------------------------------------------------------------- generation

@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe"])
def test_greedy_generation_equals_hf_generate(tmp_path, kind):
    """tools/generate.py's generator (KV cache and recompute) gives HF `generate`'s greedy tokens.

    The (Qwen2.5 stand-in) tokenizer is given as its own folder: in a folder whose config.json says
    model_type mixtral, transformers' AutoTokenizer picks Mistral's tokenizer backend whatever tokenizer_config.json
    names (it then needs sentencepiece), which says nothing about the model."""
    from qwen_sft.generation import load_generator
    from qwen_sft.parallel import destroy
    from qwen_sft.tokenizer import render_prompt_ids, standin_tokenizer_dir

    cfg = TinyModelConfig(model_type=kind, tie_word_embeddings=False, seed=1, **MOE_KW)  # Qwen2.5's 151,936 rows
    make_tiny_model(tmp_path, cfg)
    hf = hf_model(tmp_path)
    try:
        gen, tok, _ = load_generator(tmp_path, tokenizer_path=standin_tokenizer_dir(), seq_length=128,
                                     warn=lambda message: None)
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
    assert len({tuple(o.output_ids) for o in outs}) >= 2  # outputs depend on the prompt (not a degenerate model)


# ------------------------------------------------------------------------------------------- training

@pytest.mark.multiproc
@pytest.mark.shared
@pytest.mark.slow
def test_mixtral_train_ep2_matches_ep1(tmp_path):
    """tools/train.py, 4 steps of a tiny Mixtral (real Qwen2.5 tokenizer, alpaca_zh) on real torch: EP=2 under
    torchrun (2 experts per rank, tokens exchanged by megatron's alltoall dispatcher over gloo) gives EP=1's
    per-step losses within 1e-4, its learning rates and its router load-balancing loss (`moe_aux_loss`); the run
    saves checkpoints with the expert-parallel layout and exports an HF folder transformers loads, close to EP=1's.
    Its step-2 checkpoint resumed at EP=1 (one process) repeats steps 3-4 of the EP=2 run within 1e-5 (step 4
    needs the resharded Adam moments; `qwen_sft.checkpointing.mark_expert_params`), and the EP=1 run's step-2
    checkpoint resumed at EP=2 repeats EP=1's steps 3-4 within 1e-5. The EP=2 run's last checkpoint converted to HF
    (`convert_ckpt.py`, its checkpoints folder, latest iteration) equals its HF export bit for bit."""
    from safetensors.torch import load_file

    from tests.conftest import free_port, shared_path
    from tests.reference.test_train_runs import PY, TORCHRUN, _check, _env, _run, _train_records

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    alpaca = shared_path("data", "alpaca_zh_demo.json")
    data, model = tmp_path / "data", tmp_path / "tiny_mixtral"
    _check(_run([PY, "tools/data_convert.py", "--input_path", str(alpaca), "--tokenizer_path", str(tokenizer),
                 "--output_path", str(data), "--seq_length", "128", "--split_ratio", "0.95", "--no_progress"],
                _env(), timeout=180))
    cfg = TinyModelConfig(model_type="mixtral", vocab_size=151665, seed=3, **MOE_KW)
    make_tiny_model(model, cfg)
    steps = 4

    def args(out: Path) -> list[str]:
        return ["--model_path", str(model), "--data_path", str(data), "--output_path", str(out), "--tokenizer_path",
                str(tokenizer), "--seq_length", "128", "--batch_size", "4", "--micro_batch_size", "2",
                "--train_iters", str(steps), "--mixed_precision", "fp32", "--learning_rate", "1e-3",
                "--lr_warmup_fraction", "0.2", "--min_lr", "1e-4", "--seed", "7", "--log_interval", "1"]

    _check(_run([PY, "tools/train.py", *args(tmp_path / "ep1"), "--save_steps", "2"], _env()))
    _check(_run([*TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                 str(free_port()), "tools/train.py", *args(tmp_path / "ep2"), "--ep", "2", "--save_steps", "2"],
                _env()))
    resumed_log = _check(_run([PY, "tools/train.py", *args(tmp_path / "ep2_to_ep1"), "--no_export", "--load",
                               str(tmp_path / "ep2" / "checkpoints" / "iter_0000002")], _env()))
    reverse_log = _check(_run([*TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                               str(free_port()), "tools/train.py", *args(tmp_path / "ep1_to_ep2"), "--ep", "2",
                               "--no_export", "--load", str(tmp_path / "ep1" / "checkpoints" / "iter_0000002")],
                              _env()))
    converted = tmp_path / "ep2_iter4_hf"
    convert_log = _check(_run([PY, "tools/convert_ckpt.py", "--model_path", str(tmp_path / "ep2" / "checkpoints"),
                               "--output_path", str(converted)], _env(), timeout=180))
    assert "iteration 4, saved at TP=1 PP=1 EP=2) loaded at TP=1 PP=1" in convert_log, convert_log[-3000:]
    ep1, ep2 = _train_records(tmp_path / "ep1"), _train_records(tmp_path / "ep2")
    assert [r["step"] for r in ep1] == [r["step"] for r in ep2] == list(range(1, steps + 1))
    parallel = json.loads((tmp_path / "ep2" / "manifest.json").read_text())["parallel"]
    assert parallel["expert_model_parallel_size"] == 2 and parallel["data_parallel_size"] == 2
    for a, b in zip(ep1, ep2):
        print(f"mixtral step {a['step']}: loss EP=1 {a['loss']:.7f} EP=2 {b['loss']:.7f} "
              f"|Δ| {abs(a['loss'] - b['loss']):.2e}; aux {a['moe_aux_loss']:.6f} / {b['moe_aux_loss']:.6f}")
        assert abs(a["loss"] - b["loss"]) <= 1e-4, (a["step"], a["loss"], b["loss"])
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
        # the switch-transformer balance loss is 1 for perfectly balanced routing, larger when unbalanced
        assert 0.5 < a["moe_aux_loss"] < 4.0 and abs(a["moe_aux_loss"] - b["moe_aux_loss"]) <= 1e-4
    assert (tmp_path / "ep2" / "checkpoints" / "iter_0000004").is_dir()
    assert "saved at TP=1 PP=1 DP=2 EP=2, loaded at TP=1 PP=1 DP=1 EP=1" in resumed_log, resumed_log[-3000:]
    resumed = _train_records(tmp_path / "ep2_to_ep1")
    assert [r["step"] for r in resumed] == [3, 4]
    for r, ref in zip(resumed, ep2[2:]):
        print(f"mixtral EP=2 -> EP=1 resumed step {r['step']}: loss {r['loss']:.7f} uninterrupted {ref['loss']:.7f}")
        assert abs(r["loss"] - ref["loss"]) <= 1e-5, (r["step"], r["loss"], ref["loss"])
        assert abs(r["grad_norm"] - ref["grad_norm"]) <= 1e-4 * ref["grad_norm"], (r["step"], r["grad_norm"])
        assert r["lr"] == pytest.approx(ref["lr"], rel=1e-12)
    assert "saved at TP=1 PP=1 DP=1 EP=1, loaded at TP=1 PP=1 DP=2 EP=2" in reverse_log, reverse_log[-3000:]
    reverse = _train_records(tmp_path / "ep1_to_ep2")
    assert [r["step"] for r in reverse] == [3, 4]
    for r, ref in zip(reverse, ep1[2:]):
        print(f"mixtral EP=1 -> EP=2 resumed step {r['step']}: loss {r['loss']:.7f} uninterrupted {ref['loss']:.7f}")
        assert abs(r["loss"] - ref["loss"]) <= 1e-5, (r["step"], r["loss"], ref["loss"])
        assert abs(r["grad_norm"] - ref["grad_norm"]) <= 1e-4 * ref["grad_norm"], (r["step"], r["grad_norm"])
        assert r["lr"] == pytest.approx(ref["lr"], rel=1e-12)
    exported = {k: load_file(tmp_path / d / "model.safetensors") for k, d in (("ep1", "ep1"), ("ep2", "ep2"))}
    # the EP=2 run's last training checkpoint (convert_ckpt.py, latest by default) is its HF export, bit for bit
    from_checkpoint = load_file(converted / "model.safetensors")
    assert sorted(from_checkpoint) == sorted(exported["ep2"])
    assert all(torch.equal(from_checkpoint[k], v) for k, v in exported["ep2"].items())
    initial = tiny_hf_state_dict(cfg)
    assert sorted(exported["ep1"]) == sorted(exported["ep2"]) == sorted(initial)
    for key, value in exported["ep1"].items():
        torch.testing.assert_close(exported["ep2"][key], value, rtol=0, atol=1e-5, msg=key)
    expert = "model.layers.1.block_sparse_moe.experts.3.w2.weight"  # on EP rank 1: trained and exported
    assert not torch.equal(exported["ep2"][expert], initial[expert])
    hf_model(tmp_path / "ep2")  # transformers loads the export (per-expert names)


def test_convert_cli_at_ep2_roundtrip(tmp_path):
    """convert_ckpt.py hf2mg at TP=2 EP=2 writes Megatron-LM's `mp_rank_{tp:02d}_{ep:03d}` folders (2 experts each);
    mg2hf merges them back bit for bit; the loader reads the folder as any checkpoint form."""
    from qwen_sft.convert import load_any_checkpoint, load_megatron_checkpoint
    from tools.convert_ckpt import main

    cfg = tiny_cfg("qwen2_moe", seed=9)
    make_tiny_model(tmp_path / "hf", cfg)
    assert main(["--direction", "hf2mg", "--model_path", str(tmp_path / "hf"), "--output_path", str(tmp_path / "mg"),
                 "--tp", "2", "--ep", "2"]) == 0
    ranks = sorted(p.name for p in (tmp_path / "mg" / "release").iterdir())
    assert ranks == ["mp_rank_00_000", "mp_rank_00_001", "mp_rank_01_000", "mp_rank_01_001"]
    meta = json.loads((tmp_path / "mg" / "megatron_convert.json").read_text())
    assert (meta["tensor_model_parallel_size"], meta["expert_model_parallel_size"]) == (2, 2)
    _, shards, tp, pp = load_megatron_checkpoint(tmp_path / "mg")
    assert (tp, pp) == (2, 1) and sorted(shards) == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    payload = torch.load(tmp_path / "mg" / "release" / "mp_rank_01_001" / "model_optim_rng.pt", weights_only=True)
    assert payload["expert_model_parallel_size"] == 2
    assert torch.equal(payload["model"]["decoder.layers.1.mlp.experts.local_experts.0.linear_fc2.weight"],
                       tiny_hf_state_dict(cfg)["model.layers.1.mlp.experts.2.down_proj.weight"][:, 16:])
    assert not any("local_experts.2" in k for k in payload["model"])
    assert_same_state(load_any_checkpoint(tmp_path / "mg")[1], tiny_hf_state_dict(cfg))
    assert main(["--direction", "mg2hf", "--model_path", str(tmp_path / "mg"), "--output_path",
                 str(tmp_path / "back")]) == 0
    assert_same_state(hf_io.load_hf_state_dict(tmp_path / "back"), tiny_hf_state_dict(cfg))
