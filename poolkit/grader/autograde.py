"""The instructor's grader behind ``poolkit grade ASSIGNMENT SUBMISSIONS --out DIR``.

For one assignment of the course (``solutions/<assignment>/``), it:

1. generates the assignment with nbgrader into ``DIR/course`` and its SQLite
   gradebook ``DIR/gradebook.db`` (the instructor's test cells, hidden tests
   included, are stored there);
2. reads each student's notebook (``<student_id>/<notebook>.ipynb`` in a folder
   or a zip), restores every test cell the student deleted or edited, and hands
   it to one of N worker processes (:func:`serve`; each grades one submission
   after another, and is replaced if it dies);
3. in the worker, runs the notebook in a sandboxed kernel (:mod:`poolkit.grader.sandbox`:
   bubblewrap's namespaces, Landlock, cgroup limits; reads and writes only its own
   scratch folder) with :func:`poolkit.grader.notebooks.execute` (cell timeouts, dead
   kernels and output floods cost only their cell), then re-runs the student's cells
   in a second, fresh sandboxed process (:mod:`poolkit.grader.rerun`, with the
   frameworks' pooling locked out by :mod:`poolkit.grader.lockout`) and asks it for
   each case's answer, one case at a time, over pipes the worker opened; the worker,
   which never runs student code, judges the answers (:func:`confirm`), the hidden
   cases' inputs drawn from a seed only it knows;
4. back in the grader, saves the notebook's scores with nbgrader's
   ``SaveAutoGrades``, replaces each question's score with the worker's verdict
   (flagging ``unconfirmed`` where the notebook claimed more), and writes
   ``DIR/grades.csv`` and ``DIR/feedback/<student_id>/``.

Before any student, the instructor's own solution notebook is graded the same
way, and the run stops unless it earns full marks (:func:`self_check`).

A harmless warning on stderr does not zero a test cell (nbgrader would). Each
submission fails alone: a notebook whose nbgrader metadata nbgrader refuses
scores 0 with the flag ``invalid-metadata``, and one the grader itself fails on
scores 0 with ``grader-error`` (never an earlier or a half-recorded grade); the
run goes on, and every student has a row in ``grades.csv``.
Only this process writes the gradebook, one submission at a time, so a rerun
replaces each student's grades and never adds them twice.
"""

import argparse
import csv
import functools
import hashlib
import json
import os
import queue
import re
import secrets
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checks, notebooks, rerun, sandbox, scan
from .course import QUESTIONS_VARIABLE, find_course, questions, questions_file

FLAGS_TABLE = "poolkit_flags"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
MAX_UNZIPPED = 1 << 30


@dataclass
class Settings:
    """How a grading run treats each submission."""

    timeout: int = 30  # seconds per cell
    memory: int = 4 << 30  # address-space cap of the student's processes, in bytes
    max_output: int = notebooks.MAX_OUTPUT  # characters of output kept per cell


@dataclass
class Submission:
    """One student's notebook, ready for a worker."""

    student: str
    notebook: str  # the assignment's notebook name, without .ipynb
    job: Path  # the worker's folder
    flags: set = field(default_factory=set)
    questions: list = field(default_factory=list)  # its test cells' grade_ids, which are the questions' keys


# --- the course and the submissions --------------------------------------------


def unpack(submissions, out):
    """The folder holding ``<student_id>/`` folders: ``submissions`` itself, or a zip
    (checked whole by :func:`check_run`) extracted into ``out``."""
    submissions = Path(submissions)
    if submissions.is_dir():
        folder = submissions
    else:
        folder = Path(out) / "submissions"
        if folder.exists() and not (folder / UNPACKED_MARKER).is_file():
            raise ValueError(f"--out {out} already holds a submissions/ folder that poolkit grade did not unpack: move it, or choose another --out")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / UNPACKED_MARKER).touch()
        _extract(submissions, folder)
    # A zip usually wraps everything in one folder (as a learning-management system exports it).
    entries = [entry for entry in folder.iterdir() if _is_student_dir(entry)]
    if len(entries) == 1 and not any(entries[0].glob("*.ipynb")) and any(entries[0].glob("*/*.ipynb")):
        return entries[0]
    return folder


def _extract(archive, folder):
    """Extract ``archive`` safely: no absolute or ``..`` paths, no links, at most 1 GiB in all."""
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        if sum(member.file_size for member in members) > MAX_UNZIPPED:
            raise ValueError(f"SUBMISSIONS: {archive} unpacks to more than {MAX_UNZIPPED >> 30} GiB")
        for member in members:
            parts = Path(member.filename).parts
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if member.filename.startswith("/") or ".." in parts or is_link:
                continue
            bundle.extract(member, folder)


def _is_student_dir(path):
    # A link is no student's folder: it would make the grader read, with its rights, whatever it points to.
    return path.is_dir() and not path.is_symlink() and not path.name.startswith((".", "__"))


def _is_notebook_file(path):
    return path.is_file() and not any(part.is_symlink() for part in (path, path.parent))


