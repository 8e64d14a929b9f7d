"""Shared helpers of the recurrent op tests: inputs, masks, the fused op beside its reference
cell, the parametrised cases (ids that name the op), and the CuPy kernel bodies compiled for the
CPU with g++."""
from __future__ import annotations

import ctypes
import functools
import importlib
import itertools
import shutil
import subprocess
import types

import numpy as np
import pytest

import minidl.functional as F
from minidl.functional import recurrent
from minidl.functional.recurrent import _common
from minidl.tensor import Tensor

UNITS = 3
OPS = {  # name: (fused, reference, state count, gate count, bias shape)
    "simple_rnn": (recurrent.simple_rnn, recurrent.simple_rnn_reference, 1, 1, (UNITS,)),
    "lstm": (recurrent.lstm, recurrent.lstm_reference, 2, 4, (4 * UNITS,)),
    "gru": (recurrent.gru, recurrent.gru_reference, 1, 3, (2, 3 * UNITS)),
    "gru_reset_before": (functools.partial(recurrent.gru, reset_after=False),
                         functools.partial(recurrent.gru_reference, reset_after=False), 1, 3, (3 * UNITS,)),
}


def make_inputs(name, batch=3, steps=5, features=4, bias=True, seed=0, dtype=np.float64):
    """x, initial states, kernel, recurrent kernel (and bias) for op ``name``, float64."""
    _, _, states, gates, bias_shape = OPS[name]
    rng = np.random.default_rng(seed)
    shapes = [(batch, steps, features)] + [(batch, UNITS)] * states
    shapes += [(features, gates * UNITS), (UNITS, gates * UNITS)] + ([bias_shape] if bias else [])
    return [(0.6 * rng.normal(size=shape)).astype(dtype) for shape in shapes]


def dropout_masks(name, batch=3, features=4, rate=0.4, seed=5):
    """Per-gate dropout masks of op ``name`` as Keras draws them, 0 or 1/(1 - rate): input masks
    (gates, batch, features) and recurrent masks (gates, batch, units), all different."""
    gates = OPS[name][3]
    rng = np.random.default_rng(seed)
    draw = lambda n: (rng.random((gates, batch, n)) >= rate) / (1 - rate)  # noqa: E731
    return draw(features), draw(UNITS)


def ragged_mask(batch=3, steps=5):
    """Right-padded lengths [steps, 2, 1] plus a hole in the middle of the first sequence."""
    lengths = np.array([steps, 2, 1, steps, 3][:batch])
    mask = np.arange(steps)[None, :] < lengths[:, None]
    mask[0, 1] = False
    return mask


def flat(outputs):
    """All outputs of an op as one vector, so gradcheck checks every one of them."""
    return F.concatenate([F.reshape(o, (-1,)) for o in outputs], axis=0)


def run_both(name, arrays, **options):
    """Values and gradients of the fused op and of the reference cell for the same inputs."""
    fused, reference = OPS[name][:2]
    results = []
    for fn in (fused, reference):
        tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        out = flat(fn(*tensors, **options))
        v = np.random.default_rng(1).normal(size=out.shape)
        out.backward(v)
        results.append((out.data, [t.grad for t in tensors]))
    return results


def assert_fused_equals_reference(name, arrays, rtol=0.0, **options):
    """The fused op and its reference cell agree in value and in the gradient of every input."""
    (value, grads), (ref_value, ref_grads) = run_both(name, arrays, **options)
    np.testing.assert_allclose(value, ref_value, rtol=rtol, atol=1e-10)
    for position, (g, ref) in enumerate(zip(grads, ref_grads)):
        assert g is not None, f"{name}: input {position} got no gradient"
        np.testing.assert_allclose(g, ref, rtol=rtol, atol=1e-10, err_msg=f"{name}: input {position}")


