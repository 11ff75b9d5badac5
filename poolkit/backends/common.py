"""What the host backends share: the one module they import besides
:mod:`poolkit.spec` (backends never import each other).

Host arrays are read and arranged by :mod:`poolkit.arrays`; results are laid
out in memory like their input (:func:`like`), and a large result's memory is
kept for the next result of its size once the caller lets go of it
(:func:`new_array`); sums are divided once
(:func:`divide`); Lp pooling's elementwise steps, the range check of
``max_unpool``'s indices and the tap-by-tap spread of average pooling's
gradient (:func:`spread`) are the same NumPy code in every host backend.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .. import arrays
from ..spec import Window, accumulator_dtype

#: Host backends read any supported kind of array as NumPy, and arrange views with NumPy.
read = arrays.to_numpy
arrange = arrays.arrange


#: Results at least this large get memory that is kept for reuse when freed. glibc
#: maps each such block afresh and the kernel zeroes every page on first touch: a
#: (32, 64, 112, 112) float32 average-pooling gradient spent 7 ms of its 23 on page faults.
REUSE_BYTES = 16 << 20
#: The most freed memory kept for reuse; a block that would go past it is given back.
KEPT_BYTES = 1 << 30

#: Freed large blocks by size in bytes, oldest first (as MXNet's and torch's GPU
#: caching allocators keep them). Each change is one dict or list operation, atomic under the GIL, so no lock,
#: which ``__del__`` (run wherever the last reference goes) could deadlock on.
_kept: dict[int, list[np.ndarray]] = {}


class _Memory:
    """The memory under one large result: back to :data:`_kept` when the last
    array on it is gone. Arrays made from it have it as their ``base``, and
    NumPy's views keep that array (not the block) alive, so no view outlives it."""

    def __init__(self, block: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.block = block
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": dtype.str, "data": (block.ctypes.data, False)}

    def __del__(self) -> None:
        try:
            _keep(self.block)
        except Exception:  # interpreter shutdown: the module's globals may be gone
            pass


def _keep(block: np.ndarray) -> None:
    if block.nbytes > KEPT_BYTES:
        return
    while sum(b.nbytes for blocks in _kept.values() for b in blocks) + block.nbytes > KEPT_BYTES:
        size = next(iter(_kept))  # the size first kept goes first
        if _kept[size]:
            _kept[size].pop(0)
        if not _kept[size]:
            del _kept[size]
    _kept.setdefault(block.nbytes, []).append(block)


def release_kept_memory() -> None:
    """Give every kept block back to the system (the next large result then touches fresh pages)."""
    _kept.clear()


def new_array(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array, on kept memory when it is large (see :data:`REUSE_BYTES`).

    Examples
    --------
    >>> a = new_array((64, 1024, 1024), np.float32)  # 256 MiB
    >>> address = a.ctypes.data
    >>> del a
    >>> new_array((1024, 64, 1024), np.float32).ctypes.data == address  # the same memory again
    True
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < REUSE_BYTES or dtype.hasobject:
        return np.empty(shape, dtype)
    try:
        block = _kept.get(nbytes, []).pop()
    except IndexError:
        block = np.empty(nbytes, np.uint8)
    return np.asarray(_Memory(block, tuple(shape), dtype))


def like(x: np.ndarray, shape: tuple[int, ...], dtype: Any, fill: Any) -> np.ndarray:
    """An array of ``shape`` filled with ``fill`` (broadcast), laid out in memory like ``x``.

    A channels-last input reaches a backend as a transposed view; writing
    the result in the same order keeps every pass over memory sequential.
    ``fill=None`` leaves it unset, for a kernel that writes every element:
    filling a large new array first costs as much as the kernel's own writes
    (each page is touched twice, the first time by one thread).

    Examples
    --------
    >>> nhwc = np.zeros((1, 4, 4, 3)).transpose(0, 3, 1, 2)  # an (N, C, H, W) view
    >>> like(nhwc, (1, 3, 2, 2), np.float32, 0).strides
    (48, 4, 24, 12)
    """
    outer_first = sorted(range(x.ndim), key=lambda axis: -x.strides[axis])
    array = new_array(tuple(shape[axis] for axis in outer_first), dtype).transpose(np.argsort(outer_first))
    if fill is not None:
        array[...] = fill
    return array


#: About how many input bytes one block holds: small enough that the block's
#: output stays in cache across all k*k passes, large enough that Python's
#: per-pass overhead vanishes.
BLOCK_BYTES = 4 << 20


@functools.lru_cache(maxsize=1)
def _workers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="poolkit")


def by_blocks(work: Callable[..., None], x: np.ndarray, *others: np.ndarray) -> None:
    """Call ``work(x[b], *(a[b] for a in others))`` for blocks ``b`` of samples and channels.

    Every block holds whole planes, so blocks are independent and the result
    does not depend on how they are scheduled; NumPy releases the GIL inside
    its loops, so the blocks run on all cores.
    """
    n, c = x.shape[:2]
    plane = math.prod(x.shape[2:]) * x.itemsize
    # Channels-last views keep a sample's channels interleaved in memory: block by sample.
    step = c if x.strides[1] < x.strides[-1] else max(1, min(c, BLOCK_BYTES // max(plane, 1)))
    blocks = [(slice(i, i + 1), slice(j, j + step)) for i in range(n) for j in range(0, c, step)]
    if len(blocks) <= 1:
        work(x, *others)
        return
    errors = np.geterr()  # NumPy's error settings are per thread: carry the caller's over

    def run(block: tuple[slice, slice]) -> None:
        with np.errstate(**errors):
            work(x[block], *(a[block] for a in others))

    list(_workers().map(run, blocks))


def divide(total: np.ndarray, divisor: np.ndarray | None, dtype: Any) -> np.ndarray:
    """``total`` over ``divisor`` (None: 1) in ``total``'s dtype, rounded once to ``dtype``."""
    if divisor is not None:
        total = np.divide(total, divisor, out=total if total.dtype == divisor.dtype else None)
    return total.astype(dtype, copy=False)


def spread(values: np.ndarray, window: Window, divisor: np.ndarray) -> np.ndarray:
    """Add each output's value over its divisor to every input position its window covers,
    one whole-array pass per window offset, in row-major order of the offsets.

    On the CPU this is memory-bound already, and five times faster than
    gathering per input element (which pays only on a GPU).
    """
    grad = like(values, values.shape[:2] + window.in_size, accumulator_dtype(values.dtype), 0)
    shares = values.astype(grad.dtype) / divisor
    plan = window.tap_plan()

    def add(shares: np.ndarray, grad: np.ndarray) -> None:
        for _, out_span, in_span in plan:
            grad[in_span] += shares[out_span]

    by_blocks(add, shares, grad)
    return grad.astype(values.dtype, copy=False)


#: The elementwise steps of Lp pooling, as :func:`elementwise` names them.
ELEMENTWISE: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "abs": lambda x, p: np.abs(x),
    "pow": np.power,
    "sqrt": lambda x, p: np.sqrt(x),
    "cbrt": lambda x, p: np.cbrt(x),
}


def elementwise(x: np.ndarray, fn: str, p: float | None = None, scale: float = 1) -> np.ndarray:
    """``fn`` ("abs", "pow" to the ``p``, "sqrt", "cbrt") of ``x * scale``, in ``x``'s dtype."""
    if scale != 1:
        x = x * x.dtype.type(scale)
    return ELEMENTWISE[fn](x, p)


def first_out_of_range(indices: np.ndarray, plane: int) -> int | None:
    """The first of ``indices`` (row-major) outside ``[0, plane)``, or None."""
    if indices.size == 0 or (indices.min() >= 0 and indices.max() < plane):
        return None  # the common case, found without the masks' temporaries (a fifth of the indices' size)
    bad = indices[(indices < 0) | (indices >= plane)]
    return int(bad.flat[0]) if bad.size else None
