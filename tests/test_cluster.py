"""``poolkit grade --cluster`` on a real Dask cluster on 127.0.0.1: a ``dask scheduler``
and two ``dask worker`` processes from the course environment, nothing mocked. The
grades must equal a local run's on the same submissions (correct in both frameworks,
partly wrong, blank, hostile), with a worker SIGKILLed mid-run and with the driver
SIGKILLed and rerun; a bad cluster is refused in one line.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from test_autograde import MAX_SCORE, ROOT, grade, pool2d_source, submission
from test_grading_runs import Run, graded, rows
from test_hostile import ATTACKS

from poolkit.grader.cluster import remove_abandoned

DASK = str(Path(sys.executable).with_name("dask"))
# Meant to share one pytest-xdist worker (--dist loadgroup), but pytest-xdist 3.8 here may still
# run them on both: so each test looks only at its own cluster's workers and task folders.
pytestmark = pytest.mark.xdist_group("dask_cluster")

SUBMISSIONS = {
    "pt1": submission(pool2d_source()),
    "pt2": submission(pool2d_source(before_loop="p_h, p_w = int(p_h), int(p_w)")),
    "mx1": submission(pool2d_source("mxnet"), "mxnet"),
    "mx2": submission(pool2d_source("mxnet"), "mxnet"),
    "avg_wrong1": submission(pool2d_source(avg="window.sum()")),
    "avg_wrong2": submission(pool2d_source("mxnet", avg="window.max()"), "mxnet"),
    "blank1": submission(),
    "blank2": submission(),
    "writes_verdict": submission(ATTACKS["writes_verdict_files_and_exits"]),
    "walks_frames": submission(ATTACKS["walks_frames_for_the_answer"]),
}


class Cluster:
    """A scheduler and workers on 127.0.0.1, as subprocesses; each worker without a
    nanny, so that killing its process kills the worker, as a machine lost would."""

    def __init__(self, folder, workers=2, scheduler_env=None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.workers = []
        self.scheduler = self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(self.file), "--no-dashboard"], scheduler_env)
        try:
            deadline = time.monotonic() + 60
            while not self.file.is_file():
                assert self.scheduler.poll() is None and time.monotonic() < deadline, (folder / "scheduler.log").read_text()[-2000:]
                time.sleep(0.2)
            self.address = json.loads(self.file.read_text())["address"]
            self.workers = [self.add_worker(f"w{number + 1}") for number in range(workers)]
            if workers:
                self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, name, command, env=None):
        with open(self.folder / f"{name}.log", "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)

    def add_worker(self, name, env=None):
        command = [DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", "--name", name, "--host", "127.0.0.1", "--no-dashboard"]
        return self._start(name, command, env)

    def task_folders(self, *workers):
        """The task folders of these workers (default: all of this cluster's) on this host:
        one per worker thread that has graded, holding its serving process's warm sandboxes
        and the folder of the job it grades now (``job-*``)."""
        pids = {str(worker.pid) for worker in workers or self.workers}
        found = []
        for owner in Path("/tmp").glob("poolkit-task-*/owner.pid"):
            try:
                if owner.read_text() in pids:
                    found.append(owner.parent)
            except OSError:  # removed meanwhile
                pass
        return found

    def wait_for_task(self, worker, seconds=300):
        """Until ``worker`` is grading a submission: its task's folder is there."""
        deadline = time.monotonic() + seconds
        while not [job for folder in self.task_folders(worker) for job in folder.glob("job-*")]:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.1)

    def wait_for_workers(self, count):
        import distributed

        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(count, timeout=120)

    def stop(self):
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        remove_abandoned()  # what the next task on this host would do: no sandbox of theirs outlives the tests


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("dask"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def local_grades(tmp_path_factory):
    """The same submissions graded on this machine's own workers: what the cluster must give."""
    subs = write_submissions(tmp_path_factory.mktemp("local") / "subs")
    result = grade(subs, subs.parent / "out", "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return graded(subs.parent / "out")


def write_submissions(subs):
    for student, nb in SUBMISSIONS.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "pool2d.ipynb")
    return subs


def recorded_once(out):
    """Every student in the gradebook once, and the database intact."""
    with sqlite3.connect(out / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(SUBMISSIONS)
        assert db.execute("SELECT COUNT(*) FROM poolkit_results").fetchone()[0] == len(SUBMISSIONS)


def test_the_local_run_gives_the_submissions_their_own_grades(local_grades):
    assert local_grades["pt1"] == local_grades["mx1"] == (MAX_SCORE, set())
    assert 0 < local_grades["avg_wrong1"][0] < MAX_SCORE and 0 < local_grades["avg_wrong2"][0] < MAX_SCORE
    assert local_grades["blank1"][0] == local_grades["writes_verdict"][0] == local_grades["walks_frames"][0] == 0


def test_a_cluster_of_two_workers_grades_every_submission_as_a_local_run_does(cluster, local_grades, tmp_path):
    subs = write_submissions(tmp_path / "subs")
    result = grade(subs, tmp_path / "out", "--cluster", cluster.address)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"cluster: {cluster.address}, 2 tasks at once" in result.stderr
    assert graded(tmp_path / "out") == local_grades
    assert len(rows(tmp_path / "out")) == len(SUBMISSIONS)  # one row per student
    recorded_once(tmp_path / "out")
    homes = cluster.task_folders()
    assert len(homes) == 2 and not [job for home in homes for job in home.glob("job-*")]  # the job folders are gone
    assert all(list(home.glob("warm-*/kernel")) for home in homes)  # the serving processes' sandboxes stay warm


def test_a_worker_killed_mid_run_has_its_task_rerun_and_every_student_graded_once(cluster, local_grades, tmp_path):
    subs = write_submissions(tmp_path / "subs")
    run = Run(subs, tmp_path / "out", "--cluster", cluster.address, "--workers", "2")
    run.wait_for("grading pool2d [")
    run.wait_for("] 1/")
    victim = cluster.workers[0]
    cluster.wait_for_task(victim)
    os.killpg(victim.pid, signal.SIGKILL)  # the machine is lost: its running task with it
    victim.wait()
    code, text = run.finish()
    assert code == 0, text[-3000:]
    assert graded(tmp_path / "out") == local_grades
    recorded_once(tmp_path / "out")
    assert not cluster.task_folders(victim)  # the killed worker's task folder went with the next task, its sandboxes too
    cluster.workers[0] = cluster.add_worker("w1-again")  # for the tests after this one
    cluster.wait_for_workers(2)


def test_a_driver_killed_mid_run_and_rerun_loses_nothing_and_doubles_nothing(cluster, local_grades, tmp_path):
    subs, out = write_submissions(tmp_path / "subs"), tmp_path / "out"
    run = Run(subs, out, "--cluster", cluster.address)
    run.wait_for("] 2/")
    run.process.kill()  # SIGKILL: no handler runs
    run.finish()
    first = len(graded(out)) if (out / "grades.csv").is_file() else 0
    again = grade(subs, out, "--cluster", cluster.address)
    assert again.returncode == 0, again.stderr[-3000:]
    kept = int(again.stdout.split(" kept from an earlier run")[0].rsplit(", ", 1)[1])
    assert kept >= max(first, 2)  # what the killed run recorded is not graded again
    assert graded(out) == local_grades
    recorded_once(out)


def test_a_task_that_keeps_losing_its_worker_costs_that_student_alone_a_grader_error(tmp_path):
    # A scheduler that gives up on a task after the first worker it lost (allowed-failures is 3 by default).
    lossy = Cluster(tmp_path / "lossy", workers=1, scheduler_env=dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0"))
    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in ("a", "b", "c"):
        (subs / student).mkdir(parents=True)
        nbformat.write(SUBMISSIONS["pt1"], subs / student / "pool2d.ipynb")
    try:
        run = Run(subs, out, "--cluster", lossy.address)
        run.wait_for("] 1/")
        lossy.wait_for_task(lossy.workers[0])
        os.killpg(lossy.workers[0].pid, signal.SIGKILL)
        lossy.workers.append(lossy.add_worker("again"))
        code, text = run.finish()
        assert code == 1, text[-3000:]  # 1: the grader failed on a student
        found = graded(out)
        lost = [student for student, verdict in found.items() if verdict == (0.0, {"grader-error"})]
        assert len(lost) == 1 and all(found[student] == (MAX_SCORE, set()) for student in found if student not in lost), found
        again = grade(subs, out, "--cluster", lossy.address)  # the next run grades that student again
        assert again.returncode == 0, again.stderr[-3000:]
        assert graded(out) == {student: (MAX_SCORE, set()) for student in ("a", "b", "c")}
    finally:
        lossy.stop()


def refused(result, out, *phrases):
    """One error line naming --cluster and each phrase, exit 2, and nothing written."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("error: --cluster") == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert all(phrase in result.stderr for phrase in phrases), result.stderr[-3000:]
    assert not out.exists()


def test_an_unreachable_scheduler_is_refused_in_one_line_after_a_timeout(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]  # closed again before the run: nothing listens there
    subs = write_submissions(tmp_path / "subs")
    started = time.monotonic()
    result = grade(subs, tmp_path / "out", "--cluster", f"tcp://127.0.0.1:{port}")
    refused(result, tmp_path / "out", f"tcp://127.0.0.1:{port}", "no Dask scheduler answers")
    assert time.monotonic() - started < 120
    for address in ("scheduler:8786", "http://127.0.0.1:8786", "tcp://127.0.0.1"):
        refused(grade(subs, tmp_path / "out", "--cluster", address), tmp_path / "out", "is not a scheduler's address such as tcp://HOST:8786")
    refused(grade(subs, tmp_path / "out", "--cluster-wait", "5"), tmp_path / "out", "--cluster-wait needs --cluster")


def test_a_scheduler_without_workers_or_with_a_different_poolkit_is_refused(tmp_path):
    subs = write_submissions(tmp_path / "subs")
    empty = Cluster(tmp_path / "empty", workers=0)
    try:
        result = grade(subs, tmp_path / "out", "--cluster", empty.address, "--cluster-wait", "3")
        refused(result, tmp_path / "out", "no worker joined the scheduler within 3 s", f"dask worker {empty.address}")
        # A worker whose grader differs from the driver's (another checkout, another release).
        other = tmp_path / "other"
        shutil.copytree(ROOT / "poolkit", other / "poolkit", ignore=shutil.ignore_patterns("__pycache__"))
        with open(other / "poolkit" / "grader" / "checks.py", "a") as changed:
            changed.write("\n# a later grader\n")
        empty.workers.append(empty.add_worker("stale", env=dict(os.environ, PYTHONPATH=str(other))))
        empty.wait_for_workers(1)
        result = grade(subs, tmp_path / "out", "--cluster", empty.address)
        refused(result, tmp_path / "out", "worker tcp://127.0.0.1:", "install the same course environment on every machine")
    finally:
        empty.stop()


def test_a_task_process_reads_notebooks_without_compiling_an_iri_grammar():
    """Each cluster worker starts ``python -m poolkit.grader.autograde serve``, which reads
    notebooks (nbformat, so jsonschema): it must not pay the 1.7 CPU s of compiling
    rfc3987-syntax's Lark grammar, and notebooks must still validate, and fail to when broken."""
    script = (
        "import sys, poolkit.grader.autograde, nbformat  # the order of python -m poolkit.grader.autograde\n"
        f"notebook = nbformat.read({str(ROOT / 'exercises' / 'pool2d' / 'pool2d.ipynb')!r}, as_version=4)\n"
        "nbformat.validate(notebook)\n"
        "notebook.cells[0]['cell_type'] = 'spreadsheet'\n"
        "try:\n"
        "    nbformat.validate(notebook)\n"
        "except nbformat.ValidationError:\n"
        "    print('broken notebook refused')\n"
        "print('lark' in sys.modules, 'rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["broken notebook refused", "False False"]
