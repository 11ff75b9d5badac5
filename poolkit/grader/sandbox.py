"""Run a command with a student's rights, not the grader's.

:func:`command` is the prefix that runs a command in the sandbox of one folder,
``writable``. Where bubblewrap works (:func:`isolated`), it runs three layers:

1. **cgroup** (``python sandbox.py --cgroup --no-restrict``): the process joins a
   cgroup of its own, named after ``writable``, before it becomes bubblewrap, so
   everything the submission starts is counted together: at most ``memory`` bytes
   for all its processes, at most :data:`PIDS` processes and threads (a fork bomb
   stops there), and its CPU time. This needs cgroup v2 with the memory and pids
   controllers, or v1's memory and pids hierarchies, and the right to make
   cgroups (root); where there are none this layer does nothing.
   :func:`cleanup` kills what is left in the cgroup and removes it.
2. **bubblewrap** (``bwrap``): fresh PID, network, IPC, UTS, user, cgroup and
   mount namespaces, so the submission sees only its own processes in ``/proc``,
   has no network (only its own loopback), and every process it started dies
   with it; no capabilities, a new session (no terminal), read-only system
   folders, Python's installation and poolkit's folder, ``writable`` read-write,
   a private ``/tmp``, and of ``/dev`` only null, zero and urandom. With a
   ``scratch_size``, ``writable`` is a tmpfs of that size of the sandbox's own,
   seeded with what the host's folder holds (its files read-only): nothing the
   submission writes reaches the host's disk, a write past the size fails with
   ENOSPC, and it all goes with the sandbox. A ``sockets`` folder (outside
   ``writable``) is bound read-write at its own path (in ``/tmp``, a link to
   :data:`SOCKETS_INSIDE`): there the grader reaches a kernel's unix sockets.
3. **Landlock and limits** (``python sandbox.py``, inside bubblewrap), then
   ``exec`` of the command, which inherits them:

   - **files**: with Linux's Landlock (unprivileged, kernel 5.13 and later) the
     process may create, change or delete files only beneath ``writable`` (and
     its private ``/tmp``; write to ``/dev/null``, no other device), and read
     only those, the system's folders and Python's installation
     (:func:`readable`), so a submission can neither touch nor read the
     gradebook, the course's ``solutions/`` or another student's files; in
     ``sockets`` it may only read, make unix sockets and remove files
     (:data:`SOCKET_RIGHTS`), so it cannot store data there;
   - **signals**: where the kernel's Landlock has scopes (6.12 and later), it
     cannot signal processes outside its sandbox, such as the grader;
   - **memory**: each process's address space is capped (``RLIMIT_AS``), so one
     allocation beyond the cap is a ``MemoryError`` (the grader reports it as
     such) where the cgroup alone would kill the process;
   - **files' size**: no file it writes grows beyond 64 MiB (``RLIMIT_FSIZE``).

Without bubblewrap the prefix runs layers 1 and 3 only (``hide``, ``bind`` and
``scratch_size`` are then not done: the host's ``writable`` is written, and
``sockets``'s rule still holds); without Landlock the command still runs with
the limits (and may write in ``sockets`` as in ``writable``).
:func:`mode` says which layers are in force, for the run's log.

The environment the command is started with (``Popen``'s ``env``) is the whole
environment inside: no layer adds a variable (bubblewrap's ``PWD`` is removed,
and with it any the caller passed).
"""

