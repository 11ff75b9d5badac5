"""Grading helpers for the course's exercises: run a student's function on
fixed and random cases, compare it with poolkit's reference, and say exactly
what is wrong.

Every exercise question is a :class:`Question` in the course's
``solutions/questions.py`` (:mod:`poolkit.grader.course` finds it), keyed by
the nbgrader ``grade_id`` of its test cell. A test cell calls
:func:`check` once for the visible cases and once (between nbgrader's hidden
test markers) for the hidden ones, and ends with the points earned, which
nbgrader reads as the cell's partial credit::

    score = check("pool2d_max", pool2d, FRAMEWORK)
    ### BEGIN HIDDEN TESTS
    score += check("pool2d_max", pool2d, FRAMEWORK, hidden=True)
    ### END HIDDEN TESTS
    score

A question's points are shared equally by its cases. What a case reports when
it fails: the wrong shape (expected vs got), the first wrong element (its index
and both values), a likely cause where the answer matches a known mistake, an
exception with the line of the student's own code that raised it, or the use of
a framework's (or poolkit's) own pooling where the exercise is to write it.

The same two steps run out of the student's process when an instructor grades
(:mod:`poolkit.grader.autograde`): :func:`call_case` in a sandboxed process that holds
the student's code, :func:`judge` in the grader's.

Examples
--------
>>> import numpy as np
>>> judge(Question("q", "f", 1, lambda x: x * 2, (Case("", (np.ones(2),)),)), Case("twos", (np.ones(2),)), np.array([2.0, 3.0]), None).message
'first wrong element at [1]: expected 2.0, got 3.0'
"""

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np

from .rerun import FRAMEWORKS, counting_lines, describe, to_framework, to_numpy
from .rerun import LOCKED_OUT as FORBIDDEN_POOLING

# poolkit's own code (the library and the grader) is never the student's.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(sorted({os.path.realpath(path) for path in (sys.prefix, sys.base_prefix, sys.exec_prefix)}))


@dataclass(frozen=True)
class Case:
    """One call of the student's function: ``function(*args, **kwargs)``.

    NumPy arrays among the arguments are handed to the student as arrays of
    their framework (torch tensors or MXNet NDArrays); everything else as is.
    """

    label: str
    args: tuple
    kwargs: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    """One graded test cell: the student's function, its reference and cases.

    Parameters
    ----------
    key : str
        The nbgrader ``grade_id`` of the test cell that grades it.
    function : str
        The name of the function the student writes.
    points : float
        The test cell's points, shared equally by all its cases.
    reference : callable
        The right answer, called with the case's arguments (as NumPy arrays).
    visible : tuple of Case
        The cases the released notebook checks (fixed inputs, shown to students).
    hidden : callable
        ``hidden(rng)``: the cases only the grader counts, their inputs drawn
        from the ``numpy.random.Generator`` it is given (the grader's seed when
        grading, fresh entropy anywhere else: see :meth:`hidden_cases`).
    mistakes : mapping of str to callable
        A likely cause, and what a function with that mistake returns for the
        same arguments: a wrong answer equal to it is reported with the cause.
    forbid_pooling : bool
        Whether calling a framework's (or poolkit's) pooling fails the case.
    line_budget : int, optional
        The most lines of the student's Python a case may run; a loop over every
        output pixel runs far more, a loop over the window's offsets far fewer.
        The student's own process counts them (a help, which their code can
        switch off); the grader's guard is ``timed``.
    timed : callable, optional
        ``timed(rng)``: a large case that only a function without a Python loop
        over the outputs answers within ``time_budget`` seconds, timed by the
        grader from its side of the re-run's channel. It is no case of its own:
        failing it (too slow or wrong) fails every case of the question.
    rtol, atol : float
        The tolerance of the comparison (NaN matches NaN).
    """

    key: str
    function: str
    points: float
    reference: Callable
    visible: tuple
    hidden: Callable[[np.random.Generator], tuple] = lambda rng: ()
    mistakes: Mapping[str, Callable] = field(default_factory=dict)
    forbid_pooling: bool = True
    line_budget: Optional[int] = None
    timed: Optional[Callable[[np.random.Generator], Case]] = None
    time_budget: float = 2.0
    rtol: float = 1e-5
    atol: float = 1e-6

    def hidden_cases(self, rng: Optional[np.random.Generator] = None) -> tuple:
        """The hidden cases drawn from ``rng`` (default: a generator seeded from the OS's entropy)."""
        return tuple(self.hidden(np.random.default_rng() if rng is None else rng))

    def cases(self, hidden=False, rng=None):
        return self.hidden_cases(rng) if hidden else self.visible

    @property
    def hidden_count(self) -> int:
        # The same for every draw: only the inputs are random.
        return len(self.hidden_cases(np.random.default_rng(0)))

    @property
    def points_per_case(self):
        return self.points / (len(self.visible) + self.hidden_count)


