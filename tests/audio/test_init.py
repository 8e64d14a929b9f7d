"""The audio package: it imports without minidl, and its files import each other one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import audio

PACKAGE = Path(audio.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """{module: the audio modules it names in an import}, from the source, not by running it."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                # "from audio import fsdd" names the module audio.fsdd; "from audio.io import
                # load" names audio.io
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}"
                          in modules else node.module for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_import_cycle_between_audio_files():
    graph = _imports()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:  # depth first; the graph has ~20 nodes
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [name, target]))
            if target not in state:
                visit(target, path + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert "audio.fsdd" in graph["audio.connected_digits"]  # the graph is not empty by mistake


def test_audio_never_imports_minidl():
    code = ("import sys, audio, audio.connected_digits; "
            "sys.exit(any(m == 'minidl' or m.startswith('minidl.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
