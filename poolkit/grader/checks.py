"""Grading helpers for the course's exercises: run a student's function on
fixed and random cases, compare it with poolkit's reference, and say exactly
what is wrong.

Every exercise question is a :class:`Question` in the course's
``solutions/questions.py`` (:mod:`poolkit.grader.course` finds it), keyed by
the nbgrader ``grade_id`` of its test cell. A test cell calls
:func:`check` once for the visible cases and once (between nbgrader's hidden
test markers) for the hidden ones, and ends with the :class:`Score`, which
nbgrader reads as the cell's partial credit::

    score = check("pool2d_max", pool2d, FRAMEWORK)
    ### BEGIN HIDDEN TESTS
    score += check("pool2d_max", pool2d, FRAMEWORK, hidden=True)
    ### END HIDDEN TESTS
    score

A question's points are shared equally by its cases. The release holds the
visible check only, so a notebook in the student's hands shows the question's
full points once every visible case passes (nbgrader's Validate then reports no
failure), and the sum of both parts in the grader's copy of the cell. What a
case reports when it fails: the wrong shape (expected vs got, and whether it is
off by one), the first wrong element (its index, both values, and the part of
the input it depends on), a likely cause where the answer matches a known
mistake, an exception with the line of the student's own code that raised it,
or the use of a framework's (or poolkit's) own pooling where the exercise is to
write it.

The same two steps run out of the student's process when an instructor grades
(:mod:`poolkit.grader.autograde`): :func:`call_case` in a sandboxed process that holds
the student's code, :func:`judge` in the grader's.

Examples
--------
>>> import numpy as np
>>> judge(Question("q", "f", 1, lambda x: x * 2, (Case("", (np.ones(2),)),)), Case("twos", (np.ones(2),)), np.array([2.0, 3.0]), None).message
'first wrong element at [1]: expected 2, got 3'
"""

import contextlib
import os
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .rerun import FRAMEWORKS, counting_lines, describe, to_framework, to_numpy, too_many_lines
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
    reads : callable, optional
        ``reads(index, *args, **kwargs)``: what the output element at ``index``
        depends on, as a list of ``(name, array, region)``: an input array of the
        case under the name of the student's parameter, and the index (ints and
        slices) of the part of it that element is computed from. A wrong element
        is reported with that part of the input.
    per_framework : mapping of str to mapping, optional
        Where the right answer depends on the student's framework (MXNet's
        conventions are not PyTorch's): for a framework, the ``reference``,
        ``mistakes`` or ``reads`` that replace the question's own in that
        track (:meth:`in_framework`). The cases and points are the same in
        both, as the notebook's test cell is.
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
    reads: Optional[Callable[..., list]] = None
    per_framework: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def in_framework(self, framework: str) -> "Question":
        """The question as the ``framework`` track grades it: its own reference,
        mistakes and reads, or those that ``per_framework`` gives that track."""
        check_framework(framework)
        changes: dict[str, Any] = dict(self.per_framework.get(framework, {}))
        unknown = set(changes) - _PER_FRAMEWORK
        if unknown:
            raise ValueError(f"{self.key}: per_framework may change only {sorted(_PER_FRAMEWORK)}, got {sorted(unknown)}")
        return replace(self, per_framework={}, **changes) if changes else self

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


#: What a question may change from one framework's track to the other's (never its cases or points).
_PER_FRAMEWORK = frozenset({"reference", "mistakes", "reads"})


