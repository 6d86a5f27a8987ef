"""Pooling modules: `MaxPool1d/2d/3d`, `AvgPool1d/2d/3d`, `AdaptiveAvgPool1d/2d/3d`, `AdaptiveMaxPool1d/2d/3d`,
`LPPool1d/2d/3d` over the functional forms (emulated by a window gather, see functional's pooling section);
`FractionalMaxPool2d/3d` (random windows placed as torch's CPU kernels do, from torch's CPU stream; see
functional's fractional max pooling section)."""
from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
           "LPPool1d", "LPPool2d", "LPPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d"]


class _MaxPoolNd(Module):
    _n = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return getattr(F, f"max_pool{self._n}d")(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                                  ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over 1-d windows of [N, C, L] (or [C, L])."""
    _n = 1


class MaxPool2d(_MaxPoolNd):
    """Max over 2-d windows of [N, C, H, W] (or [C, H, W])."""
    _n = 2


class MaxPool3d(_MaxPoolNd):
    """Max over 3-d windows of [N, C, D, H, W] (or [C, D, H, W])."""
    _n = 3


class AvgPool1d(Module):
    """Mean over 1-d windows."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _AvgPoolNd(Module):
    _n = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return getattr(F, f"avg_pool{self._n}d")(input, self.kernel_size, self.stride, self.padding,
                                                  self.ceil_mode, self.count_include_pad, self.divisor_override)


class AvgPool2d(_AvgPoolNd):
    """Mean over 2-d windows (``divisor_override`` replaces the window size)."""
    _n = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over 3-d windows."""
    _n = 3


class _AdaptiveNd(Module):
    _n = 2
    _kind = "avg"

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        if self._kind == "max":
            self.return_indices = return_indices

    def forward(self, input):
        fn = getattr(F, f"adaptive_{self._kind}_pool{self._n}d")
        if self._kind == "max":
            return fn(input, self.output_size, self.return_indices)
        return fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveNd):
    """Adaptive mean pooling to ``output_size`` (1-d)."""
    _n, _kind = 1, "avg"

    def __init__(self, output_size) -> None:
        super().__init__(output_size)


class AdaptiveAvgPool2d(AdaptiveAvgPool1d):
    """Adaptive mean pooling to ``output_size`` (2-d; ``None`` keeps a size)."""
    _n = 2


class AdaptiveAvgPool3d(AdaptiveAvgPool1d):
    """Adaptive mean pooling to ``output_size`` (3-d)."""
    _n = 3


class AdaptiveMaxPool1d(_AdaptiveNd):
    """Adaptive max pooling to ``output_size`` (1-d), optionally with indices."""
    _n, _kind = 1, "max"


class AdaptiveMaxPool2d(_AdaptiveNd):
    """Adaptive max pooling (2-d)."""
    _n, _kind = 2, "max"


class AdaptiveMaxPool3d(_AdaptiveNd):
    """Adaptive max pooling (3-d)."""
    _n, _kind = 3, "max"


class _LPPoolNd(Module):
    _n = 2

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return getattr(F, f"lp_pool{self._n}d")(input, float(self.norm_type), self.kernel_size, self.stride,
                                                 self.ceil_mode)


class LPPool1d(_LPPoolNd):
    """Power-average pooling (1-d)."""
    _n = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling (2-d)."""
    _n = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling (3-d)."""
    _n = 3


class _FractionalMaxPoolNd(Module):
    _n = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None) -> None:
        super().__init__()
        n = self._n

        def tup(v):
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
        self.kernel_size = tup(kernel_size)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = tup(output_size) if output_size is not None else None
        self.output_ratio = tup(output_ratio) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"FractionalMaxPool{n}d requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        return getattr(F, f"fractional_max_pool{self._n}d")(input, self.kernel_size, self.output_size,
                                                             self.output_ratio, self.return_indices,
                                                             _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling over [N, C, H, W] (or [C, H, W]); ``_random_samples`` [N, C, 2] is a buffer."""
    _n = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling over [N, C, T, H, W] (or [C, T, H, W]); ``_random_samples`` [N, C, 3]."""
    _n = 3
