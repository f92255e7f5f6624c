"""Trained ensembles against the NTK theory (physics.md §14): rgflow._ntk, rgflow._training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rgflow
from rgflow._training import cumulant_from_raw, draw_parameters, training_model

X = np.array([[1.0, 0.0], [-0.5, 0.9], [0.2, -1.0]])
Y = np.array([0.6, -0.4, 0.3])
PROBES = np.array([[0.7, 0.7], [-1.0, -0.2]])
Z = np.concatenate([PROBES, X])
KW = dict(d_in=2, sigma_w=1.5, sigma_b=0.5)


def _numpy_erf_theory(sw, sb, sa, sb_out):
    """The §14 check by hand (NumPy; readout std σ_a, output-bias std sb_out): NTK t → ∞ mean and
    variance, and the NNGP posterior mean and variance."""
    s = sb**2 + sw**2 * Z @ Z.T / 2
    d = np.diag(s)
    e_phi = (2 / np.pi) * np.arcsin(2 * s / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))
    e_dphi = (4 / np.pi) / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d) - 4 * s**2)
    k = sb_out**2 + sa**2 * e_phi
    th = k + sa**2 * e_dphi * s
    m = th[:2, 2:] @ np.linalg.inv(th[2:, 2:])
    a = np.hstack([np.eye(2), -m])
    g = k[:2, 2:] @ np.linalg.inv(k[2:, 2:])
    return m @ Y, np.diag(a @ k @ a.T), g @ Y, np.diag(k[:2, :2] - g @ k[2:, :2])


def test_physics_check_values_recomputed():
    # physics.md §14's numbers are those of σ_a = 1 and no output bias (not rgflow's convention)
    ntk_m, ntk_v, gp_m, gp_v = _numpy_erf_theory(1.5, 0.5, 1.0, 0.0)
    np.testing.assert_allclose(ntk_m, [0.26732, -0.39086], atol=6e-6)
    np.testing.assert_allclose(ntk_v, [0.08523, 0.14167], atol=6e-6)
    np.testing.assert_allclose(gp_m, [0.29328, -0.45055], atol=6e-6)
    np.testing.assert_allclose(gp_v, [0.07923, 0.12595], atol=6e-6)
    # rgflow's convention (W1 ~ N(0, σ_W²/N), b1 ~ N(0, σ_b²)): the library against the hand route
    net = rgflow.ErfNet(width=1, **KW)
    ld = rgflow.linearised_dynamics(net, X, Y, PROBES, learning_rate=0.2, times=[10**5])
    ntk_m, ntk_v, gp_m, gp_v = _numpy_erf_theory(1.5, 0.5, 1.5, 0.5)
    np.testing.assert_allclose(ld.mean()[-1], ntk_m, rtol=1e-12)
    np.testing.assert_allclose(np.diag(ld.cov()[-1]), ntk_v, rtol=1e-12)
    m, c = rgflow.gp_posterior(net, X, Y, PROBES)
    np.testing.assert_allclose(m, gp_m, rtol=1e-12)
    np.testing.assert_allclose(np.diag(c), gp_v, rtol=1e-12)
    np.testing.assert_allclose(ntk_m, [0.26973, -0.38255], atol=6e-6)
    np.testing.assert_allclose(gp_m, [0.29449, -0.44522], atol=6e-6)


@pytest.mark.parametrize("name", ["erf", pytest.param("relu", marks=pytest.mark.slow)])
def test_infinite_ntk_closed_form_vs_recursion_and_mc(name, key):
    kw = dict(KW, sigma_b=0.5)
    net = rgflow.ErfNet(width=8, **kw) if name == "erf" else rgflow.ReLUNet(width=8, **kw)
    theta = np.asarray(rgflow.infinite_ntk(net, Z, Z))
    deep = rgflow.DeepNet(activation=name, width=8, depth=1, **kw)
    np.testing.assert_allclose(rgflow.infinite_ntk(deep, Z, Z), theta, rtol=1e-10, atol=1e-12)
    # E[Θ̂] = Θ exactly at any width in the NTK parameterisation: Monte Carlo over networks
    init, apply = training_model(net, "ntk")
    ntk = jax.jit(jax.vmap(lambda g: rgflow.empirical_ntk(apply, init(key, g), jnp.asarray(Z))))
    samples = np.asarray(ntk(jnp.arange(4000, dtype=jnp.uint32)))
    mean, err = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
    z = (mean - theta) / err
    assert np.max(np.abs(z)) < 4.5, z
    # the check resolves the first-layer term σ_W² S K̇: dropping it fails by many σ
    z_broken = (mean - np.asarray(net.kernel(Z, Z))) / err
    assert np.max(np.abs(z_broken)) > 20


def test_transport_and_cumulants():
    ld = rgflow.linearised_dynamics(rgflow.ErfNet(width=1, **KW), X, Y, PROBES,
                                     learning_rate=0.2, times=[0, 3, 50])
    k = ld.kernel
    np.testing.assert_allclose(ld.transport(k), ld.cov(), rtol=1e-12)
    np.testing.assert_allclose(ld.cov()[0], k[:2, :2], rtol=1e-12)  # t = 0: A = [I, 0]
    # discrete steps: the residual on X is (I − ηΘ)^t (f₀ − Y), checked by iterating the map
    theta = ld.ntk[2:, 2:]
    f0 = np.array([0.1, -0.3, 0.2])
    f = f0.copy()
    for _ in range(3):
        f = f - 0.2 * theta @ (f - Y)
    m = rgflow.linearised_dynamics(rgflow.ErfNet(width=1, **KW), X, Y, X, learning_rate=0.2,
                                   times=[3])
    pred = m.transfer[0] @ np.concatenate([f0, f0]) + m.shift[0]
    np.testing.assert_allclose(pred, f, rtol=1e-12)
    # joint cumulants from raw moments: a shifted Gaussian sample has κ3 = κ4 = 0 in expectation
    rng = np.random.default_rng(0)
    s = rng.multivariate_normal([1.0, -2.0], [[1.0, 0.3], [0.3, 2.0]], size=50_000)
    t = {n: rgflow.sorted_tuples(2, n) for n in (1, 2, 3, 4)}
    mom = {n: jnp.asarray(np.mean(np.prod(s[:, t[n]], axis=-1), axis=0)) for n in t}
    np.testing.assert_allclose(cumulant_from_raw(mom, 2, 2), [[1.0, 0.3], [0.3, 2.0]], atol=0.04)
    assert np.max(np.abs(cumulant_from_raw(mom, 2, 4))) < 0.2


def test_initial_ensemble_is_measures_and_batch_invariant(key):
    net = rgflow.ErfNet(width=6, **KW)
    runs = [rgflow.train_ensemble(net, X, Y, PROBES, 40, key=key, times=[0, 3],
                                  learning_rate=0.1, batch_size=b, n_blocks=4, max_order=2)
            for b in (3, 16)]
    f0 = np.asarray(net.sample(PROBES, 40, key=key))
    np.testing.assert_allclose(runs[0].mean()[0], f0.mean(0), rtol=1e-12, atol=1e-14)
    for n in (1, 2):
        np.testing.assert_allclose(runs[0].block_sums[n], runs[1].block_sums[n], rtol=1e-12,
                                   atol=1e-14)
    # standard parameterisation: the same networks at t = 0
    std = rgflow.train_ensemble(net, X, Y, PROBES, 40, key=key, times=[0, 3], learning_rate=0.01,
                                parameterisation="standard", n_blocks=4, max_order=2,
                                batch_size=3)
    np.testing.assert_allclose(std.mean()[0], f0.mean(0), rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_deep_and_cosnet_train_from_their_samplers_networks(key):
    # DeepNet and CosNet draw their sampler's networks too
    deep = rgflow.DeepNet(activation="erf", width=5, depth=2, **KW)
    d = rgflow.train_ensemble(deep, X, Y, PROBES, 20, key=key, times=[0, 2], learning_rate=0.05,
                              n_blocks=2, max_order=2)
    np.testing.assert_allclose(d.mean()[0], np.asarray(deep.sample(PROBES, 20, key=key)).mean(0),
                               rtol=1e-10)
    cos = rgflow.CosNet(width=5, d_in=2)
    c = rgflow.train_ensemble(cos, X, Y, PROBES, 20, key=key, times=[0, 2], learning_rate=0.05,
                              n_blocks=2, max_order=2, trainable="readout")
    np.testing.assert_allclose(c.mean()[0], np.asarray(cos.sample(PROBES, 20, key=key)).mean(0),
                               rtol=1e-10)
    assert draw_parameters(cos, key, 0)["a"].shape == (5,)


def test_readout_posterior_with_known_one_over_n_term(key):
    """Check (a): readout-only, t → ∞. At width N the ensemble is the posterior of the random
    readout kernel; its mean and covariance differ from the GP posterior by c/N (derived,
    `readout_posterior_correction`). z-scores against GP + c/N, and the check resolves c/N."""
    n, m = 16, 4000
    base = rgflow.ErfNet(width=1, **KW)
    ld = rgflow.linearised_dynamics(base, X, Y, PROBES, learning_rate=0.2, times=[150],
                                    trainable="readout")
    gp_m, gp_c = rgflow.gp_posterior(base, X, Y, PROBES)
    np.testing.assert_allclose(ld.mean()[0], gp_m, atol=1e-10)  # (I − ηK)^150 ≈ 0: t = ∞
    np.testing.assert_allclose(ld.cov()[0], gp_c, atol=1e-10)
    cm, cc = rgflow.readout_posterior_correction(base, X, Y, PROBES)
    meas = rgflow.train_ensemble(rgflow.ErfNet(width=n, **KW), X, Y, PROBES, m, key=key,
                                 times=[150], learning_rate=0.2, trainable="readout",
                                 control=ld, max_order=2)
    d2, e2 = (x[0] for x in meas.difference(2))
    d1, e1 = (x[0] for x in meas.difference(1))
    assert np.max(np.abs((d2 - cc / n) / e2)) < 4
    assert np.max(np.abs((d1 - cm / n) / e1)) < 4
    # resolved: without the c/N term (plain GP posterior) the covariance fails by > 5σ
    assert np.max(np.abs(d2 / e2)) > 5


def test_bad_input(key):
    net = rgflow.ErfNet(width=4, **KW)
    good = dict(key=key, times=[0, 5], learning_rate=0.1, n_blocks=2)
    with pytest.raises(ValueError, match="y_train"):
        rgflow.train_ensemble(net, X, Y[:2], PROBES, 10, **good)
    with pytest.raises(ValueError, match="y_train"):
        rgflow.train_ensemble(net, X, np.array([0.1, np.nan, 0.2]), PROBES, 10, **good)
    with pytest.raises(ValueError, match="probes"):
        rgflow.train_ensemble(net, X, Y, np.ones((2, 3)), 10, **good)
    with pytest.raises(ValueError, match="x_train"):
        rgflow.train_ensemble(net, np.ones((3, 3)), Y, PROBES, 10, **good)
    with pytest.raises(ValueError, match="y_train"):
        rgflow.train_ensemble(net, X, np.array([0.1, np.inf, 0.2]), PROBES, 10, **good)
    with pytest.raises(ValueError, match="zero training steps"):
        rgflow.train_ensemble(net, X, Y, PROBES, 10, **dict(good, times=[0]))
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        rgflow.train_ensemble(net, X, Y, PROBES, 10, key=key, times=[5], optimizer="sgd",
                              n_blocks=2)
    with pytest.raises(ValueError, match=r"diverged.*step \d+"):
        rgflow.train_ensemble(net, X, Y, PROBES, 10, **dict(good, learning_rate=5.0,
                                                             times=[300]))
    with pytest.raises(ValueError, match="learning_rate"):
        rgflow.linearised_dynamics(net, X, Y, PROBES, learning_rate=-1.0, times=[1])
    with pytest.raises(ValueError, match="learning_rate.*diverges"):
        rgflow.linearised_dynamics(net, X, Y, PROBES, learning_rate=1.0, times=[1])


@pytest.mark.slow
def test_optax_optimisers_and_checkpoint(key, tmp_path):
    net = rgflow.ErfNet(width=4, **KW)
    kw = dict(key=key, times=[0, 20], n_blocks=4, max_order=2)
    adam = optax.adam(0.05)
    a = rgflow.train_ensemble(net, X, Y, PROBES, 40, optimizer=adam, **kw)
    mom = rgflow.train_ensemble(net, X, Y, PROBES, 40, optimizer=optax.sgd(0.05, momentum=0.9),
                                minibatch=2, **kw)
    assert np.all(np.isfinite(a.mean())) and np.all(np.isfinite(mom.mean()))
    path = tmp_path / "t.npz"
    first = rgflow.train_ensemble(net, X, Y, PROBES, 40, optimizer=adam, checkpoint=path, **kw)
    again = rgflow.train_ensemble(net, X, Y, PROBES, 40, optimizer=adam, checkpoint=path, **kw)
    np.testing.assert_array_equal(first.block_sums[2], again.block_sums[2])
    np.testing.assert_allclose(first.block_sums[2], a.block_sums[2], rtol=1e-12)
    with pytest.raises(ValueError, match="different configuration"):
        rgflow.train_ensemble(net, X, Y, PROBES, 40, optimizer=optax.adam(0.1), checkpoint=path,
                              **kw)


@pytest.mark.slow
def test_generic_activation_ntk_by_quadrature():
    # tanh: K̇ by autodiff of the quadrature kernel map, against a Monte Carlo of E[φ'φ']
    net = rgflow.GenericNet(activation="tanh", width=4, **KW)
    theta = np.asarray(rgflow.infinite_ntk(net, Z, Z))
    s = np.asarray(net.covariance(Z, Z))
    u = np.random.default_rng(1).multivariate_normal(np.zeros(len(Z)), s, size=400_000)
    dphi = 1 / np.cosh(u) ** 2
    kdot = dphi.T @ dphi / len(u)
    ref = np.asarray(net.kernel(Z, Z)) + 1.5**2 * s * kdot
    np.testing.assert_allclose(theta, ref, rtol=5e-3)


def test_edgeworth_quartic_errors_against_exact_initial_ensemble(key):
    """The trained ensemble's Edgeworth quartic with jackknife errors: at t = 0 it is the
    untrained finite-N quartic, exactly −(1/24) κ4(K⁻¹·,K⁻¹·,K⁻¹·,K⁻¹·) from the library's exact
    K and κ4 (`exact_connected`); z-scores against it, and the check resolves the 1/N scaling
    (κ4 of width 2N, i.e. half the quartic, fails by > 5σ; measured 11σ at N = 1)."""
    from rgflow._exact import exact_connected

    net = rgflow.ErfNet(width=1, **KW)
    meas = rgflow.train_ensemble(net, X, Y, PROBES, 12_000, key=key, times=[0, 1],
                                 learning_rate=0.2, n_blocks=16, max_order=4)
    q = meas.edgeworth_quartic()
    assert q.value.shape == q.stderr.shape == (2,) + (2,) * 4
    k2 = np.asarray(net.kernel(PROBES, PROBES))
    exact = np.asarray(rgflow.edgeworth_tensors(k2, exact_connected(net, PROBES, 4), order=1)[1])
    z = (q.value[0] - exact) / q.stderr[0]
    assert np.max(np.abs(z)) < 4, z
    assert np.max(np.abs((q.value[0] - exact / 2) / q.stderr[0])) > 5
    # the point estimate is `edgeworth_tensors` of the measured Σ_t, κ4,t (up to the O(1/M)
    # jackknife bias correction, well inside the error)
    plain = np.asarray(rgflow.edgeworth_tensors(meas.connected(2)[1], meas.connected(4)[1],
                                                order=1)[1])
    assert np.max(np.abs(plain - q.value[1]) / q.stderr[1]) < 0.5
    assert "±" in str(q) and "t = 1" in str(q)
    short = rgflow.train_ensemble(net, X, Y, PROBES, 20, key=key, times=[1], learning_rate=0.2,
                                  n_blocks=2, max_order=2)
    with pytest.raises(ValueError, match="max_order >= 4"):
        short.edgeworth_quartic()


def test_float32_training_dtype(key):
    net = rgflow.ErfNet(width=6, **KW)
    kw = dict(key=key, times=[0, 20], learning_rate=0.2, n_blocks=2, max_order=2)
    f64 = rgflow.train_ensemble(net, X, Y, PROBES, 40, **kw)
    f32 = rgflow.train_ensemble(net, X, Y, PROBES, 40, dtype=jnp.float32, **kw)
    assert f32.block_sums[2].dtype == jnp.float64  # accumulated in float64
    # the same networks (drawn in float64, rounded), trained in float32
    np.testing.assert_allclose(f32.mean(), f64.mean(), rtol=1e-4, atol=1e-5)
    assert not np.array_equal(f32.mean()[1], f64.mean()[1])
    with pytest.raises(ValueError, match="dtype"):
        rgflow.train_ensemble(net, X, Y, PROBES, 40, dtype=jnp.int32, **kw)
    # the float32 path's layout (neurons last) is the same function as `forward`
    for n in (net, rgflow.GaussNet(width=6, **KW), rgflow.ReLUNet(width=6, **KW)):
        init, apply = training_model(n, "ntk")
        _, fast = training_model(n, "ntk", neurons_last=True)
        params = init(key, 3)
        np.testing.assert_allclose(fast(params, Z), apply(params, Z), rtol=1e-13, atol=1e-15)
