"""The numba backend's layout-specific CPU kernels, case by case.

Channels-first inputs run row kernels (parallel over chunks of rows, so that a
single large plane uses every core); channels-last inputs run kernels whose
innermost loop runs over the channels. Each must give the NumPy backend's
result bit for bit (sums included: they add in the same order), and PyTorch's
(exactly for max and indices, to within rounding for sums), on the awkward
spots: ties, NaN, infinities, padding, dilation, ceil mode, strides that skip
rows, one sample with many channels, float16 to float64 and integers.
``scatter_add`` is checked against ``np.add.at`` on every host backend.

The cases are fixed, not drawn, and small, so that the file runs in seconds
once numba's cache is warm.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import poolkit
from poolkit import spec
from poolkit.backends import naive, numba_, numpy_

from cases import assert_close, exact, make_values

LAYOUTS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}

# (shape in NC*spatial, kernel, stride, padding, dilation, ceil_mode)
CASES_2D = [
    ((2, 3, 9, 8), 3, 2, 1, 1, False),  # the benchmark's window, odd and even sides
    ((2, 3, 9, 8), 2, 2, 0, 1, True),  # ceil mode: a last window that hangs over
    ((1, 20, 7, 7), 3, 1, 1, 2, False),  # dilation; one sample, many channels (channel blocks)
    ((1, 1, 13, 11), (2, 3), (3, 2), (1, 1), (1, 1), True),  # one plane: parallel over rows only
    ((2, 2, 10, 9), (1, 2), (4, 3), 0, 1, False),  # strides that skip rows and columns
    ((1, 3, 6, 5), (3, 2), 1, (1, 1), (2, 1), True),  # dilation and ceil mode
]
CASES_1D = [((2, 3, 11), 3, 2, 1, 1, True), ((1, 17, 6), 2, 3, 1, 2, False)]
CASES_3D = [((1, 2, 5, 6, 4), 2, (2, 1, 2), (1, 0, 1), 1, True), ((2, 3, 4, 5, 5), 3, 2, 1, (1, 2, 1), False)]
CASES = [(2, case) for case in CASES_2D] + [(1, case) for case in CASES_1D] + [(3, case) for case in CASES_3D]
KINDS = ["ties", "nan", "inf"]


def user(x, layout):
    """An (N, C, *spatial) array as a contiguous array in ``layout``."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if layout[-1] == "C" else x


def nchw(x, layout):
    return np.moveaxis(x, -1, 1) if layout[-1] == "C" else x


def pk(family, dims, suffix=""):
    return getattr(poolkit, f"{family}{dims}d{suffix}")


def both(function, *args, **kwargs):
    """``function`` on numba and on numpy; they must agree exactly (dtype included)."""
    ours, reference = function(*args, **kwargs, backend="numba"), function(*args, **kwargs, backend="numpy")
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    exact(ours, reference)
    return ours


def inputs(dims, case, dtype, kind, seed=0):
    shape = case[0]
    rng = np.random.default_rng(seed)
    return make_values(rng, shape, dtype, kind)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims, case", CASES)
