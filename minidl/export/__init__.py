"""Taking a model further: to ONNX (``dl.export.onnx``) and to Keras (``dl.export.keras``).

Neither onnx nor keras is imported until an export asks for it; the ONNX exporter needs only the
``onnx`` package (no torch, no Keras).
"""
from minidl.export.onnx_export import check_right_padded
from minidl.export.onnx_export import export_onnx as onnx
from minidl.export.onnx_graph import ExportError

__all__ = ["ExportError", "check_right_padded", "onnx"]
