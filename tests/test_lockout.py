"""The pooling lockout (``poolkit/grader/lockout.py``) against a hostile student.

Each group of attacks runs in a fresh Python process, as the grader's re-run of
a student's code does: the process loads ``lockout.py`` by path (poolkit itself
made unimportable), calls :func:`lock_torch` or :func:`lock_mxnet`, and only
then runs the attacks, written as a student who has read ``lockout.py`` would.
It prints one JSON verdict: for each attack whether it was *refused* (an error
naming the lockout's ``MESSAGE``, which the grader looks for), *failed* in
another way, or *obtained* a result. No attack may obtain one; the controls
(pooling written with allowed operations) must still give the right numbers.

What the lockout cannot reach is listed in the module's docstring and left out
here, because these attacks succeed: native code loaded anew (a fresh
``ctypes.CDLL`` of libmxnet, MXNet's original library object), torch's Python
decompositions (``torch._decomp.decompositions.max_pool2d_with_indices``), and
Inductor driven by hand with its fake-tensor pass replaced (which also takes
a C++ compile of many seconds).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOCKOUT = Path(__file__).resolve().parent.parent / "poolkit" / "grader" / "lockout.py"
MESSAGE = "the pooling this exercise asks you to write yourself"

# Loads lockout.py the grader's way, in a process where poolkit cannot be
# imported, and gives the attacks a recorder of their outcomes.
PRELUDE = f"""
import importlib.util, json, sys, time
sys.modules["poolkit"] = None  # the grader's sandbox cannot import poolkit
spec = importlib.util.spec_from_file_location("lockout", {str(LOCKOUT)!r})
lockout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lockout)
verdict = {{"attacks": {{}}, "controls": {{}}}}

def attack(label, function):
    try:
        result = function()
    except BaseException as error:  # SystemExit from a student counts too
        text = str(error)
        verdict["attacks"][label] = ["refused" if lockout.MESSAGE in text else "failed", type(error).__name__ + ": " + text[-300:]]
    else:
        verdict["attacks"][label] = ["obtained", repr(result)[:300]]

def control(label, function):
    try:
        verdict["controls"][label] = function()
    except BaseException as error:
        verdict["controls"][label] = "error: " + type(error).__name__ + ": " + str(error)[:300]
"""

TORCH_ATTACKS = """
import threading, warnings
warnings.simplefilter("ignore")
import torch
start = time.perf_counter()
verdict["locked"] = lockout.lock_torch()
verdict["seconds"] = time.perf_counter() - start
import torch.nn as nn
import torch.nn.functional as F

x = torch.arange(16.0).reshape(1, 1, 4, 4)
x1, x3 = torch.arange(8.0).reshape(1, 1, 8), torch.arange(64.0).reshape(1, 1, 4, 4, 4)

