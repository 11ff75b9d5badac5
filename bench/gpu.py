"""GPU benchmark: poolkit's cuda backend against torch's CUDA pooling (and cuDNN through CuPy).

What is measured
----------------
The CPU benchmark's cases (``bench/cpu.py``'s ``make_cases``): 2-D max and
average pooling, forward and backward, with kernel 3 stride 2 padding 1 and with
kernel 2 stride 2, on NCHW inputs from (1, 1, 8, 8) to (32, 64, 112, 112), the
largest also channels last (NHWC); in float32 and float16, on the same device
tensors, for up to three implementations:

- ``poolkit``: ``poolkit`` with ``backend="cuda"`` (numba-cuda kernels) on the
  torch tensors themselves; its kernels run on torch's current stream and its
  outputs come from torch's caching allocator,
- ``torch``: ``torch.nn.functional`` on the GPU; backward through the aten ops
  that autograd runs, with the max indices computed outside the timed region,
- ``cupy``: cuDNN's pooling through ``cupyx.cudnn``, where CuPy is installed and
  still has it (CuPy 14 dropped cuDNN); NCHW only, since ``cupyx.cudnn`` copies
  any input that is not C-contiguous.

NHWC cases give poolkit the (N, H, W, C) array with ``layout="NHWC"``, torch the
same memory as an NCHW tensor in ``torch.channels_last`` format. poolkit's max
backward takes the forward's indices where its ``max_pool2d_backward`` has an
``indices`` parameter (as torch's does; computed outside the timed region),
else recomputes each window's argmax.

How
---
Every result is first checked against torch's: max forward bit for bit, the
sums (average pooling, max backward) with ``torch.allclose``; a poolkit
disagreement aborts the run. The checked call is also the first call, which
compiles poolkit's generic kernels; the first warm-up call compiles the kernel
specialised for the case. Then the median of several calls each timed alone
with CUDA events on torch's current stream, the device synchronized before and
after (Python overhead included: on the small shapes that is most of it). The
L2 cache is flushed before each timed call. A device-to-device copy of the
input (``out.copy_(x)``), timed the same way, gives the copy bandwidth that each
row's achieved bandwidth is compared with.

Run it
------
::

    make gpu-check                 # the GPU tests, then this: writes $OUT (else bench/results)/gpu.json and gpu.txt
    python bench/gpu.py            # on a machine with an NVIDIA GPU: writes bench/results/gpu.json and gpu.txt (the table)
    python bench/gpu.py --quick    # small shapes only, a smoke test: writes bench/results/gpu-quick.json and .txt
    python bench/gpu.py --dry-run  # no GPU needed: lists the cases and where the results would go
    python bench/gpu.py --check    # whether this machine can run it (exit 0), or why not (exit 2)

It prints one table row per case and the acceptance numbers at the end. Without
a CUDA device it says so and exits with status 2.
"""

import argparse
import datetime
import importlib.metadata
import inspect
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# bench/cpu.py, beside this script: its cases are this benchmark's cases too.
from cpu import QUICK_SHAPES, SHAPES, config_name, make_cases

import poolkit

DEVICE = "cuda"
DTYPES = ("float32", "float16")
IMPLEMENTATIONS = ("poolkit", "torch", "cupy")
SEED = 0
# rtol and atol of the sums (average pooling, max backward), by dtype; max forward must be exact.
TOLERANCE = {"float32": 1e-5, "float16": 1e-3}
WARMUP = 3  # untimed calls after the checked first call
REPEATS, QUICK_REPEATS = 30, 5
L2_FLUSH_BYTES = 256 << 20  # written before each timed call: five times the L2 cache of an H100 or H200
THROUGHPUT_TARGET = 0.9  # poolkit's throughput / torch's, every row of the largest shape
BANDWIDTH_TARGET = 0.7  # poolkit's achieved bandwidth / copy bandwidth, the largest shape
CUPY_NHWC = "unavailable: cupyx.cudnn pooling takes C-contiguous NCHW arrays only (it would copy channels-last input)"
RESULTS = Path(__file__).resolve().parent / "results"

