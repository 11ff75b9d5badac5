"""The exercises: nbgrader's source notebooks in ``solutions/`` and the student
release in ``exercises/`` that ``make release`` generates from them.

- the committed release is what nbgrader makes of today's sources, and holds
  neither solutions nor hidden tests;
- every test cell grades one question of the course's ``solutions/questions.py``, with its points;
- the sources, executed in PyTorch and in MXNet, earn every test cell's points,
  and the unmodified release earns none (without an error in the cells before);
- the questions recognise the mistakes they name, and the vectorize questions
  reject a loop over every output element;
- what a student reads: an off-by-one output size named as such, a wrong value
  rounded with the part of the input it depends on, a scalar as "the value", a
  loop blamed on the function that has it, and ``poolkit check``'s report clear
  of the kernel's stderr.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from poolkit.grader import checks as grading
from poolkit.grader.course import questions

from chapters import run

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = questions(ROOT / "solutions" / "questions.py")
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"
ASSIGNMENTS = ["pool2d", "padding-stride", "channels", "global-adaptive", "vectorize", "cuda-kernel", "conventions"]

TEST_CELL = """score = check("{key}", {function}, FRAMEWORK)
### BEGIN HIDDEN TESTS
score += check("{key}", {function}, FRAMEWORK, hidden=True)
### END HIDDEN TESTS
score"""
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "hidden=True")


def _source(name):
    return SOLUTIONS / name / f"{name}.ipynb"


def _release(name):
    return EXERCISES / name / f"{name}.ipynb"


def _read(path):
    return nbformat.read(path, as_version=4)


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _test_cells(notebook):
    return [cell for cell in notebook.cells if _nbgrader(cell).get("grade") and cell.cell_type == "code"]


def _content(notebook):
    """What a release is made of, without what Jupyter adds on save (cell ids)."""
    cells = [(cell.cell_type, cell.source, dict(cell.metadata)) for cell in notebook.cells]
    return cells, dict(notebook.metadata)


# --- the release --------------------------------------------------------------


def _listing(folder):
    """The names in ``folder``, without what Jupyter and Python leave behind (which nbgrader ignores)."""
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith((".", "__pycache__")))


def test_there_is_one_source_and_one_released_notebook_per_assignment():
    assert _listing(SOLUTIONS) == sorted([*ASSIGNMENTS, "questions.py"]), "solutions/ holds the assignments and the course's questions"
    assert _listing(EXERCISES) == sorted(ASSIGNMENTS), "the release holds the assignments only (never the questions)"
    for folder in (SOLUTIONS, EXERCISES):
        for name in ASSIGNMENTS:
            assert _listing(folder / name) == [f"{name}.ipynb"], f"{folder / name} holds other files"


def test_the_committed_release_is_what_nbgrader_makes_of_the_sources(tmp_path):
    """Generate the release from a copy of solutions/ with the course's own
    nbgrader_config.py (its paths are relative to it), and compare."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(SOLUTIONS, tmp_path / "solutions")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.CourseDirectory.db_url == f"sqlite:///{tmp_path / '_build' / 'nbgrader' / 'gradebook.db'}"
    with pytest.MonkeyPatch.context() as patch:
        # A new gradebook runs `alembic`, which lives beside this Python.
        patch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        api = NbGraderAPI(config=config)
        for name in ASSIGNMENTS:
            result = api.generate_assignment(name, force=True)
            assert result["success"], result.get("error") or result.get("log")
    assert _listing(tmp_path / "exercises") == sorted(ASSIGNMENTS)
    for name in ASSIGNMENTS:
        fresh, committed = _content(_read(tmp_path / "exercises" / name / f"{name}.ipynb")), _content(_read(_release(name)))
        assert fresh == committed, f"exercises/{name} is not the release of solutions/{name}: run `make release`"
    assert not (tmp_path / "gradebook.db").exists(), "the gradebook belongs in _build/nbgrader/"


def _solution_lines(notebook):
    """The lines of the source that only its solution regions hold."""
    inside, outside = set(), set()
    for cell in notebook.cells:
        hiding = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                hiding = True
            elif "### END SOLUTION" in line:
                hiding = False
            elif line.strip():
                (inside if hiding else outside).add(line.strip())
    return inside - outside


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_release_holds_no_solution_and_no_hidden_test(name):
    source, release = _read(_source(name)), _read(_release(name))
    text = "\n".join(cell.source for cell in release.cells)
    for marker in MARKERS:
        assert marker not in text, f"exercises/{name} shows {marker!r}"
    leaked = sorted(line for line in _solution_lines(source) if line in {line.strip() for line in text.splitlines()})
    assert not leaked, f"exercises/{name} holds solution code: {leaked}"
    solutions = [cell for cell in release.cells if _nbgrader(cell).get("solution")]
    assert solutions and all("raise NotImplementedError()" in cell.source for cell in solutions)
    for cell in _test_cells(release):
        key = _nbgrader(cell)["grade_id"]
        assert cell.source == f'score = check("{key}", {QUESTIONS[key].function}, FRAMEWORK)\nscore', cell.source


# --- the test cells and the questions -----------------------------------------


