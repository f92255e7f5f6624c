"""The 1/N story (rgflow.studies.width_scaling, rgflow.studies.connected_six_pt)."""

import numpy as np
import pytest

from rgflow.studies.connected_six_pt import connected_six_scaling
from rgflow.studies.width_scaling import SHARE_KEYS, width_scaling

WIDTHS = (2, 10, 100, 1000)


@pytest.mark.parametrize("net", [pytest.param("relu", marks=pytest.mark.slow),
                                 pytest.param("gauss", marks=pytest.mark.slow), "erf"])
def test_exact_exponents(net):
    """Exact inputs scale exactly (G_n,c ∝ N^{1−n/2}, physics.md §4): λ ∝ 1/N, κ ∝ 1/N²."""
    r = width_scaling(net, widths=WIDTHS)
    assert abs(r["lambda_exponent"] + 1) < 1e-6
    assert abs(r["kappa_exponent"] + 2) < 1e-6
    assert abs(r["lambda4_exponent"] + 1) < 1e-6
    assert r["lambda_exponent_err"] < 1e-6 and r["kappa_exponent_err"] < 1e-6
    assert all(r["converged"])
    # the quartic-only fit is linear: optimiser and closed form agree
    np.testing.assert_allclose(r["lambda4"], r["lambda4_wls"], rtol=1e-6)
    shares = np.array([r["shares"][k] for k in SHARE_KEYS])
    np.testing.assert_allclose(shares.sum(0), 1.0, rtol=1e-12)
    # the O(1/N) quartic sector grows towards the whole signal (Gauss-net: 66 % at N = 10³, κ 30 %)
    quartic = shares[0] + shares[1]
    assert np.all(np.diff(quartic) > 0) and quartic[-1] > 0.6


def test_connected_six_exact_slope():
    r = connected_six_scaling("erf", widths=WIDTHS)
    assert abs(r["slope"] + 2) < 1e-6
    assert abs(r["orders"]["4"]["slope"] + 1) < 1e-6
    np.testing.assert_allclose(r["orders"]["6"]["amplitude"], np.asarray(WIDTHS, float) ** -2,
                               rtol=1e-10)


@pytest.mark.slow
def test_connected_six_mc_slope():
    """Monte Carlo (ReLU, d_in = 1): the fitted slope's 95% interval contains −2."""
    r = connected_six_scaling("relu", widths=(1, 2, 3, 5, 10), source="mc", n_nets=100_000)
    lo, hi = r["slope_ci95"]
    assert lo < -2 < hi and hi - lo < 0.6


@pytest.mark.slow
def test_width_scaling_mc_lambda():
    """Monte Carlo λ(N) (ReLU, d_in = 1, where the constant quartic is exact): exponent −1 within
    its 95% interval."""
    r = width_scaling("relu", widths=(1, 2, 4, 8, 16), source="mc", n_nets=100_000)
    lo, hi = r["lambda4_exponent_ci95"]
    assert lo < -1 < hi


def test_width_scaling_mc_is_independent_per_width():
    """The Monte Carlo couplings come from one run per width (no rescaled single run: the
    ratios to the exact fit differ between widths) and carry their own power-law fit."""
    r = width_scaling("relu", widths=(2, 8), sigma_b=1.0, mc_widths=(2, 8), n_nets=400)
    ratio = np.asarray(r["mc_lambda"]) / np.asarray(r["mc_exact_lambda"])
    assert abs(ratio[0] - ratio[1]) > 1e-6
    assert r["mc_widths"] == [2, 8] and r["mc_skipped"] is None
    assert len(r["mc_lambda_err"]) == 2 and all(e > 0 for e in r["mc_lambda_err"])
    g = width_scaling("gauss", widths=(2, 8), mc_widths=(2, 8), n_nets=400)
    assert g["mc_widths"] is None and "beyond the range" in g["mc_skipped"]


def test_gauss_tail_fraction():
    """The fraction of E[exp(k s u)] beyond √(2 ln n) is Φ(k s − √(2 ln n)); a sample of n
    normals captures about the rest (the tail is why Gauss-net Monte Carlo is not used)."""
    import math

    from rgflow._nets import hms_inputs, make_net
    from rgflow.studies._heavy_tails import gauss_tail

    net = make_net("gauss", width=1, d_in=1)
    t = gauss_tail(net, hms_inputs("gauss", 1), 10**6, cap=10**6)
    o = t["orders"]["6"]
    assert 0.5 < o["beyond"] < 0.95  # E[φ⁶] sits at u ≈ 6 > √(2 ln 10⁶) ≈ 5.3
    assert abs(t["u_max"] - math.sqrt(2 * math.log(10**6))) < 1e-12
    assert o["captured"] < 0.5 and t["orders"]["4"]["beyond"] < o["beyond"]
