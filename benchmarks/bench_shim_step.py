"""Time one training step of a small Qwen2-like model three ways and report the shim's overhead.

1. ``shim``   — torch-style model code (nn.Module, F.scaled_dot_product_attention, AdamW) on the MindSpore
facade
                (``shim.torch``);
2. ``native`` — the same model hand-written against MindSpore PyNative (mint/ops +
``mindspore.value_and_grad``
                + a hand-written AdamW in MindSpore ops): the same engine without the facade;
3. ``torch``  — the same torch-style code on real PyTorch (CPU).

A step is: forward, cross-entropy loss, backward, AdamW update (plus zero_grad for the torch-style runs).
Every mode runs in its own subprocess (no shared thread pools), starts from the same NumPy-generated weights
and
batch, runs ``--warmup`` untimed steps and ``--steps`` timed ones, and reports the median step time and its
first loss (a sanity check that the three compute the same thing). The parent prints a table and the ratios
shim/native (target ≤ 1.15: the facade's own overhead) and shim/torch.

Model (Qwen2-like): vocab 8192, hidden 512, 4 layers, 8 query heads / 2 key-value heads (GQA), head dim 64,
q/k/v bias, RoPE (base 1e6), RMSNorm (eps 1e-6), SwiGLU MLP (intermediate 1408), untied LM head; batch 4 ×
seq 256.

Usage: python benchmarks/bench_shim_step.py [--steps 5] [--warmup 2] [--modes shim,native,torch] [--json OUT]
Exit status: 0 when every mode ran (the 1.15 target is reported, not enforced: timings depend on machine
load).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CFG = dict(vocab=8192, hidden=512, layers=4, heads=8, kv_heads=2, head_dim=64, ffn=1408, batch=4, seq=256,
           rope_base=1e6, eps=1e-6, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, adam_eps=1e-8)


# ----------------------------------------------------------------------------------------------------------
# shared inputs


def make_weights(cfg=CFG) -> dict:
    """Initial weights (float32 NumPy arrays, HF-like names), identical for every mode (seeded)."""
    rng = np.random.default_rng(0)
    h, f, d = cfg["hidden"], cfg["ffn"], cfg["head_dim"]

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    weights = {"embed": w(cfg["vocab"], h), "norm": np.ones(h, np.float32), "lm_head": w(cfg["vocab"], h)}
    for i in range(cfg["layers"]):
        p = f"layers.{i}."
        weights.update({
            p + "input_norm": np.ones(h, np.float32), p + "post_norm": np.ones(h, np.float32),
            p + "q_w": w(cfg["heads"] * d, h), p + "q_b": w(cfg["heads"] * d),
            p + "k_w": w(cfg["kv_heads"] * d, h), p + "k_b": w(cfg["kv_heads"] * d),
            p + "v_w": w(cfg["kv_heads"] * d, h), p + "v_b": w(cfg["kv_heads"] * d),
            p + "o_w": w(h, cfg["heads"] * d),
            p + "gate_w": w(f, h), p + "up_w": w(f, h), p + "down_w": w(h, f),
        })
    return weights


def make_batch(cfg=CFG):
    """input_ids and labels [batch, seq] int64 (labels: next token, first 16 positions masked with -100)."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, cfg["vocab"], size=(cfg["batch"], cfg["seq"] + 1))
    labels = ids[:, 1:].copy()
    labels[:, :16] = -100
    return ids[:, :-1].astype(np.int64), labels.astype(np.int64)


def rope_tables(cfg=CFG):
    """cos, sin [seq, head_dim] (HF's rotate-half layout)."""
    d = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_base"] ** (np.arange(0, d, 2, dtype=np.float64) / d))
    freqs = np.outer(np.arange(cfg["seq"], dtype=np.float64), inv)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# torch-style model (runs on real torch and on the facade)