import argparse
import ctypes
import functools
import hashlib
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence  # no cost: functools imports collections

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same numbers on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
# Landlock's filesystem rights that change something (reading stays unrestricted).
_WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 1, 1 << 2, 1 << 3
_CHANGES = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make dirs/files/...
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and 3
_REMOVE_FILE, _MAKE_SOCK = 1 << 5, 1 << 9
#: What the sandbox may do in its ``sockets`` folder: bind a unix socket there, remove one
#: (a closed socket's, or its connection file), and read, but store no data.
SOCKET_RIGHTS = _READ_FILE | _READ_DIR | _MAKE_SOCK | _REMOVE_FILE
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
MAX_FILE_SIZE = 64 << 20
#: Processes and threads one sandbox may have at once (its cgroup's ``pids.max``):
#: enough for a framework's thread per core, not for a fork bomb.
PIDS = 256 + 4 * (os.cpu_count() or 1)
#: The devices a sandbox has (only ``/dev/null`` may be written: Landlock).
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")
#: The system's folders a sandbox reads; on a merged-/usr system /bin, /lib... are links into /usr.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/sys")
#: Where this file is inside bubblewrap: the caller may hide poolkit's folder.
INNER_SCRIPT = "/run/poolkit/sandbox.py"
#: Where a ``sockets`` folder in /tmp is bound inside bubblewrap (a link at its own path
#: leads there): beneath the sandbox's own /tmp, which it may change, Landlock could not
#: keep its files from it.
SOCKETS_INSIDE = "/run/poolkit/sockets"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_PR_SET_PDEATHSIG = 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi():
    """The running kernel's Landlock ABI version, or 0 where it has none."""
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _fail(what):
    error = ctypes.get_errno()
    raise OSError(error, f"landlock: {what}: {os.strerror(error)}")


def _own_folders():
    """Python's installation (with its packages) and poolkit's own folder (the library's
    and the grader's: an editable install lives in the course's folder)."""
    python = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    return python + [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]


def readable() -> list[str]:
    """What a sandboxed process may read besides its own folder: the system's
    folders, Python's installation (with its packages) and poolkit itself.

    Returns
    -------
    list of str
        Real paths (links resolved), sorted; only those that exist.
    """
    system = [*SYSTEM, "/proc", "/dev", "/run"]
    return sorted({os.path.realpath(path) for path in system + _own_folders() if os.path.exists(path)})


def restrict(writable, readable=(), also_writable=(), sockets=None, tcp=True):
    """Allow this process (and its children) to change files only beneath
    ``writable`` (and the folders ``also_writable``), and to read only beneath
    those and ``readable``. Beneath the folder ``sockets`` it may only read, make
    unix sockets and remove files (:data:`SOCKET_RIGHTS`). With ``tcp`` False
    (and Landlock ABI 4 or later) it may neither bind a TCP port nor connect to one.

    Returns the Landlock ABI used, or 0 (and restricts nothing) without Landlock.
    """
    abi = landlock_abi()
    if abi == 0:
        return 0
    reads = _READ_FILE | _READ_DIR
    handled = reads | _CHANGES | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled_access_fs=handled)
    if not tcp and abi >= 4:
        attr.handled_access_net = _BIND_TCP | _CONNECT_TCP  # handled, and no rule allows either
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8  # older kernels know fewer fields
    if abi >= 6:
        attr.scoped = _SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        _fail("create_ruleset")
    try:
        # Of the devices, only /dev/null may be written: not a terminal, not another process's pipe.
        rules = [(path, handled) for path in (writable, *also_writable)] + [("/dev/null", _READ_FILE | _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0))]
        rules += [(path, reads) for path in readable]
        if sockets is not None:
            rules.append((sockets, SOCKET_RIGHTS))
        for path, access in rules:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            if not os.path.isdir(path):
                access &= _READ_FILE | _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)  # a file takes only a file's rights
            try:
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                if _libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    _fail(f"add_rule {path}")
            finally:
                os.close(fd)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail("no_new_privs")
        if _libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            _fail("restrict_self")
    finally:
        os.close(ruleset)
    return abi


def limit_resources(memory):
    """Cap the address space at ``memory`` bytes, written files at 64 MiB, and core dumps at none."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_SIZE, MAX_FILE_SIZE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def address_space():
    """This process's address space now, in bytes (``VmSize``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


# --- cgroups: one per sandbox, for everything the submission starts -------------