def test_every_test_cell_grades_a_question_with_its_points_and_every_question_is_graded_once():
    graded = []
    for name in ASSIGNMENTS:
        notebook = _read(_source(name))
        first = next(cell for cell in notebook.cells if cell.cell_type == "code")
        assert first.source == 'FRAMEWORK = "pytorch"  # or "mxnet"' and not _nbgrader(first), f"{name}: the first code cell must set FRAMEWORK"
        assert notebook.metadata["kernelspec"]["name"] == "python3"
        for cell in _test_cells(notebook):
            key = _nbgrader(cell)["grade_id"]
            assert key in QUESTIONS, f"{name}: test cell {key!r} grades no question"
            question = QUESTIONS[key]
            assert _nbgrader(cell) == {"grade": True, "grade_id": key, "locked": True, "points": question.points, "schema_version": 3, "solution": False, "task": False}
            assert cell.source == TEST_CELL.format(key=key, function=question.function)
            graded.append(key)
        assert len(_test_cells(notebook)) >= 2, f"{name} has fewer than two questions"
    assert sorted(graded) == sorted(QUESTIONS), "every question is graded by exactly one test cell"


@pytest.mark.parametrize("key", QUESTIONS)
def test_full_marks_add_up_to_exactly_the_points(key):
    # nbgrader refuses a partial credit above the cell's points, so the two
    # rounded parts that check() returns must not add up to a hair more.
    question = QUESTIONS[key]
    visible, hidden = (round(len(cases) * question.points_per_case, 6) for cases in (question.visible, question.hidden_cases()))
    assert visible + hidden == question.points
    assert 2 <= question.points <= 4 and question.visible and question.hidden_count


def _tracks():
    """Every question as each framework's track grades it."""
    return [question.in_framework(framework) for question in QUESTIONS.values() for framework in grading.FRAMEWORKS]


def test_every_mistake_is_recognised_on_some_case():
    """A named mistake, made on a question's cases, is reported with its cause
    on at least one case (of one of the questions that share it, in a track
    that names it): none is unreachable, or hidden behind an earlier mistake
    that gives the same answer."""
    recognised = {cause: 0 for question in _tracks() for cause in question.mistakes}
    for question in _tracks():
        for cause, mistaken in question.mistakes.items():
            for case in question.visible + question.hidden_cases(np.random.default_rng(0)):
                try:
                    answer = grading.to_numpy(mistaken(*case.args, **case.kwargs))
                except ValueError:  # a mistake of the other mode, or of batched input only
                    continue
                recognised[cause] += grading.judge(question, case, answer, None).message.endswith(f"Likely cause: {cause}")
    assert all(recognised.values()), [cause for cause, count in recognised.items() if not count]


# --- the notebooks, executed ----------------------------------------------------


def _execute(path, framework=None):
    notebook = _read(path)
    if framework:
        first = next(cell for cell in notebook.cells if cell.cell_type == "code")
        first.source = f'FRAMEWORK = "{framework}"'
    return run(notebook, path.parent, timeout=120)


def _scores(notebook):
    """{grade_id: (points earned as nbgrader reads them, points, printed text)} of every test cell."""
    scores = {}
    for cell in _test_cells(notebook):
        key, outputs = _nbgrader(cell)["grade_id"], cell.outputs
        stderr = [output.text for output in outputs if output.output_type == "stream" and output.name == "stderr"]
        assert not stderr, f"{key}: a test cell that writes to stderr gets no points from nbgrader: {stderr}"
        results = [output for output in outputs if output.output_type == "execute_result"]
        assert len(results) == 1, f"{key}: no score shown"
        printed = "".join(output.text for output in outputs if output.output_type == "stream")
        scores[key] = (float(results[0].data["text/plain"]), _nbgrader(cell)["points"], printed)
    return scores


@pytest.mark.parametrize("framework", grading.FRAMEWORKS)
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_solutions_earn_every_point(name, framework):
    scores = _scores(_execute(_source(name), framework))
    for key, (earned, points, printed) in scores.items():
        assert earned == points, f"{name} in {framework}: {key} earned {earned} of {points}:\n{printed}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_unmodified_release_runs_and_earns_nothing(name):
    scores = _scores(_execute(_release(name)))
    for key, (earned, _, printed) in scores.items():
        assert earned == 0.0, f"{key} earned {earned} with no code written"
        assert "FAIL" in printed and "not written yet" in printed, printed


# --- the mistakes the questions recognise ----------------------------------------
# Wrong "student" functions, written with NumPy (the framework's tensors convert
# with np.asarray), each making one mistake a question names.


def _cause(key, words, framework="pytorch"):
    """The likely cause of question ``key`` (in ``framework``'s track) that contains ``words``."""
    (cause,) = [cause for cause in QUESTIONS[key].in_framework(framework).mistakes if words in cause]
    return cause


def _reports(key, function, cause, hidden=False, framework="pytorch"):
    messages = [outcome.message for outcome in grading.run(key, function, framework, hidden=hidden)]
    assert any(message.endswith(f"Likely cause: {cause}") for message in messages), messages
    return messages