def test_max_and_min_forward_and_max_backward_match_numpy_and_torch(dims, case, kind, channels_last):
    _, kernel, stride, pad, dil, ceil = case
    layout = LAYOUTS[dims][channels_last]
    x = inputs(dims, case, np.float32, kind)
    xu = user(x, layout)
    out = both(pk("max_pool", dims), xu, kernel, stride, pad, dil, ceil, layout=layout)
    both(pk("min_pool", dims), xu, kernel, stride, pad, dil, ceil, layout=layout)
    xt = torch.tensor(x, requires_grad=True)
    expected = getattr(F, f"max_pool{dims}d")(xt, kernel, stride, pad, dil, ceil)
    exact(nchw(out, layout), expected.detach().numpy())
    grad = np.random.default_rng(1).standard_normal(expected.shape).astype(np.float32)
    back = both(pk("max_pool", dims, "_backward"), user(grad, layout), xu, kernel, stride, pad, dil, ceil, layout=layout)
    expected.backward(torch.tensor(grad))
    assert_close(nchw(back, layout), xt.grad.numpy(), np.float32)
    if channels_last:  # the result is written channels last: the transpose back was free
        assert out.flags.c_contiguous and back.flags.c_contiguous


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dims, case", [(d, (shape, k, s, p, 1, ceil)) for d, (shape, k, s, p, _, ceil) in CASES])
def test_average_forward_and_backward_match_numpy_bit_for_bit_and_torch(dims, case, channels_last):
    _, kernel, stride, pad, _, ceil = case
    layout = LAYOUTS[dims][channels_last]
    window = spec.make_window(case[0][2:], kernel, stride, pad, 1, ceil)
    x = inputs(dims, case, np.float32, "normal")
    xu = user(x, layout)
    for include_pad, override in [(True, None), (False, None), (True, 3)]:
        if dims == 3 and not all(i >= k for i, k in zip(case[0][2:], window.kernel)):
            continue  # PyTorch's 3-D average pooling wants the input at least the kernel
        out = both(pk("avg_pool", dims), xu, kernel, stride, pad, ceil, include_pad, override, layout=layout)
        xt = torch.tensor(x, requires_grad=True)
        expected = getattr(F, f"avg_pool{dims}d")(xt, kernel, stride, pad, ceil, include_pad, *([override] if dims > 1 else []))
        if dims > 1 or override is None:
            assert_close(nchw(out, layout), expected.detach().numpy(), np.float32)
        grad = np.random.default_rng(2).standard_normal(expected.shape).astype(np.float32)
        back = both(pk("avg_pool", dims, "_backward"), user(grad, layout), xu, kernel, stride, pad, ceil, include_pad, override, layout=layout)
        if dims > 1 or override is None:
            expected.backward(torch.tensor(grad))
            assert_close(nchw(back, layout), xt.grad.numpy(), np.float32)
    both(pk("sum_pool", dims), xu, kernel, stride, pad, ceil, layout=layout)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_a_window_of_negative_zeros_averages_to_positive_zero_as_numpy_and_torch_give(layout):
    # The kernels start a window's sum from its first tap plus 0.0, not from that tap itself.
    x = np.full((1, 3, 4, 4), -0.0, np.float32)
    x[..., 3] = -1.0
    xu = user(x, layout)
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:
        ours = nchw(poolkit.avg_pool2d(xu, k, s, p, layout=layout, backend="numba"), layout)
        theirs = F.avg_pool2d(torch.tensor(x), k, s, p).numpy()
        exact(ours, theirs)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(nchw(poolkit.avg_pool2d(xu, k, s, p, layout=layout, backend="numpy"), layout)))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_other_dtypes_match_numpy_bit_for_bit(dtype, channels_last):
    layout = LAYOUTS[2][channels_last]
    x = user(inputs(2, CASES_2D[0], dtype, "ties"), layout)
    kernel, stride, pad = 3, 2, 1
    both(poolkit.max_pool2d, x, kernel, stride, pad, layout=layout)
    both(poolkit.min_pool2d, x, kernel, stride, pad, 1, True, layout=layout)
    if np.dtype(dtype).kind != "f":
        return
    both(poolkit.avg_pool2d, x, kernel, stride, pad, layout=layout)
    out = poolkit.max_pool2d(x, kernel, stride, pad, layout=layout, backend="numpy")
    grad = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    both(poolkit.max_pool2d_backward, grad, x, kernel, stride, pad, layout=layout)
    both(poolkit.avg_pool2d_backward, grad, x, kernel, stride, pad, layout=layout)


def test_mxnet_rules_and_nan_ignoring_max_match_numpy_on_channels_last_input():
    x = user(inputs(2, CASES_2D[0], np.float32, "nan"), "NHWC")
    for pool_type in ("max", "avg", "sum"):
        both(poolkit.mxnet_pooling, x, (3, 3), pool_type, stride=(2, 2), pad=(1, 1), pooling_convention="full", layout="NHWC")


