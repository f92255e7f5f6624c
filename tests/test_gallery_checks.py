"""The checks behind the gallery's summary rows can fail (issue 25): each test breaks the input of
one rule and watches its row stop being `ok`."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

FIG = Path(__file__).resolve().parent.parent / "figures"


def _load(stem):
    return json.loads((FIG / f"{stem}.json").read_text())


def test_width_scaling_power_law_chi2_is_two_sided():
    """A power-law χ²/dof far below its p = 0.001 lower bound (overstated errors) fails the row,
    as one above the upper bound does."""
    from rgflow.studies import width_scaling as ws

    d = _load("width_scaling_relu_d1")
    row = [r for r in ws.summary({}, {"x": d}) if "kappa(N) exponent (Monte Carlo" in r[0]][0]
    assert row[3] == "ok" and "two-sided" in row[4]
    for chi in (1e-7, 50.0):
        bad = copy.deepcopy(d)
        bad["mc_kappa_exponent_chi2_dof"] = chi
        row = [r for r in ws.summary({}, {"x": bad}) if "kappa(N) exponent (Monte" in r[0]][0]
        assert row[3].startswith("FAILED: χ²/dof")
    assert ws.chi2_min(2) < 2e-3 < 1 < ws.chi2_max(2)


def test_neff_flags_a_tail_dominated_jackknife():
    """n_eff ≈ B/3 for Gaussian blocks, far below the 0.1 % quantile when one block carries the
    variance."""
    from rgflow.studies.connected_six_pt import _n_eff, neff_min

    lim = neff_min(64)
    assert 9.5 < lim < 11.5
    rng = np.random.default_rng(1)
    tau, var = np.ones(3), np.ones(3)
    gauss = rng.standard_normal((64, 3))
    assert _n_eff(gauss, tau, var) > lim
    heavy = gauss.copy()
    heavy[7] += 40.0  # one block holds the error bar
    assert _n_eff(heavy, tau, var) < 2


def test_connected_six_z_withheld_only_where_tail_dominated():
    """ReLU σ_b = 1: the N = 2 z = −4.6 is withheld (n_eff 6.3 < 10.6); with a Gaussian n_eff
    the same z fails the row."""
    from rgflow.studies import connected_six_pt as c6

    d = _load("connected_six_pt_relu_d1")
    row = c6.summary({}, {"x": d})[0]
    assert "withheld" in row[1] and not row[3].startswith("FAILED: Monte Carlo vs exact")
    bad = copy.deepcopy(d)
    for o in ("4", "6"):
        bad["orders"][o]["mc_neff"] = [30.0] * len(bad["mc_widths"])
    row = c6.summary({}, {"x": bad})[0]
    assert row[3].startswith("FAILED: Monte Carlo vs exact max |z| = 4.6")


def test_six_pt_unresolved_correction_is_not_ok():
    """Erf N = 5: the O(λ) correction at 1.1σ fails the 5σ rule (not `ok`), and the caption says
    so; with 10× smaller errors the same row passes."""
    from rgflow.studies import six_pt_prediction as sp

    d = _load("six_pt_prediction_erf")
    row = sp.summary({}, {"x": d})[0]
    assert row[3].startswith("FAILED: the O(λ) correction is not resolved")
    assert "does NOT resolve the O(λ) correction" in d["caption"]
    good = copy.deepcopy(d)
    for k in ("correction_err", "lambda_ratio_err"):
        good["mc"][k] = (np.asarray(good["mc"][k]) / 10).tolist()
    good["mc"]["correction"] = (np.asarray(d["mc"]["correction"]) * 0 + 0.0081).tolist()
    good["mc"]["lambda_ratio"] = d["lambda_ratio"]
    good["mc"]["gp_ratio"] = d["gp_ratio"][0]
    assert sp.summary({}, {"x": good})[0][3] == "ok"


@pytest.mark.slow
def test_free_theory_rao_blackwell_resolves_erf():
    """At 4,000 networks per width plain Monte Carlo leaves Erf's δ_4 at the noise floor; the
    Rao–Blackwellised run (own run per width) resolves δ_4, δ_6 and agrees with the exact δ_n."""
    from rgflow.studies.free_theory import RESOLVED, free_theory

    kw = dict(widths=[2, 5], n_nets=4000, seed=3)
    rb = free_theory(["erf"], rao_blackwell=["erf"], **kw)["nets"]["erf"]
    plain = free_theory(["erf"], **kw)["nets"]["erf"]
    assert all(z is None for z in plain["orders"]["4"]["z"])  # unresolved
    for n in ("4", "6"):
        o = rb["orders"][n]
        assert all(s > RESOLVED * b for s, b in zip(o["signal"], o["background"], strict=True))
        assert all(z is not None and abs(z) < 4 for z in o["z"])
    assert rb["orders"]["2"]["signal"] == [None, None] and rb["rao_blackwell"]
