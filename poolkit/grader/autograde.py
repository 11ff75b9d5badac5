"""The instructor's grader behind ``poolkit grade ASSIGNMENT SUBMISSIONS --out DIR``.

For one assignment of the course (``solutions/<assignment>/``), it:

1. generates the assignment with nbgrader into ``DIR/course`` and its SQLite
   gradebook ``DIR/gradebook.db`` (the instructor's test cells, hidden tests
   included, are stored there);
2. finds each student's notebook in a folder or zip as nbgrader or a learning
   management system exports it (:mod:`poolkit.grader.collect`: every entry it
   does not grade is listed in ``DIR/report.txt`` with why), restores every test
   cell the student deleted or edited, and hands it to one of N worker processes
   (:func:`serve`; each grades one submission after another, and is replaced if
   it dies), with a job folder of its own outside ``DIR``; or, with ``--cluster``,
   sends the job folder to a Dask cluster's workers (:mod:`poolkit.grader.cluster`),
   which grade it as a local worker would and send the result back;
3. in the worker, runs the notebook in a sandboxed kernel (:mod:`poolkit.grader.sandbox`:
   bubblewrap's namespaces, Landlock, cgroup limits; it writes only its own scratch
   folder, a tmpfs of ``--scratch-mb`` that goes with it) with :func:`poolkit.grader.notebooks.execute` (cell timeouts, dead
   kernels and output floods cost only their cell), then re-runs the student's cells
   in a second, fresh sandboxed process (:mod:`poolkit.grader.rerun`, with the
   frameworks' pooling locked out by :mod:`poolkit.grader.lockout`) and asks it for
   each case's answer, one case at a time, over pipes the worker opened; the worker,
   which never runs student code, judges the answers (:func:`confirm`), the hidden
   cases' inputs drawn from a seed only it knows. Where the sandbox allows it, the
   kernel and the re-run are forked from the worker's two warm sandboxes
   (:class:`WarmSandboxes`, :mod:`poolkit.grader.zygote`: torch and MXNet imported
   once per worker, not twice per submission), each child restricted as a cold
   sandbox is, and everything it left removed before the next; ``POOLKIT_WARM=0``
   starts every one cold;
4. back in the grader, saves the notebook's scores with nbgrader's
   ``SaveAutoGrades``, replaces each question's score with the worker's verdict
   (flagging ``unconfirmed`` where the notebook claimed more), and writes
   ``DIR/grades.csv``, ``DIR/feedback/<student_id>/`` and ``DIR/report.txt``.

Before any student, the instructor's own solution notebook is graded the same
way, and the run stops unless it earns full marks (:func:`self_check`).

A harmless warning on stderr does not zero a test cell (nbgrader would). Each
submission fails alone: a notebook whose nbgrader metadata nbgrader refuses
scores 0 with the flag ``invalid-metadata``, and one the grader itself fails on
scores 0 with ``grader-error`` (never an earlier or a half-recorded grade); the
run goes on, and every student has a row in ``grades.csv``. Each submission has
one wall-clock budget (``--budget``): what is not done by then earns nothing, and
the flag ``time-budget`` says so.

Only this process writes the gradebook, one submission at a time, and a student's
row in :data:`RESULTS_TABLE` is written last, with the digest of what was graded
(:func:`submission_digest`). So a rerun on the same ``DIR`` grades only the
students not recorded for this notebook, assignment and settings (after a crash,
a SIGKILL or a Ctrl-C: SIGINT and SIGTERM stop a run between two recordings), and
never adds a grade twice; ``--regrade`` grades everyone again. A lock on ``DIR``
makes a second run at the same time refuse.
"""

import argparse
import contextlib
import csv
import ctypes
import fcntl
import functools
import hashlib
import json
import logging
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

from . import checks, collect, notebooks, rerun, sandbox, scan, zygote
from .cluster import DONE, NO_RESULT, OVERRAN, ClusterWorker
from .course import QUESTIONS_VARIABLE, find_course, questions, questions_file

RESULTS_TABLE = "poolkit_results"


@dataclass
class Settings:
    """How a grading run treats each submission."""

    timeout: int = 30  # seconds per cell
    memory: int = 4 << 30  # address-space cap of the student's processes, in bytes
    max_output: int = notebooks.MAX_OUTPUT  # characters of output kept per cell
    budget: int = 600  # seconds one submission may take in all (kernel, re-run, judging), then flagged time-budget
    scratch: int = 512 << 20  # bytes the files a submission writes may take (a tmpfs of its own, gone after)


@dataclass
class Submission:
    """One student's notebook, ready for a worker."""

    student: str
    notebook: str  # the assignment's notebook name, without .ipynb
    job: Path  # the worker's folder
    flags: set = field(default_factory=set)
    questions: list = field(default_factory=list)  # its test cells' grade_ids, which are the questions' keys
    name: str = ""  # the person's name, where the export gives one
    origin: str = ""  # where in the export the notebook came from
    digest: str = ""  # of the notebook, the assignment and the settings: a rerun skips what it has recorded


# --- the course and the submissions --------------------------------------------


def notebook_name(course, assignment):
    """The one notebook of ``assignment`` (its name without ``.ipynb``), from the course's ``solutions/``."""
    source = Path(course) / "solutions" / assignment
    if not source.is_dir():
        known = sorted(path.name for path in (Path(course) / "solutions").iterdir() if path.is_dir())
        raise FileNotFoundError(f"ASSIGNMENT {assignment!r} is not in {Path(course) / 'solutions'}; known: {', '.join(known)}")
    names = sorted(path.stem for path in source.glob("*.ipynb"))
    if len(names) != 1:
        raise ValueError(f"ASSIGNMENT {assignment!r} must have exactly one notebook, found {names}")
    return names[0]


