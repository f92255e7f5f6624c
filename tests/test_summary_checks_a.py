"""Summary rows of the gallery studies: a row is `ok` only when its stated check passed, and
each check can fail (the committed JSON perturbed once per check); no θ in figure text (issue 25,
docs/notation.md)."""

import copy
import inspect
import json
from pathlib import Path

import pytest

from rgflow.app.reproduce import summary_status
from rgflow.studies import (edgeworth, frg_flow, layer_flow, local_vs_nonlocal, relevance,
                            rg_lambda, wilsonian_rg)

FIG = Path(__file__).resolve().parents[1] / "figures"


def _load(stem):
    path = FIG / f"{stem}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not generated")
    return json.loads(path.read_text())


def _statuses(study, results):
    rows = study.summary({}, results)
    for r in rows:
        assert len(r) == 5, r  # every row states its check (or "none: ...")
        if summary_status(r) == "ok":
            assert r[4] and not str(r[4]).startswith("none"), r
    return [summary_status(r) for r in rows]


def test_frg_rows_fail_when_the_exponent_is_off():
    res = _load("frg_flow")
    assert _statuses(frg_flow, {"frg_flow": res})[:3] == ["ok"] * 3
    bad = copy.deepcopy(res)
    bad["grid"]["nu"] += 1e-6  # a 1e-6 error on the grid ν must fail the 1e-8 check
    top = str(max(int(k) for k in bad["nu"]))
    bad["nu"][top] += 2e-3
    s = _statuses(frg_flow, {"frg_flow": bad})
    assert s[0].startswith("**FAILED") and s[1] == "ok" and s[2].startswith("**FAILED")


def test_wilsonian_rows_fail_on_a_wrong_slope():
    res = _load("wilsonian_erf_d1")
    assert _statuses(wilsonian_rg, {"w": res}) == ["ok", "ok"]
    bad = dict(res, gap_slope=-1.7, running_slope=-0.85)
    assert all(s.startswith("**FAILED") for s in _statuses(wilsonian_rg, {"w": bad}))


def test_layer_flow_rows_fail_on_a_large_z():
    flow, quart = _load("layer_flow"), _load("layer_flow_quartic")
    s = _statuses(layer_flow, {"layer_flow": flow, "layer_flow_quartic": quart})
    assert "ok" in s and not any(x.startswith("**FAILED") for x in s)
    bad = copy.deepcopy(flow)
    bad["nets"]["relu"]["critical"]["max_abs_z"] = 4.5
    s = _statuses(layer_flow, {"layer_flow": bad})
    assert s[0].startswith("**FAILED") and "4.5" in s[0]


def test_edgeworth_mc_row_fails_on_a_large_z():
    res = _load("edgeworth_d1")
    s = _statuses(edgeworth, {"e": res})
    assert s[-1] == "ok" and set(s[:-1]) == {"—"}
    bad = copy.deepcopy(res)
    bad["mode_quartic"]["max_abs_z"] = 4.2
    assert _statuses(edgeworth, {"e": bad})[-1].startswith("**FAILED")
    # the caption states the metric and Λ dependence and the conditioning
    assert "cond K" in res["caption"] and "Λ = 3" in res["caption"]


def test_local_vs_nonlocal_breaking_row_fails_on_a_wrong_exponent():
    res = _load("local_vs_nonlocal_d1")
    s = _statuses(local_vs_nonlocal, {"l": res})
    assert s[-1] == "ok"
    bad = copy.deepcopy(res)
    bad["breaking"]["gauss"]["g4_change_exponent"] = -0.9
    assert _statuses(local_vs_nonlocal, {"l": bad})[-1].startswith("**FAILED")
    for key in ("σ_b", "σ_W", "N = 5", "d_in", "neurons"):
        assert key in res["caption"], key


def test_exponent_rows_fail_when_a_check_failed():
    erf = _load("relevance_erf_d1")
    assert all(s.startswith("**FAILED") for s in _statuses(relevance, {"r": erf}))
    gauss = _load("relevance_gauss_d1")
    assert _statuses(relevance, {"r": gauss}) == ["ok", "ok"]
    bad = copy.deepcopy(gauss)
    bad["exponents"]["couplings"][2].update(status="failed", reasons=["fit residual 2 > 0.1"])
    assert _statuses(relevance, {"r": bad})[0].startswith("**FAILED")
    assert _statuses(rg_lambda, {"r": _load("rg_lambda_erf_d1")})[0].startswith("**FAILED")
    assert _statuses(rg_lambda, {"r": _load("rg_lambda_relu_d1")}) == ["ok"]


@pytest.mark.parametrize("study", [edgeworth, frg_flow, layer_flow, local_vs_nonlocal, relevance,
                                   rg_lambda, wilsonian_rg], ids=lambda m: m.__name__)
def test_no_theta_and_no_width_n_in_figure_text(study):
    """θ is not used (RG eigenvalues are y, box-cutoff exponents ζ); the width is N, not n."""
    src = "".join(inspect.getsource(f) for name, f in vars(study).items()
                  if callable(f) and getattr(f, "__module__", "") == study.__name__
                  and ("plot" in name or "caption" in name or name == "summary"))
    assert "θ" not in src and "\\theta" not in src
    assert "1/n)" not in src and "width n" not in src and "finite n" not in src
