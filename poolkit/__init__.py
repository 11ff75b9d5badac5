"""poolkit: exact reference implementations of pooling, from loops to kernels.

The functions (:mod:`poolkit.functional`) mirror ``torch.nn.functional``'s
names and argument order and PyTorch's semantics exactly; :func:`mxnet_pooling`
mirrors MXNet's ``mx.nd.Pooling``. Each public function validates its arguments
once (:mod:`poolkit.spec`) and hands the work to a backend
(:mod:`poolkit.backends`): ``"naive"`` (the lecture's loops), ``"numpy"``
(vectorized), ``"numba"`` (compiled for the CPU), ``"cuda"`` (numba-cuda
kernels) or ``"auto"`` (the fastest one for the input,
:func:`poolkit.dispatch.auto_backend`).
Inputs may be NumPy arrays, torch tensors, MXNet NDArrays or CUDA device arrays,
and the result is of the same kind (device arrays stay on the device); the
input is never modified.

The grader (``poolkit grade``, ``poolkit check``) is :mod:`poolkit.grader`,
installed with the ``[grader]`` extra.

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

from .dispatch import BACKENDS
from .functional import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    global_avg_pool1d,
    global_avg_pool2d,
    global_avg_pool3d,
    global_max_pool1d,
    global_max_pool2d,
    global_max_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
    min_pool1d,
    min_pool2d,
    min_pool3d,
    sum_pool1d,
    sum_pool2d,
    sum_pool3d,
)
from .mxnet_compat import mxnet_pooling
from .spec import pool_output_size

__all__ = [
    "BACKENDS",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "global_avg_pool1d",
    "global_avg_pool2d",
    "global_avg_pool3d",
    "global_max_pool1d",
    "global_max_pool2d",
    "global_max_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool3d",
    "max_pool3d_backward",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "min_pool1d",
    "min_pool2d",
    "min_pool3d",
    "mxnet_pooling",
    "pool_output_size",
    "sum_pool1d",
    "sum_pool2d",
    "sum_pool3d",
]
