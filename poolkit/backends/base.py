"""The contract every backend module meets, with exact signatures.

A backend is a module (``naive``, ``numpy_``, ``numba_``, ``cuda``) whose
functions match :class:`Backend` name for name and parameter for parameter;
``tests/test_package.py`` checks that every backend does, and mypy checks it
for the modules it can import. The public functions (:mod:`poolkit.functional`)
have validated everything before they call one: a backend receives arrays in
the (N, C, *spatial) layout, a :class:`poolkit.spec.Window` (or adaptive bins)
and per-output divisors, and checks nothing itself. Every entry point is
wrapped by :func:`poolkit.dispatch.entry_point`, so that a call is seen
whether it comes through the public API or straight to the module.

``Array`` is a NumPy array for the host backends and a numba device array
for ``cuda``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Protocol, Sequence

import numpy as np

from ..spec import Bins, Window

Array = Any
#: The window reductions every backend implements; average and Lp pooling are built on "sum".
Reduction = Literal["max", "min", "sum"]
#: "propagate": NaN wins a max or min (PyTorch); "ignore": NaN never wins (MXNet).
NanRule = Literal["propagate", "ignore"]
ElementwiseFn = Literal["abs", "pow", "sqrt", "cbrt"]


class Backend(Protocol):
    """What a backend module provides."""

    def read(self, name: str, label: str, x: Any) -> tuple[Array, Callable[[Array], Any]]:
        """``x`` as this backend's kind of array, and a function that turns a
        result back into the kind ``x`` was; ``name`` and ``label`` go in errors."""

    def arrange(self, array: Array, axes: Sequence[int | None]) -> Array:
        """A view whose axis k is ``array``'s axis ``axes[k]`` (None: a new axis of length 1)."""

    def pool(
        self,
        x: Array,
        window: Window,
        op: Reduction,
        *,
        indices: bool = False,
        nan: NanRule = "propagate",
        divisor: np.ndarray | None = None,
    ) -> Array | tuple[Array, Array]:
        """Reduce every window of ``x`` with ``op``.

        With ``indices`` (max and min only) also return the flat in-plane index
        of each window's winner (ties keep the first; a window that covers only
        padding gets its first inside element, or -1). Sums are divided by
        ``divisor`` (one value per output position) in the accumulator dtype
        (:func:`poolkit.spec.accumulator_dtype`), then rounded to ``x``'s dtype.
        """

    def adaptive_pool(
        self, x: Array, bins: Bins, op: Literal["max", "sum"], *, indices: bool = False, divisor: np.ndarray | None = None
    ) -> Array | tuple[Array, Array]:
        """Reduce every adaptive bin of ``x`` (:func:`poolkit.spec.adaptive_bins`), as :meth:`pool` does."""

    def pool_transpose(self, values: Array, window: Window, divisor: np.ndarray) -> Array:
        """Add each output's value over its divisor to every input position its
        window covers (average pooling's backward pass), in ``values``'s dtype."""

    def max_pool_backward(self, grad: Array, x: Array, window: Window) -> Array:
        """Route each output's gradient to its window's argmax (the index
        ``pool(x, window, "max", indices=True)`` reports); overlaps add up."""

    def scatter(self, values: Array, indices: Array, plane_shape: tuple[int, ...]) -> Array:
        """Write ``values`` at the flat in-plane ``indices`` of a zero array of
        ``plane_shape`` planes; where indices repeat, the last write in
        row-major order wins (``max_unpool``)."""

    def scatter_add(self, values: Array, indices: Array, plane_shape: tuple[int, ...]) -> Array:
        """Add each of ``values`` (N, C, *out) at its flat in-plane index in
        ``indices`` (int64, the indices ``pool(..., indices=True)`` returns) to a
        zero array of (N, C, *plane_shape); index -1 adds nothing. Each position
        sums what reaches it in row-major order of ``values``, in float64,
        rounded once to ``values``'s dtype: deterministic, and what
        :meth:`max_pool_backward` gives for the same argmax."""

    def elementwise(self, x: Array, fn: ElementwiseFn, p: float | None = None, scale: float = 1) -> Array:
        """``fn`` ("abs", "pow" to the ``p``, "sqrt", "cbrt") of ``x * scale``, each step rounded to ``x``'s dtype."""

    def first_out_of_range(self, indices: Array, plane: int) -> int | None:
        """The first of ``indices`` (row-major) outside ``[0, plane)``, or None."""


#: The contract's functions, in the order above.
CONTRACT = ("read", "arrange", "pool", "adaptive_pool", "pool_transpose", "max_pool_backward", "scatter", "scatter_add", "elementwise", "first_out_of_range")
