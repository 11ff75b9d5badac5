"""CPU benchmark: poolkit's naive, numpy and numba backends against torch and MXNet.

What is measured
----------------
2-D max and average pooling, forward and backward, float32, on the same
random inputs for five implementations, next to a plain copy of the input:

- ``naive``: ``poolkit`` with ``backend="naive"`` (the lecture's Python loops),
- ``numpy``: ``poolkit`` with ``backend="numpy"`` (vectorized NumPy),
- ``numba``: ``poolkit`` with ``backend="numba"`` (compiled, parallel over planes),
- ``auto``: ``poolkit`` with ``backend="auto"``, what a user gets; its max backward is
  given the forward's indices (computed outside the timed region), as torch's is,
- ``torch``: ``torch.nn.functional`` on the CPU,
- ``mxnet``: ``mx.nd.Pooling`` on the CPU,
- ``copy``: ``x.copy()`` of the input in its layout, the floor a pass over memory costs.

Shapes go from (1, 1, 8, 8) to (32, 64, 112, 112), each with kernel 3 stride 2
padding 1 and with kernel 2 stride 2, in NCHW; the largest shape is also run
channels last (NHWC). Backward means the gradient with respect to the input:
``poolkit.*_pool2d_backward``; for torch the aten backward ops, with the max
indices computed outside the timed region; for MXNet, ``y.backward(g)`` on a
forward recorded once outside the timed region (the graph is retained).

How
---
Every implementation's result is first checked against PyTorch's (autograd on
an NCHW tensor) with ``np.allclose``; a disagreement aborts the run. Then a
warm-up call, and the median of several repeats timed with
``time.perf_counter`` (calls shorter than a millisecond are batched into one
sample); the implementations in the main process take their samples in turn,
one of each per round, so that the VM's drift in speed reaches them alike
(the ratios compare calls made in the same seconds). MXNet is asynchronous, so its timed region ends with
``mx.nd.waitall()``. The naive backend is skipped where one call would take
more than a few seconds. poolkit keeps a large result's memory once it is
freed, for the next result of its size, as MXNet's storage pool does; so the
repeated calls pay for fresh pages in neither (the memory rows give it back
before each measurement). MXNet runs in a process of its own: importing it
next to torch drops torch to one thread, and the two OpenMP thread pools would
compete for the cores.

Run it
------
::

    make bench                                # writes bench/results/cpu.json and cpu.txt (the table)
    python bench/cpu.py --quick --out /tmp/cpu.json   # small shapes only, seconds

It prints one table row per case, then the peak memory of ``auto`` and torch on
the largest shape (the resident set's growth during one call: Linux's ``VmHWM``,
reset through ``/proc/self/clear_refs``, or the exact growth in ``smaps_rollup``
with the result held, whichever is larger; glibc is told to map every large
block so that a call's allocations show), the acceptance numbers, and last the
time of a (1, 1, 8, 8) forward call and the worst ``auto``/best-peer ratio (the
faster of torch and MXNet in the same row) over the largest shape's cases.
"""

import argparse
import ctypes
import datetime
import gc
import importlib.metadata
import inspect
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import poolkit
from poolkit.backends import common

from machine import cpu_model, load_average

SHAPES = [(1, 1, 8, 8), (1, 1, 64, 64), (8, 32, 56, 56), (32, 64, 112, 112)]
QUICK_SHAPES = SHAPES[:2]
CONFIGS = [(3, 2, 1), (2, 2, 0)]  # (kernel, stride, padding)
OPS = ("max", "avg")
DIRECTIONS = ("forward", "backward")
IMPLEMENTATIONS = ("naive", "numpy", "numba", "auto", "torch", "mxnet", "copy")
PEER = "peer"  # in a ratio: the faster of torch and MXNet in the same row
RATIOS = (("auto", PEER), ("numpy", "torch"), ("numba", "torch"), ("numba", "mxnet"), ("numba", "copy"), ("mxnet", "torch"), ("naive", "numpy"))
#: What a (1, 1, 8, 8) forward call may take with backend="auto", in microseconds (the issue's target).
SMALL_SHAPE, SMALL_TARGET_US, SMALL_CALLS = (1, 1, 8, 8), 20.0, 2000
SEED = 0
RTOL, ATOL = 1e-5, 1e-5
# The naive backend costs about 1.5 us per window element visited (N*C*outputs*k*k);
# 2e6 visits is about 3 s a call.
NAIVE_MAX_VISITS = 2_000_000
BUDGET_S = 0.5  # time to spend on the repeats of one measurement
QUICK_BUDGET_S = 0.05
MIN_SAMPLE_S = 1e-3  # batch faster calls so that one sample lasts at least this long
MIN_REPEATS, MAX_REPEATS = 3, 25
SKIPPED = "skipped (too slow)"

