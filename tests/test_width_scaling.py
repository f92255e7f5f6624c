"""The 1/N story (rgflow.studies.width_scaling, rgflow.studies.connected_six_pt)."""

import numpy as np
import pytest

from rgflow.studies.connected_six_pt import connected_six_scaling
from rgflow.studies.width_scaling import SHARE_KEYS, width_scaling

WIDTHS = (2, 10, 100, 1000)


@pytest.mark.parametrize("net", [pytest.param("relu", marks=pytest.mark.slow), "gauss"])
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
    # over-parameterisation implies simplicity: the O(1/N) quartic sector takes over
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
