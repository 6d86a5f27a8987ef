"""Op parity of the Tensor facade against real torch: creation-independent ops on random inputs, forward and
backward (see tests/helpers/op_parity.py). Prints how many torch APIs the table covers."""
from __future__ import annotations

import pytest

import numpy as np

from tests.helpers.op_parity import B, Case, F, I, V, case_id, covered_apis, run_case

P = dict(lo=0.1, hi=2.0)  # positive inputs (log, sqrt, pow bases …)


def _ip(api, fn, inputs, **kw):
    return Case(api, fn, inputs, inplace=True, grad=False, **kw)


CASES = [
    # ---- arithmetic and promotion
    Case("torch.add", lambda T, a, b: T.add(a, b, alpha=2), [F(3, 4), F(3, 4)]),
    Case("Tensor.__add__", lambda T, a, b: a + b, [F(3, 4), F(4)], note="broadcast"),
    Case("Tensor.__radd__", lambda T, a: 2.5 + a, [F(3)]),
    Case("Tensor.__add__", lambda T, a: a + 1, [I(3, 4)], note="int+int scalar"),
    Case("Tensor.__add__", lambda T, a: a + 1.5, [I(3, 4)], note="int+float scalar->float32"),
    Case("Tensor.__add__", lambda T, a, b: a + b, [I(3, dtype="int32"), I(3)], note="int32+int64"),
    Case("Tensor.__add__", lambda T, a, b: a + b, [F(3), F(dtype="float64", grad=False)],
         note="0-dim float64 does not promote"),
    Case("Tensor.__add__", lambda T, a, b: a + b, [F(3, dtype="float16", grad=False), F(3)], note="f16+f32"),
    Case("Tensor.__add__", lambda T, a, b: a + b, [B(3), B(3)], note="bool+bool"),
    Case("torch.sub", lambda T, a, b: T.sub(a, b, alpha=0.5), [F(2, 3), F(2, 3)]),
    Case("Tensor.__rsub__", lambda T, a: 1 - a, [F(5)]),
    Case("torch.mul", lambda T, a, b: T.mul(a, b), [F(2, 3), F(2, 1)]),
    Case("Tensor.__mul__", lambda T, a: a * 3, [I(4)]),
    Case("Tensor.__rmul__", lambda T, a: 0.5 * a, [F(2, 2)]),
    Case("torch.div", lambda T, a, b: T.div(a, b), [F(3, 3), F(3, 3, **P)]),
    Case("torch.div", lambda T, a, b: T.div(a, b), [I(5, lo=-9, hi=9), I(5, lo=1, hi=4)], note="int true div"),
    Case("torch.div", lambda T, a, b: T.div(a, b, rounding_mode="floor"), [I(6, lo=-9, hi=9), I(6, lo=1, hi=4)],
         grad=False, note="floor int"),
    Case("torch.div", lambda T, a, b: T.div(a, b, rounding_mode="trunc"), [F(6), F(6, **P)], grad=False,
         note="trunc float"),
    Case("Tensor.__truediv__", lambda T, a: a / 4, [F(3)]),
    Case("Tensor.__rtruediv__", lambda T, a: 1 / a, [F(3, **P)]),
    Case("torch.floor_divide", lambda T, a: T.floor_divide(a, 3), [I(6, lo=-9, hi=9)], grad=False),
    Case("torch.remainder", lambda T, a: T.remainder(a, 3), [I(6, lo=-9, hi=9)], grad=False),
    Case("torch.pow", lambda T, a: T.pow(a, 3), [F(4)]),
    Case("torch.pow", lambda T, a, b: T.pow(a, b), [F(4, **P), F(4)], note="tensor exponent"),
    Case("Tensor.__pow__", lambda T, a: a ** 0.5, [F(4, **P)]),
    Case("Tensor.__pow__", lambda T, a: a ** 2, [I(4)], note="int**2"),
    Case("Tensor.__rpow__", lambda T, a: 2 ** a, [F(4)]),
    Case("torch.neg", lambda T, a: T.neg(a), [F(3)]),
    Case("Tensor.__neg__", lambda T, a: -a, [I(3)]),
    Case("torch.abs", lambda T, a: T.abs(a), [F(5)]),
    Case("torch.exp", lambda T, a: T.exp(a), [F(5)]),
    Case("torch.exp", lambda T, a: T.exp(a), [I(3, hi=4)], note="int->float"),
    Case("torch.log", lambda T, a: T.log(a), [F(5, **P)]),
    Case("torch.log1p", lambda T, a: T.log1p(a), [F(5, **P)]),
    Case("torch.sqrt", lambda T, a: T.sqrt(a), [F(5, **P)]),
    Case("torch.rsqrt", lambda T, a: T.rsqrt(a), [F(5, **P)]),
    Case("torch.tanh", lambda T, a: T.tanh(a), [F(5)]),
    Case("torch.sigmoid", lambda T, a: T.sigmoid(a), [F(5)]),
    Case("torch.sin", lambda T, a: T.sin(a), [F(5)]),
    Case("torch.cos", lambda T, a: T.cos(a), [F(5)]),
    Case("torch.erf", lambda T, a: T.erf(a), [F(5)]),
    Case("torch.reciprocal", lambda T, a: T.reciprocal(a), [F(5, **P)]),
    Case("torch.square", lambda T, a: T.square(a), [F(5)]),
    Case("torch.floor", lambda T, a: T.floor(a), [F(5)], grad=False),
    Case("torch.ceil", lambda T, a: T.ceil(a), [F(5)], grad=False),
    Case("torch.round", lambda T, a: T.round(a), [F(5)], grad=False),
    Case("torch.sign", lambda T, a: T.sign(a), [F(5)], grad=False),
    Case("torch.relu", lambda T, a: T.relu(a), [F(6)]),
    Case("torch.clamp", lambda T, a: T.clamp(a, -0.5, 0.5), [F(6)]),
    Case("torch.clamp", lambda T, a: T.clamp(a, min=0), [F(6)], note="min only"),
    Case("torch.clamp", lambda T, a, lo: T.clamp(a, min=lo), [F(6), F(6)], note="tensor min"),
    Case("torch.clamp", lambda T, a: T.clamp(a, max=3), [I(6)], note="int"),
    Case("torch.maximum", lambda T, a, b: T.maximum(a, b), [F(4), F(4)]),
    Case("torch.minimum", lambda T, a, b: T.minimum(a, b), [F(4), F(4)]),
    Case("torch.where", lambda T, c, a, b: T.where(c, a, b), [B(3, 4), F(3, 4), F(3, 4)]),
    Case("torch.where", lambda T, c, a: T.where(c, a, 0.0), [B(3, 4), F(3, 4)], note="scalar other"),
    Case("torch.masked_fill", lambda T, a, m: a.masked_fill(m, -1e4), [F(3, 4), B(3, 4)]),
    Case("torch.masked_fill", lambda T, a, m: a.masked_fill(m, float("-inf")), [F(2, 4), B(1, 4)],
         note="broadcast mask -inf"),
    Case("torch.lerp", lambda T, a, b: T.lerp(a, b, 0.3), [F(4), F(4)]),
    Case("torch.addcmul", lambda T, a, b, c: T.addcmul(a, b, c, value=0.5), [F(4), F(4), F(4)]),
    Case("torch.addcdiv", lambda T, a, b, c: T.addcdiv(a, b, c, value=0.5), [F(4), F(4), F(4, **P)]),
    # ---- comparisons and logic
    Case("torch.eq", lambda T, a, b: T.eq(a, b), [I(6, hi=3), I(6, hi=3)], grad=False),
    Case("Tensor.__ne__", lambda T, a: a != 1, [I(6, hi=3)], grad=False),
    Case("Tensor.__lt__", lambda T, a, b: a < b, [F(6), F(6)], grad=False),
    Case("Tensor.__le__", lambda T, a: a <= 0.5, [F(6)], grad=False),
    Case("Tensor.__gt__", lambda T, a: a > 0, [F(6)], grad=False),
    Case("Tensor.__ge__", lambda T, a, b: a >= b, [I(6), F(6, grad=False)], grad=False, note="int vs float"),
    Case("torch.logical_and", lambda T, a, b: T.logical_and(a, b), [B(5), B(5)], grad=False),
    Case("torch.logical_or", lambda T, a, b: a | b, [B(5), B(5)], grad=False, extra_apis=["Tensor.__or__"]),
    Case("torch.logical_not", lambda T, a: ~a, [B(5)], grad=False, extra_apis=["Tensor.__invert__"]),
    Case("Tensor.__and__", lambda T, a, b: a & b, [B(5), B(5)], grad=False),
    Case("torch.isfinite", lambda T, a: T.isfinite(a / (a > 0).float()), [F(6, grad=False)], grad=False),
    Case("torch.isnan", lambda T, a: T.isnan(T.log(a)), [F(6, grad=False)], grad=False),
    Case("torch.isinf", lambda T, a: T.isinf(1 / (a > 0).float()), [F(6, grad=False)], grad=False),
    Case("torch.equal", lambda T, a: T.equal(a, a.clone()), [F(3)], grad=False),
    Case("torch.allclose", lambda T, a: T.allclose(a, a + 1e-9), [F(3)], grad=False),
    # ---- reductions
    Case("torch.sum", lambda T, a: T.sum(a), [F(3, 4)]),
    Case("torch.sum", lambda T, a: a.sum(dim=1, keepdim=True), [F(3, 4)], note="dim keepdim"),
    Case("torch.sum", lambda T, a: a.sum((0, 2)), [F(2, 3, 4)], note="dims"),
    Case("torch.sum", lambda T, a: a.sum(), [I(3, 4, dtype="int32")], note="int32->int64"),
    Case("torch.sum", lambda T, a: a.sum(), [B(7)], note="bool->int64"),
    Case("torch.sum", lambda T, a: a.sum(-1, dtype=T.float64), [F(3, 4)], note="dtype"),
    Case("torch.mean", lambda T, a: T.mean(a), [F(3, 4)]),
    Case("torch.mean", lambda T, a: a.mean(-1, keepdim=True), [F(3, 4)], note="dim"),
    Case("torch.prod", lambda T, a: T.prod(a, 1), [F(3, 4)]),
    Case("torch.max", lambda T, a: T.max(a), [F(3, 4)], grad=False),
    Case("torch.max", lambda T, a: T.max(a, dim=1), [F(3, 4)], note="dim"),
    Case("torch.max", lambda T, a, b: T.max(a, b), [F(3, 4), F(3, 4)], note="binary"),
    Case("torch.min", lambda T, a: a.min(0, keepdim=True), [F(3, 4)]),
    Case("torch.amax", lambda T, a: T.amax(a, dim=(0, 1)), [F(3, 4, 2)]),
    Case("torch.amin", lambda T, a: T.amin(a, dim=-1), [F(3, 4)]),
    Case("torch.argmax", lambda T, a: T.argmax(a, dim=1), [F(3, 4)], grad=False),
    Case("torch.argmax", lambda T, a: a.argmax(), [F(3, 4)], grad=False, note="flat"),
    Case("torch.argmin", lambda T, a: a.argmin(-1), [F(3, 4)], grad=False),
    Case("torch.topk", lambda T, a: T.topk(a, 2, dim=-1), [F(3, 5)]),
    Case("torch.topk", lambda T, a: a.topk(2, dim=0, largest=False), [F(4, 3)], note="smallest"),
    Case("torch.sort", lambda T, a: T.sort(a, dim=-1, descending=True), [F(3, 5)]),
    Case("torch.argsort", lambda T, a: T.argsort(a, dim=0), [F(5, 3)], grad=False),
    Case("torch.cumsum", lambda T, a: T.cumsum(a, dim=1), [F(3, 5)]),
    Case("torch.cumsum", lambda T, a: a.cumsum(0), [I(5)], note="int64"),
    Case("torch.softmax", lambda T, a: T.softmax(a, dim=-1), [F(3, 5)]),
    Case("Tensor.softmax", lambda T, a: a.softmax(0), [F(3, 5)]),
    Case("torch.log_softmax", lambda T, a: T.log_softmax(a, dim=-1), [F(3, 5)]),
    Case("torch.logsumexp", lambda T, a: T.logsumexp(a, dim=-1), [F(3, 5)]),
    Case("torch.var", lambda T, a: T.var(a, dim=1), [F(3, 5)]),
    Case("torch.var", lambda T, a: a.var(unbiased=False), [F(3, 5)], note="biased all"),
    Case("torch.std", lambda T, a: T.std(a, dim=0, keepdim=True), [F(4, 3)]),
    Case("torch.norm", lambda T, a: T.norm(a), [F(3, 4)]),
    Case("torch.norm", lambda T, a: a.norm(p=2, dim=-1), [F(3, 4)], note="dim"),
    Case("torch.norm", lambda T, a: a.norm(p=1), [F(3, 4)], note="p=1"),
    Case("torch.all", lambda T, a: T.all(a), [B(4, p=0.9)], grad=False),
    Case("torch.all", lambda T, a: a.all(dim=1), [B(3, 4, p=0.8)], grad=False, note="dim"),
    Case("torch.any", lambda T, a: T.any(a > 1.0), [F(6, grad=False)], grad=False),
    Case("torch.any", lambda T, a: a.any(-1), [B(3, 4, p=0.2)], grad=False, note="dim"),
    # ---- linear algebra
    Case("torch.matmul", lambda T, a, b: T.matmul(a, b), [F(3, 4), F(4, 5)]),
    Case("torch.matmul", lambda T, a, b: a @ b, [F(2, 3, 4), F(4, 5)], note="batched broadcast",
         extra_apis=["Tensor.__matmul__"]),
    Case("torch.matmul", lambda T, a, b: a @ b, [F(4), F(4, 2)], note="vec@mat"),
    Case("torch.mm", lambda T, a, b: T.mm(a, b), [F(3, 4), F(4, 2)]),
    Case("torch.bmm", lambda T, a, b: T.bmm(a, b), [F(2, 3, 4), F(2, 4, 5)]),
    Case("torch.baddbmm", lambda T, c, a, b: T.baddbmm(c, a, b, beta=0.5, alpha=2.0),
         [F(2, 3, 5), F(2, 3, 4), F(2, 4, 5)]),
    Case("torch.baddbmm", lambda T, c, a, b: T.baddbmm(c, a, b, beta=0.0, alpha=0.25),
         [F(2, 3, 5, grad=False), F(2, 3, 4), F(2, 4, 5)], note="beta=0"),
    Case("torch.addmm", lambda T, c, a, b: T.addmm(c, a, b), [F(5), F(3, 4), F(4, 5)]),
    Case("torch.einsum", lambda T, a, b: T.einsum("bij,bjk->bik", a, b), [F(2, 3, 4), F(2, 4, 5)]),
    Case("torch.einsum", lambda T, a: T.einsum("ij->ji", a), [F(3, 4)], note="transpose"),
    Case("torch.outer", lambda T, a, b: T.outer(a, b), [F(3), F(4)]),
    Case("torch.matmul", lambda T, a, b: a @ b, [F(3, 4, dtype="bfloat16"), F(4, 5, dtype="bfloat16")],
         note="bf16 emulated"),
    # ---- shape ops and views
    Case("Tensor.view", lambda T, a: a.view(4, 3), [F(3, 4)]),
    Case("Tensor.view", lambda T, a: a.view(-1), [F(3, 4)], note="-1"),
    Case("Tensor.reshape", lambda T, a: a.t().reshape(12), [F(3, 4)], note="non-contiguous copy"),
    Case("Tensor.permute", lambda T, a: a.permute(2, 0, 1), [F(2, 3, 4)]),
    Case("Tensor.transpose", lambda T, a: a.transpose(0, 2), [F(2, 3, 4)]),
    Case("Tensor.t", lambda T, a: a.t(), [F(2, 3)]),
    Case("Tensor.T", lambda T, a: a.T, [F(2, 3)]),
    Case("Tensor.contiguous", lambda T, a: a.t().contiguous(), [F(2, 3)]),
    Case("Tensor.expand", lambda T, a: a.expand(3, 2, 4), [F(2, 1)]),
    Case("Tensor.expand_as", lambda T, a, b: a.expand_as(b), [F(1, 4), F(3, 4, grad=False)]),
    Case("Tensor.repeat", lambda T, a: a.repeat(2, 3), [F(2, 2)]),
    Case("Tensor.repeat", lambda T, a: a.repeat(2, 1, 1), [F(2, 2)], note="new dim"),
    Case("Tensor.flatten", lambda T, a: a.flatten(1), [F(2, 3, 4)]),
    Case("Tensor.unflatten", lambda T, a: a.unflatten(1, (2, 2)), [F(3, 4)]),
    Case("Tensor.squeeze", lambda T, a: a.squeeze(), [F(1, 3, 1)]),
    Case("Tensor.squeeze", lambda T, a: a.squeeze(0), [F(1, 3, 1)], note="dim"),
    Case("Tensor.unsqueeze", lambda T, a: a.unsqueeze(-1), [F(2, 3)]),
    Case("torch.chunk", lambda T, a: T.chunk(a, 3, dim=1), [F(2, 7)]),
    Case("torch.split", lambda T, a: T.split(a, 2, dim=0), [F(5, 2)]),
    Case("torch.split", lambda T, a: a.split([1, 3], dim=1), [F(2, 4)], note="sizes"),
    Case("torch.cat", lambda T, a, b: T.cat([a, b], dim=1), [F(2, 3), F(2, 2)]),
    Case("torch.cat", lambda T, a, b: T.cat([a, b]), [F(2, 3), I(1, 3)], note="promotion"),
    Case("torch.stack", lambda T, a, b: T.stack([a, b], dim=1), [F(2, 3), F(2, 3)]),
    Case("Tensor.narrow", lambda T, a: a.narrow(1, 1, 2), [F(3, 4)]),
    Case("torch.gather", lambda T, a, i: T.gather(a, 1, i), [F(3, 4), I(3, 2, hi=4)]),
    Case("torch.scatter", lambda T, a, i, s: T.scatter(a, 1, i, s), [F(3, 4), I(3, 1, hi=4), F(3, 1)]),
    Case("torch.scatter_add", lambda T, a, i, s: T.scatter_add(a, 0, i, s), [F(3, 2), I(4, 2, hi=3), F(4, 2)]),
    Case("torch.index_select", lambda T, a, i: T.index_select(a, 0, i), [F(5, 3), I(4, hi=5)]),
    Case("torch.masked_select", lambda T, a, m: T.masked_select(a, m), [F(3, 4), B(3, 4)]),
    Case("torch.tril", lambda T, a: T.tril(a), [F(4, 4)]),
    Case("torch.triu", lambda T, a: T.triu(a, diagonal=1), [F(4, 4)]),
    Case("torch.flip", lambda T, a: T.flip(a, [0]), [F(3, 2)]),
    Case("Tensor.__getitem__", lambda T, a: a[1], [F(3, 4)], note="int"),
    Case("Tensor.__getitem__", lambda T, a: a[:, 1:3], [F(3, 4)], note="slice"),
    Case("Tensor.__getitem__", lambda T, a: a[..., None, ::2], [F(3, 4)], note="ellipsis none step"),
    Case("Tensor.__getitem__", lambda T, a, m: a[m], [F(3, 4), B(3, 4)], note="bool mask"),
    Case("Tensor.__getitem__", lambda T, a, m: a[m], [F(3, 4), B(3)], note="bool rows"),
    Case("Tensor.__getitem__", lambda T, a, i: a[i], [F(5, 2), I(3, hi=5)], note="int tensor"),
    Case("Tensor.__getitem__", lambda T, a, i: a[:, i], [F(2, 5), I(3, hi=5)], note="int tensor dim1"),
    Case("Tensor.__getitem__", lambda T, a: a[[0, 2]], [F(3, 2)], note="list"),
    # ---- dtype conversions
    Case("Tensor.to", lambda T, a: a.to(T.float64), [F(3)]),
    Case("Tensor.float", lambda T, a: a.float(), [I(3)], grad=False),
    Case("Tensor.half", lambda T, a: a.half(), [F(3)]),
    Case("Tensor.bfloat16", lambda T, a: a.bfloat16(), [F(3)], rtol=0, atol=0),
    Case("Tensor.long", lambda T, a: a.long(), [F(4, lo=-5, hi=5)], grad=False),
    Case("Tensor.int", lambda T, a: a.int(), [F(4, lo=-5, hi=5)], grad=False),
    Case("Tensor.bool", lambda T, a: a.bool(), [I(5, hi=2)], grad=False),
    Case("Tensor.type_as", lambda T, a, b: a.type_as(b), [I(3), F(3, grad=False)], grad=False),
    Case("Tensor.type", lambda T, a: a.type(), [F(3)], grad=False),
    Case("Tensor.type", lambda T, a: a.type(T.int32), [F(3, lo=0, hi=5)], grad=False, note="convert"),
    Case("Tensor.clone", lambda T, a: a.clone(), [F(3)]),
    Case("Tensor.detach", lambda T, a: a.detach(), [F(3)], grad=False),
    Case("Tensor.item", lambda T, a: a.sum().item(), [F(3)], grad=False),
    Case("Tensor.tolist", lambda T, a: a.tolist(), [I(2, 3)], grad=False),
    Case("Tensor.size", lambda T, a: (a.size(), a.size(-1), a.shape, a.dim(), a.numel(), a.ndim), [F(2, 3)],
         grad=False, extra_apis=["Tensor.shape", "Tensor.dim", "Tensor.numel", "Tensor.ndim"]),
    Case("Tensor.stride", lambda T, a: (a.stride(), a.t().stride(), a[:, 1:].stride(), a[:, 1:].storage_offset(),
                                       a.t().is_contiguous(), a.is_contiguous(), a.element_size()),
         [F(3, 4)], grad=False, extra_apis=["Tensor.storage_offset", "Tensor.is_contiguous", "Tensor.element_size"]),
    # ---- bfloat16 (emulated on CPU)
    Case("torch.add", lambda T, a, b: a + b, [F(8, dtype="bfloat16"), F(8, dtype="bfloat16")], note="bf16"),
    Case("torch.mul", lambda T, a: a * 1.1, [F(8, dtype="bfloat16")], note="bf16 scalar"),
    Case("torch.exp", lambda T, a: T.exp(a), [F(8, dtype="bfloat16")], note="bf16"),
    Case("torch.softmax", lambda T, a: T.softmax(a, -1), [F(2, 8, dtype="bfloat16")], note="bf16"),
    Case("torch.sum", lambda T, a: a.sum(-1), [F(2, 8, dtype="bfloat16")], note="bf16"),
    Case("Tensor.__add__", lambda T, a, b: a + b, [F(4, dtype="bfloat16"), F(4, dtype="float16")],
         note="bf16+f16->f32"),
    # ---- in-place variants
    _ip("Tensor.add_", lambda T, a, b: a.add_(b, alpha=2), [F(3, 4), F(4)]),
    _ip("Tensor.sub_", lambda T, a: a.sub_(1), [F(3)]),
    _ip("Tensor.mul_", lambda T, a, b: a.mul_(b), [F(3, 2), F(3, 1)]),
    _ip("Tensor.div_", lambda T, a: a.div_(4), [F(3)]),
    _ip("Tensor.pow_", lambda T, a: a.pow_(2), [F(3)]),
    _ip("Tensor.copy_", lambda T, a, b: a.copy_(b), [F(2, 3), I(3)]),
    _ip("Tensor.zero_", lambda T, a: a.zero_(), [F(2, 3)]),
    _ip("Tensor.fill_", lambda T, a: a.fill_(2.5), [F(2, 3)]),
    _ip("Tensor.clamp_", lambda T, a: a.clamp_(-0.1, 0.1), [F(5)]),
    _ip("Tensor.masked_fill_", lambda T, a, m: a.masked_fill_(m, 0.0), [F(3, 4), B(3, 4)]),
    _ip("Tensor.exp_", lambda T, a: a.exp_(), [F(3)]),
    _ip("Tensor.neg_", lambda T, a: a.neg_(), [F(3)]),
    _ip("Tensor.__iadd__", lambda T, a, b: a.__iadd__(b), [F(3), F(3)]),
    _ip("Tensor.__imul__", lambda T, a: a.__imul__(3), [I(3)]),
    _ip("Tensor.scatter_", lambda T, a, i, s: a.scatter_(1, i, s), [F(3, 4), I(3, 1, hi=4), F(3, 1)]),
    _ip("Tensor.index_add_", lambda T, a, i, s: a.index_add_(0, i, s), [F(4, 2), I(3, hi=4), F(3, 2)]),
    _ip("Tensor.__setitem__", lambda T, a: (a.__setitem__((slice(None), 1), 7.0), a)[1], [F(3, 4)],
        note="slice scalar"),
    _ip("Tensor.__setitem__", lambda T, a, m: (a.__setitem__(m, 0.0), a)[1], [F(3, 4), B(3, 4)], note="mask"),
    _ip("Tensor.__setitem__", lambda T, a, i, v: (a.__setitem__(i, v), a)[1], [F(5, 2), I(2, hi=5), F(2, 2)],
        note="int tensor"),
    _ip("Tensor.__setitem__", lambda T, a, v: (a.__setitem__((slice(1, 3),), v), a)[1], [F(4, 2), F(2)],
        note="broadcast value"),
    # NumPy's keyword names, accepted by torch's argument parser for every dim/keepdim/input/other parameter
    # (megatron-core's alltoall token dispatcher calls `.sum(axis=1)`)
    Case("Tensor.sum", lambda T, a: a.sum(axis=1), [F(3, 4)], note="axis="),
    Case("torch.sum", lambda T, a: T.sum(a, axis=0, keepdims=True), [F(3, 4)], note="axis= keepdims="),
    Case("torch.mean", lambda T, a: T.mean(x=a, axis=-1), [F(3, 4)], note="x= axis="),
    Case("torch.cat", lambda T, a, b: T.cat([a, b], axis=1), [F(3, 4), F(3, 2)], note="axis="),
    Case("torch.argmax", lambda T, a: T.argmax(a, axis=1, keepdims=True), [F(3, 4, grad=False)], note="axis="),
    Case("torch.add", lambda T, a, b: T.add(x1=a, x2=b), [F(3, 4), F(3, 4)], note="x1= x2="),
    # the shape as the keyword `size=` (megatron-core's all-to-all: `input.new_empty(size=..., dtype=...)`)
    Case("Tensor.new_zeros", lambda T, a: a.new_zeros(size=(2, 3)) + a.sum(), [F(4)], note="size="),
    Case("torch.ones", lambda T, a: T.ones(size=[3, 4]) * a, [F(3, 4)], note="size="),
]


