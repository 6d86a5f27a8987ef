"""Workaround "bool setitem leak" (shim/torch/_workarounds.py): `t[mask] = number`, `t[mask, :] = number` and
`t[mask, ...] = number` with a bool mask of t's leading dimensions are one masked_fill. Values and gradients must be
torch's, and repeating the write (megatron's VocabParallelEmbedding does it every micro-batch at TP > 1) must not
leave MindSpore tensors behind, as MindSpore's own boolean setitem does."""
from __future__ import annotations

import numpy as np
import pytest
import torch as T

from shim import torch as S
from shim.torch._workarounds import tensors_left_behind

RNG = np.random.default_rng(3)
X = RNG.standard_normal((2, 5, 3)).astype(np.float32)
MASK = RNG.random((2, 5)) < 0.4
MASK[0, 0] = True

KEYS = {
    "t[mask2d, :]": lambda m: (m, slice(None)),
    "t[mask2d, ...]": lambda m: (m, Ellipsis),
    "t[mask2d]": lambda m: m,
    "t[mask2d, :, ...]": lambda m: (m, slice(None), Ellipsis),
    "t[mask1d]": lambda m: m[:, 0].clone() if hasattr(m, "clone") else m[:, 0],
    "t[mask3d] (full shape)": lambda m: m.unsqueeze(-1).expand(2, 5, 3).contiguous(),
}
VALUES = {"float": lambda m: 0.0, "int": lambda m: 7, "0-d tensor": lambda m: m.tensor(-2.5)}


@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("key", sorted(KEYS))
def test_values_and_gradients_match_torch(key, value):
    out = []
    for m in (T, S):
        x = m.tensor(X, requires_grad=True)
        t = x * 2  # a non-leaf, so the in-place write is recorded
        mask = m.tensor(MASK)
        t[KEYS[key](mask)] = VALUES[value](m)
        (t * m.tensor(X)).sum().backward()
        out.append((t.detach().numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(out[1][0], out[0][0])
    np.testing.assert_array_equal(out[1][1], out[0][1])


def test_repeated_writes_leave_no_mindspore_tensors_behind():
    t = S.zeros(1, 64, 8)
    mask = S.zeros(1, 64, dtype=S.bool)
    mask[0, 3] = True
    mask[0, 40] = True

    def write():
        t[mask, :] = 0.0
    # MindSpore's boolean setitem leaves 2 per write (60 here)
    assert tensors_left_behind(write, 30) < 5


def test_a_mask_of_other_dimensions_still_takes_the_general_path():
    # a mask of t's trailing dimensions is not a leading mask: torch's general indexing, same result
    for m in (T, S):
        t = m.tensor(X.copy())
        t[:, m.tensor(MASK[0])] = 1.0
        if m is T:
            ref = t.numpy()
        else:
            np.testing.assert_array_equal(t.numpy(), ref)


@pytest.mark.parametrize("key", ["mask2d, :", "mask2d, 0", "mask2d, mask1d"])
def test_too_many_indices_is_torchs_index_error(key):
    # a [2, 3] tensor indexed by a [2, 3] mask plus one more index: torch's IndexError, on write and on read
    def make_key(m):
        mask2d = m.tensor(MASK[:, :3])
        return {"mask2d, :": (mask2d, slice(None)), "mask2d, 0": (mask2d, 0),
                "mask2d, mask1d": (mask2d, m.tensor(MASK[0, :3]))}[key]
    for m in (T, S):
        t = m.zeros(2, 3)
        with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
            t[make_key(m)] = 1.0
        with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
            t[make_key(m)]
