"""Convolution, pooling, normalisation, padding, recurrent and attention layers of the facade vs real torch
(issue 11): both modules built after the same `manual_seed` must hold torch's initial weights (the facade's
nn.init reproduces torch's CPU streams), then forward, input and parameter gradients agree in train and eval
mode, and BatchNorm/InstanceNorm running statistics follow torch's over several steps. Small sizes, float32."""
from __future__ import annotations

import numpy as np
import pytest

import torch
import shim.torch as mt

RTOL, ATOL = 1e-4, 1e-5


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.detach().cpu().numpy()


def _close(ours, ref, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(_np(ours), _np(ref), rtol=rtol, atol=atol, err_msg=what)


def _pair(make, seed=0):
    """(torch module, facade module) built after manual_seed(seed) on each side."""
    torch.manual_seed(seed)
    ref = make(torch)
    mt.manual_seed(seed)
    ours = make(mt)
    return ref, ours


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _check(make, *inputs, seed=0, modes=("train", "eval"), same_init=True, kwargs=None, rtol=RTOL, atol=ATOL):
    """Forward and backward of make(torch) vs make(shim.torch) on `inputs` (NumPy arrays; float ones require
    grad). Returns the pair of modules."""
    ref, ours = _pair(make, seed)
    sd_ref = ref.state_dict()
    if same_init:
        assert list(ours.state_dict()) == list(sd_ref), "state_dict keys/order differ from torch's"
        for k, v in sd_ref.items():
            _close(ours.state_dict()[k], v, f"initial {k} (torch's random stream)", rtol=0, atol=0)
    else:
        ours.load_state_dict({k: mt.tensor(v.numpy()) for k, v in sd_ref.items()})
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed + 100)
    for mode in modes:
        ref.train(mode == "train")
        ours.train(mode == "train")
        t_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
        m_in = [mt.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
        t_out = _flat(ref(*t_in, **{k: torch.tensor(v) for k, v in kwargs.items()}))
        m_out = _flat(ours(*m_in, **{k: mt.tensor(v) for k, v in kwargs.items()}))
        assert len(t_out) == len(m_out)
        for i, (a, b) in enumerate(zip(m_out, t_out)):
            assert tuple(a.shape) == tuple(b.shape), f"{mode} output {i} shape"
            _close(a, b, f"{mode} output {i}", rtol, atol)
        diff = [(a, b) for a, b in zip(m_out, t_out) if b.requires_grad]
        gs = [rng.standard_normal(tuple(b.shape)).astype(np.float32) for _, b in diff]
        torch.autograd.backward([b for _, b in diff], [torch.tensor(g) for g in gs])
        mt.autograd.backward([a for a, _ in diff], [mt.tensor(g) for g in gs])
        for i, (a, b) in enumerate(zip(m_in, t_in)):
            if b.requires_grad:
                _close(a.grad, b.grad, f"{mode} grad of input {i}", rtol, atol)
        mp = dict(ours.named_parameters())
        for n, p in ref.named_parameters():
            _close(mp[n].grad, p.grad, f"{mode} grad of {n}", rtol, atol)
            p.grad = None
            mp[n].grad = None
    return ref, ours


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV = {
    "Conv1d": (lambda L: L.nn.Conv1d(4, 6, 3, stride=2, padding=1), (2, 4, 9)),
    "Conv1d_same_dil_groups": (lambda L: L.nn.Conv1d(4, 6, 3, padding="same", dilation=2, groups=2), (2, 4, 9)),
    "Conv1d_reflect": (lambda L: L.nn.Conv1d(3, 2, 3, padding=2, padding_mode="reflect"), (3, 7)),
    "Conv2d": (lambda L: L.nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False), (2, 3, 7, 6)),
    "Conv2d_groups_circular": (lambda L: L.nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode="circular"),
                               (1, 4, 5, 5)),
    "Conv3d": (lambda L: L.nn.Conv3d(2, 4, 2, stride=(1, 2, 1), padding=1, groups=2), (1, 2, 3, 5, 4)),
    "ConvTranspose1d": (lambda L: L.nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1),
                        (2, 3, 5)),
    "ConvTranspose2d": (lambda L: L.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                                       output_padding=(1, 2), groups=2, dilation=(1, 2)),
                        (2, 4, 4, 3)),
    "ConvTranspose3d": (lambda L: L.nn.ConvTranspose3d(2, 3, 2, stride=2), (1, 2, 2, 3, 2)),
}


@pytest.mark.parametrize("name", sorted(CONV))
def test_conv_matches_torch(name):
    make, shape = CONV[name]
    _check(make, _x(*shape))


