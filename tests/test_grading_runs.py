"""``poolkit grade`` as instructors run it: learning-management systems' exports, runs
stopped by Ctrl-C, SIGTERM or SIGKILL and run again, two runs at once, a worker that
dies, and the budget and space each submission has. Each test runs the real command
(or, where the grader itself must fail, its ``main`` in-process) on the pool2d
assignment; the grades expected are those of the submissions' own code: a correct
loop earns every point, the release as handed out none.
"""

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

import nbformat
from test_autograde import MAX_SCORE, ROOT, TIMEOUT, grade, pool2d_source, submission

CORRECT = nbformat.writes(submission(pool2d_source()))
BLANK = nbformat.writes(submission())


def rows(out):
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def graded(out):
    """Student -> (score, flags) from ``grades.csv``."""
    return {student: (float(row["score"]), set(filter(None, row["flags"].split(";")))) for student, row in rows(out).items()}


def console_is_quiet(result):
    """No library's warning and no traceback reach the instructor's console."""
    text = result.stderr + result.stdout
    return "Warning" not in text and "Traceback" not in text


def test_a_moodle_export_is_graded_with_every_entry_accounted_for(tmp_path):
    archive, roster = tmp_path / "moodle.zip", tmp_path / "roster.csv"
    older, newer = (2026, 11, 20, 10, 0, 0), (2026, 11, 21, 9, 30, 0)
    entries = [
        ("José Núñez_101_assignsubmission_file_/pool2d.ipynb", CORRECT, newer),
        ("Ann Lee_102_assignsubmission_file_/draft/pool2d.ipynb", BLANK, older),  # a draft and a final
        ("Ann Lee_102_assignsubmission_file_/final/pool2d.ipynb", CORRECT, newer),
        ("Bo Chen_103_assignsubmission_file_/a/pool2d.ipynb", CORRECT, newer),  # two, and nothing says which
        ("Bo Chen_103_assignsubmission_file_/b/pool2d.ipynb", BLANK, newer),
        ("Cy Dee_104_assignsubmission_file_/pool2d.ipynb", BLANK, older),  # the same entry twice
        ("Cy Dee_104_assignsubmission_file_/pool2d.ipynb", CORRECT, newer),
        ("Dee Fox_105_assignsubmission_file_/notes.txt", "no notebook here", newer),
        ("-lead dash/pool2d.ipynb", CORRECT, newer),  # a plain folder whose name starts with "-"
        ("__MACOSX/._pool2d.ipynb", "a resource fork", newer),
        (".hidden/pool2d.ipynb", CORRECT, newer),
    ]
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as bundle:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is told to write
        for name, data, when in entries:
            bundle.writestr(zipfile.ZipInfo(name, date_time=when), data)
    roster.write_text("student_id,export_id,name\njnunez,101,José Núñez\nalee,102,Ann Lee\nghost,999,Gus Host\n", encoding="utf-8")
    result = grade(archive, tmp_path / "out", "--workers", "2", "--roster", str(roster))
    assert result.returncode == 0, result.stderr[-3000:]
    assert console_is_quiet(result), result.stderr[-3000:]
    found = graded(tmp_path / "out")
    assert found["jnunez"] == (MAX_SCORE, set())
    assert found["alee"] == (MAX_SCORE, {"chose-newest"})
    assert found["103"] == (0, {"ambiguous", "not-in-roster"})
    assert found["104"][0] == MAX_SCORE and {"duplicate-in-zip", "not-in-roster"} <= found["104"][1]
    assert found["105"] == (0, {"no-notebook", "not-in-roster"})
    assert found["-lead dash"] == (MAX_SCORE, {"not-in-roster"})
    assert found["ghost"] == (0, {"no-submission"})
    assert sorted(found) == sorted(["jnunez", "alee", "103", "104", "105", "-lead dash", "ghost"])
    assert rows(tmp_path / "out")["alee"]["origin"] == "Ann Lee_102_assignsubmission_file_/final/pool2d.ipynb"
    assert rows(tmp_path / "out")["jnunez"]["name"] == "José Núñez"
    report = (tmp_path / "out" / "report.txt").read_text(encoding="utf-8")
    assert "__MACOSX" in report and ".hidden" in report  # not graded, and said so
    assert "Bo Chen_103_assignsubmission_file_/a/pool2d.ipynb" in report and "Bo Chen_103_assignsubmission_file_/b/pool2d.ipynb" in report
    assert "7 students: 5 graded now" in result.stdout or "7 students: 7 graded now" in result.stdout, result.stdout


