"""The numba backend's channels-last window sums (average and sum pooling).

The 2x2 and 3x3 windows have kernels of their own, whose outputs inside the
input sum their taps in a register per channel; the outputs at the edges, and
every other window, take the general path. Either must give the NumPy
backend's result bit for bit (the same order of additions from 0.0, one true
division) and PyTorch's to within rounding, on interior and edge windows,
padding, ceil mode, both divisor rules, an overriding divisor, NaN, infinities,
signed zeros, odd sizes and channel counts that fill no vector.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import poolkit

from cases import assert_close, make_values

# (shape in NCHW, kernel, stride, padding, ceil_mode)
CASES = [
    ((2, 64, 12, 12), 2, 2, 0, False),  # the benchmark's window: every output inside
    ((2, 64, 13, 11), 3, 2, 1, False),  # the benchmark's other window: padded edges, odd sides
    ((1, 5, 9, 8), 3, 1, 1, True),  # stride 1; C fills no vector
    ((3, 13, 7, 9), 2, 2, 0, True),  # ceil mode: the last window hangs over
    ((1, 1, 11, 10), 3, 2, 1, True),  # one channel
    ((2, 9, 8, 7), 3, 3, 1, True),  # stride 3, ceil mode
    ((1, 3, 2, 2), 3, 2, 1, False),  # no window inside the input at all
    ((2, 17, 10, 9), (2, 3), (1, 2), (1, 1), False),  # another window: the general path only
    ((1, 2, 3, 3), 2, 1, 0, False),  # N·C small
]
DIVISORS = [(True, None), (False, None), (True, 3), (False, -2)]


def channels_last(x):
    """The (N, H, W, C) array of an (N, C, H, W) one."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def nchw(x):
    return np.moveaxis(x, -1, 1)


def identical(actual, expected):
    """Equal bit for bit: the same values, the same signs of zero, NaN where NaN."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def values(shape, kind, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "zeros":  # signed zeros among a few ones
        x = np.where(rng.random(shape) < 0.8, -0.0, 0.0)
        x[rng.random(shape) < 0.1] = 1.0
        return x.astype(dtype)
    return make_values(rng, shape, dtype, kind)


def avg(x, case, include_pad, override, backend):
    _, kernel, stride, pad, ceil = case
    return poolkit.avg_pool2d(x, kernel, stride, pad, ceil, include_pad, override, layout="NHWC", backend=backend)


@pytest.mark.parametrize("kind", ["normal", "nan", "inf", "zeros"])
@pytest.mark.parametrize("case", CASES)
def test_channels_last_average_matches_numpy_bit_for_bit_and_torch(case, kind):
    x = values(case[0], kind)
    xl = channels_last(x)
    for include_pad, override in DIVISORS:
        ours = avg(xl, case, include_pad, override, "numba")
        identical(ours, avg(xl, case, include_pad, override, "numpy"))
        assert ours.flags.c_contiguous  # written channels last
        _, kernel, stride, pad, ceil = case
        theirs = F.avg_pool2d(torch.tensor(x), kernel, stride, pad, ceil, include_pad, override)
        assert_close(nchw(ours), theirs.numpy(), np.float32)


@pytest.mark.parametrize("case", CASES[:4])
def test_channels_last_sum_pool_matches_numpy_bit_for_bit(case):
    xl = channels_last(values(case[0], "normal"))
    _, kernel, stride, pad, ceil = case
    kwargs = dict(layout="NHWC")
    identical(poolkit.sum_pool2d(xl, kernel, stride, pad, ceil, **kwargs, backend="numba"),
              poolkit.sum_pool2d(xl, kernel, stride, pad, ceil, **kwargs, backend="numpy"))


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_other_float_dtypes_match_numpy_bit_for_bit(dtype):
    case = CASES[1]
    xl = channels_last(values(case[0], "normal", dtype))
    for include_pad, override in DIVISORS:
        identical(avg(xl, case, include_pad, override, "numba"), avg(xl, case, include_pad, override, "numpy"))


def test_a_window_of_negative_zeros_averages_to_positive_zero():
    # Inside the input the sum starts from +0.0, as NumPy's does: -0.0 + -0.0 would stay -0.0.
    xl = np.full((1, 6, 6, 16), -0.0, np.float32)
    for kernel, stride, pad in [(2, 2, 0), (3, 1, 0), (3, 2, 1)]:
        ours = poolkit.avg_pool2d(xl, kernel, stride, pad, layout="NHWC", backend="numba")
        assert not np.signbit(ours).any()


def test_a_torch_channels_last_tensor_takes_the_same_path():
    x = torch.tensor(values((2, 24, 15, 14), "normal")).contiguous(memory_format=torch.channels_last)
    for kernel, stride, pad in [(2, 2, 0), (3, 2, 1)]:
        ours = poolkit.avg_pool2d(x, kernel, stride, pad, backend="numba")
        reference = poolkit.avg_pool2d(x, kernel, stride, pad, backend="numpy")
        assert isinstance(ours, torch.Tensor)
        identical(ours.numpy(), reference.numpy())
        assert_close(ours.numpy(), F.avg_pool2d(x, kernel, stride, pad).numpy(), np.float32)


def test_a_3d_window_one_deep_takes_the_2d_path_per_depth():
    x = values((2, 10, 5, 8, 7), "nan")
    xl = channels_last(x)
    for kernel, stride, pad in [((1, 3, 3), (2, 2, 1), (0, 1, 1)), ((1, 2, 2), 2, 0)]:
        ours = poolkit.avg_pool3d(xl, kernel, stride, pad, layout="NDHWC", backend="numba")
        identical(ours, poolkit.avg_pool3d(xl, kernel, stride, pad, layout="NDHWC", backend="numpy"))
        assert_close(nchw(ours), F.avg_pool3d(torch.tensor(x), kernel, stride, pad).numpy(), np.float32)