def _cgroups(writable):
    """The cgroup version and the folders of ``writable``'s sandbox cgroup, by controller.

    cgroup v2 (its root lists the memory and pids controllers): one folder, under
    the hierarchy's root (a cgroup that has processes, like this one, cannot have
    children with controllers). v1: one folder per controller of memory, pids and
    cpuacct that is mounted, under this process's own cgroup in it. ``(0, {})``
    where there is neither. The name is the same for every call with the same folder.
    """
    name = "poolkit-" + hashlib.sha256(os.path.realpath(writable).encode()).hexdigest()[:16]
    v1, v2 = {}, None
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, where, kind, options = line.split()[:4]
            if kind == "cgroup2":
                v2 = where
            elif kind == "cgroup":
                v1.update({option: where for option in options.split(",") if option in ("memory", "pids", "cpuacct")})
    if v2 is not None:
        try:
            with open(os.path.join(v2, "cgroup.subtree_control")) as control:
                if {"memory", "pids"} <= set(control.read().split()):
                    return 2, {"memory+pids": os.path.join(v2, name)}
        except OSError:
            pass
    own = {}  # controller -> this process's cgroup in its v1 hierarchy
    with open("/proc/self/cgroup") as cgroups:
        for line in cgroups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own.update(dict.fromkeys(controllers.split(","), path))
    folders = {key: os.path.join(v1[key], own[key].lstrip("/"), name) for key in ("memory", "pids", "cpuacct") if key in v1 and key in own}
    return (1, folders) if folders else (0, {})


def _limits(memory):
    """The files that limit a sandbox cgroup and their values (a folder has those of its controller)."""
    return {
        "memory.limit_in_bytes": memory,  # v1; memsw (memory and swap) after it, as it may not be below it
        "memory.memsw.limit_in_bytes": memory,
        "memory.max": memory,  # v2
        "memory.swap.max": 0,
        "pids.max": PIDS,
    }


def _write(path, value):
    with open(path, "w") as file:
        file.write(str(value))


def join_cgroup(writable: str | os.PathLike, memory: int) -> bool:
    """Make ``writable``'s sandbox cgroup (if needed), limit it to ``memory`` bytes
    and :data:`PIDS` processes, and move this process into it.

    Parameters
    ----------
    writable : path-like
        The sandbox's folder, which names its cgroup.
    memory : int
        Bytes all its processes together may use.

    Returns
    -------
    bool
        Whether this process is now in the cgroup (False where none can be made:
        no cgroup hierarchy with those controllers, or no right to make one).
    """
    _, folders = _cgroups(writable)
    try:
        for folder in dict.fromkeys(folders.values()):  # controllers mounted together share one
            os.makedirs(folder, exist_ok=True)
            for name, value in _limits(memory).items():
                if os.path.exists(os.path.join(folder, name)):
                    _write(os.path.join(folder, name), value)
            _write(os.path.join(folder, "cgroup.procs"), os.getpid())
    except OSError as error:
        print(f"poolkit sandbox: no cgroup, per-process limits only ({error})", file=sys.stderr)
        return False
    return bool(folders)


def _processes(folder):
    try:
        with open(os.path.join(folder, "cgroup.procs")) as procs:
            return [int(pid) for pid in procs.read().split()]
    except OSError:
        return []


def cleanup(writable: str | os.PathLike) -> None:
    """Kill every process left in ``writable``'s sandbox cgroup and remove the cgroup.

    Safe to call when there is none (nothing happens). Call it from the process
    that started the sandbox, or one in the same cgroup: the v1 cgroup lies
    beneath the caller's own.

    Parameters
    ----------
    writable : path-like
        The sandbox's folder, as given to :func:`command`.
    """
    _, folders = _cgroups(writable)
    for folder in dict.fromkeys(folders.values()):
        remove_cgroup(folder)


def remove_cgroup(folder: str) -> bool:
    """Kill every process in the cgroup ``folder`` and remove it; whether it is gone
    (a cgroup that still holds one of its own cgroups cannot be removed).

    Parameters
    ----------
    folder : str
        The cgroup's folder, e.g. ``/sys/fs/cgroup/memory/poolkit-...``; none is fine.
    """
    if not os.path.isdir(folder):
        return True
    if os.path.exists(os.path.join(folder, "cgroup.kill")):  # v2, kernel 5.14 and later: all at once
        _write(os.path.join(folder, "cgroup.kill"), 1)
    # Kill until none is left (a fork bomb adds some while this runs), then remove the folder.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in _processes(folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(folder)
            return True
        except OSError:  # busy until the killed processes are gone
            time.sleep(0.01)
    return False


