"""poolkit's shape as a package: an explicit public API, one backend contract,
a dispatch hook that sees every backend entry point, checks in one place.

- every public function is a plain ``def`` in :mod:`poolkit.functional` (or
  ``mxnet_pooling``, ``pool_output_size``), annotated and documented with
  numpydoc sections, and a traceback through it names it;
- every backend module matches :class:`poolkit.backends.base.Backend` name for
  name and parameter for parameter, and imports no other backend;
- :func:`poolkit.dispatch.observe` sees public calls and direct calls of every
  backend's entry points alike;
- the regressions of the conformance run: float16 adaptive max with indices
  keeps float16 in every backend, and the ±0 tie of max pooling keeps the
  first zero as PyTorch does.
"""

import ast
import inspect
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import poolkit
from poolkit import dispatch, functional, spec
from poolkit.backends import base

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("naive", "numpy", "numba", "cuda")  # cuda on numba's simulator where there is no GPU
FUNCTIONS = [name for name in poolkit.__all__ if name != "BACKENDS"]


def backend_module(backend):
    return dispatch.load_backend("test", backend)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_public_function_is_a_plain_documented_def_that_grep_finds(name):
    function = getattr(poolkit, name)
    assert inspect.isfunction(function) and function.__name__ == name and function.__qualname__ == name
    source = Path(inspect.getsourcefile(function)).read_text()
    assert f"\ndef {name}(" in source, f"grep finds no 'def {name}(' in {inspect.getsourcefile(function)}"
    signature = inspect.signature(function)
    assert signature.return_annotation is not inspect.Signature.empty
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values()), f"{name} has an unannotated parameter"
    for section in ("Parameters\n    ----------", "Returns\n    -------", "Examples\n    --------"):
        assert section in function.__doc__, f"{name}'s docstring has no {section.split()[0]} section"


def test_the_pooling_functions_live_in_functional_and_take_backend_and_layout_by_keyword():
    pooling = [name for name in FUNCTIONS if name not in ("mxnet_pooling", "pool_output_size")]
    assert len(pooling) == 36
    for name in pooling:
        assert getattr(poolkit, name) is getattr(functional, name)
        parameters = inspect.signature(getattr(poolkit, name)).parameters
        assert parameters["backend"].kind is inspect.Parameter.KEYWORD_ONLY and parameters["backend"].default == "auto"
        assert parameters["layout"].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_traceback_names_the_public_function():
    with pytest.raises(ValueError) as raised:
        poolkit.max_pool2d(np.zeros((1, 4, 4)), 0)
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "max_pool2d" in frames, frames
    assert not {"quiet", "pool"} & set(frames[:2]), frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_meets_the_contract_exactly(backend):
    module = backend_module(backend)
    for name in base.CONTRACT:
        wanted = inspect.signature(getattr(base.Backend, name))
        wanted = wanted.replace(parameters=list(wanted.parameters.values())[1:])  # without self
        got = inspect.signature(getattr(module, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [(p.name, p.kind, p.default) for p in wanted.parameters.values()], (
            f"{module.__name__}.{name}{got} does not match the contract's {name}{wanted}"
        )


def test_backends_never_import_each_other():
    folder = ROOT / "poolkit" / "backends"
    names = {"naive", "numpy_", "numba_", "cuda"}
    for path in [folder / "naive.py", folder / "numpy_.py", folder / "numba_.py", *sorted((folder / "cuda").glob("*.py"))]:
        own = path.stem if path.parent == folder else "cuda"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported = {part for part in (node.module or "").split(".")} | {alias.name for alias in node.names}
                assert not (imported & names) - {own}, f"{path.relative_to(ROOT)} imports another backend: line {node.lineno}"
            elif isinstance(node, ast.Import):
                assert not any(set(alias.name.split(".")) & (names - {own}) for alias in node.names), f"{path.relative_to(ROOT)} line {node.lineno}"


def test_the_auto_rule_is_one_function_and_every_check_is_in_spec():
    """Errors are raised in spec.py only: no other library module builds a ValueError or TypeError itself."""
    for path in [ROOT / "poolkit" / name for name in ("__init__.py", "functional.py", "dispatch.py", "arrays.py", "mxnet_compat.py")]:
        text = path.read_text()
        assert "raise ValueError(" not in text and "raise TypeError(" not in text, f"{path.name} makes a check of its own"
    assert "def auto_backend(" in (ROOT / "poolkit" / "dispatch.py").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hook_sees_a_backend_module_called_directly(backend):
    module = backend_module(backend)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    window = spec.make_window((4, 4), 2)
    data = x if backend != "cuda" else module.read("test", "x", x)[0]
    with dispatch.observe() as seen:
        module.pool(data, window, "max")
    assert seen == [f"{module.__name__}.pool"]
    for name in base.CONTRACT:
        if name not in ("read", "arrange"):
            assert hasattr(getattr(module, name), "__wrapped__"), f"{module.__name__}.{name} is not an entry point"


def test_the_hook_sees_public_calls_and_stops_when_the_block_ends():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    calls = []
    with dispatch.observe(calls.append) as seen:
        poolkit.avg_pool2d(x, 2, backend="naive")
        poolkit.mxnet_pooling(x, kernel=(2, 2))
    poolkit.max_pool2d(x, 2)
    assert seen == calls
    assert seen[0] == "poolkit.avg_pool2d" and "poolkit.backends.naive.pool" in seen and "poolkit.mxnet_pooling" in seen
    assert "poolkit.max_pool2d" not in seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_float16_adaptive_max_with_indices_stays_float16(backend, dims):
    x = np.random.default_rng(dims).standard_normal((1, 2) + (5,) * dims).astype(np.float16)
    function = getattr(poolkit, f"adaptive_max_pool{dims}d")
    out, where = function(x, 3, return_indices=True, backend=backend)
    expected, expected_where = getattr(F, f"adaptive_max_pool{dims}d")(torch.tensor(x), 3, return_indices=True)
    assert out.dtype == np.float16 and where.dtype == np.int64
    np.testing.assert_array_equal(out, expected.numpy())
    np.testing.assert_array_equal(where, expected_where.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["max", "min"])
def test_a_tie_of_signed_zeros_keeps_the_first_zero_as_pytorch_does(backend, op):
    x = np.array([[[-0.0, 0.0, -0.0, 0.0, 0.0, -0.0]]])
    ours = getattr(poolkit, f"{op}_pool1d")(x, 2, 1, backend=backend)
    theirs = F.max_pool1d(torch.tensor(x), 2, 1).numpy() if op == "max" else -F.max_pool1d(-torch.tensor(x), 2, 1).numpy()
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))

