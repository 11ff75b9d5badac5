"""poolkit as an installed package, outside the checkout.

The wheel pip builds from the checkout holds every module of ``poolkit/`` (the
CUDA backend, the grader, ``py.typed``) and not the course's questions, which
live in ``solutions/questions.py`` and are never installed. Installed with its
``[numba,grader,torch]`` extras in a fresh venv, and run from a folder outside
the checkout without ``PYTHONPATH``, poolkit is imported from the venv's
site-packages, and there:

- every backend module and the grader import, and the docstrings' examples run;
- ``max_pool2d`` gives NumPy's result on the cuda backend (numba's CUDA
  simulator) and on the numba one;
- ``poolkit check`` finds the course (a copy of its pieces in a temporary
  folder) from a notebook's folder, fails an unsolved exercise (exit 1) and
  passes a solved one (exit 0);
- mypy reads the installed package's types (``py.typed``): it accepts a
  correct snippet and reports an unknown keyword argument.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# One worker builds the wheel and the venv once, for the whole module.
pytestmark = pytest.mark.xdist_group("package")

# What the wheel must hold besides the rest of poolkit/ (the CUDA backend is a
# subpackage, the grader another, and py.typed is no module).
REQUIRED = {
    "poolkit/py.typed",
    "poolkit/backends/cuda/__init__.py",
    "poolkit/backends/cuda/kernels.py",
    "poolkit/grader/__init__.py",
    "poolkit/grader/cli.py",
    "poolkit/grader/course.py",
}
QUESTION = re.compile(r"^  (\S+): (\d+) of (\d+) visible cases passed$", re.MULTILINE)


def clean_env(**extra):
    """This process's environment without what could point Python or mypy at the
    checkout (PYTHONPATH, MYPYPATH) or the grader at other questions
    (POOLKIT_QUESTIONS), plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "MYPYPATH", "POOLKIT_QUESTIONS")}
    return {**env, **extra}


def run(command, cwd, *, env=None, ok=True, timeout=600):
    """Run ``command`` in ``cwd`` (outside the checkout) with ``env`` (default:
    :func:`clean_env`); with ``ok``, assert it exits 0."""
    assert not Path(cwd).resolve().is_relative_to(ROOT), f"{cwd} is inside the checkout"
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)
    if ok:
        assert result.returncode == 0, f"{command} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def pinned(name):
    """``name``'s pin in requirements.txt, as ``name==version``."""
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.lower().startswith(f"{name}==")]
    assert len(pins) == 1, f"requirements.txt pins {name} {len(pins)} times"
    return pins[0]


def notebook_questions(notebook):
    """The grade_ids of ``notebook``'s test cells: the questions ``poolkit check`` reports on."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    return {cell["metadata"]["nbgrader"]["grade_id"] for cell in cells if cell["metadata"].get("nbgrader", {}).get("grade") and cell["cell_type"] == "code"}


@dataclass
class Venv:
    """A venv with the wheel installed, and the folder outside the checkout its commands run in."""

    root: Path
    work: Path

    def bin(self, name):
        return self.root / "bin" / name

    def run(self, command, *, env=None, ok=True):
        """Run one of the venv's commands (``command[0]`` names it) in :attr:`work`."""
        return run([self.bin(command[0]), *command[1:]], self.work, env=env, ok=ok)

    def python(self, code, **env):
        """The output of the venv's python running ``code``, with ``env`` added to :func:`clean_env`."""
        return self.run(["python", "-c", code], env=clean_env(**env)).stdout

    @cached_property
    def site_packages(self):
        return Path(self.python("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()).resolve()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from the package's committed files. setuptools
    builds in the source tree (``build/``, ``*.egg-info``), where leftovers of
    an earlier build would go into the wheel: so it builds a clean copy of what
    git tracks, and the checkout is left alone."""
    source, folder = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "pyproject.toml", "README.md", "poolkit"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", folder, source], folder)
    (built,) = folder.glob("poolkit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with the wheel and its extras at the course's pins, and mypy."""
    root, work = tmp_path_factory.mktemp("venv"), tmp_path_factory.mktemp("work")
    run([sys.executable, "-m", "venv", root], work)
    installed = Venv(root, work)
    installed.run(["python", "-m", "pip", "install", "--quiet", f"{wheel}[numba,grader,torch]", pinned("mypy"), "-c", ROOT / "requirements.txt"])
    return installed


def test_the_wheel_holds_every_module_of_poolkit_and_not_the_questions(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    files = [path for path in (ROOT / "poolkit").rglob("*") if (path.suffix == ".py" or path.name == "py.typed") and "__pycache__" not in path.parts]
    sources = {path.relative_to(ROOT).as_posix() for path in files}
    assert REQUIRED <= sources, f"the checkout lacks {sorted(REQUIRED - sources)}"
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)}"
    assert not [name for name in names if Path(name).name == "questions.py"], "the course's questions are in the wheel"
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"poolkit", dist_info}, "the wheel installs more than poolkit"


def test_poolkit_is_imported_from_the_venv_not_the_checkout(venv):
    location = Path(venv.python("import poolkit; print(poolkit.__file__)").strip()).resolve()
    assert location.is_relative_to(venv.site_packages), location
    assert not location.is_relative_to(ROOT)


def test_every_backend_module_and_the_grader_import(venv):
    modules = ["poolkit.backends.naive", "poolkit.backends.numpy_", "poolkit.backends.numba_", "poolkit.backends.cuda", "poolkit.grader"]
    code = f"import importlib, json; print(json.dumps([importlib.import_module(name).__file__ for name in {modules!r}]))"
    for location in json.loads(venv.python(code)):
        assert Path(location).resolve().is_relative_to(venv.site_packages), location


