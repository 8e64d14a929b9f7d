"""Every ```python block of docs/tutorial/*.md runs, in order, one namespace a chapter (docs/book.py).

One test per block, named chapter-line, so a failing block says where it is; a block whose
comment says it needs keras, torch, librosa, the FSDD recordings, CuPy or Graphviz skips with that
reason when it is missing. Trainings run their quick preset (MINIDL_TUTORIAL_QUICK=1); the figures
go to a temporary folder. The runner itself is checked on small made-up chapters below.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_book():
    spec = importlib.util.spec_from_file_location("minidl_book", ROOT / "docs" / "book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


book = load_book()
CHAPTERS = book.chapters()
BLOCKS = [(chapter, block) for chapter in CHAPTERS for block in chapter.blocks]


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return book.Runner(tmp_path_factory.mktemp("book"), quick=True)


@pytest.mark.parametrize("chapter, block", BLOCKS,
                         ids=[f"{chapter.name}:{block.first_line}" for chapter, block in BLOCKS])
def test_block_runs(runner, chapter, block):
    outcome = runner.run_through(chapter, block.index)
    if outcome.skipped:
        pytest.skip(f"{chapter.path.name}:{block.first_line} {outcome.skipped}")


def test_every_chapter_has_code_and_the_figures_it_shows_are_drawn_by_it():
    """A figure the page links must be one its own blocks save (never a committed image)."""
    assert len(CHAPTERS) >= 8
    for chapter in CHAPTERS:
        if chapter.name == "index":
            continue
        assert chapter.blocks, f"{chapter.path.name} has no python block"
        text = chapter.path.read_text(encoding="utf-8")
        code = "".join(block.source for block in chapter.blocks)
        for figure in book.figure_links(text):
            assert f'"{figure}"' in code, f"{chapter.path.name} shows {figure}, which no block saves"


def test_no_image_is_committed_under_docs():
    images = [p for p in (ROOT / "docs").rglob("*") if p.suffix.lower() in (".png", ".svg", ".jpg", ".gif")]
    assert images == []


# --- the runner on made-up chapters -----------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "99-made-up.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_blocks_share_a_namespace_and_print_into_the_outcome(tmp_path):
    chapter = book.parse_chapter(write(tmp_path, "text\n```python\nx = 2\n```\n\n```python\nprint(x * 21)\n```\n"))
    runner = book.Runner(tmp_path / "out", quick=True)
    assert [b.first_line for b in chapter.blocks] == [2, 6]
    assert runner.run_through(chapter, 1).output == "42\n"


def test_a_failing_block_fails_with_the_markdown_line_and_stops_its_chapter(tmp_path):
    chapter = book.parse_chapter(write(tmp_path, "# t\n\n```python\na = 1\nraise ValueError('boom')\n```\n"
                                                 "```python\nprint(a)\n```\n"))
    runner = book.Runner(tmp_path / "out", quick=True)
    with pytest.raises(ValueError, match="boom") as failure:
        runner.run_through(chapter, 0)
    assert failure.traceback[-1].lineno + 1 == 5          # pytest's line numbers start at 0
    with pytest.raises(RuntimeError, match="the block at line 3 failed"):
        runner.run_through(chapter, 1)


def test_a_need_that_is_missing_skips_only_the_block_below_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    chapter = book.parse_chapter(write(tmp_path, "<!-- book: needs fsdd -->\n```python\nraise SystemExit\n```\n"
                                                 "\n```python\nprint('ran')\n```\n"))
    runner = book.Runner(tmp_path / "out", quick=True)
    assert [b.needs for b in chapter.blocks] == [("fsdd",), ()]
    assert "MINIDL_DATA" in runner.run_through(chapter, 0).skipped
    assert runner.run_through(chapter, 1).output == "ran\n"


def test_the_quick_switch_is_set_while_blocks_run_and_restored_after(tmp_path, monkeypatch):
    monkeypatch.delenv(book.QUICK_VARIABLE, raising=False)
    chapter = book.parse_chapter(write(tmp_path, "```python\nimport os\nprint(os.environ['MINIDL_TUTORIAL_QUICK'])\n```\n"))
    assert book.Runner(tmp_path / "a", quick=True).run_through(chapter, 0).output == "1\n"
    assert book.Runner(tmp_path / "b", quick=False).run_through(chapter, 0).output == "0\n"
    assert book.QUICK_VARIABLE not in __import__("os").environ


@pytest.mark.parametrize("text, message", [
    ("<!-- book: needs wifi -->\n```python\npass\n```\n", "unknown need 'wifi'"),
    ("<!-- book: skip -->\n```python\npass\n```\n", "needs WHAT"),
    ("```python\npass\n", "never closed"),
])
def test_a_malformed_chapter_is_refused_with_its_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        book.parse_chapter(write(tmp_path, text))


def test_outputs_and_skip_reasons_go_right_after_their_block(tmp_path):
    text = "a\n```python\nprint(1)\n```\nb\n```python\npass\n```\nc\n"
    chapter = book.parse_chapter(write(tmp_path, text))
    page = book.with_outputs(text, chapter, [book.Outcome(output="1\n"), book.Outcome(skipped="needs keras")])
    assert page == "a\n```python\nprint(1)\n```\n\n```text\n1\n```\n\nb\n```python\npass\n```\n\n" \
                   "*Not run when this page was built: needs keras.*\n\nc\n"


def test_a_figure_its_skipped_block_did_not_draw_becomes_a_note(tmp_path):
    (tmp_path / "drawn.png").write_bytes(b"")
    page = book.without_missing_figures("![a](figures/drawn.png)\n![b](figures/skipped.png)\n", tmp_path)
    assert page == "![a](figures/drawn.png)\n*(Figure not drawn when this page was built: figures/skipped.png.)*\n"


def test_a_chapter_keeps_its_floatx_and_random_state_whatever_runs_between_its_blocks(tmp_path):
    import minidl as dl
    chapter = book.parse_chapter(write(tmp_path, "```python\nimport minidl as dl\ndl.set_floatx('float64')\n"
                                                 "dl.random.seed(5)\n```\n```python\n"
                                                 "print(dl.floatx(), dl.random.generator().integers(10**9))\n```\n"))
    runner = book.Runner(tmp_path / "out", quick=True)
    runner.run_through(chapter, 0)
    dl.set_floatx("float32")
    dl.random.seed(1234)                  # what tests/conftest.py does before every test
    expected = np.random.default_rng(5).integers(10**9)
    assert runner.run_through(chapter, 1).output == f"float64 {expected}\n"
