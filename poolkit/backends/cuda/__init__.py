"""CUDA backend: numba-cuda kernels (:mod:`poolkit.backends.cuda.kernels`) behind the
same contract as :mod:`poolkit.backends.numpy_`, on device arrays.

Arrays that live on a GPU (anything with ``__cuda_array_interface__``: torch
CUDA tensors, CuPy arrays, numba device arrays) stay there, and results come
back as the same kind; host arrays are copied over and back. Views, such as the
(N, C, *spatial) view of a channels-last array, are made by rewriting shape and
strides, never by copying. Without a GPU, numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) runs the same kernels on the CPU, one Python
thread per GPU thread: that is how the tests check them everywhere.

How a call launches (:mod:`poolkit.backends.cuda.launch`): for torch CUDA
tensors every kernel goes on torch's current stream and every output comes
from torch's caching allocator, so a call is ordered with the caller's own work
and costs no synchronisation; for anything else, numba's default stream and
allocator. A case's first call runs the generic kernel, later calls one
compiled for the case, with the window as constants
(:mod:`poolkit.backends.cuda.kernels`); divisors and bin tables are uploaded
once and kept on the device.
"""

import math

import numpy as np
from numba import cuda

from ... import arrays
from ...dispatch import entry_point
from ...spec import accumulator_dtype, start_value
from .. import cells
from . import kernels, launch
from .launch import MAX_BLOCKS, SIMULATED, THREADS, place_of  # noqa: F401  (the book reads THREADS and MAX_BLOCKS here)

#: The one function every kernel is launched through: ``_launch(kernel, count, stream, *args)``.
_launch = launch.run


def require_device(name):
    """Raise RuntimeError, naming the function, unless a CUDA device (or the simulator) is there."""
    if not cuda.is_available():
        raise RuntimeError(
            f"{name}: backend='cuda' found no CUDA device (numba.cuda.is_available() is False); "
            "use backend='numpy' or 'numba', or set NUMBA_ENABLE_CUDASIM=1 to run the kernels on numba's CUDA simulator"
        )


# --- device arrays in and out ---------------------------------------------------


def arrange(array, axes):
    """:func:`poolkit.arrays.arrange` for device arrays (the view keeps ``array``'s place)."""
    shape = tuple(1 if axis is None else array.shape[axis] for axis in axes)
    strides = tuple(0 if axis is None else array.strides[axis] for axis in axes)
    return launch.view(array, shape, strides)


def _to_host(array):
    """Copy a device view, in any axis order, to a NumPy array with the same axis order."""
    order = sorted(range(array.ndim), key=lambda axis: -array.strides[axis])
    contiguous = launch.view(array, [array.shape[a] for a in order], [array.strides[a] for a in order])
    return launch.copy_to_host(contiguous, place_of(array)).transpose(np.argsort(order))


def read(name, label, x):
    """Return ``(array, back)``: ``x`` as a numba device array, and a function that
    turns a device result into the kind of array ``x`` was (copied back for host input).

    A torch CUDA tensor's calls run on torch's current stream and allocate from
    torch (:func:`poolkit.backends.cuda.launch.from_torch`); the rest on numba's
    default stream, with numba's allocator.
    """
    if arrays.on_device(x):
        if hasattr(x, "copy_to_host"):  # already a numba device array
            return x, lambda result: result
        framework = type(x).__module__.split(".", 1)[0]
        if framework == "torch":
            return launch.from_torch(x)
        if framework == "cupy":
            import cupy

            return cuda.as_cuda_array(x), cupy.asarray
        return cuda.as_cuda_array(x), lambda result: result
    array, back = arrays.to_numpy(name, label, x)
    return cuda.to_device(np.ascontiguousarray(array)), lambda result: back(_to_host(result))


def _empty(place, shape, dtype, channels_last, fill=None):
    """A 5-D (N, C, D, H, W) device array of ``place`` laid out channels-last or channels-first."""
    memory = (shape[0], *shape[2:], shape[1]) if channels_last else tuple(shape)
    array = launch.contiguous(place.empty(math.prod(memory), dtype, fill), memory)
    return arrange(array, [0, 4, 1, 2, 3]) if channels_last else array


def _five(x):
    """``x`` (N, C, *spatial) as an (N, C, D, H, W) view."""
    return arrange(x, [0, 1] + [None] * (cells.SPATIAL + 2 - x.ndim) + list(range(2, x.ndim)))


