"""Engineering dimensions, stability matrix and relevance (rgflow._relevance; physics.md §7)."""

import numpy as np
import pytest

import rgflow
from rgflow._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic
from rgflow._beta import matching_problem
from rgflow._relevance import (
    classify,
    coupling_dimensions,
    field_dimension,
    relevance,
    stability_matrix,
)


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


def test_coupling_dimensions():
    net = rgflow.make_net("relu", width=1, d_in=2)
    act = Action(net, [PolynomialQuartic(), LocalCoupling(6), BilocalQuartic()])
    assert coupling_dimensions(act, -1.0) == (6.0, 8.0, 8.0, 8.0)
    assert coupling_dimensions(act, None) == (None,) * 4


def test_relu_quartics_less_relevant_fast():
    """ReLU d_in = 3, 4-pt operators only: θ(λ0) = −7, θ(λ2) = θ(λ_NL) = −9 (power counting)."""
    net = rgflow.make_net("relu", width=20, d_in=3)
    xs = rgflow.hms_inputs("relu", 3)
    act = Action(net, [PolynomialQuartic(), BilocalQuartic()])
    t4 = np.asarray(rgflow.exact_connected(net, xs, 4, full=False))
    prob = matching_problem(act, xs, {4: t4})
    dims = coupling_dimensions(act, field_dimension(net, xs))
    assert dims == (7.0, 9.0, 10.0)
    rel = relevance(prob, np.array([1e2, 1e5]), dims)
    np.testing.assert_allclose(rel["theta"], [-7, -9, -10], atol=1e-8)
    np.testing.assert_allclose(rel["y_stability"], 0.0, atol=1e-8)
    assert rel["less_relevant_than_quartic"] == [False, True, True]


@pytest.mark.slow
def test_relu_stability_matrix_power_counting_and_classification():
    """ReLU d_in = 2: θ = −[g] exactly; ĝ = g Λ^{[g]} has zero stability eigenvalues; the sextic
    and non-constant quartics come out less relevant than the constant quartic."""
    net = rgflow.make_net("relu", width=20, d_in=2)
    xs = rgflow.hms_inputs("relu", 2)
    act = Action(net, [PolynomialQuartic(), BilocalQuartic(), LocalCoupling(6)])
    t4 = np.asarray(rgflow.exact_connected(net, xs, 4, full=False))
    t6 = np.asarray(rgflow.exact_connected(net, xs, 6, full=False))
    prob = matching_problem(act, xs, {4: t4, 6: t6},
                            {4: np.full(t4.size, 1 / np.mean(t4**2)), 6: np.full(t6.size, 1 / np.mean(t6**2))})
    dims = coupling_dimensions(act, field_dimension(net, xs))
    assert dims == (6.0, 8.0, 8.0, 8.0)
    win = np.array([1e3, 1e4, 1e5])
    prob.precompute(win)  # one quadrature (the exchange integrals are the costly part)
    st = stability_matrix(prob, win, dims, index=0)
    np.testing.assert_allclose(st["theta"], [-6, -8, -8, -8], atol=1e-8)
    np.testing.assert_allclose(st["y"], 0.0, atol=1e-8)
    rel = relevance(prob, win, dims)
    np.testing.assert_allclose(rel["theta"], [-6, -8, -8, -8], atol=1e-8)
    assert rel["classification"] == ["irrelevant"] * 4
    assert rel["less_relevant_than_quartic"] == [False, True, True, True]


def test_classify_uses_errors():
    assert classify([0.01, -1.0, 1.0]) == ["marginal", "irrelevant", "relevant"]
    assert classify([-0.3], [0.2]) == ["marginal"]