def students(folder, notebook):
    """``(student_id, notebook path or None, flags)`` for every student folder, sorted by id.

    The notebook is ``<student_id>/<notebook>.ipynb`` (or nbgrader's
    ``<student_id>/<assignment>/<notebook>.ipynb``); a student folder holding
    one notebook under another name is graded with the flag ``renamed``.
    """
    found: list[tuple[str, Path | None, set[str]]] = []
    for entry in sorted(folder.iterdir()):
        if not _is_student_dir(entry):
            continue
        if not STUDENT_ID.match(entry.name):
            print(f"warning: skipping {entry.name!r}: not a usable student id", file=sys.stderr)
            continue
        expected = [entry / f"{notebook}.ipynb", *entry.glob(f"*/{notebook}.ipynb")]
        expected = [path for path in expected if _is_notebook_file(path)]
        if expected:
            found.append((entry.name, expected[0], set()))
            continue
        others = [path for path in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts and _is_notebook_file(path)]
        found.append((entry.name, others[0], {"renamed"}) if len(others) == 1 else (entry.name, None, {"no-notebook"}))
    return found


# --- the assignment in nbgrader ------------------------------------------------


def _db_url(out):
    return f"sqlite:///{(Path(out) / 'gradebook.db').resolve()}"


def _nbgrader_config(out):
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(Path(out, "course").resolve())
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.release_directory = "release"
    config.CourseDirectory.db_url = _db_url(out)
    return config


def generate(course, assignment, out):
    """Put ``assignment`` into ``out``'s gradebook with nbgrader; return its notebook names."""
    from nbgrader.apps import NbGraderAPI

    source = Path(course) / "solutions" / assignment
    if not source.is_dir():
        known = sorted(path.name for path in (Path(course) / "solutions").iterdir() if path.is_dir())
        raise FileNotFoundError(f"ASSIGNMENT {assignment!r} is not in {Path(course) / 'solutions'}; known: {', '.join(known)}")
    target = Path(out) / "course" / "source" / assignment
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    result = NbGraderAPI(config=_nbgrader_config(out)).generate_assignment(assignment, force=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not generate {assignment}:\n{result.get('log', '')}\n{result.get('error', '')}")
    return sorted(path.stem for path in target.glob("*.ipynb"))


def _release(out, assignment, notebook):
    import nbformat

    return nbformat.read(Path(out) / "course" / "release" / assignment / f"{notebook}.ipynb", as_version=4)


def is_test_cell(cell):
    """An autograded test cell: a graded code cell with no solution in it."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def restore_test_cells(nb, release):
    """Put back the release's locked and test cells that the student deleted (or
    stripped of their metadata): returns their grade_ids, and the grade_ids of
    test cells whose code the student edited (nbgrader restores those)."""
    present = {_grade_id(cell): index for index, cell in enumerate(nb.cells) if _grade_id(cell)}
    edited = []
    for cell in release.cells:
        name = _grade_id(cell)
        if name in present and is_test_cell(cell) and nb.cells[present[name]].source.strip() != cell.source.strip():
            edited.append(name)
    deleted, anchor = [], -1
    for cell in release.cells:
        name = _grade_id(cell)
        if not name:
            continue
        if name in present:
            anchor = present[name]
            continue
        deleted.append(name)
        anchor += 1
        nb.cells.insert(anchor, _fresh_copy(cell))
        present = {_grade_id(item): index for index, item in enumerate(nb.cells) if _grade_id(item)}
    return deleted, edited


def _fresh_copy(cell):
    import nbformat

    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    copy.pop("id", None)
    if copy.cell_type == "code":
        copy.outputs, copy.execution_count = [], None
    return copy


def suspicious(nb, release):
    """What the student's own code cells (those not as the release has them) name that
    an honest solution never needs (:func:`poolkit.grader.scan.names_of_note`)."""
    shipped = {cell.source.strip() for cell in release.cells}
    own = [cell.source for cell in nb.cells if cell.cell_type == "code" and not is_test_cell(cell) and cell.source.strip() not in shipped]
    return set().union(*(scan.names_of_note(source) for source in own))


def sanitize(nb, release, resources):
    """nbgrader's sanitizing steps, after putting deleted test cells back."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec

    deleted, edited = restore_test_cells(nb, release)
    for step in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(), OverwriteCells(add_missing_cells=False), CheckCellMetadata()):
        nb, resources = step.preprocess(nb, resources)
    return nb, deleted, edited


# --- the worker: one submission, out of the grader's process -------------------


