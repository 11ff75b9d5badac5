"""Compiled CPU backend: the per-window logic of :mod:`poolkit.backends.cells`, compiled
with numba and run in parallel.

Two memory layouts get kernels of their own:

- channels first (the (N, C, *spatial) view is contiguous): the kernels work
  a row of outputs (or of input gradients) at a time, so that their innermost
  loops run along a row in memory and vectorize; they run in parallel over
  chunks of (plane, row) pairs, so that a few large planes still use every core
  (:func:`_extremum_rows_kernel`, :func:`_sum_rows_kernel`,
  :func:`_spread_rows_kernel`; max pooling's backward pass runs per plane,
  :func:`_max_backward_rows_kernel`).
- channels last (the view is a transposed (N, *spatial, C) array, as
  ``layout="NHWC"`` gives): the wrapper transposes the view back (for free) and
  runs kernels whose innermost loop runs over the channels, which lie next to
  each other in memory; the result is written channels last too, so that the
  caller's transpose back is free (:func:`_extremum_last_kernel`,
  :func:`_sum_last_kernel`, :func:`_spread_last_kernel`,
  :func:`_max_backward_last_kernel`).

Everything else (indices, adaptive bins, unpooling, and inputs strided in
other ways) runs the per-element functions of :mod:`poolkit.backends.cells`,
one (N, C) plane per task, which a CUDA thread also calls.

Every kernel visits a window's taps in row-major order, the order in which
:mod:`poolkit.backends.numpy_` reduces them, and adds a gradient's shares in
the order NumPy adds them, so that sums agree bit for bit; max pooling's
gradient is summed in float64, as NumPy's bincount sums it. numba has no
float16 on the CPU, so float16 input is widened to float32 (exactly) and the
result rounded once at the end, as the NumPy backend does.

Same contract as :mod:`poolkit.backends.numpy_`; every function takes and returns
(N, C, *spatial) NumPy arrays. Compiled code is cached on disk; the kernels
are compiled once per dtype and layout, never per call.
"""

import math

import numpy as np
from numba import get_num_threads, njit, prange

from ..dispatch import entry_point
from ..spec import accumulator_dtype, start_value
from . import cells, common
from .common import like, new_array

# Not pooling, so not compiled: the host backends' shared NumPy steps.
read, arrange = common.read, common.arrange
elementwise = entry_point(common.elementwise)
first_out_of_range = entry_point(common.first_out_of_range)

_cell = cells.build(njit(cache=True))
_extremum = _cell["extremum"]
_adaptive_output = _cell["adaptive_output"]
_clip = _cell["clip"]
_covering = _cell["covering"]

#: The strides that get a kernel compiled for them: a constant stride lets the
#: strided loads and stores along a row vectorize (0: any stride, at run time).
_STEPS = (0, 2)
#: Chunks of work per thread: enough that a slow thread does not hold up the rest.
_CHUNKS_PER_THREAD = 8


def _step(window):
    """The compiled variant for ``window``'s stride along its last axis."""
    return window.stride[-1] if window.stride[-1] in _STEPS else 0


def _chunks(tasks):
    """How many chunks to split ``tasks`` equal tasks into, for ``prange``."""
    return max(1, min(tasks, _CHUNKS_PER_THREAD * get_num_threads()))