def assert_masked_steps_carry_state_and_repeat_output(name):
    """At masked steps the states pass through and the output repeats (or is zero)."""
    fused, _, states = OPS[name][:3]
    arrays = [Tensor(a) for a in make_inputs(name)]
    mask = ragged_mask()
    outputs, *final = fused(*arrays, mask=mask)
    full, *_ = fused(*[Tensor(a.data[1:2, :2]) if i == 0 else Tensor(a.data[1:2]) if i <= states else a
                       for i, a in enumerate(arrays)])
    # sequence 1 has 2 valid steps: its final state and later outputs are those of step 1
    np.testing.assert_allclose(final[0].data[1], full.data[0, 1], atol=1e-12)
    np.testing.assert_allclose(outputs.data[1, 2:], np.broadcast_to(full.data[0, 1], (3, UNITS)), atol=1e-12)
    # step 1 of sequence 0 is a hole: output repeated from step 0
    np.testing.assert_array_equal(outputs.data[0, 1], outputs.data[0, 0])
    zeroed, *_ = fused(*arrays, mask=mask, zero_output_for_mask=True)
    np.testing.assert_array_equal(zeroed.data[~mask], 0)


# --- parametrised cases; every id starts with the op's name ------------------------------------------

def option_cases(name):
    """(masked, go_backwards, zero_output_for_mask) for the fused-against-reference checks."""
    cases = [(False, False, False), (False, True, False), (True, False, False),
             (True, True, False), (True, False, True), (True, True, True)]
    words = ("masked", "backwards", "zero_output")
    return [pytest.param(*case, id="-".join([name] + [w for w, on in zip(words, case) if on]))
            for case in cases]


def gradcheck_cases(name):
    """(batch, steps, masked, go_backwards) for the gradient checks: batch 1, length 1, masks."""
    cases = [(1, 1, False, False), (2, 4, False, False), (1, 3, False, True), (3, 5, True, False),
             (3, 5, True, True)]
    return [pytest.param(*case, id=f"{name}-batch{case[0]}-steps{case[1]}"
                         + ("-masked" if case[2] else "") + ("-backwards" if case[3] else ""))
            for case in cases]


def device_cases(name):
    """(masked, go_backwards) for the CuPy against NumPy checks."""
    return [pytest.param(masked, backwards, id=f"{name}-masked{int(masked)}-backwards{int(backwards)}")
            for masked, backwards in itertools.product([False, True], [False, True])]


def assert_cupy_matches_numpy(name, masked, go_backwards, **options):
    """On a GPU: the CuPy path (its CUDA steps included) gives NumPy's values and gradients;
    ``options`` (NumPy arrays, such as dropout masks) go to the op as they are."""
    import cupy  # noqa: PLC0415 (only where a GPU is; the test is marked cupy)
    fused = OPS[name][0]
    mask = ragged_mask() if masked else None
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
        arrays = make_inputs(name, dtype=dtype)
        results = []
        for module in (np, cupy):
            tensors = [Tensor(module.asarray(a), requires_grad=True) for a in arrays]
            out = flat(fused(*tensors, mask=None if mask is None else module.asarray(mask),
                             go_backwards=go_backwards, **options))
            out.backward(module.asarray(np.random.default_rng(1).normal(size=out.shape).astype(dtype)))
            to_numpy = (lambda a: a.get()) if module is cupy else np.asarray
            results.append([to_numpy(out.data)] + [to_numpy(t.grad) for t in tensors])
        for got, expected in zip(results[1], results[0]):
            np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


# --- the CuPy kernel bodies, compiled for the CPU --------------------------------------------------