def _back(array, dims):
    """The (N, C, *spatial) view of a 5-D result."""
    return arrange(array, [0, 1] + list(range(5 - dims, 5)))


def _channels_last(x5):
    return x5.strides[1] < x5.strides[4]


def _compute(dtype):
    """The type kernels compute a value of ``dtype`` in: float16 is widened to float32."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def _per_output(values, shape, dtype):
    """A per-output divisor (None: ones) as a device table, uploaded once per content."""
    return launch.table(cells.per_output(values, shape, dtype))


# --- the backend contract -------------------------------------------------------


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.backends.naive.pool`."""
    place = place_of(x)
    x5, g = _five(x), cells.geometry(window)
    last = _channels_last(x5)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - window.dims) + tuple(window.out_size)
    out = _empty(place, shape, x.dtype, last)
    if op == "sum":
        acc = accumulator_dtype(x.dtype)
        divisor, zero = _per_output(divisor, shape[2:], acc), acc.type(0)
        case = (launch.window_of(g), last, x.dtype)
        if launch.hot((kernels.window_sum, case)):
            _launch(kernels.window_sum(*case), out.size, place.stream, x5, out, divisor, zero)
        else:
            _launch(kernels.sum_kernel, out.size, place.stream, x5, out, divisor, g, zero, last)
        return _back(out, window.dims)
    start = _compute(x.dtype).type(start_value(op, x.dtype, nan))
    where = _empty(place, shape, np.int64, last) if indices else None
    flags = (launch.window_of(g), op == "max", nan == "propagate", bool(indices), last, x.dtype)
    if not launch.hot((kernels.extremum, flags)):
        dummy = where if indices else _empty(place, (1,) * 5, np.int64, False)
        _launch(kernels.extremum_kernel, out.size, place.stream, x5, out, dummy, g, op == "max", nan == "propagate", start, bool(indices), last)
    elif indices:
        _launch(kernels.extremum(*flags), out.size, place.stream, x5, out, where, start)
    else:  # the values-only kernel: no index array, no index writes
        _launch(kernels.extremum(*flags), out.size, place.stream, x5, out, start)
    return (_back(out, window.dims), _back(where, window.dims)) if indices else _back(out, window.dims)


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; see :func:`poolkit.backends.naive.adaptive_pool`."""
    place = place_of(x)
    dims = len(bins)
    x5 = _five(x)
    last = _channels_last(x5)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(len(starts) for starts, _ in bins)
    out = _empty(place, shape, x.dtype, last, fill=0)
    where = _empty(place, shape, np.int64, last, fill=0) if indices else _empty(place, (1,) * 5, np.int64, False)
    if x5.size and out.size:
        acc = accumulator_dtype(x.dtype)
        starts, ends = (launch.table(table) for table in cells.bin_table(bins))
        start = _compute(x.dtype).type(start_value("max", x.dtype, "propagate"))
        divisor = _per_output(divisor, shape[2:], acc)
        _launch(kernels.adaptive_kernel, out.size, place.stream, x5, out, where, starts, ends, divisor, op == "max", start, acc.type(0), indices, last)
    return (_back(out, dims), _back(where, dims)) if indices else _back(out, dims)


@entry_point
def pool_transpose(values, window, divisor):
    """Spread each output's value over its divisor back onto its window; see :func:`poolkit.backends.naive.pool_transpose`."""
    place = place_of(values)
    v5, g = _five(values), cells.geometry(window)
    last = _channels_last(v5)
    acc = accumulator_dtype(values.dtype)
    out = _empty(place, v5.shape[:2] + g[0], values.dtype, last)
    divisor, zero = _per_output(divisor, v5.shape[2:], acc), acc.type(0)
    case = (launch.window_of(g), last, values.dtype)
    if launch.hot((kernels.spread, case)):
        _launch(kernels.spread(*case), out.size, place.stream, v5, divisor, out, zero)
    else:
        _launch(kernels.spread_kernel, out.size, place.stream, v5, divisor, out, g, zero, last)
    return _back(out, window.dims)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.backends.naive.max_pool_backward`."""
    place = place_of(x, grad)
    x5, g5, g = _five(x), _five(grad), cells.geometry(window)
    last = _channels_last(x5)
    out = _empty(place, x5.shape, grad.dtype, last)
    start = _compute(x.dtype).type(start_value("max", x.dtype, "propagate"))
    case = (launch.window_of(g), last, (x.dtype, grad.dtype))
    if launch.hot((kernels.max_grad, case)):
        _launch(kernels.max_grad(*case), out.size, place.stream, g5, x5, out, start, np.float64(0))
    else:
        _launch(kernels.max_grad_kernel, out.size, place.stream, g5, x5, out, g, start, np.float64(0), last)
    return _back(out, window.dims)


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices``, the last write to a position
    winning; see :func:`poolkit.backends.naive.scatter`."""
    place = place_of(values, indices)
    v5, i5 = _five(values), _five(indices)
    last = _channels_last(v5)
    dims, plane = len(plane_shape), math.prod(plane_shape)
    winner = _empty(place, (values.shape[0], values.shape[1], plane, 1, 1), np.int64, False, fill=-1)
    winner = arrange(winner, [0, 1, 2])
    out = _empty(place, values.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), values.dtype, last, fill=0)
    _launch(kernels.claim_kernel, i5.size, place.stream, i5, winner, last)
    _launch(kernels.unpool_kernel, v5.size, place.stream, v5, i5, winner, out, last)
    return _back(out, dims)


@entry_point
def scatter_add(values, indices, plane_shape):
    """Add each of ``values`` at its flat in-plane index of a zero array of
    ``plane_shape`` planes, per (N, C) plane; index -1 adds nothing.

    Deterministic, and the host backends' bits: no floating-point atomics. A
    first pass links every value into a list per target position (an integer
    atomic exchange: the lists' order varies, their contents do not); a second
    gives each position one thread, which adds its values in row-major order of
    their sources, in float64 (as NumPy's bincount and the numba backend add),
    and rounds once to ``values``'s dtype.
    """
    place = place_of(values, indices)
    v5, i5 = _five(values), _five(indices)
    last = _channels_last(v5)
    dims, plane = len(plane_shape), math.prod(plane_shape)
    out = _empty(place, values.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), values.dtype, last)
    if not out.size:
        return _back(out, dims)
    head = launch.contiguous(place.empty(values.shape[0] * values.shape[1] * plane, np.int64, fill=-1), (values.shape[0], values.shape[1], plane))
    following = place.empty(max(v5.size, 1), np.int64)
    _launch(kernels.link_kernel, i5.size, place.stream, i5, head, following, plane, _channels_last(i5))
    _launch(kernels.gather_kernel, out.size, place.stream, v5, head, following, out, np.float64(0), last)
    return _back(out, dims)


@entry_point
def first_out_of_range(indices, plane):
    """The first of ``indices`` (row-major) outside ``[0, plane)``, or None."""
    place = place_of(indices)
    i5 = _five(indices)
    first = place.empty(1, np.int64, fill=np.iinfo(np.int64).max)
    _launch(kernels.out_of_range_kernel, i5.size, place.stream, i5, plane, first)
    position = int(launch.copy_to_host(first, place)[0])
    if position == np.iinfo(np.int64).max:
        return None
    return int(_to_host(i5).reshape(-1)[position])


_CODES = {"abs": kernels.ABS, "pow": kernels.POW, "sqrt": kernels.SQRT, "cbrt": kernels.CBRT}


def _elementwise(place, x5, code, p, dtype):
    out = _empty(place, x5.shape, dtype, _channels_last(x5))
    compute = _compute(dtype)
    # NumPy takes a Python float operand in the array's own dtype: round p to it too.
    _launch(kernels.elementwise_kernel, out.size, place.stream, x5, out, code, compute.type(dtype.type(p)), compute.type(1), _channels_last(x5))
    return out


@entry_point
def elementwise(x, fn, p=None, scale=1):
    """``fn`` ("abs", "pow" to the ``p``, "sqrt", "cbrt") of ``x * scale``, in ``x``'s dtype,
    each step rounded to that dtype as NumPy rounds it."""
    place = place_of(x)
    x5 = _five(x)
    if scale != 1:
        x5 = _elementwise(place, x5, kernels.SCALE, scale, x.dtype)
    return _back(_elementwise(place, x5, _CODES[fn], 1 if p is None else p, x.dtype), x.ndim - 2)
