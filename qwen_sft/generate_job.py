"""The generate job (what tools/generate.py runs): prompt files, the configuration, run and output records.

Prompts are read (`read_prompt_file`), rendered with the chat template (`qwen_sft.tokenizer.render_prompt_ids`,
the function data conversion uses for training samples) and length-checked before the model is loaded; the
model runs through `qwen_sft.generation.MegatronGenerator`; one JSON object per prompt is written (see
`run_generate`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from tqdm import tqdm

from qwen_sft.dtypes import DTYPE_NAMES
from qwen_sft.generation import MegatronGenerator, check_prompt_lengths, stop_token_ids
from qwen_sft.hf_io import resolve_model_path
from qwen_sft.loading import load_model_for_inference
from qwen_sft.sampling import SamplingParams
from qwen_sft.tokenizer import load_tokenizer, render_prompt_ids, resolve_tokenizer_dir

__all__ = ["read_prompt_file", "json_entries", "GenerateConfig", "GenerateSummary", "run_generate"]


def _as_prompt(item: Any, where: str) -> Union[str, dict]:
    if isinstance(item, str):
        if not item.strip():
            raise ValueError(f"{where}: empty prompt")
        return item
    if isinstance(item, Mapping):
        if "instruction" in item:
            return dict(item)
        if "prompt" in item and isinstance(item["prompt"], str):
            return {**{k: v for k, v in item.items() if k != "prompt"}, "instruction": item["prompt"]}
        raise ValueError(f"{where}: a prompt object needs an 'instruction' (Alpaca record) or a 'prompt' string "
                         f"field; got keys {sorted(item)[:8]}")
    raise ValueError(f"{where}: expected a string or an object, got {type(item).__name__}")


def json_entries(text: str, where: str) -> Optional[list[tuple[Any, str]]]:
    """The entries of a JSON list or JSON Lines text, each with its place for messages (`"<where> record <i>"` /
    `"<where> line <n>"`); None when the text is neither (it starts with none of `[`, `{`, `"`).

    Raises:
        ValueError: a text starting with '[' that is not valid JSON, or a JSON Lines line that is not.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: starts with '[' but is not valid JSON: {exc}") from exc
        return [(item, f"{where} record {i}") for i, item in enumerate(data)]
    if not stripped.startswith(("{", '"')):
        return None
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} line {lineno}: not valid JSON (JSON Lines file): {exc}") from exc
        entries.append((item, f"{where} line {lineno}"))
    return entries


def read_prompt_file(path: Union[str, os.PathLike]) -> list[Union[str, dict]]:
    """Read prompts from a file.

    Formats (by content, not by name): a JSON list (Alpaca JSON: objects with `instruction`, optional `input`,
    `system`, `history`; or strings); JSON Lines (one object or JSON string per line; an object may carry a
    `prompt` string instead of `instruction`); otherwise plain text, one prompt per non-empty line. An Alpaca
    record's `output`, when present, is not part of the prompt (it is kept as the reference answer).

    Returns:
        A list of prompts: strings or Alpaca-record dicts (with `instruction`).

    Raises:
        FileNotFoundError: no such file. ValueError: no prompt in the file, or a bad entry (the message gives
        the file, the line or record index and what was expected).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--input_file {str(path)!r} does not exist")
    text = p.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    entries = json_entries(text, str(p))
    if entries is not None:
        prompts: list[Union[str, dict]] = [_as_prompt(item, where) for item, where in entries]
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{p}: no prompts found")
    return prompts


@dataclasses.dataclass
class GenerateConfig:
    """Arguments of `run_generate` (the flags of tools/generate.py).

    Attributes:
        model_path: HF directory, converted Megatron checkpoint, or training output directory.
        model_name: a label recorded in the output (the original scripts' `--model_name`, e.g. "qwen2.5-7b").
        tokenizer_path: tokenizer directory; None → the model directory's own.
        seq_length: context budget in tokens (prompt + new tokens).
        max_new_tokens: the most new tokens per prompt.
        prompts: prompts given on the command line (`--prompt`, repeatable), or Alpaca-record dicts (with
            `instruction`, optional `input`, `system`, `history`) from a caller such as `qwen_sft.alpacaeval`.
        input_file: more prompts (see `read_prompt_file`).
        output_file: JSON Lines output, one object per prompt (see `run_generate`); None → not written.
        system_prompt: system prompt for prompts without their own `system`; None → the chat template's default.
        sampling: greedy by default.
        batch_size: prompts per batch (KV-cache mode).
        use_kv_cache: False → recompute the whole sequence each step (benchmark baseline).
        dtype: "auto" or a dtype name (see `qwen_sft.loading.load_model_tp1`).
        make_vocab_size_divisible_by: Megatron vocabulary padding multiple.
        progress: show a tqdm progress bar on stderr.
        tensor_model_parallel_size, pipeline_model_parallel_size: TP and PP degrees; the launch must have
            TP × PP processes (see `qwen_sft.loading.load_model_for_inference`).
    """

    model_path: str
    model_name: Optional[str] = None
    tokenizer_path: Optional[str] = None
    seq_length: int = 4096
    max_new_tokens: int = 512
    prompts: list = dataclasses.field(default_factory=list)
    input_file: Optional[str] = None
    output_file: Optional[str] = None
    system_prompt: Optional[str] = None
    sampling: SamplingParams = dataclasses.field(default_factory=SamplingParams)
    batch_size: int = 8
    use_kv_cache: bool = True
    dtype: str = "auto"
    make_vocab_size_divisible_by: int = 128
    progress: bool = True
    tensor_model_parallel_size: int = 1
    pipeline_model_parallel_size: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first bad argument."""
        if not self.prompts and not self.input_file:
            raise ValueError("no prompt: give --prompt and/or --input_file")
        if not isinstance(self.seq_length, int) or self.seq_length < 2:
            raise ValueError(f"seq_length must be an int >= 2, got {self.seq_length!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        for name in ("tensor_model_parallel_size", "pipeline_model_parallel_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.dtype != "auto" and self.dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPE_NAMES)}, got {self.dtype!r}")
        for i, p in enumerate(self.prompts):
            if isinstance(p, Mapping):  # a caller's Alpaca record (qwen_sft.alpacaeval)
                if not isinstance(p.get("instruction"), str) or not p["instruction"].strip():
                    raise ValueError(f"prompt {i}: an Alpaca record needs a non-empty string 'instruction', "
                                     f"got {p.get('instruction')!r:.80}")
            elif not isinstance(p, str) or not p.strip():
                raise ValueError(f"--prompt {i}: expected a non-empty string, got {p!r}")