#: What a student's processes keep of the grader's environment: where programs are,
#: the locale, and OpenBLAS's settings for this processor (older builds compute wrong
#: results or crash without them). Nothing else of the grader's reaches them.
KERNEL_INHERITS = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def kernel_env(scratch):
    """The environment of a student's processes, made afresh: everything they write goes
    to ``scratch``, and of the grader's own variables only :data:`KERNEL_INHERITS` pass."""
    env = {name: os.environ[name] for name in KERNEL_INHERITS if name in os.environ}
    for name in ("HOME", "TMPDIR", "IPYTHONDIR", "MPLCONFIGDIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(scratch if name == "HOME" else scratch / f".{name.lower()}")
    env.update(
        NUMBA_ENABLE_CUDASIM="1",  # the CUDA exercise is graded on the CPU, with numba's simulator
        MALLOC_ARENA_MAX="2",  # glibc's per-thread arenas would reserve address space against the cap
        OMP_NUM_THREADS="1",  # the workers are the parallelism; framework threads would oversubscribe
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env[QUESTIONS_VARIABLE] = str(scratch / "questions.py")  # the course's questions, copied beside the notebook
    return env


def work(job_dir):
    """Grade the submission prepared in ``job_dir`` (``job.json``, ``submitted.ipynb``) into ``result.json``."""
    import nbformat

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    settings = Settings(**job["settings"])
    scratch = job_dir / "scratch"
    for name in ("tmpdir", "ipythondir", "mplconfigdir", "numba_cache_dir", "xdg_cache_home", "jupyter_runtime_dir"):
        (scratch / f".{name}").mkdir(parents=True, exist_ok=True)
    env = kernel_env(scratch)
    # The kernel's connection file is written to one of these: inside its sandbox, where it can read it.
    os.environ.update(JUPYTER_RUNTIME_DIR=env["JUPYTER_RUNTIME_DIR"], TMPDIR=env["TMPDIR"])
    tempfile.tempdir = env["TMPDIR"]  # tempfile caches it, and this worker grades one job after another
    prefix = sandbox.command(scratch, settings.memory)
    nb = nbformat.read(job_dir / "submitted.ipynb", as_version=4)
    graded, events = notebooks.execute(nb, scratch, timeout=settings.timeout, max_output=settings.max_output, prefix=prefix, env=env)
    skipped = {event.cell for event in events if event.kind in (notebooks.TIMEOUT, notebooks.DIED)}
    cells = [cell.source for index, cell in enumerate(nb.cells) if cell.cell_type == "code" and not is_test_cell(cell) and index not in skipped]
    # A test cell that timed out or killed the kernel already scored 0: nothing to confirm.
    failed = {_grade_id(nb.cells[index]) for index in skipped}
    keys = [key for key in job["questions"] if key not in failed]
    sandbox.cleanup(scratch)  # nothing the kernel started outlives it
    verified = confirm(cells, keys, scratch, env, settings, job["seed"])
    result = {"notebook": graded, "events": [[event.kind, event.cell] for event in events], "verified": verified}
    (job_dir / "result.json.part").write_text(json.dumps(result))
    os.replace(job_dir / "result.json.part", job_dir / "result.json")


def confirm(cells, keys, scratch, env, settings, seed):
    """Re-run the graded functions out of the student's kernel (:mod:`poolkit.grader.rerun`)
    and judge their answers here, where no student code runs.

    Each question's hidden cases are drawn from ``seed``, which only the grader
    knows. Returns ``{key: {"points": float, "passed": int, "cases": int,
    "failures": ["[hidden] label: message", ...]}}``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    plan = []  # (question, case, "visible", "hidden" or "timed") in the order they are asked
    for key in keys:
        question = checks.question(key)
        if question.timed is not None:
            plan.append((question, question.timed(rng), "timed"))
        plan += [(question, case, "visible") for case in question.visible]
        plan += [(question, case, "hidden") for case in question.hidden_cases(rng)]
    lock = any(question.forbid_pooling for question, _, _ in plan)
    answers, refused = ask(cells, [(question, case) for question, case, _ in plan], scratch, env, settings, lock)
    verified: dict[str, dict[str, Any]] = {key: {"points": 0.0, "passed": 0, "cases": 0, "failures": [f"[{cell}]" for cell in refused if checks.question(key).forbid_pooling]} for key in keys}
    too_slow = {}
    for (question, case, kind), (result, problem, seconds) in zip(plan, answers):
        outcome = checks.judge(question, case, result, problem)
        entry = verified[question.key]
        if kind == "timed":
            print(f"{question.key}: the timed case took {seconds:.2f} s (at most {question.time_budget:g})", file=sys.stderr)
            if not outcome.passed or seconds > question.time_budget:
                why = outcome.message if not outcome.passed else f"took {seconds:.1f} s (at most {question.time_budget:g})"
                too_slow[question.key] = f"[timed] {case.label}: {why}: a loop over the window's offsets answers it in a fraction of that; a loop over every output does not"
            continue
        entry["cases"] += 1
        entry["passed"] += outcome.passed
        if not outcome.passed:
            entry["failures"].append(f"{'[hidden] ' if kind == 'hidden' else ''}{case.label}: {outcome.message}")
    for key, entry in verified.items():
        if key in too_slow:  # the grader's own measure of the vectorize exercises: no credit without it
            entry["passed"], entry["failures"] = 0, [too_slow[key], *entry["failures"]]
        entry["points"] = round(entry["passed"] * checks.question(key).points_per_case, 6)
    return verified


#: The re-run's own files, bound read-only into its sandbox, where poolkit's folder is hidden.
RERUN_FILES = ("rerun.py", "lockout.py")
RERUN_DIR = "/tmp/poolkit-rerun"  # inside the sandbox (its private /tmp)
#: The notebook's framework, as its first cell sets it (the exercises' convention).
DECLARED_FRAMEWORK = re.compile(r"^FRAMEWORK\s*=\s*[\"'](pytorch|mxnet)[\"']", re.MULTILINE)
PACKAGES = {"pytorch": "torch", "mxnet": "mxnet"}


def declared_framework(cells):
    """The framework the student's cells set first (``FRAMEWORK = "mxnet"``), else PyTorch."""
    found = (DECLARED_FRAMEWORK.search(source) for source in cells)
    return next((match[1] for match in found if match), "pytorch")


def _package_folder(name):
    """Where the package ``name`` is installed, found without importing it; None if it is not."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None


def ask(cells, calls, scratch, env, settings, lock):
    """Run the student's ``cells`` in a fresh sandboxed process and ask it for the answer
    to each ``(question, case)`` of ``calls``, one case at a time (its inputs are sent
    only then): a list of ``(result, None, seconds)`` or ``(None, why there is no
    result, seconds)``, the seconds from sending the case to its answer, and the
    cells that the lockout of the frameworks' pooling stopped.

    What does not come back in time, or in the format, is not credited; the process,
    and everything it started, is ended before this returns.
    """
    here = Path(rerun.__file__).resolve().parent
    # Only the notebook's own framework is importable there (the other's folder is hidden), so
    # only it is imported and locked: a second framework would cost seconds on every submission.
    framework = declared_framework(cells)
    others = [_package_folder(PACKAGES[other]) for other in checks.FRAMEWORKS if other != framework]
    hidden = [str(Path(checks.__file__).resolve().parents[1]), *filter(None, others)]
    prefix = sandbox.command(scratch, settings.memory, hide=hidden, bind=[(str(here / name), f"{RERUN_DIR}/{name}") for name in RERUN_FILES])
    locked = ([framework] if sandbox.isolated() else list(checks.FRAMEWORKS)) if lock else []
    harness = f"{RERUN_DIR}/rerun.py" if sandbox.isolated() else str(here / "rerun.py")
    answers = [(None, "no result: the re-run of your notebook stopped before this case", 0.0)] * len(calls)
    refused: list[str] = []
    process = subprocess.Popen(
        [*prefix, sys.executable, "-I", "-B", harness], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=scratch, start_new_session=True
    )
    assert process.stdin is not None and process.stdout is not None
    channel = rerun.Channel(process.stdout.fileno(), process.stdin.fileno())
    try:
        channel.send({"kind": "job", "cells": cells, "timeout": settings.timeout, "framework": framework, "lock": locked})
        # Starting, importing the frameworks and running the cells: a cell's time each, and a minute.
        ready, _ = channel.receive(time.monotonic() + settings.timeout * len(cells) + 60)
        if ready.get("kind") != "ready":
            raise rerun.ProtocolError("the re-run did not start")
        refused = [str(item)[: rerun.MAX_MESSAGE_TEXT] for item in ready.get("refused", [])[:3]] if isinstance(ready.get("refused"), list) else []
        for number, (question, case) in enumerate(calls):
            sent = time.monotonic()
            channel.send({"kind": "case", "function": question.function, "line_budget": question.line_budget}, (tuple(case.args), dict(case.kwargs)))
            reply, value = channel.receive(sent + settings.timeout + 10)
            answers[number] = (*_answer(reply, value), time.monotonic() - sent)
    except (rerun.ProtocolError, EOFError, TimeoutError, OSError, TypeError, ValueError) as error:
        print(f"re-run stopped: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        sandbox.cleanup(scratch)
    return answers, refused


def _answer(reply, value):
    """One reply of the re-run as ``(result, problem)``: numbers only, or a message."""
    import numpy as np

    if reply.get("kind") == "problem" and isinstance(reply.get("message"), str):
        return None, reply["message"][: rerun.MAX_MESSAGE_TEXT]
    parts = value if isinstance(value, tuple) else (value,)
    if reply.get("kind") == "result" and parts and all(isinstance(part, np.ndarray) for part in parts):
        return value, None
    return None, "the re-run gave no answer of the expected form"


# --- recording grades -----------------------------------------------------------


def _open_flags(out):
    db = sqlite3.connect(Path(out) / "gradebook.db", timeout=30)
    db.execute(f"CREATE TABLE IF NOT EXISTS {FLAGS_TABLE} (assignment TEXT, student TEXT, flags TEXT, PRIMARY KEY (assignment, student))")
    return db


def _cell_label(cell, index):
    return _grade_id(cell) or f"cell{index + 1}"


def record(out, assignment, submission, result):
    """Save one graded submission: scores (lowered where not confirmed), flags, graded notebook, feedback."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    nb = nbformat.from_dict(result["notebook"])
    flags = set(submission.flags)
    for kind, index in result["events"]:
        flags.add(f"{kind}:{_cell_label(nb.cells[index], index)}")
    for index, cell in enumerate(nb.cells):
        if is_test_cell(cell):
            # A warning is not a failure; nbgrader would score any stderr output 0.
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
            if not _valid_score(cell):
                cell.outputs = [notebooks.error_output("InvalidScore", "the test cell's result is not a score between 0 and its points")]
                flags.add(f"invalid-score:{_cell_label(cell, index)}")
    resources = _resources(out, assignment, submission.notebook, submission.student)
    with Gradebook(_db_url(out)) as gb:
        gb.update_or_create_student(submission.student)
        gb.update_or_create_submission(assignment, submission.student)
    SaveAutoGrades().preprocess(nb, resources)
    with Gradebook(_db_url(out)) as gb:
        for key in submission.questions:
            confirmed = result["verified"].get(key)
            if confirmed is None:  # its cell timed out or killed the kernel: already 0
                continue
            # The grade is the grader's own judgement of the re-run; the kernel's cell only showed the student.
            grade = gb.find_grade(key, submission.notebook, assignment, submission.student)
            if grade.auto_score is not None and grade.auto_score > confirmed["points"] + 1e-9:
                flags.add(f"unconfirmed:{key}")
            grade.auto_score = confirmed["points"]
            if any(checks.FORBIDDEN_POOLING in failure for failure in confirmed["failures"]):
                flags.add(f"framework-pooling:{key}")
        gb.db.commit()
    _show_verdicts(nb, result["verified"])
    _save_flags(out, assignment, submission.student, flags)
    graded = Path(out) / "autograded" / submission.student / assignment / f"{submission.notebook}.ipynb"
    graded.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, graded)
    feedback(out, assignment, submission, nb, flags)


def _show_verdicts(nb, verified):
    """Each confirmed test cell shows the grader's verdict instead of what the kernel
    printed: no output of the hidden tests (nor anything the student's code wrote
    there) reaches the graded notebook or the feedback."""
    import nbformat

    for cell in nb.cells:
        confirmed = verified.get(_grade_id(cell)) if is_test_cell(cell) else None
        if confirmed is None:
            continue
        lines = [f"{_grade_id(cell)}: {confirmed['passed']} of {confirmed['cases']} cases passed, graded out of your notebook (hidden cases drawn for this run)"]
        lines += [f"  FAIL {failure}" for failure in confirmed["failures"]]
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(confirmed["points"])}, execution_count=cell.get("execution_count")),
        ]