attack("F.max_pool2d", lambda: F.max_pool2d(x, 2))
attack("F.max_pool2d return_indices", lambda: F.max_pool2d(x, 2, return_indices=True))
attack("F.avg_pool2d", lambda: F.avg_pool2d(x, 2))
attack("F.max_pool1d", lambda: F.max_pool1d(x1, 2))
attack("F.avg_pool1d", lambda: F.avg_pool1d(x1, 2))
attack("F.max_pool3d", lambda: F.max_pool3d(x3, 2))
attack("F.avg_pool3d", lambda: F.avg_pool3d(x3, 2))
attack("F.adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(x, 2))
attack("F.adaptive_max_pool2d", lambda: F.adaptive_max_pool2d(x, 2))
attack("F.adaptive_avg_pool1d", lambda: F.adaptive_avg_pool1d(x1, 4))
attack("F.adaptive_max_pool3d", lambda: F.adaptive_max_pool3d(x3, 2))
attack("F.lp_pool2d", lambda: F.lp_pool2d(x, 2, 2))
attack("F.fractional_max_pool2d", lambda: F.fractional_max_pool2d(x, 2, output_size=2))
attack("F.max_unpool2d", lambda: F.max_unpool2d(torch.ones(1, 1, 2, 2), torch.tensor([[[[5, 7], [13, 15]]]]), 2))
attack("F.interpolate area", lambda: F.interpolate(x, size=2, mode="area"))
attack("nn.MaxPool2d()(x)", lambda: nn.MaxPool2d(2)(x))
attack("nn.AvgPool2d()(x)", lambda: nn.AvgPool2d(2)(x))
attack("requires_grad max", lambda: F.max_pool2d(x.clone().requires_grad_(), 2))
attack("requires_grad avg", lambda: F.avg_pool2d(x.clone().requires_grad_(), 2))
attack("inference_mode", lambda: torch.inference_mode()(lambda: F.max_pool2d(x, 2))())
attack("torch.max_pool2d", lambda: torch.max_pool2d(x, 2))
attack("torch.ops.aten.max_pool2d_with_indices.default", lambda: torch.ops.aten.max_pool2d_with_indices.default(x, [2, 2]))
attack("torch.ops.aten.avg_pool2d.out", lambda: torch.ops.aten.avg_pool2d.out(x, [2, 2], out=torch.empty(1, 1, 2, 2)))
attack("torch._C._nn.max_pool2d_with_indices", lambda: torch._C._nn.max_pool2d_with_indices(x, [2, 2]))
attack("OpOverload.decompose", lambda: torch.ops.aten.max_pool2d.default.decompose(x, [2, 2]))
attack("OpOverload.redispatch CPU", lambda: torch.ops.aten.max_pool2d_with_indices.default.redispatch(torch._C.DispatchKeySet(torch._C.DispatchKey.CPU), x, [2, 2]))
attack("_dispatch_call_boxed", lambda: torch._C._dispatch_call_boxed(torch._C._dispatch_find_schema_or_throw("aten::max_pool2d_with_indices", ""), x, [2, 2]))
attack("computed CPU kernel", lambda: torch._C._dispatch_get_computed_kernel_for_dispatch_key("aten::max_pool2d_with_indices", torch._C.DispatchKey.CPU).call_boxed(torch._C.DispatchKeySet(torch._C.DispatchKey.CPU), x, [2, 2]))
attack("vmap", lambda: torch.vmap(lambda t: F.max_pool2d(t, 2))(x))

def python_dispatcher():
    with torch._C._EnablePythonDispatcher():
        return F.max_pool2d(x, 2)
attack("python dispatcher", python_dispatcher)

@torch.jit.script
def scripted(t: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(t, 2)
attack("torch.jit.script", lambda: scripted(x))
attack("torch.jit.trace of a module", lambda: torch.jit.trace(nn.MaxPool2d(2), x)(x))
attack("static runtime", lambda: torch._C._jit_to_static_module(torch.jit.script(nn.AvgPool2d(2))._c)(x))

def onednn_fusion():
    torch.jit.enable_onednn_fusion(True)
    function = torch.jit.script(nn.MaxPool2d(2))
    return [function(x) for _ in range(3)][-1]
attack("oneDNN graph fuser", onednn_fusion)

def in_thread():
    box = {}
    def work():
        try:
            box["result"] = F.max_pool2d(x, 2)
        except Exception as error:
            box["error"] = error
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
attack("threading.Thread", in_thread)

def no_torch_function():
    with torch._C.DisableTorchFunction():
        return F.max_pool2d(x, 2)
attack("DisableTorchFunction", no_torch_function)

def pop_mode():
    from torch.overrides import TorchFunctionMode, _pop_mode_temporarily
    with TorchFunctionMode():  # as the grader's tripwire would be
        with _pop_mode_temporarily():
            return F.max_pool2d(x, 2)
attack("_pop_mode_temporarily", pop_mode)
attack("x.to_mkldnn() then F.max_pool2d", lambda: F.max_pool2d(x.to_mkldnn(), 2))
attack("torch.mkldnn_max_pool2d", lambda: torch.mkldnn_max_pool2d(x.to_mkldnn(), [2, 2]))
quantized = torch.quantize_per_tensor(x, 0.5, 0, torch.quint8)
attack("quantized F.max_pool2d", lambda: F.max_pool2d(quantized, 2))
attack("quantized F.adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(quantized, 2))
attack("torch.ops.quantized.max_pool2d", lambda: torch.ops.quantized.max_pool2d(quantized, [2, 2], [2, 2], [0, 0], [1, 1], False))

def fallthrough():
    # Push fallthroughs on top of the lockout's kernels: they skip, never restore.
    library = torch.library.Library("aten", "IMPL")
    for key in ("CompositeImplicitAutograd", "Autograd", "CPU"):
        library.impl("max_pool2d", torch.library.fallthrough_kernel, key)
        library.impl("max_pool2d_with_indices", torch.library.fallthrough_kernel, key)
    return F.max_pool2d(x, 2)
attack("fallthrough kernels", fallthrough)

def compiled():
    # The inductor backend (a C++ compiler is present) and plain graph capture.
    return torch.compile(lambda t: F.max_pool2d(t, 2))(x)
attack("torch.compile", compiled)

def compiled_eager_fallback():
    import torch._dynamo
    torch._dynamo.config.suppress_errors = True
    return torch.compile(lambda t: F.avg_pool2d(t, 2), backend="aot_eager")(x)
attack("torch.compile suppress_errors aot_eager", compiled_eager_fallback)

# After all that (Dynamo and Inductor among the modules loaded), every kernel
# in force on a locked operator, on every key, is still the lockout's.
import torch._inductor.lowering, torch.export, torch.ao.quantization
foreign = {}
for op in verdict["locked"]:
    for line in torch._C._dispatch_dump(op).splitlines():  # "KEY: registered at FILE:LINE ..."
        key, registered, where = line.partition(": registered at ")
        if registered and key != "debug" and not key.endswith("(inactive)") and not where.startswith(lockout.__file__):
            foreign.setdefault(op, []).append(line[:150])
verdict["foreign kernels"] = foreign

# Controls: max pooling written with allowed operations, and autograd through them.
control("unfold+amax", lambda: F.unfold(x, 2, stride=2).amax(1).flatten().tolist())
control("slicing+maximum", lambda: torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., ::2, 1::2]), torch.maximum(x[..., 1::2, ::2], x[..., 1::2, 1::2])).flatten().tolist())
control("conv2d mean", lambda: F.conv2d(x, torch.full((1, 1, 2, 2), 0.25), stride=2).flatten().tolist())
control("as_strided max", lambda: x.as_strided((1, 1, 2, 2, 2, 2), (16, 16, 8, 2, 4, 1)).amax((-2, -1)).flatten().tolist())
control("pad+sum", lambda: F.pad(x, (1, 1, 1, 1)).sum().item())
control("mean", lambda: x.mean().item())

