"""Differential tests: every poolkit function, on both backends, against PyTorch.

Hypothesis draws small inputs (batched or not, channels first or last, float16
to float64 and integers, with ties, NaN and infinities) and PyTorch-valid
parameters including ceil mode, padding and dilation. Max, min and indices
must match exactly; results that sum must match to within rounding.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

import poolkit
from poolkit.spec import as_tuple

from cases import FLOATS, INTEGERS, assert_close, channels_first, exact, inputs, spatial_shape, to_user, torch_input, windows

BACKENDS = ["numpy", "naive", "numba"]
DIMS = [1, 2, 3]


def pk(family, dims, backend=None, suffix=""):
    return getattr(poolkit, f"{family}{dims}d{suffix}")


def tf(family, dims, suffix=""):
    return getattr(F, f"{family}{dims}d{suffix}")


def windows_inside(spatial, kernel, stride, pad, dil, ceil):
    """Mask over the output: windows with at least one element inside the input."""
    window = poolkit.spec.make_window(spatial, kernel, stride, pad, dil, ceil)
    per_axis = [np.array([len(window.taps(axis, o)) for o in range(size)]) for axis, size in enumerate(window.out_size)]
    return math.prod(np.ix_(*per_axis)) > 0


def assert_same_indices(where, expected, x, out, op, layout, *window):
    """Indices equal PyTorch's wherever PyTorch defines them.

    Two kinds of window are left out. A dilated window can cover only padding:
    poolkit reports -1, PyTorch an index outside the plane. And a window whose
    elements all equal the starting value (-inf, or the integer minimum, for
    max) never moves off its initial index, which PyTorch's contiguous kernel
    sets to the window's first element and its channels-last kernel (chosen
    for ambiguous strides too) to 0; poolkit follows the contiguous kernel.
    """
    start = poolkit.spec.start_value(op, x.dtype, "propagate")
    inside = windows_inside(spatial_shape(x, layout), *window)
    defined = inside & (channels_first(out, layout) != start)
    exact(channels_first(where, layout)[defined], expected.numpy()[defined])
    assert (channels_first(where, layout)[..., ~inside] == -1).all()


def small(dims):
    """Inputs small enough for the naive backend's loops."""
    return inputs(dims, max_side=[9, 7, 4][dims - 1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_max_pool_matches_torch_exactly(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=FLOATS + INTEGERS, max_side=[9, 7, 4][dims - 1]))
    kernel, stride, pad, dil, ceil = data.draw(windows(spatial_shape(x, layout)))
    out, where = poolkit.__dict__[f"max_pool{dims}d"](x, kernel, stride, pad, dil, ceil, True, layout=layout, backend=backend)
    expected, expected_where = tf("max_pool", dims)(torch_input(x, layout), kernel, stride, pad, dil, ceil, True)
    assert out.dtype == x.dtype and where.dtype == np.int64
    exact(out, to_user(expected, layout))
    assert_same_indices(where, expected_where, x, out, "max", layout, kernel, stride, pad, dil, ceil)
    # Without indices the values-only path must give the same values.
    exact(pk("max_pool", dims)(x, kernel, stride, pad, dil, ceil, layout=layout, backend=backend), out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_min_pool_is_max_pool_of_the_negation(dims, backend, data):
    x, layout = data.draw(small(dims))
    kernel, stride, pad, dil, ceil = data.draw(windows(spatial_shape(x, layout)))
    out, where = pk("min_pool", dims)(x, kernel, stride, pad, dil, ceil, True, layout=layout, backend=backend)
    negated, expected_where = tf("max_pool", dims)(-torch_input(x, layout), kernel, stride, pad, dil, ceil, True)
    exact(out, to_user(-negated, layout))
    assert_same_indices(where, expected_where, x, out, "min", layout, kernel, stride, pad, dil, ceil)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_avg_pool_matches_torch(dims, backend, data):
    x, layout = data.draw(small(dims))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, fits_kernel=dims == 3))
    include = data.draw(st.booleans())
    divisor = data.draw(st.one_of(st.none(), st.sampled_from([-3, 1, 2, 7])))
    if divisor is not None and dims == 1:
        divisor = None  # torch.avg_pool1d has no divisor_override
    out = pk("avg_pool", dims)(x, kernel, stride, pad, ceil, include, divisor, layout=layout, backend=backend)
    extra = () if dims == 1 else (divisor,)
    expected = tf("avg_pool", dims)(torch_input(x, layout), kernel, stride, pad, ceil, include, *extra)
    assert out.dtype == x.dtype
    assert_close(out, to_user(expected, layout), x.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", [2, 3])
@given(data=st.data())
def test_sum_pool_is_avg_pool_with_divisor_one(dims, backend, data):
    x, layout = data.draw(small(dims))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, fits_kernel=dims == 3))
    out = pk("sum_pool", dims)(x, kernel, stride, pad, ceil, layout=layout, backend=backend)
    expected = tf("avg_pool", dims)(torch_input(x, layout), kernel, stride, pad, ceil, True, 1)
    assert_close(out, to_user(expected, layout), x.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_lp_pool_matches_torch(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=(np.float64, np.float32), max_side=[9, 7, 4][dims - 1], kinds=("ties", "normal")))
    kernel, stride, _, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, padding=False, fits_kernel=dims == 3))
    norm = data.draw(st.sampled_from([1, 2, 3, 1.5, float("inf"), -float("inf")]))
    if dims == 1 and not isinstance(kernel, int):
        kernel = kernel[0]  # torch.lp_pool1d multiplies by kernel_size, so it must be an int
    out = pk("lp_pool", dims)(x, norm, kernel, stride, ceil, layout=layout, backend=backend)
    expected = tf("lp_pool", dims)(torch_input(x, layout), norm, kernel, stride, ceil)
    assert_close(out, to_user(expected, layout), x.dtype)


