"""HF ↔ Megatron checkpoint conversion (qwen_sft.convert, qwen_sft.hf_io, qwen_sft.tiny and their CLIs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qwen_sft import hf_io
from qwen_sft.convert import load_any_checkpoint, load_megatron_checkpoint, save_megatron_checkpoint
from qwen_sft.weight_map import hf_to_megatron, megatron_to_hf
from qwen_sft.tiny import TinyQwen2Config, tiny_hf_config, tiny_hf_state_dict, make_tiny_model

REPO = Path(__file__).resolve().parents[2]
VOCAB = 1000
LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2)]


def tiny(tied: bool, **kw) -> tuple[dict, dict]:
    cfg = TinyQwen2Config(vocab_size=VOCAB, tie_word_embeddings=tied, num_hidden_layers=4, **kw)
    return tiny_hf_config(cfg), tiny_hf_state_dict(cfg)


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("tp, pp", LAYOUTS, ids=[f"tp{t}pp{p}" for t, p in LAYOUTS])
def test_roundtrip_bit_exact_through_folder(tmp_path, tp, pp, tied):
    config, state = tiny(tied)
    shards = hf_to_megatron(state, config, tp, pp)
    assert sorted(shards) == [(t, p) for t in range(tp) for p in range(pp)]
    save_megatron_checkpoint(tmp_path, shards, config, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp)
    config2, loaded, tp2, pp2 = load_megatron_checkpoint(tmp_path)
    assert (tp2, pp2) == (tp, pp) and config2 == config
    back = megatron_to_hf(loaded, config2, tp2, pp2)
    assert_same_state(back, state)
    assert ("lm_head.weight" in back) is (not tied)


def test_megatron_folder_layout(tmp_path):
    config, state = tiny(True)
    files = save_megatron_checkpoint(tmp_path, hf_to_megatron(state, config, 2, 2), config)
    assert (tmp_path / "latest_checkpointed_iteration.txt").read_text() == "release"
    for name in ("mp_rank_00_000", "mp_rank_01_000", "mp_rank_00_001", "mp_rank_01_001"):
        payload = torch.load(tmp_path / "release" / name / "model_optim_rng.pt", weights_only=True)
        assert payload["checkpoint_version"] == 3.0 and isinstance(payload["model"], dict)
    meta = json.loads((tmp_path / "megatron_convert.json").read_text())
    assert meta["tensor_model_parallel_size"] == 2 and meta["pipeline_model_parallel_size"] == 2
    assert meta["padded_vocab_size"] == 1024 and meta["vocab_size"] == VOCAB and meta["dtype"] == "float32"
    assert json.loads((tmp_path / "config.json").read_text()) == config
    assert len(files) == 7
    # PP=1 uses the shorter rank folder name.
    save_megatron_checkpoint(tmp_path / "pp1", hf_to_megatron(state, config, 2, 1), config)
    assert (tmp_path / "pp1" / "release" / "mp_rank_01" / "model_optim_rng.pt").is_file()


def test_qkv_fc1_and_parallel_splits_follow_megatron_layout():
    """Values checked against the layout megatron-core's SelfAttention/MLP expect, not just against the inverse."""
    config, state = tiny(False)
    hd, h = 16, 64  # head_dim = 64 / 4 heads; 2 query groups of 2 heads
    shards = hf_to_megatron(state, config, 2, 2)
    q = state["model.layers.3.self_attn.q_proj.weight"]
    k = state["model.layers.3.self_attn.k_proj.weight"]
    v = state["model.layers.3.self_attn.v_proj.weight"]
    qkv_r1 = shards[(1, 1)]["decoder.layers.1.self_attention.linear_qkv.weight"]  # global layer 3, TP rank 1
    # TP rank 1 holds query group 1 = query heads 2 and 3, then key head 1, then value head 1.
    assert qkv_r1.shape == (4 * hd, h)
    assert torch.equal(qkv_r1[: 2 * hd], q[2 * hd : 4 * hd])
    assert torch.equal(qkv_r1[2 * hd : 3 * hd], k[hd : 2 * hd])
    assert torch.equal(qkv_r1[3 * hd :], v[hd : 2 * hd])
    bias_r0 = shards[(0, 1)]["decoder.layers.1.self_attention.linear_qkv.bias"]
    assert torch.equal(bias_r0[2 * hd : 3 * hd], state["model.layers.3.self_attn.k_proj.bias"][:hd])
    fc1 = shards[(1, 0)]["decoder.layers.0.mlp.linear_fc1.weight"]  # [gate half of rank 1; up half of rank 1]
    assert torch.equal(fc1[:64], state["model.layers.0.mlp.gate_proj.weight"][64:])
    assert torch.equal(fc1[64:], state["model.layers.0.mlp.up_proj.weight"][64:])
    proj = shards[(1, 0)]["decoder.layers.0.self_attention.linear_proj.weight"]
    assert torch.equal(proj, state["model.layers.0.self_attn.o_proj.weight"][:, 32:])
    fc2 = shards[(0, 0)]["decoder.layers.1.mlp.linear_fc2.weight"]
    assert torch.equal(fc2, state["model.layers.1.mlp.down_proj.weight"][:, :64])
    assert torch.equal(shards[(0, 1)]["decoder.layers.0.pre_mlp_layernorm.weight"],
                       state["model.layers.2.post_attention_layernorm.weight"])
    # Vocabulary: 1000 rows padded to 1024, 512 per TP rank; rank 1 ends with 24 zero rows.
    emb1 = shards[(1, 0)]["embedding.word_embeddings.weight"]
    assert emb1.shape == (512, h) and torch.equal(emb1[:488], state["model.embed_tokens.weight"][512:])
    assert torch.count_nonzero(emb1[488:]) == 0
    out0 = shards[(0, 1)]["output_layer.weight"]
    assert torch.equal(out0, state["lm_head.weight"][:512])
    assert "embedding.word_embeddings.weight" not in shards[(0, 1)]
    assert "output_layer.weight" not in shards[(0, 0)] and "decoder.final_layernorm.weight" not in shards[(0, 0)]
    assert shards[(0, 0)]["decoder.layers.0.mlp.linear_fc1._extra_state"] is None


