"""The CUDA kernels: one thread per output element (per input element for the
gradients), each calling the per-element function of :mod:`poolkit.backends.cells`
that the compiled CPU backend calls too.

Threads are numbered in the order of the output's memory: for channels-last
arrays the channel is the fastest-moving index, so neighbouring threads read
neighbouring addresses and the loads coalesce. Every kernel loops with the
grid's stride, so any launch size covers any array. Gradients are gathered (each
thread adds what reaches its own input element, in a fixed order): no atomics
in what is added, and the same bits on every run. float16 is read as float16
and accumulated in float32 (float64 where the host backends use float64).

Every window kernel comes twice. The generic one (``extremum_kernel``,
``sum_kernel``, ``max_grad_kernel``, ``spread_kernel``) takes the geometry
(:func:`poolkit.backends.cells.geometry`) and the flags as run-time arguments:
one compile serves every window. A factory (:func:`extremum`,
:func:`window_sum`, :func:`max_grad`, :func:`spread`), cached per case, makes
the same kernel with the window's kernel, stride, padding and dilation, the
op, the NaN rule and the layout as compile-time constants; its max/min kernel
without indices has no index array. A case's first call runs the generic
kernel, later calls the specialised one (:func:`poolkit.backends.cuda.launch.hot`).
"""

import functools
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

#: Compiled window kernels kept per factory (cases beyond it are compiled again when they come back).
CASES = 512


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
def max_grad_kernel(grad, x, out, g, start, zero, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        out[n, c, i0, i1, i2] = _max_grad(grad, x, n, c, i0, i1, i2, g, start, zero)


@cuda.jit
def spread_kernel(values, divisor, out, g, zero, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        out[n, c, i0, i1, i2] = _spread_grad(values, divisor, n, c, i0, i1, i2, g, zero)


# --- the same kernels compiled for one case ----------------------------------------
#
# Each factory closes over the window's (kernel, stride, padding, dilation), a
# tuple of 3-tuples, and the flags, which numba then compiles in as constants;
# only the input size still comes from the arrays' shapes. The bodies are the
# generic kernels' above, less their run-time arguments.


@functools.lru_cache(maxsize=CASES)
def extremum(window, is_max, propagate, with_indices, channels_last, dtype):
    """:func:`extremum_kernel` for one case: ``kernel(x, out, where, start)`` with
    indices, else ``kernel(x, out, start)``, which has no index array at all."""
    size_k, stride, padding, dilation = window
    if with_indices:

        @cuda.jit
        def with_index(x, out, where, start):
            g = ((x.shape[2], x.shape[3], x.shape[4]), size_k, stride, padding, dilation)
            for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
                n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
                best, index = _extremum(x, n, c, o0, o1, o2, g, is_max, propagate, start)
                out[n, c, o0, o1, o2] = best
                where[n, c, o0, o1, o2] = index

        return with_index

    @cuda.jit
    def values_only(x, out, start):
        g = ((x.shape[2], x.shape[3], x.shape[4]), size_k, stride, padding, dilation)
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
            best, _ = _extremum(x, n, c, o0, o1, o2, g, is_max, propagate, start)
            out[n, c, o0, o1, o2] = best

    return values_only


@functools.lru_cache(maxsize=CASES)
def window_sum(window, channels_last, dtype):
    """:func:`sum_kernel` for one case: ``kernel(x, out, divisor, zero)``."""
    size_k, stride, padding, dilation = window

    @cuda.jit
    def sums(x, out, divisor, zero):
        g = ((x.shape[2], x.shape[3], x.shape[4]), size_k, stride, padding, dilation)
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
            out[n, c, o0, o1, o2] = _window_sum(x, n, c, o0, o1, o2, g, zero) / divisor[o0, o1, o2]

    return sums


@functools.lru_cache(maxsize=CASES)
def max_grad(window, channels_last, dtype):
    """:func:`max_grad_kernel` for one case (``dtype``: x's and grad's): ``kernel(grad, x, out, start, zero)``."""
    size_k, stride, padding, dilation = window

    @cuda.jit
    def gradient(grad, x, out, start, zero):
        g = ((x.shape[2], x.shape[3], x.shape[4]), size_k, stride, padding, dilation)
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
            out[n, c, i0, i1, i2] = _max_grad(grad, x, n, c, i0, i1, i2, g, start, zero)

    return gradient


@functools.lru_cache(maxsize=CASES)
def spread(window, channels_last, dtype):
    """:func:`spread_kernel` for one case: ``kernel(values, divisor, out, zero)``."""
    size_k, stride, padding, dilation = window

    @cuda.jit
    def gradient(values, divisor, out, zero):
        g = ((out.shape[2], out.shape[3], out.shape[4]), size_k, stride, padding, dilation)
        for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
            out[n, c, i0, i1, i2] = _spread_grad(values, divisor, n, c, i0, i1, i2, g, zero)

    return gradient


@cuda.jit
def adaptive_kernel(x, out, where, starts, ends, divisor, is_max, start, zero, with_indices, channels_last):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, out.shape, channels_last)
        _adaptive_output(x, out, where, n, c, o0, o1, o2, starts, ends, divisor, is_max, start, zero, with_indices)


@cuda.jit
def link_kernel(indices, head, following, plane, channels_last):
    """scatter_add, first pass: every source (numbered in row-major order over all
    planes) pushes itself onto the list of the position it adds to: ``head[n, c, p]``
    is the last source pushed for position p, ``following[s]`` the one pushed before s.
    The lists' order depends on timing; what is added (the second pass) does not.
    Indices outside ``[0, plane)`` (-1: a window that missed the input) add nothing."""
    size = indices.shape[2] * indices.shape[3] * indices.shape[4]
    for t in range(cuda.grid(1), indices.size, cuda.gridsize(1)):
        n, c, o0, o1, o2 = _unravel(t, indices.shape, channels_last)
        target = indices[n, c, o0, o1, o2]
        if target >= 0 and target < plane:
            source = (n * indices.shape[1] + c) * size + (o0 * indices.shape[3] + o1) * indices.shape[4] + o2
            following[source] = cuda.atomic.exch(head, (n, c, target), source)


@cuda.jit
def gather_kernel(values, head, following, out, zero, channels_last):
    """scatter_add, second pass: each position adds the values on its list in
    row-major order of their sources (the order NumPy's bincount adds them), from
    ``zero`` (float64), and rounds once to ``out``'s dtype. It walks the list once
    per value, picking the next source up: quadratic in the values per position,
    which pooling keeps at most kernel-size."""
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, c, i0, i1, i2 = _unravel(t, out.shape, channels_last)
        first = head[n, c, (i0 * out.shape[3] + i1) * out.shape[4] + i2]
        total = zero
        last = -1
        while first >= 0:
            best = -1
            s = first
            while s >= 0:
                if s > last and (best < 0 or s < best):
                    best = s
                s = following[s]
            if best < 0:
                break
            m, k, v0, v1, v2 = _unravel(best, values.shape, False)
            total += values[m, k, v0, v1, v2]
            last = best
        out[n, c, i0, i1, i2] = total


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
    """Set every element of flat ``out`` to ``value``."""
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[t] = value
