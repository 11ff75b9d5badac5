"""Make the frameworks' own pooling unavailable in a student's grading process.

Why
---
In the exercises where students write pooling themselves, the grader re-runs
their code in a fresh, sandboxed Python process. At the start of that
process, *before* any student code runs, it calls :func:`lock_torch` and
:func:`lock_mxnet`, so that a call of the framework's pooling fails however it
is reached: through the public functions, an alias, a module, a scripted,
traced or compiled function, another thread, or the raw operator. The student
is assumed to have read this file. A refused call raises an error whose text
contains :data:`MESSAGE`, which the grader looks for to flag the student.

This module is loaded by file path (``importlib.util.spec_from_file_location``)
in a process where :mod:`poolkit` cannot be imported: it imports only the
standard library at module level, and torch or MXNet inside the functions.

PyTorch: below Python, at the dispatcher
----------------------------------------
Every operator of the ``aten`` and ``quantized`` namespaces whose name contains
"pool" (``max_pool1d``/``2d``/``3d`` and ``*_with_indices``, ``avg_pool*`` (which
``lp_pool*`` uses), ``adaptive_*``, ``fractional_max_pool*``, ``max_unpool*``,
``mkldnn_*``, ``quantized_max_pool*``, ``quantized::max_pool*``, each overload
and each backward) gets a refusing kernel on *every* dispatch key it has a
kernel for (``CPU``, ``Meta``, ``QuantizedCPU``, ``MkldnnCPU``, the alias keys
``CompositeImplicitAutograd``, ``CompositeExplicitAutograd[NonFunctional]``
and ``Autograd``, ``Tracer``, ``Functionalize``, ``ADInplaceOrView``,
``FuncTorchBatched``, ``AutocastCPU``, ...; discovered from
``torch._C._dispatch_dump`` and ``_dispatch_has_kernel_for_dispatch_key``).
The newest kernel on a key wins and the original one comes back only when
the newest is deregistered, so every entry of these operators' dispatch tables
now refuses: ``torch.nn.functional``, ``torch.nn`` modules, ``torch.ops.aten``,
``torch._C._nn``, TorchScript, tracing, ``vmap``, other threads, autograd,
MKL-DNN and quantized tensors, and ``torch.compile`` (whose fake-tensor tracing
needs the ``Meta`` kernels) all reach a refusal, and no Python-level mode or
guard (``DisableTorchFunction``, popping modes) is involved.

The registrations live in C++ ``torch::Library`` objects owned by pybind
``_DispatchModule`` wrappers, which are not tracked by the garbage collector
(``gc.get_objects()`` does not list them). Each wrapper gets one leaked
reference (``Py_IncRef``) and every Python reference to it is dropped, so
nothing in Python can reach it to ``reset()`` it, and it is never destroyed.
No :class:`torch.library.Library` is used: there is none to find and
``_destroy()``.

MXNet: at the lowest Python layer
---------------------------------
MXNet's operators are C functions with no dispatcher to hook, so the lock
replaces the ``ctypes`` library object ``_LIB`` in ``mxnet.base`` and in every
loaded ``mxnet.*`` module that imported it with a guard. The guard passes every
call through, except:

- ``MXImperativeInvoke[Ex]``, ``MXSymbolCreateAtomicSymbol`` and
  ``NNSymbolCreateAtomicSymbol``, refused for the handle of any operator with
  "pool" in a name (``Pooling``, ``Pooling_v1``, ``_npx_pooling``,
  ``_contrib_AdaptiveAvgPooling2D``, ``ROIPooling``, ``_contrib_quantized_pooling``,
  their ``_backward_*``, ...; aliases share a handle, so an alias without
  "pool" in its name is refused too);
- graph execution, ``MXCreateCachedOp*`` (hybridized Gluon blocks),
  ``MXExecutorBind*`` and ``MXExecutorSimpleBind*`` (``Symbol.bind``,
  ``simple_bind``, ``Module``), refused for a symbol whose JSON
  (``MXSymbolSaveToJSON``, subgraphs included) has a pooling operator;
- graph loading, ``MXSymbolCreateFromJSON``, ``MXSymbolCreateFromFile`` and
  ``MXPredCreate*``, refused when MXNet's own reading of the JSON (a
  throw-away symbol, saved again) has a pooling operator.

The guard resolves each checked argument to a plain address (or copies the
JSON text) once and hands the real function that value, not the caller's
object, so a property or a buffer changed after the check does not fool it.

What remains out of reach (best effort)
---------------------------------------
- MXNet's guard is Python. A fresh ``ctypes.CDLL`` of ``libmxnet.so`` (or
  ``ctypes.CDLL(mxnet.base._LIB._name)``) gives unguarded functions; so does
  the original library object, which the guard holds (``_LIB._real``) and
  which its closures and ``gc.get_objects()`` lead to. With it a student can
  call the C functions directly or put it back into mxnet's modules.
- Native code otherwise. For torch, calling ATen's kernels by their C++ symbols
  (``at::cpu::max_pool2d_with_indices`` in ``libtorch_cpu.so``) through ctypes,
  a C++ extension built with ``torch.utils.cpp_extension`` where a compiler is
  present, or ``mxnet.library.load`` of a custom operator library.
- Python that torch ships which computes pooling from allowed operators or
  generates it: the decompositions in ``torch._decomp.decompositions`` (e.g.
  ``max_pool2d_with_indices(x, [2, 2])`` gives the right answer, built from
  indexing and reductions; also ``adaptive_avg_pool2d``, ``max_unpool2d``),
  and Inductor driven by hand: ``compile_fx_inner`` on an FX graph of
  ``aten.max_pool2d_with_indices`` with ``torch._inductor.compile_fx.fake_tensor_prop``
  replaced (its fake-tensor pass is what meets the lockout) compiles
  Inductor's own C++ pooling, which never calls the operator. Plain
  ``torch.compile`` is refused. The decompositions are Python a student could
  as well paste, which only the grader's own checks (line budgets, the
  pooling tripwire) can judge; the C++ routes (Inductor, extensions) need a
  compiler, which the sandbox can deny by not letting the process run one.
- Operators registered after the lock (a library imported later, such as
  torchvision's ``roi_pool``) are not covered.
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
import warnings
from typing import Any, Callable, Iterator

MESSAGE = "the pooling this exercise asks you to write yourself"

# The torch namespaces whose operators with "pool" in their name are pooling.
_TORCH_NAMESPACES = ("aten", "quantized")
# A line of torch._C._dispatch_dump naming a key with a kernel, e.g.
# "CPU: registered at ...", "Autograd[alias]: ..." or "Meta (inactive): ...".
_KERNEL_LINE = re.compile(r"^(\w+)(?:\[alias\])?(?: \(inactive\))?: registered at", re.MULTILINE)


# --- PyTorch -------------------------------------------------------------------


def _torch_pooling_ops(torch: Any) -> list[str]:
    """The pooling operators registered with torch's dispatcher.

    Parameters
    ----------
    torch : module
        The imported torch.

    Returns
    -------
    list of str
        Qualified names with their overload, such as ``"aten::max_pool2d"`` or
        ``"aten::avg_pool2d.out"``, sorted.
    """
    pooling = []
    for qualified in torch._C._dispatch_get_all_op_names():
        namespace, _, name = qualified.partition("::")
        if namespace in _TORCH_NAMESPACES and "pool" in name.lower():
            pooling.append(qualified)
    return sorted(pooling)


def _kernel_keys(torch: Any, op: str) -> list[str]:
    """The dispatch keys (alias keys included) on which ``op`` has a kernel.

    Candidates are the keys that ``_dispatch_dump`` lists for the operator
    (among them keys that ``torch._C.DispatchKey`` does not name, such as
    ``MkldnnCPU`` and ``Tracer``) and every key of ``torch._C.DispatchKey``;
    each is kept only if the dispatcher confirms a kernel on it.

    Parameters
    ----------
    torch : module
        The imported torch.
    op : str
        A qualified operator name with its overload, e.g. ``"aten::max_pool2d.out"``.

    Returns
    -------
    list of str
        The key names, sorted.
    """
    candidates = set(_KERNEL_LINE.findall(torch._C._dispatch_dump(op)))
    candidates.update(torch._C.DispatchKey.__members__)
    keys = []
    for key in sorted(candidates):
        try:
            if torch._C._dispatch_has_kernel_for_dispatch_key(op, key):
                keys.append(key)
        except RuntimeError:  # a member such as StartOfDenseBackends is no key
            continue
    return keys


def _refusal(kind: type[Exception], text: str) -> Callable[..., Any]:
    """A kernel that refuses every call.

    Parameters
    ----------
    kind : type of Exception
        What it raises.
    text : str
        The error's message.

    Returns
    -------
    callable
        A function of any arguments that raises ``kind(text)``.
    """

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise kind(text)

    return refuse


def _leak(obj: object) -> None:
    """Give ``obj`` one reference that is never released, so that it lives
    until the process ends whatever happens to the caller's references."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def lock_torch() -> list[str]:
    """Make every pooling operator of torch refuse, at the dispatcher.

    Registers, for each pooling operator (see :func:`_torch_pooling_ops`) and each
    dispatch key it has a kernel on (see :func:`_kernel_keys`), a kernel that
    raises ``RuntimeError("torch <op> is unavailable here: it is <MESSAGE>")``.
    The libraries holding the registrations are leaked and unreachable from
    Python, so they are never deregistered. Other operators are untouched.

    Returns
    -------
    list of str
        The qualified names of the operators now refused, e.g.
        ``"aten::max_pool2d_with_indices"``; ``[]`` when torch is not installed.
    """
    try:
        import torch
    except ImportError:
        return []
    libraries: dict[str, Any] = {}
    locked = []
    with warnings.catch_warnings():
        # Each override prints torch's "Overriding a previously registered kernel".
        warnings.simplefilter("ignore")
        for op in _torch_pooling_ops(torch):
            namespace, _, name = op.partition("::")
            if namespace not in libraries:
                libraries[namespace] = torch._C._dispatch_library("IMPL", namespace, "", __file__, 0)
            kernel = _refusal(RuntimeError, f"torch {op} is unavailable here: it is {MESSAGE}")
            keys = _kernel_keys(torch, op)
            for key in keys:
                libraries[namespace].impl(name, key, kernel, False)
            if keys:
                locked.append(op)
    # The pybind wrappers are not tracked by the garbage collector: once the
    # dict is gone, nothing in Python refers to them.
    for library in libraries.values():
        _leak(library)
    del libraries
    return locked