def _loop_pool(X, pool_size, padding=(0, 0), stride=None, mode="max", *, fill=None, count_pad=True, default_stride=None):
    """Pooling of the last two axes, one output at a time; the keywords make the mistakes."""
    X = np.asarray(X, dtype=float)
    (p_h, p_w), (pad_h, pad_w) = pool_size, padding
    s_h, s_w = stride or default_stride or pool_size
    fill = (-np.inf if mode == "max" else 0.0) if fill is None else fill
    widths = [(0, 0)] * (X.ndim - 2) + [(pad_h, pad_h), (pad_w, pad_w)]
    Xp, inside = np.pad(X, widths, constant_values=fill), np.pad(np.ones(X.shape), widths)
    out = ((Xp.shape[-2] - p_h) // s_h + 1, (Xp.shape[-1] - p_w) // s_w + 1)
    Y = np.empty(X.shape[:-2] + out)
    for i, j in np.ndindex(*out):
        window = (..., slice(i * s_h, i * s_h + p_h), slice(j * s_w, j * s_w + p_w))
        divisor = p_h * p_w if count_pad else inside[window].sum(axis=(-2, -1))
        Y[..., i, j] = Xp[window].max(axis=(-2, -1)) if mode == "max" else Xp[window].sum(axis=(-2, -1)) / divisor
    return Y


def test_pool2d_recognises_a_window_that_moves_by_its_size():
    cause = _cause("pool2d_max", "moves by its own size")
    _reports("pool2d_max", lambda X, pool_size, mode="max": _loop_pool(X, pool_size, mode=mode), cause)


def test_output_size_recognises_its_formula_mistakes():
    plus_one = lambda n, k, padding=0, stride=None, dilation=1: (n + 2 * padding - dilation * (k - 1) + 1) // (stride or k) + 1  # noqa: E731
    _reports("output_size", plus_one, _cause("output_size", "'+1' where"))
    stride_one = lambda n, k, padding=0, stride=None, dilation=1: (n + 2 * padding - dilation * (k - 1) - 1) // (stride or 1) + 1  # noqa: E731
    _reports("output_size", stride_one, _cause("output_size", "stride defaults to 1"))
    ceil = lambda n, k, padding=0, stride=None, dilation=1: -(-(n + 2 * padding - dilation * (k - 1) - 1) // (stride or k)) + 1  # noqa: E731
    _reports("output_size", ceil, _cause("output_size", "rounding up"), hidden=True)


def test_padded_pooling_recognises_the_padding_and_stride_mistakes():
    _reports("pool2d_padded_max", lambda X, p, padding=(0, 0), stride=None, mode="max": _loop_pool(X, p, padding, stride, mode, fill=0.0), _cause("pool2d_padded_max", "padded with zeros"))
    _reports("pool2d_padded_avg", lambda X, p, padding=(0, 0), stride=None, mode="max": _loop_pool(X, p, padding, stride, mode, count_pad=False), _cause("pool2d_padded_avg", "count_include_pad"))
    _reports("pool2d_padded_max", lambda X, p, padding=(0, 0), stride=None, mode="max": _loop_pool(X, p, padding, stride, mode, default_stride=(1, 1)), _cause("pool2d_padded_max", "stride defaults to 1"))


def test_channels_recognise_a_channel_or_an_example_pooled_for_all():
    def first_channel(X, p, padding=(0, 0), stride=None, mode="max"):
        X = np.asarray(X)
        out = _loop_pool(X[..., :1, :, :], p, padding, stride, mode)
        return np.broadcast_to(out, X.shape[:-2] + out.shape[-2:])

    _reports("channels_chw", first_channel, _cause("channels_chw", "first channel's result"))

    def first_example(X, p, padding=(0, 0), stride=None, mode="max"):
        X = np.asarray(X)
        out = _loop_pool(X[:1], p, padding, stride, mode)
        return np.broadcast_to(out, X.shape[:2] + out.shape[2:])

    _reports("channels_nchw", first_example, _cause("channels_nchw", "first example's result"))


def test_global_and_adaptive_pooling_recognise_their_mistakes():
    _reports("global_avg", lambda X: np.asarray(X).mean(axis=(2, 3)), _cause("global_avg", "pooled axes were dropped"))

    def equal_width(X, output_size):
        X = np.asarray(X)
        (n_h, n_w), (m_h, m_w) = X.shape[-2:], output_size
        Y = np.empty(X.shape[:-2] + (m_h, m_w))
        for i, j in np.ndindex(m_h, m_w):
            Y[..., i, j] = X[..., i * n_h // m_h : (i + 1) * n_h // m_h, j * n_w // m_w : (j + 1) * n_w // m_w].mean(axis=(-2, -1))
        return Y

    _reports("adaptive_avg", equal_width, _cause("adaptive_avg", "equal width"))


def _offset_pool(X, pool_size, stride=None, mode="max"):
    """The vectorized way: one strided slice per window offset."""
    X = np.asarray(X)
    (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size
    out_h, out_w = (X.shape[-2] - k_h) // s_h + 1, (X.shape[-1] - k_w) // s_w + 1
    taps = [X[..., a : a + s_h * (out_h - 1) + 1 : s_h, b : b + s_w * (out_w - 1) + 1 : s_w] for a in range(k_h) for b in range(k_w)]
    return np.max(taps, axis=0) if mode == "max" else np.mean(taps, axis=0)


def test_vectorize_passes_a_loop_over_offsets_and_fails_a_loop_over_outputs():
    for hidden in (False, True):
        assert all(outcome.passed for outcome in grading.run("vectorized_pool2d", _offset_pool, "pytorch", hidden=hidden))
    per_pixel = lambda X, pool_size, stride=None, mode="max": _loop_pool(X, pool_size, stride=stride, mode=mode)  # noqa: E731
    outcomes = grading.run("vectorized_pool2d", per_pixel, "pytorch") + grading.run("vectorized_pool2d", per_pixel, "pytorch", hidden=True)
    assert outcomes[0].passed, "the lecture's 4 outputs are few enough for any loop"
    for outcome in outcomes[1:]:
        # The loop is in _loop_pool, which the graded function calls: the message names it.
        assert not outcome.passed and re.match(
            r"ran \d+ lines of Python for this case \(at most \d+\), \d+ of them in _loop_pool, which pool2d_vectorized calls: loop over the window's offsets in _loop_pool", outcome.message
        ), outcome.message


def test_vectorize_with_padding_passes_a_padded_copy_and_names_the_padding_mistakes():
    def padded(fill):
        def pool2d_padded_vectorized(X, pool_size, padding=(0, 0), stride=None, mode="max"):
            X = np.asarray(X)
            widths = [(0, 0)] * (X.ndim - 2) + [(padding[0], padding[0]), (padding[1], padding[1])]
            value = (-np.inf if mode == "max" else 0.0) if fill is None else fill
            return _offset_pool(np.pad(X, widths, constant_values=value), pool_size, stride, mode)

        return pool2d_padded_vectorized

    for hidden in (False, True):
        assert all(outcome.passed for outcome in grading.run("vectorized_padded", padded(None), "pytorch", hidden=hidden))
    _reports("vectorized_padded", padded(0.0), _cause("vectorized_padded", "padded with zeros"))
    ignored = lambda X, pool_size, padding=(0, 0), stride=None, mode="max": _offset_pool(X, pool_size, stride, mode)  # noqa: E731
    _reports("vectorized_padded", ignored, _cause("vectorized_padded", "padding is ignored"))
    per_pixel = lambda X, pool_size, padding=(0, 0), stride=None, mode="max": _loop_pool(X, pool_size, padding, stride, mode)  # noqa: E731
    outcomes = grading.run("vectorized_padded", per_pixel, "pytorch")
    assert outcomes[0].passed and not any(outcome.passed for outcome in outcomes[1:]), [outcome.message for outcome in outcomes]
    assert all("lines of Python" in outcome.message for outcome in outcomes[1:]), [outcome.message for outcome in outcomes]


def test_the_backward_questions_recognise_ties_and_missing_divisions():
    def every_maximum(dY, X, pool_size, stride=None):
        dY, X = np.asarray(dY), np.asarray(X)
        (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size
        Y, dX = _offset_pool(X, pool_size, stride), np.zeros(X.shape)
        for a in range(k_h):
            for b in range(k_w):
                rows, cols = slice(a, a + s_h * (Y.shape[-2] - 1) + 1, s_h), slice(b, b + s_w * (Y.shape[-1] - 1) + 1, s_w)
                dX[..., rows, cols] += dY * (X[..., rows, cols] == Y)
        return dX

    _reports("max_backward", every_maximum, _cause("max_backward", "every maximum"))

    def undivided(dY, X, pool_size, stride=None):
        dY, X = np.asarray(dY), np.asarray(X)
        (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size
        dX = np.zeros(X.shape)
        for a in range(k_h):
            for b in range(k_w):
                dX[..., a : a + s_h * (dY.shape[-2] - 1) + 1 : s_h, b : b + s_w * (dY.shape[-1] - 1) + 1 : s_w] += dY
        return dX

    _reports("avg_backward", undivided, _cause("avg_backward", "not divided"))


def test_the_cuda_questions_recognise_a_maximum_that_starts_at_zero():
    _reports("cuda_max", lambda X, pool_size, stride=None: np.maximum(_offset_pool(X, pool_size, stride), 0), _cause("cuda_max", "started at 0"), hidden=True)
    _reports("cuda_avg", lambda X, pool_size, stride=None: _offset_pool(X, pool_size, stride, "avg") * pool_size[0] * pool_size[1], _cause("cuda_avg", "not divided"))



def test_the_padded_cuda_question_recognises_a_window_not_shifted_by_the_padding():
    def unshifted(X, pool_size, padding=(0, 0), stride=None):  # the kernel's x[n, c, i * s_h + a, ...] with a bounds check
        X = np.asarray(X)
        widths = [(0, 0), (0, 0), (0, 2 * padding[0]), (0, 2 * padding[1])]
        return _offset_pool(np.pad(X, widths, constant_values=-np.inf), pool_size, stride)

    _reports("cuda_max_padded", unshifted, _cause("cuda_max_padded", "subtract the padding"))
    zeros = lambda X, pool_size, padding=(0, 0), stride=None: _loop_pool(X, pool_size, padding, stride, fill=0.0)  # noqa: E731
    _reports("cuda_max_padded", zeros, _cause("cuda_max_padded", "padded with zeros"))



# --- conventions: each framework's rule, and the other's recognised ---------------

CONVENTIONS = ["ceil_output_size", "avg_ceil", "avg_exclude_pad", "max_nan", "default_stride", "channels_last"]


def _torch_answer(key, args, kwargs):
    """What PyTorch itself gives for a case of a conventions question."""
    import torch
    import torch.nn.functional as F

    if key == "ceil_output_size":
        (n, k), stride = args, kwargs.get("stride") or args[1]
        return F.max_pool1d(torch.zeros(1, 1, n), k, stride, kwargs.get("padding", 0), ceil_mode=kwargs.get("ceil_mode", False)).shape[-1]
    X, window = torch.tensor(args[0]), tuple(args[1])
    if key in ("avg_ceil", "avg_exclude_pad"):
        stride = kwargs.get("stride") or window
        return F.avg_pool2d(X[None], window, stride, kwargs.get("padding", (0, 0)), kwargs.get("ceil_mode", False), kwargs.get("count_include_pad", True))[0].numpy()
    if key == "max_nan":
        return F.max_pool2d(X[None], window, kwargs.get("stride") or window)[0].numpy()
    if key == "default_stride":
        return (F.max_pool2d if kwargs.get("mode", "max") == "max" else F.avg_pool2d)(X, window).numpy()
    pool = F.max_pool2d if kwargs.get("mode", "max") == "max" else F.avg_pool2d
    return pool(X.permute(0, 3, 1, 2), window, kwargs.get("stride") or window, kwargs.get("padding", (0, 0))).permute(0, 2, 3, 1).numpy()


def _mxnet_answer(key, args, kwargs):
    """What MXNet's nd.Pooling gives for a case, asked as Gluon's layers ask it (the
    stride defaulting to the window, ceil_mode as 'full') except in default_stride."""
    from mxnet import nd

    convention = "full" if kwargs.get("ceil_mode") else "valid"
    if key == "ceil_output_size":
        (n, k), stride = args, kwargs.get("stride") or args[1]
        out = nd.Pooling(nd.zeros((1, 1, 1, n)), kernel=(1, k), stride=(1, stride), pad=(0, kwargs.get("padding", 0)), pool_type="max", pooling_convention=convention)
        return out.shape[-1]
    X, window = args[0], tuple(args[1])
    if key == "default_stride":
        return nd.Pooling(nd.array(X), kernel=window, pool_type=kwargs.get("mode", "max")).asnumpy()
    if key == "channels_last":
        X = np.moveaxis(X, -1, 1)
    else:
        X = X[None, None]
    pool_type = "avg" if key.startswith("avg") else kwargs.get("mode", "max")
    stride = tuple(kwargs.get("stride") or window)
    out = nd.Pooling(nd.array(X), kernel=window, stride=stride, pad=tuple(kwargs.get("padding", (0, 0))), pool_type=pool_type, pooling_convention=convention, count_include_pad=kwargs.get("count_include_pad", True)).asnumpy()
    return np.moveaxis(out, 1, -1) if key == "channels_last" else out[0, 0]


@pytest.mark.parametrize("framework", grading.FRAMEWORKS)
@pytest.mark.parametrize("key", CONVENTIONS)
def test_the_conventions_answers_are_the_frameworks_own(key, framework):
    """Each track's reference, poolkit's, is what PyTorch (or MXNet's nd.Pooling)
    itself gives on every visible case and on hidden cases of several draws."""
    question = QUESTIONS[key].in_framework(framework)
    answer = _torch_answer if framework == "pytorch" else _mxnet_answer
    cases = question.visible + sum((question.hidden_cases(np.random.default_rng(seed)) for seed in range(3)), ())
    for case in cases:
        expected = grading.to_numpy(question.reference(*case.args, **case.kwargs))
        got = np.asarray(answer(key, case.args, dict(case.kwargs)))
        assert expected.shape == got.shape and np.allclose(expected, got, rtol=1e-5, atol=1e-5, equal_nan=True), f"{key} in {framework}, {case.label}: {expected} != {got}"


def test_a_track_changes_the_answers_never_the_cases_or_the_points():
    """The notebook's test cell is the same in both tracks: so are a question's cases and points."""
    for question in QUESTIONS.values():
        mxnet = question.in_framework("mxnet")
        assert (mxnet.visible, mxnet.points, mxnet.function) == (question.visible, question.points, question.function)
        drawn = [question.in_framework(framework).hidden_cases(np.random.default_rng(7)) for framework in grading.FRAMEWORKS]
        assert [case.label for case in drawn[0]] == [case.label for case in drawn[1]]
    sized = QUESTIONS["ceil_output_size"]
    with pytest.raises(ValueError, match="per_framework may change only"):
        grading.Question(sized.key, sized.function, 2, sized.reference, sized.visible, per_framework={"mxnet": {"points": 3}}).in_framework("mxnet")
    with pytest.raises(ValueError, match="framework must be one of"):
        sized.in_framework("jax")


def test_the_conventions_questions_grade_the_frameworks_differently():
    """Where the frameworks differ, some visible case has different answers in the two tracks (else the track would not matter)."""
    for key in ("ceil_output_size", "avg_ceil", "max_nan", "default_stride"):
        tracks = [QUESTIONS[key].in_framework(framework) for framework in grading.FRAMEWORKS]
        differ = [case.label for case in tracks[0].visible if grading.difference(*(grading.to_numpy(track.reference(*case.args, **case.kwargs)) for track in tracks))]
        assert differ, f"{key}: every visible case has the same answer in PyTorch and in MXNet"
    assert QUESTIONS["channels_last"].per_framework == {}, "channels-last pooling has the same rules in both"


def _size(rule):
    """A student's output_size with PyTorch's ceil rule or MXNet's 'full'."""

    def output_size(n, k, padding=0, stride=None, ceil_mode=False):
        stride = stride or k
        span = n + 2 * padding - k
        out = (-(-span // stride) if ceil_mode else span // stride) + 1
        return out - 1 if rule == "pytorch" and ceil_mode and (out - 1) * stride >= n + padding else out

    return output_size


def _avg_loop(rule, whole_window=False):
    """A student's avg_pool2d: ``rule``'s output size, each window divided by what it holds (or by k_h * k_w)."""

    def avg_pool2d(X, pool_size, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True):
        X = grading.to_numpy(X)
        (k_h, k_w), (p_h, p_w), (h, w) = pool_size, padding, X.shape
        s_h, s_w = stride or pool_size
        size = _size(rule)
        Y = np.zeros((size(h, k_h, p_h, s_h, ceil_mode), size(w, k_w, p_w, s_w, ceil_mode)))
        for i, j in np.ndindex(*Y.shape):
            r0, c0 = i * s_h - p_h, j * s_w - p_w
            r1, c1 = min(r0 + k_h, h + p_h), min(c0 + k_w, w + p_w)
            part = X[max(r0, 0) : max(min(r1, h), 0), max(c0, 0) : max(min(c1, w), 0)]
            divisor = k_h * k_w if whole_window else (r1 - r0) * (c1 - c0) if count_include_pad else part.size
            Y[i, j] = part.sum() / divisor if part.size else 0.0
        return Y

    return avg_pool2d


def _max_loop(pick):
    """A student's max_pool2d whose window maximum is ``pick(window)``."""

    def max_pool2d(X, pool_size, stride=None):
        X = grading.to_numpy(X)
        (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size
        Y = np.zeros(((X.shape[0] - k_h) // s_h + 1, (X.shape[1] - k_w) // s_w + 1))
        for i, j in np.ndindex(*Y.shape):
            Y[i, j] = pick(X[i * s_h : i * s_h + k_h, j * s_w : j * s_w + k_w].ravel())
        return Y

    return max_pool2d


def _first_then_greater(values):
    best = values[0]
    for value in values[1:]:
        if value > best:
            best = value
    return best


@pytest.mark.parametrize("framework", grading.FRAMEWORKS)
def test_the_other_frameworks_rule_is_recognised_in_each_track(framework):
    other = "mxnet" if framework == "pytorch" else "pytorch"
    # The solution's own rule passes; the other framework's is named.
    assert all(outcome.passed for outcome in grading.run("ceil_output_size", _size(framework), framework))
    words = {"pytorch": "no last-window correction", "mxnet": "dropped, as PyTorch does"}[framework]
    _reports("ceil_output_size", _size(other), _cause("ceil_output_size", words, framework), framework=framework)
    assert all(outcome.passed for outcome in grading.run("avg_ceil", _avg_loop(framework), framework))
    words = {"pytorch": "was kept (MXNet's 'full')", "mxnet": "dropped, as PyTorch does"}[framework]
    _reports("avg_ceil", _avg_loop(other), _cause("avg_ceil", words, framework), framework=framework)
    nan_rules = {"pytorch": lambda values: np.max(values), "mxnet": lambda values: np.nanmax(values)}
    assert all(outcome.passed for outcome in grading.run("max_nan", _max_loop(nan_rules[framework]), framework))
    words = {"pytorch": "NaN was skipped", "mxnet": "NaN was kept"}[framework]
    _reports("max_nan", _max_loop(nan_rules[other]), _cause("max_nan", words, framework), framework=framework)


@pytest.mark.parametrize("framework", grading.FRAMEWORKS)
def test_the_conventions_questions_recognise_their_mistakes(framework):
    # A running maximum that starts at the window's first element: a NaN first sticks, a later one is skipped.
    _reports("max_nan", _max_loop(_first_then_greater), _cause("max_nan", "compares with >", framework), framework=framework)
    _reports("avg_ceil", _avg_loop(framework, whole_window=True), _cause("avg_ceil", "every window divided by k_h * k_w", framework), framework=framework)

    def count_all(X, pool_size, padding=(0, 0), stride=None, ceil_mode=False, count_include_pad=True):
        return _avg_loop(framework)(X, pool_size, padding, stride, ceil_mode, True)

    _reports("avg_exclude_pad", count_all, _cause("avg_exclude_pad", "padded zeros counted in the divisor", framework), framework=framework)
    stride_words = {"pytorch": "nd.Pooling's default); PyTorch's", "mxnet": "defaults to the kernel (PyTorch's"}[framework]

    def wrong_default(X, kernel, mode="max"):
        X = grading.to_numpy(X)
        stride = (1, 1) if framework == "pytorch" else tuple(kernel)  # the other framework's default
        out = ((X.shape[2] - kernel[0]) // stride[0] + 1, (X.shape[3] - kernel[1]) // stride[1] + 1)
        Y = np.zeros(X.shape[:2] + out)
        for i, j in np.ndindex(*out):
            window = X[:, :, i * stride[0] : i * stride[0] + kernel[0], j * stride[1] : j * stride[1] + kernel[1]]
            Y[:, :, i, j] = window.max(axis=(2, 3)) if mode == "max" else window.mean(axis=(2, 3))
        return Y

    _reports("default_stride", wrong_default, _cause("default_stride", stride_words, framework), framework=framework)

    def nchw_by_mistake(X, pool_size, padding=(0, 0), stride=None, mode="max"):  # pools W and C, the last two axes
        return _loop_pool(grading.to_numpy(X), pool_size, padding, stride, mode)

    _reports("channels_last", nchw_by_mistake, _cause("channels_last", "the last two axes pooled", framework), framework=framework)


def test_the_conventions_notebook_states_the_frameworks_own_numbers():
    """The numbers the notebook's text gives, computed with PyTorch and MXNet."""
    import torch
    import torch.nn.functional as F
    from mxnet import nd

    text = "\n".join(cell.source for cell in _read(_source("conventions")).cells if cell.cell_type == "markdown")
    one_row = dict(kernel=(1, 2), stride=(1, 3), pad=(0, 1), pool_type="max", pooling_convention="full")
    torch_windows = F.max_pool1d(torch.zeros(1, 1, 5), 2, 3, 1, ceil_mode=True).shape[-1]
    assert (torch_windows, nd.Pooling(nd.zeros((1, 1, 1, 5)), **one_row).shape[-1]) == (2, 3)
    assert f"PyTorch has {torch_windows} windows and MXNet 3" in text
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    X[0, 0, 0, 0] = np.nan
    assert str(F.max_pool2d(torch.tensor(X), 2)[0, 0].tolist()) == "[[nan, 7.0], [13.0, 15.0]]"
    assert nd.Pooling(nd.array(X), kernel=(2, 2), stride=(2, 2), pool_type="max").asnumpy()[0, 0].tolist() == [[5, 7], [13, 15]]
    assert "`[[nan, 7], [13, 15]]` in PyTorch and `[[5, 7], [13, 15]]` in MXNet" in text
    assert F.max_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0].tolist() == [[5, 7], [13, 15]]
    assert nd.Pooling(nd.arange(16).reshape((1, 1, 4, 4)), kernel=(2, 2), pool_type="max").shape[-2:] == (3, 3)
    assert "a 2x2 max gives `[[5, 7], [13, 15]]` in PyTorch, and 3x3 outputs in MXNet" in text
    # 0..24 as 5x5, 2x2 average in ceil mode: the last column divided by 2, the corner by 1.
    X5 = torch.arange(25.0).reshape(1, 1, 5, 5)
    sums = F.avg_pool2d(X5, 2, ceil_mode=True, divisor_override=1)[0, 0]
    divisors = (sums / F.avg_pool2d(X5, 2, ceil_mode=True)[0, 0]).round()
    assert divisors[:-1, -1].tolist() == [2, 2] and divisors[-1, -1] == 1
    assert "is divided by 2 (by 1 in the\ncorner)" in text


# --- what a student reads -----------------------------------------------------------


def test_an_output_one_window_short_is_an_off_by_one_with_both_shapes():
    def short(X, pool_size, mode="max"):  # the lecture's loop, with n - p windows where n - p + 1 fit
        X = np.asarray(X)
        (p_h, p_w), Y = pool_size, np.zeros((X.shape[0] - pool_size[0], X.shape[1] - pool_size[1]))
        for i, j in np.ndindex(*Y.shape):
            Y[i, j] = X[i : i + p_h, j : j + p_w].max()
        return Y

    messages = _reports("pool2d_max", short, _cause("pool2d_max", "one window short"))
    # The lecture's 3x3 input gives one output either way; a window moving by its own size is not the likelier cause.
    assert messages[0].startswith("wrong shape: expected (2, 2), got (1, 1): one row and one column too few, an off-by-one in the output size. Likely cause:"), messages[0]
    assert not any("moves by its own size" in message for message in messages), messages
    assert grading.difference(np.zeros((2, 3, 3)), np.zeros((2, 3, 4))) == "wrong shape: expected (2, 3, 3), got (2, 3, 4): one column too many, an off-by-one in the output size"
    assert grading.difference(np.zeros((2, 3, 3)), np.zeros((1, 3, 3))) == "wrong shape: expected (2, 3, 3), got (1, 3, 3)", "the channels are no output size"


def _overwriting_backward(mode):
    """The exercise's loop over the offsets, with the natural mistake: ``=`` where ``+=`` is needed."""

    def backward(dY, X, pool_size, stride=None):
        dY, X = np.asarray(dY), np.asarray(X)
        (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size
        Y, dX, taken = _offset_pool(X, pool_size, stride), np.zeros(X.shape), np.zeros(dY.shape)
        for a in range(k_h):
            for b in range(k_w):
                rows, cols = slice(a, a + s_h * (dY.shape[-2] - 1) + 1, s_h), slice(b, b + s_w * (dY.shape[-1] - 1) + 1, s_w)
                if mode == "max":
                    hit = (X[..., rows, cols] == Y) * (1 - taken)
                    dX[..., rows, cols] = dY * hit
                    taken = taken + hit
                else:
                    dX[..., rows, cols] = dY / (k_h * k_w)
        return dX

    return backward


@pytest.mark.parametrize("key, mode", [("max_backward", "max"), ("avg_backward", "avg")])
def test_the_backward_questions_recognise_a_gradient_slice_overwritten_per_offset(key, mode):
    messages = _reports(key, _overwriting_backward(mode), _cause(key, "assigned with ="))
    # The overlapping visible case (3x3, stride 1) is small: the windows of dY and X the wrong element is in are shown.
    assert any(re.search(r"; it depends on dY(\[[0-9:, ]+\] \(dY is 2x2\))? = \[\[.*\]\] and X(\[[0-9:, ]+\] \(X is 3x3\))? = \[\[", message) for message in messages), messages


def test_a_loop_over_the_outputs_is_blamed_on_the_function_that_has_it():
    """A backward pass that loops over the offsets, calling a forward that loops over every output."""
    namespace = {"np": np}
    source = (
        "def pool2d_vectorized(X, pool_size, stride=None):\n"
        "    X = np.asarray(X)\n"
        "    (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size\n"
        "    Y = np.zeros(X.shape[:-2] + ((X.shape[-2] - k_h) // s_h + 1, (X.shape[-1] - k_w) // s_w + 1))\n"
        "    for i in range(Y.shape[-2]):\n"
        "        for j in range(Y.shape[-1]):\n"
        "            Y[..., i, j] = X[..., i * s_h : i * s_h + k_h, j * s_w : j * s_w + k_w].max(axis=(-2, -1))\n"
        "    return Y\n"
        "def max_pool2d_backward(dY, X, pool_size, stride=None):\n"
        "    dY, X = np.asarray(dY), np.asarray(X)\n"
        "    (k_h, k_w), (s_h, s_w) = pool_size, stride or pool_size\n"
        "    Y, dX, taken = pool2d_vectorized(X, pool_size, stride), np.zeros(X.shape), np.zeros(dY.shape)\n"
        "    for a in range(k_h):\n"
        "        for b in range(k_w):\n"
        "            rows, cols = slice(a, a + s_h * (dY.shape[-2] - 1) + 1, s_h), slice(b, b + s_w * (dY.shape[-1] - 1) + 1, s_w)\n"
        "            hit = (X[..., rows, cols] == Y) * (1 - taken)\n"
        "            dX[..., rows, cols] += dY * hit\n"
        "            taken = taken + hit\n"
        "    return dX\n"
    )
    exec(compile(source, "<cell 8>", "exec"), namespace)  # top-level functions, as a notebook's cells define them
    outcomes = grading.run("max_backward", namespace["max_pool2d_backward"], "pytorch")
    assert [outcome.passed for outcome in outcomes] == [True, True, False], [outcome.message for outcome in outcomes]
    assert re.fullmatch(
        r"ran (\d+) lines of Python for this case \(at most 200\), (\d+) of them in pool2d_vectorized, which max_pool2d_backward calls: "
        r"loop over the window's offsets in pool2d_vectorized, not over every output element",
        outcomes[2].message,
    ), outcomes[2].message
    # A loop in the graded function itself is reported without naming another.
    loops = grading.run("vectorized_pool2d", namespace["pool2d_vectorized"], "pytorch")[1].message
    assert re.fullmatch(r"ran \d+ lines of Python for this case \(at most 200\): loop over the window's offsets, not over every output element", loops), loops
    # The grader's re-run (what poolkit grade reports) blames the same function.
    from poolkit.grader import rerun

    question = grading.question("max_backward")
    case = question.visible[2]
    header = {"function": question.function, "line_budget": question.line_budget}
    reply, _ = rerun._answer(namespace["max_pool2d_backward"], "pytorch", header, tuple(case.args), dict(case.kwargs))
    assert reply["kind"] == "problem" and "of them in pool2d_vectorized, which max_pool2d_backward calls" in reply["message"], reply


def _significant(text):
    return len(text.lstrip("-").replace(".", "").lstrip("0").split("e")[0])


def test_a_wrong_value_is_rounded_and_shown_with_the_part_of_the_input_it_depends_on():
    halved = lambda X, pool_size, mode="max": _loop_pool(X, pool_size, stride=(1, 1), mode=mode) / 2  # noqa: E731
    question, outcomes = QUESTIONS["pool2d_avg"], grading.run("pool2d_avg", halved, "pytorch")
    (case, outcome), = [(case, outcome) for case, outcome in zip(question.visible, outcomes) if case.args[0].shape == (4, 5)]
    match = re.fullmatch(r"first wrong element at \[0, 0\]: expected (\S+), got (\S+); it depends on X\[0:2, 0:3\] \(X is 4x5\) = (\[\[.*\]\])", outcome.message)
    assert match, outcome.message
    X = case.args[0]
    expected, got, window = float(match[1]), float(match[2]), np.array(ast.literal_eval(match[3]))
    assert expected == pytest.approx(X[0:2, 0:3].mean(), rel=1e-3) and got == pytest.approx(expected / 2, rel=1e-3)
    assert np.allclose(window, X[0:2, 0:3], rtol=1e-3) and max(map(_significant, [match[1], match[2]])) <= 4, outcome.message
    # Two values that agree in 4 digits get as many as tell them apart.
    assert grading.difference(np.array([1.00004]), np.array([1.00051]), rtol=1e-5, atol=0) == "first wrong element at [0]: expected 1, got 1.001"
    assert grading.difference(np.array([1.000004]), np.array([1.000051]), rtol=1e-7, atol=0) == "first wrong element at [0]: expected 1, got 1.0001"


def test_a_wrong_number_is_the_value_not_an_element_at_empty_brackets():
    messages = [outcome.message for outcome in grading.run("output_size", lambda n, k, padding=0, stride=None, dilation=1: 7, "pytorch")]
    assert messages and all(message.startswith("wrong value: expected ") and ", got 7" in message for message in messages), messages
    assert not any("[]" in message for message in messages), messages


def test_poolkit_check_keeps_the_kernels_stderr_off_its_report(tmp_path):
    """Whatever the kernel process writes to its stderr (IPKernelApp's notes, or a
    library's C code) is kept apart from the report: the last line is the summary."""
    release, source = _read(_release("pool2d")), _read(_source("pool2d"))
    answers = {_nbgrader(cell)["grade_id"]: cell.source for cell in source.cells if _nbgrader(cell).get("solution")}
    for cell in release.cells:
        if _nbgrader(cell).get("solution"):
            cell.source = answers[_nbgrader(cell)["grade_id"]]
    release.cells.insert(2, nbformat.v4.new_code_cell('import os\nos.write(2, b"a note on the kernel\'s own stderr\\n")'))
    path = tmp_path / "pool2d.ipynb"
    nbformat.write(release, path)
    env = dict(os.environ, POOLKIT_QUESTIONS=str(ROOT / "solutions" / "questions.py"))
    result = subprocess.run([sys.executable, "-m", "poolkit.grader.cli", "check", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[-1] == "pool2d.ipynb: 2 of 2 questions pass their visible tests (every visible case passes); hidden cases are graded later", result.stdout
    assert lines[-3:-1] == ["  pool2d_max: 3 of 3 visible cases passed", "  pool2d_avg: 3 of 3 visible cases passed"], result.stdout
    assert "IPKernelApp" not in result.stdout, result.stdout
    assert lines[:2] == ["the kernel wrote to its stderr (not part of the tests):", "  a note on the kernel's own stderr"], result.stdout


@pytest.mark.parametrize("key", [key for key, question in QUESTIONS.items() if question.reads])
def test_the_part_of_the_input_shown_with_a_wrong_element_is_all_it_depends_on(key):
    """Changing every input element outside the part shown leaves the element's right answer as it was."""
    question, rng = QUESTIONS[key], np.random.default_rng(1)
    for case in question.visible + question.hidden_cases(np.random.default_rng(0)):
        expected = grading.to_numpy(question.reference(*case.args, **case.kwargs))
        picks = {(0,) * expected.ndim, tuple(size - 1 for size in expected.shape)}
        picks |= {tuple(int(rng.integers(size)) for size in expected.shape) for _ in range(3)}
        for index in picks:
            args = list(case.args)
            for name, array, region in question.reads(index, *case.args, **case.kwargs):
                (position,) = [position for position, arg in enumerate(case.args) if arg is array]
                inside = np.zeros(array.shape, bool)
                inside[region] = True
                assert inside.any(), f"{key}, {case.label}: {name}{region} is empty"
                args[position] = np.where(inside, array, rng.standard_normal(array.shape) * 10 + 5)
            changed = grading.to_numpy(question.reference(*args, **case.kwargs))
            assert np.isclose(changed[index], expected[index]), f"{key}, {case.label}: the element at {index} depends on more than is shown"
