"""Find each student's notebook in a submissions export, as learning-management
systems write it: the first step of ``poolkit grade ASSIGNMENT SUBMISSIONS``.

``SUBMISSIONS`` is a folder or a zip. A zip is read in place (never extracted); a
folder is walked without following links. Nothing is dropped silently: what is not
graded is listed in :attr:`Collection.skipped` with the reason, and every student
found gets a :class:`Found`, with flags saying what was odd.

Layouts, tried in this order for each entry at the top of the export:

1. with ``--id-pattern``, no other rule: every notebook, at any depth, is matched
   (``re.match``) by its posix path from the top; the group ``student_id`` names
   the student, the optional groups ``name`` the person and ``file_id`` the file
   (as nbgrader's ``FileNameCollectorPlugin``; without it, the file's own name);
2. Moodle's folder ``<Full Name>_<participant>_assignsubmission_file_/`` (or
   ``_onlinetext_``): the student is the participant number;
3. Moodle's file ``<Full Name>_<participant>_assignsubmission_file_<filename>``;
4. Canvas's file ``<lastfirst>_<userid>_<submissionid>_<filename>``, with
   ``LATE_`` before the user id for a late one (flag ``late``); a re-uploaded
   ``pool2d-1.ipynb`` counts as ``pool2d.ipynb``;
5. nbgrader's folder ``<student_id>/``, the notebook anywhere inside it;
6. anything else is skipped, with why. So is a top-level entry whose name starts
   with ``.`` or ``__`` (``.git``, ``__MACOSX``), and any link.

Where the export's top holds one folder and no notebook, and that folder holds
no notebook but does hold folders with notebooks, the top is that folder (a zip
usually wraps everything in one). Origins stay relative to the export itself.

Which notebook is graded: a student's candidates are the notebooks named
``<notebook>.ipynb`` (after Moodle's and Canvas's prefixes, and Canvas's ``-N``);
where there are none, every notebook of theirs is one, with the flag ``renamed``.
No candidate: nothing is graded (``no-notebook``). One: it is graded. Several: the
newest is graded (``chose-newest``), unless the newest two are equally new (the
same time in a zip; within a second in a folder): then none is (``ambiguous``).

Student ids: with ``--roster``, each export's key (participant number, user id,
folder name, or the pattern's ``student_id``) is mapped to the roster's
``student_id``; a key not in the roster is graded under itself (``not-in-roster``),
and a roster student with nothing in the export is listed (``no-submission``).
Ids are NFC-normalised, and entries that end on the same id are one student's.

Examples
--------
>>> import pathlib, shutil, tempfile
>>> export = pathlib.Path(tempfile.mkdtemp())
>>> for path in ("ana/pool2d.ipynb", "Bo Li_17_assignsubmission_file_/hw/mine.ipynb", "notes.txt"):
...     (export / path).parent.mkdir(parents=True, exist_ok=True)
...     _ = (export / path).write_text("{}")
>>> found = collect(export, "pool2d")
>>> [(each.student, each.name, each.origin, sorted(each.flags)) for each in found.found]
[('17', 'Bo Li', 'Bo Li_17_assignsubmission_file_/hw/mine.ipynb', ['renamed']), ('ana', '', 'ana/pool2d.ipynb', [])]
>>> found.found[1].load()
b'{}'
>>> found.skipped
[Skipped(origin='notes.txt', why='not a notebook')]
>>> shutil.rmtree(export)
"""

import codecs
import csv
import functools
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Bytes; a bigger notebook is not read (flag ``too-large``).
MAX_NOTEBOOK = 64 << 20
MAX_ID = 100  # characters
HIDDEN = (".", "__")
#: Inside a student's folder: Jupyter's autosaves and macOS's resource forks, never the student's work.
IGNORED_FOLDERS = (".ipynb_checkpoints", "__MACOSX")
APPLE_DOUBLE = "._"
UTF8_FLAG = 0x800  # a zip member's general-purpose flag: its name is UTF-8