# ---- NaN: torch's maximum/minimum/clamp propagate NaN (fmax/fmin ignore it); max/min/amax/amin/argmax/argmin/
# median return NaN and the first NaN's index; sort/argsort/topk/kthvalue/msort order NaN above +inf (stable).
# Where torch leaves the choice among equal values unspecified (topk's smallest, kthvalue, sort without
# stable=True: its descending order of ties differs on long rows) only values are compared, not gradients
nan, inf = float("nan"), float("inf")
X = [1.0, nan, -3.0, 5.0, nan, 0.5]
Y = [0.0, 0.0, nan, 7.0, nan, -1.0]
X2 = [[1.0, nan, -3.0, nan, inf], [5.0, 2.0, 0.5, 2.0, -inf], [nan, nan, 0.0, 1.0, 2.0], [inf, 2.0, -inf, 2.0, 3.0]]
TIES = [2.0, nan, 2.0, inf, nan, 2.0, inf, -inf, 2.0]


def _big():
    """3 x 6000 (above the facade's host-read size): NaN in row 0, +inf and -inf (no NaN) in row 1, ties."""
    a = np.round(np.random.default_rng(7).standard_normal((3, 6000)), 1)
    a[0, [17, 4000, 5999]] = nan
    a[1, [3, 9]] = inf, -inf
    return a


