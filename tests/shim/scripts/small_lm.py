"""A small character language model (nn.TransformerEncoder with a causal mask), written as a user would write it for
real torch: torch.compile, gradient clipping, a TensorBoard log, ONNX export behind a flag, and sampling with
torch.distributions.Categorical.

Usage: python small_lm.py --out result.json [--steps N] [--compile] [--logdir DIR] [--export-onnx FILE]
Runs unmodified on real torch and under the shim (SHIM_BACKEND=mindspore); writes the per-step losses and the
sampled token ids as JSON.
"""
import argparse
import json
import math

import torch
import torch.nn as nn
import torch.onnx
from torch.distributions import Categorical
from torch.utils.tensorboard import SummaryWriter

TEXT = "the quick brown fox jumps over the lazy dog. " * 8


class CharLM(nn.Module):
    def __init__(self, vocab, d_model=32, nhead=4, layers=2, block=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, block, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, idx):
        t = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        h = self.tok(idx) * math.sqrt(self.tok.embedding_dim) + self.pos[:, :t]
        return self.head(self.encoder(h, mask=mask, is_causal=True))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--export-onnx", default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    chars = sorted(set(TEXT))
    data = torch.tensor([chars.index(c) for c in TEXT], dtype=torch.long)
    block, batch = 16, 8

    model = CharLM(len(chars), block=block)
    if args.compile:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    writer = SummaryWriter(args.logdir) if args.logdir else None

    losses = []
    for step in range(args.steps):
        starts = torch.randint(0, len(data) - block - 1, (batch,))
        x = torch.stack([data[s:s + block] for s in starts.tolist()])
        y = torch.stack([data[s + 1:s + block + 1] for s in starts.tolist()])
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if writer:
            writer.add_scalar("train/loss", loss.item(), step)
        print(f"step {step}: loss {loss.item():.6f}")
    if writer:
        writer.close()

    model.eval()
    idx = data[:4].unsqueeze(0)
    with torch.no_grad():
        for _ in range(8):
            logits = model(idx[:, -block:])[:, -1, :]
            idx = torch.cat([idx, Categorical(logits=logits).sample().unsqueeze(0)], dim=1)
    if args.export_onnx:
        torch.onnx.export(model, (idx[:, -block:],), args.export_onnx)
    with open(args.out, "w") as f:
        json.dump({"torch_version": torch.__version__, "losses": losses, "tokens": idx[0].tolist()}, f)


if __name__ == "__main__":
    main()
