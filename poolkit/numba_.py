"""Compiled CPU backend: the per-window logic of :mod:`poolkit.windows`, compiled
with numba and run in parallel over the (N, C) planes.

Each kernel is a loop over the planes (``prange``, one plane per task) around
a loop over the outputs of a plane, which calls the same per-element function
that a CUDA thread calls. The window is clipped to the input once per axis, so
the innermost loop over the taps has no bounds checks. numba has no float16
on the CPU, so float16 input is widened to float32 (exactly) and the result
rounded once at the end, as the NumPy backend does.

Same contract as :mod:`poolkit.numpy_`; every function takes and returns
(N, C, *spatial) NumPy arrays. Compiled code is cached on disk.
"""

import numpy as np
from numba import njit, prange

from . import windows
from .numpy_ import _like, elementwise, first_out_of_range  # noqa: F401 (elementwise work is NumPy's)
from .spec import accumulator_dtype, start_value

_cell = windows.build(njit(cache=True))
_extremum, _window_sum = _cell["extremum"], _cell["window_sum"]
_bin_extremum, _bin_sum, _spread_grad = _cell["bin_extremum"], _cell["bin_sum"], _cell["spread_grad"]


@njit(parallel=True, cache=True)
def _extremum_kernel(x, out, where, g, is_max, propagate, start, with_indices):
    channels = x.shape[1]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for o0 in range(out.shape[2]):
            for o1 in range(out.shape[3]):
                for o2 in range(out.shape[4]):
                    best, index = _extremum(x, n, c, o0, o1, o2, g, is_max, propagate, start)
                    out[n, c, o0, o1, o2] = best
                    if with_indices:
                        where[n, c, o0, o1, o2] = index


@njit(parallel=True, cache=True)
def _sum_kernel(x, out, divisor, g, zero):
    channels = x.shape[1]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for o0 in range(out.shape[2]):
            for o1 in range(out.shape[3]):
                for o2 in range(out.shape[4]):
                    out[n, c, o0, o1, o2] = _window_sum(x, n, c, o0, o1, o2, g, zero) / divisor[o0, o1, o2]


@njit(parallel=True, cache=True)
def _adaptive_kernel(x, out, where, starts, ends, divisor, is_max, start, zero, with_indices):
    channels = x.shape[1]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for o0 in range(out.shape[2]):
            for o1 in range(out.shape[3]):
                for o2 in range(out.shape[4]):
                    if is_max:
                        best, index = _bin_extremum(x, n, c, o0, o1, o2, starts, ends, start)
                        out[n, c, o0, o1, o2] = best
                        if with_indices:
                            where[n, c, o0, o1, o2] = index
                    else:
                        out[n, c, o0, o1, o2] = _bin_sum(x, n, c, o0, o1, o2, starts, ends, zero) / divisor[o0, o1, o2]


@njit(parallel=True, cache=True)
def _max_backward_kernel(grad, x, out, g, start):
    """Each plane adds its gradients at their argmax in row-major output order,
    in float64: deterministic without atomics, since a plane is one task."""
    channels = x.shape[1]
    size = x.shape[2:]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        total = np.zeros(size[0] * size[1] * size[2], np.float64)
        for o0 in range(grad.shape[2]):
            for o1 in range(grad.shape[3]):
                for o2 in range(grad.shape[4]):
                    _, index = _extremum(x, n, c, o0, o1, o2, g, True, True, start)
                    if index >= 0:
                        total[index] += grad[n, c, o0, o1, o2]
        for i0 in range(size[0]):
            for i1 in range(size[1]):
                for i2 in range(size[2]):
                    out[n, c, i0, i1, i2] = total[(i0 * size[1] + i1) * size[2] + i2]