def test_max_pool2d_on_the_cuda_simulator_and_on_numba_gives_numpys_result(venv):
    code = """
import json
import numpy as np
import poolkit
from poolkit.dispatch import observe

x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
expected = poolkit.max_pool2d(x, 3, stride=2, padding=1, backend="numpy")
results = {}
for backend in ("cuda", "numba"):
    with observe() as seen:
        y = poolkit.max_pool2d(x, 3, stride=2, padding=1, backend=backend)
    results[backend] = {"ran": seen[-1], "equal": isinstance(y, np.ndarray) and np.array_equal(y, expected)}
print(json.dumps(results))
"""
    results = json.loads(venv.python(code, NUMBA_ENABLE_CUDASIM="1"))
    assert results == {
        "cuda": {"ran": "poolkit.backends.cuda.pool", "equal": True},
        "numba": {"ran": "poolkit.backends.numba_.pool", "equal": True},
    }


def test_the_installed_docs_are_there_and_their_examples_run(venv):
    code = """
import doctest, json
import poolkit, poolkit.functional
result = doctest.testmod(poolkit.functional)
print(json.dumps({"failed": result.failed, "attempted": result.attempted, "doc": poolkit.max_pool2d.__doc__}))
"""
    result = json.loads(venv.python(code))
    assert result["failed"] == 0 and result["attempted"] >= 36 * 3, result
    assert "Parameters" in result["doc"] and "ceil_mode" in result["doc"]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The pieces of the course ``poolkit check`` needs, in a folder outside the
    checkout: its config and questions, the student release of pool2d, and
    beside it the instructor's solved notebook (``solved.ipynb``), so that the
    course is found from either notebook's folder."""
    course = tmp_path_factory.mktemp("course")
    pieces = {
        "nbgrader_config.py": "nbgrader_config.py",
        "solutions/questions.py": "solutions/questions.py",
        "exercises/pool2d/pool2d.ipynb": "exercises/pool2d/pool2d.ipynb",
        "solutions/pool2d/pool2d.ipynb": "exercises/pool2d/solved.ipynb",
    }
    for source, target in pieces.items():
        (course / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / source, course / target)
    return course


def test_poolkit_check_fails_the_unsolved_exercise(venv, course):
    notebook = course / "exercises" / "pool2d" / "pool2d.ipynb"
    result = venv.run(["poolkit", "check", notebook], ok=False)
    assert result.returncode == 1, result.stdout + result.stderr
    counts = QUESTION.findall(result.stdout)
    assert {name for name, _, _ in counts} == notebook_questions(notebook), result.stdout
    assert all(passed == "0" and int(total) > 0 for _, passed, total in counts), result.stdout
    assert "not written yet" in result.stdout
    assert f"pool2d.ipynb: 0 of {len(counts)} questions pass their visible tests" in result.stdout


def test_poolkit_check_passes_the_solved_exercise(venv, course):
    notebook = course / "exercises" / "pool2d" / "solved.ipynb"
    result = venv.run(["poolkit", "check", notebook], ok=False)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = QUESTION.findall(result.stdout)
    assert {name for name, _, _ in counts} == notebook_questions(notebook), result.stdout
    assert all(passed == total != "0" for _, passed, total in counts), result.stdout
    assert f"solved.ipynb: {len(counts)} of {len(counts)} questions pass their visible tests" in result.stdout


def test_the_installed_grader_grades_in_its_sandbox(venv, tmp_path):
    """``poolkit grade`` from the wheel, with everything (venv, course, output) under /tmp:
    the re-run's own files ship in the wheel, the installed poolkit is hidden from it, and
    the sandbox's private /tmp does not hide the venv."""
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copyfile(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copyfile(ROOT / "solutions" / "questions.py", course / "solutions" / "questions.py")
    shutil.copytree(ROOT / "solutions" / "pool2d", course / "solutions" / "pool2d")
    for student, source in (("solved", ROOT / "solutions"), ("blank", ROOT / "exercises")):
        (tmp_path / "subs" / student).mkdir(parents=True)
        shutil.copyfile(source / "pool2d" / "pool2d.ipynb", tmp_path / "subs" / student / "pool2d.ipynb")
    result = venv.run(["poolkit", "grade", "pool2d", tmp_path / "subs", "--out", tmp_path / "out", "--course", course, "--workers", "1"], env=clean_env(), ok=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sandbox: bubblewrap" in result.stderr
    rows = {row["student_id"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    assert (float(rows["solved"]["score"]), float(rows["blank"]["score"])) == (6.0, 0.0), rows


GOOD = """
import numpy as np

import poolkit

x = np.zeros((1, 1, 4, 4))
y: np.ndarray = poolkit.max_pool2d(x, 2)
out, idx = poolkit.max_pool2d(x, 2, return_indices=True)
z = poolkit.avg_pool2d(x, kernel_size=2, stride=1, padding=0)
"""

MISTAKE = """
import numpy as np

import poolkit

x = np.zeros((1, 1, 4, 4))
poolkit.max_pool2d(x, 2, no_such_argument=1)
"""


def mypy(venv, name, code):
    """mypy's run on ``code``, saved as ``name`` in the venv's work folder (no config there: the installed package's types)."""
    (venv.work / name).write_text(code)
    return venv.run(["python", "-m", "mypy", name], ok=False)


def test_mypy_accepts_a_correct_use_of_the_installed_package(venv):
    result = mypy(venv, "good.py", GOOD)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_reports_an_unknown_keyword_argument(venv):
    result = mypy(venv, "mistake.py", MISTAKE)
    assert result.returncode != 0
    assert 'Unexpected keyword argument "no_such_argument"' in result.stdout, result.stdout
