"""data_convert: label masks by hand, indexed-dataset read-back, split and drop counts, bad input,
determinism, the CLI and the shell script end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qwen_sft.data import (
    IGNORE_INDEX,
    DataConvertConfig,
    DataConvertError,
    convert,
    read_indexed_split,
    split_indices,
    tokenize_record,
)
from qwen_sft.demo_data import write_demo_dataset
from qwen_sft.tokenizer import build_messages, load_tokenizer, render_prompt_ids, standin_tokenizer_dir
from tests.conftest import REPO_ROOT, shared_path

PY = sys.executable
TIMEOUT = 120


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory) -> Path:
    return standin_tokenizer_dir(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tok(standin_dir):
    return load_tokenizer(standin_dir)


def _write(path: Path, records) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    else:
        path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    return path


def _convert(tmp_path, standin_dir, records_or_path, **kw) -> dict:
    src = records_or_path
    if not isinstance(src, Path):
        src = _write(tmp_path / "in.json", records_or_path)
    cfg = DataConvertConfig(input_path=str(src), output_path=str(tmp_path / "out"),
                            tokenizer_path=str(standin_dir), progress=False, **kw)
    return convert(cfg, log=lambda *_: None).meta


def _split_text(tok, ids, labels):
    """(masked prefix text, learned text, masked suffix text) — checks the learned span is contiguous."""
    learned = np.flatnonzero(labels != IGNORE_INDEX)
    a, b = int(learned[0]), int(learned[-1]) + 1
    assert np.all(labels[a:b] == ids[a:b]) and np.all(labels[:a] == IGNORE_INDEX) \
        and np.all(labels[b:] == IGNORE_INDEX)
    return tok.decode(ids[:a]), tok.decode(ids[a:b]), tok.decode(ids[b:])


SYS = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"


# ------------------------------------------------------------------ label masks, by hand
@pytest.mark.parametrize("record, prompt, response", [
    ({"instruction": "Reverse the word.", "input": "cat", "output": "tac"},
     SYS + "<|im_start|>user\nReverse the word.\ncat<|im_end|>\n<|im_start|>assistant\n", "tac<|im_end|>"),
    ({"instruction": "What is 2 + 3?", "input": "", "output": "5"},
     SYS + "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n", "5<|im_end|>"),
    ({"instruction": "把这个单词倒过来写。", "input": "dog", "output": "god"},
     SYS + "<|im_start|>user\n把这个单词倒过来写。\ndog<|im_end|>\n<|im_start|>assistant\n", "god<|im_end|>"),
    ({"instruction": "三加四等于多少？", "output": "等于七。"},
     SYS + "<|im_start|>user\n三加四等于多少？<|im_end|>\n<|im_start|>assistant\n", "等于七。<|im_end|>"),
    ({"instruction": "Greet", "input": "", "output": "Hello!", "system": "你是一个有用的助手。"},
     "<|im_start|>system\n你是一个有用的助手。<|im_end|>\n<|im_start|>user\nGreet<|im_end|>\n"
     "<|im_start|>assistant\n", "Hello!<|im_end|>"),
    ({"instruction": "And 4 + 4?", "input": "", "output": "8", "history": [["2 + 3?", "5"], ["你好", "你好！"]]},
     SYS + "<|im_start|>user\n2 + 3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n"
     "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！<|im_end|>\n"
     "<|im_start|>user\nAnd 4 + 4?<|im_end|>\n<|im_start|>assistant\n", "8<|im_end|>"),
    ({"instruction": "Say nothing.", "output": ""},
     SYS + "<|im_start|>user\nSay nothing.<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>"),
])
def test_label_mask_boundaries_by_hand(tok, record, prompt, response):
    ids, labels, status = tokenize_record(tok, record, None, 4096)
    assert status == "ok" and ids.dtype == np.int32 and labels.dtype == np.int32
    masked_prefix, learned, masked_suffix = _split_text(tok, ids, labels)
    assert masked_prefix == prompt
    assert learned == response
    assert masked_suffix == "\n"  # the template's newline after <|im_end|>: kept, masked
    # the masked prefix is exactly what generation feeds the model
    assert list(ids[:len(render_prompt_ids(tok, record))]) == render_prompt_ids(tok, record)
    # and the whole sample is the template's own rendering
    assert list(ids) == tok.apply_chat_template(build_messages(record), tokenize=True, return_dict=False)


def test_label_mask_with_system_prompt_argument(tok):
    rec = {"instruction": "hi", "output": "yo"}
    ids, labels, _ = tokenize_record(tok, rec, "Answer briefly.", 4096)
    prefix, learned, _ = _split_text(tok, ids, labels)
    assert prefix.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>\n") and learned == "yo<|im_end|>"


def test_real_tokenizer_samples_equal_apply_chat_template(alpaca_zh_path, alpaca_en_path):
    real = load_tokenizer(shared_path("assets", "qwen2.5-tokenizer"))
    for path in (alpaca_zh_path, alpaca_en_path):
        for rec in json.loads(path.read_text("utf-8"))[:150]:
            ids, labels, _ = tokenize_record(real, rec, None, 100000)
            expected = real.apply_chat_template(build_messages(rec), tokenize=True, return_dict=False)
            assert list(ids) == expected
            _, learned, suffix = _split_text(real, ids, labels)
            assert learned == rec["output"] + "<|im_end|>" and suffix == "\n"


# ------------------------------------------------------------------ over-length handling
def test_overlength_drop_and_truncate(tok):
    rec = {"instruction": "x", "output": "one two three four five six seven eight nine ten"}
    ids, labels, _ = tokenize_record(tok, rec, None, 4096)
    n_prompt = len(render_prompt_ids(tok, rec))
    assert tokenize_record(tok, rec, None, ids.size)[2] == "ok"  # exactly seq_length fits
    assert tokenize_record(tok, rec, None, ids.size - 1, "drop") == (None, None, "overlength")
    t_ids, t_labels, status = tokenize_record(tok, rec, None, n_prompt + 3, "truncate")
    assert status == "truncated" and t_ids.size == n_prompt + 3
    assert np.array_equal(t_ids, ids[:n_prompt + 3]) and np.array_equal(t_labels, labels[:n_prompt + 3])
    assert np.count_nonzero(t_labels != IGNORE_INDEX) == 3
    assert tokenize_record(tok, rec, None, n_prompt, "truncate") == (None, None, "prompt_overlength")


def test_drop_counts_exact(tmp_path, standin_dir, tok):
    short = {"instruction": "a", "output": "b"}
    long_ = {"instruction": "a", "output": "word " * 60}
    huge_prompt = {"instruction": "word " * 80, "output": "b"}
    n_short = len(tokenize_record(tok, short, None, 4096)[0])
    n_prompt_huge = len(render_prompt_ids(tok, huge_prompt))
    seq = max(n_short, 40)
    assert n_prompt_huge > seq
    records = [short] * 5 + [long_] * 3 + [huge_prompt] * 2
    meta = _convert(tmp_path, standin_dir, records, seq_length=seq, split_ratio=1.0)
    c = meta["counts"]
    assert (c["read"], c["written"], c["dropped"], c["truncated"]) == (10, 5, 5, 0)
    assert c["dropped_by_reason"] == {"overlength": 5}
    meta = _convert(tmp_path, standin_dir, records, seq_length=seq, split_ratio=1.0, overlength="truncate")
    c = meta["counts"]
    assert (c["written"], c["truncated"], c["dropped_by_reason"]) == (8, 3, {"prompt_overlength": 2})
    assert meta["tokens"]["train"]["length_max"] == seq
    ids, _ = read_indexed_split(tmp_path / "out", "train")
    assert max(len(x) for x in ids) == seq


# ------------------------------------------------------------------ read-back and splits
def test_indexed_dataset_read_back_equals_tokenization(tmp_path, standin_dir, tok):
    src = write_demo_dataset(tmp_path / "demo.jsonl", n=40, seed=3)
    records = [json.loads(line) for line in src.read_text("utf-8").splitlines()]
    meta = _convert(tmp_path, standin_dir, src, seq_length=256, split_ratio=0.75, seed=11)
    expected = [tokenize_record(tok, r, None, 256) for r in records]
    train_idx, valid_idx = split_indices(40, 0.75, 11)
    assert (len(train_idx), len(valid_idx)) == (30, 10)
    assert meta["counts"]["train"] == 30 and meta["counts"]["valid"] == 10
    for split, order in (("train", train_idx), ("valid", valid_idx)):
        ids, labels = read_indexed_split(tmp_path / "out", split)
        assert len(ids) == len(order)
        for got_ids, got_labels, i in zip(ids, labels, order):
            assert got_ids.dtype == np.int32 and got_labels.dtype == np.int32
            assert np.array_equal(got_ids, expected[i][0]) and np.array_equal(got_labels, expected[i][1])
        stats = meta["tokens"][split]
        assert stats["tokens"] == sum(len(x) for x in ids)
        assert stats["learnable_tokens"] == sum(int(np.count_nonzero(x != IGNORE_INDEX)) for x in labels)
    # the .idx declares int32 (megatron DType code 4) and one document per sample
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    ds = IndexedDataset(str(tmp_path / "out" / "train_input_ids"))
    assert ds.index.dtype == np.int32 and len(ds.document_indices) == 31
    assert meta["tokenizer"]["standin"] is True and meta["args"]["seed"] == 11


@pytest.mark.parametrize("n, ratio, n_train", [(1000, 0.95, 950), (20, 0.75, 15), (7, 0.5, 3), (10, 1.0, 10),
                                                (3, 0.999, 2), (1, 0.5, 1), (0, 0.9, 0)])
def test_split_counts(n, ratio, n_train):
    tr, va = split_indices(n, ratio, 5)
    assert len(tr) == n_train and len(va) == n - n_train
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(n))
    assert np.array_equal(split_indices(n, ratio, 5)[0], tr)  # seeded
    if n > 5:
        assert not np.array_equal(split_indices(n, ratio, 6)[0], tr)


def test_split_ratio_one_writes_no_valid_files(tmp_path, standin_dir):
    meta = _convert(tmp_path, standin_dir, [{"instruction": "a", "output": "b"}] * 4, split_ratio=1.0)
    assert meta["counts"]["valid"] == 0 and meta["files"] == [
        "train_input_ids.bin", "train_input_ids.idx", "train_labels.bin", "train_labels.idx"]
    with pytest.raises(FileNotFoundError, match="valid"):
        read_indexed_split(tmp_path / "out", "valid")


def test_stale_files_of_an_earlier_run_are_removed(tmp_path, standin_dir):
    _convert(tmp_path, standin_dir, [{"instruction": "a", "output": "b"}] * 10, split_ratio=0.5)
    assert (tmp_path / "out" / "valid_labels.bin").exists()
    _convert(tmp_path, standin_dir, [{"instruction": "a", "output": "b"}] * 10, split_ratio=1.0)
    assert not (tmp_path / "out" / "valid_labels.bin").exists()


def test_deterministic_across_runs_and_workers(tmp_path, standin_dir):
    src = write_demo_dataset(tmp_path / "demo.json", n=300, seed=1)
    outs = []
    for name, workers in (("a", 1), ("b", 2), ("c", 2)):
        cfg = DataConvertConfig(input_path=str(src), output_path=str(tmp_path / name),
                                tokenizer_path=str(standin_dir), seq_length=128, workers=workers,
                                progress=False)
        outs.append(convert(cfg, log=lambda *_: None))
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 9
    for name in files:
        if name != "meta.json":
            a = (tmp_path / "a" / name).read_bytes()
            assert a == (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes(), name
    metas = [json.loads((tmp_path / n / "meta.json").read_text()) for n in "abc"]
    for m in metas:
        m["args"].pop("workers"), m["args"].pop("output_path")
    assert metas[0] == metas[1] == metas[2]
    assert outs[1].samples_per_second > 0 and outs[1].tokens_per_second > outs[1].samples_per_second


# ------------------------------------------------------------------ bad input
BAD_CASES = [
    # (records, record index, field, reason, message fragment)
    ([{"instruction": "a", "output": "b"}, "just a string"], 1, None, "not_an_object", "not a JSON object"),
    ([{"instruction": "a", "output": "b"}, {"output": "b"}], 1, "instruction", "missing_field", "is missing"),
    ([{"instruction": "a"}], 0, "output", "missing_field", "is missing"),
    ([{"instruction": "a", "output": "b"}] * 2 + [{"instruction": 5, "output": "b"}], 2, "instruction",
     "not_a_string", "must be a string, got int"),
    ([{"instruction": "a", "output": "b", "input": ["x"]}], 0, "input", "not_a_string", "got list"),
    ([{"instruction": "a", "output": None}], 0, "output", "not_a_string", "got NoneType"),
    ([{"instruction": "a", "output": "b", "history": [["x", 1]]}], 0, "history", "bad_history",
     "pair of strings"),
]


@pytest.mark.parametrize("case", range(len(BAD_CASES)))
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_bad_record_error_names_file_index_field(tmp_path, standin_dir, case, suffix):
    records, index, field, reason, fragment = BAD_CASES[case]
    src = _write(tmp_path / f"bad{suffix}", records)
    with pytest.raises(DataConvertError) as err:
        _convert(tmp_path, standin_dir, src)
    msg = str(err.value)
    assert f"{src}: record {index}" in msg and fragment in msg and "--skip_bad_records" in msg
    if suffix == ".jsonl":
        assert f"(line {index + 1})" in msg
    if field:
        assert f"field {field!r}" in msg
    assert not (tmp_path / "out" / "meta.json").exists()


def test_skip_bad_records_counts_by_reason(tmp_path, standin_dir):
    good = {"instruction": "a", "output": "b"}
    records = [good, "str", {"output": "b"}, {"instruction": 1, "output": "b"}, good, {"instruction": "a"},
               {"instruction": "a", "output": "b", "history": 3}, [good], good]
    meta = _convert(tmp_path, standin_dir, records, skip_bad_records=True, split_ratio=1.0)
    c = meta["counts"]
    assert (c["read"], c["bad_records"], c["written"]) == (9, 6, 3)
    assert c["bad_records_by_reason"] == {"not_an_object": 2, "missing_field": 2, "not_a_string": 1,
                                          "bad_history": 1}
    assert [e["index"] for e in meta["bad_record_examples"]] == [1, 2, 3, 5, 6, 7]
    assert meta["bad_record_examples"][1]["field"] == "instruction"


def test_jsonl_line_not_json(tmp_path, standin_dir):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "a", "output": \n'
                   '{"instruction": "c", "output": "d"}\n', "utf-8")
    with pytest.raises(DataConvertError, match=r"in.jsonl: record 1 \(line 3\): not valid JSON"):
        _convert(tmp_path, standin_dir, src)
    meta = _convert(tmp_path, standin_dir, src, skip_bad_records=True, split_ratio=1.0)
    assert meta["counts"]["read"] == 3 and meta["counts"]["bad_records_by_reason"] == {"not_json": 1}
    assert meta["bad_record_examples"][0]["line"] == 3


@pytest.mark.parametrize("content, fragment", [
    ('[{"instruction": "a", "output": "b"},', "not valid JSON at line 1 column"),
    ('{"instruction": "a", "output": "b"}', "expected a JSON list of records at top level, got dict"),
    ("", "not valid JSON at line 1 column 1"),
])
def test_file_level_errors_even_with_skip(tmp_path, standin_dir, content, fragment):
    src = tmp_path / "in.json"
    src.write_text(content, "utf-8")
    for skip in (False, True):
        with pytest.raises(DataConvertError, match="in.json: " + fragment):
            _convert(tmp_path, standin_dir, src, skip_bad_records=skip)


def test_other_input_errors(tmp_path, standin_dir):
    with pytest.raises(DataConvertError, match="does not exist"):
        _convert(tmp_path, standin_dir, tmp_path / "missing.json")
    csv = tmp_path / "in.csv"
    csv.write_text("a,b\n")
    with pytest.raises(DataConvertError, match=r"unsupported extension '.csv'"):
        _convert(tmp_path, standin_dir, csv)
    with pytest.raises(DataConvertError, match=r"no sample left to write: 2 read, 2 bad"):
        _convert(tmp_path, standin_dir, ["x", "y"], skip_bad_records=True)
    with pytest.raises(ValueError, match="split_ratio must be in"):
        _convert(tmp_path, standin_dir, [{"instruction": "a", "output": "b"}], split_ratio=0)
    with pytest.raises(ValueError, match="overlength must be"):
        _convert(tmp_path, standin_dir, [{"instruction": "a", "output": "b"}], overlength="cut")


# ------------------------------------------------------------------ CLI and script, end to end
def _env(tmp_path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "MSSHIM_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONWARNINGS": "ignore"}


def test_cli_end_to_end_on_alpaca_zh(tmp_path, alpaca_zh_path, shared_tokenizer_dir):
    out = tmp_path / "d_convert"
    proc = subprocess.run(
        [PY, str(REPO_ROOT / "tools" / "data_convert.py"), "--input_path", str(alpaca_zh_path),
         "--tokenizer_path", str(shared_tokenizer_dir), "--output_path", str(out), "--seq_length", "4096",
         "--split_ratio", "0.95", "--workers", "2"],
        capture_output=True, text=True, timeout=TIMEOUT, env=_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "read 1000, written 1000 (train 950, valid 50)" in proc.stdout
    assert "samples/s" in proc.stdout and "tokens/s" in proc.stdout
    assert "1000/1000" in proc.stderr  # the progress bar finished
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    assert meta["counts"]["dropped"] == 0 and meta["tokenizer"]["standin"] is False
    assert meta["args"]["seq_length"] == 4096 and meta["args"]["workers"] == 2
    ids, labels = read_indexed_split(out, "valid")
    assert len(ids) == 50
    real = load_tokenizer(shared_tokenizer_dir)
    records = json.loads(alpaca_zh_path.read_text("utf-8"))
    _, valid_idx = split_indices(1000, 0.95, 1234)
    first = records[valid_idx[0]]
    _, learned, _ = _split_text(real, ids[0], labels[0])
    assert learned == first["output"] + "<|im_end|>"


def test_cli_errors_and_standin_default(tmp_path):
    bad = _write(tmp_path / "bad.json", [{"instruction": "a", "output": "b"}, {"instruction": "a"}])
    cmd = [PY, str(REPO_ROOT / "tools" / "data_convert.py"), "--input_path", str(bad),
           "--output_path", str(tmp_path / "out"), "--no_progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=_env(tmp_path))
    assert proc.returncode == 1
    assert f"data_convert: error: {bad}: record 1, field 'output'" in proc.stderr
    assert "STAND-IN" in proc.stdout  # no --tokenizer_path: the stand-in, and it says so
    proc = subprocess.run(cmd + ["--skip_bad_records"], capture_output=True, text=True, timeout=TIMEOUT,
                          env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert 'bad records skipped 1 {"missing_field": 1}' in proc.stdout
    proc = subprocess.run(cmd + ["--split_ratio", "1.5"], capture_output=True, text=True, timeout=TIMEOUT,
                          env=_env(tmp_path))
    assert proc.returncode == 2 and "split_ratio must be in (0, 1]" in proc.stderr


def test_shell_script_with_env_overrides(tmp_path):
    src = write_demo_dataset(tmp_path / "demo.json", n=50, seed=0)
    env = {**_env(tmp_path), "INPUT_PATH": str(src), "TOKENIZER_PATH": "", "OUTPUT_PATH": str(tmp_path / "d"),
           "SEQ_LENGTH": "128", "SPLIT_RATIO": "0.8", "SEED": "7", "PYTHON": PY, "SYSTEM_PROMPT": "Be brief."}
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "data_convert_qwen25_instruction.sh"),
                           "--no_progress"], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "d" / "meta.json").read_text("utf-8"))
    assert meta["args"] == {"input_path": str(src), "output_path": str(tmp_path / "d"),
                            "tokenizer_path": None,
                            "seq_length": 128, "split_ratio": 0.8, "system_prompt": "Be brief.", "seed": 7,
                            "workers": 1, "overlength": "drop", "skip_bad_records": False}
    assert (meta["counts"]["train"], meta["counts"]["valid"]) == (40, 10)