NOTES = [
    "Times are in milliseconds: the median of the repeats after a warm-up call, measured with time.perf_counter; "
    "calls shorter than 1 ms are batched into one sample and the sample divided by the batch size. The implementations "
    "in the main process (all but MXNet) take their samples in turn, one of each per round, so that a drift in the "
    "machine's speed reaches them alike.",
    "All implementations get the same float32 inputs (standard normal, fixed seed). Each result is checked once "
    f"against PyTorch autograd on an NCHW tensor with np.allclose(rtol={RTOL}, atol={ATOL}) before it is timed.",
    "torch backward: torch.ops.aten.max_pool2d_with_indices_backward (indices precomputed outside the timed region) "
    "and torch.ops.aten.avg_pool2d_backward.",
    "poolkit backward: max_pool2d_backward / avg_pool2d_backward; for naive, numpy and numba max recomputes the argmax "
    "inside the timed call; auto is given the forward's indices (indices=..., computed outside the timed region) where "
    "max_pool2d_backward takes them, as torch is.",
    "auto/peer: auto's time over the faster of torch and MXNet in the same row.",
    "Peak memory: VmHWM - VmRSS around one call (Linux), after the timings, with glibc's mmap threshold at 64 KiB so "
    "that large blocks come from and go back to the kernel; it includes the result. MXNet is not measured: its storage "
    "pool keeps blocks between calls.",
    "mxnet backward: y.backward(g, retain_graph=True) alone, on a forward recorded once under mx.autograd.record() "
    "outside the timed region.",
    "mxnet timed regions end with mx.nd.waitall(), because MXNet executes asynchronously.",
    "MXNet is timed in a separate process: importing MXNet in torch's process resets torch to one thread, "
    "and the two OpenMP thread pools compete for the cores.",
    "NHWC rows: torch via x.contiguous(memory_format=torch.channels_last), poolkit via layout='NHWC' on an "
    "(N, H, W, C) array, MXNet via layout='NHWC'. Shapes are always given as (N, C, H, W).",
    f"The naive backend is skipped (null) where N*C*outputs*k*k exceeds {NAIVE_MAX_VISITS}, i.e. where a call "
    "would take seconds.",
]


# --- cases and inputs ---------------------------------------------------------


def make_cases(shapes):
    """Every benchmark case, in the fixed order of the JSON rows.

    Parameters
    ----------
    shapes : list of tuple of int
        NCHW shapes, smallest first; the last one is also run channels last.

    Returns
    -------
    list of dict
        One dict per case with op, direction, shape, kernel, stride, padding and layout.
    """
    cases = []
    for layout, layout_shapes in (("NCHW", shapes), ("NHWC", shapes[-1:])):
        for shape in layout_shapes:
            for kernel, stride, padding in CONFIGS:
                for op in OPS:
                    for direction in DIRECTIONS:
                        cases.append(dict(op=op, direction=direction, shape=shape, kernel=kernel, stride=stride, padding=padding, layout=layout))
    return cases


def config_name(case):
    return f"k{case['kernel']}s{case['stride']}p{case['padding']}"


def output_shape(case):
    n, c, h, w = case["shape"]
    size = poolkit.pool_output_size((h, w), case["kernel"], case["stride"], case["padding"])
    return (n, c) + tuple(size)


def make_inputs(case):
    """The input ``x`` and output gradient ``g`` of a case, both NCHW float32.

    The seed depends only on the shapes, so every implementation, and every
    row with the same shapes, sees the same numbers.
    """
    rng = np.random.default_rng([SEED, *case["shape"], *output_shape(case)])
    x = rng.standard_normal(case["shape"], dtype=np.float32)
    g = rng.standard_normal(output_shape(case), dtype=np.float32)
    return x, g