@st.composite
def adaptive_sizes(draw, spatial):
    """Output sizes below, equal to and above the input's, sometimes None (keep)."""
    keep = st.none() if len(spatial) > 1 else st.nothing()  # torch's 1-D adaptive pooling has no None
    sizes = tuple(draw(st.one_of(st.integers(1, side + 2), keep)) for side in spatial)
    if all(s is not None for s in sizes) and len(set(sizes)) == 1 and draw(st.booleans()):
        return sizes[0]
    return sizes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_adaptive_pools_match_torch(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=FLOATS + INTEGERS, max_side=[9, 7, 4][dims - 1]))
    size = data.draw(adaptive_sizes(spatial_shape(x, layout)))
    # torch's adaptive max has no integer kernel: compare integers on float64 copies.
    reference = torch_input(x.astype(np.float64) if x.dtype.kind in "iu" else x, layout)
    out, where = pk("adaptive_max_pool", dims)(x, size, True, layout=layout, backend=backend)
    expected, expected_where = tf("adaptive_max_pool", dims)(reference, size, True)
    exact(out, to_user(expected, layout).astype(x.dtype))
    exact(where, to_user(expected_where, layout))
    if x.dtype.kind == "f":
        out = pk("adaptive_avg_pool", dims)(x, size, layout=layout, backend=backend)
        assert_close(out, to_user(tf("adaptive_avg_pool", dims)(reference, size), layout), x.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_global_pools_are_adaptive_pools_to_one(dims, backend, data):
    x, layout = data.draw(small(dims))
    ones = (1,) * dims
    out = pk("global_max_pool", dims)(x, layout=layout, backend=backend)
    exact(out, to_user(tf("adaptive_max_pool", dims)(torch_input(x, layout), ones), layout))
    out = pk("global_avg_pool", dims)(x, layout=layout, backend=backend)
    assert_close(out, to_user(tf("adaptive_avg_pool", dims)(torch_input(x, layout), ones), layout), x.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_max_unpool_matches_torch(dims, backend, data):
    x, layout = data.draw(small(dims))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False))
    pooled, where = tf("max_pool", dims)(torch_input(x, layout), kernel, stride, pad, 1, ceil, True)
    k, p = as_tuple("kernel_size", kernel, dims), pad
    s = k if stride is None else stride
    default = [(i - 1) * si - 2 * pi + ki for i, ki, si, pi in zip(pooled.shape[-dims:], k, s, p)]
    # Any size strictly within a stride of the default is allowed, the pooled input's own size among them.
    size = data.draw(st.sampled_from([None, tuple(spatial_shape(x, layout)), tuple(d + si - 1 for d, si in zip(default, s))]))
    assume(min(size or default) > 0)
    args = (to_user(pooled, layout), to_user(where, layout), kernel, stride, pad, size)
    try:
        expected = tf("max_unpool", dims)(pooled, where, kernel, stride, pad, size)
    except RuntimeError:  # an index beyond the (smaller) output: both must refuse
        with pytest.raises(ValueError, match="indices must lie in"):
            pk("max_unpool", dims)(*args, layout=layout, backend=backend)
        return
    exact(pk("max_unpool", dims)(*args, layout=layout, backend=backend), to_user(expected, layout))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_max_pool_backward_matches_autograd(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=(np.float64, np.float32), max_side=[9, 7, 4][dims - 1], kinds=("ties", "normal", "inf")))
    kernel, stride, pad, dil, ceil = data.draw(windows(spatial_shape(x, layout)))
    # PyTorch scatters a window that misses the input to an index outside the plane.
    assume(windows_inside(spatial_shape(x, layout), kernel, stride, pad, dil, ceil).all())
    source = torch_input(x, layout, requires_grad=True)
    pooled = tf("max_pool", dims)(source, kernel, stride, pad, dil, ceil)
    grad = torch.randn(pooled.shape, dtype=pooled.dtype, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    pooled.backward(grad)
    out = pk("max_pool", dims, suffix="_backward")(to_user(grad, layout), x, kernel, stride, pad, dil, ceil, layout=layout, backend=backend)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert_close(out, to_user(source.grad, layout), x.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_avg_pool_backward_matches_autograd(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=(np.float64, np.float32), max_side=[9, 7, 4][dims - 1], kinds=("normal",)))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, fits_kernel=dims == 3))
    include = data.draw(st.booleans())
    divisor = None if dims == 1 else data.draw(st.one_of(st.none(), st.sampled_from([-2, 3])))
    source = torch_input(x, layout, requires_grad=True)
    extra = () if dims == 1 else (divisor,)
    pooled = tf("avg_pool", dims)(source, kernel, stride, pad, ceil, include, *extra)
    grad = torch.randn(pooled.shape, dtype=pooled.dtype, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    pooled.backward(grad)
    out = pk("avg_pool", dims, suffix="_backward")(to_user(grad, layout), x, kernel, stride, pad, ceil, include, divisor, layout=layout, backend=backend)
    assert_close(out, to_user(source.grad, layout), x.dtype)


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_backends_agree_bit_for_bit_on_fixed_windows(dims, data):
    """Every backend adds a window's elements in the same order, so even sums agree exactly."""
    x, layout = data.draw(small(dims))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, fits_kernel=dims == 3))
    for family in ("avg_pool", "sum_pool"):
        first, *others = [pk(family, dims)(x, kernel, stride, pad, ceil, layout=layout, backend=b) for b in BACKENDS]
        for other in others:
            exact(other, first)


