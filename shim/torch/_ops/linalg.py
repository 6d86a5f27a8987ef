"""Matrix products: matmul, mm, bmm, baddbmm, addmm, addmv, einsum, outer, dot, mv.

bfloat16 on CPU (emulated, see _tensor): operands are already bfloat16-rounded float32 storage, the product
is computed in float32 and rounded to bfloat16 — MindSpore 2.10 has no bfloat16 MatMul on CPU. On Ascend the
kernel is native."""
from __future__ import annotations

import builtins

import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._tensor import Tensor, unwrap, _cast_storage, _transpose, _norm_dim
from .pointwise import _finish

__all__ = ["matmul", "mm", "bmm", "baddbmm", "addmm", "addmv", "einsum", "outer", "ger", "dot", "mv", "inner"]


def _pair(a, b, name):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{name}(): arguments must be Tensors")
    am, bm = unwrap(a), unwrap(b)
    if a._dt is b._dt:
        return am, bm, a._dt
    raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a._dt.name} != {b._dt.name}"
                       if name != "matmul" else
                       f"expected both arguments of matmul to have the same dtype, got {a._dt} and {b._dt}")


# MindSpore 2.10 on CPU multiplies a transposed (strided) operand by first copying it to row-major order, and that
# copy is slow: x[64, 64] @ w.t() with w [151936, 64] took 5-7x the time of the product itself (measured,
# benchmarks/bench_megatron_shim.py --profile). megatron-core's linear layers do exactly this (`input @ weight.t()`
# forward, `grad_output.t() @ input` for the weight gradient), so a 2-D operand that is a transpose view is handed
# to MatMul in its original layout with the kernel's transpose flag instead. Same kernel, same accumulation order:
# results are bit-identical (checked in tests/shim/test_matmul_fast_paths.py), and MatMul is differentiable.
# workaround "MatMul transposed operand" (shim/torch/_workarounds.py)
_MATMUL_T = {(ta, tb): ops.MatMul(transpose_a=ta, transpose_b=tb) for ta in (False, True) for tb in (False, True)}


def _mat_operand(t, m):
    """(MindSpore matrix, transposed?) for 2-D facade tensor `t` with storage `m`: a view whose last step is a
    transpose gives `m` transposed back (a view of `m` in its source layout) and True."""
    st = t._steps
    if st is not None and st[-1][0] is _transpose:
        return mint.transpose(m, 0, 1), True
    return m, False


def _matmul_2d(a, am, b, bm):
    """[n, k] @ [k, m] for 2-D facade tensors a, b (storages am, bm), using MatMul's transpose flags.

    Raises RuntimeError (torch's message) when the inner dimensions differ."""
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    if a.shape[1] == 0 or a.shape[0] == 0 or b.shape[1] == 0:
        # empty operand: the flagged kernels reject it; torch returns zeros of the result shape. The zeros are
        # tied to both operands (times 0 of their empty sums) so the result records a gradient like torch's.
        z = mint.zeros((a.shape[0], b.shape[1]), dtype=am.dtype)
        return z + (mint.sum(am) + mint.sum(bm)) * 0
    am, ta = _mat_operand(a, am)
    bm, tb = _mat_operand(b, bm)
    if not (ta or tb):
        return mint.matmul(am, bm)
    return _MATMUL_T[ta, tb](am, bm)


def matmul(input, other):
    """torch.matmul: 1-D/2-D/batched with broadcasting; same-dtype operands (torch raises otherwise)."""
    am, bm, dt = _pair(input, other, "matmul")
    na, nb = input.dim(), other.dim()
    if na and nb and input.shape[-1] == 0 and other.shape[0 if nb == 1 else -2] == 0:
        # empty inner dimension: MindSpore's MatMul leaves its output uninitialised; torch gives zeros (tied to
        # both operands so the result records a gradient)
        import numpy as np
        shape = np.matmul(np.empty(tuple(input.shape), np.float32), np.empty(tuple(other.shape), np.float32)).shape
        z = mint.zeros(shape, dtype=am.dtype)
        if not dt.is_floating_point:
            return _finish(z, dt, input)
        # workaround "ReduceSum empty": select 0, don't multiply by it (garbage * 0 can be NaN)
        tie = mint.sum(am) + mint.sum(bm)
        tie = mint.where(mint.zeros((), dtype=ms.bool_), tie, mint.zeros((), dtype=am.dtype))
        return _finish(z + tie, dt, input)
    if nb == 2 and other._steps is not None and na >= 2:
        if na == 2:
            return _finish(_matmul_2d(input, am, other, bm), dt, input)
        bt, tb = _mat_operand(other, bm)
        if tb and input.shape[-1] != 0:
            # [*, n, k] @ w.t(): flatten the leading dims (torch does the same for this case) and multiply once.
            lead = tuple(input.shape[:-1])
            k = input.shape[-1]
            if k != other.shape[0]:
                rows = 1
                for d in lead:
                    rows *= d
                raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and "
                                   f"{other.shape[0]}x{other.shape[1]})")
            r = _MATMUL_T[False, True](am.reshape((-1, k)), bt)
            return _finish(r.reshape(lead + (other.shape[1],)), dt, input)
    if na == 2 and nb == 2 and input._steps is not None:
        return _finish(_matmul_2d(input, am, other, bm), dt, input)
    return _finish(mint.matmul(am, bm), dt, input)


