"""Warm sandboxes (:mod:`poolkit.grader.zygote`), from outside: a zygote started as
the grader starts one, and children asked of it through its client, each a small
program that tries what a student's kernel might, one after another in the same
zygote, as the submissions of a run are.

They need what the zygote needs (bubblewrap and Landlock ABI 6: ``make test``
installs bubblewrap, and the course's machines run Linux 6.12 or later); where
that is missing they fail, as the sandbox's tests do, rather than skip.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import nbformat
import pytest
from test_autograde import MAX_SCORE, WRONG, grade, pool2d_source, submission
from test_sandbox import TRIES

from poolkit.grader import sandbox, zygote

MARKER = "poolkit-zygote-survivor"  # in the command line of what a child leaves running


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    assert zygote.available(), f"no warm sandboxes here: {sandbox.mode()}"
    handle = zygote.Warm(tmp_path_factory.mktemp("zygote") / "warm", 1 << 30, 64 << 20, {"PATH": os.environ["PATH"]}, ("numpy",))
    handle.start()
    yield handle
    handle.stop()


def ask(warm, tmp_path, code, timeout=60, **popen):
    """Have ``warm`` run the Python ``code`` (as ``probe.py``, seeded into its scratch);
    a running client with ``popen`` options, else the finished one's result."""
    seed = tmp_path / f"seed-{time.monotonic_ns()}"
    seed.mkdir()
    (seed / "probe.py").write_text(textwrap.dedent(code))
    env = {"PATH": os.environ["PATH"], "KERNEL_SOCKETS": warm.kernel_sockets, "CONTROL": os.path.relpath(warm.control, warm.scratch), "MARKER": MARKER}
    command = [*warm.client(seed), sys.executable, "-I", "-B", "probe.py"]
    if popen:
        return subprocess.Popen(command, cwd=warm.scratch, env=env, **popen)
    return subprocess.run(command, cwd=warm.scratch, env=env, capture_output=True, text=True, timeout=timeout)


def answer(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def survivors():
    listing = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if MARKER in line and "ps -eo" not in line]


LEAVES_EVERYTHING = """
import ctypes, json, os, socket, sys
open("left-in-scratch", "w").write("for the next student")
os.mkdir("left-folder")
open("/tmp/left-in-tmp", "w").write("for the next student")
socket.socket(socket.AF_UNIX).bind(os.path.join(os.environ["KERNEL_SOCKETS"], "left.sock"))
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0x5EED, 4096, 0o1000 | 0o600)  # IPC_CREAT: System V memory outlives its process
if os.fork() == 0:  # a daemon: double fork, a session of its own
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", os.environ["MARKER"]])
    os._exit(0)
print(json.dumps({"segment": segment, "seeded": os.path.exists("probe.py")}))
"""

FINDS_NOTHING = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
running = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        running.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
    except OSError:
        pass
print(json.dumps({
    "scratch": sorted(os.listdir(".")),
    "tmp": sorted(os.listdir("/tmp")),
    "sockets": sorted(os.listdir(os.environ["KERNEL_SOCKETS"])),
    "segment": libc.shmget(0x5EED, 0, 0),
    "daemon": [line for line in running if os.environ["MARKER"] in line],
}))
"""


def test_nothing_one_child_leaves_is_there_for_the_next(warm, tmp_path):
    # What a child finds before any other left something: in /tmp only the read-only
    # folders bound there (those that lead to the zygote's own, a clone of the course in /tmp).
    before = answer(ask(warm, tmp_path, FINDS_NOTHING))
    assert before["scratch"] == ["probe.py"] and before["sockets"] == [] and before["segment"] == -1 and before["daemon"] == []
    left = answer(ask(warm, tmp_path, LEAVES_EVERYTHING))
    assert left["seeded"] and left["segment"] >= 0
    assert answer(ask(warm, tmp_path, FINDS_NOTHING)) == before
    assert not survivors()


REACHES_FOR_THE_ZYGOTE = """
import base64, json, os, signal, socket
TRIES
signals = {pid: tries(lambda: os.kill(int(pid), signal.SIGKILL)) for pid in filter(str.isdigit, os.listdir("/proc")) if int(pid) != os.getpid()}
control = os.path.dirname(os.environ["CONTROL"])
# A request of its own, as the grader's client sends one: the zygote is busy with this child, then refuses it.
asker = socket.socket(socket.AF_UNIX)
asker.connect(os.environ["CONTROL"])
granted = base64.b64encode(b"print('GRANTED')").decode()
request = json.dumps({"argv": ["python", "granted.py"], "env": {}, "files": {"granted.py": granted}}).encode()
socket.send_fds(asker, [len(request).to_bytes(4, "big") + request], [0, 1, 2])
if os.fork() == 0:  # keep the connection open past this child's end
    os.setsid()
    signal.pause()
