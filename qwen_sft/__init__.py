"""Qwen2.5 full-parameter SFT workflow library: data, checkpoint conversion, model building, training, generation.

Pure torch + megatron-core code: it runs on real PyTorch (the reference backend) and, unchanged,
on MindSpore through the shim. The programs in `tools/` are thin wrappers over these modules.
"""
