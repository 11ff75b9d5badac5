"""The exercises' questions: for each test cell of ``solutions/`` (by its
nbgrader ``grade_id``), the student's function, the reference answer from
poolkit, the visible and hidden cases, and the mistakes worth recognising.

This is the one place the cases live: the notebooks' test cells call
:func:`poolkit.grader.check` with a key, and the instructor's grader re-runs
the same cases out of the student's process.

The visible cases are fixed (the release shows them). A question's hidden
cases are a function of a random generator: ``poolkit grade`` draws their
inputs from a seed it keeps for the run, and anywhere else (a student's own
run of a hidden check) they are drawn afresh, so no table of answers computed
in advance matches them.

A question's points are shared equally by its cases, so its number of cases
makes each share a binary fraction (points 3: 6 or 12 cases; 2 or 4: 4, 8 or
16): the visible and hidden parts then add up to exactly the points, never a
rounding error more, which nbgrader would refuse as a partial credit.
"""

import numpy as np

import poolkit
from poolkit.grader.checks import Case, Question
from poolkit.spec import mxnet_window

#: The visible cases' inputs: fixed, and shown to students with the release.
_rng = np.random.default_rng(20261121)


def _random(rng, *shape):
    return rng.standard_normal(shape)


# --- what a wrong output element depends on (shown with it) ---------------------


def _window(index, shape, pool_size, stride=None, padding=(0, 0)):
    """The region of an input of ``shape`` that the output element at ``index``
    pools: its leading indices, then the window on the last two axes (the padding
    cut off). The stride defaults to the window."""
    *lead, i, j = index
    stride = tuple(pool_size) if stride is None else tuple(stride)
    rows, cols = ((slice(max(o * s - p, 0), min(o * s - p + k, n))) for o, n, k, s, p in zip((i, j), shape[-2:], pool_size, stride, padding))
    return (*lead, rows, cols)


def _reads_window(index, X, pool_size, padding=(0, 0), stride=None, mode="max"):
    return [("X", X, _window(index, X.shape, pool_size, stride, padding))]


def _reads_unpadded(index, X, pool_size, stride=None, mode="max"):
    return [("X", X, _window(index, X.shape, pool_size, stride))]


