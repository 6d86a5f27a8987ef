"""The built-in demo dataset: generated Alpaca-format instruction records in Chinese and English.

The demo runs on a fresh machine without ``../shared``, trains a tiny randomly initialised model (2 layers,
hidden 64, tied embeddings) for 100 steps of 8 samples on 2 CPU cores and then generates, so the data must be (a)
shipped with the code — hence generated, not stored — and (b) learnable in that budget. A 2-layer model from random
weights learns an answer only through per-token associations (operand token → answer token), so the operand set is
small and closed (6 words), every answer is one or two tokens, each operand is the same token in every phrasing
(quoted or on its own line, never after a space), and prompts are short (``scripts/demo.sh`` passes a short system
prompt to conversion and generation). Measured with the demo's model, data and settings (100 steps, batch 8, constant
lr 5e-3) on real torch in one process (2026-12-06; the shim's 2-process run computes the same steps under the parity
tool's tolerances): before training no held-out answer is even of the right kind; after, 16 of 24 are of the right
kind (all of ``to_en`` and ``upper``, 4 of 6 ``to_zh``, no ``double``) and 3 of 24 exactly right (80 steps over
the earlier 2048-record set: 12 and 2). The full ``scripts/demo.sh`` run on the shim (TP=2; 2026-12-06 13:47 UTC)
ended at 18 of 24 of the right kind (``to_zh`` 6 of 6) and 3 of 24 exact. The task is learnt first, the
word-to-answer binding later: the earlier
setting (hidden 128, untied: 4 times the parameters; 150 steps of 16 samples) reached 24/24 of the right kind and
10/24 exact, at several times the demo's cost.

Tasks (each phrased in ``en`` and ``zh``, each with the operand inline in ``instruction`` or in ``input``):

* ``to_zh``: an English word → its Chinese translation, e.g. ``"red"`` → ``"红色"``;
* ``to_en``: a Chinese word → its English translation, e.g. ``"红色"`` → ``"red"``;
* ``upper``: an English word → upper case, e.g. ``"cat"`` → ``"CAT"``;
* ``double``: an English word → the word twice, separated by a space, e.g. ``"cat cat"``.

Operands are the :data:`DEMO_WORDS` (with their :data:`DEMO_ZH` translations). Every (task, word) pair is seen in
training in three of its four phrasings (language × operand-in-input); the fourth is *held out*
(:func:`make_heldout_records`), so the demo measures whether the model answers a known word in a phrasing it never
saw for that word, rather than replaying a memorised prompt.
"""
from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

__all__ = ["DEMO_TASKS", "DEMO_WORDS", "DEMO_ZH", "make_demo_records",
           "answer_kind_ok", "make_heldout_records", "record_task", "score_generations", "write_demo_dataset"]

#: English operand words (each one token in the Qwen2.5 vocabulary, and so is its upper-case form).
DEMO_WORDS: tuple[str, ...] = ("red", "blue", "green", "black", "cat", "dog")

#: Chinese translations of :data:`DEMO_WORDS`.
DEMO_ZH: dict[str, str] = {"red": "红色", "blue": "蓝色", "green": "绿色", "black": "黑色",
                           "cat": "猫", "dog": "狗"}

#: The task names, in generation order.
DEMO_TASKS: tuple[str, ...] = ("to_zh", "to_en", "upper", "double")

_LANGS = ("en", "zh")
# The four phrasings of a task: (instruction language, operand in `input`).
_FORMS: tuple[tuple[str, bool], ...] = tuple((lang, sep) for lang in _LANGS for sep in (False, True))

# (task, lang) -> (instruction with the operand inline, quoted; instruction when the operand is in `input`)
_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("to_zh", "en"): ('Translate "{x}" into Chinese.', "Translate the word into Chinese."),
    ("to_zh", "zh"): ("把“{x}”翻译成中文。", "把这个词翻译成中文。"),
    ("to_en", "en"): ('Translate "{x}" into English.', "Translate the word into English."),
    ("to_en", "zh"): ("把“{x}”翻译成英文。", "把这个词翻译成英文。"),
    ("upper", "en"): ('Write "{x}" in capital letters.', "Write the word in capital letters."),
    ("upper", "zh"): ("把“{x}”写成大写字母。", "把这个单词写成大写字母。"),
    ("double", "en"): ('Repeat "{x}" twice.', "Repeat the word twice."),
    ("double", "zh"): ("把“{x}”重复两遍。", "把这个词重复两遍。"),
}


def _heldout_form(task: str, word_index: int) -> tuple[str, bool]:
    """The phrasing of (task, word) that training never shows (a different one per word, rotating)."""
    return _FORMS[(DEMO_TASKS.index(task) + word_index) % len(_FORMS)]


def _render(task: str, word: str, lang: str, separate: bool) -> dict[str, str]:
    inline, sep_text = _TEMPLATES[(task, lang)]
    operand = DEMO_ZH[word] if task == "to_en" else word
    output = {"to_zh": DEMO_ZH[word], "to_en": word, "upper": word.upper(), "double": f"{word} {word}"}[task]
    if separate:
        return {"instruction": sep_text, "input": operand, "output": output}
    return {"instruction": inline.format(x=operand), "input": "", "output": output}


