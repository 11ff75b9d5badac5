"""The public pooling functions: one explicit, typed, documented ``def`` each.

Every function mirrors ``torch.nn.functional``'s name, argument order and
semantics (:mod:`poolkit.spec` says where poolkit deliberately differs), takes
NumPy arrays, torch tensors, MXNet NDArrays or CUDA device arrays, and returns
the same kind; the input is never modified. The work of each family is written
once for any number of spatial dimensions (``_extremum_pool``, ``_avg_pool``,
...): the public ``def`` names the operation and its number of dimensions, and
that name is what errors and tracebacks show.

Like the frameworks, pooling returns NaN or inf silently where the arithmetic
gives them (inf - inf, overflow, 0/0): NumPy's warnings are off inside.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Literal, Sequence, TypeVar, overload

import numpy as np

from . import arrays, spec
from .dispatch import Call
from .spec import Size

#: The kind of array a function is given, and returns: NumPy, torch, MXNet or a device array.
ArrayT = TypeVar("ArrayT")
#: An adaptive pooling's output size: an int, or one entry per axis (None keeps the input's size).
OutputSize = int | Sequence[int | None]



# NumPy 1.x keeps its error settings in a per-thread "errobj", which np.errstate
# decodes and encodes on the way in and out (about 5 us, a quarter of a small
# call); NumPy 2 has no errobj, and an errstate there is cheap.
_geterrobj = getattr(np, "geterrobj", None)
_seterrobj = getattr(np, "seterrobj", None)
if _geterrobj is not None:
    from numpy.core import umath as _umath

    _SHIFT = vars(_umath)
    #: The bits of the error mask that say what divide, over and invalid do; 0 is "ignore".
    _LOUD = (7 << _SHIFT["SHIFT_DIVIDEBYZERO"]) | (7 << _SHIFT["SHIFT_OVERFLOW"]) | (7 << _SHIFT["SHIFT_INVALID"])


class _Quiet:
    """``np.errstate(invalid="ignore", over="ignore", divide="ignore")`` on NumPy 1.x,
    set straight in the errobj (the caller's setting for underflow is kept)."""

    __slots__ = ("_saved",)

    def __enter__(self) -> None:
        assert _geterrobj is not None and _seterrobj is not None
        saved = _geterrobj()
        self._saved = saved
        _seterrobj([saved[0], saved[1] & ~_LOUD, saved[2]])

    def __exit__(self, *exc_info: object) -> None:
        assert _seterrobj is not None
        _seterrobj(self._saved)


def _silent() -> contextlib.AbstractContextManager[Any]:
    """No NumPy warnings for inf - inf, overflow and 0/0: pooling gives NaN or inf there silently."""
    if _geterrobj is not None:
        return _Quiet()
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


# --- the operations, written once for any number of spatial dimensions ------


def _extremum_pool(op: Literal["max", "min"], name: str, dims: int, x: Any, kernel_size: Size, stride: Size | None, padding: Size,
                   dilation: Size, ceil_mode: bool, return_indices: bool, layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=True)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, dilation, ceil_mode)
    with _silent():
        if not return_indices:
            return call.result(call.backend.pool(call.x, window, op))
        out, where = call.backend.pool(call.x, window, op, indices=True)
    return call.result(out), call.result(where)


