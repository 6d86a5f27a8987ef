"""A small, ordinary torch training script: a tiny decoder-only transformer trained for a few steps.

It is run unchanged on real torch and on the MindSpore facade (``SHIM_BACKEND=mindspore python
tiny_transformer.py ...``) by tests/shim/test_tiny_transformer_script.py, which compares the two loss curves.

Model: token embedding, pre-norm blocks (RMSNorm, grouped-query causal attention through
``F.scaled_dot_product_attention(is_causal=True, enable_gqa=True)``, SwiGLU MLP), final RMSNorm, untied LM
head.
Training: cross-entropy with ``ignore_index=-100`` on shifted labels (prompt positions masked), AdamW,
``clip_grad_norm_``, a linear-warmup + cosine schedule (SequentialLR), and a checkpoint in the middle: model,
optimizer and scheduler state dicts go through ``torch.save``/``torch.load`` (in memory), a fresh model /
optimizer / scheduler load them, and training continues.

Initial weights come from an ``.npz`` file so both backends start identical: ``--write-init PATH`` creates it
from this script's own random initialisation (run that with real torch), ``--init PATH`` loads it.
The run's numbers go to ``--out`` as JSON: losses, grad norms, learning rates, torch.__version__.

Usage: python tiny_transformer.py (--init F | --write-init F) --out result.json [--steps 20] [--save-at 10]
"""
import argparse
import io
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, HIDDEN, HEADS, KV_HEADS, LAYERS, FFN = 64, 32, 4, 2, 2, 64
BATCH, SEQ = 4, 16


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_dim = HIDDEN // HEADS
        self.q_proj = nn.Linear(HIDDEN, HEADS * self.head_dim, bias=True)
        # no key bias: its gradient is zero in exact arithmetic (softmax is shift-invariant along the keys),
        # so
        # Adam would amplify rounding noise there and the two backends' curves would drift apart for no
        # reason.
        self.k_proj = nn.Linear(HIDDEN, KV_HEADS * self.head_dim, bias=False)
        self.v_proj = nn.Linear(HIDDEN, KV_HEADS * self.head_dim, bias=True)
        self.o_proj = nn.Linear(HEADS * self.head_dim, HIDDEN, bias=False)

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, HEADS, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, KV_HEADS, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, KV_HEADS, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, HEADS * self.head_dim))


class SwiGLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(HIDDEN, FFN, bias=False)
        self.up_proj = nn.Linear(HIDDEN, FFN, bias=False)
        self.down_proj = nn.Linear(FFN, HIDDEN, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_norm = nn.RMSNorm(HIDDEN, eps=1e-6)
        self.attn = Attention()
        self.post_norm = nn.RMSNorm(HIDDEN, eps=1e-6)
        self.mlp = SwiGLU()

    def forward(self, x):
        x = x + self.attn(self.input_norm(x))
        return x + self.mlp(self.post_norm(x))


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.norm = nn.RMSNorm(HIDDEN, eps=1e-6)
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=0.05)

    def forward(self, input_ids):
        h = self.embed(input_ids)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm(h))


def make_batches(steps):
    """Fixed, learnable batches: each row counts up from a random start by a random stride (mod VOCAB); labels
    are the next token, with a random prefix of "prompt" positions set to -100."""
    rng = np.random.default_rng(1234)
    batches = []
    for _ in range(steps):
        starts = rng.integers(0, VOCAB, size=(BATCH, 1))
        strides = rng.integers(1, 4, size=(BATCH, 1))
        ids = (starts + strides * np.arange(SEQ + 1)[None, :]) % VOCAB
        labels = ids[:, 1:].copy()
        for row in range(BATCH):
            labels[row, : rng.integers(1, SEQ // 2)] = -100
        batches.append((ids[:, :-1].astype(np.int64), labels.astype(np.int64)))
    return batches


def build_training(model, total_steps):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=3e-3, betas=(0.9, 0.95),
                                  eps=1e-8)
    warmup = 3
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup),
         torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup, eta_min=1e-4)],
        milestones=[warmup])
    return optimizer, scheduler


def train_steps(model, optimizer, scheduler, batches, record):
    model.train()
    for ids, labels in batches:
        logits = model(torch.tensor(ids))
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), torch.tensor(labels).reshape(-1), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        record["lrs"].append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        record["losses"].append(loss.item())
        record["grad_norms"].append(float(grad_norm))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--init", help="load initial weights from this .npz")
    src.add_argument("--write-init", help="write this script's random initial weights to this .npz, then train")
    parser.add_argument("--out", required=True, help="write the run's numbers here (JSON)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--save-at", type=int, default=10, help="checkpoint and restore after this many steps")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = TinyLM()
    if args.write_init:
        np.savez(args.write_init, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    init_path = args.init or args.write_init
    with np.load(init_path) as data:
        model.load_state_dict({k: torch.tensor(data[k]) for k in data.files})

    batches = make_batches(args.steps)
    optimizer, scheduler = build_training(model, args.steps)
    record = {"losses": [], "grad_norms": [], "lrs": [], "torch_version": torch.__version__}
    train_steps(model, optimizer, scheduler, batches[: args.save_at], record)

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=False)
    restored = TinyLM()
    restored.load_state_dict(checkpoint["model"])
    optimizer, scheduler = build_training(restored, args.steps)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    record["restored_max_abs_diff"] = max(
        float((a - b).abs().max()) for a, b in zip(model.state_dict().values(), restored.state_dict().values()))
    train_steps(restored, optimizer, scheduler, batches[args.save_at:], record)

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(record, f)
    print(json.dumps({"final_loss": record["losses"][-1], "steps": len(record["losses"]),
                      "torch": torch.__version__}))
    assert all(math.isfinite(x) for x in record["losses"]), "non-finite loss"


if __name__ == "__main__":
    main()
