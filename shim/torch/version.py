"""torch.version: the torch API level the facade follows, with a local tag naming the backend."""
__version__ = "2.13.0+mindspore"
# No CUDA/HIP build behind the facade; the accelerator (Ascend) is reached through MindSpore.
cuda = None
hip = None
git_version = "shim"
debug = False
