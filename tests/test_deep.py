"""Deep networks (physics.md §11): DeepNet, its sampler, the layer recursion of kernels and
4-pt vertices, and the refusals of the single-hidden-layer formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import rgflow
from rgflow._deep import (
    _diagonal_derivatives,
    _erf_map,
    _hidden_moments4,
    _pair_derivatives,
    _relu_map,  # noqa: E402
)

XS3 = np.array([[-1.0], [0.3], [1.0]])


def _ratio(m):
    """Jackknife E[f⁴]/(3 E[f²]²) at a single input, with its standard error."""
    est, err = m.jackknife(lambda mom: mom[4] / (3 * mom[2] ** 2))
    return float(np.ravel(est)[0]), float(np.ravel(err)[0])


# ------------------------------------------------------------------------ golden checks ---


@pytest.mark.parametrize("n, depth, n_nets", [(10, 3, 100_000), (20, 5, 60_000)])
def test_relu_golden_ratio(key, n, depth, n_nets):
    """Single input, ReLU, σ_b = 0: E[f⁴]/(3E[f²]²) = (1 + 5/n)^L exactly (any σ_W);
    the O(1/n) recursion gives 1 + 5L/n."""
    net = rgflow.DeepNet(activation="relu", width=n, depth=depth, sigma_w=1.3)
    xs = np.array([[0.7]])
    r, err = _ratio(rgflow.measure(net, xs, n_nets, key=key, orders=(4,)))
    exact = (1 + 5 / n) ** depth
    assert abs(r - exact) < 4 * err, (r, err, exact)
    assert abs(r - 1) > 4 * err  # the signal is resolved
    sol = rgflow.layer_flow(net, xs)
    np.testing.assert_allclose(sol.normalized_vertex()[:, 0], 5 * np.arange(depth + 1) / n,
                               rtol=1e-12, atol=1e-15)
    g4 = rgflow.perturbative_connected(net, xs, 4)[0, 0, 0, 0]
    k = net.kernel(xs, xs)[0, 0]
    np.testing.assert_allclose(g4 / (3 * k**2), 5 * depth / n, rtol=1e-12)


def test_linear_golden_ratio(key):
    """Deep linear, σ_b = 0: (1 + 2/n)^L exactly; 2L/n at O(1/n); no kernel correction."""
    n, depth = 8, 3
    net = rgflow.DeepNet(activation="linear", width=n, depth=depth, sigma_b=0.0, sigma_w=0.9)
    xs = np.array([[1.2]])
    r, err = _ratio(rgflow.measure(net, xs, 100_000, key=key, orders=(4,)))
    assert abs(r - (1 + 2 / n) ** depth) < 4 * err
    sol = rgflow.layer_flow(net, xs)
    np.testing.assert_allclose(sol.normalized_vertex()[-1, 0], 2 * depth / n, rtol=1e-12)
    assert np.all(sol.kernel_corrections == 0)
    # K⁽ᴸ⁺¹⁾ = σ_W^{2(L+1)} x²
    np.testing.assert_allclose(sol.kernels[-1, 0, 0], 0.9 ** (2 * depth + 2) * 1.44, rtol=1e-13)


def test_polynomial_activation_exact_at_depth_two():
    """φ(z) = z², one input, L = 2: E[f²] = σ_b² + 3σ_W²[(E Ĝ)² + Var Ĝ] exactly, with
    E Ĝ = σ_b² + 3σ_W²K₁², Var Ĝ = 96σ_W⁴K₁⁴/n (hand-derived; the correction is exactly 1/n),
    and V⁽³⁾ = σ_W⁴[96K₂⁴ + (6K₂)² V⁽²⁾], V⁽²⁾ = 96σ_W⁴K₁⁴ — a check of the generic (quadrature,
    Price's theorem) path."""

    def square(z):
        return z * z

    sw, sb, n = 0.8, 0.3, 7
    net = rgflow.DeepNet(activation=square, width=n, depth=2, sigma_w=sw, sigma_b=sb)
    x = 0.9
    k1 = sb**2 + sw**2 * x * x
    k2 = sb**2 + 3 * sw**2 * k1**2
    sol = rgflow.layer_flow(net, [[x]])
    np.testing.assert_allclose(sol.kernels[-1, 0, 0], sb**2 + 3 * sw**2 * k2**2, rtol=1e-12)
    np.testing.assert_allclose(sol.kernel_corrections[-1, 0, 0], 288 * sw**6 * k1**4, rtol=1e-10)
    v2 = 96 * sw**4 * k1**4
    np.testing.assert_allclose(sol.vertices[1, 0, 0], v2, rtol=1e-10)
    np.testing.assert_allclose(sol.vertices[2, 0, 0], sw**4 * (96 * k2**4 + 36 * k2**2 * v2),
                               rtol=1e-10)
    full = rgflow.perturbative_connected(net, [[x]], 2)[0, 0]
    np.testing.assert_allclose(full, sb**2 + 3 * sw**2 * (k2**2 + v2 / n), rtol=1e-12)


# --------------------------------------------------------------------- depth 1 = §4 exact ---


@pytest.mark.parametrize("activation, sigma_b, d_in", [
    ("relu", 0.0, 1), ("relu", 0.5, 2), ("erf", 1.0, 1), ("linear", 0.7, 2),
    pytest.param("tanh", 1.0, 1, marks=pytest.mark.slow)])
def test_depth_one_is_exact_one_layer(activation, sigma_b, d_in):
    net = rgflow.DeepNet(activation=activation, width=7, depth=1, d_in=d_in, sigma_b=sigma_b,
                         sigma_w=1.2)
    one = net.one_layer()
    xs = rgflow.hms_inputs("relu" if activation == "relu" else "erf", d_in)[::-1][:4]
    a = np.asarray(rgflow.perturbative_connected(net, xs, 4))
    b = np.asarray(rgflow.exact_connected(one, xs, 4))
    # closed forms: 1e-10; generic φ: the layer map's 100 × 100 product rule against the
    # one-layer radial rule for C_ab (measured 4e-9 for tanh, K up to 2.4)
    assert np.max(np.abs(a - b)) < (1e-10 if activation in ("relu", "erf", "linear") else 1e-8)
    np.testing.assert_allclose(rgflow.perturbative_connected(net, xs, 2),
                               rgflow.exact_connected(one, xs, 2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.kernel(xs, xs), one.kernel(xs, xs), rtol=0, atol=1e-12)
    # a one-layer net is accepted as depth 1
    np.testing.assert_allclose(rgflow.perturbative_connected(one, xs, 4), a, rtol=0, atol=1e-14)


def test_depth_one_samples_the_one_layer_networks(key):
    """Depth 1 reads the random vector as the one-layer layout: the same networks."""
    net = rgflow.DeepNet(activation="erf", width=6, depth=1, d_in=2)
    xs = rgflow.hms_inputs("erf", 2)
    np.testing.assert_allclose(net.sample(xs, 50, key=key), net.one_layer().sample(xs, 50, key=key),
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ kernel recursion ---


def test_kernel_closed_forms_against_quadrature():
    """erf/linear closed forms (maps, autodiff-free derivatives, innermost closed form of the
    4-d rule) against the generic path of a callable φ (product rule, Price's theorem)."""
    xs = np.array([[-1.0], [0.4], [1.0]])
    for name, fn in (("erf", lambda z: jax.scipy.special.erf(z)), ("linear", lambda z: z)):
        kw = dict(width=5, depth=2, sigma_w=1.3, sigma_b=0.4)
        closed = rgflow.DeepNet(activation=name, **kw)
        generic = rgflow.DeepNet(activation=fn, **kw)
        np.testing.assert_allclose(closed.kernel(xs, xs), generic.kernel(xs, xs), rtol=1e-10)
        a, b = rgflow.layer_flow(closed, xs), rgflow.layer_flow(generic, xs)
        # the two 4-d rules (closed vs numerical innermost level) agree to ~2e-6 relative
        np.testing.assert_allclose(a.vertices, b.vertices, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a.kernel_corrections, b.kernel_corrections, rtol=1e-5,
                                   atol=1e-7)


def test_derivatives_against_autodiff():
    a, g, b = np.array([0.7, 1.3]), np.array([0.2, -0.9]), np.array([1.1, 0.95])
    v = jnp.stack([a, g, b], 1)
    for name, fmap in (("erf", _erf_map), ("relu", _relu_map)):
        net = rgflow.DeepNet(activation=name, width=3)
        d, h = _pair_derivatives(net, a, g, b)

        def f(x, fmap=fmap):
            return fmap(x[0], x[1], x[2])

        np.testing.assert_allclose(d, jax.vmap(jax.grad(f))(v), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h, jax.vmap(jax.hessian(f))(v), rtol=1e-10, atol=1e-12)
    net = rgflow.DeepNet(activation="erf", width=3)
    d1, d2 = _diagonal_derivatives(net, a)

    def f1(x):
        return (2 / jnp.pi) * jnp.arcsin(2 * x / (1 + 2 * x))

    np.testing.assert_allclose(d1, jax.vmap(jax.grad(f1))(a), rtol=1e-13)
    np.testing.assert_allclose(d2, jax.vmap(jax.grad(jax.grad(f1)))(a), rtol=1e-13)


def test_hidden_moments_against_one_layer_rules():
    """The nested 4-d rule of hidden layers against the spherical one-layer rules (exact to
    ~1e-13 for rank <= 3), on one-layer covariances (including degenerate ones)."""
    from rgflow._neuron import neuron_moments

    for name, d_in, sb in (("relu", 2, 0.5), ("erf", 2, 0.3), ("relu", 3, 0.0)):
        net = rgflow.DeepNet(activation=name, width=3, d_in=d_in, sigma_b=sb)
        xs = rgflow.hms_inputs("relu" if name == "relu" else "erf", d_in)
        cov = np.asarray(net.covariance(xs, xs))
        a = _hidden_moments4(net, cov)
        b = np.asarray(neuron_moments(net.one_layer(), xs, 4))
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-7)


def test_kernel_against_monte_carlo(key):
    """E[f f] of wide deep nets against K + K1/n (z-scores)."""
    for name, sb in (("relu", 0.3), ("erf", 1.0)):
        net = rgflow.DeepNet(activation=name, width=48, depth=3, sigma_w=1.3, sigma_b=sb)
        m = rgflow.measure(net, XS3, 5000, key=key, orders=(2,))
        ref = rgflow.perturbative_connected(net, XS3, 2)
        z = (m.moment(2) - ref) / m.moment_stderr(2)
        assert np.max(np.abs(z)) < 4.5, z
        # the kernel method and the flow agree
        np.testing.assert_allclose(net.kernel(XS3, XS3), rgflow.layer_flow(net, XS3).kernels[-1],
                                   rtol=1e-13)


# ------------------------------------------------------------- multi-input 4-pt vs MC ---


def _check_four_point(net, xs, n_nets, key):
    m = rgflow.measure(net, xs, n_nets, key=key, orders=(4,), dtype=jnp.float32)
    c4 = np.asarray(m.connected(4, full=False))
    err = np.asarray(m.connected_stderr(4, full=False))
    theory = np.asarray(rgflow.perturbative_connected(net, xs, 4, full=False))
    z = (c4 - theory) / err
    assert np.max(np.abs(z)) < 4.5, z
    return theory / err


def test_four_point_relu_monte_carlo(key):
    net = rgflow.DeepNet(activation="relu", width=50, depth=2, sigma_w=1.4, sigma_b=0.5)
    signal = _check_four_point(net, XS3, 60_000, key)
    assert np.max(signal) > 8  # the O(1/n) signal is resolved


@pytest.mark.slow
@pytest.mark.parametrize("name, depth, sigma_b, sigma_w", [
    ("relu", 4, 0.5, 1.4), ("erf", 2, 0.0, 1.5), ("erf", 4, 0.0, 1.5)])
def test_four_point_monte_carlo_slow(key, name, depth, sigma_b, sigma_w):
    net = rgflow.DeepNet(activation=name, width=50, depth=depth, sigma_w=sigma_w,
                         sigma_b=sigma_b)
    signal = _check_four_point(net, XS3, 200_000, key)
    assert np.max(signal) > 4


def test_four_point_erf_monte_carlo(key):
    net = rgflow.DeepNet(activation="erf", width=50, depth=3, sigma_w=1.5, sigma_b=0.0)
    signal = _check_four_point(net, XS3, 60_000, key)
    assert np.mean(np.abs(signal)) > 1


# ------------------------------------------------------------ sampling and measurement ---


def test_measure_independent_of_batch_size_and_matches_sample(key):
    net = rgflow.DeepNet(activation="tanh", width=6, depth=3, d_in=2)
    xs = rgflow.hms_inputs("erf", 2)
    a = rgflow.measure(net, xs, 500, key=key, n_blocks=4, batch_size=7, orders=(4,))
    b = rgflow.measure(net, xs, 500, key=key, n_blocks=4, batch_size=128, orders=(4,))
    for n in (2, 4):
        np.testing.assert_allclose(a.moment(n), b.moment(n), rtol=1e-11, atol=1e-13)
    f = np.asarray(net.sample(xs, 500, key=key))
    np.testing.assert_allclose(a.moment(2), f.T @ f / 500, rtol=1e-11, atol=1e-13)
    # a network depends only on its index
    np.testing.assert_allclose(net.sample(xs, 3, key=key, start=497), f[497:], rtol=1e-13)


def test_sampler_chunks_large_batches(key):
    """Batches above the ~2²⁰-number working set are split into chunks: same networks."""
    from rgflow._deep import sample_deep_outputs

    net = rgflow.DeepNet(activation="relu", width=300, depth=2, sigma_b=0.2)  # 91k numbers/net
    idx = jnp.arange(25, dtype=jnp.uint32)
    xs = jnp.asarray(XS3)
    whole = sample_deep_outputs(net, xs, key, idx, jnp.float64)
    parts = jnp.concatenate([sample_deep_outputs(net, xs, key, idx[i : i + 1], jnp.float64)
                             for i in range(25)])
    np.testing.assert_allclose(whole, parts, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------- criticality ---


def test_criticality_and_susceptibilities():
    x = [[0.8]]
    sol = rgflow.layer_flow(rgflow.DeepNet(activation="relu", width=10, depth=4, sigma_w=2**0.5),
                            x)
    assert sol.critical is True
    np.testing.assert_allclose(sol.chi_parallel, 1.0, rtol=1e-14)
    np.testing.assert_allclose(sol.chi_perp, 1.0, rtol=1e-14)
    assert rgflow.layer_flow(rgflow.DeepNet(activation="relu", width=10, depth=2), x).critical \
        is False
    erf_crit = rgflow.DeepNet(activation="erf", width=10, depth=3, sigma_b=0.0,
                              sigma_w=math.sqrt(math.pi) / 2)
    assert rgflow.layer_flow(erf_crit, x).critical is True
    tanh = rgflow.DeepNet(activation="tanh", width=10, depth=3, sigma_b=0.0, sigma_w=1.0)
    sol = rgflow.layer_flow(tanh, x)
    assert sol.critical is True
    # χ against finite differences of the kernel recursion (an independent route)
    k = sol.kernels[0, 0, 0]
    one = rgflow.DeepNet(activation="tanh", width=10, depth=1, sigma_b=0.0, sigma_w=1.0)
    h = 1e-4

    def kw(a, g, b):
        from rgflow._deep import kernel_map

        return float(kernel_map(one, jnp.float64(a), jnp.float64(g), jnp.float64(b)))

    chi_par = (kw(k + h, k + h, k + h) - kw(k - h, k - h, k - h)) / (2 * h)
    # (G_ab > √(G_aa G_bb) is not a covariance: one-sided, second order)
    chi_perp = (3 * kw(k, k, k) - 4 * kw(k, k - h, k) + kw(k, k - 2 * h, k)) / (2 * h)
    np.testing.assert_allclose(sol.chi_parallel[0, 0], chi_par, rtol=1e-6)
    np.testing.assert_allclose(sol.chi_perp[0, 0], chi_perp, rtol=1e-6)
    assert 0 < sol.chi_perp[0, 0] < 1 and 0 < sol.chi_parallel[0, 0] < 1  # K > 0: subcritical
    assert rgflow.layer_flow(rgflow.DeepNet(activation="tanh", width=10, depth=2,
                                            sigma_w=1.5), x).critical is False
    assert rgflow.layer_flow(rgflow.DeepNet(activation="sigmoid", width=10, depth=2),
                             x).critical is None


# --------------------------------------------------------- kernel consumers accept it ---


def test_gp_correlator_and_vertex_integrals():
    net = rgflow.DeepNet(activation="relu", width=10, depth=3, sigma_w=1.2)
    xs = np.array([[0.5], [1.0]])
    k = np.asarray(net.kernel(xs, xs))
    g4 = np.asarray(rgflow.gp_correlator(net, xs, 4))
    np.testing.assert_allclose(g4[0, 0, 1, 1], k[0, 0] * k[1, 1] + 2 * k[0, 1] ** 2, rtol=1e-13)
    for deep in (net, rgflow.DeepNet(activation="erf", width=10, depth=2, sigma_b=0.5)):
        lam = 1.5
        got = np.asarray(rgflow.vertex_integrals(deep, xs, np.array([lam]), 4))[0]
        for t, tup in enumerate(rgflow.sorted_tuples(2, 4)):

            def integrand(y, deep=deep, tup=tup):
                return np.prod(np.asarray(deep.kernel_w(xs, np.array([[y]])))[:, 0][tup])

            ref, _ = scipy.integrate.quad(integrand, -lam, lam, points=[0.0], epsabs=1e-13,
                                          epsrel=1e-12, limit=200)
            np.testing.assert_allclose(got[t], ref, rtol=1e-8)


# ------------------------------------------------------------------------- bad input ---


def test_bad_input():
    with pytest.raises(ValueError, match="depth"):
        rgflow.DeepNet(activation="relu", width=3, depth=0)
    with pytest.raises(ValueError, match="width"):
        rgflow.DeepNet(activation="relu", width=0, depth=2)
    with pytest.raises(ValueError, match="activation"):
        rgflow.DeepNet(activation="swish!", width=3, depth=2)
    with pytest.raises(TypeError, match="activation"):
        rgflow.DeepNet(activation=3, width=3, depth=2)
    net = rgflow.DeepNet(activation="erf", width=4, depth=2)
    xs = XS3
    key = jax.random.key(0)
    for fn in (lambda: rgflow.exact_connected(net, xs, 4),
               lambda: rgflow.exact_moment(net, xs, 4),
               lambda: rgflow.neuron_moments(net, xs, 4),
               lambda: rgflow.measure_neurons(net, xs, 30, key=key, n_blocks=2),
               lambda: rgflow.measure_conditional(net, xs, 30, key=key, n_blocks=2)):
        with pytest.raises(TypeError, match="DeepNet"):
            fn()
    with pytest.raises(TypeError, match="perturbative_connected"):
        rgflow.exact_connected(net, xs, 4)
    with pytest.raises(ValueError, match="order"):
        rgflow.perturbative_connected(net, xs, 6)
    with pytest.raises(ValueError, match="order"):
        rgflow.perturbative_connected(net, xs, 3)
    with pytest.raises(TypeError, match="exact_connected"):
        rgflow.layer_flow(rgflow.GaussNet(width=3), xs)
    with pytest.raises(ValueError, match="xs"):
        rgflow.layer_flow(net, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="depth 1"):
        net.one_layer()
    with pytest.raises(ValueError, match="layer"):
        rgflow.layer_flow(net, xs).connected4(5)


def test_layer_flow_study_smoke(tmp_path):
    """The study runs, plots and summarises on a tiny configuration (linear: MC vs exact)."""
    from rgflow.studies import layer_flow as study

    config = dict(study.DEFAULTS["quick"], nets=["linear"], width=4, depth=2, n_nets=2000,
                  quartic_depth=2)
    res = study.run(config)
    e = res["layer_flow"]["nets"]["linear"]["critical"]
    np.testing.assert_allclose(e["exact_aa"], [0.0, 0.5, 1.25], rtol=1e-14)
    assert e["max_abs_z_exact"] < 4.5
    for stem, result in res.items():
        paths = study.plot(result, tmp_path / stem)
        assert all(p.exists() for p in paths)
    rows = study.summary(config, res)
    assert rows and all(len(r) == 5 for r in rows)  # every row states its check


def test_actions_and_collinear_inputs():
    """An action on a DeepNet predicts through its kernel (−24 λ I4 at tree level); exactly
    collinear ReLU inputs (σ_b = 0, x_b = 2 x_a) give z_b = 2 z_a at every layer."""
    net = rgflow.DeepNet(activation="erf", width=10, depth=3)
    act = rgflow.Action(net, [rgflow.LocalCoupling(4, coupling=0.1)])
    cut = jnp.array([2.0])
    np.testing.assert_allclose(rgflow.connected_correlator(act, XS3, cut, 4),
                               -2.4 * rgflow.vertex_integrals(net, XS3, cut, 4), rtol=1e-13)
    g4 = np.asarray(rgflow.perturbative_connected(
        rgflow.DeepNet(activation="relu", width=10, depth=3), [[0.5], [1.0]], 4))
    np.testing.assert_allclose([g4[0, 0, 1, 1], g4[0, 1, 1, 1], g4[1, 1, 1, 1]],
                               np.array([4, 8, 16]) * g4[0, 0, 0, 0], rtol=1e-12)


@pytest.mark.slow
def test_kernel_correction_resolved_by_monte_carlo():
    """tanh, n = 16, L = 4: Monte Carlo E[f f] departs from the GP kernel by ~5σ and agrees
    with K + K1/n (measured |z| <= 1.8 against the correction, 4.9 against K alone)."""
    xs = np.array([[0.3], [1.0]])
    net = rgflow.DeepNet(activation="tanh", width=16, depth=4, sigma_b=0.2, sigma_w=1.8)
    m = rgflow.measure(net, xs, 100_000, key=jax.random.key(3), orders=(2,))
    mc, err = np.asarray(m.moment(2)), np.asarray(m.moment_stderr(2))
    corrected = np.asarray(rgflow.perturbative_connected(net, xs, 2))
    assert np.max(np.abs(mc - corrected) / err) < 4
    assert np.max(np.abs(mc - np.asarray(net.kernel(xs, xs))) / err) > 4
