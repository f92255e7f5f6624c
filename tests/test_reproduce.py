"""`rgflow reproduce`: configuration validation, caching and resumption."""

import json
import re

import pytest
from typer.testing import CliRunner

from rgflow.app.cli import app
from rgflow.app.reproduce import load_config, reproduce

runner = CliRunner()

SMALL = """
stages = ["free_theory"]
[free_theory]
nets = ["relu"]
widths = [2, 20]
n_nets = 600
hms_relu = false
"""


def test_default_profiles_validate():
    for profile in ("quick", "full"):
        cfg = load_config(None, profile)
        assert set(cfg["stages"]) >= {"free_theory"}
    assert load_config(None, "full")["free_theory"]["n_nets"] == 1_000_000


@pytest.mark.parametrize(
    "text, key",
    [("[free_theory]\nn_nets = -5\n", "free_theory.n_nets"),
     ("[free_theory]\nnets = ['tanhnet']\n", "free_theory.nets[0]"),
     ("[free_theory]\nwidths = [2, 0]\n", "free_theory.widths[1]"),
     ("[free_theory]\nbogus = 1\n", "free_theory.bogus"),
     ("[nope]\nx = 1\n", "nope"),
     ("stages = ['free_theory', 'nope']\n", "stages[1]")],
)
def test_bad_configuration_names_the_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"`{key}`".replace("[", r"\[").replace("]", r"\]")):
        load_config(path)
    r = runner.invoke(app, ["reproduce", "--config", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and key.split("[")[0] in r.output
    assert not (tmp_path / "o").exists()  # nothing ran


def test_second_run_reuses_cache(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(SMALL)
    cfg = load_config(path)
    out = tmp_path / "figs"
    first = reproduce(cfg, out, log=lambda *_: None, jobs=0)
    assert not first["free_theory"]["cached"]
    data = json.loads((out / "free_theory_d1.json").read_text())
    assert data["widths"] == [2, 20] and "slopes" in data
    assert (out / "free_theory_d1.png").exists() and (out / "free_theory_d1.pdf").exists()
    assert "relu" in (out / "summary.md").read_text()
    second = reproduce(cfg, out, log=lambda *_: None, jobs=0)
    assert second["free_theory"]["cached"]
    # a changed setting invalidates only that stage's cache
    cfg["free_theory"]["seed"] = 1
    third = reproduce(cfg, out, log=lambda *_: None, jobs=0)
    assert not third["free_theory"]["cached"]


TWO_NETS = """
stages = ["six_pt_prediction"]
[six_pt_prediction]
nets = ["erf", "gauss"]
source = "exact"
width = 5
"""


@pytest.mark.slow
def test_worker_processes_reproduce_the_in_process_run(tmp_path):
    """`jobs=2` (one forked process per task, six_pt_prediction split per net) writes the same bytes
    as the in-process run, reports progress per task, and the cache holds for both."""
    path = tmp_path / "c.toml"
    path.write_text(TWO_NETS)
    cfg = load_config(path)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    reproduce(cfg, serial, jobs=0, log=lambda *_: None)
    lines = []
    rep = reproduce(cfg, parallel, jobs=2, log=lines.append)
    assert not rep["six_pt_prediction"]["cached"]
    assert rep["six_pt_prediction"]["stems"] == ["six_pt_prediction_erf", "six_pt_prediction_gauss"]
    names = sorted(f.name for f in serial.glob("*.json"))
    assert names == sorted(f.name for f in parallel.glob("*.json")) and len(names) == 2
    for name in names:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
    assert (serial / "summary.md").read_text() == (parallel / "summary.md").read_text()
    assert any(re.search(r"^    six_pt_prediction\[gauss\] .*: 1/1$", line) for line in lines)
    again = reproduce(cfg, parallel, jobs=2, log=lambda *_: None)
    assert again["six_pt_prediction"]["cached"]


def test_failed_worker_task_names_the_stage_and_writes_no_marker(tmp_path):
    path = tmp_path / "c.toml"
    # valid configuration, but a deep Gauss-net is refused when the study runs
    path.write_text('stages = ["rg_lambda"]\n[rg_lambda]\nnets = ["gauss", "erf"]\ndepth = 2\n')
    cfg = load_config(path)
    with pytest.raises(ValueError, match=r"stage `rg_lambda` failed: .*deep Gauss-net"):
        reproduce(cfg, tmp_path / "o", jobs=2, log=lambda *_: None)
    assert not list((tmp_path / "o").glob(".cache/rg_lambda-*.json"))


def test_jobs_is_checked(tmp_path):
    cfg = load_config(None)
    with pytest.raises(ValueError, match="`jobs`"):
        reproduce(cfg, tmp_path, jobs=-1)


def test_progress_reports_every_step():
    from rgflow.studies._progress import Bar, steps

    seen = []
    assert list(steps([3, 4, 5], "loop", lambda *a: seen.append(a))) == [3, 4, 5]
    assert seen == [("loop", 1, 3), ("loop", 2, 3), ("loop", 3, 3)]
    with Bar(2, "silent", False) as bar:
        bar.update(2)
    assert bar.done == 2
