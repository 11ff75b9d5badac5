"""Vectorized NumPy: the same contract as :mod:`poolkit.naive`, without pixel loops.

The trick is to loop over the k*k offsets inside the window instead of over the
output pixels: for a fixed offset, the input elements that all the windows read
form one strided slice of the input, so a window reduction becomes k*k
whole-array operations on views (no padded copy, no k*k copies of the input).
Those operations run on blocks of whole planes, a few MiB each, so that the
output stays in cache across the k*k passes and the blocks share the cores.
Adaptive pooling, whose bins differ in size, is reduced one axis at a time.

Every function takes and returns (N, C, *spatial) NumPy arrays.
"""

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .spec import accumulator_dtype, start_value

# In-place reductions for the values-only path; np.maximum propagates NaN,
# np.fmax ignores it (MXNet).
_UFUNCS = {
    ("max", "propagate"): np.maximum,
    ("max", "ignore"): np.fmax,
    ("min", "propagate"): np.minimum,
    ("min", "ignore"): np.fmin,
    ("sum", "propagate"): np.add,
    ("sum", "ignore"): np.add,
}


def _wins(op, values, best):
    """Where ``values`` replace ``best``: strictly better (ties keep the first), or NaN."""
    wins = values > best if op == "max" else values < best
    if values.dtype.kind == "f":
        wins |= np.isnan(values)
    return wins


def _like(x, shape, dtype, fill):
    """An array of ``shape`` filled with ``fill`` (broadcast), laid out in memory like ``x``.

    A channels-last input reaches the backend as a transposed view; writing
    the result in the same order keeps every pass over memory sequential.
    """
    outer_first = sorted(range(x.ndim), key=lambda axis: -x.strides[axis])
    array = np.empty([shape[axis] for axis in outer_first], dtype).transpose(np.argsort(outer_first))
    array[...] = fill
    return array


#: About how many input bytes one block holds: small enough that the block's
#: output stays in cache across all k*k passes, large enough that Python's
#: per-pass overhead vanishes.
BLOCK_BYTES = 4 << 20


@functools.lru_cache(maxsize=1)
def _workers():
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="poolkit")


def _by_blocks(work, x, *arrays):
    """Call ``work(x[b], *(a[b] for a in arrays))`` for blocks ``b`` of samples and channels.

    Every block holds whole planes, so blocks are independent and the result
    does not depend on how they are scheduled; NumPy releases the GIL inside
    its loops, so the blocks run on all cores.
    """
    n, c = x.shape[:2]
    plane = math.prod(x.shape[2:]) * x.itemsize
    # Channels-last views keep a sample's channels interleaved in memory: block by sample.
    step = c if x.strides[1] < x.strides[-1] else max(1, min(c, BLOCK_BYTES // max(plane, 1)))
    blocks = [(slice(i, i + 1), slice(j, j + step)) for i in range(n) for j in range(0, c, step)]
    if len(blocks) <= 1:
        work(x, *arrays)
        return
    errors = np.geterr()  # NumPy's error settings are per thread: carry the caller's over

    def run(block):
        with np.errstate(**errors):
            work(x[block], *(a[block] for a in arrays))

    list(_workers().map(run, blocks))


def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.naive.pool`."""
    out = _like(x, x.shape[:2] + window.out_size, accumulator_dtype(x.dtype), start_value(op, x.dtype, nan))
    plan = window.tap_plan()  # the offsets that read only padding are left out

    def reduce_values(x, out):
        for _, out_span, in_span in plan:
            best = out[out_span]
            _UFUNCS[op, nan](best, x[in_span], out=best)

    def reduce_with_indices(x, out, where):
        for offsets, out_span, in_span in plan:
            best, values = out[out_span], x[in_span]
            wins = _wins(op, values, best)
            np.copyto(best, values, where=wins)
            np.copyto(where[out_span], window.flat_tap_index(offsets)[out_span[1:]], where=wins)

    if not indices:
        _by_blocks(reduce_values, x, out)
        return divide(out, divisor, x.dtype)
    where = _like(x, out.shape, np.int64, window.first_inside_index())
    _by_blocks(reduce_with_indices, x, out, where)
    return out.astype(x.dtype, copy=False), where


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
        best = best_flat = None
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


def pool_transpose(values, window, divisor):
    """Add each output's value over its divisor to every input position its window covers; see :func:`poolkit.naive.pool_transpose`."""
    grad = _like(values, values.shape[:2] + window.in_size, accumulator_dtype(values.dtype), 0)
    shares = values.astype(grad.dtype) / divisor
    plan = window.tap_plan()

    def spread(shares, grad):
        for _, out_span, in_span in plan:
            grad[in_span] += shares[out_span]

    _by_blocks(spread, shares, grad)
    return grad.astype(values.dtype, copy=False)


def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.naive.max_pool_backward`."""
    _, where = pool(x, window, "max", indices=True)
    return scatter(grad, where, window.in_size, accumulate=True)


def scatter(values, indices, plane_shape, *, accumulate=False):
    """Write ``values`` at flat in-plane ``indices``; see :func:`poolkit.naive.scatter`."""
    out = _like(values, values.shape[:2] + tuple(plane_shape), values.dtype, 0)
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

    _by_blocks(write, values, indices, out)
    return out


def divide(total, divisor, dtype):
    """``total`` over ``divisor`` (None: 1) in ``total``'s dtype, rounded once to ``dtype``."""
    if divisor is not None:
        total = np.divide(total, divisor, out=total if total.dtype == divisor.dtype else None)
    return total.astype(dtype, copy=False)


#: The elementwise steps of Lp pooling, as :func:`elementwise` names them.
ELEMENTWISE = {"abs": lambda x, p: np.abs(x), "pow": np.power, "sqrt": lambda x, p: np.sqrt(x), "cbrt": lambda x, p: np.cbrt(x)}


def elementwise(x, fn, p=None, scale=1):
    """``fn`` ("abs", "pow" to the ``p``, "sqrt", "cbrt") of ``x * scale``, in ``x``'s dtype."""
    if scale != 1:
        x = x * x.dtype.type(scale)
    return ELEMENTWISE[fn](x, p)


def first_out_of_range(indices, plane):
    """The first of ``indices`` outside ``[0, plane)``, or None."""
    bad = indices[(indices < 0) | (indices >= plane)]
    return int(bad.flat[0]) if bad.size else None
