"""torch's autocast per-op policy as data: which facade op runs in which dtype under ``torch.autocast``.

Source: torch 2.13's ``aten/src/ATen/autocast_mode.cpp`` registrations, read back from the installed wheel's
dispatcher (``torch._C._dispatch_dump_table(op)`` lists an ``AutocastCPU``/``AutocastCUDA`` kernel for exactly
the ops below) and checked op by op against real torch in ``tests/shim/test_autocast.py`` (CPU directly; CUDA
through FakeTensor "cuda" tensors, which run torch's AutocastCUDA kernels without a GPU). The CPU and CUDA
lists differ: CPU autocast leaves softmax, layer_norm, exp, sum, … alone; CUDA runs them in float32.

Kinds (what the applier in ``autocast_mode`` does with the *eligible* tensor arguments: floating point, on the
autocast's device type, not float64 — torch's ``is_eligible`` rule; other arguments pass unchanged):

- ``LOWER``: cast to the autocast dtype (bfloat16/float16).
- ``FP32``: cast to float32.
- ``FP32_UNLESS_DTYPE``: as FP32, unless the call passes ``dtype=`` (torch's ``fp32_set_opt_dtype``: softmax,
  sum, cumsum, … get ``dtype=float32`` only when the caller gave none; casting the input up instead gives
  the same values since bf16/fp16 -> fp32 is exact).
- ``PROMOTE``: cast to the widest dtype among the autocast dtype and the eligible arguments (torch's
  ``promote``: ``cat([bf16, fp32])`` -> fp32; ``cat([bf16, bf16])`` stays bf16).
- ``BANNED``: raise RuntimeError (CUDA autocast refuses ``binary_cross_entropy``, torch's message).

Composites: torch implements some functions as compositions of listed ops, so autocast acts on their pieces;
the facade computes them in one piece, so their net effect is listed here instead (marked "composite" below,
each checked against real torch): e.g. ``einsum``/``tensordot``/``inner`` on CPU run their inner
``bmm``/``mm`` in low precision, ``cross_entropy`` on CUDA is log_softmax (fp32) + nll_loss (fp32).

Keys are op names as the facade serves them: ``torch.<name>``, ``torch.Tensor.<name>``,
``torch.nn.functional.<name>`` and ``torch.linalg.<name>`` (the applier wraps each place where the name
exists). ``TENSOR_ALIASES`` maps Tensor operator methods onto their op.
"""
from __future__ import annotations

__all__ = ["LOWER", "FP32", "FP32_UNLESS_DTYPE", "PROMOTE", "BANNED", "POLICY", "TENSOR_ALIASES",
           "LINALG_NAMES", "policy_for"]

LOWER = "lower_precision_fp"
FP32 = "fp32"
FP32_UNLESS_DTYPE = "fp32_set_opt_dtype"
PROMOTE = "promote"
BANNED = "banned"

_CONV = ("conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_LOSSES_FP32 = ("cosine_embedding_loss", "nll_loss", "nll_loss2d", "hinge_embedding_loss", "kl_div",
                "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss", "margin_ranking_loss",
                "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
                "poisson_nll_loss", "binary_cross_entropy_with_logits")

_CUDA: dict[str, str] = {}
_CUDA.update(dict.fromkeys(_CONV + (
    "convolution", "prelu", "addmm", "addmv", "addr", "matmul", "einsum", "mm", "mv", "vecdot", "linear",
    "addbmm", "baddbmm", "bmm", "chain_matmul", "multi_dot", "lstm_cell", "gru_cell", "rnn_tanh_cell",
    "rnn_relu_cell", "scaled_dot_product_attention",
), LOWER))
_CUDA.update(dict.fromkeys((
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt",
    "sinh", "tan", "pow", "softplus", "layer_norm", "group_norm", "rms_norm", "cosine_similarity", "dist",
    "pdist", "cdist", "renorm", "logsumexp", "norm", "nuclear_norm", "matrix_norm", "vector_norm",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
    "cross_entropy",  # composite: log_softmax (fp32) + nll_loss (fp32)
    "normalize",  # composite: x / vector_norm(x) (fp32) -> float32
) + _LOSSES_FP32, FP32))
_CUDA.update(dict.fromkeys(("softmax", "log_softmax", "sum", "prod", "cumsum", "cumprod"), FP32_UNLESS_DTYPE))
_CUDA.update(dict.fromkeys(("addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot", "grid_sample",
                            "index_put", "tensordot", "scatter_add",
                            "inner",  # composite: tensordot for ndim > 0
                            ), PROMOTE))
_CUDA["binary_cross_entropy"] = BANNED

_CPU: dict[str, str] = {}
_CPU.update(dict.fromkeys(_CONV + (
    "bmm", "mm", "vecdot", "baddbmm", "addmm", "addbmm", "linear", "matmul", "prelu",
    "scaled_dot_product_attention",
    "einsum", "tensordot", "inner", "chain_matmul", "multi_dot",  # composite: their inner bmm/mm run low
), LOWER))
_CPU.update(dict.fromkeys((
    "binary_cross_entropy", "grid_sample", "polar", "prod", "quantile", "nanquantile", "stft", "cdist",
    "trace", "view_as_complex", "cholesky", "cholesky_inverse", "cholesky_solve", "inverse", "lu_solve",
    "orgqr", "ormqr", "pinverse", "max_pool3d", "max_unpool2d", "max_unpool3d", "adaptive_avg_pool3d",
    "adaptive_max_pool3d", "avg_pool3d", "fractional_max_pool2d", "fractional_max_pool3d", "cross_entropy",
    "ctc_loss", "geqrf", "qr", "svd", "triangular_solve", "inv", "inv_ex", "cholesky_ex", "eig", "eigh",
    "eigvals", "eigvalsh", "householder_product", "lstsq", "matrix_rank", "solve", "svdvals", "tensorinv",
    "tensorsolve", "cond",
) + _LOSSES_FP32, FP32))
_CPU.update(dict.fromkeys(("cat", "concat", "concatenate", "stack", "index_copy"), PROMOTE))

POLICY: dict[str, dict[str, str]] = {"cuda": _CUDA, "cpu": _CPU}

# Tensor operator methods -> the op whose policy they follow (a @ b is aten::matmul, a ** b is aten::pow).
TENSOR_ALIASES: dict[str, str] = {"__matmul__": "matmul", "__rmatmul__": "matmul", "__pow__": "pow",
                                  "__rpow__": "pow"}

# names torch serves under torch.linalg (linalg_vecdot, linalg_multi_dot, linalg_vector_norm, …)
LINALG_NAMES = ("vecdot", "multi_dot", "vector_norm", "matrix_norm", "inv", "inv_ex", "cholesky",
                "cholesky_ex", "eig", "eigh", "eigvals", "eigvalsh", "householder_product", "lstsq",
                "matrix_rank", "solve", "svd", "svdvals", "tensorinv", "tensorsolve", "cond", "qr", "norm")


def policy_for(device_type: str, name: str) -> str | None:
    """The kind (LOWER, FP32, …) op ``name`` has under autocast for ``device_type`` ("cuda"/"cpu"), or None
    when autocast leaves it alone (it then runs in its inputs' dtypes)."""
    return POLICY[device_type].get(name)
