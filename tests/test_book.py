"""The book's chapters: each runs from top to bottom, states the lecture's numbers
(computed and glued, never typed), and pairs every MXNet cell with a PyTorch one.

The expected values are the lecture's, written here by hand: if a chapter's
computation changed, the book would contradict the lecture and this fails.
"""

import decimal
import json
import math

import pytest
from myst_nb.core.read import read_myst_markdown_notebook

from chapters import BOOK, chapters, execute, glued

FRAMEWORKS = ("mxnet", "pytorch")

# What each chapter must have glued: {chapter file: {glue name: value}}.
LECTURE = {
    "01-pooling-by-hand.md": {
        "ch1_max": [[4, 5], [7, 8]],
        "ch1_avg": [[2, 3], [5, 6]],
        # MXNet's raw operator moves the window by 1, PyTorch's functional by the window.
        "ch1_default_shape_mxnet": [1, 1, 2, 2],
        "ch1_default_shape_torch": [1, 1, 1, 1],
        # At stride 1, a one-pixel shift of the edge is still seen after 2x2 max pooling.
        "ch1_shifted_response_before_pooling": 0,
        "ch1_shifted_response_after_pooling": 1,
        # At the default stride 2 it is not: the edge at column 1, then 2, pools to these.
        "ch1_stride2_pooled": [1, 0, 0],
        "ch1_stride2_pooled_shifted": [0, 1, 0],
    },
    "02-padding-and-stride.md": {
        "ch2_max_3x3": [[10]],  # the stride defaults to the window
        "ch2_max_3x3_mxnet": [[10]],
        "ch2_max_3x3_torch": [[10]],
        "ch2_max_pad1_stride2": [[5, 7], [13, 15]],
        "ch2_max_pad1_stride2_mxnet": [[5, 7], [13, 15]],
        "ch2_max_pad1_stride2_torch": [[5, 7], [13, 15]],
        "ch2_max_rect": [[5, 7], [13, 15]],  # a (2, 3) window, padding (0, 1), stride (2, 3)
        "ch2_max_rect_mxnet": [[5, 7], [13, 15]],
        "ch2_max_rect_torch": [[5, 7], [13, 15]],
        # n=5, k=2, s=2, p=1: the last window would start in the right padding;
        # PyTorch's ceil_mode drops it, MXNet's 'full' keeps it.
        "ch2_ceil_torch_shape": [1, 1, 3, 3],
        "ch2_full_mxnet_shape": [1, 1, 4, 4],
        # The raw operator's stride is 1.
        "ch2_raw_default_stride_mxnet": [[10, 11], [14, 15]],
        # count_include_pad: the top-left 3x3 window with padding 1 holds 0+1+4+5 = 10.
        "ch2_avg_corner_exclude_torch": 2.5,
        "ch2_avg_corner_exclude_mxnet": 2.5,
        # PyTorch accepts padding up to half the kernel: k = 2, 3, 4, 5 allow 1, 1, 2, 2.
        "ch2_wide_pad_largest": [1, 1, 2, 2],
    },
    "03-multiple-channels.md": {
        # X = 0..15 and X + 1 as two channels, 3x3 max pooling, padding 1, stride 2.
        "ch3_channel0": [[5, 7], [13, 15]],
        "ch3_channel1": [[6, 8], [14, 16]],
        "ch3_out_shape": [1, 2, 2, 2],
        "ch3_out_shape_mx": [1, 2, 2, 2],
        "ch3_layouts_agree": True,  # NCHW and NHWC give the same numbers
        # A tie [[2, 2], [1, 0]]: max pooling sends the gradient to the first 2, amax splits it.
        "ch3_tie_pool_grad": [[1, 0], [0, 0]],
        "ch3_tie_amax_grad": [[0.5, 0.5], [0.0, 0.0]],
    },
    "04-global-average-pooling.md": {
        # GlobalAvgPool2D and AdaptiveAvgPool2d((1, 1)) on X and X + 1: the means 7.5 and 8.5.
        "ch4_gap_mxnet": [7.5, 8.5],
        "ch4_gap_torch": [7.5, 8.5],
        "ch4_gap_shape": [1, 2, 1, 1],
        # 512 channels of 7x7 into 10 classes: flatten + dense vs GAP + dense.
        "ch4_params_flatten": 512 * 7 * 7 * 10 + 10,
        "ch4_params_gap": 512 * 10 + 10,
        # 7 inputs into 4 bins: [floor(i*7/4), ceil((i+1)*7/4)), overlapping and uneven.
        "ch4_bins_7_4": [[0, 2], [1, 4], [3, 6], [5, 7]],
        "ch4_bin_sizes_7_4": [2, 3, 3, 2],
        "ch4_bins_torch": [[0, 2], [1, 4], [3, 6], [5, 7]],
        "ch4_bins_mxnet": [[0, 2], [1, 4], [3, 6], [5, 7]],
    },
    "05-loops-to-vectors.md": {
        # A 2x2 window at stride 2 over 0..15 as four strided views, and their maximum.
        "ch5_taps": [[[0, 2], [8, 10]], [[1, 3], [9, 11]], [[4, 6], [12, 14]], [[5, 7], [13, 15]]],
        "ch5_taps_max": [[5, 7], [13, 15]],
        "ch5_vec_matches_poolkit": True,
        "ch5_vec_matches_mxnet": True,
        "ch5_vec_matches_torch": True,
        # Only the argmax receives the gradient; G = [[1, 2], [3, 4]].
        "ch5_max_grad": [[0, 1, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]],
        "ch5_max_grad_mxnet_agrees": True,
        "ch5_max_grad_torch_agrees": True,
        # Overlapping windows add up at a shared argmax: 1 + 2 + 3 + 4.
        "ch5_overlap_centre": 10,
        # Average pooling, count_include_pad=False: the corner is in one window of 4 inputs.
        "ch5_avg_grad_corner_exclude": 0.25,
        "ch5_avg_grad_include_is_coverage_over_9": True,
        "ch5_avg_grad_mxnet_agrees": True,
        "ch5_avg_grad_torch_agrees": True,
        # Ceil mode: 0..8 (3x3), 2x2 window, stride 2: the windows past the end
        # divide by what they hold (2, 2, 1), not by 4.
        "ch5_ceil_avg_torch": [[2.0, 3.5], [6.5, 8.0]],
        "ch5_ceil_avg_mxnet": [[2.0, 3.5], [6.5, 8.0]],
        "ch5_ceil_top_right_torch": 3.5,
        "ch5_ceil_top_right_mxnet": 3.5,
        "ch5_ceil_top_right_over_k2": 1.75,
        "ch5_ceil_top_right_divisor": 2,
        "ch5_ceil_corner_divisor": 1,
        # 0..15, 3x3 window, stride 2, padding 1, ceil mode: windows start at rows -1, 1, 3
        # and stop at the end of the padded input (row 4): 3, 3 and 2 rows.
        "ch5_ceil_starts": [-1, 1, 3],
        "ch5_ceil_rows_counted": [3, 3, 2],
        "ch5_ceil_divisor_top_left": 9,  # holds 4: the padding counts
        "ch5_ceil_holds_top_left": 4,
        "ch5_ceil_divisor_bottom_right": 4,  # holds 1: the overhang does not count
        "ch5_ceil_holds_bottom_right": 1,
        "ch5_ceil_divisors_rule": [[9, 9, 6], [9, 9, 6], [6, 6, 4]],
        "ch5_ceil_divisors_torch": [[9, 9, 6], [9, 9, 6], [6, 6, 4]],
        "ch5_ceil_divisors_mxnet": [[9, 9, 6], [9, 9, 6], [6, 6, 4]],
        "ch5_ceil_holds": [[4, 6, 2], [6, 9, 3], [2, 3, 1]],
        "ch5_ceil_grad_rule": True,
        # The gradient's shares on 0..8: 1/4, 1/2 and 1. MXNet's oneDNN backward divides
        # by 4 everywhere; its own kernel (oneDNN off) agrees with PyTorch.
        "ch5_ceil_grad_torch": [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]],
        "ch5_ceil_grad_mxnet": [[0.25, 0.25, 0.25], [0.25, 0.25, 0.25], [0.25, 0.25, 0.25]],
        "ch5_ceil_grad_mxnet_native": [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]],
        "ch5_ceil_grad_poolkit_is_torch": True,
        "ch5_ceil_grad_mxnet_native_is_torch": True,
        "ch5_ceil_forward_poolkit_agrees": True,
    },
    "06-pooling-on-the-gpu.md": {
        "ch6_kernel_matches_numpy": True,  # the chapter's own kernel, on the simulator
        "ch6_kernel_one_block_matches": True,
        "ch6_kernel_matches_torch": True,
        "ch6_poolkit_cuda_matches_numpy": True,
    },
}


