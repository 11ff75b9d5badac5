"""poolkit: exact reference implementations of pooling, from loops to kernels.

The functions mirror ``torch.nn.functional``'s names and argument order and
PyTorch's semantics exactly; :func:`mxnet_pooling` mirrors MXNet's
``mx.nd.Pooling``. Each public function validates its arguments once
(:mod:`poolkit.spec`) and hands the work to a backend: ``"naive"`` (the
lecture's loops), ``"numpy"`` (vectorized), ``"numba"`` (compiled for the CPU),
``"cuda"`` (numba-cuda kernels) or ``"auto"`` (the fastest one for the input).
Inputs may be NumPy arrays, torch tensors, MXNet NDArrays or CUDA device arrays,
and the result is of the same kind (device arrays stay on the device); the
input is never modified.

Examples
--------
The lecture's 2x2 max and average pooling of 0..8 (unbatched, one channel):

>>> import numpy as np, poolkit
>>> X = np.arange(9.0).reshape(1, 3, 3)
>>> poolkit.max_pool2d(X, 2, stride=1)[0].tolist()
[[4.0, 5.0], [7.0, 8.0]]
>>> poolkit.avg_pool2d(X, 2, stride=1)[0].tolist()
[[2.0, 3.0], [5.0, 6.0]]
"""

import functools
import math
import numbers

import numpy as np

from . import spec
from .dispatch import BACKENDS, Call
from .mxnet_compat import mxnet_pooling
from .spec import check_bool, pool_output_size

__all__ = ["BACKENDS", "mxnet_pooling", "pool_output_size"]


def _divisor(window, count_include_pad, divisor_override, dtype):
    """What average pooling divides each window's sum by, one value per output position."""
    check_bool("count_include_pad", count_include_pad)
    if divisor_override is None:
        return window.sizes(count_include_pad).astype(dtype)
    if spec.as_int("divisor_override", divisor_override) == 0:
        raise ValueError(f"divisor_override must be non-zero, got divisor_override={divisor_override!r}")
    return np.full(window.out_size, divisor_override, dtype)


# --- the operations, written once for any number of spatial dimensions ------


def _extremum_pool(op, name, dims, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=True)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return call.result(call.backend.pool(call.x, window, op))
    out, where = call.backend.pool(call.x, window, op, indices=True)
    return call.result(out), call.result(where)


def _avg_pool(name, dims, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    divisor = _divisor(window, count_include_pad, divisor_override, call.accumulator)
    return call.result(call.backend.pool(call.x, window, "sum", divisor=divisor))


def _sum_pool(name, dims, x, kernel_size, stride, padding, ceil_mode, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    return call.result(call.backend.pool(call.x, window, "sum"))


def _lp_pool(name, dims, x, norm_type, kernel_size, stride, ceil_mode, layout, backend):
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a number, got norm_type={norm_type!r}")
    if norm_type == 0 or math.isnan(norm_type):
        raise ValueError(f"norm_type must be non-zero and not NaN, got norm_type={norm_type!r}")
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, 0, 1, ceil_mode, fits_kernel=dims == 3)
    # PyTorch multiplies by the kernel's area, unpacking kernel_size itself: an
    # int in 1-D, an int or a full tuple from 2-D on.
    if isinstance(kernel_size, (tuple, list)) and (dims == 1 or len(kernel_size) != dims):
        wanted = "an int" if dims == 1 else f"an int or a tuple of {dims} ints"
        raise ValueError(f"{name}: kernel_size must be {wanted}, got kernel_size={kernel_size!r}")
    backend = call.backend
    if math.isinf(norm_type):  # the limits p -> +-inf: the max (or min) of |x|
        return call.result(backend.pool(backend.elementwise(call.x, "abs"), window, "max" if norm_type > 0 else "min"))
    # PyTorch's definition, step by step in the input dtype: the average of x**p
    # over the window (clipped to the input), times the full kernel size, to the 1/p.
    powered = backend.elementwise(call.x, "pow", float(norm_type))
    mean = backend.pool(powered, window, "sum", divisor=window.sizes(True).astype(call.accumulator))
    return call.result(backend.elementwise(mean, "pow", 1.0 / float(norm_type), scale=math.prod(window.kernel)))


def _adaptive_pool(op, name, dims, x, output_size, return_indices, layout, backend):
    # PyTorch lets adaptive pooling have no channels when unbatched, and its
    # 1-D and 2-D average pooling even when batched.
    empty_channels = True if op == "avg" and dims < 3 else "unbatched"
    call = Call(name, x, dims, layout, backend, integers=op == "max", empty_channels=empty_channels)
    bins = spec.adaptive_bins(call.spatial, spec.adaptive_output_size(call.spatial, output_size))
    if op == "avg":
        divisor = spec.adaptive_bin_sizes(bins).astype(call.accumulator)
        return call.result(call.backend.adaptive_pool(call.x, bins, "sum", divisor=divisor))
    if not return_indices:
        return call.result(call.backend.adaptive_pool(call.x, bins, "max"))
    out, where = call.backend.adaptive_pool(call.x, bins, "max", indices=True)
    return call.result(out), call.result(where)


def _max_unpool(name, dims, x, indices, kernel_size, stride, padding, output_size, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=True)
    where = call.companion("indices", indices, call.x.shape, integers=True)
    size = spec.unpool_output_size(call.spatial, kernel_size, stride, padding, output_size)
    plane = math.prod(size)
    bad = call.backend.first_out_of_range(where, plane)
    if bad is not None:
        raise ValueError(f"{name}: indices must lie in [0, {plane}) for output size {size}, got index {bad}")
    return call.result(call.backend.scatter(call.x, where, size))


def _max_pool_backward(name, dims, grad_output, x, kernel_size, stride, padding, dilation, ceil_mode, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=True)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, dilation, ceil_mode)
    grad = call.companion("grad_output", grad_output, call.x.shape[:2] + window.out_size, integers=False)
    return call.result(call.backend.max_pool_backward(grad, call.x, window))


