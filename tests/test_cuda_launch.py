"""The cuda backend's launch path (:mod:`poolkit.backends.cuda.launch`): the stream
its kernels go on, the allocator its outputs come from, one kernel per case
with the window compiled in, the values-only max kernel, the device-side
divisor tables, and ``scatter_add``; every result exact against the NumPy
backend, on tiny inputs with ties, NaN, padding and ceil mode.

Without a GPU this runs on numba's CUDA simulator (conftest sets
``NUMBA_ENABLE_CUDASIM=1``), which runs kernels but has no streams to speak of
(it ignores the stream a kernel is launched on), no ``external_stream`` and no
``as_cuda_array``. So the stream and allocator logic is tested where it is
decided: a :class:`~poolkit.backends.cuda.launch.Place` (a stream and an
allocator) travels with the device arrays, and every launch and allocation of
a call is recorded and checked against the place of its input; the torch path
runs end to end with CPU tensors standing in for CUDA tensors (their NumPy view
as the device array) and a fake ``torch.cuda.current_stream``. On a GPU
(``make gpu-check``) the tests marked ``device`` run with real CUDA tensors:
a kernel racing a side stream, torch's allocator, one signature per case.
"""

import inspect
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from numba import cuda

import poolkit
from poolkit import arrays, spec
from poolkit.backends import cuda as backend
from poolkit.backends import numpy_
from poolkit.backends.cuda import kernels, launch

from cases import exact, make_values

ROOT = Path(__file__).resolve().parents[1]
SIMULATED = launch.SIMULATED
DEVICE = not SIMULATED and torch.cuda.is_available() and cuda.is_available()
device = pytest.mark.skipif(not DEVICE, reason="needs a CUDA device that torch and numba-cuda see (make gpu-check)")
simulator = pytest.mark.skipif(not SIMULATED, reason="CPU tensors stand in for CUDA tensors on numba's simulator only")


def host(result):
    """A device (or torch) result as NumPy."""
    if isinstance(result, tuple):
        return tuple(host(part) for part in result)
    if isinstance(result, torch.Tensor):
        return result.detach().cpu().numpy()
    return backend._to_host(result) if hasattr(result, "copy_to_host") else np.asarray(result)


def python_function(kernel):
    """The Python function a numba kernel (or the simulator's stand-in) was made from."""
    return getattr(kernel, "py_func", None) or kernel.fn


# --- recording what a call does ------------------------------------------------------


class Recorder:
    """Every kernel launch (kernel, stream, arguments) and every allocation of a :class:`Place`."""

    def __init__(self):
        self.launches = []
        self.allocations = []

    def run(self, real):
        def run(kernel, count, stream, *args):
            self.launches.append((kernel, stream, args))
            return real(kernel, count, stream, *args)

        return run

    def allocate(self, count, dtype, fill):
        """An allocator standing in for torch's: numba memory, remembered with a base of its own."""
        array = cuda.device_array(count, dtype)
        if fill is not None:
            array.copy_to_device(np.full(count, fill, dtype))
        base = types.SimpleNamespace(count=count, dtype=np.dtype(dtype), fill=fill, array=array)
        self.allocations.append(base)
        return array, base

    def kernels(self):
        return [kernel for kernel, _, _ in self.launches]


@pytest.fixture
def recorder(monkeypatch):
    """Record every launch (the backend's and the fills of :meth:`Place.empty`)."""
    recorder = Recorder()
    real = launch.run
    monkeypatch.setattr(backend, "_launch", recorder.run(real))
    monkeypatch.setattr(launch, "run", recorder.run(real))
    return recorder


@pytest.fixture
def specialise(monkeypatch):
    """Set after how many calls of a case its specialised kernel runs; forget the cases seen."""
    monkeypatch.setattr(launch, "_calls", launch.collections.Counter())

    def set_to(calls):
        monkeypatch.setattr(launch, "SPECIALISE_AFTER", calls)

    return set_to


# --- the launch itself -------------------------------------------------------------------


class FakeKernel:
    def __init__(self):
        self.configurations, self.calls = [], []

    def __getitem__(self, configuration):
        self.configurations.append(configuration)
        return lambda *args: self.calls.append(args)