def to_layout(array, layout):
    """An NCHW array as a contiguous array in ``layout``."""
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1)) if layout == "NHWC" else array


def naive_visits(case):
    """How many window elements one naive call visits: what its time grows with."""
    n, c, h, w = output_shape(case)
    return n * c * h * w * case["kernel"] ** 2


# --- timing -------------------------------------------------------------------


def first_call(fn):
    """Call ``fn`` once (the warm-up); return its result and how long it took in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(fn, once, budget):
    """Median time of one call to ``fn``, after a warm-up call that took ``once`` seconds.

    Parameters
    ----------
    fn : callable
        Does the work, and waits for it to finish.
    once : float
        Seconds the warm-up call took; sizes the batches and the number of repeats.
    budget : float
        Seconds to spend on the repeats (at least MIN_REPEATS are taken anyway).

    Returns
    -------
    dict
        ``ms`` (median milliseconds per call), ``repeats`` and ``number`` (calls per sample).
    """
    return measure_together({"fn": (fn, once)}, budget)["fn"]


def measure_together(calls, budget):
    """:func:`measure` of each of ``calls`` (name: (fn, once)), their samples taken in
    turn, one of each per round: on a VM whose speed drifts from second to second,
    the ratios of their medians then compare calls made in the same moments.

    Examples
    --------
    >>> timings = measure_together({"a": (lambda: None, 1e-6), "b": (lambda: None, 1e-6)}, 0.01)
    >>> sorted(timings), timings["a"]["repeats"] >= MIN_REPEATS
    (['a', 'b'], True)
    """
    number = {name: max(1, int(MIN_SAMPLE_S / max(once, 1e-9))) for name, (_, once) in calls.items()}
    repeats = {name: min(MAX_REPEATS, max(MIN_REPEATS, int(budget / (once * number[name])))) for name, (_, once) in calls.items()}
    samples = {name: [] for name in calls}
    for round_ in range(max(repeats.values())):
        for name, (fn, _) in calls.items():
            if round_ < repeats[name]:
                start = time.perf_counter()
                for _ in range(number[name]):
                    fn()
                samples[name].append((time.perf_counter() - start) / number[name])
    return {name: {"ms": statistics.median(samples[name]) * 1e3, "repeats": repeats[name], "number": number[name]} for name in calls}


def check(name, case, result, reference):
    """Abort the run unless ``result`` (NCHW) agrees with torch's ``reference``.

    Raises
    ------
    RuntimeError
        Naming the implementation, the case and the largest difference. (Not
        SystemExit, which would kill the MXNet worker instead of reaching the parent.)
    """
    result = np.asarray(result, dtype=np.float64)
    if result.shape != reference.shape:
        raise RuntimeError(f"ABORT: {name} disagrees with torch on {describe(case)}: shape {result.shape}, torch's {reference.shape}")
    if not np.allclose(result, reference, rtol=RTOL, atol=ATOL):
        diff = np.abs(result - reference).max()
        raise RuntimeError(f"ABORT: {name} disagrees with torch on {describe(case)}: max |difference| = {diff:.3g}")


def describe(case):
    return f"{case['op']} {case['direction']} {case['shape']} {config_name(case)} {case['layout']}"


# --- poolkit and torch (this process) -----------------------------------------


def takes_indices():
    """Whether this poolkit's max_pool2d_backward takes the forward's indices."""
    return "indices" in inspect.signature(poolkit.max_pool2d_backward).parameters


def poolkit_call(case, x, g, backend):
    """A no-argument function running poolkit's ``backend`` on the case, in its layout."""
    k, s, p, layout = case["kernel"], case["stride"], case["padding"], case["layout"]
    x, g = to_layout(x, layout), to_layout(g, layout)
    if case["direction"] == "forward":
        pool = poolkit.max_pool2d if case["op"] == "max" else poolkit.avg_pool2d
        return lambda: pool(x, k, s, p, layout=layout, backend=backend)
    if case["op"] == "max" and backend == "auto" and takes_indices():
        # As torch's backward in training: the indices come from the forward pass, outside the timed region.
        _, indices = poolkit.max_pool2d(x, k, s, p, return_indices=True, layout=layout)
        return lambda: poolkit.max_pool2d_backward(g, x, k, s, p, layout=layout, indices=indices)
    backward = poolkit.max_pool2d_backward if case["op"] == "max" else poolkit.avg_pool2d_backward
    return lambda: backward(g, x, k, s, p, layout=layout, backend=backend)


