"""diffrax flows of the couplings against independent refits (rgflow._flow; physics.md §7)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rgflow
from rgflow._actions import Action, LocalCoupling, PolynomialQuartic
from rgflow._beta import matching_problem, refit
from rgflow._flow import TableInterpolant, build_tables, flow

CUTS = np.array([7.0, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5])


def _problem(name, d_in, interactions=None, orders=(4,)):
    net = rgflow.make_net(name, width=5, d_in=d_in)
    xs = rgflow.hms_inputs(name, d_in)
    targets = {n: np.asarray(rgflow.exact_connected(net, xs, n, full=False)) for n in orders}
    weights = {n: np.full(t.size, 1.0 / np.mean(t**2)) for n, t in targets.items()}
    return matching_problem(Action(net, interactions or [LocalCoupling(4)]), xs, targets, weights)


@pytest.fixture(scope="module")
def erf_poly():
    return _problem("erf", 1, [PolynomialQuartic()])


@pytest.mark.slow  # ~7-10 s; `make test-slow`
def test_flow_matches_refits_erf_two_couplings(erf_poly):
    # (λ0, λ2) over-determined by 126 entries; beyond Λ ~ 10⁴ the two Erf columns become
    # collinear (both → Π k(x_i)) and the exact-refit flow turns unstable (rgflow._flow docs)
    sol = flow(erf_poly, CUTS[:5], refit_cutoffs=CUTS[:5])
    assert sol.succeeded
    g_ref = np.asarray(refit(erf_poly, CUTS[:5]))
    rel = np.abs(np.asarray(sol.couplings) - g_ref) / np.abs(g_ref)
    assert rel.max() < 1e-6
    assert sol.stats["num_steps"] > 0


@pytest.mark.slow  # ~10-20 s; `make test-slow`
def test_flow_both_directions():
    """IR → UV: decreasing Λ from the refit at 10⁵ lands on the refits down to 7.

    An exactly determined condition flowed with the homogeneous β (which coincides with the
    exact-refit β there); the residual form repels from the refits towards small Λ
    (rgflow._flow, "Stability")."""
    prob = _problem("erf", 2).subset([0], [4])
    back = flow(prob, CUTS[::-1], residual_term=False)
    g_ref = np.asarray(refit(prob, CUTS[::-1]))
    np.testing.assert_allclose(np.asarray(back.couplings), g_ref, rtol=1e-6)
    res = flow(prob, CUTS[::-1], throw=False)  # residual form: perturbations grow like 1/I4
    assert np.max(np.abs(np.asarray(res.couplings) / g_ref - 1)) > 1e-5


def test_interpolated_tables_match_direct_evaluation(erf_poly):
    tables, _ = build_tables(erf_poly, np.log(7.0), np.log(1e5))
    t = np.array([2.3, 4.71, 8.2, 11.0])
    lin, _, dlin, _ = erf_poly.tables_and_derivatives(np.exp(t))
    for k, tk in enumerate(t):
        li, _, dli, _ = tables(jnp.asarray(tk))
        np.testing.assert_allclose(np.asarray(li), np.asarray(lin[k]), rtol=1e-8)
        np.testing.assert_allclose(np.asarray(dli), np.asarray(dlin[k]), rtol=1e-8)


def test_chebyshev_interpolant_exactness():
    nodes, width = TableInterpolant.nodes(0.0, 5.0, segment_width=2.5, n_nodes=16)
    f = lambda t: np.stack([np.exp(3 * t) * np.cos(t), np.exp(-t)], -1)  # noqa: E731
    df = lambda t: np.stack([np.exp(3 * t) * (3 * np.cos(t) - np.sin(t)), -np.exp(-t)], -1)  # noqa: E731
    it = TableInterpolant.build(nodes, width, jnp.asarray(f(nodes)), jnp.asarray(df(nodes)))
    for t in (0.1, 1.3, 2.5, 4.9):
        v, dv = it(jnp.asarray(t))
        np.testing.assert_allclose(np.asarray(v), f(t), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(dv), df(t), rtol=1e-11)


@pytest.mark.slow  # ~13-25 s; `make test-slow`
def test_relu_flow_is_power_law_and_differentiable():
    """ReLU σ_b = 0: λ(Λ) = λ(Λ0)(Λ/Λ0)^{−(d+4)} for any λ(Λ0) under the homogeneous flow;
    d λ(Λ1)/d λ(Λ0) by autodiff through diffrax."""
    prob = _problem("relu", 2)
    cuts = np.array([7.0, 100.0, 1e5])
    sol = flow(prob, cuts, g0=jnp.array([2.0]), residual_term=False)
    np.testing.assert_allclose(np.asarray(sol.couplings[:, 0]), 2.0 * (cuts / 7.0) ** -6, rtol=1e-8)
    grad = jax.grad(lambda g0: flow(prob, cuts, g0=g0, residual_term=False).couplings[-1, 0])(
        jnp.array([2.0]))
    np.testing.assert_allclose(np.asarray(grad), (1e5 / 7.0) ** -6, rtol=1e-6)


@pytest.mark.slow  # ~10-20 s; `make test-slow`
def test_blowup_event_and_throw():
    """Off the matched solution, the exact-refit flow towards small Λ is repelled from the refits
    (perturbations grow like I4(Λ_start)/I4(Λ)): the blow-up event stops it, no NaN flow."""
    prob = _problem("relu", 1)
    cuts = np.array([1e5, 1e3, 7.0])
    sol = flow(prob, cuts, g0=jnp.array([1.0]), blowup=10.0, throw=False)
    assert sol.result == diffrax.RESULTS.event_occurred
    assert not sol.succeeded
    with pytest.raises(eqx.EquinoxRuntimeError, match="maximum number of solver steps"):
        flow(prob, cuts, g0=jnp.array([1.0]), max_steps=3)  # throw=True (default)
    sol = flow(prob, cuts, g0=jnp.array([1.0]), residual_term=False)  # homogeneous: power law
    assert sol.succeeded
    np.testing.assert_allclose(float(sol.couplings[-1, 0]), (7.0 / 1e5) ** -5, rtol=1e-8)


def test_bad_flow_inputs():
    prob = _problem("gauss", 1)
    with pytest.raises(ValueError, match="finite"):
        flow(prob, CUTS, g0=jnp.array([jnp.nan]))
    with pytest.raises(ValueError, match="> 0"):
        flow(prob, np.array([-1.0, 10.0]))
    with pytest.raises(ValueError, match="monotonic"):
        flow(prob, np.array([7.0, 100.0, 10.0]))
    with pytest.raises(ValueError, match="shape"):
        flow(prob, CUTS, g0=jnp.array([1.0, 2.0]))


@pytest.mark.slow
def test_stiff_solver_and_nonlinear_kappa_flow():
    prob = _problem("gauss", 1, [LocalCoupling(4), LocalCoupling(6)], orders=(4, 6))
    cuts = np.array([0.5, 1.0, 2.0, 7.0])
    for solver in ("tsit5", "kvaerno5"):
        sol = flow(prob, cuts, solver=solver, refit_cutoffs=cuts)
        g_ref = np.asarray(refit(prob, cuts))
        np.testing.assert_allclose(np.asarray(sol.couplings), g_ref, rtol=1e-6)