def _avg_pool_backward(name, dims, grad_output, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend):
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    grad = call.companion("grad_output", grad_output, call.x.shape[:2] + window.out_size, integers=False)
    divisor = _divisor(window, count_include_pad, divisor_override, spec.accumulator_dtype(grad.dtype))
    return call.result(call.backend.pool_transpose(grad, window, divisor))


# --- the public names: one function per operation and number of dimensions --

_ARRAY = "x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray\n        Input of shape ``(N, C, {spatial})`` or unbatched ``(C, {spatial})``; channels last with ``layout={last!r}``."
_LAYOUT = (
    "layout : {{{first!r}, {last!r}}}, optional\n        Where the channels are; ``None`` means {first!r}.\n"
    "    backend : {{'auto', 'naive', 'numpy', 'numba', 'cuda'}}, default 'auto'\n        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise."
)
_RAISES = "Raises\n    ------\n    ValueError\n        If a parameter or the input's shape is invalid; the message names it.\n    TypeError\n        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.\n    RuntimeError\n        If ``backend='cuda'`` and no CUDA device is found."
_EXAMPLE = ">>> import numpy as np, poolkit\n    >>> x = np.arange({n}.0).reshape({shape})\n    >>> {call}.shape\n    {out}"

_DOCS = {
    "max_pool": """{dims}-D max pooling, exactly as ``torch.nn.functional.{name}``.

    Each output is the largest element of its window; NaN wins (the last NaN's
    index is reported), ties keep the first index. A dilated window that
    covers only padding gives ``-inf`` and index -1.

    Parameters
    ----------
    {array}
    kernel_size, stride, padding, dilation : int or tuple of int
        Window size, step (default ``kernel_size``), implicit ``-inf`` padding
        on both sides (at most half the kernel) and spacing of window elements.
    ceil_mode : bool
        Round the output size up; the last window still starts inside the input
        or the left padding.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane (any
        true value counts, as in PyTorch).
    {layout}

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x.
    indices : same kind as x, int64
        Only with ``return_indices``.

    {raises}

    Examples
    --------
    {example}
    """,
    "min_pool": """{dims}-D min pooling: :func:`max_pool{dims}d` with the order reversed.

    ``{name}(x)`` equals ``-max_pool{dims}d(-x)``, indices included, for floats.

    Parameters
    ----------
    {array}
    kernel_size, stride, padding, dilation, ceil_mode, return_indices
        As in :func:`max_pool{dims}d`.
    {layout}

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    {raises}

    Examples
    --------
    {example}
    """,
    "avg_pool": """{dims}-D average pooling, exactly as ``torch.nn.functional.{name}``.

    Each output is the sum of its window divided by the window's size, which
    counts explicit zero padding (unless ``count_include_pad`` is False) but
    never the part of a ceil-mode window beyond the padding.

    Parameters
    ----------
    {array}
        Floating point.
    kernel_size, stride, padding : int or tuple of int
        Window size, step (default ``kernel_size``) and zero padding (at most half the kernel).
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Count padding elements in the divisor.
    divisor_override : int, optional
        Divide every sum by this instead.
    {layout}

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "sum_pool": """{dims}-D sum pooling: the window sums that :func:`avg_pool{dims}d` divides.

    Parameters
    ----------
    {array}
        Floating point.
    kernel_size, stride, padding, ceil_mode
        As in :func:`avg_pool{dims}d`.
    {layout}

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "lp_pool": """{dims}-D power-average pooling, exactly as ``torch.nn.functional.{name}``.

    ``(sum of x**norm_type over the window) ** (1/norm_type)``, computed as
    PyTorch does: the average of ``x**norm_type`` over the window (clipped to
    the input in ceil mode) times the full kernel size.

    Parameters
    ----------
    {array}
        Floating point.
    norm_type : float
        The power p: non-zero; ``inf`` gives the max of ``|x|``, ``-inf`` the min.
    kernel_size, stride : int or tuple of int
        Window size and step (default ``kernel_size``); there is no padding.
    ceil_mode : bool
        Round the output size up.
    {layout}

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "adaptive_avg_pool": """{dims}-D adaptive average pooling, exactly as ``torch.nn.functional.{name}``.

    Output ``i`` of ``O`` averages input bin ``[floor(i*L/O), ceil((i+1)*L/O))``;
    bins overlap when ``O`` does not divide ``L``.

    Parameters
    ----------
    {array}
        Floating point.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    {layout}

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "adaptive_max_pool": """{dims}-D adaptive max pooling, exactly as ``torch.nn.functional.{name}``.

    Output ``i`` of ``O`` is the max over input bin ``[floor(i*L/O), ceil((i+1)*L/O))``,
    with :func:`max_pool{dims}d`'s rules for NaN and ties.

    Parameters
    ----------
    {array}
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane.
    {layout}

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    {raises}

    Examples
    --------
    {example}
    """,
    "global_avg_pool": """{dims}-D global average pooling: the mean of each channel, like Gluon's ``GlobalAvgPool{dims}D``.

    The same as ``adaptive_avg_pool{dims}d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    {array}
        Floating point.
    {layout}

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "global_max_pool": """{dims}-D global max pooling: the max of each channel, like Gluon's ``GlobalMaxPool{dims}D``.

    The same as ``adaptive_max_pool{dims}d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    {array}
    {layout}

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "max_unpool": """{dims}-D max unpooling, exactly as ``torch.nn.functional.{name}``.

    Puts each value of ``x`` at the flat in-plane position given by ``indices``
    (from :func:`max_pool{dims}d` with ``return_indices=True``) of a zero array.

    Parameters
    ----------
    {array}
    indices : array of int, same kind and shape as x
        Flat in-plane positions, each in ``[0, prod(output_size))``.
    kernel_size, stride, padding : int or tuple of int
        The max pooling's parameters (stride defaults to ``kernel_size``).
    output_size : tuple of int, optional
        Spatial output size (optionally with N and C first); the default is
        ``(in - 1)*stride - 2*padding + kernel_size``, and any other must lie
        strictly within ``stride`` of it.
    {layout}

    Returns
    -------
    same kind as x
        Unpooled array, same dtype as x.

    {raises}

    Examples
    --------
    {example}
    """,
    "max_pool_backward": """Gradient of :func:`max_pool{dims}d` with respect to ``x``.

    Each output's gradient goes to the element that won its window (the one
    ``return_indices`` reports); overlapping windows add up.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    {array}
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool{dims}d`.
    {layout}

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    {raises}

    Examples
    --------
    {example}
    """,
    "avg_pool_backward": """Gradient of :func:`avg_pool{dims}d` with respect to ``x``.

    Each output's gradient, divided by its window's divisor, is added to every
    input element of the window.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    {array}
        Floating point.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool{dims}d`.
    {layout}

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    {raises}

    Examples
    --------
    {example}
    """,
}


