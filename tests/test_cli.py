"""The `rgflow` CLI writes .npz + JSON sidecars atomically and rejects bad options."""

import json

import numpy as np
from typer.testing import CliRunner

import rgflow
from rgflow.app.cli import app

runner = CliRunner()


def test_measure_and_exact_commands(tmp_path):
    out = tmp_path / "m.npz"
    r = runner.invoke(app, ["measure", "--out", str(out), "--net", "relu", "--width", "4",
                            "--n-nets", "500", "--n-blocks", "4", "--seed", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    data = np.load(out)
    assert data["connected_6"].shape == (6,) * 6
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["seed"] == 3 and meta["config"]["sigma_b"] == 0.0 and "jax" in meta["versions"]
    assert not list(tmp_path.glob("*.tmp"))

    out2 = tmp_path / "e.npz"
    r = runner.invoke(app, ["exact", "--out", str(out2), "--net", "gauss", "--width", "10",
                            "--orders", "2,4", "--inputs", "0.0;0.01;0.02"])
    assert r.exit_code == 0, r.output
    e = np.load(out2)
    net = rgflow.GaussNet(width=10)
    xs = np.array([[0.0], [0.01], [0.02]])
    np.testing.assert_allclose(e["connected_4"], rgflow.exact_connected(net, xs, 4))


def test_bad_options(tmp_path):
    out = tmp_path / "x.npz"
    r = runner.invoke(app, ["measure", "--out", str(out), "--width", "3", "--net", "nope"])
    assert r.exit_code != 0 and "net" in r.output
    r = runner.invoke(app, ["exact", "--out", str(out), "--width", "3", "--orders", "2,5"])
    assert r.exit_code != 0 and "order" in r.output
    assert not out.exists()
