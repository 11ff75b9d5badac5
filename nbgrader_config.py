"""nbgrader's configuration for the course, read by every ``nbgrader`` command
run from the repository's root (``make release`` runs ``generate_assignment``).

The instructor's source notebooks (solutions and hidden tests) live in
``solutions/``, the student release in ``exercises/``; the gradebook is a build
product, kept under the git-ignored ``_build/`` so that none is ever written
next to the sources.
"""

import os

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

_ROOT = os.path.dirname(os.path.abspath(__file__))
_GRADEBOOK = os.path.join(_ROOT, "_build", "nbgrader", "gradebook.db")
os.makedirs(os.path.dirname(_GRADEBOOK), exist_ok=True)  # SQLite creates the file, not its folder

c.CourseDirectory.course_id = "pooling"
c.CourseDirectory.root = _ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = f"sqlite:///{_GRADEBOOK}"
