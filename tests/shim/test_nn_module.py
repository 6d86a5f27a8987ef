"""nn.Module semantics on the facade, checked against real torch where both can run the same code:
registration, traversal order, state_dict keys/values, load_state_dict(strict) errors and _IncompatibleKeys,
buffers (persistent / non-persistent), hooks (forward, forward-pre, with_kwargs, full backward,
load-state-dict
pre/post), train/eval, dtype conversion keeping Parameter identity, containers and repr."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import torch
import shim.torch as mt


def build(lib):
    """The same small model in either library (same class body)."""
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(4)
            self.proj = nn.Linear(4, 4, bias=False)
            self.register_buffer("scale", lib.ones(4))
            self.register_buffer("cache", lib.zeros(2), persistent=False)
            self.gate = nn.Parameter(lib.zeros(1))

        def forward(self, x):
            return self.proj(self.norm(x)) * self.scale + self.gate

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.head = nn.Sequential(OrderedDict(act=nn.SiLU(), out=nn.Linear(4, 3)))
            self.extra = nn.ModuleDict({"a": nn.Identity()})
            self.plist = nn.ParameterList([nn.Parameter(lib.ones(2)), nn.Parameter(lib.zeros(3))])
            self.tied = self.embed  # the same module twice: traversal must see it once

        def forward(self, ids):
            h = self.embed(ids)
            for b in self.blocks:
                h = b(h)
            return self.head(h)

    return Net()


def test_traversal_and_state_dict_keys_match_torch():
    a, b = build(mt), build(torch)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    assert [n for n, _ in a.named_buffers()] == [n for n, _ in b.named_buffers()]
    assert [n for n, _ in a.named_modules()] == [n for n, _ in b.named_modules()]
    assert [n for n, _ in a.named_children()] == [n for n, _ in b.named_children()]
    assert list(a.state_dict().keys()) == list(b.state_dict().keys())
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]
    assert len(list(a.named_parameters(remove_duplicate=False))) == len(list(b.named_parameters(remove_duplicate=False)))
    assert "blocks.0.cache" not in a.state_dict() and "blocks.0.scale" in a.state_dict()
    assert repr(a) == repr(b)


def _torch_weights_into(ours, ref):
    sd = {k: mt.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}
    return ours.load_state_dict(sd)


def test_load_state_dict_from_torch_gives_same_forward_and_backward():
    a, b = build(mt), build(torch)
    res = _torch_weights_into(a, b)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    ids = np.array([[1, 2, 3], [4, 5, 9]])
    ya, yb = a(mt.tensor(ids)), b(torch.tensor(ids))
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-5, atol=1e-6)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        if pb.grad is None:
            assert pa.grad is None, na
        else:
            np.testing.assert_allclose(pa.grad.numpy(), pb.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=na)


def test_load_state_dict_strict_errors_and_non_strict_result():
    a = build(mt)
    sd = OrderedDict(a.state_dict())
    del sd["head.out.bias"]
    sd["bogus.weight"] = mt.zeros(1)
    with pytest.raises(RuntimeError) as err:
        a.load_state_dict(sd)
    msg = str(err.value)
    assert 'Missing key(s) in state_dict: "head.out.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "bogus.weight"' in msg
    res = a.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.out.bias"] and res.unexpected_keys == ["bogus.weight"]
    sd2 = dict(a.state_dict())
    sd2["head.out.weight"] = mt.zeros(5, 5)
    with pytest.raises(RuntimeError, match=r"size mismatch for head.out.weight: copying a param with shape "
                                           r"\(5, 5\) from checkpoint, the shape in current model is \(3, 4\)"):
        a.load_state_dict(sd2, strict=False)


def test_state_dict_values_alias_and_load_copies_in_place():
    lin = mt.nn.Linear(2, 2)
    w_obj = lin.weight
    lin.load_state_dict({"weight": mt.tensor([[1.0, 2.0], [3.0, 4.0]]), "bias": mt.tensor([5.0, 6.0])})
    assert lin.weight is w_obj and lin.weight.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    sd = lin.state_dict()
    assert not sd["weight"].requires_grad
    assert lin.state_dict(keep_vars=True)["weight"] is w_obj
    assert sd._metadata[""] == {"version": 1}


def test_load_state_dict_hooks_megatron_style():
    class Legacy(mt.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = mt.nn.Linear(2, 2)
            self._register_load_state_dict_pre_hook(self._rename)
            self.post_calls = []
            self.register_load_state_dict_post_hook(lambda m, keys: self.post_calls.append(list(keys.missing_keys)))

        @staticmethod
        def _rename(state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            for old in [k for k in state_dict if k.startswith(prefix + "dense.")]:
                state_dict[prefix + "linear." + old[len(prefix + "dense."):]] = state_dict.pop(old)

    outer = mt.nn.Sequential(Legacy())
    outer.load_state_dict({"0.dense.weight": mt.ones(2, 2), "0.dense.bias": mt.zeros(2)})
    assert outer[0].linear.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert outer[0].post_calls == [[]]


def test_custom_load_from_state_dict_override():
    class Custom(mt.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = mt.nn.Parameter(mt.zeros(2))

        def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
            state_dict[prefix + "w"] = state_dict.pop(prefix + "w_old") * 2
            super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    m = Custom()
    m.load_state_dict({"w_old": mt.tensor([1.0, 2.0])})
    assert m.w.tolist() == [2.0, 4.0]


def test_forward_hooks_match_torch():
    for lib in (mt, torch):
        lin = lib.nn.Linear(2, 2)
        log = []
        h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        h2 = lin.register_forward_hook(lambda m, args, out: log.append(("post", tuple(out.shape))))
        h3 = lin.register_forward_pre_hook(lambda m, args, kwargs: (args, kwargs), with_kwargs=True, prepend=True)
        h4 = lin.register_forward_hook(lambda m, args, kwargs, out: out * 0, with_kwargs=True)
        out = lin(lib.ones(1, 2))
        assert out.tolist() == [[0.0, 0.0]] and log == [("post", (1, 2))]
        for h in (h1, h2, h3, h4):
            h.remove()
        assert lin(lib.zeros(1, 2)).tolist() == [lin.bias.tolist()]


def test_always_call_forward_hook_on_exception():
    class Boom(mt.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m = Boom()
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError, match="boom"):
        m(mt.zeros(1))
    assert seen == [None]


def test_full_backward_hooks_match_torch():
    results = []
    for lib in (mt, torch):
        lin = lib.nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        seen = []
        lin.register_full_backward_pre_hook(lambda m, go: seen.append(("pre", [g.tolist() for g in go])))
        lin.register_full_backward_hook(
            lambda m, gi, go: seen.append(("hook", [None if g is None else g.tolist() for g in gi])))
        x = lib.tensor([[1.0, 1.0, 1.0]], requires_grad=True)
        (lin(x) * lib.tensor([[1.0, 3.0]])).sum().backward()
        # input without grad: hook still runs (with torch's warning), grad_input is (None,)
        with pytest.warns(UserWarning, match="Full backward hook is firing"):
            (lin(lib.ones(1, 3)) * 2).sum().backward()
        results.append((seen, x.grad.tolist()))
    assert results[0] == results[1]


def test_zero_grad_and_clip_reach_non_contiguous_gradients():
    # MindSpore's weight gradient of a bias-free Linear is non-contiguous; zero_grad(False) must still zero it
    lin = mt.nn.Linear(3, 2, bias=False)
    lin(mt.ones(4, 3)).sum().backward()
    assert lin.weight.grad.abs().sum().item() > 0
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad.abs().sum().item() == 0.0
    lin(mt.ones(4, 3)).sum().backward()
    mt.nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    assert abs(float(mt.nn.utils.get_total_norm([lin.weight.grad])) - 1.0) < 1e-5


def test_backward_hook_can_replace_grad_input():
    lin = mt.nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: tuple(g * 0 if g is not None else None for g in gi))
    x = mt.ones(1, 2, requires_grad=True)
    lin(x).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0]]
    assert lin.weight.grad.abs().sum().item() > 0


def test_train_eval_apply_zero_grad_requires_grad():
    net = build(mt)
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    names = []
    net.apply(lambda m: names.append(type(m).__name__))
    assert names[-1] == "Net" and names.count("Linear") == 3
    out = net(mt.tensor([[1, 2]]))
    out.sum().backward()
    assert net.head.out.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert net.head.out.weight.grad.abs().sum().item() == 0.0
    net.zero_grad()
    assert net.head.out.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_dtype_conversion_keeps_parameter_identity():
    net = build(mt)
    w = net.head.out.weight
    net.to(mt.bfloat16)
    assert net.head.out.weight is w and w.dtype == mt.bfloat16 and w.requires_grad
    assert isinstance(w, mt.nn.Parameter)
    net.half()
    assert w.dtype == mt.float16
    net.float()
    assert w.dtype == mt.float32
    net.to("cpu", mt.float32)
    net(mt.tensor([[1, 2]])).sum().backward()
    net.half()
    assert w.grad is not None and w.grad.dtype == mt.float16 and w.dtype == mt.float16
    net.float()
    with pytest.raises(TypeError, match="floating point"):
        net.to(mt.int64)


def test_registration_errors_and_attribute_protocol():
    m = mt.nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", mt.zeros(1))
    with pytest.raises(TypeError, match="torch.nn.Parameter or None required"):
        m.register_parameter("p", mt.zeros(1))
    m.p = mt.nn.Parameter(mt.zeros(1))
    with pytest.raises(TypeError, match="cannot assign"):
        m.p = mt.zeros(1)
    m.p = None
    assert list(m.named_parameters()) == [] and "p" in m._parameters
    m.child = mt.nn.Linear(1, 1)
    del m.child
    assert list(m.children()) == []
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        m.nothing
    m.register_buffer("buf", mt.zeros(2))
    m.buf = mt.ones(2)
    assert m._buffers["buf"].tolist() == [1.0, 1.0]
    seq = mt.nn.Sequential(mt.nn.Linear(1, 1), mt.nn.ReLU())
    assert seq.get_submodule("1") is seq[1] and seq.get_parameter("0.weight") is seq[0].weight
    with pytest.raises(AttributeError, match="no submodule"):
        seq.get_submodule("5")
    with pytest.raises(NotImplementedError, match="missing the required \"forward\""):
        mt.nn.Module()(1)


def test_containers_like_torch():
    for lib in (mt, torch):
        ml = lib.nn.ModuleList([lib.nn.ReLU(), lib.nn.SiLU()])
        ml.append(lib.nn.Tanh())
        ml.insert(0, lib.nn.Identity())
        assert [type(x).__name__ for x in ml] == ["Identity", "ReLU", "SiLU", "Tanh"]
        del ml[1]
        assert [n for n, _ in ml.named_children()] == ["0", "1", "2"]
        assert type(ml[-1]).__name__ == "Tanh" and len(ml[1:]) == 2
        seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU())
        assert len(seq[:1]) == 1
        pl = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(1))])
        pl.append(lib.nn.Parameter(lib.zeros(2)))
        assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
        md = lib.nn.ModuleDict({"b": lib.nn.ReLU()})
        md["a"] = lib.nn.SiLU()
        assert list(md.keys()) == ["b", "a"] and "a" in md


def test_parameters_and_state_dict_survive_torch_save(tmp_path):
    net = build(mt)
    path = tmp_path / "net.pt"
    mt.save({"sd": net.state_dict(), "p": net.head.out.weight}, path)
    loaded = mt.load(path, weights_only=False)
    assert isinstance(loaded["p"], mt.nn.Parameter) and loaded["p"].requires_grad
    np.testing.assert_array_equal(loaded["p"].detach().numpy(), net.head.out.weight.detach().numpy())
    other = build(mt)
    other.load_state_dict(loaded["sd"])
    for (n1, a), (n2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert n1 == n2
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    import copy
    clone = copy.deepcopy(net)
    assert isinstance(clone.head.out.weight, mt.nn.Parameter) and clone.head.out.weight is not net.head.out.weight
    np.testing.assert_array_equal(clone.head.out.weight.detach().numpy(), net.head.out.weight.detach().numpy())
