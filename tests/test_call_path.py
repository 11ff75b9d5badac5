"""The per-call path: what a call costs before any pooling, and the backward that reuses the forward's indices.

1. Validated windows (and average pooling's divisors) are cached per parameter
   set: the cache gives the same windows, results and errors as working them out
   every time, is never hit by an argument that merely compares equal (2.0,
   True, ``np.int64(2)``, a list), and never hands out a window for another
   shape or parameter set.
2. The cheaper steps around it: no rearranging of batched channels-first input,
   NumPy's error state set and restored as ``np.errstate`` does, backends
   imported once, the observers still told of every call.
3. ``max_poolNd_backward(..., indices=...)``: a scatter-add at the forward's
   indices gives exactly what finding the argmax again gives, and PyTorch's
   ``max_pool2d_with_indices_backward``; bad indices get errors that name them.

No test here asserts a time: the speed is measured by scripts, never asserted.
"""

import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import poolkit
from poolkit import dispatch, functional, spec

from cases import channels_first, inputs, spatial_shape, to_user, torch_input, windows

BACKENDS = ("numpy", "naive", "numba")
DIMS = (1, 2, 3)


def pool(dims, suffix=""):
    return getattr(poolkit, f"max_pool{dims}d{suffix}")


def message(fn):
    """The type and text of the error ``fn()`` raises."""
    with pytest.raises((ValueError, TypeError)) as raised:
        fn()
    return type(raised.value), str(raised.value)


# --- 1. the window and divisor caches ----------------------------------------------

GOOD_WINDOWS = [
    ((8, 8), 3, 2, 1, 1, False),
    ((8, 8), 3, None, 1, 1, True),
    ((8, 8), (3, 2), (2, 1), (1, 0), (1, 2), False),
    ((9, 8), 3, 2, 1, 1, False),
    ((8, 9), 3, 2, 1, 1, True),
    ((7,), 2, (), 0, 3, True),
    ((5, 6, 7), (3, 1, 2), 2, (1, 0, 1), 1, False),
]


@pytest.mark.parametrize("in_size, kernel, stride, padding, dilation, ceil", GOOD_WINDOWS)
def test_a_cached_window_is_the_window_worked_out_afresh(in_size, kernel, stride, padding, dilation, ceil):
    fresh = spec._window(in_size, kernel, stride, padding, dilation, ceil, False)
    first = spec.make_window(in_size, kernel, stride, padding, dilation, ceil)
    again = spec.make_window(in_size, kernel, stride, padding, dilation, ceil)
    assert first == fresh and again is first
    assert first.tap_plan() == spec._tap_plan(fresh)


def test_a_cached_window_is_never_handed_out_for_another_shape_or_parameter():
    """Every parameter set of GOOD_WINDOWS differs from the others in one thing; each gets its own window."""
    seen = {}
    for args in GOOD_WINDOWS * 2:
        window = spec.make_window(*args)
        assert window == spec._window(*args, False)
        seen.setdefault(args, window)
        assert seen[args] is window
    assert len({id(w) for w in seen.values()}) == len(GOOD_WINDOWS)
    # The 3-D average pooling rule is part of the key too.
    assert spec.make_window((2, 2, 2), 2, padding=1).out_size == (2, 2, 2)
    with pytest.raises(ValueError, match="smaller than kernel_size"):
        spec.make_window((2, 2, 2), 3, padding=1, fits_kernel=True)
    spec.make_window((2, 2, 2), 3, padding=1)


# Arguments that compare equal to a good (cached) one but are not the same: each
# must behave as without any cache -- the same result for the ones PyTorch's rules
# accept, the same error for the others.
LOOKALIKES = [
    dict(kernel_size=3.0),
    dict(kernel_size=True),
    dict(kernel_size=np.int64(3)),
    dict(kernel_size=[3, 3]),
    dict(kernel_size=(3.0, 3)),
    dict(kernel_size=(np.int32(3), 3)),
    dict(stride=2.0),
    dict(stride=np.int64(2)),
    dict(stride=[2]),
    dict(stride=[]),
    dict(padding=True),
    dict(padding=np.bool_(True)),
    dict(padding=1.0),
    dict(padding=[1, 1]),
    dict(dilation=True),
    dict(dilation=np.int64(1)),
    dict(ceil_mode=0),
    dict(ceil_mode=1),
    dict(ceil_mode=np.bool_(False)),
    dict(ceil_mode=None),
    dict(kernel_size=[[3], 3]),
    dict(kernel_size=(3, 3, 3)),
    dict(kernel_size=0),
    dict(padding=2),
    dict(stride=(2, 0)),
    dict(dilation=5),
]


