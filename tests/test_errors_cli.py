"""Issue 13, classes 5 and 7: the CLI and the TOML configuration.

Every bad option, output path or file is a one-line `Error: ...` with a non-zero exit code
(2: bad input, 1: I/O or runtime failure), never a traceback, and nothing is written; every TOML
value is type-checked before any stage runs.
"""

import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from rgflow.app.cli import app
from rgflow.app.reproduce import load_config

runner = CliRunner()
MEASURE = ["measure", "--width", "3", "--n-nets", "64", "--n-blocks", "2", "--no-progress"]
EXACT = ["exact", "--width", "3", "--orders", "2,4"]


def _cases(tmp):
    a_file = tmp / "plain.txt"
    a_file.write_text("x")
    garbage = tmp / "garbage.npz"
    garbage.write_bytes(b"not an npz")
    return {
        # (arguments, expected exit code, text in the message, files that must not appear)
        "out is a directory": (EXACT + ["--out", str(tmp)], 1, "is a directory", []),
        "out ends in .json": (EXACT + ["--out", str(tmp / "o.json")], 2, "sidecar",
                              [tmp / "o.json"]),
        "out under a file": (EXACT + ["--out", str(a_file / "o.npz")], 1, "not a directory", []),
        "seed negative": (MEASURE + ["--out", str(tmp / "m.npz"), "--seed", "-1"], 2, "seed",
                          [tmp / "m.npz"]),
        "seed too large": (MEASURE + ["--out", str(tmp / "m.npz"), "--seed", str(2**70)], 2,
                           "seed", [tmp / "m.npz"]),
        "checkpoint is the output": (MEASURE + ["--out", str(tmp / "m.npz"), "--checkpoint",
                                                str(tmp / "m.npz")], 2, "checkpoint",
                                     [tmp / "m.npz"]),
        "checkpoint is the sidecar": (MEASURE + ["--out", str(tmp / "m.npz"), "--checkpoint",
                                                 str(tmp / "m.json")], 2, "checkpoint",
                                      [tmp / "m.npz"]),
        "foreign checkpoint": (MEASURE + ["--out", str(tmp / "m.npz"), "--checkpoint",
                                          str(garbage)], 2, "not a readable rgflow checkpoint",
                               [tmp / "m.npz", tmp / "m.json"]),
        "exact overflows": (["exact", "--net", "gauss", "--width", "3", "--inputs", "40",
                             "--out", str(tmp / "g.npz")], 2, "not finite",
                            [tmp / "g.npz", tmp / "g.json"]),
        "bad inputs": (EXACT + ["--inputs", "0.1;nan", "--out", str(tmp / "n.npz")], 2,
                       "NaN", [tmp / "n.npz"]),
        "bad order": (EXACT + ["--orders", "2,5", "--out", str(tmp / "b.npz")], 2, "order",
                      [tmp / "b.npz"]),
        "bad net": (EXACT + ["--net", "nope", "--out", str(tmp / "c.npz")], 2, "net",
                    [tmp / "c.npz"]),
    }


CASE_NAMES = [
    "out is a directory", "out ends in .json", "out under a file", "seed negative",
    "seed too large", "checkpoint is the output", "checkpoint is the sidecar",
    "foreign checkpoint", "exact overflows", "bad inputs", "bad order", "bad net"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path, case):
    args, code, text, absent = _cases(tmp_path)[case]
    r = runner.invoke(app, args)
    out = r.output
    assert r.exit_code == code, out
    assert "Traceback" not in out
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], out
    for path in absent:
        assert not path.exists(), path
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_writes_data_and_sidecar_to_different_files(tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, EXACT + ["--out", str(out)])
    assert r.exit_code == 0, r.output
    data = np.load(out)
    assert np.all(np.isfinite(data["connected_4"]))
    assert (tmp_path / "o.json").read_text().startswith("{")


# ------------------------------------------------------------------------ class 7: TOML ---

TOML_CASES = {
    "bool for int": ("[free_theory]\nn_nets = true\n", "free_theory.n_nets"),
    "float for int": ("[free_theory]\nn_nets = 1000.0\n", "free_theory.n_nets"),
    "float for int choice": ("[width_scaling]\nd_in = 1.0\n", "width_scaling.d_in"),
    "bool for int choice": ("[width_scaling]\nd_in = true\n", "width_scaling.d_in"),
    "float in int choice list": ("[rg_lambda]\nd_ins = [1, 2.0]\n", "rg_lambda.d_ins[1]"),
    "float in int list": ("[width_scaling]\nwidths = [2, 3.5]\n", "width_scaling.widths[1]"),
    "inf float": ("[frg_flow]\nsigma_ws = [1.0, inf]\n", "frg_flow.sigma_ws[1]"),
    "nan float": ("[frg_flow]\nsigma_ws = [nan]\n", "frg_flow.sigma_ws[0]"),
    "negative seed": ("[relevance]\nseed = -1\n", "relevance.seed"),
    "too many networks": ("[relevance]\nn_nets = 5000000000\n", "relevance.n_nets"),
    "string for bool": ("[local_vs_nonlocal]\nbreaking = \"yes\"\n", "local_vs_nonlocal.breaking"),
    "unknown key": ("[relevance]\nn_net = 100\n", "relevance.n_net"),
    "unknown stage": ("[nope]\nx = 1\n", "nope"),
    "table expected": ("relevance = 3\n", "relevance"),
}


@pytest.mark.parametrize("case", list(TOML_CASES))
def test_toml_values_are_type_checked_before_any_stage(tmp_path, case):
    text, key = TOML_CASES[case]
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"`{key}`")):
        load_config(path)
    # the CLI: one line, exit 2, nothing written
    out = tmp_path / "figs"
    r = runner.invoke(app, ["reproduce", "--config", str(path), "--out", str(out)])
    assert r.exit_code == 2 and r.output.startswith("Error: "), r.output
    assert not out.exists()


def test_valid_toml_still_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("stages = [\"relevance\"]\n[relevance]\nn_nets = 1000\nseed = 3\n")
    cfg = load_config(path)
    assert cfg["relevance"]["n_nets"] == 1000 and cfg["stages"] == ["relevance"]
    assert not math.isnan(float(cfg["relevance"]["seed"]))