def torch_reference(case, x, g):
    """PyTorch's answer, from autograd on plain NCHW tensors, as an NCHW float64 array."""
    import torch
    import torch.nn.functional as F

    pool = F.max_pool2d if case["op"] == "max" else F.avg_pool2d
    xt = torch.from_numpy(x).requires_grad_(case["direction"] == "backward")
    y = pool(xt, case["kernel"], case["stride"], case["padding"])
    if case["direction"] == "forward":
        return y.detach().numpy().astype(np.float64)
    y.backward(torch.from_numpy(g))
    return xt.grad.numpy().astype(np.float64)


def torch_call(case, x, g):
    """A no-argument function running torch's CPU op on the case, in its memory format."""
    import torch
    import torch.nn.functional as F

    k, s, p = case["kernel"], case["stride"], case["padding"]
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    if case["layout"] == "NHWC":
        xt, gt = xt.contiguous(memory_format=torch.channels_last), gt.contiguous(memory_format=torch.channels_last)
    if case["direction"] == "forward":
        pool = F.max_pool2d if case["op"] == "max" else F.avg_pool2d
        return lambda: pool(xt, k, s, p)
    if case["op"] == "avg":
        return lambda: torch.ops.aten.avg_pool2d_backward(gt, xt, [k, k], [s, s], [p, p], False, True, None)
    # The indices come from the forward pass in training; keep them out of the timed region.
    _, indices = torch.ops.aten.max_pool2d_with_indices(xt, [k, k], [s, s], [p, p])
    return lambda: torch.ops.aten.max_pool2d_with_indices_backward(gt, xt, [k, k], [s, s], [p, p], [1, 1], False, indices)


# --- MXNet (its own process) --------------------------------------------------


def mxnet_version():
    """MXNet's version, or None where it is not installed (runs in the MXNet process)."""
    try:
        import mxnet as mx
    except ImportError:
        return None
    return mx.__version__


def mxnet_case(case, x, g, reference, budget):
    """Check and time ``mx.nd.Pooling`` on one case; runs in the MXNet process.

    Returns
    -------
    dict
        ``ms``, ``repeats`` and ``number``, as :func:`measure` returns them.
    """
    import mxnet as mx

    layout = case["layout"]
    k, s, p = case["kernel"], case["stride"], case["padding"]
    kwargs = dict(kernel=(k, k), stride=(s, s), pad=(p, p), pool_type=case["op"], pooling_convention="valid", count_include_pad=True, layout=layout)
    data = mx.nd.array(to_layout(x, layout), dtype=np.float32)
    grad = mx.nd.array(to_layout(g, layout), dtype=np.float32)

    def user_to_nchw(array):
        return array.transpose(0, 3, 1, 2) if layout == "NHWC" else array

    if case["direction"] == "forward":

        def forward():
            y = mx.nd.Pooling(data, **kwargs)
            mx.nd.waitall()
            return y

        y, once = first_call(forward)
        check("mxnet", case, user_to_nchw(y.asnumpy()), reference)
        return measure(forward, once, budget)

    data.attach_grad()
    with mx.autograd.record():
        y = mx.nd.Pooling(data, **kwargs)

    def backward():
        y.backward(grad, retain_graph=True)  # grad_req "write": each call overwrites data.grad
        mx.nd.waitall()

    _, once = first_call(backward)
    check("mxnet", case, user_to_nchw(data.grad.asnumpy()), reference)
    return measure(backward, once, budget)


# --- one row ------------------------------------------------------------------