def test_ties_keep_the_first_and_a_later_nan_wins_in_the_gradient():
    # Every window of the ones ties: the first element of each window gets its gradient.
    x = np.ones((1, 1, 4, 4), np.float32)
    grad = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 1, 2, 2)
    for layout in ("NCHW", "NHWC"):
        back = poolkit.max_pool2d_backward(user(grad, layout), user(x, layout), 2, layout=layout, backend="numba")
        assert nchw(back, layout)[0, 0].tolist() == [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    x[0, 0, 1, 1] = x[0, 0, 0, 0] = np.nan
    for layout in ("NCHW", "NHWC"):
        back = poolkit.max_pool2d_backward(user(grad, layout), user(x, layout), 2, layout=layout, backend="numba")
        assert nchw(back, layout)[0, 0, :2, :2].tolist() == [[0, 0], [0, 1]]


def test_the_input_is_not_modified_and_calls_repeat_exactly():
    x = user(inputs(2, CASES_2D[0], np.float32, "normal"), "NHWC")
    copy = x.copy()
    grad = np.ones((2, 5, 4, 3), np.float32)
    first = poolkit.max_pool2d_backward(grad, x, 3, 2, 1, layout="NHWC", backend="numba")
    exact(first, poolkit.max_pool2d_backward(grad, x, 3, 2, 1, layout="NHWC", backend="numba"))
    exact(x, copy)


# --- scatter_add ----------------------------------------------------------------


def add_at(values, indices, plane_shape):
    """What scatter_add must give: np.add.at in float64, rounded once."""
    n, c = values.shape[:2]
    plane = int(np.prod(plane_shape))
    total = np.zeros((n, c, plane))
    keep = indices >= 0
    for i, j in np.ndindex(n, c):
        np.add.at(total[i, j], indices[i, j][keep[i, j]], values[i, j][keep[i, j]].astype(np.float64))
    return total.reshape((n, c) + tuple(plane_shape)).astype(values.dtype)


@pytest.mark.parametrize("module", [naive, numpy_, numba_])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_scatter_add_sums_repeated_indices_like_add_at(module, dtype):
    rng = np.random.default_rng(4)
    plane_shape = (3, 4)
    values = rng.standard_normal((2, 3, 5, 2)).astype(dtype)
    indices = rng.integers(-1, 12, size=values.shape).astype(np.int64)  # repeats, and -1 (adds nothing)
    got = module.scatter_add(values, indices, plane_shape)
    assert got.shape == (2, 3, 3, 4) and got.dtype == values.dtype
    exact(got, add_at(values, indices, plane_shape))
    # Channels-last views (as a channels-last call passes them) give the same.
    as_last = np.ascontiguousarray(np.moveaxis(values, 1, -1))
    where_last = np.ascontiguousarray(np.moveaxis(indices, 1, -1))
    exact(module.scatter_add(np.moveaxis(as_last, -1, 1), np.moveaxis(where_last, -1, 1), plane_shape), got)


def test_channels_last_scatter_add_splits_many_channels_of_a_large_plane_into_blocks():
    # A plane this large splits 20 channels into blocks (their sums stay within their cap),
    # the last one narrower; 3 samples. Each block must add its own channels only.
    rng = np.random.default_rng(8)
    plane_shape = (200, 201)
    assert 20 % numba_._scatter_block(3, 20, plane_shape) != 0
    values = rng.standard_normal((3, 60, 61, 20)).astype(np.float32)
    indices = rng.integers(-1, 200 * 201, size=values.shape).astype(np.int64)
    as_view = lambda a: np.moveaxis(a, -1, 1)  # the (N, C, H, W) view a channels-last call passes
    got = numba_.scatter_add(as_view(values), as_view(indices), plane_shape)
    exact(got, add_at(np.ascontiguousarray(as_view(values)), np.ascontiguousarray(as_view(indices)), plane_shape))
    assert np.moveaxis(got, 1, -1).flags.c_contiguous  # written channels last, as it came


@pytest.mark.parametrize("dims, case", CASES)
def test_scatter_add_of_the_forward_indices_is_the_max_backward(dims, case):
    _, kernel, stride, pad, dil, ceil = case
    x = inputs(dims, case, np.float32, "ties")
    window = spec.make_window(x.shape[2:], kernel, stride, pad, dil, ceil)
    _, where = numpy_.pool(x, window, "max", indices=True)
    grad = np.random.default_rng(5).standard_normal(where.shape).astype(np.float32)
    expected = numpy_.max_pool_backward(grad, x, window)
    for module in (numpy_, numba_):
        exact(module.scatter_add(grad, where, window.in_size), expected)


def test_scatter_add_1d_and_3d_planes():
    rng = np.random.default_rng(6)
    for plane_shape in [(7,), (2, 3, 4)]:
        values = rng.standard_normal((1, 2, 6)).astype(np.float32).reshape((1, 2) + (1,) * (len(plane_shape) - 1) + (6,))
        indices = rng.integers(0, int(np.prod(plane_shape)), size=values.shape).astype(np.int64)
        for module in (naive, numpy_, numba_):
            exact(module.scatter_add(values, indices, plane_shape), add_at(values, indices, plane_shape))