class Score(float):
    """What :func:`check` returns: the number nbgrader reads as a test cell's
    partial credit, which says in words (in Jupyter) what it counts.

    nbgrader takes a test cell's result as the points it earned, and its
    Validate reports any result below the cell's points as a failure. The
    student's notebook runs the visible cases only, which hold part of the
    points, so the visible part counts as the question's full points once every
    visible case passes, and as the points its cases earned otherwise. Adding
    another part of the same question (the grader's copy of the cell adds the
    hidden part) gives the points earned on all the cases counted.

    It is never a grade: ``poolkit grade`` scores each question from its own
    re-run of the student's code (:mod:`poolkit.grader.autograde`).

    Parameters
    ----------
    key : str
        The question.
    points : float
        The question's points.
    earned : float
        The points its cases earned (each case a share of ``points``).
    passed, cases : int
        How many cases passed, of how many.
    kinds : frozenset of str
        The parts counted: ``"visible"``, ``"hidden"`` or both.
    hidden_count : int
        How many hidden cases the question has.

    Examples
    --------
    >>> visible = Score("q", 3, 1.5, 3, 3, frozenset({"visible"}), 3)
    >>> visible, visible + Score("q", 3, 1.0, 2, 3, frozenset({"hidden"}), 3)
    (3.0, 2.5)
    >>> print(visible.summary())
    q: all 3 visible cases pass; its 3 hidden cases are graded later (the question has 3 points)
    """

    key: str
    points: float
    earned: float
    passed: int
    cases: int
    kinds: frozenset
    hidden_count: int

    def __new__(cls, key, points, earned, passed, cases, kinds, hidden_count):
        complete = kinds == frozenset({"visible"}) and passed == cases
        score = super().__new__(cls, points if complete else earned)
        score.key, score.points, score.earned = key, points, earned
        score.passed, score.cases, score.kinds, score.hidden_count = passed, cases, frozenset(kinds), hidden_count
        return score

    def __add__(self, other):
        if isinstance(other, Score) and other.key == self.key:
            return Score(self.key, self.points, round(self.earned + other.earned, 6), self.passed + other.passed, self.cases + other.cases, self.kinds | other.kinds, self.hidden_count)
        return float(self) + other

    def __reduce__(self):
        return Score, (self.key, self.points, self.earned, self.passed, self.cases, self.kinds, self.hidden_count)

    def __repr__(self):
        # nbgrader reads the result's plain text as a number.
        return repr(float(self))

    __str__ = __repr__

    def summary(self):
        """What the score counts, in a sentence."""
        if self.kinds == frozenset({"visible"}):
            later = f"its {_count(self.hidden_count, 'hidden case')} {'are' if self.hidden_count != 1 else 'is'} graded later" if self.hidden_count else "it has no hidden cases"
            if self.passed == self.cases:
                return f"{self.key}: all {_count(self.cases, 'visible case')} pass; {later} (the question has {self.points:g} points)"
            return f"{self.key}: {self.passed} of {_count(self.cases, 'visible case')} pass ({self.earned:g} of the question's {self.points:g} points); {later}"
        counted = "visible and hidden cases" if len(self.kinds) == 2 else f"{next(iter(self.kinds))} cases"
        return f"{self.key}: {self.passed} of {self.cases} {counted} pass: {self.earned:g} of {self.points:g} points"

    def _repr_markdown_(self):
        return f"`{self.key}`{self.summary()[len(self.key):]}"


def _count(number, noun):
    return f"{number} {noun}{'s' if number != 1 else ''}"


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


def _numbers(*values):
    """The numbers as text, with as few significant digits (at least 4) as tell them apart."""
    items = [value.item() if hasattr(value, "item") else value for value in values]
    if all(isinstance(item, (bool, int)) for item in items):
        return [str(item) for item in items]
    items = [float(item) for item in items]
    for digits in range(4, 18):
        texts = [f"{item:.{digits}g}" for item in items]
        if len(set(texts)) == len(set(items)):
            return texts
    return [repr(item) for item in items]


def _array_text(array):
    """A small array on one line, its numbers to 4 significant digits."""
    text = np.array2string(np.asarray(array), separator=", ", max_line_width=1 << 20, formatter={"float_kind": lambda value: f"{value:.4g}"}, threshold=1 << 20)
    return " ".join(text.split())


def _index_text(index):
    parts = []
    for item in index:
        if isinstance(item, slice):
            parts.append(f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}")
        else:
            parts.append(str(item))
    return f"[{', '.join(parts)}]"


def _shape_text(shape):
    return "x".join(map(str, shape)) if shape else "a number"


def _off_by_one(expected, got):
    """How ``got``, a shape, is off by one from ``expected`` in its last two axes
    (the output size of pooling): 'one row and one column too few', or None."""
    if len(expected) != len(got) or expected[:-2] != got[:-2] or any(abs(a - b) > 1 for a, b in zip(expected, got)):
        return None
    names = ["element"] if len(got) == 1 else [*([""] * (len(got) - 2)), "row", "column"]
    few = [name for name, a, b in zip(names, expected, got) if b == a - 1]
    many = [name for name, a, b in zip(names, expected, got) if b == a + 1]
    parts = [f"one {' and one '.join(group)} too {word}" for group, word in ((few, "few"), (many, "many")) if group]
    return " and ".join(parts) if parts else None