def test_run_launches_on_the_stream_it_is_given_with_enough_blocks():
    kernel, stream = FakeKernel(), cuda.stream()
    launch.run(kernel, 1000, stream, "a", 1)
    launch.run(kernel, 10**9, 0, "b")
    launch.run(kernel, 0, stream, "c")  # nothing to do: no launch
    blocks = -(-1000 // launch.THREADS)
    assert kernel.configurations == [(blocks, launch.THREADS, stream), (launch.MAX_BLOCKS, launch.THREADS, 0)]
    assert kernel.calls == [("a", 1), ("b",)]


def test_numba_device_arrays_keep_numbas_default_stream_and_allocator(recorder):
    x = make_values(np.random.default_rng(0), (1, 2, 5, 5), np.float32, "ties")
    out, where = poolkit.max_pool2d(cuda.to_device(x), 3, 2, 1, ceil_mode=True, return_indices=True, backend="cuda")
    assert recorder.launches and all(stream == 0 for _, stream, _ in recorder.launches)
    assert launch.place_of(out) is launch.NUMBA and getattr(out, launch.BASE) is None
    expected = poolkit.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True, backend="numpy")
    exact(host(out), expected[0])
    exact(host(where), expected[1])


# --- a place: every launch on its stream, every output from its allocator ----------------


def placed(x, place):
    """Host ``x`` on the device, belonging to ``place``."""
    return launch.tag(cuda.to_device(np.ascontiguousarray(x)), place)


def check_place(recorder, place, results):
    """Every launch went on ``place``'s stream, and every result lies in memory ``place`` allocated."""
    assert recorder.launches
    assert all(stream is place.stream for _, stream, _ in recorder.launches), [(k, s) for k, s, _ in recorder.launches]
    bases = [id(base) for base in recorder.allocations]
    for result in results:
        assert launch.place_of(result) is place
        assert id(getattr(result, launch.BASE)) in bases


CASES_2D = [
    # (shape, layout, kernel, stride, padding, ceil_mode, value kind)
    ((2, 3, 5, 6), "NCHW", 3, 2, 1, True, "ties"),
    ((1, 5, 6, 2), "NHWC", (2, 3), (2, 1), (1, 0), False, "nan"),
    ((2, 7, 7), "NCHW", 2, 3, 1, True, "normal"),  # unbatched
]


@pytest.mark.parametrize("calls", [1, 0], ids=["generic-first", "specialised"])
@pytest.mark.parametrize("case", CASES_2D, ids=lambda case: f"{case[1]}-{case[-1]}")
def test_every_launch_of_a_call_goes_on_its_places_stream_into_its_memory_and_matches_numpy(recorder, specialise, calls, case):
    specialise(calls)
    shape, layout, kernel, stride, padding, ceil, kind = case
    rng = np.random.default_rng(1)
    x = make_values(rng, shape, np.float32, kind)
    place = launch.Place(cuda.stream(), recorder.allocate, "test")
    d = placed(x, place)

    def both(function, *args, **kwargs):
        ours = function(*[placed(a, place) if isinstance(a, np.ndarray) else a for a in args], **kwargs, layout=layout, backend="cuda")
        reference = function(*args, **kwargs, layout=layout, backend="numpy")
        for a, b in zip(*((ours, reference) if isinstance(ours, tuple) else ((ours,), (reference,)))):
            exact(host(a), b)
        return ours if isinstance(ours, tuple) else (ours,)

    results = []
    results += both(poolkit.max_pool2d, x, kernel, stride, padding, 1, ceil, True)
    results += both(poolkit.max_pool2d, x, kernel, stride, padding, 1, ceil)
    results += both(poolkit.min_pool2d, x, kernel, stride, padding, 1, ceil)
    results += both(poolkit.avg_pool2d, x, kernel, stride, padding, ceil, False)
    results += both(poolkit.avg_pool2d, x, kernel, stride, padding, ceil, True, 3)
    out_shape = host(poolkit.max_pool2d(d, kernel, stride, padding, 1, ceil, layout=layout, backend="cuda")).shape
    grad = rng.standard_normal(out_shape).astype(np.float32)
    results += both(poolkit.max_pool2d_backward, grad, x, kernel, stride, padding, 1, ceil)
    results += both(poolkit.avg_pool2d_backward, grad, x, kernel, stride, padding, ceil, True)
    results += both(poolkit.adaptive_max_pool2d, x, (2, 3), True)
    results += both(poolkit.lp_pool2d, x, 1.0, 2, 2)
    check_place(recorder, place, results)


