"""The exercises' questions: for each test cell of ``solutions/`` (by its
nbgrader ``grade_id``), the student's function, the reference answer from
poolkit, the visible and hidden cases, and the mistakes worth recognising.

This is the one place the cases live: the notebooks' test cells call
:func:`poolkit.grading.check` with a key, and the instructor's grader re-runs
the same cases out of the student's process.
"""

import numpy as np

import poolkit

from .grading import Case, Question

_rng = np.random.default_rng(20261121)


def _random(*shape):
    return _rng.standard_normal(shape)


# --- pool2d: the lecture's loop (stride 1, no padding, one channel) ------------

_LECTURE_X = np.arange(9.0).reshape(3, 3)


def _lecture_pool2d(X, pool_size, mode="max", stride=None):
    pool = poolkit.max_pool2d if mode == "max" else poolkit.avg_pool2d
    return pool(X[None], tuple(pool_size), stride=stride or 1)[0]


def _pool2d_cases(mode):
    visible = (
        Case("the lecture's X = 0..8 as 3x3, 2x2 window", (_LECTURE_X, (2, 2), mode)),
        Case("a 4x5 input, 2x3 window", (_random(4, 5), (2, 3), mode)),
        Case("a 3x3 input, 1x1 window", (_random(3, 3), (1, 1), mode)),
    )
    hidden = (
        Case("a 6x7 random input, 3x2 window", (_random(6, 7), (3, 2), mode)),
        Case("a 5x5 input, 5x5 window (one output)", (_random(5, 5), (5, 5), mode)),
        Case("a 1x8 input, 1x3 window", (_random(1, 8), (1, 3), mode)),
    )
    return visible, hidden


def _pool2d_question(mode, other):
    visible, hidden = _pool2d_cases(mode)
    return Question(
        key=f"pool2d_{mode}",
        function="pool2d",
        points=3,
        reference=_lecture_pool2d,
        visible=visible,
        hidden=hidden,
        mistakes={
            "the window moves by its own size; in this exercise it moves by one element (stride 1)": lambda X, p, mode: _lecture_pool2d(X, p, mode, stride=tuple(p)),
            f"computing {other} pooling where mode={mode!r} asks for {mode}": lambda X, p, mode: _lecture_pool2d(X, p, other),
            "the output misses the last row and column: there are n - p + 1 window positions, not n - p": lambda X, p, mode: _lecture_pool2d(X, p, mode)[:-1, :-1],
        },
    )


QUESTIONS = {question.key: question for question in (_pool2d_question("max", "avg"), _pool2d_question("avg", "max"))}
