"""How the facade has MindSpore PyNative dispatch its ops: asynchronously (MindSpore's default) or synchronously.

`SHIM_SYNC_DISPATCH=1` in the environment (read once, when the facade is imported) calls
`mindspore.runtime.launch_blocking()`: each op runs to completion in the calling thread before the next Python
line. Results and their order are the same either way; what changes is cost and error reporting:
- cost: measured on the 2-core CPU machines (MindSpore 2.10, tools/train.py tiny Qwen2 TP=1, 4 steps, load ~20):
  the whole run used 25 s of CPU time synchronously vs 55 s asynchronously (MindSpore's pipeline threads
  compete with the Python thread for the cores), see BENCHMARKS.md "train.py: shim vs torch (session 2)";
- errors: a failing kernel raises at the facade call that launched it (asynchronously, at a later sync point).
Unset: synchronous when MindSpore's device target is CPU (the measurement above), MindSpore's asynchronous
default on any other target (on Ascend the host keeps queueing kernels while the device runs: that overlap is the
point of asynchronous dispatch there). `1`: synchronous; `0`: asynchronous, on every target. Any other value
raises ValueError naming the variable.
"""
from __future__ import annotations

import os

ENV = "SHIM_SYNC_DISPATCH"


def configure(environ=os.environ) -> bool:
    """Apply `SHIM_SYNC_DISPATCH` from `environ` (unset: synchronous on the CPU target only); returns True when
    synchronous dispatch was switched on.

    Raises ValueError when the variable holds something other than "", "0" or "1"."""
    import mindspore

    value = environ.get(ENV, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV} must be 0 or 1 (synchronous MindSpore dispatch), got {value!r}")
    if value == "0" or (value == "" and mindspore.get_context("device_target") != "CPU"):
        return False
    mindspore.runtime.launch_blocking()
    return True


# workaround "asynchronous dispatch" (shim/torch/_workarounds.py)
SYNC = configure()


THREADS_ENV = "OMP_NUM_THREADS"


def configure_threads(environ=os.environ):
    """Size MindSpore's CPU kernel thread pool from `OMP_NUM_THREADS`, as torch sizes its intra-op pool from it;
    returns the count set, or None when the variable is unset (MindSpore's own default then: two threads on a
    2-core machine) or when the program already gave MindSpore a count
    (`mindspore.device_context.cpu.op_tuning.threads_num`) before importing torch.

    Launchers set it to 1 for more than one worker (torchrun's rule; the shim's launcher too): two ranks on two
    cores then do not each run a second kernel thread, which spins while it waits for work (MindSpore's thread
    pool yields in a loop before it sleeps) and takes the core the other rank's Python thread needs. MindSpore
    accepts the count once, before its pool starts, so this runs at facade import; `torch.set_num_threads`
    later cannot resize it (see there). A value that is not a positive integer is ignored with a warning, as
    torch's OpenMP runtime ignores it."""
    import mindspore

    value = environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        import warnings
        warnings.warn(f"{THREADS_ENV}={value!r} is not a positive integer; MindSpore keeps its default CPU "
                      f"kernel thread count", RuntimeWarning, stacklevel=2)
        return None
    from mindspore._c_expression import RuntimeConf
    if RuntimeConf.get_instance().is_op_threads_num_configured():
        return None  # the program set MindSpore's count itself before importing torch: its choice stands
    mindspore.device_context.cpu.op_tuning.threads_num(n)
    return n


# workaround "thread count" (shim/torch/_workarounds.py)
THREADS = configure_threads()
