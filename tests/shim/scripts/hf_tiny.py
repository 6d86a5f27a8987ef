"""A tiny HF transformers causal-LM program, unmodified torch code, run on real torch and under the shim.

  hf_tiny.py init  --arch qwen2|llama --dir D            real torch: build a seeded tiny model, save_pretrained(D)
  hf_tiny.py run   --arch ... --dir D --out O            load D, loss/backward/AdamW step, generate, save O/saved
  hf_tiny.py check --dir D                               load D (any backend) and print its weights' checksum

`run` writes O/result.json (loss, greedy and sampled tokens, torch version) and O/arrays.npz (every gradient
and every updated weight, by parameter name) for the test to compare with the other backend's.
"""
import argparse
import json
import os

import numpy as np
import torch

import transformers


def config(arch):
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=128, max_position_embeddings=64, tie_word_embeddings=False)
    if arch == "qwen2":
        return transformers.Qwen2Config(**common)
    if arch == "llama":
        return transformers.LlamaConfig(**common)
    raise SystemExit(f"unknown arch {arch}")


def model_class(arch):
    return transformers.Qwen2ForCausalLM if arch == "qwen2" else transformers.LlamaForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["init", "run"])
    p.add_argument("--arch", default="qwen2")
    p.add_argument("--dir", required=True)
    p.add_argument("--out")
    a = p.parse_args()
    if a.mode == "init":
        torch.manual_seed(0)
        model = model_class(a.arch)(config(a.arch))
        model.save_pretrained(a.dir, safe_serialization=True)
        return
    os.makedirs(a.out, exist_ok=True)
    model = model_class(a.arch).from_pretrained(a.dir, attn_implementation=os.environ.get("HF_ATTN", "sdpa"), dtype=torch.float32)
    model.train()
    ids = torch.tensor([[5, 17, 99, 3, 42, 7, 64, 11], [1, 2, 3, 4, 5, 6, 7, 8]])
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    arrays = {}
    for name, prm in model.named_parameters():
        arrays["grad/" + name] = prm.grad.detach().numpy().copy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    opt.step()
    opt.zero_grad()
    for name, prm in model.named_parameters():
        arrays["weight/" + name] = prm.detach().numpy().copy()
    loss2 = model(input_ids=ids, labels=ids).loss.item()
    model.eval()
    prompt = torch.tensor([[5, 17, 99, 3]])
    greedy = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0)
    torch.manual_seed(1234)
    sampled = model.generate(prompt, max_new_tokens=8, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                             pad_token_id=0)
    model.save_pretrained(os.path.join(a.out, "saved"), safe_serialization=True)
    np.savez(os.path.join(a.out, "arrays.npz"), **arrays)
    result = {"torch_version": torch.__version__, "loss": out.loss.item(), "loss_after_step": loss2,
              "logits_shape": list(out.logits.shape), "greedy": greedy.tolist(), "sampled": sampled.tolist()}
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
