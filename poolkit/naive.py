"""The lecture's loops, generalised: the readable definition of every operation.

One Python loop over every (sample, channel, output position) and one over the
input positions that the window covers, exactly as the lecture's ``pool2d``
does, but for 1-3 spatial axes, with stride, padding, dilation and ceil mode
taken from a validated :class:`poolkit.spec.Window`. It is slow on purpose:
the other backends are tested against it.

Every function takes and returns (N, C, *spatial) NumPy arrays.
"""

from itertools import product

import numpy as np

from .spec import accumulator_dtype, flat_index, start_value


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


def pool(x, window, op, *, indices=False, nan="propagate"):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum").

    With ``indices`` also return, for max and min, the flat in-plane index of
    the winning element. Sums of float16 come back in float32.
    """

    def positions(o):
        return product(*(window.taps(axis, o_axis) for axis, o_axis in enumerate(o)))

    return _run(x, window.first_inside_index(), positions, op, nan, indices)


def adaptive_pool(x, bins, op, *, indices=False):
    """Reduce every adaptive bin of ``x``; ``bins`` comes from :func:`poolkit.spec.adaptive_bins`."""

    def positions(o):
        return product(*(range(starts[i], ends[i]) for (starts, ends), i in zip(bins, o)))

    return _run(x, flat_index([starts for starts, _ in bins], x.shape[2:]), positions, op, "propagate", indices)


def pool_transpose(values, window):
    """Add each output's value to every input position its window covers.

    This is the backward pass of sum pooling (and, with the values already
    divided by the window sizes, of average pooling).
    """
    acc = accumulator_dtype(values.dtype)
    grad = np.zeros(values.shape[:2] + window.in_size, acc)
    for n, c in np.ndindex(*values.shape[:2]):
        for o in np.ndindex(*window.out_size):
            for position in product(*(window.taps(axis, o_axis) for axis, o_axis in enumerate(o))):
                grad[(n, c) + position] += values[(n, c) + o]
    return grad.astype(values.dtype)


def scatter(values, indices, plane_shape, *, accumulate):
    """Write ``values`` at the flat in-plane ``indices`` of a zero array of ``plane_shape`` planes.

    With ``accumulate`` repeated indices add up (the backward of max pooling),
    otherwise the last write wins (``max_unpool``). Index -1 writes nothing.
    """
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
