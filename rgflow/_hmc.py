"""The deformed cos-net ensemble by NUTS over the network parameters (BlackJAX; physics.md §12).

For larger λ the importance weights of `rgflow.sample_fields` degenerate (ESS → 0). Then one
samples P_λ(θ) ∝ P₀(θ) e^{−S_int[f_θ]} directly. The parameters are the standard normals z of
`FreeCosNet.params_from_normals` (P₀(z) = N(0, I); frequencies through the closed-form inverse CDF of the
radial density: sharp cutoff, d_in = 1 or 2), so

    log p(z) = −|z|²/2 − S_int[f_z],   S_int from the same Gauss–Legendre box rule.

Each chain runs BlackJAX's window adaptation (step size, diagonal mass matrix) and then NUTS.
Reported: divergences (a fraction above `max_divergences` raises), acceptance, the integrated
autocorrelation time τ_int of ∫f² and of f(x)² (Sokal's window c = 5), split-R̂ of ∫f², and
connected correlators whose errors come from the delete-one-block jackknife over blocks of
consecutive samples (block length ≥ 10 τ_int) pooled over chains.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._deform import Deformation, _as_deformation, box_quadrature, check_box, nyquist_points
from ._ensemble import connected_from_moments
from ._freefield import FreeCosNet
from ._tuples import sorted_tuples, to_full
from ._validate import check_inputs, check_key, check_positive_int

__all__ = ["HMCSample", "sample_hmc", "integrated_autocorrelation_time"]


def integrated_autocorrelation_time(x, c: float = 5.0) -> float:
    """τ_int = 1 + 2 Σ_{t ≥ 1} ρ(t), summed up to the first window W ≥ c τ_int(W) (Sokal), of a
    series `(S,)` or the chain average of `(C, S)`."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    x = x - x.mean(axis=1, keepdims=True)
    s = x.shape[1]
    f = np.fft.rfft(x, n=2 * s, axis=1)
    acf = np.fft.irfft(f * np.conj(f), axis=1)[:, :s].mean(axis=0)
    if acf[0] <= 0:
        return 1.0
    rho = acf / acf[0]
    tau = 1.0
    for w in range(1, s):
        tau = 1 + 2 * rho[1:w + 1].sum()
        if w >= c * tau:
            break
    return float(max(tau, 1.0))


def split_rhat(x) -> float:
    """Split-R̂ (Gelman et al.) of chains `(C, S)`: each chain cut in two halves."""
    x = np.asarray(x, np.float64)
    h = x.shape[1] // 2
    y = np.concatenate([x[:, :h], x[:, h:2 * h]])
    means, var = y.mean(axis=1), y.var(axis=1, ddof=1)
    b = h * means.var(ddof=1)
    w = var.mean()
    return float(np.sqrt(((h - 1) / h * w + b / h) / w))


class HMCSample(eqx.Module):
    """NUTS samples of the deformed ensemble (module docstring). Fields: `net`, `xs`,
    `deformation`, `fields` `(C, S, P)`, `integrals` `(C, S, 3)`, `divergences` `(C,)`,
    `acceptance` `(C,)`, `step_size` `(C,)`, `n_leapfrog` `(C,)` (mean per step)."""

    net: FreeCosNet
    xs: np.ndarray
    deformation: Deformation
    fields: np.ndarray
    integrals: np.ndarray
    divergences: np.ndarray
    acceptance: np.ndarray
    step_size: np.ndarray
    n_leapfrog: np.ndarray

    @property
    def tau_int(self) -> dict:
        return {"int_f2": integrated_autocorrelation_time(self.integrals[..., 0]),
                "f2": max(integrated_autocorrelation_time(self.fields[..., p] ** 2)
                          for p in range(self.xs.shape[0]))}

    @property
    def rhat(self) -> float:
        return split_rhat(self.integrals[..., 0])

    def connected(self, order: int, *, full: bool = True):
        """(κ, stderr): jackknife over blocks of ≥ 10 τ_int consecutive samples, all chains."""
        if order not in (2, 4):
            raise ValueError(f"`order` must be 2 or 4, got {order!r}.")
        c, s, p = self.fields.shape
        tau = max(self.tau_int.values())
        blen = max(1, math.ceil(10 * tau))
        nb = s // blen
        if nb < 2:
            raise ValueError(f"the chains ({s} samples) are shorter than two blocks of 10 τ_int "
                             f"= {blen}: run longer chains.")
        f = self.fields[:, : nb * blen].reshape(c * nb, blen, p)
        sums = {}
        for n in (2, 4):
            t = sorted_tuples(p, n)
            sums[n] = np.prod(f[..., t], axis=-1).sum(axis=1)  # (blocks, T) — P small
        total = {n: v.sum(0) for n, v in sums.items()}
        m = c * nb * blen
        full_est = connected_from_moments({n: total[n] / m for n in sums}, p, order)
        reps = np.asarray(connected_from_moments(
            {n: (total[n][None] - sums[n]) / (m - blen) for n in sums}, p, order))
        b = reps.shape[0]
        mean = reps.mean(0)
        est = b * np.asarray(full_est) - (b - 1) * mean
        err = np.sqrt((b - 1) / b * ((reps - mean) ** 2).sum(0))
        if full:
            return to_full(est, p, order), to_full(err, p, order)
        return est, err


