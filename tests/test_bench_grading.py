"""Smoke test of the grading benchmark: ``bench/grading.py --quick`` runs and writes well-formed JSON.

Only the structure and the sign of the numbers are checked, never a time.
"""

import pytest

from benchmarks import quick_results

pytest.importorskip("nbgrader")
pytest.importorskip("torch")
pytest.importorskip("mxnet")  # one of the synthetic submissions uses it

# Every test reads the one benchmark run: under pytest-xdist (--dist loadgroup) they share a worker, so it runs once.
pytestmark = pytest.mark.xdist_group("bench_grading")

RUNS = ["poolkit_1", "poolkit_N", "poolkit_dask", "nbgrader", "nbgrader_feedback"]
VARIANTS = ["correct-pytorch", "correct-mxnet", "partly-wrong", "blank"]


def positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return quick_results("grading.py", tmp_path_factory.mktemp("bench") / "grading.json")


def test_top_level_structure(results):
    assert results["quick"] is True
    assert results["assignment"] == "pool2d" and results["notebook"] == "pool2d"
    for key in ["platform", "cpu_count", "python", "nbgrader", "poolkit"]:
        assert results["machine"][key], key
    assert positive(results["machine"]["cpu_count"])
    assert results["method"]["notes"] and results["date"]
    assert positive(results["submissions"]) and positive(results["workers"])
    assert positive(results["nbgrader_generate_seconds"]) and positive(results["total_seconds"])


def test_runs(results):
    runs = results["runs"]
    assert list(runs) == RUNS
    assert runs["poolkit_1"]["workers"] == 1 and runs["poolkit_N"]["workers"] == results["workers"]
    assert runs["poolkit_dask"]["workers"] == results["workers"] and "--cluster" in runs["poolkit_dask"]["command"]
    if results["cpu_method"] != "rusage children":
        # The workers grade: their CPU (the cluster's cgroup) is counted, not the driver's alone.
        assert runs["poolkit_dask"]["cpu_seconds"] > 0.5 * runs["poolkit_1"]["cpu_seconds"]
    for name, run in runs.items():
        for key in ["seconds", "submissions_per_minute", "seconds_per_submission", "cpu_seconds", "cpu_seconds_per_submission"]:
            assert positive(run[key]), (name, key)
        assert run["command"], name
        assert abs(run["seconds_per_submission"] * results["submissions"] - run["seconds"]) < 1e-6 * run["seconds"] + 1e-9


def test_targets(results):
    targets = results["targets"]
    assert set(targets) == {"speedup", "overhead_ratio", "overhead_ratio_with_feedback", "cpu_ratio"}
    for goal in targets.values():
        assert positive(goal["value"]) and positive(goal["threshold"])
        assert goal["comparison"] in ("<=", ">=") and isinstance(goal["pass"], bool) and goal["description"]
    runs = results["runs"]
    assert targets["speedup"]["value"] == pytest.approx(runs["poolkit_1"]["seconds"] / runs["poolkit_N"]["seconds"])
    assert targets["speedup"]["threshold"] == 1.8 and targets["cpu_ratio"]["threshold"] == 0.5
    cpu = runs["poolkit_1"]["cpu_seconds_per_submission"] / runs["nbgrader"]["cpu_seconds_per_submission"]
    assert targets["cpu_ratio"]["value"] == pytest.approx(cpu)


def test_cpu_method(results):
    # One method for every command; the sandboxes' cgroups are counted only where they nest in the command's.
    assert results["cpu_method"] in ("cgroup v1 cpuacct", "cgroup v2", "rusage children")
    assert isinstance(results["sandbox_cgroups_nested"], bool)
    if results["sandbox_cgroups_nested"]:
        assert results["cpu_method"] == "cgroup v1 cpuacct"


def test_scores(results):
    # Every run agreed (the benchmark aborts otherwise); the variants score as they should.
    scores, variants = results["scores"], results["variants"]
    assert len(scores) == results["submissions"]
    assert list(variants) == VARIANTS
    assert sum(variant["students"] for variant in variants.values()) == results["submissions"]
    assert positive(results["max_score"])
    for name, variant in variants.items():
        if variant["students"]:
            expected = {"correct-pytorch": results["max_score"], "correct-mxnet": results["max_score"], "blank": 0}
            if name in expected:
                assert variant["score"] == expected[name], name
            else:
                assert 0 < variant["score"] < results["max_score"]