def test_a_values_only_max_pool_has_no_index_array_once_its_case_is_specialised(recorder, specialise):
    specialise(0)
    x = make_values(np.random.default_rng(2), (1, 2, 6, 6), np.float32, "ties")
    place = launch.Place(cuda.stream(), recorder.allocate, "test")
    out = poolkit.max_pool2d(placed(x, place), 3, 2, 1, backend="cuda")
    exact(host(out), poolkit.max_pool2d(x, 3, 2, 1, backend="numpy"))
    (kernel, _, args), = recorder.launches
    assert list(inspect.signature(python_function(kernel)).parameters) == ["x", "out", "start"]
    assert not [a for a in args if getattr(a, "dtype", None) == np.int64]
    assert [base.dtype for base in recorder.allocations] == [np.dtype(np.float32)]  # the output, and no index array


def test_a_case_runs_the_generic_kernel_first_then_one_compiled_for_it(recorder, specialise):
    specialise(1)
    rng = np.random.default_rng(3)
    x, larger = (cuda.to_device(make_values(rng, shape, np.float32, "normal")) for shape in ((1, 2, 6, 6), (2, 3, 9, 8)))
    for data in (x, x, larger, x):
        poolkit.max_pool2d(data, 3, 2, 1, backend="cuda")
    poolkit.max_pool2d(x, 2, backend="cuda")  # another window: another case, generic first
    used = recorder.kernels()
    window = launch.window_of(spec_geometry((6, 6), 3, 2, 1))
    specialised = kernels.extremum(window, True, True, False, False, np.dtype(np.float32))
    # The input size is no part of the case: the larger input runs the same compiled kernel.
    assert used == [kernels.extremum_kernel, specialised, specialised, specialised, kernels.extremum_kernel]
    assert kernels.extremum(window, True, True, False, False, np.dtype(np.float32)) is specialised  # cached per case
    assert kernels.extremum(launch.window_of(spec_geometry((6, 6), 3, 2, 0)), True, True, False, False, np.dtype(np.float32)) is not specialised


def spec_geometry(size, kernel, stride, padding):
    from poolkit.backends import cells

    return cells.geometry(spec.make_window(size, kernel, stride, padding))


def test_the_specialised_kernels_close_over_the_window_as_constants():
    window = ((1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1))
    for kernel in (
        kernels.extremum(window, True, True, True, False, np.dtype(np.float32)),
        kernels.window_sum(window, False, np.dtype(np.float32)),
        kernels.max_grad(window, True, np.dtype(np.float32)),
        kernels.spread(window, False, np.dtype(np.float32)),
    ):
        closure = inspect.getclosurevars(python_function(kernel)).nonlocals
        assert (closure["size_k"], closure["stride"], closure["padding"], closure["dilation"]) == window
        assert "g" not in inspect.signature(python_function(kernel)).parameters  # no run-time geometry


#: Per number of spatial axes: the input's spatial shape, and kernel, stride, padding, dilation.
WINDOWS = {1: ((7,), (2, 2, 1, 2)), 2: ((5, 6), ((3, 2), (2, 1), 1, 1)), 3: ((3, 4, 5), (2, (1, 2, 2), 1, 1))}


def same_on_cuda(function, arrays, *args, layout):
    """``function`` on the cuda backend (the arrays uploaded) gives the numpy backend's bits."""
    ours = function(*(cuda.to_device(a) for a in arrays), *args, layout=layout, backend="cuda")
    reference = function(*arrays, *args, layout=layout, backend="numpy")
    for a, b in zip(*((ours, reference) if isinstance(ours, tuple) else ((ours,), (reference,)))):
        assert host(a).dtype == b.dtype
        exact(host(a), b)
    return reference


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("layout_last", [False, True], ids=["channels-first", "channels-last"])
def test_specialised_kernels_match_numpy_bit_for_bit(specialise, dims, layout_last):
    specialise(0)
    rng = np.random.default_rng(dims)
    spatial, (kernel, stride, padding, dilation) = WINDOWS[dims]
    layout = spec.LAYOUTS[dims][layout_last]
    pool, min_pool, backward = (getattr(poolkit, f"{name}{dims}d{suffix}") for name, suffix in (("max_pool", ""), ("min_pool", ""), ("max_pool", "_backward")))
    avg, avg_backward = getattr(poolkit, f"avg_pool{dims}d"), getattr(poolkit, f"avg_pool{dims}d_backward")
    for dtype, kind, ceils in ((np.float32, "ties", (False, True)), (np.float16, "nan", (True,)), (np.int32, "normal", (False,))):
        x = make_values(rng, (1, 2) + spatial, dtype, kind)
        if layout_last:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        for ceil in ceils:
            window = (kernel, stride, padding, dilation, ceil)
            pooled, _ = same_on_cuda(pool, [x], *window, True, layout=layout)
            same_on_cuda(pool, [x], *window, layout=layout)
            same_on_cuda(min_pool, [x], *window, layout=layout)
            if x.dtype.kind != "f":
                continue
            same_on_cuda(backward, [rng.standard_normal(pooled.shape).astype(dtype), x], *window, layout=layout)
            for include_pad, override in ((True, None), (False, None), (True, 3)):
                if dims == 1 and override is not None:
                    continue  # avg_pool1d has no divisor_override
                args = (kernel, stride, padding, ceil, include_pad) + (() if dims == 1 else (override,))
                averaged = same_on_cuda(avg, [x], *args, layout=layout)
                same_on_cuda(avg_backward, [rng.standard_normal(averaged.shape).astype(dtype), x], *args, layout=layout)


