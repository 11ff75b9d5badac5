"""Grading on a Dask cluster: ``poolkit grade ... --cluster tcp://HOST:PORT``.

The driver (``poolkit grade``) connects to a running Dask distributed scheduler
(``dask scheduler`` and ``dask worker --nthreads 1`` on the machines, or
dask-jobqueue on Slurm, or the Dask Kubernetes operator) and sends it one task per
submission: :func:`grade_job`, with the job folder that
:func:`poolkit.grader.autograde.prepare` made (the sanitized notebook, the
assignment's files, the course's questions with their hidden cases, the
settings and the hidden seed) as bytes. So a worker machine needs only the
course environment (the same poolkit, bubblewrap), not the course folder or a
shared filesystem.

On the worker host the task unpacks the job into a folder of its own and hands
it to a serving process, ``python -m poolkit.grader.autograde serve``: the same
:func:`poolkit.grader.autograde.serve` as a local run's worker, kept by each
Dask worker thread from task to task, so that its warm sandboxes
(:mod:`poolkit.grader.zygote`) are too. The kernel and the re-run are sandboxed
processes of their own, never the Dask worker's process. The task returns the
result and the log, and the driver alone records them, as each arrives,
exactly as it records a local worker's.

A task whose worker dies is rerun elsewhere by Dask; one that killed
``distributed.scheduler.allowed-failures`` workers fails with ``KilledWorker``,
and that student alone is recorded 0 with ``grader-error``. A task's key is a
digest of everything it carries (the student's seed among it), so the same
submission sent twice in one run is one task; a result is recorded once, and a
driver restarted after a crash grades only what is not recorded (as locally).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from . import sandbox

#: Seconds to wait for a scheduler to answer, and (by default) for a first worker to join.
CONNECT_TIMEOUT = 20
WORKERS_TIMEOUT = 60

#: The job file that carries the course's questions to the judge: outside ``scratch/``,
#: which the student's processes may write.
JUDGE_QUESTIONS = "questions.py"

#: What grading a job came to, for a local worker and a cluster's alike.
DONE, NO_RESULT, OVERRAN = "done", "no-result", "overran"


def pack(job: Path) -> dict[str, bytes]:
    """The files of a job folder, by their path relative to it."""
    return {str(path.relative_to(job)): path.read_bytes() for path in sorted(job.rglob("*")) if path.is_file()}


def unpack(files: dict[str, bytes], job: Path) -> None:
    """Write ``files`` (from :func:`pack`) beneath ``job``; a name that leads out of it is refused."""
    for name, data in files.items():
        target = (job / name).resolve()
        if job.resolve() not in target.parents:
            raise ValueError(f"job file {name!r} lies outside the job folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


TASK_PREFIX, OWNER = "poolkit-task-", "owner.pid"


def remove_abandoned() -> None:
    """Remove the task folders (and sandboxes) that a worker killed outright left on
    this host: those whose owner process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(TASK_PREFIX + "*"):
        try:
            os.kill(int((folder / OWNER).read_text()), 0)
            continue  # its worker still runs
        except ProcessLookupError:
            pass
        except (OSError, ValueError):  # not ours to judge, or just being made
            continue
        # Its serving process and zygotes died with the worker; their sandboxes' cgroups may be left.
        for scratch in [*folder.glob("*/scratch"), *folder.glob("warm-*/*/scratch")]:
            sandbox.cleanup(scratch)
        shutil.rmtree(folder, ignore_errors=True)


#: Each Dask worker thread's serving process, kept from task to task (its zygotes stay warm).
_serving = threading.local()


