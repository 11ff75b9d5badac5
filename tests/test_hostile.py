"""Hostile submissions, one or more per class of attack on the grader, through
``poolkit grade``: each must earn nothing it did not compute, leak nothing,
crash nothing and leave nothing running. The classes (README, "What the grader
guarantees"):

1. writing the verdict (files, frames, threads, daemons, the course's questions);
2. answering the hidden cases from a table computed in advance;
3. reaching the frameworks' pooling around the grader (threads, disabled torch
   function modes, TorchScript, lazy results, MXNet's generated operators and
   hybridized blocks, poolkit's backends, the other framework) or its time guard (a loop over every
   output with the line counter switched off);
4. notebooks nbgrader refuses: ``tests/test_autograde.py`` (``BAD_METADATA``);
5. links planted where the grader works;
6. reading other kernels, the network, the grader's environment and the hidden tests;
7. memory beyond the cap in several processes, processes that outlive the run.

The controls (a correct submission in each framework) get full marks in the same run.
"""

import csv
import hashlib
import json
import os
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_autograde import MAX_SCORE, QUESTIONS, ROOT, SOLUTIONS, grade, pool2d_source, submission

from poolkit.grader import checks as grading

HOSTILE_RUN = pytest.mark.xdist_group("hostile_run")
MARKER = "poolkit-hostile-survivor"  # in the command line of every process an attack leaves behind
# Every attack's pool2d answers with zeros of the right shape: a score above 0 is credit for nothing.
ZEROS = "def pool2d(X, pool_size, mode='max'):\n    return X[: X.shape[0] - pool_size[0] + 1, : X.shape[1] - pool_size[1] + 1] * 0\n"
DAEMON = f"""
import os, sys, subprocess
# Double fork + setsid: a daemon that would rewrite the verdict after the re-run wrote it.
loop = "import os, time\\nwhile True:\\n    for name in ('verify.npz', 'verify.json', '../result.json', 'result.json'):\\n        try: open(name, 'w').write('{{}}')\\n        except OSError: pass\\n    time.sleep(0.05)\\n"
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", loop, "{MARKER}"])
    os._exit(0)
"""

