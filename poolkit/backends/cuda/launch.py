"""How the cuda backend launches its kernels: on which stream, into which memory,
with which compiled kernel, and with which device-side tables.

A :class:`Place` is where one call's work goes: the stream every kernel of the
call is launched on, and the allocator its outputs (and scratch arrays) come
from. Every device array the backend hands around carries the place of the
input it came from (:func:`tag`, kept by every view :func:`view` makes), so
that a backend function finds it from its arguments (:func:`place_of`) and
the contract's signatures stay as they are.

- torch CUDA tensors (:func:`from_torch`): kernels go on torch's *current
  stream* of the tensor's device (``torch.cuda.current_stream(device)``, wrapped
  for numba with ``cuda.external_stream``), so they are ordered with the user's
  own work on that stream, and outputs come from torch's caching allocator
  (``torch.empty`` / ``torch.full`` on the device), handed to numba as a view
  (``cuda.as_cuda_array``); the result goes back as a view of that tensor.
- everything else (numba device arrays, CuPy arrays, host arrays copied over):
  :data:`NUMBA`, numba's default stream and ``cuda.device_array``, as before.

Kernels are compiled once per case (:func:`hot`): a case's first
:data:`SPECIALISE_AFTER` calls run the generic kernel, which takes the window
geometry as an argument (one compile for all windows); later calls, one
compiled for that case alone, with the window's kernel, stride, padding and
dilation, the op, NaN rule and layout as compile-time constants
(:mod:`poolkit.backends.cuda.kernels`). Both run the same per-window code
(:mod:`poolkit.backends.cells`), so they give the same bits; the generic one
spares a compile (about a second on a device) for a window used once, as in
the tests.

Tables a kernel only reads (divisors, adaptive bins) are uploaded once per
content and kept on the device (:func:`table`): a call with a table seen before
makes no host-to-device copy, hence no host synchronisation.
"""

from __future__ import annotations

import collections
import functools
import threading
import warnings
from typing import Any, Callable

import numpy as np
from numba import config, cuda

from . import kernels

SIMULATED = bool(config.ENABLE_CUDASIM)
#: Threads per block; the simulator runs each as a Python thread, so it gets fewer.
THREADS = 32 if SIMULATED else 256
#: Blocks per launch at most; the kernels loop with the grid's stride over the rest.
MAX_BLOCKS = 1 << 16
#: Calls of a case that run the generic kernel before its specialised one is compiled.
SPECIALISE_AFTER = 1
#: Device tables kept (least recently used dropped first).
MAX_TABLES = 256

#: Attributes on device arrays: the :class:`Place` of the call, and the torch tensor whose memory they view.
PLACE, BASE = "_poolkit_place", "_poolkit_base"


class Place:
    """Where one call's kernels run and its outputs live.

    Parameters
    ----------
    stream : numba stream or 0
        What every kernel of the call is launched on (0: numba's default stream).
    allocate : callable or None
        ``allocate(count, dtype, fill) -> (flat device array, base)``: ``count``
        elements of ``dtype``, set to ``fill`` unless it is None, and the object
        that owns the memory (a torch tensor) or None. None: ``cuda.device_array``.
    name : str
        What the place is, for reprs and errors.
    """

    __slots__ = ("stream", "allocate", "name")

    def __init__(self, stream: Any = 0, allocate: Callable[[int, np.dtype, Any], tuple[Any, Any]] | None = None, name: str = "numba") -> None:
        self.stream = stream
        self.allocate = allocate
        self.name = name

    def __repr__(self) -> str:
        return f"Place({self.name}, stream={self.stream!r})"

    def empty(self, count: int, dtype: Any, fill: Any = None) -> Any:
        """A flat device array of ``count`` elements of ``dtype`` (set to ``fill``), tagged with this place."""
        dtype = np.dtype(dtype)
        if self.allocate is not None and count:
            array, base = self.allocate(count, dtype, fill)
        else:
            array, base = cuda.device_array(count, dtype), None
            if fill is not None:
                run(kernels.fill_kernel, count, self.stream, array, dtype.type(fill))
        return tag(array, self, base)


#: numba's default stream and allocator: numba device arrays, CuPy arrays and host arrays.
NUMBA = Place()


def tag(array: Any, place: Place, base: Any = None) -> Any:
    """Mark ``array`` as belonging to ``place`` (and to the memory of ``base``); return it."""
    setattr(array, PLACE, place)
    setattr(array, BASE, base)
    return array


def place_of(*arrays: Any) -> Place:
    """The place of the first of ``arrays`` that has one; :data:`NUMBA` if none has."""
    for array in arrays:
        place = getattr(array, PLACE, None)
        if place is not None:
            return place
    return NUMBA


def view(array: Any, shape: Any, strides: Any) -> Any:
    """A view of device ``array``'s memory (from its start) with the given shape and strides
    (in bytes), with ``array``'s place and base."""
    shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
    if SIMULATED:
        result = cuda.devicearray.FakeCUDAArray(np.lib.stride_tricks.as_strided(array._ary, shape, strides))
    else:
        from numba.cuda.cudadrv.devicearray import DeviceNDArray

        result = DeviceNDArray(shape, strides, array.dtype, gpu_data=array.gpu_data)
    place = getattr(array, PLACE, None)
    return result if place is None else tag(result, place, getattr(array, BASE, None))