def difference(expected, got, rtol=1e-5, atol=1e-6):
    """Why ``got`` is not ``expected``, or None when it is (NaN equals NaN).

    Examples
    --------
    >>> difference(np.zeros((2, 2)), np.zeros((3, 3)))
    'wrong shape: expected (2, 2), got (3, 3): one row and one column too many, an off-by-one in the output size'
    >>> difference(np.array([1.0, np.nan]), np.array([1.0, np.nan])) is None
    True
    >>> difference(np.array(2), np.array(3))
    'wrong value: expected 2, got 3'
    >>> difference(np.array([0.4935741775627903]), np.array([0.09536174684762955]))
    'first wrong element at [0]: expected 0.4936, got 0.09536'
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
        message = f"wrong shape: expected {expected.shape}, got {got.shape}"
        off = _off_by_one(expected.shape, got.shape)
        return f"{message}: {off}, an off-by-one in the output size" if off else message
    index = first_wrong(expected, got, rtol, atol)
    if index is None:
        return None
    wanted, found = _numbers(expected[index], got[index])
    if not index:
        return f"wrong value: expected {wanted}, got {found}"
    return f"first wrong element at {_index_text(index)}: expected {wanted}, got {found}"


def first_wrong(expected, got, rtol=1e-5, atol=1e-6):
    """The index of the first element of ``got`` that is not ``expected``'s, or None
    (also where the two are not arrays of numbers of the same shape)."""
    if not (isinstance(expected, np.ndarray) and isinstance(got, np.ndarray)) or got.shape != expected.shape or got.dtype.kind not in "biuf":
        return None
    close = np.isclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    return None if close.all() else tuple(int(i) for i in np.argwhere(~close)[0])


#: The most elements of an input, or of the part of it a wrong element depends on, shown in a message.
SHOWN_ELEMENTS = 25


def _inputs_text(question, case, index):
    """The part of the case's input that the wrong element at ``index`` depends on, as text."""
    if question.reads is None:
        return ""
    parts = []
    for name, array, region in question.reads(index, *case.args, **case.kwargs):
        array = np.asarray(array)
        part = array[region]
        where = f"{name}{_index_text(region)}" if part.shape != array.shape else name
        whole = f" ({name} is {_shape_text(array.shape)})" if part.shape != array.shape else ""
        if part.size <= SHOWN_ELEMENTS:
            parts.append(f"{where}{whole} = {_array_text(part)}")
        else:
            parts.append(f"{where}{whole}, {_shape_text(part.shape)} elements")
    return f"; it depends on {' and '.join(parts)}" if parts else ""


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


def _is_students(frame):
    """Whether ``frame`` runs the student's own code (not poolkit's, nor a library's)."""
    return _is_student_file(frame.f_code.co_filename) and not _in_library_module(frame.f_globals.get("__name__"))


def call_case(question, function, case, framework):
    """Run the student's ``function`` on ``case``: ``(result as NumPy, None)``, or
    ``(None, why it could not be credited)``."""
    if not callable(function):
        return None, f"{question.function} is not a function (got {type(function).__name__})"
    args = to_framework(case.args, framework)
    kwargs = {name: to_framework(value, framework) for name, value in case.kwargs.items()}
    with contextlib.ExitStack() as stack:
        # nbgrader scores a test cell that writes to stderr 0: a warning of the
        # student's code goes to stdout, as it costs nothing at grading either.
        stack.enter_context(contextlib.redirect_stderr(sys.stdout))
        used = stack.enter_context(pooling_tripwire()) if question.forbid_pooling else []
        lines = stack.enter_context(counting_lines(_is_students)) if question.line_budget else Counter()
        try:
            result = function(*args, **kwargs)
        except Exception as error:  # the student's bug, reported; the grading goes on
            return None, describe_exception(error)
    if used:
        return None, f"used {used[0]}, {FORBIDDEN_POOLING}: not credited"
    if question.line_budget and sum(lines.values()) > question.line_budget:
        return None, too_many_lines(question.function, question.line_budget, lines)
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
    index = first_wrong(expected, result, question.rtol, question.atol)
    if index:  # a wrong element (not a wrong shape, nor a wrong number, which has no input array)
        message += _inputs_text(question, case, index)
    for cause, mistaken in question.mistakes.items():
        try:
            if difference(to_numpy(mistaken(*case.args, **case.kwargs)), result, question.rtol, question.atol) is None:
                message += f". Likely cause: {cause}"
                break
        except Exception:  # a mistake that cannot be made on this case
            continue
    return Outcome(case, False, message)


def run(key, function, framework="pytorch", hidden=False):
    """All outcomes of one question's visible (or hidden) cases for the student's ``function``,
    judged by the rules of the student's ``framework``."""
    check_framework(framework)
    item = question(key).in_framework(framework)
    return [judge(item, case, *call_case(item, function, case, framework)) for case in item.cases(hidden)]


def check(key, function, framework="pytorch", *, hidden=False):
    """Grade ``function`` on a question's visible (or hidden) cases, print a
    report, and return the :class:`Score` for the test cell.

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
    Score
        A number: the points earned on these cases (the question's points
        times the share of all its cases, visible and hidden, that passed
        here), except that the visible cases all passing count as the
        question's points, the most a notebook without the hidden cases can
        show. Adding the hidden part's score gives the points earned on both.

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
    score = Score(key, item.points, round(passed * item.points_per_case, 6), passed, len(outcomes), frozenset({kind}), item.hidden_count)
    if not hidden:
        print(f"  {score.summary()[len(key) + 2:]}")
    return score
