"""Run a notebook's code cells so that one bad cell costs only itself.

:func:`execute` runs every code cell in a fresh kernel, like ``nbclient``, but:

- a cell that runs past ``timeout`` seconds gets a ``CellTimeoutError`` output,
  and the kernel is replaced (a cell that ignores interrupts cannot stall the rest);
- a cell that kills the kernel (``os._exit``, a crash, memory beyond the
  sandbox's cap) gets a ``KernelDied`` output, and the kernel is replaced;
- after a replacement the cells run again from the top in the new kernel, without
  the cells that timed out or died, so later cells see the earlier cells' work;
- a cell's output of every kind (printed text, displays, results, errors) is
  cut at ``max_output`` characters, with a note;
- a sandboxed kernel is reached through unix sockets in a folder of their own
  (``sockets``), so its working directory may be a tmpfs that only its sandbox
  sees (:func:`poolkit.grader.sandbox.command`'s ``scratch_size``).

It returns the executed notebook and a list of :class:`Event` saying what happened.
"""

import asyncio
import copy
import json
import os
from dataclasses import dataclass

TIMEOUT, DIED, TRUNCATED, MEMORY = "timeout", "kernel-died", "output-truncated", "memory"
MAX_OUTPUT = 20_000
#: The messages whose content counts against a cell's ``max_output`` characters.
CAPPED_OUTPUTS = ("stream", "display_data", "update_display_data", "execute_result", "error")


@dataclass(frozen=True)
class Event:
    """Something that happened to cell ``cell`` (its index in the notebook)."""

    kind: str
    cell: int


def _ran_out_of_memory(cell):
    """Whether a cell raised, or reported (as the grading helpers do), a MemoryError."""
    return any(output.get("ename") == "MemoryError" or "MemoryError" in output.get("text", "") for output in cell.get("outputs", []))


def error_output(name, message):
    import nbformat

    return nbformat.v4.new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """An nbclient that keeps at most ``max_output`` characters of each cell's output:
        printed text is cut there, and a display, result or error that would pass it is
        replaced by a note (its size is that of its JSON)."""

        def __init__(self, *args, max_output=MAX_OUTPUT, **kwargs):
            super().__init__(*args, **kwargs)
            self.max_output = max_output
            self.printed = {}
            self.truncated = set()

        def output(self, outs, msg, display_id, cell_index):
            kind = msg["msg_type"]
            if kind not in CAPPED_OUTPUTS:
                return super().output(outs, msg, display_id, cell_index)
            used = self.printed.get(cell_index, 0)
            text = msg["content"].get("text", "") if kind == "stream" else None
            size = len(text) if text is not None else len(json.dumps(msg["content"], default=str))
            if used + size <= self.max_output:
                self.printed[cell_index] = used + size
                return super().output(outs, msg, display_id, cell_index)
            if cell_index in self.truncated:
                return None
            self.truncated.add(cell_index)
            self.printed[cell_index] = self.max_output
            # Printed text keeps what fits; a display, result or error is replaced by a note.
            if text is not None:
                kept = text[: max(self.max_output - used, 0)] + f"\n[output truncated after {self.max_output} characters]\n"
                note = dict(msg["content"], text=kept)
            else:
                note = {"name": "stdout", "text": f"\n[a {kind.replace('_', ' ')} of {size} characters was left out: a cell keeps at most {self.max_output}]\n"}
            msg = dict(msg, msg_type="stream", header=dict(msg["header"], msg_type="stream"), content=note)
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


#: The folder, in a sandboxed kernel's working directory, of its connection file and sockets.
KERNEL_FOLDER = ".kernel"


def _kernel_manager_class(prefix, folder=None, cwd=None):
    """A kernel manager class that starts the kernel through ``prefix`` (the sandbox).

    With a ``folder`` (the sandbox's sockets folder, or the kernel's working
    directory's :data:`KERNEL_FOLDER`), the kernel's connection file and its
    sockets (ZeroMQ's ``ipc`` transport: unix sockets, not TCP ports on 127.0.0.1)
    are files in it: a kernel in a network namespace of its own can be reached
    there, and no other sandbox, which has another folder, can reach it. The
    sockets are named relative to the working directory ``cwd`` (a unix socket's
    path has at most 107 bytes, which a grading folder's can pass), where the
    kernel starts and this process works meanwhile: ``folder`` must be at the
    same path inside the sandbox as outside.
    """
    from uuid import uuid4

    from jupyter_client.manager import AsyncKernelManager

    class PrefixedKernelManager(AsyncKernelManager):
        """Starts the kernel through ``prefix``; with a ``folder``, its sockets are there."""

        def __init__(self, **kwargs):
            if folder is not None:
                name = uuid4().hex[:8]  # a replaced kernel's sockets may linger a moment
                kwargs.update(transport="ipc", ip=os.path.join(os.path.relpath(folder, cwd), name), connection_file=os.path.join(folder, f"{name}.json"))
            super().__init__(**kwargs)

        def format_kernel_cmd(self, extra_arguments=None):
            return list(prefix) + super().format_kernel_cmd(extra_arguments)

    return PrefixedKernelManager


