"""The layout rules of ARCHITECTURE.md and STYLE.md, checked by reading the source, not running it.

Every ``.py`` file in ``minidl/`` and ``audio/`` is parsed with ``ast``; every import in it counts,
including those inside functions (a lazy import is still a dependency; it only hides it). An
import is resolved to the file it names:

    import minidl.layers.base            ->  minidl/layers/base.py
    from minidl.layers import core       ->  minidl/layers/core.py      (a submodule)
    from minidl.layers import Dense      ->  minidl/layers/__init__.py  (a name in the package)
    from . import _common                ->  relative to the importing file's package

The package ``__init__.py`` files that Python runs on the way to a submodule are not counted as
dependencies: every file below a package would otherwise "import" it, and each package that
re-exports its files would be a cycle by construction. An ``__init__.py`` is a dependency when it
is named itself (``import minidl``, ``from minidl.layers import Dense``).

Rules:
    * no import cycle between files (the message gives each cycle as a path of files);
    * ``audio`` never imports ``minidl``, and only ``minidl/apps/`` imports ``audio``;
    * no import of a private ``_name`` defined in another module of ours; a private module
      (``audio._backend``, ``minidl.functional.recurrent._common``) may be imported, but only
      from inside the package that holds it;
    * no file over MAX_LINES lines, except those in ALLOWED_LONG, each with its reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]   # this file lives at tests/test_layout.py
PACKAGES = ("minidl", "audio")
MAX_LINES = 450

# path (relative to the repository root) -> why it reads better whole than split.
ALLOWED_LONG: dict[str, str] = {
    "minidl/callbacks.py": "Keras' callback set: one small class per hook, read as a catalogue beside the "
                           "CallbackList that calls them; splitting it would scatter one protocol",
}


# --- reading the tree ---------------------------------------------------------------------------
def module_name(path: Path) -> str:
    """``minidl/layers/base.py`` -> ``minidl.layers.base``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Module name -> file, for every .py file of the checked packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


FILES = source_files()
PATHS = {name: path.relative_to(ROOT).as_posix() for name, path in FILES.items()}


def is_package(module: str) -> bool:
    return FILES[module].name == "__init__.py"


