"""The grader's sandbox (:mod:`poolkit.grader.sandbox`), from outside: each test runs a
small program through ``sandbox.command(...)`` with ``subprocess`` and checks what it
could do inside, or what it left behind.

The isolation tests need bubblewrap (``make test`` installs it), the memory and
process limits a cgroup (root, and cgroup v2 or v1's memory and pids, as the
course's machines have). Where either is missing they fail (:func:`sandbox.mode`
says what is missing): a machine without them does not give the
guarantees the README states, and a skipped test would hide that.
"""

import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from poolkit.grader import notebooks, sandbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path):
    """The sandbox's writable folder; its cgroup, and the folder, are removed after the test."""
    path = tmp_path / "sandbox"
    path.mkdir()
    yield path
    sandbox.cleanup(path)
    # rm, not shutil.rmtree: a tree a failing test left behind may be deeper than Python's stack.
    subprocess.run(["rm", "-rf", str(path)], check=True)


def environment(**more):
    return {"PATH": os.environ["PATH"], **more}


#: ``TRIES`` in a snippet for :func:`run`: what an action on a file gives, "done" or its error.
TRIES = """def tries(action):
    try:
        action()
        return "done"
    except OSError as error:
        return type(error).__name__
"""


def run(folder, code, *, memory=1 << 30, env=None, timeout=60, **options):
    """Run the Python ``code`` in the sandbox of ``folder``; its output as JSON where it prints some."""
    prefix = sandbox.command(folder, memory, **options)
    result = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code).replace("TRIES\n", TRIES)], capture_output=True, text=True, env=env or environment(), cwd=folder, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cgroup_folders(folder):
    return list(dict.fromkeys(sandbox._cgroups(folder)[1].values()))


def test_mode_names_the_layers_in_force():
    line = sandbox.mode()
    print(line)  # pytest -s shows it
    assert ("bubblewrap (pid/net/ipc/uts namespaces)" in line) == sandbox.isolated()
    assert (f"Landlock ABI {sandbox.landlock_abi()}" in line) == (sandbox.landlock_abi() > 0)
    assert "per-process limits" in line and "\n" not in line


def test_it_sees_only_its_own_processes_and_no_network(folder):
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen()
    port = host.getsockname()[1]
    with open("/proc/net/tcp") as tcp:  # the host's table does show the port
        assert f":{port:04X} " in tcp.read()
    try:
        seen = run(
            folder,
            f"""
            import json, os, socket
            pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
            cmdlines = [open(f"/proc/{{pid}}/cmdline").read() for pid in pids]
            tcp = open("/proc/net/tcp").read().splitlines()[1:]
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                connected = "connected"
            except OSError as error:
                connected = type(error).__name__
            print(json.dumps({{"pids": pids, "me": os.getpid(), "cmdlines": cmdlines, "tcp": tcp, "connect": connected}}))
            """,
        )
    finally:
        host.close()
    assert seen["pids"] == [1, seen["me"]]  # bubblewrap's init and itself
    with open("/proc/self/cmdline") as own:  # this test process's, which it would see on the host
        assert own.read() not in seen["cmdlines"]
    assert seen["cmdlines"][0].startswith(sandbox._bubblewrap()[0])
    assert seen["tcp"] == []
    assert seen["connect"] == "ConnectionRefusedError"


def test_dev_holds_only_null_zero_and_urandom(folder):
    seen = run(
        folder,
        """
        import json, os
        open("/dev/null", "w").write("x")
        def opens(path, mode="rb"):
            try:
                open(path, mode).close()
                return True
            except OSError:
                return False
        print(json.dumps({"dev": sorted(os.listdir("/dev")), "zero": open("/dev/zero", "rb").read(4).hex(), "random": len(open("/dev/urandom", "rb").read(8)),
                          "tty": opens("/dev/tty", "r+b"), "pts": os.path.exists("/dev/pts"), "write zero": opens("/dev/zero", "wb"), "make": opens("/dev/mine", "wb")}))
        """,
    )
    assert seen["dev"] == ["null", "urandom", "zero"]
    assert seen["zero"] == "00000000" and seen["random"] == 8
    assert not seen["tty"] and not seen["pts"] and not seen["write zero"] and not seen["make"]


