"""The built-in demo dataset: deterministic, correct answers, both languages, held-out phrasings never trained
on, short samples, converts cleanly; the demo report's scoring."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from qwen_sft.data import IGNORE_INDEX, DataConvertConfig, convert, read_indexed_split
from qwen_sft.demo_data import (DEMO_TASKS, DEMO_WORDS, DEMO_ZH, answer_kind_ok, make_demo_records,
                                 make_heldout_records, record_task, score_generations, write_demo_dataset)
from qwen_sft.tokenizer import check_record, standin_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]
_ZH = re.compile(r"[\u4e00-\u9fff]")


def _expected_answer(rec: dict) -> str:
    """Solve a demo record independently of the generator (from its text)."""
    text = rec["instruction"] + "\n" + rec["input"]
    zh_words = [w for w, z in DEMO_ZH.items() if z in text]
    if "English" in text or "英文" in text:
        assert len(zh_words) == 1, rec
        return zh_words[0]
    word = next(w for w in re.findall(r"[a-z]+", text) if w in DEMO_WORDS)
    if "Chinese" in text or "中文" in text:
        return DEMO_ZH[word]
    if "capital" in text or "大写" in text:
        return word.upper()
    if "twice" in text or "两遍" in text:
        return f"{word} {word}"
    raise AssertionError(f"unknown demo task: {rec}")


def _key(rec: dict) -> tuple[str, str]:
    return rec["instruction"], rec["input"]


def test_records_are_valid_correct_and_cover_both_languages():
    records = make_demo_records(160, seed=4)
    assert len(records) == 160
    for r in records:
        check_record(r)
        assert set(r) == {"instruction", "input", "output"}
        assert r["output"] == _expected_answer(r)
        assert len(r["output"]) <= 11
    zh = [r for r in records if _ZH.match(r["instruction"])]  # zh instructions start with a Chinese character
    assert len(zh) == 80  # en and zh alternate within the 16-record cycle
    with_input = [r for r in records if r["input"]]
    assert len(with_input) == 80
    assert [record_task(r) for r in records[:16]] == [t for t in DEMO_TASKS for _ in range(4)]
    outputs = {r["output"] for r in records}
    assert len(outputs) == 4 * len(DEMO_WORDS)  # every (task, word) answer occurs


def test_heldout_prompts_are_never_training_prompts():
    held = make_heldout_records()
    assert len(held) == len(DEMO_TASKS) * len(DEMO_WORDS) == 24
    assert len({_key(r) for r in held}) == 24
    for r in held:
        check_record({k: v for k, v in r.items() if k != "id"})
        task, lang, word = r["id"].split("/")
        assert record_task(r) == task and r["output"] == _expected_answer(r)
        assert bool(_ZH.match(r["instruction"])) == (lang == "zh")
        assert word in DEMO_WORDS
    # every (task, word) pair is held out in exactly one phrasing, and the phrasings rotate
    assert {(r["id"].split("/")[0], r["id"].split("/")[2]) for r in held} == \
        {(t, w) for t in DEMO_TASKS for w in DEMO_WORDS}
    assert {bool(r["input"]) for r in held} == {True, False} and {r["id"].split("/")[1] for r in held} == {"en", "zh"}
    train = make_demo_records(4096, seed=0)
    assert not ({_key(r) for r in held} & {_key(r) for r in train})
    # ... while each held-out (task, word) is trained in its other three phrasings
    trained_pairs = {(record_task(r), r["output"]) for r in train}
    assert all((record_task(r), r["output"]) in trained_pairs for r in held)


def test_score_generations_and_record_task():
    held = make_heldout_records()
    rows = [{"id": r["id"], "prompt": r["instruction"], "reference": r["output"],
             "output": r["output"] if i % 3 == 0 else "?"} for i, r in enumerate(held)]
    rows[1]["output"] = " " + held[1]["output"] + "\n"  # surrounding whitespace does not count
    rows[2]["output"] = "狗" if held[2]["output"] != "狗" else "猫"  # a wrong word of the right kind
    scores = score_generations(rows)
    assert list(scores) == list(DEMO_TASKS)
    assert sum(c["total"] for c in scores.values()) == 24
    assert sum(c["correct"] for c in scores.values()) == len(range(0, 24, 3)) + 1
    assert scores["to_zh"] == {"correct": 3, "kind": 4, "total": 6}  # rows 0, 1, 3 right; row 2 right kind
    assert scores["upper"] == {"correct": 2, "kind": 2, "total": 6}
    # without an id, the task comes from the instruction
    assert record_task({"prompt": 'Write "cat" in capital letters.'}) == "upper"
    assert record_task({"prompt": 'Translate "猫" into English.'}) == "to_en"
    assert record_task({"instruction": "把这个词翻译成英文。", "input": "猫"}) == "to_en"
    with pytest.raises(ValueError, match="not a demo task instruction"):
        record_task({"instruction": "What is 3 + 4?"})
    with pytest.raises(ValueError, match="no 'reference' string"):
        score_generations([{"id": "upper/en/cat", "output": "CAT"}])


def test_answer_kind_ok():
    assert answer_kind_ok("to_zh", "狗") and not answer_kind_ok("to_zh", "dog")
    assert answer_kind_ok("to_en", " dog\n") and not answer_kind_ok("to_en", "DOG")
    assert answer_kind_ok("upper", "RED") and not answer_kind_ok("upper", "Red")
    assert answer_kind_ok("double", "cat cat") and not answer_kind_ok("double", "cat dog")
    assert not answer_kind_ok("double", "cat cat cat")
    with pytest.raises(ValueError, match="unknown task 'add'"):
        answer_kind_ok("add", "7")


def test_deterministic_by_seed():
    assert make_demo_records(50, seed=1) == make_demo_records(50, seed=1)
    assert make_demo_records(50, seed=1) != make_demo_records(50, seed=2)
    assert make_demo_records(50, seed=1)[:10] == make_demo_records(10, seed=1)
    assert make_heldout_records() == make_heldout_records()
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="positive int"):
            make_demo_records(bad)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_write_demo_dataset_reads_back(tmp_path, suffix):
    path = write_demo_dataset(tmp_path / "sub" / f"demo{suffix}", n=20, seed=9)
    text = path.read_text("utf-8")
    records = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert records == make_demo_records(20, seed=9)
    with pytest.raises(ValueError, match=r"must end in \.json or \.jsonl"):
        write_demo_dataset(tmp_path / "demo.txt", n=2)
    with pytest.raises(ValueError, match="split must be 'train' or 'heldout'"):
        write_demo_dataset(tmp_path / "demo.json", split="valid")


def test_demo_converts_to_short_samples(tmp_path):
    src = write_demo_dataset(tmp_path / "demo.json", n=64, seed=0)
    cfg = DataConvertConfig(input_path=str(src), output_path=str(tmp_path / "d"), seq_length=128,
                            split_ratio=0.75,
                            tokenizer_path=str(standin_tokenizer_dir(tmp_path / "cache")), progress=False)
    meta = convert(cfg, log=lambda *_: None).meta
    assert meta["counts"]["written"] == 64 and meta["counts"]["dropped"] == 0
    assert meta["tokens"]["train"]["length_max"] <= 48  # tiny model, 2 cores: short samples
    ids, labels = read_indexed_split(tmp_path / "d", "train")
    learnable = [int(np.count_nonzero(x != IGNORE_INDEX)) for x in labels]
    assert len(ids) == 48 and 2 <= min(learnable) and max(learnable) <= 3  # answer (1-2 tokens) + <|im_end|>


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_demo_data_and_demo_report_tools(tmp_path, capsys):
    make = _load_tool("make_demo_data")
    assert make.main(["--output_path", str(tmp_path / "d" / "demo.json"), "--num_samples", "40", "--seed", "3",
                      "--heldout_path", str(tmp_path / "d" / "heldout.jsonl")]) == 0
    assert json.loads((tmp_path / "d" / "demo.json").read_text("utf-8")) == make_demo_records(40, seed=3)
    held = [json.loads(line) for line in (tmp_path / "d" / "heldout.jsonl").read_text("utf-8").splitlines()]
    assert held == make_heldout_records()
    assert "wrote 40 training records" in capsys.readouterr().out

    # generate-style result files: before = all wrong, after = the first 20 right
    def rows(n_right):
        return [{"id": r["id"], "prompt": f"{r['instruction']}\n{r['input']}" if r["input"] else r["instruction"],
                 "reference": r["output"], "output": r["output"] if i < n_right else "x"}
                for i, r in enumerate(held)]
    for name, n_right in (("before", 0), ("after", 20)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                        for r in rows(n_right)), "utf-8")
    report = _load_tool("demo_report")
    assert report.main(["--before", str(tmp_path / "before.jsonl"), "--after", str(tmp_path / "after.jsonl"),
                        "--examples", "4"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()
             if line.startswith("  ") and line.split()[0] in (*DEMO_TASKS, "all")}
    assert lines["to_zh"] == ["0/6", "0/6", "6/6", "6/6"]  # before exact, kind; after exact, kind
    assert lines["double"] == ["0/6", "0/6", "2/6", "2/6"]
    assert lines["all"] == ["0/24", "0/24", "20/24", "20/24"]
    assert out.count(" ok") == 4  # the 4 examples (one per task, first of each) are right after training
    (tmp_path / "short.jsonl").write_text(json.dumps(rows(0)[0]) + "\n", "utf-8")
    with pytest.raises(SystemExit) as exc:
        report.main(["--before", str(tmp_path / "short.jsonl"), "--after", str(tmp_path / "after.jsonl")])
    assert exc.value.code == 2 and "do not hold the same prompts" in capsys.readouterr().err
