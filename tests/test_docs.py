"""The documentation site (mkdocs.yml, docs/, examples/): structure checks in the default suite,
every example executed in the slow one. `make docs` builds the site itself (mkdocs --strict)."""

import ast
import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rgflow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
MKDOCS = ROOT / "mkdocs.yml"


def _nav_targets() -> list[str]:
    """The files named in the `nav:` block of mkdocs.yml (read without a YAML parser: the docs
    extra is not installed by the default suite)."""
    text = MKDOCS.read_text()
    nav = text[text.index("\nnav:") :]
    return re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w./-]+\.(?:md|py))\s*$", nav, flags=re.M)


def test_examples_exist():
    assert len(EXAMPLES) >= 5, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_jupytext_percent_script(path):
    """Each example parses, opens with a Markdown cell holding its `# Title`, and has code cells."""
    text = path.read_text()
    ast.parse(text, filename=str(path))
    cells = re.split(r"^# %%", text, flags=re.M)[1:]
    assert cells, f"{path.name}: no `# %%` cells (jupytext percent format)"
    assert cells[0].startswith(" [markdown]"), f"{path.name}: the first cell must be Markdown"
    assert re.search(r"^# # \S", cells[0], flags=re.M), f"{path.name}: no `# # Title` heading"
    code = [c for c in cells if not c.startswith(" [markdown]")]
    assert any("rgflow." in c for c in code), f"{path.name}: no rgflow call"


def test_nav_lists_every_page_and_example_and_each_exists():
    targets = _nav_targets()
    assert len(targets) == len(set(targets)), "a page is listed twice in mkdocs.yml"
    for t in targets:
        assert (DOCS / t).is_file(), f"mkdocs.yml nav: {t} does not exist under docs/"
    listed = set(targets)
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
             if "examples" not in p.relative_to(DOCS).parts}
    assert pages <= listed, f"pages missing from the mkdocs.yml nav: {sorted(pages - listed)}"
    examples = {f"examples/{p.name}" for p in EXAMPLES}
    assert examples <= listed, f"examples missing from the mkdocs.yml nav: {sorted(examples - listed)}"
    for required in ("index.md", "tasks.md", "physics.md", "benchmarks.md", "layers.md"):
        assert required in listed, required
    assert (DOCS / "examples").is_symlink() and (DOCS / "examples").resolve() == ROOT / "examples"


def _public_names() -> set[str]:
    return {n for n in dir(rgflow)
            if not n.startswith("_") and not inspect.ismodule(getattr(rgflow, n))}


def test_every_public_name_has_an_api_entry():
    """docs/api/*.md hold one `::: rgflow.<name>` per public name (mkdocstrings renders its
    docstring; `mkdocs build --strict` fails on a name it cannot collect)."""
    entries: dict[str, list[str]] = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for name in re.findall(r"^::: rgflow\.(\w+)\s*$", page.read_text(), flags=re.M):
            entries.setdefault(name, []).append(page.name)
    public = _public_names()
    assert not public - set(entries), f"public names without an API entry: {sorted(public - set(entries))}"
    assert not set(entries) - public, f"API entries of no public name: {sorted(set(entries) - public)}"
    twice = {n: p for n, p in entries.items() if len(p) > 1}
    assert not twice, f"documented twice: {twice}"


def test_task_page_links_resolve_to_public_names():
    text = (DOCS / "tasks.md").read_text()
    refs = re.findall(r"\]\[rgflow\.(\w+)\]", text)
    assert len(refs) >= 30
    bad = sorted(set(refs) - _public_names())
    assert not bad, f"tasks.md links to names that are not public: {bad}"


def test_no_reference_to_the_retired_api_generator():
    for path in [ROOT / "README.md", ROOT / "Makefile", *DOCS.rglob("*.md"), *ROOT.glob("tests/*.py")]:
        if path.name == "test_docs.py":
            continue
        text = path.read_text()
        assert "api_docs.py" not in text and "docs/api.md" not in text, path


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, tmp_path):
    """Execute the example as a script (the same code the docs build runs cell by cell)."""
    env = dict(os.environ, MPLBACKEND="Agg")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, f"{path.name} failed after {wall:.0f} s:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    print(f"{path.name}: {wall:.1f} s")
