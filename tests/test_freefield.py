"""The free scalar from a cos-net (physics.md §12): kernel by quadrature against independent
quadrature and closed forms, exact finite-N 4-pt function against its closed form and Monte Carlo,
sampling, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import j0

import rgflow
from rgflow import FreeCosNet, free_g4_connected, free_propagator
from rgflow._freefield import _radial_cdf, _radial_total

M, LAM = 1.0, 10.0


def _scipy_propagator(r, d, mass=M, cutoff=LAM, smooth=False):
    """G_Λ(r) by scipy's adaptive quadrature (QAWO/QAWF for the oscillatory factor)."""
    reg = (lambda p: cutoff**2 / (p * p + cutoff**2)) if smooth else (lambda p: 1.0)
    hi = np.inf if smooth else cutoff
    kw = dict(epsabs=1e-14, epsrel=1e-13, limit=2000)
    if d == 1:
        f = lambda p: reg(p) / (p * p + mass**2)  # noqa: E731
        val = (integrate.quad(f, 0, hi, weight="cos", wvar=r, **kw)[0] if r > 0 else
               integrate.quad(f, 0, hi, **kw)[0])
        return val / math.pi
    if d == 3:
        f = lambda p: p * reg(p) / (p * p + mass**2) / r  # noqa: E731
        return integrate.quad(f, 0, hi, weight="sin", wvar=r, **kw)[0] / (2 * math.pi**2)
    f = lambda p: p * reg(p) * j0(p * r) / (p * p + mass**2)  # noqa: E731
    pts = np.arange(1, int(cutoff * r / math.pi) + 1) * math.pi / r
    return integrate.quad(f, 0, hi, points=pts[pts < hi][:100], **kw)[0] / (2 * math.pi)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_kernel_against_independent_quadrature(d):
    for r in (0.3, 1.0, 2.7):
        ours = float(free_propagator(np.array(r), mass=M, cutoff=LAM, d_in=d))
        ref = _scipy_propagator(r, d)
        assert abs(ours - ref) <= 1e-10, (d, r, ours, ref)
    # r → 0 of the quadrature against the closed form G_Λ(0) (d = 3: (Λ − m atan(Λ/m))/(2π²))
    g0 = FreeCosNet(width=1, d_in=d, mass=M, cutoff=LAM).g0
    closed = {1: math.atan(LAM / M) / (math.pi * M), 2: math.log1p(LAM**2 / M**2) / (4 * math.pi),
              3: (LAM - M * math.atan(LAM / M)) / (2 * math.pi**2)}[d]
    assert abs(g0 - closed) < 1e-14
    assert abs(float(free_propagator(np.array(1e-7), mass=M, cutoff=LAM, d_in=d)) - g0) < 1e-10


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_smooth_kernel_closed_form_against_quadrature():
    for d in (1, 3):
        for r in (0.5, 1.7):
            ours = float(free_propagator(np.array(r), mass=M, cutoff=LAM, d_in=d,
                                         regulator="smooth"))
            assert abs(ours - _scipy_propagator(r, d, smooth=True)) < 1e-10


def test_d1_infinite_cutoff_limit():
    r = np.array([0.5, 1.0, 2.0, 4.0])
    g = free_propagator(r, mass=0.7, cutoff=1e4, d_in=1)
    # the tail |∫_Λ^∞ cos(pr)/(p² + m²) dp|/π ≤ 2/(π Λ² r)
    assert np.max(np.abs(g - np.exp(-0.7 * r) / 1.4)) < 2 / (math.pi * 1e8 * 0.5)


@pytest.mark.parametrize("d,reg", [(1, "sharp"), (2, "sharp"), (3, "sharp"), (1, "smooth"),
                                   (2, "smooth"), (3, "smooth")])
def test_inverse_radial_cdf(d, reg):
    net = FreeCosNet(width=1, d_in=d, mass=M, cutoff=LAM, regulator=reg)
    u = np.linspace(0.001, 0.999, 41)
    p = np.asarray(net.inverse_radial_cdf(u))
    assert np.max(np.abs(_radial_cdf(p, M, LAM, reg, d) / _radial_total(M, LAM, reg, d) - u)) < 1e-12
    if reg == "sharp" and d < 3:  # closed form against the bisection
        assert np.allclose(p, np.asarray(net._bisect_radial(u)), rtol=1e-12, atol=1e-13)


def test_g4_closed_form_and_exact():
    xs = np.array([[-0.6], [-0.1], [0.3], [1.2]])
    net = FreeCosNet(width=7, d_in=1, mass=M, cutoff=LAM)
    generic = np.asarray(net.exact_connected(xs, 4))
    closed = np.asarray(free_g4_connected(xs, width=7, mass=M, cutoff=LAM, d_in=1))
    assert np.max(np.abs(generic - closed)) < 1e-15
    assert abs(closed[0, 0, 0, 0] - 1.5 * net.g0**2 / 7) < 1e-15  # coincident: (3/2) G(0)²/N
    # broken on purpose: (3/2) → 1 in front of G(0) G(x_a + x_b − x_c − x_d) misses by 0.017
    x = xs[:, 0]
    term = sum(float(net.propagator(abs(x[a] + x[b] - x[c] - x[e])))
               for (a, b), (c, e) in (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))))
    broken = closed[0, 1, 2, 3] - 0.5 * net.g0 * term / 7
    assert abs(generic[0, 1, 2, 3] - broken) > 1e-2


