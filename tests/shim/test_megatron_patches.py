"""megatron_patches' registry: version matching, stacking, rebinding of names imported with `from x import f`,
hit counting, the error on a missing target, automatic application under the shim only, and `--list`.

Each case runs tests/shim/megatron_scripts/patch_registry_check.py in a fresh interpreter (megatron-core is
imported there, patched, and thrown away).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "shim" / "megatron_scripts" / "patch_registry_check.py"
PY = sys.executable


def _check(mode: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SHIM_BACKEND", "MEGATRON_PATCHES_STATE", "RANK")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([PY, str(SCRIPT), mode, *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(line[-1][len("RESULT "):])


def test_apply_stacks_rebinds_and_counts_hits(tmp_path):
    state_file = tmp_path / "state.json"
    out = _check("mechanics", str(state_file))
    # test_seven returns 7, test_plus_one wraps it: 8, through the module and through `from ... import` names
    assert out["module_value"] == 8 and out["layers_value"] == 8
    p = out["state"]["patches"]
    assert p["test_seven"]["applied"] and p["test_plus_one"]["applied"]
    assert not p["test_old_versions"]["applied"]
    assert p["test_old_versions"]["skipped_reason"] == "megatron-core 0.16.1 not in <0.1"
    assert "megatron.core.tensor_parallel.layers.get_tensor_model_parallel_world_size" in p["test_seven"]["rebound"]
    assert p["test_seven"]["hits"] == 2 and p["test_plus_one"]["hits"] == 2
    assert p["test_old_versions"]["hits"] == 0
    # --list reads the state file back
    r = subprocess.run([PY, "-m", "megatron_patches", "--list", "--state", str(state_file)], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "state from 1 process(es)" in r.stdout
    assert "recorded patches not in this registry: test_old_versions, test_plus_one, test_seven" in r.stdout


def test_missing_target_is_an_error_at_apply_time():
    out = _check("missing")
    assert out["error"] is not None and "no_such_function" in out["error"]


def test_second_non_stacking_patch_is_an_error():
    out = _check("nostack")
    assert out["error"] == ("patch 'test_b' does not stack but 'test_a' already patched "
                            "megatron.core.parallel_state.get_tensor_model_parallel_world_size")


@pytest.mark.slow
def test_applied_automatically_under_the_shim_only():
    shim_out = _check("shim")
    assert shim_out["module_value"] == 8 and shim_out["layers_value"] == 8
    assert shim_out["state"]["applied_all"] is True
    torch_out = _check("torch")
    assert torch_out["state"]["applied_all"] is False
    assert torch_out["patched"] == [None, None]
    assert shim_out["patched"] == ["test_plus_one", "test_plus_one"]


def test_list_without_state_and_bad_state(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MEGATRON_PATCHES_STATE", None)
    r = subprocess.run([PY, "-m", "megatron_patches", "--list"], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0 and "megatron-core 0.16.1" in r.stdout and "applied/hit unknown" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = subprocess.run([PY, "-m", "megatron_patches", "--list", "--state", str(bad)], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and str(bad) in r.stderr


# ------------------------------------------- megatron's own torch_dist strategy (the retired patch's place)
TORCH_DIST_SCRIPT = REPO / "tests" / "shim" / "megatron_scripts" / "torch_dist_checkpoint_check.py"


def _torch_dist(mode: str, directory: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHIM_BACKEND", "MEGATRON_PATCHES_STATE", "MEGATRON_PATCHES_DISABLE", "RANK", "WORLD_SIZE",
                        "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([PY, str(TORCH_DIST_SCRIPT), mode, str(directory)], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(line[-1][len("RESULT "):])


@pytest.mark.slow
def test_megatron_torch_dist_strategy_runs_on_the_facade_and_real_torch_reads_it(tmp_path):
    """dist_checkpointing.save/load ('torch_dist') under the shim through megatron-core's own strategy (DCP,
    torch ShardedTensor for the layer-stacked key, FileSystemWriterAsync with its spawned Manager and forked
    writers; no patch: `torch_dist_strategies_without_dcp` is retired): the checkpoint (two chunks of one key,
    layer-stacked shards, a ShardedObject) reads back, and megatron-core's strategy on real torch reads the same
    values from it."""
    shim_out = _torch_dist("save_shim", tmp_path)
    assert shim_out["error"] is None, shim_out
    assert "param_gather_copies_into_params" in shim_out["patches"]  # patches were applied in that process ...
    assert "torch_dist_strategies_without_dcp" not in shim_out["patches"]  # ... none for torch_dist
    assert shim_out["torch"].endswith("+mindspore")
    assert shim_out["strategy"] == "megatron.core.dist_checkpointing.strategies.torch.TorchDistSaveShardedStrategy"
    assert shim_out["files"] == [".metadata", "__0_0.distcp", "__0_1.distcp", "common.pt", "metadata.json"]
    real = _torch_dist("load_real", tmp_path)
    assert real["error"] is None and not real["torch"].endswith("+mindspore"), real
    for out in (shim_out, real):
        assert out["w"] == out["expected"]["w"] and out["stack"] == out["expected"]["stack"], out
        assert (out["obj_a"], out["obj_t"], out["iteration"]) == ([1, 2], [3, 4], 7), out


_STAND_IN_PROBE = r"""
import json
import megatron_patches
try:
    from megatron.core.transformer.custom_layers import batch_invariant_kernels as bik
    out = {"file": bik.__file__, "enabled": bik.is_batch_invariant_mode_enabled()}
    try:
        bik.enable_batch_invariant_mode()
    except NotImplementedError as e:
        out["enable_error"] = str(e)
    try:
        bik.matmul_persistent
    except NotImplementedError as e:
        out["kernel_error"] = str(e)
