"""Genuine Wilsonian coarse-graining of network ensembles (physics.md §10).

For each net and input set: the kernel modes, the Polchinski flow of the exact O(1/N²) action of
all modes from μ → 0 (nothing removed) up to the cutoff μ_c = √(λ_M λ_{M+1}) between the M kept
and the removed modes, compared with the exact route (the Edgeworth action of the projected exact
cumulants), the standardised couplings μ² g_kkkk of every mode against μ, and the N-dependence of
the running. Direction: μ increases towards the IR (removing small-eigenvalue modes).

The Gaussian-point eigenvalues θ = n/2 stored under "relevance" are the rescaling convention
a = √μ â (rgflow._wilsonian), not a classification of the network's operators; the measured
physics is the running ∝ 1/N² of the dimensionful kept quartics (running/coupling ∝ 1/N) and the
flow-vs-exact gap, which is small only where the expansion parameter is (N ≳ 10³ here).

ReLU-net uses σ_b = 1 (with σ_b = 0 and d_in = 1 the kernel has rank 1: a one-dimensional theory).
Gauss-net's 0.01-scaled HMS set gives a numerically singular kernel (condition > 10⁸): it runs on
the dense grid only.
"""

from __future__ import annotations

import numpy as np

from .._exact import exact_connected
from .._modes import kernel_modes
from .._nets import hms_inputs, make_net
from .._wilsonian import (
    DIRECTION,
    integrate_out,
    standardised_couplings,
    wilsonian_flow,
    wilsonian_relevance,
)
from ._config import NETS, choice, choice_list, int_list, integer, real
from ._plotting import NET_LABELS, figure, save_figure
from ._progress import steps

TITLE = "Wilsonian mode elimination: flow vs exact route, running vs N (beyond the paper)"
SCHEMA = {
    "nets": choice_list(*NETS),
    "d_ins": int_list(1),
    "widths": int_list(1),
    "keep": integer(1),
    "inputs": choice_list("hms", "grid"),
    "grid_points": integer(3),
    "grid_extent": real(positive=True),
    "regulator": choice("smooth", "sharp"),
    "n_mu": integer(4),
}
HELP = {
    "keep": "number M of kept (largest-eigenvalue) kernel modes",
    "inputs": "input sets: 'hms' (the paper's) and/or 'grid' (dense 1-d grid)",
    "grid_points": "points of the dense 1-d grid",
    "grid_extent": "the grid spans [-extent, extent]",
    "regulator": "regulator of the flow (smooth: C-infinity compact step; sharp)",
    "n_mu": "number of saved cutoffs mu per flow",
}
# networks are independent (own seeds, own files): `rgflow reproduce` runs one task per net
SPLIT = "nets"
DEFAULTS = {
    "quick": {"nets": ["erf", "relu"], "d_ins": [1], "widths": [1000, 10000, 100000], "keep": 2,
              "inputs": ["hms"], "grid_points": 12, "grid_extent": 3.0, "regulator": "smooth",
              "n_mu": 24},
    "full": {"nets": ["erf", "relu", "gauss"], "d_ins": [1, 2, 3],
             "widths": [1000, 10000, 100000], "keep": 2, "inputs": ["hms", "grid"],
             "grid_points": 12, "grid_extent": 3.0, "regulator": "smooth", "n_mu": 32},
}
_SIGMA_B = {"relu": 1.0}
CONVENTION = ("theta = n/2 at the Gaussian point is the engineering dimension of the rescaling "
              "a = sqrt(mu) a_hat (a convention, not a property of the network); the physics is "
              "theta - n/2 at the theory point and the running of the dimensionful couplings")


def _net(name, width, d_in):
    kw = {"sigma_b": _SIGMA_B[name]} if name in _SIGMA_B else {}
    return make_net(name, width=width, d_in=d_in, **kw)


def _slope(ns, values):
    ns, values = np.asarray(ns, float), np.asarray(values, float)
    ok = values > 0
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(ns[ok]), np.log(values[ok]), 1)[0])