def usage(writable: str | os.PathLike) -> dict[str, float]:
    """What ``writable``'s sandbox cgroup has used so far, where the cgroup tells:
    ``{"cpu_seconds": ..., "memory_peak": bytes}`` (read it before :func:`cleanup`).

    Parameters
    ----------
    writable : path-like
        The sandbox's folder, as given to :func:`command`.
    """
    found: dict[str, float] = {}
    for folder in dict.fromkeys(_cgroups(writable)[1].values()):
        for name, key, scale in (("cpuacct.usage", "cpu_seconds", 1e-9), ("memory.max_usage_in_bytes", "memory_peak", 1), ("memory.peak", "memory_peak", 1)):
            try:
                with open(os.path.join(folder, name)) as file:
                    found[key] = int(file.read()) * scale
            except (OSError, ValueError):
                pass
        try:
            with open(os.path.join(folder, "cpu.stat")) as stat:  # v2
                found["cpu_seconds"] = int(dict(line.split() for line in stat)["usage_usec"]) * 1e-6
        except (OSError, KeyError, ValueError):
            pass
    return found


@functools.cache
def _cgroup_support():
    """``("cgroup v1 memory+pids+cpuacct", "")`` where a sandbox cgroup can be made
    here (tried once: made, limited and removed), else ``("", why not)``."""
    version, folders = _cgroups(f"/poolkit-probe-{os.getpid()}")
    if not folders:
        return "", "no cgroup v2 with memory and pids, nor v1 memory or pids hierarchy"
    try:
        for folder in dict.fromkeys(folders.values()):
            os.makedirs(folder, exist_ok=True)
            for name, value in _limits(1 << 30).items():
                if os.path.exists(os.path.join(folder, name)):
                    _write(os.path.join(folder, name), value)
    except OSError as error:
        return "", f"cannot make one: {error.strerror}"
    finally:
        for folder in dict.fromkeys(folders.values()):
            try:
                os.rmdir(folder)
            except OSError:
                pass
    return f"cgroup v{version} {'+'.join(folders)}", ""


def cgroups() -> str:
    """The cgroup layer as :func:`mode` names it (``"cgroup v1 memory+pids+cpuacct"``),
    or ``""`` where a sandbox gets no cgroup here (then only per-process limits)."""
    return _cgroup_support()[0]


# --- bubblewrap: namespaces, and only the folders a submission needs -------------


