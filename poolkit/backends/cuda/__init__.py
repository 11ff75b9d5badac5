"""CUDA backend: numba-cuda kernels (:mod:`poolkit.backends.cuda.kernels`) behind the
same contract as :mod:`poolkit.backends.numpy_`, on device arrays.

Arrays that live on a GPU (anything with ``__cuda_array_interface__``: torch
CUDA tensors, CuPy arrays, numba device arrays) stay there, and results come
back as the same kind; host arrays are copied over and back. Views, such as the
(N, C, *spatial) view of a channels-last array, are made by rewriting shape and
strides, never by copying. Without a GPU, numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) runs the same kernels on the CPU, one Python
thread per GPU thread: that is how the tests check them everywhere.
"""

import math
import warnings

import numpy as np
from numba import config, cuda

from ... import arrays
from ...dispatch import entry_point
from ...spec import accumulator_dtype, start_value
from .. import cells
from . import kernels

SIMULATED = bool(config.ENABLE_CUDASIM)
#: Threads per block; the simulator runs each as a Python thread, so it gets fewer.
THREADS = 32 if SIMULATED else 256
#: Blocks per launch at most; the kernels loop with the grid's stride over the rest.
MAX_BLOCKS = 1 << 16


def require_device(name):
    """Raise RuntimeError, naming the function, unless a CUDA device (or the simulator) is there."""
    if not cuda.is_available():
        raise RuntimeError(
            f"{name}: backend='cuda' found no CUDA device (numba.cuda.is_available() is False); "
            "use backend='numpy' or 'numba', or set NUMBA_ENABLE_CUDASIM=1 to run the kernels on numba's CUDA simulator"
        )


# --- device arrays in and out ---------------------------------------------------


def _view(array, shape, strides):
    """A view of device ``array``'s memory with the given shape and strides (in bytes)."""
    if SIMULATED:
        return cuda.devicearray.FakeCUDAArray(np.lib.stride_tricks.as_strided(array._ary, shape, strides))
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return DeviceNDArray(tuple(shape), tuple(strides), array.dtype, gpu_data=array.gpu_data)


def arrange(array, axes):
    """:func:`poolkit.arrays.arrange` for device arrays."""
    shape = tuple(1 if axis is None else array.shape[axis] for axis in axes)
    strides = tuple(0 if axis is None else array.strides[axis] for axis in axes)
    return _view(array, shape, strides)


def _to_host(array):
    """Copy a device view, in any axis order, to a NumPy array with the same axis order."""
    order = sorted(range(array.ndim), key=lambda axis: -array.strides[axis])
    contiguous = _view(array, [array.shape[a] for a in order], [array.strides[a] for a in order])
    return contiguous.copy_to_host().transpose(np.argsort(order))


def read(name, label, x):
    """Return ``(array, back)``: ``x`` as a numba device array, and a function that
    turns a device result into the kind of array ``x`` was (copied back for host input)."""
    if arrays.on_device(x):
        if hasattr(x, "copy_to_host"):  # already a numba device array
            return x, lambda result: result
        framework = type(x).__module__.split(".", 1)[0]
        if framework == "torch":
            import torch

            device = x.device
            return cuda.as_cuda_array(x.detach()), lambda result: torch.as_tensor(result, device=device)
        if framework == "cupy":
            import cupy

            return cuda.as_cuda_array(x), cupy.asarray
        return cuda.as_cuda_array(x), lambda result: result
    array, back = arrays.to_numpy(name, label, x)
    return cuda.to_device(np.ascontiguousarray(array)), lambda result: back(_to_host(result))