def wilsonian_study(name: str, xs: np.ndarray, d_in: int, widths, keep: int, *,
                    regulator: str = "smooth", n_mu: int = 24, label: str = "hms",
                    progress=False) -> dict:
    """One net on one input set (module docstring); `progress` reports one step per width
    (`rgflow.studies._progress`). **Returns:** a JSON-ready dict."""
    xs = np.asarray(xs, dtype=np.float64)
    base = _net(name, 1, d_in)
    modes = kernel_modes(base, xs)
    lam = np.asarray(modes.eigenvalues)
    p = lam.size
    if keep >= p:
        raise ValueError(f"configuration key `keep`: must be < P = {p} (the {label} inputs) so "
                         f"that some modes are integrated out, got {keep}")
    keep = modes.check_keep(keep)
    k4 = np.asarray(exact_connected(base, xs, 4))
    k6 = np.asarray(exact_connected(base, xs, 6))
    mu_c = float(np.sqrt(lam[keep - 1] * lam[keep]))
    width_reg = 0.25 * float(np.log(lam[keep - 1] / lam[keep]))  # window clear of both neighbours
    width_reg = min(width_reg, 0.5)
    mu = np.geomspace(lam[-1] * np.exp(-2 * width_reg), mu_c, n_mu)
    whitened = np.einsum("abcd,a,b,c,d->abcd", np.asarray(modes.correlator_to_modes(k4)),
                         *(lam**-0.5,) * 4)
    out = {"net": name, "d_in": d_in, "inputs": label, "xs": xs.tolist(), "keep": keep,
           "eigenvalues": lam.tolist(), "widths": list(map(int, widths)), "mu_cut": mu_c,
           "regulator": regulator, "regulator_width": width_reg, "mu": mu.tolist(),
           "direction": DIRECTION, "per_width": {}}
    if name in _SIGMA_B:
        out["sigma_b"] = _SIGMA_B[name]
    gaps, runs = [], []
    for n in steps(widths, f"{name} {label} d_in={d_in} (widths N)", progress, unit="width"):
        net = _net(name, n, d_in)
        cum = {4: k4 / n, 6: k6 / n**2}
        full = integrate_out(net, xs, p, modes=modes, cumulants=cum)
        exact = integrate_out(net, xs, keep, modes=modes, cumulants=cum)
        sol = wilsonian_flow(full, modes, mu, regulator=regulator, width=width_reg,
                             save_sextic=p <= 8, max_steps=8192)
        entry = {"succeeded": sol.succeeded, "stats": {k: int(v) for k, v in sol.stats.items()},
                 "expansion_parameter": float(np.abs(whitened).max() / n)}
        kept = sol.kept(n_mu - 1)
        ix = np.ix_(*(range(keep),) * 4)
        q_flow = np.asarray(sol.quartic[-1])[ix]
        q_exact = np.asarray(exact.quartic)
        q_start = np.asarray(full.quartic)[ix]
        gap = float(np.abs(q_flow - q_exact).max() / np.abs(q_exact).max())
        run = float(np.abs(q_flow - q_start).max() / np.abs(q_start).max())
        entry.update({
            "kept_at_cut": kept.tolist(),
            "quartic_flow": q_flow.tolist(), "quartic_exact": q_exact.tolist(),
            "quartic_start": q_start.tolist(),
            "max_rel_gap": gap, "running_over_coupling": run,
        })
        st = standardised_couplings(sol)
        entry["standardised_quartic_diag"] = [
            [None if not np.isfinite(v) else float(v)
             for v in np.einsum("kkkk->k", st["quartic"][i])] for i in range(n_mu)]
        if sol.sextic is not None and keep <= 4:
            rel = {}
            for point in ("gaussian", "theory"):
                try:
                    r = wilsonian_relevance(sol, -1, point=point)
                except ValueError as e:
                    rel[point] = {"error": str(e)}
                    continue
                rel[point] = {"theta": np.round(r.theta, 10).tolist(),
                              "degree": r.degree.tolist(), "classes": list(r.classes)}
            entry["relevance"] = {"mu": float(mu[-1]), "kept": list(map(int, kept)),
                                  "direction": DIRECTION, "convention": CONVENTION, **rel}
            # inside the regulator window of mode M+1 (dP̄/dt ≠ 0 there): the theory point's
            # eigenvalues move away from n/2 by O(1/N)
            i_win = int(np.argmin(np.abs(np.log(mu) - np.log(lam[keep]))))
            if sol.kept(i_win).size <= 4:
                win = {}
                for point in ("gaussian", "theory"):
                    try:
                        r = wilsonian_relevance(sol, i_win, point=point)
                    except ValueError as e:  # O(1/N) shifts too large to label: report it
                        win[point] = {"error": str(e)}
                        continue
                    win[point] = {"theta": r.theta.tolist(), "degree": r.degree.tolist(),
                                  "classes": list(r.classes)}
                entry["relevance_in_window"] = {"mu": float(mu[i_win]),
                                                "kept": sol.kept(i_win).tolist(),
                                                "direction": DIRECTION, **win}
        out["per_width"][str(n)] = entry
        gaps.append(gap)
        runs.append(run)
    out["max_rel_gap"] = gaps
    out["running_over_coupling"] = runs
    out["gap_slope"] = _slope(widths, gaps)
    out["running_slope"] = _slope(widths, runs)
    out["expected"] = {"gap_slope": -2.0, "running_slope": -1.0}
    return out


