"""The built-in demo dataset: generated Alpaca-format instruction records in Chinese and English.

The demo runs on a fresh machine without ``../shared``, trains a tiny model for a few dozen steps on 2 CPU
cores and then generates, so the data must be (a) shipped with the code — hence generated, not stored —
and (b) learnable in that budget: short, regular tasks whose answers follow from the prompt.

Tasks (each in ``en`` and ``zh``; the answer is always short):

* ``add``: add two numbers in 0–9 → the sum, e.g. ``"3 + 4"`` → ``"7"``;
* ``reverse``: reverse a short English word → e.g. ``"cat"`` → ``"tac"``;
* ``upper``: upper-case a short English word → e.g. ``"cat"`` → ``"CAT"``;
* ``double``: repeat a word twice, separated by a space → ``"cat cat"``.

Half of the records carry the operand in ``input`` (Alpaca's instruction + input form), the other half inline
it in ``instruction`` with an empty ``input``, so both prompt shapes are exercised.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Union

__all__ = ["DEMO_TASKS", "DEMO_WORDS", "make_demo_records", "write_demo_dataset"]

#: Short, common English words (3–5 letters) used as operands.
DEMO_WORDS: tuple[str, ...] = (
    "cat", "dog", "sun", "moon", "star", "tree", "fish", "bird", "book", "milk",
    "rain", "snow", "fire", "wind", "lake", "road", "ship", "king", "frog", "lamp",
    "rose", "gold", "ring", "bell", "cake", "door", "hand", "leaf", "wolf", "bear",
    "apple", "river", "cloud", "stone", "light", "green", "happy", "music", "tiger", "plant",
)

# (task, lang) -> (instruction with the operand inline, instruction when the operand is in `input`)
_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("add", "en"): ("What is {a} + {b}? Answer with the number only.", "Add the two numbers."),
    ("add", "zh"): ("{a} 加 {b} 等于多少？只回答数字。", "计算这两个数的和。"),
    ("reverse", "en"): ("Reverse the letters of the word \"{w}\".", "Reverse the letters of the word."),
    ("reverse", "zh"): ("把单词“{w}”的字母倒过来写。", "把这个单词的字母倒过来写。"),
    ("upper", "en"): ("Write the word \"{w}\" in capital letters.", "Write the word in capital letters."),
    ("upper", "zh"): ("把单词“{w}”写成大写字母。", "把这个单词写成大写字母。"),
    ("double", "en"): ("Repeat the word \"{w}\" twice.", "Repeat the word twice."),
    ("double", "zh"): ("把单词“{w}”重复两遍。", "把这个单词重复两遍。"),
}
#: The task names, in generation order.
DEMO_TASKS: tuple[str, ...] = ("add", "reverse", "upper", "double")
_LANGS = ("en", "zh")


def _one(task: str, lang: str, with_input: bool, rng: random.Random) -> dict[str, str]:
    inline, separate = _TEMPLATES[(task, lang)]
    if task == "add":
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        operand, output = (f"{a} + {b}", str(a + b))
        fields = {"a": a, "b": b}
    else:
        w = rng.choice(DEMO_WORDS)
        operand = w
        output = {"reverse": w[::-1], "upper": w.upper(), "double": f"{w} {w}"}[task]
        fields = {"w": w}
    if with_input:
        return {"instruction": separate, "input": operand, "output": output}
    return {"instruction": inline.format(**fields), "input": "", "output": output}


def make_demo_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Generate ``n`` Alpaca records ``{"instruction", "input", "output"}`` (all strings), deterministically.

    Records cycle through every (task, language, operand-in-input) combination — 4 tasks × en/zh × 2 forms
    — so any 16 consecutive records cover all of them; operands come from ``random.Random(seed)``.

    Args:
        n: number of records, >= 1.
        seed: RNG seed; the same (n, seed) always gives the same records.

    Raises:
        ValueError: ``n`` < 1.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"make_demo_records: n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    combos = [(t, lang, w) for t in DEMO_TASKS for lang in _LANGS for w in (False, True)]
    return [_one(*combos[i % len(combos)], rng) for i in range(n)]


def write_demo_dataset(path: Union[str, os.PathLike], n: int = 512, seed: int = 0) -> Path:
    """Write :func:`make_demo_records` ``(n, seed)`` to ``path`` as a ``.json`` list or ``.jsonl`` lines
    (UTF-8).

    Creates parent directories. Returns the path.

    Raises:
        ValueError: ``path`` does not end in ``.json`` or ``.jsonl``, or ``n`` < 1.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise ValueError(f"write_demo_dataset: path {str(path)!r} must end in .json or .jsonl")
    records = make_demo_records(n, seed)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        if suffix == ".json":
            json.dump(records, f, ensure_ascii=False, indent=1)
            f.write("\n")
        else:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return p
