"""Validate once, dispatch to a backend: what every public function does first.

:class:`Call` reads the input array (any supported kind), checks its dtype and
layout, puts it in the (N, C, *spatial) form the backends take, picks the
backend, and turns the backend's results back into the caller's layout and kind.
"""

import importlib

from . import arrays, spec

#: Every backend and the module that implements it; the compiled ones are
#: imported (and numba with them) only when first asked for.
BACKENDS = {"naive": "naive", "numpy": "numpy_", "numba": "numba_", "cuda": "cuda"}

#: Host inputs from this size on go to the compiled CPU backend under "auto"
#: (below it, numba's call overhead outweighs what it saves).
AUTO_NUMBA_BYTES = 1 << 20


def _module(name, backend):
    try:
        module = importlib.import_module(f"poolkit.{BACKENDS[backend]}")
    except ImportError as error:
        raise ValueError(
            f"{name}: backend={backend!r} needs numba, which cannot be imported ({error}); "
            "install poolkit[numba] or use backend='numpy'"
        ) from None
    if backend == "cuda":
        module.require_device(name)
    return module


def choose_backend(name, backend, x):
    """The backend module for ``backend`` and input ``x``.

    "auto" picks cuda for device arrays, numba for host arrays of at least
    :data:`AUTO_NUMBA_BYTES` when numba is installed, and numpy otherwise
    (:class:`Call` then turns numba into numpy for channels-last arrays).
    """
    if backend == "auto":
        if arrays.on_device(x):
            return _module(name, "cuda")
        if arrays.nbytes(x) >= AUTO_NUMBA_BYTES:
            try:
                return _module(name, "numba")
            except ValueError:  # numba is not installed: NumPy it is
                pass
        return _module(name, "numpy")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{name}: backend must be one of {('auto', *BACKENDS)}, got backend={backend!r}")
    return _module(name, backend)


class Call:
    """One public call: ``x`` read as an (N, C, *spatial) view (NumPy, or device
    arrays for the cuda backend), a backend chosen, and results turned back into
    ``x``'s layout and kind."""

    def __init__(self, name, x, dims, layout, backend, *, integers, label="x", batch_optional=True, empty_channels=False):
        self.name = name
        self.backend = choose_backend(name, backend, x)
        self._read = getattr(self.backend, "read", arrays.to_numpy)
        self._arrange = getattr(self.backend, "arrange", arrays.arrange)
        array, self._back = self._read(name, label, x)
        spec.check_dtype(name, label, array, integers)
        self.layout = spec.input_layout(name, label, array, dims, layout, batch_optional=batch_optional, empty_channels=empty_channels)
        self.x = self._arrange(array, self.layout.internal_axes(array.ndim))
        self.dtype = array.dtype
        if backend == "auto" and self.backend.__name__ == "poolkit.numba_" and not self.x.flags.c_contiguous:
            # numba's kernels walk (N, C) planes along memory; in a channels-last
            # array those are strided, and NumPy's whole-array passes are 5x faster.
            self.backend = _module(name, "numpy")

    @property
    def spatial(self):
        return self.x.shape[2:]

    def companion(self, label, value, shape, *, integers):
        """Read a second array argument, which must have ``shape`` in the internal layout."""
        array, _ = self._read(self.name, label, value)
        if (array.dtype.kind not in "iu") if integers else (array.dtype.kind != "f"):
            kind = "an integer" if integers else "a floating-point"
            raise TypeError(f"{self.name}: {label} must be {kind} array, got {label} with dtype {array.dtype}")
        expected = tuple(shape[axis] for axis in self.layout.user_axes(len(shape)))
        if array.shape != expected:
            raise ValueError(f"{self.name}: {label} must have shape {expected}, got {label} with shape {array.shape}")
        return self._arrange(array, self.layout.internal_axes(array.ndim))

    @property
    def accumulator(self):
        """The dtype in which the backends add up windows of this input."""
        return spec.accumulator_dtype(self.dtype)

    def result(self, out):
        """A backend's result in the caller's layout and kind of array."""
        return self._back(self._arrange(out, self.layout.user_axes(out.ndim)))