NAN_CASES = [
    Case("torch.clamp", lambda T, a: T.clamp(a, -1, 1), [V(X)], note="NaN"),
    Case("torch.clamp", lambda T, a: T.clamp(a, min=0), [V(X)], note="NaN min only"),
    Case("torch.clamp", lambda T, a, lo, hi: T.clamp(a, lo, hi), [V(X), V(Y), V([2.0, 1, 1, 1, 1, 1])],
         note="NaN tensor bounds"),
    Case("torch.clip", lambda T, a: T.clip(a, max=0.7), [V(X2)], note="NaN"),
    Case("torch.maximum", lambda T, a, b: T.maximum(a, b), [V(X), V(Y)], note="NaN"),
    Case("torch.minimum", lambda T, a, b: T.minimum(a, b), [V(X), V(Y)], note="NaN"),
    Case("torch.fmax", lambda T, a, b: T.fmax(a, b), [V(X), V(Y)], note="NaN"),
    Case("torch.fmin", lambda T, a, b: T.fmin(a, b), [V(X), V(Y)], note="NaN"),
    Case("torch.fmax", lambda T, a, b: T.fmax(a, b), [V([1.0, 2.0, nan, 3.0]), V([1.0, nan, nan, 0.0])],
         note="ties"),
    Case("torch.max", lambda T, a: T.max(a), [V(X)], note="NaN all"),
    Case("torch.min", lambda T, a: a.min(), [V(X2)], note="NaN all"),
    Case("torch.max", lambda T, a: T.max(a, 1), [V(X2)], note="NaN dim"),
    Case("torch.min", lambda T, a: T.min(a, 0, keepdim=True), [V(X2)], note="NaN dim keepdim"),
    Case("torch.amax", lambda T, a: T.amax(a, 1), [V(X2)], note="NaN"),
    Case("torch.amin", lambda T, a: T.amin(a, (0, 1)), [V(X2)], note="NaN all dims"),
    Case("torch.aminmax", lambda T, a: T.aminmax(a, dim=0), [V(X2)], grad=False, note="NaN"),
    Case("torch.argmax", lambda T, a: T.argmax(a), [V(X)], grad=False, note="NaN"),
    Case("torch.argmin", lambda T, a: T.argmin(a, 1), [V(X2)], grad=False, note="NaN dim"),
    Case("torch.argmax", lambda T, a: a.argmax(0, keepdim=True), [V(X2)], grad=False, note="NaN keepdim"),
    Case("torch.sort", lambda T, a: T.sort(a), [V(X)], note="NaN"),
    Case("torch.sort", lambda T, a: T.sort(a, descending=True), [V(X)], note="NaN descending"),
    Case("torch.sort", lambda T, a: T.sort(a, dim=-1, stable=True), [V(TIES)], note="NaN inf ties"),
    Case("torch.sort", lambda T, a: T.sort(a, descending=True, stable=True), [V(TIES)],
         note="NaN inf ties descending"),
    Case("torch.sort", lambda T, a: T.sort(a, dim=0, descending=True, stable=True), [V(X2, dtype="float64")],
         note="NaN f64 dim 0"),
    Case("torch.sort", lambda T, a: T.sort(a, dim=-1, stable=True), [I(3, 2000, hi=4)], grad=False,
         note="stable with many ties"),
    Case("torch.argsort", lambda T, a: T.argsort(a, 1), [V(X2)], grad=False, note="NaN"),
    Case("torch.msort", lambda T, a: T.msort(a), [V(X2)], note="NaN"),
    Case("torch.topk", lambda T, a: T.topk(a, 3), [V(X)], note="NaN"),
    Case("torch.topk", lambda T, a: T.topk(a, 2, dim=0), [V(X2)], note="NaN dim 0"),
    Case("torch.topk", lambda T, a: T.topk(a, 5, largest=False).values, [V(X)], grad=False, note="NaN smallest"),
    Case("torch.kthvalue", lambda T, a: T.kthvalue(a, 5).values, [V(X)], grad=False, note="NaN"),
    Case("torch.kthvalue", lambda T, a: T.kthvalue(a, 2, 1).values, [V(X2)], grad=False, note="NaN dim"),
    Case("torch.median", lambda T, a: T.median(a), [V(X)], note="NaN all"),
    Case("torch.median", lambda T, a: T.median(a, 1), [V(X2)], note="NaN dim"),
    Case("torch.cummax", lambda T, a: T.cummax(a, 0), [V(X)], note="NaN"),
    Case("torch.cummin", lambda T, a: T.cummin(a, 1), [V(X2)], note="NaN"),
    Case("torch.clamp", lambda T, a: T.clamp(a, -1, 1), [V(_big())], note="NaN large"),
    Case("torch.maximum", lambda T, a, b: T.maximum(a, b), [V(_big()), V(np.zeros(6000))], note="NaN large"),
    Case("torch.max", lambda T, a: T.max(a, 1), [V(_big())], note="NaN large"),
    Case("torch.amax", lambda T, a: T.amax(a, 1), [V(_big())], note="NaN large"),
    Case("torch.argmin", lambda T, a: T.argmin(a, 1), [V(_big())], grad=False, note="NaN large"),
    Case("torch.sort", lambda T, a: T.sort(a, dim=1, descending=True, stable=True), [V(_big())], note="NaN large"),
    Case("torch.max", lambda T, a: T.max(a, 1), [V(X2, dtype="bfloat16")], note="NaN bf16"),
    _ip("Tensor.clamp_", lambda T, a: a.clamp_(max=0.0), [V(X)], note="NaN"),
    Case("torch.relu", lambda T, a: T.relu(a), [V(X)], note="NaN"),
    Case("torch.nn.functional.relu6", lambda T, a: T.nn.functional.relu6(a), [V(X)], note="NaN"),
    Case("torch.softmax", lambda T, a: T.softmax(a, -1), [V(X2)], note="NaN"),
    Case("torch.softmax", lambda T, a: T.softmax(a, 0), [V(X2)], note="NaN dim 0"),
    Case("torch.log_softmax", lambda T, a: T.log_softmax(a, -1), [V(X2)], note="NaN"),
    Case("torch.softmax", lambda T, a: T.softmax(a, -1), [V(_big())], note="NaN large"),
    Case("torch.nn.functional.cross_entropy", lambda T, a: T.nn.functional.cross_entropy(a, T.tensor([0, 1, 2, 3]),
                                                                                         reduction="none"),
         [V(X2)], note="NaN"),
    Case("torch.nn.functional.max_pool1d", lambda T, a: T.nn.functional.max_pool1d(a, 2, return_indices=True),
         [V([[X]])], note="NaN"),
    Case("torch.nn.functional.max_pool2d", lambda T, a: T.nn.functional.max_pool2d(a, 2, 1, padding=1),
         [V([X2])], note="NaN"),
    Case("torch.nn.functional.adaptive_max_pool1d",
         lambda T, a: T.nn.functional.adaptive_max_pool1d(a, 2, return_indices=True), [V([X2])], note="NaN"),
]
CASES += NAN_CASES


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_op_parity(case):
    run_case(case)


