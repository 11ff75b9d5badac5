"""The instructor's grader, end to end: ``poolkit grade`` on crafted submissions
of the pool2d assignment, honest, broken and hostile, and ``poolkit check``.

One grading run (two workers) covers every crafted student; the tests read its
``grades.csv``, gradebook, graded notebooks and feedback. Expected scores come
from the question's cases run in this process (:func:`poolkit.grader.checks.run`),
not from the grader under test.
"""

import csv
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

from poolkit.grader import checks as grading

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "exercises" / "pool2d" / "pool2d.ipynb"
SOLUTIONS = ROOT / "solutions" / "pool2d" / "pool2d.ipynb"
QUESTIONS = ("pool2d_max", "pool2d_avg")
MAX_SCORE = sum(grading.question(key).points for key in QUESTIONS)
TIMEOUT = 8  # seconds per cell in these runs
# The tests that read the one grading run share a worker under pytest-xdist (--dist loadgroup), so it runs once.
ONE_RUN = pytest.mark.xdist_group("course_run")

ZEROS = {"pytorch": "import torch\n    Y = torch.zeros", "mxnet": "from mxnet import nd\n    Y = nd.zeros"}


def pool2d_source(framework="pytorch", before_loop="pass", avg="window.mean()"):
    """A student's loop pool2d; ``before_loop`` runs first, ``avg`` is what average pooling takes."""
    return (
        'def pool2d(X, pool_size, mode="max"):\n'
        "    p_h, p_w = pool_size\n"
        f"    {before_loop}\n"
        f"    {ZEROS[framework]}((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)\n"
        "    for i in range(Y.shape[0]):\n"
        "        for j in range(Y.shape[1]):\n"
        "            window = X[i: i + p_h, j: j + p_w]\n"
        f"            Y[i, j] = window.max() if mode == 'max' else {avg}\n"
        "    return Y\n"
    )


def solution_cell(nb):
    return next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("solution") and "def pool2d" in cell.source)


