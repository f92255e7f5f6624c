"""Exact correlators (physics.md §4): closed forms, independent quadrature, exact N-scaling."""

import math

import numpy as np
import pytest
from conftest import NETS
from scipy.special import erf

import rgflow
from rgflow._neuron import _subspace


def test_relu_closed_form_positive_inputs():
    # σ_b = 0, d_in = 1, x > 0: z_a = w x_a with w ~ N(0, σ²), so M_T = ½ σⁿ (n−1)!! Π x_a,
    # C = ½σ² x x', G4_c = (15/4) σ_W⁸ Πx / N and G6_c = 82.5 σ_W¹² Πx / N².
    s, n_w = 1.3, 7
    net = rgflow.ReLUNet(width=n_w, sigma_w=s)
    xs = np.array([[0.2], [0.5], [0.9], [1.2]])
    x = xs[:, 0]
    t4, t6 = rgflow.sorted_tuples(4, 4), rgflow.sorted_tuples(4, 6)
    g4c = np.asarray(rgflow.exact_connected(net, xs, 4, full=False))
    g6c = np.asarray(rgflow.exact_connected(net, xs, 6, full=False))
    np.testing.assert_allclose(g4c, 15 / 4 * s**8 * np.prod(x[t4], axis=1) / n_w, rtol=1e-13)
    np.testing.assert_allclose(g6c, 82.5 * s**12 * np.prod(x[t6], axis=1) / n_w**2, rtol=1e-12)


@pytest.mark.parametrize("d_in, tol", [(1, 1e-11), (2, 3e-10)])
def test_erf_moments_against_independent_quadrature(d_in, tol):
    # Independent route: a tensor Gauss–Legendre rule on [−8, 8]^r with 120 nodes per axis.
    net = rgflow.ErfNet(width=1, d_in=d_in)
    xs = rgflow.hms_inputs("erf", d_in)
    c = _subspace(net.feature_vectors(xs))
    r = c.shape[1]
    t, w = np.polynomial.legendre.leggauss(120)
    u, w = 8 * t, 8 * w * np.exp(-32 * t**2) / math.sqrt(2 * math.pi)
    nodes = np.stack(np.meshgrid(*([u] * r), indexing="ij"), -1).reshape(-1, r)
    ww = np.prod(np.stack(np.meshgrid(*([w] * r), indexing="ij"), -1), -1).ravel()
    phi = erf(nodes @ c.T)
    for order in (4, 6):
        tup = rgflow.sorted_tuples(len(xs), order)[::7]
        ref = np.array([np.sum(ww * np.prod(phi[:, tt], axis=1)) for tt in tup])
        got = np.asarray(rgflow.neuron_moments(net, xs, order, tup))
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "name, d_in, sigma_b, tol",
    [("erf", 1, 1.0, 1e-12), ("erf", 2, 1.0, 1e-11), ("erf", 3, 1.0, 5e-7),
     ("relu", 1, 0.0, 1e-14), ("relu", 2, 0.0, 1e-14), ("relu", 3, 0.0, 1e-14),
     ("relu", 2, 1.0, 1e-14), ("relu", 3, 1.0, 2e-6)],
)
def test_two_point_moment_matches_kernel(name, d_in, sigma_b, tol):
    # The 2-pt single-neuron moment from the quadrature must reproduce the closed-form kernel.
    net = NETS[name](width=1, d_in=d_in, sigma_b=sigma_b)
    xs = rgflow.hms_inputs(name, d_in)
    c = rgflow.to_full(rgflow.neuron_moments(net, xs, 2), len(xs), 2)
    k = np.asarray(net.kernel(xs, xs))
    np.testing.assert_allclose(sigma_b**2 + np.asarray(c), k, rtol=tol, atol=tol)


