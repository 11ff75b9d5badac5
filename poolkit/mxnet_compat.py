"""MXNet 1.9's ``mx.nd.Pooling``, exactly, on poolkit's backends.

Where MXNet's raw operator differs from PyTorch, this follows MXNet:

* ``stride`` defaults to 1 (not to the kernel) and ``pad`` may exceed half the
  kernel (for float32 channels-first max and avg it must stay below the kernel,
  as MXNet's oneDNN kernel requires);
* ``pooling_convention="full"`` rounds the output size up with no correction,
  so the last window may lie wholly in the padding (max then gives the
  dtype's lowest finite value, average and sum give 0, but MXNet's 3-D
  average can give NaN there);
* max pooling ignores NaN and starts from the lowest finite value;
* ``pool_type="lp"`` is ``(sum of x**p) ** (1/p)`` for p in 1, 2, 3;
* the input must be batched and floating point.

One known difference remains: for float16 MXNet's CPU kernel accumulates
averages and sums in float16, poolkit in float32, so float16 results may differ
in the last bits.
"""

import numpy as np

from . import spec
from .dispatch import Call
from .spec import check_bool

POOL_TYPES = ("max", "avg", "sum", "lp")
CONVENTIONS = ("valid", "full")
_ROOTS = {2: "sqrt", 3: "cbrt"}


def _window(in_size, kernel, stride, pad, convention):
    dims = len(in_size)
    kernel = spec.as_tuple("kernel", kernel, dims)
    stride = (1,) * dims if stride is None else spec.as_tuple("stride", stride, dims)
    pad = (0,) * dims if pad is None else spec.as_tuple("pad", pad, dims)
    if not all(k > 0 for k in kernel):
        raise ValueError(f"kernel must be positive, got kernel={kernel}")
    if not all(s > 0 for s in stride):
        raise ValueError(f"stride must be positive, got stride={stride}")
    if not all(p >= 0 for p in pad):
        raise ValueError(f"pad must be non-negative, got pad={pad}")
    if not all(k <= size + 2 * p for k, size, p in zip(kernel, in_size, pad)):
        raise ValueError(f"kernel={kernel} exceeds the input size {tuple(in_size)} padded by pad={pad}")
    spans = [size + 2 * p - k for size, k, p in zip(in_size, kernel, pad)]
    if convention == "valid":
        out = tuple(1 + span // s for span, s in zip(spans, stride))
    else:
        out = tuple(1 - (-span // s) for span, s in zip(spans, stride))
    return spec.Window(tuple(in_size), kernel, stride, pad, (1,) * dims, out)


def mxnet_pooling(data, kernel, pool_type="max", stride=None, pad=None, pooling_convention="valid",
                  count_include_pad=True, global_pool=False, p_value=2, layout=None, *, backend="auto"):
    """Pooling exactly as MXNet 1.9's ``mx.nd.Pooling`` computes it.

    Parameters
    ----------
    data : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Batched floating-point input, ``(N, C, *spatial)`` or channels last.
    kernel : tuple of int
        Window size, 1 to 3 ints; its length sets the number of spatial axes.
        Ignored (and may be ``None``) with ``global_pool``.
    pool_type : {'max', 'avg', 'sum', 'lp'}
        The reduction.
    stride, pad : tuple of int, optional
        Step (default 1) and padding (default 0) per axis.
    pooling_convention : {'valid', 'full'}
        Round the output size down or up.
    count_include_pad : bool
        Whether average pooling's divisor counts padding.
    global_pool : bool
        Pool over the whole spatial extent (kernel = input size, stride 1, no pad).
    p_value : {1, 2, 3}
        The power of ``'lp'`` pooling.
    layout : {'NCW', 'NWC', 'NCHW', 'NHWC', 'NCDHW', 'NDHWC'}, optional
        Layout of ``data``; ``None`` means channels first.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}
        Which implementation computes the result.

    Returns
    -------
    same kind as data
        The pooled array, same dtype as ``data``.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If ``data`` is not floating point or a parameter has the wrong type.

    Examples
    --------
    The raw operator's stride is 1, not the kernel:

    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> mxnet_pooling(x, kernel=(2, 2)).shape
    (1, 1, 3, 3)
    >>> mxnet_pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="avg")[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    name = "mxnet_pooling"
    if pool_type not in POOL_TYPES:
        raise ValueError(f"{name}: pool_type must be one of {POOL_TYPES}, got pool_type={pool_type!r}")
    if pooling_convention not in CONVENTIONS:
        raise ValueError(f"{name}: pooling_convention must be one of {CONVENTIONS}, got pooling_convention={pooling_convention!r}")
    check_bool("count_include_pad", count_include_pad)
    check_bool("global_pool", global_pool)
    if pool_type == "lp" and (isinstance(p_value, bool) or p_value not in (1, 2, 3)):
        raise ValueError(f"{name}: p_value must be 1, 2 or 3, got p_value={p_value!r}")
    if global_pool:
        dims = getattr(data, "ndim", 0) - 2
    elif isinstance(kernel, (tuple, list)):
        dims = len(kernel)
    else:
        raise TypeError(f"{name}: kernel must be a tuple of 1 to 3 ints, got kernel={kernel!r}")
    if dims not in spec.LAYOUTS:
        what = f"data with shape {getattr(data, 'shape', None)}" if global_pool else f"kernel={kernel!r}"
        raise ValueError(f"{name}: pooling needs 1 to 3 spatial axes, got {what}")
    call = Call(name, data, dims, layout, backend, integers=False, label="data", batch_optional=False)
    if global_pool:
        kernel, stride, pad = call.spatial, None, None
    window = _window(call.spatial, kernel, stride, pad, pooling_convention)
    if call.dtype == np.float32 and not call.layout.channels_last and pool_type in ("max", "avg"):
        _check_onednn_pad(window, pool_type)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf come out silently, as in MXNet
        return _pool(call, window, pool_type, count_include_pad, p_value)


def _check_onednn_pad(window, pool_type):
    """MXNet's CPU build hands float32 channels-first max and avg pooling to
    oneDNN, which refuses a pad as large as the kernel (MXNet's check skips
    the middle axis of 3-D, so does this); its other kernels accept it."""
    checked = [axis for axis in range(window.dims) if not (window.dims == 3 and axis == 1)]
    if any(window.padding[axis] >= window.kernel[axis] for axis in checked):
        raise ValueError(
            f"mxnet_pooling: pad must be smaller than kernel for float32 {pool_type} pooling, "
            f"got pad={window.padding} with kernel={window.kernel}"
        )


def _pool(call, window, pool_type, count_include_pad, p_value):
    backend = call.backend
    if pool_type == "max":
        return call.result(backend.pool(call.x, window, "max", nan="ignore"))
    if pool_type == "lp":
        total = backend.pool(backend.elementwise(call.x, "pow", p_value), window, "sum")
        return call.result(total if p_value == 1 else backend.elementwise(total, _ROOTS[p_value]))
    if pool_type == "sum":
        return call.result(backend.pool(call.x, window, "sum"))
    if window.dims == 3:
        # MXNet's 3-D kernel divides even an empty window's 0 by its raw count: NaN where that is 0.
        divisor = window.sizes(count_include_pad, clamp=False)
    else:
        # Elsewhere a window with no element inside the input averages to 0 (its sum, 0, over inf).
        divisor = np.where(window.sizes(False) > 0, window.sizes(count_include_pad), np.inf)
    return call.result(backend.pool(call.x, window, "sum", divisor=divisor.astype(call.accumulator)))
