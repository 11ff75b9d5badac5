"""Where the course is, and its questions.

The questions and their cases belong to the course, not to the installed
package: they live in the course's ``solutions/questions.py``, beside the
instructor's source notebooks, and are loaded from there by path.

:func:`questions` finds that file, in this order:

1. the environment variable ``POOLKIT_QUESTIONS`` (the grader sets it for the
   processes that run a submission);
2. ``solutions/questions.py`` of the course at or above the current folder
   (:func:`find_course`), which is where a notebook of ``exercises/`` runs.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .checks import Question

QUESTIONS_VARIABLE = "POOLKIT_QUESTIONS"
_loaded: dict[Path, types.ModuleType] = {}
_default: list[Path] = []  # the file questions() found first: a process keeps to one course


def find_course(start: str | os.PathLike[str] | None = None) -> Path:
    """The course's root: the nearest folder at or above ``start`` (default: the
    current folder) with ``nbgrader_config.py`` and ``solutions/``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(f"no course found at or above {here}: expected nbgrader_config.py and solutions/ (pass --course)")


def questions_file(course: str | os.PathLike[str] | None = None) -> Path:
    """The questions file of ``course`` (a course root), or of the one :func:`questions` would load."""
    if course is not None:
        return Path(course).resolve() / "solutions" / "questions.py"
    if os.environ.get(QUESTIONS_VARIABLE):
        return Path(os.environ[QUESTIONS_VARIABLE]).resolve()
    try:
        return find_course() / "solutions" / "questions.py"
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the course's questions were not found: no course at or above {Path.cwd()} "
            f"(run the notebook inside the course's folder, or set {QUESTIONS_VARIABLE} to its solutions/questions.py)"
        ) from None


def questions(path: str | os.PathLike[str] | None = None) -> Mapping[str, Question]:
    """Every question of the course, by key (its test cell's nbgrader ``grade_id``).

    Without ``path``, the file is found once per process (a fork keeps its
    parent's), as the module docstring says. The file is run once per process
    and path, without writing a ``__pycache__`` beside the course's notebooks.
    """
    if path is not None:
        file = Path(path).resolve()
    else:
        if not _default:
            _default.append(questions_file())
        file = _default[0]
    if file not in _loaded:
        if not file.is_file():
            raise FileNotFoundError(f"the course's questions file {file} does not exist")
        module = types.ModuleType("course_questions")
        module.__file__ = str(file)
        exec(compile(file.read_text(encoding="utf-8"), str(file), "exec"), module.__dict__)
        _loaded[file] = module
    return _loaded[file].QUESTIONS