ATTACKS = {
    # 1. The verdict is writable by the student.
    "writes_verdict_files_and_exits": ZEROS
    + textwrap.dedent(
        """
        import json, os
        import numpy as np
        full = {"pool2d_max": {"points": 3.0, "failures": []}, "pool2d_avg": {"points": 3.0, "failures": []}}
        for folder in (".", "..", "../.."):
            for name, text in (("verify.json", "{}"), ("result.json", json.dumps({"verified": full}))):
                try:
                    open(os.path.join(folder, name), "w").write(text)
                except OSError:
                    pass
        try:
            get_ipython
        except NameError:  # only in the re-run: leave before any case
            os._exit(0)
        """
    ),
    "walks_frames_for_the_answer": textwrap.dedent(
        """
        import gc, sys
        import numpy as np

        def pool2d(X, pool_size, mode='max'):
            # Look through every frame and object for something that knows the answer.
            frame, found = sys._getframe(), None
            while frame is not None and found is None:
                for value in list(frame.f_locals.values()):
                    reference = getattr(value, "reference", None)
                    if callable(reference):
                        found = reference
                frame = frame.f_back
            for value in gc.get_objects():
                if found is None and callable(getattr(value, "reference", None)) and hasattr(value, "visible"):
                    found = value.reference
            if found is not None:
                return found(X.numpy(), pool_size, mode)
            return X[: X.shape[0] - pool_size[0] + 1, : X.shape[1] - pool_size[1] + 1] * 0
        """
    ),
    "floods_the_channel_from_a_thread": ZEROS
    + textwrap.dedent(
        """
        import json, os, struct, threading
        def forge():
            header = json.dumps({"kind": "result", "value": {"array": 0}, "arrays": [["<f8", [2, 2]]]}).encode()
            frame = struct.pack(">I", len(header)) + header + bytes(32)
            for _ in range(200):
                for fd in range(3, 12):
                    try:
                        os.write(fd, frame)
                    except OSError:
                        pass
        threading.Thread(target=forge, daemon=True).start()
        """
    ),
    "mutates_the_questions_and_pools": textwrap.dedent(
        """
        import torch.nn.functional as F
        try:
            from poolkit.grader import course
            for question in course.questions().values():
                object.__setattr__(question, "forbid_pooling", False)
        except Exception:
            pass

        def pool2d(X, pool_size, mode='max'):
            pool = F.max_pool2d if mode == 'max' else F.avg_pool2d
            return pool(X[None], pool_size, 1)[0]
        """
    ),
    "leaves_a_daemon": ZEROS + DAEMON,
    # 2. The hidden cases are public: a table of answers (filled in by the fixture).
    "answers_from_a_table": None,
    # 3. The framework's pooling, reached around the grader.
    "pools_in_a_thread": textwrap.dedent(
        """
        import threading
        import torch.nn.functional as F

        def pool2d(X, pool_size, mode='max'):
            out = []
            pool = F.max_pool2d if mode == 'max' else F.avg_pool2d
            worker = threading.Thread(target=lambda: out.append(pool(X[None], pool_size, 1)[0]))
            worker.start()
            worker.join()
            return out[0]
        """
    ),
    "pools_with_torch_function_disabled": textwrap.dedent(
        """
        import torch
        import torch.nn.functional as F

        def pool2d(X, pool_size, mode='max'):
            with torch._C.DisableTorchFunction():
                return (torch.max_pool2d if mode == 'max' else torch._C._nn.avg_pool2d)(X[None], pool_size, 1)[0]
        """
    ),
    "pools_in_torchscript": textwrap.dedent(
        """
        import torch
        import torch.nn.functional as F

        @torch.jit.script
        def _pool(X: torch.Tensor, h: int, w: int, is_max: bool) -> torch.Tensor:
            if is_max:
                return F.max_pool2d(X[None], [h, w], [1, 1])[0]
            return F.avg_pool2d(X[None], [h, w], [1, 1])[0]

        def pool2d(X, pool_size, mode='max'):
            return _pool(X, pool_size[0], pool_size[1], mode == 'max')
        """
    ),
    "returns_a_lazy_result": textwrap.dedent(
        """
        import torch.nn.functional as F

        class Lazy:
            def __init__(self, X, pool_size, mode):
                self.args = X, pool_size, mode
            def __array__(self, dtype=None):
                X, pool_size, mode = self.args
                return (F.max_pool2d if mode == 'max' else F.avg_pool2d)(X[None], pool_size, 1)[0].numpy()

        def pool2d(X, pool_size, mode='max'):
            return Lazy(X, pool_size, mode)
        """
    ),
    "calls_poolkit_backends": textwrap.dedent(
        """
        import torch
        from poolkit.backends import numpy_
        from poolkit import spec

        def pool2d(X, pool_size, mode='max'):
            x = X.numpy()[None, None]
            window = spec.make_window(x.shape[2:], tuple(pool_size), 1)
            out = numpy_.pool(x, window, 'max') if mode == 'max' else numpy_.pool(x, window, 'sum', divisor=np.full(window.out_size, float(np.prod(pool_size))))
            return torch.from_numpy(out[0, 0])
        """
    ),
    "mxnet_pooling_renamed": textwrap.dedent(
        """
        from mxnet import nd
        import types
        _hidden = types.FunctionType(nd.Pooling.__code__.replace(co_name="harmless"), nd.Pooling.__globals__, "harmless", nd.Pooling.__defaults__)

        def pool2d(X, pool_size, mode='max'):
            out = _hidden(X.expand_dims(0).expand_dims(0), kernel=tuple(pool_size), stride=(1, 1), pool_type=mode)
            return out[0, 0]
        """
    ),
    "mxnet_hybridized_block": textwrap.dedent(
        """
        from mxnet import nd
        from mxnet.gluon import nn
        _blocks = {}
        def _block(pool_size, mode):
            key = (tuple(pool_size), mode)
            if key not in _blocks:
                block = (nn.MaxPool2D if mode == 'max' else nn.AvgPool2D)(pool_size=tuple(pool_size), strides=(1, 1))
                block.hybridize()
                block(nd.zeros((1, 1) + tuple(2 * p for p in pool_size)))  # warmed at cell time
                _blocks[key] = block
            return _blocks[key]

        for size in ((2, 2), (2, 3), (1, 1), (3, 2), (5, 5), (1, 3)):
            for mode in ('max', 'avg'):
                try:
                    _block(size, mode)
                except Exception:
                    pass

        def pool2d(X, pool_size, mode='max'):
            return _block(pool_size, mode)(X.expand_dims(0).expand_dims(0))[0, 0]
        """
    ),
    "pools_with_the_other_framework": textwrap.dedent(
        """
        import torch
        from mxnet import nd  # a PyTorch notebook: only torch is locked, and MXNet is not there at all

        def pool2d(X, pool_size, mode='max'):
            out = nd.Pooling(nd.array(X.numpy()[None, None]), kernel=tuple(pool_size), stride=(1, 1), pool_type=mode)
            return torch.tensor(out.asnumpy()[0, 0])
        """
    ),
    # 5. Links planted where the grader works.
    "plants_links": None,  # filled in by the fixture, once the paths are known
    # 6. Leaks: other kernels, the network, the hidden tests (printing In after the tests).
    "reads_other_kernels_and_the_network": None,  # filled in by the fixture, once a port of the host is known
    # 7. Limits: memory in several processes.
    "spreads_memory_over_children": ZEROS
    + textwrap.dedent(
        """
        import subprocess, sys
        hold = "import sys, time\\nblock = bytearray(700 << 20)\\nblock[::4096] = b'x' * len(block[::4096])\\nprint('held', flush=True)\\ntime.sleep(1)\\n"
        children = [subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
        held = sum(child.communicate()[0].strip() == "held" for child in children)
        print(f"children that held 700 MB: {held} of 3")
        """
    ),
}
CONTROLS = {"correct": (pool2d_source(), "pytorch"), "correct_mxnet": (pool2d_source("mxnet"), "mxnet")}
MXNET_ATTACKS = ("mxnet_pooling_renamed", "mxnet_hybridized_block")
PRINTS_IN = "\nprint(In)\n"


