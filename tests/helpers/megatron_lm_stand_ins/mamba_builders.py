"""Test-only stand-in for Megatron-LM's repository-root module `mamba_builders` (core_v0.16.1).

Megatron-LM's `tools/run_text_generation_server.py` imports `from mamba_builders import mamba_builder` at the top
even when it serves a GPT model; upstream the module sits beside `gpt_builders.py`, but the shared subset of
Megatron-LM in ../shared/programs/Megatron-LM (GPT entry point, megatron/, tools) does not carry it. This folder is
put on the server's PYTHONPATH by the tests so the import succeeds; building a Mamba model is a gap of the shared
subset, so the builder refuses by name instead of building anything. Written for this project (not a copy).
"""


def mamba_builder(args, pre_process, post_process, vp_stage=None, config=None, pg_collection=None):
    """Refuses: `mamba_builders.mamba_builder` (Megatron-LM's Mamba/hybrid model builder) is absent from the shared
    Megatron-LM subset this test stand-in serves.

    Raises:
        NotImplementedError: always, naming mamba.
    """
    raise NotImplementedError(
        "mamba_builders.mamba_builder: Megatron-LM's Mamba model builder is not part of the shared Megatron-LM "
        "subset (../shared/programs/Megatron-LM); this test stand-in only lets run_text_generation_server.py "
        "import for GPT models")