except ModuleNotFoundError as e:
    out = {"import_error": str(e)}
out["served"] = megatron_patches.state()["module_stand_ins"]["batch_invariant_kernels_without_triton"]["served"]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("disabled", [False, True])
def test_triton_module_stand_in_under_the_shim(disabled):
    """megatron's Triton-only batch_invariant_kernels module is served by the stand-in when triton is absent (here),
    under the shim; with the stand-in disabled its import fails on `import triton`, as without the project."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEGATRON_PATCHES_STATE", "RANK")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", SHIM_BACKEND="mindspore")
    if disabled:
        env["MEGATRON_PATCHES_DISABLE"] = "batch_invariant_kernels_without_triton"
    r = subprocess.run([PY, "-c", _STAND_IN_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT "):])
    if disabled:
        assert out == {"import_error": "No module named 'triton'", "served": 0}
        return
    assert out["file"].endswith("megatron_patches/batch_invariant_without_triton.py") and out["served"] == 1
    assert out["enabled"] is False
    assert "--batch-invariant-mode" in out["enable_error"]
    assert "'triton' package is not installed" in out["enable_error"]
    assert out["kernel_error"].startswith("batch_invariant_kernels.matmul_persistent: ")


# ------------------------------------------- CUDA-only parts of MoE and sequence parallelism (both backends)
_CUDA_ONLY_PROBE = r"""
import json, os, sys
import numpy as np
import megatron_patches
if os.environ.get("SHIM_BACKEND") != "mindspore":   # real torch: what the CPU reference runner does first
    megatron_patches.install_module_stand_ins()
    megatron_patches.apply_all(cpu_reference_only=True)
import torch
from megatron.core.transformer.moe import grouped_gemm_util as gg, moe_utils
from megatron.core.transformer import TransformerConfig
from megatron.core.transformer.torch_norm import WrappedTorchNorm

out = {"torch": torch.__version__, "gg_file": gg.__file__, "available": gg.grouped_gemm_is_available()}
try:
    out["te_general_gemm"] = repr(moe_utils.te_general_gemm)
except AttributeError as e:
    out["te_general_gemm_error"] = str(e)
