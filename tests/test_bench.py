"""Smoke test of the CPU benchmark: ``bench/cpu.py --quick`` runs and writes well-formed JSON.

Only the structure and the sign of the numbers are checked, never a time.
"""

import pytest

from benchmarks import quick_results

pytest.importorskip("torch")  # the benchmark's reference

IMPLEMENTATIONS = ["naive", "numpy", "numba", "auto", "torch", "mxnet", "copy"]
RATIOS = ["auto/peer", "numpy/torch", "numba/torch", "numba/mxnet", "numba/copy", "mxnet/torch", "naive/numpy"]


def positive(value):
    return isinstance(value, float) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return quick_results("cpu.py", tmp_path_factory.mktemp("bench") / "cpu.json")


def test_top_level_structure(results):
    assert results["quick"] is True
    assert results["implementations"] == IMPLEMENTATIONS
    assert results["ratios"] == RATIOS
    for key in ["platform", "processor", "cpu_count", "python", "numpy", "torch", "torch_num_threads", "mxnet"]:
        assert key in results["machine"]
    assert results["method"]["notes"] and results["date"]


def test_rows(results):
    rows = results["rows"]
    # 2 shapes x 2 configs x 2 ops x 2 directions in NCHW, and the larger shape again in NHWC.
    assert len(rows) == 24
    assert [row["layout"] for row in rows] == ["NCHW"] * 16 + ["NHWC"] * 8
    for row in rows:
        assert row["op"] in ("max", "avg") and row["direction"] in ("forward", "backward")
        assert row["config"] in ("k3s2p1", "k2s2p0") and len(row["shape"]) == 4
        assert list(row["times_ms"]) == IMPLEMENTATIONS and list(row["ratios"]) == RATIOS
        for name in ["naive", "numpy", "numba", "auto", "torch", "copy"]:  # the small shapes never skip the naive backend
            assert positive(row["times_ms"][name]), (row, name)
            assert row["status"][name] == "ok"
        mxnet = row["times_ms"]["mxnet"]
        assert positive(mxnet) if row["status"]["mxnet"] == "ok" else mxnet is None
        for ratio in RATIOS:
            top, bottom = ratio.split("/")
            if row["times_ms"][top] is not None and (bottom == "peer" or row["times_ms"][bottom] is not None):
                assert positive(row["ratios"][ratio])
        peers = [row["times_ms"][name] for name in ("torch", "mxnet") if row["times_ms"][name] is not None]
        assert row["ratios"]["auto/peer"] == row["times_ms"]["auto"] / min(peers)  # the faster peer of the same row


def test_targets(results):
    large, small = results["targets"]["numpy_vs_torch_max_forward_large"], results["targets"]["naive_vs_numpy_max_forward_64x64"]
    assert large["value"] is None and large["pass"] is None  # the large shape is not in the quick run
    assert positive(small["value"]) and isinstance(small["pass"], bool)


def test_memory_and_the_small_input(results):
    # The memory of auto and torch on every case of the largest shape run, in both layouts (the quick run's is 1x1x64x64).
    assert len(results["memory"]) == 16
    for item in results["memory"]:
        assert item["result_mb"] > 0
        assert all(value is None or value >= 0 for value in item["peak_extra_mb"].values())
    small = results["small_input_us"]
    assert small["shape"] == [1, 1, 8, 8] and positive(small["max"]) and positive(small["avg"])
    worst = results["targets"]["auto_vs_peer_worst_large"]
    assert worst["value"] is None and worst["pass"] is None  # the large shape is not in the quick run
