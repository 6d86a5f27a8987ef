"""Fixtures for the shim's tests.

Many tests here compare the facade with real torch in the same process. Reference-backend tests earlier in the
session may have installed `qwen_sft.cpu_accelerator` (megatron's CUDA calls mapped to the CPU, which also makes
real torch report CPU tensors as `torch.cuda.*Tensor`); undo it so the shim is compared with unmodified torch.
"""
import sys

import pytest


@pytest.fixture(autouse=True)
def _unmodified_real_torch():
    accel = sys.modules.get("qwen_sft.cpu_accelerator")
    if accel is not None and accel.is_enabled():
        accel.disable()
    yield
