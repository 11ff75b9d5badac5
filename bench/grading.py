"""Grading benchmark: ``poolkit grade`` (one worker, N workers, a local Dask cluster) against plain ``nbgrader autograde``.

What is measured
----------------
Three whole commands, each grading the same synthetic submissions of one
assignment (default ``pool2d``) into a fresh output folder, timed wall-clock
from start to exit, startup and setup included:

- ``poolkit 1``: ``poolkit grade ASSIGNMENT SUBMISSIONS --out DIR --workers 1``
  (it also generates the assignment into its own gradebook, and writes
  feedback pages),
- ``poolkit N``: the same with ``--workers N`` (N = ``os.cpu_count()`` unless
  ``--workers`` says otherwise),
- ``dask N``: ``poolkit grade ... --cluster tcp://127.0.0.1:PORT`` on a local
  Dask cluster of N one-thread workers (``dask scheduler`` and ``dask worker``
  as subprocesses, started before the timing as a course's cluster would be
  running already); its CPU time is the command's plus what the scheduler and
  workers used during it,
- ``nbgrader``: one ``nbgrader autograde ASSIGNMENT --force`` in a course
  folder of its own, which grades every student one after the other (the
  ``nbgrader generate_assignment`` before it is setup, timed apart and not
  counted),
- ``nbgrader+fb``: that autograde plus ``nbgrader generate_feedback ASSIGNMENT
  --force`` after it, since ``poolkit grade`` writes the feedback pages too:
  the like-for-like comparison, reported beside the plain one.

From those: submissions per minute for each, the speedup of N workers over one
(target >= 1.8 on 2 cores), poolkit's seconds per submission with one worker
over nbgrader's (target <= 1.0: poolkit's per-submission overhead no worse than
plain nbgrader's), and poolkit's CPU seconds per submission with one worker over
nbgrader's (target <= 0.5). Each run's CPU seconds (user and system, of the
command and every process it started) are recorded too: unlike wall-clock
time, other processes on the machine barely change them.

CPU time
--------
Every timed command runs in a cgroup of its own that the bench makes (under
its own cgroup), and its CPU time is that cgroup's at the end. A cgroup counts
its descendants, also those removed before the end, and every process started
in it, also those killed or reparented that ``getrusage(RUSAGE_CHILDREN)``
never sees: the sandboxed kernels and re-runs of ``poolkit grade`` (bubblewrap)
are such. The cgroup v1 ``cpuacct`` hierarchy is used where mounted, since
``poolkit.grader.sandbox`` makes its v1 cgroups beneath the caller's own, so
they nest in the bench's; else cgroup v2 (``cpu.stat`` ``usage_usec``), where
sandbox.py makes its cgroups at the hierarchy's root, outside the bench's, so
their CPU would be missed (``sandbox_cgroups_nested`` in the JSON says whether
they were counted). Without either, ``RUSAGE_CHILDREN``. ``cpu_method`` in the
JSON names the one used; it is the same for every command of a run.

The submissions
---------------
The released notebook is generated in the run from ``solutions/ASSIGNMENT/``
with nbgrader (so it is always the current one). Student ``i`` gets one of four
variants, in turn, so that the workload is the same on every run:

- ``correct-pytorch``: every solution cell holds the solution's code (the
  source cell without its ``### BEGIN/END SOLUTION`` lines),
- ``correct-mxnet``: the same, with ``FRAMEWORK = "mxnet"`` in the first code cell,
- ``partly-wrong``: the solution, but average pooling takes the maximum
  (``.mean()`` becomes ``.max()``; where no solution has a ``.mean()``, the last
  solution cell is left as released),
- ``blank``: the notebook as released (``raise NotImplementedError()``).

How
---
Before anything is timed, one untimed ``python -c "import torch, mxnet,
nbgrader, poolkit"`` puts the libraries in the page cache, so that the first
timed command does not pay for the disk. The runs go one after another, never
at the same time. Then the scores are compared: both poolkit runs (its
``grades.csv``) must give every student the same score, and that score must
equal nbgrader's (its gradebook); the correct variants must earn the maximum
and the blank one zero. Any disagreement aborts the run: the submissions are
honest, so the graders must agree on them.

Run it
------
::

    make bench-grading                                  # 40 submissions: writes bench/results/grading.json and grading.txt
    python bench/grading.py --quick --out /tmp/g.json   # 2 submissions, a smoke test (about a minute)
    python bench/grading.py --count 80 --workers 4 --keep   # keep the work folder to read worker.log files

It prints the table and the acceptance numbers at the end.
"""