@njit(cache=True)
def _row_span(shift, stride, size, width):
    """The outputs o in [lo, hi) of a row whose tap o*stride + shift lies in [0, size)."""
    lo = 0 if shift >= 0 else (-shift + stride - 1) // stride
    hi = min(width, (size - 1 - shift) // stride + 1) if size - 1 - shift >= 0 else 0
    return lo, hi


@njit(cache=True)
def _row_spans(g, stride, width):
    """:func:`_row_span` of each tap along the row (axis 2), as a (kernel, 3) table of
    (shift, lo, hi): the same for every row, so computed once per call."""
    spans = np.empty((g[1, 2], 3), np.int64)
    for j2 in range(g[1, 2]):
        shift = j2 * g[4, 2] - g[3, 2]
        lo, hi = _row_span(shift, stride, g[0, 2], width)
        spans[j2, 0], spans[j2, 1], spans[j2, 2] = shift, lo, hi
    return spans


# --- channels first -----------------------------------------------------------


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
    def kernel(x, out, g, start, chunks):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        channels, width = x.shape[1], out.shape[4]
        rows = out.shape[2] * out.shape[3]
        tasks = x.shape[0] * channels * rows
        reach = (width - 1) * stride[2] + 1  # where the outputs' first taps fall, in ``column``
        padded = max(pad[2] + size[2], reach + (kernel[2] - 1) * dil[2])
        for chunk in prange(chunks):
            column = np.full(padded, start, out.dtype)  # the padding stays ``start``
            inside = column[pad[2]:pad[2] + size[2]]
            full = np.empty(reach, out.dtype)
            for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
                plane, r = task // rows, task % rows
                n, c = plane // channels, plane % channels
                o0, o1 = r // out.shape[3], r % out.shape[3]
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


def _sum_rows_kernel(step):
    """Window sums, a row of outputs at a time, compiled for stride ``step``
    along the row (0: any). For each tap of the window, in row-major order, one
    pass along the row over the outputs whose tap falls inside the input. The
    row stays in cache, the innermost loop has neither a bounds check nor a
    division, and the taps are added in the order the NumPy backend adds them,
    so the sums agree bit for bit."""

    @njit(parallel=True, cache=True)
    def kernel(x, out, divisor, g, chunks):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        s2 = step if step else stride[2]
        channels, width = x.shape[1], out.shape[4]
        spans = _row_spans(g, s2, width)
        rows = out.shape[2] * out.shape[3]
        tasks = x.shape[0] * channels * rows
        whole = size[2] // s2  # the full groups of ``s2`` elements of an input row
        for chunk in prange(chunks):
            row = np.empty(width, out.dtype)
            # With a constant stride, each input row is first split into its ``s2``
            # phases (phase r holds elements r, r + s2, ...), so that every tap reads
            # one phase contiguously; the values, and so the sums, are the same.
            phases = np.empty((max(s2, 1), whole + 1), out.dtype)
            for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
                plane, r = task // rows, task % rows
                n, c = plane // channels, plane % channels
                o0, o1 = r // out.shape[3], r % out.shape[3]
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
                        if step > 1:
                            for q in range(whole):
                                for p in range(step):
                                    phases[p, q] = line[q * step + p]
                            for i2 in range(whole * step, size[2]):
                                phases[i2 - whole * step, whole] = line[i2]
                        for j2 in range(kernel[2]):
                            shift, lo, hi = spans[j2, 0], spans[j2, 1], spans[j2, 2]
                            # Slices, so that every index counts up from 0: numba's check for
                            # negative indices then folds away, and the loop vectorizes.
                            target = row[lo:hi]
                            if step > 1:
                                source = phases[shift % step, lo + shift // step:hi + shift // step]
                                for i in range(hi - lo):
                                    target[i] += source[i]
                            else:
                                source = line[lo * s2 + shift:]
                                for i in range(hi - lo):
                                    target[i] += source[i * s2]
                for o2 in range(width):
                    out[n, c, o0, o1, o2] = row[o2] / divisor[o0, o1, o2]

    return kernel


_SUM_ROWS = {step: _sum_rows_kernel(step) for step in _STEPS}


def _spread_rows_kernel(step):
    """Average pooling's backward pass, a row of the input gradient at a time,
    compiled for stride ``step`` along the row (0: any).

    Each input row gathers from the output rows whose windows cover it, last to
    first (its taps in row-major order), and scatters each output's share along
    the row one tap at a time: every input element receives its shares in the
    order of the NumPy backend's tap-by-tap spread, so the two agree bit for
    bit. Rows are independent: no two tasks write the same element.
    """

    @njit(parallel=True, cache=True)
    def kernel(values, divisor, out, g, chunks):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        s2 = step if step else stride[2]
        channels, width = values.shape[1], values.shape[4]
        spans = _row_spans(g, s2, width)
        rows = size[0] * size[1]
        tasks = values.shape[0] * channels * rows
        whole = size[2] // s2
        for chunk in prange(chunks):
            share = np.empty(width, out.dtype)
            # With a constant stride the row is gathered in its ``s2`` phases (phase p
            # holds elements p, p + s2, ...), where every tap's stores are contiguous,
            # and interleaved into the row at the end; each element adds the same terms.
            phases = np.empty((max(s2, 1), whole + 1), out.dtype)
            for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
                plane, r = task // rows, task % rows
                n, c = plane // channels, plane % channels
                i0, i1 = r // size[1], r % size[1]
                line = out[n, c, i0, i1]
                if step > 1:
                    phases[:] = 0
                else:
                    line[:] = 0
                t0, lo0, hi0 = _covering(i0, values.shape[2], kernel[0], stride[0], pad[0], dil[0])
                t1, lo1, hi1 = _covering(i1, values.shape[3], kernel[1], stride[1], pad[1], dil[1])
                for o0 in range(hi0, lo0 - 1, -1):
                    if (t0 - o0 * stride[0]) % dil[0] != 0:
                        continue
                    for o1 in range(hi1, lo1 - 1, -1):
                        if (t1 - o1 * stride[1]) % dil[1] != 0:
                            continue
                        for o2 in range(width):
                            share[o2] = values[n, c, o0, o1, o2] / divisor[o0, o1, o2]
                        for j2 in range(kernel[2]):
                            shift, lo, hi = spans[j2, 0], spans[j2, 1], spans[j2, 2]
                            source = share[lo:hi]
                            if step > 1:
                                target = phases[shift % step, lo + shift // step:hi + shift // step]
                                for i in range(hi - lo):
                                    target[i] += source[i]
                            else:
                                target = line[lo * s2 + shift:]
                                for i in range(hi - lo):
                                    target[i * s2] += source[i]
                if step > 1:
                    for q in range(whole):
                        for p in range(step):
                            line[q * step + p] = phases[p, q]
                    for i2 in range(whole * step, size[2]):
                        line[i2] = phases[i2 - whole * step, whole]

    return kernel


_SPREAD_ROWS = {step: _spread_rows_kernel(step) for step in _STEPS}


def _max_backward_rows_kernel(step):
    """Max pooling's backward pass, one plane per task, compiled for stride
    ``step`` along the row (0: any).

    A row of outputs at a time, the argmax of every window of the row is found
    in one pass per tap (row-major order, so ties keep the first, and a NaN
    wins), along the row; then each output's gradient is added at its argmax,
    in row-major output order and in float64: deterministic without atomics,
    in the order and precision of the NumPy backend's bincount.
    """

    @njit(parallel=True, cache=True)
    def kernel(grad, x, out, g, start):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        s2 = step if step else stride[2]
        channels, width = x.shape[1], grad.shape[4]
        spans = _row_spans(g, s2, width)
        for plane in prange(x.shape[0] * channels):
            n, c = plane // channels, plane % channels
            total = np.zeros(size[0] * size[1] * size[2], np.float64)
            best = np.empty(width, x.dtype)
            where = np.empty(width, np.int64)
            # With a constant stride each input row is split into its phases first,
            # so that every tap reads one phase contiguously (as in the sums).
            whole = size[2] // s2
            phases = np.empty((max(s2, 1), whole + 1), x.dtype)
            for o0 in range(grad.shape[2]):
                t0, lo0, hi0 = _clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
                for o1 in range(grad.shape[3]):
                    t1, lo1, hi1 = _clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
                    if lo0 >= hi0 or lo1 >= hi1:
                        continue  # every window of the row lies in the padding: no argmax
                    first = ((t0 + lo0 * dil[0]) * size[1] + t1 + lo1 * dil[1]) * size[2]
                    for o2 in range(width):
                        best[o2] = start
                        t2 = o2 * s2 - pad[2]
                        if t2 >= 0:  # the window starts inside the row (no division needed)
                            where[o2] = first + t2 if t2 < size[2] else -1
                        else:
                            t2, lo2, hi2 = _clip(o2, size[2], kernel[2], s2, pad[2], dil[2])
                            where[o2] = first + t2 + lo2 * dil[2] if lo2 < hi2 else -1
                    for j0 in range(lo0, hi0):
                        i0 = t0 + j0 * dil[0]
                        for j1 in range(lo1, hi1):
                            i1 = t1 + j1 * dil[1]
                            base = (i0 * size[1] + i1) * size[2]
                            line = x[n, c, i0, i1]
                            if step > 1:
                                for q in range(whole):
                                    for p in range(step):
                                        phases[p, q] = line[q * step + p]
                                for i2 in range(whole * step, size[2]):
                                    phases[i2 - whole * step, whole] = line[i2]
                            for j2 in range(kernel[2]):
                                shift, lo, hi = spans[j2, 0], spans[j2, 1], spans[j2, 2]
                                held_best, held_where = best[lo:hi], where[lo:hi]
                                here = base + lo * s2 + shift  # the flat index of output lo's tap
                                if step > 1:
                                    source = phases[shift % step, lo + shift // step:hi + shift // step]
                                    for i in range(hi - lo):
                                        value, held = source[i], held_best[i]
                                        wins = (value > held) | (value != value)
                                        held_best[i] = value if wins else held
                                        held_where[i] = here + i * step if wins else held_where[i]
                                else:
                                    source = line[lo * s2 + shift:]
                                    for i in range(hi - lo):
                                        value, held = source[i * s2], held_best[i]
                                        wins = (value > held) | (value != value)
                                        held_best[i] = value if wins else held
                                        held_where[i] = here + i * s2 if wins else held_where[i]
                    for o2 in range(width):
                        if where[o2] >= 0:
                            total[where[o2]] += grad[n, c, o0, o1, o2]
            for i0 in range(size[0]):
                for i1 in range(size[1]):
                    base = (i0 * size[1] + i1) * size[2]
                    for i2 in range(size[2]):
                        out[n, c, i0, i1, i2] = total[base + i2]

    return kernel


_MAX_BACKWARD_ROWS = {step: _max_backward_rows_kernel(step) for step in _STEPS}


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


@njit(parallel=True, cache=True)
def _scatter_add_kernel(values, indices, out):
    """Per plane, in row-major order of the values and in float64, as the NumPy
    backend's bincount adds; index -1 adds nothing."""
    channels = values.shape[1]
    size0, size1, size2 = out.shape[2], out.shape[3], out.shape[4]
    for plane in prange(values.shape[0] * channels):
        n, c = plane // channels, plane % channels
        total = np.zeros(size0 * size1 * size2, np.float64)
        for o0 in range(values.shape[2]):
            for o1 in range(values.shape[3]):
                for o2 in range(values.shape[4]):
                    flat = indices[n, c, o0, o1, o2]
                    if flat >= 0:
                        total[flat] += values[n, c, o0, o1, o2]
        for i0 in range(size0):
            for i1 in range(size1):
                base = (i0 * size1 + i1) * size2
                for i2 in range(size2):
                    out[n, c, i0, i1, i2] = total[base + i2]


# --- channels last: arrays (N, D, H, W, C), the innermost loops over C --------


def _extremum_last_kernel(is_max, propagate):
    """The values-only max/min forward on channels-last arrays, compiled for one
    ``op`` and NaN rule: parallel over rows of outputs, and for each output its
    taps in row-major order, each a vectorized pass over the channels."""

    @njit(inline="always")
    def pick(value, best):
        wins = value > best if is_max else value < best
        if propagate:
            return (value if wins else best) if value == value else value
        return value if wins else best

    @njit(parallel=True, cache=True)
    def kernel(x, out, g, start, chunks):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        rows = out.shape[1] * out.shape[2]
        tasks = x.shape[0] * rows
        channels = x.shape[4]
        for chunk in prange(chunks):
            for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
                n, r = task // rows, task % rows
                o0, o1 = r // out.shape[2], r % out.shape[2]
                t0, lo0, hi0 = _clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
                t1, lo1, hi1 = _clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
                for o2 in range(out.shape[3]):
                    t2, lo2, hi2 = _clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
                    for c in range(channels):
                        out[n, o0, o1, o2, c] = start
                    for j0 in range(lo0, hi0):
                        i0 = t0 + j0 * dil[0]
                        for j1 in range(lo1, hi1):
                            i1 = t1 + j1 * dil[1]
                            for j2 in range(lo2, hi2):
                                i2 = t2 + j2 * dil[2]
                                for c in range(channels):
                                    out[n, o0, o1, o2, c] = pick(x[n, i0, i1, i2, c], out[n, o0, o1, o2, c])

    return kernel


_EXTREMUM_LAST = {(is_max, propagate): _extremum_last_kernel(is_max, propagate) for is_max in (True, False) for propagate in (True, False)}


@njit(cache=True)
def _sum_last_windows(x, out, divisor, g, n, o0, o1, first, last, total):
    """Window sums of outputs (n, o0, o1, o2), o2 in [first, last), on channels-last
    arrays, any window: each output's taps in row-major order (the NumPy backend's),
    each a vectorized pass over the channels into ``total``, a thread's own sum (in
    cache, and apart from ``out``: a tenth faster than summing in place), then one
    division on the way out."""
    size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
    channels = x.shape[4]
    t0, lo0, hi0 = _clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
    t1, lo1, hi1 = _clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
    for o2 in range(first, last):
        t2, lo2, hi2 = _clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
        total[:] = 0  # NumPy's sum starts from 0 too (so -0.0 gives 0.0)
        for i0 in range(t0 + lo0 * dil[0], t0 + hi0 * dil[0], dil[0]):
            for i1 in range(t1 + lo1 * dil[1], t1 + hi1 * dil[1], dil[1]):
                for i2 in range(t2 + lo2 * dil[2], t2 + hi2 * dil[2], dil[2]):
                    pixel = x[n, i0, i1, i2]  # 1-D views: the loops over channels vectorize better
                    for c in range(channels):
                        total[c] += pixel[c]
        result, d = out[n, o0, o1, o2], divisor[o0, o1, o2]
        for c in range(channels):
            result[c] = total[c] / d


#: The 2-D windows (rows, columns) that get a channels-last sum kernel of their own
#: (0, 0: none, every window through :func:`_sum_last_windows`).
_LAST_TAPS = ((0, 0), (2, 2), (3, 3))


def _sum_last_kernel(taps):
    """Window sums on channels-last arrays, parallel over rows of outputs, compiled
    for the 2-D window of ``taps`` (rows, columns). The outputs whose window lies
    inside the input (undilated) add their taps, in row-major order, in a register
    per channel: the taps' loops have constant bounds, so they unroll inside the
    vectorized loop over the channels, and each sum goes to ``out`` once, divided.
    Every other output (the edges, other windows) runs :func:`_sum_last_windows`."""
    k1, k2 = taps

    @njit(parallel=True, cache=True)
    def kernel(x, out, divisor, g, start, chunks):
        size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
        rows, width = out.shape[1] * out.shape[2], out.shape[3]
        tasks = x.shape[0] * rows
        channels = x.shape[4]
        fast = k1 > 0 and kernel[0] == 1 and kernel[1] == k1 and kernel[2] == k2 and dil[1] == 1 and dil[2] == 1
        # The outputs along a row whose window lies inside the input: [first, last).
        first = min(width, -(-pad[2] // stride[2]))
        last = max(first, min(width, (size[2] - k2 + pad[2]) // stride[2] + 1))
        for chunk in prange(chunks):
            total = np.empty(channels, out.dtype)
            for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
                n, r = task // rows, task % rows
                o0, o1 = r // out.shape[2], r % out.shape[2]
                i0, i1 = o0 * stride[0] - pad[0], o1 * stride[1] - pad[1]
                if not (fast and 0 <= i0 < size[0] and 0 <= i1 <= size[1] - k1):
                    _sum_last_windows(x, out, divisor, g, n, o0, o1, 0, width, total)
                    continue
                _sum_last_windows(x, out, divisor, g, n, o0, o1, 0, first, total)
                for o2 in range(first, last):
                    i2 = o2 * stride[2] - pad[2]
                    result, d = out[n, o0, o1, o2], divisor[o0, o1, o2]
                    for c in range(channels):
                        total_c = start  # NumPy's sum starts from 0 too (so -0.0 gives 0.0)
                        for j1 in range(k1):
                            for j2 in range(k2):
                                total_c += x[n, i0, i1 + j1, i2 + j2, c]
                        result[c] = total_c / d
                _sum_last_windows(x, out, divisor, g, n, o0, o1, last, width, total)

    return kernel


_SUM_LAST = {taps: _sum_last_kernel(taps) for taps in _LAST_TAPS}


@njit(parallel=True, cache=True)
def _indices_last_kernel(x, out, where, g, is_max, propagate, start, chunks):
    """Max/min forward with the flat in-plane index of each winner, on
    channels-last arrays: the taps of each window in row-major order (ties keep
    the first; a NaN wins when ``propagate``), vectorized over the channels."""
    size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
    rows = out.shape[1] * out.shape[2]
    tasks = x.shape[0] * rows
    channels = x.shape[4]
    for chunk in prange(chunks):
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            n, r = task // rows, task % rows
            o0, o1 = r // out.shape[2], r % out.shape[2]
            t0, lo0, hi0 = _clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
            t1, lo1, hi1 = _clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
            for o2 in range(out.shape[3]):
                t2, lo2, hi2 = _clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
                first = -1
                if lo0 < hi0 and lo1 < hi1 and lo2 < hi2:
                    first = ((t0 + lo0 * dil[0]) * size[1] + t1 + lo1 * dil[1]) * size[2] + t2 + lo2 * dil[2]
                for c in range(channels):
                    out[n, o0, o1, o2, c] = start
                    where[n, o0, o1, o2, c] = first
                for j0 in range(lo0, hi0):
                    i0 = t0 + j0 * dil[0]
                    for j1 in range(lo1, hi1):
                        i1 = t1 + j1 * dil[1]
                        for j2 in range(lo2, hi2):
                            i2 = t2 + j2 * dil[2]
                            flat = (i0 * size[1] + i1) * size[2] + i2
                            for c in range(channels):
                                value, held = x[n, i0, i1, i2, c], out[n, o0, o1, o2, c]
                                wins = (value > held) if is_max else (value < held)
                                if propagate:
                                    wins = wins | (value != value)
                                out[n, o0, o1, o2, c] = value if wins else held
                                where[n, o0, o1, o2, c] = flat if wins else where[n, o0, o1, o2, c]


@njit(parallel=True, cache=True)
def _adaptive_last_kernel(x, out, where, starts, ends, divisor, is_max, start, with_indices, chunks):
    """Adaptive max (NaN wins, ties keep the first, optionally with indices) or
    mean on channels-last arrays, vectorized over the channels. Means add the
    innermost axis first, as :func:`poolkit.backends.cells.build`'s ``bin_sum``
    (and the NumPy backend) do."""
    rows = out.shape[1] * out.shape[2]
    tasks = x.shape[0] * rows
    channels = x.shape[4]
    size1, size2 = x.shape[2], x.shape[3]
    for chunk in prange(chunks):
        partial = np.empty((2, channels), out.dtype)  # the sums of a line and of a row of lines
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            n, r = task // rows, task % rows
            o0, o1 = r // out.shape[2], r % out.shape[2]
            for o2 in range(out.shape[3]):
                if is_max:
                    first = (starts[0, o0] * size1 + starts[1, o1]) * size2 + starts[2, o2]
                    for c in range(channels):
                        out[n, o0, o1, o2, c] = start
                        if with_indices:
                            where[n, o0, o1, o2, c] = first
                    for i0 in range(starts[0, o0], ends[0, o0]):
                        for i1 in range(starts[1, o1], ends[1, o1]):
                            for i2 in range(starts[2, o2], ends[2, o2]):
                                flat = (i0 * size1 + i1) * size2 + i2
                                for c in range(channels):
                                    value, held = x[n, i0, i1, i2, c], out[n, o0, o1, o2, c]
                                    wins = (value > held) | (value != value)
                                    out[n, o0, o1, o2, c] = value if wins else held
                                    if with_indices:
                                        where[n, o0, o1, o2, c] = flat if wins else where[n, o0, o1, o2, c]
                    continue
                for c in range(channels):
                    out[n, o0, o1, o2, c] = 0
                for i0 in range(starts[0, o0], ends[0, o0]):
                    for c in range(channels):
                        partial[1, c] = 0
                    for i1 in range(starts[1, o1], ends[1, o1]):
                        for c in range(channels):
                            partial[0, c] = 0
                        for i2 in range(starts[2, o2], ends[2, o2]):
                            for c in range(channels):
                                partial[0, c] += x[n, i0, i1, i2, c]
                        for c in range(channels):
                            partial[1, c] += partial[0, c]
                    for c in range(channels):
                        out[n, o0, o1, o2, c] += partial[1, c]
                d = divisor[o0, o1, o2]
                for c in range(channels):
                    out[n, o0, o1, o2, c] = out[n, o0, o1, o2, c] / d


@njit(parallel=True, cache=True)
def _spread_last_kernel(values, divisor, out, g, chunks):
    """Average pooling's backward pass on channels-last arrays: each input
    element gathers the shares of the outputs whose windows cover it, last to
    first (its taps in row-major order: the NumPy backend's order), each a
    vectorized pass over the channels; parallel over input rows."""
    size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
    rows = size[0] * size[1]
    tasks = values.shape[0] * rows
    channels = values.shape[4]
    for chunk in prange(chunks):
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            n, r = task // rows, task % rows
            i0, i1 = r // size[1], r % size[1]
            t0, lo0, hi0 = _covering(i0, values.shape[1], kernel[0], stride[0], pad[0], dil[0])
            t1, lo1, hi1 = _covering(i1, values.shape[2], kernel[1], stride[1], pad[1], dil[1])
            for i2 in range(size[2]):
                total = out[n, i0, i1, i2]  # 1-D views: the loops over channels vectorize better
                total[:] = 0
                t2, lo2, hi2 = _covering(i2, values.shape[3], kernel[2], stride[2], pad[2], dil[2])
                for o0 in range(hi0, lo0 - 1, -1):
                    if (t0 - o0 * stride[0]) % dil[0] != 0:
                        continue
                    for o1 in range(hi1, lo1 - 1, -1):
                        if (t1 - o1 * stride[1]) % dil[1] != 0:
                            continue
                        for o2 in range(hi2, lo2 - 1, -1):
                            if (t2 - o2 * stride[2]) % dil[2] != 0:
                                continue
                            d = divisor[o0, o1, o2]
                            pixel = values[n, o0, o1, o2]
                            for c in range(channels):
                                total[c] += pixel[c] / d


@njit(parallel=True, cache=True)
def _max_backward_last_kernel(grad, x, out, g, start, block):
    """Max pooling's backward pass on channels-last arrays, parallel over
    (sample, block of ``block`` channels).

    For each output, in row-major order: the argmax of its window over the
    taps in row-major order (ties keep the first, a NaN wins), vectorized over
    the block's channels, as the offset of the winner in the float64 sums;
    then its gradient is added there. Each input element thus sums its
    gradients in row-major output order, in float64, as the NumPy backend's
    bincount does. In 1-D and 2-D pooling only the window's rows are kept in
    float64 (a ring of rows, written out as the windows move past them);
    3-D pooling keeps the whole block.
    """
    size, kernel, stride, pad, dil = g[0], g[1], g[2], g[3], g[4]
    channels = x.shape[4]
    blocks = (channels + block - 1) // block
    rolling = size[0] == 1 and grad.shape[1] == 1
    span = (kernel[1] - 1) * dil[1] + 1
    slots = min(size[1], span) if rolling else size[0] * size[1]
    rows = size[0] * size[1]
    for task in prange(x.shape[0] * blocks):
        n = task // blocks
        c0 = (task % blocks) * block
        width = min(channels, c0 + block) - c0
        line = size[2] * width  # one row of the sums
        total = np.zeros(slots * line, np.float64)
        best = np.empty(width, x.dtype)
        won = np.empty(width, np.int64)  # where in ``total`` each channel's winner is
        done = 0  # the flat rows (i0 * H + i1) already written out
        for o0 in range(grad.shape[1]):
            t0, lo0, hi0 = _clip(o0, size[0], kernel[0], stride[0], pad[0], dil[0])
            for o1 in range(grad.shape[2]):
                t1, lo1, hi1 = _clip(o1, size[1], kernel[1], stride[1], pad[1], dil[1])
                if rolling:
                    # No window from here on reaches a row above max(t1, 0): write those out.
                    bound = min(max(t1, 0), size[1])
                    while done < bound:
                        base = (done % slots) * line
                        for i2 in range(size[2]):
                            for c in range(width):
                                out[n, 0, done, i2, c0 + c] = total[base + i2 * width + c]
                                total[base + i2 * width + c] = 0
                        done += 1
                if lo0 >= hi0 or lo1 >= hi1:
                    continue
                for o2 in range(grad.shape[3]):
                    t2, lo2, hi2 = _clip(o2, size[2], kernel[2], stride[2], pad[2], dil[2])
                    if lo2 >= hi2:
                        continue
                    first = ((((t0 + lo0 * dil[0]) * size[1] + t1 + lo1 * dil[1]) % slots) * size[2] + t2 + lo2 * dil[2]) * width
                    for c in range(width):
                        best[c] = start
                        won[c] = first
                    for j0 in range(lo0, hi0):
                        i0 = t0 + j0 * dil[0]
                        for j1 in range(lo1, hi1):
                            i1 = t1 + j1 * dil[1]
                            base = ((i0 * size[1] + i1) % slots) * line
                            for j2 in range(lo2, hi2):
                                i2 = t2 + j2 * dil[2]
                                here = base + i2 * width
                                pixel = x[n, i0, i1, i2, c0:c0 + width]
                                for c in range(width):
                                    value, held = pixel[c], best[c]
                                    wins = (value > held) | (value != value)
                                    best[c] = value if wins else held
                                    won[c] = here if wins else won[c]
                    shares = grad[n, o0, o1, o2, c0:c0 + width]
                    for c in range(width):
                        total[won[c] + c] += shares[c]
        while done < rows:
            base = (done % slots) * line
            i0, i1 = done // size[1], done % size[1]
            for i2 in range(size[2]):
                for c in range(width):
                    out[n, i0, i1, i2, c0 + c] = total[base + i2 * width + c]
                    total[base + i2 * width + c] = 0  # the ring may hold this slot's next row
            done += 1


@njit(parallel=True, cache=True)
def _scatter_add_last_kernel(values, indices, out, block):
    """:func:`_scatter_add_kernel` on channels-last arrays (N, D, H, W, C), parallel over
    (sample, block of ``block`` channels): every value of a pixel is added, one
    vectorized pass over the block's channels per pixel, into the block's float64
    sums (the block's planes side by side, channels innermost). Each element
    thus sums its values in row-major order and in float64, as the NumPy
    backend's bincount does; index -1 adds nothing."""
    channels = values.shape[4]
    blocks = (channels + block - 1) // block
    size0, size1, size2 = out.shape[1], out.shape[2], out.shape[3]
    for task in prange(values.shape[0] * blocks):
        n = task // blocks
        c0 = (task % blocks) * block
        width = min(channels, c0 + block) - c0
        total = np.zeros(size0 * size1 * size2 * width, np.float64)
        for o0 in range(values.shape[1]):
            for o1 in range(values.shape[2]):
                for o2 in range(values.shape[3]):
                    shares = values[n, o0, o1, o2, c0:c0 + width]
                    flats = indices[n, o0, o1, o2, c0:c0 + width]
                    for c in range(width):
                        if flats[c] >= 0:
                            total[flats[c] * width + c] += shares[c]
        for i0 in range(size0):
            for i1 in range(size1):
                for i2 in range(size2):
                    base = ((i0 * size1 + i1) * size2 + i2) * width
                    row = out[n, i0, i1, i2, c0:c0 + width]
                    for c in range(width):
                        row[c] = total[base + c]


# --- the backend contract ------------------------------------------------------


def _five(x):
    """``x`` (N, C, *spatial) as an (N, C, D, H, W) view; float16 widened to float32."""
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    shape = x.shape[:2] + (1,) * (cells.SPATIAL + 2 - x.ndim) + x.shape[2:]
    # A reshape keeps a contiguous array contiguous in numba's eyes (inner loops vectorize);
    # a new axis would make it a strided one.
    return x.reshape(shape) if x.flags.c_contiguous else x[(slice(None), slice(None)) + (None,) * (cells.SPATIAL + 2 - x.ndim)]


def _channels_last(x):
    """The contiguous (N, D, H, W, C) array that the (N, C, *spatial) view ``x``
    transposes, float16 widened to float32; None unless ``x`` is such a view
    (a channels-first contiguous ``x`` is not, even with one channel)."""
    if x.ndim < 3 or x.flags.c_contiguous:
        return None
    last = np.moveaxis(x, 1, -1)
    if not last.flags.c_contiguous:
        return None
    if last.dtype == np.float16:
        last = last.astype(np.float32)
    return last.reshape(last.shape[:1] + (1,) * (cells.SPATIAL + 2 - x.ndim) + last.shape[1:])


def _last_of(array):
    """``array`` (N, C, *spatial) as a contiguous (N, D, H, W, C) array, copied only if it is not one already."""
    last = np.ascontiguousarray(np.moveaxis(array, 1, -1))
    if last.dtype == np.float16:
        last = last.astype(np.float32)
    return last.reshape(last.shape[:1] + (1,) * (cells.SPATIAL + 2 - array.ndim) + last.shape[1:])


def _from_last(array, dims):
    """The (N, C, *spatial) view of a 5-D channels-last result."""
    return np.moveaxis(array.reshape(array.shape[:1] + array.shape[1 + cells.SPATIAL - dims:]), -1, 1)


def _geometry(window):
    """:func:`poolkit.backends.cells.geometry` as a (5, 3) array: numba's parallel loops take no nested tuples."""
    return np.array(cells.geometry(window), np.int64)


def _back(array, dims):
    """The (N, C, *spatial) view of a 5-D result."""
    return array[(slice(None), slice(None)) + (0,) * (cells.SPATIAL - dims)]


def _block(samples, channels):
    """Channels per task of a channels-last kernel parallel over (sample, channel block):
    all of them, unless there are too few samples to keep every thread busy."""
    per_sample = -(-4 * get_num_threads() // max(samples, 1))
    return max(1, min(channels, max(16, -(-channels // per_sample))))


#: The float64 sums one channels-last scatter-add task keeps, in elements (4 MiB):
#: the more channels a task takes, the longer the runs of the result it writes
#: (32 channels instead of 8: a fifth faster on the benchmark's NHWC gradient).
_SCATTER_SUMS = 1 << 19


def _scatter_block(samples, channels, plane_shape):
    """Channels per task of :func:`_scatter_add_last_kernel`: :func:`_block`'s, but no
    more than keep the task's sums within :data:`_SCATTER_SUMS`, and at least 8
    (one cache line of indices)."""
    most = min(_block(samples, channels), max(8, _SCATTER_SUMS // max(math.prod(plane_shape), 1)))
    blocks = -(-channels // most)
    # Blocks of equal width, a multiple of 8 (64 channels: 2 blocks of 32, not 40 and 24).
    width = -(-channels // blocks)
    return min(channels, -(-width // 8) * 8)


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.backends.naive.pool`."""
    g = _geometry(window)
    acc = accumulator_dtype(x.dtype)
    dtype = acc if op == "sum" else np.dtype(np.float32) if x.dtype == np.float16 else x.dtype
    start = dtype.type(start_value(op, x.dtype, nan))
    last = None if 0 in x.shape else _channels_last(x)
    if last is not None:
        shape = last.shape[:1] + (1,) * (cells.SPATIAL - window.dims) + window.out_size + last.shape[-1:]
        out, chunks = new_array(shape, dtype), _chunks(math.prod(shape[:3]))
        if indices:
            where = new_array(shape, np.int64)
            _indices_last_kernel(last, out, where, g, op == "max", nan == "propagate", start, chunks)
            return _from_last(out, window.dims).astype(x.dtype, copy=False), _from_last(where, window.dims)
        if op == "sum":
            taps = window.kernel[-2:] if window.dims > 1 else ()
            _SUM_LAST[taps if taps in _SUM_LAST else (0, 0)](last, out, cells.per_output(divisor, shape[1:4], acc), g, start, chunks)
        else:
            _EXTREMUM_LAST[op == "max", nan == "propagate"](last, out, g, start, chunks)
        return _from_last(out, window.dims).astype(x.dtype, copy=False)
    x5 = _five(x)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - window.dims) + window.out_size
    out = like(x5, shape, dtype, None)
    if indices:
        where = like(x5, shape, np.int64, None)
        _extremum_kernel(x5, out, where, g, op == "max", nan == "propagate", start, True)
        return _back(out, window.dims).astype(x.dtype, copy=False), _back(where, window.dims)
    if out.size:
        chunks = _chunks(math.prod(shape[:4]))
        if op == "sum":
            _SUM_ROWS[_step(window)](x5, out, cells.per_output(divisor, shape[2:], acc), g, chunks)
        else:
            _EXTREMUM_ROWS[op == "max", nan == "propagate"](x5, out, g, start, chunks)
    return _back(out, window.dims).astype(x.dtype, copy=False)


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; see :func:`poolkit.backends.naive.adaptive_pool`."""
    dims = len(bins)
    out_size = tuple(len(starts) for starts, _ in bins)
    if 0 in out_size or 0 in x.shape:
        out = np.zeros(x.shape[:2] + out_size, x.dtype)
        return (out, np.zeros(out.shape, np.int64)) if indices else out
    acc = accumulator_dtype(x.dtype)
    starts, ends = cells.bin_table(bins)
    last = _channels_last(x)
    if last is not None:
        shape = last.shape[:1] + (1,) * (cells.SPATIAL - dims) + out_size + last.shape[-1:]
        out = new_array(shape, acc if op == "sum" else last.dtype)
        where = new_array(shape if indices else (1,) * 5, np.int64)
        start = last.dtype.type(start_value("max", x.dtype, "propagate"))
        divisor = cells.per_output(divisor, shape[1:4], acc)
        _adaptive_last_kernel(last, out, where, starts, ends, divisor, op == "max", start, indices, _chunks(math.prod(shape[:3])))
        out = _from_last(out, dims).astype(x.dtype, copy=False)
        return (out, _from_last(where, dims)) if indices else out
    x5 = _five(x)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - dims) + out_size
    out = like(x5, shape, acc if op == "sum" else x5.dtype, None)
    where = like(x5, shape, np.int64, None) if indices else np.zeros((1,) * 5, np.int64)
    start = x5.dtype.type(start_value("max", x.dtype, "propagate"))
    divisor = cells.per_output(divisor, shape[2:], acc)
    _adaptive_kernel(x5, out, where, starts, ends, divisor, op == "max", start, acc.type(0), indices)
    out = _back(out, dims).astype(x.dtype, copy=False)
    return (out, _back(where, dims)) if indices else out


@entry_point
def pool_transpose(values, window, divisor):
    """Spread each output's value over its divisor back onto its window; see :func:`poolkit.backends.naive.pool_transpose`.

    Each element of the result gathers the shares that reach it, in the order in
    which the NumPy backend's tap-by-tap spread (:func:`poolkit.backends.common.spread`)
    adds them, so the two agree bit for bit; no element is written by two tasks.
    """
    acc = accumulator_dtype(values.dtype)
    g = _geometry(window)
    divisor = cells.per_output(divisor, (1,) * (cells.SPATIAL - window.dims) + window.out_size, acc)
    in5 = (1,) * (cells.SPATIAL - window.dims) + window.in_size
    if 0 in values.shape[:2] or 0 in window.in_size:
        return np.zeros(values.shape[:2] + window.in_size, values.dtype)
    last = _channels_last(values)
    if last is not None:
        out = new_array(last.shape[:1] + in5 + last.shape[-1:], acc)
        _spread_last_kernel(last, divisor, out, g, _chunks(last.shape[0] * in5[0] * in5[1]))
        return _from_last(out, window.dims).astype(values.dtype, copy=False)
    v5 = _five(values)
    out = like(v5, v5.shape[:2] + in5, acc, None)
    _SPREAD_ROWS[_step(window)](v5, divisor, out, g, _chunks(v5.shape[0] * v5.shape[1] * in5[0] * in5[1]))
    return _back(out, window.dims).astype(values.dtype, copy=False)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.backends.naive.max_pool_backward`."""
    g = _geometry(window)
    # float16 gradients are summed in float64 and rounded once, straight to float16.
    dtype = np.float64 if grad.dtype == np.float16 else grad.dtype
    start = start_value("max", x.dtype, "propagate")
    if 0 in x.shape or 0 in grad.shape:
        return np.zeros(x.shape, grad.dtype)
    last = _channels_last(x)
    if last is not None:
        g_last = _last_of(grad)
        out = new_array(last.shape, dtype)
        block = _block(last.shape[0], last.shape[-1])
        _max_backward_last_kernel(g_last, last, out, g, last.dtype.type(start), block)
        return _from_last(out, window.dims).astype(grad.dtype, copy=False)
    x5, g5 = _five(x), _five(grad)
    out = like(g5, g5.shape[:2] + tuple(g[0]), dtype, None)
    _MAX_BACKWARD_ROWS[_step(window)](g5, x5, out, g, x5.dtype.type(start))
    return _back(out, window.dims).astype(grad.dtype, copy=False)


def _five_indices(indices):
    return indices[(slice(None), slice(None)) + (None,) * (cells.SPATIAL + 2 - indices.ndim)]


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices`` (the last write wins); see :func:`poolkit.backends.naive.scatter`."""
    v5, i5 = _five(values), _five_indices(indices)
    dims = len(plane_shape)
    out = like(v5, v5.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), v5.dtype, 0)  # unwritten places stay 0
    _scatter_kernel(v5, i5, out)
    return _back(out, dims).astype(values.dtype, copy=False)


@entry_point
def scatter_add(values, indices, plane_shape):
    """Add ``values`` at flat in-plane ``indices``, in float64; see :func:`poolkit.backends.naive.scatter_add`."""
    dims = len(plane_shape)
    if 0 in values.shape[:2] or 0 in plane_shape:
        return np.zeros(values.shape[:2] + tuple(plane_shape), values.dtype)
    dtype = np.float64 if values.dtype == np.float16 else values.dtype
    last, where = _channels_last(values), _channels_last(indices)
    if last is not None and where is not None:
        out = new_array(last.shape[:1] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape) + last.shape[-1:], dtype)
        _scatter_add_last_kernel(last, where, out, _scatter_block(last.shape[0], last.shape[-1], out.shape[1:4]))
        return _from_last(out, dims).astype(values.dtype, copy=False)
    v5, i5 = _five(values), _five_indices(indices)
    out = like(v5, v5.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), dtype, None)
    _scatter_add_kernel(v5, i5, out)
    return _back(out, dims).astype(values.dtype, copy=False)
