"""The AlpacaEval step (`tools/evaluate.py --alpaca_eval OUT`, `qwen_sft/alpacaeval.py`) on real torch (CPU).

The model is a tiny random Qwen2 (`qwen_sft.tiny`, the stand-in tokenizer) converted to a Megatron checkpoint, as the
workflow's trained model is. The judge is local and deterministic: `tests/helpers/alpaca_eval_judge.py:prefer_longer`
(the longer output wins, a tie goes to the reference) behind an annotator config of alpaca_eval's own format
(`tests/helpers/alpaca_eval_judge/configs.yaml`), so prompt rendering, parsing, pairing, the win rate and the
length-controlled win rate all come out of the real `alpaca_eval` package, and the expected win rate is known from
the output lengths. Nothing touches the network: the Hugging Face cache is an empty folder, or (end-to-end test) one
holding AlpacaEval's files as `huggingface_hub` lays them out, made here from small synthetic stand-ins (the real
`alpaca_eval_gpt4_baseline.json` has 805 instructions and `df_gamed.csv` its annotations of two "gamed" baselines).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_sft import alpacaeval
from qwen_sft.alpacaeval import (AlpacaEvalConfig, AlpacaEvalNotRun, judge_problem, load_judge_fn,
                                 model_output_rows, read_records, run_alpaca_eval)
from qwen_sft.convert import convert_checkpoint
from qwen_sft.tiny import TinyQwen2Config, make_tiny_model
from qwen_sft.tokenizer import standin_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]
JUDGE_CONFIG = REPO / "tests" / "helpers" / "alpaca_eval_judge" / "configs.yaml"
JUDGE_FN = f"{REPO / 'tests' / 'helpers' / 'alpaca_eval_judge.py'}:prefer_longer"
KEY_VARS = ("OPENAI_API_KEY", "OPENAI_API_KEYS", "OPENAI_CLIENT_CONFIG_PATH")
GEN = ["--max_new_tokens", "12", "--seq_length", "256", "--batch_size", "4", "--no_progress"]


def _instructions(n: int = 10) -> list[dict]:
    return [{"instruction": f"Question {i}: what is {i} plus {i}?", "dataset": "arith" if i % 2 else "sums"}
            for i in range(n)]


def _references(instructions: list[dict], generator: str = "ref_model") -> list[dict]:
    """Reference outputs: one character for 7 of 10 instructions, 2,000 for the rest, so that the longer-output judge
    gives the model (12 new tokens, one to ~100 characters) a win rate of about 70% (the test computes the exact one
    from the lengths)."""
    return [{**rec, "output": "x" * (2000 if i % 10 in (2, 5, 8) else 1), "generator": generator}
            for i, rec in enumerate(instructions)]


def expected_win_rate(model_outputs: list[dict], references: list[dict]) -> float:
    ref = {r["instruction"]: r["output"] for r in references}
    wins = sum(len(o["output"]) > len(ref[o["instruction"]]) for o in model_outputs)
    return 100.0 * wins / len(model_outputs)


@pytest.fixture(scope="module")
def megatron_ckpt(tmp_path_factory) -> Path:
    """A tiny random Qwen2 as a converted Megatron checkpoint (what training starts from and generation loads)."""
    root = tmp_path_factory.mktemp("alpaca_eval")
    make_tiny_model(root / "hf", TinyQwen2Config(tie_word_embeddings=False, seed=4),
                    tokenizer_dir=standin_tokenizer_dir())
    convert_checkpoint(root / "hf", root / "tiny_mg", direction="hf2mg")
    return root / "tiny_mg"


@pytest.fixture(scope="module", autouse=True)
def _one_process_group():
    """run_generate creates a one-process gloo group; tear it down after this module."""
    from qwen_sft.parallel import destroy

    yield
    destroy()


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache (as HF_HUB_CACHE would set it before huggingface_hub is imported)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def no_judge_keys(monkeypatch):
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def _tool():
    spec = importlib.util.spec_from_file_location("tool_evaluate_ae", REPO / "tools" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- input files

def test_read_records_json_and_jsonl(tmp_path):
    recs = [{"instruction": "Name a colour.", "dataset": "helpful_base", "output": "red", "generator": "gpt4"},
            "What is 2 + 2?", {"instruction": "Translate.", "input": "Bonjour"}]
    got = read_records(_write_json(tmp_path / "a.json", recs))
    assert got == [recs[0], {"instruction": "What is 2 + 2?"}, recs[2]]
    assert read_records(_write_jsonl(tmp_path / "a.jsonl", recs)) == got
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(recs[:1]).encode())
    assert read_records(bom) == [recs[0]]
    refs = read_records(_write_jsonl(tmp_path / "r.jsonl", [recs[0]]), flag="--reference_outputs",
                        require_output=True)
    assert refs == [recs[0]]


@pytest.mark.parametrize("content, message", [
    ('[{"instruction": "a"}, {"input": "b"}]', r"a\.json record 1: expected a non-empty string 'instruction'"),
    ('[{"instruction": "  "}]', r"record 0: expected a non-empty string 'instruction'"),
    ('[{"instruction": "a", "dataset": 3}]', r"record 0: field 'dataset' must be a string, got int"),
    ('[{"instruction": "a"}, 7]', r"record 1: expected an object .* got int"),
    ('[{"instruction": "a"', r"starts with '\[' but is not valid JSON"),
    ('{"instruction": "a"}\n{"instruction": "b"\n', r"a\.json line 2: not valid JSON \(JSON Lines file\)"),
    ('{"instruction": "a"}\n\n{"prompt": "b"}\n', r"line 3: expected a non-empty string 'instruction'"),
    ("[]", r"no records"),
    ("Name a colour.\nWhat is 2 + 2?\n", r"expected a JSON list or JSON Lines .* starts with 'Name a colour"),
    ('[{"instruction": "a"}, {"instruction": "b"}, {"instruction": "a"}]',
     r"record 2 repeats the instruction of record 0"),
])
def test_read_records_names_bad_input(tmp_path, content, message):
    path = tmp_path / "a.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as exc:
        read_records(path)
    assert str(exc.value).startswith(f"--instructions {path}")


def test_read_records_missing_file_and_reference_without_output(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--instructions '.*nope\.json' does not exist"):
        read_records(tmp_path / "nope.json")
    path = _write_json(tmp_path / "r.json", [{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    with pytest.raises(ValueError, match=r"--reference_outputs .*record 1: a reference output needs a string 'output'"):
        read_records(path, flag="--reference_outputs", require_output=True)
    with pytest.raises(ValueError, match=r"record 0: expected an object"):  # bare strings are instructions only
        read_records(_write_json(tmp_path / "s.json", ["a"]), flag="--reference_outputs", require_output=True)


def test_model_output_rows_format():
    records = [{"instruction": "Translate.", "input": "Bonjour", "dataset": "koala"}, {"instruction": "Hi"}]
    rows = model_output_rows(records, ["  Hello.\n", "Hello!"], "qwen-sft", "my_set")
    assert rows == [
        {"instruction": "Translate.\nBonjour", "output": "Hello.", "generator": "qwen-sft", "dataset": "koala"},
        {"instruction": "Hi", "output": "Hello!", "generator": "qwen-sft", "dataset": "my_set"}]
    with pytest.raises(ValueError, match="2 records but 1 outputs"):
        model_output_rows(records, ["x"], "g", "d")


def test_generate_config_takes_alpaca_records_from_a_caller():
    from qwen_sft.generate_job import GenerateConfig

    GenerateConfig(model_path="m", prompts=[{"instruction": "Hi", "input": "x"}, "plain"]).validate()
    with pytest.raises(ValueError, match=r"prompt 1: an Alpaca record needs a non-empty string 'instruction'"):
        GenerateConfig(model_path="m", prompts=["ok", {"instruction": " "}]).validate()
    with pytest.raises(ValueError, match=r"--prompt 0: expected a non-empty string"):
        GenerateConfig(model_path="m", prompts=[""]).validate()


# ------------------------------------------------------------------------------------------------------ judge

def test_judge_problem_says_what_to_configure(no_judge_keys, monkeypatch, tmp_path):
    problem = judge_problem("weighted_alpaca_eval_gpt4_turbo")
    assert "openai_completions" in problem and "set OPENAI_API_KEY" in problem
    assert "--annotators_config" in problem and "--judge_fn" in problem
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert judge_problem("weighted_alpaca_eval_gpt4_turbo") is None
    # a config folder given by path; the test config's annotator names no fn_completions -> alpaca_eval's default
    # (OpenAI), unless --judge_fn gives the completion function
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "needs an OpenAI key" in judge_problem(str(JUDGE_CONFIG.parent))
    assert judge_problem(str(JUDGE_CONFIG), load_judge_fn(JUDGE_FN)) is None
    with pytest.raises(ValueError, match=r"--annotators_config 'no_such_judge': neither a file"):
        judge_problem("no_such_judge")
    with pytest.raises(ValueError, match=r"names fn_completions 'openai_completions', which --judge_fn would replace"):
        judge_problem("weighted_alpaca_eval_gpt4_turbo", load_judge_fn(JUDGE_FN))
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)  # as if the package were not installed
    assert "pip install 'alpaca_eval==0.6.6'" in judge_problem("weighted_alpaca_eval_gpt4_turbo")


def test_load_judge_fn_errors(tmp_path):
    assert load_judge_fn("json:dumps") is json.dumps
    with pytest.raises(ValueError, match="expected MODULE:FUNCTION"):
        load_judge_fn("tests/helpers/alpaca_eval_judge.py")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        load_judge_fn("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="has no callable 'nope'"):
        load_judge_fn(f"{JUDGE_FN.rsplit(':', 1)[0]}:nope")
    with pytest.raises(ValueError, match="does not exist"):
        load_judge_fn(f"{tmp_path / 'x.py'}:f")


# ---------------------------------------------------------------------------------------------- the CLI, offline

def test_cli_offline_without_judge_writes_outputs_and_says_what_to_configure(megatron_ckpt, tmp_path, capsys,
                                                                              no_judge_keys, empty_hf_cache):
    instr = _write_jsonl(tmp_path / "my_questions.jsonl", _instructions(5) + [{"instruction": "Say hi."}])
    out = tmp_path / "ae"
    tool = _tool()
    rc = tool.main(["--model_path", str(megatron_ckpt), "--alpaca_eval", str(out), "--instructions", str(instr),
                    "--model_name", "qwen-tiny-sft", *GEN])
    err = capsys.readouterr().err
    assert rc == tool.EXIT_NOT_JUDGED == 3
    assert "Traceback" not in err
    assert "evaluate: AlpacaEval not run: no usable judge" in err and "set OPENAI_API_KEY" in err
    assert f"The model outputs are in {out / 'model_outputs.json'}" in err
    rows = json.loads((out / "model_outputs.json").read_text(encoding="utf-8"))
    assert [sorted(r) for r in rows] == [["dataset", "generator", "instruction", "output"]] * 6
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in _instructions(5)] + ["Say hi."]
    assert {r["generator"] for r in rows} == {"qwen-tiny-sft"}
    assert [r["dataset"] for r in rows] == ["sums", "arith", "sums", "arith", "sums", "my_questions"]
    assert all(isinstance(r["output"], str) and r["output"] == r["output"].strip() for r in rows)
    assert len({r["output"] for r in rows}) > 1  # the answers depend on the instruction

    # with a judge configured but no reference outputs (and AlpacaEval's set not in the cache)
    rc = tool.main(["--model_path", str(megatron_ckpt), "--alpaca_eval", str(tmp_path / "ae2"), "--instructions",
                    str(instr), "--annotators_config", str(JUDGE_CONFIG), "--judge_fn", JUDGE_FN, "--max_samples", "2",
                    *GEN])
    err = capsys.readouterr().err
    assert rc == 3 and "no reference outputs: pass --reference_outputs FILE" in err and "Traceback" not in err
    # --generate_only: the outputs and success
    rc = tool.main(["--model_path", str(megatron_ckpt), "--alpaca_eval", str(tmp_path / "ae3"), "--instructions",
                    str(instr), "--generate_only", "--max_samples", "2", *GEN])
    assert rc == 0 and "not judged: --generate_only" in capsys.readouterr().out
    again = json.loads((tmp_path / "ae3" / "model_outputs.json").read_text(encoding="utf-8"))
    assert again == [dict(r, generator="tiny_mg") for r in rows[:2]]  # greedy: the same answers; the folder's name


def test_cli_input_errors_are_named(megatron_ckpt, tmp_path, capsys, empty_hf_cache, no_judge_keys):
    tool = _tool()
    base = ["--model_path", str(megatron_ckpt), "--alpaca_eval", str(tmp_path / "ae"), *GEN]
    assert tool.main(base) == 1  # no --instructions and AlpacaEval's set not in the Hugging Face cache
    err = capsys.readouterr().err
    assert "no --instructions given and AlpacaEval's evaluation set" in err
    assert "hf download tatsu-lab/alpaca_eval --repo-type dataset" in err
    bad = _write_json(tmp_path / "bad.json", [{"instruction": "a"}, {"text": "b"}])
    assert tool.main([*base, "--instructions", str(bad)]) == 1
    assert f"--instructions {bad} record 1: expected a non-empty string 'instruction'" in capsys.readouterr().err
    instr = _write_json(tmp_path / "i.json", _instructions(3))
    refs = _write_json(tmp_path / "r.json", _references(_instructions(3))[:2])
    assert tool.main([*base, "--instructions", str(instr), "--reference_outputs", str(refs), "--annotators_config",
                      str(JUDGE_CONFIG), "--judge_fn", JUDGE_FN]) == 1
    assert "1 of 3 instructions (first: record 2, 'Question 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        tool.main(["--model_path", str(megatron_ckpt), "--alpaca_eval", str(tmp_path), "--data_path", "d"])
    assert exc.value.code == 2
    assert "give --data_path DIR (loss and perplexity) or --alpaca_eval OUT" in capsys.readouterr().err
    assert not (tmp_path / "ae" / "model_outputs.json").exists()  # input errors stop before generation


def test_judged_in_process_win_rate_from_alpaca_eval(megatron_ckpt, tmp_path, empty_hf_cache, no_judge_keys):
    """Custom instructions and references: alpaca_eval's win rate equals the longer-output judge's expected one; its
    length-controlled win rate needs AlpacaEval's df_gamed.csv, absent here, and the result says so."""
    instructions = _instructions(10)
    refs = _write_jsonl(tmp_path / "refs.jsonl", _references(instructions))
    res = run_alpaca_eval(AlpacaEvalConfig(
        model_path=str(megatron_ckpt), output_dir=str(tmp_path / "ae"),
        instructions=str(_write_json(tmp_path / "i.json", instructions)), reference_outputs=str(refs),
        annotators_config=str(JUDGE_CONFIG), judge_fn=JUDGE_FN, max_new_tokens=12, seq_length=256, batch_size=4,
        progress=False), log=lambda m: None)
    rows = json.loads(res.model_outputs.read_text(encoding="utf-8"))
    expected = expected_win_rate(rows, read_records(refs, require_output=True))
    assert 0 < expected < 100
    assert res.evaluated and res.win_rate == pytest.approx(expected, abs=1e-9)
    assert res.n_total == 10 and res.n_wins == round(expected / 10) and res.n_draws == 0
    assert res.lc_win_rate is None and res.glm is None
    assert "df_gamed.csv of tatsu-lab/alpaca_eval) is not in the Hugging Face cache" in res.lc_problem
    annotations = json.loads((tmp_path / "ae" / "annotations.json").read_text(encoding="utf-8"))
    assert sorted(a["preference"] for a in annotations) == sorted(
        2.0 if len(o["output"]) > len(r["output"]) else 1.0
        for o, r in zip(rows, read_records(refs, require_output=True)))
    assert {a["generator_1"] for a in annotations} == {"ref_model"}
    saved = json.loads(res.results_file.read_text(encoding="utf-8"))
    assert saved["win_rate"] == res.win_rate and saved["lc_win_rate"] is None
    # a judge that fails (here: a function without alpaca_eval's decoder signature) is reported, outputs kept
    failed = r"AlpacaEval's judging failed \(builtins\.TypeError: loads\(\) missing"
    with pytest.raises(AlpacaEvalNotRun, match=failed) as exc:
        run_alpaca_eval(AlpacaEvalConfig(
            model_path=str(megatron_ckpt), output_dir=str(tmp_path / "ae_fail"), instructions=str(tmp_path / "i.json"),
            reference_outputs=str(refs), annotators_config=str(JUDGE_CONFIG), judge_fn="json:loads",
            max_new_tokens=4, seq_length=256, max_samples=2, progress=False), log=lambda m: None)
    assert exc.value.result.model_outputs.is_file() and exc.value.result.instructions == 2