def _launch(kernel, count, *args):
    if not count:
        return
    launch = kernel[min(MAX_BLOCKS, -(-count // THREADS)), THREADS]
    if not SIMULATED:
        launch(*args)
        return
    with warnings.catch_warnings():
        # The simulator computes with NumPy scalars, which warn where the
        # device silently gives inf or NaN (poolkit's contract): silence them.
        warnings.simplefilter("ignore", RuntimeWarning)
        launch(*args)


def _empty(shape, dtype, channels_last, fill=None):
    """A 5-D (N, C, D, H, W) device array laid out channels-last or channels-first."""
    memory = (shape[0], *shape[2:], shape[1]) if channels_last else tuple(shape)
    flat = cuda.device_array(math.prod(memory), dtype)
    if fill is not None:
        _launch(kernels.fill_kernel, flat.size, flat.reshape(1, 1, 1, 1, flat.size), flat.dtype.type(fill))
    array = flat.reshape(memory)
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
    return cuda.to_device(cells.per_output(values, shape, dtype))


# --- the backend contract -------------------------------------------------------


@entry_point
def pool(x, window, op, *, indices=False, nan="propagate", divisor=None):
    """Reduce every window of ``x`` with ``op`` ("max", "min" or "sum"); see :func:`poolkit.backends.naive.pool`."""
    x5, g = _five(x), cells.geometry(window)
    last = _channels_last(x5)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - window.dims) + tuple(window.out_size)
    out = _empty(shape, x.dtype, last)
    if op == "sum":
        acc = accumulator_dtype(x.dtype)
        _launch(kernels.sum_kernel, out.size, x5, out, _per_output(divisor, shape[2:], acc), g, acc.type(0), last)
        return _back(out, window.dims)
    where = _empty(shape, np.int64, last) if indices else _empty((1,) * 5, np.int64, False)
    start = _compute(x.dtype).type(start_value(op, x.dtype, nan))
    _launch(kernels.extremum_kernel, out.size, x5, out, where, g, op == "max", nan == "propagate", start, indices, last)
    return (_back(out, window.dims), _back(where, window.dims)) if indices else _back(out, window.dims)


@entry_point
def adaptive_pool(x, bins, op, *, indices=False, divisor=None):
    """Reduce every adaptive bin of ``x``; see :func:`poolkit.backends.naive.adaptive_pool`."""
    dims = len(bins)
    x5 = _five(x)
    last = _channels_last(x5)
    shape = x5.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(len(starts) for starts, _ in bins)
    out = _empty(shape, x.dtype, last, fill=0)
    where = _empty(shape, np.int64, last, fill=0) if indices else _empty((1,) * 5, np.int64, False)
    if x5.size and out.size:
        acc = accumulator_dtype(x.dtype)
        starts, ends = (cuda.to_device(table) for table in cells.bin_table(bins))
        start = _compute(x.dtype).type(start_value("max", x.dtype, "propagate"))
        divisor = _per_output(divisor, shape[2:], acc)
        _launch(kernels.adaptive_kernel, out.size, x5, out, where, starts, ends, divisor, op == "max", start, acc.type(0), indices, last)
    return (_back(out, dims), _back(where, dims)) if indices else _back(out, dims)


@entry_point
def pool_transpose(values, window, divisor):
    """Spread each output's value over its divisor back onto its window; see :func:`poolkit.backends.naive.pool_transpose`."""
    v5, g = _five(values), cells.geometry(window)
    last = _channels_last(v5)
    acc = accumulator_dtype(values.dtype)
    out = _empty(v5.shape[:2] + g[0], values.dtype, last)
    _launch(kernels.spread_kernel, out.size, v5, _per_output(divisor, v5.shape[2:], acc), out, g, acc.type(0), last)
    return _back(out, window.dims)


@entry_point
def max_pool_backward(grad, x, window):
    """Route each output's gradient to its window's argmax; see :func:`poolkit.backends.naive.max_pool_backward`."""
    x5, g5, g = _five(x), _five(grad), cells.geometry(window)
    last = _channels_last(x5)
    out = _empty(x5.shape, grad.dtype, last)
    start = _compute(x.dtype).type(start_value("max", x.dtype, "propagate"))
    _launch(kernels.max_grad_kernel, out.size, g5, x5, out, g, start, np.float64(0), last)
    return _back(out, window.dims)


@entry_point
def scatter(values, indices, plane_shape):
    """Write ``values`` at flat in-plane ``indices``, the last write to a position
    winning; see :func:`poolkit.backends.naive.scatter`."""
    v5, i5 = _five(values), _five(indices)
    last = _channels_last(v5)
    dims, plane = len(plane_shape), math.prod(plane_shape)
    winner = _empty((values.shape[0], values.shape[1], plane, 1, 1), np.int64, False, fill=-1)
    winner = arrange(winner, [0, 1, 2])
    out = _empty(values.shape[:2] + (1,) * (cells.SPATIAL - dims) + tuple(plane_shape), values.dtype, last, fill=0)
    _launch(kernels.claim_kernel, i5.size, i5, winner, last)
    _launch(kernels.unpool_kernel, v5.size, v5, i5, winner, out, last)
    return _back(out, dims)


@entry_point
def first_out_of_range(indices, plane):
    """The first of ``indices`` (row-major) outside ``[0, plane)``, or None."""
    i5 = _five(indices)
    first = cuda.to_device(np.array([np.iinfo(np.int64).max]))
    _launch(kernels.out_of_range_kernel, i5.size, i5, plane, first)
    position = int(first.copy_to_host()[0])
    if position == np.iinfo(np.int64).max:
        return None
    return int(_to_host(i5).reshape(-1)[position])


_CODES = {"abs": kernels.ABS, "pow": kernels.POW, "sqrt": kernels.SQRT, "cbrt": kernels.CBRT}


def _elementwise(x5, code, p, dtype):
    out = _empty(x5.shape, dtype, _channels_last(x5))
    compute = _compute(dtype)
    # NumPy takes a Python float operand in the array's own dtype: round p to it too.
    _launch(kernels.elementwise_kernel, out.size, x5, out, code, compute.type(dtype.type(p)), compute.type(1), _channels_last(x5))
    return out


@entry_point
def elementwise(x, fn, p=None, scale=1):
    """``fn`` ("abs", "pow" to the ``p``, "sqrt", "cbrt") of ``x * scale``, in ``x``'s dtype,
    each step rounded to that dtype as NumPy rounds it."""
    x5 = _five(x)
    if scale != 1:
        x5 = _elementwise(x5, kernels.SCALE, scale, x.dtype)
    return _back(_elementwise(x5, _CODES[fn], 1 if p is None else p, x.dtype), x.ndim - 2)