def assignment_version(course, assignment):
    """A digest of everything a grade depends on besides the submission: the assignment's
    files, the course's questions and this grader."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        digest = hashlib.sha256(version("poolkit").encode())
    except PackageNotFoundError:  # run from a source tree without installing
        digest = hashlib.sha256(b"poolkit")
    source = Path(course) / "solutions" / assignment
    for path in sorted([*source.rglob("*"), questions_file(course)]):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            digest.update(str(path.relative_to(course)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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
    """Put ``assignment`` (checked by :func:`notebook_name`) into ``out``'s gradebook with nbgrader."""
    from nbgrader.apps import NbGraderAPI

    source = Path(course) / "solutions" / assignment
    target = Path(out) / "course" / "source" / assignment
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    result = NbGraderAPI(config=_nbgrader_config(out)).generate_assignment(assignment, force=True)
    if not result["success"]:
        log = Path(out) / "logs" / "nbgrader-generate.log"
        log.parent.mkdir(exist_ok=True)
        log.write_text(f"{result.get('log', '')}\n{result.get('error', '')}")
        last = [line for line in str(result.get("error") or result.get("log") or "").splitlines() if line.strip()][-1:] or ["no reason given"]
        raise RuntimeError(f"nbgrader could not generate {assignment}: {last[0].strip()} (its log: {log})")


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


def work(job_dir, warm=None):
    """Grade the submission prepared in ``job_dir`` (``job.json``, ``submitted.ipynb``) into ``result.json``.

    Everything it runs for the submission shares one budget, ``settings.budget``
    seconds from the start: what is not done by then is not credited, and the
    result says ``budget_spent``. With ``warm`` (a :class:`WarmSandboxes`), the
    kernel and the re-run are forked from its zygotes instead of started cold."""
    import nbformat

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    settings = Settings(**job["settings"])
    deadline = time.monotonic() + settings.budget
    seed, sockets = job_dir / "scratch", job_dir / "kernel"
    for name in ("tmpdir", "ipythondir", "mplconfigdir", "numba_cache_dir", "xdg_cache_home", "jupyter_runtime_dir"):
        (seed / f".{name}").mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    kernel = again = None
    if warm is not None:
        kernel, again = warm.ready(settings)
    # A warm kernel works in its zygote's scratch, where the job's files are put first.
    scratch = Path(kernel.scratch) if kernel else seed
    env = kernel_env(scratch)
    for name in ("TMPDIR", "JUPYTER_RUNTIME_DIR"):
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    # The kernel's connection file is written to one of these: inside its sandbox, where it can read it.
    os.environ.update(JUPYTER_RUNTIME_DIR=env["JUPYTER_RUNTIME_DIR"], TMPDIR=env["TMPDIR"])
    tempfile.tempdir = env["TMPDIR"]  # tempfile caches it, and this worker grades one job after another
    if kernel:
        prefix, sockets = kernel.client(seed), Path(kernel.kernel_sockets)
    else:
        prefix = sandbox.command(seed, settings.memory, scratch_size=settings.scratch, sockets=str(sockets))
    nb = nbformat.read(job_dir / "submitted.ipynb", as_version=4)
    graded, events = notebooks.execute(
        nb, scratch, timeout=settings.timeout, max_output=settings.max_output, prefix=prefix, env=env, sockets=sockets, deadline=deadline
    )
    skipped = {event.cell for event in events if event.kind in (notebooks.TIMEOUT, notebooks.DIED)}
    cells = [cell.source for index, cell in enumerate(nb.cells) if cell.cell_type == "code" and not is_test_cell(cell) and index not in skipped]
    # A test cell that timed out or killed the kernel already scored 0: nothing to confirm.
    failed = {_grade_id(nb.cells[index]) for index in skipped}
    keys = [key for key in job["questions"] if key not in failed]
    sandbox.cleanup(seed)  # nothing the kernel started outlives it
    verified = confirm(cells, keys, seed, settings, job["seed"], deadline, again)
    result = {"notebook": graded, "events": [[event.kind, event.cell] for event in events], "verified": verified, "budget_spent": time.monotonic() >= deadline}
    (job_dir / "result.json.part").write_text(json.dumps(result))
    os.replace(job_dir / "result.json.part", job_dir / "result.json")


#: What a warm kernel's zygote imports before it forks (a module missing here is left to the notebook).
WARM_KERNEL = ("numpy", "torch", "mxnet", "ipykernel.kernelapp")
#: What a warm re-run's zygote imports: the re-run's harness needs only NumPy and the frameworks.
WARM_RERUN = ("numpy", "torch", "mxnet")


class WarmSandboxes:
    """A worker's two zygotes (:mod:`poolkit.grader.zygote`), in the folder ``root``:
    one for kernels, with poolkit's folder readable (a notebook imports
    ``poolkit.grader.check``), one for re-runs, with it hidden (as in a cold
    re-run's sandbox). Started at the first job, again when one has died or a
    job's memory or scratch settings differ."""

    def __init__(self, root):
        self.root = Path(root)
        self.started: tuple | None = None
        self.kernel: zygote.Warm | None = None
        self.rerun: zygote.Warm | None = None
        self.waiting = False  # launched, not yet known to be ready

    def ready(self, settings):
        """The (kernel, re-run) zygotes for a job with ``settings``, started if needed."""
        self.launch(settings)
        if self.waiting:
            self.waiting = False
            for warm in (self.kernel, self.rerun):
                assert warm is not None
                try:
                    warm.wait()
                except RuntimeError:
                    self.stop()
                    raise
        return self.kernel, self.rerun

    def launch(self, settings):
        """Start the zygotes for jobs with ``settings`` (unless they run), not waiting for them."""
        wanted = (settings.memory, settings.scratch)
        if self.started != wanted or not (self.kernel and self.kernel.running() and self.rerun and self.rerun.running()):
            self.stop()
            kernel = zygote.Warm(self.root / "kernel", settings.memory, settings.scratch, kernel_env(self.root / "kernel" / "scratch"), WARM_KERNEL)
            again = zygote.Warm(
                self.root / "rerun", settings.memory, settings.scratch, kernel_env(self.root / "rerun" / "scratch"), WARM_RERUN,
                hide=[_poolkit_folder()], bind=_rerun_binds("zygote.py"),
            )  # fmt: skip
            self.kernel, self.rerun = kernel, again
            kernel.launch()  # both import at once
            again.launch()
            self.started, self.waiting = wanted, True

    def stop(self):
        for warm in (self.kernel, self.rerun):
            if warm is not None:
                warm.stop()
        self.kernel = self.rerun = None
        self.started, self.waiting = None, False

    def remove(self):
        """Stop the zygotes, or, from another process, end what is left of them (their cgroups), and remove the folder."""
        self.stop()
        for name in ("kernel", "rerun"):
            sandbox.cleanup(self.root / name / "scratch")
        remove_tree(self.root)