def contiguous(array: Any, shape: Any) -> Any:
    """Flat device ``array`` as a C-contiguous array of ``shape`` (a view, tags kept)."""
    strides, step = [], array.dtype.itemsize
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= max(int(size), 1)
    return view(array, shape, tuple(reversed(strides)))


def run(kernel: Any, count: int, stream: Any, *args: Any) -> None:
    """Launch ``kernel`` on ``stream`` with enough threads for ``count`` elements (none for 0)."""
    if not count:
        return
    launch = kernel[min(MAX_BLOCKS, -(-count // THREADS)), THREADS, stream]
    if not SIMULATED:
        launch(*args)
        return
    with warnings.catch_warnings():
        # The simulator computes with NumPy scalars, which warn where the
        # device silently gives inf or NaN (poolkit's contract): silence them.
        warnings.simplefilter("ignore", RuntimeWarning)
        launch(*args)


# --- kernels, one per case --------------------------------------------------------

_calls: collections.Counter[Any] = collections.Counter()


def window_of(g: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """What a specialised kernel compiles in from geometry ``g`` (:func:`poolkit.backends.cells.geometry`):
    kernel, stride, padding and dilation; the input size stays a run-time value."""
    return tuple(tuple(int(v) for v in values) for values in g[1:])


def hot(case: Any) -> bool:
    """Whether ``case`` (the factory's cache key) has run :data:`SPECIALISE_AFTER` times
    already: then its specialised kernel runs; until then, the generic one, and
    this call is counted."""
    count = _calls[case]
    if count >= SPECIALISE_AFTER:
        return True
    _calls[case] = count + 1
    return False


# --- device tables ----------------------------------------------------------------

_tables: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_tables_lock = threading.Lock()


def table(values: np.ndarray) -> Any:
    """``values`` on the device, uploaded the first time these exact values (dtype and
    shape included) are asked for and kept; kernels only read it."""
    values = np.ascontiguousarray(values)
    key = (values.dtype.str, values.shape, values.tobytes())
    with _tables_lock:
        found = _tables.get(key)
        if found is not None:
            _tables.move_to_end(key)
            return found
    found = cuda.to_device(values)  # synchronous: done before any stream can read it
    with _tables_lock:
        _tables[key] = found
        while len(_tables) > MAX_TABLES:
            _tables.popitem(last=False)
    return found


# --- torch tensors ------------------------------------------------------------------

_places: dict[Any, Place] = {}


def torch_place(device: Any) -> Place:
    """The place of a call on torch tensors on ``device``: torch's current stream
    there (as a numba external stream) and torch's caching allocator."""
    import torch

    handle = torch.cuda.current_stream(device).cuda_stream
    key = (str(device), handle)
    place = _places.get(key)
    if place is None:
        if len(_places) > 64:  # streams come and go: keep the table small
            _places.clear()
        place = _places[key] = Place(cuda.external_stream(handle), functools.partial(_torch_allocate, device), f"torch {device} stream {handle:#x}")
    return place


@functools.lru_cache(maxsize=None)
def torch_dtype(dtype: np.dtype) -> Any:
    """torch's dtype for NumPy's ``dtype``."""
    import torch

    return torch.from_numpy(np.empty(0, dtype)).dtype


def _device_view(tensor: Any) -> Any:
    """A numba device array viewing ``tensor``'s memory, no copy and no synchronisation.

    On the simulator, which has no ``as_cuda_array``, a CPU tensor stands in for
    a CUDA one (its NumPy view), so that the tests can run the torch path.
    """
    if SIMULATED:
        return cuda.devicearray.FakeCUDAArray(tensor.numpy())
    return cuda.as_cuda_array(tensor, sync=False)


def _torch_allocate(device: Any, count: int, dtype: np.dtype, fill: Any) -> tuple[Any, Any]:
    """``count`` elements from torch's caching allocator on ``device`` (on its current stream)."""
    import torch

    kind = torch_dtype(dtype)
    tensor = torch.empty(count, dtype=kind, device=device) if fill is None else torch.full((count,), fill, dtype=kind, device=device)
    return _device_view(tensor), tensor


def from_torch(tensor: Any) -> tuple[Any, Callable[[Any], Any]]:
    """``tensor`` (a torch CUDA tensor) as a device array of its call's place, and the
    function that turns a result into a torch tensor on its device."""
    device = tensor.device
    array = tag(_device_view(tensor.detach()), torch_place(device))
    return array, functools.partial(to_torch, device=device)


def to_torch(result: Any, device: Any) -> Any:
    """A device result as a torch tensor on ``device``: a view of the tensor torch
    allocated it in where it has one, else torch's view of its memory."""
    import torch

    base = getattr(result, BASE, None)
    if base is None:
        return torch.as_tensor(result, device=device)
    itemsize = result.dtype.itemsize
    return torch.as_strided(base, tuple(result.shape), tuple(s // itemsize for s in result.strides))


def copy_to_host(array: Any, place: Place) -> np.ndarray:
    """Device ``array`` (contiguous) to the host, after the work on ``place``'s stream."""
    if place.stream == 0:
        return array.copy_to_host()
    host = array.copy_to_host(stream=place.stream)
    place.stream.synchronize()
    return host
