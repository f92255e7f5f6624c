"""Architectures and GP kernels (physics.md §2): kernels against Monte Carlo, closed forms,
Gauss-net translation invariance, and construction-time errors."""

import jax
import numpy as np
import pytest
from conftest import NETS, zscores

import rgflow


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
@pytest.mark.parametrize("d_in", [1, 2, 3])
def test_kernel_matches_monte_carlo(name, d_in, key):
    # G2 = K exactly at every width, so the measured 2-pt function of any ensemble is an unbiased
    # estimate of the kernel; z-scores use the per-entry standard error of the mean.
    net = NETS[name](width=3, d_in=d_in)
    xs = rgflow.hms_inputs(name, d_in)
    m = rgflow.measure(net, xs, 40_000, key=jax.random.fold_in(key, d_in), orders=(2,))
    z = zscores(m.moment(2, full=False), rgflow.exact_moment(net, xs, 2, full=False),
                m.moment_stderr(2, full=False))
    assert np.max(np.abs(z)) < 4.5, z


@pytest.mark.parametrize("activation", ["tanh", "sin", "gelu"])
def test_generic_kernel_matches_monte_carlo(activation, key):
    net = rgflow.GenericNet(width=4, d_in=2, activation=activation, sigma_b=0.5)
    xs = np.array([[0.3, -0.2], [1.0, 0.5], [-0.7, 0.9]])
    m = rgflow.measure(net, xs, 40_000, key=key, orders=(2,))
    z = zscores(m.moment(2), net.kernel(xs, xs), m.moment_stderr(2))
    assert np.max(np.abs(z)) < 4.5


def test_generic_kernel_quadrature_matches_closed_forms():
    xs = np.linspace(-1.5, 1.5, 7)[:, None]
    for d_in, pts in [(1, xs), (2, np.c_[xs, xs[::-1] * 0.5])]:
        erf = rgflow.ErfNet(width=1, d_in=d_in, sigma_w=1.3, sigma_b=0.7)
        gen = rgflow.GenericNet(width=1, d_in=d_in, sigma_w=1.3, sigma_b=0.7, activation="erf")
        # pre-activation std up to ~2 here: the 100-node rule gives ~1e-8 (1e-13 at std ~1.4)
        np.testing.assert_allclose(gen.kernel(pts, pts), erf.kernel(pts, pts), rtol=0, atol=3e-8)


def test_relu_kernel_closed_form_positive_inputs():
    # σ_b = 0, d_in = 1, x, y > 0: K = σ_W⁴ x y / 2 (θ = 0).
    net = rgflow.ReLUNet(width=1, sigma_w=1.7)
    x = np.array([[0.2], [0.9], [1.4]])
    np.testing.assert_allclose(net.kernel(x, x), 1.7**4 * (x @ x.T) / 2, rtol=1e-14)
    # Opposite signs: θ = π, K = 0.
    np.testing.assert_allclose(net.kernel(x, -x), 0.0, atol=1e-15)


def test_relu_kernel_arccos_formula_generic_points():
    net = rgflow.ReLUNet(width=1, d_in=2, sigma_w=1.2, sigma_b=0.4)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    s = lambda a, b: 0.16 + 1.44 * (a @ b.T) / 2  # noqa: E731
    sxx, syy, sxy = np.diag(s(x, x)), np.diag(s(y, y)), s(x, y)
    cos = sxy / np.sqrt(np.outer(sxx, syy))
    th = np.arccos(cos)
    ref = 0.16 + 1.44 / (2 * np.pi) * np.sqrt(np.outer(sxx, syy)) * (np.sin(th) + (np.pi - th) * cos)
    np.testing.assert_allclose(net.kernel(x, y), ref, rtol=1e-12)


@pytest.mark.parametrize("d_in", [1, 2, 3])
@pytest.mark.parametrize("sigma_w", [0.6, 1.0, 2.0])
def test_gauss_kernel_translation_invariant(d_in, sigma_w):
    net = rgflow.GaussNet(width=1, d_in=d_in, sigma_w=sigma_w, sigma_b=0.8)
    rng = np.random.default_rng(d_in)
    x = rng.normal(size=(4, d_in))
    shift = rng.normal(size=(1, d_in))
    np.testing.assert_allclose(net.kernel(x + shift, x + shift), net.kernel(x, x), rtol=1e-13)
    # and equals the single-neuron expectation of the normalised exponentials (closed form)
    c = np.asarray(rgflow.neuron_moments(net, x, 2))
    k = np.asarray(net.kernel(x, x))
    np.testing.assert_allclose(0.64 + sigma_w**2 * rgflow.to_full(c, 4, 2), k, rtol=1e-13)


def test_sample_shapes_and_independence_of_batching(key):
    net = rgflow.ErfNet(width=7, d_in=2)
    xs = rgflow.hms_inputs("erf", 2)
    a = net.sample(xs, 10, key=key)
    b = net.sample(xs, 4, key=key, start=6)
    assert a.shape == (10, 4)
    np.testing.assert_array_equal(a[6:], b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0), "width"),
        (dict(width=2, sigma_w=-1.0), "sigma_w"),
        (dict(width=2, sigma_b=float("nan")), "sigma_b"),
        (dict(width=2, d_in=0), "d_in"),
    ],
)
@pytest.mark.parametrize("cls", list(NETS.values()))
def test_bad_construction(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(**kwargs)


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        rgflow.GenericNet(width=2, activation="swishy")
    with pytest.raises(ValueError, match="net"):
        rgflow.make_net("foo", width=2)
    with pytest.raises(TypeError, match="width"):
        rgflow.ErfNet(width=2.5)


def test_relu_default_sigma_b_is_zero():
    assert rgflow.ReLUNet(width=3).sigma_b == 0.0
    assert rgflow.ErfNet(width=3).sigma_b == 1.0
    assert rgflow.GaussNet(width=3).sigma_b == 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standard_normals_moments(dtype, key):
    # The per-network draws (float32: two draws per 64-bit threefry block): moments 1..6 of a
    # standard normal within 4.5 standard errors on 10⁶ draws, reproducible, right dtype.
    from rgflow._nets import standard_normals

    z = standard_normals(key, 1_000_001, dtype)
    assert z.dtype == np.dtype(dtype) and z.shape == (1_000_001,)
    np.testing.assert_array_equal(z, standard_normals(key, 1_000_001, dtype))
    z = np.asarray(z, np.float64)
    for power, exact in ((1, 0), (2, 1), (3, 0), (4, 3), (6, 15)):
        values = z**power
        zscore = (values.mean() - exact) / (values.std() / np.sqrt(z.size))
        assert abs(zscore) < 4.5, (power, zscore)
    # odd n: the last 64-bit block is half used; a prefix of a longer draw is a different draw
    assert standard_normals(key, 3, dtype).shape == (3,)


def test_phi_input_axis(key):
    # Gauss-net's φ depends on the input; `axis` says which axis of z runs over the inputs.
    net = rgflow.GaussNet(width=3, d_in=2, sigma_b=0.7)
    xs = np.array([[0.1, 0.2], [0.5, -0.3], [1.0, 0.0]])
    z = np.asarray(jax.random.normal(key, (4, 5, 3)))
    np.testing.assert_allclose(net.phi(z.swapaxes(1, 2), xs, axis=-2), net.phi(z, xs).swapaxes(1, 2),
                               rtol=1e-15)