MOODLE_FOLDER = re.compile(r"(?P<name>.+)_(?P<key>\d+)_assignsubmission_(?:file|onlinetext)_?")
MOODLE_FILE = re.compile(r"(?P<name>.+?)_(?P<key>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.+)")
CANVAS_FILE = re.compile(r"(?P<name>[a-z0-9]+)_(?P<late>LATE_)?(?P<key>\d+)_\d+_(?P<file>.+)")
CANVAS_REUPLOAD = re.compile(r"(?P<stem>.+)-\d+\.ipynb")

HIDDEN_WHY = "hidden (starts with . or __): not graded; rename it to grade it"
LINK_WHY = "a link: not followed"
SPECIAL_WHY = "not a regular file: not read"
LOOSE_NOTEBOOK_WHY = "a notebook outside any student's folder, and its name is no Moodle or Canvas export name: give --id-pattern"
NOT_NOTEBOOK_WHY = "not a notebook"
NO_MATCH_WHY = "does not match --id-pattern"
NO_NOTEBOOK_WHY = "holds no notebook"


@dataclass
class Found:
    """One student, and the notebook of theirs to grade."""

    student: str  # the id graded under (after --roster)
    name: str  # the person's name where the export or roster gives one, else ""
    origin: str  # the chosen notebook's path in the export, or the student's entry when none was chosen; "" for no submission
    load: Callable[[], bytes] | None  # reads the chosen notebook's bytes; None when nothing is to be graded
    flags: set[str] = field(default_factory=set)
    candidates: list[str] = field(default_factory=list)  # every candidate's origin, when there were several


@dataclass
class Skipped:
    """Something in the export that is not graded."""

    origin: str  # its path relative to the export
    why: str  # one line, for the run's report


@dataclass
class Collection:
    """What :func:`collect` found."""

    found: list[Found]  # sorted by student id, one per id
    skipped: list[Skipped]  # sorted by origin


@dataclass
class _Node:
    """A file or folder of the export, in a zip or on disk."""

    name: str  # decoded: UTF-8, else cp437
    origin: str  # posix path from the export's top
    kind: str  # "dir", "file", "link" or "other"
    odd: bool = False  # a name on its path is not UTF-8 on disk (read as cp437)
    when: float = 0.0  # a comparable timestamp
    size: int = 0
    read: Callable[[], bytes] | None = None
    duplicate: bool = False  # the zip holds another member of the same name
    kids: list["_Node"] | None = None  # a folder's entries; on disk, listed when first needed
    where: str = ""  # a folder's path on disk


@dataclass
class _Claim:
    """One top-level entry's claim to be (part of) a student's submission."""

    key: str  # the export's name for the student, before --roster
    name: str
    entry: _Node
    notebooks: list[tuple[_Node, str]]  # each with its own name for the candidate rule
    late: bool = False


