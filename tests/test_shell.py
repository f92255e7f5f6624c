"""Momentum-shell RG (rgflow._shell; physics.md §13): every coefficient against an independent route."""

import math

import jax
import numpy as np
import pytest

from rgflow import _shell as S


def _derivs(couplings, d, cutoff, new_cutoff):
    """2nd, 4th, 6th derivatives at φ = 0 of the one-loop shell potential ½∫ ln(p² + U''(φ)) (a
    Cauchy integral of a quadrature: no loop coefficient put in by hand)."""
    return S.shell_taylor(couplings, d=d, cutoff=cutoff, new_cutoff=new_cutoff)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_gaussian_eigenvalues_are_power_counting(d):
    want = [2.0, 4.0 - d, 6.0 - 2 * d]
    jac = jax.jacfwd(lambda g: S.one_loop_beta(g, float(d)))(np.zeros(3))
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(np.asarray(jac)).real), np.sort(want),
                               atol=1e-6)
    lpa = S.SharpLPA(d=float(d), order=4)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(np.asarray(lpa.stability_matrix(
        np.zeros(4)))).real), np.sort(want + [8.0 - 3 * d]), atol=1e-6)
    np.testing.assert_allclose(S.power_counting(d), want)


@pytest.mark.parametrize("d", [1.0, 2.5, 3.0])
def test_hand_equations_equal_the_series_expansion_of_the_log(d):
    rng = np.random.default_rng(1)
    for n in (2, 3):
        for _ in range(3):
            g = rng.normal(size=n) * np.array([0.3, 2.0, 20.0][:n])
            np.testing.assert_allclose(S.one_loop_beta(g, d), S.SharpLPA(d=d, order=n).beta(g),
                                       rtol=1e-12, atol=1e-12)


def test_shell_integrals_closed_forms():
    m2, lam, lamp = 1.3, 10.0, 3.0
    m = math.sqrt(m2)
    i1 = S.shell_integral(1, m2, d=1, cutoff=lam, new_cutoff=lamp)
    np.testing.assert_allclose(i1, (math.atan(lam / m) - math.atan(lamp / m)) / (math.pi * m),
                               rtol=1e-12)
    g3 = lambda c: (c - m * math.atan(c / m)) / (2 * math.pi**2)  # noqa: E731
    np.testing.assert_allclose(S.shell_integral(1, m2, d=3, cutoff=lam, new_cutoff=lamp),
                               g3(lam) - g3(lamp), rtol=1e-12)
    # I2 = −∂I1/∂m² (d = 1)
    h = 1e-5
    di = (S.shell_integral(1, m2 + h, d=1, cutoff=lam, new_cutoff=lamp)
          - S.shell_integral(1, m2 - h, d=1, cutoff=lam, new_cutoff=lamp)) / (2 * h)
    np.testing.assert_allclose(S.shell_integral(2, m2, d=1, cutoff=lam, new_cutoff=lamp), -di,
                               rtol=1e-7)


@pytest.mark.parametrize("d", [1, 3])
def test_direct_one_loop_equals_the_gaussian_shell_integral(d):
    """Hand coefficients (1/2, 3/2, 1/2, 15/2, 15) against derivatives of ½∫ln(p² + U'')."""
    c = (0.7, 0.9, 2.0)
    direct = S.shell_one_loop(c, d=d, cutoff=10.0, new_cutoff=3.0) - np.array(c)
    ref = _derivs(c, d, 10.0, 3.0)
    np.testing.assert_allclose(direct, ref, rtol=1e-9)
    # the route can fail: the mix coefficient 15/2 → 15 is seen
    i2 = S.shell_integral(2, c[0], d=d, cutoff=10.0, new_cutoff=3.0)
    assert abs((direct[2] - 7.5 * c[1] * c[2] * i2) / ref[2] - 1) > 0.1


def _bubble_check(d, lam=1e-2):
    """(flow λ' − λ)/λ² against δU''''(0)/λ²; m² and the tree λ₆ likewise (relative gaps)."""
    c = (1.0, lam, 0.0)
    flow = S.shell_flow(c, d=d, cutoff=10.0, new_cutoff=3.0)
    assert flow.succeeded and flow.accurate, flow.error_estimate
    ref = _derivs(c, d, 10.0, 3.0)
    got = np.array([flow.final[0] - 1.0, flow.final[1] - lam, flow.final[2]])
    return np.abs(got / ref - 1)