def gradient():
    y = x.clone().requires_grad_()
    F.unfold(y, 2, stride=2).amax(1).sum().backward()
    return y.grad.flatten().tolist()
control("gradient of unfold+amax", gradient)
print(json.dumps(verdict))
"""

TORCH_GC_ATTACK = """
import gc, warnings
warnings.simplefilter("ignore")
import torch
import torch.nn.functional as F
lockout.lock_torch()
x = torch.arange(16.0).reshape(1, 1, 4, 4)

def destroy_libraries():
    # Every torch.library.Library, and every _DispatchModule that any
    # tracked object refers to, is destroyed; then pool.
    found = 0
    for obj in gc.get_objects():
        if isinstance(obj, torch.library.Library):
            obj._destroy()
            found += 1
        for ref in gc.get_referents(obj):
            if isinstance(ref, torch._C._DispatchModule):
                ref.reset()
                found += 1
    verdict["destroyed"] = found
    return F.max_pool2d(x, 2)
attack("gc.get_objects Library._destroy", destroy_libraries)
verdict["untracked"] = not any(isinstance(obj, torch._C._DispatchModule) for obj in gc.get_objects())
print(json.dumps(verdict))
"""

MXNET_ATTACKS = """
import ctypes, os, types, warnings
warnings.simplefilter("ignore")
import mxnet as mx
from mxnet import gluon

# Built before the lock, to show the graph-execution layer on its own (after
# the lock no pooling symbol can even be created).
before = mx.sym.Pooling(mx.sym.var("data"), kernel=(2, 2), stride=(2, 2), pool_type="max")
before_json = before.tojson()
loop, _ = mx.sym.contrib.foreach(lambda t, s: (mx.sym.Pooling(t, kernel=(2, 2), stride=(2, 2), pool_type="max"), s), mx.sym.var("data"), [mx.sym.var("s")])
mx.nd.save(os.path.join(os.getcwd(), "params"), {"arg:unused": mx.nd.zeros(1)})

start = time.perf_counter()
verdict["locked"] = lockout.lock_mxnet()
verdict["seconds"] = time.perf_counter() - start