NOTES = [
    f"Times are in milliseconds: the median of the timed calls, each timed alone with CUDA events on torch's current stream after the "
    f"checked first call (which compiles poolkit's generic kernels) and {WARMUP} warm-up calls (the first compiles poolkit's kernel for the case); "
    f"the device is synchronized before and after every timed call, and the L2 cache flushed (a {L2_FLUSH_BYTES >> 20} MiB write) before it.",
    "Throughput ratio x/torch = torch's time / x's time: above 1, x is faster than torch.",
    "Achieved bandwidth = (bytes read + bytes written) / time, counting: forward, input + output; backward, grad_output + grad_input, "
    "and for max backward also x where poolkit recomputes each window's argmax from x, the int64 indices where it (or torch) reads them, "
    "x and the forward output (cuDNN). Copy bandwidth = 2 * input bytes / time of out.copy_(x), timed in the same run.",
    "torch's max forward on CUDA also writes int64 indices (F.max_pool2d goes through max_pool2d_with_indices); they are not counted.",
    "torch backward: torch.ops.aten.max_pool2d_with_indices_backward (indices from max_pool2d_with_indices, outside the timed region) "
    "and torch.ops.aten.avg_pool2d_backward; what autograd runs.",
    "poolkit: max_pool2d, avg_pool2d, max_pool2d_backward, avg_pool2d_backward with backend='cuda' on the torch tensors themselves; "
    "kernels on torch's current stream, outputs from torch's caching allocator, results back as torch tensors. Max backward takes the "
    "forward's indices (computed outside the timed region) where max_pool2d_backward has an indices parameter (row field poolkit_max_backward).",
    "cupy: cupyx.cudnn.pooling_forward / pooling_backward (cuDNN, CUDNN_POOLING_MAX and CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING); "
    "backward gets the forward output, computed outside the timed region. A cupy result that disagrees with torch's is reported, not timed.",
    "Inputs: standard normal, drawn in float32 on the GPU with a fixed seed, then cast. Checks against torch: max forward with torch.equal; "
    f"the sums with torch.allclose, rtol = atol = {TOLERANCE['float32']} (float32) or {TOLERANCE['float16']} (float16).",
    "NHWC rows: poolkit gets the (N, H, W, C) array with layout='NHWC', torch the same memory viewed as NCHW "
    "(x.permute(0, 3, 1, 2), channels_last). Shapes are always given as (N, C, H, W); array_shape is the array's own.",
]

# Imported by main() once it knows that there is a GPU to run on (see missing_gpu): without torch the
# benchmark says why it cannot run instead of failing on an import.
torch = F = None


def import_torch():
    """Import torch (and torch.nn.functional as F) into this module; return the error message if it cannot."""
    global torch, F
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as error:
        return f"torch cannot be imported ({error})"
    return None


# --- inputs -------------------------------------------------------------------


def output_shape(case):
    n, c, h, w = case["shape"]
    return (n, c) + tuple(poolkit.pool_output_size((h, w), case["kernel"], case["stride"], case["padding"]))


def in_memory_order(shape, layout):
    """An NCHW shape as the shape of an array in ``layout``."""
    n, c, h, w = shape
    return (n, h, w, c) if layout == "NHWC" else (n, c, h, w)


def make_inputs(case, dtype):
    """The input ``x`` and output gradient ``g`` of one case, on the GPU.

    Parameters
    ----------
    case : dict
        One of ``bench/cpu.py``'s cases: op, direction, shape (N, C, H, W), kernel, stride, padding, layout.
    dtype : {"float32", "float16"}

    Returns
    -------
    dict
        ``x`` and ``g``, contiguous arrays in the case's layout (what poolkit gets), ``xt`` and
        ``gt``, the same memory as NCHW tensors (what torch gets), and ``layout`` and ``dtype``.
    """
    layout = case["layout"]
    generator = torch.Generator(device=DEVICE).manual_seed(SEED)
    x = torch.randn(in_memory_order(case["shape"], layout), generator=generator, device=DEVICE).to(getattr(torch, dtype))
    g = torch.randn(in_memory_order(output_shape(case), layout), generator=generator, device=DEVICE).to(getattr(torch, dtype))
    xt, gt = (x.permute(0, 3, 1, 2), g.permute(0, 3, 1, 2)) if layout == "NHWC" else (x, g)
    return {"x": x, "g": g, "xt": xt, "gt": gt, "layout": layout, "dtype": dtype}


