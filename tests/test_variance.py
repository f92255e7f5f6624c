"""Variance-reduced estimators (issue 7, item 2) against the exact correlators and brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import NETS, zscores

import rgflow
from rgflow._ensemble import _sample_neurons
from rgflow._tuples import sorted_tuples
from rgflow._variance import measure_conditional, measure_neurons, neuron_brackets

# Gauss-net only with small σ_b (its MC tails are heavy at σ_b = 1, see rgflow._ensemble).
CASES = [pytest.param("erf", 1.0, marks=pytest.mark.slow), pytest.param("relu", 0.0, marks=pytest.mark.slow),
         pytest.param("gauss", 0.4, marks=pytest.mark.slow)]


@pytest.mark.parametrize("name, sigma_b", CASES)
def test_single_neuron_estimator_matches_exact_at_every_width(name, sigma_b, key):
    xs = rgflow.hms_inputs(name, 1)
    est = measure_neurons(NETS[name](width=1, sigma_b=sigma_b), xs, 100_000, key=key)
    for width in (2, 20, 1000):
        net = NETS[name](width=width, sigma_b=sigma_b)
        for order in (2, 4, 6):
            z = zscores(est.connected(order, width=width, full=False),
                        rgflow.exact_connected(net, xs, order, full=False),
                        est.connected_stderr(order, width=width, full=False))
            assert np.max(np.abs(z)) < 5.0, (width, order, np.abs(z).max())
    # the relative error of G4_c is the same at every width: the signal is always resolved
    rel = [np.median(np.asarray(est.connected_stderr(4, width=w, full=False)
                                / np.abs(est.connected(4, width=w, full=False))))
           for w in (2, 1000)]
    np.testing.assert_allclose(rel[0], rel[1], rtol=1e-10)
    assert rel[0] < 0.05


def _group_sums(phi, order):
    t = sorted_tuples(phi.shape[-1], order)
    return np.prod(phi[..., t], axis=-1).sum(axis=-2)  # (groups, T)


@pytest.mark.slow
def test_single_neuron_brackets_are_unbiased_at_tiny_m(key):
    # 8000 independent groups of m = 10 neurons: the plug-in B4 is biased by −B4/m (10%);
    # the U-statistic average must match the exact bracket.
    net = rgflow.ErfNet(width=1)
    xs = rgflow.hms_inputs("erf", 1)[[0, 2, 5]]
    groups, m = 8000, 10
    phi = np.asarray(_sample_neurons(net, jnp.asarray(xs), key,
                                     jnp.arange(groups * m, dtype=jnp.uint32), jnp.float64))
    phi = phi.reshape(groups, m, -1)
    sums = {n: jnp.asarray(_group_sums(phi, n)) for n in (2, 4, 6)}
    b = neuron_brackets(sums, m, 3)
    for order in (4, 6):
        exact = rgflow.exact_connected(net, xs, order, full=False)
        vals = np.asarray(b[order])
        z = zscores(vals.mean(0), exact, vals.std(0, ddof=1) / np.sqrt(groups))
        assert np.max(np.abs(z)) < 5.0, (order, z)
    plug = np.asarray(b[4]) * (m - 1) / m  # the plug-in estimate, for the power check
    z_plug = zscores(plug.mean(0), rgflow.exact_connected(net, xs, 4, full=False),
                     plug.std(0, ddof=1) / np.sqrt(groups))
    assert np.max(np.abs(z_plug)) > 5.0


@pytest.mark.parametrize("name, sigma_b", CASES)
def test_conditional_estimator_matches_exact(name, sigma_b, key):
    xs = rgflow.hms_inputs(name, 1)
    for width in (3, 50):
        net = NETS[name](width=width, sigma_b=sigma_b)
        est = measure_conditional(net, xs, 10_000, key=jax.random.fold_in(key, width))
        for order in (2, 4, 6):
            z = zscores(est.connected(order, full=False),
                        rgflow.exact_connected(net, xs, order, full=False),
                        est.connected_stderr(order, full=False))
            assert np.max(np.abs(z)) < 5.0, (width, order, np.abs(z).max())


def test_estimators_agree_with_brute_force_and_reduce_variance(key):
    net = rgflow.ErfNet(width=20)
    xs = rgflow.hms_inputs("erf", 1)
    brute = rgflow.measure(net, xs, 30_000, key=key, orders=(4,))
    cond = measure_conditional(net, xs, 30_000, key=jax.random.fold_in(key, 1))
    neur = measure_neurons(net, xs, 30_000, key=jax.random.fold_in(key, 2), orders=(4,))
    b, eb = np.asarray(brute.connected(4, full=False)), np.asarray(brute.connected_stderr(4, full=False))
    for other in (cond, neur):
        o, eo = np.asarray(other.connected(4, full=False)), np.asarray(other.connected_stderr(4, full=False))
        assert np.max(np.abs((b - o) / np.hypot(eb, eo))) < 5.0
        # same number of networks (resp. neurons): far smaller error bars than brute force
        assert np.median(eb / eo) > 5.0


def test_variance_module_validation(key):
    net = rgflow.ErfNet(width=2)
    xs = rgflow.hms_inputs("erf", 1)
    with pytest.raises(ValueError, match="n_blocks"):
        measure_neurons(net, xs, 30, key=key, n_blocks=11)
    est = measure_neurons(net, xs, 300, key=key, orders=(2, 4), n_blocks=4)
    with pytest.raises(ValueError, match="order"):
        est.connected(6)
    with pytest.raises(ValueError, match="width"):
        est.connected(4, width=0)
    with pytest.raises(TypeError, match="net"):
        measure_conditional("erf", xs, 10, key=key, n_blocks=2)