def test_a_canvas_flat_export_is_graded_and_a_stray_notebook_reported(tmp_path):
    subs = tmp_path / "canvas"
    subs.mkdir()
    (subs / "leeann_201_9001_pool2d.ipynb").write_text(CORRECT)
    (subs / "doejane_LATE_202_9002_pool2d-1.ipynb").write_text(CORRECT)  # late, and re-uploaded
    (subs / "stray.ipynb").write_text(CORRECT)
    result = grade(subs, tmp_path / "out", "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert graded(tmp_path / "out") == {"201": (MAX_SCORE, set()), "202": (MAX_SCORE, {"late"})}
    assert "stray.ipynb" in (tmp_path / "out" / "report.txt").read_text()
    assert "2 students: 2 graded now" in result.stdout and "1 entries of the export not graded" in result.stdout


class Run:
    """``poolkit grade`` in the background, in a session of its own (as at a terminal),
    its progress lines read as they come."""

    def __init__(self, subs, out, *options):
        command = [sys.executable, "-m", "poolkit.grader.cli", "grade", "pool2d", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--course", str(ROOT), "--workers", "1", *options]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.process.stderr.readline, "")), daemon=True)
        self.reader.start()

    def wait_for(self, text, seconds=300):
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines)[-3000:]
            assert time.monotonic() < deadline, "".join(self.lines)[-3000:]
            time.sleep(0.2)

    def finish(self):
        code = self.process.wait(timeout=120)
        self.reader.join(timeout=10)
        return code, "".join(self.lines) + self.process.stdout.read()


def processes_using(folder):
    """The processes with a file, or their working folder, beneath ``folder``."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/cwd")] + [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith(str(folder) + "/") for link in links):
            found.add(int(pid))
    return found


def gone(folder, seconds=30):
    deadline = time.monotonic() + seconds
    while processes_using(folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not processes_using(folder)


def test_a_run_stopped_by_ctrl_c_sigterm_or_sigkill_resumes_where_it_stopped(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    expected = {}
    for number in range(1, 7):
        (subs / f"s{number}").mkdir(parents=True)
        (subs / f"s{number}" / "pool2d.ipynb").write_text(CORRECT if number % 2 else BLANK)
        expected[f"s{number}"] = (MAX_SCORE if number % 2 else 0.0, set())
    # --keep-work keeps the job folders in out/: every process of the run then has its files there.
    stops = [("Ctrl-C", lambda run: os.killpg(run.process.pid, signal.SIGINT), 130), ("SIGTERM", lambda run: run.process.terminate(), 143)]
    for name, stop, code in stops:
        run = Run(subs, out, "--keep-work")
        run.wait_for("grading pool2d [")
        run.wait_for("] 1/")  # one student recorded by this run
        stop(run)
        returned, text = run.finish()
        assert returned == code and "interrupted" in text and "Traceback" not in text, (name, text[-3000:])
        assert gone(out), f"{name}: processes left: {processes_using(out)}"
        assert all(graded(out)[student] == expected[student] for student in graded(out)), graded(out)  # what was recorded is right
    recorded = len(graded(out))
    assert 2 <= recorded < 6
    killed = Run(subs, out, "--keep-work")
    killed.wait_for("grading pool2d [")
    # A second run on the same folder meanwhile refuses, and says why.
    second = grade(subs, out, "--workers", "1")
    assert second.returncode == 2 and "being graded by another poolkit grade" in second.stderr, second.stderr[-2000:]
    killed.process.kill()  # SIGKILL: no handler runs; its workers and kernels go with it
    killed.finish()
    assert gone(out), f"processes left after SIGKILL: {processes_using(out)}"
    final = grade(subs, out, "--workers", "1")
    assert final.returncode == 0, final.stderr[-3000:]
    kept = int(final.stdout.split(" kept from an earlier run")[0].rsplit(", ", 1)[1])
    assert kept >= recorded  # only what was missing was graded
    assert graded(out) == expected
    with sqlite3.connect(out / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == 6  # nobody twice
    # A student no longer in the submissions keeps the grade, with a note.
    (subs / "s6" / "pool2d.ipynb").unlink()
    (subs / "s6").rmdir()
    later = grade(subs, out, "--workers", "1")
    assert later.returncode == 0 and "1 graded earlier are not in these submissions" in later.stdout, later.stdout
    assert graded(out)["s6"] == (0.0, {"not-in-this-run"})


def test_a_submission_has_one_budget_and_its_files_stay_in_their_capped_space(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    writes = pool2d_source() + (
        "\ntry:\n    with open('big.bin', 'wb') as handle:\n        for _ in range(100):\n            handle.write(bytes(1 << 20))\n"
        "except OSError as error:\n    print('could not write:', error)\n"
        "import os\nhome = os.getcwd()\nfor _ in range(3000):\n    os.mkdir('deep')\n    os.chdir('deep')\nos.chdir(home)\n"
        "for number in range(10_000):\n    open(f'small-{number}', 'w').close()\n"
    )
    stalls = pool2d_source() + "\nimport os, signal, sys\nif sys.argv[0].endswith('rerun.py'):\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
    sleeps = submission(pool2d_source())
    for _ in range(6):  # each cell within --timeout, together past the budget
        cell = nbformat.v4.new_code_cell(f"import time\ntime.sleep({TIMEOUT - 1})")
        cell.pop("id")  # the release is nbformat 4.4, whose cells have no ids
        sleeps.cells.insert(1, cell)
    for name, nb in {"correct": submission(pool2d_source()), "fills_its_space": submission(writes), "stalls_its_rerun": submission(stalls), "sleeps": sleeps}.items():
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "pool2d.ipynb")
    result = grade(subs, out, "--workers", "2", "--budget", "30", "--scratch-mb", "32", "--keep-work")
    assert result.returncode == 0, result.stderr[-3000:]
    found = graded(out)
    assert found["correct"] == (MAX_SCORE, set())
    assert found["fills_its_space"] == (MAX_SCORE, {"scratch-full"})
    assert "time-budget" in found["stalls_its_rerun"][1] and found["stalls_its_rerun"][0] == 0
    assert "time-budget" in found["sleeps"][1]
    # What the submissions wrote went with their sandboxes: the job folders hold only what the grader put there.
    written = [path for path in (out / "work").rglob("*") if path.name in ("big.bin", "deep", "small-0")]
    assert written == []
    assert sum(path.stat().st_size for path in out.rglob("*") if path.is_file()) < 50 << 20


def test_a_worker_killed_mid_submission_costs_only_that_student_a_flagged_row(tmp_path, monkeypatch, capsys):
    from poolkit.grader import autograde, cli

    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in ("victim", "other"):
        (subs / student).mkdir(parents=True)
        nbformat.write(submission(pool2d_source() + f"\n# {student}\n"), subs / student / "pool2d.ipynb")
    grade_job = autograde.Worker.grade

    def killed_on_the_victim(self, job, timeout):
        if "# victim" in (Path(job) / "submitted.ipynb").read_text():
            process = self.process or (self.start() or self.process)
            threading.Timer(0.5, process.kill).start()  # the job cannot be done by then: its kernel is still starting
        return grade_job(self, job, timeout)

    monkeypatch.setattr(autograde.Worker, "grade", killed_on_the_victim)
    arguments = ["grade", "pool2d", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--course", str(ROOT), "--workers", "1"]
    assert cli.main(arguments) == 1  # a grader error: not a clean run
    assert graded(out) == {"victim": (0.0, {"grader-error"}), "other": (MAX_SCORE, set())}
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "victim" in errors[0] and "the worker left no result" in errors[0]
    assert (out / "logs" / "victim.worker.log").is_file()
    monkeypatch.setattr(autograde.Worker, "grade", grade_job)
    assert cli.main(arguments) == 0  # the next run grades the victim again, and keeps the other
    assert graded(out) == {"victim": (MAX_SCORE, set()), "other": (MAX_SCORE, set())}
    assert "1 graded now, 1 kept from an earlier run" in capsys.readouterr().out


def test_a_gradebook_that_cannot_be_written_stops_the_run_in_one_line_and_the_rerun_grades_the_rest(tmp_path, monkeypatch, capsys):
    """The disk of --out full (made here, in-process): no traceback, no student lost."""
    from poolkit.grader import autograde, cli

    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in ("a", "b", "c"):
        (subs / student).mkdir(parents=True)
        (subs / student / "pool2d.ipynb").write_text(CORRECT)
    save = autograde._save_result

    def full_after_the_first(out, assignment, submission, flags):
        if submission.student != "a":
            raise sqlite3.OperationalError("database or disk is full")
        return save(out, assignment, submission, flags)

    monkeypatch.setattr(autograde, "_save_result", full_after_the_first)
    arguments = ["grade", "pool2d", str(subs), "--out", str(out), "--timeout", str(TIMEOUT), "--course", str(ROOT), "--workers", "1"]
    assert cli.main(arguments) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "grading b failed" in errors[0] and "cannot record b" in errors[1] and "the same command grades the rest" in errors[1]
    monkeypatch.setattr(autograde, "_save_result", save)
    assert cli.main(arguments) == 0
    assert graded(out) == {student: (MAX_SCORE, set()) for student in ("a", "b", "c")}
    assert "2 graded now, 1 kept from an earlier run" in capsys.readouterr().out
