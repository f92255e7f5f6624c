"""The relevance, rg_lambda and frg_flow studies: failures reported with their numbers, the
direction convention in every JSON and figure, no relevance classes, the 1/N hierarchy, the FRG
link labelled for what it is (physics.md §7; issue 14 items 4–5)."""

import json

import numpy as np
import pytest

from rgflow.studies import frg_flow, relevance, rg_lambda

CUTS = (7.0, 100.0, 1e4, 3e4, 6e4, 1e5)


@pytest.fixture(scope="module")
def erf_d1():
    return rg_lambda.rg_lambda("erf", 1, cutoffs=CUTS, n_dense=4)


@pytest.mark.slow  # ~13-25 s; `make test-slow`
def test_rg_lambda_erf_d1_reported_as_failure(erf_d1, tmp_path):
    """One local λ does not describe Erf d_in = 1 (least-squares residual ~0.9 of ΔG4): no
    exponent is printed, the failure and its number are, in JSON, summary row and figure."""
    r = erf_d1
    assert "removes the volume (box) cutoff" in r["direction"]
    ex = r["exponents"]
    for key in ("lambda_mean_all", "lambda_mean_window", "lambda_ls_window"):
        e = ex[key]
        assert e["status"] == "failed" and e["theta"] is None and e["reasons"]
    res = ex["lambda_ls_window"]["residual"]
    assert 0.5 < res < 1.5
    json.dumps(r)
    (row,) = rg_lambda.summary({}, {"x": r})
    assert "no exponent" in row[1] and f"{res:.2g}" in row[1] and "box cutoff" in row[0]
    assert not any("|" in cell for cell in row)  # Markdown table cells
    files = rg_lambda.plot_rg_lambda(r, tmp_path / "f")
    assert files[0].stat().st_size > 10_000


@pytest.mark.slow
def test_rg_lambda_relu_exponent_printed():
    r = rg_lambda.rg_lambda("relu", 1, cutoffs=CUTS, n_dense=4)
    e = r["exponents"]["lambda_ls_window"]
    assert e["status"] == "ok" and e["theta"] == pytest.approx(-5.0, abs=1e-9)
    assert e["residual"] < 1e-10 and e["flow_gap"] < 1e-6
    (row,) = rg_lambda.summary({}, {"x": r})
    assert "no exponent" not in row[1] and "-5.000" in row[1]


def _fake_relevance(status_kappa="failed"):
    """A relevance result as `relevance_study` writes it (small, for the summary/plot code)."""
    cut = np.geomspace(7, 1e5, 6)
    g = np.stack([cut**-6, cut**-8, cut**-8, cut**-8], axis=1)
    ents = []
    for name, th in zip(relevance.TEXT_LABELS, (-6.0, -8.0, -8.0, -8.0)):
        ok = not (name == "κ" and status_kappa == "failed")
        ents.append({"name": name, "status": "ok" if ok else "failed", "theta": th if ok else None,
                     "theta_stderr": 0.0 if ok else None, "predicted_theta": th, "dimension": -th,
                     "residual": 0.002 if ok else 0.88, "flow_gap": 5e-9, "drift": 0.0,
                     "reasons": [] if ok else ["fit residual 0.88 of the target > 0.1"],
                     "delta_theta": None, "delta_theta_stderr": None})
    widths = [20, 200, 2000]
    hent = [{"name": e["name"], "k": 6 if e["name"] == "κ" else 4,
             "predicted_width_exponent": -2.0 if e["name"] == "κ" else -1.0,
             "status": e["status"], "residual": e["residual"], "reasons": e["reasons"],
             "width_exponent": None if e["status"] != "ok" else -1.0} for e in ents]
    return {"net": "relu", "d_in": 2, "width": 20, "source": "exact", "direction": "d",
            "cutoffs": cut.tolist(), "couplings": g.tolist(), "couplings_stderr": None,
            "flow_couplings": g.tolist(), "flow_kind": "homogeneous", "flow_gap": [5e-9] * 4,
            "exponents": {"window": [1e4, 1e5], "max_residual": 0.1, "max_flow_gap": 1e-3,
                          "max_drift": 0.05, "couplings": ents},
            "hierarchy": {"widths": widths,
                          "couplings": [(g[-1:] / n).tolist() for n in widths],
                          "entries": hent,
                          "correlator_norms": {"4": [1, 0.1, 0.01], "6": [1, 0.01, 1e-4]},
                          "correlator_width_exponents": {"4": -1.0, "6": -2.0}}}


def test_relevance_summary_flags_failures_without_classes(tmp_path):
    r = _fake_relevance()
    rows = relevance.summary({}, {"relevance_relu_d2": r})
    text = " ".join(" ".join(row) for row in rows)
    assert "κ FAILED (fit residual 0.88" in text
    assert "relevant" not in text and "marginal" not in text
    assert "box cutoff" in text and "1/N hierarchy" in text and "|" not in text
    files = relevance.plot_relevance(r, tmp_path / "r")
    assert files[0].stat().st_size > 10_000


def test_frg_link_labelled_and_no_regular_flow_claim(tmp_path):
    """The Gauss-net → LPA initial data are labelled as UV data at an arbitrary scale with the p²
    truncation of K̃⁻¹ and a flow that does not keep G2 = K; no "smallest width with a regular
    LPA flow" claim (JSON, summary, figure code)."""
    link = frg_flow.network_link(1.0)
    text = json.dumps(link).lower()
    for phrase in ("full correlators", "arbitrary", "p^2", "g2 = k"):
        assert phrase in text, phrase
    assert link["preserves_G2_equal_K"] is False and link["k0_fixed_by_network"] is False
    flow = {"t": [0.0, -1.0], "u2": [0.5, 2.0], "u4": [-0.05, -0.5]}
    res = {"d": 3.0, "width": 10_000, "k0": 1.0, "direction": frg_flow.DIRECTION_LPA,
           "network_link": link, "nu": {"2": 0.5, "3": 0.7}, "omega": {"2": 0.3, "3": 1.0},
           "nu_zero": {"2": 0.54, "3": 0.59}, "grid": {"nu": 0.6496, "omega": 0.6557},
           "network": [{"sigma_w": 1.0, "flow": flow,
                        "initial": {"u2": 0.5, "u4": -0.05, "u6": 0.001}}]}
    rows = frg_flow.summary({}, {"frg_flow": res})
    joined = " ".join(" ".join(r) for r in rows).lower()
    assert "smallest width" not in joined and "arbitrary" in joined and "g2 = k" in joined
    assert frg_flow.plot_frg(res, tmp_path / "frg")[0].stat().st_size > 10_000
    import inspect

    src = inspect.getsource(frg_flow)
    assert "flow_regular" not in src and "smallest width" not in src