def _valid_score(cell):
    """Whether a test cell's result, if it has one, is a number nbgrader can take
    as its partial credit (a sum of case shares a rounding error above the
    points is set to the points)."""
    points = float(cell.metadata["nbgrader"].get("points", 0))
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            try:
                value = float(output["data"]["text/plain"])
            except (KeyError, TypeError, ValueError):
                return False
            if points < value <= points + 1e-6:
                output["data"]["text/plain"] = repr(points)
                return True
            return 0 <= value <= points
    return True


def record_empty(out, assignment, student, flags):
    """A student with nothing gradable: every grade 0, with the reason in the flags."""
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(out)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
        for notebook in gb.find_assignment(assignment).notebooks:
            for grade in gb.find_submission_notebook(notebook.name, assignment, student).grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
    _save_flags(out, assignment, student, flags)


def _save_flags(out, assignment, student, flags):
    with _open_flags(out) as db:
        db.execute(f"INSERT OR REPLACE INTO {FLAGS_TABLE} VALUES (?, ?, ?)", (assignment, student, ";".join(sorted(flags))))


def _resources(out, assignment, notebook, student):
    return {"nbgrader": {"assignment": assignment, "notebook": notebook, "student": student, "db_url": _db_url(out)}}


@functools.lru_cache(maxsize=None)
def _feedback_exporter():
    """nbgrader's own feedback page, set up as `nbgrader generate_feedback` does (built once: it is slow to build)."""
    import nbgrader
    from nbconvert import HTMLExporter
    from nbgrader.preprocessors import GetGrades
    from traitlets.config import Config

    formgrader = Path(nbgrader.__path__[0]) / "server_extensions" / "formgrader"
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(formgrader / "templates")]
    config.HTMLExporter.extra_template_paths = [str(formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=config)
    exporter.register_preprocessor(GetGrades(), enabled=True)
    return exporter


def feedback(out, assignment, submission, nb, flags):
    """``DIR/feedback/<student>/<notebook>.html``: the graded notebook with its
    scores, without the hidden tests' source, and safe to open: the student's
    HTML and Markdown are sanitised (no scripts, no event handlers; JavaScript
    outputs are dropped) by nbconvert's sanitizer."""
    import nbformat
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    from nbgrader.preprocessors import ClearHiddenTests

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    _scrub(nb, _hidden_lines(nb))
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    nb, _ = SanitizeHTML().preprocess(nb, {})
    if flags:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("**The grader noted:** " + ", ".join(f"`{flag}`" for flag in sorted(flags))))
    html, _ = _feedback_exporter().from_notebook_node(nb, resources=_resources(out, assignment, submission.notebook, submission.student))
    target = Path(out) / "feedback" / submission.student / f"{submission.notebook}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")


