"""The layers of rgflow (docs/layers.md) and the physics.md citations."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted((ROOT / "rgflow").glob("_*.py")) + [ROOT / "rgflow" / "__init__.py"]
ALL_MODULES = sorted((ROOT / "rgflow").rglob("*.py"))


def _imports(path: Path):
    """(module, level, names) of every import statement in `path`."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, 0, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level, tuple(a.name for a in node.names)


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_never_imports_studies_app_or_matplotlib(path):
    for module, level, names in _imports(path):
        absolute = module if level == 0 else f"rgflow.{module}" if level == 1 else module
        assert not absolute.startswith(("matplotlib", "rgflow.studies", "rgflow.app")), (path, module)
        if level == 1:
            assert not (module or "").startswith(("studies", "app")), (path, module)
            assert not (module == "" and set(names) & {"studies", "app"}), (path, names)


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_the_package_init(path):
    """Library code imports the private modules it needs, never `rgflow` itself."""
    if path.name == "__init__.py" and path.parent.name == "rgflow":
        return
    for module, level, names in _imports(path):
        assert module != "rgflow", (path, module)
        # `from . import x` / `from .. import x` reach a package __init__
        if module == "" and level >= 1:
            pkg = path.parent if level == 1 else path.parents[level - 1]
            assert pkg.name != "rgflow" or all((pkg / f"{n}").is_dir() for n in names), (path, names)


def test_importing_core_loads_no_study_and_no_matplotlib():
    code = ("import sys, rgflow; "
            "bad = [m for m in sys.modules if m.startswith(('matplotlib', 'rgflow.studies', "
            "'rgflow.app'))]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_study_has_the_interface():
    from rgflow.studies import STUDIES
    from rgflow.studies._config import validate

    assert len(STUDIES) >= 8
    for name, study in STUDIES.items():
        for attr in ("TITLE", "SCHEMA", "DEFAULTS", "run", "plot", "summary"):
            assert hasattr(study, attr), (name, attr)
        for profile in ("quick", "full"):
            validate(study.SCHEMA, study.DEFAULTS[profile], prefix=f"{name}.")
        script = ROOT / "scripts" / f"{name}.py"
        assert script.exists(), script


def _physics_sections() -> set[str]:
    text = (ROOT / "docs" / "physics.md").read_text()
    return set(re.findall(r"^#+ §?(\d+)\.", text, flags=re.M))


def test_physics_md_has_no_unwritten_sections():
    text = (ROOT / "docs" / "physics.md").read_text()
    assert "(to be written)" not in text


def test_every_physics_citation_resolves():
    sections = _physics_sections()
    assert sections >= {str(i) for i in range(1, 12)}
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    cited = []
    for f in files:
        if not f.endswith((".py", ".md", ".toml", ".txt")) or f.startswith("figures/"):
            continue
        text = (ROOT / f).read_text(errors="replace")
        for m in re.finditer(r"physics\.md §\s*(\d+)((?:\s*[,–-]\s*§?\s*\d+)*)", text):
            nums = [m.group(1)] + re.findall(r"\d+", m.group(2))
            cited += [(f, n) for n in nums]
    assert cited, "no citations found"
    missing = sorted({(f, n) for f, n in cited if n not in sections})
    assert not missing, missing


_HELP_DRIVER = """
import contextlib, io, runpy, sys
bad = []
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code or 0
    if code != 0 or "usage" not in buf.getvalue().lower():
        bad.append((path, code, buf.getvalue()[-500:]))
print(repr(bad))
"""


def test_scripts_help(tmp_path):
    """Every script's `--help` works (all scripts in one fresh interpreter: one import of jax)."""
    scripts = sorted(str(s) for s in (ROOT / "scripts").glob("*.py"))
    assert len(scripts) >= 11
    r = subprocess.run([sys.executable, "-c", _HELP_DRIVER, *scripts], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-3000:]


@pytest.mark.slow
def test_readme_tour_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## A five-minute tour\n\n```python\n(.*?)```", text, re.S).group(1)
    script = tmp_path / "tour.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