def warm_folder(jobs, pid):
    """The folder of the warm sandboxes of the worker ``pid`` that grades job folders in ``jobs``:
    beside them, so removed with them whatever becomes of the worker."""
    return Path(jobs) / f"warm-{pid}"


def confirm(cells, keys, scratch, settings, seed, deadline, warm=None):
    """Re-run the graded functions out of the student's kernel (:mod:`poolkit.grader.rerun`)
    and judge their answers here, where no student code runs.

    Each question's hidden cases are drawn from ``seed``, which only the grader
    knows. Returns ``{key: {"points": float, "passed": int, "cases": int,
    "failures": ["[hidden] label: message", ...]}}``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    framework = declared_framework(cells)  # the track the answers are judged in, as the re-run's arrays are
    plan = []  # (question, case, "visible", "hidden" or "timed") in the order they are asked
    for key in keys:
        question = checks.question(key).in_framework(framework)
        if question.timed is not None:
            plan.append((question, question.timed(rng), "timed"))
        plan += [(question, case, "visible") for case in question.visible]
        plan += [(question, case, "hidden") for case in question.hidden_cases(rng)]
    lock = any(question.forbid_pooling for question, _, _ in plan)
    answers, refused = ask(cells, [(question, case) for question, case, _ in plan], scratch, settings, lock, deadline, warm)
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


#: How "no space left" reads in an output: the student's files filled their scratch space.
NO_SPACE = "No space left on device"
#: The re-run's own files, bound read-only into its sandbox, where poolkit's folder is hidden.
RERUN_FILES = ("rerun.py", "lockout.py")
RERUN_DIR = "/run/poolkit/rerun"  # inside the sandbox: not in its /tmp, which a warm re-run's child could change for the next
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


def _poolkit_folder():
    """poolkit's own folder, hidden in a re-run's sandbox."""
    return str(Path(checks.__file__).resolve().parents[1])


def _rerun_binds(*also):
    """The re-run's files (:data:`RERUN_FILES`, and the grader's files ``also``), bound read-only at :data:`RERUN_DIR`."""
    here = Path(rerun.__file__).resolve().parent
    return [(str(here / name), f"{RERUN_DIR}/{name}") for name in (*RERUN_FILES, *also)]


def ask(cells, calls, scratch, settings, lock, deadline, warm=None):
    """Run the student's ``cells`` in a fresh sandboxed process and ask it for the answer
    to each ``(question, case)`` of ``calls``, one case at a time (its inputs are sent
    only then): a list of ``(result, None, seconds)`` or ``(None, why there is no
    result, seconds)``, the seconds from sending the case to its answer, and the
    cells that the lockout of the frameworks' pooling stopped.

    The process is started cold in the sandbox of ``scratch``, or, with ``warm``
    (a :class:`poolkit.grader.zygote.Warm`), forked from that zygote, where both
    frameworks are loaded (and so both are locked), with ``scratch``'s files.
    What does not come back in time (nor before ``deadline``), or in the format, is not credited; the process,
    and everything it started, is ended before this returns.
    """
    framework = declared_framework(cells)
    if warm is not None:
        prefix, env, cwd, harness = warm.client(scratch), kernel_env(Path(warm.scratch)), warm.scratch, f"{RERUN_DIR}/rerun.py"
        locked = list(checks.FRAMEWORKS) if lock else []
    else:
        # Only the notebook's own framework is importable there (the other's folder is hidden), so
        # only it is imported and locked: a second framework would cost seconds on every submission.
        others = [_package_folder(PACKAGES[other]) for other in checks.FRAMEWORKS if other != framework]
        hidden = [_poolkit_folder(), *filter(None, others)]
        prefix = sandbox.command(scratch, settings.memory, hide=hidden, bind=_rerun_binds(), scratch_size=settings.scratch)
        locked = ([framework] if sandbox.isolated() else list(checks.FRAMEWORKS)) if lock else []
        harness = f"{RERUN_DIR}/rerun.py" if sandbox.isolated() else str(Path(rerun.__file__).resolve())
        env, cwd = kernel_env(Path(scratch)), scratch
    answers = [(None, "no result: the re-run of your notebook stopped before this case", 0.0)] * len(calls)
    refused: list[str] = []
    process = subprocess.Popen(
        [*prefix, sys.executable, "-I", "-B", harness], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True
    )
    assert process.stdin is not None and process.stdout is not None
    channel = rerun.Channel(process.stdout.fileno(), process.stdin.fileno())
    try:
        channel.send({"kind": "job", "cells": cells, "timeout": settings.timeout, "framework": framework, "lock": locked})
        # Starting, importing the frameworks and running the cells: a cell's time each, and a minute.
        ready, _ = channel.receive(min(time.monotonic() + settings.timeout * len(cells) + 60, deadline))
        if ready.get("kind") != "ready":
            raise rerun.ProtocolError("the re-run did not start")
        refused = [str(item)[: rerun.MAX_MESSAGE_TEXT] for item in ready.get("refused", [])[:3]] if isinstance(ready.get("refused"), list) else []
        for number, (question, case) in enumerate(calls):
            sent = time.monotonic()
            channel.send({"kind": "case", "function": question.function, "line_budget": question.line_budget}, (tuple(case.args), dict(case.kwargs)))
            reply, value = channel.receive(min(sent + settings.timeout + 10, deadline))
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


def _open_results(out):
    """The grader's own table in the gradebook: per student, what nbgrader's tables do not
    hold (flags, name, origin) and the digest of what was graded. Its row is written
    last, so a student has one only once everything of theirs is recorded."""
    db = sqlite3.connect(Path(out) / "gradebook.db", timeout=30)
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (assignment TEXT, student TEXT, name TEXT, origin TEXT, flags TEXT, digest TEXT, PRIMARY KEY (assignment, student))"
    )
    return db


def recorded(out, assignment):
    """``{student: digest}`` of what earlier runs recorded for ``assignment`` in ``out``."""
    if not (Path(out) / "gradebook.db").is_file():
        return {}
    with contextlib.closing(_open_results(out)) as db:
        return dict(db.execute(f"SELECT student, digest FROM {RESULTS_TABLE} WHERE assignment = ?", (assignment,)))


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
    if result.get("budget_spent"):
        flags.add("time-budget")
    if any(NO_SPACE in json.dumps(cell.get("outputs", [])) for cell in nb.cells):
        flags.add("scratch-full")  # its own files filled the space it has (--scratch-mb)
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

    class SaveInto(SaveAutoGrades):
        """nbgrader's SaveAutoGrades into the gradebook already open here (each opening costs 50 ms)."""

        def preprocess(self, nb, resources):
            self.notebook_id, self.assignment_id, self.student_id = submission.notebook, assignment, submission.student
            self.gradebook = gb
            return super(SaveAutoGrades, self).preprocess(nb, resources)  # its cells, as SaveAutoGrades's own does

    with Gradebook(_db_url(out)) as gb:
        gb.update_or_create_student(submission.student)
        gb.update_or_create_submission(assignment, submission.student)
        SaveInto().preprocess(nb, resources)
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
    graded = Path(out) / "autograded" / submission.student / assignment / f"{submission.notebook}.ipynb"
    graded.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, graded)
    feedback(out, assignment, submission, nb, flags)
    _save_result(out, assignment, submission, flags)  # last: the student counts as recorded from here on


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