def sample_hmc(net: FreeCosNet, xs, deformation, *, key, box, n_grid: int | None = None,
               n_chains: int = 4, n_warmup: int = 400, n_samples: int = 1000,
               max_divergences: float = 0.01) -> HMCSample:
    """NUTS (BlackJAX) over the normals z of one network per chain (module docstring).

    **Arguments:** as `rgflow.sample_fields`, plus `deformation` (a `rgflow.Deformation` or λ),
    `n_chains`, `n_warmup` (window adaptation steps), `n_samples` per chain, and
    `max_divergences`: the largest tolerated fraction of divergent transitions (ValueError above).

    **Returns:** a `rgflow.HMCSample`.
    """
    import blackjax

    if not isinstance(net, FreeCosNet):
        raise TypeError(f"`net` must be a rgflow.FreeCosNet, got {type(net).__name__}.")
    if net.regulator != "sharp" or net.d_in == 3:
        raise ValueError("`sample_hmc` needs a differentiable frequency map: the sharp cutoff in "
                         f"d_in = 1 or 2 (closed-form inverse CDF), got regulator="
                         f"{net.regulator!r}, d_in={net.d_in}.")
    key = check_key(key)
    xs = check_inputs(xs, net.d_in)
    deformation = _as_deformation(deformation)
    box = check_box(box, net.d_in)
    n_min = nyquist_points(net, box)
    n_grid = math.ceil(1.5 * n_min) + 8 if n_grid is None else check_positive_int("n_grid", n_grid)
    if n_grid < n_min:
        raise ValueError(f"`n_grid` = {n_grid} is below n_Nyquist = {n_min} for this cutoff.")
    for name, v in (("n_chains", n_chains), ("n_warmup", n_warmup), ("n_samples", n_samples)):
        check_positive_int(name, v)
    if not (0 <= max_divergences < 1):
        raise ValueError(f"`max_divergences` must be in [0, 1), got {max_divergences!r}.")
    nodes, qw = (jnp.asarray(a) for a in box_quadrature(box, n_grid))
    xs_j = jnp.asarray(xs)

    def stats(z):
        params = net.params_from_normals(z[None])
        fg = FreeCosNet.field(params, nodes)[0]
        f2 = fg * fg
        return jnp.stack([f2 @ qw, (f2 * f2) @ qw, (f2 * f2 * f2) @ qw])

    def logdensity(z):
        return -0.5 * jnp.sum(z * z) - deformation.action(stats(z))

    shape = (net.width, net.normals_per_neuron)

    @jax.jit
    def chain(k):
        k0, k1, k2 = jax.random.split(k, 3)
        z0 = jax.random.normal(k0, shape, jnp.float64)
        warm = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, params), _ = warm.run(k1, z0, num_steps=n_warmup)
        kernel = blackjax.nuts(logdensity, **params).step

        def step(st, kk):
            st, info = kernel(kk, st)
            z = st.position
            fx = FreeCosNet.field(net.params_from_normals(z[None]), xs_j)[0]
            return st, (fx, stats(z), info.is_divergent, info.acceptance_rate,
                        info.num_integration_steps)

        _, out = jax.lax.scan(step, state, jax.random.split(k2, n_samples))
        return out, params["step_size"]

    res = [chain(jax.random.fold_in(key, c)) for c in range(n_chains)]
    fields = np.stack([np.asarray(r[0][0]) for r in res])
    ints = np.stack([np.asarray(r[0][1]) for r in res])
    div = np.array([int(np.sum(r[0][2])) for r in res])
    if div.sum() > max_divergences * n_chains * n_samples:
        raise ValueError(f"NUTS had {int(div.sum())} divergent transitions in "
                         f"{n_chains * n_samples} (> {max_divergences:.1%}): the result is not "
                         "trustworthy; lower λ, raise n_warmup, or refine the grid.")
    if not (np.all(np.isfinite(fields)) and np.all(np.isfinite(ints))):
        raise ValueError("NUTS produced non-finite fields.")
    return HMCSample(net=net, xs=xs, deformation=deformation, fields=fields, integrals=ints,
                     divergences=div, acceptance=np.array([float(np.mean(r[0][3])) for r in res]),
                     step_size=np.array([float(r[1]) for r in res]),
                     n_leapfrog=np.array([float(np.mean(r[0][4])) for r in res]))