rng = np.random.default_rng(5)
a_np = rng.standard_normal((7, 4)).astype(np.float32)
b_np = rng.standard_normal((3, 4, 5)).astype(np.float32)
g_np = rng.standard_normal((7, 5)).astype(np.float32)
if out["available"]:
    for dtype in ("float32", "bfloat16"):
        dt = getattr(torch, dtype)
        for trans_b in (False, True):
            a = torch.tensor(a_np).to(dt).requires_grad_()
            b = torch.tensor(b_np if not trans_b else b_np.transpose(0, 2, 1).copy()).to(dt).requires_grad_()
            y = gg.ops.gmm(a, b, torch.tensor([3, 0, 4]), trans_b=trans_b)   # the second expert gets no token
            y.backward(torch.tensor(g_np).to(dt))
            out[f"gmm_{dtype}_{trans_b}"] = [str(y.dtype), y.float().tolist(), a.grad.float().tolist(),
                                             b.grad.float().tolist()]
    try:
        gg.ops.gmm(torch.tensor(a_np), torch.tensor(b_np), torch.tensor([3, 3, 3]))
    except ValueError as e:
        out["gmm_error"] = str(e)
cfg = TransformerConfig(num_layers=1, hidden_size=8, num_attention_heads=2, tensor_model_parallel_size=2,
                        sequence_parallel=True)
try:
    norm = WrappedTorchNorm(cfg, 8, eps=1e-5)
    out["norm"] = [type(norm).__name__, [getattr(p, "sequence_parallel", None) for p in norm.parameters()],
                   cfg.sequence_parallel]
except AssertionError as e:
    out["norm_error"] = str(e)
