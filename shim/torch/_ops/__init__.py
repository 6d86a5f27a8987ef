"""Facade op implementations, one module per family, and the table that makes them Tensor methods.

Each family module exposes ``FUNCTIONS`` (name -> function served as ``torch.<name>``) and ``METHODS``
(name -> function served as ``torch.Tensor.<name>``). Which of them become ``torch.Tensor`` methods is stated
row by row in `TENSOR_METHODS` below, the one place to look up where a method lives: ``grep '"add_"'`` finds
its family and implementation. `install()` applies the table and checks it against the families.

Methods the Tensor class defines itself (in `_tensor.py`: metadata, conversion, autograd, views, `copy_`,
`zero_`, `fill_`, ...) are not in the table; where a family's METHODS also has such a name, the class's
definition is the one served (the family entry is ignored)."""
from __future__ import annotations

import functools
import inspect

from . import creation, pointwise, reduction, shape, indexing, linalg, special, misc, statistics  # noqa: F401

FAMILIES = (creation, pointwise, reduction, shape, indexing, linalg, special, misc, statistics)

# torch.Tensor.<name>: (family module, implementation). The implementation is the name of that family's
# module-level function (checked by install: METHODS[name] is that function), or, in <angle brackets>, what
# the family's METHODS entry is when it has no name of its own: a generated in-place form (pointwise's
# `_make_inplace`, indexing's `_inplace`: compute out of place, then `_aliasing.assign` into self), a reflected
# operator (`_r`), an augmented-assignment operator (`_iop`), or a one-line adapter lambda written in METHODS.
TENSOR_METHODS = {
    # creation
    "new_zeros":              (creation, "new_zeros"),
    "new_ones":               (creation, "new_ones"),
    "new_empty":              (creation, "new_empty"),
    "new_full":               (creation, "new_full"),
    "new_tensor":             (creation, "new_tensor"),
    "uniform_":               (creation, "uniform_"),
    "normal_":                (creation, "normal_"),
    "random_":                (creation, "random_"),
    "bernoulli_":             (creation, "bernoulli_"),
    "exponential_":           (creation, "exponential_"),
    "cauchy_":                (creation, "cauchy_"),
    "log_normal_":            (creation, "log_normal_"),
    "geometric_":             (creation, "geometric_"),

    # pointwise
    "add":                    (pointwise, "add"),
    "sub":                    (pointwise, "sub"),
    "mul":                    (pointwise, "mul"),
    "div":                    (pointwise, "div"),
    "true_divide":            (pointwise, "true_divide"),
    "floor_divide":           (pointwise, "floor_divide"),
    "remainder":              (pointwise, "remainder"),
    "fmod":                   (pointwise, "fmod"),
    "pow":                    (pointwise, "pow"),
    "atan2":                  (pointwise, "atan2"),
    "maximum":                (pointwise, "maximum"),
    "minimum":                (pointwise, "minimum"),
    "fmax":                   (pointwise, "fmax"),
    "fmin":                   (pointwise, "fmin"),
    "eq":                     (pointwise, "eq"),
    "ne":                     (pointwise, "ne"),
    "lt":                     (pointwise, "lt"),
    "le":                     (pointwise, "le"),
    "gt":                     (pointwise, "gt"),
    "ge":                     (pointwise, "ge"),
    "greater":                (pointwise, "gt"),
    "greater_equal":          (pointwise, "ge"),
    "less":                   (pointwise, "lt"),
    "less_equal":             (pointwise, "le"),
    "not_equal":              (pointwise, "ne"),
    "logical_and":            (pointwise, "logical_and"),
    "logical_or":             (pointwise, "logical_or"),
    "logical_xor":            (pointwise, "logical_xor"),
    "bitwise_and":            (pointwise, "bitwise_and"),
    "bitwise_or":             (pointwise, "bitwise_or"),
    "bitwise_xor":            (pointwise, "bitwise_xor"),
    "lerp":                   (pointwise, "lerp"),
    "addcmul":                (pointwise, "addcmul"),
    "addcdiv":                (pointwise, "addcdiv"),
    "float_power":            (pointwise, "float_power"),
    "subtract":               (pointwise, "sub"),
    "multiply":               (pointwise, "mul"),
    "divide":                 (pointwise, "div"),
    "rsub":                   (pointwise, "rsub"),
    "neg":                    (pointwise, "neg"),
    "negative":               (pointwise, "neg"),
    "abs":                    (pointwise, "abs"),
    "absolute":               (pointwise, "abs"),
    "exp":                    (pointwise, "exp"),
    "exp2":                   (pointwise, "exp2"),
    "expm1":                  (pointwise, "expm1"),
    "log":                    (pointwise, "log"),
    "log2":                   (pointwise, "log2"),
    "log10":                  (pointwise, "log10"),
    "log1p":                  (pointwise, "log1p"),
    "sqrt":                   (pointwise, "sqrt"),
    "rsqrt":                  (pointwise, "rsqrt"),
    "sin":                    (pointwise, "sin"),
    "cos":                    (pointwise, "cos"),
    "tan":                    (pointwise, "tan"),
    "asin":                   (pointwise, "asin"),
    "acos":                   (pointwise, "acos"),
    "atan":                   (pointwise, "atan"),
    "sinh":                   (pointwise, "sinh"),
    "cosh":                   (pointwise, "cosh"),
    "tanh":                   (pointwise, "tanh"),
    "asinh":                  (pointwise, "asinh"),
    "acosh":                  (pointwise, "acosh"),
    "atanh":                  (pointwise, "atanh"),
    "sigmoid":                (pointwise, "sigmoid"),
    "erf":                    (pointwise, "erf"),
    "erfc":                   (pointwise, "erfc"),
    "erfinv":                 (pointwise, "erfinv"),
    "reciprocal":             (pointwise, "reciprocal"),
    "relu":                   (pointwise, "relu"),
    "floor":                  (pointwise, "floor"),
    "ceil":                   (pointwise, "ceil"),
    "trunc":                  (pointwise, "trunc"),
    "fix":                    (pointwise, "trunc"),
    "sign":                   (pointwise, "sign"),
    "sgn":                    (pointwise, "sign"),
    "square":                 (pointwise, "square"),
    "frac":                   (pointwise, "frac"),
    "round":                  (pointwise, "round"),
    "isnan":                  (pointwise, "isnan"),
    "isinf":                  (pointwise, "isinf"),
    "isfinite":               (pointwise, "isfinite"),
    "isposinf":               (pointwise, "isposinf"),
    "isneginf":               (pointwise, "isneginf"),
    "nan_to_num":             (pointwise, "nan_to_num"),
    "logical_not":            (pointwise, "logical_not"),
    "bitwise_not":            (pointwise, "bitwise_not"),
    "clamp":                  (pointwise, "clamp"),
    "clip":                   (pointwise, "clamp"),
    "clamp_min":              (pointwise, "clamp_min"),
    "clamp_max":              (pointwise, "clamp_max"),
    "equal":                  (pointwise, "equal"),
    "allclose":               (pointwise, "allclose"),
    "isclose":                (pointwise, "isclose"),
    "add_":                   (pointwise, "<in-place form of add>"),
    "sub_":                   (pointwise, "<in-place form of sub>"),
    "mul_":                   (pointwise, "<in-place form of mul>"),
    "div_":                   (pointwise, "<in-place form of div>"),
    "true_divide_":           (pointwise, "<in-place form of true_divide>"),
    "floor_divide_":          (pointwise, "<in-place form of floor_divide>"),
    "remainder_":             (pointwise, "<in-place form of remainder>"),
    "fmod_":                  (pointwise, "<in-place form of fmod>"),
    "pow_":                   (pointwise, "<in-place form of pow>"),
    "atan2_":                 (pointwise, "<in-place form of atan2>"),
    "maximum_":               (pointwise, "<in-place form of maximum>"),
    "minimum_":               (pointwise, "<in-place form of minimum>"),
    "fmax_":                  (pointwise, "<in-place form of fmax>"),
    "fmin_":                  (pointwise, "<in-place form of fmin>"),
    "logical_and_":           (pointwise, "<in-place form of logical_and>"),
    "logical_or_":            (pointwise, "<in-place form of logical_or>"),
    "logical_xor_":           (pointwise, "<in-place form of logical_xor>"),
    "bitwise_and_":           (pointwise, "<in-place form of bitwise_and>"),
    "bitwise_or_":            (pointwise, "<in-place form of bitwise_or>"),
    "bitwise_xor_":           (pointwise, "<in-place form of bitwise_xor>"),
    "lerp_":                  (pointwise, "<in-place form of lerp>"),
    "addcmul_":               (pointwise, "<in-place form of addcmul>"),
    "addcdiv_":               (pointwise, "<in-place form of addcdiv>"),
    "float_power_":           (pointwise, "<in-place form of float_power>"),
    "subtract_":              (pointwise, "<in-place form of subtract>"),
    "multiply_":              (pointwise, "<in-place form of multiply>"),
    "divide_":                (pointwise, "<in-place form of divide>"),
    "rsub_":                  (pointwise, "<in-place form of rsub>"),
    "neg_":                   (pointwise, "<in-place form of neg>"),
    "negative_":              (pointwise, "<in-place form of negative>"),
    "abs_":                   (pointwise, "<in-place form of abs>"),
    "absolute_":              (pointwise, "<in-place form of absolute>"),
    "exp_":                   (pointwise, "<in-place form of exp>"),
    "exp2_":                  (pointwise, "<in-place form of exp2>"),
    "expm1_":                 (pointwise, "<in-place form of expm1>"),
    "log_":                   (pointwise, "<in-place form of log>"),
    "log2_":                  (pointwise, "<in-place form of log2>"),
    "log10_":                 (pointwise, "<in-place form of log10>"),
    "log1p_":                 (pointwise, "<in-place form of log1p>"),
    "sqrt_":                  (pointwise, "<in-place form of sqrt>"),
    "rsqrt_":                 (pointwise, "<in-place form of rsqrt>"),
    "sin_":                   (pointwise, "<in-place form of sin>"),
    "cos_":                   (pointwise, "<in-place form of cos>"),
    "tan_":                   (pointwise, "<in-place form of tan>"),
    "asin_":                  (pointwise, "<in-place form of asin>"),
    "acos_":                  (pointwise, "<in-place form of acos>"),
    "atan_":                  (pointwise, "<in-place form of atan>"),
    "sinh_":                  (pointwise, "<in-place form of sinh>"),
    "cosh_":                  (pointwise, "<in-place form of cosh>"),
    "tanh_":                  (pointwise, "<in-place form of tanh>"),
    "asinh_":                 (pointwise, "<in-place form of asinh>"),
    "acosh_":                 (pointwise, "<in-place form of acosh>"),
    "atanh_":                 (pointwise, "<in-place form of atanh>"),
    "sigmoid_":               (pointwise, "<in-place form of sigmoid>"),
    "erf_":                   (pointwise, "<in-place form of erf>"),
    "erfc_":                  (pointwise, "<in-place form of erfc>"),
    "erfinv_":                (pointwise, "<in-place form of erfinv>"),
    "reciprocal_":            (pointwise, "<in-place form of reciprocal>"),
    "relu_":                  (pointwise, "<in-place form of relu>"),
    "floor_":                 (pointwise, "<in-place form of floor>"),
    "ceil_":                  (pointwise, "<in-place form of ceil>"),
    "trunc_":                 (pointwise, "<in-place form of trunc>"),
    "fix_":                   (pointwise, "<in-place form of fix>"),
    "sign_":                  (pointwise, "<in-place form of sign>"),
    "sgn_":                   (pointwise, "<in-place form of sgn>"),
    "square_":                (pointwise, "<in-place form of square>"),
    "frac_":                  (pointwise, "<in-place form of frac>"),
    "round_":                 (pointwise, "<in-place form of round>"),
    "nan_to_num_":            (pointwise, "<in-place form of nan_to_num>"),
    "logical_not_":           (pointwise, "<in-place form of logical_not>"),
    "bitwise_not_":           (pointwise, "<in-place form of bitwise_not>"),
    "clamp_":                 (pointwise, "<in-place form of clamp>"),
    "clip_":                  (pointwise, "<in-place form of clip>"),
    "clamp_min_":             (pointwise, "<in-place form of clamp_min>"),
    "clamp_max_":             (pointwise, "<in-place form of clamp_max>"),
    "__add__":                (pointwise, "add"),
    "__radd__":               (pointwise, "<reflected add: op(other, self)>"),
    "__iadd__":               (pointwise, "<in-place operator: add_>"),
    "__sub__":                (pointwise, "sub"),
    "__rsub__":               (pointwise, "<reflected sub: op(other, self)>"),
    "__isub__":               (pointwise, "<in-place operator: sub_>"),
    "__mul__":                (pointwise, "mul"),
    "__rmul__":               (pointwise, "<reflected mul: op(other, self)>"),
    "__imul__":               (pointwise, "<in-place operator: mul_>"),
    "__truediv__":            (pointwise, "div"),
    "__rtruediv__":           (pointwise, "<reflected div: op(other, self)>"),
    "__itruediv__":           (pointwise, "<in-place operator: div_>"),
    "__div__":                (pointwise, "div"),
    "__rdiv__":               (pointwise, "<reflected div: op(other, self)>"),
    "__idiv__":               (pointwise, "<in-place operator: div_>"),
    "__floordiv__":           (pointwise, "floor_divide"),
    "__rfloordiv__":          (pointwise, "<reflected floor_divide: op(other, self)>"),
    "__ifloordiv__":          (pointwise, "<in-place operator: floor_divide_>"),
    "__mod__":                (pointwise, "remainder"),
    "__rmod__":               (pointwise, "<reflected remainder: op(other, self)>"),
    "__imod__":               (pointwise, "<in-place operator: remainder_>"),
    "__pow__":                (pointwise, "pow"),
    "__rpow__":               (pointwise, "<reflected pow: op(other, self)>"),
    "__ipow__":               (pointwise, "<in-place operator: pow_>"),
    "__neg__":                (pointwise, "neg"),
    "__abs__":                (pointwise, "abs"),
    "__pos__":                (pointwise, "<adapter lambda in METHODS>"),
    "__invert__":             (pointwise, "bitwise_not"),
    "__and__":                (pointwise, "bitwise_and"),
    "__rand__":               (pointwise, "<reflected bitwise_and: op(other, self)>"),
    "__iand__":               (pointwise, "<in-place operator: bitwise_and_>"),
    "__or__":                 (pointwise, "bitwise_or"),
    "__ror__":                (pointwise, "<reflected bitwise_or: op(other, self)>"),
    "__ior__":                (pointwise, "<in-place operator: bitwise_or_>"),
    "__xor__":                (pointwise, "bitwise_xor"),
    "__rxor__":               (pointwise, "<reflected bitwise_xor: op(other, self)>"),
    "__ixor__":               (pointwise, "<in-place operator: bitwise_xor_>"),
    "__eq__":                 (pointwise, "<adapter lambda in METHODS>"),
    "__ne__":                 (pointwise, "<adapter lambda in METHODS>"),
    "__lt__":                 (pointwise, "lt"),
    "__le__":                 (pointwise, "le"),
    "__gt__":                 (pointwise, "gt"),
    "__ge__":                 (pointwise, "ge"),

    # reduction
    "sum":                    (reduction, "sum"),
    "nansum":                 (reduction, "nansum"),
    "mean":                   (reduction, "mean"),
    "nanmean":                (reduction, "nanmean"),
    "prod":                   (reduction, "prod"),
    "max":                    (reduction, "<adapter lambda in METHODS>"),
    "min":                    (reduction, "<adapter lambda in METHODS>"),
    "amax":                   (reduction, "amax"),
    "amin":                   (reduction, "amin"),
    "aminmax":                (reduction, "aminmax"),
    "argmax":                 (reduction, "argmax"),
    "argmin":                 (reduction, "argmin"),
    "topk":                   (reduction, "topk"),
    "sort":                   (reduction, "sort"),
    "argsort":                (reduction, "argsort"),
    "cumsum":                 (reduction, "cumsum"),
    "cumprod":                (reduction, "cumprod"),
    "softmax":                (reduction, "softmax"),
    "log_softmax":            (reduction, "log_softmax"),
    "logsumexp":              (reduction, "logsumexp"),
    "var":                    (reduction, "var"),
    "std":                    (reduction, "std"),
    "var_mean":               (reduction, "var_mean"),
    "std_mean":               (reduction, "std_mean"),
    "norm":                   (reduction, "norm"),
    "dist":                   (reduction, "dist"),
    "all":                    (reduction, "all"),
    "any":                    (reduction, "any"),
    "count_nonzero":          (reduction, "count_nonzero"),
    "median":                 (reduction, "median"),
    "cumsum_":                (reduction, "<adapter lambda in METHODS>"),

    # shape
    "tril":                   (shape, "tril"),
    "triu":                   (shape, "triu"),
    "clone":                  (shape, "clone"),
    "flip":                   (shape, "flip"),
    "roll":                   (shape, "roll"),
    "repeat":                 (shape, "repeat"),
    "tile":                   (shape, "tile"),
    "repeat_interleave":      (shape, "repeat_interleave"),
    "movedim":                (shape, "movedim"),
    "moveaxis":               (shape, "movedim"),
    "diag":                   (shape, "diag"),
    "diagonal":               (shape, "diagonal"),
    "broadcast_to":           (shape, "broadcast_to"),
    "tril_":                  (shape, "<adapter lambda in METHODS>"),
    "triu_":                  (shape, "<adapter lambda in METHODS>"),

    # indexing
    "gather":                 (indexing, "gather"),
    "scatter":                (indexing, "scatter"),
    "scatter_add":            (indexing, "scatter_add"),
    "index_select":           (indexing, "index_select"),
    "masked_select":          (indexing, "masked_select"),
    "masked_fill":            (indexing, "masked_fill"),
    "nonzero":                (indexing, "nonzero"),
    "take_along_dim":         (indexing, "take_along_dim"),
    "index_add":              (indexing, "index_add"),
    "index_copy":             (indexing, "index_copy"),
    "index_fill":             (indexing, "index_fill"),
    "argwhere":               (indexing, "argwhere"),
    "where":                  (indexing, "<adapter lambda in METHODS>"),
    "masked_fill_":           (indexing, "<in-place form of masked_fill>"),
    "scatter_":               (indexing, "<in-place form of scatter>"),
    "scatter_add_":           (indexing, "<in-place form of scatter_add>"),
    "index_add_":             (indexing, "<in-place form of index_add>"),
    "index_copy_":            (indexing, "<in-place form of index_copy>"),
    "index_fill_":            (indexing, "<in-place form of index_fill>"),

    # linalg
    "matmul":                 (linalg, "matmul"),
    "mm":                     (linalg, "mm"),
    "bmm":                    (linalg, "bmm"),
    "baddbmm":                (linalg, "baddbmm"),
    "addmm":                  (linalg, "addmm"),
    "addmv":                  (linalg, "addmv"),
    "outer":                  (linalg, "outer"),
    "ger":                    (linalg, "outer"),
    "dot":                    (linalg, "dot"),
    "mv":                     (linalg, "mv"),
    "inner":                  (linalg, "inner"),
    "__matmul__":             (linalg, "matmul"),
    "__rmatmul__":            (linalg, "<adapter lambda in METHODS>"),
    "baddbmm_":               (linalg, "<adapter lambda in METHODS>"),
    "addmm_":                 (linalg, "<adapter lambda in METHODS>"),
    "det":                    (linalg, "<adapter lambda in METHODS>"),
    "inverse":                (linalg, "<adapter lambda in METHODS>"),
    "matrix_power":           (linalg, "<adapter lambda in METHODS>"),
    "slogdet":                (linalg, "<adapter lambda in METHODS>"),
    "logdet":                 (linalg, "<adapter lambda in METHODS>"),
    "matrix_exp":             (linalg, "<adapter lambda in METHODS>"),
    "cholesky":               (linalg, "<adapter lambda in METHODS>"),
    "cholesky_solve":         (linalg, "<adapter lambda in METHODS>"),
    "cholesky_inverse":       (linalg, "<adapter lambda in METHODS>"),
    "qr":                     (linalg, "<adapter lambda in METHODS>"),
    "svd":                    (linalg, "<adapter lambda in METHODS>"),
    "lu":                     (linalg, "<adapter lambda in METHODS>"),
    "lu_solve":               (linalg, "<adapter lambda in METHODS>"),
    "pinverse":               (linalg, "<adapter lambda in METHODS>"),
    "triangular_solve":       (linalg, "<adapter lambda in METHODS>"),
    "geqrf":                  (linalg, "<adapter lambda in METHODS>"),
    "ormqr":                  (linalg, "<adapter lambda in METHODS>"),

    # pointwise (added with the OpInfo work)
    "positive":               (pointwise, "positive"),
    "deg2rad":                (pointwise, "deg2rad"),
    "rad2deg":                (pointwise, "rad2deg"),
    "signbit":                (pointwise, "signbit"),
    "copysign":               (pointwise, "copysign"),
    "logaddexp":              (pointwise, "logaddexp"),
    "logaddexp2":             (pointwise, "logaddexp2"),
    "ldexp":                  (pointwise, "ldexp"),
    "hypot":                  (pointwise, "hypot"),
    "heaviside":              (pointwise, "heaviside"),
    "xlogy":                  (pointwise, "xlogy"),
    "sinc":                   (pointwise, "sinc"),
    "logit":                  (pointwise, "logit"),
    "lgamma":                 (pointwise, "lgamma"),
    "digamma":                (pointwise, "digamma"),
    "i0":                     (pointwise, "i0"),
    "conj":                   (pointwise, "conj"),
    "resolve_conj":           (pointwise, "resolve_conj"),
    "resolve_neg":            (pointwise, "resolve_neg"),
    "real":                   (pointwise, "real"),
    "conj_physical":          (pointwise, "conj_physical"),
    "isreal":                 (pointwise, "isreal"),
    "angle":                  (pointwise, "angle"),
    "deg2rad_":               (pointwise, "<in-place form of deg2rad>"),
    "rad2deg_":               (pointwise, "<in-place form of rad2deg>"),
    "copysign_":              (pointwise, "<in-place form of copysign>"),
    "ldexp_":                 (pointwise, "<in-place form of ldexp>"),
    "hypot_":                 (pointwise, "<in-place form of hypot>"),
    "xlogy_":                 (pointwise, "<in-place form of xlogy>"),
    "sinc_":                  (pointwise, "<in-place form of sinc>"),
    "logit_":                 (pointwise, "<in-place form of logit>"),
    "lgamma_":                (pointwise, "<in-place form of lgamma>"),
    "digamma_":               (pointwise, "<in-place form of digamma>"),
    "i0_":                    (pointwise, "<in-place form of i0>"),
    "conj_physical_":         (pointwise, "<in-place form of conj_physical>"),
    # reduction (added with the OpInfo work)
    "cummax":                 (reduction, "cummax"),
    "cummin":                 (reduction, "cummin"),
    "logcumsumexp":           (reduction, "logcumsumexp"),
    "kthvalue":               (reduction, "kthvalue"),
    "trapezoid":              (reduction, "trapezoid"),
    "trapz":                  (reduction, "trapz"),
    "cumulative_trapezoid":   (reduction, "cumulative_trapezoid"),
    # shape (added with the OpInfo work)
    "ravel":                  (shape, "ravel"),
    "fliplr":                 (shape, "fliplr"),
    "flipud":                 (shape, "flipud"),
    "rot90":                  (shape, "rot90"),
    "hsplit":                 (shape, "hsplit"),
    "vsplit":                 (shape, "vsplit"),
    "dsplit":                 (shape, "dsplit"),
    "unsafe_chunk":           (shape, "unsafe_chunk"),
    "unsafe_split":           (shape, "unsafe_split"),
    "trace":                  (shape, "trace"),
    "msort":                  (shape, "msort"),
    "diff":                   (shape, "diff"),
    "diag_embed":             (shape, "diag_embed"),
    "diagflat":               (shape, "diagflat"),
    "select_scatter":         (shape, "select_scatter"),
    "slice_scatter":          (shape, "slice_scatter"),
    # linalg (added with the OpInfo work)
    "vdot":                   (linalg, "vdot"),
    "addr":                   (linalg, "addr"),
    "addbmm":                 (linalg, "addbmm"),
    "kron":                   (linalg, "kron"),
    "cross":                  (linalg, "cross"),

    # special
    "polygamma":              (special, "<lambda: polygamma(n, self)>"),
    "mvlgamma":               (special, "mvlgamma"),
    "igamma":                 (special, "igamma"),
    "igammac":                (special, "igammac"),
    "frexp":                  (special, "frexp"),
    "nextafter":              (special, "nextafter"),

    # misc (structural ops composed for the OpInfo catalogue)
    "H":                      (misc, "<property H>"),
    "mH":                     (misc, "<property mH>"),
    "sum_to_size":            (misc, "sum_to_size"),
    "take":                   (misc, "take"),
    "put":                    (misc, "put"),
    "diagonal_scatter":       (misc, "diagonal_scatter"),
    "unfold":                 (misc, "unfold"),
    "renorm":                 (misc, "renorm"),
    "new_empty_strided":      (misc, "new_empty_strided"),

    # statistics
    "cov":                    (statistics, "cov"),
    "corrcoef":               (statistics, "corrcoef"),
    "unique":                 (statistics, "unique"),
    "unique_consecutive":     (statistics, "unique_consecutive"),
    "histc":                  (statistics, "histc"),
    "histogram":              (statistics, "histogram"),
    "quantile":               (statistics, "quantile"),
    "nanquantile":            (statistics, "nanquantile"),
    "nanmedian":              (statistics, "nanmedian"),
}


