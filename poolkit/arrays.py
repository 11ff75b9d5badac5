"""Array kinds in and out: the result is the same kind as the input.

NumPy arrays pass through; torch tensors and MXNet NDArrays are read as NumPy
arrays (without a copy where the framework allows) and the result is turned
back into the same kind, on the same device. Neither framework is imported
unless the input is one of its arrays.
"""

import numpy as np


def _framework(x):
    return type(x).__module__.split(".", 1)[0]


def to_numpy(name, label, x):
    """Return ``(array, back)``: ``x`` as a NumPy array, and a function that
    turns a NumPy result into the kind of array ``x`` was.

    Examples
    --------
    >>> array, back = to_numpy("max_pool2d", "x", np.zeros(3))
    >>> back(array + 1)
    array([1., 1., 1.])
    """
    if isinstance(x, np.ndarray):
        return x, lambda result: result
    framework = _framework(x)
    if framework == "torch":
        import torch

        if isinstance(x, torch.Tensor):
            if x.dtype in (torch.bfloat16, torch.complex32) or x.is_complex() or x.dtype == torch.bool:
                raise TypeError(f"{name} needs a real floating-point or integer {label}, got {label} with dtype {x.dtype}")
            device = x.device
            return x.detach().cpu().numpy(), lambda result: torch.from_numpy(np.ascontiguousarray(result)).to(device)
    if framework == "mxnet":
        import mxnet as mx

        if isinstance(x, mx.nd.NDArray):
            context = x.context
            return x.asnumpy(), lambda result: mx.nd.array(result, ctx=context, dtype=result.dtype)
    raise TypeError(f"{name}: {label} must be a NumPy array, a torch tensor or an MXNet NDArray, got {label} of type {type(x).__name__}")
