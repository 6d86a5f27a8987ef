"""Alpaca instruction data → tokenized SFT samples → megatron-core indexed dataset (+ ``meta.json``).

Pipeline (:func:`convert`): read records (:func:`read_records`) → validate and tokenize each one with the
tokenizer's own chat template (:func:`tokenize_record`, optionally in ``workers`` processes) → drop or
truncate over-length samples → seeded train/valid split (:func:`split_indices`) → write
``D/{train,valid}_input_ids.{bin,idx}`` and ``D/{train,valid}_labels.{bin,idx}`` with megatron-core's
``IndexedDatasetBuilder`` (``int32``, one document of one sequence per sample) → ``D/meta.json``.

Label policy (the format contract is in CONTRIBUTING.md, "Formats")
-------------------------------------------------------------------
Labels are unshifted (HF convention): ``labels[i] == input_ids[i]`` where token ``i`` is learned, ``-100``
(:data:`IGNORE_INDEX`) where it is masked. A sample is ``prompt_ids + response_ids`` where

* ``prompt_ids`` = :func:`qwen_sft.tokenizer.render_prompt_ids` of the record (system turn, history turns,
  the user turn and the assistant header ``<|im_start|>assistant\\n``) — the very ids generation feeds the
  model — all masked;
* ``response_ids`` = the rest of the template's rendering: the ``output`` text and the closing
  ``<|im_end|>`` are learned; the ``"\\n"`` the Qwen template emits after ``<|im_end|>`` is
  **kept but masked**
  (so ``input_ids`` equal ``tokenizer.apply_chat_template(messages)``; generation stops at ``<|im_end|>``
  and never needs to produce that newline).

Assistant turns from ``history`` are part of the prompt and therefore masked.

A sample longer than ``seq_length`` tokens is dropped (``overlength="drop"``, reason ``overlength``) or cut
to ``seq_length`` tokens from the response end (``overlength="truncate"``; when the prompt alone fills
``seq_length`` nothing learnable is left and it is dropped with reason ``prompt_overlength``). A sample with
no learnable token is dropped (reason ``no_learnable_tokens``). Malformed records stop the run with an error
naming the file, record index and field, or with ``skip_bad_records`` are skipped and counted by reason.

Determinism: records are tokenized in input order (``multiprocessing.Pool.imap`` keeps order), the split
permutation comes from ``numpy.random.RandomState(seed)``, so the ``.bin``/``.idx`` files are byte-identical
across runs and across ``workers`` values. ``meta.json`` holds no timings (only ``args.workers`` differs).
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
from tqdm import tqdm

from parity.records import sha256_file
from qwen_sft.fingerprints import package_version
from qwen_sft.tokenizer import (
    BadRecordError,
    build_messages,
    load_tokenizer,
    render_text,
    standin_tokenizer_dir,
    tokenizer_fingerprint,
)

__all__ = [
    "IGNORE_INDEX",
    "DATASET_FORMAT",
    "SPLITS",
    "DataConvertConfig",
    "DataConvertError",
    "ConvertResult",
    "convert",
    "dataset_prefix",
    "read_records",
    "split_indices",
    "tokenize_record",
    "read_indexed_split",
]

#: Label value of masked (not learned) positions; ``torch.nn.CrossEntropyLoss``'s default ``ignore_index``.
IGNORE_INDEX = -100
#: Written into meta.json["format"].
DATASET_FORMAT = "msshim-sft-indexed-v1"
SPLITS = ("train", "valid")
_KINDS = ("input_ids", "labels")
_MAX_EXAMPLES = 20  # bad-record examples kept in meta.json


class DataConvertError(ValueError):
    """The input cannot be converted (unreadable file, bad record without ``skip_bad_records``, no
    samples)."""


@dataclass
class DataConvertConfig:
    """Arguments of :func:`convert` (the flags of ``tools/data_convert.py``).

    Attributes:
        input_path: Alpaca data, ``.json`` (a list of records) or ``.jsonl`` (one record per line).
        output_path: output directory (created; our dataset files in it are replaced).
        tokenizer_path: tokenizer directory; None → the stand-in (:func:`standin_tokenizer_dir`).
        seq_length: maximum sample length in tokens (ids of the whole sample, prompt included).
        split_ratio: fraction of samples in train, in (0, 1]; ``n_train = max(1, floor(n * split_ratio))``.
        system_prompt: system prompt for records without their own ``system``; None → the template's default.
        seed: seed of the train/valid shuffle.
        workers: tokenizer processes (1 = in this process; inputs of at most 64 records, one chunk, are
            always tokenized in this process).
        overlength: ``"drop"`` or ``"truncate"`` (see module docstring).
        skip_bad_records: skip and count malformed records instead of stopping with an error.
        progress: show a tqdm progress bar on stderr.
    """

    input_path: str
    output_path: str
    tokenizer_path: Optional[str] = None
    seq_length: int = 4096
    split_ratio: float = 0.95
    system_prompt: Optional[str] = None
    seed: int = 1234
    workers: int = 1
    overlength: str = "drop"
    skip_bad_records: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the first bad argument."""
        if self.seq_length < 2:
            raise ValueError(f"seq_length must be >= 2, got {self.seq_length}")
        if not (0.0 < self.split_ratio <= 1.0):
            raise ValueError(f"split_ratio must be in (0, 1], got {self.split_ratio}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.overlength not in ("drop", "truncate"):
            raise ValueError(f"overlength must be 'drop' or 'truncate', got {self.overlength!r}")


@dataclass
class ConvertResult:
    """What :func:`convert` did. ``meta`` is the content of ``meta.json``; times are seconds."""

    output_path: Path
    meta: dict[str, Any]
    tokenize_seconds: float
    total_seconds: float
    tokens_written: int
    records_read: int

    @property
    def samples_per_second(self) -> float:
        """Records read per second of tokenization (the data_convert throughput)."""
        return self.records_read / max(self.tokenize_seconds, 1e-9)

    @property
    def tokens_per_second(self) -> float:
        """Tokens of written samples per second of tokenization."""
        return self.tokens_written / max(self.tokenize_seconds, 1e-9)


# --------------------------------------------------------------------------------------------- reading
@dataclass
class _Raw:
    index: int  # 0-based record index in the file (list position, or non-blank line count for .jsonl)
    line: Optional[int]  # 1-based line number (.jsonl only)
    record: Any = None
    error: Optional[str] = None  # .jsonl line that is not JSON


def _where(path: str, index: int, line: Optional[int]) -> str:
    return f"{path}: record {index}" + (f" (line {line})" if line is not None else "")


def read_records(path: str | os.PathLike) -> Iterator[_Raw]:
    """Yield the raw records of an Alpaca ``.json`` / ``.jsonl`` file, in order, unvalidated.

    ``.json`` must hold a list at top level; ``.jsonl`` holds one JSON value per line (blank lines are not
    records). A ``.jsonl`` line that is not JSON is yielded with ``error`` set (so it can be skipped and
    counted); everything else is yielded with ``record`` set.

    Raises:
        DataConvertError: missing file, unknown extension, a ``.json`` that is not JSON (line/column given)
            or not a list, or text that is not UTF-8.
    """
    p = Path(path)
    if not p.is_file():
        raise DataConvertError(f"input file {str(path)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise DataConvertError(f"{path}: unsupported extension {p.suffix!r}; expected .json (a list of "
                               f"records) or .jsonl (one record per line)")
    try:
        if suffix == ".json":
            with open(p, encoding="utf-8-sig") as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError as exc:
                    raise DataConvertError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: "
                                           f"{exc.msg}") from exc
            if not isinstance(data, list):
                raise DataConvertError(f"{path}: expected a JSON list of records at top level, got "
                                       f"{type(data).__name__} (use .jsonl for one record per line)")
            for i, rec in enumerate(data):
                yield _Raw(i, None, rec)
        else:
            index = 0
            with open(p, encoding="utf-8-sig") as f:
                for lineno, text in enumerate(f, start=1):
                    if not text.strip():
                        continue
                    try:
                        yield _Raw(index, lineno, json.loads(text))
                    except json.JSONDecodeError as exc:
                        yield _Raw(index, lineno, error=f"not valid JSON at column {exc.colno}: {exc.msg}")
                    index += 1
    except UnicodeDecodeError as exc:
        raise DataConvertError(f"{path}: not UTF-8 text ({exc})") from exc


# ---------------------------------------------------------------------------------------- tokenizing
def tokenize_record(tokenizer, record: Any, system_prompt: Optional[str], seq_length: int,
                    overlength: str = "drop") -> tuple[Optional[np.ndarray], Optional[np.ndarray], str]:
    """Tokenize one Alpaca record into ``(input_ids, labels, status)``.

    Returns:
        ``input_ids``, ``labels``: ``int32`` arrays ``[sample_len]`` (``sample_len <= seq_length``), labels
        per the module's label policy; ``status`` is ``"ok"`` or ``"truncated"``. For a dropped sample,
        ``(None, None, reason)`` with reason ``overlength``, ``prompt_overlength`` or ``no_learnable_tokens``.

    Raises:
        BadRecordError: malformed record (``field`` and ``reason`` set).
        ValueError: the tokenizer's template does not render the prompt as a prefix of the conversation,
            or the response does not contain the EOS token (not a Qwen-style chat template).
    """
    messages = build_messages(record, system_prompt, include_output=True)
    prompt_text = render_text(tokenizer, messages[:-1], add_generation_prompt=True)
    full_text = render_text(tokenizer, messages, add_generation_prompt=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the tokenizer's chat template does not render the generation prompt as a prefix of "
                         "the full conversation; cannot separate prompt and response")
    # Same ids as render_prompt_ids(tokenizer, record, system_prompt): one rendering path.
    prompt_ids = tokenizer.encode(prompt_text, add_special_tokens=False)
    response_ids = tokenizer.encode(full_text[len(prompt_text):], add_special_tokens=False)
    eos = tokenizer.eos_token_id
    try:
        last_eos = len(response_ids) - 1 - response_ids[::-1].index(eos)
    except ValueError:
        raise ValueError(f"the rendered assistant turn does not contain the EOS token "
                         f"{tokenizer.eos_token!r} "
                         f"({eos}); the chat template must close the assistant turn with it") from None
    n_prompt = len(prompt_ids)
    ids = np.asarray(prompt_ids + response_ids, dtype=np.int32)
    labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int32)
    labels[n_prompt:n_prompt + last_eos + 1] = ids[n_prompt:n_prompt + last_eos + 1]
    status = "ok"
    if ids.size > seq_length:
        if overlength == "drop":
            return None, None, "overlength"
        if n_prompt >= seq_length:
            return None, None, "prompt_overlength"
        ids, labels, status = ids[:seq_length], labels[:seq_length], "truncated"
    if not np.any(labels != IGNORE_INDEX):
        return None, None, "no_learnable_tokens"
    return ids, labels, status