def run_case(case, budget, mxnet_pool, has_mxnet):
    """Check and time every implementation on one case; return its JSON row."""
    x, g = make_inputs(case)
    reference = torch_reference(case, x, g)
    layout = case["layout"]
    times, status, repeats = {}, {}, {}
    calls = {}  # the implementations in this process, checked, then timed together
    for name in IMPLEMENTATIONS:
        times[name], repeats[name], status[name] = None, None, "ok"
        if name == "naive" and naive_visits(case) > NAIVE_MAX_VISITS:
            status[name] = SKIPPED
        elif name == "copy":
            source = to_layout(x, layout)
            calls[name] = (source.copy, first_call(source.copy)[1])
        elif name != "mxnet":
            fn = torch_call(case, x, g) if name == "torch" else poolkit_call(case, x, g, name)
            result, once = first_call(fn)  # for numba, the first call also compiles (or loads) the kernel
            result = result.numpy() if name == "torch" else result
            # poolkit answers in the input's layout; torch's channels-last tensor is NCHW already.
            if name != "torch" and layout == "NHWC":
                result = result.transpose(0, 3, 1, 2)
            check(name, case, result, reference)
            calls[name] = (fn, once)
    timings = measure_together(calls, budget)
    if has_mxnet:
        # A timeout, so that a crashed worker fails the run instead of hanging it.
        timings["mxnet"] = mxnet_pool.apply_async(mxnet_case, (case, x, g, reference, budget)).get(timeout=600)
    else:
        status["mxnet"] = "mxnet not installed"
    for name, timing in timings.items():
        times[name] = timing["ms"]
        repeats[name] = {"repeats": timing["repeats"], "number": timing["number"]}
    ratios = {}
    peers = [times[name] for name in ("torch", "mxnet") if times[name] is not None]
    for top, bottom in RATIOS:
        below = min(peers) if bottom == PEER and peers else times.get(bottom)
        ratios[f"{top}/{bottom}"] = times[top] / below if times[top] is not None and below is not None else None
    return {
        "op": case["op"],
        "direction": case["direction"],
        "shape": list(case["shape"]),
        "config": config_name(case),
        "kernel": case["kernel"],
        "stride": case["stride"],
        "padding": case["padding"],
        "layout": layout,
        "dtype": "float32",
        "times_ms": times,
        "status": status,
        "repeats": repeats,
        "ratios": ratios,
    }


