"""Differential tests: ``poolkit.mxnet_pooling`` against MXNet 1.9's ``mx.nd.Pooling``.

MXNet's CPU build routes float32 channels-first pooling to oneDNN and the rest
to its own kernels; both are exercised. Max pooling must match exactly
(including NaN being ignored and empty windows giving the lowest finite value);
sums and averages to within rounding.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import poolkit
from poolkit.spec import LAYOUTS

from cases import assert_close, exact, make_values

mx = pytest.importorskip("mxnet", reason="MXNet is part of the course environment; the GPU image lacks it")

# MXNet accumulates float16 sums in float16, poolkit in float32.
FLOAT16_TOLERANCE = dict(rtol=2e-2, atol=6e-2)


def mxnet_reference(x, **params):
    return mx.nd.Pooling(mx.nd.array(x, dtype=x.dtype), **params).asnumpy()


@st.composite
def mxnet_cases(draw):
    dims = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    pool_type = draw(st.sampled_from(["max", "avg", "sum", "lp"]))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    # oneDNN (float32) refuses pad >= kernel; MXNet's own kernels (float64) accept it.
    pad_limit = [k + 1 if dtype == np.float64 else k - 1 for k in kernel]
    params = dict(
        kernel=kernel,
        pool_type=pool_type,
        stride=draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * dims))),
        pad=draw(st.one_of(st.none(), st.tuples(*[st.integers(0, limit) for limit in pad_limit]))),
        pooling_convention=draw(st.sampled_from(["valid", "full"])),
        count_include_pad=draw(st.booleans()),
        global_pool=draw(st.integers(0, 5)) == 0,
    )
    if pool_type == "lp":
        params["p_value"] = draw(st.sampled_from([1, 2, 3]))
    pad = params["pad"] or (0,) * dims
    spatial = tuple(draw(st.integers(max(1, k - 2 * p), 6)) for k, p in zip(kernel, pad))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    kinds = ["ties", "normal", "nan"] if pool_type == "max" else ["ties", "normal"]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = make_values(rng, shape, dtype, draw(st.sampled_from(kinds)))
    if pool_type == "lp" and params["p_value"] == 2:
        x = np.abs(x)  # keeps the square root real for both
    return x, {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("backend", ["numpy", "naive"])
@given(case=mxnet_cases(), channels_last=st.booleans())
def test_mxnet_pooling_matches_mxnet(case, channels_last, backend):
    x, params = case
    expected = mxnet_reference(x, **params)
    if channels_last:
        layout = LAYOUTS[x.ndim - 2][1]
        moved = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        out = np.moveaxis(poolkit.mxnet_pooling(moved, layout=layout, backend=backend, **params), -1, 1)
    else:
        out = poolkit.mxnet_pooling(x, backend=backend, **params)
    assert out.dtype == x.dtype and out.shape == expected.shape
    if params["pool_type"] == "max":
        exact(out, expected)
    elif x.dtype == np.float16:
        np.testing.assert_allclose(out.astype(np.float64), expected.astype(np.float64), equal_nan=True, **FLOAT16_TOLERANCE)
    else:
        assert_close(out, expected, x.dtype)


@given(case=mxnet_cases())
def test_mxnet_accepts_what_poolkit_accepts(case):
    """The strategy only draws valid calls; MXNet must agree they are valid (it raises otherwise)."""
    x, params = case
    assume(not params["global_pool"])
    assert mxnet_reference(x, **params).shape == poolkit.mxnet_pooling(x, **params).shape


def test_the_raw_operator_defaults_to_stride_one_and_ignores_nan():
    x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 3, 3] = np.nan
    out = poolkit.mxnet_pooling(x, kernel=(2, 2))
    exact(out, mxnet_reference(x, kernel=(2, 2)))
    assert out.shape == (1, 1, 3, 3) and out[0, 0, 2, 2] == 14.0  # torch would give NaN


def test_full_convention_differs_from_ceil_mode_where_the_last_window_starts_in_the_padding():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    params = dict(kernel=(3, 3), stride=(3, 3), pad=(1, 1), pooling_convention="full")
    out = poolkit.mxnet_pooling(x, **params)
    exact(out, mxnet_reference(x, **params))
    ceil = poolkit.max_pool2d(x, 3, 3, 1, ceil_mode=True)
    assert out.shape == (1, 1, 3, 3) and ceil.shape == (1, 1, 2, 2)
    assert out[0, 0, 2, 2] == np.finfo(np.float64).min  # a window wholly in the padding


def test_global_pooling_on_ndarrays_returns_ndarrays():
    x = mx.nd.array(np.arange(32.0).reshape(2, 1, 4, 4))
    out = poolkit.mxnet_pooling(x, kernel=None, pool_type="avg", global_pool=True)
    assert isinstance(out, mx.nd.NDArray)
    exact(out.asnumpy(), mx.nd.Pooling(x, kernel=(1, 1), pool_type="avg", global_pool=True).asnumpy())


@pytest.mark.parametrize("backend", ["numpy", "naive"])
@pytest.mark.parametrize(
    "pool_type, kernel, pad",
    [("max", (2,), (2,)), ("avg", (2,), (3,)), ("max", (2, 2), (2, 0)), ("avg", (3, 3), (0, 3)), ("max", (2, 2, 2), (2, 0, 0)), ("avg", (2, 2, 2), (0, 0, 2))],
)
def test_pad_as_large_as_the_kernel_is_refused_only_where_mxnet_refuses_it(pool_type, kernel, pad, backend):
    """MXNet's oneDNN path (float32, channels first, max/avg) refuses it; its own kernels compute it."""
    x = np.arange(4.0 ** len(kernel)).reshape((1, 1) + (4,) * len(kernel))
    params = dict(kernel=kernel, pool_type=pool_type, pad=pad)
    with pytest.raises(mx.base.MXNetError, match="pad_l"):
        mxnet_reference(x.astype(np.float32), **params)
    with pytest.raises(ValueError, match=r"pad=\(" + ", ".join(map(str, pad))):
        poolkit.mxnet_pooling(x.astype(np.float32), backend=backend, **params)
    for dtype in (np.float64, np.float16):
        out = poolkit.mxnet_pooling(x.astype(dtype), backend=backend, **params)
        assert_close(out, mxnet_reference(x.astype(dtype), **params), dtype)
    sums = dict(params, pool_type="sum")
    assert_close(poolkit.mxnet_pooling(x.astype(np.float32), backend=backend, **sums), mxnet_reference(x.astype(np.float32), **sums), np.float32)