# --- MXNet ---------------------------------------------------------------------

# The ctypes types whose value is passed to C as a pointer-sized integer.
_POINTER_SIZED = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_ssize_t, ctypes.c_uint64, ctypes.c_int64)


def _address(value: Any) -> int:
    """The address a C function receives for ``value`` as a pointer argument.

    Reads the stored bytes of ctypes objects, not a Python-level ``.value``
    that a subclass could redefine, and follows ``_as_parameter_`` once.

    Parameters
    ----------
    value : int, None, ctypes pointer-sized scalar, pointer or array
        A handle argument as given to a ctypes function.

    Returns
    -------
    int
        The address (0 for ``None``).

    Raises
    ------
    TypeError
        For any other kind of value: what cannot be checked is not passed on.
    """
    value = getattr(value, "_as_parameter_", value)
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, ctypes.Array):
        return ctypes.addressof(value)
    if isinstance(value, ctypes._Pointer):
        return int.from_bytes(ctypes.string_at(ctypes.addressof(value), ctypes.sizeof(ctypes.c_void_p)), sys.byteorder)
    if isinstance(value, _POINTER_SIZED):
        return int.from_bytes(ctypes.string_at(ctypes.addressof(value), ctypes.sizeof(value)), sys.byteorder)
    raise TypeError(f"cannot check a handle given as {type(value).__name__}")


