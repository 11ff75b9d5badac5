"""The numbers the lecture states, computed by poolkit (both backends) and by both frameworks.

These are the values a reader checks by hand; if any of them changed, the
course would contradict itself.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import poolkit

BACKENDS = ["numpy", "naive"]
X9 = np.arange(9.0).reshape(1, 1, 3, 3)  # the lecture's 0..8
X16 = np.arange(16.0).reshape(1, 1, 4, 4)  # 0..15


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_by_two_pooling_of_zero_to_eight(backend):
    assert poolkit.max_pool2d(X9, 2, stride=1, backend=backend)[0, 0].tolist() == [[4, 5], [7, 8]]
    assert poolkit.avg_pool2d(X9, 2, stride=1, backend=backend)[0, 0].tolist() == [[2, 3], [5, 6]]
    # MXNet's raw operator already has stride 1.
    assert poolkit.mxnet_pooling(X9, kernel=(2, 2), backend=backend)[0, 0].tolist() == [[4, 5], [7, 8]]
    assert poolkit.mxnet_pooling(X9, kernel=(2, 2), pool_type="avg", backend=backend)[0, 0].tolist() == [[2, 3], [5, 6]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_and_stride_on_zero_to_fifteen(backend):
    assert poolkit.max_pool2d(X16, 3, backend=backend)[0, 0].tolist() == [[10]]
    assert poolkit.max_pool2d(X16, 3, padding=1, stride=2, backend=backend)[0, 0].tolist() == [[5, 7], [13, 15]]
    assert poolkit.max_pool2d(X16, (2, 3), padding=(0, 1), stride=(2, 3), backend=backend)[0, 0].tolist() == [[5, 7], [13, 15]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_channels_are_pooled_separately(backend):
    X = np.concatenate([X16, X16 + 1], axis=1)
    out = poolkit.max_pool2d(X, 3, padding=1, stride=2, backend=backend)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0].tolist() == [[5, 7], [13, 15]]
    assert out[0, 1].tolist() == [[6, 8], [14, 16]]


def test_the_frameworks_state_the_same_numbers():
    t16 = torch.tensor(X16)
    assert F.max_pool2d(torch.tensor(X9), 2, stride=1)[0, 0].tolist() == [[4, 5], [7, 8]]
    assert F.max_pool2d(t16, 3, padding=1, stride=2)[0, 0].tolist() == [[5, 7], [13, 15]]
    mx = pytest.importorskip("mxnet")
    assert mx.nd.Pooling(mx.nd.array(X9), kernel=(2, 2), pool_type="avg").asnumpy()[0, 0].tolist() == [[2, 3], [5, 6]]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [(4, 3, 2, 1, 1), (112, 3, 2, 1, 1), (7, 3, 1, 0, 2), (5, 2, 2, 0, 1)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_output_size_formula_matches_torch(size, kernel, stride, padding, dilation, ceil_mode):
    expected = F.max_pool1d(torch.zeros(1, 1, size), kernel, stride, padding, dilation, ceil_mode).shape[-1]
    assert poolkit.pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected
    # The formula, written out: floor((n + 2p - d(k-1) - 1) / s) + 1 (the common mistake is "+1" inside).
    if not ceil_mode:
        assert expected == (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
