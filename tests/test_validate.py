"""nbgrader's Validate, the student's button in JupyterLab, agrees with the grade.

The release holds only the visible check of each question, whose cases carry
part of the points. Every visible case passing counts as the question's points
there, so nbgrader's real ``nbgrader validate`` passes a solved notebook; a
visible case failing still fails it; and ``poolkit grade`` still counts the
hidden cases, from its own re-run.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from poolkit.grader import checks as grading

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = Path(sys.executable).parent / "nbgrader"
ASSIGNMENTS = ["pool2d", "padding-stride", "channels", "global-adaptive", "vectorize", "cuda-kernel", "conventions"]
PASSED = "Success! Your notebook passes all the tests."
PARTIAL = "Partial credit; passed some but not all of the tests"


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def solved_release(name, framework="pytorch"):
    """The released notebook of ``name`` with the instructor's solutions in its answer
    cells, as a student hands it in: no hidden tests."""
    release = nbformat.read(ROOT / "exercises" / name / f"{name}.ipynb", as_version=4)
    source = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    answers = {_nbgrader(cell)["grade_id"]: cell.source for cell in source.cells if _nbgrader(cell).get("solution")}
    for cell in release.cells:
        if _nbgrader(cell).get("solution"):
            cell.source = answers[_nbgrader(cell)["grade_id"]]
    first = next(cell for cell in release.cells if cell.cell_type == "code")
    first.source = f'FRAMEWORK = "{framework}"'
    return release


def validate(nb, folder):
    """nbgrader's own ``nbgrader validate`` on ``nb``, written to ``folder`` (outside the
    course, which the notebook finds through POOLKIT_QUESTIONS): its report."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notebook.ipynb"
    nbformat.write(nb, path)
    env = dict(os.environ, POOLKIT_QUESTIONS=str(ROOT / "solutions" / "questions.py"))
    result = subprocess.run([str(NBGRADER), "validate", path.name], cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_solved_notebook_passes_validate(tmp_path, name):
    report = validate(solved_release(name), tmp_path)
    assert PASSED in report and PARTIAL not in report and "FAILED" not in report, report


def test_a_solved_notebook_passes_validate_in_mxnet_and_with_a_warning(tmp_path):
    # A warning of the student's code (nbgrader scores a test cell with stderr 0) costs nothing.
    report = validate(solved_release("pool2d", "mxnet"), tmp_path / "mxnet")
    assert PASSED in report, report
    warns = solved_release("pool2d")
    answer = next(cell for cell in warns.cells if _nbgrader(cell).get("solution"))
    answer.source = answer.source.replace('def pool2d(X, pool_size, mode="max"):\n', 'def pool2d(X, pool_size, mode="max"):\n    import warnings; warnings.warn("harmless, on stderr")\n', 1)
    assert "harmless" in answer.source
    report = validate(warns, tmp_path / "warns")
    assert PASSED in report, report


def test_the_release_and_a_failing_visible_case_fail_validate(tmp_path):
    release = nbformat.read(ROOT / "exercises" / "pool2d" / "pool2d.ipynb", as_version=4)
    report = validate(release, tmp_path / "release")
    assert "VALIDATION FAILED ON 2 CELL(S)" in report and PASSED not in report, report
    # Right for max pooling, wrong for average pooling: only the average's cell fails.
    half = solved_release("pool2d")
    answer = next(cell for cell in half.cells if _nbgrader(cell).get("solution"))
    answer.source = answer.source.replace('def pool2d(X, pool_size, mode="max"):\n', 'def pool2d(X, pool_size, mode="max"):\n    mode = "max"\n', 1)
    assert 'mode = "max"' in answer.source
    report = validate(half, tmp_path / "half")
    assert "VALIDATION FAILED ON 1 CELL(S)" in report and 'check("pool2d_avg"' in report and 'check("pool2d_max"' not in report.split("failed:")[-1], report


# --- the score a test cell shows -------------------------------------------------------


def _table(question):
    """A student's function that answers the visible cases from a table (and nothing else)."""
    answers = [(case, grading.to_numpy(question.reference(*case.args, **case.kwargs))) for case in question.visible]

    def pool2d(X, pool_size, mode="max"):
        for case, answer in answers:
            if np.array_equal(np.asarray(X), case.args[0]) and tuple(pool_size) == tuple(case.args[1]) and mode == case.args[2]:
                return answer
        return np.zeros((1, 1))

    return pool2d


def test_the_visible_score_counts_full_marks_and_the_hidden_part_takes_its_share_back(capsys):
    question = grading.question("pool2d_max")
    visible = grading.check("pool2d_max", _table(question))
    printed = capsys.readouterr().out
    # What nbgrader reads (the plain text), and what Jupyter shows (the markdown).
    assert repr(visible) == repr(float(question.points)) and float(visible) == question.points
    assert visible._repr_markdown_() == f"`pool2d_max`: all 3 visible cases pass; its {question.hidden_count} hidden cases are graded later (the question has 3 points)"
    assert f"all 3 visible cases pass; its {question.hidden_count} hidden cases are graded later" in printed
    total = visible + grading.check("pool2d_max", _table(question), hidden=True)
    assert float(total) == len(question.visible) * question.points_per_case < question.points
    assert "visible and hidden cases pass: 1.5 of 3 points" in total.summary()
    # One visible case wrong: the points its cases earned, below the cell's points (Validate fails).
    table = _table(question)  # made here: the reference is poolkit's pooling, which a check refuses

    def wrong_on_one(X, pool_size, mode="max"):
        answer = table(X, pool_size, mode)
        return answer + 1 if np.asarray(X).shape == (4, 5) else answer

    failing = grading.check("pool2d_max", wrong_on_one)
    assert float(failing) == 2 * question.points_per_case and "2 of 3 visible cases pass (1 of the question's 3 points)" in failing.summary()


def test_poolkit_grade_still_counts_the_hidden_cases(tmp_path):
    """A notebook right on the visible cases only (a table of their answers) passes
    Validate, and earns only the visible cases' share at grading, unflagged: the
    grader's copy of each cell adds its hidden part, and the grader re-runs it."""
    # The answers as literals: the re-run has no poolkit to compute them with.
    answers = {
        repr((case.args[0].tolist(), tuple(case.args[1]), case.args[2])): grading.question(key).reference(*case.args).tolist()
        for key in ("pool2d_max", "pool2d_avg")
        for case in grading.question(key).visible
    }
    table = (
        "import numpy as np\n"
        f"_answers = {answers!r}\n"
        "def pool2d(X, pool_size, mode='max'):\n"
        "    return np.array(_answers.get(repr((np.asarray(X).tolist(), tuple(pool_size), mode)), [[0.0]]))\n"
    )
    nb = solved_release("pool2d")
    next(cell for cell in nb.cells if _nbgrader(cell).get("solution")).source = table
    assert PASSED in validate(nb, tmp_path / "validate")
    subs = tmp_path / "submissions"
    for student, notebook in (("table", nb), ("solved", solved_release("pool2d"))):
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / "pool2d.ipynb")
    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", "pool2d", str(subs), "--out", str(tmp_path / "out"), "--course", str(ROOT), "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["student_id"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    visible_share = sum(len(grading.question(key).visible) * grading.question(key).points_per_case for key in ("pool2d_max", "pool2d_avg"))
    assert float(rows["solved"]["score"]) == float(rows["solved"]["max_score"]) == 6, rows["solved"]
    assert float(rows["table"]["score"]) == visible_share == 3, rows["table"]
    assert not [flag for flag in rows["table"]["flags"].split(";") if flag.startswith("unconfirmed")], rows["table"]
    graded = json.loads((tmp_path / "out" / "autograded" / "table" / "pool2d" / "pool2d.ipynb").read_text())
    assert any("[hidden]" in "".join(output.get("text", "")) for cell in graded["cells"] for output in cell.get("outputs", []))