def nbytes(tensor):
    return tensor.numel() * tensor.element_size()


def takes_indices():
    """Whether this poolkit's max_pool2d_backward takes the forward's indices."""
    return "indices" in inspect.signature(poolkit.max_pool2d_backward).parameters


def traffic(name, case, data):
    """Bytes read and written by one call of implementation ``name``: see NOTES."""
    x, g = nbytes(data["x"]), nbytes(data["g"])
    if case["direction"] == "forward" or case["op"] == "avg":
        return x + g  # input and output, or grad_output and grad_input
    indices = data["g"].numel() * 8
    if name == "poolkit":
        return g + indices + x if takes_indices() else g + x + x  # grad_output, the indices or x (for the argmax), grad_input
    if name == "torch":
        return g + indices + x  # grad_output, int64 indices, grad_input
    return x + g + g + x  # cuDNN: x, the forward output, grad_output, grad_input


# --- the implementations --------------------------------------------------------


def poolkit_call(case, data):
    """A no-argument function running poolkit's cuda backend on the case, in its layout."""
    x, g, layout = data["x"], data["g"], data["layout"]
    k, s, p = case["kernel"], case["stride"], case["padding"]
    if case["direction"] == "forward":
        pool = poolkit.max_pool2d if case["op"] == "max" else poolkit.avg_pool2d
        return lambda: pool(x, k, s, p, layout=layout, backend="cuda")
    if case["op"] == "max" and takes_indices():
        # As torch's backward in training: the indices come from the forward pass, outside the timed region.
        _, indices = poolkit.max_pool2d(x, k, s, p, return_indices=True, layout=layout, backend="cuda")
        return lambda: poolkit.max_pool2d_backward(g, x, k, s, p, layout=layout, indices=indices, backend="cuda")
    backward = poolkit.max_pool2d_backward if case["op"] == "max" else poolkit.avg_pool2d_backward
    return lambda: backward(g, x, k, s, p, layout=layout, backend="cuda")


def torch_call(case, data):
    """A no-argument function running torch's CUDA op on the case (NCHW tensors, channels-last memory for NHWC)."""
    xt, gt = data["xt"], data["gt"]
    kernel, stride, padding = case["kernel"], case["stride"], case["padding"]
    k, s, p = [kernel] * 2, [stride] * 2, [padding] * 2
    if case["direction"] == "forward":
        pool = F.max_pool2d if case["op"] == "max" else F.avg_pool2d
        return lambda: pool(xt, kernel, stride, padding)
    if case["op"] == "avg":
        return lambda: torch.ops.aten.avg_pool2d_backward(gt, xt, k, s, p, False, True, None)
    # The indices come from the forward pass in training; keep them out of the timed region.
    _, indices = torch.ops.aten.max_pool2d_with_indices(xt, k, s, p)
    return lambda: torch.ops.aten.max_pool2d_with_indices_backward(gt, xt, k, s, p, [1, 1], False, indices)


