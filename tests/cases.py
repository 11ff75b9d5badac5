"""Shared hypothesis strategies and helpers for the differential tests.

A case is a small input plus pooling parameters that PyTorch accepts; the
values are drawn to hit the awkward spots: ties (few distinct values), NaN,
infinities and both signs.
"""

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

import poolkit
from poolkit.spec import LAYOUTS

FLOATS = (np.float64, np.float32, np.float16)
INTEGERS = (np.int32, np.int64)
VALUE_KINDS = ("ties", "normal", "nan", "inf")

# Relative and absolute tolerances for results that involve sums, whose order
# of additions may differ from PyTorch's; max, min and indices are compared exactly.
TOLERANCE = {np.float64: (1e-12, 1e-12), np.float32: (1e-5, 1e-5), np.float16: (4e-3, 4e-3)}


def make_values(rng, shape, dtype, kind):
    """An array of ``shape`` whose values are of ``kind`` (see VALUE_KINDS)."""
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    if kind == "ties":
        values = rng.integers(-2, 3, size=shape).astype(np.float64)
    else:
        values = rng.standard_normal(shape) * 3
    if kind in ("nan", "inf"):
        special = rng.random(shape) < 0.2
        values[special] = np.nan if kind == "nan" else rng.choice([np.inf, -np.inf], size=int(special.sum()))
    return values.astype(dtype)


@st.composite
def inputs(draw, dims, dtypes=FLOATS, max_side=7, kinds=VALUE_KINDS, batch=None):
    """``(x, layout)``: a NumPy input in a random layout (channels-first view for torch via :func:`to_torch`)."""
    batched = draw(st.booleans()) if batch is None else batch
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, max_side), min_size=dims, max_size=dims)))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = make_values(rng, (n, c) + spatial, dtype, draw(st.sampled_from(kinds)))
    channels_last = draw(st.booleans())
    layout = LAYOUTS[dims][channels_last]
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    return (x if batched else x[0]), layout


def channels_first(x, layout):
    """``x`` (user layout) as the channels-first array torch takes."""
    return np.moveaxis(x, -1, -len(layout) + 1) if layout[-1] == "C" else x


def to_user(result, layout):
    """A channels-first torch result in ``layout``, as NumPy."""
    array = result.detach().numpy() if isinstance(result, torch.Tensor) else result
    return np.moveaxis(array, -len(layout) + 1, -1) if layout[-1] == "C" else array


def torch_input(x, layout, requires_grad=False):
    """``x`` as a channels-first torch tensor. PyTorch's CPU 3-D average pooling
    has no float16 kernel, so 3-D float16 inputs are upcast to float32 (the
    precision PyTorch accumulates float16 in anyway)."""
    if x.dtype == np.float16 and len(layout) == 5:
        x = x.astype(np.float32)
    return torch.tensor(np.ascontiguousarray(channels_first(x, layout)), requires_grad=requires_grad)


@st.composite
def windows(draw, spatial, dilation=True, padding=True, fits_kernel=False):
    """PyTorch-valid ``kernel_size, stride, padding, dilation, ceil_mode`` for ``spatial``.

    ``fits_kernel``: the input must be at least the kernel (PyTorch's 3-D average pooling).
    """
    dims = len(spatial)
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * dims)))
    pad = tuple(draw(st.integers(0, k // 2)) for k in kernel) if padding else (0,) * dims
    dil = tuple(draw(st.integers(1, 2)) for _ in range(dims)) if dilation else (1,) * dims
    ceil = draw(st.booleans())
    assume(not fits_kernel or all(i >= k for i, k in zip(spatial, kernel)))
    try:
        poolkit.pool_output_size(tuple(spatial), kernel, stride, pad, dil, ceil)
    except ValueError:
        assume(False)
    # Sometimes pass the short forms that torch also accepts.
    if len(set(kernel)) == 1 and draw(st.booleans()):
        kernel = kernel[0]
    return kernel, stride, pad, dil, ceil


def spatial_shape(x, layout):
    dims = len(layout) - 2
    return channels_first(x, layout).shape[-dims:]


def assert_close(actual, expected, dtype):
    rtol, atol = TOLERANCE[np.dtype(dtype).type]
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol, atol=atol, equal_nan=True)


def exact(actual, expected):
    np.testing.assert_array_equal(actual, expected)