def base_of_relative(importer: str, level: int, module: str | None) -> str:
    """The absolute module named by ``from <level dots><module> import ...`` inside ``importer``."""
    package = importer.split(".") if is_package(importer) else importer.split(".")[:-1]
    if level - 1 > len(package):
        raise ValueError(f"{PATHS[importer]}: relative import beyond the top-level package")
    base = package[:len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class Import:
    """One imported thing: the module it resolves to (None when not ours), the name taken from
    it (for ``from m import name``, else None), and where it was written."""

    def __init__(self, importer: str, module: str, name: str | None, line: int):
        self.importer, self.module, self.name, self.line = importer, module, name, line

    @property
    def target(self) -> str | None:
        """The file this import runs: a submodule when ``name`` is one, else ``module``."""
        if self.name is not None and f"{self.module}.{self.name}" in FILES:
            return f"{self.module}.{self.name}"
        return self.module if self.module in FILES else None

    @property
    def where(self) -> str:
        return f"{PATHS[self.importer]}:{self.line}"


def imports_of(module: str) -> list[Import]:
    """Every import written in ``module``'s file, at any depth (functions, classes, ifs)."""
    tree = ast.parse(FILES[module].read_text(encoding="utf-8"), filename=str(FILES[module]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = base_of_relative(module, node.level, node.module) if node.level else node.module
            found += [Import(module, base, alias.name, node.lineno) for alias in node.names if alias.name != "*"]
    return found


IMPORTS = {module: imports_of(module) for module in FILES}


def import_graph() -> dict[str, set[str]]:
    """File -> the files of ours it imports (itself excluded: a package re-exporting its own name)."""
    graph = {module: set() for module in FILES}
    for module, found in IMPORTS.items():
        for item in found:
            if item.target is not None and item.target != module:
                graph[module].add(item.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a closed path of modules) per strongly connected group of files, by Tarjan."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = [0]

    def connect(root: str) -> None:  # iterative: a deep import chain must not recurse
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return [closed_path(graph, set(group), group[0]) for group in groups]


def closed_path(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """The shortest path start -> ... -> start inside ``group`` (breadth first)."""
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:  # closed: walk the parents back from node to start
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_module_owner(module: str) -> str | None:
    """The package holding the first private part of ``module`` (None if no part is private):
    ``audio._backend`` -> ``audio``; ``minidl.functional.recurrent._common`` -> ``minidl.functional.recurrent``."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:i])
    return None


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# --- the rules ----------------------------------------------------------------------------------
def test_the_tree_is_found():
    assert "minidl.layers.base" in FILES and "audio" in FILES, f"no minidl/ and audio/ under {ROOT}"


def test_no_import_cycle_between_files():
    found = cycles(import_graph())
    lines = [" -> ".join(PATHS[m] for m in cycle) for cycle in found]
    assert not found, "import cycles between files (each shown once, as a closed path):\n  " + "\n  ".join(lines)


def test_audio_never_imports_minidl():
    bad = [f"{item.where} imports {item.module}" for module, found in IMPORTS.items() if inside(module, "audio")
           for item in found if item.module and inside(item.module, "minidl")]
    assert not bad, "audio must not import minidl (it takes its array module from its input):\n  " + "\n  ".join(bad)


def test_only_minidl_apps_imports_audio():
    bad = [f"{item.where} imports {item.module}" for module, found in IMPORTS.items()
           if inside(module, "minidl") and not inside(module, "minidl.apps")
           for item in found if item.module and inside(item.module, "audio")]
    assert not bad, "only minidl/apps/ may join minidl and audio:\n  " + "\n  ".join(bad)


def test_no_cross_module_import_of_private_names():
    bad = []
    for module, found in IMPORTS.items():
        for item in found:
            target = item.target
            if target is None:  # not ours (numpy, cupy, ...): not this test's business
                continue
            owner = private_module_owner(target)
            if owner is not None and not inside(module, owner):
                bad.append(f"{item.where} imports the private module {target} from outside {owner}")
            elif target == item.module and item.name and is_private(item.name) and target != module:
                bad.append(f"{item.where} imports the private name {item.name} from {PATHS[target]}")
    assert not bad, ("private names are for their own module; make them public or move them "
                     "(private modules, for their own package):\n  " + "\n  ".join(bad))


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_file_over_the_line_limit_except_the_allowed():
    long = {PATHS[m]: line_count(path) for m, path in FILES.items() if line_count(path) > MAX_LINES}
    bad = [f"{path}: {lines} lines" for path, lines in sorted(long.items()) if path not in ALLOWED_LONG]
    assert not bad, (f"files over {MAX_LINES} lines; split them by idea, or add them to ALLOWED_LONG with "
                     f"the reason they read better whole:\n  " + "\n  ".join(bad))


def test_each_allowed_long_file_has_a_reason_and_still_needs_it():
    for path, reason in ALLOWED_LONG.items():
        assert reason.strip(), f"ALLOWED_LONG[{path!r}] needs a reason"
        assert (ROOT / path).is_file(), f"ALLOWED_LONG names {path}, which is gone; remove the entry"
        assert line_count(ROOT / path) > MAX_LINES, f"{path} is within {MAX_LINES} lines now; remove its entry"


# --- the checker checks itself, on a made-up graph ----------------------------------------------
def test_cycles_are_found_and_reported_as_closed_paths():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_private_module_owner():
    assert private_module_owner("audio._backend") == "audio"
    assert private_module_owner("minidl.functional.recurrent._common") == "minidl.functional.recurrent"
    assert private_module_owner("minidl.layers.base") is None
    assert private_module_owner("minidl.__init__") is None
