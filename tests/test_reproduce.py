"""`rgflow reproduce`: configuration validation, caching and resumption."""

import json

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
    first = reproduce(cfg, out, log=lambda *_: None)
    assert not first["free_theory"]["cached"]
    data = json.loads((out / "free_theory_d1.json").read_text())
    assert data["widths"] == [2, 20] and "slopes" in data
    assert (out / "free_theory_d1.png").exists() and (out / "free_theory_d1.pdf").exists()
    assert "relu" in (out / "summary.md").read_text()
    second = reproduce(cfg, out, log=lambda *_: None)
    assert second["free_theory"]["cached"]
    # a changed setting invalidates only that stage's cache
    cfg["free_theory"]["seed"] = 1
    third = reproduce(cfg, out, log=lambda *_: None)
    assert not third["free_theory"]["cached"]