def record_empty(out, assignment, submission, flags):
    """A student with nothing gradable: every grade 0, with the reason in the flags."""
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(out)) as gb:
        gb.update_or_create_student(submission.student)
        gb.update_or_create_submission(assignment, submission.student)
        for notebook in gb.find_assignment(assignment).notebooks:
            for grade in gb.find_submission_notebook(notebook.name, assignment, submission.student).grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
    # An earlier run's graded notebook and feedback would contradict the 0.
    shutil.rmtree(Path(out) / "autograded" / submission.student, ignore_errors=True)
    shutil.rmtree(Path(out) / "feedback" / submission.student, ignore_errors=True)
    _save_result(out, assignment, submission, flags)


def _save_result(out, assignment, submission, flags):
    digest = "" if "grader-error" in flags else submission.digest  # the grader's failure: the next run grades them again
    with contextlib.closing(_open_results(out)) as db, db:
        row = (assignment, submission.student, submission.name, submission.origin, ";".join(sorted(flags)), digest)
        db.execute(f"INSERT OR REPLACE INTO {RESULTS_TABLE} VALUES (?, ?, ?, ?, ?, ?)", row)


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


def write_grades(out, assignment, present):
    """``DIR/grades.csv``: every student of ``assignment`` in the gradebook, one row each.
    A student graded by an earlier run but not among ``present`` (the students of this
    run's submissions) keeps that grade, with the flag ``not-in-this-run``."""
    from nbgrader.api import Gradebook

    with contextlib.closing(_open_results(out)) as db:
        results = {row[0]: row[1:] for row in db.execute(f"SELECT student, name, origin, flags FROM {RESULTS_TABLE} WHERE assignment = ?", (assignment,))}
    rows = []
    with Gradebook(_db_url(out)) as gb:
        max_score = gb.find_assignment(assignment).max_score
        for submission in gb.assignment_submissions(assignment):
            student = submission.student.id
            name, origin, flags = results.get(student, ("", "", "grader-error"))  # in nbgrader's tables only: a run stopped while recording it
            if student not in present:
                flags = ";".join(sorted({*filter(None, flags.split(";")), "not-in-this-run"}))
            rows.append([student, name, assignment, f"{submission.score:g}", f"{max_score:g}", flags, origin])
    path = Path(out) / "grades.csv"
    with open(path.with_suffix(".csv.part"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "name", "assignment", "score", "max_score", "flags", "origin"])
        writer.writerows(sorted(rows))
    os.replace(path.with_suffix(".csv.part"), path)
    return path


# --- the run ---------------------------------------------------------------------


def hidden_seed(secret, student):
    """The seed of ``student``'s hidden inputs in a run whose secret is ``secret``: one
    draw per student and run, known to no one before the run (nor kept after it)."""
    return int.from_bytes(hashlib.sha256(secret + student.encode()).digest()[:8], "big")


def submission_digest(version, settings, found, data):
    """What a recorded grade stands for: the assignment's version (:func:`assignment_version`),
    the settings, where the notebook came from, what the export said of it, and its bytes."""
    digest = hashlib.sha256(json.dumps([version, vars(settings), found.origin, sorted(found.flags)]).encode() + b"\0")
    digest.update(data if data is not None else b"")
    return digest.hexdigest()