def _tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def test_every_chapter_is_in_the_table_of_contents():
    toc = (BOOK.parent / "_toc.yml").read_text()
    assert chapters(), "no chapters found in book/"
    for chapter in chapters():
        assert f"file: book/{chapter.stem}\n" in toc, f"{chapter.name} is missing from _toc.yml"


def test_the_lecture_numbers_have_expectations_for_existing_chapters():
    names = {chapter.name for chapter in chapters()}
    assert set(LECTURE) <= names, f"expectations for missing chapters: {set(LECTURE) - names}"


@pytest.mark.parametrize("chapter", chapters(), ids=lambda path: path.stem)
def test_framework_cells_come_in_mxnet_then_pytorch_pairs(chapter):
    cells = [cell for cell in read_myst_markdown_notebook(chapter.read_text()).cells if cell.cell_type == "code"]
    frameworks = [next((tag for tag in FRAMEWORKS if tag in _tags(cell)), None) for cell in cells]
    for i, framework in enumerate(frameworks):
        if framework == "mxnet":
            assert i + 1 < len(frameworks) and frameworks[i + 1] == "pytorch", (
                f"{chapter.name}: the MXNet cell #{i + 1} is not followed by a PyTorch cell:\n{cells[i].source[:200]}"
            )
        elif framework == "pytorch":
            assert i > 0 and frameworks[i - 1] == "mxnet", f"{chapter.name}: the PyTorch cell #{i + 1} has no MXNet cell before it"