x = mx.nd.arange(16).reshape((1, 1, 4, 4))
attack("mx.nd.Pooling", lambda: mx.nd.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max").asnumpy())
attack("mx.nd.op.Pooling", lambda: mx.nd.op.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="avg").asnumpy())
attack("mx.nd.Pooling global", lambda: mx.nd.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg").asnumpy())
attack("mx.nd.Pooling_v1", lambda: mx.nd.Pooling_v1(x, kernel=(2, 2), stride=(2, 2), pool_type="max").asnumpy())
pooling = mx.nd.Pooling
renamed = types.FunctionType(pooling.__code__.replace(co_name="harmless"), pooling.__globals__, "harmless", pooling.__defaults__, pooling.__closure__)
attack("renamed copy of Pooling", lambda: renamed(x, kernel=(2, 2), stride=(2, 2), pool_type="max").asnumpy())
real = mx.base._LIB._real  # the student reads lockout.py: the guard's own handle
handle = ctypes.c_void_p()
mx.base.check_call(real.NNGetOpHandle(b"Pooling", ctypes.byref(handle)))
alias = ctypes.c_void_p()
mx.base.check_call(real.NNGetOpHandle(b"_npx_pooling", ctypes.byref(alias)))
keys, vals = ["kernel", "stride", "pool_type"], ["(2, 2)", "(2, 2)", "max"]
attack("register._imperative_invoke", lambda: mx.ndarray.register._imperative_invoke(handle.value, [x], keys, vals, None, False, False).asnumpy())
attack("_ctypes.ndarray._imperative_invoke", lambda: mx._ctypes.ndarray._imperative_invoke(handle.value, [x], keys, vals, None, False, False).asnumpy())
attack("_imperative_invoke with the _npx_pooling alias", lambda: mx._ctypes.ndarray._imperative_invoke(alias.value, [x], keys, vals, None, False, False).asnumpy())


def raw_invoke(op):
    # MXImperativeInvokeEx called by hand, as mxnet._ctypes.ndarray does.
    outputs, count, stypes = ctypes.POINTER(ctypes.c_void_p)(), ctypes.c_int(0), ctypes.POINTER(ctypes.c_int)()
    mx.base.check_call(mx.base._LIB.MXImperativeInvokeEx(op, ctypes.c_int(1), mx.base.c_handle_array([x]), ctypes.byref(count), ctypes.byref(outputs),
                                                         ctypes.c_int(len(keys)), mx.base.c_str_array(keys), mx.base.c_str_array(vals), ctypes.byref(stypes)))
    return mx.nd.NDArray(ctypes.cast(outputs[0], mx.base.NDArrayHandle)).asnumpy()

class Sneaky(ctypes.c_void_p):
    # A handle whose Python-level value lies (ctypes passes the stored one).
    @property
    def value(self):
        return 0
attack("_LIB.MXImperativeInvokeEx by hand", lambda: raw_invoke(handle))
attack("_LIB.MXImperativeInvokeEx with a lying handle", lambda: raw_invoke(Sneaky(handle.value)))
attack("_LIB[name] item access", lambda: mx.base.check_call(mx.base._LIB["MXImperativeInvokeEx"](handle, 0, None, None, None, 0, None, None, None)))
attack("mx.sym.Pooling", lambda: mx.sym.Pooling(mx.sym.var("data"), kernel=(2, 2), stride=(2, 2), pool_type="max").bind(mx.cpu(), {"data": x}).forward()[0].asnumpy())
attack("pre-lock symbol bind + forward", lambda: before.bind(mx.cpu(), {"data": x}).forward()[0].asnumpy())
attack("pre-lock symbol simple_bind", lambda: before.simple_bind(mx.cpu(), data=(1, 1, 4, 4)).forward(data=x)[0].asnumpy())
attack("pre-lock CachedOp", lambda: mx.nd.CachedOp(before)(x).asnumpy())
attack("pre-lock foreach subgraph bind", lambda: loop.bind(mx.cpu(), {"data": x.reshape((1, 1, 1, 4, 4)), "s": mx.nd.zeros(1)}).forward()[0].asnumpy())
attack("pre-lock foreach subgraph CachedOp", lambda: mx.nd.CachedOp(loop)(x.reshape((1, 1, 1, 4, 4)), mx.nd.zeros(1))[0].asnumpy())

def module():
    model = mx.mod.Module(before, data_names=["data"], label_names=None)
    model.bind(data_shapes=[("data", (1, 1, 4, 4))], for_training=False)
    model.init_params()
    model.forward(mx.io.DataBatch([x]), is_train=False)
    return model.get_outputs()[0].asnumpy()
attack("mx.mod.Module", module)
attack("mx.sym.load_json", lambda: mx.sym.load_json(before_json).bind(mx.cpu(), {"data": x}).forward()[0].asnumpy())

def from_file():
    with open("pooling.json", "w") as stream:
        stream.write(before_json)
    return mx.sym.load("pooling.json").bind(mx.cpu(), {"data": x}).forward()[0].asnumpy()
attack("mx.sym.load from a file", from_file)

def predictor():
    # The C predict API, through the guarded library, with a graph as JSON text.
    import numpy as np
    params = open("params", "rb").read()
    lib, out = mx.base._LIB, ctypes.c_void_p()
    shape = (ctypes.c_uint * 4)(1, 1, 4, 4)
    mx.base.check_call(lib.MXPredCreate(ctypes.c_char_p(before_json.encode()), ctypes.c_char_p(params), ctypes.c_int(len(params)), ctypes.c_int(1), ctypes.c_int(0),
                                        ctypes.c_uint(1), (ctypes.c_char_p * 1)(b"data"), (ctypes.c_uint * 2)(0, 4), shape, ctypes.byref(out)))
    data = x.asnumpy().astype("float32")
    mx.base.check_call(lib.MXPredSetInput(out, b"data", data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), ctypes.c_uint(16)))
    mx.base.check_call(lib.MXPredForward(out))
    result = np.zeros(4, "float32")
    mx.base.check_call(lib.MXPredGetOutput(out, ctypes.c_uint(0), result.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), ctypes.c_uint(4)))
    return result
