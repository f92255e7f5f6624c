"""Dimensions, checked exponents of dimensionful couplings, failure reporting and the 1/N
hierarchy (rgflow._relevance; physics.md §7, "What this flow is, and is not")."""

import json

import numpy as np
import pytest

import rgflow
from rgflow._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic
from rgflow._beta import matching_problem
from rgflow._relevance import (
    DIRECTION,
    coupling_dimensions,
    coupling_orders,
    dimensionful_exponents,
    failed_checks,
    field_dimension,
    fit_residuals,
    flow_gap,
    width_hierarchy,
)

WINDOW = np.array([1e3, 3e3, 1e4, 3e4, 1e5])


@pytest.mark.parametrize("name,d_in,expected", [
    ("relu", 1, -1.0), ("relu", 3, -1.0), ("erf", 1, 0.0), ("erf", 2, 0.0), ("gauss", 2, None),
])
def test_field_dimension_from_kernel_scaling(name, d_in, expected):
    fd = field_dimension(rgflow.make_net(name, width=1, d_in=d_in))
    if expected is None:
        assert fd["decaying"] and fd["field_dimension"] is None
    else:
        assert fd["field_dimension"] == pytest.approx(expected, abs=1e-4)
        if name == "relu":
            assert fd["joint_exponent"] == pytest.approx(2.0, abs=1e-10)  # K(ax, ax') = a² K


def test_generic_activation_dimension():
    """tanh is bounded: [f] = 0, derived numerically (not looked up)."""
    fd = field_dimension(rgflow.make_net("tanh", width=1, d_in=1))
    assert fd["field_dimension"] == pytest.approx(0.0, abs=1e-3)


def test_coupling_dimensions_and_orders():
    net = rgflow.make_net("relu", width=1, d_in=2)
    act = Action(net, [PolynomialQuartic(), LocalCoupling(6), BilocalQuartic()])
    assert coupling_dimensions(act, -1.0) == (6.0, 8.0, 8.0, 8.0)
    assert coupling_dimensions(act, None) == (None,) * 4
    assert coupling_orders(act) == (4, 4, 6, 4)


def test_stability_matrix_and_classification_are_gone():
    """The box cutoff's dimensionless flow is zero at tree level: no stability matrix, no
    relevant/marginal/irrelevant classes anywhere in the public API."""
    for name in ("stability_matrix", "classify", "relevance"):
        assert not hasattr(rgflow, name), name


@pytest.fixture(scope="module")
def relu3():
    """ReLU d_in = 3, 4-pt operators only (power counting exact: θ = −[g])."""
    net = rgflow.make_net("relu", width=20, d_in=3)
    xs = rgflow.hms_inputs("relu", 3)
    act = Action(net, [PolynomialQuartic(), BilocalQuartic()])
    t4 = np.asarray(rgflow.exact_connected(net, xs, 4, full=False))
    prob = matching_problem(act, xs, {4: t4})
    prob.precompute(WINDOW)
    return net, xs, act, t4, prob


def test_relu_dimensionful_exponents_power_counting(relu3):
    """θ(λ0) = −7, θ(λ2) = −9, θ(λ_NL) = −10 against [g] read off the kernel's scaling (an
    independent route); the report carries the direction and no class."""
    net, xs, act, _, prob = relu3
    dims = coupling_dimensions(act, field_dimension(net, xs))
    assert dims == (7.0, 9.0, 10.0)
    rep = dimensionful_exponents(prob, WINDOW, dimensions=dims, flow_gaps=[1e-9] * 3)
    assert rep["direction"] == DIRECTION and "removes the volume (box) cutoff" in rep["direction"]
    json.dumps(rep)  # JSON-ready
    th = [e["theta"] for e in rep["couplings"]]
    np.testing.assert_allclose(th, [-7, -9, -10], atol=1e-8)
    assert [e["status"] for e in rep["couplings"]] == ["ok"] * 3
    np.testing.assert_allclose([e["delta_theta"] for e in rep["couplings"][1:]], [-2, -3], atol=1e-8)
    text = json.dumps(rep).lower()
    assert "relevant" not in text and "marginal" not in text and "classification" not in text