# What each framework's arrays print as: an MXNet tab that shows a torch tensor
# ran the PyTorch cell's definitions (both cells run, in one kernel).
FOREIGN = {"mxnet": "tensor(", "pytorch": "<NDArray"}


def _text(cell):
    return "".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", "")) for output in cell.get("outputs", []))


@pytest.mark.parametrize("chapter", chapters(), ids=lambda path: path.stem)
def test_chapter_runs_and_glues_the_lecture_numbers(chapter):
    notebook = execute(chapter)
    for cell in notebook.cells:
        for framework, foreign in FOREIGN.items():
            if framework in _tags(cell):
                assert foreign not in _text(cell), f"{chapter.name}: a {framework} cell shows the other framework's array:\n{cell.source[:300]}"
    values = glued(notebook)
    assert values, f"{chapter.name} glues no computed value"
    for name, expected in LECTURE.get(chapter.name, {}).items():
        assert name in values, f"{chapter.name} does not glue {name!r}"
        assert values[name] == expected, f"{chapter.name}: {name} is {values[name]!r}, the lecture says {expected!r}"


def _to_the_digits_shown(quoted, expected):
    """Whether ``quoted``, a number as the chapter prints it, is ``expected`` rounded
    to the digits it shows (0.918 stands for [0.9175, 0.9185], 937 for [936.5, 937.5])."""
    last_digit = decimal.Decimal(repr(quoted)).as_tuple().exponent
    return abs(quoted - expected) <= 0.5 * 10.0**last_digit * (1 + 1e-9)