def mm(input, mat2):
    """torch.mm: [n, k] @ [k, m] -> [n, m] (same dtype operands)."""
    am, bm, dt = _pair(input, mat2, "mm")
    if input.dim() != 2 or mat2.dim() != 2:
        raise RuntimeError("mm(): both arguments must be 2-D matrices")
    # workaround "Mm" (shim/torch/_workarounds.py)
    return _finish(_matmul_2d(input, am, mat2, bm), dt, input)  # mint.mm: no CPU kernel


def bmm(input, mat2):
    """torch.bmm: [b, n, k] @ [b, k, m] -> [b, n, m]."""
    am, bm, dt = _pair(input, mat2, "bmm")
    if len(am.shape) != 3 or len(bm.shape) != 3:
        raise RuntimeError("batch1 and batch2 must be 3D tensors")
    return _finish(mint.bmm(am, bm), dt, input)


def _scaled_sum(inp, prod, beta, alpha, dt):
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:
        return prod
    c = unwrap(inp)
    if inp._dt is not dt:
        c = _cast_storage(c, inp._dt, dt)
    return prod + (c if beta == 1 else c * beta)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2) (beta=0 ignores input, as torch)."""
    am, bm, dt = _pair(batch1, batch2, "baddbmm")
    return _finish(_scaled_sum(input, mint.bmm(am, bm), beta, alpha, dt), dt, batch1)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2)."""
    am, bm, dt = _pair(mat1, mat2, "addmm")
    return _finish(_scaled_sum(input, mint.matmul(am, bm), beta, alpha, dt), dt, mat1)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """torch.addmv: beta * input + alpha * (mat @ vec)."""
    am, bm, dt = _pair(mat, vec, "addmv")
    return _finish(_scaled_sum(input, mint.matmul(am, bm), beta, alpha, dt), dt, mat)


def mv(input, vec):
    """torch.mv: [n, m] @ [m] -> [n]."""
    am, bm, dt = _pair(input, vec, "mv")
    return _finish(mint.matmul(am, bm), dt, input)


def dot(input, other):
    """torch.dot: 0-d inner product of two 1-D tensors."""
    am, bm, dt = _pair(input, other, "dot")
    if len(am.shape) != 1 or len(bm.shape) != 1:
        raise RuntimeError(f"1D tensors expected, but got {len(am.shape)}D and {len(bm.shape)}D tensors")
    return _finish(mint.sum(am * bm), dt, input)


def inner(input, other):
    """torch.inner: sum over the last dims of both inputs (a 0-d operand scales the other)."""
    if input.dim() == 0 or other.dim() == 0:
        return input * other
    return matmul(input, other.transpose(-1, -2) if other.dim() > 1 else other)


def outer(input, vec2):
    """torch.outer: [n] x [m] -> [n, m] outer product."""
    am, bm, dt = _pair(input, vec2, "outer")
    return _finish(am.reshape(-1, 1) * bm.reshape(1, -1), dt, input)


ger = outer


