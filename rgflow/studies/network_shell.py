"""The network's own 1/N coupling under momentum-shell elimination at λ = 0 (physics.md §13).
Logic behind `scripts/network_shell.py`.

A sharp-cutoff `rgflow.FreeCosNet` (width N, cutoff Λ) loses its neurons with |w| > Λ'; the kept
field f_< is a cutoff-Λ' network of N_eff neurons. Rescaling lengths by Λ/Λ' maps it back to
cutoff Λ and leaves coincident-point standardised cumulants unchanged, so the flow of the
standardised quartic g₄ = κ₄/κ₂² of f_<(x) carries the coupling's scaling, ℓ = ln(Λ/Λ').

Frequencies: i.i.d. (`FreeCosNet.draw`) or stratified (`rgflow._shellnet.draw_neurons`: one neuron
per quantile stratum of the radial law, so N_eff is deterministic up to one boundary neuron).
Exact: `kept_quartic_exact` (the binomial / boundary mixture over N_eff of the library's exact
cumulants of a width-N_eff cutoff-Λ' network). Monte Carlo: g₄ from the sample cumulants of f_<(0)
over `n_nets` networks (delete-one-block jackknife), z = (MC − exact)/err. Exponent: weighted
least-squares fit of ln g₄_MC = c + y ℓ, reported with its 95 % CI only where χ²/dof says the
line describes the data (p ≥ 0.01); beside it the exponent of 1/E[N_eff], −d ln P/dℓ at both
ends (P = F(Λ')/F(Λ), smooth; the exact stratified g₄ has a sawtooth from the boundary neuron).
(The coincident-point 6-pt cumulant of one neuron a cos(c) vanishes identically, m₆ − 15m₄m₂ +
30m₂³ = (75 − 135 + 60)/16 = 0, so the standardised sextic is pure N_eff-fluctuation; it is not
used.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from .._freefield import FreeCosNet
from .._shellnet import SCHEMES, draw_neurons, kept_quartic_exact
from .._validate import check_seed
from ._config import N_NETS, SEED, integer, real
from ._plotting import figure, save_figure

TITLE = "The network's own quartic coupling under momentum-shell elimination, d = 1, 2, 3"
SCHEMA = {"width": integer(2), "mass": real(positive=True), "cutoff": real(positive=True),
          "n_cutoffs": integer(4, 50), "decades": real(positive=True), "n_nets": N_NETS,
          "n_blocks": integer(8, 1000), "seed": SEED}
HELP = {"cutoff": "the original cutoff Λ (Λ ≫ m)", "n_cutoffs": "number of Λ' (log-spaced)",
        "decades": "Λ/Λ' spans 10^decades", "n_blocks": "jackknife blocks"}
DEFAULTS = {"quick": {"width": 10, "mass": 1.0, "cutoff": 1000.0, "n_cutoffs": 5, "decades": 1.0,
                      "n_nets": 50_000, "n_blocks": 20, "seed": 0},
            "full": {"width": 10, "mass": 1.0, "cutoff": 1000.0, "n_cutoffs": 9, "decades": 1.0,
                     "n_nets": 1_000_000, "n_blocks": 40, "seed": 0}}
CAPTION = ("Standardised quartic g₄ = κ₄/κ₂² of the kept field f_<(x) of a cutoff-Λ cos-net after "
           "eliminating the neurons with |w| > Λ', against ℓ = ln(Λ/Λ'): exact finite-N values "
           "(lines, binomial/boundary mixture over N_eff) and Monte Carlo (points, jackknife "
           "errors), i.i.d. and stratified frequencies, d = 1, 2, 3.")


@jax.jit
def _kept_at_zero(params, cutoffs):
    a, c, w = params
    absw = jnp.linalg.norm(w, axis=-1)
    term = a * jnp.cos(c)  # f at x = 0, per neuron
    return jnp.stack([jnp.sum(jnp.where(absw <= lp, term, 0.0), axis=-1) for lp in cutoffs], -1)


def _g4_jackknife(f, n_blocks):
    """g₄ = κ₄/κ₂² per column of f `(M, K)` (odd moments vanish by symmetry and are not
    subtracted); delete-one-block jackknife (estimate, error)."""
    m = f.shape[0] - f.shape[0] % n_blocks
    blocks = f[:m].reshape(n_blocks, -1, f.shape[1])
    s2, s4 = (blocks**2).sum(1), (blocks**4).sum(1)
    cnt = blocks.shape[1]

    def g4(a2, a4, n):
        m2, m4 = a2 / n, a4 / n
        return (m4 - 3 * m2**2) / m2**2

    full = g4(s2.sum(0), s4.sum(0), cnt * n_blocks)
    reps = g4(s2.sum(0)[None] - s2, s4.sum(0)[None] - s4, cnt * (n_blocks - 1))
    mean = reps.mean(0)
    return (n_blocks * full - (n_blocks - 1) * mean,
            np.sqrt((n_blocks - 1) / n_blocks * ((reps - mean) ** 2).sum(0)))


def _fit(ell, g, err):
    """Weighted least squares ln g = c + y ℓ; (y, se, χ², dof, p)."""
    yv, sv = np.log(g), err / g
    wts = 1 / sv**2
    a = np.stack([np.ones_like(ell), ell], 1)
    cov = np.linalg.inv(a.T @ (a * wts[:, None]))
    beta = cov @ (a.T @ (wts * yv))
    chi2 = float((((yv - a @ beta) / sv) ** 2).sum())
    dof = len(ell) - 2
    return float(beta[1]), float(math.sqrt(cov[1, 1])), chi2, dof, float(stats.chi2.sf(chi2, dof))


def network_shell(*, width=20, mass=1.0, cutoff=1000.0, n_cutoffs=5, decades=1.0,
                  n_nets=100_000, n_blocks=20, seed=0) -> dict:
    key = jax.random.key(check_seed(seed))
    ell = np.linspace(0.0, decades * math.log(10), n_cutoffs)
    cutoffs = cutoff * np.exp(-ell)
    fine = np.linspace(0.0, ell[-1], 60)
    out = {"width": width, "mass": mass, "cutoff": cutoff, "cutoffs_lo": cutoffs.tolist(),
           "ell": ell.tolist(), "n_nets": n_nets, "n_blocks": n_blocks, "seed": seed,
           "curve_ell": fine.tolist(), "results": [],
           "caption": CAPTION + f" Here N = {width}, m = {mass:g}, Λ = {cutoff:g}, λ = 0, "
                                f"{n_nets} networks per curve, d = d_in."}
    batch = 5000
    for d in (1, 2, 3):
        net = FreeCosNet(width=width, d_in=d, mass=mass, cutoff=cutoff)
        for s, scheme in enumerate(SCHEMES):
            k = jax.random.fold_in(key, 10 * d + s)
            draw = jax.jit(lambda idx, net=net, k=k, scheme=scheme: draw_neurons(
                net, k, idx, scheme=scheme))
            cols = []
            for start in range(0, n_nets, batch):
                idx = start + jnp.arange(batch, dtype=jnp.uint32)
                cols.append(np.asarray(_kept_at_zero(draw(idx), jnp.asarray(cutoffs)))
                            [:min(batch, n_nets - start)])
            est, err = _g4_jackknife(np.concatenate(cols), n_blocks)
            lp_or_l = [float(c) if i else float(cutoff) for i, c in enumerate(cutoffs)]
            exact = np.array([kept_quartic_exact(net, lp, scheme) for lp in lp_or_l])
            curve = np.array([kept_quartic_exact(net, cutoff * math.exp(-e) if e > 0 else cutoff,
                                                 scheme) for e in fine])
            pk = np.array([net.neuron_fraction(cutoff * math.exp(-e)) for e in fine])
            y_local = np.gradient(-np.log(pk), fine)  # exponent of 1/E N_eff = 1/(NP)
            y, se, chi2, dof, p = _fit(ell, est, err)
            neff = [width * net.neuron_fraction(lp) for lp in lp_or_l]
            out["results"].append({
                "d_in": d, "scheme": scheme, "g4_mc": est.tolist(), "g4_mc_err": err.tolist(),
                "g4_exact": exact.tolist(), "z": ((est - exact) / err).tolist(),
                "resolution": (exact / err).tolist(), "mean_kept_width": neff,
                "curve_g4": curve.tolist(), "exponent_mean_width": [float(y_local[0]),
                                                                     float(y_local[-1])],
                "exponent_fit": y, "exponent_fit_err": se, "exponent_ci95": [y - 1.96 * se,
                                                                             y + 1.96 * se],
                "fit_chi2": chi2, "fit_dof": dof, "fit_p": p, "fit_describes": bool(p >= 0.01),
                "classification": _classify(y, se, p)})
    return out


def _classify(y, se, p):
    if p < 0.01:
        return "no power law (fit rejected)"
    lo, hi = y - 1.96 * se, y + 1.96 * se
    if lo > 0:
        return "relevant"
    if hi < 0:
        return "irrelevant"
    return "marginal (CI contains 0)"


def _fmt(v: float) -> str:
    """Two decimals without a signed zero."""
    text = f"{v:.2f}"
    return "0.00" if text in ("-0.00", "0.00") else text


def plot_network_shell(res: dict, stem) -> list:
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    fig, axes = figure(1, 3, width=3.3, height=3.0)
    fine = np.asarray(res["curve_ell"])
    ell = np.asarray(res["ell"])
    for ax, d in zip(axes[0], (1, 2, 3)):
        for r in (r for r in res["results"] if r["d_in"] == d):
            c = "C0" if r["scheme"] == "iid" else "C2"
            ax.plot(fine, r["curve_g4"], "-", color=c, lw=1, label=f"{r['scheme']}: exact")
            ax.errorbar(ell, r["g4_mc"], r["g4_mc_err"], fmt="o", ms=3, color=c, capsize=1.5,
                        label=f"{r['scheme']}: MC, y = {_fmt(r['exponent_fit'])} ± "
                              f"{_fmt(r['exponent_fit_err'])}" + ("" if r["fit_describes"] else
                                                                 " (fit rejected)"))
        data = np.concatenate([np.ravel(r["curve_g4"]) for r in res["results"]
                               if r["d_in"] == d])
        narrow = float(data.max() / data.min()) < 3.0  # a flat curve: linear axis, plain ticks
        if not narrow:
            ax.set_yscale("log")
        ax.set_xlabel(r"$\ell = \ln(\Lambda/\Lambda')$")
        ax.set_ylabel(r"$g_4 = \kappa_4/\kappa_2^2$ of kept field")
        ax.set_title(r"$d_\mathrm{in}$ = " + f"{d}   (fit: " + r"$g_4 \propto e^{y\ell}$)",
                     fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        lo, hi = ax.get_ylim()
        if narrow:
            ax.set_ylim(lo, hi + 0.6 * (hi - lo))
        else:
            ax.set_ylim(lo, hi * (hi / lo) ** 0.6)
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            ax.yaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(f"cos-net, N = {res['width']}, m = {res['mass']:g}, Λ = {res['cutoff']:g}, "
                 f"{res['n_nets']} networks per curve, λ = 0", fontsize=9)
    return save_figure(fig, stem)


def run(config: dict, *, progress: bool = False) -> dict:
    return {"network_shell_couplings": network_shell(**config)}


def plot(result: dict, stem) -> list:
    return plot_network_shell(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for res in results.values():
        for r in res["results"]:
            zmax = float(np.max(np.abs(r["z"])))
            rows.append((f"g₄ of kept net, d = {r['d_in']}, {r['scheme']}",
                         f"max |z| {zmax:.1f}; fit y = {r['exponent_fit']:.3f} ± "
                         f"{r['exponent_fit_err']:.3f} (χ²/dof {r['fit_chi2']:.1f}/{r['fit_dof']},"
                         f" p = {r['fit_p']:.2g}): {r['classification']}; −dlnP/dℓ "
                         f"{r['exponent_mean_width'][0]:.3f} → {r['exponent_mean_width'][1]:.3f}",
                         "|z| ≤ 3", "ok" if zmax <= 3 else f"FAILED: max |z| = {zmax:.1f}"))
    return rows