def _recorded_cpu_numbers(cpu):
    """What chapter 7 should quote, worked out here from bench/results/cpu.json:
    {glue name: value} (the chapter's own code computes them separately)."""
    rows = cpu["rows"]

    def times(op, direction, shape, layout="NCHW"):
        (row,) = [r for r in rows if (r["op"], r["direction"], tuple(r["shape"]), r["config"], r["layout"]) == (op, direction, tuple(shape), "k3s2p1", layout)]
        return row["times_ms"], row["ratios"]

    shapes = sorted({tuple(r["shape"]) for r in rows if r["layout"] == "NCHW"}, key=math.prod)
    small, plane, large = shapes[0], shapes[1], shapes[-1]
    cases = [("max", "forward"), ("max", "backward"), ("avg", "forward"), ("avg", "backward")]
    mid = max((shape for shape in shapes if all(times(op, d, shape)[0]["naive"] is not None for op, d in cases)), key=math.prod)
    x_bytes = {shape: math.prod(shape) * 4 for shape in shapes}  # float32

    def out_bytes(shape):
        n, c, h, w = shape
        return n * c * ((h + 2 - 3) // 2 + 1) * ((w + 2 - 3) // 2 + 1) * 4  # kernel 3, stride 2, padding 1

    def traffic(op, direction, shape):
        if direction == "forward":
            return x_bytes[shape] + out_bytes(shape)
        return out_bytes(shape) + x_bytes[shape] * (2 if op == "max" else 1)

    def copy_gbs(t, shape):
        return 2 * x_bytes[shape] / (t["copy"] * 1e-3) / 1e9

    def fraction(op, direction, name):
        t, _ = times(op, direction, large)
        return traffic(op, direction, large) / t[name] / (2 * x_bytes[large] / t["copy"])

    def visits(shape):
        return out_bytes(shape) // 4 * 9

    t_small, _ = times("max", "forward", small)
    t_plane, r_plane = times("max", "forward", plane)
    t_mid, r_mid = times("max", "forward", mid)
    t_large, r_large = times("max", "forward", large)
    label = {"numpy": "NumPy", "numba": "numba", "torch": "PyTorch", "mxnet": "MXNet"}
    machine, load = cpu["machine"], cpu["load_average"]
    counts = [r["repeats"][name]["repeats"] for r in rows for name in r["repeats"] if r["repeats"][name]]
    expected = {
        "ch7_cpu_model": machine["cpu_model"],
        "ch7_cpu_count": machine["cpu_count"],
        "ch7_torch_threads": machine["torch_num_threads"],
        "ch7_date": cpu["date"][:10],
        "ch7_total_s": cpu["total_seconds"],
        "ch7_n_rows": len(rows),
        "ch7_repeats_min": min(counts),
        "ch7_repeats_max": max(counts),
        "ch7_load_start": load["start"][0],
        "ch7_load_end": load["end"][0],
        "ch7_small_shape": str(small),
        "ch7_p1_shape": str(mid),
        "ch7_plane_shape": str(plane),
        "ch7_large_shape": str(large),
        "ch7_small_elements": math.prod(small),
        "ch7_plane_over_small_elements": math.prod(plane) // math.prod(small),
        "ch7_size_ratio": math.prod(large) // math.prod(mid),
        "ch7_p1_visits": visits(mid),
        "ch7_p1_naive_ms": t_mid["naive"],
        "ch7_p1_naive_over_numpy": r_mid["naive/numpy"],
        "ch7_p1_naive_over_numba": t_mid["naive"] / t_mid["numba"],
        "ch7_p1_orders": math.floor(math.log10(t_mid["naive"] / t_mid["numba"])),
        "ch7_p1_numpy_over_numba": t_mid["numpy"] / t_mid["numba"],
        "ch7_naive_us_per_visit": t_mid["naive"] * 1e3 / visits(mid),
        "ch7_plane_naive_over_numpy": r_plane["naive/numpy"],
        "ch7_plane_numpy_us": t_plane["numpy"] * 1e3,
        "ch7_plane_naive_us_per_visit": t_plane["naive"] * 1e3 / visits(plane),
        "ch7_numba_time_ratio": t_large["numba"] / t_mid["numba"],
        "ch7_copy_time_ratio": t_large["copy"] / t_mid["copy"],
        "ch7_p1_mb": x_bytes[mid] / 1e6,
        "ch7_large_mb": x_bytes[large] / 1e6,
        "ch7_copy_gbs_p1": copy_gbs(t_mid, mid),
        "ch7_copy_gbs_large": copy_gbs(t_large, large),
        "ch7_copy_gbs": copy_gbs(t_large, large),
        "ch7_copy_gbs_min": min(copy_gbs(r["times_ms"], large) for r in rows if tuple(r["shape"]) == large),
        "ch7_copy_gbs_max": max(copy_gbs(r["times_ms"], large) for r in rows if tuple(r["shape"]) == large),
        "ch7_ops_per_byte": (9 / 4) / (4 + 4 / 4),
        "ch7_numba_gbs": traffic("max", "forward", large) / (t_large["numba"] * 1e-3) / 1e9,
        "ch7_numba_copy_time_ratio": r_large["numba/copy"],
        "ch7_numba_torch_max_backward": times("max", "backward", large)[1]["numba/torch"],
        "ch7_numba_copy_fraction_avg_forward": fraction("avg", "forward", "numba"),
        "ch7_above_copy": " and ".join(label[n] for n in label if fraction("max", "forward", n) > 1) or "none",
        "ch7_nhwc_stride_bytes": 4 * large[1],
        "ch7_torch_nhwc_over_numba_nchw": times("max", "forward", large, "NHWC")[0]["torch"] / t_large["numba"],
    }
    for name in ("naive", "numpy", "numba", "torch", "mxnet", "copy"):
        expected[f"ch7_small_{name}_us"] = t_small[name] * 1e3
    for name in ("numpy", "numba", "torch", "mxnet"):
        expected[f"ch7_{name}_copy_fraction"] = fraction("max", "forward", name)
    for name in ("numpy", "numba", "torch"):
        expected[f"ch7_{name}_copy_fraction_max_backward"] = fraction("max", "backward", name)
    for op in ("max", "avg"):
        nchw, nhwc = times(op, "forward", large)[0], times(op, "forward", large, "NHWC")[0]
        expected[f"ch7_torch_nhwc_speedup_{op}"] = nchw["torch"] / nhwc["torch"]
        expected[f"ch7_numba_nhwc_ratio_{op}"] = nhwc["numba"] / nchw["numba"]
        expected[f"ch7_mxnet_nhwc_slowdown_{op}"] = nhwc["mxnet"] / nchw["mxnet"]
        expected[f"ch7_numpy_nhwc_ratio_{op}"] = nhwc["numpy"] / nchw["numpy"]
    for layout in ("NCHW", "NHWC"):
        t = times("max", "forward", large, layout)[0]
        expected[f"ch7_fastest_{layout.lower()}"] = label[min(label, key=lambda name: t[name])]
    return expected


# What a course page must not say: the project's targets and verdicts live in bench/README.md.
STATUS_WORDS = ("FAIL", "PASS", "not measured", "No GPU results", "target")


def test_the_benchmark_chapter_quotes_the_recorded_results():
    """Every number chapter 7 quotes is the value recorded in bench/results/cpu.json,
    to the digits it shows; and the chapter states no targets or verdicts."""
    cpu = json.loads((BOOK.parent / "bench" / "results" / "cpu.json").read_text())
    notebook = execute(BOOK / "07-how-fast.md")
    values = {name: value for name, value in glued(notebook).items() if name.startswith("ch7_")}
    expected = _recorded_cpu_numbers(cpu)
    numbers = {name for name, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert numbers <= set(expected), f"chapter 7 quotes numbers this test does not check: {sorted(numbers - set(expected))}"
    for name, want in expected.items():
        assert name in values, f"chapter 7 does not glue {name!r}"
        quoted = values[name]
        if isinstance(want, str):
            assert quoted == want, f"{name}: the chapter says {quoted!r}, the recorded run {want!r}"
        else:
            assert _to_the_digits_shown(quoted, want), f"{name}: the chapter says {quoted!r}, the recorded run {want!r}"
    shown = (BOOK / "07-how-fast.md").read_text().split("## Exercises")[0] + "".join(_text(cell) for cell in notebook.cells)
    for word in STATUS_WORDS:
        assert word not in shown, f"chapter 7 says {word!r}: the project's targets belong in bench/README.md"


def test_bench_readme_lists_every_recorded_target():
    """The targets that the recorded benchmark runs checked are listed in bench/README.md
    (with the small-input time of cpu.py and the two of gpu.py, which has no recorded run here)."""
    readme = (BOOK.parent / "bench" / "README.md").read_text()
    results = BOOK.parent / "bench" / "results"
    keys = ["small_input_us", "poolkit_throughput_vs_torch", "poolkit_fraction_of_copy_bandwidth"]
    for name in ("cpu.json", "gpu.json", "grading.json"):
        if (results / name).exists():
            keys += json.loads((results / name).read_text())["targets"]
    for key in keys:
        assert f"`{key}`" in readme, f"bench/README.md does not list the target {key!r}"