print("RESULT " + json.dumps(out))
"""


def _cuda_only_probe(shim: bool, disable: str = "") -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHIM_BACKEND", "MEGATRON_PATCHES_STATE", "MEGATRON_PATCHES_DISABLE", "RANK")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    if shim:
        env["SHIM_BACKEND"] = "mindspore"
    if disable:
        env["MEGATRON_PATCHES_DISABLE"] = disable
    r = subprocess.run([PY, "-c", _CUDA_ONLY_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT "):])


def test_moe_grouped_gemm_router_and_sequence_parallel_norm_without_cuda_packages():
    """Megatron-LM's MoE and sequence-parallel paths reach CUDA-only packages (grouped_gemm, Transformer Engine,
    Apex). Under the shim and on real torch with the CPU runner's patches: the grouped-GEMM stand-in's `ops.gmm`
    (fp32 and bf16, trans_b, an expert with no token) equals per-expert matmuls on real torch, forward and
    backward; the router's `te_general_gemm` is None; WrappedTorchNorm under sequence parallelism builds torch's
    LayerNorm with its parameters marked `sequence_parallel`. With the three disabled, Megatron's own failures
    come back (grouped GEMM unavailable, the name missing, the norm's assertion)."""
    import torch

    shim_out = _cuda_only_probe(shim=True)
    ref_out = _cuda_only_probe(shim=False)
    assert shim_out["torch"].endswith("+mindspore") and not ref_out["torch"].endswith("+mindspore")
    rng = np.random.default_rng(5)
    a_np = rng.standard_normal((7, 4)).astype(np.float32)
    b_np = rng.standard_normal((3, 4, 5)).astype(np.float32)
    g_np = rng.standard_normal((7, 5)).astype(np.float32)
    for out in (shim_out, ref_out):
        assert out["gg_file"].endswith("megatron_patches/grouped_gemm_without_cuda.py") and out["available"]
        assert out["te_general_gemm"] == "None"
        assert out["norm"] == ["LayerNorm", [True, True], True]
        assert out["gmm_error"].startswith("gmm: batch_sizes [3, 3, 3] (groups, rows) do not fit")
        for dtype, tol in (("float32", 1e-5), ("bfloat16", 2e-2)):
            dt = getattr(torch, dtype)
            a = torch.tensor(a_np).to(dt).requires_grad_()
            b = torch.tensor(b_np).to(dt).requires_grad_()
            y = torch.cat([a[:3] @ b[0], a[3:3] @ b[1], a[3:] @ b[2]])
            y.backward(torch.tensor(g_np).to(dt))
            want = [y.detach().float().numpy(), a.grad.float().numpy(), b.grad.float().numpy()]
            for trans_b in (False, True):
                got = out[f"gmm_{dtype}_{trans_b}"]
                assert got[0] == f"torch.{dtype}"
                grad_b = np.asarray(got[3])
                got_b = grad_b.transpose(0, 2, 1) if trans_b else grad_b
                for g, w in zip((np.asarray(got[1]), np.asarray(got[2]), got_b), want):
                    np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    off = _cuda_only_probe(shim=True, disable="moe_grouped_gemm_without_cuda,moe_router_gemm_without_te,"
                                              "torch_norm_sequence_parallel")
    assert off["available"] is False and off["gg_file"].endswith("megatron/core/transformer/moe/grouped_gemm_util.py")
    assert "te_general_gemm" in off["te_general_gemm_error"]
    assert off["norm_error"] == "sequence parallel not supported by torch LayerNorm"


def test_param_gather_copies_from_each_parameters_padded_start():
    """`param_gather_copies_into_params` copies a parameter from its place in the distributed optimizer's buffer:
    megatron-core aligns each parameter's start to 64 elements, so after a parameter of 32 or 7 elements the next
    one starts after a gap, which `bucket.param_to_index` (packed) does not count. `bucket_param_start` equals the
    buffer's own `param_index_map` start (minus the bucket's offset) for every parameter, on real torch's megatron
    DDP; with the packed index, every parameter after a gap got its neighbour's values under the shim (a tiny
    hidden-32 model's loss drifted from step 2 on: tests/shim/test_families_shim.py)."""
    import torch

    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.transformer import TransformerConfig

    from megatron_patches.patches import bucket_param_start
    from tests.helpers.megatron_env import megatron_parallel

    class Params(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.randn(64, 32))
            self.norm = torch.nn.Parameter(torch.randn(32))
            self.router = torch.nn.Parameter(torch.randn(4, 32))
            self.odd = torch.nn.Parameter(torch.randn(7))
            self.b = torch.nn.Parameter(torch.randn(32, 64))

    with megatron_parallel():
        config = TransformerConfig(num_layers=1, hidden_size=32, num_attention_heads=4, use_cpu_initialization=True)
        ddp = DistributedDataParallel(config, DistributedDataParallelConfig(use_distributed_optimizer=True),
                                      Params())
        starts, packed = [], []
        for buffer in ddp.buffers:
            for bucket in buffer.buckets:
                for param in bucket.params:
                    expected = buffer.param_index_map[param][0] - bucket.offset
                    assert bucket_param_start(bucket, param) == expected, tuple(param.shape)
                    starts.append(expected)
                    packed.append(bucket.param_to_index[param][0])
    assert len(starts) == 5 and all(s % 64 == 0 for s in starts)
    assert starts != packed  # the case the packed index gets wrong is present


def test_grouped_gemm_capability_check_is_skipped_only_for_the_stand_in(monkeypatch):
    """`moe_grouped_gemm_capability_check` wraps Megatron-LM's validate_args (megatron/training, present only in the
    Megatron-LM program, so a stand-in `original` here; the real one runs in test_megatron_lm_pretrain.py's MoE run):
    with the stand-in serving the grouped GEMM, Megatron's checks see `moe_grouped_gemm` False and the flag is True
    again afterwards, also when a check raises; with the CUDA `grouped_gemm` package present the call is unchanged."""
    import types

    from megatron_patches import patches, registry

    seen = []

    def original(args, defaults={}):  # noqa: B006 (Megatron's signature)
        seen.append((args.moe_grouped_gemm, defaults))
        if getattr(args, "fail", False):
            raise AssertionError("a later Megatron check")
        if args.moe_grouped_gemm:  # Megatron's own check, as it behaves on a machine without sm80
            raise AssertionError("Unsupported compute capability for GroupedGEMM kernels.")
        return args

    wrapped = patches._validate_args_grouped_gemm_on_stand_in(original)
    monkeypatch.setattr(patches, "_grouped_gemm_served_by_stand_in", lambda: True)
    args = types.SimpleNamespace(moe_grouped_gemm=True)
    assert wrapped(args, {"x": 1}) is args and args.moe_grouped_gemm is True
    assert seen == [(False, {"x": 1})]
    failing = types.SimpleNamespace(moe_grouped_gemm=True, fail=True)
    with pytest.raises(AssertionError, match="a later Megatron check"):
        wrapped(failing)
    assert failing.moe_grouped_gemm is True
    plain = types.SimpleNamespace(moe_grouped_gemm=False)
    assert wrapped(plain) is plain and seen[-1] == (False, {})
    monkeypatch.setattr(patches, "_grouped_gemm_served_by_stand_in", lambda: False)  # a CUDA machine: check stands
    with pytest.raises(AssertionError, match="Unsupported compute capability"):
        wrapped(types.SimpleNamespace(moe_grouped_gemm=True))
    assert seen[-1] == (True, {})
    assert [p for p in registry.registered() if p.name == "moe_grouped_gemm_capability_check"][0].cpu_reference


def test_local_attention_packed_sequences_equal_each_sequence_alone():
    """`local_attention_packed_sequences` on real torch: Megatron's local DotProductAttention given THD packed
    sequences (q/k/v `[t, heads, head_dim]`, `cu_seqlens_q` `[1, n + 1]` as pretrain_gpt.py passes SFTDataset's)
    returns `[t, 1, heads * head_dim]` equal to causal attention over each sequence alone (torch's
    scaled_dot_product_attention per sequence), and differs from one causal attention over the whole pack; without
    packed params Megatron's forward is unchanged; padded cu_seqlens, a mask with packing and bounds that do not end
    at the packed length are errors. Megatron's own forward asserts on packed params (the patch's reason)."""
    import torch
    import torch.nn.functional as F
    from megatron.core.packed_seq_params import PackedSeqParams
    from megatron.core.transformer import TransformerConfig
    from megatron.core.transformer.dot_product_attention import DotProductAttention
    from megatron.core.transformer.enums import AttnMaskType

    from megatron_patches.patches import _packed_sequences_one_by_one
    from tests.helpers.megatron_env import megatron_parallel

    heads, dim, bounds = 2, 4, [0, 3, 3, 8, 10]  # an empty sequence too
    t = bounds[-1]
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(t, heads, dim, generator=gen) for _ in range(3))
    cu = torch.tensor([bounds], dtype=torch.int32)
    with megatron_parallel():
        config = TransformerConfig(num_layers=1, hidden_size=heads * dim, num_attention_heads=heads,
                                   use_cpu_initialization=True, attention_dropout=0.0,
                                   masked_softmax_fusion=False)
        attn = DotProductAttention(config, 1, AttnMaskType.causal, "self")
        forward = _packed_sequences_one_by_one(DotProductAttention.forward)
        packed = PackedSeqParams(qkv_format="thd", cu_seqlens_q=cu, cu_seqlens_kv=cu, max_seqlen_q=5,
                                 max_seqlen_kv=5)
        with pytest.raises(AssertionError, match="Packed sequence is not supported"):
            DotProductAttention.forward(attn, q, k, v, None, packed_seq_params=packed)
        got = forward(attn, q, k, v, None, packed_seq_params=packed)
        whole = forward(attn, q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), None)
        want_whole = DotProductAttention.forward(attn, q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), None)
        padded = PackedSeqParams(qkv_format="thd", cu_seqlens_q=cu, cu_seqlens_kv=cu,
                                 cu_seqlens_q_padded=cu * 2, cu_seqlens_kv_padded=cu * 2)
        with pytest.raises(NotImplementedError, match="cu_seqlens_q_padded different"):
            forward(attn, q, k, v, None, packed_seq_params=padded)
        with pytest.raises(NotImplementedError, match="explicit attention mask"):
            forward(attn, q, k, v, torch.zeros(1, 1, t, t, dtype=torch.bool), packed_seq_params=packed)
        short = PackedSeqParams(qkv_format="thd", cu_seqlens_q=cu[:, :-1], cu_seqlens_kv=cu[:, :-1])
        with pytest.raises(ValueError, match="must rise from 0 to the packed length 10"):
            forward(attn, q, k, v, None, packed_seq_params=short)
    want = torch.cat([F.scaled_dot_product_attention(q[s:e].transpose(0, 1), k[s:e].transpose(0, 1),
                                                     v[s:e].transpose(0, 1), is_causal=True).transpose(0, 1)
                      for s, e in zip(bounds, bounds[1:]) if e > s]).reshape(t, 1, heads * dim)
    assert got.shape == (t, 1, heads * dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(whole, want_whole, rtol=0, atol=0)
    assert not torch.allclose(whole, want, atol=1e-3)  # attention across the boundaries would differ


_SFT_TOKENIZER_PROBE = r"""
import json, sys
import megatron_patches
megatron_patches.install_module_stand_ins()   # megatron.training imports the Triton kernels module
from megatron.training.tokenizer.sft_tokenizer import SFTTokenizer, nemotron_nano_v2_custom_template
from megatron_patches.patches import _sft_tokenizer_token_ids

path = sys.argv[1]
conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."}]
out = {}
try:
    SFTTokenizer(path, "nemotron-nano-v2").tokenize_conversation(conv, return_target=True, add_generation_prompt=False)
except Exception as e:
    out["unpatched"] = f"{type(e).__name__}: {e}"
tok = SFTTokenizer.__new__(SFTTokenizer)
_sft_tokenizer_token_ids(SFTTokenizer.__init__)(tok, path, "nemotron-nano-v2")
tokens, target = tok.tokenize_conversation(conv, return_target=True, add_generation_prompt=False)
hf = tok._tokenizer
text = hf.apply_chat_template(conv, tokenize=False, chat_template=nemotron_nano_v2_custom_template)
system_user = hf.apply_chat_template(conv[:2], tokenize=False, chat_template=nemotron_nano_v2_custom_template)
out.update(tokens=tokens.tolist(), target=target.tolist(), dtype=str(tokens.dtype),
           want=hf(text, add_special_tokens=False)["input_ids"],
           n_prompt=len(hf(system_user, add_special_tokens=False)["input_ids"]),
           explicit=type(hf.apply_chat_template(conv, tokenize=True, return_dict=True,
                                                chat_template=nemotron_nano_v2_custom_template)).__name__)
print("RESULT " + json.dumps(out))
"""


@pytest.mark.shared
def test_sft_tokenizer_gives_token_ids_with_transformers_5():
    """`sft_tokenizer_token_ids_with_transformers_5` on real torch with the real Qwen2.5 tokenizer: Megatron-LM's
    SFTTokenizer (core_v0.16.1, ../shared/programs/Megatron-LM) stops in `tokenize_conversation` without it
    ('Encoding' object has no attribute 'copy'); with it the tokens are the HF tokenizer's ids of the rendered
    conversation (int64), the target masks the system and user turns with -100 and the assistant's first 3 tokens
    (nemotron-nano-v2's assistant prefix) and keeps the rest; an explicit `return_dict=True` still gets a
    BatchEncoding."""
    from tests.conftest import shared_path

    tokenizer = shared_path("assets", "qwen2.5-tokenizer")
    env = {k: v for k, v in os.environ.items() if k not in ("SHIM_BACKEND", "MEGATRON_PATCHES_STATE", "RANK")}
    env.update(PYTHONPATH=f"{REPO}{os.pathsep}{shared_path('programs', 'Megatron-LM')}", OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    r = subprocess.run([PY, "-c", _SFT_TOKENIZER_PROBE, str(tokenizer)], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT "):])
    assert out["unpatched"] == "AttributeError: 'tokenizers.Encoding' object has no attribute 'copy'"
    assert out["tokens"] == out["want"] and out["dtype"] == "int64"
    n = out["n_prompt"]
    assert 0 < n < len(out["tokens"]) - 3
    assert out["target"] == [-100] * (n + 3) + out["tokens"][n + 3:]
    assert out["explicit"] == "BatchEncoding"