@njit(parallel=True, cache=True)
def _spread_kernel(values, divisor, out, g, zero):
    channels = out.shape[1]
    for plane in prange(out.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for i0 in range(out.shape[2]):
            for i1 in range(out.shape[3]):
                for i2 in range(out.shape[4]):
                    out[n, c, i0, i1, i2] = _spread_grad(values, divisor, n, c, i0, i1, i2, g, zero)


@njit(parallel=True, cache=True)
def _scatter_kernel(values, indices, out):
    """Per plane, in row-major order, so the last write to a position wins."""
    channels = values.shape[1]
    size1, size2 = out.shape[3], out.shape[4]
    for plane in prange(values.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for o0 in range(values.shape[2]):
            for o1 in range(values.shape[3]):
                for o2 in range(values.shape[4]):
                    flat = indices[n, c, o0, o1, o2]
                    i2 = flat % size2
                    i1 = (flat // size2) % size1
                    out[n, c, flat // (size1 * size2), i1, i2] = values[n, c, o0, o1, o2]


# --- the backend contract ------------------------------------------------------


def _five(x):
    """``x`` (N, C, *spatial) as an (N, C, D, H, W) view; float16 widened to float32."""
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    return x[(slice(None), slice(None)) + (None,) * (windows.SPATIAL + 2 - x.ndim)]


def _geometry(window):
    """:func:`poolkit.windows.geometry` as a (5, 3) array: numba's parallel loops take no nested tuples."""
    return np.array(windows.geometry(window), np.int64)


def _back(array, dims):
    """The (N, C, *spatial) view of a 5-D result."""
    return array[(slice(None), slice(None)) + (0,) * (windows.SPATIAL - dims)]


def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.naive.pool`."""
    x5, g = _five(x), _geometry(window)
    shape = x5.shape[:2] + (1,) * (windows.SPATIAL - window.dims) + window.out_size
    acc = accumulator_dtype(x.dtype)
    out = _like(x5, shape, x5.dtype if op != "sum" else acc, 0)
    if op == "sum":
        _sum_kernel(x5, out, windows.per_output(divisor, shape[2:], acc), g, acc.type(0))
        return _back(out, window.dims).astype(x.dtype, copy=False)
    where = _like(x5, shape, np.int64, 0) if indices else np.zeros((1,) * 5, np.int64)
    start = x5.dtype.type(start_value(op, x.dtype, nan))
    _extremum_kernel(x5, out, where, g, op == "max", nan == "propagate", start, indices)
    out = _back(out, window.dims).astype(x.dtype, copy=False)
    return (out, _back(where, window.dims)) if indices else out


def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; see :func:`poolkit.naive.adaptive_pool`."""
    dims = len(bins)
    out_size = tuple(len(starts) for starts, _ in bins)
    if 0 in out_size or 0 in x.shape:
        out = np.zeros(x.shape[:2] + out_size, x.dtype)
        return (out, np.zeros(out.shape, np.int64)) if indices else out
    x5 = _five(x)
    shape = x5.shape[:2] + (1,) * (windows.SPATIAL - dims) + out_size
    acc = accumulator_dtype(x.dtype)
    out = _like(x5, shape, acc if op == "sum" else x5.dtype, 0)
    where = _like(x5, shape, np.int64, 0) if indices else np.zeros((1,) * 5, np.int64)
    starts, ends = windows.bin_table(bins)
    start = x5.dtype.type(start_value("max", x.dtype, "propagate"))
    divisor = windows.per_output(divisor, shape[2:], acc)
    _adaptive_kernel(x5, out, where, starts, ends, divisor, op == "max", start, acc.type(0), indices)
    out = _back(out, dims).astype(x.dtype, copy=False)
    return (out, _back(where, dims)) if indices else out


def pool_transpose(values, window, divisor):
    """Spread each output's value over its divisor back onto its window; see :func:`poolkit.naive.pool_transpose`."""
    v5, g = _five(values), _geometry(window)
    acc = accumulator_dtype(values.dtype)
    out = _like(v5, v5.shape[:2] + tuple(g[0]), acc, 0)
    _spread_kernel(v5, windows.per_output(divisor, v5.shape[2:], acc), out, g, acc.type(0))
    return _back(out, window.dims).astype(values.dtype, copy=False)


def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.naive.max_pool_backward`."""
    x5, g5, g = _five(x), _five(grad), _geometry(window)
    # float16 gradients are summed in float64 and rounded once, straight to float16.
    out = _like(g5, g5.shape[:2] + tuple(g[0]), np.float64 if grad.dtype == np.float16 else grad.dtype, 0)
    start = x5.dtype.type(start_value("max", x.dtype, "propagate"))
    _max_backward_kernel(g5, x5, out, g, start)
    return _back(out, window.dims).astype(grad.dtype, copy=False)


def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices`` (the last write wins); see :func:`poolkit.naive.scatter`."""
    v5, i5 = _five(values), indices[(slice(None), slice(None)) + (None,) * (windows.SPATIAL + 2 - indices.ndim)]
    dims = len(plane_shape)
    out = _like(v5, v5.shape[:2] + (1,) * (windows.SPATIAL - dims) + tuple(plane_shape), v5.dtype, 0)
    _scatter_kernel(v5, i5, out)
    return _back(out, dims).astype(values.dtype, copy=False)