import argparse
import csv
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COUNT, QUICK_COUNT = 40, 2
VARIANTS = ("correct-pytorch", "correct-mxnet", "partly-wrong", "blank")
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
RUN_TIMEOUT_S = 3600  # one whole command; a hung grader fails the run instead of hanging it
SPEEDUP_TARGET = 1.8
OVERHEAD_TARGET = 1.0
CPU_RATIO_TARGET = 0.5
SCORE_TOLERANCE = 1e-6

NOTES = [
    "Each time is one whole command, wall-clock (time.perf_counter around the subprocess), from start to exit: "
    "Python's startup, imports, the gradebook and every submission included.",
    "poolkit grade also runs nbgrader's generate_assignment into its own gradebook and writes an HTML feedback page "
    "per student; for nbgrader, generate_assignment is setup (timed apart, not counted) and no feedback is made.",
    "Every command gets a fresh output folder; the runs go one after another, never at the same time.",
    "An untimed 'import torch, mxnet, nbgrader, poolkit' first puts the libraries in the page cache (not with --quick).",
    "Submissions per minute = submissions / seconds * 60; seconds per submission = seconds / submissions.",
    "speedup = seconds of poolkit with 1 worker / seconds with N workers; "
    "overhead ratio = poolkit's seconds per submission with 1 worker / nbgrader's.",
    "cpu_seconds: user and system CPU time of the command and of every process it started, read from a cgroup "
    "of its own that the bench makes for each command (cpu_method names how: cgroup v1 cpuacct.usage, cgroup v2 "
    "cpu.stat usage_usec, or getrusage(RUSAGE_CHILDREN) before and after where no cgroup can be made); a cgroup "
    "also counts processes that were killed or reparented and the sandboxes' cgroups nested in it, removed or not; "
    "other processes on the machine barely change it.",
    "cpu ratio = poolkit's CPU seconds per submission with 1 worker / nbgrader's (autograde alone).",
    "dask N: poolkit grade --cluster on a scheduler and N one-thread workers on 127.0.0.1, started untimed; its CPU "
    "seconds are the command's plus those of the scheduler and workers (their cgroup) during the command.",
    "Scores are checked before the numbers are reported: both poolkit runs and nbgrader must give every student "
    "the same score, or the run aborts.",
    "poolkit grade's kernels run with OMP_NUM_THREADS=1 (its workers are the parallelism); nbgrader's with the "
    "libraries' default threads.",
    "Other processes on the machine slow every run; the load averages at the start and the end are recorded.",
]


class Abort(RuntimeError):
    """A run that must not report numbers: a command failed, or the graders disagree."""


# --- the course and the submissions -------------------------------------------


def subprocess_env():
    """The environment of every command: this Python's bin folder first on PATH (nbgrader runs ``alembic``
    and the kernels run ``python`` from PATH), and the course's questions named, for the notebooks that
    plain nbgrader runs in a course folder of its own (``poolkit grade`` names them itself)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)
    env["POOLKIT_QUESTIONS"] = str(ROOT / "solutions" / "questions.py")
    return env


def tool(name, module):
    """The command line of a console script beside this Python, else ``python -m module``."""
    script = BIN / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


# --- CPU time: a cgroup per timed command ---------------------------------------


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path by controller (``""`` for the v2 hierarchy), from /proc/self/cgroup."""
    own = {}
    with open("/proc/self/cgroup") as cgroups:
        for line in cgroups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own.update(dict.fromkeys(controllers.split(","), path))
    return own