def load_cupy():
    """cuDNN pooling through CuPy, if it can run here.

    Returns
    -------
    (dict or None, str)
        ``cupy``, ``cudnn`` (the ``cupyx.cudnn`` module) and ``modes`` (cuDNN's pooling
        mode by op), and "ok"; or None and why the cupy column stays empty.
    """
    try:
        import cupy
    except ImportError:
        return None, "not installed"
    try:
        from cupy.cuda import cudnn as libcudnn
        from cupyx import cudnn

        modes = {"max": libcudnn.CUDNN_POOLING_MAX, "avg": libcudnn.CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING}
        # One tiny pooling, to learn now whether cuDNN loads at all.
        cudnn.pooling_forward(cupy.ones((1, 1, 4, 4), cupy.float32), cupy.empty((1, 1, 2, 2), cupy.float32), (2, 2), (2, 2), (0, 0), modes["max"])
    except Exception as error:  # no cupyx.cudnn (CuPy 14 removed it), no libcudnn, or a cuDNN error
        return None, f"unavailable: CuPy {cupy.__version__} cannot pool with cuDNN ({type(error).__name__}: {error})"
    return {"cupy": cupy, "cudnn": cudnn, "modes": modes}, "ok"


def cupy_call(case, data, cupy_pooling):
    """A no-argument function running cuDNN's pooling through CuPy on the case (NCHW only)."""
    cupy, cudnn, mode = cupy_pooling["cupy"], cupy_pooling["cudnn"], cupy_pooling["modes"][case["op"]]
    x, g = cupy.asarray(data["xt"]), cupy.asarray(data["gt"])  # the same memory, no copy
    window = ((case["kernel"],) * 2, (case["stride"],) * 2, (case["padding"],) * 2)
    if case["direction"] == "forward":
        return lambda: cudnn.pooling_forward(x, cupy.empty(g.shape, x.dtype), *window, mode)
    y = cudnn.pooling_forward(x, cupy.empty(g.shape, x.dtype), *window, mode)  # outside the timed region
    return lambda: cudnn.pooling_backward(x, y, g, *window, mode)


def as_nchw_tensor(name, result, layout):
    """An implementation's result as a torch tensor indexed (N, C, H, W)."""
    if name == "cupy":
        return torch.as_tensor(result, device=DEVICE)
    if name == "poolkit" and layout == "NHWC":
        return result.permute(0, 3, 1, 2)
    return result


def disagreement(result, reference, exact, dtype):
    """None if ``result`` agrees with torch's ``reference``, else what differs."""
    if not isinstance(result, torch.Tensor):
        return f"a {type(result).__name__}, not a torch tensor"
    if result.shape != reference.shape or result.dtype != reference.dtype:
        return f"{tuple(result.shape)} {result.dtype}, torch's {tuple(reference.shape)} {reference.dtype}"
    tolerance = TOLERANCE[dtype]
    agree = torch.equal(result, reference) if exact else torch.allclose(result, reference, rtol=tolerance, atol=tolerance)
    if agree:
        return None
    return f"max |difference| = {(result.float() - reference.float()).abs().max().item():.3g}"


# --- timing -------------------------------------------------------------------


def measure(fn, repeats, flush):
    """Median time of one call to ``fn`` on the GPU, after WARMUP untimed calls.

    Parameters
    ----------
    fn : callable
        Launches the work; may return before the GPU is done.
    repeats : int
        How many calls to time.
    flush : torch.Tensor
        A buffer larger than the L2 cache, overwritten before each timed call.

    Returns
    -------
    dict
        ``ms`` (median milliseconds) and ``repeats``.
    """
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        flush.zero_()
        torch.cuda.synchronize()
        start.record()
        result = fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
        del result  # freed after the measurement
    return {"ms": statistics.median(samples), "repeats": repeats}


def gb_per_s(count, ms):
    """Gigabytes per second for ``count`` bytes moved in ``ms`` milliseconds (None if not timed)."""
    return None if ms is None else count / (ms * 1e-3) / 1e9


def copy_bandwidth(x, repeats, flush):
    """GB/s of a device-to-device copy of ``x``: it reads and writes ``x``'s bytes once each."""
    out = torch.empty_like(x)
    return gb_per_s(2 * nbytes(x), measure(lambda: out.copy_(x), repeats, flush)["ms"])


# --- one case, one row --------------------------------------------------------


