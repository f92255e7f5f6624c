"""Coupling fits (rgflow._fit, rgflow._fit_data): independent routes and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rgflow
from rgflow._actions import Action, LocalCoupling, PolynomialQuartic
from rgflow._fit import QuadraticModel, _wls, fit, power_law
from rgflow._fit_data import (
    exact_data,
    jackknife_replicates,
    mc_data,
    shrink_covariance,
    tree_model,
)


@pytest.fixture(scope="module")
def erf_setup():
    net = rgflow.ErfNet(width=5)
    xs = rgflow.hms_inputs("erf")
    data = exact_data(net, xs, (4,))
    return net, xs, data


@pytest.fixture(scope="module")
def erf_joint():
    net = rgflow.ErfNet(width=1)
    xs = rgflow.hms_inputs("erf")
    model = tree_model(Action(net, (LocalCoupling(4), LocalCoupling(6))), xs, (4, 6), 10.0)
    return net, xs, model


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b) / np.abs(b))


@pytest.mark.parametrize("terms", ["const", "poly"])
def test_optax_agrees_with_closed_form_wls(erf_setup, terms):
    net, xs, data = erf_setup
    term = (LocalCoupling(4),) if terms == "const" else (PolynomialQuartic(),)
    model = tree_model(Action(net, term), xs, (4,))
    assert model.is_linear
    ref = _wls(model, data.values, data.covariance)
    lb = fit(model, data.values, data.covariance, method="lbfgs")
    ad = fit(model, data.values, data.covariance, method="adam")
    assert lb.converged
    assert _rel(lb.couplings, ref.couplings) < 1e-6
    assert _rel(ad.couplings, ref.couplings) < 1e-6
    np.testing.assert_allclose(lb.chi2, ref.chi2, rtol=1e-9)
    np.testing.assert_allclose(lb.stderr, ref.stderr, rtol=1e-9)
    # the closed form, written out: (AᵀWA)⁻¹AᵀWy
    a, w = np.asarray(model.a), 1.0 / np.asarray(data.covariance)
    g = np.linalg.solve(a.T @ (w[:, None] * a), a.T @ (w * data.values))
    assert _rel(ref.couplings, g) < 1e-9
    assert ref.dof == data.values.size - model.n_couplings
    assert np.isclose(ref.aic, ref.chi2 + 2 * model.n_couplings)


def test_quadratic_model_matches_connected_correlator(erf_joint):
    """The exchange (λ²) part read off design matrices equals the engine's direct prediction."""
    from rgflow._predict import connected_correlator

    net, xs, model = erf_joint
    g = np.array([-0.003, 2e-5])
    action = Action(net, (LocalCoupling(4, g[0]), LocalCoupling(6, g[1])))
    direct = np.concatenate([
        np.asarray(connected_correlator(action, xs, jnp.array([10.0]), n))[0] for n in (4, 6)
    ])
    np.testing.assert_allclose(np.asarray(model(g)), direct, rtol=1e-10, atol=1e-12 * np.abs(direct).max())
    assert not model.is_linear


def test_synthetic_recovery_joint_nonlinear(erf_joint):
    """Data drawn from known (λ, κ) with a correlated covariance: the fit recovers them within the
    curvature errors, and the spread over noise draws matches those errors."""
    _, _, model = erf_joint
    g_true = np.array([-0.003, 2e-5])
    y0 = np.asarray(model(g_true))
    n = y0.size
    rng = np.random.default_rng(1)
    sd = 0.02 * np.abs(y0).mean() * (1 + rng.random(n))
    corr = 0.3 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))  # AR(1) correlations
    cov = corr * np.outer(sd, sd)
    chol = np.linalg.cholesky(cov)
    y = y0 + chol @ rng.standard_normal(n)
    reps = y0 + (chol @ rng.standard_normal((n, 300))).T
    res = fit(model, y, cov, replicates=reps)
    assert res.converged
    z = (np.asarray(res.couplings) - g_true) / np.asarray(res.stderr)
    assert np.all(np.abs(z) < 4), z
    assert 1e-3 < res.p_value
    # the refits of 300 fresh noise draws scatter like the curvature errors
    np.testing.assert_allclose(res.bootstrap_stderr, res.stderr, rtol=0.15)