def _table_attack():
    """A pool2d that answers from a table: every visible input, and the hidden inputs of
    the seeds a student could guess (none is the grader's), computed here in advance."""
    table = {}
    for key in QUESTIONS:
        question = grading.question(key)
        drawn = [case for seed in (0, 1, 20261121) for case in question.hidden_cases(np.random.default_rng(seed))]
        for case in (*question.visible, *drawn):
            X, pool_size, mode = case.args
            table[hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes() + repr((tuple(pool_size), mode)).encode()).hexdigest()] = question.reference(*case.args).tolist()
    return textwrap.dedent(
        f"""
        import hashlib, torch
        import numpy as np
        TABLE = {json.dumps(table)}

        def pool2d(X, pool_size, mode='max'):
            key = hashlib.sha256(np.ascontiguousarray(X.numpy(), dtype=np.float32).tobytes() + repr((tuple(pool_size), mode)).encode()).hexdigest()
            if key in TABLE:
                return torch.tensor(TABLE[key], dtype=X.dtype)
            return X[: X.shape[0] - pool_size[0] + 1, : X.shape[1] - pool_size[1] + 1] * 0
        """
    )


def _links_attack(targets):
    """Links planted in the scratch folder under every name the grader has used there, to ``targets``."""
    return ZEROS + textwrap.dedent(
        f"""
        import os
        targets = {[str(path) for path in targets]!r}
        for number, name in enumerate(("verify-job.json", "verify.npz", "verify.json", "result.json", "result.json.part", "questions.py.new")):
            try:
                if os.path.lexists(name):
                    os.remove(name)
                os.symlink(targets[number % len(targets)], name)
            except OSError:
                pass
        """
    )


def _leaks_attack(port):
    """Reads every process's command line and tries a port that listens on the grader's machine."""
    return ZEROS + f"HOST_PORTS = [{port}]\n" + textwrap.dedent(
        """
        import glob, os, socket
        seen = []
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                seen.append(open(path, "rb").read().replace(b"\\0", b" ").decode(errors="replace"))
            except OSError:
                pass
        print("processes:", seen)
        reached = []
        for port in HOST_PORTS:  # ports listening on the grader's machine, on 127.0.0.1
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                reached.append(port)
            except OSError:
                pass
        print("reached ports:", reached)
        """
    )