def uncached(fn):
    """``fn()`` with the window cache bypassed: what poolkit did before it had one."""
    original = spec._cached_window
    spec._cached_window = spec._window
    try:
        return fn()
    finally:
        spec._cached_window = original


@pytest.mark.parametrize(
    "family, change",
    [pytest.param(family, change, id=f"{family}-{change!r}") for family in ("max_pool", "avg_pool", "max_pool_backward")
     for change in LOOKALIKES if not (family == "avg_pool" and "dilation" in change)],
)
def test_arguments_that_only_compare_equal_never_hit_the_cache(family, change):
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    params = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)
    if family == "avg_pool":
        del params["dilation"]
    grad = np.ones((1, 2, 4, 4), np.float32)

    def run(**params):
        if family == "max_pool_backward":
            return poolkit.max_pool2d_backward(grad, x, **params)
        return getattr(poolkit, f"{family}2d")(x, **params)

    good = run(**params)  # now cached
    changed = {**params, **change}
    try:
        expected = uncached(lambda: run(**changed))
    except (ValueError, TypeError) as error:
        for _ in range(3):  # the first call and the repeats, once the good one is cached
            assert message(lambda: run(**changed)) == (type(error), str(error))
        np.testing.assert_array_equal(run(**params), good)
        return
    for _ in range(2):
        np.testing.assert_array_equal(run(**changed), expected)


def test_bad_arguments_raise_the_same_message_on_every_call():
    x = np.zeros((1, 1, 4, 4))
    cases = [
        (lambda: poolkit.max_pool2d(x, 0), "kernel_size=(0, 0)"),
        (lambda: poolkit.max_pool2d(x, 2, 0), "stride=(0, 0)"),
        (lambda: poolkit.max_pool2d(x, 3, 1, 2), "padding=(2, 2)"),
        (lambda: poolkit.max_pool2d(x, 2, dilation=4), "dilation=(4, 4)"),
        (lambda: poolkit.max_pool2d(x, 2, ceil_mode=1), "ceil_mode=1"),
        (lambda: poolkit.max_pool2d(x, 2.0), "kernel_size=2.0"),
        (lambda: poolkit.max_pool2d(x, [2, 2.5]), "kernel_size=[2, 2.5]"),
        (lambda: poolkit.avg_pool2d(x, 2, divisor_override=0), "divisor_override=0"),
        (lambda: poolkit.avg_pool2d(x, 2, divisor_override=True), "divisor_override=True"),
        (lambda: poolkit.avg_pool2d(x, 2, count_include_pad=1), "count_include_pad=1"),
        (lambda: poolkit.avg_pool3d(np.zeros((1, 2, 2, 2)), 3, padding=1), "kernel_size=(3, 3, 3)"),
        (lambda: poolkit.pool_output_size(4, 5), "kernel_size=(5,)"),
    ]
    poolkit.max_pool2d(x, 2)
    poolkit.avg_pool2d(x, 2, count_include_pad=True, divisor_override=2)
    for fn, shown in cases:
        first = message(fn)
        assert shown in first[1], first
        assert message(fn) == message(fn) == first
        assert uncached(lambda: message(fn)) == first


@pytest.mark.parametrize("in_size, kernel, stride, padding, dilation, ceil", GOOD_WINDOWS)
def test_the_arrays_kept_on_a_window_are_the_ones_worked_out_afresh(in_size, kernel, stride, padding, dilation, ceil):
    window = spec.make_window(in_size, kernel, stride, padding, dilation, ceil)
    fresh = spec._window(in_size, kernel, stride, padding, dilation, ceil, False)
    plane = math.prod(window.in_size)
    for _ in range(2):
        table = window.tap_table()
        assert table.shape == (1 + math.prod(window.kernel),) + window.out_size and not table.flags.writeable
        assert (table[0] == plane).all()
        np.testing.assert_array_equal(window.first_inside_index(), fresh.first_inside_index())
        assert not window.first_inside_index().flags.writeable
        for row, offsets in enumerate(spec.window_offsets(window.kernel), start=1):
            index = window.flat_tap_index(offsets)
            np.testing.assert_array_equal(index, fresh.flat_tap_index(list(offsets)))
            assert not index.flags.writeable
            # The table reads what the tap plan reads, and padding elsewhere.
            expected = np.full(window.out_size, plane)
            span = window.tap_spans(offsets)
            if span is not None:
                expected[span[0]] = index[span[0]]
            np.testing.assert_array_equal(table[row], expected)


