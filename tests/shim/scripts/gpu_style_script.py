"""A GPU-style torch training script, written for CUDA and run unmodified under the shim.

It does what GPU scripts do: binds its local rank's device with ``torch.cuda.set_device(local_rank)``, creates
tensors and a model on ``"cuda"``, times a region with CUDA events, reads ``torch.cuda.max_memory_allocated``,
trains under ``torch.autocast("cuda", dtype=torch.float16)`` with ``torch.amp.GradScaler`` (dynamic loss scaling,
one injected overflow), checkpoints with
``torch.save``/``torch.load`` and seeds with ``torch.cuda.manual_seed``. It prints one JSON line of results.

Usage: ``python -m shim run tests/shim/scripts/gpu_style_script.py --steps 8 --out result.json`` (LOCAL_RANK may
be set by a launcher).
"""
from __future__ import annotations

import argparse
import json
import math
import os

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--ckpt", default=None, help="checkpoint path (default: next to --out)")
    args = parser.parse_args()

    assert torch.cuda.is_available(), "this script needs an accelerator"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    device = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(1234)
    torch.cuda.manual_seed(1234)

    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.SiLU(), torch.nn.Linear(32, 1)).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 12, growth_interval=4)
    x = torch.randn(64, 16, device="cuda")
    y = x[:, :1] * 0.5 - x[:, 1:2]

    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    losses, scales, autocast_dtypes = [], [], []
    start.record()
    for step in range(args.steps):
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.nvtx.range_push(f"step {step}")
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            out = model(x)
            loss = torch.nn.functional.mse_loss(out, y)
        autocast_dtypes.append([str(out.dtype), str(loss.dtype)])
        if step == 2:
            loss = loss * math.inf  # an overflow: the scaler must skip this step and back off
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.nvtx.range_pop()
        losses.append(float(loss.item()))
        scales.append(scaler.get_scale())
    end.record()
    torch.cuda.synchronize()

    ckpt = args.ckpt or os.path.join(os.path.dirname(os.path.abspath(args.out)), "gpu_style.pt")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()},
               ckpt)
    restored = torch.load(ckpt, map_location=device, weights_only=True)
    first_weight = next(iter(model.state_dict().values()))
    same = bool(torch.equal(restored["model"]["0.weight"].cpu(), first_weight.cpu()))

    result = {
        "device": str(device),
        "param_device": str(next(model.parameters()).device),
        "param_type": next(model.parameters()).type(),
        "device_name": torch.cuda.get_device_name(),
        "elapsed_ms": start.elapsed_time(end),
        "max_memory_allocated": torch.cuda.max_memory_allocated(),
        "losses": losses,
        "autocast_dtypes": autocast_dtypes,
        "scales": scales,
        "scaler_state": restored["scaler"],
        "checkpoint_roundtrip_equal": same,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    print(json.dumps({k: result[k] for k in ("device", "elapsed_ms", "scales")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