# workaround "einsum" (shim/torch/_workarounds.py)
def einsum(equation, *operands):
    """torch.einsum(equation, *operands) (operands may also be passed as one list).

    MindSpore's einsum runs on Ascend only, so the facade contracts itself: each operand is permuted and
    reshaped onto one shared index space, the operands are multiplied with broadcasting and the summed indices
    reduced. Ellipsis ('...') and repeated indices within one operand (diagonals) raise NotImplementedError."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "." in eq:
        raise NotImplementedError("torch.einsum with '...' is not supported by the shim")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum(): {len(terms)} operand subscripts for {len(operands)} operands")
    counts = {}
    for term, op in zip(terms, operands):
        if len(set(term)) != len(term):
            raise NotImplementedError("torch.einsum with a repeated index in one operand is not supported by the shim")
        if len(term) != op.dim():
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term)}) does not match "
                               f"the number of dimensions ({op.dim()}) for operand")
        for ch in term:
            counts[ch] = counts.get(ch, 0) + 1
    if not _ and not rhs:
        rhs = "".join(sorted(ch for ch, n in counts.items() if n == 1))
    order = list(rhs) + [ch for ch in dict.fromkeys("".join(terms)) if ch not in rhs]
    prod = None
    for term, op in zip(terms, operands):
        present = [ch for ch in order if ch in term]
        t = op.permute(*[term.index(ch) for ch in present]) if present else op
        shape = [t.shape[present.index(ch)] if ch in term else 1 for ch in order]
        t = t.reshape(shape)
        prod = t if prod is None else prod * t
    summed = [i for i, ch in enumerate(order) if ch not in rhs]
    if summed:
        from .reduction import sum as _sum
        prod = _sum(prod, tuple(summed))
    return prod if prod.dim() == len(rhs) else prod.reshape([prod.shape[i] for i in range(len(rhs))])


# ---- composites of the facade's ops ------------------------------------------------------------------------


def vdot(input, other):
    """torch.vdot: dot product of two 1-D tensors (no conjugation needed for real dtypes)."""
    return dot(input, other)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """torch.addr: beta * input + alpha * outer(vec1, vec2) (beta = 0 ignores input; bool: or of ands)."""
    o = outer(vec1, vec2)
    if o.dtype is D.bool:
        r = o if alpha else o.logical_and(False)
        return r.logical_or(input) if beta else r
    r = o * alpha if alpha != 1 else o
    if beta == 0:
        return r
    return r + (input if beta == 1 else input * beta)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """torch.addbmm: beta * input + alpha * sum_b(batch1[b] @ batch2[b]) (emulated bfloat16: one rounded addmm
    per batch, in order, as torch's CPU kernel accumulates)."""
    if batch1._dt.emulated:
        from .creation import zeros
        acc = zeros(batch1.shape[1], batch2.shape[2], dtype=batch1.dtype) if beta == 0 else \
            (input * beta).expand(batch1.shape[1], batch2.shape[2])
        for i in range(batch1.shape[0]):
            acc = addmm(acc, batch1[i], batch2[i], alpha=alpha)
        return acc
    p = bmm(batch1, batch2).sum(0)
    if alpha != 1:
        p = p * alpha
    if beta == 0:
        return p
    return p + (input if beta == 1 else input * beta)


def kron(input, other):
    """torch.kron: Kronecker product (ranks aligned by leading ones)."""
    n = builtins.max(input.dim(), other.dim())
    a = input.reshape((1,) * (n - input.dim()) + tuple(input.shape))
    b = other.reshape((1,) * (n - other.dim()) + tuple(other.shape))
    ashape, bshape = [], []
    for i in range(n):
        ashape += [a.shape[i], 1]
        bshape += [1, b.shape[i]]
    out = a.reshape(ashape) * b.reshape(bshape)
    return out.reshape([a.shape[i] * b.shape[i] for i in range(n)])


def tensordot(a, b, dims=2, out=None):
    """torch.tensordot: contract `dims` (an int: the last dims of a with the first of b; or two lists)."""
    if out is not None:
        raise NotImplementedError("torch.tensordot(out=...) is not supported by the shim")
    if isinstance(dims, int):
        da, db = list(range(a.dim() - dims, a.dim())), list(range(dims))
    else:
        da, db = dims
        if isinstance(da, int):
            da, db = [da], [db]
        da = [d % builtins.max(a.dim(), 1) for d in da]
        db = [d % builtins.max(b.dim(), 1) for d in db]
    # contracted dims of size 1 broadcast against the other operand's (as torch's tensordot does)
    ashape, bshape = list(a.shape), list(b.shape)
    for i, j in zip(da, db):
        if ashape[i] == 1 and bshape[j] != 1:
            ashape[i] = bshape[j]
        elif bshape[j] == 1 and ashape[i] != 1:
            bshape[j] = ashape[i]
    if ashape != list(a.shape):
        a = a.expand(*ashape)
    if bshape != list(b.shape):
        b = b.expand(*bshape)
    fa = [i for i in range(a.dim()) if i not in da]
    fb = [i for i in range(b.dim()) if i not in db]
    k = 1
    for d in da:
        k *= a.shape[d]
    am = a.permute(*(fa + list(da))).reshape(-1, k) if a.dim() else a.reshape(1, 1)
    bm = b.permute(*(list(db) + fb)).reshape(k, -1) if b.dim() else b.reshape(1, 1)
    r = matmul(am, bm)
    return r.reshape([a.shape[i] for i in fa] + [b.shape[i] for i in fb])


def block_diag(*tensors):
    """torch.block_diag: the tensors (0-d, 1-d as rows, 2-d) on the diagonal of a zero matrix."""
    from .shape import cat
    from ..nn.functional import pad
    mats = [t.reshape(1, 1) if t.dim() == 0 else t.reshape(1, -1) if t.dim() == 1 else t for t in tensors]
    if not mats:
        raise RuntimeError("torch.block_diag: expected at least one tensor")
    dt = mats[0].dtype
    for m in mats[1:]:
        dt = D.promote_types(dt, m.dtype)
    cols = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        c = m.shape[1]
        rows.append(pad(m.to(dt), (left, cols - left - c)))
        left += c
    return cat(rows, 0)


def cartesian_prod(*tensors):
    """torch.cartesian_prod: all combinations of the 1-D inputs, [N, len(tensors)] (1-D for one input)."""
    from .shape import meshgrid, stack
    if len(tensors) == 1:
        return tensors[0].clone()
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], 1)