def collect(submissions: str | os.PathLike[str], notebook: str, *, roster: str | os.PathLike[str] | None = None, pattern: str | None = None) -> Collection:
    """Every student of the export ``submissions`` (a folder or a zip), with the
    notebook to grade for the assignment notebook ``notebook`` (without ``.ipynb``).

    Parameters
    ----------
    submissions
        A folder, or a zip file (checked by the caller to be one).
    notebook
        The assignment's notebook name, without ``.ipynb``: ``"pool2d"``.
    roster
        A CSV mapping the export's keys to student ids (:func:`read_roster`).
    pattern
        An ``--id-pattern`` regular expression (:func:`compile_pattern`).

    Returns
    -------
    Collection
        The students found (each :attr:`Found.load` reads its notebook, and raises
        ``OSError``, ``zipfile.BadZipFile`` or ``ValueError`` where it cannot), and
        what was skipped. The module's docstring gives the rules.

    Raises
    ------
    ValueError
        For a bad ``roster`` or ``pattern``; the message starts with the option.
    """
    regex = compile_pattern(pattern) if pattern is not None else None
    mapping = read_roster(roster) if roster is not None else None
    skipped: list[Skipped] = []
    if os.path.isdir(submissions):
        root = _Node("", "", "dir", where=os.fspath(submissions))
        slack = 1.0  # mtimes a second apart may be one save, on filesystems that keep whole seconds
    else:
        root = _zip_tree(submissions, skipped)
        slack = 0.0  # a zip's times are in steps of two seconds: only equal ones are a tie
    entries, top = _top_level(root, skipped)
    claims = [claim for entry in entries for claim in _claims(entry, top, regex, skipped)]
    found = _students(claims, notebook, mapping, slack, skipped)
    # The same report can come twice: a folder's links are met when looking for a wrapper, then again as a student's.
    unique = {(skip.origin, skip.why): skip for skip in skipped}
    return Collection(found, sorted(unique.values(), key=lambda skip: (skip.origin, skip.why)))


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The ``--id-pattern`` regular expression, checked.

    >>> compile_pattern(r"(?P<student_id>[^_]+)_").match("ana_pool2d.ipynb")["student_id"]
    'ana'
    >>> compile_pattern(r"(\\w+)_")
    Traceback (most recent call last):
    ValueError: --id-pattern '(\\\\w+)_': it has no (?P<student_id>...) group, which names the student
    """
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"--id-pattern {pattern!r}: not a regular expression ({error})") from None
    if "student_id" not in regex.groupindex:
        raise ValueError(f"--id-pattern {pattern!r}: it has no (?P<student_id>...) group, which names the student")
    return regex


def read_roster(path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """The ``--roster`` CSV file: each export key, mapped to ``(student_id, name)``.

    The file is UTF-8 (a byte-order mark is fine) with a header row naming the
    columns ``student_id`` (required), ``export_id`` (the export's key: Moodle's
    participant number, Canvas's user id, the folder's name, or the pattern's
    ``student_id``; empty or absent: the student_id) and ``name`` (optional).

    Raises
    ------
    ValueError
        ``--roster <path>: <what>, line N`` for any problem with the file.
    """
    where = f"--roster {os.fspath(path)}"
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except OSError as error:
        raise ValueError(f"{where}: cannot be read ({error.strerror or error})") from None
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(f"{where}: not UTF-8 text, line {line}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    roster: dict[str, tuple[str, str]] = {}
    lines: dict[str, int] = {}
    start = 1
    try:
        for row in reader:
            # reader.line_num is where the row ends (a quoted cell may span lines); name where it starts
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                if "student_id" not in header:
                    raise ValueError(f"{where}: no student_id column in the header row, line {line}")
                for column in ("student_id", "export_id", "name"):
                    if header.count(column) > 1:
                        raise ValueError(f"{where}: two {column} columns, line {line}")
                continue
            if len(row) > len(header):
                raise ValueError(f"{where}: more cells than the header row has columns (quote a cell that holds a comma), line {line}")
            cells = dict(zip(header, [cell.strip() for cell in row] + [""] * (len(header) - len(row))))
            student = unicodedata.normalize("NFC", cells["student_id"])
            if not student:
                raise ValueError(f"{where}: an empty student_id, line {line}")
            problem = _unusable(student)
            if problem:
                raise ValueError(f"{where}: the student_id {student!r} is not usable ({problem}), line {line}")
            key = unicodedata.normalize("NFC", cells.get("export_id", "")) or student
            if key in lines:
                raise ValueError(f"{where}: a second row for the export_id {key!r} (the first is on line {lines[key]}), line {line}")
            lines[key] = line
            roster[key] = (student, unicodedata.normalize("NFC", cells.get("name", "")))
    except csv.Error as error:
        raise ValueError(f"{where}: not a CSV file ({error}), line {reader.line_num}") from None
    if header is None:
        raise ValueError(f"{where}: empty; it needs a header row with a student_id column, line 1")
    return roster


# --- the export's files, in a zip or on disk ------------------------------------


def _zip_tree(archive: str | os.PathLike[str], skipped: list[Skipped]) -> _Node:
    """The zip's members as a tree of nodes, read from its member list alone."""
    root = _Node("", "", "dir", kids=[])
    folders: dict[tuple[str, ...], _Node] = {(): root}
    files: dict[tuple[str, ...], _Node] = {}
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
    for info in members:
        name = _member_name(info)
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            skipped.append(Skipped(name, "an absolute path in the zip: not read"))
            continue
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if ".." in parts:
            skipped.append(Skipped(name, "a '..' in its path in the zip: not read"))
            continue
        if not parts:
            continue
        conflict = parts in files if info.is_dir() else parts in folders
        parent = _zip_folder(folders, files, parts if info.is_dir() else parts[:-1])
        if conflict or parent is None:
            skipped.append(Skipped("/".join(parts), "both a file and a folder in the zip: not read"))
            continue
        if info.is_dir():
            continue
        kind = "link" if stat.S_ISLNK(info.external_attr >> 16) else "file"
        # date_time as one number, digit pairs in order: it sorts like the tuple, and two different times are at least 1 apart
        when = functools.reduce(lambda total, part: total * 100 + part, info.date_time, 0)
        node = _Node(parts[-1], "/".join(parts), kind, when=when, size=info.file_size, read=functools.partial(_read_member, os.fspath(archive), info))
        if parts in files:
            files[parts].duplicate = node.duplicate = True
        files[parts] = node
        assert parent.kids is not None
        parent.kids.append(node)
    for folder in folders.values():
        assert folder.kids is not None
        folder.kids.sort(key=lambda node: node.name)
    return root