def _hidden_lines(nb):
    """The lines of the hidden tests (between nbgrader's markers) of ``nb``'s test cells."""
    lines, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines() if is_test_cell(cell) else ():
            if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
            elif inside and line.strip():
                lines.add(line.strip())
    return lines


def _scrub(nb, lines):
    """Every output that quotes one of ``lines`` (a student printing ``In``, or a
    frame's source) shows ``[a hidden test]`` in its place."""

    def clean(text):
        for line in lines:
            text = text.replace(line, "[a hidden test]")
        return text

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = clean("".join(output["text"]))
            for kind, value in output.get("data", {}).items():
                if isinstance(value, (str, list)) and not kind.startswith("image/"):
                    output["data"][kind] = clean("".join(value))
            if "traceback" in output:
                output["traceback"] = [clean(line) for line in output["traceback"]]


def write_grades(out, assignment):
    """``DIR/grades.csv``: every student of ``assignment`` in the gradebook, one row each."""
    from nbgrader.api import Gradebook

    with _open_flags(out) as db:
        flags = dict(db.execute(f"SELECT student, flags FROM {FLAGS_TABLE} WHERE assignment = ?", (assignment,)))
    rows = []
    with Gradebook(_db_url(out)) as gb:
        max_score = gb.find_assignment(assignment).max_score
        for submission in gb.assignment_submissions(assignment):
            rows.append([submission.student.id, assignment, f"{submission.score:g}", f"{max_score:g}", flags.get(submission.student.id, "")])
    path = Path(out) / "grades.csv"
    with open(path.with_suffix(".csv.part"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "assignment", "score", "max_score", "flags"])
        writer.writerows(sorted(rows))
    os.replace(path.with_suffix(".csv.part"), path)
    return path