def test_large_windows_keep_no_arrays():
    window = spec.make_window((300, 300), 3, 1, 1)
    assert math.prod(window.out_size) > spec._KEEP_ELEMENTS
    first = window.first_inside_index()
    assert window.first_inside_index() is not first and not window.__dict__.get("_kept")
    spec.avg_divisor(window, True, None, np.float64)
    assert not window.__dict__.get("_kept") and window.__dict__.get("_kept_elements", 0) == 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_cached_divisors_are_the_divisors_worked_out_afresh(dtype):
    x = np.random.default_rng(1).standard_normal((1, 2, 7, 6)).astype(dtype)
    window = spec.make_window((7, 6), 3, 2, 1, ceil_mode=True)
    acc = spec.accumulator_dtype(dtype)
    for include, override in [(True, None), (False, None), (True, 2), (False, -3), (True, np.int64(5))]:
        expected = window.sizes(include).astype(acc) if override is None else np.full(window.out_size, override, acc)
        for _ in range(2):
            divisor = spec.avg_divisor(window, include, override, acc)
            assert divisor.dtype == acc
            np.testing.assert_array_equal(divisor, expected)
            divisor[...] = 99  # a fresh copy each time: writing to it changes nothing cached
        out = poolkit.avg_pool2d(x, 3, 2, 1, True, include, override)
        np.testing.assert_array_equal(out, uncached(lambda: poolkit.avg_pool2d(x, 3, 2, 1, True, include, override, backend="naive")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_do_not_change_once_the_caches_are_warm(backend):
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, (2, 3, 9, 8)).astype(np.float64)  # ties
    runs = [
        lambda: poolkit.max_pool2d(x, 3, 2, 1, backend=backend),
        lambda: poolkit.max_pool2d(x, 3, 2, 1, 2, True, True, backend=backend),
        lambda: poolkit.avg_pool2d(x, 3, 2, 1, True, False, backend=backend),
        lambda: poolkit.avg_pool2d(x, (3, 2), 1, (1, 0), divisor_override=-2, backend=backend),
        lambda: poolkit.sum_pool2d(x, 2, backend=backend),
        lambda: poolkit.lp_pool2d(x, 2.0, 2, backend=backend),
        lambda: poolkit.avg_pool2d_backward(np.ones((2, 3, 5, 4)), x, 3, 2, 1, backend=backend),
    ]
    for run in runs:
        cold = uncached(run)
        for _ in range(2):
            warm = run()
            for a, b in zip(cold if isinstance(cold, tuple) else (cold,), warm if isinstance(warm, tuple) else (warm,)):
                np.testing.assert_array_equal(a, b)


# --- 2. the steps around the cache --------------------------------------------------


@pytest.mark.parametrize("layout, shape", [("NCHW", (2, 3, 6, 5)), ("NCHW", (3, 6, 5)), ("NHWC", (2, 6, 5, 3)), ("NHWC", (6, 5, 3))])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_every_layout_still_round_trips(layout, shape, kind):
    x = np.random.default_rng(3).standard_normal(shape)
    given_x = torch.tensor(x) if kind == "torch" else x
    out, where = poolkit.max_pool2d(given_x, 3, 2, 1, return_indices=True, layout=layout)
    mean = poolkit.avg_pool2d(given_x, 3, 2, 1, layout=layout)
    t = torch.tensor(np.ascontiguousarray(channels_first(x, layout)))
    expected, expected_where = F.max_pool2d(t, 3, 2, 1, return_indices=True)
    for ours, theirs in [(out, expected), (where, expected_where), (mean, F.avg_pool2d(t, 3, 2, 1))]:
        assert isinstance(ours, torch.Tensor) == (kind == "torch")
        ours = ours.numpy() if kind == "torch" else ours
        np.testing.assert_allclose(ours, to_user(theirs, layout), rtol=1e-12)
        assert not np.may_share_memory(ours, x)


def test_the_error_state_is_set_and_restored_as_errstate_does():
    with np.errstate(all="raise"):
        with functional._silent():
            assert np.geterr() == {"divide": "ignore", "over": "ignore", "under": "raise", "invalid": "ignore"}
            np.array([np.inf]) - np.array([np.inf])
            np.array([1.0]) / 0
        assert np.geterr() == {"divide": "raise", "over": "raise", "under": "raise", "invalid": "raise"}
        with pytest.raises(KeyError):
            with functional._silent():
                raise KeyError("inside")
        assert np.geterr()["invalid"] == "raise"
        with pytest.raises(FloatingPointError):
            np.array([np.inf]) - np.array([np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf and 0/0 come out silently
        assert np.isnan(poolkit.avg_pool1d(np.array([[[np.inf, -np.inf]]]), 2)).all()


def test_the_hook_still_sees_every_call_and_backends_load_once():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert dispatch.load_backend("t", "numpy") is dispatch.load_backend("t", "numpy") is poolkit.backends.numpy_
    with dispatch.observe() as seen:
        poolkit.max_pool2d(x, 2)
        poolkit.avg_pool2d(x, 2)
    assert seen == ["poolkit.max_pool2d", "poolkit.backends.numpy_.pool", "poolkit.avg_pool2d", "poolkit.backends.numpy_.pool"]


# --- 3. max pooling's backward from the forward's indices ----------------------------


def add_at(grad, where, in_size):
    """The reference: ``np.add.at`` of ``grad`` (N, C, *out) at flat ``where``, in float64, index -1 dropped."""
    n, c = grad.shape[:2]
    flat = np.zeros((n, c, math.prod(in_size)))
    keep = where >= 0
    planes = np.broadcast_to(np.arange(n * c).reshape(n, c, *(1,) * (grad.ndim - 2)), grad.shape)
    np.add.at(flat.reshape(-1), (planes * math.prod(in_size) + where)[keep], grad.astype(np.float64)[keep])
    return flat.reshape((n, c) + tuple(in_size))


CASES = [
    pytest.param(2, (2, 3, 7, 6), "NCHW", dict(kernel_size=3, stride=2, padding=1), id="2d-padding"),
    pytest.param(2, (2, 3, 7, 6), "NCHW", dict(kernel_size=3, stride=1, padding=1), id="2d-overlap"),
    pytest.param(2, (1, 2, 7, 6), "NCHW", dict(kernel_size=2, stride=2, ceil_mode=True), id="2d-ceil"),
    pytest.param(2, (1, 2, 9, 8), "NCHW", dict(kernel_size=3, stride=1, padding=1, dilation=2), id="2d-dilation"),
    pytest.param(2, (2, 7, 6, 3), "NHWC", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), id="2d-nhwc"),
    pytest.param(2, (3, 7, 6), "NCHW", dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)), id="2d-unbatched"),
    pytest.param(1, (2, 3, 11), "NCW", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True), id="1d"),
    pytest.param(1, (11, 3), "NWC", dict(kernel_size=3, stride=1, dilation=2), id="1d-nwc-unbatched"),
    pytest.param(3, (1, 2, 5, 4, 6), "NCDHW", dict(kernel_size=3, stride=2, padding=1), id="3d"),
    pytest.param(3, (1, 5, 4, 6, 2), "NDHWC", dict(kernel_size=2, stride=1, ceil_mode=True), id="3d-ndhwc"),
]


