"""The lecture's loops, generalised: the readable definition of every operation.

One Python loop over every (sample, channel, output position) and one over the
input positions that the window covers, exactly as the lecture's ``pool2d``
does, but for 1-3 spatial axes, with stride, padding, dilation and ceil mode
taken from a validated :class:`poolkit.spec.Window`. It is slow on purpose:
the other backends are tested against it.

Every function takes and returns (N, C, *spatial) NumPy arrays.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from ..dispatch import entry_point
from ..spec import accumulator_dtype, flat_index, start_value
from . import common
from .common import divide

# Not pooling, so not written again here: the host backends' shared steps.
read, arrange = common.read, common.arrange
elementwise = entry_point(common.elementwise)
first_out_of_range = entry_point(common.first_out_of_range)


def _wins(op, nan, value, best):
    """Does ``value`` replace ``best``? Ties keep the first; NaN wins unless ignored."""
    if nan == "propagate" and value != value:
        return True
    return value > best if op == "max" else value < best


def _reduce(plane, positions, op, nan, start, start_index):
    """Reduce ``plane`` over ``positions``; also return the flat index that won.

    Like PyTorch, the index starts at ``start_index`` (the window's first
    element inside the input) and moves only when an element beats the best.
    """
    best, best_index = start, start_index
    for position in positions:
        value = plane[position]
        if op == "sum":
            best += value
        elif _wins(op, nan, value, best):
            best, best_index = value, np.ravel_multi_index(position, plane.shape)
    return best, best_index


def _run(x, start_indices, positions_of, op, nan, indices):
    acc = accumulator_dtype(x.dtype)
    start = acc.type(start_value(op, x.dtype, nan))
    out = np.empty(x.shape[:2] + start_indices.shape, acc)
    where = np.empty(out.shape, np.int64)
    for n, c in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*start_indices.shape):
            out[(n, c) + o], where[(n, c) + o] = _reduce(x[n, c], positions_of(o), op, nan, start, start_indices[o])
    return (out, where) if indices else out


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum").

    With ``indices`` also return, for max and min, the flat in-plane index of
    the winning element. Sums are divided by ``divisor`` (one value per
    output position) in the accumulator dtype, then rounded to ``x``'s dtype.
    """

    def positions(o):
        return product(*(window.taps(axis, o_axis) for axis, o_axis in enumerate(o)))

    if indices:
        out, where = _run(x, window.first_inside_index(), positions, op, nan, True)
        return out.astype(x.dtype), where
    return divide(_run(x, window.first_inside_index(), positions, op, nan, False), divisor, x.dtype)


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; ``bins`` comes from :func:`poolkit.spec.adaptive_bins`."""

    def positions(o):
        return product(*(range(starts[i], ends[i]) for (starts, ends), i in zip(bins, o)))

    start_indices = flat_index([starts for starts, _ in bins], x.shape[2:])
    if indices:
        out, where = _run(x, start_indices, positions, op, "propagate", True)
        return out.astype(x.dtype), where
    return divide(_run(x, start_indices, positions, op, "propagate", False), divisor, x.dtype)


@entry_point
def pool_transpose(values, window, divisor):
    """Add each output's value over its divisor to every input position its window covers.

    This is the backward pass of average pooling (of sum pooling, with a
    divisor of ones).
    """
    acc = accumulator_dtype(values.dtype)
    grad = np.zeros(values.shape[:2] + window.in_size, acc)
    for n, c in np.ndindex(*values.shape[:2]):
        for o in np.ndindex(*window.out_size):
            share = acc.type(values[(n, c) + o]) / divisor[o]
            for position in product(*(window.taps(axis, o_axis) for axis, o_axis in enumerate(o))):
                grad[(n, c) + position] += share
    return grad.astype(values.dtype)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to the element its window's max came from."""
    _, where = pool(x, window, "max", indices=True)
    return _write(grad, where, window.in_size, accumulate=True)


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at the flat in-plane ``indices`` of a zero array of
    ``plane_shape`` planes; where indices repeat, the last write wins (``max_unpool``)."""
    return _write(values, indices, plane_shape, accumulate=False)


@entry_point
def scatter_add(values, indices, plane_shape):
    """Add each of ``values`` at its flat in-plane index (-1: nowhere) of a zero
    array of ``plane_shape`` planes, in row-major order of ``values``, summing
    in float64 and rounding once (max pooling's backward pass, given its argmax)."""
    acc = np.float64 if values.dtype.kind == "f" else values.dtype
    out = np.zeros(values.shape[:2] + tuple(plane_shape), acc)
    for n, c in np.ndindex(*values.shape[:2]):
        plane = out[n, c]
        for o in np.ndindex(*values.shape[2:]):
            if indices[(n, c) + o] < 0:
                continue
            position = np.unravel_index(indices[(n, c) + o], plane.shape)
            plane[position] += values[(n, c) + o]
    return out.astype(values.dtype)


def _write(values, indices, plane_shape, *, accumulate):
    """:func:`scatter`, or with ``accumulate`` the sum of what reaches each
    position (the backward of max pooling). Index -1 writes nothing."""
    acc = accumulator_dtype(values.dtype) if accumulate else values.dtype
    out = np.zeros(values.shape[:2] + tuple(plane_shape), acc)
    for n, c in np.ndindex(*values.shape[:2]):
        plane = out[n, c]
        for o in np.ndindex(*values.shape[2:]):
            if indices[(n, c) + o] < 0:
                continue  # a window that missed the input has no element to receive anything
            position = np.unravel_index(indices[(n, c) + o], plane.shape)
            plane[position] = plane[position] + values[(n, c) + o] if accumulate else values[(n, c) + o]
    return out.astype(values.dtype)