def _avg_pool(name: str, dims: int, x: Any, kernel_size: Size, stride: Size | None, padding: Size, ceil_mode: bool,
              count_include_pad: bool, divisor_override: int | None, layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    divisor = spec.avg_divisor(window, count_include_pad, divisor_override, call.accumulator)
    with _silent():
        return call.result(call.backend.pool(call.x, window, "sum", divisor=divisor))


def _sum_pool(name: str, dims: int, x: Any, kernel_size: Size, stride: Size | None, padding: Size, ceil_mode: bool,
              layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    with _silent():
        return call.result(call.backend.pool(call.x, window, "sum"))


def _lp_pool(name: str, dims: int, x: Any, norm_type: float, kernel_size: Size, stride: Size | None, ceil_mode: bool,
             layout: str | None, backend: str) -> Any:
    p = spec.check_norm_type(norm_type)
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, 0, 1, ceil_mode, fits_kernel=dims == 3)
    spec.check_lp_kernel(name, dims, kernel_size)
    backend_ = call.backend
    with _silent():
        if math.isinf(p):  # the limits p -> +-inf: the max (or min) of |x|
            return call.result(backend_.pool(backend_.elementwise(call.x, "abs"), window, "max" if p > 0 else "min"))
        # PyTorch's definition, step by step in the input dtype: the average of x**p
        # over the window (clipped to the input), times the full kernel size, to the 1/p.
        powered = backend_.elementwise(call.x, "pow", p)
        mean = backend_.pool(powered, window, "sum", divisor=spec.avg_divisor(window, True, None, call.accumulator))
        return call.result(backend_.elementwise(mean, "pow", 1.0 / p, scale=math.prod(window.kernel)))


def _adaptive_pool(op: Literal["avg", "max"], name: str, dims: int, x: Any, output_size: OutputSize, return_indices: bool,
                   layout: str | None, backend: str) -> Any:
    # PyTorch lets adaptive pooling have no channels when unbatched, and its
    # 1-D and 2-D average pooling even when batched.
    empty_channels = True if op == "avg" and dims < 3 else "unbatched"
    call = Call(name, x, dims, layout, backend, integers=op == "max", empty_channels=empty_channels)
    bins = spec.adaptive_bins(call.spatial, spec.adaptive_output_size(call.spatial, output_size))
    with _silent():
        if op == "avg":
            divisor = spec.adaptive_bin_sizes(bins).astype(call.accumulator)
            return call.result(call.backend.adaptive_pool(call.x, bins, "sum", divisor=divisor))
        if not return_indices:
            return call.result(call.backend.adaptive_pool(call.x, bins, "max"))
        out, where = call.backend.adaptive_pool(call.x, bins, "max", indices=True)
    return call.result(out), call.result(where)


def _max_unpool(name: str, dims: int, x: Any, indices: Any, kernel_size: Size, stride: Size | None, padding: Size,
                output_size: Sequence[int] | None, layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=True)
    where = call.companion("indices", indices, call.x.shape, integers=True)
    size = spec.unpool_output_size(call.spatial, kernel_size, stride, padding, output_size)
    spec.check_unpool_indices(name, call.backend.first_out_of_range(where, math.prod(size)), size)
    return call.result(call.backend.scatter(call.x, where, size))


def _max_pool_backward(name: str, dims: int, grad_output: Any, x: Any, kernel_size: Size, stride: Size | None, padding: Size,
                       dilation: Size, ceil_mode: bool, indices: Any, layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=True)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, dilation, ceil_mode)
    grad = call.companion("grad_output", grad_output, call.x.shape[:2] + window.out_size, integers=False)
    if indices is None:  # find each window's argmax again
        with _silent():
            return call.result(call.backend.max_pool_backward(grad, call.x, window))
    # The forward's indices: one scatter-add of the gradient, no argmax recomputed.
    where = call.companion("indices", indices, grad.shape, integers=True)
    plane = math.prod(window.in_size)
    bad = call.backend.first_out_of_range(where, plane)
    if bad == -1:  # max pooling's mark of a window that covers only padding: allowed, look further
        bad = spec.first_bad_gradient_index(arrays.to_numpy(name, "indices", where)[0], plane)
    spec.check_gradient_indices(name, bad, window.in_size)
    if isinstance(where, np.ndarray) and where.dtype != np.int64:
        where = where.astype(np.int64)
    with _silent():
        return call.result(call.backend.scatter_add(grad, where, window.in_size))


def _avg_pool_backward(name: str, dims: int, grad_output: Any, x: Any, kernel_size: Size, stride: Size | None, padding: Size,
                       ceil_mode: bool, count_include_pad: bool, divisor_override: int | None, layout: str | None, backend: str) -> Any:
    call = Call(name, x, dims, layout, backend, integers=False)
    window = spec.make_window(call.spatial, kernel_size, stride, padding, 1, ceil_mode, fits_kernel=dims == 3)
    grad = call.companion("grad_output", grad_output, call.x.shape[:2] + window.out_size, integers=False)
    divisor = spec.avg_divisor(window, count_include_pad, divisor_override, spec.accumulator_dtype(grad.dtype))
    with _silent():
        return call.result(call.backend.pool_transpose(grad, window, divisor))


# --- the public names: one function per operation and number of dimensions --


# --- max pool --------------------------------------------------------------


