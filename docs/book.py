"""Runs the tutorial: every ```python block of docs/tutorial/*.md, in order, one namespace a chapter.

The test suite (tests/docs/test_tutorial.py) runs each block as a test, so the book cannot drift
from the code; ``mkdocs build`` loads this file as a hook (mkdocs.yml), runs the book into
build/book/ and puts the figures and the printed output of each block into the pages.

A block may be preceded by a comment naming what it needs, invisible on the site:

    <!-- book: needs keras -->            skipped, with the reason, when keras cannot be imported
    <!-- book: needs fsdd -->             skipped unless $MINIDL_DATA/fsdd/recordings exists
    <!-- book: needs cupy dot -->         several at once: cupy and a GPU; Graphviz's dot program

Blocks run with the working directory set to the book's output folder, so a block that saves
``figures/power.png`` writes build/book/figures/power.png, which the page shows as
``![...](figures/power.png)``. Under test MINIDL_TUTORIAL_QUICK=1 is set while blocks run: a
chapter with a long training reads it and trains for a few epochs instead (the page says how).
A block's line numbers in a traceback are those of the Markdown file.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial"
BUILD = ROOT / "build" / "book"
QUICK_VARIABLE = "MINIDL_TUTORIAL_QUICK"

FENCE_OPEN = re.compile(r"^```python\s*$")
FENCE_CLOSE = re.compile(r"^```\s*$")
DIRECTIVE = re.compile(r"^<!--\s*book:\s*(.*?)\s*-->\s*$")
KNOWN_NEEDS = ("keras", "torch", "librosa", "fsdd", "cupy", "dot")
FIGURE_LINK = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+)\)")


@dataclass
class Block:
    """One ```python block: its source, where it sits in the file (1-based lines of the fences),
    and what it needs."""
    chapter: str
    path: Path
    index: int
    source: str
    first_line: int
    last_line: int
    needs: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What running a block gave: its printed output, or why it was skipped."""
    output: str = ""
    skipped: str | None = None
    seconds: float = 0.0


@dataclass
class Chapter:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


def parse_chapter(path: Path) -> Chapter:
    """The ```python blocks of a Markdown file, each with the needs of the comment just above it.

    Raises:
        ValueError: a block is never closed, or a comment names a need this runner does not know.
    """
    chapter = Chapter(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    pending: tuple[str, ...] = ()
    number = 0
    while number < len(lines):
        line = lines[number]
        directive = DIRECTIVE.match(line.strip())
        if directive:
            words = directive.group(1).split()
            if not words or words[0] != "needs" or len(words) < 2:
                raise ValueError(f"{path.name}:{number + 1}: a book comment reads "
                                 f"'<!-- book: needs WHAT -->', got {line.strip()!r}")
            unknown = [word for word in words[1:] if word not in KNOWN_NEEDS]
            if unknown:
                raise ValueError(f"{path.name}:{number + 1}: unknown need {unknown[0]!r}; "
                                 f"known: {', '.join(KNOWN_NEEDS)}")
            pending = tuple(words[1:])
        elif FENCE_OPEN.match(line):
            start = number
            number += 1
            while number < len(lines) and not FENCE_CLOSE.match(lines[number]):
                number += 1
            if number == len(lines):
                raise ValueError(f"{path.name}:{start + 1}: a ```python block is never closed")
            chapter.blocks.append(Block(chapter.name, path, len(chapter.blocks),
                                        "\n".join(lines[start + 1:number]) + "\n",
                                        start + 1, number + 1, pending))
            pending = ()
        elif line.strip():
            pending = ()   # a comment applies only to the block right below it
        number += 1
    return chapter


def figure_links(markdown: str) -> list[str]:
    """The figures a page shows: ``figures/...`` paths of its image links."""
    return FIGURE_LINK.findall(markdown)


def chapters(folder: Path = TUTORIAL) -> list[Chapter]:
    """Every chapter of the tutorial, in file-name order."""
    return [parse_chapter(path) for path in sorted(folder.glob("*.md"))]


def missing_need(needs: tuple[str, ...]) -> str | None:
    """Why a block with these needs cannot run here, or None when it can."""
    for need in needs:
        if need in ("keras", "torch", "librosa") and importlib.util.find_spec(need) is None:
            return f"needs {need}, which is not installed (make test-all installs it)"
        if need == "fsdd":
            data = os.environ.get("MINIDL_DATA")
            if not data or not (Path(data) / "fsdd" / "recordings").is_dir():
                return "needs the FSDD recordings: set MINIDL_DATA to the folder holding fsdd/"
        if need == "cupy":
            try:
                import cupy
                if cupy.cuda.runtime.getDeviceCount() < 1:
                    return "needs a CUDA GPU"
            except Exception:   # not installed, or no driver: either way no GPU to run on
                return "needs CuPy and a CUDA GPU"
        if need == "dot" and shutil.which("dot") is None:
            return "needs Graphviz's dot program"
    return None


class Runner:
    """Runs chapters' blocks in order, each chapter in its own namespace, inside ``out``."""

    def __init__(self, out: Path, quick: bool):
        self.out = Path(out)
        self.quick = quick
        self.namespaces: dict[str, dict] = {}
        self.outcomes: dict[str, list[Outcome]] = {}
        self.failed: dict[str, str] = {}
        self.sessions: dict[str, dict] = {}   # chapter -> minidl's switches after its last block

    def run_through(self, chapter: Chapter, index: int) -> Outcome:
        """Run the chapter's blocks up to ``index`` that have not run yet; the outcome of block
        ``index``. Raises whatever a block raises; after that the chapter's later blocks raise
        RuntimeError naming the block that failed."""
        done = self.outcomes.setdefault(chapter.name, [])
        namespace = self.namespaces.setdefault(chapter.name, {"__name__": f"book_{chapter.name}"})
        while len(done) <= index:
            if chapter.name in self.failed:
                raise RuntimeError(f"{chapter.path.name}: not run, because "
                                   f"{self.failed[chapter.name]} failed")
            block = chapter.blocks[len(done)]
            # a chapter is one Python session: what its last block left (floatx, backend, random
            # state) is what the next one sees, whatever ran in between (other chapters, tests)
            set_session(self.sessions.get(chapter.name))
            try:
                done.append(self.run_block(block, namespace))
            except BaseException:
                self.failed[chapter.name] = f"the block at line {block.first_line}"
                raise
            finally:
                self.sessions[chapter.name] = get_session()
        return done[index]

    def run_block(self, block: Block, namespace: dict) -> Outcome:
        reason = missing_need(block.needs)
        if reason is not None:
            return Outcome(skipped=reason)
        # padding with blank lines makes a traceback's line numbers those of the Markdown file
        code = compile("\n" * block.first_line + block.source,
                       str(block.path), "exec")
        self.out.mkdir(parents=True, exist_ok=True)
        printed = io.StringIO()
        before, saved_quick = Path.cwd(), os.environ.get(QUICK_VARIABLE)
        os.environ[QUICK_VARIABLE] = "1" if self.quick else "0"
        os.environ.setdefault("MPLBACKEND", "Agg")   # figures go to files; no window opens
        start = time.perf_counter()
        try:
            os.chdir(self.out)
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)
        finally:
            os.chdir(before)
            if saved_quick is None:
                os.environ.pop(QUICK_VARIABLE, None)
            else:
                os.environ[QUICK_VARIABLE] = saved_quick
            close_figures()
        return Outcome(output=printed.getvalue(), seconds=time.perf_counter() - start)

    def run_all(self, book: list[Chapter]) -> None:
        for chapter in book:
            if chapter.blocks:
                self.run_through(chapter, len(chapter.blocks) - 1)

    def write_outputs(self) -> Path:
        """outputs.json in ``out``: chapter -> one {output, skipped, seconds} per block."""
        path = self.out / "outputs.json"
        path.write_text(json.dumps({name: [vars(o) for o in outcomes]
                                    for name, outcomes in self.outcomes.items()}, indent=1),
                        encoding="utf-8")
        return path