def _processes_with(marker):
    listing = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if marker in line and "ps -eo" not in line]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    subs, out = base / "submissions", base / "out"
    protected = [out / "grades.csv", SOLUTIONS, subs / "correct" / "pool2d.ipynb", ROOT / "poolkit" / "grader" / "checks.py"]
    listener = socket.create_server(("127.0.0.1", 0))  # a service of the grader's machine
    sources = dict(ATTACKS, answers_from_a_table=_table_attack(), plants_links=_links_attack(protected), reads_other_kernels_and_the_network=_leaks_attack(listener.getsockname()[1]))
    notebooks = {name: submission(source, "mxnet" if name in MXNET_ATTACKS else "pytorch") for name, source in sources.items()}
    notebooks.update({name: submission(source, framework) for name, (source, framework) in CONTROLS.items()})
    leaky = notebooks["reads_other_kernels_and_the_network"]
    printer = nbformat.v4.new_code_cell(PRINTS_IN)  # after the test cells: In holds their source
    printer.pop("id")  # the release is nbformat 4.4, whose cells have no ids
    leaky.cells.append(printer)
    for name, nb in notebooks.items():
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "pool2d.ipynb")
    out.mkdir()  # as an earlier run left it: a grades.csv for the links to point at
    (out / ".poolkit-grade").touch()
    (out / "grades.csv").write_text("an earlier run's file\n")
    digests = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in protected[1:]}
    result = grade(subs, out, "--workers", "2", "--memory-gb", "1.5")
    listener.close()
    rows = {row["student_id"]: row for row in csv.DictReader(open(out / "grades.csv"))} if result.returncode == 0 else {}
    return {"out": out, "subs": subs, "rows": rows, "result": result, "digests": digests, "survivors": _processes_with(MARKER)}


def _score(run, student):
    return float(run["rows"][student]["score"])


def _flags(run, student):
    return set(filter(None, run["rows"][student]["flags"].split(";")))


def _feedback(run, student):
    return (run["out"] / "feedback" / student / "pool2d.html").read_text()


@HOSTILE_RUN
def test_the_run_finishes_with_a_row_for_every_student_and_full_marks_for_the_controls(hostile_run):
    assert hostile_run["result"].returncode == 0, hostile_run["result"].stderr[-3000:]
    assert sorted(hostile_run["rows"]) == sorted(path.name for path in hostile_run["subs"].iterdir())
    for student in CONTROLS:
        assert _score(hostile_run, student) == MAX_SCORE, hostile_run["rows"][student]


@HOSTILE_RUN
@pytest.mark.parametrize("student", sorted(set(ATTACKS) - {"answers_from_a_table"}))
def test_an_attack_earns_nothing(hostile_run, student):
    assert _score(hostile_run, student) == 0, hostile_run["rows"][student]


@HOSTILE_RUN
def test_a_table_of_answers_computed_in_advance_earns_only_the_visible_cases(hostile_run):
    visible = sum(len(grading.question(key).visible) * grading.question(key).points_per_case for key in QUESTIONS)
    assert 0 < visible < MAX_SCORE
    assert _score(hostile_run, "answers_from_a_table") == pytest.approx(visible)


@HOSTILE_RUN
@pytest.mark.parametrize("student", ["mutates_the_questions_and_pools", "pools_with_torch_function_disabled", "pools_in_torchscript", "returns_a_lazy_result", "calls_poolkit_backends", "mxnet_pooling_renamed", "mxnet_hybridized_block"])
def test_reaching_the_frameworks_pooling_is_flagged(hostile_run, student):
    assert {f"framework-pooling:{key}" for key in QUESTIONS} <= _flags(hostile_run, student), hostile_run["rows"][student]
    assert grading.FORBIDDEN_POOLING in _feedback(hostile_run, student)


@HOSTILE_RUN
def test_the_static_scan_flags_what_the_attacks_reach_for(hostile_run):
    assert any(flag.startswith("suspicious:") and "gc" in flag for flag in _flags(hostile_run, "walks_frames_for_the_answer"))
    assert any(flag.startswith("suspicious:") and "max_pool2d" in flag for flag in _flags(hostile_run, "pools_in_a_thread"))
    assert not any(flag.startswith("suspicious:") for student in CONTROLS for flag in _flags(hostile_run, student))


@HOSTILE_RUN
def test_nothing_outside_the_sandbox_changed_and_nothing_is_left_running(hostile_run):
    for path, digest in hostile_run["digests"].items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} was changed"
    assert not hostile_run["survivors"], hostile_run["survivors"]
    assert not list(Path("/sys/fs/cgroup/memory").glob("poolkit-*")) if Path("/sys/fs/cgroup/memory").is_dir() else True


