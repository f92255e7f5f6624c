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
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import NET_LABELS, figure, save_figure
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
    base = make_net(net, width=1, d_in=d_in)
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
    key = jax.random.key(seed)
    rows = {k: [] for k in ("lambda", "lambda_err", "kappa", "kappa_err", "lambda4",
                            "lambda4_err", "lambda4_wls", "chi2_dof", "chi2_dof_4", "converged",
                            "n_steps")}
    shares = {k: [] for k in SHARE_KEYS}
    it = widths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(widths, desc=f"{net} widths")
    for w in it:
        nw = make_net(net, width=w, d_in=d_in)
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
    out = {"net": net, "d_in": d_in, "source": source, "cutoff": float(cutoff),
           "widths": widths, "n_nets": n_nets if source == "mc" else None,
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
    """|λ(N)|, |κ(N)| with their fitted power laws, and the operators' shares of the
    non-Gaussian 6-pt signal against N."""
    fig, axes = figure(1, 2, width=3.4, height=2.8)
    ax = axes[0][0]
    n = np.asarray(results["widths"], float)
    for name, sym, c in (("lambda", r"\lambda", "C0"), ("kappa", r"\kappa", "C1")):
        v, e = np.abs(results[name]), np.asarray(results[f"{name}_err"])
        if results["source"] == "mc":
            ax.errorbar(n, v, yerr=e, fmt="o", color=c, capsize=2)
        else:
            ax.plot(n, v, "o", color=c)
        p, a = results[f"{name}_exponent"], results[f"{name}_amplitude"]
        if p is not None:
            err = results[f"{name}_exponent_err"]
            ax.plot(n, np.abs(a) * n**p, "-", color=c, alpha=0.7,
                    label=f"$|{sym}| \\propto N^{{{p:.4f} \\pm {err:.1g}}}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width $N$")
    ax.set_ylabel("fitted coupling")
    ax.set_title(f"{NET_LABELS.get(results['net'], results['net'])}, Λ={results['cutoff']:g}, "
                 f"{results['source']}")
    ax.legend()
    ax = axes[0][1]
    labels = {"lambda": r"$O(\lambda)$: $\sum K\,G_4^{c,fit}$",
              "residual_4": r"residual $O(1/N)$", "lambda2_exchange": r"$\lambda^2$ exchange",
              "kappa": r"$\kappa\, f^6$", "residual_6": r"residual $O(1/N^2)$"}
    bottom = np.zeros_like(n)
    for k in SHARE_KEYS:
        s = np.asarray(results["shares"][k])
        ax.fill_between(n, bottom, bottom + s, step=None, alpha=0.75, label=labels[k])
        bottom = bottom + s
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("width $N$")
    ax.set_ylabel(r"share of $G_6 - G_6^{GP}$")
    ax.set_title("over-parameterisation implies simplicity")
    ax.legend(loc="center right", fontsize=6.5)
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Fitted couplings against width: the 1/N story"
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "source": choice("exact", "mc"),
          "n_nets": integer(100), "seed": SEED, "widths": int_list(1)}
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "source": "exact", "n_nets": 50_000, "seed": 0,
              "widths": list(HMS_WIDTHS)},
    "full": {"nets": list(NETS), "d_in": 1, "source": "mc", "n_nets": 1_000_000, "seed": 0,
             "widths": list(HMS_WIDTHS)},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        out[f"width_scaling_{name}_d{config['d_in']}"] = width_scaling(
            name, d_in=config["d_in"], widths=config["widths"], source=config["source"],
            n_nets=config["n_nets"], seed=config["seed"],
            progress=progress and config["source"] == "mc")
    return out


def plot(result: dict, stem) -> list:
    return plot_width_scaling(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    fmt = lambda x, d: "n/a" if x is None else f"{x:.{d}f}"  # noqa: E731
    for d in results.values():
        for k, e in (("lambda", "−1"), ("kappa", "−2")):
            rows.append((f"{k}(N) exponent ({d['source']}), {d['net']}",
                         f"{fmt(d[f'{k}_exponent'], 6)} ± {fmt(d[f'{k}_exponent_err'], 2)}", e))
    return rows
