"""Run a command with a student's rights, not the grader's.

``python -m poolkit.grader.sandbox --writable DIR --memory BYTES -- COMMAND...`` limits
itself, then becomes COMMAND (``exec``), so the command and everything it starts
inherit the limits:

- **files**: with Linux's Landlock (unprivileged, kernel 5.13 and later) the
  process may create, change or delete files only beneath DIR (and write to
  ``/dev/null``, no other device: no terminal), and read only DIR, the system's folders and
  Python's installation (:func:`readable`), so a submission can neither touch
  nor read the gradebook, the course's ``solutions/`` or another student's files;
- **signals**: where the kernel's Landlock has scopes (6.12 and later), it
  cannot signal processes outside its sandbox, such as the grader;
- **memory**: its address space is capped (``RLIMIT_AS``), so a memory hog gets
  a ``MemoryError`` (or dies) instead of taking the machine;
- **files' size**: no file it writes grows beyond 64 MiB (``RLIMIT_FSIZE``).

Without Landlock the command still runs with the memory and size limits;
:func:`landlock_abi` says which is the case so the grader can warn.
"""

import argparse
import ctypes
import os
import resource
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same numbers on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
# Landlock's filesystem rights that change something (reading stays unrestricted).
_WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 1, 1 << 2, 1 << 3
_CHANGES = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make dirs/files/...
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and 3
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
MAX_FILE_SIZE = 64 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


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


def readable():
    """What a sandboxed process may read besides its own folder: the system's
    folders, Python's installation (with its packages) and poolkit itself."""
    system = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/run"]
    python = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    # poolkit's own folder, the library's and the grader's: an editable install lives in the course's folder.
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return sorted({os.path.realpath(path) for path in system + python + [package] if os.path.exists(path)})


def restrict(writable, readable=()):
    """Allow this process (and its children) to change files only beneath
    ``writable``, and to read only beneath it and ``readable``.

    Returns the Landlock ABI used, or 0 (and restricts nothing) without Landlock.
    """
    abi = landlock_abi()
    if abi == 0:
        return 0
    reads = _READ_FILE | _READ_DIR
    handled = reads | _CHANGES | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled_access_fs=handled)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 8  # older kernels know only the first field
    if abi >= 6:
        attr.scoped = _SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        _fail("create_ruleset")
    try:
        # Of the devices, only /dev/null may be written: not a terminal, not another process's pipe.
        rules = [(writable, handled), ("/dev/null", _READ_FILE | _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0))]
        rules += [(path, reads) for path in readable]
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


def command(writable, memory):
    """The prefix that runs a command in this sandbox.

    It runs this file as a script, not ``-m poolkit.grader.sandbox``: importing the
    poolkit package (and NumPy with it) would add a tenth of a second to every
    kernel start.
    """
    return [sys.executable, os.path.abspath(__file__), "--writable", str(writable), "--memory", str(int(memory)), "--"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m poolkit.grader.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writable", required=True, help="the only directory the command may change files in")
    parser.add_argument("--memory", required=True, type=int, help="the address-space cap in bytes")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    run = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not run:
        parser.error("no command given after --")
    restrict(os.path.abspath(args.writable), readable())
    limit_resources(args.memory)
    os.execvp(run[0], run)


if __name__ == "__main__":
    main()