def _graph_ops(graph: Any) -> Iterator[str]:
    """Every operator name in an MXNet graph's JSON, subgraphs included.

    Parameters
    ----------
    graph : object
        Parsed JSON: the nodes' ``"op"`` values are yielded, and strings that
        are themselves JSON (a subgraph kept in an attribute) are searched too.

    Yields
    ------
    str
        Operator names, ``"null"`` for variables.
    """
    if isinstance(graph, dict):
        for key, value in graph.items():
            if key == "op" and isinstance(value, str):
                yield value
            else:
                yield from _graph_ops(value)
    elif isinstance(graph, list):
        for value in graph:
            yield from _graph_ops(value)
    elif isinstance(graph, str) and graph.lstrip()[:1] in ("{", "["):
        try:
            inner = json.loads(graph)
        except ValueError:
            return
        yield from _graph_ops(inner)


class _GuardedLibrary:
    """Stands in for MXNet's ``ctypes`` library object ``_LIB``.

    Attribute (and item) access gives the real library's functions, except for
    the names in ``guards``, which give the guarding wrappers.

    Parameters
    ----------
    real : ctypes.CDLL
        MXNet's library.
    guards : dict of str to callable
        The wrappers, by C function name.
    """

    def __init__(self, real: Any, guards: dict[str, Callable[..., int]]) -> None:
        self._real = real
        self._guards = guards

    def __getattr__(self, name: str) -> Any:
        guard = self._guards.get(name)
        return guard if guard is not None else getattr(self._real, name)

    def __getitem__(self, name: str) -> Any:
        guard = self._guards.get(name)
        return guard if guard is not None else self._real[name]

    def __repr__(self) -> str:
        return f"<guarded {self._real!r}>"