# --- device tables -------------------------------------------------------------------------


def test_divisors_go_to_the_device_once_per_content(monkeypatch, specialise):
    specialise(0)
    monkeypatch.setattr(launch, "_tables", launch.collections.OrderedDict())
    x = cuda.to_device(make_values(np.random.default_rng(4), (1, 2, 7, 7), np.float32, "normal"))
    uploads = []
    real = cuda.to_device
    monkeypatch.setattr(launch.cuda, "to_device", lambda array, *a, **k: uploads.append(np.array(array)) or real(array, *a, **k))
    first = host(poolkit.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False, backend="cuda"))
    assert len(uploads) == 1  # the divisor
    again = host(poolkit.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False, backend="cuda"))
    assert len(uploads) == 1  # the same divisor: no copy, no synchronisation
    exact(first, again)
    poolkit.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True, backend="cuda")
    assert len(uploads) == 2  # another divisor
    divisor = np.arange(6.0).reshape(2, 3)
    assert launch.table(divisor) is launch.table(divisor.copy())
    assert launch.table(divisor) is not launch.table(divisor.astype(np.float32))


def test_the_table_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(launch, "_tables", launch.collections.OrderedDict())
    monkeypatch.setattr(launch, "MAX_TABLES", 3)
    tables = [launch.table(np.full(2, value)) for value in range(5)]
    assert len(launch._tables) == 3
    assert launch.table(np.full(2, 4)) is tables[4] and launch.table(np.full(2, 0)) is not tables[0]


# --- scatter_add -----------------------------------------------------------------------------


def bincount_reference(values, indices, plane_shape):
    """What NumPy's bincount gives: per plane, in float64, in row-major order, rounded once."""
    planes = values.shape[:2]
    plane = int(np.prod(plane_shape))
    out = np.zeros(planes + (plane,), np.float64)
    for n, c in np.ndindex(*planes):
        v, i = values[n, c].ravel().astype(np.float64), indices[n, c].ravel()
        keep = i >= 0
        out[n, c] = np.bincount(i[keep], weights=v[keep], minlength=plane)
    return out.reshape(planes + tuple(plane_shape)).astype(values.dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("plane_shape", [(9,), (3, 4), (2, 2, 3)], ids=["1d", "2d", "3d"])
def test_scatter_add_sums_in_row_major_order_in_float64_like_numpy(recorder, dtype, plane_shape):
    rng = np.random.default_rng(5)
    plane = int(np.prod(plane_shape))
    out_shape = (2, 3) + tuple(max(1, s - 1) for s in plane_shape)
    values = (rng.standard_normal(out_shape) * 100).astype(dtype)
    indices = rng.integers(-1, plane, size=out_shape)  # repeats, and -1 (a window that missed the input)
    indices.reshape(2, 3, -1)[0, 0, :] = plane - 1  # every value of a plane on one position
    place = launch.Place(cuda.stream(), recorder.allocate, "test")
    ours = backend.scatter_add(placed(values, place), placed(indices, place), plane_shape)
    expected = bincount_reference(values, indices, plane_shape)
    exact(host(ours), expected)
    if hasattr(numpy_, "scatter_add"):
        exact(host(ours), numpy_.scatter_add(values, indices, plane_shape))
    check_place(recorder, place, [ours])
    assert kernels.link_kernel in recorder.kernels() and kernels.gather_kernel in recorder.kernels()


def test_scatter_add_does_not_depend_on_the_order_the_values_arrive_in():
    # In float64, (1e16 + 1) - 1e16 is 0 but (1e16 - 1e16) + 1 is 1: only row-major order gives bincount's 0.
    values = np.array([[[1e16, 1.0, -1e16, 2.0]]])
    indices = np.array([[[3, 3, 3, 0]]])
    ours = host(backend.scatter_add(cuda.to_device(values), cuda.to_device(indices), (4,)))
    exact(ours, bincount_reference(values, indices, (4,)))
    assert ours.tolist() == [[[2.0, 0.0, 0.0, 0.0]]]


def test_scatter_add_of_channels_last_views_and_of_the_forward_indices_is_max_pool_backward():
    rng = np.random.default_rng(6)
    x = make_values(rng, (2, 6, 5, 3), np.float32, "ties")  # NHWC
    _, where = poolkit.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True, layout="NHWC", backend="numpy")
    grad = rng.standard_normal(where.shape).astype(np.float32)
    # The backend's (N, C, H, W) views of the channels-last arrays.
    values, indices = (backend.arrange(cuda.to_device(a), [0, 3, 1, 2]) for a in (grad, where))
    ours = host(backend.arrange(backend.scatter_add(values, indices, (6, 5)), [0, 2, 3, 1]))
    expected = poolkit.max_pool2d_backward(grad, x, 3, 2, 1, ceil_mode=True, layout="NHWC", backend="numpy")
    exact(ours, expected)


