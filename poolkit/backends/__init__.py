"""poolkit's backends: one module each, all meeting :class:`poolkit.backends.base.Backend`.

========  =====================================================================
naive     the lecture's loops, for every operation: slow, and the definition
numpy_    vectorized NumPy: one whole-array pass per window offset
numba_    compiled for the CPU (numba), parallel over (N, C) planes
cuda      numba-cuda kernels on device arrays (or on numba's CUDA simulator)
========  =====================================================================

:mod:`~poolkit.backends.cells` holds the per-window logic that ``numba_`` and
``cuda`` both compile; :mod:`~poolkit.backends.common` what the host backends
share. They never import each other. :func:`poolkit.dispatch.load_backend`
imports the compiled ones (and numba) only when first asked for.
"""
