"""torch.utils.tensorboard: `SummaryWriter` writing real TensorBoard event files (see writer.py).

As in torch, the `tensorboard` package is an optional dependency: importing this module without it raises
ImportError("TensorBoard logging requires TensorBoard version 1.15 or above"). The project pins it in its `test`
extra (pyproject.toml).
"""
from __future__ import annotations

import re

try:
    import tensorboard as _tensorboard
    from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: F401
except ImportError:
    _tensorboard = None
if _tensorboard is None or tuple(int(re.match(r"\d*", p).group() or 0)
                                for p in _tensorboard.__version__.split(".")[:2]) < (1, 15):
    raise ImportError("TensorBoard logging requires TensorBoard version 1.15 or above")

from .writer import FileWriter, SummaryWriter  # noqa: E402

__all__ = ["FileWriter", "RecordWriter", "SummaryWriter"]
