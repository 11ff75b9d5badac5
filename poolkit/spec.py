"""Parameter normalisation, validation and window geometry.

This is the only place where pooling parameters are checked and where the
output size and the position of every window are worked out; the backends
receive a validated :class:`Window` and never check anything themselves
(the model is PyTorch's ``aten/src/ATen/native/Pool.h``).

Every error names the parameter and the value it got, and the checks accept
and reject exactly what PyTorch accepts and rejects, with these deliberate
differences: bools are not ints here; average-type pooling needs a
floating-point input; ``lp_pool``'s ``norm_type`` may not be 0 or NaN;
``max_unpool`` refuses a non-positive kernel or negative padding; integer input
is also accepted by adaptive max pooling and ``max_unpool``; and every
``avg_pool`` takes ``divisor_override`` (PyTorch's 1-D one has none).

MXNet's ``mx.nd.Pooling`` has conventions of its own (stride 1 by default,
``pooling_convention``, oneDNN's limit on the padding): :func:`mxnet_window`
and :func:`check_mxnet_pooling` hold them.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from itertools import product
from typing import Any, Iterator, Sequence, cast

import numpy as np

#: An int, or a tuple of 1 or ``dims`` ints: how kernel sizes, strides and paddings are given.
Size = int | Sequence[int]
#: Adaptive bins per spatial axis: ``(starts, ends)`` arrays (:func:`adaptive_bins`).
Bins = list[tuple[np.ndarray, np.ndarray]]
#: For each window offset that reads some input: the offset, and the output and input indices it pairs.
TapPlan = tuple[tuple[tuple[int, ...], tuple[Any, ...], tuple[Any, ...]], ...]

#: Accepted layouts per number of spatial dimensions: channels first, then last.
LAYOUTS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


#: PyTorch keeps window geometry in C ints and sizes in 64-bit ints.
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


def as_int(name: str, value: object, limit: int = INT32_MAX) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``.

    Values beyond ``limit`` are refused as PyTorch refuses them, rather than
    overflowing further down.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")
    if abs(int(value)) > limit:
        raise ValueError(f"{name} is too large (more than {limit}), got {name}={value!r}")
    return int(value)


def as_tuple(name: str, value: object, dims: int) -> tuple[int, ...]:
    """Expand an int, or a tuple of 1 or ``dims`` ints, to a tuple of ``dims`` ints.

    Examples
    --------
    >>> as_tuple("stride", 2, 3)
    (2, 2, 2)
    >>> as_tuple("padding", (1, 0), 2)
    (1, 0)
    """
    if isinstance(value, (tuple, list)):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {name}={value!r}")
        if len(value) not in (1, dims):
            plural = "" if dims == 1 else f" or a tuple of {dims} ints"
            raise ValueError(f"{name} must be an int{plural}, got {name}={value!r}")
        if any(abs(int(v)) > INT32_MAX for v in value):
            raise ValueError(f"{name} is too large (more than {INT32_MAX}), got {name}={value!r}")
        return tuple(int(v) for v in value) * (dims // len(value))
    return (as_int(name, value),) * dims


def check_bool(name: str, value: object) -> None:
    """Raise TypeError unless ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {name}={value!r}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_positive(name: str, values: tuple[int, ...]) -> None:
    _require(all(v > 0 for v in values), f"{name} must be positive, got {name}={values}")


def _check_non_negative(name: str, values: tuple[int, ...]) -> None:
    _require(all(v >= 0 for v in values), f"{name} must be non-negative, got {name}={values}")


