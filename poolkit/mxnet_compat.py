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

from __future__ import annotations

from typing import Any, cast

import numpy as np

from . import spec
from .dispatch import Call
from .spec import Size, Window

_ROOTS = {2: "sqrt", 3: "cbrt"}


def mxnet_pooling(
    data: Any,
    kernel: Size | None,
    pool_type: str = "max",
    stride: Size | None = None,
    pad: Size | None = None,
    pooling_convention: str = "valid",
    count_include_pad: bool = True,
    global_pool: bool = False,
    p_value: int = 2,
    layout: str | None = None,
    *,
    backend: str = "auto",
) -> Any:
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

    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> poolkit.mxnet_pooling(x, kernel=(2, 2)).shape
    (1, 1, 3, 3)
    >>> poolkit.mxnet_pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="avg")[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    name = "mxnet_pooling"
    dims = spec.check_mxnet_pooling(name, data, kernel, pool_type, pooling_convention, count_include_pad, global_pool, p_value)
    call = Call(name, data, dims, layout, backend, integers=False, label="data", batch_optional=False)
    if global_pool:
        kernel, stride, pad = call.spatial, None, None
    window = spec.mxnet_window(call.spatial, cast(Size, kernel), stride, pad, pooling_convention)  # a tuple: checked above
    if call.dtype == np.float32 and not call.layout.channels_last and pool_type in ("max", "avg"):
        spec.check_onednn_pad(window, pool_type)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf come out silently, as in MXNet
        return _pool(call, window, pool_type, count_include_pad, p_value)


def _pool(call: Call, window: Window, pool_type: str, count_include_pad: bool, p_value: int) -> Any:
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