def _server(questions: bytes):
    """This thread's serving worker (:class:`poolkit.grader.autograde.Worker`), in a
    task folder of its own, started anew where a task brings other questions."""
    from . import autograde  # which imports this module

    digest = hashlib.sha256(questions).hexdigest()[:16]
    if getattr(_serving, "digest", None) != digest:
        if getattr(_serving, "worker", None) is not None:  # another course's: it goes
            _serving.worker.stop()
            shutil.rmtree(_serving.home, ignore_errors=True)
        home = Path(tempfile.mkdtemp(prefix=TASK_PREFIX))
        (home / OWNER).write_text(str(os.getpid()))
        (home / JUDGE_QUESTIONS).write_bytes(questions)
        _serving.worker, _serving.home, _serving.digest = autograde.Worker(home / "worker.log", home / JUDGE_QUESTIONS), home, digest
        atexit.register(_leave, _serving.worker, home)
    return _serving.worker, _serving.home


def _leave(worker, home: Path) -> None:
    """At a Dask worker's orderly exit: stop a serving process (and so its zygotes) and remove its folder."""
    worker.stop()
    shutil.rmtree(home, ignore_errors=True)


def grade_job(files: dict[str, bytes], timeout: float) -> dict[str, Any]:
    """The Dask task: grade one packed job on this host and return
    ``{"outcome": DONE | NO_RESULT | OVERRAN, "result": text or None, "log": text, "host": name}``.

    The job is graded by this worker thread's serving process (``python -m
    poolkit.grader.autograde serve``, as a local run's worker, kept from task to
    task, so its warm sandboxes are), replaced when it overran ``timeout``
    seconds or died; the job folder goes afterwards.
    """
    remove_abandoned()
    worker, home = _server(files[JUDGE_QUESTIONS])
    job = Path(tempfile.mkdtemp(prefix="job-", dir=home))
    try:
        unpack({name: data for name, data in files.items() if name != JUDGE_QUESTIONS}, job)
        outcome = worker.grade(job, timeout)
        text = (job / "result.json").read_text() if outcome == DONE else None
        log = (job / "worker.log").read_text(errors="replace")[-20000:] if (job / "worker.log").is_file() else ""
        return {"outcome": outcome, "result": text, "log": log, "host": os.uname().nodename}
    finally:
        sandbox.cleanup(job / "scratch")
        shutil.rmtree(job, ignore_errors=True)


def fingerprint() -> dict[str, Any]:
    """What a worker host grades with: poolkit's version, a digest of the grader's
    source, and its sandbox; the driver refuses workers whose fingerprint differs from its own."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"poolkit": version("poolkit"), "grader": digest.hexdigest()[:16], "isolated": sandbox.isolated(), "sandbox": sandbox.mode()}


class Cluster:
    """The driver's connection to a Dask scheduler, checked before any work."""

    def __init__(self, address: str, wait: float = WORKERS_TIMEOUT, unsafe_no_sandbox: bool = False):
        try:
            import distributed
            from distributed.comm.addressing import parse_address, parse_host_port
        except ImportError:
            raise RuntimeError("--cluster needs Dask's distributed package in this environment: pip install 'poolkit[cluster]' (the course environment has it)") from None

        try:  # checked here: a Client made from a bad address fails, then fails again as it is collected
            scheme, location = parse_address(address, strict=True)
            parse_host_port(location)
            if scheme not in ("tcp", "tls"):
                raise ValueError(f"the scheme is {scheme!r}")
        except (ValueError, TypeError) as error:
            raise ValueError(f"--cluster {address!r} is not a scheduler's address such as tcp://HOST:8786 ({error})") from None
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise RuntimeError(f"--cluster {address}: no Dask scheduler answers there within {CONNECT_TIMEOUT} s ({type(error).__name__}: {error})") from None
        try:
            self._check_workers(address, wait, unsafe_no_sandbox)
        except BaseException:
            self.close()
            raise

    def _check_workers(self, address, wait, unsafe_no_sandbox):
        from importlib.metadata import version

        try:
            self.client.wait_for_workers(1, timeout=wait)
        except TimeoutError:
            raise RuntimeError(f"--cluster {address}: no worker joined the scheduler within {wait:g} s; start some with: dask worker {address} --nthreads 1") from None
        # A stdlib function reaches a worker without poolkit: it says so there, where fingerprint would not unpickle.
        installed = self.client.run(version, "poolkit", on_error="return")
        missing = sorted(worker for worker, answer in installed.items() if isinstance(answer, BaseException))
        if missing:
            raise RuntimeError(f"--cluster {address}: poolkit is not installed on worker {', '.join(missing)}: install the course environment there (make setup)")
        own, theirs = fingerprint(), self.client.run(fingerprint, on_error="return")
        for worker, answer in sorted(theirs.items()):
            if isinstance(answer, BaseException):
                raise RuntimeError(f"--cluster {address}: poolkit cannot be imported on worker {worker} ({type(answer).__name__}: {answer})")
            if (answer["poolkit"], answer["grader"]) != (own["poolkit"], own["grader"]):
                raise RuntimeError(
                    f"--cluster {address}: worker {worker} has poolkit {answer['poolkit']} (grader {answer['grader']}), this driver {own['poolkit']} "
                    f"(grader {own['grader']}): install the same course environment on every machine"
                )
            if not answer["isolated"] and not unsafe_no_sandbox:
                raise RuntimeError(f"--cluster {address}: bubblewrap cannot isolate submissions on worker {worker} ({answer['sandbox']}): install it there (apt-get install bubblewrap)")

    def threads(self) -> int:
        """How many tasks the cluster's workers run at once."""
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        self.client.close()


