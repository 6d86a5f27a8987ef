"""torch-like __repr__: `tensor([1., 2.])`, `tensor([0.1000, 2.0000], dtype=torch.float64, requires_grad=True)`.

Follows torch's printing defaults (precision 4, integral floats printed with a trailing dot, scientific
notation when the magnitude range is large, `...` summarisation above 1000 elements). Byte-exact equality with
torch's printer is not a goal; the fields and their order are torch's."""
from __future__ import annotations

import numpy as np

from .. import _dtype as D

_DEFAULT_SUFFIX_FREE = {D.int64, D.bool}


def _fmt_floats(a: np.ndarray):
    finite = a[np.isfinite(a)]
    if finite.size and np.all(finite == np.round(finite)) and (np.abs(finite).max() < 1e8):
        return lambda x: (f"{x:.0f}." if np.isfinite(x) else str(x).replace("inf", "inf"))
    if finite.size:
        amax, amin = np.abs(finite).max(), np.abs(finite[finite != 0]).min() if np.any(finite != 0) else 0
        if amax >= 1e8 or (amin and amin < 1e-4) or (amin and amax / amin > 1000):
            return lambda x: f"{x:.4e}"
    return lambda x: f"{x:.4f}"


def tensor_repr(t) -> str:
    try:
        a = t._host()
    except Exception as exc:  # pragma: no cover - a failed MindSpore computation surfacing here
        return f"tensor(<unavailable: {exc}>)"
    dt = t.dtype
    if dt.is_floating_point:
        fmt = _fmt_floats(a.astype(np.float64))
        key = "float_kind"
    elif dt is D.bool:
        fmt = lambda x: "True" if x else "False"  # noqa: E731
        key = "bool"
    else:
        fmt = str
        key = "int"
    # torch pads every element to the widest one
    sample = a.reshape(-1) if a.size <= 1000 else np.concatenate([a.reshape(-1)[:500], a.reshape(-1)[-500:]])
    width = max((len(fmt(x)) for x in sample), default=0)
    formatter = {key: lambda x: fmt(x).rjust(width)}
    body = np.array2string(a, separator=", ", formatter=formatter, threshold=1000, edgeitems=3,
                           prefix="tensor(", max_line_width=80)
    if a.size == 0:
        body = "[]"
    extras = []
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if a.size == 0 and a.ndim != 1:
        extras.append(f"size={tuple(a.shape)}")
    if dt is not D.get_default_dtype() and dt not in _DEFAULT_SUFFIX_FREE:
        extras.append(f"dtype={dt}")
    if t.requires_grad:
        fn = t.grad_fn
        if fn is not None:
            extras.append(f"grad_fn=<{fn.name()}>")
        else:
            extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
