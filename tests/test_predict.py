"""Predictions, design matrices, matching and the 6-pt prediction (physics.md §6, §7)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import rgflow
from rgflow._actions import (
    Action,
    BilocalQuartic,
    LocalCoupling,
    NonlocalQuartic,
    PolynomialQuartic,
)
from rgflow._beta import matching_problem, refit
from rgflow._integrals import exchange_integrals, vertex_integrals
from rgflow._predict import (
    Predictor,
    _match_quartic,
    connected_correlator,
    design_matrix,
)
from rgflow._tuples import sorted_tuples, splits, to_full
from rgflow.studies.six_pt_prediction import six_point_prediction

CUTS = jnp.array([7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4,
                  4e4, 6e4, 8e4, 1e5], dtype=jnp.float64)


def test_feynman_rules_match_integrals():
    net = rgflow.ErfNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("erf", 1)
    cuts = CUTS[:2]
    i4 = vertex_integrals(net, xs, cuts, 4)
    i4r = vertex_integrals(net, xs, cuts, 4, weight="r2")
    i2 = to_full(vertex_integrals(net, xs, cuts, 2), 6, 2)
    g = connected_correlator(Action(net, (LocalCoupling(4, 0.01),)), xs, cuts, 4)
    np.testing.assert_allclose(g, -24 * 0.01 * i4, rtol=1e-13)
    g = connected_correlator(Action(net, (PolynomialQuartic(0.01, 0.002),)), xs, cuts, 4)
    np.testing.assert_allclose(g, -24 * (0.01 * i4 + 0.002 * i4r), rtol=1e-13)
    g = connected_correlator(Action(net, (BilocalQuartic(0.01),)), xs, cuts, 4)
    t = sorted_tuples(6, 4)
    chan = sum(i2[:, t[:, a], t[:, b]] * i2[:, t[:, c], t[:, d]] for a, b, c, d in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)))
    np.testing.assert_allclose(g, -8 * 0.01 * chan, rtol=1e-13)


def test_six_point_rules():
    """G6_c = −720 κ I6 + 576 λ² Σ_10 J(abc|def) (physics.md §6), d_in = 1 Gauss-net."""
    net = rgflow.GaussNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("gauss", 1)
    cuts = jnp.array([0.5, 7.0])
    lam, kap = 0.03, -0.002
    g6 = connected_correlator(Action(net, (LocalCoupling(4, lam), LocalCoupling(6, kap))), xs, cuts, 6)
    i6 = vertex_integrals(net, xs, cuts, 6)
    j = exchange_integrals(net, xs, cuts)
    tri_full = np.asarray(to_full(np.arange(56), 6, 3))
    t6 = sorted_tuples(6, 6)
    ex = 0.0
    for a, b in splits(6, 3):
        if 0 not in a:
            continue
        ex = ex + j[:, tri_full[t6[:, a[0]], t6[:, a[1]], t6[:, a[2]]], tri_full[t6[:, b[0]], t6[:, b[1]], t6[:, b[2]]]]
    np.testing.assert_allclose(g6, -720 * kap * i6 + 576 * lam**2 * ex, rtol=1e-12)
    g6_first = connected_correlator(Action(net, (LocalCoupling(4, lam), LocalCoupling(6, kap))), xs, cuts, 6, exchange=False)
    np.testing.assert_allclose(g6_first, -720 * kap * i6, rtol=1e-13)


@pytest.mark.parametrize(
    "terms, truth",
    [
        ((LocalCoupling(4, 0.0),), [0.013]),
        ((PolynomialQuartic(0.0, 0.0),), [0.02, -0.0015]),
        ((BilocalQuartic(0.0),), [0.007]),
        ((LocalCoupling(4, 0.0), BilocalQuartic(0.0)), [0.01, -0.004]),
    ],
)
@pytest.mark.parametrize("name, d_in", [("erf", 1), ("relu", 2), ("gauss", 1)])
def test_synthetic_correlators_recovered(terms, truth, name, d_in):
    """Each operator reproduces a synthetic 4-pt function generated from known couplings."""
    net = rgflow.make_net(name, width=5, d_in=d_in)
    xs = rgflow.hms_inputs(name, d_in)
    if name == "gauss":
        xs = 100 * xs  # spread the points so that |y|² and bilocal operators are identifiable
    cuts = jnp.array([3.0, 7.0])
    act = Action(net, terms).with_flat_couplings(jnp.asarray(truth))
    target = connected_correlator(act, xs, cuts, 4)
    g = np.stack([np.asarray(refit(matching_problem(act, xs, {4: target[i]}), cuts[i:i + 1]))[0]
                  for i in range(cuts.size)])
    np.testing.assert_allclose(g, np.broadcast_to(truth, g.shape), rtol=1e-8, atol=1e-12)


def test_design_matrix_and_cutoff_derivative():
    net = rgflow.ErfNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("erf", 1)
    act = Action(net, (PolynomialQuartic(0.01, 0.001), BilocalQuartic(0.003)))
    cuts = jnp.array([7.0, 50.0])
    a, names = design_matrix(act, xs, cuts)
    assert a.shape == (2, 126, 3) and len(names) == 3
    np.testing.assert_allclose(a[..., 0], -24 * vertex_integrals(net, xs, cuts, 4), rtol=1e-13)
    # Λ ∂A/∂Λ by autodiff through the integrals vs central differences
    f = lambda c: design_matrix(act, xs, c)[0]  # noqa: E731
    jac = jax.jacfwd(f)(cuts)
    dadl = jnp.einsum("ctgc->ctg", jac)
    h = 1e-4 * cuts
    fd = (f(cuts + h) - f(cuts - h)) / (2 * h[:, None, None])
    np.testing.assert_allclose(dadl, fd, rtol=1e-6, atol=1e-9 * float(jnp.max(jnp.abs(fd))))


def test_nonlocal_constant_coupling():
    """λ(y1..y4) = c gives S = c (∫f)⁴, so G4_c = −24 c Π_i I1(x_i), I1 = ∫ K_W(x, y) dy."""
    net = rgflow.ErfNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("erf", 1)[[0, 2, 5]]
    c = 0.01
    nl = NonlocalQuartic(lambda p, y1, y2, y3, y4: p * (1.0 + 0.0 * y1[0]), c, d_in=1)
    lam = 2.0
    g = np.asarray(Predictor(Action(net, (nl,)), xs, jnp.array([lam]), 4, nonlocal_nodes=6)(Action(net, (nl,))))[0]

    def kw(x, y):
        s = lambda a, b: 1 + a * b  # noqa: E731
        return 2 / math.pi * math.asin(2 * s(x, y) / math.sqrt((1 + 2 * s(x, x)) * (1 + 2 * s(y, y))))

    i1 = np.array([integrate.quad(lambda y, x=x: kw(x, y), -lam, lam, epsabs=0, epsrel=1e-13)[0] for x in xs[:, 0]])
    ref = -24 * c * np.prod(i1[sorted_tuples(3, 4)], axis=1)
    np.testing.assert_allclose(g, ref, rtol=1e-7)


def test__match_quartic():
    rng = np.random.default_rng(0)
    i4 = jnp.asarray(rng.normal(size=(3, 10)))
    np.testing.assert_allclose(_match_quartic(-24 * 0.2 * i4, i4), 0.2, rtol=1e-14)
    dg = jnp.asarray(rng.normal(size=10))
    lam = _match_quartic(dg, i4[:1], weights=jnp.ones(10))
    np.testing.assert_allclose(lam, -(dg @ i4[0]) / (24 * i4[0] @ i4[0]), rtol=1e-14)


@pytest.mark.parametrize("name, width", [("relu", 20), ("gauss", 100)])
def test_six_point_prediction_exact_is_cutoff_independent(name, width):
    """With exact correlators the λ-corrected 6-pt prediction is Λ-independent to 1e-8: exactly
    for ReLU σ_b = 0 (I4 ∝ Λ^{d+4}), to machine precision for Gauss-net (converged for Λ >= 7)."""
    net = rgflow.make_net(name, width=width, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    g4 = rgflow.exact_moment(net, xs, 4, full=False)
    g6 = rgflow.exact_moment(net, xs, 6, full=False)
    g6c = rgflow.exact_connected(net, xs, 6, full=False)
    r = six_point_prediction(net, xs, CUTS, g4=g4, g6=g6, g6_connected=g6c)
    pred = np.asarray(r["g6_pred"])
    np.testing.assert_allclose(pred, np.broadcast_to(pred[0], pred.shape), rtol=1e-8)
    # the remainder is the exact connected 6-pt function plus Σ_15 K × (4-pt fit residual)
    k = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
    t6 = sorted_tuples(6, 6)
    res4 = to_full(r["g4c_residual"], 6, 4)
    mix = sum(k[t6[:, p[0]], t6[:, p[1]]] * res4[:, t6[:, q[0]], t6[:, q[1]], t6[:, q[2]], t6[:, q[3]]] for p, q in splits(6, 2))
    np.testing.assert_allclose(r["remainder_minus_connected"], mix, rtol=1e-8, atol=1e-12 * float(jnp.max(jnp.abs(g6))))
    scale = float(jnp.linalg.norm(g6c))
    if name == "relu":  # d_in = 1, positive inputs: G4_c ∝ I4 exactly, the remainder IS G6_c
        assert float(jnp.max(jnp.abs(r["remainder_minus_connected"]))) < 1e-10 * scale
    else:
        assert float(jnp.linalg.norm(r["remainder_minus_connected"][0])) < 1e-3 * scale
    # the λ correction moves the prediction towards G6
    assert abs(float(r["lambda_ratio"][0]) - 1) < abs(float(r["gp_ratio"]) - 1)


def test_bad_input():
    net = rgflow.ErfNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("erf", 1)
    act = Action(net, (LocalCoupling(4, 0.01),))
    with pytest.raises(ValueError, match="cutoffs"):
        connected_correlator(act, xs, jnp.array([7.0, -1.0]), 4)
    with pytest.raises(ValueError, match="d_in"):
        connected_correlator(act, rgflow.hms_inputs("erf", 2), CUTS[:1], 4)
    with pytest.raises(ValueError, match="order"):
        Predictor(act, xs, CUTS[:1], 5)
    with pytest.raises(NotImplementedError, match="exchange"):
        connected_correlator(Action(net, (BilocalQuartic(0.1),)), xs, CUTS[:1], 6)
    pred = Predictor(act, xs, CUTS[:1], 4)
    with pytest.raises(ValueError, match="structure|predictor"):
        pred(Action(net, (BilocalQuartic(0.1),)))
    with pytest.raises(ValueError, match="weights"):
        matching_problem(act, xs, {4: jnp.zeros(126)}, {4: jnp.ones(3)})


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
def test_design_matrix_under_jit_with_traced_cutoff(name):
    """The flow engine differentiates A(Λ) in t = ln Λ inside jit: traced cutoffs must work."""
    net = rgflow.make_net(name, width=5, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    act = Action(net, (LocalCoupling(4, 0.01), PolynomialQuartic(0.0, 0.001)))
    cuts = jnp.array([7.0, 100.0])
    a_jit = jax.jit(lambda c: design_matrix(act, xs, c)[0])(cuts)
    np.testing.assert_allclose(a_jit, design_matrix(act, xs, cuts)[0], rtol=1e-12)
    da = jax.jit(jax.jacfwd(lambda t: design_matrix(act, xs, jnp.exp(t))[0]))(jnp.log(7.0))
    assert da.shape == (1, 126, 3) and bool(jnp.all(jnp.isfinite(da)))
