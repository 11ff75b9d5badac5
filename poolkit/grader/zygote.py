"""Warm sandboxes: the frameworks imported once per worker, not twice per submission.

Most of a submission's cost is Python importing PyTorch or MXNet: once in its
kernel, once more in its re-run (:mod:`poolkit.grader.rerun`), about two CPU
seconds each. A *zygote* is a process that imports them once and then forks a
fresh copy of itself for every kernel and every re-run, which starts with the
frameworks already loaded.

Where it runs
-------------
A zygote is started through :func:`poolkit.grader.sandbox.command` like any
kernel (bubblewrap's namespaces, the cgroup, the sandbox's mounts), but without
Landlock and the limits: it runs no student code, only this file, and restricts
each child before the child runs anything else. Each child, in this order:

1. gets the stdin, stdout and stderr of the process that asked for it (the
   *client*, below) and no other file of the zygote's;
2. becomes the one process of a new session, first in line for the OOM killer;
3. has Landlock's rules of a sandbox of its own (:func:`sandbox.restrict`): it
   changes files only in the zygote's ``scratch`` folder (and ``/tmp``), reads
   only that, the system's folders, Python and what the zygote was given, may
   make unix sockets only in ``sockets/kernel``, opens no TCP connection and
   binds no TCP port, and signals no process outside its own domain (so neither
   the zygote nor the client's side); and the per-process limits
   (:func:`sandbox.limit_resources`);
4. runs the client's command line in the copy of the interpreter
   (``python -m MODULE ...`` or ``python SCRIPT ...``), with the client's
   environment.

One child at a time: the zygote waits for it to end, or for its client to go,
then kills every process left in its PID namespace (a child's descendants
included, however they detached), removes the System V IPC objects they made,
and empties ``scratch``, ``/tmp`` and ``sockets/kernel``, so nothing of one
submission is there for the next. Only then does it take the next request. A
zygote holds no secret (no seed, no other student's notebook): a child that
reads all its memory learns only what every child has.

Where a sandbox would not isolate its processes (no bubblewrap, or Landlock
below ABI 6, which cannot scope signals), :func:`available` is False and every
kernel and re-run is started cold, as a process of its own.

The client
----------
``python zygote.py connect --seed FOLDER CONTROL -- python -m ... ARGS`` is a
stand-in for the command after ``--``: it sends its own stdin, stdout, stderr
and environment to the zygote listening at ``CONTROL``, with the files of
``FOLDER`` (the job's scratch folder as the grader prepared it: written into the
zygote's ``scratch`` first), passes on the signals it gets (SIGINT, SIGTERM),
and exits as the child did. Killing it (SIGKILL) ends the child. The zygote
takes a request only from a process outside its PID namespace (``SO_PEERCRED``
reports pid 0 for one), never from a child.

Only the standard library is imported at module level: the re-run's zygote
runs this file where the poolkit package is hidden.
"""

import argparse
import base64
import ctypes
import importlib
import importlib.util
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import time

_LENGTH = struct.Struct(">I")
MAX_REQUEST = 64 << 20  # bytes of one request (its seed files included)
#: The signals a client passes on to its child.
FORWARDED = (signal.SIGINT, signal.SIGTERM)
#: Where a zygote's listening socket and its kernels' sockets are, in its ``sockets`` folder.
CONTROL, KERNEL_SOCKETS = "control", "kernel"
SOCKET_NAME = "zygote.sock"
_IPC_RMID = 0
_PR_SET_PDEATHSIG = 1


def _send(sock, message, fds=()):
    data = json.dumps(message).encode()
    socket.send_fds(sock, [_LENGTH.pack(len(data)) + data], list(fds))


def _receive_exactly(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(sock):
    """One request: its JSON and the files it passed (at most three)."""
    data, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, 3)
    if len(data) < _LENGTH.size:
        data += _receive_exactly(sock, _LENGTH.size - len(data))
    (size,) = _LENGTH.unpack(data[: _LENGTH.size])
    if size > MAX_REQUEST:
        raise ValueError(f"a request of {size} bytes (at most {MAX_REQUEST})")
    return json.loads(_receive_exactly(sock, size)), fds


# --- the client: a stand-in for the kernel's or the re-run's command line ---------


def _seed_files(folder):
    """The folders and regular files beneath ``folder``, as ``{relative path: base64 or None}``
    (None for a folder); links and other files are left out, as the sandbox's seeding does."""
    found: dict[str, str | None] = {}
    for top, folders, files in os.walk(folder):
        for name in folders:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                found[os.path.relpath(path, folder)] = None
        for name in files:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as file:
                    found[os.path.relpath(path, folder)] = base64.b64encode(file.read()).decode()
    return found