@pytest.mark.parametrize("d", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_flow_matches_one_loop_shell_integral_and_fails_when_broken(d, monkeypatch):
    gaps = _bubble_check(d)
    assert np.all(gaps < 2e-2), gaps  # O(λ) relative corrections of the iterated flow
    # the gaps shrink like λ: the flow and the frozen-coupling integral differ at the next order
    gaps_small = _bubble_check(d, lam=2.5e-3)
    assert np.all(gaps_small < 0.4 * gaps + 1e-9), (gaps, gaps_small)
    monkeypatch.setattr(S, "_BUBBLE", 1.0)  # the s/t/u bubble 3/2 → 1
    broken = _bubble_check(d)
    assert broken[1] > 0.3, broken
    monkeypatch.setattr(S, "_BUBBLE", 1.5)
    monkeypatch.setattr(S, "_TADPOLE", 1.0)  # the tadpole 1/2 → 1
    assert _bubble_check(d)[0] > 0.9
    monkeypatch.setattr(S, "_TADPOLE", 0.5)
    monkeypatch.setattr(S, "_SEXTIC_TREE", 10.0)  # the φ⁶ tree 15 → 10
    assert _bubble_check(d)[2] > 0.3


def test_wilson_fisher_order_two_closed_form():
    fp = S.wilson_fisher_shell(3.0, 2)
    np.testing.assert_allclose(fp.couplings, [-1 / 7, 48 * math.pi**2 / 49], rtol=1e-12)
    np.testing.assert_allclose(np.sort(fp.eigenvalues.real),
                               [(1 - math.sqrt(22)) / 3, (1 + math.sqrt(22)) / 3], rtol=1e-10)
    np.testing.assert_allclose(fp.nu, 3 / (1 + math.sqrt(22)), rtol=1e-10)
    fp3 = S.wilson_fisher_shell(3.0, 3)  # order 3 by hand: r* = −1/3, K u* = 8/9, u₆* = 3u*²
    k = S.loop_factor(3)
    np.testing.assert_allclose(fp3.couplings, [-1 / 3, 8 / (9 * k), 3 * (8 / (9 * k)) ** 2],
                               rtol=1e-10)
    # the generic Newton solver finds the same point
    fpn = S.shell_fixed_point(lambda g: S.one_loop_beta(g, 3.0), fp3.couplings * 1.05)
    np.testing.assert_allclose(fpn.couplings, fp3.couplings, rtol=1e-9)


def test_dimensionful_and_rescaled_flows_agree():
    d, lam_c, lamp = 3.0, 4.0, 1.5
    c = np.array([0.5, 2.0, 3.0])
    fl = S.shell_flow(c, d=d, cutoff=lam_c, new_cutoff=lamp)
    g0 = [c[0] / lam_c**2, c[1] * lam_c ** (d - 4), c[2] * lam_c ** (2 * d - 6)]
    rs = S.shell_flow_rescaled(g0, math.log(lam_c / lamp), d=d)
    back = rs.final * np.array([lamp**2, lamp ** (4 - d), lamp ** (6 - 2 * d)])
    np.testing.assert_allclose(fl.final, back, rtol=1e-8)
    assert fl.accurate and rs.accurate and fl.perturbative


def test_bad_input_and_flags():
    kw = {"d": 1, "cutoff": 10.0}
    for bad in (10.0, 12.0, 0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="new_cutoff"):
            S.shell_flow((1.0, 0.1), new_cutoff=bad, **kw)
    with pytest.raises(ValueError, match="couplings"):
        S.shell_flow((float("nan"), 0.1), new_cutoff=3.0, **kw)
    with pytest.raises(ValueError, match="couplings"):
        S.shell_flow((1.0,), new_cutoff=3.0, **kw)
    with pytest.raises(ValueError, match="couplings"):
        S.shell_flow((-101.0, 0.1), new_cutoff=3.0, **kw)
    with pytest.raises(ValueError, match="`d`"):
        S.shell_flow((1.0, 0.1), d=0, cutoff=10.0, new_cutoff=3.0)
    with pytest.raises(ValueError, match="did not reach"):  # runs into Λ² + m² = 0
        S.shell_flow((-50.0, -1.0, 0.0), new_cutoff=3.0, **kw)
    strong = S.shell_flow((1.0, 200.0, 0.0), new_cutoff=3.0, **kw)
    assert not strong.perturbative and strong.max_loop_parameter > S.PERTURBATIVE_LIMIT
    with pytest.raises(ValueError, match="2 < d < 4"):
        S.wilson_fisher_shell(4.0)