attack("MXPredCreate", predictor)

for layer in (gluon.nn.MaxPool2D(), gluon.nn.AvgPool2D(), gluon.nn.GlobalAvgPool2D(), gluon.nn.GlobalMaxPool2D()):
    layer.hybridize()
    attack("hybridized gluon." + type(layer).__name__, lambda: layer(x).asnumpy())
attack("gluon.nn.MaxPool2D not hybridized", lambda: gluon.nn.MaxPool2D()(x).asnumpy())
attack("mx.nd.contrib.AdaptiveAvgPooling2D", lambda: mx.nd.contrib.AdaptiveAvgPooling2D(x, output_size=2).asnumpy())
attack("mx.npx.pooling", lambda: mx.npx.pooling(x.as_np_ndarray(), kernel=(2, 2), stride=(2, 2), pool_type="max").asnumpy())
attack("mx.nd.ROIPooling", lambda: mx.nd.ROIPooling(x, mx.nd.array([[0, 0, 0, 3, 3]]), pooled_size=(2, 2), spatial_scale=1.0).asnumpy())

# Controls: pooling written with allowed operators, imperative, symbolic and hybridized.
corners = lambda t: [t[:, :, 0::2, 0::2], t[:, :, 0::2, 1::2], t[:, :, 1::2, 0::2], t[:, :, 1::2, 1::2]]
control("nd.max over slices", lambda: mx.nd.max(mx.nd.stack(*corners(x)), axis=0).asnumpy().ravel().tolist())
control("nd.mean over slices", lambda: mx.nd.mean(mx.nd.stack(*corners(x)), axis=0).asnumpy().ravel().tolist())
control("symbol bind", lambda: mx.sym.max(mx.sym.var("data"), axis=(2, 3)).bind(mx.cpu(), {"data": x}).forward()[0].asnumpy().ravel().tolist())

class Corners(gluon.HybridBlock):
    def hybrid_forward(self, F, t):
        return F.max(F.stack(F.slice(t, (None, None, 0, 0), (None, None, None, None), (None, None, 2, 2)),
                             F.slice(t, (None, None, 1, 1), (None, None, None, None), (None, None, 2, 2)), axis=0), axis=0)