def test_scatter_add_of_nothing():
    empty = backend.scatter_add(cuda.to_device(np.zeros((1, 0, 2))), cuda.to_device(np.zeros((1, 0, 2), np.int64)), (3,))
    assert host(empty).shape == (1, 0, 3)
    zeros = backend.scatter_add(cuda.to_device(np.ones((1, 1, 2))), cuda.to_device(np.full((1, 1, 2), -1)), (3,))
    exact(host(zeros), np.zeros((1, 1, 3)))


# --- torch tensors ---------------------------------------------------------------------------


@pytest.fixture
def fake_torch_cuda(monkeypatch):
    """CPU tensors treated as CUDA tensors, whose current stream is the fake handle
    ``streams.handle`` (change it to switch streams); ``streams.made`` records each
    external stream numba was asked for, as (handle, the simulator stream returned)."""
    streams = types.SimpleNamespace(handle=0x5150, made=[])

    def external_stream(handle):
        stream = cuda.stream()
        streams.made.append((handle, stream))
        return stream

    real_on_device = arrays.on_device
    monkeypatch.setattr(arrays, "on_device", lambda x: isinstance(x, torch.Tensor) or real_on_device(x))
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=streams.handle))
    monkeypatch.setattr(launch.cuda, "external_stream", external_stream)
    monkeypatch.setattr(launch, "_places", {})
    return streams


@simulator
def test_torch_tensors_run_on_torchs_current_stream_and_come_back_in_torchs_memory(fake_torch_cuda, recorder, monkeypatch):
    tensors = []
    real_allocate = launch._torch_allocate

    def allocate(device, count, dtype, fill):
        array, tensor = real_allocate(device, count, dtype, fill)
        tensors.append(tensor)
        return array, tensor

    monkeypatch.setattr(launch, "_torch_allocate", allocate)
    x = make_values(np.random.default_rng(7), (1, 2, 5, 5), np.float32, "nan")
    t = torch.from_numpy(x.copy())
    out, where = poolkit.max_pool2d(t, 3, 2, 1, ceil_mode=True, return_indices=True, backend="cuda")
    average = poolkit.avg_pool2d(t, 2, backend="cuda")
    expected = poolkit.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True, backend="numpy")
    for ours, reference in ((out, expected[0]), (where, expected[1]), (average, poolkit.avg_pool2d(x, 2, backend="numpy"))):
        assert isinstance(ours, torch.Tensor)
        exact(ours.numpy(), reference)
        assert any(ours.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr() for tensor in tensors)  # torch allocated it
    assert len(fake_torch_cuda.made) == 1 and fake_torch_cuda.made[0][0] == 0x5150  # one external stream, made once
    stream = fake_torch_cuda.made[0][1]
    assert recorder.launches and all(s is stream for _, s, _ in recorder.launches)
    # Another current stream (torch.cuda.stream(...) in the caller): the kernels follow it.
    fake_torch_cuda.handle = 0x6160
    recorder.launches.clear()
    poolkit.max_pool2d(t, 2, backend="cuda")
    assert [handle for handle, _ in fake_torch_cuda.made] == [0x5150, 0x6160]
    assert all(s is fake_torch_cuda.made[1][1] for _, s, _ in recorder.launches)