def task_key(files: dict[str, bytes]) -> str:
    """The Dask key of a job's task, from everything it carries (the notebook, the
    assignment, the settings, the seed drawn for its student): one task per submission."""
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(hashlib.sha256(name.encode()).digest() + hashlib.sha256(data).digest())
    return "poolkit-grade-" + digest.hexdigest()[:32]


class ClusterWorker:
    """A stand-in for a local :class:`~poolkit.grader.autograde.Worker` that grades
    on the cluster: :meth:`grade` sends the job there and leaves the result and the
    log in the local job folder, as a local worker would."""

    def __init__(self, cluster: Cluster, questions: Path):
        self.cluster, self.questions = cluster, questions
        self.closed = False

    def start(self) -> None:
        """Nothing to start: the cluster's workers are running."""

    def grade(self, job: str | os.PathLike, timeout: float) -> str:
        """Grade ``job`` on the cluster: :data:`DONE` with ``result.json`` written,
        :data:`OVERRAN` when it ran past ``timeout``, :data:`NO_RESULT` when it left
        none or killed worker after worker (Dask's ``KilledWorker``).

        Raises
        ------
        RuntimeError
            If the scheduler is lost: the run stops, keeping what it recorded.
        """
        from distributed import KilledWorker

        if self.closed:
            return NO_RESULT
        job = Path(job)
        files = pack(job)
        files[JUDGE_QUESTIONS] = self.questions.read_bytes()
        future = self.cluster.client.submit(grade_job, files, timeout, key=task_key(files), pure=False)
        try:
            answer = future.result()
        except KilledWorker as error:  # the task killed worker after worker: this student alone is not graded
            (job / "worker.log").write_text(f"the cluster gave no result: {type(error).__name__}: {error}\n")
            return NO_RESULT
        except Exception as error:
            if self.closed:  # the run is stopping: its connection went first
                return NO_RESULT
            raise RuntimeError(f"the Dask scheduler was lost ({type(error).__name__}: {error}): stopped; what was recorded is kept, and the same command grades the rest") from None
        finally:
            future.release()
        (job / "worker.log").write_text(f"graded on {answer['host']}\n{answer['log']}")
        if answer["result"] is not None:
            (job / "result.json").write_text(answer["result"])
        return answer["outcome"]

    def stop(self, kill: bool = False) -> None:
        """Nothing to stop here: the driver's :class:`Cluster` closes the connection."""