# NumPy's keyword names torch's argument parser also accepts (python_arg_parser.cpp's numpy compatibility names),
# NumPy name -> torch name: `x.sum(axis=1)`, `x.mean(axis=0, keepdims=True)`, `torch.cat(ts, axis=0)`. Applied by
# `accept_numpy_names` to every function and method of the families that takes the torch name.
NUMPY_ARG_NAMES = {"axis": "dim", "keepdims": "keepdim"}


def accept_numpy_names(fn):
    """`fn` also taking NUMPY_ARG_NAMES' NumPy keywords when it has a parameter of the torch name (or **kwargs);
    otherwise `fn` itself. Giving both names (`dim=` and `axis=`) is a TypeError naming both, as in torch."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    takes = {np_name: name for np_name, name in NUMPY_ARG_NAMES.items()
             if name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())}
    if not takes or any(np_name in params for np_name in takes):
        return fn

    @functools.wraps(fn)
    def with_numpy_names(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            for np_name, name in takes.items():
                if np_name in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got both '{name}' and its alias '{np_name}'")
                    kwargs[name] = kwargs.pop(np_name)
        return fn(*args, **kwargs)

    return with_numpy_names


def install(tensor_cls) -> None:
    """Attach every `TENSOR_METHODS` row to `tensor_cls` (the family's METHODS entry of that name).

    Raises RuntimeError when the table and the families disagree: a row whose family has no such METHODS entry,
    a row naming a method the class defines itself, a row whose named implementation is not the family's
    entry, or a family METHODS entry with neither a row nor a class definition (add its row)."""
    errors = []
    for name, (fam, impl) in TENSOR_METHODS.items():
        fn = fam.METHODS.get(name)
        if fn is None:
            errors.append(f"{name}: no METHODS entry in {fam.__name__}")
        elif name in tensor_cls.__dict__:
            errors.append(f"{name}: defined by the Tensor class itself; remove the row")
        elif not impl.startswith("<") and getattr(fam, impl, None) is not fn:
            errors.append(f"{name}: {fam.__name__}.METHODS[{name!r}] is not {fam.__name__}.{impl}")
    for fam in FAMILIES:
        for name in fam.METHODS:
            if name not in TENSOR_METHODS and name not in tensor_cls.__dict__:
                errors.append(f"{name}: in {fam.__name__}.METHODS but has no TENSOR_METHODS row")
    if errors:
        raise RuntimeError("shim.torch._ops.TENSOR_METHODS disagrees with the op families:\n  " +
                           "\n  ".join(errors))
    for name, (fam, _) in TENSOR_METHODS.items():
        setattr(tensor_cls, name, accept_numpy_names(fam.METHODS[name]))


def functions() -> dict:
    """All torch.<name> functions implemented by the families."""
    out = {}
    for fam in FAMILIES:
        out.update({name: accept_numpy_names(fn) for name, fn in getattr(fam, "FUNCTIONS", {}).items()})
    return out