def test_torch_tensors_in_give_tensors_out_with_the_same_dtype():
    x = torch.arange(32.0, dtype=torch.float16).reshape(2, 4, 4)
    out, where = poolkit.max_pool2d(x, 2, return_indices=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float16 and where.dtype == torch.int64
    exact(out.numpy(), F.max_pool2d(x, 2).numpy())
    grad = poolkit.avg_pool2d_backward(torch.ones(2, 2, 2), x.float(), 2)
    assert isinstance(grad, torch.Tensor) and grad.shape == x.shape


def test_channels_last_is_the_same_pooling_on_a_transposed_array():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = poolkit.max_pool2d(nhwc, 3, 2, 1, layout="NHWC")
    exact(out, poolkit.max_pool2d(x, 3, 2, 1).transpose(0, 2, 3, 1))
    exact(channels_first(out, "NHWC"), F.max_pool2d(torch.tensor(x), 3, 2, 1).numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dilated_window_that_misses_the_input_gives_minus_inf_and_no_gradient(backend):
    x = np.array([[[2.0]]])  # one 1x1 plane; taps at -1 and +1 both miss it
    out, where = poolkit.max_pool2d(x, (1, 2), padding=(0, 1), dilation=(1, 2), return_indices=True, backend=backend)
    assert out.tolist() == [[[-np.inf]]] and where.tolist() == [[[-1]]]
    assert F.max_pool2d(torch.tensor(x), (1, 2), padding=(0, 1), dilation=(1, 2)).item() == -np.inf
    grad = poolkit.max_pool2d_backward(np.ones((1, 1, 1)), x, (1, 2), padding=(0, 1), dilation=(1, 2), backend=backend)
    assert grad.tolist() == [[[0.0]]]


def test_an_all_minus_inf_window_reports_its_first_element_as_pytorchs_contiguous_kernel_does():
    x = np.array([0.5, -1.5, -np.inf, np.inf]).reshape(1, 1, 2, 2)
    expected = F.max_pool2d(torch.tensor(x).contiguous(), 1, return_indices=True)[1]
    for backend in BACKENDS:
        exact(poolkit.max_pool2d(x, 1, return_indices=True, backend=backend)[1], expected.numpy())


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_the_numpy_backend_gives_the_same_answer_however_it_blocks_the_planes(monkeypatch, layout):
    """Blocks of one plane each, run on all cores, against PyTorch."""
    monkeypatch.setattr(poolkit.backends.common, "BLOCK_BYTES", 1)
    x = np.random.default_rng(1).integers(-3, 4, (3, 5, 9, 8)).astype(np.float64)  # many ties
    user = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "NHWC" else x
    t = torch.tensor(x, requires_grad=True)
    pooled, where = F.max_pool2d(t, 3, 2, 1, return_indices=True)
    out, our_where = poolkit.max_pool2d(user, 3, 2, 1, return_indices=True, layout=layout)
    exact(channels_first(out, layout), pooled.detach().numpy())
    exact(channels_first(our_where, layout), where.numpy())
    grad = np.random.default_rng(2).standard_normal(pooled.shape)
    pooled.backward(torch.tensor(grad))
    ours = poolkit.max_pool2d_backward(to_user(torch.tensor(grad), layout), user, 3, 2, 1, layout=layout)
    assert_close(channels_first(ours, layout), t.grad.numpy(), np.float64)
    averaged = poolkit.avg_pool2d(user, 3, 2, 1, count_include_pad=False, layout=layout)
    assert_close(channels_first(averaged, layout), F.avg_pool2d(t, 3, 2, 1, count_include_pad=False).detach().numpy(), np.float64)
