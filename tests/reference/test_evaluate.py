"""tools/evaluate.py and qwen_sft.evaluation on real torch (CPU): the validation loss equals a direct computation
with HF `transformers` `Qwen2ForCausalLM` on the same weights and the same data_convert output; perplexity, JSON
output, CLI and error cases."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qwen_sft.data import DataConvertConfig, convert, read_indexed_split
from qwen_sft.demo_data import make_demo_records
from qwen_sft.evaluation import EvaluateConfig, run_evaluate
from qwen_sft.tiny import TinyQwen2Config, make_tiny_model
from qwen_sft.tokenizer import standin_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_process_group():
    """run_evaluate creates a one-process gloo group; tear it down after this module."""
    from qwen_sft.parallel import destroy

    yield
    destroy()


def _convert(records, out_dir: Path, tokenizer_dir, split_ratio=0.5) -> Path:
    src = out_dir.with_suffix(".json")
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    convert(DataConvertConfig(input_path=str(src), output_path=str(out_dir), tokenizer_path=str(tokenizer_dir),
                              seq_length=512, split_ratio=split_ratio, seed=1, progress=False), log=lambda *a: None)
    return out_dir


def hf_reference_loss(model_dir: Path, data_dir: Path, split: str = "valid") -> tuple[float, int]:
    """Mean next-token cross-entropy over learnable tokens with HF transformers, one sample at a time."""
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids_list, labels_list = read_indexed_split(data_dir, split)
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, labels in zip(ids_list, labels_list):
            ids = torch.as_tensor(ids, dtype=torch.long)[None]
            labels = torch.as_tensor(labels, dtype=torch.long)
            logits = model(ids).logits[0].float()
            total += F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="sum").double().item()
            count += int((labels[1:] != -100).sum())
    return total / count, count


@pytest.fixture(scope="module")
def standin_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    tok = standin_tokenizer_dir()
    model = root / "tiny"
    make_tiny_model(model, TinyQwen2Config(tie_word_embeddings=False, seed=5), tokenizer_dir=tok)
    data = _convert(make_demo_records(16, seed=2), root / "d_convert", tok)
    return model, data


def test_loss_equals_hf_transformers_standin(standin_case, tmp_path):
    model, data = standin_case
    expected, count = hf_reference_loss(model, data)
    res = run_evaluate(EvaluateConfig(model_path=str(model), data_path=str(data), micro_batch_size=3,
                                      output_file=str(tmp_path / "ev.json"), progress=False), log=lambda m: None)
    assert res.learnable_tokens == count and res.samples == 8
    assert res.tokenizer_check == "same"
    assert res.loss == pytest.approx(expected, rel=1e-5)
    assert res.perplexity == pytest.approx(math.exp(expected), rel=1e-4)
    assert 5.0 < res.loss < 20.0  # a random model over a 151,936-token vocabulary: about ln(151936) = 11.9
    saved = json.loads((tmp_path / "ev.json").read_text(encoding="utf-8"))
    assert saved["loss"] == res.loss and saved["learnable_tokens"] == count and saved["split"] == "valid"
    # token-weighted over the split: the micro-batch size does not change it
    res1 = run_evaluate(EvaluateConfig(model_path=str(model), data_path=str(data), micro_batch_size=1,
                                       progress=False), log=lambda m: None)
    assert res1.loss == pytest.approx(res.loss, rel=1e-6)
    # max_samples evaluates a prefix and counts the rest as skipped
    res2 = run_evaluate(EvaluateConfig(model_path=str(model), data_path=str(data), max_samples=3, progress=False),
                        log=lambda m: None)
    assert res2.samples == 3 and res2.skipped_by_reason["max_samples"] == 5 and res2.learnable_tokens < count


def test_loss_excludes_padded_vocabulary_rows(tmp_path):
    """megatron pads the output layer (here 151,665 → 155,648 rows with make_vocab_size_divisible_by=4096): the
    padding rows (logit 0) must not enter the softmax, or the loss moves by ~2e-3 relative."""
    tok = standin_tokenizer_dir()
    model = tmp_path / "tiny_unpadded"
    make_tiny_model(model, TinyQwen2Config(tie_word_embeddings=False, vocab_size=151665, seed=7), tokenizer_dir=tok)
    data = _convert(make_demo_records(16, seed=3), tmp_path / "d_convert", tok)
    expected, count = hf_reference_loss(model, data)
    res = run_evaluate(EvaluateConfig(model_path=str(model), data_path=str(data), micro_batch_size=4,
                                      make_vocab_size_divisible_by=4096, progress=False), log=lambda m: None)
    assert res.learnable_tokens == count > 0
    assert res.loss == pytest.approx(expected, rel=1e-5)


def test_loss_equals_hf_transformers_real_alpaca_zh(alpaca_zh_path, shared_tokenizer_dir, tmp_path):
    records = json.loads(Path(alpaca_zh_path).read_text(encoding="utf-8"))[:12]
    model = tmp_path / "tiny_real"
    make_tiny_model(model, TinyQwen2Config(tie_word_embeddings=True, seed=9), tokenizer_dir=shared_tokenizer_dir)
    data = _convert(records, tmp_path / "d_zh", shared_tokenizer_dir)
    expected, count = hf_reference_loss(model, data)
    res = run_evaluate(EvaluateConfig(model_path=str(model), data_path=str(data), micro_batch_size=4,
                                      progress=False), log=lambda m: None)
    assert res.learnable_tokens == count > 0
    assert res.loss == pytest.approx(expected, rel=1e-5)
    assert res.tokenizer_check == "same"


def _tool():
    spec = importlib.util.spec_from_file_location("tool_evaluate", REPO / "tools" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_prints_and_writes_json(standin_case, tmp_path, capsys):
    model, data = standin_case
    tool = _tool()
    out = tmp_path / "sub" / "eval.json"
    rc = tool.main(["--model_path", str(model), "--data_path", str(data), "--output_file", str(out),
                    "--no_progress"])
    stdout = capsys.readouterr().out
    assert rc == 0
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert f"valid loss {saved['loss']:.6f} nats/token, perplexity {saved['perplexity']:.4f}" in stdout
    assert saved["perplexity"] == pytest.approx(math.exp(saved["loss"]), rel=1e-12)


def test_errors_empty_split_and_missing_data(standin_case, tmp_path, capsys):
    model, _ = standin_case
    only_train = _convert(make_demo_records(4, seed=3), tmp_path / "d_train_only", standin_tokenizer_dir(),
                          split_ratio=1.0)
    tool = _tool()
    assert tool.main(["--model_path", str(model), "--data_path", str(only_train), "--no_progress"]) == 1
    assert "the valid split has no samples" in capsys.readouterr().err
    assert tool.main(["--model_path", str(model), "--data_path", str(tmp_path / "nope"), "--no_progress"]) == 1
    assert "valid_input_ids.bin not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="micro_batch_size"):
        EvaluateConfig(model_path="m", data_path="d", micro_batch_size=0).validate()


def test_check_tokenizer_against_dataset_meta(standin_case, tmp_path):
    from qwen_sft.evaluation import check_tokenizer

    model, data = standin_case
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    assert check_tokenizer(model, meta) == "same"
    other = tmp_path / "other_tokenizer"
    other.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        (other / name).write_bytes((model / name).read_bytes())
    assert check_tokenizer(other, meta) == "same"
    cfg = json.loads((other / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["chat_template"] = cfg["chat_template"].replace("<|im_start|>system", "<|im_start|>system ")
    (other / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert check_tokenizer(other, meta) == "different"
    assert check_tokenizer(model, {}).startswith("unknown: the dataset's meta.json records no tokenizer")
    bare = tmp_path / "bare"
    bare.mkdir()
    assert check_tokenizer(bare, meta) == f"unknown: {bare} holds no tokenizer files"