def _beneath(path, folder):
    """Whether ``path`` is ``folder`` or lies in it (both absolute, compared as written)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _seeded(source, target):
    """bubblewrap's arguments that make what is in the folder ``source`` appear in the
    (new, empty) folder ``target``: each folder made afresh (``--dir``), each regular
    file bound read-only. Links, fifos and sockets are left out."""
    args: list[str] = []
    folders = [(source, target)]
    while folders:  # not recursion: a tree may be deeper than Python's stack
        source, target = folders.pop()
        with os.scandir(source) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                path = os.path.join(target, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    args += ["--dir", path]
                    folders.append((entry.path, path))
                elif entry.is_file(follow_symlinks=False):
                    args += ["--ro-bind", entry.path, path]
    return args


def _bwrap_arguments(bwrap, writable, memory, hide=(), bind=(), scratch_size=None, sockets=None):
    """bubblewrap's command line up to its ``--``, for the sandbox of ``writable``."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    bound: list[str] = []  # the folders bound so far, read-only, at their own path

    def bind_read_only(source, target):
        if not any(_beneath(target, folder) for folder in bound):
            args.extend(["--ro-bind", source, target])
            bound.append(target)

    # The sandbox's own /proc, /dev and /tmp first: what is bound below may live in the host's /tmp
    # (a course cloned there), and a tmpfs mounted after it would hide it.
    args += ["--proc", "/proc", "--tmpfs", "/dev"]
    for device in DEVICES:
        args += ["--dev-bind", device, device]
    args += ["--remount-ro", "/dev", "--size", str(int(memory)), "--tmpfs", "/tmp"]
    writable = os.path.abspath(writable)
    sockets = os.path.abspath(sockets) if sockets is not None else None
    read_only = []  # tmpfs mounts made read-only once everything is mounted in them
    for path in filter(None, (writable, sockets)):
        above = os.path.relpath(os.path.dirname(path), "/tmp").split(os.sep)
        if above[0] not in (os.curdir, os.pardir) and os.path.join("/tmp", above[0]) not in read_only:
            # The folders that lead to a writable folder (or the sockets' folder) in /tmp would be
            # made in the sandbox's own /tmp, which it may write: they get a tmpfs of their own instead.
            read_only.append(os.path.join("/tmp", above[0]))
            args += ["--tmpfs", read_only[-1]]
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            bind_read_only(path, path)
    # Python and poolkit at their real paths and at the paths that name them (a link may lead there).
    for path in sorted({name for folder in _own_folders() for name in (os.path.realpath(folder), os.path.abspath(folder))}, key=len):
        if os.path.isdir(path):
            bind_read_only(os.path.realpath(path), path)
    if scratch_size is None:
        args += ["--bind", os.path.realpath(writable), writable]
    else:
        # Its own tmpfs: what it writes is capped, and gone with the sandbox.
        args += ["--size", str(int(scratch_size)), "--tmpfs", writable, *_seeded(os.path.realpath(writable), writable)]
    if sockets is not None:
        if _beneath(sockets, "/tmp") and not any(_beneath(sockets, folder) for folder in bound):
            # Beneath /tmp, Landlock's rule for the sandbox's own /tmp would let it store files
            # there: the folder is bound elsewhere, and its path is a link to it.
            args += ["--bind", os.path.realpath(sockets), SOCKETS_INSIDE, "--symlink", SOCKETS_INSIDE, sockets]
        else:
            args += ["--bind", os.path.realpath(sockets), sockets]
    # The host's cgroups (names and use of the other sandboxes) are hidden too.
    for path in ["/sys/fs/cgroup", *map(os.path.abspath, hide)]:
        read_only.append(path)
        args += ["--tmpfs", path]
    args += ["--ro-bind", os.path.abspath(__file__), INNER_SCRIPT]
    for source, target in bind:
        args += ["--ro-bind", os.path.abspath(source), target]
    for path in read_only:
        args += ["--remount-ro", path]
    return args + ["--chdir", writable, "--"]


@functools.cache
def _bubblewrap():
    """``(path of bwrap, "")`` where bubblewrap can make a sandbox here (tried once,
    with the options :func:`command` uses, on ``true``), else ``("", why not)``."""
    import shutil  # here: the sandbox's stages, which start every kernel, need none of these
    import subprocess
    import tempfile

    bwrap = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else "")
    if not bwrap:
        return "", "bwrap not found (apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="poolkit-probe-") as folder:
        try:
            result = subprocess.run([*_bwrap_arguments(bwrap, folder, 1 << 30), "true"], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.SubprocessError) as error:
            return "", f"bwrap does not run: {error}"
    if result.returncode != 0:
        return "", (result.stderr.strip().splitlines() or [f"bwrap true exits with {result.returncode}"])[-1]
    return bwrap, ""


def isolated() -> bool:
    """Whether bubblewrap works here (tried once per process by running a trivial
    command in a sandbox), so that :func:`command` isolates submissions from each
    other and from the machine: no other process, no network, nothing left behind."""
    return bool(_bubblewrap()[0])