def test_alpaca_eval_script_passes_every_flag(tmp_path):
    """scripts/alpaca_eval_qwen25_7b_ms.sh: its variables reach tools/evaluate.py (a stub stands in for python)."""
    stub = tmp_path / "python_stub.sh"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    stub.chmod(0o755)
    script = REPO / "scripts" / "alpaca_eval_qwen25_7b_ms.sh"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHON": str(stub)}
    defaults = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.splitlines() == [
        str(REPO / "tools" / "evaluate.py"), "--model_path", "w_tune", "--alpaca_eval", "w_tune/alpaca_eval",
        "--model_name", "qwen2.5-7b-sft", "--seq_length", "4096", "--max_new_tokens", "2048"]
    env.update(MODEL_PATH="/m", OUT="/o", MODEL_NAME="mine", SEQ_LENGTH="128", MAX_NEW_TOKENS="7",
               INSTRUCTIONS="/i.jsonl", REFERENCE_OUTPUTS="/r.json", ANNOTATORS_CONFIG="/j/configs.yaml")
    custom = subprocess.run(["bash", str(script), "--batch_size", "2"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert custom.returncode == 0, custom.stderr
    assert custom.stdout.splitlines()[1:] == [
        "--model_path", "/m", "--alpaca_eval", "/o", "--model_name", "mine", "--seq_length", "128",
        "--max_new_tokens", "7", "--instructions", "/i.jsonl", "--reference_outputs", "/r.json",
        "--annotators_config", "/j/configs.yaml", "--batch_size", "2"]
    # the flags it passes are the tool's own
    _tool().build_parser().parse_args(custom.stdout.splitlines()[1:])


# ---------------------------------------------------------------------------------- end to end, AlpacaEval's set

def _hub_cache_with_alpaca_eval(cache: Path, files: dict[str, str]) -> Path:
    """`files` placed as huggingface_hub's cache holds the dataset tatsu-lab/alpaca_eval at one revision."""
    repo = cache / "datasets--tatsu-lab--alpaca_eval"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")
    return cache


def _synthetic_df_gamed(n: int) -> str:
    """A stand-in of AlpacaEval's df_gamed.csv for n instructions: two "gamed" baselines (verbose ones win, concise
    ones lose) with the columns its GLM reads (model, index, preference in [0, 1], std_delta_len,
    instruction_difficulty, not_gamed_baseline)."""
    lines = ["model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline"]
    for model, sign in (("gamed_verbose", -1.0), ("gamed_concise", 1.0)):
        for i in range(n):
            delta = sign * (0.5 + (i % 3) * 0.4)
            pref = 0.8 if sign < 0 else 0.2
            lines.append(f"{model},{i},{pref},{delta},{(i % 5 - 2) * 0.3},False")
    return "\n".join(lines) + "\n"


def test_end_to_end_alpaca_eval_set_from_cache_offline(megatron_ckpt, tmp_path, monkeypatch):
    """The CLI in a fresh process, offline, without --instructions: AlpacaEval's set and df_gamed.csv come from the
    Hugging Face cache, the judge is the local one; win rate and length-controlled win rate (AlpacaEval's
    length_controlled_v1 GLM) come out of alpaca_eval and are printed."""
    instructions = _instructions(10)
    references = _references(instructions, generator="gpt4_turbo")
    cache = _hub_cache_with_alpaca_eval(tmp_path / "hf_cache", {
        "alpaca_eval_gpt4_baseline.json": json.dumps(references), "df_gamed.csv": _synthetic_df_gamed(10)})
    drop = KEY_VARS + ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "MASTER_ADDR")  # this process's group
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    out = tmp_path / "ae"
    package_before = _package_files()
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "evaluate.py"), "--model_path", str(megatron_ckpt), "--alpaca_eval",
         str(out), "--annotators_config", str(JUDGE_CONFIG), "--judge_fn", JUDGE_FN, "--model_name", "tiny-sft",
         *GEN], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "alpaca_eval_results.json").read_text(encoding="utf-8"))
    rows = json.loads((out / "model_outputs.json").read_text(encoding="utf-8"))
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in instructions]
    assert {r["dataset"] for r in rows} == {"arith", "sums"} and {r["generator"] for r in rows} == {"tiny-sft"}
    assert res["instructions_source"].endswith("alpaca_eval_gpt4_baseline.json")
    assert res["win_rate"] == pytest.approx(expected_win_rate(rows, references), abs=1e-9)
    assert res["glm"] == "length_controlled_v1" and res["lc_problem"] is None
    assert 0.0 <= res["lc_win_rate"] <= 100.0
    assert (f"win rate {res['win_rate']:.2f}%" in proc.stdout
            and f"length-controlled win rate {res['lc_win_rate']:.2f}%" in proc.stdout)
    # the printed LC win rate is alpaca_eval's own function on the saved annotations (same cache)
    import huggingface_hub.constants
    from alpaca_eval.metrics import get_length_controlled_winrate

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    annotations = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    again = get_length_controlled_winrate(annotations, glm_name="length_controlled_v1", save_weights_dir=None)
    assert res["lc_win_rate"] == pytest.approx(again["length_controlled_winrate"], abs=1e-9)
    weights = out / "glm_weights" / "length_controlled_v1" / "baseline_gpt4_turbo.csv"
    assert weights.read_text(encoding="utf-8").splitlines()[1].startswith("tiny-sft,")
    assert _package_files() == package_before  # nothing written into the alpaca_eval package (shared venv)


def _package_files() -> dict[str, float]:
    import alpaca_eval

    root = Path(alpaca_eval.__file__).parent
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