def _mounts() -> tuple[str | None, str | None]:
    """Where the v1 ``cpuacct`` hierarchy and the v2 one are mounted (None where not)."""
    cpuacct = unified = None
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, where, kind, options = line.split()[:4]
            if kind == "cgroup" and "cpuacct" in options.split(","):
                cpuacct = where
            elif kind == "cgroup2":
                unified = where
    return cpuacct, unified


def cpu_cgroup_method() -> tuple[str, str | None]:
    """How a command's CPU time is measured here: ``(method, parent folder)``.

    ``"cgroup v1 cpuacct"`` first, since sandbox.py nests its v1 cgroups beneath the caller's (so in the
    command's cgroup); then ``"cgroup v2"`` (whose sandboxes sandbox.py makes at the root, outside it);
    ``("rusage children", None)`` where no cgroup can be made and removed under this process's own.
    """
    try:
        own = _own_cgroups()
        cpuacct, unified = _mounts()
    except OSError:
        return "rusage children", None
    candidates = []
    if cpuacct and "cpuacct" in own:
        candidates.append(("cgroup v1 cpuacct", os.path.join(cpuacct, own["cpuacct"].lstrip("/")), "cpuacct.usage"))
    if unified and "" in own:
        candidates.append(("cgroup v2", os.path.join(unified, own[""].lstrip("/")), "cpu.stat"))
    for method, parent, stat in candidates:
        probe = os.path.join(parent, f"poolkit-bench-probe-{os.getpid()}")
        try:  # a trial: the right to make one, and the file to read
            os.mkdir(probe)
            usable = os.path.exists(os.path.join(probe, stat))
            os.rmdir(probe)
        except OSError:
            continue
        if usable:
            return method, parent
    return "rusage children", None


CPU_METHOD, CPU_PARENT = cpu_cgroup_method()


def cgroup_cpu_seconds(folder: str) -> float:
    """CPU seconds (user and system) used in the cgroup ``folder`` and its descendants, removed ones included."""
    if CPU_METHOD == "cgroup v1 cpuacct":
        with open(os.path.join(folder, "cpuacct.usage")) as file:
            return int(file.read()) * 1e-9
    with open(os.path.join(folder, "cpu.stat")) as stat:
        return int(dict(line.split() for line in stat)["usage_usec"]) * 1e-6


def new_cgroup() -> str | None:
    """A fresh cgroup for one command (or the cluster), beneath this process's own; None without one."""
    if CPU_PARENT is None:
        return None
    folder = os.path.join(CPU_PARENT, f"poolkit-bench-{os.getpid()}-{time.monotonic_ns()}")
    os.mkdir(folder)
    return folder


def joiner(folder: str | None):
    """A ``preexec_fn`` by which a child joins ``folder`` before it execs, so that every
    process it starts is born in it (None without a cgroup)."""
    return (lambda: Path(folder, "cgroup.procs").write_text(str(os.getpid()))) if folder else None


def remove_cgroup(folder: str) -> None:
    """Remove a command's cgroup once read, killing what is left in it (a grader that left a process behind)."""
    from poolkit.grader import sandbox

    if not sandbox.remove_cgroup(folder):
        print(f"warning: could not remove the bench cgroup {folder}", file=sys.stderr)


def run(command, log, cwd=None):
    """Run ``command`` to its end, its output into ``log``.

    Returns
    -------
    tuple of float
        Its wall-clock seconds, and the CPU seconds (user and system) that it
        and every process it started used (by :data:`CPU_METHOD`).

    Raises
    ------
    Abort
        If it fails, with the end of its log.
    """
    folder = new_cgroup()
    join = joiner(folder)
    try:
        with open(log, "wb") as handle:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            try:
                done = subprocess.run(command, cwd=cwd, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S, preexec_fn=join)
            except subprocess.TimeoutExpired:
                raise Abort(f"ABORT: {' '.join(map(str, command))} ran past {RUN_TIMEOUT_S} s; its log is {log}") from None
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if folder:
            cpu = cgroup_cpu_seconds(folder)
        else:
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        if folder:
            remove_cgroup(folder)
    if done.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-3000:]
        raise Abort(f"ABORT: {' '.join(map(str, command))} exited with status {done.returncode}; the end of {log}:\n{tail}")
    return seconds, cpu


