"""Links a student can follow: in the release as handed out, and in the book.

A student gets an exercise's folder, ``exercises/<name>/``, and nothing else
of it: a link that leaves that folder (the old ``../../book/01-...md``) is a
403 in JupyterLab. So every link of a release notebook is either a relative
path to a file inside its own folder or an absolute ``https`` URL. The book
names each exercise's chapter by number and title instead of linking it.

The book's side: the page "Doing the exercises" is in the table of contents
before the exercises, every chapter's exercise section links it, and what it
shows (files, commands, question keys) exists in the course.
"""

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml
from markdown_it import MarkdownIt

from poolkit.grader.course import questions

ROOT = Path(__file__).resolve().parent.parent
BOOK, EXERCISES = ROOT / "book", ROOT / "exercises"
PAGE = BOOK / "doing-the-exercises.md"
RELEASES = sorted(EXERCISES.glob("*/*.ipynb"))
CHAPTERS = sorted(BOOK.glob("0[1-7]-*.md"))
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def links(markdown):
    """Every link and image target of a Markdown text, HTML attributes included."""
    found = []

    def walk(tokens):
        for token in tokens:
            if token.type == "link_open":
                found.append(token.attrGet("href"))
            elif token.type == "image":
                found.append(token.attrGet("src"))
            elif token.type in ("html_inline", "html_block"):
                found.extend(HTML_LINK.findall(token.content))
            walk(token.children or [])

    walk(MarkdownIt("commonmark").parse(markdown))
    return found


def problem(link, folder):
    """Why ``link`` would not open from ``folder`` as handed out, or None if it would."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc:
        if parts.scheme == "https" and parts.netloc:
            return None
        return "an absolute link must be an https URL"
    if not parts.path:
        return None  # an anchor in the notebook itself
    if parts.path.startswith("/"):
        return "an absolute path: it depends on where the folder is put"
    home = folder.resolve()
    target = (home / unquote(parts.path)).resolve()
    if target != home and home not in target.parents:
        return f"leaves the folder {folder.name}/, which is all a student gets"
    if not target.exists():
        return f"{target.relative_to(home)} does not exist in {folder.name}/"
    return None


def markdown_cells(path):
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"]


def exercise_section(chapter):
    text = chapter.read_text()
    assert "\n## Exercises\n" in text, f"{chapter.name} has no exercise section"
    return text.split("\n## Exercises\n", 1)[1].split("\n## ", 1)[0]


# --- the release --------------------------------------------------------------


def test_there_are_release_notebooks():
    assert len(RELEASES) == 7, RELEASES  # one per chapter 1 to 6, and the conventions


@pytest.mark.parametrize("notebook", RELEASES, ids=lambda path: path.parent.name)
def test_every_link_of_a_release_notebook_opens_from_its_folder(notebook):
    broken = [(link, why) for source in markdown_cells(notebook) for link in links(source) if (why := problem(link, notebook.parent))]
    assert not broken, f"{notebook.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize(
    "link",
    ["../../book/01-pooling-by-hand.md", "../pool2d/pool2d.ipynb", "/book/intro.html", "http://example.org/book", "file:///tmp/x.md", "missing.md"],
)
def test_a_link_that_would_break_in_the_release_is_caught(link, tmp_path):
    (tmp_path / "pool2d").mkdir()
    assert problem(link, tmp_path / "pool2d") is not None


def test_links_that_work_from_the_folder_pass(tmp_path):
    folder = tmp_path / "pool2d"
    folder.mkdir()
    (folder / "pool2d.ipynb").write_text("{}")
    (folder / "a figure.png").write_text("")
    for link in ["pool2d.ipynb", "./pool2d.ipynb#pool2d", "a%20figure.png", "#pool2d", "https://pytorch.org/docs/stable/nn.html"]:
        assert problem(link, folder) is None, link


def test_links_are_found_in_markdown_and_html():
    text = "See [a](../../book/a.md), ![b](b.png) and <a href='c.html'>c</a>.\n\n<img src=\"d.svg\">\n"
    assert links(text) == ["../../book/a.md", "b.png", "c.html", "d.svg"]


def test_each_release_notebook_names_its_chapter_by_number_and_title():
    """The link it had is replaced by the chapter's number and its title as the book shows it."""
    named = {}
    for chapter in CHAPTERS:
        for name in re.findall(r"\(\.\./exercises/([\w-]+)/\1\.ipynb\)", exercise_section(chapter)):
            named[name] = chapter
    assert sorted(named) == sorted(path.parent.name for path in RELEASES), "every exercise belongs to one chapter"
    for name, chapter in named.items():
        title = re.search(r"^# (.+)$", chapter.read_text(), re.MULTILINE)[1].strip()
        first = markdown_cells(EXERCISES / name / f"{name}.ipynb")[0]
        reference = f"chapter {int(chapter.name[:2])} of the course book, *{title}*"
        assert reference in " ".join(first.split()), f"exercises/{name} should name {reference!r}"


# --- the book's page on doing the exercises -----------------------------------


def test_the_page_is_in_the_table_of_contents_before_the_exercises():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    assert "book/doing-the-exercises" in files, "_toc.yml does not list book/doing-the-exercises"
    first_exercise = min(i for i, file in enumerate(files) if file.startswith("exercises/"))
    assert files.index("book/doing-the-exercises") < first_exercise


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_chapter_exercise_section_links_the_page(chapter):
    assert "doing-the-exercises.md" in links(exercise_section(chapter)), f"{chapter.name}: its exercise section does not link the page"


def test_every_link_of_the_page_resolves_in_the_book():
    targets = links(PAGE.read_text())
    assert len(targets) >= 13, targets  # the six chapters and the seven notebooks
    broken = [link for link in targets if not urlsplit(link).scheme and not (BOOK / urlsplit(link).path).resolve().exists()]
    assert not broken, broken


def test_the_page_shows_only_notebooks_and_questions_that_exist():
    text = PAGE.read_text()
    notebooks = re.findall(r"poolkit check (\S+\.ipynb)", text)
    assert notebooks, "the page shows no `poolkit check` command"
    for notebook in notebooks:
        assert (ROOT / notebook).is_file(), notebook
    keys = re.findall(r'check\("(\w+)"', text)
    assert keys, "the page shows no call of check"
    known = questions(ROOT / "solutions" / "questions.py")
    assert set(keys) <= set(known), set(keys) - set(known)
    assert re.search(r"poolkit grade (\S+) ", text)[1] in {path.parent.name for path in RELEASES}