def test_tied_embeddings_placement():
    config, state = tiny(True)
    single = hf_to_megatron(state, config, 1, 1)[(0, 0)]
    assert "output_layer.weight" not in single and single["output_layer._extra_state"] is None
    staged = hf_to_megatron(state, config, 1, 2)
    assert torch.equal(staged[(0, 1)]["output_layer.weight"], staged[(0, 0)]["embedding.word_embeddings.weight"])
    staged[(0, 1)]["output_layer.weight"][3, 0] += 1.0
    with pytest.raises(ValueError, match="output_layer.weight differs"):
        megatron_to_hf(staged, config, 1, 2)


def test_tied_lm_head_copy_in_hf_state_is_accepted_only_when_equal():
    config, state = tiny(True)
    with_copy = dict(state, **{"lm_head.weight": state["model.embed_tokens.weight"].clone()})
    assert_same_state(megatron_to_hf(hf_to_megatron(with_copy, config, 1, 1), config, 1, 1), state)
    with_copy["lm_head.weight"][0, 0] += 1.0
    with pytest.raises(ValueError, match="lm_head.weight differs"):
        hf_to_megatron(with_copy, config, 1, 1)


def test_bf16_dtype_is_kept():
    config, state = tiny(False, dtype="bfloat16")
    back = megatron_to_hf(hf_to_megatron(state, config, 2, 2), config, 2, 2)
    assert_same_state(back, state)
    assert back["model.norm.weight"].dtype == torch.bfloat16


@pytest.mark.parametrize(
    "mutate, tp, error, match",
    [
        (lambda s: s.pop("model.layers.1.mlp.up_proj.weight"), 1, KeyError, "model.layers.1.mlp.up_proj.weight"),
        (lambda s: s.__setitem__("model.norm.weight", torch.ones(65)), 1, ValueError, r"shape \(65,\), expected \(64,\)"),
        (lambda s: s.__setitem__("model.layers.9.mlp.up_proj.weight", torch.ones(1)), 1, ValueError, "does not use"),
        (lambda s: None, 4, ValueError, "num_key_value_heads=2 must be divisible by tensor_model_parallel_size=4"),
    ],
)
def test_hf_to_megatron_errors(mutate, tp, error, match):
    config, state = tiny(False)
    mutate(state)
    with pytest.raises(error, match=match):
        hf_to_megatron(state, config, tp, 1)