def run_case(case, data, copy_gb_per_s, repeats, flush, cupy_pooling, cupy_status):
    """Check and time every implementation on one case; return its JSON row.

    Raises
    ------
    RuntimeError
        If poolkit's result disagrees with torch's.
    """
    layout, dtype = data["layout"], data["dtype"]
    shape = tuple(data["xt"].shape)
    described = f"{describe_case(case)} {dtype}"
    torch_fn = torch_call(case, data)
    reference = torch_fn()
    exact = case["op"] == "max" and case["direction"] == "forward"
    times, status, repeat_counts, bandwidth, fraction, ratio = {}, {}, {}, {}, {}, {}
    for name in IMPLEMENTATIONS:
        fn, status[name] = None, "ok"
        if name == "cupy" and cupy_pooling is None:
            status[name] = cupy_status
        elif name == "cupy" and layout == "NHWC":
            status[name] = CUPY_NHWC
        elif name == "torch":
            fn = torch_fn
        else:
            fn = poolkit_call(case, data) if name == "poolkit" else cupy_call(case, data, cupy_pooling)
            # The first call, which compiles poolkit's kernels, is checked and not timed.
            problem = disagreement(as_nchw_tensor(name, fn(), layout), reference, exact, dtype)
            if problem and name == "poolkit":
                raise RuntimeError(f"ABORT: poolkit disagrees with torch on {described}: {problem}")
            if problem:
                fn, status[name] = None, f"disagrees with torch, not timed: {problem}"
                print(f"warning: {name} disagrees with torch on {described}: {problem}", file=sys.stderr)
        timing = measure(fn, repeats, flush) if fn is not None else {"ms": None, "repeats": None}
        times[name], repeat_counts[name] = timing["ms"], timing["repeats"]
        bandwidth[name] = gb_per_s(traffic(name, case, data), times[name])
        fraction[name] = None if bandwidth[name] is None else bandwidth[name] / copy_gb_per_s
    for name in ("poolkit", "cupy"):
        ratio[f"{name}/torch"] = times["torch"] / times[name] if times[name] is not None else None
    return {
        "op": case["op"],
        "direction": case["direction"],
        "shape": list(shape),
        "array_shape": list(data["x"].shape),
        "layout": layout,
        "dtype": dtype,
        "config": config_name(case),
        "kernel": case["kernel"],
        "stride": case["stride"],
        "padding": case["padding"],
        "poolkit_max_backward": ("indices" if takes_indices() else "recompute") if case["op"] == "max" and case["direction"] == "backward" else None,
        "times_ms": times,
        "status": status,
        "repeats": repeat_counts,
        "throughput_vs_torch": ratio,
        "bytes": {name: traffic(name, case, data) for name in IMPLEMENTATIONS},
        "gb_per_s": bandwidth,
        "copy_gb_per_s": copy_gb_per_s,
        "fraction_of_copy": fraction,
    }


# --- output -------------------------------------------------------------------

COLUMNS = [("op", 3), ("dir", 8), ("dtype", 7), ("shape", 16), ("config", 6), ("layout", 6)]
COLUMNS += [(name, 8) for name in IMPLEMENTATIONS] + [("poolkit/torch", 13), ("cupy/torch", 10)]
COLUMNS += [("copy GB/s", 9), ("poolkit GB/s", 12), ("torch GB/s", 10), ("poolkit/copy", 12), ("torch/copy", 10)]
LEFT = 6  # the first six columns are text, aligned left


def format_number(value, digits=2):
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 100 else f"{value:.0f}"


def table_header(repeats):
    header = " ".join(f"{name:<{width}}" if i < LEFT else f"{name:>{width}}" for i, (name, width) in enumerate(COLUMNS))
    return (
        f"times in ms (median of {repeats} CUDA-event timings); x/torch = torch's time / x's: throughput, above 1 is faster than torch;\n"
        f"GB/s = (bytes read + written) / time; copy = out.copy_(x), 2 * bytes / time; x/copy = x's GB/s / copy's\n"
        f"{header}\n{'-' * len(header)}"
    )


