"""Taking a model further: to ONNX (``dl.export.onnx``) and to Keras (``dl.export.keras``); back
from Keras with ``dl.from_keras``.

Neither onnx nor keras is imported until an export asks for it; the ONNX exporter needs only the
``onnx`` package (no torch, no Keras).
"""
from minidl.export.errors import ExportError
from minidl.export.keras_export import export_keras as keras
from minidl.export.keras_import import from_keras
from minidl.export.onnx_export import check_right_padded
from minidl.export.onnx_export import export_onnx as onnx

__all__ = ["ExportError", "check_right_padded", "from_keras", "keras", "onnx"]
