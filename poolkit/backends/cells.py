"""Per-window logic, written once and compiled twice: for the CPU and for CUDA.

:func:`build` takes a compiler (``numba.njit`` or ``numba.cuda.jit(device=True)``)
and returns the functions that compute one output element of every operation:
a window's max, min or sum, an adaptive bin's, and the gradient that reaches one
input element. :mod:`poolkit.backends.numba_` calls them from loops parallel over
(N, C) planes, :mod:`poolkit.backends.cuda` from one GPU thread per element, so the two
compiled backends cannot disagree about what a window is.

Every array here is 5-D, (N, C, D, H, W): 1-D and 2-D pooling run as 3-D
pooling whose leading window axes have size 1 (see :func:`geometry`). Each
function clips its window to the input once per axis, so the loops over the
taps need no bounds checks, and visits taps in row-major order, the order in
which :mod:`poolkit.backends.numpy_` reduces them, so that the sums agree bit for bit.
"""

import numpy as np

#: Axes every compiled kernel works on.
SPATIAL = 3


def geometry(window):
    """``window``'s parameters as five 3-tuples (in_size, kernel, stride, padding, dilation).

    Missing leading axes get size 1, kernel 1, stride 1, no padding.

    Examples
    --------
    >>> from poolkit import spec
    >>> geometry(spec.make_window((8,), 3, stride=2, padding=1))
    ((1, 1, 8), (1, 1, 3), (1, 1, 2), (0, 0, 1), (1, 1, 1))
    """
    fill = SPATIAL - window.dims

    def pad(values, value):
        return (value,) * fill + tuple(int(v) for v in values)

    return (
        pad(window.in_size, 1),
        pad(window.kernel, 1),
        pad(window.stride, 1),
        pad(window.padding, 0),
        pad(window.dilation, 1),
    )


def per_output(values, shape, dtype):
    """A per-output-position array (a divisor) as a 3-D array of ``shape``; None is all ones."""
    return np.ones(shape, dtype) if values is None else np.ascontiguousarray(values, dtype).reshape(shape)


def bin_table(bins):
    """Adaptive bins as (3, most bins) tables of starts and ends; missing leading axes get one bin."""
    bins = [(np.zeros(1, np.int64), np.ones(1, np.int64))] * (SPATIAL - len(bins)) + list(bins)
    width = max(len(starts) for starts, _ in bins)
    starts, ends = np.zeros((SPATIAL, width), np.int64), np.zeros((SPATIAL, width), np.int64)
    for axis, (s, e) in enumerate(bins):
        starts[axis, : len(s)], ends[axis, : len(e)] = s, e
    return starts, ends