block = Corners()
block.hybridize()
control("hybridized block", lambda: block(x).asnumpy().ravel().tolist())
print(json.dumps(verdict))
"""

ABSENT = """
# Neither framework importable: both locks do nothing; the module itself pulls
# in nothing but the standard library.
sys.modules["torch"] = None
sys.modules["mxnet"] = None
verdict["torch"] = lockout.lock_torch()
verdict["mxnet"] = lockout.lock_mxnet()
verdict["MESSAGE"] = lockout.MESSAGE
verdict["loaded"] = sorted(name for name in ("numpy", "torch", "mxnet", "poolkit") if sys.modules.get(name) is not None)
print(json.dumps(verdict))
"""


def run(script, tmp_path):
    """Run ``PRELUDE + script`` in a fresh interpreter (in ``tmp_path``) and return its JSON verdict."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TORCHINDUCTOR_COMPILE_THREADS="1", TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"), PYTHONDONTWRITEBYTECODE="1")
    # A file rather than ``-c``: torch.jit.script needs the source of what it compiles.
    (tmp_path / "attacks.py").write_text(PRELUDE + script)
    done = subprocess.run([sys.executable, "attacks.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_all_refused(verdict, may_fail=()):
    """No attack obtained a result, and each was refused with MESSAGE (the
    grader's flag) unless listed in ``may_fail``."""
    obtained = {label: outcome for label, outcome in verdict["attacks"].items() if outcome[0] == "obtained"}
    assert not obtained, f"pooling obtained despite the lock: {obtained}"
    unflagged = {label: outcome for label, outcome in verdict["attacks"].items() if outcome[0] != "refused" and label not in may_fail}
    assert not unflagged, f"failed without the lockout's message: {unflagged}"


@pytest.fixture(scope="module")
def torch_verdict(tmp_path_factory):
    pytest.importorskip("torch")
    return run(TORCH_ATTACKS, tmp_path_factory.mktemp("torch"))


@pytest.fixture(scope="module")
def mxnet_verdict(tmp_path_factory):
    pytest.importorskip("mxnet")
    return run(MXNET_ATTACKS, tmp_path_factory.mktemp("mxnet"))


def test_torch_lock_covers_every_pooling_operator(torch_verdict):
    locked = set(torch_verdict["locked"])
    for op in ("aten::max_pool2d", "aten::max_pool2d_with_indices", "aten::max_pool2d_with_indices_backward", "aten::avg_pool2d.out", "aten::adaptive_max_pool3d",
               "aten::_adaptive_avg_pool2d", "aten::fractional_max_pool2d", "aten::max_unpool2d", "aten::mkldnn_max_pool2d", "aten::quantized_max_pool2d", "quantized::max_pool2d"):  # fmt: skip
        assert op in locked
    assert all("pool" in op.partition("::")[2] for op in locked)
    assert torch_verdict["seconds"] < 5


def test_torch_lockout_kernels_stay_in_force(torch_verdict):
    assert torch_verdict["foreign kernels"] == {}


def test_torch_attacks_are_refused(torch_verdict):
    # A fallthrough only skips to the next kernel, which is the lockout's or none.
    assert_all_refused(torch_verdict, may_fail=("fallthrough kernels",))


def test_torch_allowed_operations_still_work(torch_verdict):
    controls = torch_verdict["controls"]
    maxima = [5.0, 7.0, 13.0, 15.0]  # the 2x2 windows of arange(16) as 4x4
    assert controls["unfold+amax"] == maxima
    assert controls["slicing+maximum"] == maxima
    assert controls["as_strided max"] == maxima
    assert controls["conv2d mean"] == [2.5, 4.5, 10.5, 12.5]
    assert controls["pad+sum"] == 120.0
    assert controls["mean"] == 7.5
    assert controls["gradient of unfold+amax"] == [1.0 if i in (5, 7, 13, 15) else 0.0 for i in range(16)]


def test_torch_lock_survives_destroying_every_library(tmp_path):
    pytest.importorskip("torch")
    verdict = run(TORCH_GC_ATTACK, tmp_path)
    assert verdict["untracked"]  # the lockout's libraries are invisible to gc.get_objects()
    assert_all_refused(verdict)


def test_mxnet_lock_covers_every_pooling_operator(mxnet_verdict):
    locked = set(mxnet_verdict["locked"])
    assert {"Pooling", "_npx_pooling", "Pooling_v1", "_backward_Pooling", "_contrib_AdaptiveAvgPooling2D", "ROIPooling", "_contrib_quantized_pooling"} <= locked
    assert mxnet_verdict["seconds"] < 5


def test_mxnet_attacks_are_refused(mxnet_verdict):
    assert_all_refused(mxnet_verdict)


def test_mxnet_allowed_operations_still_work(mxnet_verdict):
    controls = mxnet_verdict["controls"]
    assert controls["nd.max over slices"] == [5.0, 7.0, 13.0, 15.0]
    assert controls["nd.mean over slices"] == [2.5, 4.5, 10.5, 12.5]
    assert controls["symbol bind"] == [15.0]
    assert controls["hybridized block"] == [5.0, 7.0, 13.0, 15.0]


def test_without_the_frameworks_the_locks_do_nothing(tmp_path):
    verdict = run(ABSENT, tmp_path)
    assert verdict["torch"] == [] and verdict["mxnet"] == []
    assert verdict["MESSAGE"] == MESSAGE
    assert verdict["loaded"] == []
