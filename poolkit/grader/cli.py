"""The ``poolkit`` command: ``poolkit grade`` for instructors, ``poolkit check`` for students."""

import argparse
import re
import sys
from pathlib import Path

SUMMARY = re.compile(r"^(\S+): (\d+) of (\d+) visible cases passed")


def _gigabytes(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--memory-gb must be a number, got {text!r}") from None
    if not 0 < value < float("inf"):  # the range is checked with the run's other arguments
        raise argparse.ArgumentTypeError(f"--memory-gb must be a positive number of gigabytes, got {text!r}")
    return int(value * (1 << 30))


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def grade_command(args):
    """Grade; exit 0, or 1 when the grader failed on a student (their row says grader-error)."""
    from .autograde import Interrupted, Settings, grade

    settings = Settings(timeout=args.timeout, memory=args.memory_gb, budget=args.budget, scratch=args.scratch_mb << 20)
    if args.cluster_wait is not None and args.cluster is None:
        raise ValueError("--cluster-wait needs --cluster")
    try:
        report = grade(
            args.assignment,
            args.submissions,
            args.out,
            workers=args.workers,
            course=args.course,
            settings=settings,
            unsafe_no_sandbox=args.unsafe_no_sandbox,
            roster=args.roster,
            id_pattern=args.id_pattern,
            keep_work=args.keep_work,
            regrade=args.regrade,
            cluster=args.cluster,
            cluster_wait=args.cluster_wait,
        )
    except Interrupted as stop:
        return 128 + stop.signum
    print(f"{report}\ngrades: {report.grades}\nfeedback: {Path(args.out) / 'feedback'}\nreport: {report.report}")
    return 1 if report.errors else 0


#: How the kernel's own log lines begin (notes on its plumbing, not from the student's code).
KERNEL_LOG = "[IPKernelApp]"


def check_command(args):
    """Run a notebook's visible tests and print one line per question."""
    import tempfile

    import nbformat

    from .autograde import is_test_cell
    from .notebooks import execute

    path = Path(args.notebook)
    if not path.is_file():
        print(f"error: NOTEBOOK {str(path)!r} does not exist", file=sys.stderr)
        return 2
    nb = nbformat.read(path, as_version=4)
    # The kernel's stderr goes to a file, not into the report: its notes (such as
    # IPKernelApp's on TCP) would otherwise land in the middle of the lines below.
    with tempfile.TemporaryFile() as log:
        graded, _ = execute(nb, path.parent.resolve(), timeout=args.timeout, kernel_stderr=log)
        log.seek(0)
        written = log.read().decode("utf-8", errors="replace")
    kept = [line for line in written.splitlines() if line.strip() and not line.startswith(KERNEL_LOG)]
    if kept:  # what the student's code wrote to the process's stderr, on lines of its own
        print("the kernel wrote to its stderr (not part of the tests):", *(f"  {line}" for line in kept), sep="\n", file=sys.stderr, flush=True)
    questions = passing = 0
    for cell in graded.cells:
        if not is_test_cell(cell):
            continue
        questions += 1
        name = cell.metadata.nbgrader.get("grade_id", "?")
        printed = "".join(output.get("text", "") for output in cell.outputs if output.get("output_type") == "stream")
        errors = [f"{output.ename}: {output.evalue}" for output in cell.outputs if output.get("output_type") == "error"]
        counts = [match for match in map(SUMMARY.match, printed.splitlines()) if match is not None]
        if errors:
            print(f"  {name}: error: {errors[0]}")
            continue
        passed = sum(int(match[2]) for match in counts)
        total = sum(int(match[3]) for match in counts)
        ok = total > 0 and passed == total
        passing += ok
        print(f"  {name}: {passed} of {total} visible cases passed")
        for line in printed.splitlines():
            if line.startswith("  FAIL "):
                print(f"    {line.strip()}")
    verdict = "every visible case passes" if questions and passing == questions else "the FAIL lines say what is wrong"
    print(f"{path.name}: {passing} of {questions} questions pass their visible tests ({verdict}); hidden cases are graded later", flush=True)
    return 0 if questions and passing == questions else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="poolkit", description="The course's tools for students and instructors.")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="autograde every student's submission of an assignment")
    grade.add_argument("assignment", help="the assignment's name, a folder of the course's solutions/")
    grade.add_argument("submissions", help="a folder or zip: <student_id>/<notebook>.ipynb, or a Moodle or Canvas export")
    grade.add_argument("--out", required=True, help="where the gradebook, grades.csv and feedback/ go")
    grade.add_argument("--workers", type=_positive, default=None, help="submissions graded at once (default: the number of cores; with --cluster, the cluster's worker threads)")
    grade.add_argument("--timeout", type=_positive, default=30, help="seconds one cell may run (default: 30)")
    grade.add_argument("--memory-gb", type=_gigabytes, default=4 << 30, help="memory cap of each student's processes (default: 4)")
    grade.add_argument("--course", default=None, help="the course's root (default: found from the current folder)")
    grade.add_argument("--budget", type=_positive, default=600, help="seconds one submission may take in all, then it is stopped and flagged time-budget (default: 600)")
    grade.add_argument("--scratch-mb", type=_positive, default=512, help="space for the files a submission writes, in its memory (default: 512)")
    grade.add_argument("--roster", default=None, help="a CSV with student_id (and export_id, name): maps the export's ids to yours, and lists who submitted nothing")
    grade.add_argument("--id-pattern", default=None, help="a regex with a (?P<student_id>...) group, matched against each notebook's path in the export")
    grade.add_argument("--regrade", action="store_true", help="grade every student again, even those an earlier run on --out recorded")
    grade.add_argument("--cluster", default=None, metavar="tcp://HOST:PORT", help="grade on the workers of this running Dask scheduler instead of this machine's cores")
    grade.add_argument("--cluster-wait", type=_positive, default=None, metavar="SECONDS", help="with --cluster: how long to wait for a first worker (default: 60)")
    grade.add_argument("--keep-work", action="store_true", help="keep each submission's job folder in DIR/work/ (for debugging the grader)")
    grade.add_argument(
        "--unsafe-no-sandbox", action="store_true", help="grade even where bubblewrap cannot isolate submissions (only for submissions you trust)"
    )
    grade.set_defaults(run=grade_command)
    check = commands.add_parser("check", help="run a notebook's visible tests and summarise them per question")
    check.add_argument("notebook")
    check.add_argument("--timeout", type=_positive, default=60, help="seconds one cell may run (default: 60)")
    check.set_defaults(run=check_command)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