@pytest.mark.parametrize("op", ["zero_", "fill_", "fill_ tensor", "view fill_"])
def test_fill_on_a_tensor_with_history_keeps_it_as_torch(op):
    """zero_/fill_ on a non-leaf that requires grad: the result still requires grad (torch's ZeroBackward /
    FillBackward), the gradient to the old value is 0 and a 0-d tensor value gets the summed gradient."""
    import torch
    import shim.torch as st
    got = []
    for T in (torch, st):
        a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
        v = T.tensor(5.0, requires_grad=True)
        b = a * 2
        if op == "zero_":
            b.zero_()
        elif op == "fill_":
            b.fill_(4.0)
        elif op == "fill_ tensor":
            b.fill_(v)
        else:
            b[1:].fill_(v)
        flags = (b.requires_grad, b.grad_fn is not None, b.is_leaf)
        (b * T.tensor([1.0, 2.0, 3.0]) + a).sum().backward()
        got.append((flags, b.tolist(), a.grad.tolist(), None if v.grad is None else v.grad.tolist()))
    assert got[1] == got[0]


def test_inplace_dtype_rule_matches_torch():
    import torch
    import shim.torch as st
    for T in (torch, st):
        x = T.zeros(3, dtype=T.int64)
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            x.add_(1.5)


