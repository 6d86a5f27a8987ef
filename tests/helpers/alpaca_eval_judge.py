"""A deterministic local judge for AlpacaEval tests: a completion function with alpaca_eval's decoder signature.

`prefer_longer` reads the two outputs from the prompt rendered with `alpaca_eval_judge/prompt.txt` and answers
"Output (a)" or "Output (b)": the output with more characters wins, a tie goes to (a). alpaca_eval's `regex_parser`
(configured in `alpaca_eval_judge/configs.yaml`) turns that into preference 1 or 2. The expected win rate of a model
(output (b); the reference is (a)) is therefore the share of instructions where its output is strictly longer.
"""
from __future__ import annotations

A, B, END = "\n[output (a)]\n", "\n[output (b)]\n", "\n[end]"


def judge_prompt(prompt: str) -> str:
    """"Output (a)" or "Output (b)" for one prompt of `alpaca_eval_judge/prompt.txt`."""
    if A not in prompt or B not in prompt or not prompt.rstrip().endswith(END.strip()):
        raise ValueError(f"not a prompt of alpaca_eval_judge/prompt.txt: {prompt[:80]!r}")
    rest = prompt.split(A, 1)[1]
    output_1, rest = rest.split(B, 1)
    output_2 = rest.rsplit(END, 1)[0]
    return "Output (b)" if len(output_2) > len(output_1) else "Output (a)"


def prefer_longer(prompts, **completions_kwargs) -> dict:
    """alpaca_eval's decoder signature: one completion per prompt, with price and time per example."""
    completions = [judge_prompt(p) for p in prompts]
    return {"completions": completions, "price_per_example": [0.0] * len(prompts),
            "time_per_example": [0.0] * len(prompts)}