POOL = {
    "MaxPool1d_ceil": (lambda L: L.nn.MaxPool1d(3, 2, padding=1, ceil_mode=True), (2, 3, 8)),
    "MaxPool2d_indices": (lambda L: L.nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2),
                                                   return_indices=True), (2, 3, 7, 6)),
    "MaxPool3d": (lambda L: L.nn.MaxPool3d(2, return_indices=True), (1, 2, 4, 4, 5)),
    "AvgPool1d": (lambda L: L.nn.AvgPool1d(3, 2, padding=1, count_include_pad=False), (2, 8)),
    "AvgPool2d_ceil": (lambda L: L.nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (1, 2, 6, 7)),
    "AvgPool2d_divisor": (lambda L: L.nn.AvgPool2d(2, divisor_override=3), (1, 2, 4, 4)),
    "AvgPool3d": (lambda L: L.nn.AvgPool3d((2, 3, 2), stride=1, padding=(1, 1, 0), count_include_pad=False),
                  (1, 1, 3, 4, 3)),
    "AdaptiveAvgPool2d": (lambda L: L.nn.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
    "AdaptiveMaxPool1d": (lambda L: L.nn.AdaptiveMaxPool1d(4, return_indices=True), (2, 3, 10)),
    "AdaptiveMaxPool3d": (lambda L: L.nn.AdaptiveMaxPool3d((2, 3, 2)), (1, 2, 5, 7, 3)),
    "LPPool2d": (lambda L: L.nn.LPPool2d(2, 2), (1, 2, 4, 6)),
}


@pytest.mark.parametrize("name", sorted(POOL))
def test_pool_matches_torch(name):
    make, shape = POOL[name]
    _check(make, _x(*shape, seed=3))


PAD = {
    "ReflectionPad1d": (lambda L: L.nn.ReflectionPad1d((3, 1)), (2, 3, 5)),
    "ReflectionPad2d": (lambda L: L.nn.ReflectionPad2d((1, 2, 2, 0)), (1, 2, 4, 3)),
    "ReplicationPad3d": (lambda L: L.nn.ReplicationPad3d((1, 0, 2, 1, 0, 3)), (1, 1, 2, 3, 2)),
    "CircularPad2d": (lambda L: L.nn.CircularPad2d((2, 1, 0, 3)), (1, 2, 3, 4)),
    "ConstantPad1d_crop": (lambda L: L.nn.ConstantPad1d((-1, 2), 3.5), (2, 5)),
    "ZeroPad2d": (lambda L: L.nn.ZeroPad2d(1), (2, 3, 3)),
}


@pytest.mark.parametrize("name", sorted(PAD))
def test_padding_matches_torch(name):
    make, shape = PAD[name]
    _check(make, _x(*shape, seed=4))


def test_batchnorm_running_stats_and_eval():
    """Three training steps update running_mean/var and num_batches_tracked as torch's; eval then normalises
    with them (momentum 0.1 and momentum None = cumulative average)."""
    for momentum in (0.1, None):
        ref, ours = _pair(lambda L: L.nn.BatchNorm2d(3, momentum=momentum))
        for step in range(3):
            x = _x(4, 3, 2, 3, seed=step) * (step + 1) + step
            _close(ours(mt.tensor(x)), ref(torch.tensor(x)), f"train step {step}")
        for k in ("running_mean", "running_var", "num_batches_tracked"):
            _close(getattr(ours, k), getattr(ref, k), f"{k} (momentum={momentum})", rtol=1e-5, atol=1e-6)
        ref.eval()
        ours.eval()
        x = _x(2, 3, 2, 3, seed=9)
        _close(ours(mt.tensor(x)), ref(torch.tensor(x)), "eval output")


NORM = {
    "BatchNorm1d": (lambda L: L.nn.BatchNorm1d(4), (5, 4, 3)),
    "BatchNorm3d_no_stats": (lambda L: L.nn.BatchNorm3d(2, track_running_stats=False, affine=False),
                             (2, 2, 2, 3, 2)),
    "InstanceNorm1d_stats": (lambda L: L.nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 6)),
    "InstanceNorm2d_unbatched": (lambda L: L.nn.InstanceNorm2d(3), (3, 4, 5)),
    "GroupNorm": (lambda L: L.nn.GroupNorm(2, 6), (2, 6, 3, 2)),
    "LocalResponseNorm": (lambda L: L.nn.LocalResponseNorm(3, alpha=0.1), (2, 5, 3, 3)),
}


@pytest.mark.parametrize("name", sorted(NORM))
def test_norm_matches_torch(name):
    make, shape = NORM[name]
    ref, ours = _check(make, _x(*shape, seed=5) * 2 + 1)
    for k, v in ref.named_buffers():
        _close(dict(ours.named_buffers())[k], v, f"buffer {k} after a train and an eval step", 1e-5, 1e-6)