def test_large_broadcast_arithmetic_outside_autograd_equals_torch():
    """From 65,536 result elements, outside autograd, the facade tiles a broadcast operand before add/sub/mul/div
    (workaround "broadcast kernels"): results and in-place results must stay bit-identical to torch's."""
    import numpy as np
    import torch
    import shim.torch as st
    rng = np.random.default_rng(3)
    for sa, sb in (((64, 1100), (64, 1)), ((3, 1), (3, 30000)), ((70000,), ()), ((2, 64, 600), (600,))):
        a = rng.standard_normal(sa).astype(np.float32)
        b = (rng.standard_normal(sb) + 3).astype(np.float32)
        for op in ("add", "sub", "mul", "div"):
            want = getattr(torch, op)(torch.tensor(a), torch.tensor(b)).numpy()
            with st.no_grad():
                got = getattr(st, op)(st.tensor(a), st.tensor(b)).numpy()
                assert np.array_equal(got, want), (sa, sb, op)
                if want.shape == a.shape:
                    x = st.tensor(a)
                    getattr(x, op + "_")(st.tensor(b))
                    assert np.array_equal(x.numpy(), want), (sa, sb, op + "_")


def test_operators_leave_sequences_to_python_as_torch():
    """Operators with a list/tuple/None/str operand answer NotImplemented, as torch's: `[0] * n` with a 0-d integer
    tensor `n` is list repetition (megatron's text-generation controller pads prompts with `[eod] * (max_len - len)`,
    where max_len is a 0-d tensor; the facade's reflected `mul` made it a one-element tensor), `t + [1, 2]` etc. are
    Python's TypeError; numbers, NumPy scalars and tensors still take the operator."""
    import numpy as np
    import torch
    import shim.torch as st

    for T in (torch, st):
        n = T.tensor(3)
        assert [0] * n == [0, 0, 0] and n * [1, 2] == [1, 2, 1, 2, 1, 2] and (1,) * n == (1, 1, 1)
        assert [0] * T.tensor([2]) == [0, 0] and "ab" * n == "ababab"
        for op in (lambda: T.tensor([1, 2]) + [1, 2], lambda: [1, 2] + T.tensor([1, 2]),
                   lambda: T.tensor([1, 2]) < (1, 2), lambda: T.tensor(2.0) * None):
            with pytest.raises(TypeError):
                op()
        x = T.tensor([1.0, 2.0])
        x += np.float32(1)
        x *= T.tensor(2.0)
        assert (2 ** x).tolist() == [16.0, 64.0] and (x < 5).tolist() == [True, False]
        with pytest.raises(TypeError):
            [0] * T.tensor(2.0)  # only integer tensors are indices, as in torch


