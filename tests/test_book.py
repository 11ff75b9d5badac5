"""The book's chapters: each runs from top to bottom, states the lecture's numbers
(computed and glued, never typed), and pairs every MXNet cell with a PyTorch one.

The expected values are the lecture's, written here by hand: if a chapter's
computation changed, the book would contradict the lecture and this fails.
"""

import json

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
        # A one-pixel shift of the edge is still seen after 2x2 max pooling.
        "ch1_shifted_response_before_pooling": 0,
        "ch1_shifted_response_after_pooling": 1,
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
    },
    "03-multiple-channels.md": {
        # X = 0..15 and X + 1 as two channels, 3x3 max pooling, padding 1, stride 2.
        "ch3_channel0": [[5, 7], [13, 15]],
        "ch3_channel1": [[6, 8], [14, 16]],
        "ch3_out_shape": [1, 2, 2, 2],
        "ch3_out_shape_mx": [1, 2, 2, 2],
        "ch3_layouts_agree": True,  # NCHW and NHWC give the same numbers
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


def test_the_benchmark_chapter_quotes_the_recorded_results():
    """Every target the chapter quotes is the recorded value (to the 3 digits it
    shows), with its verdict; and it says whether GPU results exist."""
    results = json.loads((BOOK.parent / "bench" / "results" / "cpu.json").read_text())
    values = glued(execute(BOOK / "07-how-fast.md"))
    for name, target in results["targets"].items():
        quoted = values[f"ch7_target_{name}"]
        assert quoted == pytest.approx(target["value"], rel=5e-3), name
        assert values[f"ch7_target_{name}_pass"] == ("pass" if target["pass"] else "FAIL"), name
    gpu_recorded = (BOOK.parent / "bench" / "results" / "gpu.json").exists()
    assert ("No GPU results" in values["ch7_gpu_status"]) != gpu_recorded
