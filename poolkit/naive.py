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

from .spec import accumulator_dtype, start_value


def _wins(op, nan, value, best):
    """Does ``value`` replace ``best``? Ties keep the first; NaN wins unless ignored."""
    if nan == "propagate" and value != value:
        return True
    return value > best if op == "max" else value < best


def _reduce(plane, positions, op, nan, start):
    """Reduce ``plane`` over ``positions``; also return the flat index that won."""
    best, best_at = start, None
    for position in positions:
        value = plane[position]
        if best_at is None:
            best_at = position  # PyTorch reports the first element when none beats the start
        if op == "sum":
            best += value
        elif _wins(op, nan, value, best):
            best, best_at = value, position
    flat = -1 if best_at is None else int(np.ravel_multi_index(best_at, plane.shape))
    return best, flat


def _run(x, out_size, positions_of, op, nan, indices):
    acc = accumulator_dtype(x.dtype)
    start = acc.type(start_value(op, x.dtype, nan))
    out = np.empty(x.shape[:2] + tuple(out_size), acc)
    where = np.zeros(out.shape, np.int64)
    for n, c in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*out_size):
            out[(n, c) + o], where[(n, c) + o] = _reduce(x[n, c], positions_of(o), op, nan, start)
    return (out, where) if indices else out


def pool(x, window, op, *, indices=False, nan="propagate"):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum").

    With ``indices`` also return, for max and min, the flat in-plane index of
    the winning element. Sums of float16 come back in float32.
    """

    def positions(o):
        return product(*(window.taps(axis, o_axis) for axis, o_axis in enumerate(o)))

    return _run(x, window.out_size, positions, op, nan, indices)


def adaptive_pool(x, bins, op, *, indices=False):
    """Reduce every adaptive bin of ``x``; ``bins`` comes from :func:`poolkit.spec.adaptive_bins`."""

    def positions(o):
        return product(*(range(starts[i], ends[i]) for (starts, ends), i in zip(bins, o)))

    return _run(x, [len(starts) for starts, _ in bins], positions, op, "propagate", indices)


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
    otherwise the last write wins (``max_unpool``).
    """
    acc = accumulator_dtype(values.dtype) if accumulate else values.dtype
    out = np.zeros(values.shape[:2] + tuple(plane_shape), acc)
    for n, c in np.ndindex(*values.shape[:2]):
        plane = out[n, c]
        for o in np.ndindex(*values.shape[2:]):
            position = np.unravel_index(indices[(n, c) + o], plane.shape)
            plane[position] = plane[position] + values[(n, c) + o] if accumulate else values[(n, c) + o]
    return out.astype(values.dtype)
