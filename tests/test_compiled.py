"""The compiled backends against the NumPy backend, bit for bit.

``numba`` (CPU) and ``cuda`` run the same per-window functions
(:mod:`poolkit.backends.cells`) and visit the taps in the NumPy backend's order, so
every result must be identical, sums included, NaN and ties included. The one
exception is Lp pooling's powers: ``pow`` and ``cbrt`` are library functions
whose last bit differs between NumPy versions and CUDA's libdevice, so those
results must agree to within 2 units in the last place. Without a
GPU, ``cuda`` runs on numba's CUDA simulator (conftest sets
``NUMBA_ENABLE_CUDASIM=1``), one Python thread per GPU thread: the inputs here
are small for that reason.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import poolkit

from cases import FLOATS, INTEGERS, exact, inputs, spatial_shape, windows

DIMS = [1, 2, 3]
COMPILED = ["numba", "cuda"]
# The simulator is slow: smaller cases for cuda.
SIDES = {"numba": [9, 7, 4], "cuda": [7, 5, 3]}


def pk(name, dims, suffix=""):
    return getattr(poolkit, f"{name}{dims}d{suffix}")


def host(result):
    """A backend's result as NumPy (cuda gives NumPy back for NumPy input already)."""
    return tuple(map(np.asarray, result)) if isinstance(result, tuple) else np.asarray(result)


def same(backend, function, *args, ulps=0, **kwargs):
    """``function`` on ``backend`` gives what it gives on numpy, dtype included:
    exactly, or to within ``ulps`` units in the last place."""
    ours, reference = host(function(*args, **kwargs, backend=backend)), host(function(*args, **kwargs, backend="numpy"))
    for a, b in zip(*((ours, reference) if isinstance(ours, tuple) else ((ours,), (reference,)))):
        assert a.dtype == b.dtype and a.shape == b.shape
        if not ulps:
            exact(a, b)
            continue
        assert (np.isnan(a) == np.isnan(b)).all()
        finite = np.isfinite(b)
        exact(a[~finite & ~np.isnan(b)], b[~finite & ~np.isnan(b)])
        assert (np.abs(a[finite] - b[finite]) <= ulps * np.spacing(np.abs(b[finite]))).all(), (a, b)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_window_pooling_matches_numpy_bit_for_bit(backend, dims, data):
    x, layout = data.draw(inputs(dims, dtypes=FLOATS + INTEGERS, max_side=SIDES[backend][dims - 1]))
    kernel, stride, pad, dil, ceil = data.draw(windows(spatial_shape(x, layout)))
    for name in ("max_pool", "min_pool"):
        same(backend, pk(name, dims), x, kernel, stride, pad, dil, ceil, True, layout=layout)
        same(backend, pk(name, dims), x, kernel, stride, pad, dil, ceil, layout=layout)
    if x.dtype.kind == "f":
        grad = np.random.default_rng(0).standard_normal(host(pk("max_pool", dims)(x, kernel, stride, pad, dil, ceil, layout=layout)).shape)
        same(backend, pk("max_pool", dims, "_backward"), grad.astype(x.dtype), x, kernel, stride, pad, dil, ceil, layout=layout)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_averages_sums_and_lp_match_numpy_bit_for_bit(backend, dims, data):
    x, layout = data.draw(inputs(dims, max_side=SIDES[backend][dims - 1]))
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, fits_kernel=dims == 3))
    include_pad = data.draw(st.booleans())
    override = data.draw(st.sampled_from([None, 3, -2]))
    same(backend, pk("avg_pool", dims), x, kernel, stride, pad, ceil, include_pad, override, layout=layout)
    same(backend, pk("sum_pool", dims), x, kernel, stride, pad, ceil, layout=layout)
    lp_kernel, lp_stride, _, _, lp_ceil = data.draw(windows(spatial_shape(x, layout), dilation=False, padding=False, fits_kernel=dims == 3))
    lp_kernel = lp_kernel[0] if dims == 1 and isinstance(lp_kernel, tuple) else lp_kernel  # lp_pool1d takes an int
    norm = data.draw(st.sampled_from([1.0, 2.0, 3.5, np.inf, -np.inf]))
    same(backend, pk("lp_pool", dims), x, norm, lp_kernel, lp_stride, lp_ceil, layout=layout, ulps=2)
    out_shape = host(pk("avg_pool", dims)(x, kernel, stride, pad, ceil, layout=layout)).shape
    grad = np.random.default_rng(1).standard_normal(out_shape).astype(x.dtype)
    same(backend, pk("avg_pool", dims, "_backward"), grad, x, kernel, stride, pad, ceil, include_pad, override, layout=layout)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_adaptive_global_and_unpool_match_numpy_bit_for_bit(backend, dims, data):
    x, layout = data.draw(inputs(dims, dtypes=FLOATS + INTEGERS, max_side=SIDES[backend][dims - 1]))
    size = tuple(data.draw(st.integers(1, 5)) for _ in range(dims))
    same(backend, pk("adaptive_max_pool", dims), x, size, True, layout=layout)
    same(backend, pk("global_max_pool", dims), x, layout=layout)
    if x.dtype.kind == "f":
        same(backend, pk("adaptive_avg_pool", dims), x, size, layout=layout)
        same(backend, pk("global_avg_pool", dims), x, layout=layout)
    # Unpooling scatters into a plane of the input's size: indices from max pooling always fit.
    kernel, stride, pad, _, ceil = data.draw(windows(spatial_shape(x, layout), dilation=False))
    pooled, where = pk("max_pool", dims)(x, kernel, stride, pad, 1, ceil, True, layout=layout)
    spatial = tuple(spatial_shape(x, layout))
    try:
        same(backend, pk("max_unpool", dims), pooled, where, kernel, stride, pad, spatial, layout=layout)
    except ValueError as error:
        assert "output_size must lie strictly between" in str(error)


