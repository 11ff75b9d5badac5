"""Compiled CPU backend: the per-window logic of :mod:`poolkit.backends.cells`, compiled
with numba and run in parallel over the (N, C) planes.

Each kernel is a loop over the planes (``prange``, one plane per task) around
a loop over the outputs of a plane, which calls the same per-element function
that a CUDA thread calls; the window is clipped to the input once per axis, so
the innermost loop over the taps has no bounds checks. The values-only forward
(the hot path) instead works a row of outputs at a time
(:func:`_extremum_rows_kernel`, :func:`_sum_rows_kernel`), so that its innermost
loops run along memory and vectorize. numba has no float16
on the CPU, so float16 input is widened to float32 (exactly) and the result
rounded once at the end, as the NumPy backend does.

Same contract as :mod:`poolkit.backends.numpy_`; every function takes and returns
(N, C, *spatial) NumPy arrays. Compiled code is cached on disk.
"""

import numpy as np
from numba import njit, prange

from ..dispatch import entry_point
from ..spec import accumulator_dtype, start_value
from . import cells, common
from .common import like

# Not pooling, so not compiled: the host backends' shared NumPy steps.
read, arrange = common.read, common.arrange
elementwise = entry_point(common.elementwise)
first_out_of_range = entry_point(common.first_out_of_range)

_cell = cells.build(njit(cache=True))
_extremum = _cell["extremum"]
_adaptive_output = _cell["adaptive_output"]


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


