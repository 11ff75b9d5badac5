"""Large results' memory is kept for the next result of its size (``poolkit.backends.common.new_array``).

A (32, 64, 112, 112) gradient is 102 MB: glibc maps such a block afresh on
every call and the kernel zeroes each page on first touch, so the host
backends keep the memory of a large result that the caller has let go of.
These tests check that it is reused, that memory still reachable through
any array is never handed out again, that results on reused memory are the
same as on fresh memory, and that the kept memory is bounded.
"""

import pickle

import numpy as np
import pytest

import poolkit
from poolkit.backends import common


@pytest.fixture(autouse=True)
def nothing_kept():
    common.release_kept_memory()
    yield
    common.release_kept_memory()


def kept_bytes():
    return sum(block.nbytes for blocks in common._kept.values() for block in blocks)


def gradient_case(seed, shape=(16, 64, 64, 64)):
    """An input of exactly 16 MiB (the smallest kept size) and a gradient for its k3s2p1 pooling."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(poolkit.avg_pool2d(x, 3, 2, 1).shape, dtype=np.float32)
    return x, g


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_released_gradient_memory_serves_the_next_gradient_and_gives_the_same_answer(backend):
    x, g = gradient_case(0)
    first = poolkit.avg_pool2d_backward(g, x, 3, 2, 1, backend=backend)
    expected, address = first.copy(), first.ctypes.data
    del first
    assert kept_bytes() == x.nbytes
    again = poolkit.avg_pool2d_backward(g, x, 3, 2, 1, backend=backend)
    assert again.ctypes.data == address
    assert kept_bytes() == 0
    np.testing.assert_array_equal(again, expected)


def test_memory_reachable_through_a_view_is_not_handed_out_again():
    x, g = gradient_case(1)
    result = poolkit.max_pool2d_backward(g, x, 3, 2, 1, backend="numba")
    corner = result[1:, 2:, ::3]  # a view: it keeps the result's memory alive
    seen = corner.copy()
    del result
    assert kept_bytes() == 0
    other = poolkit.max_pool2d_backward(-g, x, 3, 2, 1, backend="numba")
    np.testing.assert_array_equal(corner, seen)
    assert not np.shares_memory(other, corner)
    del corner
    assert kept_bytes() == x.nbytes


def test_channels_last_results_are_kept_and_stay_channels_last():
    x, g = gradient_case(2)
    x_last, g_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    fresh = poolkit.avg_pool2d_backward(g_last, x_last, 3, 2, 1, layout="NHWC", backend="numba")
    expected, address = fresh.copy(), fresh.ctypes.data
    del fresh
    again = poolkit.avg_pool2d_backward(g_last, x_last, 3, 2, 1, layout="NHWC", backend="numba")
    assert again.ctypes.data == address and again.flags.c_contiguous and again.shape == x_last.shape
    np.testing.assert_array_equal(again, expected)


def test_small_results_are_not_kept():
    result = poolkit.avg_pool2d(np.ones((2, 3, 64, 64), np.float32), 2)
    del result
    assert kept_bytes() == 0


def test_kept_memory_never_goes_past_its_bound(monkeypatch):
    monkeypatch.setattr(common, "REUSE_BYTES", 1 << 10)
    monkeypatch.setattr(common, "KEPT_BYTES", 100 << 10)
    arrays = [common.new_array((size, 1024), np.uint8) for size in (30, 30, 40, 50, 20, 200)]
    while arrays:
        del arrays[0]  # freed in this order: 30, 30, 40, 50, 20 and 200 KiB
    assert kept_bytes() <= 100 << 10
    # The block larger than the bound is given back; the newest blocks are the ones kept.
    assert sorted(common._kept) == [20 << 10, 50 << 10]


def test_an_array_on_kept_memory_behaves_as_an_ordinary_array():
    a = common.new_array((1024, 4096), np.float64)  # 32 MiB
    assert a.flags.writeable and a.flags.c_contiguous and a.flags.aligned
    a[...] = 2.5
    b = a.reshape(4096, 1024).T
    assert float(b.sum()) == 2.5 * a.size
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)), a)