def _example(family, name, dims):
    """A runnable example: a (1, 4, ..., 4) input, pooled with kernel 2."""
    shape, out = (1,) + (4,) * dims, (1,) + (2,) * dims
    calls = {
        "lp_pool": f"poolkit.{name}(x, 2, 2)",
        "adaptive_avg_pool": f"poolkit.{name}(x, 2)",
        "adaptive_max_pool": f"poolkit.{name}(x, 2)",
        "global_avg_pool": f"poolkit.{name}(x)",
        "global_max_pool": f"poolkit.{name}(x)",
        "max_unpool": f"poolkit.{name}(*poolkit.max_pool{dims}d(x, 2, return_indices=True), 2)",
        "max_pool_backward": f"poolkit.{name}(np.ones({out}), x, 2)",
        "avg_pool_backward": f"poolkit.{name}(np.ones({out}), x, 2)",
    }
    results = {"global_avg_pool": (1,) * (dims + 1), "global_max_pool": (1,) * (dims + 1)}
    results.update(dict.fromkeys(["max_unpool", "max_pool_backward", "avg_pool_backward"], shape))
    return _EXAMPLE.format(n=4**dims, shape=shape, call=calls.get(family, f"poolkit.{name}(x, 2)"), out=results.get(family, out))


def _quiet(function):
    """Run ``function`` without NumPy's warnings for inf - inf, overflow and 0/0:
    like the frameworks, pooling returns NaN or inf there silently."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return function(*args, **kwargs)

    return quiet


def _publish(family, make, all_dims):
    """Define ``{family}{d}d`` (or ``{family}{d}d_backward``) for each d in ``all_dims``."""
    for dims in all_dims:
        stem = family.removesuffix("_backward")
        name = f"{stem}{dims}d" + family[len(stem):]
        first, last = spec.LAYOUTS[dims]
        spatial = ", ".join(first[2:])
        fields = dict(dims=dims, name=name, layout=_LAYOUT.format(first=first, last=last), raises=_RAISES)
        fields["array"] = _ARRAY.format(spatial=spatial, last=last)
        fields["example"] = _example(family, name, dims)
        function = _quiet(make(name, dims))
        function.__name__ = function.__qualname__ = name
        function.__doc__ = _DOCS[family].format(**fields)
        globals()[name] = function
        __all__.append(name)


def _extremum_family(op):
    def make(name, dims):
        def pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *, layout=None, backend="auto"):
            return _extremum_pool(op, name, dims, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)

        return pool

    return make


def _make_avg_pool(name, dims):
    def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None, *, layout=None, backend="auto"):
        return _avg_pool(name, dims, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)

    return avg_pool


def _make_sum_pool(name, dims):
    def sum_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, *, layout=None, backend="auto"):
        return _sum_pool(name, dims, x, kernel_size, stride, padding, ceil_mode, layout, backend)

    return sum_pool


def _make_lp_pool(name, dims):
    def lp_pool(x, norm_type, kernel_size, stride=None, ceil_mode=False, *, layout=None, backend="auto"):
        return _lp_pool(name, dims, x, norm_type, kernel_size, stride, ceil_mode, layout, backend)

    return lp_pool


def _make_adaptive_avg_pool(name, dims):
    def adaptive_avg_pool(x, output_size, *, layout=None, backend="auto"):
        return _adaptive_pool("avg", name, dims, x, output_size, False, layout, backend)

    return adaptive_avg_pool


def _make_adaptive_max_pool(name, dims):
    def adaptive_max_pool(x, output_size, return_indices=False, *, layout=None, backend="auto"):
        return _adaptive_pool("max", name, dims, x, output_size, return_indices, layout, backend)

    return adaptive_max_pool


def _global_family(op):
    def make(name, dims):
        def global_pool(x, *, layout=None, backend="auto"):
            return _adaptive_pool(op, name, dims, x, 1, False, layout, backend)

        return global_pool

    return make


def _make_max_unpool(name, dims):
    def max_unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None, *, layout=None, backend="auto"):
        return _max_unpool(name, dims, x, indices, kernel_size, stride, padding, output_size, layout, backend)

    return max_unpool


def _make_max_pool_backward(name, dims):
    def max_pool_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *, layout=None, backend="auto"):
        return _max_pool_backward(name, dims, grad_output, x, kernel_size, stride, padding, dilation, ceil_mode, layout, backend)

    return max_pool_backward


def _make_avg_pool_backward(name, dims):
    def avg_pool_backward(
        grad_output, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None, *, layout=None, backend="auto"
    ):
        return _avg_pool_backward(
            name, dims, grad_output, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend
        )

    return avg_pool_backward


_ALL_DIMS = (1, 2, 3)
_publish("max_pool", _extremum_family("max"), _ALL_DIMS)
_publish("min_pool", _extremum_family("min"), _ALL_DIMS)
_publish("avg_pool", _make_avg_pool, _ALL_DIMS)
_publish("sum_pool", _make_sum_pool, _ALL_DIMS)
_publish("lp_pool", _make_lp_pool, _ALL_DIMS)
_publish("adaptive_avg_pool", _make_adaptive_avg_pool, _ALL_DIMS)
_publish("adaptive_max_pool", _make_adaptive_max_pool, _ALL_DIMS)
_publish("global_avg_pool", _global_family("avg"), _ALL_DIMS)
_publish("global_max_pool", _global_family("max"), _ALL_DIMS)
_publish("max_unpool", _make_max_unpool, _ALL_DIMS)
_publish("max_pool_backward", _make_max_pool_backward, _ALL_DIMS)
_publish("avg_pool_backward", _make_avg_pool_backward, _ALL_DIMS)