def get_session() -> dict:
    """minidl's global switches: floatx, the backend, the state of its random generator."""
    import minidl as dl
    return {"floatx": dl.floatx(), "backend": dl.backend.current(),
            "random": dl.random.generator().bit_generator.state}


def set_session(session: dict | None) -> None:
    """Restore get_session()'s switches; None: as a new Python session has them (float32, numpy,
    the generator of seed 0)."""
    import minidl as dl
    dl.set_floatx(session["floatx"] if session else "float32")
    dl.backend.use(session["backend"] if session else "numpy")
    dl.random.seed(0)
    if session:
        dl.random.generator().bit_generator.state = session["random"]


def close_figures() -> None:
    """Close every matplotlib figure a block left open (they hold memory until closed)."""
    import sys
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def with_outputs(markdown: str, chapter: Chapter, outcomes: list[Outcome]) -> str:
    """The page's Markdown with each block's printed output (a ```text block) or the reason it was
    skipped inserted right after the block."""
    lines = markdown.splitlines()
    for block, outcome in reversed(list(zip(chapter.blocks, outcomes))):
        if outcome.skipped:
            insert = ["", f"*Not run when this page was built: {outcome.skipped}.*", ""]
        elif outcome.output.strip():
            insert = ["", "```text", *outcome.output.rstrip("\n").splitlines(), "```", ""]
        else:
            continue
        lines[block.last_line:block.last_line] = insert
    return "\n".join(lines) + "\n"


