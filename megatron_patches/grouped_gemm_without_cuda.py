"""Stand-in for `megatron.core.transformer.moe.grouped_gemm_util` where the `grouped_gemm` package is not installed.

Megatron's module wraps the CUDA extension `grouped_gemm` (fanshiqing/grouped_gemm, CUTLASS kernels): its
`ops.gmm` multiplies each expert's rows of the permuted tokens by that expert's weight in one kernel. Megatron's
`GroupedMLP` (the experts of `--moe-grouped-gemm` with `--transformer-impl local`) calls
`assert_grouped_gemm_is_available()` and `ops.gmm(...)`; without the package it stops at the assertion, on a CPU and
on an Ascend NPU alike. This module is served under Megatron's module name instead (see
`registry.register_module_stand_in`) only when `grouped_gemm` cannot be imported. It keeps the module's names:

- `grouped_gemm` is None (the package is absent, as in Megatron's module);
- `grouped_gemm_is_available()` -> True and `assert_grouped_gemm_is_available()` passes: the grouped GEMM *is*
  available, computed by `ops.gmm` below with ordinary torch ops;
- `ops.gmm(a, b, batch_sizes, trans_b=False)`: the grouped GEMM, one matmul per expert (not one fused kernel; the
  numbers are those of the per-expert matmuls, and autograd gives the gradients of `a` and `b`).

`torch` here is whatever serves `import torch` when the function runs: the shim's facade, or real torch under the
CPU reference runner (`qwen_sft.cpu_accelerator`), which serves this stand-in too.
"""
from __future__ import annotations

import types

__all__ = ["grouped_gemm", "grouped_gemm_is_available", "assert_grouped_gemm_is_available", "ops"]

grouped_gemm = None


def grouped_gemm_is_available() -> bool:
    """True: the grouped GEMM is computed by `ops.gmm` (torch ops), see the module docstring."""
    return True


def assert_grouped_gemm_is_available() -> None:
    """Passes: `ops.gmm` is always available here."""
    return None


def gmm(a, b, batch_sizes, trans_b: bool = False):
    """The grouped GEMM of `grouped_gemm.ops.gmm`: rows of `a` in consecutive groups, group i times `b[i]`.

    a: (tokens, k), the rows of all groups in order; b: (groups, k, n), or (groups, n, k) with `trans_b`;
    batch_sizes: 1-D integer tensor (any device) of `groups` row counts summing to `tokens` (a group may be empty).
    Returns (tokens, n) in `a`'s dtype, differentiable in `a` and `b`. Raises ValueError when the shapes or the
    counts do not fit.
    """
    import torch  # the facade or real torch, whichever serves `torch` when called (module docstring)

    if a.dim() != 2 or b.dim() != 3:
        raise ValueError(f"gmm: expected a 2-D `a` and a 3-D `b`, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    sizes = [int(n) for n in batch_sizes.reshape(-1).tolist()]
    k = b.shape[2] if trans_b else b.shape[1]
    if len(sizes) != b.shape[0] or sum(sizes) != a.shape[0] or a.shape[1] != k or min(sizes, default=0) < 0:
        raise ValueError(f"gmm: batch_sizes {sizes} (groups, rows) do not fit a {tuple(a.shape)} and "
                         f"b {tuple(b.shape)} (trans_b={trans_b})")
    pieces = []
    for rows, weight in zip(torch.split(a, sizes, dim=0), b.unbind(0)):
        pieces.append(torch.matmul(rows, weight.t() if trans_b else weight))
    return torch.cat(pieces, dim=0)


ops = types.SimpleNamespace(gmm=gmm)