def test_gauss_moments_closed_form_against_quadrature():
    # Gauss-net closed form vs direct 2-d Gauss–Hermite over (w, b) with the normalisation.
    net = rgflow.GaussNet(width=1, sigma_w=0.8, sigma_b=0.6)
    xs = np.array([[-0.5], [0.1], [0.7]])
    u, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / math.sqrt(2 * math.pi)
    z = 0.8 * u[:, None, None] * xs[None, None, :, 0] + 0.6 * u[None, :, None]
    sxx = 0.36 + 0.64 * xs[:, 0] ** 2
    phi = np.exp(z - sxx)
    ww = np.outer(w, w)[..., None]
    for order in (2, 4, 6):
        tup = rgflow.sorted_tuples(3, order)
        ref = [np.sum(np.outer(w, w) * np.prod(phi[..., list(t)], axis=-1)) for t in tup]
        got = np.asarray(rgflow.neuron_moments(net, xs, order))
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    del ww


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
def test_exact_width_scaling(name):
    xs = rgflow.hms_inputs(name, 1)
    a, b = NETS[name](width=2), NETS[name](width=50)
    for order, power in ((4, 1), (6, 2)):
        ga = np.asarray(rgflow.exact_connected(a, xs, order, full=False))
        gb = np.asarray(rgflow.exact_connected(b, xs, order, full=False))
        np.testing.assert_allclose(ga * 2**power, gb * 50**power, rtol=1e-13)
    # G2 = K at every width.
    np.testing.assert_allclose(rgflow.exact_moment(a, xs, 2), a.kernel(xs, xs), rtol=1e-15)
    np.testing.assert_allclose(rgflow.exact_connected(b, xs, 2), a.kernel(xs, xs), rtol=1e-15)


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
def test_moments_assemble_from_cumulants(name):
    # G4 − G4_GP = G4_c and the full tensors are symmetric.
    net = NETS[name](width=3)
    xs = rgflow.hms_inputs(name, 1)[:4]
    g4 = np.asarray(rgflow.exact_moment(net, xs, 4))
    gp4 = np.asarray(rgflow.gp_correlator(net, xs, 4))
    np.testing.assert_allclose(g4 - gp4, rgflow.exact_connected(net, xs, 4), rtol=1e-12, atol=1e-14)
    assert np.allclose(g4, g4.transpose(2, 0, 3, 1))
    g6 = np.asarray(rgflow.exact_moment(net, xs, 6))
    assert np.allclose(g6, g6.transpose(5, 3, 1, 0, 2, 4))


def test_gp_correlator_wick():
    net = rgflow.ErfNet(width=1)
    xs = np.array([[0.3], [-0.4]])
    k = np.asarray(net.kernel(xs, xs))
    g4 = np.asarray(rgflow.gp_correlator(net, xs, 4))
    assert np.isclose(g4[0, 0, 0, 0], 3 * k[0, 0] ** 2)
    assert np.isclose(g4[0, 0, 1, 1], k[0, 0] * k[1, 1] + 2 * k[0, 1] ** 2)
    g6 = np.asarray(rgflow.gp_correlator(net, xs, 6))
    assert np.isclose(g6[0, 0, 0, 0, 0, 0], 15 * k[0, 0] ** 3)
    assert rgflow.gp_correlator(net, xs, 8, full=False).shape == (9,)


@pytest.mark.parametrize("fn", [rgflow.exact_connected, rgflow.exact_moment, rgflow.gp_correlator])
def test_bad_inputs(fn):
    net = rgflow.ErfNet(width=2, d_in=2)
    good = np.zeros((3, 2))
    with pytest.raises(ValueError, match="order"):
        fn(net, good, 3)
    with pytest.raises(ValueError, match="xs"):
        fn(net, np.zeros((3, 1)), 4)
    with pytest.raises(ValueError, match="xs"):
        fn(net, np.array([[0.0, np.nan]]), 4)
    with pytest.raises(ValueError, match="xs"):
        fn(net, np.array([[0.0, np.inf]]), 2)
    with pytest.raises(TypeError, match="net"):
        fn("erf", good, 2)
