"""Validate once, choose the backend, and let an observer see every call.

:class:`Call` is what every public function does first: it reads the input
array (any supported kind), checks its dtype and layout (:mod:`poolkit.spec`),
puts it in the (N, C, *spatial) form the backends take, chooses the backend
(:func:`auto_backend` is ``backend="auto"``'s rule, the only place it lives),
and turns the backend's results back into the caller's layout and kind.

The hook
--------
:func:`observe` registers a callback that receives the name of every call
into pooling code made while it is registered: ``"poolkit.max_pool2d"`` for a
public function, and ``"poolkit.backends.numpy_.pool"`` (say) for every
backend entry point, which :func:`entry_point` wraps, so that a backend module
called directly is seen too. The grader uses it to refuse credit for
poolkit's own pooling where an exercise is to write it.

>>> import numpy as np, poolkit
>>> with observe() as seen:
...     _ = poolkit.max_pool2d(np.zeros((1, 4, 4)), 2)
>>> seen
['poolkit.max_pool2d', 'poolkit.backends.numpy_.pool']
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from types import ModuleType
from typing import Any, Callable, Iterator, TypeVar

from . import arrays, spec

#: Every backend and the module that implements it; the compiled ones are
#: imported (and numba with them) only when first asked for.
BACKENDS = {"naive": "naive", "numpy": "numpy_", "numba": "numba_", "cuda": "cuda"}

#: Host inputs from this size on go to the compiled CPU backend under "auto"
#: (below it, numba's call overhead outweighs what it saves).
AUTO_NUMBA_BYTES = 1 << 20

_BACKEND_NAMES = tuple(BACKENDS)

_observers: list[Callable[[str], None]] = []


@contextlib.contextmanager
def observe(callback: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """Within the block, pass the name of every pooling call to ``callback``.

    Yields the list of names seen (also filled when ``callback`` is given).
    Blocks nest; each sees the calls made while it is open.
    """
    seen: list[str] = []

    def record(name: str) -> None:
        seen.append(name)
        if callback is not None:
            callback(name)

    _observers.append(record)
    try:
        yield seen
    finally:
        _observers.remove(record)


def notify(name: str) -> None:
    """Tell every registered observer that ``name`` is being called."""
    for callback in tuple(_observers):
        callback(name)


F = TypeVar("F", bound=Callable[..., Any])


def entry_point(function: F) -> F:
    """Mark a backend function as an entry point: each call is reported to the observers first."""
    name = f"{function.__module__}.{function.__name__}"

    @functools.wraps(function)
    def entry(*args: Any, **kwargs: Any) -> Any:
        if _observers:
            notify(name)
        return function(*args, **kwargs)

    return entry  # type: ignore[return-value]


#: The backend modules imported so far, by backend name (a failed import is tried again next time).
_loaded: dict[str, ModuleType] = {}


def load_backend(name: str, backend: str) -> ModuleType:
    """The module of ``backend`` (a valid name), for public function ``name``'s errors."""
    module = _loaded.get(backend)
    if module is None:
        try:
            module = importlib.import_module(f"poolkit.backends.{BACKENDS[backend]}")
        except ImportError as error:
            raise spec.missing_numba_error(name, backend, error) from None
        _loaded[backend] = module
    if backend == "cuda":
        module.require_device(name)
    return module


def auto_backend(x: Any, layout: str | None) -> str:
    """What ``backend="auto"`` runs ``x`` on, in user layout ``layout``.

    cuda for device arrays; numba for host arrays of at least
    :data:`AUTO_NUMBA_BYTES` that are contiguous in their own layout, channels
    first or last, when numba can be imported (it has kernels for both: along
    the rows of each plane, or across the channels of each pixel); numpy
    otherwise (below that size, and for arrays strided in other ways, which
    numba's kernels would read strided).
    """
    if arrays.on_device(x):
        return "cuda"
    if arrays.nbytes(x) >= AUTO_NUMBA_BYTES and arrays.is_contiguous(x):
        try:
            load_backend("auto", "numba")
            return "numba"
        except ValueError:  # numba is not installed: NumPy it is
            pass
    return "numpy"


class Call:
    """One public call: ``x`` read as an (N, C, *spatial) view (NumPy, or device
    arrays for the cuda backend), a backend chosen, and results turned back into
    ``x``'s layout and kind."""

    def __init__(
        self,
        name: str,
        x: Any,
        dims: int,
        layout: str | None,
        backend: str,
        *,
        integers: bool,
        label: str = "x",
        batch_optional: bool = True,
        empty_channels: bool | str = False,
    ) -> None:
        if _observers:
            notify(f"poolkit.{name}")
        self.name = name
        spec.check_backend(name, backend, _BACKEND_NAMES)
        self.backend = load_backend(name, auto_backend(x, layout) if backend == "auto" else backend)
        array, self._back = self.backend.read(name, label, x)
        spec.check_dtype(name, label, array, integers)
        self.layout = spec.input_layout(name, label, array, dims, layout, batch_optional=batch_optional, empty_channels=empty_channels)
        # Batched channels-first input already is the (N, C, *spatial) view: no rearranging, there or back.
        self.x = array if self.layout.identity else self.backend.arrange(array, self.layout.internal_axes(array.ndim))
        self.dtype = array.dtype

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    def companion(self, label: str, value: Any, shape: tuple[int, ...], *, integers: bool) -> Any:
        """Read a second array argument, which must have ``shape`` in the internal layout."""
        array, _ = self.backend.read(self.name, label, value)
        expected = tuple(shape[axis] for axis in self.layout.user_axes(len(shape)))
        spec.check_companion(self.name, label, array, expected, integers)
        return array if self.layout.identity else self.backend.arrange(array, self.layout.internal_axes(array.ndim))

    @property
    def accumulator(self) -> Any:
        """The dtype in which the backends add up windows of this input."""
        return spec.accumulator_dtype(self.dtype)

    def result(self, out: Any) -> Any:
        """A backend's result in the caller's layout and kind of array."""
        return self._back(out if self.layout.identity else self.backend.arrange(out, self.layout.user_axes(out.ndim)))