def mode() -> str:
    """One line for the run's log saying which layers of the sandbox are in force here.

    Examples: ``"bubblewrap (pid/net/ipc/uts namespaces), cgroup v1 memory+pids+cpuacct,
    Landlock ABI 7, per-process limits"``, or ``"Landlock ABI 4, per-process limits
    (no bubblewrap: bwrap not found ...; no cgroup: ...)"``.
    """
    layers, missing = [], []
    if isolated():
        layers.append("bubblewrap (pid/net/ipc/uts namespaces)")
    else:
        missing.append(f"no bubblewrap: {_bubblewrap()[1]}")
    if cgroups():
        layers.append(cgroups())
    else:
        missing.append(f"no cgroup: {_cgroup_support()[1]}")
    abi = landlock_abi()
    layers.append(f"Landlock ABI {abi}" if abi else "no Landlock (writes and reads anywhere the user may)")
    layers.append("per-process limits" + (f" ({'; '.join(missing)})" if missing else ""))
    return ", ".join(layers)


def command(
    writable: str | os.PathLike,
    memory: int,
    *,
    hide: Sequence[str] = (),
    bind: Sequence[tuple[str, str]] = (),
    scratch_size: int | None = None,
    sockets: str | os.PathLike | None = None,
    restricted: bool = True,
) -> list[str]:
    """The prefix that runs a command in the sandbox of ``writable``.

    Parameters
    ----------
    writable : path-like
        The only folder the command may change (inside bubblewrap it starts there).
    memory : int
        Bytes all the command's processes may use together (its cgroup, where
        there is one) and each of them may reserve (its address space).
    hide : sequence of str
        Folders that are empty (and read-only) inside, e.g. poolkit's own.
    bind : sequence of (str, str)
        ``(source, target)``: the file or folder ``source`` is at ``target``
        inside, read-only (and readable there). ``target`` must be where the
        sandbox may make it: in ``/tmp`` (its own), ``/run`` or a hidden folder.
    scratch_size : int, optional
        With bubblewrap, ``writable`` is a tmpfs of this many bytes inside, made
        afresh for each command: what it writes there never reaches the host's
        folder, is gone when the command ends, and past the size a write fails
        with ENOSPC (the pages count against ``memory`` too). What the host's
        ``writable`` holds now is seeded into it: its folders are made (and may
        be written), its regular files are bound read-only; links and other
        files are left out. Default: the host's folder itself is bound.
    sockets : path-like, optional
        An existing folder, neither in ``writable`` nor holding it, where the
        command may make unix sockets (a kernel's, for :func:`notebooks.execute
        <poolkit.grader.notebooks.execute>`): it is at its own path inside, and
        with Landlock the command may only read, make unix sockets and remove
        files there (:data:`SOCKET_RIGHTS`), so it can store no data in it.
        A folder in ``/tmp`` is bound at :data:`SOCKETS_INSIDE`, its own path a
        link there: beneath the sandbox's own ``/tmp``, which it may change,
        Landlock would let it make anything (as it still may where the folder
        lies in one bound read-only there, e.g. a course cloned in ``/tmp``).
    restricted : bool
        False: inside bubblewrap, no Landlock and no per-process limits (the
        cgroup, the namespaces and the mounts still hold). Only for a program
        that runs no student code and restricts each process it starts for one,
        :mod:`poolkit.grader.zygote`; without bubblewrap it is always True.

    Returns
    -------
    list of str
        Put the command after it, and start it with the environment it should
        have (``Popen(..., env=...)``): that is its whole environment inside.
        Without bubblewrap (:func:`isolated` is False) the prefix applies the
        cgroup, Landlock and the limits only, and ``hide``, ``bind`` and
        ``scratch_size`` are not done: the paths stay as they are, and the
        host's ``writable`` is written. Without Landlock, ``sockets`` may be
        written like ``writable``.

    Raises
    ------
    ValueError
        If ``scratch_size`` is not positive, or ``sockets`` is not a folder,
        or is in ``writable`` or holds it.

    Notes
    -----
    The stages run this file as a script (``python -I -S``), not
    ``-m poolkit.grader.sandbox``: importing the poolkit package (and NumPy
    with it) would add a tenth of a second to every kernel start.
    """
    writable, memory = os.path.abspath(writable), int(memory)
    stage = ["--writable", writable, "--memory", str(memory)]
    if scratch_size is not None and int(scratch_size) <= 0:
        raise ValueError(f"scratch_size must be a positive number of bytes, not {scratch_size}")
    if sockets is not None:
        sockets = os.path.abspath(sockets)
        if not os.path.isdir(sockets):
            raise ValueError(f"the sockets' folder {sockets} is not a folder")
        real, own = os.path.realpath(sockets), os.path.realpath(writable)
        if _beneath(real, own) or _beneath(own, real):
            raise ValueError(f"the sockets' folder {sockets} must lie outside the writable folder {writable} (and not hold it)")
        stage += ["--sockets", sockets]
    python = [sys.executable, "-I", "-S"]  # no site: a few hundredths of a second less per start
    # What Landlock lets it read: the system's folders, Python, poolkit (and, inside bubblewrap, what is bound in).
    reads = [f"--readable={path}" for path in readable()]
    bwrap = _bubblewrap()[0]
    if not bwrap:
        return [*python, os.path.abspath(__file__), *stage, "--cgroup", *reads, "--"]
    reads += [f"--readable={target}" for _, target in bind]
    inner = [*python, INNER_SCRIPT, *stage, "--in-bubblewrap", *reads, *([] if restricted else ["--no-restrict"]), "--"]
    # Its starter's pid: a sandbox whose starter dies before bubblewrap's --die-with-parent holds must not live on.
    outer = [*python, os.path.abspath(__file__), "--writable", writable, "--memory", str(memory), "--cgroup", "--no-restrict", f"--parent={os.getpid()}", "--"]
    return [*outer, *_bwrap_arguments(bwrap, writable, memory, hide, bind, scratch_size, sockets), *inner]


