"""Exercise megatron_patches' registry in a fresh interpreter; prints one JSON line with what it observed.

usage: patch_registry_check.py MODE [STATE_FILE]
  mechanics  real torch: two stacking patches of one function, one for other versions; apply_all by hand
  missing    a patch whose target does not exist -> PatchError at apply time
  nostack    a second, non-stacking patch of a patched target -> PatchError
  shim       shim activated: a patch registered before `import megatron.core` is applied by the import hook
  torch      real torch, `import megatron.core`: nothing is applied
"""
import json
import sys

mode = sys.argv[1]
if mode == "shim":
    import shim
    shim.activate()

import megatron_patches as mp  # noqa: E402

TARGET = "megatron.core.parallel_state.get_tensor_model_parallel_world_size"
out = {"mode": mode}

if mode in ("mechanics", "shim", "torch"):
    mp.register("test_seven", target=TARGET, replacement=lambda orig: (lambda: 7), reason="test: constant",
                versions=">=0.16", stacks=False)
    mp.register("test_plus_one", target=TARGET, replacement=lambda orig: (lambda: orig() + 1),
                reason="test: wraps the earlier patch", versions=">=0.16", stacks=True)
    mp.register("test_old_versions", target=TARGET, replacement=lambda orig: (lambda: -1),
                reason="test: other versions only", versions="<0.1", stacks=True)
    import megatron.core  # noqa: F401
    import megatron.core.tensor_parallel.layers as layers
    if mode == "mechanics":
        mp.apply_all()
    import megatron.core.parallel_state as ps
    out["patched"] = [getattr(f, "__megatron_patch__", None) for f in
                      (ps.get_tensor_model_parallel_world_size, layers.get_tensor_model_parallel_world_size)]
    if mode != "torch":  # megatron-core's own function needs initialised model parallelism
        out["layers_value"] = layers.get_tensor_model_parallel_world_size()
        out["module_value"] = ps.get_tensor_model_parallel_world_size()
    st = mp.state()
    out["state"] = st
    if len(sys.argv) > 2:
        mp.write_state(sys.argv[2])
elif mode == "missing":
    mp.register("test_missing", target="megatron.core.parallel_state.no_such_function",
                replacement=lambda orig: orig, reason="test", versions=">=0", stacks=False)
    try:
        mp.apply_all()
        out["error"] = None
    except mp.PatchError as e:
        out["error"] = str(e)
elif mode == "nostack":
    mp.register("test_a", target=TARGET, replacement=lambda orig: orig, reason="test", versions=">=0",
                stacks=False)
    mp.register("test_b", target=TARGET, replacement=lambda orig: orig, reason="test", versions=">=0",
                stacks=False)
    try:
        mp.apply_all()
        out["error"] = None
    except mp.PatchError as e:
        out["error"] = str(e)
print("RESULT " + json.dumps(out))