@njit(cache=True)
def _row_span(shift, stride, size, width):
    """The outputs o in [lo, hi) of a row whose tap o*stride + shift lies in [0, size)."""
    lo = 0 if shift >= 0 else (-shift + stride - 1) // stride
    hi = min(width, (size - 1 - shift) // stride + 1) if size - 1 - shift >= 0 else 0
    return lo, hi


def _extremum_rows_kernel(is_max, propagate):
    """The values-only max/min forward, compiled for one ``op`` and NaN rule.

    It works a row of outputs at a time, separably, in passes that all run along
    memory: first the window's input rows are reduced element by element into
    ``column``, which has the row's padding around it; then ``column`` is reduced
    along the row at every position (one pass per tap, each a shifted
    contiguous read), and every stride-th position is an output. The largest
    (smallest) value does not depend on the order the taps come in, so this
    agrees with the per-window order (only a tie between +0.0 and -0.0 may keep
    the other zero). The op and NaN rule are compile-time constants: as run-time
    flags their selects stop vectorizing (3x slower), as do strided or
    possibly negative indices.
    """

    @njit(inline="always")
    def pick(value, best):
        wins = value > best if is_max else value < best
        if propagate:
            return (value if wins else best) if value == value else value
        return value if wins else best

    @njit(parallel=True, cache=True)
    def kernel(x, out, g, start):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        channels, width = x.shape[1], out.shape[4]
        reach = (width - 1) * stride[2] + 1  # where the outputs' first taps fall, in ``column``
        padded = max(pad[2] + size[2], reach + (kernel[2] - 1) * dil[2])
        for plane in prange(x.shape[0] * channels):
            n, c = plane // channels, plane % channels
            column = np.full(padded, start, out.dtype)  # the padding stays ``start``
            inside = column[pad[2]:pad[2] + size[2]]
            full = np.empty(reach, out.dtype)
            for o0 in range(out.shape[2]):
                for o1 in range(out.shape[3]):
                    inside[:] = start
                    for j0 in range(kernel[0]):
                        i0 = o0 * stride[0] - pad[0] + j0 * dil[0]
                        if i0 < 0 or i0 >= size[0]:
                            continue
                        for j1 in range(kernel[1]):
                            i1 = o1 * stride[1] - pad[1] + j1 * dil[1]
                            if i1 < 0 or i1 >= size[1]:
                                continue
                            line = x[n, c, i0, i1]
                            for i2 in range(size[2]):
                                inside[i2] = pick(line[i2], inside[i2])
                    full[:] = column[:reach]
                    for j2 in range(1, kernel[2]):
                        tap = column[j2 * dil[2]:]
                        for i in range(reach):
                            full[i] = pick(tap[i], full[i])
                    row = out[n, c, o0, o1]
                    for o2 in range(width):
                        row[o2] = full[o2 * stride[2]]

    return kernel


# Keyed by (is_max, propagate).
_EXTREMUM_ROWS = {(is_max, propagate): _extremum_rows_kernel(is_max, propagate) for is_max in (True, False) for propagate in (True, False)}


@njit(parallel=True, cache=True)
def _sum_rows_kernel(x, out, divisor, g):
    """Window sums, a row of outputs at a time: for each tap of the window, in
    row-major order, one pass along the row over the outputs whose tap falls
    inside the input. The row stays in cache, the innermost loop has neither a
    bounds check nor a division, and the taps are added in the order the NumPy
    backend adds them, so the sums agree bit for bit."""
    size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
    channels, width = x.shape[1], out.shape[4]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        row = np.empty(width, out.dtype)
        for o0 in range(out.shape[2]):
            for o1 in range(out.shape[3]):
                row[:] = 0
                for j0 in range(kernel[0]):
                    i0 = o0 * stride[0] - pad[0] + j0 * dil[0]
                    if i0 < 0 or i0 >= size[0]:
                        continue
                    for j1 in range(kernel[1]):
                        i1 = o1 * stride[1] - pad[1] + j1 * dil[1]
                        if i1 < 0 or i1 >= size[1]:
                            continue
                        line = x[n, c, i0, i1]
                        for j2 in range(kernel[2]):
                            shift = j2 * dil[2] - pad[2]
                            lo, hi = _row_span(shift, stride[2], size[2], width)
                            for o2 in range(lo, hi):
                                row[o2] += line[o2 * stride[2] + shift]
                for o2 in range(width):
                    out[n, c, o0, o1, o2] = row[o2] / divisor[o0, o1, o2]


@njit(parallel=True, cache=True)
def _adaptive_kernel(x, out, where, starts, ends, divisor, is_max, start, zero, with_indices):
    channels = x.shape[1]
    for plane in prange(x.shape[0] * channels):
        n, c = plane // channels, plane % channels
        for o0 in range(out.shape[2]):
            for o1 in range(out.shape[3]):
                for o2 in range(out.shape[4]):
                    _adaptive_output(x, out, where, n, c, o0, o1, o2, starts, ends, divisor, is_max, start, zero, with_indices)


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
    shape = x.shape[:2] + (1,) * (cells.SPATIAL + 2 - x.ndim) + x.shape[2:]
    # A reshape keeps a contiguous array contiguous in numba's eyes (inner loops vectorize);
    # a new axis would make it a strided one.
    return x.reshape(shape) if x.flags.c_contiguous else x[(slice(None), slice(None)) + (None,) * (cells.SPATIAL + 2 - x.ndim)]


def _geometry(window):
    """:func:`poolkit.backends.cells.geometry` as a (5, 3) array: numba's parallel loops take no nested tuples."""
    return np.array(cells.geometry(window), np.int64)


def _back(array, dims):
    """The (N, C, *spatial) view of a 5-D result."""
    return array[(slice(None), slice(None)) + (0,) * (cells.SPATIAL - dims)]


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.backends.naive.pool`."""
    x5, g = _five(x), _geometry(window)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - window.dims) + window.out_size
    acc = accumulator_dtype(x.dtype)
    out = like(x5, shape, x5.dtype if op != "sum" else acc, 0)
    if not indices:
        if op == "sum":
            _sum_rows_kernel(x5, out, cells.per_output(divisor, shape[2:], acc), g)
        else:
            _EXTREMUM_ROWS[op == "max", nan == "propagate"](x5, out, g, out.dtype.type(start_value(op, x.dtype, nan)))
        return _back(out, window.dims).astype(x.dtype, copy=False)
    where = like(x5, shape, np.int64, 0)
    start = x5.dtype.type(start_value(op, x.dtype, nan))
    _extremum_kernel(x5, out, where, g, op == "max", nan == "propagate", start, True)
    return _back(out, window.dims).astype(x.dtype, copy=False), _back(where, window.dims)


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; see :func:`poolkit.backends.naive.adaptive_pool`."""
    dims = len(bins)
    out_size = tuple(len(starts) for starts, _ in bins)
    if 0 in out_size or 0 in x.shape:
        out = np.zeros(x.shape[:2] + out_size, x.dtype)
        return (out, np.zeros(out.shape, np.int64)) if indices else out
    x5 = _five(x)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - dims) + out_size
    acc = accumulator_dtype(x.dtype)
    out = like(x5, shape, acc if op == "sum" else x5.dtype, 0)
    where = like(x5, shape, np.int64, 0) if indices else np.zeros((1,) * 5, np.int64)
    starts, ends = cells.bin_table(bins)
    start = x5.dtype.type(start_value("max", x.dtype, "propagate"))
    divisor = cells.per_output(divisor, shape[2:], acc)
    _adaptive_kernel(x5, out, where, starts, ends, divisor, op == "max", start, acc.type(0), indices)
    out = _back(out, dims).astype(x.dtype, copy=False)
    return (out, _back(where, dims)) if indices else out


@entry_point
def pool_transpose(values, window, divisor):
    """Spread each output's value over its divisor back onto its window; see :func:`poolkit.backends.naive.pool_transpose`.

    This is the host backends' tap-by-tap spread (:func:`poolkit.backends.common.spread`):
    on the CPU it is memory-bound already, and five times faster than gathering
    per input element, which only pays on a GPU (:mod:`poolkit.backends.cuda`).
    Both add in the same order.
    """
    return common.spread(values, window, divisor)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.backends.naive.max_pool_backward`."""
    x5, g5, g = _five(x), _five(grad), _geometry(window)
    # float16 gradients are summed in float64 and rounded once, straight to float16.
    out = like(g5, g5.shape[:2] + tuple(g[0]), np.float64 if grad.dtype == np.float16 else grad.dtype, 0)
    start = x5.dtype.type(start_value("max", x.dtype, "propagate"))
    _max_backward_kernel(g5, x5, out, g, start)
    return _back(out, window.dims).astype(grad.dtype, copy=False)


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices`` (the last write wins); see :func:`poolkit.backends.naive.scatter`."""
    v5, i5 = _five(values), indices[(slice(None), slice(None)) + (None,) * (cells.SPATIAL + 2 - indices.ndim)]
    dims = len(plane_shape)
    out = like(v5, v5.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), v5.dtype, 0)
    _scatter_kernel(v5, i5, out)
    return _back(out, dims).astype(values.dtype, copy=False)
