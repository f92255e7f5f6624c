"""The 1/N story: couplings against width, and each operator's share of the non-Gaussian signal
(physics.md §4, §7; HMS "over-parameterisation implies simplicity").

At each width N the local couplings are fitted to the connected correlators (exact or Monte
Carlo) at one cutoff Λ:

- λ₄(N): the constant quartic alone, fitted to G4_c = −24 λ I4 (linear; closed-form WLS and
  L-BFGS agree);
- (λ(N), κ(N)): the joint fit to G4_c and G6_c = −720 κ I6 + 576 λ² Σ_10 J (physics.md §6),
  nonlinear through the λ² exchange (L-BFGS).

Exact single-layer correlators scale exactly as G_n,c ∝ N^{1−n/2} (physics.md §4), and with the
relative noise model of exact inputs the fit is covariant under that scaling, so the fitted
exponents are −1 (λ) and −2 (κ) to rounding; Monte Carlo sweeps give them with confidence
intervals (`rgflow._fit.power_law`, unresolved widths dropped).

**Shares.** The non-Gaussian part of the 6-pt moment, G6 − G6_GP = Σ_15 K_ab G4_c(rest) + G6_c
(physics.md §4), is split into the fitted operators' contributions: the O(λ) disconnected part
Σ_15 K (−24 λ I4) (∝ 1/N), the λ² exchange and the κ vertex (both ∝ 1/N²), and the residuals
(data − fit) at O(1/N), Σ_15 K (G4_c − G4_c^fit), and at O(1/N²), G6_c − G6_c^fit. The share of
each is its rms over the sorted 6-tuples divided by the sum of the five rms values. The O(1/N)
quartic sector (λ + its misfit) takes the whole signal as N → ∞; how much of it the constant λ
captures is the operator-choice question (`rgflow.studies.local_vs_nonlocal`).

**Monte Carlo beside the exact fits.** With `n_neurons` set, the same joint fit is repeated on
Monte Carlo data from the single-neuron estimator (`rgflow.measure_neurons`: unbiased
G4_c(N), G6_c(N) at every width from one run, jackknife errors as a diagonal covariance), so the
couplings come from two independent routes (quadrature vs sampling); the neuron estimator builds
in the 1/N^{n/2−1} scaling, so what the MC points test is the coupling amplitudes. ReLU uses
σ_b = `relu_sigma_b` (> 0: not the one-dimensional HMS configuration).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from .._ensemble import measure
from .._fit import fit, power_law
from .._fit_data import DEFAULT_CUTOFF, exact_data, mc_data, tree_model
from .._nets import hms_inputs, make_net
from .._tuples import sorted_tuples, splits, to_full
from .._validate import check_seed
from ._config import N_NETS, NETS, SEED, choice, choice_list, int_list, integer, optional, real
from ._plotting import NET_LABELS, figure, log_axes, row_label, save_figure
from ._progress import steps
from .free_theory import HMS_WIDTHS

__all__ = ["width_scaling", "plot_width_scaling", "disconnected_six"]

SHARE_KEYS = ("lambda", "residual_4", "lambda2_exchange", "kappa", "residual_6")


def disconnected_six(k_full, g4c, n_points: int):
    """Σ_{15 (ab)} K_ab G4_c(rest) on the sorted 6-tuples (full K on the external pair,
    physics.md §4); `g4c` on the sorted 4-tuples."""
    t = sorted_tuples(n_points, 6)
    g4 = to_full(np.asarray(g4c), n_points, 4)
    out = 0.0
    for pair, rest in splits(6, 2):
        out = out + k_full[t[:, pair[0]], t[:, pair[1]]] * g4[
            t[:, rest[0]], t[:, rest[1]], t[:, rest[2]], t[:, rest[3]]
        ]
    return np.asarray(out)


def _sub_cov(cov, sl):
    cov = np.asarray(cov)
    return cov[sl] if cov.ndim == 1 else cov[sl, sl]


def width_scaling(
    net: str = "erf",
    *,
    d_in: int = 1,
    widths=HMS_WIDTHS,
    source: str = "exact",
    n_nets: int = 50_000,
    cutoff: float = DEFAULT_CUTOFF,
    rel_error: float = 0.01,
    covariance: str = "shrink",
    method: str = "lbfgs",
    n_boot: int = 0,
    seed: int = 0,
    sigma_b: float | None = None,
    n_neurons: int | None = None,
    progress: bool = False,
) -> dict:
    """Fit λ(N) and κ(N) over a width sweep and extract their power laws (module docstring).

    **Arguments:**

    - `net`: "erf", "relu" or "gauss" (HMS inputs of `d_in`).
    - `widths`: the widths N.
    - `source`: "exact" (default; relative noise `rel_error`) or "mc" (`n_nets` networks per
      width, width N keyed by `fold_in(key(seed), N)`, jackknife covariance `covariance`,
      `n_boot` block-bootstrap refits for `bootstrap_stderr`).
    - `cutoff`: Λ of the vertex integrals.
    - `method`: optimiser of the joint fit ("lbfgs" or "adam").
    - `sigma_b`: σ_b of the network (default: the network's own).
    - `n_neurons`: if set, also fit (λ, κ) to single-neuron Monte Carlo data at every width
      (`mc_lambda`, `mc_lambda_err`, `mc_kappa`, `mc_kappa_err`, `mc_chi2_dof`, `mc_converged`,
      `mc_lambda_z`, `mc_kappa_z`: (MC − exact fit) / MC error).

    **Returns:** a JSON-ready dict: `lambda_exponent`, `lambda_exponent_err`,
    `lambda_exponent_ci95`, the same for `kappa_` and for `lambda4_` (quartic-only fit), and per
    width `lambda`, `lambda_err`, `kappa`, `kappa_err`, `lambda4`, `lambda4_wls`, `chi2_dof`,
    `chi2_dof_4`, `converged`, `shares` (dict of `SHARE_KEYS` → list over widths).
    """
    from .._actions import Action, LocalCoupling

    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    widths = [int(w) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"`widths` must hold at least two widths, got {widths!r}.")
    nkw = {} if sigma_b is None else {"sigma_b": float(sigma_b)}
    base = make_net(net, width=1, d_in=d_in, **nkw)
    if source == "mc" and base.name == "gauss":
        warnings.warn(
            "Gauss-net (σ_b = 1) Monte Carlo 4/6-pt functions are heavy-tailed and not measurable "
            "at feasible ensemble sizes (they come out low with meaningless error bars); use "
            "source='exact' (physics.md §5).", stacklevel=2)
    xs = hms_inputs(net, d_in)
    p = xs.shape[0]
    m4 = tree_model(Action(base, (LocalCoupling(4),)), xs, (4,), cutoff)
    m46 = tree_model(Action(base, (LocalCoupling(4), LocalCoupling(6))), xs, (4, 6), cutoff)
    k_full = np.asarray(base.kernel(xs, xs))
    key = jax.random.key(check_seed(seed))
    rows = {k: [] for k in ("lambda", "lambda_err", "kappa", "kappa_err", "lambda4",
                            "lambda4_err", "lambda4_wls", "chi2_dof", "chi2_dof_4", "converged",
                            "n_steps")}
    shares = {k: [] for k in SHARE_KEYS}
    neu = None
    if n_neurons:
        from .._variance import measure_neurons
        from .connected_six_pt import _neuron_reps

        neu = measure_neurons(base, xs, int(n_neurons), key=jax.random.fold_in(key, 0))
        neu_reps = {n: _neuron_reps(neu, n)[1] for n in (4, 6)}
        sw = base.sigma_w
        for k in ("mc_lambda", "mc_lambda_err", "mc_kappa", "mc_kappa_err", "mc_chi2_dof",
                  "mc_converged", "mc_lambda_z", "mc_kappa_z"):
            rows[k] = []
    for w in steps(widths, f"{net} widths", progress, unit="width"):
        nw = make_net(net, width=w, d_in=d_in, **nkw)
        if source == "exact":
            data = exact_data(nw, xs, (4, 6), rel_error=rel_error)
        else:
            meas = measure(nw, xs, n_nets, key=jax.random.fold_in(key, w), orders=(2, 4, 6))
            data = mc_data(meas, (4, 6), covariance=covariance, n_boot=n_boot,
                           key=jax.random.fold_in(jax.random.fold_in(key, w), 1))
        b4, b6 = data.block(4), data.block(6)
        y4 = data.values[b4]
        reps4 = None if data.replicates is None else data.replicates[:, b4]
        r4 = fit(m4, y4, _sub_cov(data.covariance, b4), method="lbfgs", replicates=reps4)
        r4w = fit(m4, y4, _sub_cov(data.covariance, b4), method="wls")
        r = fit(m46, data.values, data.covariance, method=method, replicates=data.replicates)
        use_boot = data.replicates is not None
        se = np.asarray(r.bootstrap_stderr if use_boot else r.stderr)
        se4 = np.asarray(r4.bootstrap_stderr if use_boot else r4.stderr)
        lam, kap = (float(v) for v in np.asarray(r.couplings))
        rows["lambda"].append(lam)
        rows["lambda_err"].append(float(se[0]))
        rows["kappa"].append(kap)
        rows["kappa_err"].append(float(se[1]))
        rows["lambda4"].append(float(r4.couplings[0]))
        rows["lambda4_err"].append(float(se4[0]))
        rows["lambda4_wls"].append(float(r4w.couplings[0]))
        rows["chi2_dof"].append(r.chi2_dof)
        rows["chi2_dof_4"].append(r4.chi2_dof)
        rows["converged"].append(bool(r.converged))
        rows["n_steps"].append(int(r.n_steps))
        if neu is not None:
            vals = np.concatenate([np.asarray(neu.connected(n, width=w, full=False)) for n in (4, 6)])
            # the same weights as the fit to `data`, so the two fits differ only by the data;
            # the Monte Carlo error of the couplings is the jackknife spread of the linearised
            # refits A y_b over the block-deleted data vectors y_b (tuples are strongly
            # correlated), A = (JᵀWJ)⁻¹ JᵀW at the Monte Carlo solution
            rm = fit(m46, vals, data.covariance, method=method)
            cm = [float(v) for v in np.asarray(rm.couplings)]
            jac = np.asarray(m46.a) + np.einsum("dij,j->di", np.asarray(m46.h), np.asarray(cm))
            cov = np.asarray(data.covariance)
            wmat = np.diag(1.0 / cov) if cov.ndim == 1 else np.linalg.inv(cov)
            amat = np.linalg.solve(jac.T @ wmat @ jac, jac.T @ wmat)
            reps = np.concatenate([neu_reps[n] * sw**n * float(w) ** (1 - n / 2) for n in (4, 6)],
                                  axis=1)
            g_reps = reps @ amat.T
            nb = g_reps.shape[0]
            sm = np.sqrt((nb - 1) / nb * np.sum((g_reps - g_reps.mean(0)) ** 2, 0))
            rows["mc_lambda"].append(cm[0])
            rows["mc_lambda_err"].append(float(sm[0]))
            rows["mc_kappa"].append(cm[1])
            rows["mc_kappa_err"].append(float(sm[1]))
            rows["mc_chi2_dof"].append(rm.chi2_dof)
            rows["mc_converged"].append(bool(rm.converged))
            rows["mc_lambda_z"].append((cm[0] - lam) / float(sm[0]))
            rows["mc_kappa_z"].append((cm[1] - kap) / float(sm[1]))
        # shares of the non-Gaussian 6-pt signal
        a6, h6 = np.asarray(m46.a[b6]), np.asarray(m46.h[b6])
        g4c_fit = np.asarray(m46.a[b4]) @ np.array([lam, kap])
        parts = {
            "lambda": disconnected_six(k_full, g4c_fit, p),
            "lambda2_exchange": 0.5 * h6[:, 0, 0] * lam**2,
            "kappa": a6[:, 1] * kap,
        }
        parts["residual_4"] = disconnected_six(k_full, y4 - g4c_fit, p)  # O(1/N) misfit
        parts["residual_6"] = data.values[b6] - parts["lambda2_exchange"] - parts["kappa"]
        rms = {k: float(np.sqrt(np.mean(v**2))) for k, v in parts.items()}
        tot = sum(rms.values())
        for k in SHARE_KEYS:
            shares[k].append(rms[k] / tot)
    out = {"net": net, "d_in": d_in, "sigma_b": float(base.sigma_b), "source": source,
           "cutoff": float(cutoff), "widths": widths, "n_nets": n_nets if source == "mc" else None,
           "n_neurons": int(n_neurons) if n_neurons else None,
           "rel_error": rel_error if source == "exact" else None, **rows, "shares": shares}
    for name, key_v, key_e in (("lambda", "lambda", "lambda_err"), ("kappa", "kappa", "kappa_err"),
                               ("lambda4", "lambda4", "lambda4_err")):
        pl = power_law(widths, rows[key_v], None if source == "exact" else rows[key_e])
        out[f"{name}_exponent"] = pl["exponent"]
        out[f"{name}_exponent_err"] = pl["exponent_err"]
        out[f"{name}_exponent_ci95"] = pl["ci95"]
        out[f"{name}_amplitude"] = pl["amplitude"]
        out[f"{name}_used"] = pl["used"]
    return out


def plot_width_scaling(results: dict, path_stem) -> list:
    """|λ(N)|, |κ(N)| fitted to exact correlators (filled, with their power laws) and to Monte
    Carlo data (open, jackknife error bars); the operators' shares of the non-Gaussian 6-pt signal
    against N."""
    has_mc = bool(results.get("n_neurons"))
    fig, axes = figure(1, 3 if has_mc else 2, width=3.2, height=2.9)
    ax = axes[0][0]
    n = np.asarray(results["widths"], float)
    exact_src = "exact" if results["source"] == "exact" else "brute-force MC"
    for name, sym, c, dx in (("lambda", r"\lambda", "C0", 0.96), ("kappa", r"\kappa", "C1", 1.04)):
        v, e = np.abs(results[name]), np.asarray(results[f"{name}_err"])
        if results["source"] == "mc":
            ax.errorbar(n, v, yerr=e, fmt="o", color=c, capsize=2, ms=3.5)
        else:
            ax.plot(n, v, "o", color=c, ms=3.5)
        p, a = results[f"{name}_exponent"], results[f"{name}_amplitude"]
        lab = f"$|{sym}|$, fit to {exact_src} $G^c$"
        if p is not None:
            err = results[f"{name}_exponent_err"]
            # two widths (dof = 0) have no error: two decimals, no false precision
            digits = 2 if err is None or err > 5e-3 else 3
            lab += f": $N^{{{p:.{digits}f}}}$" + (" (2 widths, no error)" if err is None else "")
            ax.plot(n, np.abs(a) * n**p, "-", color=c, alpha=0.7)
        ax.plot([], [], "o-", color=c, ms=3.5, label=lab)
        if results.get("n_neurons"):
            mv, me = np.abs(results[f"mc_{name}"]), np.asarray(results[f"mc_{name}_err"])
            ax.errorbar(n * dx, mv, yerr=[np.minimum(me, 0.999 * mv), me], fmt="s", mfc="none",
                        color=c, capsize=2, ms=4,
                        label=f"$|{sym}|$, fit to Monte Carlo $G^c$ (single-neuron)")
    log_axes(ax)
    ax.set_xlabel("width $N$")
    ax.set_ylabel(r"fitted coupling $|\lambda|$, $|\kappa|$")
    label = NET_LABELS.get(results["net"], results["net"])
    if results["net"] == "relu":
        label += rf", $\sigma_b = {results.get('sigma_b', 0):g}$"
    ax.set_title(f"{label}, $\\Lambda = {results['cutoff']:g}$", fontsize=8.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=6.5, frameon=False)
    if has_mc:
        # one single-neuron run predicts the cumulants of every width (G_c ∝ N^{1-k/2} exactly),
        # so the ratio is one number per coupling, not a curve in N: drawn once, at the largest
        # width, with its spread over the widths in units of its error
        bx = axes[0][2]
        spreads = []
        for i, (name, c) in enumerate((("lambda", "C0"), ("kappa", "C1"))):
            ex = np.asarray(results[name])
            ratio = np.asarray(results[f"mc_{name}"]) / ex
            err = np.asarray(results[f"mc_{name}_err"]) / np.abs(ex)
            spreads.append(float(np.max(np.abs(ratio - ratio[-1]) / err[-1])))
            bx.errorbar([i], ratio[-1:], yerr=err[-1:], fmt="s", mfc="none", color=c, capsize=3,
                        ms=5)
        bx.axhline(1.0, color="k", lw=0.6)
        bx.set_xlim(-0.6, 1.6)
        bx.set_xticks([0, 1], [r"$\lambda$", r"$\kappa$"])
        moves = ("the same at every $N$" if max(spreads) < 0.01
                 else f"moves ≤ {max(spreads):.2g}σ over $N$")
        bx.set_xlabel(f"coupling (ratio at $N={int(n[-1])}$; {moves})", fontsize=7.5)
        bx.set_ylabel("Monte Carlo fit / exact fit")
        bx.set_title(f"{results['n_neurons']:,} neurons, jackknife errors", fontsize=8.5)
    ax = axes[0][1]
    labels = {"lambda": r"$O(\lambda)$: $\sum K\,G_4^{c,fit}$",
              "residual_4": r"residual $O(1/N)$", "lambda2_exchange": r"$\lambda^2$ exchange",
              "kappa": r"$\kappa\, f^6$", "residual_6": r"residual $O(1/N^2)$"}
    bottom = np.zeros_like(n)
    for k in SHARE_KEYS:
        s = np.asarray(results["shares"][k])
        ax.fill_between(n, bottom, bottom + s, step=None, alpha=0.75, label=labels[k])
        bottom = bottom + s
    log_axes(ax, y=False)
    ax.set_ylim(0, 1)
    ax.set_xlabel("width $N$")
    ax.set_ylabel(r"share of $G_6 - G_6^{GP}$ ($\exact_src$ fit)".replace(r"$\exact_src$", exact_src))
    ax.set_title("over-parameterisation implies simplicity", fontsize=8.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=6.5, ncol=2,
              frameon=False)
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Fitted couplings against width: the 1/N story"
CAPTION = ("Tests λ ∝ 1/N and κ ∝ 1/N²: (λ, κ) fitted at each width to exact finite-width "
           "correlators and, beside them, to single-neuron Monte Carlo data with jackknife "
           "errors; right: each operator's share of G6 − G6_GP.")
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "source": choice("exact", "mc"),
          "n_nets": N_NETS, "seed": SEED, "widths": int_list(1),
          "n_neurons": optional(integer(100)), "relu_sigma_b": real(minimum=0.0)}
HELP = {"n_neurons": "neurons of the single-neuron Monte Carlo fits beside the exact ones "
                     "(none: no Monte Carlo)",
        "relu_sigma_b": "σ_b of ReLU (> 0: not one-dimensional)"}
QUICK_WIDTHS = [2, 5, 10, 50, 200, 1000]
# networks are independent (own seeds, own files): `rgflow reproduce` runs one task per net
SPLIT = "nets"
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "source": "exact", "n_nets": 50_000, "seed": 0,
              "widths": QUICK_WIDTHS, "n_neurons": 1_000_000, "relu_sigma_b": 1.0},
    "full": {"nets": list(NETS), "d_in": 1, "source": "mc", "n_nets": 1_000_000, "seed": 0,
             "widths": list(HMS_WIDTHS), "n_neurons": 100_000_000, "relu_sigma_b": 1.0},
}
SMALL = {"nets": ["erf"], "d_in": 1, "source": "exact", "n_nets": 400, "seed": 0,
         "widths": [2, 8], "n_neurons": 3000, "relu_sigma_b": 1.0}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        r = width_scaling(
            name, d_in=config["d_in"], widths=config["widths"], source=config["source"],
            n_nets=config["n_nets"], seed=config["seed"],
            sigma_b=config["relu_sigma_b"] if name == "relu" else None,
            n_neurons=config["n_neurons"], progress=progress)
        r["caption"] = CAPTION
        out[f"width_scaling_{name}_d{config['d_in']}"] = r
    return out


def plot(result: dict, stem) -> list:
    return plot_width_scaling(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    fmt = lambda x, d: "n/a" if x is None else f"{x:.{d}f}"  # noqa: E731
    for d in results.values():
        label = row_label(d["net"], d["sigma_b"])
        for k, e in (("lambda", "−1"), ("kappa", "−2")):
            p, pe = d[f"{k}_exponent"], d[f"{k}_exponent_err"]
            value = f"{fmt(p, 3)} ± {fmt(pe, 3)}"
            status = "ok" if p is not None and all(d["converged"]) else (
                "FAILED: fit did not converge" if p is not None else "FAILED: unresolved")
            if d.get("n_neurons"):
                z = np.abs(d[f"mc_{k}_z"])
                value += (f"; Monte Carlo fit vs exact fit max |z| {z.max():.1f} over "
                          f"{len(z)} widths")
                if z.max() > 4:
                    status = f"FAILED: Monte Carlo vs exact coupling max |z| = {z.max():.1f}"
                elif not all(d["mc_converged"]):
                    status = "FAILED: Monte Carlo fit did not converge"
            rows.append((f"{k}(N) exponent ({d['source']}), {label}", value, e, status))
    return rows
