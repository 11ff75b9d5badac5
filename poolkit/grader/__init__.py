"""The course's autograder (the ``[grader]`` extra): nbgrader, sandboxed.

- :mod:`~poolkit.grader.checks`: a question's cases run on a student's
  function, compared with poolkit's answer, and what is wrong said plainly
  (:func:`check` is what the exercises' test cells call);
- :mod:`~poolkit.grader.course`: where the course and its questions are (they
  live in the course's ``solutions/questions.py``, not in this package);
- :mod:`~poolkit.grader.autograde`: ``poolkit grade``, nbgrader's autograding in
  parallel workers, every score the grader's own judgement of a sandboxed re-run;
- :mod:`~poolkit.grader.notebooks`: running a notebook so that one bad cell
  costs only itself;
- :mod:`~poolkit.grader.sandbox`: a command run with a student's rights
  (bubblewrap, Landlock, cgroups);
- :mod:`~poolkit.grader.rerun`: the out-of-kernel re-run, and the strict
  channel its answers come back on;
- :mod:`~poolkit.grader.lockout`: the frameworks' pooling made unavailable in
  the re-run;
- :mod:`~poolkit.grader.scan`: what a student's own cells name, flagged for the
  instructor;
- :mod:`~poolkit.grader.cli`: the ``poolkit`` command (``grade``, ``check``).
"""

import sys

# nbformat imports jsonschema, which compiles the Lark grammar of rfc3987-syntax at
# import when that optional package is installed (jupyter-events pulls it in): 1.7
# CPU seconds in every grader process that reads a notebook, each cluster task's
# included. Notebook schemas check no IRI format, and jsonschema leaves those
# checks out when the package cannot be imported.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "cannot be imported"

from .checks import check  # noqa: E402

__all__ = ["check"]