def _conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's output length along one axis (may be < 1; the caller checks)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        # The last window must start inside the input or the left padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def _check_geometry(kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    _check_positive("kernel_size", kernel)
    _check_positive("stride", stride)
    _check_positive("dilation", dilation)
    _check_non_negative("padding", padding)
    _require(
        all(p <= k // 2 for p, k in zip(padding, kernel)),
        f"padding must be at most half of kernel_size, got padding={padding} with kernel_size={kernel}",
    )


def pool_output_size(
    size: Size, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False
) -> int | tuple[int, ...]:
    """Length of the pooled output along each axis, with PyTorch's rule.

    ``out = floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``,
    rounded up instead when ``ceil_mode``, except that the last window may not
    start in the right padding.

    Parameters
    ----------
    size : int or tuple of int
        Input length along each spatial axis.
    kernel_size, stride, padding, dilation : int or tuple of int
        As in :func:`poolkit.max_pool2d`; ``stride`` defaults to ``kernel_size``.
    ceil_mode : bool
        Round up instead of down.

    Returns
    -------
    int or tuple of int
        An int when ``size`` is an int, otherwise a tuple of the same length.

    Raises
    ------
    ValueError
        If a parameter is out of range or the output would be empty.
    TypeError
        If a parameter is not an int or a tuple of ints.

    Examples
    --------
    >>> pool_output_size(4, 3, stride=2, padding=1)
    2
    >>> pool_output_size((5, 5), 2, ceil_mode=True)
    (3, 3)
    """
    dims = len(size) if isinstance(size, (tuple, list)) else 1
    _require(dims > 0, f"size must be an int or a non-empty tuple of ints, got size={size!r}")
    sizes = as_tuple("size", size, dims)
    _require(all(s > 0 for s in sizes), f"size must be positive, got size={size!r}")
    window = make_window(sizes, kernel_size, stride, padding, dilation, ceil_mode)
    return window.out_size if isinstance(size, (tuple, list)) else window.out_size[0]


def _plain(value: object) -> bool:
    """Whether ``value`` is None, an int or a tuple of ints, exactly: the arguments
    that compare equal only when they are the same (2 never meets 2.0, True or
    ``np.int64(2)``), so that a cache keyed on them cannot confuse one for another."""
    kind = type(value)
    if kind is int or value is None:
        return True
    return kind is tuple and all(type(v) is int for v in cast("tuple[object, ...]", value))


def make_window(
    in_size: Sequence[int], kernel_size: object, stride: object = None, padding: object = 0, dilation: object = 1, ceil_mode: object = False, *, fits_kernel: bool = False
) -> Window:
    """Validate PyTorch-style pooling parameters for an input of spatial size ``in_size``.

    ``fits_kernel`` adds PyTorch's extra rule for 3-D average pooling: the
    input itself, before padding, must be at least as large as the kernel.

    Validated windows are cached, keyed on arguments that compare equal only
    when they are the same (ints, tuples of ints, None and bools); any other
    argument (a list, a NumPy integer, a value of the wrong type) is normalised
    first, which raises exactly as without the cache, and the window is then
    looked up by the normalised values. A call that raises caches nothing.
    """
    in_size = in_size if type(in_size) is tuple else tuple(in_size)
    fits_kernel = bool(fits_kernel)
    if type(ceil_mode) is bool and _plain(kernel_size) and _plain(stride) and _plain(padding) and _plain(dilation) and _plain(in_size):
        return _cached_window(in_size, kernel_size, stride, padding, dilation, ceil_mode, fits_kernel)
    kernel, strides, paddings, dilations = _normalised(len(in_size), kernel_size, stride, padding, dilation, ceil_mode)
    if not _plain(in_size):
        return _window(in_size, kernel, strides, paddings, dilations, bool(ceil_mode), fits_kernel)
    return _cached_window(in_size, kernel, strides, paddings, dilations, bool(ceil_mode), fits_kernel)


def _normalised(dims: int, kernel_size: object, stride: object, padding: object, dilation: object, ceil_mode: object) -> tuple[tuple[int, ...], ...]:
    """The parameters as tuples of ``dims`` ints (stride defaulting to the kernel), checked in this order."""
    kernel = as_tuple("kernel_size", kernel_size, dims)
    empty_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    strides = kernel if empty_stride else as_tuple("stride", stride, dims)
    paddings = as_tuple("padding", padding, dims)
    dilations = as_tuple("dilation", dilation, dims)
    check_bool("ceil_mode", ceil_mode)
    return kernel, strides, paddings, dilations


def _window(in_size: tuple[int, ...], kernel_size: object, stride: object, padding: object, dilation: object, ceil_mode: object, fits_kernel: bool) -> Window:
    """:func:`make_window`'s checks and geometry, uncached."""
    dims = len(in_size)
    kernel, stride, padding, dilation = _normalised(dims, kernel_size, stride, padding, dilation, ceil_mode)
    _check_geometry(kernel, stride, padding, dilation)
    _require(
        not fits_kernel or all(i >= k for i, k in zip(in_size, kernel)),
        f"input size {tuple(in_size)} is smaller than kernel_size={kernel} (3-D average pooling does not count padding here)",
    )
    out = tuple(map(_conv_output_size, in_size, kernel, stride, padding, dilation, (bool(ceil_mode),) * dims))
    _require(
        all(o >= 1 for o in out),
        f"output would be empty: input size {tuple(in_size)} with kernel_size={kernel}, stride={stride}, "
        f"padding={padding}, dilation={dilation}, ceil_mode={bool(ceil_mode)} gives output size {out}",
    )
    return Window(tuple(in_size), kernel, stride, padding, dilation, out)


#: Windows of the parameter sets seen most recently (only those that passed every check).
_cached_window = functools.lru_cache(maxsize=256)(_window)

#: Arrays worked out from a window (tap tables, divisors, indices) are kept on it
#: when they hold at most this many elements (small inputs, where working them
#: out is much of a call's cost), up to :data:`_KEEP_BUDGET` elements per window.
_KEEP_ELEMENTS = 1 << 14
_KEEP_BUDGET = 4 * _KEEP_ELEMENTS


@dataclass(frozen=True)
class Window:
    """Where every pooling window lies, along each spatial axis.

    Output position ``o`` along an axis looks at the input positions
    ``o*stride - padding + j*dilation`` for ``j`` in ``range(kernel)``; the
    ones outside ``[0, in_size)`` are padding.

    Examples
    --------
    >>> w = make_window((4, 4), 3, stride=2, padding=1)
    >>> w.out_size
    (2, 2)
    >>> w.taps(0, 1)
    [1, 2, 3]
    """

    in_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    out_size: tuple[int, ...]

    @property
    def dims(self) -> int:
        return len(self.in_size)

    def taps(self, axis: int, o: int) -> list[int]:
        """Input positions inside the input that window ``o`` covers along ``axis``."""
        first = o * self.stride[axis] - self.padding[axis]
        points = (first + j * self.dilation[axis] for j in range(self.kernel[axis]))
        return [i for i in points if 0 <= i < self.in_size[axis]]

    def tap_span(self, axis: int, j: int) -> tuple[slice, slice] | None:
        """The outputs whose tap ``j`` falls inside the input along ``axis``.

        Returns ``(out_slice, in_slice)`` pairing those outputs with the input
        positions they read, or ``None`` when tap ``j`` is always padding.
        """
        s, shift, size = self.stride[axis], j * self.dilation[axis] - self.padding[axis], self.in_size[axis]
        lo = max(0, -(shift // s))  # first o with o*s + shift >= 0
        hi = min(self.out_size[axis] - 1, (size - 1 - shift) // s)  # last o inside
        if hi < lo:
            return None
        start = lo * s + shift
        return slice(lo, hi + 1), slice(start, start + (hi - lo) * s + 1, s)

    def tap_spans(self, offsets: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
        """:meth:`tap_span` for one window offset on every axis, or ``None``."""
        spans = []
        for axis, j in enumerate(offsets):
            span = self.tap_span(axis, j)
            if span is None:
                return None
            spans.append(span)
        return tuple(s[0] for s in spans), tuple(s[1] for s in spans)

    def tap_plan(self) -> TapPlan:
        """``(offsets, out_index, in_index)`` for every window offset that reads
        some input, in row-major order; the indices select ``[..., spans]``.

        Cached per geometry, and kept on the window itself: computing it (or
        even hashing the window to look it up) is much of the cost of a small call.
        """
        plan = self.__dict__.get("_tap_plan")
        if plan is None:
            plan = _tap_plan(self)
            object.__setattr__(self, "_tap_plan", plan)  # not a field: equality and hashing ignore it
        return plan

    def kept(self, key: Any, size: int, compute: Any) -> np.ndarray:
        """``compute()``, a read-only array of ``size`` elements, kept on the window
        under ``key`` when it is small (:data:`_KEEP_ELEMENTS`). Not a field:
        equality and hashing ignore what is kept."""
        memo = self.__dict__.get("_kept")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_kept", memo)
        array = memo.get(key)
        if array is None:
            array = compute()
            array.flags.writeable = False
            kept = self.__dict__.get("_kept_elements", 0) + array.size
            if size <= _KEEP_ELEMENTS and kept <= _KEEP_BUDGET:
                memo[key] = array
                object.__setattr__(self, "_kept_elements", kept)
        return array

    def tap_table(self) -> np.ndarray:
        """The flat in-plane input index that every window offset reads for every
        output, or the plane's size (one past its end) where it reads padding.

        Shape ``(1 + prod(kernel), *out_size)``: row 0 is all padding (it stands
        for the value a reduction starts from), then one row per offset in
        row-major order, as :meth:`tap_plan` visits them. Read-only, and kept
        on the window when small: a small input can be pooled with one gather
        through it.

        Examples
        --------
        >>> make_window((3,), 2, stride=2, padding=1).tap_table().tolist()
        [[3, 3], [3, 1], [0, 2]]
        """
        return self.kept("tap_table", (1 + math.prod(self.kernel)) * math.prod(self.out_size), self._tap_table)

    def _tap_table(self) -> np.ndarray:
        dims, plane = self.dims, math.prod(self.in_size)
        index = np.zeros((1,) * (2 * dims), np.int64)
        inside = np.ones((1,) * (2 * dims), bool)
        for axis, (size, k, s, p, d, o) in enumerate(zip(self.in_size, self.kernel, self.stride, self.padding, self.dilation, self.out_size)):
            position = np.arange(k)[:, None] * d + (np.arange(o) * s - p)[None, :]
            shape = [1] * (2 * dims)
            shape[axis], shape[dims + axis] = k, o
            index = index + (position * math.prod(self.in_size[axis + 1:])).reshape(shape)
            inside = inside & ((position >= 0) & (position < size)).reshape(shape)
        taps = np.where(inside, index, plane).reshape((math.prod(self.kernel),) + self.out_size)
        return np.concatenate([np.full((1,) + self.out_size, plane, np.int64), taps]).astype(np.intp)

    def flat_tap_index(self, offsets: Sequence[int]) -> np.ndarray:
        """In-plane flat index read by tap ``offsets`` of every window, shape ``out_size`` (read-only)."""
        offsets = tuple(offsets)

        def compute() -> np.ndarray:
            coords = [np.arange(o) * s - p + j * d for o, s, p, j, d in zip(self.out_size, self.stride, self.padding, offsets, self.dilation)]
            return flat_index(coords, self.in_size)

        # Every offset's index is kept, or none: together they are the size of the tap table.
        return self.kept(("flat_tap_index", offsets), math.prod(self.kernel) * math.prod(self.out_size), compute)

    def first_inside_index(self) -> np.ndarray:
        """Flat index of each window's first tap that lies inside the input.

        PyTorch's max pooling starts from it, so that a window of ``-inf`` (or of
        the integer minimum) reports the first element it covers. A dilated
        window can miss the input altogether; it gets -1 (PyTorch reports an
        index outside the plane there). Read-only.
        """

        def compute() -> np.ndarray:
            coords, inside = [], []
            for o, s, p, d, size in zip(self.out_size, self.stride, self.padding, self.dilation, self.in_size):
                start = np.arange(o) * s - p
                first = start + np.maximum(0, -(start // d)) * d
                coords.append(first)
                inside.append((first < size).astype(np.int64))
            return np.where(_outer_product(inside) > 0, flat_index(coords, self.in_size), -1)

        return self.kept("first_inside_index", math.prod(self.out_size), compute)

    def sizes(self, include_pad: bool, clamp: bool = True) -> np.ndarray:
        """Number of elements each window averages over, shape ``out_size``.

        With ``include_pad`` the window counts explicit padding but stops at the
        end of the right padding (never the ceil-mode overhang); without it only
        positions inside the input count. ``clamp=False`` keeps the raw
        per-axis difference ``min(end, size) - max(start, 0)`` even where it is
        negative, as MXNet's 3-D kernel does.
        """
        counts = []
        for o, size, k, s, p in zip(self.out_size, self.in_size, self.kernel, self.stride, self.padding):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            inside = np.minimum(end, size) - np.maximum(start, 0)
            counts.append(end - start if include_pad else np.maximum(0, inside) if clamp else inside)
        return _outer_product(counts)


@functools.lru_cache(maxsize=256)
def _tap_plan(window: Window) -> TapPlan:
    plan = []
    for offsets in window_offsets(window.kernel):
        spans = window.tap_spans(offsets)
        if spans is not None:
            plan.append((offsets, (Ellipsis, *spans[0]), (Ellipsis, *spans[1])))
    return tuple(plan)


def flat_index(coords: Sequence[np.ndarray], in_size: Sequence[int]) -> np.ndarray:
    """Row-major flat index in a plane of ``in_size`` for per-axis coordinate vectors."""
    strides = [math.prod(in_size[axis + 1:]) for axis in range(len(in_size))]
    index = np.zeros([len(c) for c in coords], np.int64)
    for grid, stride in zip(np.ix_(*coords), strides):
        index = index + grid * stride
    return index


def _outer_product(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return np.asarray(math.prod(np.ix_(*vectors))) if vectors else np.ones(())


def adaptive_bins(in_size: Sequence[int], output_size: Sequence[int]) -> Bins:
    """Bin bounds of adaptive pooling, per axis: ``(starts, ends)`` arrays.

    Bin ``i`` of ``O`` over ``L`` inputs is ``[floor(i*L/O), ceil((i+1)*L/O))``,
    so neighbouring bins overlap when ``O`` does not divide ``L``.

    Examples
    --------
    >>> starts, ends = adaptive_bins((5,), (3,))[0]
    >>> starts.tolist(), ends.tolist()
    ([0, 1, 3], [2, 4, 5])
    """
    bins = []
    for size, out in zip(in_size, output_size):
        i = np.arange(out)
        bins.append(((i * size) // out, -((-(i + 1) * size) // out)))
    return bins


def adaptive_output_size(in_size: Sequence[int], output_size: object) -> tuple[int, ...]:
    """Validate adaptive pooling's ``output_size``; ``None`` entries (2-D and 3-D) keep the input size."""
    dims = len(in_size)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != dims:
            raise ValueError(f"output_size must be an int or a tuple of {dims} ints, got output_size={output_size!r}")
        # None keeps an axis's size; PyTorch allows it from 2-D on.
        sizes = tuple(size if v is None and dims > 1 else as_int("output_size", v, INT64_MAX) for size, v in zip(in_size, output_size))
    else:
        sizes = (as_int("output_size", output_size, INT64_MAX),) * dims
    _require(all(s >= 0 for s in sizes), f"output_size must be non-negative, got output_size={output_size!r}")
    return sizes


def check_dtype(name: str, label: str, array: Any, integers: bool) -> None:
    """Raise TypeError unless ``array`` holds floats (or ints, when ``integers``)."""
    kinds = "fiu" if integers else "f"
    if array.dtype.kind not in kinds:
        wanted = "a real floating-point or integer" if integers else "a floating-point"
        raise TypeError(f"{name} needs {wanted} {label}, got {label} with dtype {array.dtype}")


@dataclass(frozen=True)
class Layout:
    """How a user's array maps to the (N, C, *spatial) view the backends use."""

    batched: bool
    channels_last: bool

    @property
    def identity(self) -> bool:
        """Whether the user's layout already is the (N, C, *spatial) view (batched, channels first)."""
        return self.batched and not self.channels_last

    def internal_axes(self, ndim: int) -> list[int | None]:
        """For each axis of the (N, C, *spatial) view, the user's axis it is
        (None: the batch axis that unbatched input lacks)."""
        return list(_internal_axes(self.batched, self.channels_last, ndim))

    def user_axes(self, ndim: int) -> list[int]:
        """For each axis of the user's layout, the axis of an ``ndim``-D (N, C, *spatial) view."""
        return list(_user_axes(self.batched, self.channels_last, ndim))


@functools.lru_cache(maxsize=64)
def _internal_axes(batched: bool, channels_last: bool, ndim: int) -> tuple[int | None, ...]:
    axes: list[int | None] = list(range(ndim))
    if channels_last:
        axes.insert(1 if batched else 0, axes.pop())
    return tuple(axes if batched else [None, *axes])


@functools.lru_cache(maxsize=64)
def _user_axes(batched: bool, channels_last: bool, ndim: int) -> tuple[int, ...]:
    axes = list(range(ndim))
    if channels_last:
        axes.append(axes.pop(1))
    return tuple(axes if batched else axes[1:])


#: The four layouts, made once: (batched, channels_last) -> Layout.
_LAYOUT_OF = {(batched, last): Layout(batched, last) for batched in (True, False) for last in (True, False)}


def input_layout(
    name: str, label: str, x: Any, dims: int, layout: str | None, *, batch_optional: bool = True, empty_channels: bool | str = False
) -> Layout:
    """Check ``x``'s number of dimensions and layout; return its :class:`Layout`.

    Unbatched input is ``(C, *spatial)`` (or ``(*spatial, C)`` channels-last).
    The batch may be empty; the channels too where ``empty_channels`` is True,
    or is "unbatched" and ``x`` is (PyTorch's adaptive pooling); the spatial
    dimensions never.
    """
    choices = LAYOUTS[dims]
    if layout is None:
        layout = choices[0]
    if layout not in choices:
        raise ValueError(f"{name}: layout must be one of {choices}, got layout={layout!r}")
    ndims = (dims + 1, dims + 2) if batch_optional else (dims + 2,)
    if x.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        form = f"{layout} with optional batch" if batch_optional else layout
        raise ValueError(f"{name} expects {wanted} {label} ({form}), got {label} with shape {x.shape}")
    result = _LAYOUT_OF[x.ndim == dims + 2, layout == choices[1]]
    shape = x.shape
    if 0 in shape:
        internal = tuple(1 if axis is None else shape[axis] for axis in _internal_axes(result.batched, result.channels_last, x.ndim))
        channels_may_be_empty = empty_channels is True or (empty_channels == "unbatched" and not result.batched)
        may_be_empty = internal[2:] if channels_may_be_empty else internal[1:]
        _require(0 not in may_be_empty, f"{name}: only the batch dimension of {label} may be empty, got {label} with shape {x.shape}")
    return result


def window_offsets(kernel: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every offset inside a window of shape ``kernel``, in row-major order."""
    return product(*(range(k) for k in kernel))


@functools.lru_cache(maxsize=64)
def accumulator_dtype(dtype: Any) -> np.dtype[Any]:
    """Sums run in float32 for float16 input, as PyTorch's CPU kernels do."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def start_value(op: str, dtype: Any, nan: str) -> Any:
    """The value a window's running max, min or sum starts from.

    With ``nan="propagate"`` (PyTorch) max starts from ``-inf``, so a window
    with no element inside the input gives ``-inf``; with ``nan="ignore"``
    (MXNet) it starts from the lowest finite value, which NaN never beats.
    """
    if op == "sum":
        return 0
    return _start_value(op, dtype, nan)


@functools.lru_cache(maxsize=64)
def _start_value(op: str, dtype: Any, nan: str) -> Any:
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    if dtype.kind in "iu" or nan == "ignore":
        return info.min if op == "max" else info.max
    return -np.inf if op == "max" else np.inf


def adaptive_bin_sizes(bins: Bins) -> np.ndarray:
    """Number of elements in every adaptive bin, shape ``output_size``."""
    return _outer_product([ends - starts for starts, ends in bins])


def unpool_output_size(in_size: Sequence[int], kernel_size: object, stride: object, padding: object, output_size: object) -> tuple[int, ...]:
    """Validate ``max_unpool``'s parameters; return the output's spatial size.

    The default output is what max pooling with these parameters inverts,
    ``(in - 1)*stride - 2*padding + kernel``; an explicit ``output_size`` (with or
    without the leading N and C) must lie strictly within ``stride`` of it.
    """
    dims = len(in_size)
    kernel = as_tuple("kernel_size", kernel_size, dims)
    stride = kernel if stride is None else as_tuple("stride", stride, dims)
    padding = as_tuple("padding", padding, dims)
    _check_positive("kernel_size", kernel)
    _check_positive("stride", stride)
    _check_non_negative("padding", padding)
    default = tuple((i - 1) * s - 2 * p + k for i, k, s, p in zip(in_size, kernel, stride, padding))
    if output_size is None:
        size = default
    else:
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (dims, dims + 2):
            raise ValueError(f"output_size must be a tuple of {dims} or {dims + 2} ints, got output_size={output_size!r}")
        size = tuple(as_int("output_size", v) for v in output_size[-dims:])
        _require(
            all(d - s < o < d + s for o, d, s in zip(size, default, stride)),
            f"output_size must lie strictly between {tuple(d - s for d, s in zip(default, stride))} and "
            f"{tuple(d + s for d, s in zip(default, stride))}, got output_size={output_size!r}",
        )
    _require(
        all(o > 0 for o in size),
        f"output would be empty: kernel_size={kernel}, stride={stride}, padding={padding} "
        f"unpool input size {tuple(in_size)} to {size}",
    )
    return size


# --- the checks the public functions make beyond the window ---------------------


def check_backend(name: str, backend: object, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless ``backend`` is "auto" or one of ``choices``."""
    if not isinstance(backend, str) or (backend != "auto" and backend not in choices):
        raise ValueError(f"{name}: backend must be one of {('auto', *choices)}, got backend={backend!r}")


def missing_numba_error(name: str, backend: str, error: ImportError) -> ValueError:
    """The error for a compiled backend asked for where numba cannot be imported."""
    return ValueError(f"{name}: backend={backend!r} needs numba, which cannot be imported ({error}); install poolkit[numba] or use backend='numpy'")


def check_tensor_dtype(name: str, label: str, dtype: str) -> None:
    """Refuse a torch tensor's dtype that NumPy cannot hold or pooling cannot order (``dtype`` as torch prints it)."""
    if dtype in ("torch.bfloat16", "torch.complex32", "torch.bool") or "complex" in dtype:
        raise TypeError(f"{name} needs a real floating-point or integer {label}, got {label} with dtype {dtype}")


def array_kind_error(name: str, label: str, x: object) -> TypeError:
    """The error for an argument that is no kind of array poolkit reads."""
    return TypeError(f"{name}: {label} must be a NumPy array, a torch tensor or an MXNet NDArray, got {label} of type {type(x).__name__}")


def check_companion(name: str, label: str, array: Any, shape: tuple[int, ...], integers: bool) -> None:
    """Check a second array argument (``indices``, ``grad_output``): its dtype kind and its ``shape``."""
    if (array.dtype.kind not in "iu") if integers else (array.dtype.kind != "f"):
        kind = "an integer" if integers else "a floating-point"
        raise TypeError(f"{name}: {label} must be {kind} array, got {label} with dtype {array.dtype}")
    if tuple(array.shape) != shape:
        raise ValueError(f"{name}: {label} must have shape {shape}, got {label} with shape {tuple(array.shape)}")


def avg_divisor(window: Window, count_include_pad: object, divisor_override: object, dtype: Any) -> np.ndarray:
    """What average pooling divides each window's sum by, one value per output position.

    Checked on every call; the array is worked out once per window, parameters
    and dtype (kept on the window) and handed out as a fresh copy.
    """
    check_bool("count_include_pad", count_include_pad)
    override = None
    if divisor_override is not None:
        override = as_int("divisor_override", divisor_override)
        if override == 0:
            raise ValueError(f"divisor_override must be non-zero, got divisor_override={divisor_override!r}")
    include, dtype = bool(count_include_pad), np.dtype(dtype)

    def compute() -> np.ndarray:
        return window.sizes(include).astype(dtype) if override is None else np.full(window.out_size, override, dtype)

    return window.kept(("avg_divisor", include, override, dtype), math.prod(window.out_size), compute).copy()


def check_norm_type(norm_type: object) -> float:
    """Check ``lp_pool``'s power (a non-zero real, not NaN); return it as a float."""
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a number, got norm_type={norm_type!r}")
    if norm_type == 0 or math.isnan(norm_type):
        raise ValueError(f"norm_type must be non-zero and not NaN, got norm_type={norm_type!r}")
    return float(norm_type)


def check_lp_kernel(name: str, dims: int, kernel_size: object) -> None:
    """PyTorch's ``lp_pool`` multiplies by the kernel's area, unpacking
    ``kernel_size`` itself: an int in 1-D, an int or a full tuple from 2-D on."""
    if isinstance(kernel_size, (tuple, list)) and (dims == 1 or len(kernel_size) != dims):
        wanted = "an int" if dims == 1 else f"an int or a tuple of {dims} ints"
        raise ValueError(f"{name}: kernel_size must be {wanted}, got kernel_size={kernel_size!r}")


def check_unpool_indices(name: str, bad: int | None, size: tuple[int, ...]) -> None:
    """Raise ValueError if ``max_unpool`` found an index (``bad``) outside its output planes."""
    if bad is not None:
        raise ValueError(f"{name}: indices must lie in [0, {math.prod(size)}) for output size {size}, got index {bad}")


def first_bad_gradient_index(indices: np.ndarray, plane: int) -> int | None:
    """The first of ``indices`` (row-major) that is neither in ``[0, plane)`` nor -1, or None."""
    bad = indices[(indices < -1) | (indices >= plane)]
    return int(bad.flat[0]) if bad.size else None


def check_gradient_indices(name: str, bad: int | None, size: tuple[int, ...]) -> None:
    """Raise ValueError if max pooling's backward was given an index (``bad``) outside
    its input planes (-1, a window that covers only padding, is allowed)."""
    if bad is not None:
        raise ValueError(
            f"{name}: indices must lie in [0, {math.prod(size)}) for input size {size} "
            f"(or be -1, a window that covers only padding), got index {bad}"
        )


# --- MXNet's conventions (mx.nd.Pooling) -----------------------------------------

MXNET_POOL_TYPES = ("max", "avg", "sum", "lp")
MXNET_CONVENTIONS = ("valid", "full")


def check_mxnet_pooling(name: str, data: Any, kernel: object, pool_type: object, pooling_convention: object,
                        count_include_pad: object, global_pool: object, p_value: object) -> int:
    """Check ``mx.nd.Pooling``'s arguments that do not depend on the input's size; return the number of spatial axes."""
    if pool_type not in MXNET_POOL_TYPES:
        raise ValueError(f"{name}: pool_type must be one of {MXNET_POOL_TYPES}, got pool_type={pool_type!r}")
    if pooling_convention not in MXNET_CONVENTIONS:
        raise ValueError(f"{name}: pooling_convention must be one of {MXNET_CONVENTIONS}, got pooling_convention={pooling_convention!r}")
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
    if dims not in LAYOUTS:
        what = f"data with shape {getattr(data, 'shape', None)}" if global_pool else f"kernel={kernel!r}"
        raise ValueError(f"{name}: pooling needs 1 to 3 spatial axes, got {what}")
    return dims


def mxnet_window(in_size: tuple[int, ...], kernel: Size, stride: Size | None, pad: Size | None, convention: str) -> Window:
    """MXNet's window: stride 1 and no padding by default, any padding that
    leaves the kernel inside the padded input, and ``"full"`` rounding the
    output size up with no correction (a last window may lie wholly in the padding)."""
    dims = len(in_size)
    kernel = as_tuple("kernel", kernel, dims)
    stride = (1,) * dims if stride is None else as_tuple("stride", stride, dims)
    pad = (0,) * dims if pad is None else as_tuple("pad", pad, dims)
    _check_positive("kernel", kernel)
    _check_positive("stride", stride)
    _check_non_negative("pad", pad)
    _require(
        all(k <= size + 2 * p for k, size, p in zip(kernel, in_size, pad)),
        f"kernel={kernel} exceeds the input size {tuple(in_size)} padded by pad={pad}",
    )
    spans = [size + 2 * p - k for size, k, p in zip(in_size, kernel, pad)]
    if convention == "valid":
        out = tuple(1 + span // s for span, s in zip(spans, stride))
    else:
        out = tuple(1 - (-span // s) for span, s in zip(spans, stride))
    return Window(tuple(in_size), kernel, stride, pad, (1,) * dims, out)


def check_onednn_pad(window: Window, pool_type: str) -> None:
    """MXNet's CPU build hands float32 channels-first max and avg pooling to
    oneDNN, which refuses a pad as large as the kernel (MXNet's check skips
    the middle axis of 3-D, so does this); its other kernels accept it."""
    checked = [axis for axis in range(window.dims) if not (window.dims == 3 and axis == 1)]
    if any(window.padding[axis] >= window.kernel[axis] for axis in checked):
        raise ValueError(
            f"mxnet_pooling: pad must be smaller than kernel for float32 {pool_type} pooling, "
            f"got pad={window.padding} with kernel={window.kernel}"
        )