# --- the run ---------------------------------------------------------------------


def hidden_seed(secret, student):
    """The seed of ``student``'s hidden inputs in a run whose secret is ``secret``: one
    draw per student and run, known to no one before the run (nor kept after it)."""
    return int.from_bytes(hashlib.sha256(secret + student.encode()).digest()[:8], "big")


def prepare(out, assignment, notebook, student, path, flags, settings, course, secret):
    """Sanitize one student's notebook into a fresh job folder; None if there is nothing to run."""
    import nbformat

    job = Path(out) / "work" / student
    shutil.rmtree(job, ignore_errors=True)
    (job / "scratch").mkdir(parents=True)
    submission = Submission(student, notebook, job, set(flags))
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception:
        submission.flags.add("unreadable")
        return submission, False
    release = _release(out, assignment, notebook)
    try:
        nb, deleted, edited = sanitize(nb, release, _resources(out, assignment, notebook, student))
    except Exception as error:  # nbgrader refuses the cells' metadata: there is nothing it can grade
        reason = (str(error).strip().splitlines() or [""])[0][:200]  # nbgrader's message can hold a whole cell
        print(f"\nwarning: {student}: nbgrader refuses the notebook's metadata ({type(error).__name__}: {reason}); graded 0", file=sys.stderr)
        submission.flags.add("invalid-metadata")
        return submission, False
    submission.flags.update(f"test-deleted:{name}" for name in deleted)
    submission.flags.update(f"test-edited:{name}" for name in edited)
    noted = suspicious(nb, release)
    if noted:
        submission.flags.add("suspicious:" + ",".join(sorted(noted)[:6]))
    known = questions(questions_file(course))
    submission.questions = [_grade_id(cell) for cell in nb.cells if is_test_cell(cell) and _grade_id(cell) in known]
    for extra in (Path(out) / "course" / "release" / assignment).iterdir():
        if extra.suffix != ".ipynb" and extra.is_file():
            shutil.copy(extra, job / "scratch" / extra.name)
    shutil.copy(questions_file(course), job / "scratch" / "questions.py")
    nbformat.write(nb, job / "submitted.ipynb")
    # job.json stays outside scratch/: no sandbox can read the seed.
    (job / "job.json").write_text(json.dumps({"settings": vars(settings), "questions": submission.questions, "seed": hidden_seed(secret, student)}))
    return submission, True