def test_large_residual_withholds_exponent(relu3):
    """A target that one set of local couplings cannot describe: θ withheld, the residual (equal
    to an independent numpy least-squares residual) reported."""
    net, xs, act, t4, prob = relu3
    rng = np.random.default_rng(1)
    bad = t4 * (1 + 0.8 * rng.choice([-1.0, 1.0], size=t4.size))
    p2 = matching_problem(act, xs, {4: bad})
    p2._cache.update(prob._cache)  # same conditions, same tables
    rep = dimensionful_exponents(p2, WINDOW, dimensions=(7.0, 9.0, 10.0))
    lin = np.asarray(prob.tables(WINDOW)[0])
    ref = 0.0
    for a in lin:  # columns scale like Λ^7 … Λ^10: normalise them before the least squares
        s = np.linalg.norm(a, axis=0)
        c = np.linalg.lstsq(a / s, bad, rcond=None)[0]
        ref = max(ref, np.linalg.norm((a / s) @ c - bad) / np.linalg.norm(bad))
    assert ref > 0.1
    for e in rep["couplings"]:
        assert e["status"] == "failed" and e["theta"] is None and e["delta_theta"] is None
        assert e["residual"] == pytest.approx(ref, rel=1e-6)
        assert f"{ref:.2g}" in e["reasons"][0]
    np.testing.assert_allclose(fit_residuals(p2, WINDOW).max(axis=0), ref, rtol=1e-6)


def test_flow_gap_withholds_exponent(relu3):
    _, _, _, _, prob = relu3
    gf = np.ones((3, 2))
    gr = np.ones((3, 2))
    gf[1, 1] = 1.5
    np.testing.assert_allclose(flow_gap(gf, gr), [0.0, 0.5])
    rep = dimensionful_exponents(prob, WINDOW, flow_gaps=[1e-9, 2e-2, 1e-9])
    st = [e["status"] for e in rep["couplings"]]
    assert st == ["ok", "failed", "ok"]
    assert "flow departs from the refits by 0.02" in rep["couplings"][1]["reasons"][0]


def test_failed_checks():
    assert failed_checks(0.05, 1e-4, 0.01) == []
    r = failed_checks(0.5, 2.0, 0.2)
    assert len(r) == 3 and "0.5" in r[0] and "2" in r[1] and "0.2" in r[2]
    assert failed_checks(float("nan"))  # NaN fails
    with pytest.raises(ValueError, match="max_residual"):
        dimensionful_exponents(None, WINDOW, max_residual=-1)  # type: ignore[arg-type]


@pytest.mark.slow  # ~7-10 s; `make test-slow`
def test_width_hierarchy_relu_d1():
    """λ ∝ 1/N and κ ∝ 1/N² (κ including its λ² exchange part), κ/λ ∝ 1/N, from exact
    correlators computed independently at each width (ReLU d_in = 1, σ_b = 0: one local λ and κ
    describe the data exactly)."""
    xs = rgflow.hms_inputs("relu", 1)
    widths = [10, 40, 160]
    nets = [rgflow.make_net("relu", width=n, d_in=1) for n in widths]
    act = Action(nets[0], [LocalCoupling(4), LocalCoupling(6)])
    tg = [{k: np.asarray(rgflow.exact_connected(n, xs, k, full=False)) for k in (4, 6)} for n in nets]
    prob = matching_problem(act, xs, tg[0])
    cut = np.array([1e2, 1e4])
    h = width_hierarchy(prob, [np.concatenate([t[4], t[6]]) for t in tg], widths, cut,
                        orders=coupling_orders(act), labels=["λ", "κ"])
    lam, kap = h["entries"]
    assert lam["status"] == kap["status"] == "ok"
    assert lam["width_exponent"] == pytest.approx(-1.0, abs=1e-9)
    assert kap["width_exponent"] == pytest.approx(-2.0, abs=1e-9)
    assert kap["ratio_width_exponent"] == pytest.approx(-1.0, abs=1e-9)
    assert kap["predicted_ratio_width_exponent"] == -1.0
    with pytest.raises(ValueError, match="widths"):
        width_hierarchy(prob, [np.concatenate([t[4], t[6]]) for t in tg[:1]], [10], cut,
                        orders=(4, 6))
