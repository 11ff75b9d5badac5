"""The out-of-kernel re-run: the one place the grader asks a student's code for answers.

The grader (:func:`poolkit.grader.autograde.confirm`) starts this file as a
script (``python -I -B rerun.py``) in a fresh, sandboxed process of its own, in
which the poolkit package is not importable, and talks to it through the
process's stdin and stdout: pipes the grader opened, never a file a student
can write. The conversation:

1. grader: ``{"kind": "job", "cells": [...], "timeout": seconds, "framework":
   "pytorch" or "mxnet", "lock": [frameworks]}`` (the notebook's framework: the
   kind of arrays its functions are handed);
2. this process makes the pooling of each framework in ``lock`` unavailable
   (:mod:`poolkit.grader.lockout`, below Python where the framework allows it),
   runs the student's cells, and answers ``{"kind": "ready", "framework": ...,
   "refused": [...]}`` (the cells the lockout stopped);
3. for each case, grader: ``{"kind": "case", "function": name, "line_budget":
   n or None}`` with the case's arguments, whose inputs exist
   nowhere before this message (the hidden ones are drawn from the grader's
   seed); this process: ``{"kind": "result"}`` with the function's answer, or
   ``{"kind": "problem", "message": why}``;
4. the grader closes stdin, and this process ends (its sandbox with it).

Every message is a frame: a 4-byte length, a JSON header, then the raw bytes of
the arrays the header names. Decoding is strict (:meth:`Channel.receive`):
arrays of numbers only (bool, integer and float dtypes), bounded sizes, no
pickle, no objects. The student's code shares this process and can write into
the channel too, but what it writes is only ever an answer that the grader
judges itself, in a process where no student code runs, against inputs the
student's code sees only when it is asked.

Only the standard library and NumPy are imported at module level: the grader
imports this module for :class:`Channel`, :func:`to_framework` and
:func:`to_numpy`, and the re-run process runs it.
"""

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import linecache
import os
import select
import signal
import struct
import sys
import time
import traceback
import types
from collections import Counter
from typing import Callable

import numpy as np

FRAMEWORKS = ("pytorch", "mxnet")
MAX_HEADER = 1 << 20  # bytes of JSON in one message
MAX_PAYLOAD = 1 << 28  # bytes of arrays in one message
MAX_MESSAGE_TEXT = 2_000  # characters of a problem's message kept