def make_demo_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Generate ``n`` training records ``{"instruction", "input", "output"}`` (all strings).

    Records cycle through every (task, language, operand-in-input) combination — 4 tasks × en/zh × 2 forms — so
    any 16 consecutive records cover all of them; the word is drawn by ``random.Random(seed)`` from the words
    whose held-out phrasing (see :func:`make_heldout_records`) is not this one, so no held-out prompt is ever a
    training prompt.

    Args:
        n: number of records, >= 1.
        seed: RNG seed; the same (n, seed) always gives the same records (and a prefix of a longer list).

    Raises:
        ValueError: ``n`` < 1.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"make_demo_records: n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    combos = [(t, lang, sep) for t in DEMO_TASKS for (lang, sep) in _FORMS]
    records = []
    for i in range(n):
        task, lang, sep = combos[i % len(combos)]
        allowed = [w for k, w in enumerate(DEMO_WORDS) if _heldout_form(task, k) != (lang, sep)]
        records.append(_render(task, rng.choice(allowed), lang, sep))
    return records


def make_heldout_records() -> list[dict[str, str]]:
    """The held-out evaluation records: for every (task, word) the one phrasing training never shows.

    ``len(DEMO_TASKS) * len(DEMO_WORDS)`` records (24), each ``{"id", "instruction", "input", "output"}`` with
    ``id = "<task>/<lang>/<word>"`` (``tools/generate.py`` copies ``id`` and the ``output``, as
    ``reference``, into its result file; :func:`score_generations` reads them back). Deterministic.
    """
    out = []
    for task in DEMO_TASKS:
        for k, word in enumerate(DEMO_WORDS):
            lang, sep = _heldout_form(task, k)
            out.append({"id": f"{task}/{lang}/{word}", **_render(task, word, lang, sep)})
    return out


def record_task(record: Mapping[str, Any]) -> str:
    """The demo task of a record (or of a generate result row with ``id``), from its ``id`` or its instruction.

    Raises:
        ValueError: the record matches no demo task template.
    """
    rid = record.get("id")
    if isinstance(rid, str) and rid.split("/", 1)[0] in DEMO_TASKS:
        return rid.split("/", 1)[0]
    instruction = str(record.get("instruction", record.get("prompt", ""))).split("\n", 1)[0]
    for (task, _lang), (inline, sep_text) in _TEMPLATES.items():
        before, after = inline.split("{x}", 1)
        if instruction == sep_text or re.fullmatch(re.escape(before) + ".+" + re.escape(after), instruction):
            return task
    raise ValueError(f"record_task: {instruction[:60]!r} is not a demo task instruction "
                     f"(expected one of the templates of {DEMO_TASKS})")


def answer_kind_ok(task: str, output: str) -> bool:
    """Whether ``output`` is an answer of the right kind for ``task``, right or wrong word.

    The kinds: ``to_zh`` — one of the :data:`DEMO_ZH` translations; ``to_en`` — one of :data:`DEMO_WORDS`;
    ``upper`` — an upper-cased demo word; ``double`` — a demo word twice, separated by a space. This separates
    "recognised the task" from "got the word right" (:func:`score_generations` counts both).

    Raises:
        ValueError: unknown ``task``.
    """
    out = output.strip()
    if task == "to_zh":
        return out in DEMO_ZH.values()
    if task == "to_en":
        return out in DEMO_WORDS
    if task == "upper":
        return out in {w.upper() for w in DEMO_WORDS}
    if task == "double":
        parts = out.split(" ")
        return len(parts) == 2 and parts[0] == parts[1] and parts[0] in DEMO_WORDS
    raise ValueError(f"answer_kind_ok: unknown task {task!r}; expected one of {DEMO_TASKS}")


def score_generations(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Accuracy per task of generate results against their reference answers.

    Args:
        rows: ``tools/generate.py --output_file`` records (``output`` and ``reference`` strings, ``id`` or
            ``prompt``) of the prompts from :func:`make_heldout_records`. An output is ``correct`` when, with
            surrounding whitespace stripped, it equals the reference, and of the right ``kind`` when
            :func:`answer_kind_ok` holds (every correct output is also of the right kind).

    Returns:
        ``{task: {"correct": int, "kind": int, "total": int}}`` in :data:`DEMO_TASKS` order (tasks without rows
        are left out).

    Raises:
        ValueError: a row has no ``reference`` string or no recognisable task.
    """
    counts = {t: {"correct": 0, "kind": 0, "total": 0} for t in DEMO_TASKS}
    for i, row in enumerate(rows):
        ref = row.get("reference")
        if not isinstance(ref, str):
            raise ValueError(f"score_generations: row {i} has no 'reference' string (generate the prompts of "
                             f"make_heldout_records, which carry their answer as 'output')")
        task = record_task(row)
        output = str(row.get("output", ""))
        counts[task]["total"] += 1
        counts[task]["correct"] += int(output.strip() == ref.strip())
        counts[task]["kind"] += int(answer_kind_ok(task, output))
    return {t: c for t, c in counts.items() if c["total"]}


def write_demo_dataset(path: Union[str, os.PathLike], n: int = 512, seed: int = 0,
                       split: str = "train") -> Path:
    """Write demo records to ``path`` as a ``.json`` list or ``.jsonl`` lines (UTF-8).

    ``split="train"`` writes :func:`make_demo_records` ``(n, seed)``; ``split="heldout"`` writes
    :func:`make_heldout_records` (``n`` and ``seed`` unused). Creates parent directories. Returns the path.

    Raises:
        ValueError: ``path`` does not end in ``.json`` or ``.jsonl``, ``n`` < 1, or an unknown ``split``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise ValueError(f"write_demo_dataset: path {str(path)!r} must end in .json or .jsonl")
    if split == "train":
        records = make_demo_records(n, seed)
    elif split == "heldout":
        records = make_heldout_records()
    else:
        raise ValueError(f"write_demo_dataset: split must be 'train' or 'heldout', got {split!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        if suffix == ".json":
            json.dump(records, f, ensure_ascii=False, indent=1)
            f.write("\n")
        else:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return p
