"""Run a chapter of the book the way the build does, and read back what it glued.

Usage from the shell, to check one chapter while writing it::

    .venv/bin/python tests/chapters.py book/01-pooling-by-hand.md

prints every glued name with its value, or the first cell error.
"""

import ast
import sys
from pathlib import Path

import nbclient
from myst_nb.core.read import read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
GLUE_MIME = "application/papermill.record/text/plain"


def chapters():
    """The book's chapter files, in order (the numbered ones in ``book/``)."""
    return sorted(BOOK.glob("[0-9][0-9]-*.md"))


def run(notebook, folder, timeout=300):
    """``notebook`` (an nbformat notebook), every cell executed in a fresh kernel in ``folder``."""
    nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def execute(path, timeout=300):
    """The notebook of ``path``, every cell executed in ``book/`` (as the build does)."""
    return run(read_myst_markdown_notebook(Path(path).read_text()), BOOK, timeout)


def glued(notebook):
    """{name: value} for every value the notebook glued; values are read back
    from their text form, so chapters glue plain Python values (ints, floats,
    strings, lists from ``.tolist()``)."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record and GLUE_MIME in output.get("data", {}):
                text = output["data"][GLUE_MIME]
                try:
                    values[record["name"]] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    values[record["name"]] = text.strip("'\"")
    return values


if __name__ == "__main__":
    for name, value in glued(execute(sys.argv[1])).items():
        print(f"{name} = {value!r}")
