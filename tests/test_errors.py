"""Bad input: a ValueError or TypeError that names the parameter and its value.

The project's rules (the README, ``poolkit/spec.py``): bad input gets a
ValueError or TypeError whose message names the parameter and the value it
got -- never a wrong answer, a hang or a crash -- and the input array is never
modified. poolkit accepts and rejects exactly what PyTorch accepts and rejects,
except for the deliberate differences listed in ``poolkit/spec.py`` (bools are
not ints, average-type pooling needs a floating-point input, lp_pool's
``norm_type`` may not be 0 or NaN, and a few more).

1. Explicit bad inputs for every public function, each checking the exception
   type and that the message shows the parameter and the offending value.
2. A hypothesis property: for max/avg (and min/sum) pooling with parameters
   drawn from ranges that include invalid values, PyTorch raises exactly when
   poolkit raises, and when both succeed the results agree.
3. The input (NumPy array or torch tensor) is unchanged after every call, and
   no result shares memory with it.

The tests named ``test_regression_*`` at the end pin disagreements with
PyTorch (or MXNet) and crashes that these tests once found.
"""

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import event, given, settings
from hypothesis import strategies as st

import poolkit

BACKENDS = ("numpy", "naive")
DIMS = (1, 2, 3)
SIDE = 4  # spatial side of the default test input; kernel 2 gives side 2
CHANNELS_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}

# Window families: the parameters each takes besides kernel_size, stride and ceil_mode.
WINDOWED = {
    "max_pool": ("padding", "dilation"),
    "min_pool": ("padding", "dilation"),
    "avg_pool": ("padding",),
    "sum_pool": ("padding",),
    "lp_pool": (),
    "max_pool_backward": ("padding", "dilation"),
    "avg_pool_backward": ("padding",),
}
ADAPTIVE = ("adaptive_avg_pool", "adaptive_max_pool", "global_avg_pool", "global_max_pool")
ALL_FAMILIES = tuple(WINDOWED) + ADAPTIVE + ("max_unpool",)
FLOAT_ONLY = {"avg_pool", "sum_pool", "lp_pool", "avg_pool_backward", "adaptive_avg_pool", "global_avg_pool"}


# --- helpers ----------------------------------------------------------------


def function(family, dims):
    """poolkit's public function, e.g. ``function("max_pool_backward", 2)`` is max_pool2d_backward."""
    stem = family.removesuffix("_backward")
    return getattr(poolkit, f"{stem}{dims}d" + family[len(stem):])


def make_x(dims, shape=None, dtype=np.float64):
    """A small (1, 1, 4, ...) input of distinct values (or of ``shape``)."""
    shape = (1, 1) + (SIDE,) * dims if shape is None else shape
    return (np.arange(math.prod(shape)) % 7 - 3).astype(dtype).reshape(shape)


DEFAULT = object()