@simulator
def test_the_torch_backward_passes_and_unpool_stay_on_torch(fake_torch_cuda, recorder):
    rng = np.random.default_rng(8)
    x = make_values(rng, (2, 5, 4, 3), np.float32, "ties")  # NHWC
    t = torch.from_numpy(x.copy())
    pooled, where = poolkit.max_pool2d(x, 2, return_indices=True, layout="NHWC", backend="numpy")
    grad = rng.standard_normal(pooled.shape).astype(np.float32)
    for ours, reference in (
        (poolkit.max_pool2d_backward(torch.from_numpy(grad), t, 2, layout="NHWC", backend="cuda"), poolkit.max_pool2d_backward(grad, x, 2, layout="NHWC", backend="numpy")),
        (poolkit.max_unpool2d(torch.from_numpy(pooled), torch.from_numpy(where), 2, layout="NHWC", backend="cuda"), poolkit.max_unpool2d(pooled, where, 2, layout="NHWC", backend="numpy")),
    ):
        assert isinstance(ours, torch.Tensor)
        exact(ours.numpy(), reference)
    stream = fake_torch_cuda.made[0][1]
    assert all(s is stream for _, s, _ in recorder.launches)


# --- on a GPU: real streams, real torch memory ------------------------------------------------------


@device
def test_on_a_gpu_a_side_stream_orders_poolkit_after_the_work_that_makes_its_input(recorder):
    side = torch.cuda.Stream()
    x = torch.randn(4, 16, 64, 64, device="cuda")
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # keep the side stream busy, so that a kernel elsewhere would read too early
        y = x * 2
        ours = poolkit.max_pool2d(y, 3, 2, 1, backend="cuda")
        reference = torch.nn.functional.max_pool2d(y, 3, 2, 1)
    side.synchronize()
    assert torch.equal(ours, reference)
    assert recorder.launches and all(int(stream) == side.cuda_stream for _, stream, _ in recorder.launches)


@device
def test_on_a_gpu_outputs_come_from_torchs_caching_allocator():
    x = torch.randn(2, 8, 32, 32, device="cuda")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out, where = poolkit.max_pool2d(x, 2, return_indices=True, backend="cuda")
    assert torch.cuda.memory_allocated() - before >= out.numel() * out.element_size() + where.numel() * where.element_size()
    assert out.device == x.device and where.dtype == torch.int64
    assert torch.equal(out, torch.nn.functional.max_pool2d(x, 2))


@device
def test_on_a_gpu_a_case_compiles_one_signature(specialise):
    specialise(0)
    for shape in ((1, 2, 8, 8), (2, 3, 16, 12)):
        poolkit.max_pool2d(torch.randn(shape, device="cuda"), 3, 2, 1, backend="cuda")
    window = launch.window_of(spec_geometry((8, 8), 3, 2, 1))
    assert len(kernels.extremum(window, True, True, False, False, np.dtype(np.float32)).overloads) == 1


# --- make gpu-check and bench/gpu.py without a GPU ----------------------------------------------------


def _without_a_gpu():
    env = {name: value for name, value in os.environ.items() if name != "NUMBA_ENABLE_CUDASIM"}
    return {**env, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}


def test_the_gpu_benchmark_says_why_it_cannot_run_without_a_gpu():
    for flags in ([], ["--check"]):
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), *flags], capture_output=True, text=True, env=_without_a_gpu(), timeout=300)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and "needs a CUDA device" in done.stderr, done.stderr


def test_the_gpu_benchmark_runs_the_cpu_benchmarks_cases(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--out", str(out)], capture_output=True, text=True, env=_without_a_gpu(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import cpu
    finally:
        sys.path.remove(str(ROOT / "bench"))
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{len(cpu.make_cases(cpu.SHAPES))} cases x 2 dtypes") and str(out) in lines[0] and not out.exists()
    for wanted in ("max forward (32, 64, 112, 112) k3s2p1 NCHW", "avg backward (32, 64, 112, 112) k2s2p0 NHWC", "max backward (1, 1, 8, 8) k2s2p0 NCHW"):
        assert f"  {wanted}" in lines


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_gpu_check_needs_no_venv_and_writes_to_out():
    done = subprocess.run(["make", "-n", "gpu-check"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    recipe = done.stdout
    assert ".venv" not in recipe and "pip install" not in recipe
    assert "NUMBA_ENABLE_CUDASIM=0 PYTHONPATH=. python3 -m pytest" in recipe and "tests/test_cuda_launch.py" in recipe
    assert 'out="${OUT:-bench/results}"' in recipe and 'bench/gpu.py --out "$out/gpu.json"' in recipe
