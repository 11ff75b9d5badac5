"""The CUDA kernels: one thread per output element (per input element for the
gradients), each calling the per-element function of :mod:`poolkit.backends.cells`
that the compiled CPU backend calls too.

Threads are numbered in the order of the output's memory: for channels-last
arrays the channel is the fastest-moving index, so neighbouring threads read
neighbouring addresses and the loads coalesce. Every kernel loops with the
grid's stride, so any launch size covers any array. Gradients are gathered (each
thread adds what reaches its own input element, in a fixed order): no atomics,
and the same bits on every run. float16 is read as float16 and accumulated in
float32.
"""

import math

import numpy as np
from numba import config, cuda

from .. import cells

# The simulator stands in for cuda.cbrt with a ** (1/3), which is NaN below
# zero; on a device it is libdevice's cbrt, defined everywhere as NumPy's is.
_cbrt = np.cbrt if config.ENABLE_CUDASIM else cuda.cbrt

_cell = cells.build(cuda.jit(device=True))
_extremum, _window_sum = _cell["extremum"], _cell["window_sum"]
_adaptive_output = _cell["adaptive_output"]
_max_grad, _spread_grad = _cell["max_grad"], _cell["spread_grad"]


@cuda.jit(device=True)
def _unravel(t, shape, channels_last):
    """Thread ``t``'s (n, c, d, h, w), counting in the array's memory order."""
    if channels_last:
        c = t % shape[1]
        t //= shape[1]
        i2 = t % shape[4]
        t //= shape[4]
        i1 = t % shape[3]
        t //= shape[3]
        i0 = t % shape[2]
        return t // shape[2], c, i0, i1, i2
    i2 = t % shape[4]
    t //= shape[4]
    i1 = t % shape[3]
    t //= shape[3]
    i0 = t % shape[2]
    t //= shape[2]
    return t // shape[1], t % shape[1], i0, i1, i2


@cuda.jit
def extremum_kernel(x, out, where, g, is_max, propagate, start, with_indices, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
        best, index = _extremum(x, n, c, o0, o1, o2, g, is_max, propagate, start)
        out[n, c, o0, o1, o2] = best
        if with_indices:
            where[n, c, o0, o1, o2] = index


@cuda.jit
def sum_kernel(x, out, divisor, g, zero, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
        out[n, c, o0, o1, o2] = _window_sum(x, n, c, o0, o1, o2, g, zero) / divisor[o0, o1, o2]


@cuda.jit
def adaptive_kernel(x, out, where, starts, ends, divisor, is_max, start, zero, with_indices, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
        _adaptive_output(x, out, where, n, c, o0, o1, o2, starts, ends, divisor, is_max, start, zero, with_indices)


@cuda.jit
def max_grad_kernel(grad, x, out, g, start, zero, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        out[n, c, i0, i1, i2] = _max_grad(grad, x, n, c, i0, i1, i2, g, start, zero)


@cuda.jit
def spread_kernel(values, divisor, out, g, zero, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        out[n, c, i0, i1, i2] = _spread_grad(values, divisor, n, c, i0, i1, i2, g, zero)


@cuda.jit
def claim_kernel(indices, winner, channels_last):
    """max_unpool, first pass: each target position keeps the last source that writes it."""
    for t in range(cuda.grid(1), indices.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, indices.shape, channels_last)
        source = (o0 * indices.shape[3] + o1) * indices.shape[4] + o2
        cuda.atomic.max(winner, (n, c, indices[n, c, o0, o1, o2]), source)


@cuda.jit
def unpool_kernel(values, indices, winner, out, channels_last):
    """max_unpool, second pass: the winning source writes; the result does not depend on timing."""
    for t in range(cuda.grid(1), values.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, values.shape, channels_last)
        source = (o0 * values.shape[3] + o1) * values.shape[4] + o2
        flat = indices[n, c, o0, o1, o2]
        if winner[n, c, flat] == source:
            size1, size2 = out.shape[3], out.shape[4]
            out[n, c, flat // (size1 * size2), (flat // size2) % size1, flat % size2] = values[n, c, o0, o1, o2]


@cuda.jit
def out_of_range_kernel(indices, plane, first):
    """The smallest row-major position of an index outside ``[0, plane)``."""
    for t in range(cuda.grid(1), indices.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, indices.shape, False)
        index = indices[n, c, i0, i1, i2]
        if index < 0 or index >= plane:
            cuda.atomic.min(first, 0, t)


#: Elementwise steps of Lp pooling, by code: |x|, x**p, sqrt(x), cbrt(x), x*p.
ABS, POW, SQRT, CBRT, SCALE = range(5)


@cuda.jit
def elementwise_kernel(x, out, fn, p, one, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        value = x[n, c, i0, i1, i2] * one  # exact, in one's type: float32 for float16
        if fn == ABS:
            value = abs(value)
        elif fn == POW:
            value = value**p
        elif fn == SQRT:
            value = math.sqrt(value)
        elif fn == CBRT:
            value = _cbrt(value)
        else:
            value = value * p
        out[n, c, i0, i1, i2] = value


@cuda.jit
def fill_kernel(out, value):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, False)
        out[n, c, i0, i1, i2] = value
