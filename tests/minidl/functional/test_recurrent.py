"""Fused recurrent ops: gradient checks, agreement with the primitive-op reference cells, masks,
long sequences, bad input, and (on a GPU) the CuPy kernels against NumPy."""
import itertools
import sys

import numpy as np
import pytest

import minidl.functional as F
from minidl.function import no_grad
from minidl.functional.recurrent import gru, lstm, simple_rnn
from minidl.functional.recurrent_reference import gru_reference, lstm_reference, simple_rnn_reference
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor

UNITS = 3
OPS = {  # name: (fused, reference, state count, gate count, bias shape)
    "simple_rnn": (simple_rnn, simple_rnn_reference, 1, 1, (UNITS,)),
    "lstm": (lstm, lstm_reference, 2, 4, (4 * UNITS,)),
    "gru": (gru, gru_reference, 1, 3, (2, 3 * UNITS)),
}


def make_inputs(name, batch=3, steps=5, features=4, bias=True, seed=0, dtype=np.float64):
    """x, initial states, kernel, recurrent kernel (and bias) for op ``name``, float64."""
    _, _, states, gates, bias_shape = OPS[name]
    rng = np.random.default_rng(seed)
    shapes = [(batch, steps, features)] + [(batch, UNITS)] * states
    shapes += [(features, gates * UNITS), (UNITS, gates * UNITS)] + ([bias_shape] if bias else [])
    return [(0.6 * rng.normal(size=shape)).astype(dtype) for shape in shapes]


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


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("masked, go_backwards, zero_output_for_mask",
                         [(False, False, False), (False, True, False), (True, False, False),
                          (True, True, False), (True, False, True), (True, True, True)])
def test_fused_equals_reference_in_value_and_every_gradient(name, masked, go_backwards, zero_output_for_mask):
    arrays = make_inputs(name)
    options = dict(mask=ragged_mask() if masked else None, go_backwards=go_backwards,
                   zero_output_for_mask=zero_output_for_mask)
    (value, grads), (ref_value, ref_grads) = run_both(name, arrays, **options)
    np.testing.assert_allclose(value, ref_value, rtol=0, atol=1e-10)
    for position, (g, ref) in enumerate(zip(grads, ref_grads)):
        assert g is not None, f"input {position} got no gradient"
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-10, err_msg=f"input {position}")


@pytest.mark.parametrize("name", list(OPS))
def test_fused_equals_reference_without_bias(name):
    (value, grads), (ref_value, ref_grads) = run_both(name, make_inputs(name, bias=False), mask=ragged_mask())
    np.testing.assert_allclose(value, ref_value, atol=1e-10)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g, ref, atol=1e-10)


@pytest.mark.parametrize("name, activations", [
    ("simple_rnn", dict(activation="relu")), ("simple_rnn", dict(activation="linear")),
    ("simple_rnn", dict(activation="sigmoid")),
    ("lstm", dict(activation="relu", recurrent_activation="sigmoid")),
    ("lstm", dict(activation="tanh", recurrent_activation="tanh")),
    ("gru", dict(activation="linear", recurrent_activation="sigmoid"))])
def test_fused_equals_reference_for_other_activations(name, activations):
    (value, grads), (ref_value, ref_grads) = run_both(name, make_inputs(name), **activations)
    np.testing.assert_allclose(value, ref_value, atol=1e-10)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g, ref, atol=1e-10)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("batch, steps, masked, go_backwards", [
    (1, 1, False, False), (2, 4, False, False), (1, 3, False, True), (3, 5, True, False), (3, 5, True, True)])
def test_fused_gradcheck(name, batch, steps, masked, go_backwards):
    fused = OPS[name][0]
    arrays = make_inputs(name, batch=batch, steps=steps, features=2, seed=batch + steps)
    mask = ragged_mask(batch, steps) if masked else None
    gradcheck(lambda *xs: flat(fused(*xs, mask=mask, go_backwards=go_backwards)), arrays)


@pytest.mark.parametrize("name", list(OPS))
def test_gradcheck_zero_output_for_mask_and_fully_masked_row(name):
    fused = OPS[name][0]
    mask = ragged_mask()
    mask[2] = False  # a sequence with no valid step at all keeps its initial state
    arrays = make_inputs(name, features=2)
    gradcheck(lambda *xs: flat(fused(*xs, mask=mask, zero_output_for_mask=True)), arrays)


@pytest.mark.parametrize("name", list(OPS))
def test_masked_steps_carry_state_and_repeat_output(name):
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


def test_go_backwards_processes_steps_last_to_first():
    arrays = make_inputs("lstm")
    x = arrays[0]
    forward, h, c = lstm(*[Tensor(a) for a in [x[:, ::-1].copy()] + arrays[1:]])
    backward, h_b, c_b = lstm(*[Tensor(a) for a in arrays], go_backwards=True)
    np.testing.assert_allclose(backward.data, forward.data, atol=1e-12)  # outputs in processed order
    np.testing.assert_allclose(h_b.data, h.data, atol=1e-12)


def test_float32_stays_float32():
    arrays = make_inputs("lstm", dtype=np.float32)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    outputs, h, c = lstm(*tensors, mask=ragged_mask())
    assert outputs.dtype == h.dtype == c.dtype == np.float32
    (outputs.sum() + h.sum() + c.sum()).backward()
    assert all(t.grad.dtype == np.float32 for t in tensors)