def cross(input, other, dim=None):
    """torch.cross: 3-vector cross product along `dim` (default: the first dimension of size 3)."""
    from .shape import stack
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    d = _norm_dim(dim, input.dim())
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got {input.shape[d]} and "
                           f"{other.shape[d]}")
    a = [input.select(d, i) for i in range(3)]
    b = [other.select(d, i) for i in range(3)]
    c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return stack(c, d)


FUNCTIONS = {n: globals()[n] for n in __all__}
FUNCTIONS.update(vdot=vdot, addr=addr, addbmm=addbmm, kron=kron, tensordot=tensordot, block_diag=block_diag,
                 cartesian_prod=cartesian_prod, cross=cross)
def _la(name):
    """torch.<name> of the linear-algebra functions (shim/torch/linalg): served to Tensor methods below."""
    import shim.torch as T  # a cycle inside the facade core: torch.linalg builds on these ops
    return getattr(T, name) if name != "linalg" else T.linalg


METHODS = dict(matmul=matmul, mm=mm, bmm=bmm, baddbmm=baddbmm, addmm=addmm, addmv=addmv, outer=outer, ger=ger,
               dot=dot, mv=mv, inner=inner, __matmul__=matmul, vdot=vdot, addr=addr, addbmm=addbmm, kron=kron,
               cross=cross,
               __rmatmul__=lambda self, other: matmul(other, self),
               baddbmm_=lambda self, b1, b2, *, beta=1, alpha=1: self.copy_(baddbmm(self, b1, b2, beta=beta,
                                                                                    alpha=alpha)),
               addmm_=lambda self, m1, m2, *, beta=1, alpha=1: self.copy_(addmm(self, m1, m2, beta=beta,
                                                                                alpha=alpha)),
               det=lambda self: _la("linalg").det(self),
               inverse=lambda self: _la("linalg").inv(self),
               matrix_power=lambda self, n: _la("linalg").matrix_power(self, n),
               slogdet=lambda self: _la("linalg").slogdet(self),
               logdet=lambda self: _la("logdet")(self),
               matrix_exp=lambda self: _la("matrix_exp")(self),
               cholesky=lambda self, upper=False: _la("cholesky")(self, upper),
               cholesky_solve=lambda self, input2, upper=False: _la("cholesky_solve")(self, input2, upper),
               cholesky_inverse=lambda self, upper=False: _la("cholesky_inverse")(self, upper),
               qr=lambda self, some=True: _la("qr")(self, some),
               svd=lambda self, some=True, compute_uv=True: _la("svd")(self, some, compute_uv),
               lu=lambda self, pivot=True, get_infos=False: _la("lu")(self, pivot, get_infos),
               lu_solve=lambda self, LU_data, LU_pivots: _la("lu_solve")(self, LU_data, LU_pivots),
               pinverse=lambda self, rcond=1e-15: _la("pinverse")(self, rcond),
               triangular_solve=lambda self, A, upper=True, transpose=False, unitriangular=False:
                   _la("triangular_solve")(self, A, upper, transpose, unitriangular),
               geqrf=lambda self: _la("geqrf")(self),
               ormqr=lambda self, input2, input3, left=True, transpose=False:
                   _la("ormqr")(self, input2, input3, left, transpose))
