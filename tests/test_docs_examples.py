"""The runnable examples of the docs run: every ```python run``` block of docs/extending/*.md
docs/checkpoint-format.md, docs/data.md and docs/byo.md (the bring-your-own-model walk-through).

The blocks of one page run in order in one namespace (a fresh module), in a temporary
current folder, with the test's own workspace ($MEMBENCH_HOME) and cache; what a page
registers at runtime is forgotten afterwards. Blocks fenced as plain ```python``` (or
```toml```, ```bash```) are shown, not run.
"""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted((DOCS / "extending").glob("*.md")) + [DOCS / "checkpoint-format.md", DOCS / "data.md",
                                                     DOCS / "byo.md"]
RUN_BLOCK = re.compile(r"^```python run[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def run_blocks(page: Path) -> list[str]:
    return RUN_BLOCK.findall(page.read_text())


def test_every_extending_page_has_a_runnable_example():
    names = {p.name for p in (DOCS / "extending").glob("*.md")}
    assert {"detector.md", "distiller.md", "model.md", "dataset.md"} <= names
    for page in PAGES:
        assert run_blocks(page), f"{page.relative_to(REPO)} has no ```python run``` block"


@pytest.fixture
def fresh_registries(monkeypatch):
    """Runtime registrations (``registry(kind).add``) of a page are undone after it."""
    from membench.core.registry import KINDS, registry

    for kind in KINDS:
        reg = registry(kind)
        monkeypatch.setattr(reg, "_added", dict(reg._added))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page, tmp_path, monkeypatch, fresh_registries):
    monkeypatch.chdir(tmp_path)
    name = "docs_example_" + re.sub(r"\W", "_", page.stem)
    module = types.ModuleType(name)  # a real module: dataclasses and pickling look classes up there
    monkeypatch.setitem(sys.modules, name, module)
    for i, block in enumerate(run_blocks(page), 1):
        code = compile(block, f"{page.relative_to(REPO)} (block {i})", "exec")
        exec(code, module.__dict__)
