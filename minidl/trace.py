"""Stepping through: watch a training step op by op.

    with dl.trace() as t:
        loss = F.sparse_categorical_crossentropy(labels, model(x), from_logits=True)
        loss.backward()
    print(t)

      #  op                             shapes                          forward ms  backward ms
      0  Affine                         (4, 3), (3, 8), (8,) -> (4, 8)       0.021        0.030
      1  ReLU                           (4, 8) -> (4, 8)                     0.006        0.004
      ...

Every op is a Function, and every Function runs through ``Function.apply`` (forward) and the loop
in ``Tensor.backward`` (backward); while a trace is open both hand the call to it, which times it
and notes the shapes. With no trace open the only cost is one check of a module variable in each.
A fused op (``LSTMFunction``) is one row however many steps it loops over. Traces nest: an op
applied inside two open traces is recorded by both. The hook is process-wide, so ops run by other
threads while a trace is open are recorded too.
"""
from __future__ import annotations

import time
import weakref
from typing import Any

from minidl import backend, function as function_module, tensor as tensor_module
from minidl.backend import Array
from minidl.function import Function
from minidl.tensor import Tensor

_open_traces: list["Trace"] = []   # outermost first; the last one is installed as the hook


class Trace:
    """The record of the Functions applied while it is open (``with dl.trace() as t:``).

    Attributes:
        records: one dict per Function applied, in the order their forwards began:
            ``index`` (int, its row), ``op`` (the Function's class name), ``inputs`` and
            ``outputs`` (lists of shape tuples), ``forward_ms`` (float, wall time of forward),
            ``backward_ms`` (float, wall time of its backward, summed when backward runs through
            it more than once; None while none has, and always for ops applied without a graph,
            under no_grad or on constants only). A forward's time includes any op it applies.
    On the GPU, kernels run asynchronously: the trace waits for the device before and after each
    op so that its time is the op's, which makes a traced step slower than an untraced one.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        # Function -> its record, for backward. Weak: a trace kept after the step must not keep
        # every Function alive, with the arrays its forward saved.
        self._by_function: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # --- opening and closing ----------------------------------------------------------------------
    def __enter__(self) -> "Trace":
        if self in _open_traces:
            raise RuntimeError("trace: this trace is already open; nest a new dl.trace() instead")
        _open_traces.append(self)
        _install(self)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _open_traces.remove(self)
        _install(_open_traces[-1] if _open_traces else None)

    # --- the hooks: called by Function.apply and Tensor.backward while this trace is installed ---
    def forward(self, function: Function, tensors: tuple[Tensor, ...]) -> Array | tuple[Array, ...]:
        """Run ``function.forward`` on the tensors' arrays, recording it in every open trace."""
        arrays = [t.data for t in tensors]
        records = [trace._open_record(function, arrays) for trace in _open_traces]
        _wait_for_device(arrays)   # so that the work of earlier ops is not counted here
        start = time.perf_counter()
        ys = function.forward(*arrays)
        outputs = ys if isinstance(ys, tuple) else (ys,)
        _wait_for_device(outputs)
        milliseconds = (time.perf_counter() - start) * 1e3
        for record in records:
            record["outputs"] = [tuple(y.shape) for y in outputs]
            record["forward_ms"] = milliseconds
        return ys

    def backward(self, function: Function, gys: list[Array | None]) -> Any:
        """Run ``function.backward(*gys)``, adding its time to its record in every open trace."""
        _wait_for_device(gys)
        start = time.perf_counter()
        gxs = function.backward(*gys)
        _wait_for_device(gxs if isinstance(gxs, tuple) else (gxs,))
        milliseconds = (time.perf_counter() - start) * 1e3
        for trace in _open_traces:
            record = trace._by_function.get(function)
            if record is not None:   # None: an op applied before the trace opened
                record["backward_ms"] = (record["backward_ms"] or 0.0) + milliseconds
        return gxs

    def _open_record(self, function: Function, arrays: list[Array]) -> dict[str, Any]:
        record = {"index": len(self.records), "op": type(function).__name__,
                  "inputs": [tuple(x.shape) for x in arrays], "outputs": [],
                  "forward_ms": None, "backward_ms": None}
        self.records.append(record)
        self._by_function[function] = record
        return record

    # --- reading ----------------------------------------------------------------------------------
    def table(self) -> str:
        """The records as a text table, one row per op (index, op, input shapes -> output
        shapes, forward ms, backward ms; '-' where there is none), and a row of totals."""
        header = ("#", "op", "shapes", "forward ms", "backward ms")
        rows = [(str(r["index"]), r["op"], f"{_shapes(r['inputs'])} -> {_shapes(r['outputs'])}",
                 _milliseconds(r["forward_ms"]), _milliseconds(r["backward_ms"]))
                for r in self.records]
        forward = sum(r["forward_ms"] or 0.0 for r in self.records)
        backward = [r["backward_ms"] for r in self.records if r["backward_ms"] is not None]
        rows.append(("", "total", f"{len(self.records)} ops", _milliseconds(forward),
                     _milliseconds(sum(backward) if backward else None)))
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
        lines = []
        for row in [header] + rows:
            cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                     row[3].rjust(widths[3]), row[4].rjust(widths[4])]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Trace of {len(self.records)} ops>"


def trace() -> Trace:
    """A Trace to open with ``with``: ``with dl.trace() as t: ...`` then ``print(t)``."""
    return Trace()


def _install(tracer: Trace | None) -> None:
    function_module.set_tracer(tracer)
    tensor_module.set_tracer(tracer)


def _wait_for_device(arrays: Any) -> None:
    """Wait until the GPU has finished the work behind ``arrays`` (nothing to wait for on the CPU)."""
    for array in arrays:
        if array is not None and backend.is_cupy_array(array):
            backend.get_array_module(array).cuda.get_current_stream().synchronize()
            return


def _shapes(shapes: list[tuple]) -> str:
    return ", ".join(str(shape) for shape in shapes) if shapes else "-"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