def test_hf_to_megatron_ignores_rotary_buffers():
    config, state = tiny(False)
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    assert "model.layers.0.self_attn.rotary_emb.inv_freq" not in megatron_to_hf(
        hf_to_megatron(state, config, 1, 1), config, 1, 1)


def test_megatron_to_hf_errors():
    config, state = tiny(False)
    shards = hf_to_megatron(state, config, 2, 1)
    with pytest.raises(KeyError, match=r"lack ranks .*\(1, 0\)"):
        megatron_to_hf({(0, 0): shards[(0, 0)]}, config, 2, 1)
    shards[(1, 0)]["decoder.layers.0.bogus.weight"] = torch.ones(1)
    with pytest.raises(ValueError, match="unmapped keys: decoder.layers.0.bogus.weight"):
        megatron_to_hf(shards, config, 2, 1)
    shards = hf_to_megatron(state, config, 2, 1)
    shards[(1, 0)]["decoder.final_layernorm.weight"] = shards[(1, 0)]["decoder.final_layernorm.weight"] + 1
    with pytest.raises(ValueError, match="replicated over TP but differs"):
        megatron_to_hf(shards, config, 2, 1)


def test_sharded_safetensors_write_read_and_transformers_load(tmp_path):
    config, state = tiny(False)
    total = sum(v.numel() * v.element_size() for v in state.values())
    files = hf_io.save_hf_checkpoint(tmp_path, config, state, max_shard_bytes=200_000)
    shards = sorted(tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 3 and all(s.stat().st_size <= 200_000 + 300_000 for s in shards)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == total and sorted(index["weight_map"]) == sorted(state)
    assert not (tmp_path / "model.safetensors").exists() and tmp_path / "config.json" in files
    assert_same_state(hf_io.load_hf_state_dict(tmp_path), state)
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert torch.equal(model.model.layers[3].self_attn.k_proj.bias, state["model.layers.3.self_attn.k_proj.bias"])
    assert torch.equal(model.lm_head.weight, state["lm_head.weight"])
    # Rewriting as a single file removes the stale shards.
    hf_io.save_hf_checkpoint(tmp_path, config, state)
    assert not list(tmp_path.glob("model-*-of-*.safetensors")) and (tmp_path / "model.safetensors").is_file()
    assert not (tmp_path / "model.safetensors.index.json").exists()


def test_sharded_index_missing_shard_is_an_error(tmp_path):
    config, state = tiny(False)
    hf_io.save_hf_checkpoint(tmp_path, config, state, max_shard_bytes=200_000)
    sorted(tmp_path.glob("model-*-of-*.safetensors"))[1].unlink()
    with pytest.raises(FileNotFoundError, match="names shard"):
        hf_io.load_hf_state_dict(tmp_path)


def test_pytorch_model_bin_is_read(tmp_path):
    config, state = tiny(True)
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded_config, loaded = load_any_checkpoint(tmp_path)
    assert loaded_config == config
    assert_same_state(loaded, state)


def test_load_any_checkpoint_forms(tmp_path):
    config, state = tiny(True)
    hf_dir, mg_dir, train_dir = tmp_path / "hf", tmp_path / "mg", tmp_path / "train"
    hf_io.save_hf_checkpoint(hf_dir, config, state)
    save_megatron_checkpoint(mg_dir, hf_to_megatron(state, config, 2, 2), config)
    hf_io.save_hf_checkpoint(train_dir, config, state)  # training output: HF export at the root
    (train_dir / "checkpoints").mkdir()
    (train_dir / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("10")
    for folder in (hf_dir, mg_dir, train_dir):
        loaded_config, loaded = load_any_checkpoint(folder)
        assert loaded_config == config
        assert_same_state(loaded, state)
    with pytest.raises(FileNotFoundError, match="pass the training output folder itself"):
        load_any_checkpoint(train_dir / "checkpoints")
    (tmp_path / "no_export" / "checkpoints").mkdir(parents=True)
    (tmp_path / "no_export" / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("10")
    with pytest.raises(FileNotFoundError, match="without an HF export .*convert_ckpt.py --direction mg2hf"):
        load_any_checkpoint(tmp_path / "no_export")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither an HF model folder"):
        load_any_checkpoint(tmp_path / "empty")


def test_tiny_model_is_seeded_and_valid_qwen2(tmp_path):
    cfg = TinyQwen2Config(vocab_size=VOCAB, seed=7)
    make_tiny_model(tmp_path / "a", cfg)
    make_tiny_model(tmp_path / "b", cfg)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    other = tiny_hf_state_dict(TinyQwen2Config(vocab_size=VOCAB, seed=8))
    assert not torch.equal(other["model.norm.weight"], hf_io.load_hf_state_dict(tmp_path / "a")["model.norm.weight"])
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"] and config["model_type"] == "qwen2"
    from transformers import AutoConfig

    hf_cfg = AutoConfig.from_pretrained(tmp_path / "a")
    assert (hf_cfg.num_key_value_heads, hf_cfg.vocab_size, hf_cfg.tie_word_embeddings) == (2, VOCAB, True)
    with pytest.raises(ValueError, match="vocab_size=1000 is smaller than the Qwen2.5 tokenizer"):
        make_tiny_model(tmp_path / "c", cfg, tokenizer_dir=tmp_path)
    with pytest.raises(ValueError, match="num_attention_heads=4 must be divisible by num_key_value_heads=3"):
        TinyQwen2Config(num_key_value_heads=3).validate()


def test_tiny_model_with_real_tokenizer(tmp_path, shared_tokenizer_dir):
    files = make_tiny_model(tmp_path, TinyQwen2Config(), tokenizer_dir=shared_tokenizer_dir)
    names = {Path(f).name for f in files}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json", "vocab.json",
            "merges.txt"} <= names
    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [151645, 151643]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tok) == 151665 and tok.convert_ids_to_tokens(151645) == "<|im_end|>"


# ---------------------------------------------------------------------------------------------- ModelScope ids


class _FakeSnapshot:
    def __init__(self, cached: Path | None = None, error: Exception | None = None):
        self.cached, self.error, self.calls = cached, error, []

    def __call__(self, model_id, local_files_only=False, **kwargs):
        self.calls.append((model_id, local_files_only))
        if local_files_only:
            if self.cached is None:
                raise ValueError("not in cache")
            return str(self.cached)
        raise self.error


def _offline_env(monkeypatch, offline: bool):
    for var in hf_io.OFFLINE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_modelscope_id_unreachable_gives_clear_error(monkeypatch):
    import modelscope

    fake = _FakeSnapshot(error=ConnectionError("Failed to resolve 'www.modelscope.cn'"))
    monkeypatch.setattr(modelscope, "snapshot_download", fake)
    _offline_env(monkeypatch, offline=False)
    with pytest.raises(ConnectionError) as info:
        hf_io.resolve_model_path("Qwen/Qwen2.5-7B-Instruct")
    message = str(info.value)
    assert "offline or ModelScope is unreachable" in message and "Failed to resolve" in message
    assert "--model_path /path/to/" in message
    assert fake.calls == [("Qwen/Qwen2.5-7B-Instruct", True), ("Qwen/Qwen2.5-7B-Instruct", False)]


def test_modelscope_id_offline_does_not_download(monkeypatch, tmp_path):
    import modelscope

    fake = _FakeSnapshot(error=AssertionError("must not download"))
    monkeypatch.setattr(modelscope, "snapshot_download", fake)
    _offline_env(monkeypatch, offline=True)
    with pytest.raises(ConnectionError, match=r"offline \(HF_HUB_OFFLINE=1\).*--model_path"):
        hf_io.resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct")
    assert fake.calls == [("Qwen/Qwen2.5-0.5B-Instruct", True)]
    cached = _FakeSnapshot(cached=tmp_path)
    monkeypatch.setattr(modelscope, "snapshot_download", cached)
    assert hf_io.resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct") == tmp_path


def test_local_paths_never_go_to_modelscope(tmp_path, monkeypatch):
    import modelscope

    monkeypatch.setattr(modelscope, "snapshot_download", _FakeSnapshot(error=AssertionError("no")))
    assert hf_io.resolve_model_path(tmp_path) == tmp_path
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hf_io.resolve_model_path(tmp_path / "missing" / "model")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hf_io.resolve_model_path("./w_ori")


# ---------------------------------------------------------------------------------------------- CLIs


def test_training_checkpoint_forms_and_missing_iteration(tmp_path, capsys):
    """`convert_ckpt.py`'s training-checkpoint inputs (the conversion itself: test_train_runs.py's TP=2 PP=2 run)."""
    from qwen_sft.checkpointing import find_training_checkpoint
    from tools import convert_ckpt

    out = tmp_path / "out"
    ck = out / "checkpoints"
    for n in (5, 10):
        (ck / f"iter_{n:07d}").mkdir(parents=True)
        (ck / f"iter_{n:07d}" / "metadata.json").write_text("{}")
    (ck / "latest_checkpointed_iteration.txt").write_text("10\n")
    it5, it10 = ck / "iter_0000005", ck / "iter_0000010"
    assert find_training_checkpoint(out) == it10 and find_training_checkpoint(ck) == it10
    assert find_training_checkpoint(out, 5) == it5 and find_training_checkpoint(ck, 5) == it5
    assert find_training_checkpoint(it5) == it5 and find_training_checkpoint(it5, 5) == it5
    with pytest.raises(FileNotFoundError, match=r"no checkpoint of iteration 7 .*saved iterations: \[5, 10\]"):
        find_training_checkpoint(out, 7)
    with pytest.raises(ValueError, match="names another"):
        find_training_checkpoint(it5, 10)
    config, state = tiny(True)
    hf_io.save_hf_checkpoint(tmp_path / "hf", config, state)
    save_megatron_checkpoint(tmp_path / "mg", hf_to_megatron(state, config, 1, 1), config)
    assert find_training_checkpoint(tmp_path / "hf") is None and find_training_checkpoint(tmp_path / "mg") is None
    assert convert_ckpt.main(["--model_path", str(out), "--iteration", "7", "--output_path", str(tmp_path / "x")]) == 1
    assert "no checkpoint of iteration 7" in capsys.readouterr().err
    assert convert_ckpt.main(["--model_path", str(tmp_path / "hf"), "--iteration", "7",
                              "--output_path", str(tmp_path / "x")]) == 1
    assert "holds no training checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def test_cli_roundtrip_tp2_pp2(tmp_path):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer_config.json").write_text('{"model_max_length": 32768}')
    (tok / "vocab.json").write_text("{}")
    tiny_dir, mg_dir, hf_dir = tmp_path / "tiny", tmp_path / "mg", tmp_path / "hf"
    r = run_tool("tools/make_tiny_model.py", "--output_path", str(tiny_dir), "--vocab_size", str(VOCAB),
                 "--num_layers", "4", "--untie_word_embeddings", "--no_tokenizer", "--seed", "11")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["tie_word_embeddings"] is False
    r = run_tool("tools/convert_ckpt.py", "--direction", "hf2mg", "--model_path", str(tiny_dir), "--output_path",
                 str(mg_dir), "--tp", "2", "--pp", "2", "--tokenizer_path", str(tok))
    assert r.returncode == 0, r.stderr
    assert "TP=2 PP=2 padded_vocab_size=1024" in r.stdout and "mp_rank_01_001" in r.stdout
    assert (mg_dir / "tokenizer_config.json").read_text() == '{"model_max_length": 32768}'
    r = run_tool("tools/convert_ckpt.py", "--direction", "mg2hf", "--load-dir", str(mg_dir), "--save-dir",
                 str(hf_dir), "--max_shard_size", "100KB")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["direction"] == "mg2hf" and summary["input_format"] == "megatron"
    assert (hf_dir / "model.safetensors.index.json").is_file() and (hf_dir / "vocab.json").is_file()
    assert (hf_dir / "generation_config.json").is_file()
    assert_same_state(hf_io.load_hf_state_dict(hf_dir), hf_io.load_hf_state_dict(tiny_dir))
    assert hf_io.load_hf_config(hf_dir) == hf_io.load_hf_config(tiny_dir)


