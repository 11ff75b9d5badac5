"""poolkit grade's reading of submission exports (:mod:`poolkit.grader.collect`):
each learning-management system's layout, in a folder and in a zip, and everything
that is not graded reported with its reason. No kernel and no grading run.

Every expected id, flag, origin and reason is written out here; each notebook holds
its own path as text, so that a test sees which one ``load`` read.
"""

import os
import struct
import time
import warnings
import zipfile

import nbformat
import pytest

from poolkit.grader import collect as collecting
from poolkit.grader.collect import Found, Skipped, collect, compile_pattern, read_roster

HIDDEN = "hidden (starts with . or __): not graded; rename it to grade it"
LINK = "a link: not followed"
LOOSE = "a notebook outside any student's folder, and its name is no Moodle or Canvas export name: give --id-pattern"
NOT_UTF8 = "; a name on its path is not UTF-8 (read as cp437)"
DAY = 1_700_000_000  # a timestamp (November 2023), in even seconds for a zip's two-second steps


def notebook(text=""):
    """A small notebook's bytes, holding ``text`` in a markdown cell."""
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])).encode()


def text_of(found):
    """The markdown of the notebook that ``found.load`` reads."""
    return nbformat.reads(found.load().decode(), as_version=4).cells[0].source


def make(tmp_path, kind, files):
    """An export (a folder, or a zip) holding ``files``: path -> notebook text, or
    ``(text, seconds)`` to set its time; a path ending in ``/`` is an empty folder,
    and a name not ending in ``.ipynb`` gets the text itself."""
    root = tmp_path / "export"
    if kind == "folder":
        root.mkdir()
    bundle = zipfile.ZipFile(tmp_path / "export.zip", "w") if kind == "zip" else None
    for path, value in files.items():
        text, when = value if isinstance(value, tuple) else (value, DAY)
        data = notebook(text) if path.endswith(".ipynb") else text.encode()
        if bundle is not None:
            bundle.writestr(zipfile.ZipInfo(path, time.localtime(when)[:6]), b"" if path.endswith("/") else data)
        elif path.endswith("/"):
            (root / path).mkdir(parents=True, exist_ok=True)
        else:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
            os.utime(root / path, (when, when))
    if bundle is None:
        return root
    bundle.close()
    return tmp_path / "export.zip"


def rows(collection):
    """Each student as ``(student, name, origin, flags)``."""
    return [(each.student, each.name, each.origin, sorted(each.flags)) for each in collection.found]


def reasons(collection):
    return [(skip.origin, skip.why) for skip in collection.skipped]


BOTH = pytest.mark.parametrize("kind", ["folder", "zip"])


