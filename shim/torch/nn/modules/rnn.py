"""Recurrent layers `RNN`, `LSTM`, `GRU` and cells `RNNCell`, `LSTMCell`, `GRUCell`, composed from facade ops
(one matmul pair per time step; emulated, no MindSpore RNN kernel). Parameters, their names, shapes, order and
initialisation (every parameter U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in registration order) are
torch's, so `torch.manual_seed(s)` gives torch's weights. Gate order: LSTM (i, f, g, o), GRU (r, z, n).
PackedSequence inputs raise NotImplementedError."""
from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module
from .linear import _empty

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _torch():
    import sys
    return sys.modules[__name__.rsplit(".", 3)[0]]


def _linear(x, w, b):
    return F.linear(x, w, b)


def _cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One step: x [N, I], h [N, H_out], c [N, H] (LSTM) -> (h', c')."""
    gi = _linear(x, w_ih, b_ih)
    gh = _linear(h, w_hh, b_hh)
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c2 = f.sigmoid() * c + i.sigmoid() * F.tanh(g)
        h2 = o.sigmoid() * F.tanh(c2)
        if w_hr is not None:
            h2 = F.linear(h2, w_hr)
        return h2, c2
    if mode == "GRU":
        ir, iz, inn = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r = (ir + hr).sigmoid()
        z = (iz + hz).sigmoid()
        n = F.tanh(inn + r * hn)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (F.tanh(pre) if mode == "RNN_TANH" else F.relu(pre)), None


class RNNBase(Module):
    """Common machinery of RNN / LSTM / GRU (see the module docstring)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be greater than zero")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError("proj_size has to be a positive integer smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dirs = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        real_h = proj_size or hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                in_size = input_size if layer == 0 else real_h * dirs
                sfx = "_reverse" if d else ""
                names = [f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"]
                shapes = [(gate, in_size), (gate, real_h)]
                if bias:
                    names += [f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"]
                    shapes += [(gate,), (gate,)]
                if proj_size:
                    names.append(f"weight_hr_l{layer}{sfx}")
                    shapes.append((proj_size, hidden_size))
                for n, s in zip(names, shapes):
                    setattr(self, n, Parameter(_empty(*s, device=device, dtype=dtype)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _weights(self, layer, d):
        sfx = "_reverse" if d else ""
        g = lambda n: getattr(self, f"{n}_l{layer}{sfx}", None)  # noqa: E731
        return g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh"), g("weight_hr")

    def forward(self, input, hx=None):
        t = _torch()
        if type(input).__name__ == "PackedSequence":
            raise NotImplementedError(f"torch.nn.{type(self).__name__} with a PackedSequence input is not supported "
                                      "by the MindSpore facade")
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        seq, n = x.shape[0], x.shape[1]
        dirs = 2 if self.bidirectional else 1
        real_h = self.proj_size or self.hidden_size
        is_lstm = self.mode == "LSTM"
        if hx is None:
            h0 = x.new_zeros(self.num_layers * dirs, n, real_h)
            c0 = x.new_zeros(self.num_layers * dirs, n, self.hidden_size) if is_lstm else None
        else:
            h0, c0 = hx if is_lstm else (hx, None)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
        hs, cs = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                k = layer * dirs + d
                h = h0[k]
                c = c0[k] if is_lstm else None
                steps = range(seq - 1, -1, -1) if d else range(seq)
                ys = [None] * seq
                for s in steps:
                    h, c2 = _cell(self.mode, layer_in[s], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                    c = c2 if is_lstm else c
                    ys[s] = h
                outs.append(t.stack(ys, 0))
                hs.append(h)
                if is_lstm:
                    cs.append(c)
            layer_in = outs[0] if dirs == 1 else t.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in
        h_n = t.stack(hs, 0)
        c_n = t.stack(cs, 0) if is_lstm else None
        if unbatched:
            out = out.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (h_n, c_n)) if is_lstm else (out, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN, h' = tanh or relu (``nonlinearity``) of x W_ihᵀ + b_ih + h W_hhᵀ + b_hh."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    """Long short-term memory (optional projection ``proj_size``); returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit; returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


class RNNCellBase(Module):
    """One step of RNN / LSTM / GRU: weight_ih [G H, I], weight_hh [G H, H], bias_ih / bias_hh [G H]."""
    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_chunks: int = 1, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(_empty(num_chunks * hidden_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(_empty(num_chunks * hidden_size, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(_empty(num_chunks * hidden_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(_empty(num_chunks * hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _step(self, input, hx, cx=None):
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        h = x.new_zeros(x.shape[0], self.hidden_size) if hx is None else (hx.unsqueeze(0) if unbatched else hx)
        c = None
        if self._mode == "LSTM":
            c = x.new_zeros(x.shape[0], self.hidden_size) if cx is None else (cx.unsqueeze(0) if unbatched else cx)
        h2, c2 = _cell(self._mode, x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            h2 = h2.squeeze(0)
            c2 = c2.squeeze(0) if c2 is not None else None
        return h2, c2

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """h' = tanh/relu(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step; ``hx`` = (h, c) or None; returns (h', c')."""
    _mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c)


class GRUCell(RNNCellBase):
    """One GRU step; returns h'."""
    _mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx)[0]