@overload
def max_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def max_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def max_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def max_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """1-D max pooling, exactly as ``torch.nn.functional.max_pool1d``.

    Each output is the largest element of its window; NaN wins (the last NaN's
    index is reported), ties keep the first index. A dilated window that
    covers only padding gives ``-inf`` and index -1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    kernel_size, stride, padding, dilation : int or tuple of int
        Window size, step (default ``kernel_size``), implicit ``-inf`` padding
        on both sides (at most half the kernel) and spacing of window elements.
    ceil_mode : bool
        Round the output size up; the last window still starts inside the input
        or the left padding.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane (any
        true value counts, as in PyTorch).
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x.
    indices : same kind as x, int64
        Only with ``return_indices``.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.max_pool1d(x, 2).shape
    (1, 2)
    """
    return _extremum_pool("max", "max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


@overload
def max_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def max_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def max_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def max_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """2-D max pooling, exactly as ``torch.nn.functional.max_pool2d``.

    Each output is the largest element of its window; NaN wins (the last NaN's
    index is reported), ties keep the first index. A dilated window that
    covers only padding gives ``-inf`` and index -1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    kernel_size, stride, padding, dilation : int or tuple of int
        Window size, step (default ``kernel_size``), implicit ``-inf`` padding
        on both sides (at most half the kernel) and spacing of window elements.
    ceil_mode : bool
        Round the output size up; the last window still starts inside the input
        or the left padding.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane (any
        true value counts, as in PyTorch).
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x.
    indices : same kind as x, int64
        Only with ``return_indices``.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.max_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _extremum_pool("max", "max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


@overload
def max_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def max_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def max_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def max_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """3-D max pooling, exactly as ``torch.nn.functional.max_pool3d``.

    Each output is the largest element of its window; NaN wins (the last NaN's
    index is reported), ties keep the first index. A dilated window that
    covers only padding gives ``-inf`` and index -1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    kernel_size, stride, padding, dilation : int or tuple of int
        Window size, step (default ``kernel_size``), implicit ``-inf`` padding
        on both sides (at most half the kernel) and spacing of window elements.
    ceil_mode : bool
        Round the output size up; the last window still starts inside the input
        or the left padding.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane (any
        true value counts, as in PyTorch).
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x.
    indices : same kind as x, int64
        Only with ``return_indices``.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.max_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _extremum_pool("max", "max_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


# --- min pool --------------------------------------------------------------


@overload
def min_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def min_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def min_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def min_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """1-D min pooling: :func:`max_pool1d` with the order reversed.

    ``min_pool1d(x)`` equals ``-max_pool1d(-x)``, indices included, for floats.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    kernel_size, stride, padding, dilation, ceil_mode, return_indices
        As in :func:`max_pool1d`.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.min_pool1d(x, 2).shape
    (1, 2)
    """
    return _extremum_pool("min", "min_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


@overload
def min_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def min_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def min_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def min_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """2-D min pooling: :func:`max_pool2d` with the order reversed.

    ``min_pool2d(x)`` equals ``-max_pool2d(-x)``, indices included, for floats.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    kernel_size, stride, padding, dilation, ceil_mode, return_indices
        As in :func:`max_pool2d`.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.min_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _extremum_pool("min", "min_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


@overload
def min_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def min_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def min_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def min_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """3-D min pooling: :func:`max_pool3d` with the order reversed.

    ``min_pool3d(x)`` equals ``-max_pool3d(-x)``, indices included, for floats.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    kernel_size, stride, padding, dilation, ceil_mode, return_indices
        As in :func:`max_pool3d`.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.min_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _extremum_pool("min", "min_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout, backend)


# --- avg pool --------------------------------------------------------------


def avg_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D average pooling, exactly as ``torch.nn.functional.avg_pool1d``.

    Each output is the sum of its window divided by the window's size, which
    counts explicit zero padding (unless ``count_include_pad`` is False) but
    never the part of a ceil-mode window beyond the padding.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    kernel_size, stride, padding : int or tuple of int
        Window size, step (default ``kernel_size``) and zero padding (at most half the kernel).
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Count padding elements in the divisor.
    divisor_override : int, optional
        Divide every sum by this instead.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.avg_pool1d(x, 2).shape
    (1, 2)
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)


def avg_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D average pooling, exactly as ``torch.nn.functional.avg_pool2d``.

    Each output is the sum of its window divided by the window's size, which
    counts explicit zero padding (unless ``count_include_pad`` is False) but
    never the part of a ceil-mode window beyond the padding.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    kernel_size, stride, padding : int or tuple of int
        Window size, step (default ``kernel_size``) and zero padding (at most half the kernel).
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Count padding elements in the divisor.
    divisor_override : int, optional
        Divide every sum by this instead.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.avg_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)


def avg_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D average pooling, exactly as ``torch.nn.functional.avg_pool3d``.

    Each output is the sum of its window divided by the window's size, which
    counts explicit zero padding (unless ``count_include_pad`` is False) but
    never the part of a ceil-mode window beyond the padding.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    kernel_size, stride, padding : int or tuple of int
        Window size, step (default ``kernel_size``) and zero padding (at most half the kernel).
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Count padding elements in the divisor.
    divisor_override : int, optional
        Divide every sum by this instead.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.avg_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _avg_pool("avg_pool3d", 3, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)


# --- sum pool --------------------------------------------------------------


def sum_pool1d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D sum pooling: the window sums that :func:`avg_pool1d` divides.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode
        As in :func:`avg_pool1d`.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.sum_pool1d(x, 2).shape
    (1, 2)
    """
    return _sum_pool("sum_pool1d", 1, x, kernel_size, stride, padding, ceil_mode, layout, backend)


def sum_pool2d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D sum pooling: the window sums that :func:`avg_pool2d` divides.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode
        As in :func:`avg_pool2d`.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.sum_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _sum_pool("sum_pool2d", 2, x, kernel_size, stride, padding, ceil_mode, layout, backend)


def sum_pool3d(x: ArrayT, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D sum pooling: the window sums that :func:`avg_pool3d` divides.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode
        As in :func:`avg_pool3d`.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.sum_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _sum_pool("sum_pool3d", 3, x, kernel_size, stride, padding, ceil_mode, layout, backend)


# --- lp pool ---------------------------------------------------------------


def lp_pool1d(x: ArrayT, norm_type: float, kernel_size: Size, stride: Size | None = None, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D power-average pooling, exactly as ``torch.nn.functional.lp_pool1d``.

    ``(sum of x**norm_type over the window) ** (1/norm_type)``, computed as
    PyTorch does: the average of ``x**norm_type`` over the window (clipped to
    the input in ceil mode) times the full kernel size.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    norm_type : float
        The power p: non-zero; ``inf`` gives the max of ``|x|``, ``-inf`` the min.
    kernel_size, stride : int or tuple of int
        Window size and step (default ``kernel_size``); there is no padding.
    ceil_mode : bool
        Round the output size up.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.lp_pool1d(x, 2, 2).shape
    (1, 2)
    """
    return _lp_pool("lp_pool1d", 1, x, norm_type, kernel_size, stride, ceil_mode, layout, backend)


def lp_pool2d(x: ArrayT, norm_type: float, kernel_size: Size, stride: Size | None = None, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D power-average pooling, exactly as ``torch.nn.functional.lp_pool2d``.

    ``(sum of x**norm_type over the window) ** (1/norm_type)``, computed as
    PyTorch does: the average of ``x**norm_type`` over the window (clipped to
    the input in ceil mode) times the full kernel size.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    norm_type : float
        The power p: non-zero; ``inf`` gives the max of ``|x|``, ``-inf`` the min.
    kernel_size, stride : int or tuple of int
        Window size and step (default ``kernel_size``); there is no padding.
    ceil_mode : bool
        Round the output size up.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.lp_pool2d(x, 2, 2).shape
    (1, 2, 2)
    """
    return _lp_pool("lp_pool2d", 2, x, norm_type, kernel_size, stride, ceil_mode, layout, backend)


def lp_pool3d(x: ArrayT, norm_type: float, kernel_size: Size, stride: Size | None = None, ceil_mode: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D power-average pooling, exactly as ``torch.nn.functional.lp_pool3d``.

    ``(sum of x**norm_type over the window) ** (1/norm_type)``, computed as
    PyTorch does: the average of ``x**norm_type`` over the window (clipped to
    the input in ceil mode) times the full kernel size.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    norm_type : float
        The power p: non-zero; ``inf`` gives the max of ``|x|``, ``-inf`` the min.
    kernel_size, stride : int or tuple of int
        Window size and step (default ``kernel_size``); there is no padding.
    ceil_mode : bool
        Round the output size up.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.lp_pool3d(x, 2, 2).shape
    (1, 2, 2, 2)
    """
    return _lp_pool("lp_pool3d", 3, x, norm_type, kernel_size, stride, ceil_mode, layout, backend)


# --- adaptive avg pool -----------------------------------------------------


def adaptive_avg_pool1d(x: ArrayT, output_size: OutputSize, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D adaptive average pooling, exactly as ``torch.nn.functional.adaptive_avg_pool1d``.

    Output ``i`` of ``O`` averages input bin ``[floor(i*L/O), ceil((i+1)*L/O))``;
    bins overlap when ``O`` does not divide ``L``.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.adaptive_avg_pool1d(x, 2).shape
    (1, 2)
    """
    return _adaptive_pool("avg", "adaptive_avg_pool1d", 1, x, output_size, False, layout, backend)


def adaptive_avg_pool2d(x: ArrayT, output_size: OutputSize, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D adaptive average pooling, exactly as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output ``i`` of ``O`` averages input bin ``[floor(i*L/O), ceil((i+1)*L/O))``;
    bins overlap when ``O`` does not divide ``L``.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.adaptive_avg_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _adaptive_pool("avg", "adaptive_avg_pool2d", 2, x, output_size, False, layout, backend)


def adaptive_avg_pool3d(x: ArrayT, output_size: OutputSize, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D adaptive average pooling, exactly as ``torch.nn.functional.adaptive_avg_pool3d``.

    Output ``i`` of ``O`` averages input bin ``[floor(i*L/O), ceil((i+1)*L/O))``;
    bins overlap when ``O`` does not divide ``L``.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Pooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.adaptive_avg_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _adaptive_pool("avg", "adaptive_avg_pool3d", 3, x, output_size, False, layout, backend)


# --- adaptive max pool -----------------------------------------------------


@overload
def adaptive_max_pool1d(x: ArrayT, output_size: OutputSize, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def adaptive_max_pool1d(x: ArrayT, output_size: OutputSize, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def adaptive_max_pool1d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def adaptive_max_pool1d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """1-D adaptive max pooling, exactly as ``torch.nn.functional.adaptive_max_pool1d``.

    Output ``i`` of ``O`` is the max over input bin ``[floor(i*L/O), ceil((i+1)*L/O))``,
    with :func:`max_pool1d`'s rules for NaN and ties.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.adaptive_max_pool1d(x, 2).shape
    (1, 2)
    """
    return _adaptive_pool("max", "adaptive_max_pool1d", 1, x, output_size, return_indices, layout, backend)


@overload
def adaptive_max_pool2d(x: ArrayT, output_size: OutputSize, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def adaptive_max_pool2d(x: ArrayT, output_size: OutputSize, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def adaptive_max_pool2d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def adaptive_max_pool2d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """2-D adaptive max pooling, exactly as ``torch.nn.functional.adaptive_max_pool2d``.

    Output ``i`` of ``O`` is the max over input bin ``[floor(i*L/O), ceil((i+1)*L/O))``,
    with :func:`max_pool2d`'s rules for NaN and ties.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.adaptive_max_pool2d(x, 2).shape
    (1, 2, 2)
    """
    return _adaptive_pool("max", "adaptive_max_pool2d", 2, x, output_size, return_indices, layout, backend)


@overload
def adaptive_max_pool3d(x: ArrayT, output_size: OutputSize, return_indices: Literal[False] = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT: ...
@overload
def adaptive_max_pool3d(x: ArrayT, output_size: OutputSize, *, return_indices: Literal[True], layout: str | None = None, backend: str = "auto") -> tuple[ArrayT, ArrayT]: ...
@overload
def adaptive_max_pool3d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]: ...
def adaptive_max_pool3d(x: ArrayT, output_size: OutputSize, return_indices: bool = False, *, layout: str | None = None, backend: str = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
    """3-D adaptive max pooling, exactly as ``torch.nn.functional.adaptive_max_pool3d``.

    Output ``i`` of ``O`` is the max over input bin ``[floor(i*L/O), ceil((i+1)*L/O))``,
    with :func:`max_pool3d`'s rules for NaN and ties.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    output_size : int or tuple of int or None
        Output size; ``None`` in a tuple keeps that axis's input size.
    return_indices : bool
        Also return each maximum's flat index within its (N, C) plane.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    out : same kind as x
        Pooled array, same dtype as x (and int64 indices with ``return_indices``).

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.adaptive_max_pool3d(x, 2).shape
    (1, 2, 2, 2)
    """
    return _adaptive_pool("max", "adaptive_max_pool3d", 3, x, output_size, return_indices, layout, backend)


# --- global avg pool -------------------------------------------------------


def global_avg_pool1d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D global average pooling: the mean of each channel, like Gluon's ``GlobalAvgPool1D``.

    The same as ``adaptive_avg_pool1d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.global_avg_pool1d(x).shape
    (1, 1)
    """
    return _adaptive_pool("avg", "global_avg_pool1d", 1, x, 1, False, layout, backend)


def global_avg_pool2d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D global average pooling: the mean of each channel, like Gluon's ``GlobalAvgPool2D``.

    The same as ``adaptive_avg_pool2d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.global_avg_pool2d(x).shape
    (1, 1, 1)
    """
    return _adaptive_pool("avg", "global_avg_pool2d", 2, x, 1, False, layout, backend)


def global_avg_pool3d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D global average pooling: the mean of each channel, like Gluon's ``GlobalAvgPool3D``.

    The same as ``adaptive_avg_pool3d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.global_avg_pool3d(x).shape
    (1, 1, 1, 1)
    """
    return _adaptive_pool("avg", "global_avg_pool3d", 3, x, 1, False, layout, backend)


# --- global max pool -------------------------------------------------------


def global_max_pool1d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D global max pooling: the max of each channel, like Gluon's ``GlobalMaxPool1D``.

    The same as ``adaptive_max_pool1d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.global_max_pool1d(x).shape
    (1, 1)
    """
    return _adaptive_pool("max", "global_max_pool1d", 1, x, 1, False, layout, backend)


def global_max_pool2d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D global max pooling: the max of each channel, like Gluon's ``GlobalMaxPool2D``.

    The same as ``adaptive_max_pool2d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.global_max_pool2d(x).shape
    (1, 1, 1)
    """
    return _adaptive_pool("max", "global_max_pool2d", 2, x, 1, False, layout, backend)


def global_max_pool3d(x: ArrayT, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D global max pooling: the max of each channel, like Gluon's ``GlobalMaxPool3D``.

    The same as ``adaptive_max_pool3d(x, 1)``: every spatial axis keeps length 1.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Shape ``(N, C, 1, ...)``, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.global_max_pool3d(x).shape
    (1, 1, 1, 1)
    """
    return _adaptive_pool("max", "global_max_pool3d", 3, x, 1, False, layout, backend)


# --- max unpool ------------------------------------------------------------


def max_unpool1d(x: ArrayT, indices: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, output_size: Sequence[int] | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """1-D max unpooling, exactly as ``torch.nn.functional.max_unpool1d``.

    Puts each value of ``x`` at the flat in-plane position given by ``indices``
    (from :func:`max_pool1d` with ``return_indices=True``) of a zero array.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    indices : array of int, same kind and shape as x
        Flat in-plane positions, each in ``[0, prod(output_size))``.
    kernel_size, stride, padding : int or tuple of int
        The max pooling's parameters (stride defaults to ``kernel_size``).
    output_size : tuple of int, optional
        Spatial output size (optionally with N and C first); the default is
        ``(in - 1)*stride - 2*padding + kernel_size``, and any other must lie
        strictly within ``stride`` of it.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Unpooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.max_unpool1d(*poolkit.max_pool1d(x, 2, return_indices=True), 2).shape
    (1, 4)
    """
    return _max_unpool("max_unpool1d", 1, x, indices, kernel_size, stride, padding, output_size, layout, backend)


def max_unpool2d(x: ArrayT, indices: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, output_size: Sequence[int] | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """2-D max unpooling, exactly as ``torch.nn.functional.max_unpool2d``.

    Puts each value of ``x`` at the flat in-plane position given by ``indices``
    (from :func:`max_pool2d` with ``return_indices=True``) of a zero array.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    indices : array of int, same kind and shape as x
        Flat in-plane positions, each in ``[0, prod(output_size))``.
    kernel_size, stride, padding : int or tuple of int
        The max pooling's parameters (stride defaults to ``kernel_size``).
    output_size : tuple of int, optional
        Spatial output size (optionally with N and C first); the default is
        ``(in - 1)*stride - 2*padding + kernel_size``, and any other must lie
        strictly within ``stride`` of it.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Unpooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.max_unpool2d(*poolkit.max_pool2d(x, 2, return_indices=True), 2).shape
    (1, 4, 4)
    """
    return _max_unpool("max_unpool2d", 2, x, indices, kernel_size, stride, padding, output_size, layout, backend)


def max_unpool3d(x: ArrayT, indices: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, output_size: Sequence[int] | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """3-D max unpooling, exactly as ``torch.nn.functional.max_unpool3d``.

    Puts each value of ``x`` at the flat in-plane position given by ``indices``
    (from :func:`max_pool3d` with ``return_indices=True``) of a zero array.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    indices : array of int, same kind and shape as x
        Flat in-plane positions, each in ``[0, prod(output_size))``.
    kernel_size, stride, padding : int or tuple of int
        The max pooling's parameters (stride defaults to ``kernel_size``).
    output_size : tuple of int, optional
        Spatial output size (optionally with N and C first); the default is
        ``(in - 1)*stride - 2*padding + kernel_size``, and any other must lie
        strictly within ``stride`` of it.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Unpooled array, same dtype as x.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.max_unpool3d(*poolkit.max_pool3d(x, 2, return_indices=True), 2).shape
    (1, 4, 4, 4)
    """
    return _max_unpool("max_unpool3d", 3, x, indices, kernel_size, stride, padding, output_size, layout, backend)


# --- max pool backward -----------------------------------------------------


def max_pool1d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, indices: Any | None = None, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`max_pool1d` with respect to ``x``.

    Each output's gradient goes to the element that won its window (the one
    ``return_indices`` reports); overlapping windows add up. Given ``indices``
    (the forward's, as ``torch``'s backward takes them), the gradient is one
    scatter-add at those positions and the argmax is not searched for again.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool1d`.
    indices : array of int, optional
        The second result of :func:`max_pool1d` with ``return_indices=True`` on
        this ``x`` with these parameters: grad_output's shape, an integer dtype,
        each a flat index in ``x``'s (N, C) plane, or -1 (a window that covers
        only padding, whose gradient goes nowhere). ``None`` finds each
        window's argmax again.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid, or ``indices`` has the
        wrong shape or an index outside the plane; the message names it.
    TypeError
        If an argument has the wrong type, ``x`` a dtype this pooling does not
        accept, or ``indices`` a dtype that is not an integer.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.max_pool1d_backward(np.ones((1, 2)), x, 2).shape
    (1, 4)
    >>> x = np.array([[1.0, 3.0, 2.0, 0.0]])
    >>> out, where = poolkit.max_pool1d(x, 2, return_indices=True)
    >>> poolkit.max_pool1d_backward(np.ones((1, 2)), x, 2, indices=where)
    array([[0., 1., 1., 0.]])
    """
    return _max_pool_backward("max_pool1d_backward", 1, grad_output, x, kernel_size, stride, padding, dilation, ceil_mode, indices, layout, backend)


def max_pool2d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, indices: Any | None = None, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Each output's gradient goes to the element that won its window (the one
    ``return_indices`` reports); overlapping windows add up. Given ``indices``
    (the forward's, as ``torch``'s backward takes them), the gradient is one
    scatter-add at those positions and the argmax is not searched for again.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.
    indices : array of int, optional
        The second result of :func:`max_pool2d` with ``return_indices=True`` on
        this ``x`` with these parameters: grad_output's shape, an integer dtype,
        each a flat index in ``x``'s (N, C) plane, or -1 (a window that covers
        only padding, whose gradient goes nowhere). ``None`` finds each
        window's argmax again.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid, or ``indices`` has the
        wrong shape or an index outside the plane; the message names it.
    TypeError
        If an argument has the wrong type, ``x`` a dtype this pooling does not
        accept, or ``indices`` a dtype that is not an integer.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.max_pool2d_backward(np.ones((1, 2, 2)), x, 2).shape
    (1, 4, 4)
    >>> out, where = poolkit.max_pool2d(x, 2, return_indices=True)
    >>> grad = poolkit.max_pool2d_backward(np.ones((1, 2, 2)), x, 2, indices=where)
    >>> grad[0, 1].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    return _max_pool_backward("max_pool2d_backward", 2, grad_output, x, kernel_size, stride, padding, dilation, ceil_mode, indices, layout, backend)


def max_pool3d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False, *, indices: Any | None = None, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`max_pool3d` with respect to ``x``.

    Each output's gradient goes to the element that won its window (the one
    ``return_indices`` reports); overlapping windows add up. Given ``indices``
    (the forward's, as ``torch``'s backward takes them), the gradient is one
    scatter-add at those positions and the argmax is not searched for again.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool3d`.
    indices : array of int, optional
        The second result of :func:`max_pool3d` with ``return_indices=True`` on
        this ``x`` with these parameters: grad_output's shape, an integer dtype,
        each a flat index in ``x``'s (N, C) plane, or -1 (a window that covers
        only padding, whose gradient goes nowhere). ``None`` finds each
        window's argmax again.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid, or ``indices`` has the
        wrong shape or an index outside the plane; the message names it.
    TypeError
        If an argument has the wrong type, ``x`` a dtype this pooling does not
        accept, or ``indices`` a dtype that is not an integer.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.max_pool3d_backward(np.ones((1, 2, 2, 2)), x, 2).shape
    (1, 4, 4, 4)
    >>> out, where = poolkit.max_pool3d(x, 2, return_indices=True)
    >>> grad = poolkit.max_pool3d_backward(np.ones((1, 2, 2, 2)), x, 2, indices=where)
    >>> np.flatnonzero(grad).tolist()
    [21, 23, 29, 31, 53, 55, 61, 63]
    """
    return _max_pool_backward("max_pool3d_backward", 3, grad_output, x, kernel_size, stride, padding, dilation, ceil_mode, indices, layout, backend)


# --- avg pool backward -----------------------------------------------------


def avg_pool1d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`avg_pool1d` with respect to ``x``.

    Each output's gradient, divided by its window's divisor, is added to every
    input element of the window.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, W)`` or unbatched ``(C, W)``; channels last with ``layout='NWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool1d`.
    layout : {'NCW', 'NWC'}, optional
        Where the channels are; ``None`` means 'NCW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(4.0).reshape((1, 4))
    >>> poolkit.avg_pool1d_backward(np.ones((1, 2)), x, 2).shape
    (1, 4)
    """
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_output, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)


def avg_pool2d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`avg_pool2d` with respect to ``x``.

    Each output's gradient, divided by its window's divisor, is added to every
    input element of the window.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, H, W)`` or unbatched ``(C, H, W)``; channels last with ``layout='NHWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool2d`.
    layout : {'NCHW', 'NHWC'}, optional
        Where the channels are; ``None`` means 'NCHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(16.0).reshape((1, 4, 4))
    >>> poolkit.avg_pool2d_backward(np.ones((1, 2, 2)), x, 2).shape
    (1, 4, 4)
    """
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_output, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)


def avg_pool3d_backward(grad_output: ArrayT, x: Any, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None, *, layout: str | None = None, backend: str = "auto") -> ArrayT:
    """Gradient of :func:`avg_pool3d` with respect to ``x``.

    Each output's gradient, divided by its window's divisor, is added to every
    input element of the window.

    Parameters
    ----------
    grad_output : array, same kind as x
        Gradient of the loss with respect to the pooled output (floating point).
    x : numpy.ndarray, torch.Tensor or mxnet.nd.NDArray
        Input of shape ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``; channels last with ``layout='NDHWC'``.
        Floating point.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool3d`.
    layout : {'NCDHW', 'NDHWC'}, optional
        Where the channels are; ``None`` means 'NCDHW'.
    backend : {'auto', 'naive', 'numpy', 'numba', 'cuda'}, default 'auto'
        Which implementation computes the result: 'auto' is cuda for device arrays, numba for large channels-first host arrays, numpy otherwise.

    Returns
    -------
    same kind as x
        Gradient with x's shape and grad_output's dtype.

    Raises
    ------
    ValueError
        If a parameter or the input's shape is invalid; the message names it.
    TypeError
        If an argument has the wrong type, or ``x`` a dtype this pooling does not accept.
    RuntimeError
        If ``backend='cuda'`` and no CUDA device is found.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(64.0).reshape((1, 4, 4, 4))
    >>> poolkit.avg_pool3d_backward(np.ones((1, 2, 2, 2)), x, 2).shape
    (1, 4, 4, 4)
    """
    return _avg_pool_backward("avg_pool3d_backward", 3, grad_output, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout, backend)