# The per-process state of tokenizer workers (inherited by fork, or loaded by the initializer under spawn).
_STATE: dict[str, Any] = {}


def _init_worker(tokenizer_dir: str, system_prompt, seq_length, overlength) -> None:
    if _STATE.get("tokenizer_dir") != tokenizer_dir or "tokenizer" not in _STATE:
        _STATE.update(tokenizer=load_tokenizer(tokenizer_dir), tokenizer_dir=tokenizer_dir)
    _STATE.update(system_prompt=system_prompt, seq_length=seq_length, overlength=overlength)


def _process_chunk(chunk: list[_Raw]) -> list[tuple]:
    """Tokenize a chunk; one result tuple per record: ("ok"|"truncated", index, ids, labels) or
    ("drop", index, reason) or ("bad", index, line, field, reason, message)."""
    tok = _STATE["tokenizer"]
    out = []
    for raw in chunk:
        if raw.error is not None:
            out.append(("bad", raw.index, raw.line, None, "not_json", raw.error))
            continue
        try:
            ids, labels, status = tokenize_record(tok, raw.record, _STATE["system_prompt"],
                                                  _STATE["seq_length"], _STATE["overlength"])
        except BadRecordError as exc:
            out.append(("bad", raw.index, raw.line, exc.field, exc.reason, str(exc)))
            continue
        if ids is None:
            out.append(("drop", raw.index, status))
        else:
            out.append((status, raw.index, ids, labels))
    return out


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ------------------------------------------------------------------------------------- split / write
def split_indices(n: int, split_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/valid split of ``n`` samples.

    ``perm = numpy.random.RandomState(seed).permutation(n)``; train = ``perm[:n_train]``, valid =
    ``perm[n_train:]`` with ``n_train = max(1, floor(n * split_ratio))`` for ``n >= 1`` (floor computed with a
    1e-9 tolerance so that e.g. 1000 × 0.95 is 950; at least one train sample). Samples are written in this
    permuted order.

    Returns:
        ``(train_idx, valid_idx)``, ``int64`` arrays of indices into the kept samples (input order).
    """
    n_train = min(n, max(1 if n else 0, int(math.floor(n * split_ratio + 1e-9))))
    perm = np.random.RandomState(seed).permutation(n)
    return perm[:n_train], perm[n_train:]


def dataset_prefix(output_path: str | os.PathLike, split: str, kind: str) -> str:
    """Path prefix (without ``.bin``/``.idx``) of one dataset file: ``D/{split}_{kind}``.

    Raises:
        ValueError: unknown split (train/valid) or kind (input_ids/labels).
    """
    if split not in SPLITS or kind not in _KINDS:
        raise ValueError(f"split must be one of {SPLITS} and kind one of {_KINDS}, got {split!r}, {kind!r}")
    return os.path.join(str(output_path), f"{split}_{kind}")


def _import_indexed_dataset():
    """megatron-core's indexed_dataset module, imported lazily (it imports torch) and without the
    "Transformer Engine and Apex are not installed" warnings, which concern training, not data files."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Transformer Engine and Apex are not installed")
        from megatron.core.datasets import indexed_dataset
    return indexed_dataset