def test_tmp_is_private_and_files_outside_cannot_be_written_or_read(folder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the gradebook")
    name = f"/tmp/poolkit-test-{os.getpid()}-{time.time_ns()}"
    seen = run(
        folder,
        f"""
        import json
        def tries(path, mode):
            try:
                with open(path, mode) as file:
                    file.write("x") if "w" in mode or "a" in mode else file.read()
                return "done"
            except OSError as error:
                return type(error).__name__
        print(json.dumps({{"tmp": tries("{name}", "w"), "own": tries("mine.txt", "w"), "above": tries("../above.txt", "w"), "outside": tries("{outside}/new.txt", "w"), "etc": tries("/etc/poolkit-test", "w"),
                          "secret": tries("{outside}/secret.txt", "r"), "solutions": tries("{ROOT}/solutions/questions.py", "r"), "venv": tries("{sys.executable}", "rb")}}))
        """,
    )
    assert seen["tmp"] == "done" and not os.path.exists(name)  # written to its own /tmp
    assert seen["own"] == "done" and (folder / "mine.txt").read_text() == "x"
    assert seen["above"] != "done"  # the folder above its own, here in /tmp, neither on the host nor in its own /tmp
    assert seen["outside"] != "done" and not (outside / "new.txt").exists()
    assert seen["etc"] != "done" and not os.path.exists("/etc/poolkit-test")
    assert seen["secret"] != "done" and seen["solutions"] != "done"
    assert seen["venv"] == "done"  # Python's installation is readable


def test_the_environment_is_exactly_the_callers(folder, monkeypatch):
    monkeypatch.setenv("POOLKIT_GRADER_SECRET", "of-the-graders-own")
    passed = environment(HOME=str(folder), ANSWER="42")  # no LANG: Python's stages would add LC_CTYPE if they leaked theirs
    result = subprocess.run([*sandbox.command(folder, 1 << 30), "env", "-0"], capture_output=True, env=passed, cwd=folder, timeout=60)
    assert result.returncode == 0, result.stderr
    inside = dict(item.decode().partition("=")[::2] for item in result.stdout.split(b"\0") if item)
    assert inside == passed


def test_a_daemon_dies_with_the_command_and_cleanup_removes_its_cgroup(folder):
    daemon = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # the daemon: a heartbeat every tenth of a second
                while True:
                    with open("beat", "a") as beat:
                        beat.write(".")
                    time.sleep(0.1)
            os._exit(0)
        time.sleep(0.5)
        """
    process = subprocess.Popen([*sandbox.command(folder, 1 << 30), sys.executable, "-c", textwrap.dedent(daemon)], env=environment(), cwd=folder)
    deadline = time.monotonic() + 30
    while not (folder / "beat").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (folder / "beat").exists()
    groups = cgroup_folders(folder) if sandbox.cgroups() else []
    for group in groups:  # bubblewrap, the command and the daemon are in its cgroup
        assert len(sandbox._processes(group)) >= 3
    assert process.wait(timeout=30) == 0
    beats = (folder / "beat").stat().st_size
    time.sleep(0.5)
    assert (folder / "beat").stat().st_size == beats  # no beat since the command ended
    for group in groups:
        assert os.path.isdir(group) and sandbox._processes(group) == []
    if groups:
        used = sandbox.usage(folder)  # what the cgroup counted
        assert used["memory_peak"] > 1 << 20 and used["cpu_seconds"] > 0
    sandbox.cleanup(folder)
    assert not any(os.path.exists(group) for group in groups)
    sandbox.cleanup(folder)  # nothing left: nothing to do


def hog(size_mb, children):
    """Code that starts ``children`` processes each holding ``size_mb`` MB (touched), together."""
    return f"""
        import json, subprocess, sys
        hold = "import time; block = bytearray({size_mb} << 20); time.sleep(2)"
        children = [subprocess.Popen([sys.executable, "-c", hold], stderr=subprocess.PIPE) for _ in range({children})]
        print(json.dumps([(child.wait(), "MemoryError" in child.stderr.read().decode()) for child in children]))
        """


def test_memory_is_capped_for_all_its_processes_together(folder):
    three = run(folder, hog(600, 3), memory=1 << 30)
    assert any(code != 0 for code, _ in three), three  # 1.8 GB do not fit in 1 GiB: killed (-9) or MemoryError
    assert all(code == 0 for code, _ in run(folder, hog(300, 1), memory=1 << 30))


def test_a_fork_bomb_is_stopped_by_the_process_limit(folder):
    bomb = """
        import os, time
        start, refused = time.monotonic(), 0
        while time.monotonic() - start < 2:
            try:
                if os.fork() == 0:
                    while True:  # every child forks forever too
                        try:
                            os.fork()
                        except OSError:
                            time.sleep(0.01)
            except OSError:
                refused += 1
                time.sleep(0.01)
        print(refused)
        """
    process = subprocess.Popen([*sandbox.command(folder, 1 << 30), sys.executable, "-c", textwrap.dedent(bomb)], env=environment(), cwd=folder, stdout=subprocess.PIPE, text=True)
    pids = cgroup_folders(folder)[0]  # each of its cgroup folders lists all its processes
    most = 0
    while process.poll() is None:
        most = max(most, len(sandbox._processes(pids)))
        time.sleep(0.05)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and int(out) > 0  # forks were refused
    assert 20 < most <= sandbox.PIDS
    time.sleep(0.2)
    assert sandbox._processes(pids) == []  # the whole bomb died with the command


def test_hidden_folders_are_empty_and_bound_files_read_only(folder, tmp_path):
    (tmp_path / "data.txt").write_text("bound in")
    package = str(ROOT / "poolkit")
    seen = run(
        folder,
        f"""
        import json
        try:
            open("/tmp/poolkit-bound/data.txt", "a").write("changed")
            written = True
        except OSError:
            written = False
        import os
        print(json.dumps({{"hidden": os.listdir("{package}"), "bound": open("/tmp/poolkit-bound/data.txt").read(), "written": written}}))
        """,
        hide=[package],
        bind=[(str(tmp_path / "data.txt"), "/tmp/poolkit-bound/data.txt")],
    )
    assert seen == {"hidden": [], "bound": "bound in", "written": False}
    assert (tmp_path / "data.txt").read_text() == "bound in"


def host_files(folder):
    """Everything beneath ``folder`` on the host (its path relative to it), and the bytes of its files."""
    found, size, left = [], 0, [str(folder)]
    while left:  # not os.walk: a tree may be deeper than Python's stack
        with os.scandir(left.pop()) as entries:
            for entry in entries:
                found.append(os.path.relpath(entry.path, folder))
                if entry.is_dir(follow_symlinks=False):
                    left.append(entry.path)
                else:
                    size += entry.stat(follow_symlinks=False).st_size
    return sorted(found), size


def test_with_a_scratch_size_nothing_written_inside_reaches_the_host(folder):
    seen = run(
        folder,
        """
        import json, os
        open("mine.txt", "w").write("x")
        mine = open("mine.txt").read()
        os.mkdir("many")
        for number in range(10_000):
            with open(f"many/{number}", "w") as file:
                file.write("x")
        many = len(os.listdir("many"))
        deep = 0
        for _ in range(3_000):  # deeper than a path may be long: one folder at a time
            os.mkdir("d")
            os.chdir("d")
            deep += 1
        print(json.dumps({"mine": mine, "many": many, "deep": deep}))
        """,
        scratch_size=128 << 20,
    )
    assert seen == {"mine": "x", "many": 10_000, "deep": 3_000}  # all of it was there inside
    assert host_files(folder) == ([], 0)


def test_writing_past_the_scratch_size_fails_with_enospc_and_the_host_disk_does_not_grow(folder):
    free = shutil.disk_usage(folder).free
    seen = run(
        folder,
        """
        import json
        written, error = 0, None
        try:
            for number in range(64):  # 256 MiB in files of 4 MiB: far more than the tmpfs holds
                with open(f"big-{number}", "wb") as file:
                    for _ in range(4):
                        file.write(bytes(1 << 20))
                        file.flush()
                        written += 1 << 20
        except OSError as exc:
            error = [exc.errno, exc.strerror]
        print(json.dumps({"written": written, "error": error}))
        """,
        scratch_size=16 << 20,
    )
    assert seen["error"] == [errno.ENOSPC, "No space left on device"]
    assert 8 << 20 <= seen["written"] <= 16 << 20
    assert host_files(folder) == ([], 0)
    assert free - shutil.disk_usage(folder).free < 128 << 20  # others' tests may write meanwhile, not 256 MiB


def test_the_hosts_files_are_seeded_read_only_and_its_folders_writable(folder):
    (folder / "questions.py").write_text("QUESTIONS = 1\n")
    (folder / ".tmpdir").mkdir()
    (folder / "data" / "nested").mkdir(parents=True)
    (folder / "data" / "nested" / "table.csv").write_text("a,b\n")
    seen = run(
        folder,
        """
        import json, os
        TRIES
        print(json.dumps({"read": open("questions.py").read(), "nested": open("data/nested/table.csv").read(), "tmpdir": os.listdir(".tmpdir"),
                          "append": tries(lambda: open("questions.py", "a").write("x")), "replace": tries(lambda: open("questions.py", "w")),
                          "remove": tries(lambda: os.remove("questions.py")), "rename": tries(lambda: os.rename("data/nested/table.csv", "data/t.csv")),
                          "in tmpdir": tries(lambda: open(".tmpdir/new.txt", "w").write("x")), "beside": tries(lambda: open("data/nested/new.txt", "w").write("x")),
                          "in folder": tries(lambda: os.mkdir(".tmpdir/more"))}))
        """,
        scratch_size=16 << 20,
    )
    assert seen["read"] == "QUESTIONS = 1\n" and seen["nested"] == "a,b\n" and seen["tmpdir"] == []
    assert seen["append"] != "done" and seen["replace"] != "done" and seen["remove"] != "done" and seen["rename"] != "done"
    assert seen["in tmpdir"] == seen["beside"] == seen["in folder"] == "done"
    assert host_files(folder)[0] == [".tmpdir", "data", "data/nested", "data/nested/table.csv", "questions.py"]  # as it was
    assert (folder / "questions.py").read_text() == "QUESTIONS = 1\n"


def test_in_the_sockets_folder_only_unix_sockets_can_be_made(folder, tmp_path):
    sockets = tmp_path / "kernel"
    sockets.mkdir()
    (sockets / "connection.json").write_text("{}")
    seen = run(
        folder,
        f"""
        import json, os, socket
        TRIES
        def listen(name):
            server = socket.socket(socket.AF_UNIX)
            server.bind(name)
            server.listen()
            client = socket.socket(socket.AF_UNIX)
            client.connect(name)  # the socket works, through a name relative to the working directory
            client.close()
            server.close()
        print(json.dumps({{"socket": tries(lambda: listen("{os.path.relpath(sockets, folder)}/kept")), "other": tries(lambda: listen("{sockets}/removed")),
                          "remove": tries(lambda: os.remove("{sockets}/removed")), "read": open("{sockets}/connection.json").read(),
                          "file": tries(lambda: open("{sockets}/data.bin", "wb")), "folder": tries(lambda: os.mkdir("{sockets}/folder")),
                          "fifo": tries(lambda: os.mkfifo("{sockets}/fifo")), "link": tries(lambda: os.symlink("/etc", "{sockets}/link")),
                          "write": tries(lambda: open("{sockets}/connection.json", "a").write("x")), "truncate": tries(lambda: os.truncate("{sockets}/connection.json", 0))}}))
        """,
        scratch_size=16 << 20,
        sockets=str(sockets),
    )
    assert seen["socket"] == seen["other"] == seen["remove"] == "done" and seen["read"] == "{}"
    assert seen["file"] == seen["folder"] == seen["fifo"] == seen["link"] == seen["write"] == seen["truncate"] == "PermissionError"
    assert sorted(os.listdir(sockets)) == ["connection.json", "kept"] and stat.S_ISSOCK(os.lstat(sockets / "kept").st_mode)
    assert (sockets / "connection.json").read_text() == "{}"


def test_the_sockets_folder_must_lie_outside_the_writable_one(folder, tmp_path):
    (folder / "kernel").mkdir()
    for sockets in (folder / "kernel", folder, tmp_path, tmp_path / "missing"):
        with pytest.raises(ValueError):
            sandbox.command(folder, 1 << 30, sockets=str(sockets))
    with pytest.raises(ValueError):
        sandbox.command(folder, 1 << 30, scratch_size=0)


def test_a_kernel_runs_a_notebook_through_unix_sockets_in_its_folder(tmp_path):
    # A folder whose path is too long for a unix socket's (107 bytes), as a grading run's can be.
    folder = tmp_path / ("a-student-with-a-long-name-" * 3) / "scratch"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import json, os\nfrom ipykernel.connect import get_connection_file\nx = 21\nconnection = get_connection_file()"),
        nbformat.v4.new_code_cell("print(json.dumps([connection, json.load(open(connection))['transport'], sorted(os.listdir('.kernel')), os.getppid()]))\nx * 2"),
    ]
    env = environment(HOME=str(folder), JUPYTER_RUNTIME_DIR=str(folder / ".runtime"), MALLOC_ARENA_MAX="2")
    here = os.getcwd()
    try:
        graded, events = notebooks.execute(nb, folder, timeout=60, prefix=sandbox.command(folder, 2 << 30), env=env)
    finally:
        sandbox.cleanup(folder)
    assert events == [] and os.getcwd() == here
    connection, transport, files, parent = json.loads(graded.cells[1].outputs[0]["text"])
    assert len(str(folder / ".kernel" / "12345678-1")) > 107
    assert Path(connection).parent == folder / ".kernel" and transport == "ipc" and parent == 1
    name = Path(connection).stem
    assert files == sorted([f"{name}.json", *(f"{name}-{port}" for port in range(1, 6))])  # its connection file and 5 sockets
    assert graded.cells[1].outputs[1]["data"]["text/plain"] == "42"
    assert os.listdir(folder / ".kernel") == []  # they went with the kernel


def test_a_kernel_in_a_scratch_tmpfs_runs_a_notebook_through_sockets_beside_it(tmp_path):
    # Both folders' paths too long for a unix socket's (107 bytes), as a grading run's can be.
    job = tmp_path / ("a-student-with-a-long-name-" * 3)
    folder, sockets = job / "scratch", job / "kernel"
    (folder / ".ipythondir").mkdir(parents=True)
    sockets.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import json, os\nfrom ipykernel.connect import get_connection_file\nconnection = get_connection_file()\n"
            "open('notes.txt', 'w').write('x' * 1000)\nos.makedirs('results/a/b', exist_ok=True)\nopen('results/a/b/out.npy', 'wb').write(bytes(1 << 20))"
        ),
        nbformat.v4.new_code_cell(f"print(json.dumps([connection, sorted(os.listdir({str(sockets)!r})), sorted(os.listdir('.')), os.getppid()]))\n21 * 2"),
        nbformat.v4.new_code_cell("os._exit(1)  # its replacement runs in a fresh tmpfs, and reaches its own sockets"),
    ]
    env = environment(HOME=str(folder), IPYTHONDIR=str(folder / ".ipythondir"), JUPYTER_RUNTIME_DIR=str(folder / ".runtime"), MALLOC_ARENA_MAX="2")
    here = os.getcwd()
    try:
        prefix = sandbox.command(folder, 2 << 30, scratch_size=64 << 20, sockets=sockets)
        graded, events = notebooks.execute(nb, folder, timeout=60, prefix=prefix, env=env, sockets=sockets)
    finally:
        sandbox.cleanup(folder)
    assert events == [notebooks.Event(notebooks.DIED, 2)] and os.getcwd() == here
    connection, files, written, parent = json.loads(graded.cells[1].outputs[0]["text"])
    assert len(str(sockets / "12345678-1")) > 107 and len(str(folder / "12345678-1")) > 107
    assert Path(connection).parent == sockets and parent == 1
    name = Path(connection).stem
    assert files == sorted([f"{name}.json", *(f"{name}-{port}" for port in range(1, 6))])  # its connection file and 5 sockets
    assert written == [".ipythondir", "notes.txt", "results"]
    assert graded.cells[1].outputs[1]["data"]["text/plain"] == "42"
    assert host_files(folder) == ([".ipythondir"], 0)  # the notebook's writes went with its tmpfs
    assert os.listdir(sockets) == []  # the sockets went with the kernels


def test_without_bubblewrap_the_prefix_still_applies_landlock_and_the_limits(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "_bubblewrap", lambda: ("", "switched off by the test"))
    assert not sandbox.isolated() and "no bubblewrap: switched off by the test" in sandbox.mode()
    prefix = sandbox.command(folder, 1 << 30, hide=["/nowhere"], bind=[("/etc/hostname", "/nowhere/hostname")], scratch_size=1 << 20)
    assert not any(os.path.basename(part) == "bwrap" for part in prefix) and "--tmpfs" not in prefix
    seen = run(folder, "import json, resource; print(json.dumps(resource.getrlimit(resource.RLIMIT_AS)))", memory=1 << 30)
    assert seen == [1 << 30, 1 << 30]
    sockets = tmp_path / "kernel"
    sockets.mkdir()
    # scratch_size is not done: the host's folder is written.
    assert run(folder, f"import socket; socket.socket(socket.AF_UNIX).bind('{sockets}/s'); open('mine.txt', 'w').write('x'); print(1)", sockets=str(sockets), scratch_size=1 << 20) == 1
    assert stat.S_ISSOCK(os.lstat(sockets / "s").st_mode) and (folder / "mine.txt").read_text() == "x"
    if sandbox.landlock_abi():
        with pytest.raises(AssertionError, match="PermissionError"):
            run(folder, f"open('{tmp_path}/outside.txt', 'w')")
        with pytest.raises(AssertionError, match="PermissionError"):
            run(folder, f"open('{sockets}/data.bin', 'w')", sockets=str(sockets))
