"""The built-in demo dataset: deterministic, correct answers, both languages, short samples, converts
cleanly."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from qwen_sft.data import IGNORE_INDEX, DataConvertConfig, convert, read_indexed_split
from qwen_sft.demo_data import DEMO_WORDS, make_demo_records, write_demo_dataset
from qwen_sft.tokenizer import check_record, standin_tokenizer_dir

_ZH = re.compile(r"[\u4e00-\u9fff]")


def _expected_answer(rec: dict) -> str:
    """Solve a demo record independently of the generator (from its text)."""
    text = rec["instruction"] + "\n" + rec["input"]
    nums = re.findall(r"\b\d\b", text)
    if len(nums) == 2:
        return str(int(nums[0]) + int(nums[1]))
    word = next(w for w in re.findall(r"[a-z]+", text) if w in DEMO_WORDS)
    if "Reverse" in text or "倒过来" in text:
        return word[::-1]
    if "capital" in text or "大写" in text:
        return word.upper()
    if "twice" in text or "两遍" in text:
        return f"{word} {word}"
    raise AssertionError(f"unknown demo task: {rec}")


def test_records_are_valid_correct_and_cover_both_languages():
    records = make_demo_records(200, seed=4)
    assert len(records) == 200
    for r in records:
        check_record(r)
        assert set(r) == {"instruction", "input", "output"}
        assert r["output"] == _expected_answer(r)
        assert len(r["output"]) <= 11
    zh = [r for r in records if _ZH.search(r["instruction"])]
    assert len(zh) == 100  # en and zh alternate in the 16-record cycle
    with_input = [r for r in records if r["input"]]
    assert len(with_input) == 100
    outputs = {r["output"] for r in records}
    assert len(outputs) > 40  # operands vary


def test_deterministic_by_seed():
    assert make_demo_records(50, seed=1) == make_demo_records(50, seed=1)
    assert make_demo_records(50, seed=1) != make_demo_records(50, seed=2)
    assert make_demo_records(50, seed=1)[:10] == make_demo_records(10, seed=1)
    with pytest.raises(ValueError, match="positive int"):
        make_demo_records(0)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_write_demo_dataset_reads_back(tmp_path, suffix):
    path = write_demo_dataset(tmp_path / "sub" / f"demo{suffix}", n=20, seed=9)
    text = path.read_text("utf-8")
    records = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert records == make_demo_records(20, seed=9)
    with pytest.raises(ValueError, match=r"must end in \.json or \.jsonl"):
        write_demo_dataset(tmp_path / "demo.txt", n=2)


def test_demo_converts_to_short_samples(tmp_path):
    src = write_demo_dataset(tmp_path / "demo.json", n=64, seed=0)
    cfg = DataConvertConfig(input_path=str(src), output_path=str(tmp_path / "d"), seq_length=128,
                            split_ratio=0.75,
                            tokenizer_path=str(standin_tokenizer_dir(tmp_path / "cache")), progress=False)
    meta = convert(cfg, log=lambda *_: None).meta
    assert meta["counts"]["written"] == 64 and meta["counts"]["dropped"] == 0
    assert meta["tokens"]["train"]["length_max"] <= 64  # tiny model, 2 cores: short samples
    ids, labels = read_indexed_split(tmp_path / "d", "train")
    learnable = [int(np.count_nonzero(x != IGNORE_INDEX)) for x in labels]
    assert len(ids) == 48 and 2 <= min(learnable) and max(learnable) <= 6