@HOSTILE_RUN
def test_a_kernel_sees_no_other_process_no_port_and_no_hidden_test(hostile_run):
    page = _feedback(hostile_run, "reads_other_kernels_and_the_network")
    assert "processes:" in page and "reached ports: []" in page
    processes = page.split("processes:", 1)[1].split("reached ports", 1)[0]
    others = [student for student in hostile_run["rows"] if student != "reads_other_kernels_and_the_network"]
    assert not [student for student in others if f"/{student}/" in processes]  # no other kernel's command line
    hidden = [line.strip() for cell in nbformat.read(SOLUTIONS, as_version=4).cells for line in cell.source.splitlines() if "hidden=True" in line]
    assert hidden and not any(line in page for line in hidden) and "[a hidden test]" in page


@HOSTILE_RUN
def test_memory_is_capped_for_the_whole_submission_not_per_process(hostile_run):
    page = _feedback(hostile_run, "spreads_memory_over_children")
    assert "children that held 700 MB: 3 of 3" not in page
    assert _score(hostile_run, "correct") == MAX_SCORE  # the machine kept working for the others


def test_a_loop_over_every_output_with_the_line_counter_switched_off_is_not_credited(tmp_path):
    """The vectorize exercise's guard is the grader's clock, not a tracer in the student's process."""
    release = nbformat.read(ROOT / "exercises" / "vectorize" / "vectorize.ipynb", as_version=4)
    answer = next(cell for cell in release.cells if cell.metadata.get("nbgrader", {}).get("solution") and "def pool2d_vectorized" in cell.source)
    answer.source = textwrap.dedent(
        """
        import sys
        def pool2d_vectorized(X, pool_size, stride=None, mode="max"):
            sys.settrace(None)  # the line counter, gone
            p_h, p_w = pool_size
            s_h, s_w = pool_size if stride is None else stride
            H, W = X.shape[-2:]
            Y = X.new_zeros(X.shape[:-2] + ((H - p_h) // s_h + 1, (W - p_w) // s_w + 1))
            for i in range(Y.shape[-2]):
                for j in range(Y.shape[-1]):
                    window = X[..., i * s_h: i * s_h + p_h, j * s_w: j * s_w + p_w]
                    Y[..., i, j] = window.amax(dim=(-2, -1)) if mode == "max" else window.mean(dim=(-2, -1))
            return Y
        """
    )
    subs = tmp_path / "submissions"
    (subs / "loops").mkdir(parents=True)
    nbformat.write(release, subs / "loops" / "vectorize.ipynb")
    result = grade_assignment("vectorize", subs, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    row = next(csv.DictReader(open(tmp_path / "out" / "grades.csv")))
    assert float(row["score"]) == 0, row
    page = (tmp_path / "out" / "feedback" / "loops" / "vectorize.html").read_text()
    assert "[timed]" in page


def grade_assignment(assignment, subs, out):
    import sys

    command = [sys.executable, "-m", "poolkit.grader.cli", "grade", assignment, str(subs), "--out", str(out), "--course", str(ROOT), "--workers", "1", "--timeout", "20"]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=dict(os.environ))


@pytest.mark.parametrize(
    "header, payload",
    [
        ({"kind": "result", "value": {"array": 0}, "arrays": [["O", [1]]]}, b"\0" * 8),  # objects: pickle's way in
        ({"kind": "result", "value": {"array": 0}, "arrays": [["V16", [1]]]}, b"\0" * 16),
        ({"kind": "result", "value": {"array": 0}, "arrays": [["<f8", [1 << 40]]]}, b""),  # more than it may send
        ({"kind": "result", "value": {"array": 3}, "arrays": []}, b""),
        ({"kind": "result", "value": {"exec": "print(1)"}, "arrays": []}, b""),
        ("[" * 100_000 + "]" * 100_000, b""),  # nested past the JSON parser's depth
    ],
)
def test_the_channel_refuses_whatever_is_not_an_answer_of_numbers(header, payload):
    """What a student's code writes into the re-run's channel is decoded strictly: the
    worker gets a ProtocolError for that case, never an object, a crash or a huge buffer."""
    from poolkit.grader import rerun

    text = (header if isinstance(header, str) else json.dumps(header)).encode()
    reading, writing = os.pipe()

    def send():  # from a thread: a header of 200 kB does not fit in a pipe
        with os.fdopen(writing, "wb") as stream:
            stream.write(len(text).to_bytes(4, "big") + text + payload)

    threading.Thread(target=send, daemon=True).start()
    try:
        with pytest.raises(rerun.ProtocolError):
            rerun.Channel(reading, -1).receive(deadline=time.monotonic() + 10)
    finally:
        os.close(reading)
