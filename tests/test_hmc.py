"""NUTS (BlackJAX) over the cos-net parameters of the deformed ensemble (physics.md §12):
diagnostics on known series; HMC against exact reweighting at λ = 2 (slow)."""

import jax
import numpy as np
import pytest

from rgflow import FreeCosNet, integrated_autocorrelation_time
from rgflow._hmc import split_rhat


def test_autocorrelation_time_of_ar1():
    rng = np.random.default_rng(0)
    rho, n = 0.8, 200_000
    x = np.empty(n)
    x[0] = rng.normal()
    e = rng.normal(size=n) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + e[t]
    tau = integrated_autocorrelation_time(x)
    assert abs(tau - (1 + rho) / (1 - rho)) < 0.5  # exact τ_int = 9
    assert abs(integrated_autocorrelation_time(rng.normal(size=n)) - 1) < 0.1
    # split-R̂: 1 for identical chains, > 1.1 when one chain sits elsewhere
    chains = rng.normal(size=(4, 2000))
    assert split_rhat(chains) < 1.01
    chains[0] += 1.0
    assert split_rhat(chains) > 1.1


def test_hmc_refuses_non_differentiable_map():
    from rgflow import sample_hmc

    for net in (FreeCosNet(width=3, d_in=3, mass=1.0, cutoff=2.0),
                FreeCosNet(width=3, d_in=1, mass=1.0, cutoff=2.0, regulator="smooth")):
        with pytest.raises(ValueError, match="differentiable"):
            sample_hmc(net, np.zeros((1, net.d_in)), 0.5, key=jax.random.key(0),
                       box=[[0.0, 1.0]] * net.d_in)


@pytest.mark.slow
def test_hmc_against_reweighting():
    """λ = 2 (pure, no counterterm): the 2-pt function of NUTS samples against exact
    reweighting (ESS ≈ 97 %), and both far from the free value (measured 7σ for NUTS)."""
    pytest.importorskip("blackjax")
    from rgflow import sample_fields, sample_hmc

    net = FreeCosNet(width=50, d_in=1, mass=1.0, cutoff=5.0)
    xs = np.array([[-0.5], [0.0], [0.5], [1.0]])
    box = [[-1.5, 2.0]]
    h = sample_hmc(net, xs, 2.0, key=jax.random.key(0), box=box, n_chains=4, n_warmup=300,
                   n_samples=1000)
    assert h.divergences.sum() == 0 and h.rhat < 1.05
    g2h, e2h = h.connected(2)
    fs = sample_fields(net, xs, 20_000, key=jax.random.key(1), box=box, n_blocks=20)
    g2r, e2r = fs.connected(2, 2.0)
    assert np.max(np.abs((g2h - g2r) / np.hypot(e2h, e2r))) < 4
    g20 = np.asarray(net.kernel(xs, xs))
    assert np.min(np.abs(np.diag(g2h) - np.diag(g20)) / np.diag(e2h)) > 5