print(json.dumps({
    "signals": sorted(set(signals.values())),
    "writes_control": tries(lambda: open(os.path.join(control, "planted"), "w")),
    "removes_control": tries(lambda: os.unlink(os.environ["CONTROL"])),
    "binds_tcp": tries(lambda: socket.create_server(("127.0.0.1", 0))),
    "connects_tcp": tries(lambda: socket.create_connection(("127.0.0.1", 9), timeout=1)),
}))
"""



def test_a_child_cannot_signal_ask_or_replace_its_zygote_nor_use_tcp(warm, tmp_path):
    result = ask(warm, tmp_path, REACHES_FOR_THE_ZYGOTE.replace("TRIES\n", TRIES))
    found = answer(result)
    assert "GRANTED" not in result.stdout  # its request, taken once it had ended, would have printed there
    assert found["signals"] == ["PermissionError"]  # the zygote, bubblewrap's init and the stages: none of its domain
    assert found["writes_control"] == found["removes_control"] == "PermissionError"
    assert found["binds_tcp"] == found["connects_tcp"] == "PermissionError"  # Landlock's, not only an empty network
    assert warm.running()
    after = answer(ask(warm, tmp_path, FINDS_NOTHING))
    assert after["scratch"] == ["probe.py"]
    assert os.listdir(os.path.dirname(warm.control)) == [zygote.SOCKET_NAME]


def test_the_client_passes_on_exit_status_and_signals_and_its_death_ends_the_child(warm, tmp_path):
    assert ask(warm, tmp_path, "import sys; sys.exit(3)").returncode == 3
    assert ask(warm, tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)").returncode == -signal.SIGSEGV
    sleeper = "import subprocess, sys, os, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', os.environ['MARKER']])\nprint('started', flush=True)\ntime.sleep(600)\n"
    for ending in (signal.SIGTERM, signal.SIGKILL):
        client = ask(warm, tmp_path, sleeper, stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == "started"
        assert survivors(), subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
        client.send_signal(ending)
        assert client.wait(30) == -ending
        client.stdout.close()
        # One child at a time: this one answers only once the last is gone, with all it started.
        assert answer(ask(warm, tmp_path, FINDS_NOTHING, timeout=30))["daemon"] == []
        assert not survivors()


def test_warm_and_cold_kernels_grade_alike(tmp_path):
    students = {
        "correct": submission(pool2d_source()),
        "correct_mxnet": submission(pool2d_source("mxnet"), "mxnet"),
        "blank": submission(),
        "partial": submission(pool2d_source(avg="window.max()")),
        "exits": submission(pool2d_source(before_loop="import os\n    if mode == 'avg': os._exit(1)")),
        "wrong": submission(WRONG),
        # A file left in the kernel's folder for the re-run, and for the next student's kernel.
        "leaves_files": submission(pool2d_source() + "\nopen('pool2d_answers.py', 'w').write('X = 1')\nopen('/tmp/for_the_next', 'w').write('X = 1')\n"),
        "reads_leftovers": submission(pool2d_source() + "\nimport os\nprint('leftovers:', sorted(os.listdir('.')), sorted(os.listdir('/tmp')))\n"),
    }
    subs = tmp_path / "submissions"
    for name, nb in students.items():
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "pool2d.ipynb")
    runs = {}
    for kind, setting in (("warm", "1"), ("cold", "0")):
        out = tmp_path / kind
        result = grade(subs, out, "--workers", "1", env=dict(os.environ, POOLKIT_WARM=setting))
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("kernels: forked from warm sandboxes" if kind == "warm" else "kernels: started cold") in result.stderr
        runs[kind] = {row["student_id"]: (row["score"], row["flags"]) for row in csv.DictReader(open(out / "grades.csv"))}
        page = (out / "feedback" / "reads_leftovers" / "pool2d.html").read_text()
        assert "leftovers:" in page and "for_the_next" not in page and "pool2d_answers" not in page
    assert runs["warm"] == runs["cold"]
    assert sorted(runs["warm"]) == sorted(students)
    assert float(runs["warm"]["correct"][0]) == float(runs["warm"]["correct_mxnet"][0]) == MAX_SCORE
    assert float(runs["warm"]["blank"][0]) == 0 and 0 < float(runs["warm"]["partial"][0]) < MAX_SCORE