def remove_tree(path):
    """Remove ``path`` and everything beneath, however deep (``shutil.rmtree`` recurses, and a
    tree some thousands deep raises ``RecursionError``); links are removed, never followed."""
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare(out, assignment, submission, data, settings, course, secret):
    """Sanitize one student's notebook (``data``, its bytes) into a fresh ``submission.job``
    folder; False (with the reason in its flags) if there is nothing to run."""
    import nbformat

    job = submission.job
    remove_tree(job)
    (job / "scratch").mkdir(parents=True)
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception:
        submission.flags.add("unreadable")
        return False
    release = _release(out, assignment, submission.notebook)
    try:
        nb, deleted, edited = sanitize(nb, release, _resources(out, assignment, submission.notebook, submission.student))
    except Exception as error:  # nbgrader refuses the cells' metadata: there is nothing it can grade
        reason = (str(error).strip().splitlines() or [""])[0][:200]  # nbgrader's message can hold a whole cell
        LOG.warning("%s: nbgrader refuses the notebook's metadata (%s: %s); graded 0", submission.student, type(error).__name__, reason)
        submission.flags.add("invalid-metadata")
        return False
    tests = {_grade_id(cell) for cell in release.cells if is_test_cell(cell)}
    submission.flags.update(f"test-deleted:{name}" if name in tests else f"cell-restored:{name}" for name in deleted)
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
    (job / "job.json").write_text(json.dumps({"settings": vars(settings), "questions": submission.questions, "seed": hidden_seed(secret, submission.student)}))
    return True


def worker_environment(questions_path):
    """The environment of a worker process (local, or a cluster task's): this one's,
    one thread per library (the workers are the parallelism), the course's questions
    at ``questions_path`` for the judge."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    env[QUESTIONS_VARIABLE] = str(questions_path)
    return env


class Worker:
    """One serving worker process (:func:`serve`) that judges with the course's
    questions at ``questions``, replaced if it dies or hangs."""

    def __init__(self, log, questions, jobs=None, settings=None):
        self.log, self.questions, self.settings = log, questions, settings
        self.process: subprocess.Popen[str] | None = None
        self.jobs: Path | None = Path(jobs) if jobs else None  # the folder of the job folders it is given
        self.closed = False  # set when the run stops: no worker is started again

    def start(self):
        env = worker_environment(self.questions)
        # Told the jobs' folder and settings, it starts its warm sandboxes at once, not at the first job.
        early = ["--jobs", str(self.jobs), "--settings", json.dumps(vars(self.settings))] if self.jobs and self.settings else []
        with open(self.log, "ab") as log:
            # A session of its own: Ctrl-C at the terminal reaches the grader alone, which stops the workers.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "poolkit.grader.autograde", "serve", *early],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
                start_new_session=True,
            )

    def grade(self, job, timeout):
        """Have the worker grade ``job``: :data:`DONE` when it left a result within
        ``timeout`` seconds, :data:`OVERRAN` when it was stopped at ``timeout``, else
        :data:`NO_RESULT` (it died)."""
        if self.closed:
            return NO_RESULT
        if self.process is None or self.process.poll() is not None:
            self.start()
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        started, self.jobs = time.monotonic(), Path(job).parent
        try:
            process.stdin.write(f"{job}\n")
            process.stdin.flush()
            with selectors.DefaultSelector() as waiting:
                waiting.register(process.stdout, selectors.EVENT_READ)
                answered = bool(waiting.select(timeout)) and process.stdout.readline().strip() == str(job)
        except (BrokenPipeError, OSError, ValueError):
            answered = False
        if not answered:
            self.stop(kill=True)
            sandbox.cleanup(Path(job) / "scratch")  # what its kernel or re-run left
            return OVERRAN if time.monotonic() - started >= timeout else NO_RESULT
        return DONE if (Path(job) / "result.json").is_file() else NO_RESULT

    def stop(self, kill=False):
        process = self.process
        if process is None:
            return
        if kill or process.stdin is None:
            process.kill()
        else:
            try:
                process.stdin.close()
            except OSError:
                pass
        process.wait()
        self.process = None
        if kill and self.jobs is not None:  # its zygotes died with it: their cgroups and folder go too
            WarmSandboxes(warm_folder(self.jobs, process.pid)).remove()


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

    def say(self, line):
        """One line of its own (an error), not run into the bar."""
        print(("\n" if self.live and self.done else "") + line, file=sys.stderr, flush=True)

    def close(self):
        if self.live:
            print(file=sys.stderr)


class Interrupted(Exception):
    """The run was stopped by SIGINT (Ctrl-C) or SIGTERM; what was recorded is kept."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stopping:
    """Turns SIGINT and SIGTERM into :class:`Interrupted`, raised between two recordings
    (never half-way through one): ``with stopping.recording(): ...``."""

    def __init__(self):
        self.signum, self.busy, self.raised = None, False, False

    def __call__(self, signum, frame):
        self.signum = signum
        if not self.busy and not self.raised:  # once: a second Ctrl-C does not interrupt the stopping
            self.raised = True
            raise Interrupted(signum)

    @contextlib.contextmanager
    def recording(self):
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
        if self.signum is not None and not self.raised:
            self.raised = True
            raise Interrupted(self.signum)


@dataclass
class RunReport:
    """What a run did; ``str()`` is its summary line."""

    grades: Path
    report: Path
    students: int = 0
    graded: int = 0  # recorded by this run
    kept: int = 0  # recorded by an earlier run, for the same notebook and assignment
    flagged: int = 0
    errors: int = 0  # grader-error: the grader failed, not the student
    skipped: int = 0  # entries of the export that are no student's submission
    absent: int = 0  # graded earlier, not in these submissions

    def __str__(self):
        line = f"{self.students} students: {self.graded} graded now, {self.kept} kept from an earlier run; {self.flagged} flagged, {self.errors} grader errors"
        if self.skipped:
            line += f"; {self.skipped} entries of the export not graded"
        if self.absent:
            line += f"; {self.absent} graded earlier are not in these submissions (kept, flagged not-in-this-run)"
        return line + f" (see {self.report})"


LOG = logging.getLogger("poolkit.grade")