@pytest.mark.parametrize("backend", COMPILED)
@given(data=st.data())
def test_mxnet_pooling_matches_numpy_bit_for_bit(backend, data):
    dims = data.draw(st.sampled_from(DIMS))
    x, layout = data.draw(inputs(dims, max_side=SIDES[backend][dims - 1], batch=True))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(dims))
    pad = tuple(data.draw(st.integers(0, k - 1)) for k in kernel)
    for pool_type in ("max", "avg", "sum", "lp"):
        try:
            poolkit.mxnet_pooling(x, kernel, pool_type, pad=pad, pooling_convention="full", layout=layout, backend="numpy")
        except ValueError:
            continue
        ulps = 2 if pool_type == "lp" else 0
        same(backend, poolkit.mxnet_pooling, x, kernel, pool_type, pad=pad, pooling_convention="full", layout=layout, p_value=3, ulps=ulps)


def test_unpool_keeps_the_last_write_to_a_position_on_every_backend():
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    indices = np.array([[[2, 0, 2, 2]]])  # three sources write position 2; the last (4.0) wins
    for backend in ["numpy", *COMPILED]:
        assert host(poolkit.max_unpool1d(x, indices, 2, backend=backend)).tolist() == [[[2.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]


def test_unpool_names_the_first_index_out_of_range_on_cuda():
    with pytest.raises(ValueError, match="got index 7"):
        poolkit.max_unpool1d(np.ones((1, 1, 3)), np.array([[[0, 7, -1]]]), 2, backend="cuda")


def test_device_arrays_stay_on_the_device_and_auto_picks_cuda_for_them():
    from numba import cuda

    x = np.random.default_rng(3).standard_normal((2, 5, 5, 3)).astype(np.float32)
    device = cuda.to_device(x)
    out, where = poolkit.max_pool2d(device, 3, 2, 1, return_indices=True, layout="NHWC")  # backend="auto"
    assert hasattr(out, "copy_to_host") and hasattr(where, "copy_to_host")
    expected, expected_where = poolkit.max_pool2d(x, 3, 2, 1, return_indices=True, layout="NHWC", backend="numpy")
    exact(out.copy_to_host(), expected)
    exact(where.copy_to_host(), expected_where)


def test_auto_picks_numba_for_large_contiguous_host_arrays_in_either_layout_and_numpy_otherwise(monkeypatch):
    import torch

    from poolkit import dispatch

    small, large = np.zeros((1, 4, 4)), np.zeros((1, 512, 512))
    assert dispatch.auto_backend(small, None) == "numpy"
    assert dispatch.auto_backend(large, None) == "numba"
    assert dispatch.auto_backend(torch.zeros(1, 512, 512), None) == "numba"
    # A transposed view is not contiguous: numba's kernels would read it strided.
    assert dispatch.auto_backend(np.zeros((512, 512, 2)).transpose(2, 0, 1), None) == "numpy"
    # Channels-last arrays have kernels of their own, whose innermost loop runs over the channels.
    nchw, nhwc = np.zeros((2, 8, 128, 128), np.float32), np.zeros((2, 128, 128, 8), np.float32)
    assert dispatch.Call("f", nchw, 2, "NCHW", "auto", integers=False).backend.__name__ == "poolkit.backends.numba_"
    assert dispatch.Call("f", nhwc, 2, "NHWC", "auto", integers=False).backend.__name__ == "poolkit.backends.numba_"
    assert dispatch.Call("f", np.zeros((1, 16, 16, 8), np.float32), 2, "NHWC", "auto", integers=False).backend.__name__ == "poolkit.backends.numpy_"
    assert dispatch.Call("f", nhwc, 2, "NHWC", "numpy", integers=False).backend.__name__ == "poolkit.backends.numpy_"


def _python(code, **env):
    """Run ``code`` in a fresh interpreter; return (exit code, stderr)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_without_a_gpu_cuda_says_so_and_everything_else_works():
    code = (
        "import numpy as np, poolkit\n"
        "x = np.arange(16.0).reshape(1, 4, 4)\n"
        "assert poolkit.max_pool2d(x, 2).tolist() == [[[5.0, 7.0], [13.0, 15.0]]]\n"
        "assert poolkit.max_pool2d(x, 2, backend='numba').tolist() == [[[5.0, 7.0], [13.0, 15.0]]]\n"
        "poolkit.max_pool2d(x, 2, backend='cuda')\n"
    )
    code_, output = _python(code, NUMBA_ENABLE_CUDASIM="0", CUDA_VISIBLE_DEVICES="")
    assert code_ == 1 and "RuntimeError: max_pool2d: backend='cuda' found no CUDA device" in output, output


def test_without_numba_poolkit_imports_and_auto_falls_back_to_numpy():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np, poolkit\n"
        "assert poolkit.max_pool2d(np.zeros((1, 512, 512)), 2).shape == (1, 256, 256)\n"
        "poolkit.max_pool2d(np.zeros((1, 4, 4)), 2, backend='numba')\n"
    )
    code_, output = _python(code)
    assert code_ == 1 and "ValueError: max_pool2d: backend='numba' needs numba" in output, output


@pytest.mark.parametrize("backend", COMPILED)
def test_the_extreme_integers_come_out_unrounded(backend):
    """int64 values beyond 2**53 must never pass through a float on the way out."""
    big = np.iinfo(np.int64).max
    x = np.array([[[big - 1, big, 3, -big]]], np.int64)
    assert host(poolkit.max_pool1d(x, 2, backend=backend)).tolist() == [[[big, 3]]]
    assert host(poolkit.min_pool1d(x, 2, backend=backend)).tolist() == [[[big - 1, -big]]]
    # A dilated window that misses the input gives the start value itself.
    missed = host(poolkit.min_pool1d(np.array([[[3]]]), 2, padding=1, dilation=2, backend=backend))
    assert missed.tolist() == [[[big]]]
