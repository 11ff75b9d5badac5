"""Vectorized NumPy: the same contract as :mod:`poolkit.backends.naive`, without pixel loops.

The trick is to loop over the k*k offsets inside the window instead of over the
output pixels: for a fixed offset, the input elements that all the windows read
form one strided slice of the input, so a window reduction becomes k*k
whole-array operations on views (no padded copy, no k*k copies of the input).
Those operations run on blocks of whole planes, a few MiB each, so that the
output stays in cache across the k*k passes and the blocks share the cores.
Adaptive pooling, whose bins differ in size, is reduced one axis at a time.

Every function takes and returns (N, C, *spatial) NumPy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..dispatch import entry_point
from ..spec import accumulator_dtype, start_value
from . import common
from .common import by_blocks, divide, like

# Not pooling, so not written again here: the host backends' shared steps.
read, arrange = common.read, common.arrange
elementwise = entry_point(common.elementwise)
first_out_of_range = entry_point(common.first_out_of_range)

# In-place reductions for the values-only path; np.maximum propagates NaN,
# np.fmax ignores it (MXNet).
_UFUNCS: dict[tuple[str, str], np.ufunc] = {
    ("max", "propagate"): np.maximum,
    ("max", "ignore"): np.fmax,
    ("min", "propagate"): np.minimum,
    ("min", "ignore"): np.fmin,
    ("sum", "propagate"): np.add,
    ("sum", "ignore"): np.add,
}


def _wins(op, values, best, nan="propagate"):
    """Where ``values`` replace ``best``: strictly better (ties keep the first), or NaN unless ignored."""
    wins = values > best if op == "max" else values < best
    if values.dtype.kind == "f" and nan == "propagate":
        wins |= np.isnan(values)
    return wins


def _zero_tie(x, out):
    """Whether some window's max (min) is a zero and ``x`` holds a -0.0: only
    then can the sign of a zero result depend on the order of the taps."""
    return x.dtype.kind == "f" and bool((out == 0).any()) and bool(np.signbit(x[x == 0]).any())


#: Inputs whose gathered taps (samples x channels x outputs x window offsets)
#: number at most this take the one-gather path of :func:`_pool_small`.
SMALL_TAPS = 1 << 14


def _pool_small(x, window, op, nan, start):
    """The values-only reduction of a small input in a few whole-array steps,
    or None where it does not apply (too many taps; a tie of signed zeros).

    One gather through :meth:`poolkit.spec.Window.tap_table` reads every tap
    of every window (padding reads ``start``), and ``ufunc.accumulate`` along
    the taps applies ``op`` in the tap loop's order, element by element: the
    tap loop's result bit for bit, without its Python steps per tap, which
    are most of the time a small input takes.
    """
    n, c = x.shape[:2]
    if n * c * (1 + math.prod(window.kernel)) * math.prod(window.out_size) > SMALL_TAPS:
        return None
    table = window.tap_table()
    plane = math.prod(window.in_size)
    flat = np.empty((n * c, plane + 1), accumulator_dtype(x.dtype))
    flat[:, plane] = start
    flat[:, :plane] = x.reshape(n * c, plane)
    total = _UFUNCS[op, nan].accumulate(flat[:, table], axis=1)[:, -1]
    shape = x.shape[:2] + window.out_size
    out = np.ascontiguousarray(total).reshape(shape) if x.flags.c_contiguous else like(x, shape, total.dtype, total.reshape(shape))
    if op != "sum" and _zero_tie(x, out):
        return None  # the tap loop redoes it with PyTorch's comparison
    return out


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.backends.naive.pool`."""
    start = start_value(op, x.dtype, nan)
    if not indices:
        small = _pool_small(x, window, op, nan, start)
        if small is not None:
            return divide(small, divisor, x.dtype)
    out = like(x, x.shape[:2] + window.out_size, accumulator_dtype(x.dtype), start)
    plan = window.tap_plan()  # the offsets that read only padding are left out

    def reduce_values(x, out):
        for _, out_span, in_span in plan:
            best = out[out_span]
            _UFUNCS[op, nan](best, x[in_span], out=best)
        if op != "sum" and _zero_tie(x, out):
            # np.maximum may keep either zero of a tie between -0.0 and +0.0;
            # PyTorch keeps the first: redo this block with its comparison.
            out[...] = start
            for _, out_span, in_span in plan:
                best, values = out[out_span], x[in_span]
                np.copyto(best, values, where=_wins(op, values, best, nan))

    def reduce_with_indices(x, out, where):
        for offsets, out_span, in_span in plan:
            best, values = out[out_span], x[in_span]
            wins = _wins(op, values, best, nan)
            np.copyto(best, values, where=wins)
            np.copyto(where[out_span], window.flat_tap_index(offsets)[out_span[1:]], where=wins)

    if not indices:
        by_blocks(reduce_values, x, out)
        return divide(out, divisor, x.dtype)
    where = like(x, out.shape, np.int64, window.first_inside_index())
    by_blocks(reduce_with_indices, x, out, where)
    return out.astype(x.dtype, copy=False), where


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``, one spatial axis at a time, innermost first.

    Reducing the last axis first and keeping the first winner at each step
    gives the same winner as a row-major scan of the whole bin.
    """
    out_size = tuple(len(starts) for starts, _ in bins)
    if 0 in out_size:
        out = np.zeros(x.shape[:2] + out_size, x.dtype)
        return (out, np.zeros(out.shape, np.int64)) if indices else out
    values = x.astype(accumulator_dtype(x.dtype), copy=False) if op == "sum" else x
    flat = np.zeros((1,) * x.ndim, np.int64)  # in-plane index of each current winner
    plane_strides = [math.prod(x.shape[axis + 1:]) for axis in range(2, x.ndim)]
    for axis in reversed(range(len(bins))):
        starts, ends = bins[axis]
        shape = [1] * x.ndim
        shape[axis + 2] = len(starts)
        best: Any = None
        best_flat: Any = None
        for j in range(int((ends - starts).max())):
            # Positions past the end of a shorter bin repeat its last element,
            # which changes neither a max nor its index; sums mask them out.
            position = np.minimum(starts + j, ends - 1)
            candidate = np.take(values, position, axis=axis + 2)
            if op == "sum":
                inside = (starts + j < ends).reshape(shape)
                candidate = np.where(inside, candidate, 0)
                best = candidate if best is None else best + candidate
                continue
            candidate_flat = np.take(flat, np.minimum(position, flat.shape[axis + 2] - 1), axis=axis + 2)
            candidate_flat = candidate_flat + position.reshape(shape) * plane_strides[axis]
            if best is None:
                best, best_flat = candidate, candidate_flat
                continue
            wins = _wins(op, candidate, best)
            best, best_flat = np.where(wins, candidate, best), np.where(wins, candidate_flat, best_flat)
        values, flat = best, best_flat
    if indices:
        return values, np.broadcast_to(flat, values.shape).astype(np.int64)
    return divide(values, divisor, x.dtype)


@entry_point
def pool_transpose(values, window, divisor):
    """Add each output's value over its divisor to every input position its window covers, one offset at a time; see :func:`poolkit.backends.common.spread`."""
    return common.spread(values, window, divisor)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.backends.naive.max_pool_backward`."""
    _, where = pool(x, window, "max", indices=True)
    return _write(grad, where, window.in_size, accumulate=True)


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices``, the last write winning; see :func:`poolkit.backends.naive.scatter`."""
    return _write(values, indices, plane_shape, accumulate=False)


@entry_point
def scatter_add(values, indices, plane_shape):
    """Add ``values`` at flat in-plane ``indices`` in float64 (bincount), rounding once; see :func:`poolkit.backends.naive.scatter_add`."""
    return _write(values, indices, plane_shape, accumulate=True)


def _write(values, indices, plane_shape, *, accumulate):
    """:func:`scatter`, or with ``accumulate`` the sum of what reaches each position."""
    out = like(values, values.shape[:2] + tuple(plane_shape), values.dtype, 0)
    plane = math.prod(plane_shape)

    def write(values, indices, out):
        planes = math.prod(values.shape[:2])
        flat = (indices.reshape(planes, math.prod(indices.shape[2:])) + np.arange(planes)[:, None] * plane).ravel()
        values = values.ravel()
        if indices.size and indices.min() < 0:  # windows that missed the input
            keep = indices.ravel() >= 0
            flat, values = flat[keep], values[keep]
        if accumulate:
            block = np.bincount(flat, weights=values, minlength=planes * plane)
        else:
            block = np.zeros(planes * plane, values.dtype)
            block[flat] = values
        out[...] = block.reshape(out.shape)

    by_blocks(write, values, indices, out)
    return out


