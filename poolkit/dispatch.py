"""Validate once, dispatch to a backend: what every public function does first.

:class:`Call` reads the input array (any supported kind), checks its dtype and
layout, puts it in the (N, C, *spatial) form the backends take, picks the
backend, and turns the backend's results back into the caller's layout and kind.
"""

import numpy as np

from . import arrays, naive, numpy_, spec

BACKENDS = {"naive": naive, "numpy": numpy_}


def choose_backend(name, backend):
    """The backend module for ``backend`` ("auto" picks numpy for host arrays)."""
    if backend == "auto":
        return numpy_
    if backend not in BACKENDS:
        raise ValueError(f"{name}: backend must be one of {('auto', *BACKENDS)}, got backend={backend!r}")
    return BACKENDS[backend]


class Call:
    """One public call: ``x`` read as an (N, C, *spatial) NumPy view, a backend chosen,
    and results turned back into ``x``'s layout and kind."""

    def __init__(self, name, x, dims, layout, backend, *, integers, label="x", batch_optional=True, empty_channels=False):
        array, self._back = arrays.to_numpy(name, label, x)
        spec.check_dtype(name, label, array, integers)
        self.layout = spec.input_layout(name, label, array, dims, layout, batch_optional=batch_optional, empty_channels=empty_channels)
        self.x = self.layout.to_internal(array)
        self.dtype = array.dtype
        self.backend = choose_backend(name, backend)
        self.name = name

    @property
    def spatial(self):
        return self.x.shape[2:]

    def companion(self, label, value, shape, *, integers):
        """Read a second array argument, which must have ``shape`` in the internal layout."""
        array, _ = arrays.to_numpy(self.name, label, value)
        if (array.dtype.kind not in "iu") if integers else (array.dtype.kind != "f"):
            kind = "an integer" if integers else "a floating-point"
            raise TypeError(f"{self.name}: {label} must be {kind} array, got {label} with dtype {array.dtype}")
        expected = self.layout.to_user(np.empty(shape, dtype=np.uint8)).shape
        if array.shape != expected:
            raise ValueError(f"{self.name}: {label} must have shape {expected}, got {label} with shape {array.shape}")
        return self.layout.to_internal(array)

    @property
    def accumulator(self):
        """The dtype in which the backends add up windows of this input."""
        return spec.accumulator_dtype(self.dtype)

    def result(self, out):
        """A backend's result in the caller's layout and kind of array."""
        return self._back(self.layout.to_user(out))