def connect(control, seed, argv):
    """Have the zygote at ``control`` run ``argv`` with this process's stdin, stdout,
    stderr and environment, and exit as it did."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the grader gone, this goes, and the child with it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(control)
    except OSError as error:
        print(f"poolkit zygote: no zygote at {control}: {error}", file=sys.stderr)
        sys.exit(70)
    _send(sock, {"argv": argv, "env": dict(os.environ), "files": _seed_files(seed) if seed else {}}, fds=(0, 1, 2))
    for number in FORWARDED:
        signal.signal(number, lambda number, frame: sock.sendall(bytes([number])))
    reply = b""
    while True:
        try:
            chunk = sock.recv(64)
        except InterruptedError:
            continue
        if not chunk:
            break
        reply += chunk
    try:
        status = int(reply.decode())
    except ValueError:
        status = -int(signal.SIGKILL)  # the zygote went without a word
    if status < 0:  # ended by a signal: so is this stand-in, as a shell would see it
        if -status != signal.SIGKILL:  # whose handler cannot be set
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


# --- the zygote -------------------------------------------------------------------


def _load_sandbox():
    """The sandbox's own module, loaded by path (it is at :data:`sandbox.INNER_SCRIPT`
    inside bubblewrap, where poolkit's folder may be hidden)."""
    for path in ("/run/poolkit/sandbox.py", os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox.py")):
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("poolkit_sandbox", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError("the sandbox's module is not there")


def _others():
    """The processes of this PID namespace but this one and its init, zombies left out."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in (1, os.getpid()):
            try:
                with open(f"/proc/{name}/stat") as stat:
                    if stat.read().rpartition(")")[2].split()[0] != "Z":
                        found.append(int(name))
            except OSError:
                pass
    return found


def _kill_all():
    """Kill every process of the namespace but this one and init, and wait until they are gone."""
    deadline = time.monotonic() + 10
    while _others() and time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.005)
    while True:  # this process's own children (the one it forked) are reaped here
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break


def _remove_ipc():
    """Remove every System V shared memory segment, message queue and semaphore set of
    this IPC namespace (the sandbox's own): none outlives the child that made it."""
    libc = ctypes.CDLL(None, use_errno=True)
    removers = {
        "shm": lambda number: libc.shmctl(ctypes.c_int(number), ctypes.c_int(_IPC_RMID), None),
        "msg": lambda number: libc.msgctl(ctypes.c_int(number), ctypes.c_int(_IPC_RMID), None),
        "sem": lambda number: libc.semctl(ctypes.c_int(number), ctypes.c_int(0), ctypes.c_int(_IPC_RMID)),
    }
    for kind, remove in removers.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            remove(int(row.split()[1]))  # each table's second column is the object's id


def _empty(folder):
    """Remove everything beneath ``folder`` but mount points (the sandbox's, bound read-only)."""
    import shutil

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if os.path.ismount(entry.path):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _from_outside(conn):
    """Whether the process at the other end is outside this PID namespace (not a child)."""
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _, _ = struct.unpack("3i", credentials)
    return pid == 0


class Zygote:
    """The zygote's side: listen, fork a child per request, clean up after it."""

    def __init__(self, args, sandbox):
        self.args, self.sandbox = args, sandbox
        self.scratch, self.sockets = os.path.abspath(args.scratch), os.path.abspath(args.sockets)
        self.kernel_sockets = os.path.join(self.sockets, KERNEL_SOCKETS)

    def clean(self):
        _kill_all()
        _remove_ipc()
        _empty(self.scratch)
        _empty("/tmp")
        _empty(self.kernel_sockets)

    def seed(self, files):
        for name, data in sorted(files.items()):
            path = os.path.realpath(os.path.join(self.scratch, name))
            if os.path.commonpath([path, self.scratch]) != self.scratch:
                continue  # a name that leads out of scratch
            if data is None:
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as file:
                    file.write(base64.b64decode(data))

    def serve(self, listener):
        while True:
            conn, _ = listener.accept()
            with conn:
                if not _from_outside(conn):
                    continue
                try:
                    request, fds = _receive(conn)
                except (OSError, EOFError, ValueError):
                    continue
                if len(fds) != 3 or not isinstance(request.get("argv"), list):
                    for fd in fds:
                        os.close(fd)
                    continue
                try:
                    self.seed(request.get("files") or {})
                    pid = os.fork()
                    if pid == 0:
                        self.child(request, fds, [conn.fileno(), listener.fileno()])
                    for fd in fds:
                        os.close(fd)
                    status = self.supervise(conn, pid)
                    try:
                        conn.sendall(str(status).encode())
                    except OSError:
                        pass
                finally:
                    self.clean()

    def supervise(self, conn, pid):
        """Wait for the child to end (its status, as ``Popen.returncode`` gives it), passing
        on its client's signals; the client gone, the child is killed."""
        pidfd = os.pidfd_open(pid)
        try:
            with selectors.DefaultSelector() as waiting:
                waiting.register(conn, selectors.EVENT_READ)
                waiting.register(pidfd, selectors.EVENT_READ)
                while True:
                    ready = {key.fileobj for key, _ in waiting.select()}
                    if pidfd in ready:
                        _, status = os.waitpid(pid, 0)
                        return os.waitstatus_to_exitcode(status)
                    try:
                        data = conn.recv(64)
                    except OSError:
                        data = b""
                    if not data:  # the client was killed: so is the child
                        os.kill(pid, signal.SIGKILL)
                        waiting.unregister(conn)
                        continue
                    for number in data:
                        if number in FORWARDED:
                            os.kill(pid, number)
        finally:
            os.close(pidfd)

    def child(self, request, fds, zygote_fds):
        """In the forked child: restrict it (the module docstring's steps) and run the command."""
        try:
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 1 << 16 else 1 << 16)
            os.setsid()
            with open("/proc/self/oom_score_adj", "w") as adjust:
                adjust.write("1000")
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            args = self.args
            self.sandbox.restrict(self.scratch, args.readable or [], ["/tmp"], self.kernel_sockets, tcp=False)
            self.sandbox.limit_resources(args.memory)
            os.environ.clear()
            os.environ.update({str(key): str(value) for key, value in request["env"].items()})
            os.chdir(self.scratch)
            run(request["argv"])
            status = 0
        except SystemExit as end:
            status = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            status = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


def run(argv):
    """Run ``argv``, a Python command line (``python [-I] [-B] [-S] -m MODULE ...`` or
    ``python [...] SCRIPT ...``), in this interpreter, as ``__main__``."""
    words = list(argv[1:])
    while words and words[0] in ("-I", "-B", "-S", "-E", "-s"):
        words.pop(0)
    if not words:
        raise ValueError("no module or script to run")
    if words[0] == "-m":
        if len(words) < 2:
            raise ValueError("-m without a module")
        sys.argv = [words[1], *words[2:]]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(words[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = words
        sys.path.insert(0, os.path.dirname(os.path.abspath(words[0])))
        runpy.run_path(words[0], run_name="__main__")


def serve(args):
    """The zygote: import what ``--preload`` names, listen, then serve one child at a time."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    sandbox = _load_sandbox()
    for name in filter(None, (args.preload or "").split(",")):
        try:
            importlib.import_module(name)
        except Exception as error:  # a framework this machine lacks: its notebooks import it themselves
            print(f"poolkit zygote: {name} not preloaded: {type(error).__name__}: {error}", file=sys.stderr)
    zygote = Zygote(args, sandbox)
    for folder in (zygote.scratch, zygote.kernel_sockets, os.path.join(zygote.sockets, CONTROL)):
        os.makedirs(folder, exist_ok=True)
    path = os.path.join(zygote.sockets, CONTROL, SOCKET_NAME)
    if os.path.lexists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.path.relpath(path))  # from scratch, where it starts: a socket's path has at most 107 bytes
    listener.listen(4)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    zygote.serve(listener)


# --- the worker's side ------------------------------------------------------------

#: How long a zygote may take to import what it preloads and say it is ready.
START_TIMEOUT = 300


def available() -> bool:
    """Whether kernels and re-runs can be forked from zygotes here: bubblewrap works
    (each zygote has a PID namespace of its own, whose processes it can all end) and
    Landlock scopes signals (ABI 6, Linux 6.12), so no child can signal its zygote;
    and ``POOLKIT_WARM`` is not ``0``."""
    from . import sandbox

    return os.environ.get("POOLKIT_WARM", "1") != "0" and sandbox.isolated() and sandbox.landlock_abi() >= 6


def describe() -> str:
    """One line for the run's log: how kernels and re-runs are started here, and why."""
    from . import sandbox

    if available():
        return "forked from warm sandboxes (the frameworks imported once per worker)"
    if os.environ.get("POOLKIT_WARM", "1") == "0":
        why = "POOLKIT_WARM=0"
    elif not sandbox.isolated():
        why = "no bubblewrap"
    else:
        why = f"Landlock ABI {sandbox.landlock_abi()}, and a zygote needs 6 to keep its children from signalling it"
    return f"started cold, a sandbox each ({why})"


class Warm:
    """A worker's handle on one zygote, in the folder ``root`` (made if needed).

    Parameters
    ----------
    root : str
        Its folder: ``scratch`` (the children's writable folder, a tmpfs of
        ``scratch_size`` bytes inside) and ``sockets`` are made there.
    memory : int
        Bytes the zygote and its children may use together (its cgroup), and the
        address-space cap of each child.
    scratch_size : int
        Bytes of ``scratch``.
    env : dict
        The zygote's environment (a child gets its client's).
    preload : sequence of str
        Modules to import before the first fork.
    hide, bind : sequence
        As for :func:`poolkit.grader.sandbox.command`; a ``bind`` of this file
        makes the zygote run it there (where poolkit's folder is hidden).
    """

    def __init__(self, root, memory, scratch_size, env, preload, hide=(), bind=()):
        self.root, self.memory, self.scratch_size, self.env = os.path.abspath(root), int(memory), int(scratch_size), dict(env)
        self.preload, self.hide, self.bind = tuple(preload), tuple(hide), tuple(bind)
        self.scratch = os.path.join(self.root, "scratch")
        self.sockets = os.path.join(self.root, "sockets")
        self.kernel_sockets = os.path.join(self.sockets, KERNEL_SOCKETS)
        self.control = os.path.join(self.sockets, CONTROL, SOCKET_NAME)
        self.process = None

    def start(self):
        """Start the zygote and wait until it has imported what it preloads."""
        self.launch()
        self.wait()

    def launch(self):
        """Start the zygote, not waiting for it (:meth:`wait` does): several import at once."""
        import subprocess

        from . import sandbox

        for folder in (self.scratch, self.kernel_sockets, os.path.dirname(self.control)):
            os.makedirs(folder, exist_ok=True)
        here = os.path.abspath(__file__)
        script = next((target for source, target in self.bind if os.path.abspath(source) == here), here)
        reads = [*sandbox.readable(), *(target for _, target in self.bind)]
        command = [
            *sandbox.command(self.scratch, self.memory, hide=self.hide, bind=self.bind, scratch_size=self.scratch_size, sockets=self.sockets, restricted=False),
            *(sys.executable, "-I", "-B", script, "serve", "--scratch", self.scratch, "--sockets", self.sockets, "--memory", str(self.memory)),
            *(f"--readable={path}" for path in reads),
            f"--preload={','.join(self.preload)}",
        ]
        with open(os.path.join(self.root, "zygote.log"), "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=self.env, cwd=self.scratch, start_new_session=True)

    def wait(self):
        """Wait until the zygote :meth:`launch` started has imported what it preloads.

        Raises
        ------
        RuntimeError
            If it ended, or did not say it was ready within :data:`START_TIMEOUT` seconds.
        """
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as waiting:
            waiting.register(self.process.stdout, selectors.EVENT_READ)
            ready = bool(waiting.select(START_TIMEOUT)) and self.process.stdout.readline().strip() == b"ready"
        if not ready:
            self.stop()
            raise RuntimeError(f"the zygote did not start (its log: {os.path.join(self.root, 'zygote.log')})")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, seed) -> list:
        """The prefix that runs a Python command line in a child of this zygote, with
        ``seed``'s files in its scratch; start it with ``cwd`` :attr:`scratch` (the
        control socket is named from there: a unix socket's path has at most 107 bytes)."""
        control = os.path.relpath(self.control, self.scratch)
        return [sys.executable, "-I", "-S", os.path.abspath(__file__), "connect", "--seed", os.path.abspath(seed), control, "--"]

    def stop(self):
        """End the zygote and everything in its sandbox."""
        from . import sandbox

        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        sandbox.cleanup(self.scratch)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python zygote.py", description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    zygote = steps.add_parser("serve", help="be a zygote")
    zygote.add_argument("--scratch", required=True, help="the children's writable folder")
    zygote.add_argument("--sockets", required=True, help="the folder of the control socket and the kernels' sockets")
    zygote.add_argument("--memory", required=True, type=int, help="each child's address-space cap in bytes")
    zygote.add_argument("--readable", action="append", help="what a child may read besides scratch")
    zygote.add_argument("--preload", default="", help="modules to import first, comma-separated")
    client = steps.add_parser("connect", help="run a command in a zygote's child")
    client.add_argument("control", help="the zygote's control socket")
    client.add_argument("--seed", help="a folder whose files are put in the zygote's scratch first")
    client.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.step == "serve":
        serve(args)
    else:
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        connect(args.control, args.seed, command)


if __name__ == "__main__":
    main()