@BOTH
def test_a_moodle_folder_export_names_each_student_by_participant_number(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {
            "José Núñez_301_assignsubmission_file_/pool2d.ipynb": "josé",
            "Ann Lee_302_assignsubmission_file_/my work/pool2d.ipynb": "ann",
            "Ann Lee_302_assignsubmission_onlinetext_/onlinetext.html": "<p>done</p>",
            "Bo Wu_303_assignsubmission_onlinetext_/onlinetext.html": "<p>no file</p>",
            "Cy Do_304_assignsubmission_file/answers.ipynb": "cy",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("301", "José Núñez", "José Núñez_301_assignsubmission_file_/pool2d.ipynb", []),
        ("302", "Ann Lee", "Ann Lee_302_assignsubmission_file_/my work/pool2d.ipynb", []),
        ("303", "Bo Wu", "Bo Wu_303_assignsubmission_onlinetext_", ["no-notebook"]),
        ("304", "Cy Do", "Cy Do_304_assignsubmission_file/answers.ipynb", ["renamed"]),
    ]
    assert [text_of(each) for each in found.found if each.load] == ["josé", "ann", "cy"]
    assert found.found[2].load is None
    assert found.skipped == []


def test_a_moodle_flat_export_takes_the_name_after_the_prefix(tmp_path):
    export = make(
        tmp_path,
        "folder",
        {
            "José Núñez_301_assignsubmission_file_pool2d.ipynb": "josé",
            "José Núñez_301_assignsubmission_file_notes.txt": "notes",
            "Ann Lee_302_assignsubmission_file_pool2d (1).ipynb": "ann",
            "Bo Wu_303_assignsubmission_file_report.pdf": "pdf",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("301", "José Núñez", "José Núñez_301_assignsubmission_file_pool2d.ipynb", []),
        ("302", "Ann Lee", "Ann Lee_302_assignsubmission_file_pool2d (1).ipynb", ["renamed"]),
        ("303", "Bo Wu", "Bo Wu_303_assignsubmission_file_report.pdf", ["no-notebook"]),
    ]
    assert text_of(found.found[0]) == "josé"
    assert found.skipped == []


def test_a_canvas_flat_export_flags_late_work_and_reads_a_reupload_as_the_notebook(tmp_path):
    export = make(
        tmp_path,
        "folder",
        {
            "leeann_1001_5001_pool2d.ipynb": "ann",
            "wujo_LATE_1002_5002_pool2d.ipynb": ("jo's first", DAY),
            "wujo_LATE_1002_5002_pool2d-1.ipynb": ("jo's second", DAY + 600),
            "doe2_1003_5003_pool2d-2.ipynb": "doe",
            "kim_1004_5004_answers.ipynb": "kim",
            "park_1005_5005_essay.pdf": "pdf",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("1001", "leeann", "leeann_1001_5001_pool2d.ipynb", []),
        ("1002", "wujo", "wujo_LATE_1002_5002_pool2d-1.ipynb", ["chose-newest", "late"]),
        ("1003", "doe2", "doe2_1003_5003_pool2d-2.ipynb", []),
        ("1004", "kim", "kim_1004_5004_answers.ipynb", ["renamed"]),
        ("1005", "park", "park_1005_5005_essay.pdf", ["no-notebook"]),
    ]
    assert text_of(found.found[1]) == "jo's second"
    assert found.found[1].candidates == ["wujo_LATE_1002_5002_pool2d-1.ipynb", "wujo_LATE_1002_5002_pool2d.ipynb"]
    assert found.skipped == []


@BOTH
def test_nbgraders_folders_with_or_without_the_assignment_folder(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {
            "alice/pool2d.ipynb": "alice",
            "alice/.ipynb_checkpoints/pool2d-checkpoint.ipynb": "autosave",
            "alice/__MACOSX/._pool2d.ipynb": "fork",
            "alice/._pool2d.ipynb": "fork",
            "bob/pool2d/pool2d.ipynb": "bob",
            "bob/pool2d/data.csv": "1,2",
            "carol/hw/mine.ipynb": "carol",
            "carol/hw/.ipynb_checkpoints/mine-checkpoint.ipynb": ("autosave", DAY + 60),
            "carol/hw/._mine.ipynb": ("fork", DAY + 60),
            "carol/__MACOSX/hw/._mine.ipynb": ("fork", DAY + 60),
            "dan/.ipynb_checkpoints/pool2d-checkpoint.ipynb": "autosave",
            "dan/__MACOSX/._pool2d.ipynb": "fork",
            "dan/._pool2d.ipynb": "fork",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("alice", "", "alice/pool2d.ipynb", []),
        ("bob", "", "bob/pool2d/pool2d.ipynb", []),
        ("carol", "", "carol/hw/mine.ipynb", ["renamed"]),
        ("dan", "", "dan", ["no-notebook"]),
    ]
    assert [text_of(each) for each in found.found[:3]] == ["alice", "bob", "carol"]
    assert found.skipped == []


@BOTH
def test_an_export_wrapped_in_one_folder_is_unwrapped_and_the_rest_of_the_top_reported(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {
            "course-export/alice/pool2d.ipynb": "alice",
            "course-export/bob/pool2d/pool2d.ipynb": "bob",
            "__MACOSX/course-export/alice/._pool2d.ipynb": "fork",
            "README.txt": "exported by the LMS",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("alice", "", "course-export/alice/pool2d.ipynb", []),
        ("bob", "", "course-export/bob/pool2d/pool2d.ipynb", []),
    ]
    assert reasons(found) == [("README.txt", "not a notebook"), ("__MACOSX", HIDDEN)]


def test_one_folder_that_holds_a_notebook_itself_is_a_student_not_a_wrapper(tmp_path):
    export = make(tmp_path, "folder", {"alice/pool2d.ipynb": "final", "alice/old/pool2d.ipynb": ("draft", DAY - 600)})
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", ["chose-newest"])]


@BOTH
def test_ids_with_spaces_accents_a_leading_dash_or_symbols_are_kept_and_nfc_normalised(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {
            "-rf/pool2d.ipynb": "dash",
            "Zoë Ñandú/pool2d.ipynb": "zoë",
            "a@b+c/pool2d.ipynb": "at",
            "Jose\u0301/pool2d.ipynb": "decomposed",  # as macOS writes José
        },
    )
    found = collect(export, "pool2d")
    assert [each.student for each in found.found] == ["-rf", "José", "Zoë Ñandú", "a@b+c"]
    assert found.found[1].student == "Jos\u00e9"
    assert found.found[1].origin == "Jose\u0301/pool2d.ipynb"
    assert [text_of(each) for each in found.found] == ["dash", "decomposed", "zoë", "at"]


def test_names_that_cannot_be_student_ids_are_reported(tmp_path):
    long = "x" * 101
    export = make(tmp_path, "folder", {f"{long}/pool2d.ipynb": "", "bell\x07/pool2d.ipynb": "", "a\\b/pool2d.ipynb": "", "ok/pool2d.ipynb": ""})
    found = collect(export, "pool2d")
    assert rows(found) == [("ok", "", "ok/pool2d.ipynb", [])]
    assert reasons(found) == [
        ("a\\b", "'a\\\\b' is not usable as a student id (holds / or \\): map it with --roster"),
        ("bell\x07", "'bell\\x07' is not usable as a student id (holds a control character): map it with --roster"),
        (long, f"'{long}' is not usable as a student id (longer than 100 characters): map it with --roster"),
    ]


@BOTH
def test_hidden_entries_at_the_top_are_reported_and_hidden_notebooks_inside_a_student_are_candidates(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {
            ".hidden/pool2d.ipynb": "",
            "__private/pool2d.ipynb": "",
            "__MACOSX/._alice": "",
            ".git/config": "",
            ".DS_Store": "",
            "alice/.backup/pool2d.ipynb": "alice",
            "bob/pool2d.ipynb": "bob",
        },
    )
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/.backup/pool2d.ipynb", []), ("bob", "", "bob/pool2d.ipynb", [])]
    assert reasons(found) == [(".DS_Store", HIDDEN), (".git", HIDDEN), (".hidden", HIDDEN), ("__MACOSX", HIDDEN), ("__private", HIDDEN)]


def test_a_linked_student_folder_a_linked_notebook_and_a_pipe_are_reported_and_never_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pool2d.ipynb").write_bytes(notebook("someone else's"))
    export = make(tmp_path, "folder", {"alice/pool2d.ipynb": "alice", "carol/notes.txt": "", "dan/pool2d.ipynb": "dan"})
    (export / "bob").symlink_to(outside, target_is_directory=True)
    (export / "carol" / "pool2d.ipynb").symlink_to(outside / "pool2d.ipynb")
    os.mkfifo(export / "dan" / "fifo.ipynb")  # reading it would wait for a writer for ever
    (export / "top.ipynb").symlink_to(outside / "pool2d.ipynb")
    found = collect(export, "pool2d")
    assert rows(found) == [
        ("alice", "", "alice/pool2d.ipynb", []),
        ("carol", "", "carol", ["no-notebook"]),
        ("dan", "", "dan/pool2d.ipynb", []),
    ]
    assert found.found[1].load is None
    assert reasons(found) == [("bob", LINK), ("carol/pool2d.ipynb", LINK), ("dan/fifo.ipynb", "not a regular file: not read"), ("top.ipynb", LINK)]


def test_a_link_member_of_a_zip_is_reported_and_never_read(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as bundle:
        bundle.writestr("alice/pool2d.ipynb", notebook("alice"))
        link = zipfile.ZipInfo("bob/pool2d.ipynb")
        link.external_attr = 0o120777 << 16  # S_IFLNK: its content is the path it points to
        bundle.writestr(link, "/etc/passwd")
    found = collect(tmp_path / "export.zip", "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", []), ("bob", "", "bob", ["no-notebook"])]
    assert reasons(found) == [("bob/pool2d.ipynb", LINK)]


@BOTH
def test_of_two_notebooks_the_newest_is_graded_and_both_are_listed(tmp_path, kind):
    export = make(
        tmp_path,
        kind,
        {"alice/draft/pool2d.ipynb": ("draft", DAY), "alice/final/pool2d.ipynb": ("final", DAY + 4), "bob/pool2d.ipynb": "bob"},
    )
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/final/pool2d.ipynb", ["chose-newest"]), ("bob", "", "bob/pool2d.ipynb", [])]
    assert text_of(found.found[0]) == "final"
    assert found.found[0].candidates == ["alice/draft/pool2d.ipynb", "alice/final/pool2d.ipynb"]
    assert found.found[1].candidates == []


@pytest.mark.parametrize("kind, apart", [("folder", 0), ("folder", 0.6), ("zip", 0)])
def test_two_equally_new_notebooks_are_ambiguous_and_neither_is_graded(tmp_path, kind, apart):
    export = make(tmp_path, kind, {"alice/draft/pool2d.ipynb": ("draft", DAY), "alice/final/pool2d.ipynb": ("final", DAY + apart), "bob/pool2d.ipynb": "bob"})
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice", ["ambiguous"]), ("bob", "", "bob/pool2d.ipynb", [])]
    assert found.found[0].load is None
    assert found.found[0].candidates == ["alice/draft/pool2d.ipynb", "alice/final/pool2d.ipynb"]


def test_renamed_notebooks_count_only_where_no_notebook_has_the_assignments_name(tmp_path):
    export = make(tmp_path, "folder", {"alice/pool2d.ipynb": ("named", DAY), "alice/scratch.ipynb": ("newer", DAY + 60), "bob/a.ipynb": ("a", DAY), "bob/b.ipynb": ("b", DAY + 60)})
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", []), ("bob", "", "bob/b.ipynb", ["chose-newest", "renamed"])]
    assert found.found[1].candidates == ["bob/a.ipynb", "bob/b.ipynb"]


@pytest.mark.parametrize("seconds, flag, graded", [(DAY, "ambiguous", None), (DAY + 2, "chose-newest", "second")])
def test_a_name_twice_in_a_zip_gives_two_candidates_and_a_flag(tmp_path, seconds, flag, graded):
    with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "export.zip", "w") as bundle:
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        bundle.writestr(zipfile.ZipInfo("alice/pool2d.ipynb", time.localtime(DAY)[:6]), notebook("first"))
        bundle.writestr(zipfile.ZipInfo("alice/pool2d.ipynb", time.localtime(seconds)[:6]), notebook("second"))
        bundle.writestr("bob/pool2d.ipynb", notebook("bob"))
    found = collect(tmp_path / "export.zip", "pool2d")
    alice = found.found[0]
    assert (alice.student, sorted(alice.flags)) == ("alice", sorted({flag, "duplicate-in-zip"}))
    assert alice.candidates == ["alice/pool2d.ipynb", "alice/pool2d.ipynb"]
    assert (text_of(alice) if alice.load else None) == graded


def zip_with_raw_names(path, members):
    """A zip whose members' names are the raw bytes given, without the UTF-8 flag
    (zipfile writes any name beyond ASCII as flagged UTF-8, so an ASCII stand-in of
    the same length is written and then replaced in the file's bytes)."""
    stand_ins = {}
    with zipfile.ZipFile(path, "w") as bundle:
        for index, (raw, data) in enumerate(members.items()):
            stand_in = ("~" * (len(raw) - 1) + "abcdefgh"[index]).encode()
            stand_ins[stand_in] = raw
            bundle.writestr(stand_in.decode(), data)
    content = path.read_bytes()
    for stand_in, raw in stand_ins.items():
        content = content.replace(stand_in, raw)
    path.write_bytes(content)
    with zipfile.ZipFile(path) as bundle:
        assert [(info.filename.encode("cp437"), info.flag_bits & 0x800) for info in bundle.infolist()] == [(raw, 0) for raw in members]


def test_member_names_without_the_utf8_flag_are_read_as_utf8_where_they_are_else_as_cp437(tmp_path):
    zip_with_raw_names(
        tmp_path / "export.zip",
        {
            b"Jos\x82/pool2d.ipynb": notebook("cp437"),  # 0x82 is cp437's é, and no UTF-8
            "Zoë/pool2d.ipynb".encode(): notebook("utf-8"),
        },
    )
    found = collect(tmp_path / "export.zip", "pool2d")
    assert rows(found) == [("José", "", "José/pool2d.ipynb", []), ("Zoë", "", "Zoë/pool2d.ipynb", [])]
    assert [text_of(each) for each in found.found] == ["cp437", "utf-8"]


def test_zip_members_outside_the_export_are_reported_and_never_read(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as bundle:
        bundle.writestr("alice/pool2d.ipynb", notebook("alice"))
        for name in ("../bob/pool2d.ipynb", "carol/../../pool2d.ipynb", "/dan/pool2d.ipynb", "C:/eve/pool2d.ipynb"):
            info = zipfile.ZipInfo("x")
            info.filename = name  # ZipInfo() itself would keep these, but be explicit that nothing is cleaned
            bundle.writestr(info, notebook(name))
    found = collect(tmp_path / "export.zip", "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", [])]
    assert reasons(found) == [
        ("../bob/pool2d.ipynb", "a '..' in its path in the zip: not read"),
        ("/dan/pool2d.ipynb", "an absolute path in the zip: not read"),
        ("C:/eve/pool2d.ipynb", "an absolute path in the zip: not read"),
        ("carol/../../pool2d.ipynb", "a '..' in its path in the zip: not read"),
    ]


@BOTH
def test_a_notebook_over_the_size_limit_is_flagged_and_not_read(tmp_path, kind, monkeypatch):
    monkeypatch.setattr(collecting, "MAX_NOTEBOOK", 500)
    export = make(tmp_path, kind, {"alice/pool2d.ipynb": "x" * 600, "bob/pool2d.ipynb": "bob"})
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", ["too-large"]), ("bob", "", "bob/pool2d.ipynb", [])]
    assert found.found[0].load is None
    assert text_of(found.found[1]) == "bob"


def test_a_notebook_that_grows_past_the_limit_after_the_listing_is_refused_when_read(tmp_path, monkeypatch):
    monkeypatch.setattr(collecting, "MAX_NOTEBOOK", 500)
    export = make(tmp_path, "folder", {"alice/pool2d.ipynb": "small"})
    found = collect(export, "pool2d")
    (export / "alice" / "pool2d.ipynb").write_bytes(notebook("x" * 600))
    with pytest.raises(ValueError, match="larger than 500 bytes"):
        found.found[0].load()


def test_a_zip_member_larger_than_its_header_says_never_reads_past_it(tmp_path):
    with zipfile.ZipFile(tmp_path / "export.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("alice/pool2d.ipynb", notebook("0" * 5_000_000))
    content = bytearray((tmp_path / "export.zip").read_bytes())
    central = content.index(b"PK\x01\x02")
    content[central + 24 : central + 28] = struct.pack("<I", 100)  # the central directory's uncompressed size
    (tmp_path / "export.zip").write_bytes(content)
    found = collect(tmp_path / "export.zip", "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", [])]
    with pytest.raises(zipfile.BadZipFile):
        found.found[0].load()


def test_a_folder_name_that_is_not_utf8_is_read_as_cp437_and_flagged(tmp_path):
    export = make(tmp_path, "folder", {"ann/pool2d.ipynb": "ann"})
    raw = os.fsencode(export)
    os.mkdir(raw + b"/Jos\x82")
    with open(raw + b"/Jos\x82/pool2d.ipynb", "wb") as file:
        file.write(notebook("josé"))
    with open(raw + b"/\xff.ipynb", "wb") as file:  # cp437's 0xff is a no-break space
        file.write(notebook("loose"))
    found = collect(export, "pool2d")
    assert rows(found) == [("José", "", "José/pool2d.ipynb", ["name-not-utf8"]), ("ann", "", "ann/pool2d.ipynb", [])]
    assert text_of(found.found[0]) == "josé"
    assert reasons(found) == [("\u00a0.ipynb", LOOSE + NOT_UTF8)]


def test_loose_files_at_the_top_are_reported(tmp_path):
    export = make(tmp_path, "folder", {"alice/pool2d.ipynb": "", "pool2d.ipynb": "", "grades.csv": ""})
    found = collect(export, "pool2d")
    assert rows(found) == [("alice", "", "alice/pool2d.ipynb", [])]
    assert reasons(found) == [("grades.csv", "not a notebook"), ("pool2d.ipynb", LOOSE)]


def test_an_id_pattern_names_the_students_of_flat_files_at_any_depth(tmp_path):
    export = make(
        tmp_path,
        "folder",
        {
            "hw1-ana-Ana Lima-pool2d.ipynb": "ana",
            "hw1-bo-Bo Wu-final.ipynb": "bo",
            "late/hw1-cy-Cy Do-pool2d.ipynb": "cy",
            "random.ipynb": "",
            "readme.txt": "",
            "empty/": "",
        },
    )
    found = collect(export, "pool2d", pattern=r"(?:late/)?hw1-(?P<student_id>[a-z]+)-(?P<name>[^-]+)-(?P<file_id>.+)")
    assert rows(found) == [
        ("ana", "Ana Lima", "hw1-ana-Ana Lima-pool2d.ipynb", []),
        ("bo", "Bo Wu", "hw1-bo-Bo Wu-final.ipynb", ["renamed"]),
        ("cy", "Cy Do", "late/hw1-cy-Cy Do-pool2d.ipynb", []),
    ]
    assert [text_of(each) for each in found.found] == ["ana", "bo", "cy"]
    assert reasons(found) == [("empty", "holds no notebook"), ("random.ipynb", "does not match --id-pattern"), ("readme.txt", "not a notebook")]


def test_an_id_pattern_without_file_id_reads_the_files_own_name_and_ignores_the_layouts(tmp_path):
    export = make(tmp_path, "folder", {"s-12/pool2d.ipynb": "12", "Ann Lee_302_assignsubmission_file_/pool2d.ipynb": ""})
    found = collect(export, "pool2d", pattern=r"s-(?P<student_id>\d+)/")
    assert rows(found) == [("12", "", "s-12/pool2d.ipynb", [])]
    assert reasons(found) == [("Ann Lee_302_assignsubmission_file_/pool2d.ipynb", "does not match --id-pattern")]


def write_roster(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "roster.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_roster_maps_export_keys_flags_strangers_and_lists_the_absent(tmp_path):
    export = make(
        tmp_path,
        "folder",
        {
            "José Núñez_301_assignsubmission_file_/pool2d.ipynb": "josé",
            "Ann Lee_302_assignsubmission_file_/pool2d.ipynb": "ann",
            "Ann Lee_302_assignsubmission_onlinetext_/onlinetext.html": "",
            "Bo Wu_303_assignsubmission_file_/pool2d.ipynb": "bo",
        },
    )
    roster = write_roster(tmp_path, "\ufeffStudent_ID,export_id,name\njnunez,301,José Núñez-Ortiz\nalee,302,\nzed,,Zed Absent\nzed,999,\n")
    found = collect(export, "pool2d", roster=roster)
    assert rows(found) == [
        ("303", "Bo Wu", "Bo Wu_303_assignsubmission_file_/pool2d.ipynb", ["not-in-roster"]),
        ("alee", "Ann Lee", "Ann Lee_302_assignsubmission_file_/pool2d.ipynb", []),
        ("jnunez", "José Núñez-Ortiz", "José Núñez_301_assignsubmission_file_/pool2d.ipynb", []),
        ("zed", "Zed Absent", "", ["no-submission"]),
    ]
    assert found.found[3] == Found("zed", "Zed Absent", "", None, {"no-submission"})
    assert text_of(found.found[2]) == "josé"


def test_a_roster_merges_two_entries_of_one_student(tmp_path):
    export = make(tmp_path, "folder", {"leeann_1001_5001_pool2d.ipynb": ("canvas", DAY), "alee/pool2d.ipynb": ("folder", DAY + 60)})
    roster = write_roster(tmp_path, "student_id,export_id\nalee,1001\n")
    found = collect(export, "pool2d", roster=roster)
    assert rows(found) == [("alee", "leeann", "alee/pool2d.ipynb", ["chose-newest"])]
    assert found.found[0].candidates == ["alee/pool2d.ipynb", "leeann_1001_5001_pool2d.ipynb"]


def test_the_roster_reads_to_export_keys(tmp_path):
    roster = write_roster(tmp_path, 'name,student_id,export_id\n"Lee, Ann",alee,302\nBo,bo,\n\n')
    assert read_roster(roster) == {"302": ("alee", "Lee, Ann"), "bo": ("bo", "Bo")}


@pytest.mark.parametrize(
    "text, what",
    [
        ("", "empty; it needs a header row with a student_id column, line 1"),
        ("id,name\n1,Ann\n", "no student_id column in the header row, line 1"),
        ("student_id,name\nann,Ann\n,Bo\n", "an empty student_id, line 3"),
        ("student_id,export_id\nann,17\nbo,18\ncy,17\n", "a second row for the export_id '17' (the first is on line 2), line 4"),
        ("student_id\nann\nann\n", "a second row for the export_id 'ann' (the first is on line 2), line 3"),
        ("student_id\nok\n../etc\n", "the student_id '../etc' is not usable (starts with .), line 3"),
        ("student_id\na/b\n", "the student_id 'a/b' is not usable (holds / or \\), line 2"),
        ("student_id,name\nann,Lee, Ann\n", "more cells than the header row has columns (quote a cell that holds a comma), line 2"),
        ("student_id,student_id\n", "two student_id columns, line 1"),
        ('student_id,name\nann,"Lee\nAnn"\nbo,' + "B" * 200_000 + "\n", "not a CSV file (field larger than field limit (131072)), line 4"),
        ('student_id,name\nann,"Lee\nAnn"\n,Bo\n', "an empty student_id, line 4"),
    ],
)
def test_each_roster_problem_is_one_line_naming_the_option_and_the_line(tmp_path, text, what):
    roster = write_roster(tmp_path, text)
    with pytest.raises(ValueError) as error:
        read_roster(roster)
    assert str(error.value) == f"--roster {roster}: {what}"


def test_a_roster_that_is_missing_or_not_utf8_is_refused(tmp_path):
    with pytest.raises(ValueError) as missing:
        read_roster(tmp_path / "nowhere.csv")
    assert str(missing.value) == f"--roster {tmp_path / 'nowhere.csv'}: no such file"
    roster = write_roster(tmp_path, "student_id,name\nann,Ann\njose,José\n", encoding="latin-1")
    with pytest.raises(ValueError) as latin:
        collect(tmp_path, "pool2d", roster=roster)
    assert str(latin.value) == f"--roster {roster}: not UTF-8 text, line 3"


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("(?P<student_id>[a-z]+", "--id-pattern '(?P<student_id>[a-z]+': not a regular expression (missing ), unterminated subpattern at position 0)"),
        (r"(?P<id>\w+)_", "--id-pattern '(?P<id>\\\\w+)_': it has no (?P<student_id>...) group, which names the student"),
    ],
)
def test_each_pattern_problem_is_one_line_naming_the_option(tmp_path, pattern, message):
    with pytest.raises(ValueError) as error:
        compile_pattern(pattern)
    assert str(error.value) == message
    with pytest.raises(ValueError, match="^--id-pattern "):
        collect(tmp_path, "pool2d", pattern=pattern)


def test_skipped_entries_are_sorted_by_origin_and_found_students_by_id(tmp_path):
    export = make(tmp_path, "folder", {"zed/pool2d.ipynb": "", "Ann/pool2d.ipynb": "", "b.txt": "", "a.txt": ""})
    found = collect(export, "pool2d")
    assert [each.student for each in found.found] == ["Ann", "zed"]
    assert found.skipped == [Skipped("a.txt", "not a notebook"), Skipped("b.txt", "not a notebook")]


def test_an_id_pattern_in_a_wrapped_zip_matches_paths_below_the_wrapper(tmp_path):
    export = make(tmp_path, "zip", {"export/alice/hw.ipynb": "alice", "export/bob/pool2d.ipynb": "bob", "__MACOSX/export/._bob": ""})
    found = collect(export, "pool2d", pattern=r"(?P<student_id>[a-z]+)/")
    assert rows(found) == [("alice", "", "export/alice/hw.ipynb", ["renamed"]), ("bob", "", "export/bob/pool2d.ipynb", [])]
    assert reasons(found) == [("__MACOSX", HIDDEN)]
