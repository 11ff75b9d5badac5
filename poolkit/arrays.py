"""Array kinds in and out: the result is the same kind as the input.

NumPy arrays pass through; torch tensors and MXNet NDArrays are read as NumPy
arrays (without a copy where the framework allows) and the result is turned
back into the same kind, on the same device. Neither framework is imported
unless the input is one of its arrays.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import spec


def _framework(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def on_device(x: Any) -> bool:
    """Whether ``x`` lives on a CUDA device (a torch CUDA tensor, a CuPy or numba device array)."""
    if type(x) is np.ndarray:
        return False
    return hasattr(x, "__cuda_array_interface__") or (_framework(x) == "numba" and hasattr(x, "copy_to_host"))


def nbytes(x: Any) -> int:
    """The size of ``x``'s data in bytes, for any supported kind of array (0 for anything else)."""
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    try:
        return int(np.prod(x.shape)) * np.dtype(str(x.dtype).replace("torch.", "")).itemsize
    except (AttributeError, TypeError):
        return 0


def is_contiguous(x: Any) -> bool:
    """Whether ``x``'s elements lie in row-major order in memory (MXNet's always do)."""
    if isinstance(x, np.ndarray):
        return bool(x.flags.c_contiguous)
    if _framework(x) == "torch" and hasattr(x, "is_contiguous"):
        return bool(x.is_contiguous())
    return _framework(x) == "mxnet"


def arrange(array: Any, axes: Sequence[int | None]) -> Any:
    """A view of ``array`` whose axis k is ``array``'s axis ``axes[k]`` (None: a new
    axis of length 1); axes of ``array`` not listed must have length 1.

    Works on NumPy arrays here and on device arrays in :mod:`poolkit.backends.cuda`.

    Examples
    --------
    >>> arrange(np.zeros((2, 3, 4)), [None, 0, 2, 1]).shape
    (1, 2, 4, 3)
    """
    kept = [axis for axis in axes if axis is not None]
    unlisted = [axis for axis in range(array.ndim) if axis not in kept]
    view = array.transpose(kept + unlisted)[(Ellipsis,) + (0,) * len(unlisted)]
    return view[tuple(np.newaxis if axis is None else slice(None) for axis in axes)]


def _same(result: np.ndarray) -> np.ndarray:
    return result


def to_numpy(name: str, label: str, x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Return ``(array, back)``: ``x`` as a NumPy array, and a function that
    turns a NumPy result into the kind of array ``x`` was.

    Examples
    --------
    >>> array, back = to_numpy("max_pool2d", "x", np.zeros(3))
    >>> back(array + 1)
    array([1., 1., 1.])
    """
    if isinstance(x, np.ndarray):
        return x, _same
    framework = _framework(x)
    if framework == "numba" and hasattr(x, "copy_to_host"):  # a numba device array
        from numba import cuda

        return x.copy_to_host(), cuda.to_device
    if framework == "torch":
        import torch

        if isinstance(x, torch.Tensor):
            # NumPy has no bfloat16: refuse such tensors before converting them.
            spec.check_tensor_dtype(name, label, str(x.dtype))
            device = x.device
            return x.detach().cpu().numpy(), lambda result: torch.from_numpy(np.ascontiguousarray(result)).to(device)
    if framework == "mxnet":
        import mxnet as mx

        if isinstance(x, mx.nd.NDArray):
            context = x.context
            return x.asnumpy(), lambda result: mx.nd.array(result, ctx=context, dtype=result.dtype)
    raise spec.array_kind_error(name, label, x)
