"""The Wilsonian three-ensemble test through networks (physics.md §13).

A sharp-cutoff `rgflow.FreeCosNet` of cutoff Λ and width N, filtered to its neurons with
|w| ≤ Λ' (`FreeCosNet.field(..., max_frequency=Λ')`), is a cutoff-Λ' free network: the
frequency density restricted to |w| ≤ Λ' is the cutoff-Λ' density up to normalisation, and
with a ~ N(0, 2G_Λ(0)/N) the filtered field has exactly the GP kernel G_Λ' (2G_Λ(0)P/(NP) =
2G_Λ'(0)/(NP), P = G_Λ'(0)/G_Λ(0)). Its width N_eff ~ Binomial(N, P) is random, which only
changes its 1/N couplings (§13, "network couplings"). So one draw of cutoff-Λ networks serves
all three ensembles (common random numbers):

1. the full cutoff-Λ field f reweighted by exp(−S_int[f; λ]), observed through f_< (|w| ≤ Λ');
2. f_< reweighted by exp(−S_int[f_<; λ, δm²]) with the flowed mass m² + δm² (`shell_one_loop`);
3. f_< reweighted by exp(−S_int[f_<; λ]) (unflowed couplings).

`sample_shell_fields` records per network the filtered fields at the external points, the box
integrals ∫_V f^k of the full field and of each filtered field (k = 2, 4, 6), from one evaluation
of the neurons on the quadrature nodes. The O(λ) predictions (`three_ensemble_prediction`) are
V-integrals: S_int acts only inside V, so the tadpole is −(λ/2)G(0)∫_V G_<G_<, not the
infinite-volume mass shift; at O(λ) and N = ∞, ensembles 1 and 2 are then equal exactly for any V
(the shell loop G_Λ(0) − G_Λ'(0) = 2δm²/λ is a constant in a sharp-cutoff theory).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._deform import (
    FieldSample,
    _finite_real,
    box_quadrature,
    check_box,
    nyquist_points,
    tadpole_two_point,
)
from ._ensemble import _block_layout
from ._freefield import FreeCosNet, draw_jit
from ._validate import check_ensemble, check_inputs, check_key, check_positive_int

__all__ = ["sample_shell_fields", "three_ensemble_prediction", "check_new_cutoffs", "SCHEMES",
           "draw_neurons", "kept_width_law", "kept_quartic_exact", "kept_quartic_closed_form"]


def check_new_cutoffs(net: FreeCosNet, new_cutoffs) -> tuple:
    """Λ' values as floats with 0 < Λ' < Λ (sharp regulator only); ValueError naming `new_cutoff`."""
    if not isinstance(net, FreeCosNet):
        raise TypeError(f"`net` must be a rgflow.FreeCosNet, got {type(net).__name__}.")
    if net.regulator != "sharp":
        raise ValueError("the shell test needs `regulator='sharp'` (the filtered field of a smooth "
                         "regulator is not a cutoff-Λ' network).")
    if isinstance(new_cutoffs, (int, float)):
        new_cutoffs = (new_cutoffs,)
    out = []
    for lp in new_cutoffs:
        lp = _finite_real("new_cutoff", lp)
        if not 0 < lp < net.cutoff:
            raise ValueError(f"`new_cutoff` Λ' must satisfy 0 < Λ' < Λ = {net.cutoff:g}, got {lp:g}.")
        out.append(lp)
    if not out:
        raise ValueError("`new_cutoff`: give at least one Λ'.")
    return tuple(out)


@jax.jit
def _shell_batch(params, xs, nodes, qw, cutoffs):
    a, c, w = params
    absw = jnp.linalg.norm(w, axis=-1)
    cx = jnp.cos(jnp.einsum("bnd,pd->bpn", w, xs) + c[:, None])
    cg = jnp.cos(jnp.einsum("bnd,qd->bqn", w, nodes) + c[:, None])
    amps = jnp.stack([jnp.where(absw <= lp, a, 0.0) for lp in cutoffs] + [a])  # (K+1, B, N)
    fx = jnp.einsum("kbn,bpn->kbp", amps[:-1], cx)
    fg = jnp.einsum("kbn,bqn->kbq", amps, cg)
    f2 = fg * fg
    ints = jnp.stack([f2 @ qw, (f2 * f2) @ qw, (f2 * f2 * f2) @ qw], axis=-1)  # (K+1, B, 3)
    return fx, ints


def sample_shell_fields(net: FreeCosNet, xs, n_nets: int, *, key, box, new_cutoffs,
                        n_blocks: int = 32, batch_size: int | None = None) -> list:
    """One draw of `n_nets` cutoff-Λ networks (network g from `fold_in(key, g)`), seen at every
    Λ' of `new_cutoffs` (module docstring).

    **Returns:** per Λ' a pair of `rgflow.FieldSample`s `(high, low)`: both hold the filtered
    fields f_< at `xs`; `high.integrals` are those of the full field f (ensemble 1), `low.integrals`
    those of f_< (ensembles 2 and 3). The quadrature has ⌈1.5 n_Nyquist(Λ)⌉ + 8 nodes per axis.
    """
    cutoffs = check_new_cutoffs(net, new_cutoffs)
    key = check_key(key)
    xs = check_inputs(xs, net.d_in)
    n_nets, n_blocks = check_ensemble("n_nets", n_nets, n_blocks)
    box = check_box(box, net.d_in)
    n_grid = math.ceil(1.5 * nyquist_points(net, box)) + 8
    nodes, qw = box_quadrature(box, n_grid)
    if batch_size is None:
        batch_size = max(8, min(2048, 2**21 // (net.width * (nodes.shape[0] + xs.shape[0]))))
    batch_size = check_positive_int("batch_size", batch_size)
    args = (jnp.asarray(xs), jnp.asarray(nodes), jnp.asarray(qw), jnp.asarray(cutoffs))
    fxs, ints = [], []
    for start in range(0, n_nets, batch_size):
        index = start + jnp.arange(batch_size, dtype=jnp.uint32)
        fx, it = _shell_batch(draw_jit(net, key, index), *args)
        keep = min(batch_size, n_nets - start)
        fxs.append(np.asarray(fx)[:, :keep])
        ints.append(np.asarray(it)[:, :keep])
    fx, it = np.concatenate(fxs, axis=1), np.concatenate(ints, axis=1)
    if not (np.all(np.isfinite(fx)) and np.all(np.isfinite(it))):
        raise ValueError("the sampled fields or their box integrals are not finite.")
    _, counts = _block_layout(n_nets, n_blocks)
    out = []
    for k, lp in enumerate(cutoffs):
        def make(integrals, lp=lp, k=k):
            return FieldSample(net=net, xs=xs, box=box, n_grid=n_grid, max_frequency=lp,
                               fields=fx[k], integrals=integrals, block_counts=counts)
        out.append((make(it[-1]), make(it[k])))
    return out


def three_ensemble_prediction(net: FreeCosNet, xs, box, *, new_cutoff: float, coupling: float,
                              mass_shift: float, n_grid: int | None = None) -> dict:
    """The O(λ), N = ∞ predictions for the three ensembles' low-mode 2-pt functions `(P, P)`:

        ensemble 1: G_<(r) − (λ/2) G_Λ(0)  ∫_V G_<(x − y) G_<(y − x')
        ensemble 2: G_<(r) − (λ/2 G_Λ'(0) + δm²) ∫_V G_< G_<
        ensemble 3: G_<(r) − (λ/2) G_Λ'(0) ∫_V G_< G_<

    with G_< = G_Λ' (`tadpole_two_point` of the cutoff-Λ' net). 1 = 2 when δm² = (λ/2)(G_Λ(0) −
    G_Λ'(0)), the one-loop shell mass shift.

    **Returns:** dict with `free`, `hi`, `lo_flowed`, `lo_bare` (`(P, P)` arrays).
    """
    (lp,) = check_new_cutoffs(net, new_cutoff)
    box = check_box(box, net.d_in)
    if n_grid is None:
        n_grid = math.ceil(1.5 * nyquist_points(net, box)) + 8
    low = FreeCosNet(width=net.width, d_in=net.d_in, mass=net.mass, cutoff=lp)
    xs = check_inputs(xs, net.d_in)
    unit = tadpole_two_point(low, xs, box, n_grid, mass_shift=1.0)  # −∫_V G_< G_<
    free = np.asarray(low.kernel(xs, xs))
    lam = float(coupling)
    return {"free": free,
            "hi": free + (0.5 * lam * net.g0) * unit,
            "lo_flowed": free + (0.5 * lam * low.g0 + mass_shift) * unit,
            "lo_bare": free + (0.5 * lam * low.g0) * unit}


# ------------------------------------------------- the network's own couplings (item 1) ---

SCHEMES = ("iid", "stratified")


def draw_neurons(net: FreeCosNet, key, index, *, scheme: str = "iid"):
    """Parameters (a, c, w) of the networks `index` (normals from `fold_in(key, g)` as
    `FreeCosNet.draw`). `scheme="stratified"`: neuron i's radial quantile is (i + Φ(z_r))/N,
    one neuron per stratum of F (a deterministic assignment of neurons to frequency shells), so
    eliminating Λ' < |w| removes exactly the strata above F(Λ')/F(Λ) (N_eff = ⌊NP⌋ or ⌊NP⌋ + 1).
    In d = 1 the sign of w is dropped (cos(−wx + c) = cos(wx − c) and −c is again uniform)."""
    if scheme not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
    z = net.normals(key, jnp.asarray(index, jnp.uint32))
    if scheme == "iid":
        return net.params_from_normals(z)
    n, d = net.width, net.d_in
    a = z[..., 0] * (net.sigma_a / math.sqrt(n))
    c = jnp.pi * (2 * jax.scipy.stats.norm.cdf(z[..., 1]) - 1)
    u = (jnp.arange(n) + jax.scipy.stats.norm.cdf(z[..., 2])) / n
    radius = net.inverse_radial_cdf(u)
    if d == 1:
        return a, c, radius[..., None]
    v = z[..., 3:]
    return a, c, radius[..., None] * v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def kept_width_law(net: FreeCosNet, new_cutoff: float, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """The law of the number N_eff of neurons with |w| ≤ Λ': `(values, probabilities)`;
    i.i.d.: Binomial(N, P); stratified: ⌊NP⌋ + Bernoulli(frac(NP)); P = F(Λ')/F(Λ)."""
    from scipy.stats import binom

    if scheme not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
    (lp,) = (float(new_cutoff),) if new_cutoff == net.cutoff else check_new_cutoffs(net, new_cutoff)
    n = net.width
    p = net.neuron_fraction(lp)
    if scheme == "iid":
        k = np.arange(n + 1)
        return k, binom.pmf(k, n, p)
    k0, f = int(math.floor(n * p)), n * p - math.floor(n * p)
    return np.array([k0, k0 + 1]), np.array([1 - f, f])


def kept_quartic_exact(net: FreeCosNet, new_cutoff: float, scheme: str) -> float:
    """g₄ = κ₄/κ₂² of the kept field f_<(x) at one point, exact at width N: conditional on N_eff =
    k the kept field is a cutoff-Λ' network of width k with amplitude variance 2G_Λ(0)/N
    (`FreeCosNet.exact_connected` of width k, rescaled), and the mixture over k adds
    3 Var(κ₂|k): κ₄ = E[κ₄|k] + 3 Var(κ₂|k), κ₂ = E[κ₂|k]."""
    ks, ps = kept_width_law(net, new_cutoff, scheme)
    lp = float(new_cutoff)
    x0 = np.zeros((1, net.d_in))
    k2, k4 = np.zeros(len(ks)), np.zeros(len(ks))
    unit = {}
    for i, k in enumerate(ks):
        if k == 0 or ps[i] == 0:
            continue
        kk = int(k)
        low = FreeCosNet(width=kk, d_in=net.d_in, mass=net.mass, cutoff=lp)
        if "k2" not in unit:  # κ₂ ∝ k and κ₄ ∝ k at fixed amplitude variance: one evaluation
            scale = (2 * net.g0 / net.width) / (2 * low.g0 / kk)  # amplitude variance ratio
            unit["k2"] = float(low.exact_connected(x0, 2)[0, 0]) * scale / kk
            unit["k4"] = float(low.exact_connected(x0, 4)[0, 0, 0, 0]) * scale**2 / kk
        k2[i], k4[i] = unit["k2"] * kk, unit["k4"] * kk
    m2 = float(ps @ k2)
    var2 = float(ps @ (k2 - m2) ** 2)
    return (float(ps @ k4) + 3 * var2) / m2**2


def kept_quartic_closed_form(net: FreeCosNet, new_cutoff: float, scheme: str) -> float:
    """g₄ = 3/(2 E N_eff) + 3 Var(N_eff)/(E N_eff)² (physics.md §13); i.i.d.: (9/(2P) − 3)/N."""
    ks, ps = kept_width_law(net, new_cutoff, scheme)
    mean = float(ps @ ks)
    return 1.5 / mean + 3 * float(ps @ (ks - mean) ** 2) / mean**2