def _load_lockout():
    """:mod:`poolkit.grader.lockout`, loaded by path from beside this file (poolkit is not
    importable in the re-run; it imports only the standard library until a lock is asked for)."""
    spec = importlib.util.spec_from_file_location("poolkit_lockout", os.path.join(os.path.dirname(os.path.abspath(__file__)), "lockout.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LOCKOUT = _load_lockout()
#: What every refusal of a framework's (or poolkit's) pooling says (the lockout's
#: message): the grader flags a student whose answers carry it.
LOCKED_OUT = _LOCKOUT.MESSAGE
_LENGTH = struct.Struct(">I")
_NUMBER_KINDS = "biuf"


class ProtocolError(ValueError):
    """A message that breaks the format: the case it answers gets no credit."""


# --- arrays in the student's framework and back -------------------------------


def to_framework(value, framework):
    """``value`` with every NumPy array in it turned into an array of ``framework`` (a fresh copy)."""
    if isinstance(value, np.ndarray):
        if framework == "pytorch":
            import torch

            return torch.tensor(value)
        import mxnet as mx

        return mx.nd.array(value, dtype=value.dtype)
    if isinstance(value, tuple):
        return tuple(to_framework(item, framework) for item in value)
    if isinstance(value, list):
        return [to_framework(item, framework) for item in value]
    return value


def to_numpy(value):
    """A student's result as NumPy: arrays of any framework, numbers, and tuples or lists of them."""
    module = type(value).__module__.split(".", 1)[0]
    if module == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if module == "mxnet" and hasattr(value, "asnumpy"):
        return value.asnumpy()
    if isinstance(value, (tuple, list)):
        items = [to_numpy(item) for item in value]
        if all(item.ndim == 0 for item in items if isinstance(item, np.ndarray)) and all(isinstance(item, np.ndarray) for item in items):
            return np.array(items)
        return tuple(items)
    return np.asarray(value)


# --- the wire format --------------------------------------------------------------


def _pack(value, arrays):
    """``value`` as JSON with its arrays moved to ``arrays``: containers are tagged, so nothing is ambiguous."""
    if isinstance(value, np.ndarray):
        arrays.append(np.asarray(value, order="C"))  # not ascontiguousarray: it makes 0-d arrays 1-d
        return {"array": len(arrays) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"tuple": [_pack(item, arrays) for item in value]}
    if isinstance(value, list):
        return {"list": [_pack(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[str(key), _pack(item, arrays)] for key, item in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__}")


def _unpack(value, arrays, depth=0):
    if depth > 32:
        raise ProtocolError("nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (tag, content), = value.items()
        if tag == "array" and type(content) is int and 0 <= content < len(arrays):
            return arrays[content]
        if tag in ("tuple", "list") and isinstance(content, list):
            items = [_unpack(item, arrays, depth + 1) for item in content]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict" and isinstance(content, list) and all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in content):
            return {key: _unpack(item, arrays, depth + 1) for key, item in content}
    raise ProtocolError("a value of no known form")


def _dtype(text):
    """A dtype the format accepts: booleans, integers and floats, at most 8 bytes, no objects."""
    try:
        dtype = np.dtype(text) if isinstance(text, str) and len(text) <= 8 else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _NUMBER_KINDS or dtype.itemsize > 8 or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError(f"not an array of numbers (dtype {text!r})")
    return dtype


class Channel:
    """Framed messages over a pair of file descriptors (see the module docstring)."""

    def __init__(self, reading: int, writing: int):
        self.reading, self.writing = reading, writing

    def send(self, header: dict, value=None) -> None:
        arrays: list = []
        body = dict(header, value=_pack(value, arrays), arrays=[[array.dtype.str, list(array.shape)] for array in arrays])
        text = json.dumps(body, allow_nan=True).encode()
        data = _LENGTH.pack(len(text)) + text + b"".join(array.tobytes() for array in arrays)
        view = memoryview(data)
        while view:
            view = view[os.write(self.writing, view) :]

    def _read(self, size, deadline):
        chunks, left = [], size
        while left:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.reading], [], [], wait)[0]:
                    raise TimeoutError("no answer in time")
            chunk = os.read(self.reading, min(left, 1 << 20))
            if not chunk:
                raise EOFError("the channel closed")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def receive(self, deadline: float | None = None) -> tuple[dict, object]:
        """The next message: ``(header, value)``. Raises :class:`ProtocolError` for a
        malformed one, ``EOFError`` at the end, ``TimeoutError`` past ``deadline``
        (a ``time.monotonic()`` value)."""
        (length,) = _LENGTH.unpack(self._read(_LENGTH.size, deadline))
        if length > MAX_HEADER:
            raise ProtocolError(f"a header of {length} bytes (at most {MAX_HEADER})")
        try:
            header = json.loads(self._read(length, deadline))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # nested past the parser's depth, too
            raise ProtocolError(f"a header that is not JSON: {type(error).__name__}") from None
        if not isinstance(header, dict) or not isinstance(header.get("kind"), str) or not isinstance(header.get("arrays"), list):
            raise ProtocolError("a header without its kind and arrays")
        shapes, total = [], 0
        for entry in header.pop("arrays"):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
                raise ProtocolError("an array without dtype and shape")
            dtype, shape = _dtype(entry[0]), entry[1]
            if len(shape) > 8 or not all(type(size) is int and size >= 0 for size in shape):
                raise ProtocolError(f"an array of shape {shape!r}")
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            total += size
            if total > MAX_PAYLOAD:
                raise ProtocolError(f"more than {MAX_PAYLOAD} bytes of arrays")
            shapes.append((dtype, tuple(shape), size))
        arrays = [np.frombuffer(self._read(size, deadline), dtype).reshape(shape).copy() if size else np.zeros(shape, dtype) for dtype, shape, size in shapes]
        return header, _unpack(header.pop("value", None), arrays)


# --- the re-run process -------------------------------------------------------------

#: What the stand-in poolkit of the re-run process offers: the exercises'
#: common cell imports ``check``; here it only returns 0 (the grader counts).
_STUB_GRADER = "def check(*args, **kwargs):\n    return 0.0\n"


class _StandInPoolkit(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A meta path finder serving ``poolkit`` and ``poolkit.grader`` as stand-ins
    (``check`` only) and refusing every other poolkit module: its backends are
    not importable where the student's code is re-run. Below it, the sandbox
    leaves poolkit's folder empty."""

    def find_spec(self, name, path=None, target=None):
        if name == "poolkit" or name.startswith("poolkit."):
            if name not in ("poolkit", "poolkit.grader"):
                raise ImportError(f"{name} is not available when the grader re-runs your code: poolkit holds {LOCKED_OUT}", name=name)
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
        if module.__name__ == "poolkit.grader":
            exec(_STUB_GRADER, module.__dict__)


def describe(error: BaseException, is_own: Callable[[str], bool]) -> str:
    """An exception as the student should see it: its type, its message, and the line
    of their own code (a file name for which ``is_own`` is true) that raised it."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(error, NotImplementedError) and not str(error):
        text = "NotImplementedError: the function is not written yet"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if is_own(frame.filename)]
    if frames:
        frame = frames[-1]
        text += f" (raised at line {frame.lineno} of your code, in {frame.name}: {(frame.line or '').strip()!r})"
    return text


def function_name(code: types.CodeType) -> str:
    """The student's function a code object belongs to: its own name, or that of
    the function it is defined in (a comprehension, a nested helper)."""
    return getattr(code, "co_qualname", code.co_name).split(".<locals>.")[0]


@contextlib.contextmanager
def counting_lines(is_own: Callable[[types.FrameType], bool]):
    """Count the lines run inside the block in code for which ``is_own(frame)`` holds
    (asked once per code object), by function: yields a Counter of lines per
    :func:`function_name`.

    Best effort: the student's code can remove the tracer. In the re-run the
    grader's own guard is time, measured from its side of the channel.
    """
    counts: Counter = Counter()
    names: dict = {}  # code object -> its function's name, or None where it is not the student's

    def trace(frame, event, arg):
        code = frame.f_code
        if code not in names:
            names[code] = function_name(code) if is_own(frame) else None
        if names[code] is None:
            return None
        if event == "line":
            counts[names[code]] += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        yield counts
    finally:
        sys.settrace(previous)


def too_many_lines(function: str, budget: int, counts: Counter) -> str:
    """The message for a case of ``function`` that ran more than ``budget`` lines
    (``counts``, from :func:`counting_lines`), naming the function that ran most
    of them where it is not the one graded (a backward pass that calls a forward
    with a loop over the outputs)."""
    message = f"ran {sum(counts.values())} lines of Python for this case (at most {budget})"
    busiest, lines = counts.most_common(1)[0]
    if busiest != function:
        return f"{message}, {lines} of them in {busiest}, which {function} calls: loop over the window's offsets in {busiest}, not over every output element"
    return f"{message}: loop over the window's offsets, not over every output element"


def _in_cell(filename):
    return filename.startswith("<cell ")


def _describe(error):
    return describe(error, _in_cell)[:MAX_MESSAGE_TEXT]


def _answer(function, framework, header, args, kwargs):
    """What the student's ``function`` gives for one case, its arguments handed over as
    ``framework``'s arrays: ``(reply header, value)``."""
    if not callable(function):
        return {"kind": "problem", "message": f"{header.get('function')} is not a function (got {type(function).__name__})"}, None
    budget = header.get("line_budget")
    try:
        call_args, call_kwargs = to_framework(args, framework), {name: to_framework(value, framework) for name, value in kwargs.items()}
        with contextlib.ExitStack() as stack:
            counts = stack.enter_context(counting_lines(lambda frame: _in_cell(frame.f_code.co_filename))) if budget else Counter()
            result = function(*call_args, **call_kwargs)
        if budget and sum(counts.values()) > budget:
            return {"kind": "problem", "message": too_many_lines(header.get("function"), budget, counts)}, None
        value = to_numpy(result)
    except BaseException as error:  # the student's bug, or the locked-out pooling: reported, and on to the next case
        return {"kind": "problem", "message": _describe(error)}, None
    parts = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(part, np.ndarray) and part.dtype.kind in _NUMBER_KINDS and part.dtype.itemsize <= 8 for part in parts):
        return {"kind": "problem", "message": "the result is not an array of numbers"}, None
    return {"kind": "result"}, value


def main():
    """The re-run process: the conversation of the module docstring, on stdin and stdout."""
    channel = Channel(os.dup(0), os.dup(1))
    silent = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # what the student's code prints goes nowhere
        os.dup2(silent, fd)
    header, _ = channel.receive()
    if header.get("lock"):
        locks = {"pytorch": _LOCKOUT.lock_torch, "mxnet": _LOCKOUT.lock_mxnet}
        for name in header["lock"]:
            locks[name]()
    sys.meta_path.insert(0, _StandInPoolkit())
    transform: Callable[[str], str] = str
    if any(line.lstrip().startswith(("%", "!")) for source in header.get("cells", []) for line in source.splitlines()):
        try:  # the notebook's %magics and !commands, as the kernel read them (IPython takes a third of a second to import)
            from IPython.core.inputtransformer2 import TransformerManager

            transform = TransformerManager().transform_cell
        except ImportError:
            pass

    namespace = {"__name__": "__main__"}
    refused = []  # cells stopped by the lockout: the grader says why the functions are missing
    for number, source in enumerate(header.get("cells", [])):
        name = f"<cell {number + 1}>"
        try:
            code = transform(source)
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)
            exec(compile(code, name, "exec"), namespace)
        except BaseException as error:  # the notebook run already reported it; go on as the kernel did
            if LOCKED_OUT in str(error):
                refused.append(f"cell {number + 1}: {_describe(error)}")
    framework = header.get("framework") if header.get("framework") in FRAMEWORKS else "pytorch"
    channel.send({"kind": "ready", "framework": framework, "refused": refused[:3]})

    def stop(*_):
        raise TimeoutError("this case ran past the grader's time limit")

    signal.signal(signal.SIGALRM, stop)
    while True:
        try:
            case, value = channel.receive()
        except EOFError:
            break
        args, kwargs = value if isinstance(value, tuple) and len(value) == 2 else ((), {})
        signal.alarm(max(1, int(header.get("timeout", 30))))
        try:
            reply, answer = _answer(namespace.get(case.get("function", "")), framework, case, args, kwargs)
        finally:
            signal.alarm(0)
        channel.send(reply, answer)
    os._exit(0)


if __name__ == "__main__":
    main()