class Worker:
    """One serving worker process (:func:`serve`), replaced if it dies or hangs."""

    def __init__(self, log, course):
        self.log, self.course = log, course
        self.process: subprocess.Popen[str] | None = None

    def start(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
        env[QUESTIONS_VARIABLE] = str(questions_file(self.course))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "poolkit.grader.autograde", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True
            )

    def grade(self, job, timeout):
        """Have the worker grade ``job``; True when it left a result in time."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(f"{job}\n")
            process.stdin.flush()
            with selectors.DefaultSelector() as waiting:
                waiting.register(process.stdout, selectors.EVENT_READ)
                answered = bool(waiting.select(timeout)) and process.stdout.readline().strip() == str(job)
        except (BrokenPipeError, OSError):
            answered = False
        if not answered:
            self.stop(kill=True)
        return answered and (Path(job) / "result.json").is_file()

    def stop(self, kill=False):
        if self.process is None:
            return
        if kill or self.process.stdin is None:
            self.process.kill()
        else:
            self.process.stdin.close()
        self.process.wait()
        self.process = None


class Progress:
    """A one-line progress bar on stderr (a line per step where stderr is not a terminal)."""

    def __init__(self, total, label):
        self.total, self.done, self.label, self.start = total, 0, label, time.monotonic()
        self.live = sys.stderr.isatty()

    def step(self, note=""):
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {time.monotonic() - self.start:.0f}s {note}"
        print(("\r" + line.ljust(100)) if self.live else line, end="" if self.live else "\n", file=sys.stderr, flush=True)

    def close(self):
        if self.live:
            print(file=sys.stderr)


def grade(assignment, submissions, out, *, workers=None, course=None, settings=None, unsafe_no_sandbox=False):
    """Autograde every submission of ``assignment``; returns the path of ``grades.csv``.

    Refuses (``RuntimeError``) where bubblewrap cannot isolate the students' processes,
    unless ``unsafe_no_sandbox`` is set (``--unsafe-no-sandbox``): then with a warning.
    """
    settings = settings or Settings()
    out = Path(out).resolve()
    course = Path(course).resolve() if course else find_course()
    workers = workers or os.cpu_count() or 1
    check_run(course, submissions, out, settings, workers)
    if not sandbox.isolated():
        if not unsafe_no_sandbox:
            raise RuntimeError(
                f"bubblewrap cannot isolate submissions here ({sandbox.mode()}): poolkit grade does not run untrusted code "
                "without it. Install it (make bwrap, or apt-get install bubblewrap), or pass --unsafe-no-sandbox "
                "for submissions you trust"
            )
        print(f"warning: --unsafe-no-sandbox: submissions run without bubblewrap ({sandbox.mode()})", file=sys.stderr)
    print(f"sandbox: {sandbox.mode()}", file=sys.stderr)
    # nbgrader runs `alembic` from PATH; it lives beside this Python, which may not be on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).touch()
    folder = unpack(submissions, out)
    (out / "workers").mkdir(parents=True, exist_ok=True)
    # No more workers than submissions: each is a process with nbgrader and the questions loaded.
    count = sum(1 for entry in folder.iterdir() if _is_student_dir(entry))
    pool = [Worker(out / "workers" / f"worker-{number + 1}.log", course) for number in range(max(1, min(workers, count)))]
    try:
        for worker in pool:
            worker.start()  # they load the course's questions while nbgrader generates the assignment
        grades = _grade_all(assignment, folder, out, course, settings, pool)
    except BaseException:  # an error, or Ctrl-C: leave no worker behind
        for worker in pool:
            worker.stop(kill=True)
        raise
    for worker in pool:
        worker.stop()
    return grades


OUT_MARKER = ".poolkit-grade"  # in every --out folder poolkit grade made: it only ever reuses or clears its own
UNPACKED_MARKER = ".poolkit-unpacked"  # in DIR/submissions/ when it was extracted from a zip by poolkit grade
MIN_MEMORY = 512 << 20  # a kernel with a framework imported needs about this much
MAX_TIMEOUT = 3600


def _within(path, folder):
    return path == folder or folder in path.parents


def check_run(course, submissions, out, settings, workers):
    """Every argument of a run, checked before any work: ``ValueError`` (or
    ``FileNotFoundError``) with one line that names the argument and what it accepts."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not MIN_MEMORY <= settings.memory <= total:
        raise ValueError(f"--memory-gb must be between {MIN_MEMORY / (1 << 30):g} and {total / (1 << 30):.1f} (this machine's memory), got {settings.memory / (1 << 30):g}")
    if not 1 <= settings.timeout <= MAX_TIMEOUT:
        raise ValueError(f"--timeout must be between 1 and {MAX_TIMEOUT} seconds, got {settings.timeout}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    submissions = Path(submissions).resolve()
    if not submissions.exists():
        raise FileNotFoundError(f"SUBMISSIONS {str(submissions)!r} does not exist")
    if not submissions.is_dir():
        if not zipfile.is_zipfile(submissions):
            raise ValueError(f"SUBMISSIONS must be a folder or a zip file, got {str(submissions)!r}")
        try:
            with zipfile.ZipFile(submissions) as bundle:
                damaged = bundle.testzip()  # reads every member: a damaged export is found before any work
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
            damaged = str(error)
        if damaged is not None:
            raise ValueError(f"SUBMISSIONS {str(submissions)!r} is a damaged zip file (at {damaged})")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, and {out} is a file")
    for name in ("solutions", "exercises"):
        if _within(out, course / name):
            raise ValueError(f"--out {out} is inside the course's {name}/, whose folders are its assignments: choose a folder outside it")
    if submissions.is_dir() and (_within(out, submissions) or _within(submissions, out)):
        raise ValueError(f"--out {out} and SUBMISSIONS {submissions} overlap: grader folders would become students (or the reverse); choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / OUT_MARKER).is_file():
        raise ValueError(f"--out {out} holds files that poolkit grade did not make: choose a new or empty folder (it never deletes what it did not create)")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be written")
    if not out.exists() and not os.access(next(parent for parent in out.parents if parent.exists()), os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be made: its nearest existing folder cannot be written")


def _job_timeout(settings):
    return settings.timeout * 200 + 600


SELF_CHECK = ".self-check"  # its job folder: no student id starts with a dot


def self_check(out, assignment, notebook, course, settings, worker, secret):
    """Grade the instructor's own solution notebook through the same path as every
    student's (sandbox, kernel, re-run), and stop the run before it grades anyone
    unless it earns full marks: a broken setup (poolkit not importable in the
    sandbox, a course that does not match the installed grader) would otherwise
    give every student 0 without an error."""
    source = Path(out) / "course" / "source" / assignment / f"{notebook}.ipynb"
    submission, runnable = prepare(out, assignment, notebook, SELF_CHECK, source, set(), settings, course, secret)
    if not runnable or not worker.grade(submission.job, _job_timeout(settings)):
        raise RuntimeError(f"the instructor's solution of {assignment} could not be graded ({', '.join(sorted(submission.flags)) or 'the worker left no result'}; see {submission.job / 'worker.log'}): nothing was graded")
    result = json.loads((submission.job / "result.json").read_text())
    known = questions(questions_file(course))  # this process's course: --course, not the current folder's
    full = sum(known[key].points for key in submission.questions)
    earned = sum(result["verified"].get(key, {}).get("points", 0.0) for key in submission.questions)
    if not submission.questions or earned < full - 1e-6:
        problems = [f"{key}: {failure}" for key, entry in result["verified"].items() for failure in entry["failures"]]
        problems += [f"{kind} in cell {cell + 1}" for kind, cell in result["events"]]
        problems += [f"{output['ename']}: {output['evalue']}" for cell in result["notebook"]["cells"] for output in cell.get("outputs", []) if output.get("output_type") == "error"]
        raise RuntimeError(
            f"the instructor's solution of {assignment} earns {earned:g} of {full:g} points through the grader "
            f"(sandbox, kernel, re-run), so every student would be graded wrong: nothing was graded. "
            f"Check that poolkit is installed in this environment from this course. First problems: {'; '.join(problems[:3]) or 'none reported'}"
        )
    shutil.rmtree(submission.job, ignore_errors=True)


def _grade_all(assignment, folder, out, course, settings, pool):
    names = generate(course, assignment, out)
    if len(names) != 1:
        raise ValueError(f"assignment {assignment!r} must have exactly one notebook, found {names}")
    notebook = names[0]
    found = students(folder, notebook)
    if not found:
        raise FileNotFoundError(f"no <student_id>/ folders in {folder}")
    secret = secrets.token_bytes(16)  # this run's: the hidden cases' inputs are drawn from it
    self_check(out, assignment, notebook, course, settings, pool[0], secret)
    progress = Progress(len(found), f"grading {assignment}")
    idle: queue.Queue[Worker] = queue.Queue()
    for worker in pool:
        idle.put(worker)

    def run(submission):
        worker = idle.get()
        try:
            return worker.grade(submission.job, _job_timeout(settings))
        finally:
            idle.put(worker)

    with ThreadPoolExecutor(max_workers=len(pool)) as threads:
        running = {}
        for student, path, flags in found:
            if path is None:
                record_empty(out, assignment, student, flags)
                progress.step(student)
                continue
            try:
                submission, runnable = prepare(out, assignment, notebook, student, path, flags, settings, course, secret)
            except Exception as error:  # the grader failed on this student, not the student: 0, said so, and go on
                print(f"\nerror: preparing {student} failed: {type(error).__name__}: {error}", file=sys.stderr)
                record_empty(out, assignment, student, set(flags) | {"grader-error"})
                progress.step(student)
                continue
            if not runnable:
                record_empty(out, assignment, student, submission.flags)
                progress.step(student)
                continue
            running[threads.submit(run, submission)] = submission
        for future in as_completed(running):
            submission = running[future]
            try:
                if not future.result():
                    raise RuntimeError(f"the worker left no result; see {submission.job / 'worker.log'}")
                record(out, assignment, submission, json.loads((submission.job / "result.json").read_text()))
            except Exception as error:
                # The grader failed, not the student: no grade from this run (nor an earlier one, nor
                # half of this one) stands; 0, flagged, so that the instructor regrades them.
                print(f"\nerror: grading {submission.student} failed: {type(error).__name__}: {error}", file=sys.stderr)
                record_empty(out, assignment, submission.student, submission.flags | {"grader-error"})
            progress.step(submission.student)
    progress.close()
    return write_grades(out, assignment)


def serve():
    """A worker: grade each job folder named on stdin, answering with its name on stdout.

    The worker lives for the whole run and never runs a student's code itself:
    each job's kernel and re-run are sandboxed processes of their own. Its stdin
    and stdout are kept for the grader alone: kernels started for a job inherit
    ``/dev/null`` and the job's ``worker.log`` instead.
    """
    # Dups are not inherited by the kernels and re-runs this worker starts.
    jobs, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w", buffering=1)
    silent = os.open(os.devnull, os.O_RDONLY)
    os.dup2(silent, 0)
    _preimport()
    for line in jobs:
        job = Path(line.strip())
        log = os.open(job / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        try:
            work(job)
        except Exception:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(f"{job}\n")


def _preimport():
    """Load the course's questions (named by the grader in this worker's environment)
    and the notebook machinery once per worker. The frameworks are not imported here:
    the worker only judges NumPy arrays, and students' code runs in processes of its own."""
    import nbclient  # noqa: F401

    questions()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m poolkit.grader.autograde")
    parser.add_argument("step", choices=["serve"])
    parser.parse_args(argv)
    serve()


if __name__ == "__main__":
    main()