def _reads_gradient(index, dY, X, pool_size, stride=None):
    """What an element of the input's gradient depends on: the windows that hold it,
    their part of dY and of X (or, in no window, the element itself)."""
    *lead, r, c = index
    stride = tuple(pool_size) if stride is None else tuple(stride)
    spans = []
    for e, k, s, out in zip((r, c), pool_size, stride, dY.shape[-2:]):
        first, last = max(-(-(e - k + 1) // s), 0), min(e // s, out - 1)  # the windows o with o*s <= e < o*s + k
        spans.append((first, last, s, k))
    if any(first > last for first, last, _, _ in spans):
        return [("X", X, tuple(index))]
    dy = tuple(slice(first, last + 1) for first, last, _, _ in spans)
    x = tuple(slice(first * s, last * s + k) for first, last, s, k in spans)
    return [("dY", dY, (*lead, *dy)), ("X", X, (*lead, *x))]


# --- pool2d: the lecture's loop (stride 1, no padding, one channel) ------------

_LECTURE_X = np.arange(9.0).reshape(3, 3)


def _lecture_pool2d(X, pool_size, mode="max", stride=None):
    pool = poolkit.max_pool2d if mode == "max" else poolkit.avg_pool2d
    return pool(X[None], tuple(pool_size), stride=stride or 1)[0]


def _pool2d_cases(mode):
    visible = (
        Case("the lecture's X = 0..8 as 3x3, 2x2 window", (_LECTURE_X, (2, 2), mode)),
        Case("a 4x5 input, 2x3 window", (_random(_rng, 4, 5), (2, 3), mode)),
        Case("a 3x3 input, 1x1 window", (_random(_rng, 3, 3), (1, 1), mode)),
    )

    def hidden(rng):
        return (
            Case("a 6x7 random input, 3x2 window", (_random(rng, 6, 7), (3, 2), mode)),
            Case("a 5x5 input, 5x5 window (one output)", (_random(rng, 5, 5), (5, 5), mode)),
            Case("a 1x8 input, 1x3 window", (_random(rng, 1, 8), (1, 3), mode)),
        )

    return visible, hidden


def _pool2d_question(mode, other):
    visible, hidden = _pool2d_cases(mode)
    return Question(
        key=f"pool2d_{mode}",
        function="pool2d",
        points=3,
        reference=_lecture_pool2d,
        visible=visible,
        hidden=hidden,
        # The off-by-one first: on the lecture's 3x3 input a window that moves by its
        # own size gives the same single output, and a loop one short is likelier.
        mistakes={
            "the loop stops one window short: n - p + 1 windows fit along an axis of n elements, not n - p": lambda X, p, mode: _lecture_pool2d(X, p, mode)[:-1, :-1],
            "the window moves by its own size; in this exercise it moves by one element (stride 1)": lambda X, p, mode: _lecture_pool2d(X, p, mode, stride=tuple(p)),
            f"computing {other} pooling where mode={mode!r} asks for {mode}": lambda X, p, mode: _lecture_pool2d(X, p, other),
        },
        reads=lambda index, X, p, mode: [("X", X, _window(index, X.shape, p, (1, 1)))],
    )


# --- shared by the later exercises: pooling of the last two axes --------------


def _planes(function, arrays, *args, **kwargs):
    """poolkit's ``function`` on every (H, W) plane of ``arrays`` (any leading
    axes, none included), as NumPy: the leading axes become poolkit's channels."""
    planes = [array.reshape(-1, *array.shape[-2:]) for array in arrays]
    out = function(*planes, *args, backend="numpy", **kwargs)
    return out.reshape(*arrays[-1].shape[:-2], *out.shape[-2:])


def _pool(X, pool_size, padding=(0, 0), stride=None, mode="max", *, count_include_pad=True):
    """PyTorch's max or average pooling of the last two axes; the stride defaults to the window."""
    stride = tuple(pool_size) if stride is None else tuple(stride)
    if mode == "max":
        return _planes(poolkit.max_pool2d, (X,), tuple(pool_size), stride, tuple(padding))
    return _planes(poolkit.avg_pool2d, (X,), tuple(pool_size), stride, tuple(padding), count_include_pad=count_include_pad)


def _stride_one(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    return _pool(X, pool_size, padding, (1, 1) if stride is None else stride, mode)


def _no_padding(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    return _pool(X, pool_size, (0, 0), stride, mode)


def _zero_padded_max(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    if mode != "max":
        raise ValueError("a mistake of max pooling")
    widths = [(0, 0)] * (X.ndim - 2) + [(padding[0], padding[0]), (padding[1], padding[1])]
    return _pool(np.pad(X, widths), pool_size, (0, 0), pool_size if stride is None else stride, "max")


def _padding_not_counted(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    if mode != "avg":
        raise ValueError("a mistake of average pooling")
    return _pool(X, pool_size, padding, stride, "avg", count_include_pad=False)


def _width_first(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    return _pool(X, tuple(pool_size)[::-1], tuple(padding)[::-1], None if stride is None else tuple(stride)[::-1], mode)


def _other_mode(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    return _pool(X, pool_size, padding, stride, "avg" if mode == "max" else "max")


_POOL_MISTAKES = {
    "the stride defaults to 1; when stride is None it is the window's size (pool_size)": _stride_one,
    "the padding is ignored": _no_padding,
    "max pooling padded with zeros, which beat negative windows: pad with -inf, which never wins": _zero_padded_max,
    "the average divides by the elements inside the input; PyTorch's default (count_include_pad=True) counts the padded zeros too": _padding_not_counted,
    "pool_size, padding or stride read as (width, height); they are (height, width)": _width_first,
    "max and average pooling swapped (check mode)": _other_mode,
}

_X16 = np.arange(16.0).reshape(4, 4)  # the lecture's 0..15 of chapters 2 and 3


# --- padding-stride: the output size, and pooling with padding and stride -----


def _output_size(n, k, padding=0, stride=None, dilation=1):
    return poolkit.pool_output_size(n, k, stride=stride, padding=padding, dilation=dilation)


def _size_mistake(formula):
    """A wrong output-size formula of (n, k, p, s, d), with the stride defaulting to k."""
    return lambda n, k, padding=0, stride=None, dilation=1: formula(n, k, padding, k if stride is None else stride, dilation)


def _random_size_case(rng):
    k = int(rng.integers(1, 6))
    n, padding, stride, dilation = int(rng.integers(2 * k, 41)), int(rng.integers(0, k // 2 + 1)), int(rng.integers(1, 5)), int(rng.integers(1, 3))
    return Case(f"n={n}, k={k}, padding={padding}, stride={stride}, dilation={dilation}", (n, k), {"padding": padding, "stride": stride, "dilation": dilation})


_OUTPUT_SIZE = Question(
    key="output_size",
    function="output_size",
    points=2,
    reference=_output_size,
    visible=(
        Case("the lecture's n=4, k=3 (the stride defaults to 3)", (4, 3)),
        Case("the lecture's n=4, k=3, padding=1, stride=2", (4, 3), {"padding": 1, "stride": 2}),
        Case("n=4, k=2, stride=2", (4, 2), {"stride": 2}),
        Case("n=9, k=3, padding=1, stride=1, dilation=3", (9, 3), {"padding": 1, "stride": 1, "dilation": 3}),
    ),
    hidden=lambda rng: (
        Case("n=5, k=2, padding=1, stride=2 (rounds down)", (5, 2), {"padding": 1, "stride": 2}),
        Case("n=10, k=10: the window is the whole input", (10, 10)),
        Case("n=14, k=3, padding=1, stride=5, dilation=2", (14, 3), {"padding": 1, "stride": 5, "dilation": 2}),
        _random_size_case(rng),
    ),
    mistakes={
        "the stride defaults to 1; when stride is None it is the window's size k": lambda n, k, padding=0, stride=None, dilation=1: _output_size(n, k, padding, stride or 1, dilation),
        "'+1' where the formula has '-1': the window spans d(k-1) + 1 elements, all of them subtracted": _size_mistake(lambda n, k, p, s, d: (n + 2 * p - d * (k - 1) + 1) // s + 1),
        "rounding up; the output size rounds down (no ceil mode)": _size_mistake(lambda n, k, p, s, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1),
        "the padding counted once; it is added on both sides (2p)": _size_mistake(lambda n, k, p, s, d: (n + p - d * (k - 1) - 1) // s + 1),
        "the dilation is ignored: a dilated window spans d(k-1) + 1 elements": _size_mistake(lambda n, k, p, s, d: (n + 2 * p - k) // s + 1),
        "the final +1 is missing: it counts the first window": _size_mistake(lambda n, k, p, s, d: (n + 2 * p - d * (k - 1) - 1) // s),
    },
    forbid_pooling=False,  # a formula: no pooling to forbid
)


def _padded_question(mode):
    def case(label, X, pool_size, **kwargs):
        return Case(label, (X, pool_size), {**kwargs, "mode": mode})

    return Question(
        key=f"pool2d_padded_{mode}",
        function="pool2d",
        points=3,
        reference=_pool,
        visible=(
            case("the lecture's 0..15 as 4x4, 3x3 window (the stride defaults to 3)", _X16, (3, 3)),
            case("the lecture's 0..15, 3x3 window, padding (1, 1), stride (2, 2)", _X16, (3, 3), padding=(1, 1), stride=(2, 2)),
            case("the lecture's 0..15, (2, 3) window, padding (0, 1), stride (2, 3)", _X16, (2, 3), padding=(0, 1), stride=(2, 3)),
            case("a random negative 5x6 input, 3x3 window, padding (1, 1), stride (2, 2)", -np.abs(_random(_rng, 5, 6)), (3, 3), padding=(1, 1), stride=(2, 2)),
        ),
        hidden=lambda rng: (
            case("a random 7x9 input, 3x3 window, padding (1, 1), stride (2, 2)", _random(rng, 7, 9), (3, 3), padding=(1, 1), stride=(2, 2)),
            case("a random 6x6 input, 6x6 window", _random(rng, 6, 6), (6, 6)),
            case("a negative 5x5 input, 2x2 window, padding (1, 1)", -np.abs(_random(rng, 5, 5)) - 1, (2, 2), padding=(1, 1)),
            case("a random 8x5 input, (4, 2) window, padding (2, 1), stride (3, 1)", _random(rng, 8, 5), (4, 2), padding=(2, 1), stride=(3, 1)),
            case("a random 9x9 input, 2x2 window, stride (4, 3)", _random(rng, 9, 9), (2, 2), stride=(4, 3)),
            case("small integers (ties), 3x3 window, padding (1, 1), stride (1, 1)", rng.integers(0, 3, (4, 5)).astype(float), (3, 3), padding=(1, 1), stride=(1, 1)),
            case("a random 1x7 input, (1, 3) window, padding (0, 1), stride (1, 2)", _random(rng, 1, 7), (1, 3), padding=(0, 1), stride=(1, 2)),
            case("a random 5x4 input, (5, 2) window, padding (2, 0), stride (1, 2)", _random(rng, 5, 4), (5, 2), padding=(2, 0), stride=(1, 2)),
        ),
        mistakes=_POOL_MISTAKES,
        reads=_reads_window,
    )


# --- channels: every channel (and every example) pooled on its own -------------


def _first_channel_everywhere(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    out = _pool(X[..., :1, :, :], pool_size, padding, stride, mode)
    return np.broadcast_to(out, X.shape[:-2] + out.shape[-2:])


def _channels_together(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    out = _pool(X, pool_size, padding, stride, mode)
    across = out.max(axis=-3, keepdims=True) if mode == "max" else out.mean(axis=-3, keepdims=True)
    return np.broadcast_to(across, out.shape)


def _first_example_everywhere(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    if X.ndim != 4:
        raise ValueError("a mistake of batched input")
    out = _pool(X[:1], pool_size, padding, stride, mode)
    return np.broadcast_to(out, X.shape[:2] + out.shape[-2:])


_CHANNEL_MISTAKES = {
    "every channel got the first channel's result: pool X[..., c, :, :] for each channel c": _first_channel_everywhere,
    "the channels were pooled together; each channel is pooled on its own": _channels_together,
    "every example got the first example's result: pool X[n] for each example n": _first_example_everywhere,
    **_POOL_MISTAKES,
}

_X_AND_X1 = np.stack([_X16, _X16 + 1])  # the lecture's two channels


def _spread(rng, C, H, W):
    """Random channels whose values lie far apart (channel c around 10 c), so a mixed-up channel shows."""
    return _random(rng, C, H, W) + 10.0 * np.arange(C)[:, None, None]


def _channels_question(key, visible, hidden):
    return Question(key=key, function="pool2d_multi", points=3, reference=_pool, visible=visible, hidden=hidden, mistakes=_CHANNEL_MISTAKES, reads=_reads_window)


_CHANNELS_CHW = _channels_question(
    "channels_chw",
    visible=(
        Case("the lecture's X and X + 1 as two channels, 3x3 max, padding (1, 1), stride (2, 2)", (_X_AND_X1, (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("3 random channels of 4x6, 2x2 average", (_spread(_rng, 3, 4, 6), (2, 2)), {"mode": "avg"}),
        Case("1 random channel of 5x5, (2, 3) max, stride (1, 1)", (_random(_rng, 1, 5, 5), (2, 3)), {"stride": (1, 1)}),
    ),
    hidden=lambda rng: (
        Case("4 random channels of 7x9, 3x3 max, padding (1, 1), stride (2, 2)", (_spread(rng, 4, 7, 9), (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("3 random channels of 6x6, 6x6 average: one output each", (_spread(rng, 3, 6, 6), (6, 6)), {"mode": "avg"}),
        Case("2 random channels of 5x5, 3x3 average, padding (1, 1), stride (1, 1)", (_spread(rng, 2, 5, 5), (3, 3)), {"padding": (1, 1), "stride": (1, 1), "mode": "avg"}),
    ),
)

_CHANNELS_NCHW = _channels_question(
    "channels_nchw",
    visible=(
        Case("the lecture's X and X + 1 as a batch of 1 with 2 channels, 3x3 max, padding (1, 1), stride (2, 2)", (_X_AND_X1[None], (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a random (2, 3, 4, 4) input, 2x2 average", (np.stack([_spread(_rng, 3, 4, 4), _spread(_rng, 3, 4, 4) + 50]), (2, 2)), {"mode": "avg"}),
    ),
    hidden=lambda rng: (
        Case("a random (3, 2, 7, 5) input, (3, 2) max, padding (1, 1), stride (2, 1)", (np.stack([_spread(rng, 2, 7, 5) + 50 * n for n in range(3)]), (3, 2)), {"padding": (1, 1), "stride": (2, 1)}),
        Case("a random (2, 4, 6, 6) input, 3x3 average, padding (1, 1), stride (2, 2)", (np.stack([_spread(rng, 4, 6, 6) + 50 * n for n in range(2)]), (3, 3)), {"padding": (1, 1), "stride": (2, 2), "mode": "avg"}),
        Case("a random (2, 1, 5, 5) input, 5x5 max: one output each", (_random(rng, 2, 1, 5, 5), (5, 5))),
        Case("a (1, 3, 4, 4) input of small integers (ties), 2x2 max, stride (1, 1)", (rng.integers(0, 3, (1, 3, 4, 4)).astype(float), (2, 2)), {"stride": (1, 1)}),
    ),
)


# --- global-adaptive: global average pooling and adaptive bins -----------------


def _global_avg(X):
    return poolkit.global_avg_pool2d(X, backend="numpy")


def _adaptive_avg(X, output_size):
    return poolkit.adaptive_avg_pool2d(X, tuple(output_size), backend="numpy")


def _binned_avg(bins):
    """Average pooling over the (start, end) bins that ``bins(n, m)`` lists for each axis, as a student's loop does."""

    def pool(X, output_size):
        rows, cols = bins(X.shape[-2], output_size[0]), bins(X.shape[-1], output_size[1])
        if any(end <= start for start, end in rows + cols):
            raise ValueError("an empty bin")
        out = np.empty(X.shape[:-2] + tuple(output_size))
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                out[..., i, j] = X[..., r0:r1, c0:c1].mean(axis=(-2, -1))
        return out

    return pool


def _bins(index, sizes, output_size):
    """The adaptive bins of output ``index`` (two ints): floor(i*n/m) to ceil((i+1)*n/m) on each axis."""
    return tuple(slice(i * n // m, -(-(i + 1) * n // m)) for i, n, m in zip(index, sizes, output_size))


def _fixed_window_bins(n, m):
    stride = n // m
    return [(i * stride, i * stride + n - (m - 1) * stride) for i in range(m)]


_GLOBAL_AVG = Question(
    key="global_avg",
    function="global_avg_pool2d",
    points=2,
    reference=_global_avg,
    visible=(
        Case("the lecture's X and X + 1 as a batch of 1 with 2 channels", (_X_AND_X1[None],)),
        Case("a random (2, 3, 5, 5) input", (_random(_rng, 2, 3, 5, 5),)),
        Case("a random (1, 4, 3, 7) input", (_random(_rng, 1, 4, 3, 7),)),
    ),
    hidden=lambda rng: (
        Case("a random (3, 4, 7, 3) input", (_random(rng, 3, 4, 7, 3),)),
        Case("a random (2, 2, 1, 1) input: one pixel", (_random(rng, 2, 2, 1, 1),)),
        Case("a random (1, 3, 1, 9) input: one row", (_random(rng, 1, 3, 1, 9),)),
        Case("a random (4, 1, 6, 6) input", (_random(rng, 4, 1, 6, 6),)),
        Case("a random (2, 5, 2, 3) input", (_random(rng, 2, 5, 2, 3),)),
    ),
    mistakes={
        "the pooled axes were dropped: keep them, of size 1, for an (N, C, 1, 1) result": lambda X: X.mean(axis=(2, 3)),
        "the mean also ran over the channels; each channel has its own": lambda X: X.mean(axis=(1, 2, 3), keepdims=True),
        "the mean also ran over the batch; each example has its own": lambda X: X.mean(axis=(0, 2, 3), keepdims=True),
        "the sum, not the mean": lambda X: X.sum(axis=(2, 3), keepdims=True),
        "the maximum, not the mean": lambda X: X.max(axis=(2, 3), keepdims=True),
    },
    reads=lambda index, X: [("X", X, tuple(index[:2]))],
)

_ADAPTIVE_AVG = Question(
    key="adaptive_avg",
    function="adaptive_avg_pool2d",
    points=4,
    reference=_adaptive_avg,
    visible=(
        Case("the lecture's 7 cells into 4 bins, on both axes of 0..48 as 7x7", (np.arange(49.0).reshape(1, 1, 7, 7), (4, 4))),
        Case("a random (1, 2, 5, 5) input into (1, 1): global average pooling", (_random(_rng, 1, 2, 5, 5), (1, 1))),
        Case("a random (1, 1, 3, 4) input into (3, 4): every bin one cell", (_random(_rng, 1, 1, 3, 4), (3, 4))),
        Case("a random (2, 1, 6, 9) input into (3, 3): bins of 2 and 3 cells", (_random(_rng, 2, 1, 6, 9), (3, 3))),
    ),
    hidden=lambda rng: (
        Case("a random (2, 3, 7, 5) input into (4, 3)", (_random(rng, 2, 3, 7, 5), (4, 3))),
        Case("a random (1, 2, 3, 3) input into (5, 5): more bins than cells", (_random(rng, 1, 2, 3, 3), (5, 5))),
        Case("a random (1, 1, 10, 7) input into (3, 4)", (_random(rng, 1, 1, 10, 7), (3, 4))),
        Case("a random (2, 2, 12, 12) input into (5, 7)", (_random(rng, 2, 2, 12, 12), (5, 7))),
    ),
    mistakes={
        "bins [floor(i*n/m), floor((i+1)*n/m)) of equal width: a bin's end rounds up, ceil((i+1)*n/m)": _binned_avg(lambda n, m: [(i * n // m, (i + 1) * n // m) for i in range(m)]),
        "one window and stride for all bins (stride n // m, window n - (m-1) * stride); adaptive bins run from floor(i*n/m) to ceil((i+1)*n/m)": _binned_avg(_fixed_window_bins),
        "output_size read as (width, height); it is (height, width)": lambda X, output_size: _adaptive_avg(X, tuple(output_size)[::-1]),
        "the output is transposed (its last two axes swapped)": lambda X, output_size: _adaptive_avg(X, output_size).swapaxes(-2, -1),
    },
    reads=lambda index, X, output_size: [("X", X, (*index[:-2], *_bins(index[-2:], X.shape[-2:], output_size)))],
)


# --- vectorize: loops over the window's offsets only; the backward passes -------

#: The most lines of the student's Python a vectorize case may run. A loop over
#: the k*k window offsets (at most 16 here) runs a few lines per offset (the
#: solutions at most 107 lines a case); a loop over the outputs (at least 169 in
#: every case but the lectures' small ones) runs 500 lines or more.
_VECTOR_LINES = 200


def _vectorized(X, pool_size, stride=None, mode="max"):
    return _pool(X, pool_size, (0, 0), stride, mode)


def _max_backward(dY, X, pool_size, stride=None):
    return _planes(poolkit.max_pool2d_backward, (dY, X), tuple(pool_size), None if stride is None else tuple(stride))


def _avg_backward(dY, X, pool_size, stride=None):
    return _planes(poolkit.avg_pool2d_backward, (dY, X), tuple(pool_size), None if stride is None else tuple(stride))


def _window_loop_backward(pick, add=True):
    """The backward pass as a loop over every window, sending each output's
    gradient to the elements ``pick(window)`` marks, added (or written over)."""

    def backward(dY, X, pool_size, stride=None):
        (kh, kw), (sh, sw) = pool_size, pool_size if stride is None else stride
        x, g = X.reshape(-1, *X.shape[-2:]), dY.reshape(-1, *dY.shape[-2:])
        dX = np.zeros(x.shape)
        for p, i, j in np.ndindex(*g.shape):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            mask = pick(x[p, rows, cols])
            target = dX[p, rows, cols]
            if add:
                target += g[p, i, j] * mask
            else:
                target[mask > 0] = g[p, i, j] * mask[mask > 0]
        return dX.reshape(X.shape)

    return backward


def _first_max(window):
    mask = np.zeros(window.shape)
    mask[np.unravel_index(np.argmax(window), window.shape)] = 1
    return mask


def _last_max(window):
    mask = np.zeros(window.shape)
    mask[np.unravel_index(window.size - 1 - np.argmax(window.ravel()[::-1]), window.shape)] = 1
    return mask


def _backward_stride_one(backward):
    """``backward`` with the stride defaulting to 1, over as many windows as dY has outputs."""
    return lambda dY, X, pool_size, stride=None: backward(dY, X, pool_size, (1, 1) if stride is None else stride)


def _share(window):
    return np.full(window.shape, 1.0 / window.size)


def _gradient_case(rng, label, shape, pool_size, stride=None, X=None):
    """dY and X for a backward case: X random unless given, dY random of the output's shape."""
    X = _random(rng, *shape) if X is None else X
    out = poolkit.pool_output_size(X.shape[-2:], tuple(pool_size), stride=stride and tuple(stride))
    return Case(label, (_random(rng, *X.shape[:-2], *out), X, pool_size), {} if stride is None else {"stride": stride})


_X4 = np.array([[1, 3, 3, 0], [2, 0, 1, 3], [3, 1, 2, 2], [0, 3, 2, 1]], dtype=float)  # chapter 5's ties
_X3 = np.array([[0, 1, 2], [3, 9, 4], [5, 6, 7]], dtype=float)  # chapter 5's overlap: the middle wins 4 windows
_G4 = np.array([[1.0, 2.0], [3.0, 4.0]])


def _offset_overwrite(mode):
    """The backward pass as the exercise's loop over the window's offsets, but writing
    each offset's slice of dX with ``=``: where windows overlap, a later offset
    overwrites what an earlier one sent to the same element."""

    def backward(dY, X, pool_size, stride=None):
        (kh, kw), (sh, sw) = pool_size, pool_size if stride is None else stride
        oh, ow = dY.shape[-2:]
        dX, Y, taken = np.zeros(X.shape), _vectorized(X, pool_size, stride), np.zeros(dY.shape)
        for a in range(kh):
            for b in range(kw):
                tap = (..., slice(a, a + sh * (oh - 1) + 1, sh), slice(b, b + sw * (ow - 1) + 1, sw))
                if mode == "max":
                    hit = (X[tap] == Y) * (1 - taken)
                    dX[tap] = dY * hit
                    taken = taken + hit
                else:
                    dX[tap] = dY / (kh * kw)
        return dX

    return backward


def _vector_question(key, function, points, reference, visible, hidden, mistakes, timed, reads):
    return Question(
        key=key,
        function=function,
        points=points,
        reference=reference,
        visible=visible,
        hidden=hidden,
        mistakes=mistakes,
        line_budget=_VECTOR_LINES,
        timed=timed,
        time_budget=_VECTOR_SECONDS,
        reads=reads,
    )


#: The grader's own guard (the line count runs in the student's process, which can
#: stop it): a (2, 1536, 1536) input, 2x2 window, has 589,824 window positions. A
#: loop over the window's 4 offsets answers within a second, most of it spent
#: sending the arrays (0.3 to 0.6 s measured with two workers); a Python loop over
#: the positions, even one that pools every channel at once, takes 4.6 s or more
#: (8 microseconds a position on the course's 2-core machine).
_VECTOR_SECONDS = 2.5
_TIMED_SHAPE = (2, 1536, 1536)


_VECTORIZED = _vector_question(
    "vectorized_pool2d",
    "pool2d_vectorized",
    4,
    _vectorized,
    visible=(
        Case("chapter 5's 0..15 as 4x4, 2x2 max (stride 2)", (_X16, (2, 2))),
        Case("a random 40x40 input, 3x3 max, stride (2, 2)", (_random(_rng, 40, 40), (3, 3)), {"stride": (2, 2)}),
        Case("a random (2, 3, 30, 30) input, 2x2 average", (_random(_rng, 2, 3, 30, 30), (2, 2)), {"mode": "avg"}),
    ),
    hidden=lambda rng: (
        Case("a random 41x37 input, 3x3 average, stride (2, 2)", (_random(rng, 41, 37), (3, 3)), {"stride": (2, 2), "mode": "avg"}),
        Case("a random (2, 2, 64, 64) input, 4x4 max", (_random(rng, 2, 2, 64, 64), (4, 4))),
        Case("a random 50x50 input, 2x2 max, stride (3, 3)", (_random(rng, 50, 50), (2, 2)), {"stride": (3, 3)}),
        Case("a random 30x30 input, 3x3 average, stride (1, 1)", (_random(rng, 30, 30), (3, 3)), {"stride": (1, 1), "mode": "avg"}),
        Case("a random 45x60 input, (5, 3) max, stride (2, 3)", (_random(rng, 45, 60), (5, 3)), {"stride": (2, 3)}),
    ),
    timed=lambda rng: Case("a random (2, 1536, 1536) input, 2x2 max: 589,824 window positions", (_random(rng, *_TIMED_SHAPE), (2, 2))),
    mistakes={
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": lambda X, p, stride=None, mode="max": _vectorized(X, p, (1, 1) if stride is None else stride, mode),
        "max and average pooling swapped (check mode)": lambda X, p, stride=None, mode="max": _vectorized(X, p, stride, "avg" if mode == "max" else "max"),
        "one window short along each axis: (n - k) // s + 1 windows fit along an axis of n elements": lambda X, p, stride=None, mode="max": _vectorized(X, p, stride, mode)[..., :-1, :-1],
        "pool_size or stride read as (width, height); they are (height, width)": lambda X, p, stride=None, mode="max": _vectorized(X, tuple(p)[::-1], None if stride is None else tuple(stride)[::-1], mode),
    },
    reads=_reads_unpadded,
)

#: The padded question's own fixed inputs: drawing them from _rng would change every later question's.
_padded_rng = np.random.default_rng(20261201)

_VECTORIZED_PADDED = _vector_question(
    "vectorized_padded",
    "pool2d_padded_vectorized",
    3,
    _pool,
    visible=(
        Case("chapter 2's 0..15 as 4x4, 3x3 max, padding (1, 1), stride (2, 2)", (_X16, (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a random negative 40x40 input, 3x3 max, padding (1, 1), stride (2, 2)", (-np.abs(_random(_padded_rng, 40, 40)) - 1, (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a random (2, 3, 30, 30) input, 2x2 average, padding (1, 1)", (_random(_padded_rng, 2, 3, 30, 30), (2, 2)), {"padding": (1, 1), "mode": "avg"}),
    ),
    hidden=lambda rng: (
        Case("a random 41x37 input, 3x3 average, padding (1, 1), stride (1, 1)", (_random(rng, 41, 37), (3, 3)), {"padding": (1, 1), "stride": (1, 1), "mode": "avg"}),
        Case("a random negative (2, 2, 64, 64) input, 4x4 max, padding (2, 2)", (-np.abs(_random(rng, 2, 2, 64, 64)) - 1, (4, 4)), {"padding": (2, 2)}),
        Case("a random 45x60 input, (5, 3) average, padding (2, 1), stride (2, 3)", (_random(rng, 45, 60), (5, 3)), {"padding": (2, 1), "stride": (2, 3), "mode": "avg"}),
    ),
    timed=lambda rng: Case("a random (2, 1536, 1536) input, 2x2 max, padding (1, 1): 1,182,722 window positions", (_random(rng, *_TIMED_SHAPE), (2, 2)), {"padding": (1, 1)}),
    mistakes=_POOL_MISTAKES,
    reads=_reads_window,
)

_MAX_BACKWARD = _vector_question(
    "max_backward",
    "max_pool2d_backward",
    3,
    _max_backward,
    visible=(
        Case("chapter 5's X with ties, 2x2 window, dY = [[1, 2], [3, 4]]", (_G4, _X4, (2, 2))),
        Case("chapter 5's overlap: 2x2 window, stride (1, 1), the middle wins 4 windows", (_G4, _X3, (2, 2)), {"stride": (1, 1)}),
        _gradient_case(_rng, "a random (2, 2, 40, 40) input, 3x3 window, stride (2, 2)", (2, 2, 40, 40), (3, 3), (2, 2)),
    ),
    hidden=lambda rng: (
        _gradient_case(rng, "small integers (ties), 36x36, 3x3 window, stride (1, 1)", None, (3, 3), (1, 1), X=rng.integers(0, 3, (36, 36)).astype(float)),
        _gradient_case(rng, "a random (3, 45, 30) input, (2, 3) window", (3, 45, 30), (2, 3)),
        _gradient_case(rng, "a random 40x40 input, 2x2 window, stride (3, 3): some elements in no window", (40, 40), (2, 2), (3, 3)),
    ),
    timed=lambda rng: _gradient_case(rng, "a random (2, 1536, 1536) input, 2x2 window: 589,824 window positions", _TIMED_SHAPE, (2, 2)),
    mistakes={
        "ties: every maximum of a window got the gradient; only the first, in row-major order, does": _window_loop_backward(lambda w: (w == w.max()).astype(float)),
        "ties: the last maximum got the gradient; the first, in row-major order, does": _window_loop_backward(_last_max),
        "each offset's slice of dX was assigned with =, so a later offset overwrote the gradient an earlier one sent to the same element: add with +=, an element that is the maximum of several windows gets their sum": _offset_overwrite("max"),
        "overlapping windows overwrote each other's gradient; an element that is the maximum of several windows gets their sum": _window_loop_backward(_first_max, add=False),
        "the gradient was shared out over the window, as for average pooling; max pooling sends it all to the maximum": _avg_backward,
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": _backward_stride_one(_window_loop_backward(_first_max)),
    },
    reads=_reads_gradient,
)

_AVG_BACKWARD = _vector_question(
    "avg_backward",
    "avg_pool2d_backward",
    3,
    _avg_backward,
    visible=(
        Case("the lecture's 0..15, 2x2 window, dY = [[1, 2], [3, 4]]", (_G4, _X16, (2, 2))),
        Case("a 3x3 input, 2x2 window, stride (1, 1): the middle is in 4 windows", (_G4, _X3, (2, 2)), {"stride": (1, 1)}),
        _gradient_case(_rng, "a random (2, 3, 30, 30) input, 2x2 window", (2, 3, 30, 30), (2, 2)),
    ),
    hidden=lambda rng: (
        _gradient_case(rng, "a random 36x36 input, 3x3 window, stride (1, 1)", (36, 36), (3, 3), (1, 1)),
        _gradient_case(rng, "a random (3, 45, 30) input, (2, 3) window", (3, 45, 30), (2, 3)),
        _gradient_case(rng, "a random 40x40 input, 2x2 window, stride (3, 3): some elements in no window", (40, 40), (2, 2), (3, 3)),
    ),
    timed=lambda rng: _gradient_case(rng, "a random (2, 1536, 1536) input, 2x2 window: 589,824 window positions", _TIMED_SHAPE, (2, 2)),
    mistakes={
        "the shares are not divided by the window's size: each element of a window gets dY / (kh * kw)": lambda dY, X, p, stride=None: _avg_backward(dY, X, p, stride) * (p[0] * p[1]),
        "each offset's slice of dX was assigned with =, so a later offset overwrote the shares an earlier one gave the same element: add with +=, an element in several windows gets all their shares": _offset_overwrite("avg"),
        "overlapping windows overwrote each other's shares; an element in several windows gets their sum": _window_loop_backward(_share, add=False),
        "the whole gradient went to one element of the window, as for max pooling; average pooling shares it out": _max_backward,
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": _backward_stride_one(_window_loop_backward(_share)),
    },
    reads=_reads_gradient,
)


# --- cuda-kernel: one thread per output, graded on numba's CUDA simulator ------
# The simulator runs every CUDA thread as a Python thread: the cases stay tiny.


def _cuda_pool(mode):
    def reference(X, pool_size, stride=None):
        return _pool(X, pool_size, (0, 0), stride, mode)

    return reference


def _cuda_mistakes(mode):
    reference = _cuda_pool(mode)
    mistakes = {
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": lambda X, p, stride=None: reference(X, p, (1, 1) if stride is None else stride),
        "the output's rows and columns swapped: a thread's t gives w = t % W_out first": lambda X, p, stride=None: reference(X, p, stride).swapaxes(-2, -1),
    }
    if mode == "max":
        mistakes["the maximum started at 0, which beats negative windows: start from -inf"] = lambda X, p, stride=None: np.maximum(reference(X, p, stride), 0)
        mistakes["NaN was skipped (MXNet's rule); here a NaN in a window makes its output NaN (PyTorch's rule)"] = lambda X, p, stride=None: reference(np.where(np.isnan(X), -np.inf, X), p, stride)
    else:
        mistakes["the window's sum, not divided by its size"] = lambda X, p, stride=None: reference(X, p, stride) * (p[0] * p[1])
    return mistakes


def _small(rng, *shape):
    return _random(rng, *shape).astype(np.float32)


def _cuda_question(mode, points, hidden):
    return Question(
        key=f"cuda_{mode}",
        function=f"{mode}_pool2d_cuda",
        points=points,
        reference=_cuda_pool(mode),
        visible=(
            Case("the lecture's 0..15 as (1, 1, 4, 4), 2x2 window (stride 2)", (_X16[None, None].astype(np.float32), (2, 2))),
            Case("a random (2, 3, 6, 6) input, 3x3 window, stride (1, 1)", (_small(_rng, 2, 3, 6, 6), (3, 3)), {"stride": (1, 1)}),
            Case("a random (1, 2, 5, 7) input, (2, 3) window, stride (2, 2)", (_small(_rng, 1, 2, 5, 7), (2, 3)), {"stride": (2, 2)}),
        ),
        hidden=hidden,
        mistakes=_cuda_mistakes(mode),
        reads=_reads_unpadded,
    )


def _with_nan(rng):
    X = _small(rng, 1, 1, 6, 6)
    X[0, 0, 2, 3] = np.nan
    return X


_CUDA_MAX = _cuda_question(
    "max",
    4,
    hidden=lambda rng: (
        Case("a random (2, 2, 9, 9) input, 3x3 window, stride (2, 2)", (_small(rng, 2, 2, 9, 9), (3, 3)), {"stride": (2, 2)}),
        Case("a NaN in a (1, 1, 6, 6) input, 2x2 window, stride (1, 1)", (_with_nan(rng), (2, 2)), {"stride": (1, 1)}),
        Case("a negative (1, 2, 6, 6) input, 2x2 window", (-np.abs(_small(rng, 1, 2, 6, 6)) - 1, (2, 2))),
        Case("a random (1, 3, 5, 5) input, 5x5 window: one output each", (_small(rng, 1, 3, 5, 5), (5, 5))),
        Case("a random (1, 2, 12, 12) input, 2x2 window, stride (1, 1): 242 outputs", (_small(rng, 1, 2, 12, 12), (2, 2)), {"stride": (1, 1)}),
    ),
)

_CUDA_AVG = _cuda_question(
    "avg",
    3,
    hidden=lambda rng: (
        Case("a random (2, 2, 9, 9) input, 3x3 window, stride (2, 2)", (_small(rng, 2, 2, 9, 9), (3, 3)), {"stride": (2, 2)}),
        Case("a random (1, 3, 5, 5) input, 5x5 window: one output each", (_small(rng, 1, 3, 5, 5), (5, 5))),
        Case("a random (1, 2, 12, 12) input, 2x2 window, stride (1, 1): 242 outputs", (_small(rng, 1, 2, 12, 12), (2, 2)), {"stride": (1, 1)}),
    ),
)


def _padded_at_the_end(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    """Windows read from i * s instead of i * s - p: all the padding lands after the input."""
    widths = [(0, 0)] * (X.ndim - 2) + [(0, 2 * padding[0]), (0, 2 * padding[1])]
    return _pool(np.pad(X, widths, constant_values=-np.inf), pool_size, (0, 0), stride, mode)


#: The padded kernel's own fixed inputs: drawing them from _rng would change the later questions'.
_cuda_padded_rng = np.random.default_rng(20261202)

_CUDA_MAX_PADDED = Question(
    key="cuda_max_padded",
    function="max_pool2d_padded_cuda",
    points=3,
    reference=_pool,
    visible=(
        Case("the lecture's 0..15 as (1, 1, 4, 4), 3x3 window, padding (1, 1), stride (2, 2)", (_X16[None, None].astype(np.float32), (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a random (2, 2, 5, 5) input, 3x3 window, padding (1, 1), stride (1, 1)", (_small(_cuda_padded_rng, 2, 2, 5, 5), (3, 3)), {"padding": (1, 1), "stride": (1, 1)}),
        Case("a negative (1, 2, 6, 7) input, (2, 3) window, padding (1, 1), stride (2, 2)", (-np.abs(_small(_cuda_padded_rng, 1, 2, 6, 7)) - 1, (2, 3)), {"padding": (1, 1), "stride": (2, 2)}),
    ),
    hidden=lambda rng: (
        Case("a random (2, 2, 7, 7) input, 3x3 window, padding (1, 1), stride (2, 2)", (_small(rng, 2, 2, 7, 7), (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a negative (1, 3, 5, 5) input, 2x2 window, padding (1, 1)", (-np.abs(_small(rng, 1, 3, 5, 5)) - 1, (2, 2)), {"padding": (1, 1)}),
        Case("a random (1, 1, 8, 6) input, (4, 2) window, padding (2, 1), stride (3, 1)", (_small(rng, 1, 1, 8, 6), (4, 2)), {"padding": (2, 1), "stride": (3, 1)}),
    ),
    mistakes={
        "a window's first row and column are i * s_h and j * s_w: subtract the padding (i * s_h - pad_h), which puts it on both sides": _padded_at_the_end,
        **{cause: mistake for cause, mistake in _POOL_MISTAKES.items() if "average" not in cause and "mode" not in cause},
    },
    reads=_reads_window,
)


# --- conventions: ceil mode and 'full', the divisor, NaN, the default stride, NHWC ---
# Where PyTorch's rule and MXNet's differ, the MXNet track is graded by MXNet's
# (a question's per_framework). MXNet's answers come from poolkit.mxnet_pooling
# (mx.nd.Pooling's rules), PyTorch's from poolkit's torch-like functions;
# tests/test_exercises.py checks both against the frameworks on every case.


def _torch_size(n, k, padding=0, stride=None, ceil_mode=False):
    return poolkit.pool_output_size(n, k, stride=stride, padding=padding, ceil_mode=ceil_mode)


def _mxnet_size(n, k, padding=0, stride=None, ceil_mode=False):
    """MXNet's output size as Gluon asks nd.Pooling for it: ceil_mode is the 'full' convention."""
    convention = "full" if ceil_mode else "valid"
    return mxnet_window((n,), (k,), (k if stride is None else stride,), (padding,), convention).out_size[0]


def _windows(span, stride, ceil_mode):
    """How many window starts 0, s, 2s, ... fit in ``span`` + 1 places, rounded down or up."""
    return (-(-span // stride) if ceil_mode else span // stride) + 1


def _sizes_mistake(formula):
    """A wrong output-size formula of (n, k, p, s, ceil_mode), with the stride defaulting to k."""
    return lambda n, k, padding=0, stride=None, ceil_mode=False: formula(n, k, padding, k if stride is None else stride, ceil_mode)


def _ceil_size_case(rng):
    k = int(rng.integers(2, 6))
    n, padding, stride = int(rng.integers(k, 30)), int(rng.integers(0, k // 2 + 1)), int(rng.integers(1, 5))
    return Case(f"n={n}, k={k}, padding={padding}, stride={stride}, ceil_mode=True", (n, k), {"padding": padding, "stride": stride, "ceil_mode": True})


_CEIL_SIZE_MISTAKES = {
    "ceil_mode is ignored: with ceil_mode=True the count of windows rounds up": _sizes_mistake(lambda n, k, p, s, c: _windows(n + 2 * p - k, s, False)),
    "rounding up as floor + 1, one window too many when the stride divides n + 2p - k: round up with -(-a // s)": _sizes_mistake(lambda n, k, p, s, c: _windows(n + 2 * p - k, s, False) + c),
    "the padding counted once; it is added on both sides (2p)": _sizes_mistake(lambda n, k, p, s, c: _windows(n + p - k, s, c)),
    "the stride defaults to 1; when stride is None it is the window's size k": lambda n, k, padding=0, stride=None, ceil_mode=False: _mxnet_size(n, k, padding, stride or 1, ceil_mode),
}

_CEIL_SIZE = Question(
    key="ceil_output_size",
    function="output_size",
    points=2,
    reference=_torch_size,
    visible=(
        Case("n=5, k=2, ceil_mode=True: the last window holds one element", (5, 2), {"ceil_mode": True}),
        Case("n=5, k=3, padding=1, stride=2, ceil_mode=True", (5, 3), {"padding": 1, "stride": 2, "ceil_mode": True}),
        Case("n=5, k=2, padding=1, stride=3, ceil_mode=True: a last window would start in the padding", (5, 2), {"padding": 1, "stride": 3, "ceil_mode": True}),
        Case("n=6, k=3, padding=1, stride=2 (no ceil mode)", (6, 3), {"padding": 1, "stride": 2}),
    ),
    hidden=lambda rng: (
        Case("n=6, k=2, ceil_mode=True: the stride divides evenly", (6, 2), {"ceil_mode": True}),
        Case("n=7, k=2, padding=1, stride=4, ceil_mode=True: a last window would start in the padding", (7, 2), {"padding": 1, "stride": 4, "ceil_mode": True}),
        Case("n=10, k=3, padding=1, stride=2, ceil_mode=True", (10, 3), {"padding": 1, "stride": 2, "ceil_mode": True}),
        _ceil_size_case(rng),
    ),
    mistakes={
        "no last-window correction (MXNet's 'full'): in PyTorch's ceil mode a window may not start in the right padding": _mxnet_size,
        **_CEIL_SIZE_MISTAKES,
    },
    forbid_pooling=False,  # a formula: no pooling to forbid
    per_framework={
        "mxnet": {
            "reference": _mxnet_size,
            "mistakes": {
                "a last window that starts in the right padding was dropped, as PyTorch does: MXNet's 'full' (Gluon's ceil_mode) keeps it": _torch_size,
                **_CEIL_SIZE_MISTAKES,
            },
        }
    },
)


def _torch_avg(X, pool_size, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """PyTorch's average pooling of a 2-D array (the stride defaults to the window)."""
    stride = tuple(pool_size) if stride is None else tuple(stride)
    return poolkit.avg_pool2d(X[None], tuple(pool_size), stride, tuple(padding), ceil_mode, count_include_pad, divisor_override, backend="numpy")[0]


def _mxnet_avg(X, pool_size, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True):
    """MXNet's average pooling of a 2-D array, as Gluon's AvgPool2D asks nd.Pooling for it."""
    stride = tuple(pool_size) if stride is None else tuple(stride)
    convention = "full" if ceil_mode else "valid"
    return poolkit.mxnet_pooling(X[None, None], tuple(pool_size), "avg", stride, tuple(padding), convention, count_include_pad, backend="numpy")[0, 0]


def _whole_window(track):
    """Average pooling that divides every window by k_h * k_w, with ``track``'s output size."""

    def pool(X, pool_size, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True):
        if track == "pytorch":
            return _torch_avg(X, pool_size, padding, stride, ceil_mode, divisor_override=pool_size[0] * pool_size[1])
        stride = tuple(pool_size) if stride is None else tuple(stride)
        sums = poolkit.mxnet_pooling(X[None, None], tuple(pool_size), "sum", stride, tuple(padding), "full" if ceil_mode else "valid", backend="numpy")[0, 0]
        return sums / (pool_size[0] * pool_size[1])

    return pool


def _avg_mistakes(track):
    """The average's mistakes in ``track`` ("pytorch" or "mxnet"): the other framework's ceil rule
    first, the divisor counting the padding (or not) before one of k_h * k_w, which is the
    same answer wherever no window runs past the padding."""
    if track == "pytorch":
        other = {"a last window that starts in the right padding was kept (MXNet's 'full'); PyTorch's ceil mode drops it": _mxnet_avg}
    else:
        other = {"a last window that starts in the right padding was dropped, as PyTorch does: MXNet's 'full' (Gluon's ceil_mode) keeps it": _torch_avg}
    reference = _torch_avg if track == "pytorch" else _mxnet_avg
    return {
        **other,
        "the padded zeros counted in the divisor; count_include_pad=False divides by the input's elements only": lambda X, p, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True: reference(X, p, padding, stride, ceil_mode, True),
        "the padded zeros left out of the divisor; count_include_pad=True (the default) counts them": lambda X, p, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True: reference(X, p, padding, stride, ceil_mode, False),
        "every window divided by k_h * k_w, also one that hangs over the input's end in ceil mode: it divides by what it holds of the input (and of the padding, if counted)": _whole_window(track),
        "ceil_mode is ignored: it keeps a last window that holds part of the input": lambda X, p, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True: reference(X, p, padding, stride, False, count_include_pad),
        "the padding is ignored": lambda X, p, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True: reference(X, p, (0, 0), stride, ceil_mode, count_include_pad),
    }


def _avg_question(key, visible, hidden):
    return Question(
        key=key,
        function="avg_pool2d",
        points=3,
        reference=_torch_avg,
        visible=visible,
        hidden=hidden,
        mistakes=_avg_mistakes("pytorch"),
        per_framework={"mxnet": {"reference": _mxnet_avg, "mistakes": _avg_mistakes("mxnet")}},
    )


_X5 = np.arange(25.0).reshape(5, 5)  # 0..24: a 5x5 input that no 2x2 window tiles


def _avg_case(rng, label, shape, pool_size, **kwargs):
    return Case(label, (_random(rng, *shape), pool_size), kwargs)


_AVG_CEIL = _avg_question(
    "avg_ceil",
    visible=(
        Case("0..24 as 5x5, 2x2 window, ceil_mode=True: the last row and column hang over", (_X5, (2, 2)), {"ceil_mode": True}),
        Case("0..24 as 5x5, 3x3 window, padding (1, 1), stride (2, 2), ceil_mode=True", (_X5, (3, 3)), {"padding": (1, 1), "stride": (2, 2), "ceil_mode": True}),
        Case("0..24 as 5x5, 2x2 window, padding (1, 1), stride (3, 3), ceil_mode=True: a last window would start in the padding", (_X5, (2, 2)), {"padding": (1, 1), "stride": (3, 3), "ceil_mode": True}),
    ),
    hidden=lambda rng: (
        _avg_case(rng, "a random 7x8 input, 3x3 window, stride (2, 2), ceil_mode=True", (7, 8), (3, 3), stride=(2, 2), ceil_mode=True),
        _avg_case(rng, "a random 8x5 input, (2, 2) window, padding (1, 1), stride (4, 3), ceil_mode=True", (8, 5), (2, 2), padding=(1, 1), stride=(4, 3), ceil_mode=True),
        _avg_case(rng, "a random 6x9 input, (3, 2) window, padding (1, 0), stride (2, 2), ceil_mode=True", (6, 9), (3, 2), padding=(1, 0), stride=(2, 2), ceil_mode=True),
    ),
)

_AVG_EXCLUDE_PAD = _avg_question(
    "avg_exclude_pad",
    visible=(
        Case("0..24 as 5x5, 3x3 window, padding (1, 1), stride (2, 2), count_include_pad=False", (_X5, (3, 3)), {"padding": (1, 1), "stride": (2, 2), "count_include_pad": False}),
        Case("0..24 as 5x5, 2x2 window, padding (1, 1), count_include_pad=False", (_X5, (2, 2)), {"padding": (1, 1), "count_include_pad": False}),
        Case("0..24 as 5x5, 3x3 window, padding (1, 1), stride (2, 2), ceil_mode=True, count_include_pad=False", (_X5, (3, 3)), {"padding": (1, 1), "stride": (2, 2), "ceil_mode": True, "count_include_pad": False}),
    ),
    hidden=lambda rng: (
        _avg_case(rng, "a random 7x6 input, 3x3 window, padding (1, 1), stride (1, 1), count_include_pad=False", (7, 6), (3, 3), padding=(1, 1), stride=(1, 1), count_include_pad=False),
        _avg_case(rng, "a random 6x9 input, (2, 4) window, padding (1, 2), stride (2, 3), count_include_pad=False", (6, 9), (2, 4), padding=(1, 2), stride=(2, 3), count_include_pad=False),
        _avg_case(rng, "a random 8x7 input, 2x2 window, padding (1, 1), stride (3, 3), ceil_mode=True, count_include_pad=False", (8, 7), (2, 2), padding=(1, 1), stride=(3, 3), ceil_mode=True, count_include_pad=False),
    ),
)


def _torch_max(X, pool_size, stride=None):
    """PyTorch's max pooling of a 2-D array: a NaN in a window makes its output NaN."""
    return poolkit.max_pool2d(X[None], tuple(pool_size), None if stride is None else tuple(stride), backend="numpy")[0]


def _mxnet_max(X, pool_size, stride=None):
    """MXNet's max pooling of a 2-D array (Gluon's MaxPool2D): a NaN in a window is skipped."""
    stride = tuple(pool_size) if stride is None else tuple(stride)
    return poolkit.mxnet_pooling(X[None, None], tuple(pool_size), "max", stride, backend="numpy")[0, 0]


def _running_max(X, pool_size, stride=None):
    """A window's maximum as ``best = first; if v > best: best = v`` finds it: a NaN
    that comes first stays (nothing compares greater), a later one is skipped."""
    (kh, kw), (sh, sw) = pool_size, pool_size if stride is None else stride
    Y = np.empty(poolkit.pool_output_size(X.shape, (kh, kw), stride=(sh, sw)))
    for i, j in np.ndindex(*Y.shape):
        window = X[i * sh : i * sh + kh, j * sw : j * sw + kw].ravel()
        best = window[0]
        for value in window[1:]:
            if value > best:
                best = value
        Y[i, j] = best
    return Y


def _nan_mistakes(track):
    if track == "pytorch":
        other = {"NaN was skipped (MXNet's rule); in PyTorch a NaN in a window makes its output NaN": lambda X, p, stride=None: _torch_max(np.where(np.isnan(X), -np.inf, X), p, stride)}
    else:
        other = {"NaN was kept (PyTorch's rule, and what nd.max gives); MXNet's max pooling skips a NaN in a window": _torch_max}
    return {
        **other,
        "the running maximum compares with >, which is false for NaN: a NaN that comes first in a window sticks, a later one is skipped": _running_max,
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": lambda X, p, stride=None: (_torch_max if track == "pytorch" else _mxnet_max)(X, p, (1, 1) if stride is None else stride),
    }


def _with_nans(rng, shape, spots):
    X = _random(rng, *shape)
    for spot in spots:
        X[spot] = np.nan
    return X


_MAX_NAN = Question(
    key="max_nan",
    function="max_pool2d",
    points=2,
    reference=_torch_max,
    visible=(
        Case("0..15 as 4x4 with a NaN at [0, 0] (first in its window), 2x2 window", (np.where(np.arange(16).reshape(4, 4) == 0, np.nan, _X16), (2, 2))),
        Case("0..15 as 4x4 with a NaN at [1, 3] (last in its window), 2x2 window", (np.where(np.arange(16).reshape(4, 4) == 7, np.nan, _X16), (2, 2))),
        Case("a random 5x6 input with NaN at [0, 1] and [4, 4], 2x3 window, stride (1, 1)", (_with_nans(_rng, (5, 6), [(0, 1), (4, 4)]), (2, 3)), {"stride": (1, 1)}),
    ),
    hidden=lambda rng: (
        Case("a random 6x6 input with NaN at [2, 2], 3x3 window, stride (1, 1)", (_with_nans(rng, (6, 6), [(2, 2)]), (3, 3)), {"stride": (1, 1)}),
        Case("a random 6x8 input with NaN at [0, 0] and [5, 7], 2x2 window", (_with_nans(rng, (6, 8), [(0, 0), (5, 7)]), (2, 2))),
        Case("a random 7x7 input with NaN at [3, 4], 3x2 window, stride (2, 2)", (_with_nans(rng, (7, 7), [(3, 4)]), (3, 2)), {"stride": (2, 2)}),
        Case("a random negative 4x6 input with NaN at [1, 1], 2x3 window", (-np.abs(_with_nans(rng, (4, 6), [(1, 1)])) - 1, (2, 3))),
        Case("a random 5x5 input without NaN, 2x2 window, stride (1, 1)", (_random(rng, 5, 5), (2, 2)), {"stride": (1, 1)}),
    ),
    mistakes=_nan_mistakes("pytorch"),
    per_framework={"mxnet": {"reference": _mxnet_max, "mistakes": _nan_mistakes("mxnet")}},
)


def _pool_nchw(X, kernel, mode="max", stride=None):
    pool = poolkit.max_pool2d if mode == "max" else poolkit.avg_pool2d
    return pool(X, tuple(kernel), None if stride is None else tuple(stride), backend="numpy")


def _nd_pooling(X, kernel, mode="max"):
    """What ``nd.Pooling(X, kernel=kernel, pool_type=mode)`` gives: stride 1 unless told."""
    return poolkit.mxnet_pooling(X, tuple(kernel), mode, backend="numpy")


def _default_mistakes(track):
    if track == "pytorch":
        other = {"the stride defaults to 1 (nd.Pooling's default); PyTorch's stride defaults to the kernel": _nd_pooling}
    else:
        other = {"the stride defaults to the kernel (PyTorch's, and Gluon's layers'); nd.Pooling's stride defaults to 1": lambda X, kernel, mode="max": _pool_nchw(X, kernel, mode)}
    reference = (lambda X, kernel, mode="max": _pool_nchw(X, kernel, mode)) if track == "pytorch" else _nd_pooling
    return {
        **other,
        "max and average pooling swapped (check mode)": lambda X, kernel, mode="max": reference(X, kernel, "avg" if mode == "max" else "max"),
        "kernel read as (width, height); it is (height, width)": lambda X, kernel, mode="max": reference(X, tuple(kernel)[::-1], mode),
    }


_DEFAULT_STRIDE = Question(
    key="default_stride",
    function="framework_pool",
    points=2,
    reference=lambda X, kernel, mode="max": _pool_nchw(X, kernel, mode),
    visible=(
        Case("0..15 as (1, 1, 4, 4), 2x2 max", (_X16[None, None], (2, 2))),
        Case("0..15 as (1, 1, 4, 4), 3x3 average", (_X16[None, None], (3, 3)), {"mode": "avg"}),
        Case("a random (2, 3, 6, 5) input, (2, 3) max", (_random(_rng, 2, 3, 6, 5), (2, 3))),
    ),
    hidden=lambda rng: (
        Case("a random (1, 2, 6, 6) input, 3x3 max", (_random(rng, 1, 2, 6, 6), (3, 3))),
        Case("a random (2, 1, 8, 6) input, 2x2 average", (_random(rng, 2, 1, 8, 6), (2, 2)), {"mode": "avg"}),
        Case("a random (1, 3, 7, 9) input, (3, 2) average", (_random(rng, 1, 3, 7, 9), (3, 2)), {"mode": "avg"}),
        Case("a random (3, 2, 5, 5) input, 5x5 max: one output each", (_random(rng, 3, 2, 5, 5), (5, 5))),
        Case("a random (1, 1, 9, 4) input, (4, 1) max", (_random(rng, 1, 1, 9, 4), (4, 1))),
    ),
    mistakes=_default_mistakes("pytorch"),
    per_framework={"mxnet": {"reference": _nd_pooling, "mistakes": _default_mistakes("mxnet")}},
)


def _nhwc(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    """Pooling of (N, H, W, C) input over H and W, the result in the same layout."""
    return _pool(np.moveaxis(X, -1, 1), pool_size, padding, stride, mode).transpose(0, 2, 3, 1)


def _nhwc_padding_not_counted(X, pool_size, padding=(0, 0), stride=None, mode="max"):
    if mode != "avg":
        raise ValueError("a mistake of average pooling")
    return np.moveaxis(_pool(np.moveaxis(X, -1, 1), pool_size, padding, stride, "avg", count_include_pad=False), 1, -1)


_CHANNELS_LAST = Question(
    key="channels_last",
    function="pool2d_nhwc",
    points=3,
    reference=_nhwc,
    visible=(
        Case("0..15 and 100..115 as a (1, 4, 4, 2) input, 2x2 max", (np.stack([_X16, _X16 + 100], axis=-1)[None], (2, 2))),
        Case("a random (2, 5, 6, 3) input, 3x3 average, padding (1, 1), stride (2, 2)", (_random(_rng, 2, 5, 6, 3), (3, 3)), {"padding": (1, 1), "stride": (2, 2), "mode": "avg"}),
        Case("a random (1, 6, 4, 4) input, (3, 2) max, stride (1, 1)", (_random(_rng, 1, 6, 4, 4), (3, 2)), {"stride": (1, 1)}),
    ),
    hidden=lambda rng: (
        Case("a random (2, 7, 9, 3) input, 3x3 max, padding (1, 1), stride (2, 2)", (_random(rng, 2, 7, 9, 3), (3, 3)), {"padding": (1, 1), "stride": (2, 2)}),
        Case("a random (1, 6, 6, 5) input, 2x2 average", (_random(rng, 1, 6, 6, 5), (2, 2)), {"mode": "avg"}),
        Case("a random (3, 5, 8, 2) input, (2, 4) average, padding (1, 2), stride (2, 3)", (_random(rng, 3, 5, 8, 2), (2, 4)), {"padding": (1, 2), "stride": (2, 3), "mode": "avg"}),
    ),
    mistakes={
        "the last two axes pooled, as for NCHW; in NHWC the window moves over axes 1 and 2 (H, W) and the channels are the last axis": lambda X, p, padding=(0, 0), stride=None, mode="max": _pool(X, p, padding, stride, mode),
        "the result is channels-first (N, C, H, W); channels-last input gives channels-last output": lambda X, p, padding=(0, 0), stride=None, mode="max": np.moveaxis(_nhwc(X, p, padding, stride, mode), -1, 1),
        "the average divides by the elements inside the input; PyTorch's default (count_include_pad=True) counts the padded zeros too": _nhwc_padding_not_counted,
        "the stride defaults to 1; when stride is None it is the window's size (pool_size)": lambda X, p, padding=(0, 0), stride=None, mode="max": _nhwc(X, p, padding, (1, 1) if stride is None else stride, mode),
        "max and average pooling swapped (check mode)": lambda X, p, padding=(0, 0), stride=None, mode="max": _nhwc(X, p, padding, stride, "avg" if mode == "max" else "max"),
    },
)


#: Every question, by its key (the grade_id of its test cell), in the order of the notebooks.
QUESTIONS = {
    question.key: question
    for question in (
        _pool2d_question("max", "avg"),
        _pool2d_question("avg", "max"),
        _OUTPUT_SIZE,
        _padded_question("max"),
        _padded_question("avg"),
        _CHANNELS_CHW,
        _CHANNELS_NCHW,
        _GLOBAL_AVG,
        _ADAPTIVE_AVG,
        _VECTORIZED,
        _VECTORIZED_PADDED,
        _MAX_BACKWARD,
        _AVG_BACKWARD,
        _CUDA_MAX,
        _CUDA_AVG,
        _CUDA_MAX_PADDED,
        _CEIL_SIZE,
        _AVG_CEIL,
        _AVG_EXCLUDE_PAD,
        _MAX_NAN,
        _DEFAULT_STRIDE,
        _CHANNELS_LAST,
    )
}