def test_cli_dtype_cast_and_errors(tmp_path):
    config, state = tiny(True)
    hf_io.save_hf_checkpoint(tmp_path / "hf", config, state)
    r = run_tool("tools/convert_ckpt.py", "--model_path", str(tmp_path / "hf"), "--output_path",
                 str(tmp_path / "mg"), "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    assert "note: no tokenizer files copied" in r.stdout
    _, loaded = load_any_checkpoint(tmp_path / "mg")
    assert loaded["model.norm.weight"].dtype == torch.bfloat16
    assert torch.equal(loaded["model.norm.weight"], state["model.norm.weight"].to(torch.bfloat16))
    assert json.loads((tmp_path / "mg" / "megatron_convert.json").read_text())["dtype"] == "bfloat16"
    r = run_tool("tools/convert_ckpt.py", "--model_path", str(tmp_path / "nope"), "--output_path", str(tmp_path / "x"))
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run_tool("tools/convert_ckpt.py", "--model_path", str(tmp_path / "hf"), "--output_path", str(tmp_path / "x"),
                 "--tp", "4")
    assert r.returncode == 1 and "divisible by tensor_model_parallel_size=4" in r.stderr
    r = run_tool("tools/convert_ckpt.py", "--model_path", "a", "--output_path", "b", "--direction", "sideways")
    assert r.returncode == 2 and "--direction 'sideways'" in r.stderr


# ------------------------------------------------------------------------------------------------ the mapping table
def test_convert_docstring_quotes_the_qwen2_table():
    """The prose table in qwen_sft.convert's docstring is the table the appliers walk, not a copy that can drift."""
    from qwen_sft import convert
    from qwen_sft.weight_map import QWEN2, mapping_table_markdown

    assert mapping_table_markdown(QWEN2) in convert.__doc__


def test_family_tables_are_consistent():
    """Every family's export order is a permutation of its layer rows' HF names; splits fit their part counts."""
    from qwen_sft.weight_map import FAMILIES, Split, Stage

    for family in FAMILIES:
        layer_names = [name for row in family.rows if row.stage is Stage.LAYER for name in row.hf]
        assert len(set(layer_names)) == len(layer_names), family.name
        if family.hf_export_order is not None:
            assert sorted(family.hf_export_order) == sorted(layer_names), family.name
        for row in family.rows:
            parts = {Split.FUSED_QKV: 3, Split.FUSED_GATE_UP: 2}.get(row.split, 1)
            assert len(row.hf) == parts, (family.name, row.mg)
            assert ("{g}" in row.mg.replace("{l}", "{g}")) == (row.stage is Stage.LAYER), (family.name, row.mg)


def test_family_is_chosen_by_config():
    from qwen_sft.weight_map import QWEN2, family_for

    assert family_for({"model_type": "qwen2"}) is QWEN2
    assert family_for({"architectures": ["Qwen2ForCausalLM"]}) is QWEN2
    assert family_for({}) is QWEN2  # hand-written configs from before families existed
    with pytest.raises(ValueError, match="supported: Qwen2"):
        family_for({"model_type": "gemma"})
    config, state = tiny(tied=False)
    with pytest.raises(ValueError, match="model_type 'gemma'"):
        hf_to_megatron(state, dict(config, model_type="gemma"), 1, 1)


def test_a_new_family_is_a_table(monkeypatch):
    """A Llama-style family (no qkv bias) needs only a table: the appliers split and merge it at TP=2, PP=2."""
    import dataclasses

    from qwen_sft import weight_map

    llama = dataclasses.replace(weight_map.QWEN2, name="Llama", model_types=("llama",),
                                architectures=("LlamaForCausalLM",),
                                rows=tuple(r for r in weight_map.QWEN2.rows if not r.mg.endswith("linear_qkv.bias")),
                                hf_export_order=None)
    monkeypatch.setattr(weight_map, "FAMILIES", (weight_map.QWEN2, llama))
    config, state = tiny(tied=False)
    config = dict(config, model_type="llama", architectures=["LlamaForCausalLM"])
    state = {k: v for k, v in state.items() if not k.endswith("_proj.bias")}
    shards = hf_to_megatron(state, config, 2, 2)
    assert not any(k.endswith("linear_qkv.bias") for s in shards.values() for k in s)
    assert "decoder.layers.0.self_attention.linear_qkv._extra_state" in shards[(0, 0)]
    assert_same_state(megatron_to_hf(shards, config, 2, 2), state)
    with pytest.raises(ValueError, match="a Llama model of this config.json does not use"):
        hf_to_megatron(dict(state, **{"model.layers.0.self_attn.q_proj.bias": torch.zeros(1)}), config, 1, 1)