class HostElementwiseKernel:
    """cupy.ElementwiseKernel's calling rules on the CPU: the body is compiled as C++ (g++) in a
    loop over i; non-raw arguments are broadcast and indexed by i, raw ones are flat pointers.
    Lets a machine without a GPU check the arithmetic and indexing of the kernel bodies."""

    def __init__(self, directory, in_params, out_params, body, name):
        def parse(params):
            return [(p.split()[-2], p.split()[-1], p.split()[0] == "raw") for p in params.split(",")]
        self.ins, self.outs = parse(in_params), parse(out_params)
        self.body, self.name, self.directory, self.compiled = body, name, directory, {}

    def _compile(self, ctype):
        arguments, bindings = [], []
        for kind, name, raw in self.ins + self.outs:
            if kind == "int32":
                arguments.append(f"int {name}")
                continue
            c_type = ctype if kind == "T" else "bool"
            arguments.append(f"{c_type}* {name}_pointer")
            if raw:
                bindings.append(f"{c_type}* {name} = {name}_pointer;")
            elif (kind, name, raw) in self.outs:
                bindings.append(f"{c_type}& {name} = {name}_pointer[i];")
            else:
                bindings.append(f"const {c_type} {name} = {name}_pointer[i];")
        source = (f"#include <cmath>\nusing namespace std;\ntypedef {ctype} T;\n"
                  f"extern \"C\" void run(long n, {', '.join(arguments)}) {{\n"
                  f"for (long i = 0; i < n; ++i) {{\n{chr(10).join(bindings)}\n{self.body}\n}}}}\n")
        path = self.directory / f"{self.name}_{ctype}"
        path.with_suffix(".cpp").write_text(source)
        subprocess.run(["g++", "-O1", "-shared", "-fPIC", str(path.with_suffix(".cpp")), "-o",
                        str(path.with_suffix(".so"))], check=True)
        return ctypes.CDLL(str(path.with_suffix(".so"))).run

    def __call__(self, *args):
        params = self.ins + self.outs
        dtype = next(a.dtype for (kind, _, _), a in zip(params, args) if kind == "T" and hasattr(a, "dtype"))
        shape = np.broadcast_shapes(*[np.shape(a) for (kind, _, raw), a in zip(params, args)
                                      if not raw and kind != "int32"])
        ctype = "double" if dtype == np.float64 else "float"
        if ctype not in self.compiled:
            self.compiled[ctype] = self._compile(ctype)
        c_args, write_back = [], []
        for (kind, name, raw), a in zip(params, args):
            if kind == "int32":
                c_args.append(ctypes.c_int(int(a)))
                continue
            if raw:
                assert a.flags.c_contiguous, f"raw argument {name} must be C-contiguous"
                buffer = a
            else:
                buffer = np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=dtype if kind == "T" else bool),
                                                              shape)).copy()
                if (kind, name, raw) in self.outs:
                    write_back.append((a, buffer))
            c_args.append(buffer.ctypes.data_as(ctypes.c_void_p))
        self.compiled[ctype](ctypes.c_long(int(np.prod(shape))), *c_args)
        for target, buffer in write_back:
            target[...] = buffer


def assert_kernel_bodies_match_numpy(name, tmp_path, monkeypatch, **options):
    """Run op ``name`` once on NumPy and once on a NumPy dressed as CuPy whose ElementwiseKernel
    is HostElementwiseKernel, so the CUDA step bodies run (compiled for the CPU); both agree.
    ``options`` go to the op as they are (dropout masks, for instance)."""
    if shutil.which("g++") is None:
        pytest.skip("needs g++ to compile the kernel bodies for the CPU")
    # The package attribute ``lstm`` is the function; the module is reached by its full name.
    module = importlib.import_module(f"minidl.functional.recurrent.{name}")
    host = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    host.__name__ = "cupy"  # makes the ops take their kernel path
    host.ElementwiseKernel = lambda *args: HostElementwiseKernel(tmp_path, *args)
    monkeypatch.setattr(_common, "_CUDA_STEPS", {})
    fused = OPS[name][0]
    for masked, go_backwards, zero_output_for_mask in itertools.product([False, True], repeat=3):
        for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
            arrays = make_inputs(name, dtype=dtype)
            results = []
            for array_module in (np, host):
                monkeypatch.setattr(module, "get_array_module", lambda *a, m=array_module: m)
                tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
                out = flat(fused(*tensors, mask=ragged_mask() if masked else None, go_backwards=go_backwards,
                                 zero_output_for_mask=zero_output_for_mask, **options))
                out.backward(np.random.default_rng(1).normal(size=out.shape).astype(dtype))
                results.append([out.data] + [t.grad for t in tensors])
            for got, expected in zip(results[1], results[0]):
                np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    # the kernel path really ran, forward and backward
    assert {f"minidl_{name}_forward", f"minidl_{name}_backward"} <= set(_common._CUDA_STEPS)