def table_row(row):
    cells = [row["op"], row["direction"], row["dtype"], "x".join(map(str, row["shape"])), row["config"], row["layout"]]
    cells += [format_number(row["times_ms"][name], 4) for name in IMPLEMENTATIONS]
    cells += [format_number(row["throughput_vs_torch"][ratio]) for ratio in ("poolkit/torch", "cupy/torch")]
    cells += [format_number(row["copy_gb_per_s"], 0), format_number(row["gb_per_s"]["poolkit"], 0), format_number(row["gb_per_s"]["torch"], 0)]
    cells += [format_number(row["fraction_of_copy"][name]) for name in ("poolkit", "torch")]
    return " ".join(f"{cell:<{width}}" if i < LEFT else f"{cell:>{width}}" for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS)))


def describe_case(case):
    return f"{case['op']} {case['direction']} {tuple(case['shape'])} {config_name(case)} {case['layout']}"


def describe(row):
    return f"{row['op']} {row['direction']} {row['dtype']} {tuple(row['shape'])} {row['config']} {row['layout']}"


def targets(rows, largest):
    """The two acceptance numbers, row by row, on the largest shape: poolkit's throughput
    against torch's, and its share of the copy bandwidth."""
    chosen = [row for row in rows if tuple(row["shape"]) == tuple(largest)]
    wanted = [
        ("poolkit_throughput_vs_torch", f"poolkit cuda throughput / torch's, shape {tuple(largest)}", "throughput_vs_torch", "poolkit/torch", THROUGHPUT_TARGET),
        ("poolkit_fraction_of_copy_bandwidth", f"poolkit cuda achieved bandwidth / copy bandwidth, shape {tuple(largest)}", "fraction_of_copy", "poolkit", BANDWIDTH_TARGET),
    ]
    result = {}
    for key, description, field, column, threshold in wanted:
        checked = [{"row": describe(row), "value": row[field][column], "pass": row[field][column] >= threshold} for row in chosen]
        worst = min(checked, key=lambda entry: entry["value"], default=None)
        result[key] = {
            "description": description,
            "comparison": ">=",
            "threshold": threshold,
            "rows": checked,
            "worst": worst,
            "pass": all(entry["pass"] for entry in checked) if checked else None,
        }
    return result


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cupy_version():
    try:
        import cupy
    except ImportError:
        return None
    return cupy.__version__


def machine_info(cupy_status):
    import numba

    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "device": torch.cuda.get_device_name(),
        "device_memory_gib": round(properties.total_memory / 2**30, 1),
        "multiprocessors": properties.multi_processor_count,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "numba": numba.__version__,
        "numba_cuda": package_version("numba-cuda"),
        "cupy": cupy_version(),
        "cupy_cudnn": cupy_status,
        "poolkit": package_version("poolkit"),
    }


def missing_gpu():
    """Why this machine cannot run the benchmark, or None if it can."""
    problem = import_torch()
    if problem:
        return problem
    if not torch.cuda.is_available():
        return "no CUDA device found (torch.cuda.is_available() is False)"
    try:
        from numba import config, cuda
    except ImportError as error:
        return f"numba cannot be imported ({error})"
    if config.ENABLE_CUDASIM:
        return "NUMBA_ENABLE_CUDASIM is set, so poolkit's cuda backend would run on numba's simulator"
    if not cuda.is_available():
        return "torch finds a CUDA device but numba-cuda does not (numba.cuda.is_available() is False)"
    return None