def build_torch_style(torch, cfg=CFG):
    nn, F = torch.nn, torch.nn.functional
    cos_np, sin_np = rope_tables(cfg)
    cos, sin = torch.tensor(cos_np), torch.tensor(sin_np)
    H, KV, D = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]

    def rotate_half(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return torch.cat((-x2, x1), dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(cfg["hidden"], H * D)
            self.k_proj = nn.Linear(cfg["hidden"], KV * D)
            self.v_proj = nn.Linear(cfg["hidden"], KV * D)
            self.o_proj = nn.Linear(H * D, cfg["hidden"], bias=False)

        def forward(self, x):
            b, s, _ = x.shape
            q = self.q_proj(x).view(b, s, H, D).transpose(1, 2)
            k = self.k_proj(x).view(b, s, KV, D).transpose(1, 2)
            v = self.v_proj(x).view(b, s, KV, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            return self.o_proj(out.transpose(1, 2).reshape(b, s, H * D))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = nn.Linear(cfg["hidden"], cfg["ffn"], bias=False)
            self.up_proj = nn.Linear(cfg["hidden"], cfg["ffn"], bias=False)
            self.down_proj = nn.Linear(cfg["ffn"], cfg["hidden"], bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_norm = nn.RMSNorm(cfg["hidden"], eps=cfg["eps"])
            self.attn = Attention()
            self.post_norm = nn.RMSNorm(cfg["hidden"], eps=cfg["eps"])
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.input_norm(x))
            return x + self.mlp(self.post_norm(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(cfg["vocab"], cfg["hidden"])
            self.layers = nn.ModuleList([Layer() for _ in range(cfg["layers"])])
            self.norm = nn.RMSNorm(cfg["hidden"], eps=cfg["eps"])
            self.lm_head = nn.Linear(cfg["hidden"], cfg["vocab"], bias=False)

        def forward(self, ids):
            h = self.embed(ids)
            for layer in self.layers:
                h = layer(h)
            return self.lm_head(self.norm(h))

    model = Model()
    w = make_weights(cfg)
    sd = {"embed.weight": w["embed"], "norm.weight": w["norm"], "lm_head.weight": w["lm_head"]}
    for i in range(cfg["layers"]):
        p, q = f"layers.{i}.", f"layers.{i}."
        sd.update({
            q + "input_norm.weight": w[p + "input_norm"], q + "post_norm.weight": w[p + "post_norm"],
            q + "attn.q_proj.weight": w[p + "q_w"], q + "attn.q_proj.bias": w[p + "q_b"],
            q + "attn.k_proj.weight": w[p + "k_w"], q + "attn.k_proj.bias": w[p + "k_b"],
            q + "attn.v_proj.weight": w[p + "v_w"], q + "attn.v_proj.bias": w[p + "v_b"],
            q + "attn.o_proj.weight": w[p + "o_w"], q + "mlp.gate_proj.weight": w[p + "gate_w"],
            q + "mlp.up_proj.weight": w[p + "up_w"], q + "mlp.down_proj.weight": w[p + "down_w"],
        })
    model.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=cfg["betas"], eps=cfg["adam_eps"],
                            weight_decay=cfg["weight_decay"])
    ids_np, labels_np = make_batch(cfg)
    ids, labels = torch.tensor(ids_np), torch.tensor(labels_np)

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab"]), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ----------------------------------------------------------------------------------------------------------
# native MindSpore model (same math, MindSpore ops + value_and_grad + hand-written AdamW)


def build_native(cfg=CFG):
    import mindspore as ms
    from mindspore import mint, ops

    H, KV, D = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    names = list(make_weights(cfg).keys())
    params = [ms.Parameter(ms.Tensor(v), name=k) for k, v in make_weights(cfg).items()]
    P = dict(zip(names, params))
    cos_np, sin_np = rope_tables(cfg)
    cos, sin = ms.Tensor(cos_np), ms.Tensor(sin_np)
    causal = ms.Tensor(np.tril(np.ones((cfg["seq"], cfg["seq"]), dtype=np.bool_)))
    ids_np, labels_np = make_batch(cfg)
    ids, labels = ms.Tensor(ids_np), ms.Tensor(labels_np.reshape(-1))
    eps = cfg["eps"]
    linear = mint.nn.functional.linear

    def rms(x, w):
        return x * mint.rsqrt(mint.mean(x * x, dim=-1, keepdim=True) + eps) * w

    def rotate_half(x):
        return mint.cat((-x[..., D // 2:], x[..., : D // 2]), dim=-1)

    def repeat_kv(x):
        b, kv, s, d = x.shape
        return mint.broadcast_to(x.reshape(b, kv, 1, s, d), (b, kv, H // KV, s, d)).reshape(b, H, s, d)

    def forward():
        b, s = ids.shape
        h = ops.gather(P["embed"], ids.reshape(-1), 0).reshape(b, s, -1)
        for i in range(cfg["layers"]):
            p = f"layers.{i}."
            x = rms(h, P[p + "input_norm"])
            q = mint.transpose(linear(x, P[p + "q_w"], P[p + "q_b"]).reshape(b, s, H, D), 1, 2)
            k = mint.transpose(linear(x, P[p + "k_w"], P[p + "k_b"]).reshape(b, s, KV, D), 1, 2)
            v = mint.transpose(linear(x, P[p + "v_w"], P[p + "v_b"]).reshape(b, s, KV, D), 1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k, v = repeat_kv(k), repeat_kv(v)
            scores = mint.matmul(q, mint.transpose(k, -2, -1)) * (1.0 / math.sqrt(D))
            scores = scores.masked_fill(~causal, float("-inf"))
            attn = mint.matmul(mint.softmax(scores, -1), v)
            h = h + linear(mint.transpose(attn, 1, 2).reshape(b, s, H * D), P[p + "o_w"])
            x = rms(h, P[p + "post_norm"])
            h = h + linear(mint.nn.functional.silu(linear(x, P[p + "gate_w"])) * linear(x, P[p + "up_w"]),
                           P[p + "down_w"])
        logits = linear(rms(h, P["norm"]), P["lm_head"]).reshape(-1, cfg["vocab"])
        logp = ops.log_softmax(logits, 1)
        valid = labels != -100
        safe = mint.where(valid, labels, ops.zeros_like(labels))
        picked = mint.gather(logp, 1, safe.reshape(-1, 1)).reshape(-1)
        validf = valid.astype(ms.float32)
        return (-picked * validf).sum() / validf.sum()

    grad_fn = ms.value_and_grad(forward, None, params)
    beta1, beta2 = cfg["betas"]
    lr, wd, aeps = cfg["lr"], cfg["weight_decay"], cfg["adam_eps"]
    exp_avg = [mint.zeros(p.shape, dtype=ms.float32) for p in params]
    exp_avg_sq = [mint.zeros(p.shape, dtype=ms.float32) for p in params]
    state = {"step": 0}

    def step():
        loss, grads = grad_fn()
        state["step"] += 1
        t = state["step"]
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        for i, (p, g) in enumerate(zip(params, grads)):
            exp_avg[i] = exp_avg[i] + (g - exp_avg[i]) * (1 - beta1)
            exp_avg_sq[i] = exp_avg_sq[i] * beta2 + g * g * (1 - beta2)
            denom = mint.sqrt(exp_avg_sq[i]) / math.sqrt(bc2) + aeps
            p.assign_value(p * (1 - lr * wd) - exp_avg[i] / denom * (lr / bc1))
        return float(loss.asnumpy())

    return step


# ----------------------------------------------------------------------------------------------------------
# driver


def run_mode(mode: str, steps: int, warmup: int) -> dict:
    if mode == "torch":
        import torch
        step = build_torch_style(torch)
    elif mode == "shim":
        import shim.torch as torch
        step = build_torch_style(torch)
    elif mode == "native":
        step = build_native()
    else:
        raise ValueError(f"unknown mode {mode!r} (expected shim, native or torch)")
    first_loss = None
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        if first_loss is None:
            first_loss = loss
        if i >= warmup:
            times.append(dt)
    return {"mode": mode, "median_s": statistics.median(times), "times_s": times, "first_loss": first_loss}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--modes", default="shim,native,torch", help="comma-separated subset of shim,native,torch")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(run_mode(args._child, args.steps, args.warmup)))
        return 0
    results = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        env = dict(os.environ)
        env.pop("SHIM_BACKEND", None)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_child", mode, "--steps",
                               str(args.steps), "--warmup", str(args.warmup)], capture_output=True, text=True,
                              env=env, timeout=3600)
        if proc.returncode != 0:
            print(f"mode {mode} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}", file=sys.stderr)
            return 1
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'mode':<8} {'median step [ms]':>17} {'first loss':>12}")
    for mode, r in results.items():
        print(f"{mode:<8} {r['median_s'] * 1e3:>17.1f} {r['first_loss']:>12.6f}")
    ratios = {}
    if "shim" in results and "native" in results:
        ratios["shim/native"] = results["shim"]["median_s"] / results["native"]["median_s"]
    if "shim" in results and "torch" in results:
        ratios["shim/torch"] = results["shim"]["median_s"] / results["torch"]["median_s"]
    for name, value in ratios.items():
        note = " (target <= 1.15)" if name == "shim/native" else ""
        print(f"{name}: {value:.3f}{note}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"config": CFG, "results": results, "ratios": ratios}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
