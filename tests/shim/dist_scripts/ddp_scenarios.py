"""DistributedDataParallel scenarios, run unmodified by real torch (torchrun, gloo) and by the shim (its launcher).

Each rank writes ``$SHIM_TEST_OUT/$SHIM_TEST_TAG_rank<R>.json``: the values each scenario produced (gradients,
parameters, buffers, state_dict keys, error messages) as nested lists, for tests/shim/test_nn_parallel.py to
compare across backends. Weights and inputs come from numpy (not torch's RNG), different on each rank.
"""
import json
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group(backend="nccl" if os.environ.get("SHIM_BACKEND") else "gloo")
R, N = dist.get_rank(), dist.get_world_size()
out: dict = {"rank": R, "world_size": N, "backend": dist.get_backend()}


def arr(*shape, seed):
    return torch.tensor(np.random.RandomState(seed).uniform(-1, 1, size=shape).astype(np.float32))


class Net(nn.Module):
    def __init__(self, seed, big=False, extra=True):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)
        self.side = nn.Linear(4, 3) if extra else None    # used only when asked (rank-dependent below)
        self.never = nn.Linear(2, 2) if extra else None   # never used
        self.big = nn.Linear(512, 520, bias=False) if big else None  # > 1 MiB: closes the first bucket
        self.register_buffer("stat", torch.full((2,), float(R + 1)))
        with torch.no_grad():
            for i, p in enumerate(self.parameters()):
                p.copy_(arr(*p.shape, seed=seed + i))

    def forward(self, x, use_side=False):
        h = self.fc2(torch.relu(self.fc1(x)))
        if use_side:
            h = h + self.side(x)
        if self.big is not None:
            h = h + self.big(torch.ones(1, 512)).sum() * 1e-3
        return h


def grads(m):
    def value(n, g):
        if g is None:
            return None
        return [float(g.sum()), g[0].tolist()] if n == "big.weight" else g.tolist()
    return {n: value(n, p.grad) for n, p in m.named_parameters()}


def loss_of(y):
    return (y * y).mean()


x1, x2 = arr(5, 4, seed=100 + R), arr(5, 4, seed=200 + R)

# 1. init sync, buffer broadcast, averaged grads over two buckets, state_dict prefix
m = Net(seed=10 * (R + 1), big=True)
ddp = DDP(m, bucket_cap_mb=0.001, find_unused_parameters=True)
out["init_params"] = {n: p.tolist() for n, p in m.named_parameters() if n != "big.weight"}
out["init_big_sum"] = float(m.big.weight.sum())
m.stat.fill_(float(10 * (R + 1)))  # diverge, then the forward broadcasts rank 0's buffers
loss_of(ddp(x1)).backward()
out["stat_after_forward"] = m.stat.tolist()
out["basic_grads"] = grads(m)
out["state_dict_keys"] = sorted(ddp.state_dict().keys())
out["module_is_module"] = ddp.module is m

# 2. no_sync accumulates locally, the next synced backward averages the sum
m = Net(seed=7, extra=False)
ddp = DDP(m, broadcast_buffers=False)
with ddp.no_sync():
    loss_of(ddp(x1)).backward()
out["no_sync_local_grads"] = grads(m)
loss_of(ddp(x2)).backward()
out["after_sync_grads"] = grads(m)
out["stat_not_broadcast"] = m.stat.tolist()

# 3. nanoGPT's way: toggling require_backward_grad_sync before the forward
m = Net(seed=7, extra=False)
ddp = DDP(m)
ddp.require_backward_grad_sync = False
loss_of(ddp(x1)).backward()
ddp.require_backward_grad_sync = True
loss_of(ddp(x2)).backward()
out["flag_sync_grads"] = grads(m)

# 4. find_unused_parameters with a branch only rank 0 uses; `never` is unused everywhere
m = Net(seed=3)
ddp = DDP(m, find_unused_parameters=True)
for step in range(2):
    ddp.zero_grad(set_to_none=True)
    loss_of(ddp(x1 if step == 0 else x2, use_side=(R == 0))).backward()
out["unused_grads"] = grads(m)