def plan(args):
    """What a run with ``args`` does: (shapes, repeats, the cases, where the JSON goes)."""
    shapes, repeats = (QUICK_SHAPES, QUICK_REPEATS) if args.quick else (SHAPES, REPEATS)
    out = args.out or RESULTS / ("gpu-quick.json" if args.quick else "gpu.json")
    return shapes, repeats, make_cases(shapes), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small shapes (a smoke test); writes gpu-quick.json unless --out says otherwise")
    parser.add_argument("--out", type=Path, help="where to write the JSON results, the table beside it as .txt (default bench/results/gpu.json, or gpu-quick.json with --quick)")
    parser.add_argument("--dry-run", action="store_true", help="list the cases and where the results would go, and exit: needs no GPU")
    parser.add_argument("--check", action="store_true", help="only say whether this machine can run the benchmark (exit 0) or why not (exit 2)")
    args = parser.parse_args(argv)
    shapes, repeats, cases, out = plan(args)
    if args.dry_run:
        print(f"{len(cases)} cases x {len(DTYPES)} dtypes ({', '.join(DTYPES)}), {repeats} timed calls each; would write {out} and {out.with_suffix('.txt')}")
        for case in cases:
            print(f"  {describe_case(case)}")
        return 0
    problem = missing_gpu()
    if problem:
        print(f"{problem}: the GPU benchmark needs a CUDA device that torch and numba-cuda can use; run it on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2
    if args.check:
        print(f"GPU ready: {torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda}), numba-cuda {package_version('numba-cuda')}")
        return 0
    # Tiny grids (the small shapes) make numba warn about low occupancy on every launch.
    warnings.filterwarnings("ignore", message="Grid size .* will likely result in GPU under-utilization")
    started = time.perf_counter()
    report = []  # the printed table, also saved beside the JSON

    def say(line=""):
        report.append(line)
        print(line, flush=True)

    cupy_pooling, cupy_status = load_cupy()
    if cupy_pooling is None:
        print(f"warning: cupy column stays empty: {cupy_status}", file=sys.stderr)
    machine = machine_info(cupy_status)
    say(f"{machine['device']} ({machine['device_memory_gib']} GiB), CUDA {machine['cuda']}, torch {machine['torch']}, "
        f"numba {machine['numba']} (numba-cuda {machine['numba_cuda']}), numpy {machine['numpy']}, cupy {machine['cupy']} (cuDNN pooling: {cupy_status})")
    say(table_header(repeats))
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=DEVICE)
    rows = []
    for dtype in DTYPES:
        copies = {}  # copy bandwidth per input (shape and layout), measured once
        for case in cases:
            data = make_inputs(case, dtype)
            key = (tuple(case["shape"]), case["layout"])
            if key not in copies:
                copies[key] = copy_bandwidth(data["x"], repeats, flush)
            rows.append(run_case(case, data, copies[key], repeats, flush, cupy_pooling, cupy_status))
            say(table_row(rows[-1]))
            del data
        torch.cuda.empty_cache()
    goals = targets(rows, shapes[-1])
    results = {
        "benchmark": "poolkit GPU pooling: the cuda backend against torch (and cuDNN through CuPy), on the CPU benchmark's cases",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine,
        "method": {
            "shapes": [list(shape) for shape in shapes],
            "configs": sorted({config_name(case) for case in cases}),
            "dtypes": list(DTYPES),
            "seed": SEED,
            "warmup": WARMUP,
            "repeats": repeats,
            "statistic": "median",
            "timer": "torch.cuda.Event",
            "l2_flush_bytes": L2_FLUSH_BYTES,
            "tolerance": TOLERANCE,
            "notes": NOTES,
        },
        "implementations": list(IMPLEMENTATIONS),
        "rows": rows,
        "targets": goals,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    say()
    say("Acceptance numbers (measured in this run):")
    for goal in goals.values():
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[goal["pass"]]
        if goal["worst"] is None:
            say(f"  {goal['description']}: not measured (target {goal['comparison']} {goal['threshold']:g}) {verdict}")
            continue
        worst = goal["worst"]
        say(f"  {goal['description']}: worst {worst['value']:.2f} ({worst['row']}) (target {goal['comparison']} {goal['threshold']:g}) {verdict}")
        for entry in goal["rows"]:
            say(f"    {entry['row']:<56} {entry['value']:6.2f} {'PASS' if entry['pass'] else 'FAIL'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".txt").write_text("\n".join(report) + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.txt').name} in {results['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