def _environment_as_started():
    """This process's environment as it was started (``/proc/self/environ``): Python
    adds ``LC_CTYPE`` to its own where the locale is C (PEP 538), and the command
    gets the caller's environment, exactly."""
    try:
        with open("/proc/self/environ", "rb") as environ:
            return dict(item.partition(b"=")[::2] for item in environ.read().split(b"\0") if item)
    except OSError:
        return {os.fsencode(name): os.fsencode(value) for name, value in os.environ.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m poolkit.grader.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writable", required=True, help="the only directory the command may change files in")
    parser.add_argument("--memory", required=True, type=int, help="the memory cap in bytes (of all its processes, and of each one's address space)")
    parser.add_argument("--cgroup", action="store_true", help="first join the sandbox's cgroup (where one can be made)")
    parser.add_argument("--no-restrict", action="store_true", help="no Landlock nor limits: the stage in front of bubblewrap, which must still mount")
    parser.add_argument("--in-bubblewrap", action="store_true", help="the stage inside bubblewrap: /tmp (the sandbox's own) may be written too")
    parser.add_argument("--readable", action="append", help="what may be read (default: the system's folders, Python and poolkit)")
    parser.add_argument("--sockets", help="a directory where the command may only read, make unix sockets and remove files")
    parser.add_argument("--parent", type=int, help="the pid of the process that starts it: it dies with that one")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    run = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not run:
        parser.error("no command given after --")
    if args.parent is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # kept across exec: bubblewrap's own comes later
        if os.getppid() != args.parent:  # the starter died before the line above
            sys.exit(f"poolkit sandbox: its starter (pid {args.parent}) is gone")
    if args.cgroup:
        join_cgroup(args.writable, args.memory)
    if not args.no_restrict:
        reads = [path for path in (args.readable if args.readable is not None else readable()) if os.path.exists(path)]
        restrict(os.path.abspath(args.writable), reads, ["/tmp"] if args.in_bubblewrap else [], args.sockets)
        limit_resources(args.memory)
    environment = _environment_as_started()
    if args.in_bubblewrap:
        environment.pop(b"PWD", None)  # bubblewrap sets it, over any the caller passed
    os.execvpe(run[0], run, environment)


if __name__ == "__main__":
    main()