@pytest.mark.parametrize("d", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_monte_carlo_against_exact(d):
    xs = np.array([[0.0] * d, [0.4] + [0.0] * (d - 1), [1.0] * d])
    net = FreeCosNet(width=3, d_in=d, mass=M, cutoff=5.0)
    m = rgflow.measure(net, xs, 20_000, key=jax.random.key(3), orders=(2, 4), n_blocks=16)
    for order in (2, 4):
        ex = np.asarray(net.exact_connected(xs, order))
        mc, err = np.asarray(m.connected(order)), np.asarray(m.connected_stderr(order))
        z = (mc - ex) / err
        assert np.max(np.abs(z)) < 4.5, (order, np.max(np.abs(z)))
    # the 1/N signal is resolved (≥ 5σ at coincident points) and the free-theory value (0) fails
    g4, e4 = np.asarray(m.connected(4)), np.asarray(m.connected_stderr(4))
    assert g4[0, 0, 0, 0] / e4[0, 0, 0, 0] > 5
    # the measured ensemble is the one of `sample` (same draws)
    f = np.asarray(net.sample(xs, 5, key=jax.random.key(3)))
    assert f.shape == (5, 3) and np.all(np.isfinite(f))


def test_filtered_field_is_subset_of_neurons():
    net = FreeCosNet(width=40, d_in=2, mass=M, cutoff=LAM)
    xs = np.array([[0.0, 0.0], [0.5, -0.3]])
    from rgflow._freefield import draw_jit

    params = draw_jit(net, jax.random.key(0), jax.numpy.arange(3, dtype=jax.numpy.uint32))
    a, c, w = (np.asarray(p) for p in params)
    low = np.asarray(FreeCosNet.field(params, xs, max_frequency=3.0))
    keep = np.linalg.norm(w, axis=-1) <= 3.0
    direct = np.einsum("bn,bpn->bp", a * keep, np.cos(np.einsum("bnd,pd->bpn", w, xs) + c[:, None]))
    assert np.allclose(low, direct, atol=1e-13)
    assert 0 < net.neuron_fraction(3.0) < 1 and np.all(np.linalg.norm(w, axis=-1) <= LAM)


@pytest.mark.parametrize("kwargs,match", [
    (dict(mass=0.0), "mass"), (dict(mass=-1.0), "mass"), (dict(cutoff=0.0), "cutoff"),
    (dict(cutoff=float("nan")), "cutoff"), (dict(mass=float("inf")), "mass"),
    (dict(regulator="box"), "regulator"), (dict(regulator="smooth", cutoff=0.5), "cutoff"),
    (dict(d_in=4), "d_in"),
])
def test_bad_input(kwargs, match):
    args = dict(width=3, d_in=1, mass=1.0, cutoff=5.0) | kwargs
    with pytest.raises(ValueError, match=match):
        FreeCosNet(**args)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_filtered_kernel_is_the_lower_cutoff_propagator(d):
    """Keeping neurons with |w| <= Λ' leaves a cos-net whose kernel is G_Λ'(r): the kept
    frequencies have density ∝ G on |w| <= Λ' and σ_a² P(|w| <= Λ')/2 = G_Λ(0) F(Λ')/F(Λ) = G_Λ'(0)."""
    big = FreeCosNet(width=1, d_in=d, mass=M, cutoff=LAM)
    small = FreeCosNet(width=1, d_in=d, mass=M, cutoff=3.0)
    assert abs(big.g0 * big.neuron_fraction(3.0) - small.g0) < 1e-14


def test_traced_propagator():
    """The JAX propagator (used when the action code traces the kernel) equals the NumPy one in
    d_in = 1, 3 (sharp and smooth), is NaN beyond its range, and d_in = 2 is refused."""
    r = np.linspace(0.0, 12.0, 9)
    for d, reg in ((1, "sharp"), (3, "sharp"), (1, "smooth"), (3, "smooth")):
        net = FreeCosNet(width=4, d_in=d, mass=1.0, cutoff=5.0, regulator=reg)
        traced = np.asarray(jax.jit(net.traced_propagator)(r))
        assert np.allclose(traced, net.propagator(r), rtol=1e-11, atol=1e-14), (d, reg)
    net = FreeCosNet(width=4, d_in=1, mass=1.0, cutoff=5.0)
    assert np.isnan(np.asarray(net.traced_propagator(jnp.asarray([20.0])))[0])
    with pytest.raises(TypeError, match="d_in = 1, 3"):
        FreeCosNet(width=4, d_in=2, mass=1.0, cutoff=5.0).traced_propagator(jnp.asarray([1.0]))