def _mxnet_pooling_handles(mxnet: Any, real: Any) -> dict[int, str]:
    """The operator handles of MXNet's pooling operators.

    Parameters
    ----------
    mxnet : module
        The imported mxnet.
    real : ctypes.CDLL
        MXNet's library.

    Returns
    -------
    dict of int to str
        Handle to the operator's names (aliases included), for every operator
        with "pool" in one of its names.
    """
    check_call = mxnet.base.check_call
    size = ctypes.c_uint()
    names = ctypes.POINTER(ctypes.c_char_p)()
    check_call(real.MXListAllOpNames(ctypes.byref(size), ctypes.byref(names)))
    by_handle: dict[int, list[str]] = {}
    for index in range(size.value):
        name = names[index]
        handle = ctypes.c_void_p()
        check_call(real.NNGetOpHandle(ctypes.c_char_p(name), ctypes.byref(handle)))
        by_handle.setdefault(handle.value or 0, []).append(name.decode())
    return {handle: "/".join(sorted(aliases)) for handle, aliases in by_handle.items() if any("pool" in alias.lower() for alias in aliases)}


def lock_mxnet() -> list[str]:
    """Make MXNet refuse every pooling operator, at its ctypes entry points.

    Replaces ``_LIB`` in ``mxnet.base`` and every loaded ``mxnet.*`` module with a
    :class:`_GuardedLibrary` whose imperative calls, symbol creation, graph
    loading, cached ops and executors refuse pooling operators with
    ``mxnet.base.MXNetError("mxnet <op> is unavailable here: it is <MESSAGE>")``.
    The module docstring says what remains out of reach.

    Returns
    -------
    list of str
        The names (aliases included) of the operators now refused; ``[]`` when
        MXNet is not installed.
    """
    try:
        import mxnet
        import mxnet.base
    except ImportError:
        return []
    real = mxnet.base._LIB
    if isinstance(real, _GuardedLibrary):  # already locked
        real = real._real
    error = mxnet.base.MXNetError
    pooling = _mxnet_pooling_handles(mxnet, real)
    pooling_names = {name for names in pooling.values() for name in names.split("/")}
    # Bound now, so that a student who later replaces these (in ctypes, json or
    # on the library object) does not change how the guard checks.
    c_void_p, c_char_p, byref, loads = ctypes.c_void_p, ctypes.c_char_p, ctypes.byref, json.loads
    save_json, from_json, free_symbol, last_error = real.MXSymbolSaveToJSON, real.MXSymbolCreateFromJSON, real.NNSymbolFree, real.MXGetLastError

    def refuse(what: str) -> None:
        raise error(f"mxnet {what} is unavailable here: it is {MESSAGE}")

    def check_op(handle: Any) -> Any:
        """Refuse a pooling operator's handle; else the handle as a plain pointer."""
        address = _address(handle)
        if address in pooling:
            refuse(pooling[address])
        return c_void_p(address)

    def check_symbol(handle: Any) -> Any:
        """Refuse a symbol with a pooling operator; else the handle as a plain pointer."""
        symbol = c_void_p(_address(handle))
        text = c_char_p()
        if save_json(symbol, byref(text)) != 0:
            raise error(f"cannot check this symbol for pooling: {mxnet.base.py_str(last_error())}")
        for op in _graph_ops(loads(text.value or b"{}")):
            if op in pooling_names or "pool" in op.lower():
                refuse(op)
        return symbol

    def check_json(text: Any) -> Any:
        """Refuse graph JSON that MXNet reads as holding a pooling operator;
        else a private copy of the text, the one the real function gets."""
        if isinstance(text, (bytes, bytearray)):
            data = bytes(text)
        else:
            address = _address(text)
            data = ctypes.string_at(address) if address else b""
        copy = c_char_p(data)
        symbol = c_void_p()
        if from_json(copy, byref(symbol)) != 0:
            raise error(f"cannot check this graph for pooling: {mxnet.base.py_str(last_error())}")
        try:
            check_symbol(symbol)
        finally:
            free_symbol(symbol)
        return copy

    def guarding(name: str, check: Callable[[Any], Any]) -> Callable[..., int]:
        """A stand-in for the C function ``name`` that checks its first argument."""
        function = getattr(real, name)

        def guarded(first: Any, *rest: Any) -> int:
            return function(check(first), *rest)

        guarded.__name__ = guarded.__qualname__ = name
        return guarded

    def from_file(fname: Any, out: Any) -> int:
        """``MXSymbolCreateFromFile``, read here and loaded as checked JSON."""
        path = fname if isinstance(fname, (str, bytes)) else ctypes.string_at(_address(fname))
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except (OSError, TypeError, ValueError) as problem:
            raise error(f"cannot check {path!r} for pooling: {problem}") from None
        return from_json(check_json(data), out)

    checks = {
        check_op: ("MXImperativeInvoke", "MXImperativeInvokeEx", "MXSymbolCreateAtomicSymbol", "NNSymbolCreateAtomicSymbol"),
        check_symbol: (
            "MXCreateCachedOp", "MXCreateCachedOpEx", "MXCreateCachedOpEX",
            "MXExecutorBind", "MXExecutorBindX", "MXExecutorBindEX",
            "MXExecutorSimpleBind", "MXExecutorSimpleBindEx", "MXExecutorSimpleBindEx64",
        ),
        check_json: ("MXSymbolCreateFromJSON", "MXPredCreate", "MXPredCreateEx", "MXPredCreatePartialOut", "MXPredCreateMultiThread"),
    }  # fmt: skip
    guards: dict[str, Callable[..., int]] = {"MXSymbolCreateFromFile": from_file}
    for check, names in checks.items():
        for name in names:
            if hasattr(real, name):  # a build may lack some (the predict API)
                guards[name] = guarding(name, check)
    guard = _GuardedLibrary(real, guards)
    for module_name, module in list(sys.modules.items()):
        if (module_name == "mxnet" or module_name.startswith("mxnet.")) and getattr(module, "_LIB", None) is real:
            vars(module)["_LIB"] = guard
    mxnet.base._LIB = guard
    return sorted(pooling_names)
