"""torch._dynamo.config: torch's option names and torch 2.13 defaults, settable, without effect under the shim.

Nothing is compiled by the shim, so these values are only recorded (programs set e.g. `cache_size_limit` or
`suppress_errors` before calling torch.compile). Reading or setting a name torch's config does not have raises
AttributeError("torch._dynamo.config.<name> does not exist"), as torch does. The table holds the options programs
commonly touch, not all of torch's.
"""
from __future__ import annotations

import sys
import types

# name -> torch 2.13's default (read from the installed torch's torch._dynamo.config)
DEFAULTS = {
    "cache_size_limit": 8,
    "recompile_limit": 8,
    "accumulated_cache_size_limit": 256,
    "accumulated_recompile_limit": 256,
    "suppress_errors": False,
    "verbose": False,
    "optimize_ddp": True,
    "capture_scalar_outputs": False,
    "capture_dynamic_output_shape_ops": False,
    "automatic_dynamic_shapes": True,
    "assume_static_by_default": True,
    "inline_inbuilt_nn_modules": True,
    "force_parameter_static_shapes": True,
    "specialize_int": False,
    "error_on_recompile": False,
    "raise_on_ctx_manager_usage": True,
    "allow_unspec_int_on_nn_module": False,
    "skip_nnmodule_hook_guards": True,
    "compiled_autograd": False,
}


class _ConfigModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"torch._dynamo.config.{name} does not exist")

    def __setattr__(self, name, value):
        if name not in DEFAULTS and not (name.startswith("__") and name.endswith("__")):
            raise AttributeError(f"torch._dynamo.config.{name} does not exist")
        super().__setattr__(name, value)


globals().update(DEFAULTS)
sys.modules[__name__].__class__ = _ConfigModule