RNN = {
    "LSTM_bidir_2layers": (lambda L: L.nn.LSTM(3, 4, num_layers=2, bidirectional=True), (5, 2, 3)),
    "LSTM_proj_batch_first": (lambda L: L.nn.LSTM(3, 5, proj_size=2, batch_first=True), (2, 4, 3)),
    "GRU": (lambda L: L.nn.GRU(3, 4, num_layers=2, bias=False), (4, 2, 3)),
    "RNN_relu_unbatched": (lambda L: L.nn.RNN(3, 4, nonlinearity="relu", bidirectional=True), (4, 3)),
    "LSTMCell": (lambda L: L.nn.LSTMCell(3, 4), (2, 3)),
    "GRUCell": (lambda L: L.nn.GRUCell(3, 4), (2, 3)),
}


@pytest.mark.parametrize("name", sorted(RNN))
def test_recurrent_matches_torch(name):
    make, shape = RNN[name]
    _check(make, _x(*shape, seed=6))


def test_multihead_attention_masks_and_bias_kv():
    make = lambda L: L.nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True, batch_first=True,
                                             kdim=3, vdim=5)  # noqa: E731
    kpm = np.array([[False, False, True], [False, True, False]])
    mask = np.triu(np.ones((2, 3), bool), 1)
    _check(make, _x(2, 2, 4), _x(2, 3, 3, seed=1), _x(2, 3, 5, seed=2),
           kwargs={"key_padding_mask": kpm, "attn_mask": mask, "average_attn_weights": False})


def test_transformer_encoder_decoder():
    """TransformerEncoder over a facade layer (module_db builds it from a torch layer, which its harness
    cannot convert) and a pre-norm decoder layer with gelu, weights copied from torch."""
    def make(L):
        layer = L.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, norm_first=True, batch_first=True)
        return L.nn.TransformerEncoder(layer, 2, norm=L.nn.LayerNorm(4))
    _check(make, _x(2, 3, 4), kwargs={"src_key_padding_mask": np.array([[False, False, True],
                                                                        [False, False, False]])})
    dec = lambda L: L.nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, activation="gelu")  # noqa: E731
    _check(dec, _x(3, 2, 4), _x(5, 2, 4, seed=1))


LOSS = {
    "BCEWithLogitsLoss_pos_weight": (lambda L: L.nn.BCEWithLogitsLoss(pos_weight=L.tensor([1.0, 2.0, 0.5])),
                                     [_x(4, 3), (np.random.default_rng(1).random((4, 3)) > 0.5).astype(np.float32)]),
    "SmoothL1Loss_beta": (lambda L: L.nn.SmoothL1Loss(beta=0.5), [_x(4, 3), _x(4, 3, seed=1)]),
    "HuberLoss": (lambda L: L.nn.HuberLoss(delta=0.7, reduction="sum"), [_x(4, 3), _x(4, 3, seed=1)]),
    "KLDivLoss_batchmean": (lambda L: L.nn.KLDivLoss(reduction="batchmean"),
                            [_x(4, 3), np.random.default_rng(1).random((4, 3)).astype(np.float32)]),
    "MultiMarginLoss_p2": (lambda L: L.nn.MultiMarginLoss(p=2, margin=0.5), [_x(4, 5), np.array([0, 4, 2, 2])]),
    "MultiLabelMarginLoss": (lambda L: L.nn.MultiLabelMarginLoss(),
                             [_x(2, 4), np.array([[3, 0, -1, 1], [1, 1, 2, -1]])]),
    "CosineEmbeddingLoss": (lambda L: L.nn.CosineEmbeddingLoss(margin=0.2),
                            [_x(4, 3), _x(4, 3, seed=1), np.array([1, -1, 1, -1])]),
    "GaussianNLLLoss_full": (lambda L: L.nn.GaussianNLLLoss(full=True),
                             [_x(4, 3), _x(4, 3, seed=1), np.abs(_x(4, 1, seed=2))]),
}


@pytest.mark.parametrize("name", sorted(LOSS))
def test_loss_matches_torch(name):
    make, inputs = LOSS[name]
    _check(make, *inputs, modes=("train",))


def test_unsupported_layers_name_the_torch_api():
    x = mt.zeros(1, 2, 4)
    with pytest.raises(NotImplementedError, match="torch.nn.LSTM with a PackedSequence"):
        class PackedSequence(tuple):
            pass
        mt.nn.LSTM(2, 3)(PackedSequence((x,)))
    with pytest.raises(NotImplementedError, match="torch.nn.functional.interpolate"):
        mt.nn.functional.interpolate(mt.zeros(1, 1, 2, 2, dtype=mt.uint8), size=3, mode="bilinear")