def test_bad_input_errors(erf_setup):
    net, xs, data = erf_setup
    model = tree_model(Action(net, (PolynomialQuartic(),)), xs, (4,))
    with pytest.raises(ValueError, match="`data`"):
        fit(model.take(slice(0, 1)), data.values[:1], data.covariance[:1])
    bad = data.values.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="`data`"):
        fit(model, bad, data.covariance)
    with pytest.raises(ValueError, match="`data`"):
        _wls(model, data.values[:-1], data.covariance)
    singular = np.outer(data.values, data.values)  # rank one
    with pytest.raises(ValueError, match="`covariance`"):
        fit(model, data.values, singular)
    with pytest.raises(ValueError, match="`covariance`"):
        fit(model, data.values, np.zeros_like(data.covariance))
    with pytest.raises(ValueError, match="`covariance`"):
        fit(model, data.values, np.full_like(data.covariance, np.inf))
    with pytest.raises(ValueError, match="`method`"):
        fit(model, data.values, data.covariance, method="sgd")
    with pytest.raises(ValueError, match="`orders`"):
        exact_data(net, xs, (3,))


def test_rank_deficient_design_reports_infinite_errors():
    a = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])  # collinear columns
    res = _wls(QuadraticModel(a), np.array([1.0, 2.0, 3.0]), np.ones(3))
    assert np.all(np.isinf(np.asarray(res.stderr)))


def test_power_law_exact_and_noisy():
    n = np.array([2, 5, 10, 100, 1000])
    pl = power_law(n, 3.0 * n**-2.0)
    assert abs(pl["exponent"] + 2) < 1e-12 and abs(pl["amplitude"] - 3) < 1e-10
    rng = np.random.default_rng(0)
    v = -0.5 / n * (1 + 0.01 * rng.standard_normal(n.size))
    pl = power_law(n, v, 0.01 * np.abs(v))
    assert pl["ci95"][0] < -1 < pl["ci95"][1] and pl["amplitude"] < 0


def test_mc_covariance_and_fit(key):
    """Jackknife data vector = Measurement.connected (independent route); shrunk covariance is
    positive definite with the jackknife variances; the raw covariance from 16 blocks is singular;
    the Monte Carlo λ agrees with the exact-input λ within its error (ReLU, σ_b = 0, d_in = 1:
    f(x) = x·F, so the constant quartic is exact and the weighting does not matter)."""
    net = rgflow.ReLUNet(width=3)
    xs = rgflow.hms_inputs("relu")
    m = rgflow.measure(net, xs, 20_000, key=key, orders=(4,), n_blocks=16)
    est, reps = jackknife_replicates(m, (4,))
    np.testing.assert_allclose(est, m.connected(4, full=False), rtol=1e-10)
    cov, alpha = shrink_covariance(reps)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), m.connected_stderr(4, full=False), rtol=1e-8)
    assert 0 < alpha <= 1 and np.linalg.eigvalsh(cov)[0] > 0
    model = tree_model(Action(net, (LocalCoupling(4),)), xs, (4,))
    with pytest.raises(ValueError, match="`covariance`"):
        fit(model, est, mc_data(m, (4,), covariance="full").covariance)
    data = mc_data(m, (4,), n_boot=100, key=jax.random.key(3))
    res = fit(model, data.values, data.covariance, replicates=data.replicates)
    ex = exact_data(net, xs, (4,))
    lam_exact = float(_wls(model, ex.values, ex.covariance).couplings[0])
    z = (float(res.couplings[0]) - lam_exact) / float(res.stderr[0])
    assert abs(z) < 4, z
    assert 0.5 < float(res.bootstrap_stderr[0] / res.stderr[0]) < 2.0