def test_errors_match_torch():
    import shim.torch as st
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        st.zeros(3, 4).t().view(12)
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        st.arange(3).mean()
    with pytest.raises(IndexError, match="Dimension out of range"):
        st.zeros(2, 2).sum(5)
    with pytest.raises(NotImplementedError, match="torch.Tensor.no_such_method is not implemented by the shim"):
        st.zeros(2).no_such_method()
    with pytest.raises(TypeError, match="got multiple values for argument 'size'"):
        st.zeros(2, size=(2,))
    with pytest.raises(TypeError, match="sum\\(\\) got an unexpected keyword argument 'axis'"):
        st.zeros(2, 2).sum(dim=1, axis=1)  # both spellings of one parameter: torch's message


def test_coverage_report(capsys):
    apis = covered_apis(CASES)
    with capsys.disabled():
        print(f"\n[parity] tests/shim/test_tensor_parity.py covers {len(apis)} torch APIs in {len(CASES)} cases")
    assert len(apis) >= 120


def test_size_keyword_matches_torch():
    """`size=` for the shape: new_empty / empty give torch's shape and dtype, seeded rand / randn torch's values."""
    import torch
    import shim.torch as st

    for T in (torch, st):
        e = T.ones(2, dtype=T.float64).new_empty(size=(3, 2))
        assert tuple(e.shape) == (3, 2) and e.dtype == T.float64
        assert tuple(T.empty(size=(4,)).shape) == (4,)
    for name in ("rand", "randn"):
        torch.manual_seed(5)
        st.manual_seed(5)
        expected = getattr(torch, name)(size=(2, 3)).numpy()
        assert (getattr(st, name)(size=(2, 3)).numpy() == expected).all(), name