class LocalDaskCluster:
    """A Dask scheduler and ``workers`` one-thread workers on 127.0.0.1 (the ``dask`` CLI beside this
    Python), in a cgroup of their own, for ``poolkit grade --cluster``; started and stopped untimed, as a
    course's cluster would be running already. :meth:`cpu_seconds` is the CPU they have used so far
    (the sandboxed kernels and re-runs of every task included), or 0 without a cgroup."""

    def __init__(self, folder: Path, workers: int):
        self.folder, self.processes = folder, []
        folder.mkdir(parents=True)
        self.cgroup = new_cgroup()
        dask = tool("dask", "dask")
        scheduler_file = folder / "scheduler.json"
        try:
            self._start("scheduler", [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", scheduler_file, "--no-dashboard"])
            deadline = time.monotonic() + 60
            while not scheduler_file.is_file():
                if time.monotonic() > deadline or self.processes[0].poll() is not None:
                    raise Abort(f"ABORT: the Dask scheduler did not start; see {folder / 'scheduler.log'}")
                time.sleep(0.2)
            self.address = json.loads(scheduler_file.read_text())["address"]
            for number in range(workers):
                self._start(f"worker-{number + 1}", [*dask, "worker", self.address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"])
            import distributed

            with distributed.Client(self.address, timeout=30) as client:
                client.wait_for_workers(workers, timeout=120)
        except BaseException:
            self.stop()
            raise

    def _start(self, name, command):
        with open(self.folder / f"{name}.log", "wb") as log:
            self.processes.append(subprocess.Popen(command, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=joiner(self.cgroup)))

    def cpu_seconds(self) -> float:
        return cgroup_cpu_seconds(self.cgroup) if self.cgroup else 0.0

    def stop(self):
        # The workers first, so that none logs a lost scheduler on its way out.
        for group in (self.processes[1:], self.processes[:1]):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.cgroup:
            remove_cgroup(self.cgroup)


def nbgrader_course(folder, assignment):
    """A course folder for plain nbgrader: its config, and ``source/ASSIGNMENT`` copied from ``solutions/``."""
    source = ROOT / "solutions" / assignment
    if not source.is_dir():
        known = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
        raise Abort(f"ABORT: no assignment {assignment!r} in {ROOT / 'solutions'}; known: {', '.join(known)}")
    folder.mkdir(parents=True)
    (folder / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = 'bench'\n"
        f"c.CourseDirectory.root = {str(folder)!r}\n"
        "c.CourseDirectory.source_directory = 'source'\n"
        "c.CourseDirectory.release_directory = 'release'\n"
        f"c.CourseDirectory.db_url = {db_url(folder)!r}\n"
    )
    shutil.copytree(source, folder / "source" / assignment, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))


def db_url(folder):
    return f"sqlite:///{Path(folder) / 'gradebook.db'}"


def solution_code(source):
    """A solution cell's code as a correct student writes it: the source without the solution markers."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def is_solution(cell):
    return cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def variant_notebooks(release, source):
    """The released notebook filled in as each variant of :data:`VARIANTS`.

    Parameters
    ----------
    release, source : nbformat.NotebookNode
        The student's notebook as released, and the instructor's source with the solutions.

    Returns
    -------
    dict
        Variant name -> notebook.
    """
    import nbformat

    solutions = {grade_id(cell): solution_code(cell.source) for cell in source.cells if is_solution(cell)}
    copy = lambda: nbformat.from_dict(json.loads(json.dumps(release)))  # noqa: E731
    notebooks = {}

    correct = copy()
    cells = [cell for cell in correct.cells if is_solution(cell)]
    if not cells:
        raise Abort("ABORT: the released notebook has no solution cell to fill in")
    for cell in cells:
        cell.source = solutions[grade_id(cell)]
    notebooks["correct-pytorch"] = correct

    mxnet = nbformat.from_dict(json.loads(json.dumps(correct)))
    first = next(cell for cell in mxnet.cells if cell.cell_type == "code")
    if '"pytorch"' not in first.source or "FRAMEWORK" not in first.source:
        raise Abort(f"ABORT: the first code cell does not set FRAMEWORK = \"pytorch\": {first.source!r}")
    first.source = first.source.replace('"pytorch"', '"mxnet"', 1)
    notebooks["correct-mxnet"] = mxnet

    wrong = nbformat.from_dict(json.loads(json.dumps(correct)))
    cells = [cell for cell in wrong.cells if is_solution(cell)]
    if any(".mean()" in cell.source for cell in cells):
        for cell in cells:
            cell.source = cell.source.replace(".mean()", ".max()")
    else:
        released = {grade_id(cell): cell.source for cell in release.cells if is_solution(cell)}
        cells[-1].source = released[grade_id(cells[-1])]
    notebooks["partly-wrong"] = wrong

    notebooks["blank"] = copy()
    return notebooks


def write_submissions(notebooks, count, assignment, notebook, poolkit_folder, nbgrader_folder):
    """``count`` students, cycling through the variants, in poolkit's layout and in nbgrader's.

    Returns
    -------
    dict
        Student id -> variant name.
    """
    import nbformat

    width = len(str(count))
    students = {}
    for index in range(count):
        student = f"student{index + 1:0{width}d}"
        variant = VARIANTS[index % len(VARIANTS)]
        students[student] = variant
        for path in (poolkit_folder / student / f"{notebook}.ipynb", nbgrader_folder / student / assignment / f"{notebook}.ipynb"):
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebooks[variant], path)
    return students


# --- the graders' scores --------------------------------------------------------


def poolkit_scores(out):
    """Student id -> score, from ``poolkit grade``'s ``grades.csv``; and the flags, where any."""
    with open(Path(out) / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["student_id"]: float(row["score"]) for row in rows}, {row["student_id"]: row["flags"] for row in rows if row["flags"]}


def nbgrader_scores(course, assignment):
    """Student id -> score, from nbgrader's gradebook; and the assignment's maximum score."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        scores = {submission.student.id: float(submission.score) for submission in gb.assignment_submissions(assignment)}
        max_score = float(gb.find_assignment(assignment).max_score)
    return scores, max_score


def ungraded(students, scores, flags):
    """The students a poolkit run did not grade: no grade in its fresh output folder, or the flag grader-error."""
    return sorted(set(students) - set(scores) | {student for student, flag in flags.items() if "grader-error" in flag.split(";")})


def check_scores(students, runs, max_score):
    """Abort unless every run gives every student the same score, and the variants score as they should.

    Returns
    -------
    dict
        Variant -> its score (the same for all its students).
    """
    names = list(runs)
    problems = []
    for student in students:
        found = {name: runs[name].get(student) for name in names}
        values = [value for value in found.values() if value is not None]
        if len(values) < len(names) or max(values) - min(values) > SCORE_TOLERANCE:
            problems.append(f"  {student} ({students[student]}): " + ", ".join(f"{name} {value}" for name, value in found.items()))
    for name in names:
        extra = sorted(set(runs[name]) - set(students))
        if extra:
            problems.append(f"  {name} graded students that were not submitted: {extra}")
    if problems:
        raise Abort("ABORT: the graders disagree on these submissions:\n" + "\n".join(problems))
    scores = {}
    reference = runs[names[-1]]
    for student, variant in students.items():
        score = reference[student]
        if scores.setdefault(variant, score) != score:
            problems.append(f"  {variant}: {student} scored {score}, another student {scores[variant]}")
    for variant, score in scores.items():
        expected_ok = {"correct-pytorch": score == max_score, "correct-mxnet": score == max_score, "blank": score == 0}.get(variant, 0 < score < max_score)
        if not expected_ok:
            problems.append(f"  {variant} scored {score} of {max_score}")
    if problems:
        raise Abort("ABORT: the synthetic submissions do not score as their variants should:\n" + "\n".join(problems))
    return scores


# --- output -------------------------------------------------------------------

COLUMNS = [("run", 10), ("workers", 7), ("seconds", 9), ("subs/min", 9), ("s/sub", 7), ("cpu s/sub", 9), ("load", 5)]


def table(rows):
    header = " ".join(f"{name:<{width}}" if i == 0 else f"{name:>{width}}" for i, (name, width) in enumerate(COLUMNS))
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [row["name"], str(row["workers"]), f"{row['seconds']:.1f}", f"{row['submissions_per_minute']:.1f}", f"{row['seconds_per_submission']:.2f}", f"{row['cpu_seconds_per_submission']:.2f}", f"{row['load_average']['start'][0]:.1f}" if row["load_average"]["start"] else "-"]
        lines.append(" ".join(f"{cell:<{width}}" if i == 0 else f"{cell:>{width}}" for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS))))
    return lines


def machine_info():
    from poolkit.grader import sandbox

    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "nbgrader": version("nbgrader"),
        "jupyter_client": version("jupyter_client"),
        "ipykernel": version("ipykernel"),
        "torch": version("torch"),
        "mxnet": version("mxnet"),
        "poolkit": version("poolkit"),
        "landlock_abi": sandbox.landlock_abi(),
    }


def summary(name, workers, seconds, cpu, count, command, load_start):
    return {
        "name": name,
        "workers": workers,
        "command": [str(part) for part in command],
        "seconds": seconds,
        "submissions_per_minute": count / seconds * 60,
        "seconds_per_submission": seconds / count,
        # CPU time is what N workers share out; unlike wall-clock, other processes barely change it.
        "cpu_seconds": cpu,
        "cpu_seconds_per_submission": cpu / count,
        "load_average": {"start": load_start, "end": load_average()},
    }


def goal(description, value, comparison, threshold):
    return {
        "description": description,
        "comparison": comparison,
        "threshold": threshold,
        "value": value,
        "pass": value <= threshold if comparison == "<=" else value >= threshold,
    }


# --- the run ------------------------------------------------------------------


def bench(args, work, say):
    import nbformat

    from poolkit.grader import sandbox

    started, load_start = time.perf_counter(), load_average()
    count = QUICK_COUNT if args.quick and args.count is None else args.count or COUNT
    workers = args.workers or os.cpu_count() or 1
    assignment = args.assignment
    machine = machine_info()
    say(f"{machine['cpu_model']} ({machine['cpu_count']} CPUs), Python {machine['python']}, nbgrader {machine['nbgrader']}, "
        f"torch {machine['torch']}, mxnet {machine['mxnet']}, Landlock ABI {machine['landlock_abi']}")
    say(f"{count} submissions of {assignment}: {', '.join(VARIANTS)} in turn; poolkit with 1 and {workers} workers, then on a local Dask cluster of {workers} workers, then nbgrader")

    # Setup, untimed: the libraries in the page cache, the release, the submissions.
    if not args.quick:  # the smoke test skips it: its times are not worth the seconds
        run([sys.executable, "-c", "import torch, mxnet, nbgrader, poolkit.grader.checks, nbconvert"], work / "warmup.log")
    course = work / "nbgrader"
    nbgrader_course(course, assignment)
    generate_seconds, _ = run([*tool("nbgrader", "nbgrader"), "generate_assignment", assignment, "--force"], work / "nbgrader-generate.log", cwd=course)
    released = sorted((course / "release" / assignment).glob("*.ipynb"))
    if len(released) != 1:
        raise Abort(f"ABORT: {assignment} must have exactly one notebook, nbgrader released {[path.name for path in released]}")
    notebook = released[0].stem
    release = nbformat.read(released[0], as_version=4)
    source = nbformat.read(course / "source" / assignment / f"{notebook}.ipynb", as_version=4)
    submissions = work / "submissions"
    students = write_submissions(variant_notebooks(release, source), count, assignment, notebook, submissions, course / "submitted")

    # The timed runs, one after another.
    runs, scores, flags = {}, {}, {}
    poolkit = tool("poolkit", "poolkit.grader.cli")
    for key, n in (("poolkit_1", 1), ("poolkit_N", workers)):
        out = work / key  # a fresh output folder for each run
        command = [*poolkit, "grade", assignment, submissions, "--out", out, "--workers", str(n), "--course", ROOT]
        print(f"timing {key}: {' '.join(map(str, command))}", flush=True)
        load = load_average()
        seconds, cpu = run(command, work / f"{key}.log")
        runs[key] = summary(f"poolkit {n}", n, seconds, cpu, count, command, load)
        scores[key], flags[key] = poolkit_scores(out)
        failed = ungraded(students, scores[key], flags[key])
        if failed:
            raise Abort(f"ABORT: poolkit grade failed on {len(failed)} of {count} submissions, e.g. {failed[0]}: "
                        f"see {out / 'logs' / (failed[0] + '.worker.log')} and {out / 'report.txt'}")
    cluster = LocalDaskCluster(work / "dask", workers)
    try:
        out = work / "poolkit_dask"
        command = [*poolkit, "grade", assignment, submissions, "--out", out, "--cluster", cluster.address, "--course", ROOT]
        print(f"timing poolkit_dask: {' '.join(map(str, command))}", flush=True)
        load, before = load_average(), cluster.cpu_seconds()
        seconds, cpu = run(command, work / "poolkit_dask.log")
        # The driver's CPU and the cluster's during the run: the workers grade.
        runs["poolkit_dask"] = summary(f"dask {workers}", workers, seconds, cpu + cluster.cpu_seconds() - before, count, command, load)
    finally:
        cluster.stop()
    scores["poolkit_dask"], flags["poolkit_dask"] = poolkit_scores(out)
    failed = ungraded(students, scores["poolkit_dask"], flags["poolkit_dask"])
    if failed:
        raise Abort(f"ABORT: poolkit grade --cluster failed on {len(failed)} of {count} submissions, e.g. {failed[0]}: see {out / 'report.txt'} and {work / 'dask'}")
    command = [*tool("nbgrader", "nbgrader"), "autograde", assignment, "--force"]
    print(f"timing nbgrader: (in {course}) {' '.join(command)}", flush=True)
    load = load_average()
    seconds, cpu = run(command, work / "nbgrader-autograde.log", cwd=course)
    runs["nbgrader"] = summary("nbgrader", 1, seconds, cpu, count, command, load)
    # poolkit grade also writes every student's feedback page: nbgrader's own step for that, timed after.
    feedback = [*tool("nbgrader", "nbgrader"), "generate_feedback", assignment, "--force"]
    print(f"timing nbgrader feedback: (in {course}) {' '.join(feedback)}", flush=True)
    load = load_average()
    feedback_seconds, feedback_cpu = run(feedback, work / "nbgrader-feedback.log", cwd=course)
    runs["nbgrader_feedback"] = summary("nbgrader+fb", 1, seconds + feedback_seconds, cpu + feedback_cpu, count, [*command, "&&", *feedback], load)
    scores["nbgrader"], max_score = nbgrader_scores(course, assignment)
    variant_scores = check_scores(students, scores, max_score)

    one, many, plain = runs["poolkit_1"], runs["poolkit_N"], runs["nbgrader"]
    speedup = one["seconds"] / many["seconds"]
    overhead = one["seconds_per_submission"] / plain["seconds_per_submission"]
    like_for_like = one["seconds_per_submission"] / runs["nbgrader_feedback"]["seconds_per_submission"]
    cpu_ratio = one["cpu_seconds_per_submission"] / plain["cpu_seconds_per_submission"]
    goals = {
        "speedup": goal(f"speedup of poolkit grade with {workers} workers over 1 worker ({machine['cpu_count']} CPUs)", speedup, ">=", SPEEDUP_TARGET),
        "overhead_ratio": goal("poolkit grade's seconds per submission with 1 worker / plain nbgrader autograde's", overhead, "<=", OVERHEAD_TARGET),
        "overhead_ratio_with_feedback": goal(
            "the same, against nbgrader autograde + generate_feedback (both then write feedback)", like_for_like, "<=", OVERHEAD_TARGET
        ),
        "cpu_ratio": goal("poolkit grade's CPU seconds per submission with 1 worker / plain nbgrader autograde's", cpu_ratio, "<=", CPU_RATIO_TARGET),
    }
    say()
    for line in table(runs.values()):
        say(line)
    say(f"(cpu s/sub: CPU seconds, user and system, of the command and every process it started, per submission, by {CPU_METHOD};")
    say(f" load: the 1-minute load average when the run started; nbgrader generate_assignment, setup not counted above: {generate_seconds:.1f} s)")
    say(f"commands: poolkit grade {assignment} SUBMISSIONS --out DIR --workers 1 (and {workers}) --course ROOT; dask {workers}: --cluster tcp://127.0.0.1:PORT instead of --workers,"
        f" {workers} one-thread workers; in a course folder: nbgrader autograde {assignment} --force (nbgrader+fb: then nbgrader generate_feedback {assignment} --force)")
    say()
    say("Scores (every run agrees): " + ", ".join(f"{variant} {score:g}" for variant, score in variant_scores.items()) + f", of {max_score:g}")
    say()
    say("Acceptance numbers (measured in this run):")
    for item in goals.values():
        verdict = "PASS" if item["pass"] else "FAIL"
        say(f"  {item['description']}: {item['value']:.2f} (target {item['comparison']} {item['threshold']:g}) {verdict}")
    return {
        "benchmark": "poolkit grade (1 and N workers, and on a local Dask cluster of N workers) against plain nbgrader autograde, whole commands",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine,
        "method": {"timer": "time.perf_counter", "statistic": "one wall-clock run of each command", "notes": NOTES},
        "cpu_method": CPU_METHOD,
        # Whether the sandboxes' cgroups lie inside the command's (v1: beneath the caller's), so their CPU is counted.
        "sandbox_cgroups_nested": CPU_METHOD == "cgroup v1 cpuacct" and sandbox.cgroups().startswith("cgroup v1") and "cpuacct" in sandbox.cgroups(),
        "assignment": assignment,
        "notebook": notebook,
        "submissions": count,
        "workers": workers,
        "variants": {variant: {"students": sum(1 for value in students.values() if value == variant), "score": variant_scores.get(variant)} for variant in VARIANTS},
        "max_score": max_score,
        "runs": runs,
        "nbgrader_generate_seconds": round(generate_seconds, 3),
        "scores": scores["nbgrader"],
        "poolkit_flags": flags,
        "targets": goals,
        "total_seconds": round(time.perf_counter() - started, 1),
        # Another busy process skews every number; a high load average is a hint of one.
        "load_average": {"start": load_start, "end": load_average()},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} submissions (a smoke test, about a minute; with --count, that many)")
    parser.add_argument("--count", type=int, default=None, help=f"how many submissions (default {COUNT}; {QUICK_COUNT} with --quick)")
    parser.add_argument("--workers", type=int, default=None, help="poolkit's workers in the parallel run (default: the number of CPUs)")
    parser.add_argument("--assignment", default="pool2d", help="the assignment, a folder of solutions/ (default pool2d)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (submissions, output folders, logs) and print where it is")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "grading.json", help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1 or args.workers is not None and args.workers < 1:
        parser.error("--count and --workers must be at least 1")
    report = []  # the printed table, also saved beside the JSON

    def say(line=""):
        report.append(line)
        print(line, flush=True)

    work = Path(tempfile.mkdtemp(prefix="poolkit-bench-grading-"))
    try:
        results = bench(args, work, say)
    except Abort as error:
        print(f"{error}\n(the work folder {work} is kept)", file=sys.stderr)
        return 1
    except BaseException:
        print(f"(the work folder {work} is kept)", file=sys.stderr)
        raise
    if args.keep:
        print(f"the work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    args.out.with_suffix(".txt").write_text("\n".join(report) + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt').name} in {results['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