def ties(shape, dtype, seed=0):
    """Few distinct values: windows with tied maxima, where the first index must win."""
    return np.random.default_rng(seed).integers(-2, 3, shape).astype(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("dims, shape, layout, params", CASES)
def test_backward_from_indices_is_the_recomputed_backward_exactly(dims, shape, layout, params, dtype, backend):
    x = ties(shape, dtype)
    out, where = pool(dims)(x, **params, return_indices=True, layout=layout, backend=backend)
    grad = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    recomputed = pool(dims, "_backward")(grad, x, **params, layout=layout, backend=backend)
    from_indices = pool(dims, "_backward")(grad, x, **params, indices=where, layout=layout, backend=backend)
    assert from_indices.dtype == recomputed.dtype == dtype and from_indices.shape == x.shape
    # The contract: summed in float64, in row-major order of grad_output, rounded once.
    user_in = spatial_shape(x if len(shape) == dims + 2 else x[None], layout)
    batched = lambda a: channels_first(a if len(shape) == dims + 2 else a[None], layout)
    np.testing.assert_array_equal(batched(from_indices), add_at(batched(grad), batched(where), user_in).astype(dtype))
    if backend == "naive" and dtype != np.float64:
        # The naive backend's recomputing backward adds in the accumulator dtype
        # (float32), not in float64 as its scatter_add does: equal up to rounding.
        np.testing.assert_allclose(from_indices, recomputed, rtol=2e-3 if dtype == np.float16 else 1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(from_indices, recomputed)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims, shape, layout, params", CASES)
def test_backward_from_indices_takes_torch_tensors_and_gives_tensors(dims, shape, layout, params, backend):
    x = torch.tensor(ties(shape, np.float64, seed=4))
    out, where = pool(dims)(x, **params, return_indices=True, layout=layout, backend=backend)
    assert isinstance(where, torch.Tensor) and where.dtype == torch.int64
    grad = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    from_indices = pool(dims, "_backward")(grad, x, **params, indices=where, layout=layout, backend=backend)
    recomputed = pool(dims, "_backward")(grad, x, **params, layout=layout, backend=backend)
    assert isinstance(from_indices, torch.Tensor) and from_indices.dtype == torch.float64
    np.testing.assert_array_equal(from_indices.numpy(), recomputed.numpy())
    # NumPy indices with torch tensors (and int32 ones) give the same.
    same = pool(dims, "_backward")(grad, x, **params, indices=where.numpy().astype(np.int32), layout=layout, backend=backend)
    np.testing.assert_array_equal(same.numpy(), recomputed.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dims, shape, layout, params", [c for c in CASES if c.values[0] in (2, 3)])
def test_backward_from_indices_matches_torchs_max_pool_with_indices_backward(dims, shape, layout, params, dtype, backend):
    x = ties(shape, dtype, seed=6)
    batched = len(shape) == dims + 2
    t = torch_input(x if batched else x[None], layout)
    full = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, **params}
    as_list = lambda v: [v] * dims if isinstance(v, int) else list(v)
    expected_out, expected_where = getattr(F, f"max_pool{dims}d")(t, **params, return_indices=True)
    grad = torch.randn(expected_out.shape, dtype=t.dtype, generator=torch.Generator().manual_seed(7))
    op = getattr(torch.ops.aten, f"max_pool{dims}d_with_indices_backward")
    stride = [] if full["stride"] is None else as_list(full["stride"])
    expected = op(grad, t, as_list(full["kernel_size"]), stride, as_list(full["padding"]), as_list(full["dilation"]), full["ceil_mode"], expected_where)
    user = lambda a: to_user(a, layout) if batched else to_user(a, layout)[0]
    _, where = pool(dims)(x, **params, return_indices=True, layout=layout, backend=backend)
    np.testing.assert_array_equal(where, user(expected_where))
    ours = pool(dims, "_backward")(user(grad), x, **params, indices=where, layout=layout, backend=backend)
    if dtype == np.float64:
        np.testing.assert_array_equal(ours, user(expected))
    else:  # PyTorch adds float32 gradients in float32, poolkit in float64
        np.testing.assert_allclose(ours, user(expected), rtol=1e-6, atol=1e-6)
    # PyTorch's own indices, as torch tensors, give the same.
    theirs = pool(dims, "_backward")(torch.tensor(user(grad)), torch.tensor(x), **params, indices=torch.tensor(user(expected_where)), layout=layout, backend=backend)
    np.testing.assert_array_equal(theirs.numpy(), ours)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
@settings(max_examples=25)
@given(data=st.data())
def test_backward_from_indices_agrees_with_the_recomputed_one_on_drawn_cases(dims, backend, data):
    x, layout = data.draw(inputs(dims, dtypes=(np.float64, np.float32, np.float16, np.int32), max_side=[9, 7, 4][dims - 1]))
    kernel, stride, pad, dil, ceil = data.draw(windows(spatial_shape(x, layout)))
    out, where = pool(dims)(x, kernel, stride, pad, dil, ceil, True, layout=layout, backend=backend)
    grad = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(out.shape).astype(np.float32 if x.dtype.kind == "i" else x.dtype)
    expected = pool(dims, "_backward")(grad, x, kernel, stride, pad, dil, ceil, layout=layout, backend=backend)
    ours = pool(dims, "_backward")(grad, x, kernel, stride, pad, dil, ceil, indices=where, layout=layout, backend=backend)
    if backend == "naive" and grad.dtype != np.float64:  # its recomputing backward adds in float32 (see above)
        np.testing.assert_allclose(ours, expected, rtol=2e-3 if grad.dtype == np.float16 else 1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_window_that_covers_only_padding_sends_its_gradient_nowhere(backend):
    x = np.array([[[2.0]]])  # taps at -1 and +1 both miss the one element
    out, where = poolkit.max_pool2d(x, (1, 2), padding=(0, 1), dilation=(1, 2), return_indices=True, backend=backend)
    assert where.tolist() == [[[-1]]]
    grad = poolkit.max_pool2d_backward(np.ones((1, 1, 1)), x, (1, 2), padding=(0, 1), dilation=(1, 2), indices=where, backend=backend)
    assert grad.tolist() == [[[0.0]]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_from_indices_recomputes_no_argmax_and_leaves_its_arguments_alone(backend):
    x = ties((2, 3, 8, 8), np.float64)
    out, where = poolkit.max_pool2d(x, 3, 2, 1, return_indices=True, backend=backend)
    grad = np.random.default_rng(0).standard_normal(out.shape)
    saved = [a.copy() for a in (grad, x, where)]
    with dispatch.observe() as seen:
        result = poolkit.max_pool2d_backward(grad, x, 3, 2, 1, indices=where, backend=backend)
    module = dispatch.load_backend("t", backend).__name__
    assert seen[0] == "poolkit.max_pool2d_backward" and f"{module}.scatter_add" in seen
    assert f"{module}.pool" not in seen and f"{module}.max_pool_backward" not in seen
    for now, old in zip((grad, x, where), saved):
        np.testing.assert_array_equal(now, old)
        assert not np.may_share_memory(result, now)


def bad_indices_cases():
    for dims in DIMS:
        x = np.arange(2.0 * 6**dims).reshape((1, 2) + (6,) * dims) % 5
        out, where = pool(dims)(x, 2, return_indices=True)
        plane = 6**dims
        grad = np.ones(out.shape)
        spoiled = lambda value, where=where: np.where(np.arange(where.size).reshape(where.shape) == where.size - 1, value, where)
        with_minus_one_first = lambda value, where=where: np.where(
            np.arange(where.size).reshape(where.shape) == 0, -1, spoiled(value, where))
        cases = [
            ("too-large", spoiled(plane + 100), ValueError, [r"\bindices\b", rf"\bindex {plane + 100}\b", rf"\[0, {plane}\)"]),
            ("one-past", spoiled(plane), ValueError, [r"\bindices\b", rf"\bindex {plane}\b"]),
            ("negative", spoiled(-2), ValueError, [r"\bindices\b", r"index -2\b"]),
            ("negative-after-minus-one", with_minus_one_first(-7), ValueError, [r"\bindices\b", r"index -7\b"]),
            ("too-large-after-minus-one", with_minus_one_first(plane), ValueError, [r"\bindices\b", rf"index {plane}\b"]),
            ("shape-like-x", np.zeros(x.shape, np.int64), ValueError, [r"\bindices\b", re.escape(repr(x.shape))]),
            ("shape-spatial", where[..., :1], ValueError, [r"\bindices\b", re.escape(repr(where[..., :1].shape))]),
            ("shape-unbatched", where[0], ValueError, [r"\bindices\b", re.escape(repr(where[0].shape))]),
            ("float", where.astype(np.float64), TypeError, [r"\bindices\b", "float64"]),
            ("bool", where > 0, TypeError, [r"\bindices\b", "bool"]),
            ("list", where.tolist(), TypeError, [r"\bindices\b", "list"]),
            ("torch-float", torch.tensor(where, dtype=torch.float32), TypeError, [r"\bindices\b", "float32"]),
            ("scalar", 3, TypeError, [r"\bindices\b", "int"]),
        ]
        for name, indices, exception, fragments in cases:
            pattern = "(?s)" + "".join(f"(?=.*{f})" for f in fragments)
            run = (lambda dims, grad, x, indices: lambda backend: pool(dims, "_backward")(grad, x, 2, indices=indices, backend=backend))(dims, grad, x, indices)
            yield pytest.param(run, exception, pattern, id=f"{dims}d-{name}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("run, exception, pattern", list(bad_indices_cases()))
def test_bad_indices_get_an_error_that_names_them(run, exception, pattern, backend):
    for _ in range(2):
        with pytest.raises(exception, match=pattern):
            run(backend)


def test_bad_grad_output_is_still_reported_before_the_indices():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\bgrad_output\b"):
        poolkit.max_pool2d_backward(np.ones((1, 1, 3, 3)), x, 2, indices=np.zeros((1, 1, 3, 3), np.int64))
    with pytest.raises(TypeError, match=r"\bindices\b"):
        poolkit.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2, indices=np.zeros((1, 1, 2, 2)))