def without_missing_figures(markdown: str, figures: Path) -> str:
    """Image links to figures that were not drawn (their block was skipped) replaced by a note, so
    the page says what is missing instead of showing a broken image."""
    def replace(match: re.Match) -> str:
        if (figures / Path(match.group(1)).name).exists():
            return match.group(0)
        return f"*(Figure not drawn when this page was built: {match.group(1)}.)*"
    return FIGURE_LINK.sub(replace, markdown)


# --- the MkDocs hook (mkdocs.yml: hooks: [docs/book.py]) ----------------------------------------
_built: dict = {}


def on_files(files, config):
    """Run the book (quick when MINIDL_TUTORIAL_QUICK=1, else in full) and add its figures to the
    site as tutorial/figures/*."""
    from mkdocs.structure.files import File
    quick = os.environ.get(QUICK_VARIABLE) == "1"
    if BUILD.exists():
        shutil.rmtree(BUILD)   # a figure no block draws any more must not linger on the site
    runner = Runner(BUILD, quick=quick)
    book = chapters()
    runner.run_all(book)
    runner.write_outputs()
    _built.update(chapters={chapter.name: chapter for chapter in book}, outcomes=runner.outcomes)
    for figure in sorted((BUILD / "figures").glob("*")) if (BUILD / "figures").is_dir() else []:
        files.append(File.generated(config, f"tutorial/figures/{figure.name}", abs_src_path=str(figure)))
    return files


def on_page_markdown(markdown, page, config, files):
    source = page.file.src_uri
    if source.startswith("tutorial/") and source.endswith(".md"):
        name = Path(source).stem
        if name in _built.get("chapters", {}):
            markdown = with_outputs(markdown, _built["chapters"][name], _built["outcomes"].get(name, []))
            return without_missing_figures(markdown, BUILD / "figures")
    return markdown


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="Run every code block of the tutorial.")
    parser.add_argument("--quick", action="store_true", help="the test suite's short trainings")
    parser.add_argument("--out", type=Path, default=BUILD, help="where figures and outputs go")
    arguments = parser.parse_args()
    runner = Runner(arguments.out, quick=arguments.quick)
    everything = chapters()
    runner.run_all(everything)
    print(f"ran {sum(len(c.blocks) for c in everything)} blocks; outputs in {runner.write_outputs()}")
    for name, outcomes in runner.outcomes.items():
        print(f"  {name}: {sum(o.seconds for o in outcomes):.1f} s, "
              f"{sum(o.skipped is not None for o in outcomes)} skipped")