# --- memory and the small input ---------------------------------------------

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def map_large_blocks():
    """Have glibc serve every block of 64 KiB or more with mmap, and give it back on
    free, so that the resident set's peak shows what one call allocates. Done after
    the timings: it makes allocation slower."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 64 << 10)
    except (OSError, AttributeError):  # not glibc: the numbers may then undercount
        pass


def release_free_memory():
    """Give the pages of freed blocks back to the system (poolkit's kept blocks, then glibc's
    ``malloc_trim``), so that a call that reuses them touches fresh pages, which the resident
    set then counts; without this a result that fits in memory freed earlier in the run shows
    as 0 MB."""
    common.release_kept_memory()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rollup_kb():
    """The resident set now, counted page by page (``smaps_rollup``): exact, where ``VmRSS``
    may not yet count pages that other threads (numba's, torch's) have just touched."""
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise KeyError("Rss")


def peak_extra_bytes(fn):
    """How far the resident set grew during one call of ``fn``, its result included; None off Linux.

    The larger of the peak (``VmHWM``, reset first) over the resident set before, and
    the exact growth with the result still held."""
    gc.collect()
    release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the resident set now
        before, exact_before = status_kb("VmRSS"), rollup_kb()
        result = fn()
        peak, exact_after = status_kb("VmHWM"), rollup_kb()
    except (OSError, KeyError):
        return None
    del result
    return max(peak - before, exact_after - exact_before, 0) * 1024


def memory_rows(cases):
    """Peak extra memory of ``auto`` and torch on each case, in MB, next to the size of its result."""
    map_large_blocks()
    rows = []
    for case in cases:
        x, g = make_inputs(case)
        peaks = {}
        for name, fn in (("auto", poolkit_call(case, x, g, "auto")), ("torch", torch_call(case, x, g))):
            fn()  # compiled, and its thread pool started
            extra = peak_extra_bytes(fn)
            peaks[name] = None if extra is None else extra / 1e6
        result_shape = case["shape"] if case["direction"] == "backward" else output_shape(case)
        rows.append({"case": describe(case), "peak_extra_mb": peaks, "result_mb": 4 * math.prod(result_shape) / 1e6})
    return rows


def small_input_us():
    """Microseconds per ``backend="auto"`` forward call on a (1, 1, 8, 8) float32 NumPy
    array, k3s2p1, max and avg: the median of 7 batches of SMALL_CALLS calls."""
    x = np.random.default_rng(SEED).standard_normal(SMALL_SHAPE, dtype=np.float32)
    result = {}
    for op, pool in (("max", poolkit.max_pool2d), ("avg", poolkit.avg_pool2d)):
        pool(x, 3, 2, 1)
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(SMALL_CALLS):
                pool(x, 3, 2, 1)
            samples.append((time.perf_counter() - start) / SMALL_CALLS * 1e6)
        result[op] = statistics.median(samples)
    return result


# --- output -------------------------------------------------------------------

COLUMNS = [("op", 3), ("dir", 8), ("shape", 17), ("config", 7), ("layout", 6)] + [(name, 9) for name in IMPLEMENTATIONS] + [(f"{a}/{b}", 11) for a, b in RATIOS]


def format_ms(value):
    if value is None:
        return "-"
    return f"{value:.4f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def format_mb(value):
    return "-" if value is None else f"{value:9.2f}"


def format_ratio(value):
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def table_header():
    header = " ".join(f"{name:>{width}}" if i >= 5 else f"{name:<{width}}" for i, (name, width) in enumerate(COLUMNS))
    return f"times in ms (median); ratios of those times\n{header}\n{'-' * len(header)}"


def table_row(row):
    shape = "x".join(map(str, row["shape"]))
    cells = [row["op"], row["direction"], shape, row["config"], row["layout"]]
    cells += [format_ms(row["times_ms"][name]) for name in IMPLEMENTATIONS]
    cells += [format_ratio(row["ratios"][f"{a}/{b}"]) for a, b in RATIOS]
    return " ".join(f"{cell:>{width}}" if i >= 5 else f"{cell:<{width}}" for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS)))


def find_row(rows, op, direction, shape, config, layout):
    for row in rows:
        if (row["op"], row["direction"], tuple(row["shape"]), row["config"], row["layout"]) == (op, direction, shape, config, layout):
            return row
    return None


def targets(rows):
    """The issues' acceptance numbers, measured in this run (None where the row was not run)."""
    wanted = [
        ("numpy_vs_torch_max_forward_large", "numpy/torch", ("max", "forward", (32, 64, 112, 112), "k3s2p1", "NCHW"), "<=", 1.2),
        ("naive_vs_numpy_max_forward_64x64", "naive/numpy", ("max", "forward", (1, 1, 64, 64), "k3s2p1", "NCHW"), ">=", 100.0),
        ("numba_vs_mxnet_max_forward_large", "numba/mxnet", ("max", "forward", (32, 64, 112, 112), "k3s2p1", "NCHW"), "<=", 1.0),
        ("numba_vs_copy_max_forward_large", "numba/copy", ("max", "forward", (32, 64, 112, 112), "k3s2p1", "NCHW"), "<=", 2.0),
    ]
    large = [row for row in rows if tuple(row["shape"]) == SHAPES[-1] and row["ratios"][f"auto/{PEER}"] is not None]
    worst = max(large, key=lambda row: row["ratios"][f"auto/{PEER}"]) if large else None
    at = (worst["op"], worst["direction"], SHAPES[-1], worst["config"], worst["layout"]) if worst else ("max", "forward", SHAPES[-1], "k3s2p1", "NCHW")
    wanted.append(("auto_vs_peer_worst_large", f"auto/{PEER}", at, "<=", 1.0))
    result = {}
    for key, ratio, where, comparison, threshold in wanted:
        row = find_row(rows, *where)
        value = None if row is None else row["ratios"][ratio]
        passed = None if value is None else (value <= threshold if comparison == "<=" else value >= threshold)
        op, direction, shape, config, layout = where
        description = f"{ratio} time, {op} pooling {direction}, {layout} float32 {shape} {config}"
        if key == "auto_vs_peer_worst_large":
            description = f"worst auto/peer time (peer: the faster of torch and MXNet) of the {len(large)} cases of {shape}, at {op} {direction} {layout} {config}"
        result[key] = {
            "description": description,
            "ratio": ratio,
            "row": {"op": op, "direction": direction, "shape": list(shape), "config": config, "layout": layout},
            "comparison": comparison,
            "threshold": threshold,
            "value": value,
            "pass": passed,
        }
    return result


