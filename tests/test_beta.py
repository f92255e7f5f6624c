"""β-functions from cutoff independence (rgflow._beta; physics.md §7)."""

import jax.numpy as jnp
import numpy as np
import pytest

import rgflow
from rgflow._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic
from rgflow._beta import MatchingProblem, beta, matching_problem, refit


def _problem(name="erf", d_in=1, interactions=None, orders=(4,)):
    net = rgflow.make_net(name, width=5, d_in=d_in)
    xs = rgflow.hms_inputs(name, d_in)
    targets = {n: np.asarray(rgflow.exact_connected(net, xs, n, full=False)) for n in orders}
    weights = {n: np.full(t.size, 1.0 / np.mean(t**2)) for n, t in targets.items()}
    act = Action(net, interactions or [LocalCoupling(4)])
    return matching_problem(act, xs, targets, weights), net, xs


def test_single_lambda_beta_is_minus_lambda_dlnI4():
    """One coupling, one tuple: β_λ = −λ d ln I4/d ln Λ (physics.md §7), by finite differences."""
    from rgflow._integrals import vertex_integrals

    prob, net, xs = _problem("erf", 1)
    one = prob.subset([0], [5])
    lam = 0.37
    c = 40.0
    b = float(beta(one, jnp.array([lam]), c, residual_term=False)[0])
    h = 1e-4
    i4 = np.asarray(vertex_integrals(net, xs, np.array([c * np.exp(-h), c * np.exp(h)]), 4))[:, 5]
    fd = -lam * (np.log(abs(i4[1])) - np.log(abs(i4[0]))) / (2 * h)
    assert b == pytest.approx(fd, rel=1e-7)


def test_relu_beta_is_exact_power_counting():
    """ReLU σ_b = 0: I4 ∝ Λ^{d+4} exactly, so β_λ = −(d+4) λ for any data (physics.md §7)."""
    for d in (1, 2):
        prob, _, _ = _problem("relu", d)
        g = refit(prob, [30.0])[0]
        b = beta(prob, g, 30.0)
        assert float(b[0] / g[0]) == pytest.approx(-(d + 4), abs=1e-10)


def test_beta_matches_finite_difference_of_refits_multi_coupling():
    """β (autodiff, with the least-squares residual term) equals the t-derivative of the
    independent refits — for several couplings and an over-determined fit."""
    prob, _, _ = _problem("erf", 1, [PolynomialQuartic(), BilocalQuartic()])
    c, h = 50.0, 1e-4
    g = refit(prob, np.array([c * np.exp(-h), c, c * np.exp(h)]))
    fd = (g[2] - g[0]) / (2 * h)
    b = beta(prob, g[1], c)
    np.testing.assert_allclose(np.asarray(b), np.asarray(fd), rtol=2e-6)
    # the homogeneous formula −(AᵀWA)⁻¹AᵀW ∂A g differs when the residual is non-zero
    b0 = beta(prob, g[1], c, residual_term=False)
    assert np.max(np.abs(np.asarray(b0 - fd) / np.asarray(fd))) > 1e-3


@pytest.mark.slow
def test_nonlinear_kappa_lambda_beta_matches_refits():
    """κ with λ² exchange (hierarchical matching): β_κ has a λ β_λ piece; autodiff β equals
    the finite-difference derivative of the Newton refits."""
    prob, _, _ = _problem("gauss", 1, [LocalCoupling(4), LocalCoupling(6)], orders=(4, 6))
    assert prob.nonlinear
    c, h = 1.5, 1e-4  # Gauss-net: integrals still vary at Λ ~ 1.5
    g = refit(prob, np.array([c * np.exp(-h), c, c * np.exp(h)]))
    fd = (g[2] - g[0]) / (2 * h)
    b = beta(prob, g[1], c)
    np.testing.assert_allclose(np.asarray(b), np.asarray(fd), rtol=1e-5)
    # without the exchange coupling, β_κ would miss the λ² piece
    lin, quad = prob.tables([c])
    assert float(jnp.max(jnp.abs(quad))) > 0


def test_rank_deficient_conditions_raise():
    """ReLU d_in = 1 (σ_b = 0): every 4-pt design column ∝ Π x_i — λ0, λ2, λ_NL undetermined."""
    prob, _, _ = _problem("relu", 1, [PolynomialQuartic(), BilocalQuartic()])
    with pytest.raises(ValueError, match="do not determine the couplings"):
        refit(prob, [10.0])
    with pytest.raises(ValueError, match="cannot determine"):
        refit(prob.subset([0, 1, 2], [0, 1]), [10.0])


def test_bad_inputs():
    prob, _, _ = _problem("gauss", 1)
    with pytest.raises(ValueError, match="> 0"):
        refit(prob, [-1.0])
    with pytest.raises(ValueError, match="> 0"):
        refit(prob, [0.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        MatchingProblem(prob.tables_fn, prob.names, np.full(prob.n_conditions, np.nan))
    with pytest.raises(ValueError, match="weights"):
        MatchingProblem(prob.tables_fn, prob.names, prob.target, -np.ones(prob.n_conditions))