def _make_folder(folder):
    """Make the kernel's socket folder, again where the code of a kernel before replaced
    it with a link or a file (this process would write the connection file there)."""
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        os.unlink(folder)
    os.makedirs(folder, exist_ok=True)


def execute(nb, cwd, *, timeout=30, max_output=MAX_OUTPUT, prefix=(), env=None, sockets=None, deadline=None, kernel_stderr=None):
    """Execute ``nb``'s code cells in a fresh kernel whose working directory is ``cwd``.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook; it is not modified.
    cwd : path-like
        The kernel's working directory.
    timeout : float
        Seconds one cell may run.
    max_output : int
        Characters of printed output kept per cell.
    prefix : sequence of str
        A command the kernel is started through (e.g. :func:`poolkit.grader.sandbox.command`).
        With one, the kernel is reached through unix sockets in ``sockets`` (or,
        without, ``cwd/.kernel/``), with its connection file, so ``cwd`` must be the
        sandbox's writable folder, where the kernel starts; this process works in
        ``cwd`` meanwhile (the sockets' names are relative to it). Without, through
        TCP on 127.0.0.1, and the connection file is in Jupyter's runtime folder.
    env : mapping, optional
        The kernel's environment (default: this process's).
    sockets : path-like, optional
        With a ``prefix``: the folder of the kernel's connection file and sockets,
        the one given to :func:`poolkit.grader.sandbox.command` as its ``sockets``
        (at the same path inside the sandbox as here). Needed where ``cwd`` is a
        tmpfs of the sandbox's own (its ``scratch_size``): this process would not
        see sockets made there.
    deadline : float, optional
        A ``time.monotonic()`` after which no cell is started (each is stopped by
        then): the cells left get a ``GradingTimeExceeded`` error.
    kernel_stderr : file, optional
        Where the kernel process writes its stderr (its own log, not the
        cells' output, which comes as messages); default: this process's.

    Returns
    -------
    (nbformat.NotebookNode, list of Event)
    """
    cwd = os.path.abspath(cwd)
    if not prefix:
        return asyncio.run(_execute(nb, cwd, timeout, max_output, (), env, None, deadline, kernel_stderr))
    folder = os.path.abspath(sockets) if sockets is not None else os.path.join(cwd, KERNEL_FOLDER)
    home = os.getcwd()
    os.chdir(cwd)  # where the kernel's sockets are named from
    try:
        return asyncio.run(_execute(nb, cwd, timeout, max_output, tuple(prefix), env, folder, deadline, kernel_stderr))
    finally:
        os.chdir(home)


async def _execute(nb, cwd, timeout, max_output, prefix, env, folder, until, kernel_stderr=None):
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    independent = False
    kernel_env = dict(env if env is not None else os.environ)
    if prefix:
        if any(os.path.basename(part) == "bwrap" for part in prefix):
            # In bubblewrap's PID namespace the kernel's parent is the namespace's init
            # (pid 1): ipykernel would take it for its parent having died (jupyter_client
            # names this process in JPY_PARENT_PID). Told its parent is init, it neither
            # watches it nor prints its notes; bubblewrap kills it with its parent.
            independent, kernel_env["JPY_PARENT_PID"] = True, "1"
    loop = asyncio.get_running_loop()
    code = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    # The whole notebook, restarts included, may take a cell's timeout per code cell, plus a minute.
    deadline = loop.time() + timeout * len(code) + 60
    if until is not None:  # the caller's budget (asyncio's clock is time.monotonic)
        deadline = min(deadline, until)
    events: list[Event] = []
    failed: dict[int, dict] = {}  # cell index -> the error output it keeps on every run
    while True:
        if folder is not None:
            _make_folder(folder)
        result = copy.deepcopy(nb)
        client = _client_class()(
            result,
            timeout=timeout,
            max_output=max_output,
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=False,  # a timeout raises; the kernel is then replaced
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
            kernel_manager_class=_kernel_manager_class(prefix, folder, cwd),
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
        )
        current = -1  # the cell being run
        try:
            launch = {} if kernel_stderr is None else {"stderr": kernel_stderr}
            async with client.async_setup_kernel(env=kernel_env, independent=independent, **launch):
                for current in code:
                    cell = result.cells[current]
                    if current in failed:
                        cell.outputs = [failed[current]]
                        continue
                    left = deadline - loop.time()
                    if left <= 0:
                        cell.outputs = [error_output("GradingTimeExceeded", "not run: the notebook's time for grading was spent")]
                        continue
                    client.timeout = int(max(1, min(timeout, left)))
                    await client.async_execute_cell(cell, current)
        except CellTimeoutError:
            events.append(Event(TIMEOUT, current))
            failed[current] = error_output("CellTimeoutError", f"the cell ran longer than {client.timeout} seconds and was stopped")
            continue
        except DeadKernelError:
            events.append(Event(DIED, current))
            failed[current] = error_output("KernelDied", "the kernel died running this cell (os._exit, a crash, or memory beyond the grader's limit)")
            continue
        events.extend(Event(TRUNCATED, index) for index in sorted(client.truncated))
        events.extend(Event(MEMORY, index) for index in code if _ran_out_of_memory(result.cells[index]))
        return result, events