def build(jit):
    """Compile the per-element functions with ``jit``; return them as a dict."""

    @jit
    def clip(o, size, kernel, stride, pad, dilation):
        """Window ``o``'s first input position and the taps ``[lo, hi)`` inside the input."""
        start = o * stride - pad
        if dilation == 1:  # the same bounds without a division (the common case, in an inner loop)
            lo = -start if start < 0 else 0
            hi = size - start
        else:
            lo = 0
            if start < 0:
                lo = (dilation - 1 - start) // dilation
            hi = (size - start + dilation - 1) // dilation
        if hi > kernel:
            hi = kernel
        return start, lo, hi

    @jit
    def extremum(x, n, c, o0, o1, o2, g, is_max, propagate, start_value):
        """Max (or min) of window (o0, o1, o2) and the flat in-plane index that won.

        Ties keep the first element; NaN wins when ``propagate``, and a later
        NaN replaces an earlier one, as in PyTorch. The index starts at the
        window's first element inside the input (-1 if there is none).
        """
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        s0, lo0, hi0 = clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
        s1, lo1, hi1 = clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
        s2, lo2, hi2 = clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
        best = start_value
        best_index = -1
        if lo0 < hi0 and lo1 < hi1 and lo2 < hi2:
            best_index = ((s0 + lo0 * dil[0]) * size[1] + s1 + lo1 * dil[1]) * size[2] + s2 + lo2 * dil[2]
        for j0 in range(lo0, hi0):
            i0 = s0 + j0 * dil[0]
            for j1 in range(lo1, hi1):
                i1 = s1 + j1 * dil[1]
                for j2 in range(lo2, hi2):
                    i2 = s2 + j2 * dil[2]
                    value = x[n, c, i0, i1, i2]
                    wins = value > best if is_max else value < best
                    if wins or (propagate and value != value):
                        best = value
                        best_index = (i0 * size[1] + i1) * size[2] + i2
        return best, best_index

    @jit
    def window_sum(x, n, c, o0, o1, o2, g, zero):
        """Sum of window (o0, o1, o2), from ``zero`` (which sets the accumulator type)."""
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        s0, lo0, hi0 = clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
        s1, lo1, hi1 = clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
        s2, lo2, hi2 = clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
        total = zero
        for j0 in range(lo0, hi0):
            i0 = s0 + j0 * dil[0]
            for j1 in range(lo1, hi1):
                i1 = s1 + j1 * dil[1]
                for j2 in range(lo2, hi2):
                    total += x[n, c, i0, i1, s2 + j2 * dil[2]]
        return total

    @jit
    def bin_extremum(x, n, c, o0, o1, o2, starts, ends, start_value):
        """Max of adaptive bin (o0, o1, o2) and its flat in-plane index (NaN wins)."""
        size1, size2 = x.shape[3], x.shape[4]
        best = start_value
        best_index = (starts[0, o0] * size1 + starts[1, o1]) * size2 + starts[2, o2]
        for i0 in range(starts[0, o0], ends[0, o0]):
            for i1 in range(starts[1, o1], ends[1, o1]):
                for i2 in range(starts[2, o2], ends[2, o2]):
                    value = x[n, c, i0, i1, i2]
                    if value > best or value != value:
                        best = value
                        best_index = (i0 * size1 + i1) * size2 + i2
        return best, best_index

    @jit
    def bin_sum(x, n, c, o0, o1, o2, starts, ends, zero):
        """Sum of adaptive bin (o0, o1, o2), innermost axis first, as the NumPy backend adds."""
        total = zero
        for i0 in range(starts[0, o0], ends[0, o0]):
            row_total = zero
            for i1 in range(starts[1, o1], ends[1, o1]):
                line_total = zero
                for i2 in range(starts[2, o2], ends[2, o2]):
                    line_total += x[n, c, i0, i1, i2]
                row_total += line_total
            total += row_total
        return total

    @jit
    def adaptive_output(x, out, where, n, c, o0, o1, o2, starts, ends, divisor, is_max, start, zero, with_indices):
        """Write adaptive bin (o0, o1, o2)'s max (and its index into ``where``) or mean into ``out``."""
        if is_max:
            best, index = bin_extremum(x, n, c, o0, o1, o2, starts, ends, start)
            out[n, c, o0, o1, o2] = best
            if with_indices:
                where[n, c, o0, o1, o2] = index
        else:
            out[n, c, o0, o1, o2] = bin_sum(x, n, c, o0, o1, o2, starts, ends, zero) / divisor[o0, o1, o2]

    @jit
    def covering(i, out, kernel, stride, pad, dilation):
        """The outputs ``[lo, hi]`` whose window span reaches input position ``i`` along one axis.

        Output ``o`` reads ``i`` when ``i + pad - o*stride`` is a multiple of
        ``dilation`` (always, without dilation) below ``kernel * dilation``.
        """
        top = i + pad
        hi = top // stride
        if hi > out - 1:
            hi = out - 1
        bottom = top - (kernel - 1) * dilation
        lo = 0
        if bottom > 0:
            lo = (bottom + stride - 1) // stride
        return top, lo, hi

    @jit
    def max_grad(grad, x, n, c, i0, i1, i2, g, start_value, zero):
        """Gradient of max pooling that reaches input (i0, i1, i2).

        It is the sum of the output gradients whose window's argmax is this
        element, added in row-major output order and in float64: the order and
        precision of the NumPy backend's bincount.
        """
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        here = (i0 * size[1] + i1) * size[2] + i2
        t0, lo0, hi0 = covering(i0, grad.shape[2], kernel[0], stride[0], pad[0], dil[0])
        t1, lo1, hi1 = covering(i1, grad.shape[3], kernel[1], stride[1], pad[1], dil[1])
        t2, lo2, hi2 = covering(i2, grad.shape[4], kernel[2], stride[2], pad[2], dil[2])
        total = zero
        for o0 in range(lo0, hi0 + 1):
            if (t0 - o0 * stride[0]) % dil[0] != 0:
                continue
            for o1 in range(lo1, hi1 + 1):
                if (t1 - o1 * stride[1]) % dil[1] != 0:
                    continue
                for o2 in range(lo2, hi2 + 1):
                    if (t2 - o2 * stride[2]) % dil[2] != 0:
                        continue
                    _, winner = extremum(x, n, c, o0, o1, o2, g, True, True, start_value)
                    if winner == here:
                        total += grad[n, c, o0, o1, o2]
        return total

    @jit
    def spread_grad(values, divisor, n, c, i0, i1, i2, g, zero):
        """Gradient of sum (average) pooling that reaches input (i0, i1, i2).

        It is the sum of each covering output's value over its divisor, added
        in the order in which the NumPy backend spreads them: taps in row-major
        order, which visits the outputs from last to first.
        """
        kernel, stride, pad, dil = g[1], g[2], g[3], g[4]
        t0, lo0, hi0 = covering(i0, values.shape[2], kernel[0], stride[0], pad[0], dil[0])
        t1, lo1, hi1 = covering(i1, values.shape[3], kernel[1], stride[1], pad[1], dil[1])
        t2, lo2, hi2 = covering(i2, values.shape[4], kernel[2], stride[2], pad[2], dil[2])
        total = zero
        for o0 in range(hi0, lo0 - 1, -1):
            if (t0 - o0 * stride[0]) % dil[0] != 0:
                continue
            for o1 in range(hi1, lo1 - 1, -1):
                if (t1 - o1 * stride[1]) % dil[1] != 0:
                    continue
                for o2 in range(hi2, lo2 - 1, -1):
                    if (t2 - o2 * stride[2]) % dil[2] == 0:
                        total += values[n, c, o0, o1, o2] / divisor[o0, o1, o2]
        return total

    return {
        "clip": clip,
        "covering": covering,
        "extremum": extremum,
        "window_sum": window_sum,
        "bin_extremum": bin_extremum,
        "bin_sum": bin_sum,
        "adaptive_output": adaptive_output,
        "max_grad": max_grad,
        "spread_grad": spread_grad,
    }