def _zip_folder(folders: dict[tuple[str, ...], _Node], files: dict[tuple[str, ...], _Node], parts: tuple[str, ...]) -> _Node | None:
    """The zip's folder ``parts``, made (with its parents) if need be; None where a file has that path."""
    for depth in range(1, len(parts) + 1):
        path = parts[:depth]
        if path in files:
            return None
        if path not in folders:
            folders[path] = _Node(path[-1], "/".join(path), "dir", kids=[])
            kids = folders[path[:-1]].kids
            assert kids is not None
            kids.append(folders[path])
    return folders[parts]


def _member_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name: UTF-8 where it is flagged or reads as UTF-8, else cp437 (as old Windows tools wrote)."""
    if info.flag_bits & UTF8_FLAG:
        return info.filename
    try:
        # Many tools write UTF-8 without the flag; zipfile then reads cp437, whose bytes these are.
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _read_member(archive: str, info: zipfile.ZipInfo) -> bytes:
    with zipfile.ZipFile(archive) as bundle, bundle.open(info) as member:
        # At most one byte past the cap, whatever the member's header says.
        return _capped(member.read(MAX_NOTEBOOK + 1))


def _read_file(path: str) -> bytes:
    # O_NOFOLLOW and the fstat: a file swapped since the listing for a link or a pipe is refused, not followed or waited on.
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path}: not a regular file")
        return _capped(file.read(MAX_NOTEBOOK + 1))


def _capped(data: bytes) -> bytes:
    if len(data) > MAX_NOTEBOOK:
        raise ValueError(f"a notebook larger than {MAX_NOTEBOOK} bytes")
    return data


def _children(node: _Node, skipped: list[Skipped]) -> list[_Node]:
    """A folder's entries, sorted by name; on disk, listed once without following links."""
    if node.kids is not None:
        return node.kids
    node.kids = []
    try:
        with os.scandir(node.where) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        skipped.append(Skipped(node.origin or ".", f"cannot be read ({error.strerror or error})"))
        return node.kids
    for entry in entries:
        name, odd = entry.name, False
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            # os.fsdecode's surrogate escapes: the name's bytes are not UTF-8, so read them as cp437.
            name, odd = os.fsencode(entry.name).decode("cp437"), True
        origin = f"{node.origin}/{name}" if node.origin else name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as error:
            skipped.append(Skipped(origin, f"cannot be read ({error.strerror or error})"))
            continue
        kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        read = functools.partial(_read_file, entry.path) if kind == "file" else None
        node.kids.append(_Node(name, origin, kind, odd or node.odd, info.st_mtime, info.st_size, read, where=entry.path))
    return node.kids