def call(family, dims, x=DEFAULT, *, backend="numpy", **params):
    """Call ``family`` on ``x`` with the other required arguments filled in.

    The defaults (kernel 2 on a side-4 input) are valid, so a call raises only
    because of what the test passes.
    """
    x = make_x(dims) if x is DEFAULT else x
    f = function(family, dims)
    if family in ("adaptive_avg_pool", "adaptive_max_pool"):
        return f(x, params.pop("output_size", 2), **params, backend=backend)
    if family in ("global_avg_pool", "global_max_pool"):
        return f(x, **params, backend=backend)
    params.setdefault("kernel_size", 2)
    if family == "max_unpool":
        shape = getattr(x, "shape", (1, 1) + (2,) * dims)
        return f(x, params.pop("indices", np.zeros(shape, np.int64)), **params, backend=backend)
    if family == "lp_pool":
        return f(x, params.pop("norm_type", 2.0), **params, backend=backend)
    if family.endswith("_backward"):
        shape = getattr(x, "shape", (1, 1) + (SIDE,) * dims)
        grad = params.pop("grad_output", np.ones(shape[:-dims] + (SIDE // 2,) * dims))
        return f(grad, x, **params, backend=backend)
    return f(x, **params, backend=backend)


def shown(name, value, dims=None):
    """Regex for ``name=value`` in a message; an int may also show as a dims-tuple."""
    forms = {repr(value)}
    if dims is not None and isinstance(value, int) and not isinstance(value, bool):
        forms.add(repr((value,) * dims))
    return rf"\b{re.escape(name)}=(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w.])"


def mentions(*fragments):
    """Regex: the message contains every one of the regex ``fragments``, in any order."""
    return "(?s)" + "".join(f"(?=.*{fragment})" for fragment in fragments)


def x_with(text):
    """Regex: the message names the input ``x`` and shows ``text`` (its shape, dtype or type)."""
    return mentions(r"\bx\b", re.escape(text))


def check(fn, backend, exception, pattern):
    with pytest.raises(exception, match=pattern):
        fn(backend)


# --- 1. explicit bad inputs -------------------------------------------------


def geometry_cases():
    """kernel_size, stride, padding, dilation and ceil_mode out of range or of the wrong type."""
    for family, extra in WINDOWED.items():
        for dims in DIMS:
            too_long = dims + 1
            cases = [
                ("kernel0", dict(kernel_size=0), ValueError, shown("kernel_size", 0, dims)),
                ("kernel-1", dict(kernel_size=-1), ValueError, shown("kernel_size", -1, dims)),
                ("kernel-too-long", dict(kernel_size=(2,) * too_long), ValueError, shown("kernel_size", (2,) * too_long)),
                ("kernel-empty-tuple", dict(kernel_size=()), ValueError, shown("kernel_size", ())),
                ("kernel-float", dict(kernel_size=2.5), TypeError, shown("kernel_size", 2.5)),
                ("kernel-bool", dict(kernel_size=True), TypeError, shown("kernel_size", True)),
                ("kernel-none", dict(kernel_size=None), TypeError, shown("kernel_size", None)),
                ("kernel-str", dict(kernel_size="2"), TypeError, shown("kernel_size", "2")),
                ("kernel-float-in-tuple", dict(kernel_size=(2.0,) * dims), TypeError, shown("kernel_size", (2.0,) * dims)),
                ("output-empty", dict(kernel_size=SIDE + 1), ValueError, shown("kernel_size", SIDE + 1, dims)),
                ("stride0", dict(stride=0), ValueError, shown("stride", 0, dims)),
                ("stride-1", dict(stride=-1), ValueError, shown("stride", -1, dims)),
                ("stride-zero-in-tuple", dict(stride=(1,) * (dims - 1) + (0,)), ValueError, shown("stride", (1,) * (dims - 1) + (0,))),
                ("stride-too-long", dict(stride=(1,) * too_long), ValueError, shown("stride", (1,) * too_long)),
                ("stride-float", dict(stride=1.0), TypeError, shown("stride", 1.0)),
                ("ceil-int", dict(ceil_mode=1), TypeError, shown("ceil_mode", 1)),
                ("ceil-none", dict(ceil_mode=None), TypeError, shown("ceil_mode", None)),
            ]
            if "padding" in extra:
                cases += [
                    ("padding-1", dict(padding=-1), ValueError, shown("padding", -1, dims)),
                    ("padding-over-half", dict(kernel_size=3, padding=2), ValueError, shown("padding", 2, dims)),
                    ("padding-over-half-one-axis", dict(kernel_size=2, padding=(0,) * (dims - 1) + (2,)), ValueError,
                     shown("padding", (0,) * (dims - 1) + (2,))),
                    ("padding-too-long", dict(padding=(0,) * too_long), ValueError, shown("padding", (0,) * too_long)),
                    ("padding-float", dict(padding=0.5), TypeError, shown("padding", 0.5)),
                ]
            if "dilation" in extra:
                cases += [
                    ("dilation0", dict(dilation=0), ValueError, shown("dilation", 0, dims)),
                    ("dilation-1", dict(dilation=-1), ValueError, shown("dilation", -1, dims)),
                    ("dilation-too-long", dict(dilation=(1,) * too_long), ValueError, shown("dilation", (1,) * too_long)),
                    ("dilation-float", dict(dilation=1.5), TypeError, shown("dilation", 1.5)),
                    ("dilation-empties-output", dict(kernel_size=2, dilation=SIDE), ValueError, shown("dilation", SIDE, dims)),
                ]
            for name, params, exception, pattern in cases:
                fn = (lambda family, dims, params: lambda backend: call(family, dims, backend=backend, **params))(family, dims, params)
                yield pytest.param(fn, exception, pattern, id=f"{family}{dims}d-{name}")


def input_cases():
    """x of the wrong rank, with an empty non-batch dimension, of a bad dtype or kind; bad layout and backend."""
    for family in ALL_FAMILIES:
        for dims in DIMS:
            full = (1, 1) + (SIDE,) * dims
            shapes = {
                "rank-too-low": (SIDE,) * dims,
                "rank-too-high": (1,) + full,
                "empty-spatial": (1, 1, 0) + (SIDE,) * (dims - 1),
                "empty-spatial-unbatched": (1,) + (SIDE,) * (dims - 1) + (0,),
            }
            if family not in ADAPTIVE:  # PyTorch's adaptive pooling takes empty channels: see test_bug_adaptive_*
                shapes["empty-channels"] = (1, 0) + (SIDE,) * dims
                shapes["empty-channels-unbatched"] = (0,) + (SIDE,) * dims
            cases = [(name, make_x(dims, shape), {}, ValueError, x_with(repr(shape))) for name, shape in shapes.items()]
            other_layout = CHANNELS_FIRST[dims % 3 + 1]
            cases += [
                ("layout-other-dims", make_x(dims), dict(layout=other_layout), ValueError, shown("layout", other_layout)),
                ("layout-lowercase", make_x(dims), dict(layout=CHANNELS_FIRST[dims].lower()), ValueError,
                 shown("layout", CHANNELS_FIRST[dims].lower())),
                ("layout-int", make_x(dims), dict(layout=1), ValueError, shown("layout", 1)),
                ("dtype-bool", np.ones(full, bool), {}, TypeError, x_with("bool")),
                ("dtype-complex", make_x(dims, dtype=np.complex128), {}, TypeError, x_with("complex128")),
                ("dtype-object", make_x(dims).astype(object), {}, TypeError, x_with("object")),
                ("dtype-str", np.full(full, "a"), {}, TypeError, x_with("<U1")),
                ("torch-bool", torch.ones(full, dtype=torch.bool), {}, TypeError, x_with("bool")),
                ("torch-complex", torch.ones(full, dtype=torch.complex64), {}, TypeError, x_with("complex64")),
                ("list", make_x(dims).tolist(), {}, TypeError, x_with("list")),
                ("scalar", 3.0, {}, TypeError, x_with("float")),
                ("none", None, {}, TypeError, x_with("NoneType")),
            ]
            if family in FLOAT_ONLY:
                cases += [
                    ("dtype-int64", make_x(dims, dtype=np.int64), {}, TypeError, x_with("int64")),
                    ("dtype-uint8", make_x(dims, dtype=np.uint8), {}, TypeError, x_with("uint8")),
                    ("torch-int64", torch.ones(full, dtype=torch.int64), {}, TypeError, x_with("int64")),
                ]
            for name, x, params, exception, pattern in cases:
                fn = (lambda family, dims, x, params: lambda backend: call(family, dims, x, backend=backend, **params))(family, dims, x, params)
                yield pytest.param(fn, exception, pattern, id=f"{family}{dims}d-{name}")
            for bogus in ("bogus", "NUMPY", None):
                fn = (lambda family, dims, bogus: lambda backend: call(family, dims, backend=bogus))(family, dims, bogus)
                yield pytest.param(fn, ValueError, shown("backend", bogus), id=f"{family}{dims}d-backend-{bogus}")


def average_cases():
    """avg_pool's divisor_override and count_include_pad, and lp_pool's norm_type."""
    for family in ("avg_pool", "avg_pool_backward"):
        for dims in DIMS:
            cases = [
                ("divisor0", dict(divisor_override=0), ValueError, shown("divisor_override", 0)),
                ("divisor-float", dict(divisor_override=1.5), TypeError, shown("divisor_override", 1.5)),
                ("divisor-bool", dict(divisor_override=True), TypeError, shown("divisor_override", True)),
                ("divisor-str", dict(divisor_override="2"), TypeError, shown("divisor_override", "2")),
                ("count-include-pad-int", dict(count_include_pad=1), TypeError, shown("count_include_pad", 1)),
                ("count-include-pad-none", dict(count_include_pad=None), TypeError, shown("count_include_pad", None)),
                ("count-include-pad-str", dict(count_include_pad="yes"), TypeError, shown("count_include_pad", "yes")),
            ]
            for name, params, exception, pattern in cases:
                fn = (lambda family, dims, params: lambda backend: call(family, dims, backend=backend, **params))(family, dims, params)
                yield pytest.param(fn, exception, pattern, id=f"{family}{dims}d-{name}")
    for dims in DIMS:
        cases = [
            ("norm0", 0, ValueError, shown("norm_type", 0)),
            ("norm0.0", 0.0, ValueError, shown("norm_type", 0.0)),
            ("norm-nan", float("nan"), ValueError, shown("norm_type", float("nan"))),
            ("norm-bool", True, TypeError, shown("norm_type", True)),
            ("norm-str", "2", TypeError, shown("norm_type", "2")),
            ("norm-none", None, TypeError, shown("norm_type", None)),
            ("norm-complex", 2j, TypeError, shown("norm_type", 2j)),
        ]
        for name, norm_type, exception, pattern in cases:
            fn = (lambda dims, norm_type: lambda backend: call("lp_pool", dims, backend=backend, norm_type=norm_type))(dims, norm_type)
            yield pytest.param(fn, exception, pattern, id=f"lp_pool{dims}d-{name}")


def adaptive_cases():
    """adaptive pooling's output_size."""
    for family in ("adaptive_avg_pool", "adaptive_max_pool"):
        for dims in DIMS:
            cases = [
                ("negative", -1, ValueError, shown("output_size", -1)),
                ("negative-in-tuple", (2,) * (dims - 1) + (-1,), ValueError, shown("output_size", (2,) * (dims - 1) + (-1,))),
                ("too-long", (2,) * (dims + 1), ValueError, shown("output_size", (2,) * (dims + 1))),
                ("float", 2.5, TypeError, shown("output_size", 2.5)),
                ("bool", True, TypeError, shown("output_size", True)),
                ("str", "2", TypeError, shown("output_size", "2")),
                ("float-in-tuple", (2.0,) * dims, TypeError, r"\boutput_size=.*2\.0"),
            ]
            if dims > 1:
                cases.append(("too-short", (2,) * (dims - 1), ValueError, shown("output_size", (2,) * (dims - 1))))
            for name, output_size, exception, pattern in cases:
                fn = (lambda family, dims, output_size: lambda backend: call(family, dims, backend=backend, output_size=output_size))(
                    family, dims, output_size)
                yield pytest.param(fn, exception, pattern, id=f"{family}{dims}d-output_size-{name}")


def unpool_cases():
    """max_unpool: indices that do not fit, bad output_size, bad geometry."""
    for dims in DIMS:
        y, where = function("max_pool", dims)(make_x(dims), 2, return_indices=True)
        plane = SIDE**dims

        def unpool(indices=where, y=y, dims=dims, kernel_size=2, **params):
            return lambda backend: function("max_unpool", dims)(y, indices, kernel_size, **params, backend=backend)

        too_long = (SIDE,) * dims + (SIDE,)
        cases = [
            ("index-too-large", unpool(np.full_like(where, plane + 100)), ValueError, mentions(r"\bindices\b", rf"\b{plane + 100}\b")),
            ("index-negative", unpool(np.full_like(where, -1)), ValueError, mentions(r"\bindices\b", r"-1\b")),
            ("index-one-past", unpool(np.where(where == where.max(), plane, where)), ValueError, mentions(r"\bindices\b", rf"\bindex {plane}\b")),
            ("indices-wrong-shape", unpool(where[..., :1]), ValueError, mentions(r"\bindices\b", re.escape(repr(where[..., :1].shape)))),
            ("indices-unbatched", unpool(where[0]), ValueError, mentions(r"\bindices\b", re.escape(repr(where[0].shape)))),
            ("indices-float", unpool(where.astype(np.float64)), TypeError, mentions(r"\bindices\b", "float64")),
            ("indices-bool", unpool(where > 0), TypeError, mentions(r"\bindices\b", "bool")),
            ("indices-list", unpool(where.tolist()), TypeError, mentions(r"\bindices\b", "list")),
            ("output-size-too-large", unpool(output_size=(2 * SIDE - 2,) * dims), ValueError, shown("output_size", (2 * SIDE - 2,) * dims)),
            ("output-size-too-small", unpool(output_size=(2,) * dims), ValueError, shown("output_size", (2,) * dims)),
            ("output-size-wrong-length", unpool(output_size=too_long), ValueError, shown("output_size", too_long)),
            ("output-size-float", unpool(output_size=(float(SIDE),) * dims), TypeError, r"\boutput_size=.*4\.0"),
            ("output-size-int", unpool(output_size=SIDE), (ValueError, TypeError), shown("output_size", SIDE)),
            ("kernel0", unpool(kernel_size=0), ValueError, shown("kernel_size", 0, dims)),
            ("kernel-1", unpool(kernel_size=-1), ValueError, shown("kernel_size", -1, dims)),
            ("kernel-float", unpool(kernel_size=2.5), TypeError, shown("kernel_size", 2.5)),
            ("kernel-too-long", unpool(kernel_size=(2,) * (dims + 1)), ValueError, shown("kernel_size", (2,) * (dims + 1))),
            ("stride0", unpool(stride=0), ValueError, shown("stride", 0, dims)),
            ("padding-1", unpool(padding=-1), ValueError, shown("padding", -1, dims)),
            ("x-complex", unpool(y=y.astype(np.complex64)), TypeError, x_with("complex64")),
        ]
        for name, fn, exception, pattern in cases:
            yield pytest.param(fn, exception, pattern, id=f"max_unpool{dims}d-{name}")


def backward_cases():
    """grad_output of the wrong shape, dtype or kind."""
    for family in ("max_pool_backward", "avg_pool_backward"):
        for dims in DIMS:
            good = (1, 1) + (SIDE // 2,) * dims
            wrong = {
                "grad-spatial": (1, 1) + (SIDE // 2,) * (dims - 1) + (SIDE // 2 + 1,),
                "grad-like-x": (1, 1) + (SIDE,) * dims,
                "grad-unbatched": good[1:],
                "grad-channels": (1, 2) + (SIDE // 2,) * dims,
                "grad-batch": (2, 1) + (SIDE // 2,) * dims,
            }
            cases = [(name, np.ones(shape), ValueError, mentions(r"\bgrad_output\b", re.escape(repr(shape)))) for name, shape in wrong.items()]
            cases += [
                ("grad-int", np.ones(good, np.int64), TypeError, mentions(r"\bgrad_output\b", "int64")),
                ("grad-bool", np.ones(good, bool), TypeError, mentions(r"\bgrad_output\b", "bool")),
                ("grad-complex", np.ones(good, np.complex128), TypeError, mentions(r"\bgrad_output\b", "complex128")),
                ("grad-list", np.ones(good).tolist(), TypeError, mentions(r"\bgrad_output\b", "list")),
            ]
            for name, grad, exception, pattern in cases:
                fn = (lambda family, dims, grad: lambda backend: call(family, dims, backend=backend, grad_output=grad))(family, dims, grad)
                yield pytest.param(fn, exception, pattern, id=f"{family}{dims}d-{name}")


def pool_output_size_cases():
    cases = [
        ("size0", (0, 2), {}, ValueError, shown("size", 0)),
        ("size-1", (-1, 2), {}, ValueError, shown("size", -1)),
        ("size0-in-tuple", ((4, 0), 2), {}, ValueError, shown("size", (4, 0))),
        ("size-float", (4.0, 2), {}, TypeError, shown("size", 4.0)),
        ("size-bool", (True, 2), {}, TypeError, shown("size", True)),
        ("size-str", ("4", 2), {}, TypeError, shown("size", "4")),
        ("kernel0", (4, 0), {}, ValueError, shown("kernel_size", 0, 1)),
        ("kernel-1", ((4, 4), -1), {}, ValueError, shown("kernel_size", -1, 2)),
        ("kernel-too-long", ((4, 4), (2, 2, 2)), {}, ValueError, shown("kernel_size", (2, 2, 2))),
        ("kernel-float", (4, 2.5), {}, TypeError, shown("kernel_size", 2.5)),
        ("kernel-bool", (4, True), {}, TypeError, shown("kernel_size", True)),
        ("output-empty", (4, 5), {}, ValueError, shown("kernel_size", 5, 1)),
        ("stride0", (4, 2), dict(stride=0), ValueError, shown("stride", 0, 1)),
        ("stride-1", ((4, 4), 2), dict(stride=(1, -1)), ValueError, shown("stride", (1, -1))),
        ("padding-1", (4, 2), dict(padding=-1), ValueError, shown("padding", -1, 1)),
        ("padding-over-half", (4, 3), dict(padding=2), ValueError, shown("padding", 2, 1)),
        ("dilation0", (4, 2), dict(dilation=0), ValueError, shown("dilation", 0, 1)),
        ("dilation-empties-output", (4, 2), dict(dilation=4), ValueError, shown("dilation", 4, 1)),
        ("ceil-int", (4, 2), dict(ceil_mode=1), TypeError, shown("ceil_mode", 1)),
    ]
    for name, args, params, exception, pattern in cases:
        fn = (lambda args, params: lambda backend: poolkit.pool_output_size(*args, **params))(args, params)
        yield pytest.param(fn, exception, pattern, id=f"pool_output_size-{name}")


def mxnet_cases():
    """mxnet_pooling's own parameters (the messages about ``data`` are checked in test_bug_mxnet_messages_name_data)."""
    x2 = make_x(2)  # (1, 1, 4, 4)

    def mx(data=x2, **params):
        params.setdefault("kernel", (2, 2))
        return lambda backend: poolkit.mxnet_pooling(data, **params, backend=backend)

    cases = [
        ("pool-type", mx(pool_type="median"), ValueError, shown("pool_type", "median")),
        ("pool-type-case", mx(pool_type="MAX"), ValueError, shown("pool_type", "MAX")),
        ("convention", mx(pooling_convention="same"), ValueError, shown("pooling_convention", "same")),
        ("p-value-4", mx(pool_type="lp", p_value=4), ValueError, shown("p_value", 4)),
        ("p-value-0", mx(pool_type="lp", p_value=0), ValueError, shown("p_value", 0)),
        ("p-value-bool", mx(pool_type="lp", p_value=True), (ValueError, TypeError), shown("p_value", True)),
        ("p-value-str", mx(pool_type="lp", p_value="2"), (ValueError, TypeError), shown("p_value", "2")),
        ("kernel-exceeds", mx(kernel=(5, 5)), ValueError, shown("kernel", (5, 5))),
        ("kernel-exceeds-one-axis", mx(kernel=(2, 5)), ValueError, shown("kernel", (2, 5))),
        ("kernel-exceeds-padded", mx(kernel=(7, 7), pad=(1, 1)), ValueError, shown("kernel", (7, 7))),
        ("kernel-exceeds-full", mx(kernel=(5, 5), pooling_convention="full"), ValueError, shown("kernel", (5, 5))),
        ("kernel0", mx(kernel=(0, 2)), ValueError, shown("kernel", (0, 2))),
        ("kernel-int", mx(kernel=2), TypeError, shown("kernel", 2)),
        ("kernel-none", mx(kernel=None), TypeError, shown("kernel", None)),
        ("kernel-float", mx(kernel=(2.5, 2)), TypeError, shown("kernel", (2.5, 2))),
        ("kernel-empty", mx(kernel=()), ValueError, shown("kernel", ())),
        ("kernel-4d", mx(kernel=(2, 2, 2, 2)), ValueError, shown("kernel", (2, 2, 2, 2))),
        ("stride0", mx(stride=(0, 1)), ValueError, shown("stride", (0, 1))),
        ("stride-wrong-length", mx(stride=(1, 1, 1)), ValueError, shown("stride", (1, 1, 1))),
        ("pad-1", mx(pad=(-1, 0)), ValueError, shown("pad", (-1, 0))),
        ("pad-float", mx(pad=(0.5, 0)), TypeError, shown("pad", (0.5, 0))),
        ("count-include-pad", mx(pool_type="avg", count_include_pad=1), TypeError, shown("count_include_pad", 1)),
        ("global-pool", mx(global_pool=1), TypeError, shown("global_pool", 1)),
        ("layout", mx(layout="NCW"), ValueError, shown("layout", "NCW")),
        ("layout-lowercase", mx(layout="nchw"), ValueError, shown("layout", "nchw")),
        ("backend", lambda backend: poolkit.mxnet_pooling(x2, (2, 2), backend="bogus"), ValueError, shown("backend", "bogus")),
        ("unbatched", mx(x2[0]), ValueError, re.escape(repr(x2[0].shape))),
        ("unbatched-1d", mx(x2[0, 0], kernel=(2,)), ValueError, re.escape(repr(x2[0, 0].shape))),
        ("unbatched-global", mx(x2[0, 0], kernel=None, global_pool=True), ValueError, re.escape(repr(x2[0, 0].shape))),
        ("empty-channels", mx(x2[:, :0]), ValueError, re.escape(repr(x2[:, :0].shape))),
        ("empty-spatial", mx(x2[..., :0]), ValueError, re.escape(repr(x2[..., :0].shape))),
        ("int", mx(x2.astype(np.int64)), TypeError, "int64"),
        ("bool", mx(x2 > 0), TypeError, "bool"),
        ("torch-int", mx(torch.ones((1, 1, 4, 4), dtype=torch.int32)), TypeError, "int32"),
        ("list", mx(x2.tolist()), TypeError, "list"),
    ]
    for name, fn, exception, pattern in cases:
        yield pytest.param(fn, exception, pattern, id=f"mxnet_pooling-{name}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, exception, pattern", list(geometry_cases()))
def test_bad_window_parameters(fn, exception, pattern, backend):
    check(fn, backend, exception, pattern)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, exception, pattern", list(input_cases()))
def test_bad_input(fn, exception, pattern, backend):
    check(fn, backend, exception, pattern)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, exception, pattern", list(average_cases()) + list(adaptive_cases()))
def test_bad_average_and_adaptive_parameters(fn, exception, pattern, backend):
    check(fn, backend, exception, pattern)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, exception, pattern", list(unpool_cases()) + list(backward_cases()))
def test_bad_unpool_and_backward_arguments(fn, exception, pattern, backend):
    check(fn, backend, exception, pattern)


@pytest.mark.parametrize("fn, exception, pattern", list(pool_output_size_cases()))
def test_bad_pool_output_size_arguments(fn, exception, pattern):
    check(fn, None, exception, pattern)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn, exception, pattern", list(mxnet_cases()))
def test_bad_mxnet_pooling_arguments(fn, exception, pattern, backend):
    check(fn, backend, exception, pattern)


@pytest.mark.parametrize("family", ["avg_pool", "sum_pool", "lp_pool", "avg_pool_backward"])
@pytest.mark.parametrize(
    "shape, kernel_size, padding", [((1, 1, 1, 4, 4), 2, 1), ((1, 2, 4, 3), (1, 1, 4), (0, 0, 2)), ((1, 1, 2, 4, 4), 3, 1)]
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_3d_average_pooling_needs_the_unpadded_input_to_fit_the_kernel(family, shape, kernel_size, padding, backend):
    """PyTorch's extra rule for avg_pool3d (and lp_pool3d, built on it): input >= kernel before padding.

    Max pooling has no such rule: the same window is fine for max_pool3d.
    """
    x = torch.rand(shape, dtype=torch.float64)
    params = dict(kernel_size=kernel_size) if family == "lp_pool" else dict(kernel_size=kernel_size, padding=padding)
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.lp_pool3d(x, 2.0, **params) if family == "lp_pool" else F.avg_pool3d(x, **params)
    expanded = kernel_size if isinstance(kernel_size, tuple) else (kernel_size,) * 3
    with pytest.raises(ValueError, match=shown("kernel_size", expanded)):
        call(family, 3, x.numpy(), backend=backend, **params)
    expected = F.max_pool3d(x, kernel_size, padding=padding)
    assert function("max_pool", 3)(x.numpy(), kernel_size, padding=padding, backend=backend).shape == tuple(expected.shape)


# --- 2. acceptance parity with PyTorch (hypothesis) -------------------------


# Values for each parameter, mostly valid, with the invalid ones (and kernels
# larger than the input) among them; repeats make a value likelier.
KERNELS = (1, 2, 2, 3, 3, 4, 5, 0, -1)
STRIDES = (1, 1, 2, 2, 3, 4, 0, -1)
PADDINGS = (0, 0, 0, 1, 1, 2, 3, -1)
DILATIONS = (1, 1, 1, 2, 2, 3, 0, -1)


@st.composite
def geometry(draw, values, dims):
    """An int, or a tuple/list of 1 or dims of ``values`` -- or of a wrong length."""
    kind = draw(st.sampled_from(["int", "int", "int", "one", "dims", "dims", "dims", "wrong"]))
    if kind == "int":
        return draw(st.sampled_from(values))
    length = {"one": 1, "dims": dims}.get(kind)
    if length is None:
        length = draw(st.sampled_from([0, dims + 1] if dims > 1 else [0, 2]))
    sequence = draw(st.lists(st.sampled_from(values), min_size=length, max_size=length))
    return tuple(sequence) if draw(st.booleans()) else sequence


@st.composite
def pooling_case(draw, family, dims):
    """A small float32 input (sometimes empty, batched or not) and parameters that include invalid ones."""
    batch = draw(st.sampled_from([(), (), (1,), (2,), (0,)]))
    channels = draw(st.sampled_from([1, 1, 2, 2, 0]))
    spatial = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 3, 4, 4, 5, 5, 6, 0]), min_size=dims, max_size=dims)))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal(batch + (channels,) + spatial).astype(np.float32)
    params = dict(kernel_size=draw(geometry(KERNELS, dims)))
    if draw(st.booleans()):
        params["stride"] = None if draw(st.integers(0, 4)) == 0 else draw(geometry(STRIDES, dims))
    if draw(st.booleans()):
        params["padding"] = draw(geometry(PADDINGS, dims))
    if draw(st.booleans()):
        params["ceil_mode"] = draw(st.booleans())
    if family == "max" and draw(st.booleans()):
        params["dilation"] = draw(geometry(DILATIONS, dims))
    if family == "avg":
        if draw(st.booleans()):
            params["count_include_pad"] = draw(st.booleans())
        if dims > 1 and draw(st.integers(0, 3)) == 0:  # F.avg_pool1d has no divisor_override
            params["divisor_override"] = draw(st.sampled_from([1, 2, 3, -1, 0]))
    return x, params


def run_torch(family, dims, x, params):
    try:
        return getattr(F, f"{family}_pool{dims}d")(torch.from_numpy(x.copy()), **params), None
    except Exception as error:  # PyTorch raises RuntimeError, ValueError, TypeError or IndexError
        return None, error


PARAMETER_NAMES = re.compile(r"\b(x|kernel_size|stride|padding|dilation|ceil_mode|count_include_pad|divisor_override)\b")


@pytest.mark.parametrize("family", ["max", "avg"])
@pytest.mark.parametrize("dims", DIMS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_accepts_and_rejects_exactly_what_torch_does(family, dims, data):
    """torch raises <=> poolkit raises (ValueError or TypeError only); else same shape and values.

    max also checks min_pool (min = -max(-x)), avg also checks sum_pool (same
    windows, no divisor, so divisor parameters are left out for it). Both
    backends run on tiny inputs, "numpy" (or "auto") always.
    """
    x, params = data.draw(pooling_case(family, dims), label="x, params")
    variant = data.draw(st.sampled_from([family, "min" if family == "max" else "sum"]), label="variant")
    if variant == "sum":
        params = {k: v for k, v in params.items() if k not in ("count_include_pad", "divisor_override")}
    expected, torch_error = run_torch(family, dims, x, params)
    event("torch rejects" if torch_error else "torch accepts")
    if variant == "min" and torch_error is None:
        expected = -run_torch("max", dims, -x, params)[0]
    as_tensor = data.draw(st.booleans(), label="pass a torch tensor")
    backends = [data.draw(st.sampled_from(["numpy", "auto"]), label="backend")] + (["naive"] if x.size <= 48 else [])
    for backend in backends:
        given_x = torch.from_numpy(x.copy()) if as_tensor else x.copy()
        try:
            result = getattr(poolkit, f"{variant}_pool{dims}d")(given_x, **params, backend=backend)
        except (ValueError, TypeError) as error:
            assert torch_error is not None, f"poolkit ({backend}) rejects what torch accepts: {error}"
            assert PARAMETER_NAMES.search(str(error)), f"the message names no parameter: {error}"
            continue
        assert torch_error is None, f"poolkit ({backend}) accepts what torch rejects: {torch_error!r}"
        result = result.numpy() if as_tensor else result
        assert result.shape == tuple(expected.shape)
        if variant == "sum":
            continue
        if variant == "avg":
            np.testing.assert_allclose(result, expected.numpy(), rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(result, expected.numpy())


# --- 3. the input is never modified ----------------------------------------


def operations(dims):
    """(name, arrays, run): the NumPy arguments an operation reads, and how to call it on them."""
    x = np.random.default_rng(dims).standard_normal((2, 3) + (5,) * dims)
    x.flat[::7] = np.nan
    x.flat[1::11] = -np.inf
    pooled_shape = x.shape[:2] + (3,) * dims  # kernel 3, stride 2, padding 1 on side 5
    y, where = function("max_pool", dims)(x, 2, return_indices=True)
    grad = np.random.default_rng(0).standard_normal(pooled_shape)
    window = dict(kernel_size=3, stride=2, padding=1)
    ops = [
        ("max_pool", [x], lambda x, b: function("max_pool", dims)(x, **window, ceil_mode=True, backend=b)),
        ("max_pool-indices", [x], lambda x, b: function("max_pool", dims)(x, **window, dilation=2, return_indices=True, backend=b)),
        ("min_pool-indices", [x], lambda x, b: function("min_pool", dims)(x, **window, return_indices=True, backend=b)),
        ("avg_pool", [x], lambda x, b: function("avg_pool", dims)(x, **window, count_include_pad=False, backend=b)),
        ("sum_pool", [x], lambda x, b: function("sum_pool", dims)(x, **window, backend=b)),
        ("lp_pool", [x], lambda x, b: function("lp_pool", dims)(x, 2.0, 2, ceil_mode=True, backend=b)),
        ("adaptive_avg_pool", [x], lambda x, b: function("adaptive_avg_pool", dims)(x, 3, backend=b)),
        ("adaptive_max_pool-indices", [x], lambda x, b: function("adaptive_max_pool", dims)(x, 3, True, backend=b)),
        ("global_avg_pool", [x], lambda x, b: function("global_avg_pool", dims)(x, backend=b)),
        ("global_max_pool", [x], lambda x, b: function("global_max_pool", dims)(x, backend=b)),
        ("max_unpool", [y, where], lambda y, i, b: function("max_unpool", dims)(y, i, 2, output_size=x.shape[2:], backend=b)),
        ("max_pool_backward", [grad, x], lambda g, x, b: function("max_pool_backward", dims)(g, x, **window, backend=b)),
        ("avg_pool_backward", [grad, x], lambda g, x, b: function("avg_pool_backward", dims)(g, x, **window, divisor_override=2, backend=b)),
        ("mxnet_pooling-max", [x], lambda x, b: poolkit.mxnet_pooling(x, (3,) * dims, "max", pad=(1,) * dims, backend=b)),
        ("mxnet_pooling-avg-full", [x], lambda x, b: poolkit.mxnet_pooling(x, (3,) * dims, "avg", (2,) * dims, pooling_convention="full", backend=b)),
        ("mxnet_pooling-lp", [x], lambda x, b: poolkit.mxnet_pooling(x, (2,) * dims, "lp", p_value=3, backend=b)),
    ]
    return [pytest.param(arrays, run, id=f"{name}-{dims}d") for name, arrays, run in ops]


def results_of(out):
    return out if isinstance(out, tuple) else (out,)


def as_numpy(a):
    return a.detach().numpy() if isinstance(a, torch.Tensor) else a


@pytest.mark.parametrize("kind", ["numpy", "numpy-channels-last-view", "numpy-strided-view", "torch", "torch-requires-grad"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arrays, run", [p for dims in DIMS for p in operations(dims)])
def test_input_is_never_modified(arrays, run, backend, kind):
    if kind == "numpy-channels-last-view":
        # The same values seen through a channels-last view (NCHW data, non-contiguous).
        arrays = [np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1) for a in arrays]
    elif kind == "numpy-strided-view":
        arrays = [np.repeat(a, 2, axis=-1)[..., ::2] for a in arrays]
    elif kind.startswith("torch"):
        arrays = [torch.from_numpy(a.copy()) for a in arrays]
        if kind == "torch-requires-grad":
            arrays = [a.requires_grad_() if a.is_floating_point() else a for a in arrays]
    before = [as_numpy(a).copy() for a in arrays]
    out = run(*arrays, backend)
    for a, old in zip(arrays, before):
        now = as_numpy(a)
        assert now.dtype == old.dtype and now.shape == old.shape
        np.testing.assert_array_equal(now, old)  # NaN compares equal to NaN here
        for result in results_of(out):
            assert not np.may_share_memory(as_numpy(result), now), "a result shares memory with the input"
    if kind.startswith("torch"):
        assert all(isinstance(result, torch.Tensor) for result in results_of(out))


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_is_unchanged_after_an_error(backend):
    """A call that fails part-way (bad indices, bad grad_output) leaves its arrays alone too."""
    x = make_x(2)
    y, where = poolkit.max_pool2d(x, 2, return_indices=True)
    bad = where.copy()
    bad[0, 0, 0, 0] = 99
    saved = (x.copy(), y.copy(), bad.copy())
    with pytest.raises(ValueError):
        poolkit.max_unpool2d(y, bad, 2, backend=backend)
    with pytest.raises(ValueError):
        poolkit.max_pool2d_backward(np.ones((1, 1, 3, 2)), x, 2, backend=backend)
    for now, old in zip((x, y, bad), saved):
        np.testing.assert_array_equal(now, old)


# --- disagreements with PyTorch found by the tests above, kept as regressions --


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", DIMS)
def test_regression_empty_batch_max_unpool_and_max_pool_backward(dims, backend):
    """An empty batch once crashed the numpy backend with "cannot reshape array of size 0".

    PyTorch accepts an empty batch here: F.max_unpool2d(empty (0,1,2,2), indices, 2)
    has shape (0, 1, 4, 4), and so does the gradient of max_pool2d on a (0, 1, 4, 4) input.
    """
    x = torch.rand((0, 1) + (SIDE,) * dims, requires_grad=True)
    y, where = getattr(F, f"max_pool{dims}d")(x, 2, return_indices=True)
    expected = getattr(F, f"max_unpool{dims}d")(y, where, 2)
    y.sum().backward()
    assert expected.shape == x.grad.shape == x.shape
    unpooled = function("max_unpool", dims)(y.detach().numpy(), where.numpy(), 2, backend=backend)
    assert unpooled.shape == tuple(expected.shape)
    grad = function("max_pool_backward", dims)(np.ones(y.shape, np.float32), x.detach().numpy(), 2, backend=backend)
    assert grad.shape == tuple(x.shape)


def test_regression_pool_output_size_of_an_empty_size_tuple():
    """pool_output_size((), 2) once crashed with ZeroDivisionError instead of naming size."""
    with pytest.raises(ValueError, match=shown("size", ())):
        poolkit.pool_output_size((), 2)


ADAPTIVE_EMPTY_CHANNELS = [
    pytest.param(family, dims, shape, id=f"{family}{dims}d-{shape}")
    for dims in DIMS
    for family in ("adaptive_avg_pool", "adaptive_max_pool")
    for shape in [(0,) + (SIDE,) * dims, (1, 0) + (SIDE,) * dims, (0, 0) + (SIDE,) * dims]
    if len(shape) == dims + 1 or (family == "adaptive_avg_pool" and dims < 3)
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family, dims, shape", ADAPTIVE_EMPTY_CHANNELS)
def test_regression_adaptive_pooling_accepts_empty_channels_like_torch(family, dims, shape, backend):
    """PyTorch's adaptive pooling accepts zero channels (poolkit once said
    "only the batch dimension of x may be empty"): unbatched (0, L...) for avg and
    max in 1-3 D, batched (N, 0, L...) for adaptive_avg_pool1d/2d (not 3d, not max).
    """
    x = torch.rand(shape)
    expected = getattr(F, f"{family}{dims}d")(x, 2)
    assert expected.numel() == 0
    result = function(family, dims)(x.numpy(), 2, backend=backend)
    assert result.shape == tuple(expected.shape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output_size", [2**63, (2, 2**63)])
def test_regression_adaptive_output_size_beyond_int64_is_not_an_empty_result(output_size, backend):
    """output_size 2**63 once gave an empty result (np.arange(2**63) is empty on
    NumPy 1.23); PyTorch raises "Overflow when unpacking long long"."""
    x = make_x(2)
    with pytest.raises((ValueError, TypeError), match="Overflow"):
        F.adaptive_avg_pool2d(torch.from_numpy(x), output_size)
    with pytest.raises((ValueError, TypeError), match=r"\boutput_size\b"):
        poolkit.adaptive_avg_pool2d(x, output_size, backend=backend)


@pytest.mark.parametrize(
    "data, kernel, exception",
    [
        pytest.param(make_x(2)[0], (2, 2), ValueError, id="unbatched"),
        pytest.param(make_x(2, dtype=np.int64), (2, 2), TypeError, id="integer"),
        pytest.param(make_x(2).tolist(), (2, 2), TypeError, id="list"),
        pytest.param(make_x(2)[:, :0], (2, 2), ValueError, id="empty-channels"),
    ],
)
def test_regression_mxnet_messages_name_data(data, kernel, exception):
    """mxnet_pooling's input parameter is ``data``, and its messages must say so."""
    with pytest.raises(exception, match=r"\bdata\b"):
        poolkit.mxnet_pooling(data, kernel)


@pytest.mark.parametrize("dims", DIMS)
def test_regression_max_unpool_empty_output_message_names_the_parameters(dims):
    """Padding 3 with kernel 2 on a side-2 input empties the output; the message names the parameters."""
    y, where = function("max_pool", dims)(make_x(dims), 2, return_indices=True)
    with pytest.raises(ValueError, match=shown("padding", 3, dims)):
        function("max_unpool", dims)(y, where, 2, 2, 3)