@dataclasses.dataclass
class GenerateSummary:
    """Totals of one `run_generate` call.

    Attributes:
        records: one dict per prompt, in input order (the JSONL objects; see `run_generate`).
        prompts, prompt_tokens, new_tokens: counts.
        generate_s: wall seconds spent generating (model loading excluded).
        tokens_per_s: new tokens / generate_s (decode throughput as a user sees it, prefill included).
        stop_reasons: count per stop reason.
        info: `load_generator`'s info dict.
    """

    records: list
    prompts: int
    prompt_tokens: int
    new_tokens: int
    generate_s: float
    tokens_per_s: float
    stop_reasons: dict
    info: dict


def _prompt_fields(prompt: Union[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The user-visible parts of a prompt for the output record."""
    if isinstance(prompt, str):
        return {"prompt": prompt}
    inp = prompt.get("input") or ""
    fields: dict[str, Any] = {"prompt": f"{prompt['instruction']}\n{inp}" if inp else prompt["instruction"]}
    for key in ("system", "history", "id"):
        if prompt.get(key):
            fields[key] = prompt[key]
    if isinstance(prompt.get("output"), str):
        fields["reference"] = prompt["output"]
    return fields


def run_generate(cfg: GenerateConfig, log: Callable[[str], None] = print,
                 warn: Optional[Callable[[str], None]] = None) -> GenerateSummary:
    """Load the model, render every prompt with the chat template, generate, and write `cfg.output_file`.

    Prompts: `cfg.prompts` first, then those of `cfg.input_file`; all are rendered and checked against
    `seq_length` before the first forward pass (a too-long prompt raises `PromptTooLongError` naming it).
    When `prompt + max_new_tokens > seq_length` for some prompt, `warn` says how many will be cut at
    seq_length.

    Output (JSON Lines, one object per prompt, input order): `index`, `model_name`, `prompt` (the user text:
    instruction, plus "\\n" + input when non-empty), optional `system` / `history` / `reference` (an Alpaca
    record's `output`), `prompt_token_ids`, `output` (decoded new tokens, special tokens removed),
    `output_token_ids` (stop token included), `stop_reason`, `stop_token`, `num_prompt_tokens`,
    `num_output_tokens`, `timings` {`batch_index`, `batch_size`, `prefill_s`, `decode_s`, `tokens_per_s` of the
    batch}, `sampling` (the parameters used).

    Order: prompts are read, rendered and length-checked with the tokenizer before the model is loaded, so
    input errors surface at once.

    Parallel launch (TP × PP processes, `cfg.tensor_model_parallel_size` / `pipeline_model_parallel_size`): every
    rank generates the same tokens (`qwen_sft.generation`); only rank 0 logs, shows progress and writes
    `output_file`; `info["rank"]` says which rank a summary comes from.

    Raises:
        ValueError (bad config, bad prompt file entry, `BadRecordError`), PromptTooLongError, FileNotFoundError,
        ConnectionError (ModelScope id offline), and whatever `load_model_tp1` raises.
    """
    warn = warn or (lambda m: log(f"warning: {m}"))
    cfg.validate()
    prompts: list[Union[str, dict]] = list(cfg.prompts)
    if cfg.input_file:
        prompts += read_prompt_file(cfg.input_file)
    # Tokenizer and prompts first: a bad or too-long prompt fails before minutes of loading a large model.
    model_dir = resolve_model_path(cfg.model_path)
    tok_dir = resolve_tokenizer_dir(model_dir, cfg.tokenizer_path, warn=warn)
    tokenizer = load_tokenizer(tok_dir)
    prompt_ids = []
    for i, prompt in enumerate(prompts):
        try:
            prompt_ids.append(render_prompt_ids(tokenizer, prompt, cfg.system_prompt))
        except ValueError as exc:
            raise ValueError(f"prompt {i}: {exc}") from exc
    check_prompt_lengths(prompt_ids, cfg.seq_length)
    over = [i for i, ids in enumerate(prompt_ids) if len(ids) + cfg.max_new_tokens > cfg.seq_length]
    if over:
        warn(f"{len(over)} prompt(s) (first: {over[0]}, {len(prompt_ids[over[0]])} tokens) + max_new_tokens "
             f"{cfg.max_new_tokens} exceed seq_length {cfg.seq_length}; they stop at seq_length "
             f"(stop_reason 'seq_length')")

    model, _, info = load_model_for_inference(
        model_dir, seq_length=cfg.seq_length, dtype=cfg.dtype,
        make_vocab_size_divisible_by=cfg.make_vocab_size_divisible_by, seed=cfg.sampling.seed,
        tensor_model_parallel_size=cfg.tensor_model_parallel_size,
        pipeline_model_parallel_size=cfg.pipeline_model_parallel_size)
    layout = info.pop("layout")
    writer = layout.rank == 0  # every rank generates the same tokens; rank 0 logs and writes the output file
    if not writer:
        log = lambda message: None  # noqa: E731
    generator = MegatronGenerator(model, vocab_size=info["vocab_size"], seq_length=cfg.seq_length,
                                  stop_ids=stop_token_ids(tokenizer), device=info["device"])
    info = {**info, "device": str(info["device"]), "tokenizer_path": str(tok_dir),
            "tensor_model_parallel_size": layout.tensor_model_parallel_size,
            "pipeline_model_parallel_size": layout.pipeline_model_parallel_size, "rank": layout.rank}
    where = (f", TP={layout.tensor_model_parallel_size} PP={layout.pipeline_model_parallel_size}"
             if layout.world_size > 1 else "")
    log(f"generate: model {info['model_path']} ({info['num_parameters']:,} parameters{' on rank 0' if where else ''}, "
        f"{info['dtype']}, {info['device']}{where}, loaded in {info['load_s']:.1f} s), tokenizer "
        f"{info['tokenizer_path']}")
    generator.check_prompts(prompt_ids)  # token ids within the model's vocabulary

    bar = None
    if cfg.progress and len(prompt_ids) > 1 and writer:
        bar = tqdm(total=len(prompt_ids), desc="generate", unit="prompt")
    t0 = time.perf_counter()
    try:
        outputs = generator.generate_batches(prompt_ids, max_new_tokens=cfg.max_new_tokens,
                                             batch_size=cfg.batch_size, sampling=cfg.sampling,
                                             use_kv_cache=cfg.use_kv_cache,
                                             progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    generate_s = time.perf_counter() - t0

    batch_tokens: dict[int, int] = {}
    for out in outputs:
        batch_tokens[out.batch_index] = batch_tokens.get(out.batch_index, 0) + len(out.output_ids)
    records = []
    stop_reasons: dict[str, int] = {}
    for prompt, out in zip(prompts, outputs):
        stop_reasons[out.stop_reason] = stop_reasons.get(out.stop_reason, 0) + 1
        batch_s = out.prefill_s + out.decode_s
        records.append({
            "index": out.index,
            "model_name": cfg.model_name,
            **_prompt_fields(prompt),
            "prompt_token_ids": out.prompt_ids,
            "output": tokenizer.decode(out.output_ids, skip_special_tokens=True),
            "output_token_ids": out.output_ids,
            "stop_reason": out.stop_reason,
            "stop_token": out.stop_token,
            "num_prompt_tokens": len(out.prompt_ids),
            "num_output_tokens": len(out.output_ids),
            "timings": {
                "batch_index": out.batch_index,
                "batch_size": out.batch_size,
                "prefill_s": out.prefill_s,
                "decode_s": out.decode_s,
                "tokens_per_s": (batch_tokens[out.batch_index] / batch_s if cfg.use_kv_cache and batch_s > 0
                                 else (len(out.output_ids) / batch_s if batch_s > 0 else None)),
            },
            "sampling": dataclasses.asdict(cfg.sampling),
        })
    if cfg.output_file and writer:
        out_path = Path(cfg.output_file)
        if out_path.parent and not out_path.parent.exists():
            out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, out_path)
    new_tokens = sum(len(o.output_ids) for o in outputs)
    return GenerateSummary(
        records=records, prompts=len(records), prompt_tokens=sum(len(o.prompt_ids) for o in outputs),
        new_tokens=new_tokens, generate_s=generate_s,
        tokens_per_s=new_tokens / generate_s if generate_s > 0 else float("nan"),
        stop_reasons=stop_reasons, info=info)