def _skip(node: _Node, why: str, skipped: list[Skipped]) -> None:
    note = "; a name on its path is not UTF-8 (read as cp437)" if node.odd else ""
    skipped.append(Skipped(node.origin, why + note))


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _notebooks(folder: _Node, skipped: list[Skipped]) -> list[_Node]:
    """The notebooks anywhere in a student's folder, by origin; links and special files are reported."""
    found = []
    pending = [folder]  # a list, not recursion: a zip's paths can be deeper than Python's stack
    while pending:
        for node in _children(pending.pop(), skipped):
            if node.kind == "dir":
                if node.name not in IGNORED_FOLDERS:
                    pending.append(node)
            elif node.name.startswith(APPLE_DOUBLE):
                continue
            elif node.kind == "link":
                _skip(node, LINK_WHY, skipped)
            elif node.kind == "other":
                _skip(node, SPECIAL_WHY, skipped)
            elif _is_notebook(node.name):
                found.append(node)
    return sorted(found, key=lambda node: node.origin)


def _hidden(node: _Node) -> bool:
    return node.name.startswith(HIDDEN)


def _top_level(root: _Node, skipped: list[Skipped]) -> tuple[list[_Node], str]:
    """The entries the layouts are tried on, and the prefix of their origins that the wrapping folder adds ("" or ``name/``)."""
    entries = _children(root, skipped)
    folders = [node for node in entries if node.kind == "dir" and not _hidden(node)]
    if len(folders) != 1 or MOODLE_FOLDER.fullmatch(folders[0].name) or any(node.kind == "file" and _is_notebook(node.name) for node in entries):
        return entries, ""
    inner = _children(folders[0], skipped)
    if any(node.kind == "file" and _is_notebook(node.name) for node in inner):
        return entries, ""
    if not any(node.kind == "dir" and not _hidden(node) and _notebooks(node, skipped) for node in inner):
        return entries, ""
    # The rest of the top (a README, __MACOSX) is still reported by the same rules.
    return [node for node in entries if node is not folders[0]] + inner, folders[0].origin + "/"


# --- who is who -------------------------------------------------------------


def _claims(entry: _Node, top: str, regex: re.Pattern[str] | None, skipped: list[Skipped]) -> list[_Claim]:
    """What one top-level entry says about whose work it is: the layouts, in order."""
    if _hidden(entry):
        _skip(entry, HIDDEN_WHY, skipped)
        return []
    if entry.kind in ("link", "other"):
        _skip(entry, LINK_WHY if entry.kind == "link" else SPECIAL_WHY, skipped)
        return []
    if regex is not None:
        return _pattern_claims(entry, top, regex, skipped)
    if entry.kind == "dir":
        notebooks = [(node, node.name) for node in _notebooks(entry, skipped)]
        moodle = MOODLE_FOLDER.fullmatch(entry.name)
        if moodle:
            return [_Claim(moodle["key"], moodle["name"], entry, notebooks)]
        return [_Claim(entry.name, "", entry, notebooks)]
    moodle = MOODLE_FILE.fullmatch(entry.name)
    if moodle:
        own = moodle["file"]
        return [_Claim(moodle["key"], moodle["name"], entry, [(entry, own)] if _is_notebook(own) else [])]
    canvas = CANVAS_FILE.fullmatch(entry.name)
    if canvas:
        own = canvas["file"]
        reupload = CANVAS_REUPLOAD.fullmatch(own)
        if reupload:
            own = reupload["stem"] + ".ipynb"
        return [_Claim(canvas["key"], canvas["name"], entry, [(entry, own)] if _is_notebook(own) else [], late=bool(canvas["late"]))]
    _skip(entry, LOOSE_NOTEBOOK_WHY if _is_notebook(entry.name) else NOT_NOTEBOOK_WHY, skipped)
    return []