def graded_cells(nb):
    return [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") in QUESTIONS]


def submission(solution=None, framework="pytorch", edit=None):
    """The released notebook with the student's ``solution`` (None: left as released), then ``edit(nb)``."""
    nb = nbformat.read(RELEASE, as_version=4)
    if framework != "pytorch":
        first = next(cell for cell in nb.cells if cell.cell_type == "code")
        first.source = first.source.replace('"pytorch"', f'"{framework}"')
    if solution is not None:
        solution_cell(nb).source = solution
    if edit:
        edit(nb)
    return nb


def expected_points(source, framework="pytorch"):
    """What ``source``'s pool2d earns on every case, judged here in-process."""
    namespace = {}
    exec(source, namespace)
    total = 0.0
    for key in QUESTIONS:
        for hidden in (False, True):
            total += sum(outcome.passed for outcome in grading.run(key, namespace["pool2d"], framework, hidden)) * grading.question(key).points_per_case
    return total


def _delete_tests(nb):
    nb.cells = [cell for cell in nb.cells if cell not in graded_cells(nb)]


def _delete_answer(nb):
    nb.cells.remove(solution_cell(nb))


def _edit_tests(nb):
    for cell in graded_cells(nb):
        cell.source = "3.0  # full marks, says the student"


def _metadata_edit(change):
    """An edit of the nbgrader metadata of the first test cell (or of the answer cell) that nbgrader refuses."""

    def edit(nb):
        test, answer = graded_cells(nb)[0], solution_cell(nb)
        if change == "duplicates_a_test_cell":
            nb.cells.insert(nb.cells.index(test), nbformat.from_dict(json.loads(json.dumps(test))))
        elif change == "turns_tests_into_markdown":
            for cell in graded_cells(nb):
                cell.cell_type = "markdown"
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        elif change == "grades_the_answer_cell":
            answer.metadata.nbgrader.update(grade=True, points=3)
        else:
            test.metadata.nbgrader.update({"ungrades_a_test_cell": {"grade": False}, "makes_a_test_a_solution": {"solution": True}, "claims_lots_of_points": {"points": "lots"}}[change])

    return edit


GRADER_SECRET = "a-variable-of-the-graders-own"  # set on `poolkit grade`; no student may see it
# A correct answer whose cell shows the instructor a script, an event handler, JavaScript, and 100,000 characters of HTML.
DISPLAYS = """
from IPython.display import HTML, Javascript, display
display(HTML("<script>alert('from the student')</script><img src=x onerror=alert(2)>"))
display(Javascript("alert(3)"))
display(HTML("x" * 100_000))
"""
BAD_METADATA = ("ungrades_a_test_cell", "makes_a_test_a_solution", "grades_the_answer_cell", "claims_lots_of_points", "duplicates_a_test_cell", "turns_tests_into_markdown")


def _strip_test_metadata(nb):
    for cell in graded_cells(nb):
        cell.metadata.pop("nbgrader")
        cell.source = "3.0"


PATCHES = {
    # A visible and a hidden check per cell: half the points each.
    "patches_check": "import poolkit.grader.checks\npoolkit.grader.checks.check = check = lambda key, *args, **kwargs: poolkit.grader.checks.question(key).points / 2",
    "patches_difference": "import poolkit.grader.checks\npoolkit.grader.checks.difference = lambda *args, **kwargs: None",
    "patches_numpy": "import numpy\nnumpy.isclose = lambda a, b, **kwargs: numpy.ones(numpy.shape(a), bool)",
}
WRONG = "def pool2d(X, pool_size, mode='max'):\n    return X[: X.shape[0] - pool_size[0] + 1, : X.shape[1] - pool_size[1] + 1] * 0\n"


def attack(paths, reads):
    """A solution that pools correctly, and tries to write to each of ``paths``
    and to read each of ``reads``, printing which it managed."""
    return pool2d_source() + textwrap.dedent(
        f"""
        import os
        written = []
        # Besides the paths given: the other students' job folders, beside this one.
        others = [os.path.join(os.getcwd(), f"../../{{number:04d}}/{{name}}") for number in range(1, 40) for name in ("submitted.ipynb", "job.json")]
        for path in {[str(path) for path in paths]!r} + others:
            try:
                with open(path, "a") as handle:
                    handle.write("tampered")
                written.append(path)
            except OSError:
                pass
        print("written:", written)
        read = []
        for path in {[str(path) for path in reads]!r} + others:
            try:
                with open(path) as handle:
                    handle.read(1)
                read.append(path)
            except OSError:
                pass
        print("read:", read)
        """
    )


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    """Grade every crafted student once; return the output folder and its grades by student."""
    base = tmp_path_factory.mktemp("grading")
    subs, out = base / "submissions", base / "out"
    students = {
        "correct": submission(pool2d_source()),
        "correct_mxnet": submission(pool2d_source("mxnet"), "mxnet"),
        "blank": submission(),
        "partial": submission(pool2d_source(avg="window.max()")),
        "infinite_loop": submission(pool2d_source(before_loop="while mode == 'avg': pass")),
        "exits": submission(pool2d_source(before_loop="import os\n    if mode == 'avg': os._exit(1)")),
        "memory_hog": submission(pool2d_source(before_loop="hog = bytearray(3 << 30) if mode == 'avg' else None")),
        "floods_output": submission(pool2d_source(before_loop="print('spam ' * 100_000)")),
        "warns": submission(pool2d_source(before_loop="import warnings; warnings.warn('harmless, on stderr')")),
        "edits_tests": submission(None, edit=_edit_tests),
        "deletes_tests": submission(pool2d_source(), edit=_delete_tests),
        "deletes_answer": submission(pool2d_source(), edit=_delete_answer),
        "strips_test_metadata": submission(None, edit=_strip_test_metadata),
        "uses_framework": submission("import torch.nn.functional as F\ndef pool2d(X, pool_size, mode='max'):\n    return (F.max_pool2d if mode == 'max' else F.avg_pool2d)(X[None], pool_size, 1)[0]\n"),
        "attacks_files": None,  # written below, once the paths are known
        **{name: submission(WRONG + patch) for name, patch in PATCHES.items()},
        **{name: submission(pool2d_source(), edit=_metadata_edit(name)) for name in BAD_METADATA},
        "shows_html_and_floods_display": submission(pool2d_source() + DISPLAYS),
        "prints_the_environment": submission(pool2d_source() + "\nimport os\nprint(sorted(os.environ.items()))\n"),
    }
    # Devices other than /dev/null: a terminal (a fake progress line would reach the instructor), /dev/zero.
    targets = [out / "gradebook.db", SOLUTIONS, subs / "correct" / "pool2d.ipynb", ROOT / "poolkit" / "grader" / "checks.py", out / "grades.csv", Path("/dev/tty"), Path("/dev/zero")]
    secrets = [SOLUTIONS, out / "course" / "source" / "pool2d" / "pool2d.ipynb", subs / "correct" / "pool2d.ipynb"]
    students["attacks_files"] = submission(attack(targets, secrets))
    for name, nb in students.items():
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "pool2d.ipynb")
    (subs / "unreadable").mkdir()
    (subs / "unreadable" / "pool2d.ipynb").write_text("{ this is not a notebook")
    (subs / "renamed").mkdir()
    nbformat.write(submission(pool2d_source()), subs / "renamed" / "my pool2d (1).ipynb")
    (subs / "links_a_classmate").mkdir()  # a link in the export: the grader must not read through it
    (subs / "links_a_classmate" / "pool2d.ipynb").symlink_to(subs / "correct" / "pool2d.ipynb")
    protected = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in targets[1:4]}
    result = grade(subs, out, "--workers", "2", "--memory-gb", "2", env=dict(os.environ, POOLKIT_GRADER_SECRET=GRADER_SECRET))
    rows = {row["student_id"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    return {"out": out, "subs": subs, "rows": rows, "result": result, "protected": protected}


def grade(subs, out, *options, env=None):
    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", "pool2d", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--course", str(ROOT), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


def score(run, student):
    row = run["rows"][student]
    assert float(row["max_score"]) == MAX_SCORE
    return float(row["score"])


def flags(run, student):
    return set(filter(None, run["rows"][student]["flags"].split(";")))


@ONE_RUN
def test_the_run_succeeds_and_shows_progress(course_run):
    assert course_run["result"].returncode == 0, course_run["result"].stderr[-3000:]
    assert "grading pool2d [" in course_run["result"].stderr
    assert sorted(course_run["rows"]) == sorted(path.name for path in course_run["subs"].iterdir())


@ONE_RUN
def test_a_correct_submission_gets_full_marks_in_either_framework(course_run):
    assert score(course_run, "correct") == MAX_SCORE and not flags(course_run, "correct")
    assert score(course_run, "correct_mxnet") == MAX_SCORE and not flags(course_run, "correct_mxnet")


@ONE_RUN
def test_the_unmodified_release_gets_zero(course_run):
    assert score(course_run, "blank") == 0


@ONE_RUN
def test_a_partly_wrong_submission_gets_exactly_the_credit_its_cases_earn(course_run):
    expected = expected_points(pool2d_source(avg="window.max()"))
    assert grading.question("pool2d_max").points < expected < MAX_SCORE  # max right, avg right only where max == mean
    assert score(course_run, "partial") == pytest.approx(expected)


@ONE_RUN
def test_an_infinite_loop_costs_only_its_question(course_run):
    assert score(course_run, "infinite_loop") == grading.question("pool2d_max").points
    assert "timeout:pool2d_avg" in flags(course_run, "infinite_loop")


@ONE_RUN
def test_a_dying_kernel_costs_only_its_question_and_is_flagged(course_run):
    assert score(course_run, "exits") == grading.question("pool2d_max").points
    assert "kernel-died:pool2d_avg" in flags(course_run, "exits")


@ONE_RUN
def test_a_memory_hog_beyond_the_cap_costs_only_its_question_and_is_flagged(course_run):
    assert score(course_run, "memory_hog") == grading.question("pool2d_max").points
    assert "memory:pool2d_avg" in flags(course_run, "memory_hog")


@ONE_RUN
def test_a_flood_of_output_is_truncated_and_a_warning_on_stderr_costs_nothing(course_run):
    assert score(course_run, "floods_output") == MAX_SCORE
    assert "output-truncated:pool2d_max" in flags(course_run, "floods_output")
    graded = nbformat.read(course_run["out"] / "autograded" / "floods_output" / "pool2d" / "pool2d.ipynb", as_version=4)
    printed = sum(len(output.get("text", "")) for cell in graded.cells for output in cell.get("outputs", []))
    assert printed < 4 * 20_000 + 10_000  # the student printed 1.5 MB per call, several calls per cell
    assert score(course_run, "warns") == MAX_SCORE


@ONE_RUN
def test_edited_or_deleted_test_cells_are_restored_and_graded_as_the_instructor_wrote_them(course_run):
    assert score(course_run, "edits_tests") == 0
    assert {"test-edited:pool2d_max", "test-edited:pool2d_avg"} <= flags(course_run, "edits_tests")
    assert score(course_run, "deletes_tests") == MAX_SCORE
    assert {"test-deleted:pool2d_max", "test-deleted:pool2d_avg"} <= flags(course_run, "deletes_tests")
    # The answer cell is put back as the release has it (so it scores 0), and not called a test.
    assert score(course_run, "deletes_answer") == 0
    assert "cell-restored:pool2d_solution" in flags(course_run, "deletes_answer")
    assert not any(flag.startswith("test-deleted") for flag in flags(course_run, "deletes_answer"))
    assert score(course_run, "strips_test_metadata") == 0
    graded = nbformat.read(course_run["out"] / "autograded" / "deletes_tests" / "pool2d" / "pool2d.ipynb", as_version=4)
    restored = [cell.source for cell in graded_cells(graded)]
    assert len(restored) == 2 and all("hidden=True" in source for source in restored)


@ONE_RUN
@pytest.mark.parametrize("student", sorted(PATCHES))
def test_monkeypatching_passes_in_the_notebook_but_is_not_credited(course_run, student):
    # unconfirmed: the patch fooled the tests inside the notebook, not the grader.
    assert score(course_run, student) == 0
    assert {"unconfirmed:pool2d_max", "unconfirmed:pool2d_avg"} <= flags(course_run, student)
    graded = nbformat.read(course_run["out"] / "autograded" / student / "pool2d" / "pool2d.ipynb", as_version=4)
    shown = [float(output.data["text/plain"]) for cell in graded_cells(graded) for output in cell.outputs if output.output_type == "execute_result"]
    assert shown == [0.0, 0.0]  # the test cells show the grader's verdict, not what the patched notebook claimed


@ONE_RUN
def test_using_the_frameworks_pooling_is_reported_and_not_credited(course_run):
    assert score(course_run, "uses_framework") == 0
    assert "framework-pooling:pool2d_max" in flags(course_run, "uses_framework")
    graded = (course_run["out"] / "autograded" / "uses_framework" / "pool2d" / "pool2d.ipynb").read_text()
    assert grading.FORBIDDEN_POOLING in graded


@ONE_RUN
@pytest.mark.parametrize("student", BAD_METADATA)
def test_metadata_nbgrader_refuses_costs_only_its_student(course_run, student):
    assert course_run["result"].returncode == 0
    assert score(course_run, student) == 0 and flags(course_run, student) == {"invalid-metadata"}
    # Said in the run's log, not on the console (the report lists the flag).
    assert f"{student}: nbgrader refuses the notebook's metadata" in (course_run["out"] / "logs" / "run.log").read_text()
    assert "refuses" not in course_run["result"].stderr


def test_a_submission_the_grader_fails_on_gets_zero_and_the_flag_never_its_earlier_grade(tmp_path, monkeypatch):
    """No submission can make the grader fail any more (tests/test_hostile.py): the grader's
    own failure is made here, in-process, on the second run of a correct submission."""
    from poolkit.grader import autograde

    subs, out = tmp_path / "submissions", tmp_path / "out"
    for student in ("victim", "other"):
        (subs / student).mkdir(parents=True)
        nbformat.write(submission(pool2d_source()), subs / student / "pool2d.ipynb")
    settings = autograde.Settings(timeout=TIMEOUT)
    first = {row["student_id"]: row for row in csv.DictReader(open(autograde.grade("pool2d", subs, out, workers=2, course=ROOT, settings=settings).grades))}
    assert float(first["victim"]["score"]) == MAX_SCORE
    record = autograde.record

    def fails_on_the_victim(out, assignment, submission, result):
        if submission.student == "victim":
            raise OSError("the disk is full (made by the test)")
        return record(out, assignment, submission, result)

    monkeypatch.setattr(autograde, "record", fails_on_the_victim)
    again = autograde.grade("pool2d", subs, out, workers=2, course=ROOT, settings=settings, regrade=True)
    assert again.errors == 1 and again.graded == 2
    second = {row["student_id"]: row for row in csv.DictReader(open(again.grades))}
    assert float(second["victim"]["score"]) == 0 and "grader-error" in second["victim"]["flags"]
    assert float(second["other"]["score"]) == MAX_SCORE


@ONE_RUN
def test_feedback_is_safe_to_open_and_every_kind_of_output_is_capped(course_run):
    student = "shows_html_and_floods_display"
    assert score(course_run, student) == MAX_SCORE
    assert any(flag.startswith("output-truncated:") for flag in flags(course_run, student))
    graded = nbformat.read(course_run["out"] / "autograded" / student / "pool2d" / "pool2d.ipynb", as_version=4)
    cell = next(cell for cell in graded.cells if "display(HTML" in cell.source)
    assert len(json.dumps(cell.outputs)) < 30_000 and "was left out" in json.dumps(cell.outputs)
    page = (course_run["out"] / "feedback" / student / "pool2d.html").read_text()
    # The student's code is shown, escaped; nothing it displayed may run.
    assert not [script for script in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S) if "alert" in script]
    assert "<img src=x onerror" not in page


@ONE_RUN
def test_the_kernel_gets_a_fresh_environment_without_the_graders_variables(course_run):
    student = "prints_the_environment"
    assert score(course_run, student) == MAX_SCORE
    graded = (course_run["out"] / "autograded" / student / "pool2d" / "pool2d.ipynb").read_text()
    assert "'HOME'" in graded and "NUMBA_ENABLE_CUDASIM" in graded  # it printed its environment
    assert GRADER_SECRET not in graded and GRADER_SECRET not in (course_run["out"] / "feedback" / student / "pool2d.html").read_text()


@ONE_RUN
def test_a_submission_cannot_write_or_read_the_gradebook_the_solutions_or_other_students_files(course_run):
    assert score(course_run, "attacks_files") == MAX_SCORE
    graded = nbformat.read(course_run["out"] / "autograded" / "attacks_files" / "pool2d" / "pool2d.ipynb", as_version=4)
    printed = json.dumps(solution_cell(graded).outputs)
    assert "written: []" in printed and "read: []" in printed
    for path, digest in course_run["protected"].items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} was changed"
    with sqlite3.connect(course_run["out"] / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@ONE_RUN
def test_unreadable_and_renamed_notebooks(course_run):
    assert score(course_run, "unreadable") == 0 and "unreadable" in flags(course_run, "unreadable")
    assert score(course_run, "renamed") == MAX_SCORE and "renamed" in flags(course_run, "renamed")
    assert score(course_run, "links_a_classmate") == 0 and flags(course_run, "links_a_classmate") == {"no-notebook"}


@ONE_RUN
def test_feedback_shows_scores_but_never_the_hidden_tests(course_run):
    hidden = [line.strip() for cell in nbformat.read(SOLUTIONS, as_version=4).cells for line in cell.source.splitlines() if "hidden=True" in line]
    assert hidden
    for student in ("correct", "partial", "deletes_tests", "edits_tests"):
        html = (course_run["out"] / "feedback" / student / "pool2d.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in html and "hidden=True" not in html
        assert all(line not in html for line in hidden)
        assert "pool2d_max" in html and "Score" in html


@ONE_RUN
def test_the_gradebook_is_nbgraders_and_holds_one_submission_per_student(course_run):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_run['out'] / 'gradebook.db'}") as gb:
        submissions = gb.assignment_submissions("pool2d")
        assert sorted(item.student.id for item in submissions) == sorted(course_run["rows"])
        assert {item.student.id: item.score for item in submissions}["correct"] == MAX_SCORE


def test_a_zip_export_is_graded_and_rerunning_changes_nothing(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("pool2d-export/ann/pool2d.ipynb", nbformat.writes(submission(pool2d_source())))
        bundle.writestr("pool2d-export/ben/pool2d.ipynb", nbformat.writes(submission()))
        bundle.writestr("pool2d-export/../../escape.ipynb", "{}")
    out = tmp_path / "out"
    first = grade(archive, out, "--workers", "6")
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(list((out / "logs").glob("worker-*.log"))) == 2  # no more workers than submissions
    before = (out / "grades.csv").read_text()
    (out / "submissions" / "mine").mkdir(parents=True)  # the instructor's own folder: a zip is read in place, never unpacked over it
    (out / "submissions" / "mine" / "notes.txt").write_text("keep me")
    second = grade(archive, out, "--workers", "1")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 graded now, 2 kept from an earlier run" in second.stderr + second.stdout
    assert (out / "grades.csv").read_text() == before
    assert (out / "submissions" / "mine" / "notes.txt").read_text() == "keep me"
    regraded = grade(archive, out, "--workers", "1", "--regrade")
    assert regraded.returncode == 0 and "2 graded now" in regraded.stdout, regraded.stderr[-3000:]
    assert (out / "grades.csv").read_text() == before
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [(row["student_id"], float(row["score"])) for row in rows] == [("ann", MAX_SCORE), ("ben", 0.0)]
    assert not (tmp_path / "escape.ipynb").exists() and not (out / "escape.ipynb").exists()
    assert (out / "feedback" / "ann" / "pool2d.html").is_file()


def test_bad_arguments_get_a_clear_error(tmp_path):
    missing = grade(tmp_path / "nowhere", tmp_path / "out")
    assert missing.returncode == 2 and "SUBMISSIONS" in missing.stderr
    workers = grade(tmp_path, tmp_path / "out", "--workers", "0")
    assert workers.returncode == 2 and "--workers" in workers.stderr
    (tmp_path / "s" / "x").mkdir(parents=True)
    unknown = subprocess.run([sys.executable, "-m", "poolkit.grader.cli", "grade", "no-such", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--course", str(ROOT)], capture_output=True, text=True)
    assert unknown.returncode == 2 and "no-such" in unknown.stderr and "pool2d" in unknown.stderr


def test_without_bubblewrap_it_refuses_to_grade_unless_told_it_is_unsafe(tmp_path, monkeypatch):
    from poolkit.grader import autograde, sandbox

    monkeypatch.setattr(sandbox, "_bubblewrap", lambda: ("", "no user namespaces (made by the test)"))
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="--unsafe-no-sandbox") as refused:
        autograde.grade("pool2d", tmp_path / "subs", tmp_path / "out", workers=1, course=ROOT)
    assert "no user namespaces (made by the test)" in str(refused.value)
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_a_broken_setup_stops_before_it_grades_anyone(tmp_path):
    """A course whose own solution does not earn full marks through the grader (here its
    average pooling is wrong) would grade every student wrong: the run refuses, and says why."""
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "solutions" / "questions.py", course / "solutions")
    shutil.copytree(ROOT / "solutions" / "pool2d", course / "solutions" / "pool2d")
    nb = nbformat.read(course / "solutions" / "pool2d" / "pool2d.ipynb", as_version=4)
    answer = solution_cell(nb)
    assert "mean()" in answer.source
    answer.source = answer.source.replace("mean()", "max()")
    nbformat.write(nb, course / "solutions" / "pool2d" / "pool2d.ipynb")
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(submission(pool2d_source()), tmp_path / "subs" / "ann" / "pool2d.ipynb")
    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", "pool2d", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--course", str(course), "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    assert re.search(r"the instructor's solution of pool2d earns [0-9.]+ of 6 points", result.stderr) and "nothing was graded" in result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists() and not (tmp_path / "out" / "feedback").exists()


@pytest.mark.parametrize(
    "case",
    [
        "memory_inf",
        "memory_tiny",
        "memory_huge",
        "timeout_huge",
        "budget_tiny",
        "scratch_over_memory",
        "roster_missing",
        "pattern_without_group",
        "out_is_a_file",
        "out_in_solutions",
        "out_is_the_submissions",
        "out_not_ours",
        "gradebook_damaged",
        "zip_damaged",
        "zip_empty",
    ],
)
def test_every_bad_argument_is_refused_before_any_work_with_one_line_naming_it(tmp_path, case):
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    nbformat.write(submission(pool2d_source()), subs / "ann" / "pool2d.ipynb")
    out, options = tmp_path / "out", []
    if case.startswith("memory_"):
        options, expected = ["--memory-gb", {"memory_inf": "inf", "memory_tiny": "0.01", "memory_huge": "1e30"}[case]], "--memory-gb"
    elif case == "timeout_huge":
        options, expected = ["--timeout", "100000"], "--timeout"
    elif case == "budget_tiny":
        options, expected = ["--budget", "3"], "--budget"
    elif case == "scratch_over_memory":
        options, expected = ["--memory-gb", "1", "--scratch-mb", "2048"], "--scratch-mb"
    elif case == "roster_missing":
        options, expected = ["--roster", str(tmp_path / "no-roster.csv")], "--roster"
    elif case == "pattern_without_group":
        options, expected = ["--id-pattern", r"(\w+)/pool2d\.ipynb"], "--id-pattern"
    elif case == "out_is_a_file":
        out.write_text("notes")
        expected = "is a file"
    elif case == "out_in_solutions":
        out, expected = ROOT / "solutions" / "grading-here", "inside the course's solutions/"
    elif case == "out_is_the_submissions":
        out, expected = subs, "overlap"
    elif case == "out_not_ours":
        out.mkdir()
        (out / "thesis.tex").write_text("keep me")
        expected = "did not make"
    elif case == "gradebook_damaged":  # an earlier run's, truncated by a full disk
        out.mkdir()
        (out / ".poolkit-grade").touch()
        (out / "gradebook.db").write_bytes(b"SQLite format 3\x00" + bytes(100))
        expected = "gradebook.db is damaged"
    elif case == "zip_damaged":
        subs = tmp_path / "export.zip"
        shutil.make_archive(str(tmp_path / "export"), "zip", tmp_path / "subs")
        data = bytearray(subs.read_bytes())
        data[40:400] = bytes(360)  # the first member's data, gone
        subs.write_bytes(bytes(data))
        expected = "damaged zip"
    elif case == "zip_empty":  # an export of an assignment nobody handed in
        subs = tmp_path / "export.zip"
        zipfile.ZipFile(subs, "w").close()
        expected = "holds no student's submission"
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) if out.is_relative_to(tmp_path) else None
    result = grade(subs, out, *options)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if before is not None:
        assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before  # no work was done, nothing deleted
    assert not (ROOT / "solutions" / "grading-here").exists()


def test_poolkit_check_summarises_the_visible_tests_per_question(tmp_path):
    """Notebooks outside the course find its questions through POOLKIT_QUESTIONS (inside, from their folder)."""
    env = dict(os.environ, POOLKIT_QUESTIONS=str(ROOT / "solutions" / "questions.py"))
    for name, nb, code in (("done", submission(pool2d_source()), 0), ("todo", submission(), 1)):
        path = tmp_path / name / "pool2d.ipynb"
        path.parent.mkdir()
        nbformat.write(nb, path)
        result = subprocess.run([sys.executable, "-m", "poolkit.grader.cli", "check", str(path)], capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == code, result.stdout + result.stderr
        visible = len(grading.question("pool2d_max").visible)
        passed = visible if code == 0 else 0
        assert f"pool2d_max: {passed} of {visible} visible cases passed" in result.stdout
        assert f"{2 if code == 0 else 0} of 2 questions pass" in result.stdout
        if code:
            assert "FAIL" in result.stdout and "not written yet" in result.stdout


@pytest.mark.parametrize("assignment", sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir()))
def test_every_assignment_grades_its_solution_full_in_either_framework_and_its_release_zero_in_the_sandbox(tmp_path, assignment):
    subs = tmp_path / "submissions"
    for student, source in (("solved", ROOT / "solutions"), ("blank", ROOT / "exercises")):
        (subs / student).mkdir(parents=True)
        shutil.copy(source / assignment / f"{assignment}.ipynb", subs / student)
    # The same solution in MXNet: its first cell says so, and its re-run imports and locks MXNet only.
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert 'FRAMEWORK = "pytorch"' in first.source
    first.source = first.source.replace('FRAMEWORK = "pytorch"', 'FRAMEWORK = "mxnet"')
    (subs / "solved_mxnet").mkdir()
    nbformat.write(nb, subs / "solved_mxnet" / f"{assignment}.ipynb")
    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", assignment, str(subs), "--out", str(tmp_path / "out"), "--course", str(ROOT), "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["student_id"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    for student in ("solved", "solved_mxnet"):
        assert float(rows[student]["score"]) == float(rows[student]["max_score"]) > 0, rows[student]
        # The source notebook carries the hidden tests, so its test cells differ from the release's: only that is flagged.
        assert all(flag.startswith("test-edited:") for flag in filter(None, rows[student]["flags"].split(";"))), rows[student]
    assert float(rows["blank"]["score"]) == 0, rows["blank"]


def test_a_notebook_is_graded_by_the_rules_of_the_framework_it_sets(tmp_path):
    """The conventions' output_size with PyTorch's ceil rule for both frameworks: full
    marks in PyTorch; in MXNet, whose 'full' keeps a last window that starts in the
    padding, the cases where the two differ fail, each with MXNet's rule as the cause."""
    nb = nbformat.read(ROOT / "solutions" / "conventions" / "conventions.ipynb", as_version=4)
    answer = next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "ceil_output_size_solution")
    assert 'FRAMEWORK == "pytorch" and ' in answer.source
    answer.source = answer.source.replace('FRAMEWORK == "pytorch" and ', "")
    subs = tmp_path / "submissions"
    for student, framework in (("torch_rule_in_pytorch", "pytorch"), ("torch_rule_in_mxnet", "mxnet")):
        first = next(cell for cell in nb.cells if cell.cell_type == "code")
        first.source = f'FRAMEWORK = "{framework}"'
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "conventions.ipynb")
    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", "conventions", str(subs), "--out", str(tmp_path / "out"), "--course", str(ROOT), "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["student_id"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    full = float(rows["torch_rule_in_pytorch"]["max_score"])
    assert float(rows["torch_rule_in_pytorch"]["score"]) == full, rows
    assert 0 < float(rows["torch_rule_in_mxnet"]["score"]) < full, rows
    page = (tmp_path / "out" / "feedback" / "torch_rule_in_mxnet" / "conventions.html").read_text()
    assert "as PyTorch does: MXNet&#39;s &#39;full&#39;" in page or "as PyTorch does: MXNet's 'full'" in page, page[-3000:]