@dataclass
class Outcome:
    """What one case gave: passed, or a message that says what is wrong."""

    case: Case
    passed: bool
    message: str = ""


def question(key):
    """The :class:`Question` graded by the test cell with ``grade_id`` ``key``."""
    from .course import questions

    known = questions()
    if key not in known:
        raise KeyError(f"no exercise question has key={key!r}; known: {', '.join(sorted(known))}")
    return known[key]


# --- arrays in the student's framework and back -------------------------------


def check_framework(framework):
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got framework={framework!r}")
    return framework


# --- what is wrong with an answer ---------------------------------------------


def _number(value):
    value = value.item() if hasattr(value, "item") else value
    return repr(value)


def difference(expected, got, rtol=1e-5, atol=1e-6):
    """Why ``got`` is not ``expected``, or None when it is (NaN equals NaN).

    Examples
    --------
    >>> difference(np.zeros((2, 2)), np.zeros((3, 3)))
    'wrong shape: expected (2, 2), got (3, 3)'
    >>> difference(np.array([1.0, np.nan]), np.array([1.0, np.nan])) is None
    True
    """
    if isinstance(expected, tuple) or isinstance(got, tuple):
        if not (isinstance(expected, tuple) and isinstance(got, tuple)) or len(expected) != len(got):
            count = len(expected) if isinstance(expected, tuple) else 1
            return f"wrong result: expected {count} value{'s' if count != 1 else ''}, got {len(got) if isinstance(got, tuple) else 1}"
        for position, (want, have) in enumerate(zip(expected, got)):
            problem = difference(want, have, rtol, atol)
            if problem:
                return f"result {position}: {problem}"
        return None
    if got.dtype == object or got.dtype.kind not in "biuf":
        return f"wrong type: expected numbers, got {got.dtype} values"
    if got.shape != expected.shape:
        return f"wrong shape: expected {expected.shape}, got {got.shape}"
    want, have = expected.astype(np.float64), got.astype(np.float64)
    close = np.isclose(have, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    where = f"[{', '.join(map(str, index))}]"
    return f"first wrong element at {where}: expected {_number(expected[index])}, got {_number(got[index])}"


def _is_student_file(filename):
    path = os.path.realpath(filename)
    return not (path.startswith(_PACKAGE_DIR) or path.startswith(_LIBRARY_DIRS))


def _in_library_module(name):
    """Whether code runs in the globals of a library's module: code with no file
    of its own, such as the operators MXNet generates with ``exec``, NumPy's
    ``__array_function__`` dispatchers and importlib's frozen bootstrap."""
    module = sys.modules.get(name) if name and name != "__main__" else None
    filename = getattr(module, "__file__", None)
    return bool(filename) and not _is_student_file(filename)


def describe_exception(error):
    """An exception as the student should see it: its type, message, and the line of their code that raised it."""
    return describe(error, _is_student_file)


# --- calling the student's function -------------------------------------------


@contextlib.contextmanager
def pooling_tripwire():
    """Record, by name, every framework or poolkit pooling operation called inside the block.

    The calls still run (the student's code goes on), but a case whose answer
    used one is not credited. Catches aliases (``from torch.nn.functional import
    max_pool2d as mp``) too: torch through a function mode that sees every torch
    operation, MXNet at its one operator entry point, poolkit through its
    dispatch hook (:func:`poolkit.dispatch.observe`), which sees the public
    functions and every backend entry point, called directly or not.
    """
    used: list[str] = []
    with contextlib.ExitStack() as stack:
        from ..dispatch import observe

        stack.enter_context(observe(used.append))
        if "torch" in sys.modules:
            stack.enter_context(_torch_pooling_mode(used))
        if "mxnet" in sys.modules:
            _patch_mxnet(stack, used)
        yield used


def _torch_pooling_mode(used):
    from torch.overrides import TorchFunctionMode

    class PoolingMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", str(func))
            if "pool" in name.lower():
                used.append(f"torch {name}")
            return func(*args, **(kwargs or {}))

    return PoolingMode()


def _patch_mxnet(stack, used):
    import mxnet.gluon.nn.conv_layers as layers
    import mxnet.ndarray.register as register

    invoke = register._imperative_invoke

    def recording_invoke(*args, **kwargs):
        operator = sys._getframe(1).f_code.co_name  # the generated operator function that called it
        if "pool" in operator.lower():
            used.append(f"mxnet {operator}")
        return invoke(*args, **kwargs)

    register._imperative_invoke = recording_invoke
    stack.callback(setattr, register, "_imperative_invoke", invoke)
    forward = layers._Pooling.forward

    def recording_forward(self, *args, **kwargs):
        used.append(f"mxnet.gluon {type(self).__name__}")
        return forward(self, *args, **kwargs)

    layers._Pooling.forward = recording_forward
    stack.callback(setattr, layers._Pooling, "forward", forward)


def _counting_lines():
    """Count the lines of the student's own Python run inside the block."""
    return counting_lines(lambda frame: _is_student_file(frame.f_code.co_filename) and not _in_library_module(frame.f_globals.get("__name__")))


def call_case(question, function, case, framework):
    """Run the student's ``function`` on ``case``: ``(result as NumPy, None)``, or
    ``(None, why it could not be credited)``."""
    if not callable(function):
        return None, f"{question.function} is not a function (got {type(function).__name__})"
    args = to_framework(case.args, framework)
    kwargs = {name: to_framework(value, framework) for name, value in case.kwargs.items()}
    with contextlib.ExitStack() as stack:
        used = stack.enter_context(pooling_tripwire()) if question.forbid_pooling else []
        lines = stack.enter_context(_counting_lines()) if question.line_budget else [0]
        try:
            result = function(*args, **kwargs)
        except Exception as error:  # the student's bug, reported; the grading goes on
            return None, describe_exception(error)
    if used:
        return None, f"used {used[0]}, {FORBIDDEN_POOLING}: not credited"
    if question.line_budget and lines[0] > question.line_budget:
        return None, (
            f"ran {lines[0]} lines of Python for this case (at most {question.line_budget}): "
            "loop over the window's offsets, not over every output element"
        )
    try:
        return to_numpy(result), None
    except Exception as error:
        return None, f"the result is not an array or a number ({type(result).__name__}): {error}"


def judge(question, case, result, problem):
    """Compare a result of :func:`call_case` with the reference: an :class:`Outcome`."""
    if problem:
        return Outcome(case, False, problem)
    expected = to_numpy(question.reference(*case.args, **case.kwargs))
    message = difference(expected, result, question.rtol, question.atol)
    if message is None:
        return Outcome(case, True)
    for cause, mistaken in question.mistakes.items():
        try:
            if difference(to_numpy(mistaken(*case.args, **case.kwargs)), result, question.rtol, question.atol) is None:
                message += f". Likely cause: {cause}"
                break
        except Exception:  # a mistake that cannot be made on this case
            continue
    return Outcome(case, False, message)


def run(key, function, framework="pytorch", hidden=False):
    """All outcomes of one question's visible (or hidden) cases for the student's ``function``."""
    check_framework(framework)
    item = question(key)
    return [judge(item, case, *call_case(item, function, case, framework)) for case in item.cases(hidden)]


def check(key, function, framework="pytorch", *, hidden=False):
    """Grade ``function`` on a question's visible (or hidden) cases, print a
    report, and return the points earned on them.

    Parameters
    ----------
    key : str
        The question, which is its test cell's nbgrader ``grade_id``.
    function : callable
        The student's function.
    framework : {"pytorch", "mxnet"}
        The kind of arrays the student's function takes and returns.
    hidden : bool
        Run the hidden cases instead of the visible ones.

    Returns
    -------
    float
        The points earned on these cases: the question's points times the
        share of all its cases (visible and hidden) that passed here.

    Examples
    --------
    >>> import numpy as np
    >>> def pool2d(X, pool_size, mode="max"):
    ...     raise NotImplementedError()
    >>> check("pool2d_max", pool2d, "pytorch")  # doctest: +ELLIPSIS
    pool2d_max: 0 of ... visible cases passed (PyTorch)
      FAIL ...: NotImplementedError: the function is not written yet (raised at line 2 of your code, ...)
    ...
    0.0
    """
    outcomes = run(key, function, framework, hidden)
    item = question(key)
    passed = sum(outcome.passed for outcome in outcomes)
    kind = "hidden" if hidden else "visible"
    print(f"{key}: {passed} of {len(outcomes)} {kind} cases passed ({'PyTorch' if framework == 'pytorch' else 'MXNet'})")
    for outcome in outcomes:
        print(f"  ok   {outcome.case.label}" if outcome.passed else f"  FAIL {outcome.case.label}: {outcome.message}")
    if not hidden and item.hidden_count:
        print(f"  (the grader also runs {item.hidden_count} hidden case{'s' if item.hidden_count != 1 else ''}, on inputs it draws when it grades)")
    return round(passed * item.points_per_case, 6)