# 5. without find_unused_parameters an unused parameter leaves the reduction unfinished: the next forward raises
m = Net(seed=3)
ddp = DDP(m)
loss_of(ddp(x1)).backward()
try:
    ddp(x2)
    out["unfinished_error"] = None
except RuntimeError as e:
    out["unfinished_error"] = str(e)

# 6. eval under no_grad does not arm the reduction; a training step after it works
m = Net(seed=5, extra=False)
ddp = DDP(m, find_unused_parameters=True)
with torch.no_grad():
    ddp(x1)
loss_of(ddp(x2)).backward()
out["after_eval_grads"] = grads(m)

# 7. communication hooks (register_comm_hook): torch's default hooks, the compress wrappers, noop, and a hook of
#    the program's own that records the buckets it is handed. torch refuses the bf16 hooks by name on a build
#    without CUDA/NCCL, so they run here under other names (the same function bodies).
from torch.distributed.algorithms.ddp_comm_hooks import DDPCommHookType, default_hooks, register_ddp_comm_hook
from torch.distributed.algorithms.ddp_comm_hooks.debugging_hooks import noop_hook


def bf16_hook(state, bucket):
    return default_hooks.bf16_compress_hook(state, bucket)


_bf16_wrapped = default_hooks.bf16_compress_wrapper(default_hooks.allreduce_hook)


def bf16_wrapped_allreduce(state, bucket):
    return _bf16_wrapped(state, bucket)


seen_buckets = []


def recording_hook(state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """Records the bucket; the result is the plain SUM over ranks plus 1 (not DDP's mean)."""
    grads_ = bucket.gradients()
    seen_buckets.append({
        "index": bucket.index(), "is_last": bucket.is_last(), "numel": bucket.buffer().numel(),
        "dtype": str(bucket.buffer().dtype), "shapes": sorted(list(p.shape) for p in bucket.parameters()),
        "views_cover_buffer": sum(g.numel() for g in grads_) == bucket.buffer().numel(),
        "first_grad_equals_param_grad": bool(torch.equal(grads_[0], bucket.parameters()[0].grad)),
        "buffer_sum": float(bucket.buffer().sum())})
    fut = dist.all_reduce(bucket.buffer(), group=state, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0] + 1.0)


hooks = {"allreduce": default_hooks.allreduce_hook, "fp16": default_hooks.fp16_compress_hook, "bf16": bf16_hook,
         "fp16_wrap": default_hooks.fp16_compress_wrapper(default_hooks.allreduce_hook),
         "bf16_wrap": bf16_wrapped_allreduce, "noop": noop_hook, "recording": recording_hook}
out["hook_grads"] = {}
for name, hook in hooks.items():
    m = Net(seed=11, big=(name == "recording"), extra=False)
    ddp = DDP(m, bucket_cap_mb=0.001 if name == "recording" else None)
    ddp.register_comm_hook(dist.group.WORLD if name == "recording" else None, hook)
    loss_of(ddp(x1)).backward()
    if name == "recording":  # a second step sees torch's rebuilt buckets (gradient-ready order, 1 KB caps)
        seen_buckets.append("step 2")
        ddp.zero_grad(set_to_none=True)
        loss_of(ddp(x2)).backward()
    out["hook_grads"][name] = grads(m)
out["hook_buckets"] = seen_buckets
m = Net(seed=11, extra=False)
ddp = DDP(m)
register_ddp_comm_hook(DDPCommHookType.FP16_COMPRESS, ddp)  # the enum's way
loss_of(ddp(x1)).backward()
out["hook_grads"]["enum_fp16"] = grads(m)
errors = {}
for label, hook in (("twice", default_hooks.allreduce_hook), ("not_callable", 3)):
    try:
        ddp.register_comm_hook(None, hook)
        errors[label] = None
    except (RuntimeError, TypeError) as e:
        errors[label] = f"{type(e).__name__}: {e}"
out["hook_errors"] = errors

dist.barrier()
path = os.path.join(os.environ["SHIM_TEST_OUT"], f"{os.environ['SHIM_TEST_TAG']}_rank{R}.json")
with open(path, "w") as f:
    json.dump(out, f)
dist.destroy_process_group()