def _pattern_claims(entry: _Node, top: str, regex: re.Pattern[str], skipped: list[Skipped]) -> list[_Claim]:
    if entry.kind == "file":
        if not _is_notebook(entry.name):
            _skip(entry, NOT_NOTEBOOK_WHY, skipped)
            return []
        notebooks = [entry]
    else:
        notebooks = _notebooks(entry, skipped)
        if not notebooks:
            _skip(entry, NO_NOTEBOOK_WHY, skipped)
    claims = []
    for node in notebooks:
        match = regex.match(node.origin.removeprefix(top))
        if not match:
            _skip(node, NO_MATCH_WHY, skipped)
            continue
        groups: dict[str, Any] = match.groupdict()
        own = (groups.get("file_id") or node.name).rsplit("/", 1)[-1]
        claims.append(_Claim(groups["student_id"] or "", groups.get("name") or "", node, [(node, own)]))
    return claims


def _unusable(student: str) -> str:
    """Why ``student`` cannot be a student id (a folder name in the grader's output, a row of its CSV), or ""."""
    if not student:
        return "empty"
    if len(student) > MAX_ID:
        return f"longer than {MAX_ID} characters"
    if student.startswith("."):
        return "starts with ."
    if any(char in "/\\" for char in student):
        return "holds / or \\"
    if any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") for char in student):
        return "holds a control character"
    return ""


def _students(claims: list[_Claim], notebook: str, mapping: dict[str, tuple[str, str]] | None, slack: float, skipped: list[Skipped]) -> list[Found]:
    """One :class:`Found` per student id: the claims grouped by id, each group's notebook chosen."""
    listed: dict[str, str] = {}  # the roster's students, each with the first name a row of theirs gives
    for student, name in (mapping or {}).values():
        listed[student] = listed.get(student) or name
    groups: dict[str, list[_Claim]] = {}
    for claim in sorted(claims, key=lambda claim: claim.entry.origin):
        key = unicodedata.normalize("NFC", claim.key)
        if mapping is not None and key in mapping:
            student = mapping[key][0]  # checked when the roster was read
        else:
            student = key
            problem = _unusable(student)
            if problem:
                _skip(claim.entry, f"{student!r} is not usable as a student id ({problem}): map it with --roster", skipped)
                continue
        groups.setdefault(student, []).append(claim)
    found = []
    for student, group in groups.items():
        exported = next((claim.name for claim in group if claim.name), "")
        each = _choose(student, listed.get(student) or unicodedata.normalize("NFC", exported), group, notebook, slack)
        if mapping is not None and student not in listed:
            each.flags.add("not-in-roster")
        found.append(each)
    found += [Found(student, name, "", None, {"no-submission"}) for student, name in listed.items() if student not in groups]
    return sorted(found, key=lambda each: each.student)


def _choose(student: str, name: str, claims: list[_Claim], notebook: str, slack: float) -> Found:
    """The candidate rule of the module's docstring, for one student's claims."""
    flags = set()
    if any(claim.late for claim in claims):
        flags.add("late")
    notebooks = [pair for claim in claims for pair in claim.notebooks]
    if any(claim.entry.odd for claim in claims) or any(node.odd for node, _ in notebooks):
        flags.add("name-not-utf8")
    if any(node.duplicate for node, _ in notebooks):
        flags.add("duplicate-in-zip")
    pool = [node for node, own in notebooks if own == f"{notebook}.ipynb"]
    if not pool and notebooks:
        pool = [node for node, _ in notebooks]
        flags.add("renamed")
    pool.sort(key=lambda node: node.origin)
    entry = claims[0].entry.origin
    candidates = [node.origin for node in pool] if len(pool) > 1 else []
    if not pool:
        return Found(student, name, entry, None, flags | {"no-notebook"})
    newest = sorted(pool, key=lambda node: node.when, reverse=True)
    if len(pool) > 1:
        if newest[0].when - newest[1].when <= slack:
            return Found(student, name, entry, None, flags | {"ambiguous"}, candidates)
        flags.add("chose-newest")
    chosen = newest[0]
    if chosen.size > MAX_NOTEBOOK:
        return Found(student, name, chosen.origin, None, flags | {"too-large"}, candidates)
    return Found(student, name, chosen.origin, chosen.read, flags, candidates)
