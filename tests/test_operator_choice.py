"""Operator choice and naturalness (rgflow.studies.local_vs_nonlocal)."""

import numpy as np
import pytest

from rgflow.studies.local_vs_nonlocal import OPERATOR_SETS, compare_operators, translation_breaking


def _table(r):
    return {row["operators"]: row for row in r["table"]}


def test_gauss_constant_suffices_erf_needs_functions():
    g = _table(compare_operators("gauss"))
    e = _table(compare_operators("erf"))
    # translation-invariant GP: a constant λ describes G4_c to ~1e-4, train and held out
    assert g["lambda0"]["train_error"] < 1e-3 and g["lambda0"]["test_error"] < 1e-3
    # Erf: a constant is far off; the x-dependent and bilocal couplings help on held-out inputs
    assert e["lambda0"]["train_error"] > 0.3
    assert e["lambda0+lambda2+lambda_nl"]["test_error"] < 0.7 * e["lambda0"]["test_error"]
    for t in (g, e):  # nested operator sets: χ² never increases
        chi2 = [t[k]["chi2"] for k in OPERATOR_SETS]
        assert all(b <= a * (1 + 1e-9) for a, b in zip(chi2, chi2[1:]))
        assert all(t[k]["converged"] for k in OPERATOR_SETS)


def test_relu_d1_is_degenerate():
    """ReLU σ_b = 0, d_in = 1: f(x) = x·F, so λ0 fits exactly and further couplings are not
    identifiable."""
    t = _table(compare_operators("relu"))
    assert t["lambda0"]["train_error"] < 1e-12 and t["lambda0"]["test_error"] < 1e-12
    assert np.all(np.isinf(t["lambda0+lambda2"]["stderr"]))


def test_translation_breaking():
    g = translation_breaking("gauss", shifts=(0.1, 0.5), widths=(10, 100, 1000, 10_000))
    assert max(g["gp_change"]) < 1e-12  # the GP is translation invariant
    assert min(g["g4c_change"]) > 1e-3  # the finite-N connected part is not
    # M4 ∝ exp(4 σ_W² c²/d_in) for points at centroid c: G4_c grows ~ 4 a² for small shifts a
    assert g["g4c_change"][0] == pytest.approx(4 * 0.1**2, rel=0.2)
    assert abs(g["g4_change_exponent"] + 1) < 0.05  # the breaking of the full G4 ∝ 1/N
    e = translation_breaking("erf", shifts=(0.5,), widths=(10, 100))
    assert e["gp_change"][0] > 1e-2


def test_mc_gauss_warns():
    with pytest.warns(UserWarning, match="heavy-tailed"):
        compare_operators("gauss", source="mc", n_nets=500)