def machine_info(mxnet_pool):
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "mxnet": mxnet_pool.apply(mxnet_version),
        "poolkit": importlib.metadata.version("poolkit"),
    }
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small shapes (a smoke test, seconds)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "cpu.json", help="where to write the JSON results")
    args = parser.parse_args(argv)
    shapes, budget = (QUICK_SHAPES, QUICK_BUDGET_S) if args.quick else (SHAPES, BUDGET_S)
    started, load_start = time.perf_counter(), load_average()
    report = []  # the printed table, also saved beside the JSON

    def say(line=""):
        report.append(line)
        print(line, flush=True)

    # One worker process for MXNet, started with "spawn" so that it imports neither torch nor its thread pool.
    with multiprocessing.get_context("spawn").Pool(1) as mxnet_pool:
        machine = machine_info(mxnet_pool)
        has_mxnet = machine["mxnet"] is not None
        if not has_mxnet:
            print("warning: MXNet is not installed; its column stays empty", file=sys.stderr)
        say(f"{machine['cpu_model']} ({machine['cpu_count']} CPUs), torch {machine['torch']} on {machine['torch_num_threads']} threads, "
            f"numpy {machine['numpy']}, mxnet {machine['mxnet']}")
        say(table_header())
        rows = []
        for case in make_cases(shapes):
            rows.append(run_case(case, budget, mxnet_pool, has_mxnet))
            say(table_row(rows[-1]))
    goals = targets(rows)
    memory = memory_rows([case for case in make_cases(shapes) if case["shape"] == shapes[-1]])
    small = small_input_us()
    results = {
        "benchmark": "poolkit CPU pooling: naive, numpy and numba backends against torch and MXNet",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine,
        "method": {"dtype": "float32", "seed": SEED, "budget_s": budget, "statistic": "median", "timer": "time.perf_counter", "notes": NOTES},
        "implementations": list(IMPLEMENTATIONS),
        "ratios": [f"{a}/{b}" for a, b in RATIOS],
        "rows": rows,
        "targets": goals,
        "memory": memory,
        "small_input_us": {"shape": list(SMALL_SHAPE), "config": "k3s2p1", "backend": "auto", "target_us": SMALL_TARGET_US, **small},
        "total_seconds": round(time.perf_counter() - started, 1),
        # Another busy process skews every number; a high load average is a hint of one.
        "load_average": {"start": load_start, "end": load_average()},
    }
    say()
    say(f"Peak memory in MB on {'x'.join(map(str, shapes[-1]))} (resident set's growth during one call, result included):")
    for item in memory:
        peaks = item["peak_extra_mb"]
        say(f"  {item['case']:<40} auto {format_mb(peaks['auto'])}  torch {format_mb(peaks['torch'])}  (result {item['result_mb']:.2f})")
    say()
    say("Acceptance numbers (measured in this run):")
    for goal in goals.values():
        value = "not measured" if goal["value"] is None else f"{goal['value']:.2f}"
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[goal["pass"]]
        if goal is not goals["auto_vs_peer_worst_large"]:
            say(f"  {goal['description']}: {value} (target {goal['comparison']} {goal['threshold']:g}) {verdict}")
    print(f"(writing {args.out} and {args.out.with_suffix('.txt').name}; {results['total_seconds']} s, load average {results['load_average']['end']})")
    fast = all(value <= SMALL_TARGET_US for value in small.values())
    say(f"  small input {SMALL_SHAPE} forward, auto: max {small['max']:.1f} us, avg {small['avg']:.1f} us per call (target <= {SMALL_TARGET_US:g}) {'PASS' if fast else 'FAIL'}")
    goal = goals["auto_vs_peer_worst_large"]
    value = "not measured" if goal["value"] is None else f"{goal['value']:.2f}"
    say(f"  {goal['description']}: {value} (target <= 1) {({True: 'PASS', False: 'FAIL', None: 'n/a'})[goal['pass']]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    args.out.with_suffix(".txt").write_text("\n".join(report) + "\n")

if __name__ == "__main__":
    main()