def _write_split(output_path: Path, split: str, samples: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    IndexedDatasetBuilder = _import_indexed_dataset().IndexedDatasetBuilder

    written = []
    for k, kind in enumerate(_KINDS):
        prefix = dataset_prefix(output_path, split, kind)
        builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.int32)
        for sample in samples:
            builder.add_document(sample[k], [int(sample[k].size)])
        builder.finalize(prefix + ".idx")
        written += [os.path.basename(prefix) + ".bin", os.path.basename(prefix) + ".idx"]
    return written


def read_indexed_split(output_path: str | os.PathLike,
                       split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read back one split with megatron-core's ``IndexedDataset``.

    Returns:
        ``(input_ids, labels)``: lists of ``int32`` arrays ``[sample_len]``, in file order.

    Raises:
        FileNotFoundError: the split's files are missing (e.g. ``valid`` when ``split_ratio`` was 1).
    """
    IndexedDataset = _import_indexed_dataset().IndexedDataset

    out = []
    for kind in _KINDS:
        prefix = dataset_prefix(output_path, split, kind)
        if not (os.path.isfile(prefix + ".bin") and os.path.isfile(prefix + ".idx")):
            raise FileNotFoundError(f"{prefix}.bin/.idx not found (split {split!r} was not written)")
        ds = IndexedDataset(prefix, mmap=True)
        out.append([np.array(ds[i]) for i in range(len(ds))])
    if len(out[0]) != len(out[1]):
        raise ValueError(f"{output_path}: {split} has {len(out[0])} id rows but {len(out[1])} label rows")
    return out[0], out[1]


def _token_stats(samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    if not samples:
        return {"samples": 0, "tokens": 0, "learnable_tokens": 0}
    lengths = np.array([s[0].size for s in samples], dtype=np.int64)
    learn = np.array([int(np.count_nonzero(s[1] != IGNORE_INDEX)) for s in samples], dtype=np.int64)
    return {
        "samples": len(samples),
        "tokens": int(lengths.sum()),
        "learnable_tokens": int(learn.sum()),
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "length_mean": round(float(lengths.mean()), 3),
        "length_p50": int(np.percentile(lengths, 50, method="lower")),
        "length_p95": int(np.percentile(lengths, 95, method="lower")),
        "learnable_mean": round(float(learn.mean()), 3),
    }


def _versions() -> dict[str, str]:
    return {pkg: package_version(pkg) or "not installed"
            for pkg in ("msshim", "transformers", "tokenizers", "megatron-core", "numpy")}


# ----------------------------------------------------------------------------------------- convert
def convert(cfg: DataConvertConfig, log=print) -> ConvertResult:
    """Convert an Alpaca file into the tokenized SFT dataset described in the module docstring.

    Args:
        cfg: the arguments (validated here).
        log: called with one-line progress messages (default ``print``).

    Returns:
        a :class:`ConvertResult` (meta.json content, timings, throughput).

    Raises:
        ValueError: bad argument (see :meth:`DataConvertConfig.validate`).
        DataConvertError: unreadable input, a malformed record without ``skip_bad_records`` (message names the
            file, record index, line for .jsonl, and field), or no sample left to write.
        FileNotFoundError / ValueError: tokenizer directory problems (see ``load_tokenizer``).
    """
    cfg.validate()
    t_start = time.perf_counter()
    if cfg.tokenizer_path is None:
        tok_dir = str(standin_tokenizer_dir())
        log(f"data_convert: --tokenizer_path not given: using the STAND-IN Qwen2.5 tokenizer at {tok_dir} "
            f"(see STANDIN_README.md there); pass the model's tokenizer directory for real work")
    else:
        tok_dir = str(cfg.tokenizer_path)
    tokenizer = load_tokenizer(tok_dir)

    raws = list(read_records(cfg.input_path))
    n_read = len(raws)
    bad = Counter()
    dropped = Counter()
    bad_examples: list[dict[str, Any]] = []
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    n_truncated = 0

    _STATE.clear()
    _STATE.update(tokenizer=tokenizer, tokenizer_dir=tok_dir)
    init_args = (tok_dir, cfg.system_prompt, cfg.seq_length, cfg.overlength)
    _init_worker(*init_args)
    chunk_size = 64
    t_tok = time.perf_counter()
    bar = tqdm(total=n_read, unit="rec", desc="data_convert", file=sys.stderr, disable=not cfg.progress,
               mininterval=0.5)
    pool = None
    try:
        if cfg.workers > 1 and n_read > chunk_size:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            pool = ctx.Pool(cfg.workers, initializer=_init_worker, initargs=init_args)
            results = pool.imap(_process_chunk, _chunks(raws, chunk_size))
        else:
            results = map(_process_chunk, _chunks(raws, chunk_size))
        for chunk_result in results:
            for res in chunk_result:
                kind = res[0]
                if kind == "bad":
                    _, index, line, fld, reason, message = res
                    if not cfg.skip_bad_records:
                        where = _where(cfg.input_path, index, line)
                        raise DataConvertError(f"{where}" + (f", field {fld!r}" if fld else "")
                                               + f": {message} (pass --skip_bad_records to skip and count "
                                                 f"such records)")
                    bad[reason] += 1
                    if len(bad_examples) < _MAX_EXAMPLES:
                        bad_examples.append({"index": index, "line": line, "field": fld, "reason": reason,
                                             "message": message})
                elif kind == "drop":
                    dropped[res[2]] += 1
                else:
                    n_truncated += kind == "truncated"
                    kept.append((res[2], res[3]))
            bar.update(len(chunk_result))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    tokenize_seconds = time.perf_counter() - t_tok
    tokens_kept = int(sum(s[0].size for s in kept))

    n_bad, n_dropped = sum(bad.values()), sum(dropped.values())
    if not kept:
        raise DataConvertError(f"{cfg.input_path}: no sample left to write: {n_read} read, {n_bad} bad "
                               f"{dict(bad)}, {n_dropped} dropped {dict(dropped)} "
                               f"(seq_length={cfg.seq_length})")
    train_idx, valid_idx = split_indices(len(kept), cfg.split_ratio, cfg.seed)
    splits = {"train": [kept[i] for i in train_idx], "valid": [kept[i] for i in valid_idx]}

    out = Path(cfg.output_path)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:  # remove our own files from an earlier run so nothing stale remains
        for kind in _KINDS:
            for ext in (".bin", ".idx"):
                stale = Path(dataset_prefix(out, split, kind) + ext)
                if stale.exists():
                    stale.unlink()
    files = []
    for split in SPLITS:
        if splits[split]:
            files += _write_split(out, split, splits[split])

    input_path = Path(cfg.input_path)
    meta = {
        "format": DATASET_FORMAT,
        "dtype": "int32",
        "labels": "unshifted: labels[i] == input_ids[i] where learned, -100 where masked",
        "ignore_index": IGNORE_INDEX,
        "label_policy": "prompt (system, history, user, assistant header) masked; response and its closing "
                        "eos learned; the template's newline after the closing eos kept and masked",
        "files": files,
        "input": {"path": str(input_path), "bytes": input_path.stat().st_size, "sha256": sha256_file(input_path)},
        "counts": {
            "read": n_read,
            "bad_records": n_bad,
            "bad_records_by_reason": dict(sorted(bad.items())),
            "dropped": n_dropped,
            "dropped_by_reason": dict(sorted(dropped.items())),
            "truncated": n_truncated,
            "written": len(kept),
            "train": len(splits["train"]),
            "valid": len(splits["valid"]),
        },
        "bad_record_examples": bad_examples,
        "split": {"method": "numpy.random.RandomState(seed).permutation; "
                            "n_train = max(1, floor(n * split_ratio))",
                  "split_ratio": cfg.split_ratio, "seed": cfg.seed},
        "tokens": {split: _token_stats(splits[split]) for split in SPLITS},
        "seq_length": cfg.seq_length,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "system_prompt": cfg.system_prompt,
        "args": {k: v for k, v in asdict(cfg).items() if k != "progress"},
        "versions": _versions(),
    }
    assert n_read == n_bad + n_dropped + len(kept), "record accounting does not add up"
    with open(out / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=2)
        f.write("\n")
    total_seconds = time.perf_counter() - t_start
    return ConvertResult(out, meta, tokenize_seconds, total_seconds, tokens_kept, n_read)