@contextlib.contextmanager
def _run_log(out):
    """This run's log, ``DIR/logs/run.log``: the libraries' warnings and the grader's notes
    go there, not to the console, which keeps the progress, errors and the summary."""
    (out / "logs").mkdir(exist_ok=True)
    handler = logging.FileHandler(out / "logs" / "run.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    loggers = [LOG, logging.getLogger("py.warnings")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


LOCK_FILE = ".poolkit-grade.lock"


@contextlib.contextmanager
def _locked(out):
    """Hold ``out``'s lock for the run: a second ``poolkit grade`` on the same ``--out``
    refuses instead of racing (the lock goes with the process, even when it is killed)."""
    handle = open(out / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise RuntimeError(f"--out {out} is being graded by another poolkit grade (pid {holder}): wait for it to finish, or choose another --out") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def grade(
    assignment,
    submissions,
    out,
    *,
    workers=None,
    course=None,
    settings=None,
    unsafe_no_sandbox=False,
    roster=None,
    id_pattern=None,
    keep_work=False,
    regrade=False,
    cluster=None,
    cluster_wait=None,
):
    """Autograde every submission of ``assignment``; returns a :class:`RunReport`.

    Refuses (``RuntimeError``) where bubblewrap cannot isolate the students' processes,
    unless ``unsafe_no_sandbox`` is set (``--unsafe-no-sandbox``): then with a warning.
    A student recorded by an earlier run on ``out`` for the same notebook, assignment
    and settings is kept, not graded again, unless ``regrade``. SIGINT and SIGTERM stop
    the run cleanly (:class:`Interrupted`), keeping what was recorded.

    With ``cluster`` (a Dask scheduler's address, ``--cluster``) the submissions are
    graded on that cluster's workers (:mod:`poolkit.grader.cluster`), each checked
    first for the same poolkit and a working sandbox; ``cluster_wait`` is how many
    seconds to wait for a first worker (default :data:`cluster.WORKERS_TIMEOUT`).
    """
    settings = settings or Settings()
    out = Path(out).resolve()
    course = Path(course).resolve() if course else find_course()
    notebook = notebook_name(course, assignment)
    check_run(course, submissions, out, settings, workers, roster, id_pattern)
    if cluster is None and not sandbox.isolated():
        if not unsafe_no_sandbox:
            raise RuntimeError(
                f"bubblewrap cannot isolate submissions here ({sandbox.mode()}): poolkit grade does not run untrusted code "
                "without it. Install it (make bwrap, or apt-get install bubblewrap), or pass --unsafe-no-sandbox "
                "for submissions you trust"
            )
        print(f"warning: --unsafe-no-sandbox: submissions run without bubblewrap ({sandbox.mode()})", file=sys.stderr)
    submissions = Path(submissions).resolve()
    found = collect.collect(submissions, notebook, roster=roster, pattern=id_pattern)
    if not found.found:
        reasons = "; ".join(f"{item.origin}: {item.why}" for item in found.skipped[:3]) or "it is empty"
        raise FileNotFoundError(f"SUBMISSIONS {submissions} holds no student's submission of {notebook}.ipynb ({reasons})")
    connection = None
    if cluster is None:
        print(f"sandbox: {sandbox.mode()}", file=sys.stderr)
        print(f"kernels: {zygote.describe()}", file=sys.stderr)
    else:  # connected and its workers checked before anything is written
        from .cluster import WORKERS_TIMEOUT, Cluster

        connection = Cluster(cluster, WORKERS_TIMEOUT if cluster_wait is None else cluster_wait, unsafe_no_sandbox)
        print(f"cluster: {cluster}, {workers or connection.threads()} tasks at once", file=sys.stderr)
    # nbgrader runs `alembic` from PATH; it lives beside this Python, which may not be on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    stopping = Stopping()
    previous = {signum: signal.signal(signum, stopping) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / OUT_MARKER).touch()
        with _locked(out), _run_log(out):
            return _run(assignment, notebook, submissions, found, out, course, settings, workers, keep_work, regrade, stopping, connection)
    finally:
        if connection is not None:
            connection.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(assignment, notebook, submissions, found, out, course, settings, workers, keep_work, regrade, stopping, connection=None):
    report = RunReport(out / "grades.csv", out / "report.txt", students=len(found.found), skipped=len(found.skipped))
    version, earlier = assignment_version(course, assignment), recorded(out, assignment)
    # Job folders (a few small files each: a student's own writes go to a tmpfs of their own) live
    # outside --out, and each goes once its student is recorded; --keep-work keeps them in DIR/work.
    jobs = out / "work" if keep_work else Path(tempfile.mkdtemp(prefix="poolkit-grade-"))
    remove_tree(out / "work")
    jobs.mkdir(parents=True, exist_ok=True)
    todo = []
    for number, entry in enumerate(found.found):
        submission = Submission(entry.student, notebook, jobs / f"{number + 1:04d}", set(entry.flags), name=entry.name, origin=entry.origin)
        data = _load(entry, submission)
        submission.digest = submission_digest(version, settings, entry, data)
        if regrade or earlier.get(entry.student) != submission.digest:
            todo.append((submission, entry if data is not None else None))
    report.kept = len(found.found) - len(todo)
    runnable = sum(1 for _, entry in todo if entry is not None)
    pool: list[Worker | ClusterWorker]
    if connection is None:
        pool = [Worker(out / "logs" / f"worker-{number + 1}.log", questions_file(course), jobs, settings) for number in range(min(workers or os.cpu_count() or 1, runnable))]
    else:  # by default as many at once as the cluster's workers run: the rest wait in this process, not in the scheduler
        pool = [ClusterWorker(connection, questions_file(course)) for _ in range(min(workers or connection.threads(), runnable))]
    try:
        if todo:
            for worker in pool:
                worker.start()  # they load the course's questions while nbgrader generates the assignment
            generate(course, assignment, out)
            secret = secrets.token_bytes(16)  # this run's: the hidden cases' inputs are drawn from it
            if pool:
                self_check(out, assignment, notebook, course, settings, pool[0], secret, jobs / "self-check")
            _grade_all(assignment, out, course, settings, pool, todo, secret, report, stopping, keep_work)
    except Interrupted as stop:
        _close(pool)
        _finish(out, assignment, submissions, report, found)
        print(f"\ninterrupted ({stop}): {report.graded} of {len(todo)} students recorded in this run and kept; run the same command again to grade the rest", file=sys.stderr)
        raise
    finally:
        _close(pool)
        if not keep_work:
            remove_tree(jobs)
    _finish(out, assignment, submissions, report, found)
    return report


def _load(entry, submission):
    """The bytes of ``entry``'s notebook, or None (with the reason in ``submission``'s flags)."""
    if entry.load is None:
        return None
    try:
        return entry.load()
    except (OSError, ValueError, zipfile.BadZipFile) as error:  # ValueError: it grew past collect.MAX_NOTEBOOK
        LOG.warning("%s: cannot read %s: %s", entry.student, entry.origin, error)
        submission.flags.add("too-large" if isinstance(error, ValueError) else "unreadable")
        return None


def _close(pool):
    for worker in pool:
        worker.closed = True
        worker.stop(kill=True)


def _finish(out, assignment, submissions, report, found):
    """Write ``grades.csv`` and ``report.txt`` from what is recorded."""
    if not (out / "gradebook.db").is_file():
        return
    present = {entry.student for entry in found.found}
    write_grades(out, assignment, present)
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    report.flagged = sum(1 for row in rows if row["student_id"] in present and row["flags"])
    report.errors = sum(1 for row in rows if row["student_id"] in present and "grader-error" in row["flags"].split(";"))
    report.absent = sum(1 for row in rows if row["student_id"] not in present)
    candidates = {entry.student: entry.candidates for entry in found.found}
    _write_report(out, assignment, submissions, report, found.skipped, rows, candidates)


def _write_report(out, assignment, submissions, report, skipped, rows, candidates):
    lines = [f"poolkit grade {assignment} {submissions}", str(report), ""]
    if skipped:
        lines += ["Not graded: entries of the export that are no student's submission, and why", *(f"  {item.origin}: {item.why}" for item in skipped), ""]
    flagged = [row for row in rows if row["flags"]]
    if flagged:
        lines.append("Flagged students (score, flags, where the notebook came from)")
        for row in flagged:
            who = row["student_id"] + (f" ({row['name']})" if row["name"] else "")
            lines.append(f"  {who}: {row['score']} of {row['max_score']}: {row['flags']}" + (f"; from {row['origin']}" if row["origin"] else ""))
            lines += [f"      candidate: {path}" for path in candidates.get(row["student_id"], [])]
    (out / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


OUT_MARKER = ".poolkit-grade"  # in every --out folder poolkit grade made: it only ever reuses or clears its own
MIN_MEMORY = 512 << 20  # a kernel with a framework imported needs about this much
MAX_TIMEOUT = 3600
BUDGET_RANGE = (10, 24 * 3600)  # seconds per submission
MIN_SCRATCH = 16 << 20


def _within(path, folder):
    return path == folder or folder in path.parents


def check_run(course, submissions, out, settings, workers, roster=None, id_pattern=None):
    """Every argument of a run, checked before any work: ``ValueError`` (or
    ``FileNotFoundError``) with one line that names the argument and what it accepts."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if not MIN_MEMORY <= settings.memory <= total:
        raise ValueError(f"--memory-gb must be between {MIN_MEMORY / (1 << 30):g} and {total / (1 << 30):.1f} (this machine's memory), got {settings.memory / (1 << 30):g}")
    if not 1 <= settings.timeout <= MAX_TIMEOUT:
        raise ValueError(f"--timeout must be between 1 and {MAX_TIMEOUT} seconds, got {settings.timeout}")
    if not BUDGET_RANGE[0] <= settings.budget <= BUDGET_RANGE[1]:
        raise ValueError(f"--budget must be between {BUDGET_RANGE[0]} and {BUDGET_RANGE[1]} seconds per submission, got {settings.budget}")
    if not MIN_SCRATCH <= settings.scratch <= settings.memory:
        raise ValueError(f"--scratch-mb must be between {MIN_SCRATCH >> 20} and the memory cap ({settings.memory >> 20} MB: a submission's files are kept in its memory), got {settings.scratch >> 20}")
    if workers is not None and workers < 1:  # None: the default, the cores (or the cluster's worker threads)
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if roster is not None:
        collect.read_roster(roster)
    if id_pattern is not None:
        collect.compile_pattern(id_pattern)
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
    _check_gradebook(out)


def _check_gradebook(out):
    """An earlier run's gradebook must be whole: a damaged one is named before any work."""
    path = out / "gradebook.db"
    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.OperationalError as error:
        if "locked" in str(error):  # a run writing it holds the lock on --out too: that refusal says it
            return
        verdict = str(error)
    except sqlite3.DatabaseError as error:
        verdict = str(error)
    if verdict != "ok":
        raise ValueError(f"--out {out}: its gradebook.db is damaged ({verdict}): move it away to grade afresh, or choose another --out")


def _worker_timeout(settings):
    """How long the grader waits for a worker: the submission's budget, and time to write its result."""
    return settings.budget + 120


SELF_CHECK = ".self-check"  # its student id: no student id starts with a dot


def self_check(out, assignment, notebook, course, settings, worker, secret, job):
    """Grade the instructor's own solution notebook through the same path as every
    student's (sandbox, kernel, re-run), and stop the run before it grades anyone
    unless it earns full marks: a broken setup (poolkit not importable in the
    sandbox, a course that does not match the installed grader) would otherwise
    give every student 0 without an error."""
    source = Path(out) / "course" / "source" / assignment / f"{notebook}.ipynb"
    submission = Submission(SELF_CHECK, notebook, job)
    runnable = prepare(out, assignment, submission, source.read_bytes(), settings, course, secret)
    if not runnable or worker.grade(submission.job, _worker_timeout(settings)) != DONE:
        log = _keep_log(out, submission, "self-check")
        raise RuntimeError(f"the instructor's solution of {assignment} could not be graded ({', '.join(sorted(submission.flags)) or 'the worker left no result'}; see {log}): nothing was graded")
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
    remove_tree(submission.job)


def _keep_log(out, submission, name):
    """Copy a job's worker log to ``DIR/logs/`` (job folders go after the run); its path."""
    target = Path(out) / "logs" / f"{name}.log"
    try:
        shutil.copy(submission.job / "worker.log", target)
    except OSError:
        return submission.job / "worker.log"
    return target


def _grade_all(assignment, out, course, settings, pool, todo, secret, report, stopping, keep_work):
    progress = Progress(len(todo), f"grading {assignment}")
    idle: queue.Queue[Worker] = queue.Queue()
    for worker in pool:
        idle.put(worker)

    def run(submission):
        worker = idle.get()
        try:
            return worker.grade(submission.job, _worker_timeout(settings))
        finally:
            idle.put(worker)

    def save(submission, how, *details):
        """Record one student, never half-way (a signal waits for it); a failure of the grader
        costs that student a 0 with ``grader-error``, and one the grader cannot even record
        (its disk is full) stops the run, with everything recorded before kept."""
        with stopping.recording():
            try:
                how(out, assignment, submission, *details)
            except Exception as error:
                log = _keep_log(out, submission, f"{submission.student}.worker")
                progress.say(f"error: grading {submission.student} failed: {type(error).__name__}: {str(error)[:300]} (see {log})")
                LOG.error("grading %s failed:\n%s", submission.student, traceback.format_exc())
                try:
                    record_empty(out, assignment, submission, submission.flags | {"grader-error"})
                except Exception as second:
                    raise RuntimeError(f"cannot record {submission.student} in --out {out} ({type(second).__name__}: {second}): stopped; what was recorded is kept, and the same command grades the rest") from None
            report.graded += 1
        if not keep_work:
            remove_tree(submission.job)
        progress.step(submission.student)

    threads = ThreadPoolExecutor(max_workers=max(len(pool), 1))
    running = {}
    try:
        for submission, entry in todo:
            if entry is None:
                save(submission, record_empty, submission.flags)
                continue
            try:
                runnable = prepare(out, assignment, submission, _load(entry, submission), settings, course, secret)
            except Exception as error:  # the grader failed on this student, not the student: 0, said so, and go on
                progress.say(f"error: preparing {submission.student} failed: {type(error).__name__}: {error}")
                submission.flags.add("grader-error")
                runnable = False
            if runnable:
                running[threads.submit(run, submission)] = submission
            else:
                save(submission, record_empty, submission.flags)
        for future in as_completed(running):
            submission, outcome = running[future], future.result()
            if outcome == DONE:
                save(submission, _record_result)
            elif outcome == OVERRAN:  # stopped at its budget by the grader itself: it had no result to give
                save(submission, record_empty, submission.flags | {"time-budget"})
            else:
                save(submission, _worker_died)
    finally:
        _close(pool)  # running threads return at once; none starts another worker
        threads.shutdown(wait=True, cancel_futures=True)
        for submission in running.values():
            sandbox.cleanup(submission.job / "scratch")  # a killed worker's sandboxes leave their cgroups
        progress.close()


def _record_result(out, assignment, submission):
    record(out, assignment, submission, json.loads((submission.job / "result.json").read_text()))


def _worker_died(out, assignment, submission):
    raise RuntimeError("the worker left no result")


_PR_SET_PDEATHSIG = 1


def serve(jobs=None, settings=None):
    """A worker: grade each job folder named on stdin, answering with its name on stdout.

    Given the folder of the job folders ``jobs`` and the run's ``settings``, it
    starts its warm sandboxes at once (they import the frameworks while the grader
    generates the assignment); else at its first job.

    The worker lives for the whole run and never runs a student's code itself:
    each job's kernel and re-run are sandboxed processes of their own. Its stdin
    and stdout are kept for the grader alone: kernels started for a job inherit
    ``/dev/null`` and the job's ``worker.log`` instead.
    """
    # A grader killed outright (SIGKILL) takes its workers with it, and they their sandboxes.
    # (A grader gone before this line leaves this worker's stdin at its end: it stops then.)
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # Dups are not inherited by the kernels and re-runs this worker starts.
    requests, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w", buffering=1)
    silent = os.open(os.devnull, os.O_RDONLY)
    os.dup2(silent, 0)
    warm = None
    if jobs is not None and settings is not None and zygote.available():
        warm = WarmSandboxes(warm_folder(jobs, os.getpid()))
        warm.launch(settings)
    _preimport()
    for line in requests:
        job = Path(line.strip())
        if warm is None and zygote.available():
                warm = WarmSandboxes(warm_folder(job.parent, os.getpid()))
        log = os.open(job / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        try:
            work(job, warm)
        except Exception:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(f"{job}\n")
    if warm is not None:
        warm.remove()


def _preimport():
    """Load the course's questions (named by the grader in this worker's environment)
    and the notebook machinery once per worker. The frameworks are not imported here:
    the worker only judges NumPy arrays, and students' code runs in processes of its own."""
    import nbclient  # noqa: F401

    questions()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m poolkit.grader.autograde")
    parser.add_argument("step", choices=["serve"], help="serve: grade each job folder named on stdin")
    parser.add_argument("--jobs", type=Path, help="the folder of the job folders: start the warm sandboxes now")
    parser.add_argument("--settings", type=json.loads, help="with --jobs: the run's settings, as JSON")
    args = parser.parse_args(argv)
    serve(args.jobs, Settings(**args.settings) if args.settings else None)


if __name__ == "__main__":
    main()