@pytest.mark.parametrize("use_reference", [False, True])
def test_lstm_unrolled_over_1000_steps_backpropagates_without_recursion(use_reference):
    fn = lstm_reference if use_reference else lstm
    arrays = make_inputs("lstm", batch=2, steps=1000, features=2)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, 1000))  # far fewer frames than the graph is deep
    try:
        outputs, h, c = fn(*tensors)
        outputs.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    assert all(t.grad is not None and np.isfinite(t.grad).all() for t in tensors)


def test_graph_memory_is_freed_after_backward():
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs("lstm")]
    outputs, h, c = lstm(*tensors)
    function = outputs.creator
    assert function.H is not None
    outputs.sum().backward()
    assert function.released and not hasattr(function, "H")  # saved buffers dropped


def test_no_graph_under_no_grad():
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs("gru")]
    with no_grad():
        outputs, h = gru(*tensors)
    assert outputs.creator is None


@pytest.mark.parametrize("bad, message", [
    (lambda a: [a[0][0]] + a[1:], r"lstm: expected x of shape \(batch, steps, features\), got shape \(5, 4\)"),
    (lambda a: [a[0], a[1][:2]] + a[2:], r"lstm: expected h0 of shape \(3, 3\) .* got shape \(2, 3\)"),
    (lambda a: a[:3] + [a[3][:2]] + a[4:], r"lstm: expected kernel of shape \(4, 12\) .* got shape \(2, 12\)"),
])
def test_bad_shapes_name_expected_and_received(bad, message):
    with pytest.raises(ValueError, match=message):
        lstm(*bad(make_inputs("lstm")))


def test_bad_mask_shape_and_unknown_activation():
    with pytest.raises(ValueError, match=r"gru: expected a mask of shape \(batch, steps\) = \(3, 5\), got shape \(3, 4\)"):
        gru(*make_inputs("gru"), mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="simple_rnn: the fused op supports activation in"):
        simple_rnn(*make_inputs("simple_rnn"), activation="softmax")


@pytest.mark.cupy
@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("masked, go_backwards", list(itertools.product([False, True], [False, True])))
def test_cupy_kernels_match_numpy(name, masked, go_backwards):
    import cupy
    fused = OPS[name][0]
    mask = ragged_mask() if masked else None
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
        arrays = make_inputs(name, dtype=dtype)
        results = []
        for module in (np, cupy):
            tensors = [Tensor(module.asarray(a), requires_grad=True) for a in arrays]
            out = flat(fused(*tensors, mask=None if mask is None else module.asarray(mask),
                             go_backwards=go_backwards))
            out.backward(module.asarray(np.random.default_rng(1).normal(size=out.shape).astype(dtype)))
            to_numpy = (lambda a: a.get()) if module is cupy else np.asarray
            results.append([to_numpy(out.data)] + [to_numpy(t.grad) for t in tensors])
        for got, expected in zip(results[1], results[0]):
            np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


# --- the CuPy kernel bodies, compiled for the CPU --------------------------------------------------

class _HostElementwiseKernel:
    """cupy.ElementwiseKernel's calling rules on the CPU: the body is compiled as C++ (g++) in a
    loop over i; non-raw arguments are broadcast and indexed by i, raw ones are flat pointers.
    Lets a machine without a GPU check the arithmetic and indexing of the kernel bodies."""

    def __init__(self, directory, in_params, out_params, body, name):
        def parse(params):
            return [(p.split()[-2], p.split()[-1], p.split()[0] == "raw") for p in params.split(",")]
        self.ins, self.outs = parse(in_params), parse(out_params)
        self.body, self.name, self.directory, self.compiled = body, name, directory, {}

    def _compile(self, ctype):
        import ctypes
        import subprocess
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
        import ctypes
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


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_cupy_kernel_bodies_compiled_for_the_cpu_match_numpy(name, tmp_path, monkeypatch):
    import shutil
    import types

    import minidl.functional.recurrent as recurrent
    if shutil.which("g++") is None:
        pytest.skip("needs g++ to compile the kernel bodies for the CPU")
    host = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    host.__name__ = "cupy"  # makes the ops take their kernel path
    host.ElementwiseKernel = lambda *args: _HostElementwiseKernel(tmp_path, *args)
    monkeypatch.setattr(recurrent, "_KERNELS", {})
    fused = OPS[name][0]
    for masked, go_backwards, zero_output_for_mask in itertools.product([False, True], repeat=3):
        for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
            arrays = make_inputs(name, dtype=dtype)
            results = []
            for module in (np, host):
                monkeypatch.setattr(recurrent, "get_array_module", lambda *a, m=module: m)
                tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
                out = flat(fused(*tensors, mask=ragged_mask() if masked else None, go_backwards=go_backwards,
                                 zero_output_for_mask=zero_output_for_mask))
                out.backward(np.random.default_rng(1).normal(size=out.shape).astype(dtype))
                results.append([out.data] + [t.grad for t in tensors])
            for got, expected in zip(results[1], results[0]):
                np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    assert name in recurrent._KERNELS  # the kernel path really ran