def plot_wilsonian(res: dict, stem) -> list:
    """(a) standardised μ² g_kkkk against μ; (b) flow-vs-exact gap and running against N."""
    fig, axes = figure(1, 3, width=3.3, height=2.9)
    ax = axes[0][1]
    for j, n in enumerate(res["widths"]):
        d = np.array([[np.nan if v is None else v for v in row]
                      for row in res["per_width"][str(n)]["standardised_quartic_diag"]])
        for k in range(res["keep"]):
            lk = d[:, k] / np.asarray(res["mu"]) ** 2  # the dimensionful L_kkkk(μ)
            rel = np.abs(lk / lk[0] - 1)
            rel[rel < 1e-13] = np.nan  # not yet running (rounding)
            ax.plot(res["mu"], rel, ["-", "--", ":", "-."][k % 4], color=f"C{j % 6}",
                    label=f"$N={n}$, $k={k + 1}$")
    ax.axvline(res["mu_cut"], color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"cutoff $\mu$ (towards the IR $\rightarrow$)")
    ax.set_ylabel(r"$|g_{kkkk}(\mu)/g_{kkkk}(0) - 1|$, kept $k$")
    ax.set_title("running of the kept quartics", fontsize=8)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    ax = axes[0][0]
    mu = np.asarray(res["mu"])
    n0 = res["widths"][0]
    diag = np.array([[np.nan if v is None else v for v in row]
                     for row in res["per_width"][str(n0)]["standardised_quartic_diag"]])
    for k in range(diag.shape[1]):
        ax.plot(mu, np.abs(diag[:, k]), "-", color=f"C{k % 6}", label=fr"$k={k + 1}$")
    for k, eps in enumerate(res["eigenvalues"]):
        ax.axvline(eps, color=f"C{k % 6}", lw=0.6, ls=":",
                   label=r"$\mu = \varepsilon_k$ (dotted)" if k == 0 else None)
    ax.axvline(res["mu_cut"], color="k", lw=0.8, ls="--", label=r"$\mu_c$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"cutoff $\mu$ (towards the IR $\rightarrow$)")
    ax.set_ylabel(r"$|\hat g_{kkkk}| = \mu^2 |g_{kkkk}|$")
    from .._nets import make_net

    net = make_net(res["net"], width=1, d_in=int(res["d_in"]))
    ax.set_title(f"{NET_LABELS.get(res['net'], res['net'])}, $\\sigma_b = {float(net.sigma_b):g}$, "
                 f"$\\sigma_W = {float(net.sigma_w):g}$, $d_{{in}} = {res['d_in']}$, $N={n0}$, "
                 f"{res['keep']} kept modes", fontsize=8)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    ax = axes[0][2]
    ns = np.asarray(res["widths"], float)
    gaps = np.asarray(res["max_rel_gap"])
    runs = np.asarray(res["running_over_coupling"])
    ax.loglog(ns, gaps, "o-", label="flow vs exact: max rel. gap")
    ax.loglog(ns, runs, "s-", label="running / coupling")
    ax.loglog(ns, gaps[-1] * (ns / ns[-1]) ** -2.0, "k:", lw=0.8, label=r"$\propto N^{-2}$")
    ax.loglog(ns, runs[-1] * (ns / ns[-1]) ** -1.0, "k--", lw=0.8, label=r"$\propto N^{-1}$")
    ax.set_xlabel("width $N$")
    ax.set_ylabel(r"kept-mode quartic $g_{kkkk}$, relative")
    slopes = (f"slopes: gap {res['gap_slope']:.2f}, running {res['running_slope']:.2f}"
              if res["gap_slope"] is not None and res["running_slope"] is not None else "")
    ax.set_title(slopes, fontsize=8)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return save_figure(fig, stem)


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        for inputs in config["inputs"]:
            if inputs == "hms":
                if name == "gauss":
                    continue  # 0.01-scaled HMS set: numerically singular kernel (docstring)
                for d in config["d_ins"]:
                    if d not in (1, 2, 3):
                        raise ValueError(f"configuration key `d_ins`: must be 1, 2 or 3, got {d}")
                    r = wilsonian_study(
                        name, hms_inputs(name, d), d, config["widths"], config["keep"],
                        regulator=config["regulator"], n_mu=config["n_mu"], progress=progress)
                    r["caption"] = caption(r)
                    out[f"wilsonian_{name}_d{d}"] = r
            else:
                xs = np.linspace(-config["grid_extent"], config["grid_extent"],
                                 config["grid_points"])[:, None]
                r = wilsonian_study(
                    name, xs, 1, config["widths"], config["keep"], regulator=config["regulator"],
                    n_mu=config["n_mu"], label="grid", progress=progress)
                r["caption"] = caption(r)
                out[f"wilsonian_{name}_d1_grid{config['grid_points']}"] = r
    return out


def caption(res: dict) -> str:
    """The JSON caption: what the figure tests and its ensemble parameters."""
    from .._nets import make_net

    net = make_net(res["net"], width=1, d_in=int(res["d_in"]))
    return ("Tests a Wilsonian mode elimination (physics.md §10): the Polchinski flow (diffrax) of "
            "the kept modes' couplings against the exact effective action, the running of the "
            "kept quartics g_kkkk (g: coupling of kernel mode k, ε_k its kernel eigenvalue, dotted "
            "lines at μ = ε_k), and their N dependence (flow − exact ∝ N⁻², running/coupling "
            "∝ N⁻¹). "
            f"Parameters: {res['net']}, σ_b = {float(net.sigma_b):g}, σ_W = "
            f"{float(net.sigma_w):g}, d_in = {res['d_in']}, N = width ∈ "
            f"{', '.join(str(w) for w in res.get('widths', []))}, {res['keep']} kept modes, "
            f"{res['regulator']} regulator.")


def plot(result: dict, stem) -> list:
    return plot_wilsonian(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731

    def check(x, want, tol=0.1):
        if x is None:
            return "FAILED: no slope (fewer than two widths or a failed flow)"
        return "ok" if abs(x - want) <= tol else f"FAILED: |{x:.2f} − ({want:g})| > {tol:g}"

    for stem, r in results.items():
        ws = ", ".join(str(w) for w in r.get("widths", []))
        rows.append((f"flow-vs-exact gap slope in N, {stem} ({r['keep']} kept modes, N = {ws}; "
                     "exact, no Monte Carlo)", fmt(r["gap_slope"]),
                     "−2 (O(1/N³) gap on an O(1/N) coupling)", check(r["gap_slope"], -2.0),
                     "log-log slope of the max relative flow−exact gap over the widths: "
                     "|slope + 2| ≤ 0.1"))
        rows.append((f"running/coupling slope in N, {stem}", fmt(r["running_slope"]),
                     "−1 (running starts at O(1/N²))", check(r["running_slope"], -1.0),
                     "log-log slope of running/coupling over the widths: |slope + 1| ≤ 0.1"))
    return rows
