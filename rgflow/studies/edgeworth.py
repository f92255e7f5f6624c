"""The network's own action and how much of it the HMS operator bases hold (physics.md §9, §7).

For each network and input dimension the exact O(1/N) Edgeworth quartic L of the ensemble on the
input set (`rgflow.edgeworth_action(order=1)`: L = −(1/24) × the amputated G4_c) is projected
onto the three HMS quartic bases {λ0}, {λ0, λ2}, {λ0, λ2, λ_NL} (tree-level columns at the cutoff
Λ, `rgflow.project_hms_bases`). Reported per basis: the couplings and the **fraction of L
captured**, 1 − ‖residual‖²/‖L‖², in the whitened metric (the quartic of the standardised modes
K^{−1/2} f) and, for comparison, in the plain G4_c metric (HMS's unweighted fit metric, dominated
by the largest kernel modes). Both L and the couplings scale as 1/N: the fractions do not depend
on the width.

Inputs: the HMS sets (`rgflow.hms_inputs`), except Gauss-net, whose HMS inputs (0.01 × the Erf
set) give a numerically singular K (condition number ~10²⁵ at d_in = 1; the Edgeworth action
needs K⁻¹): it uses the Erf input set. ReLU has σ_b = 1 (a genuinely P-dimensional theory);
the HMS case σ_b = 0 at d_in = 1 is rank one (f(x) = x F, K ∝ x xᵀ) and is shown separately on
the single input x = 1, labelled one-dimensional (every basis holds all of a one-number quartic).

Monte Carlo check: the quartic in the eigenbasis of the exact K, standardised (L'_{iijj} λ_i λ_j,
the −1/24 × excess (co)kurtosis of the kernel modes), exact against a Monte Carlo ensemble at a
small width with jackknife errors (`edgeworth_action(source=measurement, kernel="exact",
basis=V)`).

**Warning.** With λ < 0 the truncated action is unbounded below: it is a generating function of
correlators to the order kept, not a density (physics.md §9).
"""

from __future__ import annotations

import jax
import numpy as np

from .._edgeworth import edgeworth_action
from .._ensemble import measure
from .._fit_data import DEFAULT_CUTOFF
from .._nets import hms_inputs, make_net
from .._projection import HMS_QUARTIC_BASES, project_hms_bases
from .._validate import check_seed
from ._config import (N_NETS, NETS, SEED, boolean, choice, choice_list, float_list, int_list,
                      integer, real)
from ._plotting import NET_LABELS, figure, save_figure
from ._progress import Bar

__all__ = ["projection_table", "mode_quartic", "TITLE", "SCHEMA", "DEFAULTS", "run", "plot",
           "summary"]

BASIS_LABELS = {"lambda0": "{λ0}", "lambda0+lambda2": "{λ0, λ2}",
                "lambda0+lambda2+lambda_nl": "{λ0, λ2, λ_NL}"}
WARNING = ("the truncated action is unbounded below when λ < 0: a generating function of "
           "correlators to the order kept, not a density")


def _inputs(net: str, d_in: int) -> tuple[np.ndarray, str]:
    if net == "gauss":
        return hms_inputs("erf", d_in), "Erf input set (HMS Gauss inputs make K singular)"
    return hms_inputs(net, d_in), "HMS inputs"


def _deep_action(net: str, d_in: int, width: int, depth: int, sigma_b: float, xs):
    """The O(1/n) Edgeworth action of a deep net (physics.md §9, §11): K the deep GP kernel,
    κ4 the O(1/n) layer recursion (`rgflow.perturbative_connected`)."""
    from .._deep import DeepNet, perturbative_connected  # noqa: PLC0415
    from .._edgeworth import EdgeworthAction, edgeworth_tensors  # noqa: PLC0415

    if net not in ("erf", "relu"):
        raise ValueError(f"`depth` > 1 needs net 'erf' or 'relu' (a deep Gauss-net is not "
                         f"defined), got net {net!r} with depth {depth}.")
    nw = DeepNet(activation=net, width=width, depth=depth, d_in=d_in, sigma_b=sigma_b)
    k2 = np.asarray(nw.kernel(xs, xs))
    k4 = np.asarray(perturbative_connected(nw, xs, 4))
    q, l4, l6 = edgeworth_tensors(k2, k4, order=1)
    return nw, EdgeworthAction(quadratic=q, quartic=l4, sextic=l6, kernel=k2, order=1)


def projection_table(net: str, d_in: int, *, width: int, cutoff: float, sigma_b: float = 1.0,
                     xs=None, note: str | None = None, depth: int = 1) -> dict:
    """The projection of the exact O(1/N) Edgeworth quartic onto the HMS bases, both metrics
    (`depth` > 1: a deep Erf/ReLU net, κ4 at O(1/n) from the layer recursion)."""
    if xs is None:
        xs, note = _inputs(net, d_in)
    xs = np.asarray(xs, dtype=np.float64)
    if depth == 1:
        nw = make_net(net, width=width, d_in=d_in, sigma_b=sigma_b)
        act = edgeworth_action(nw, xs, order=1)
    else:
        nw, act = _deep_action(net, d_in, width, depth, sigma_b, xs)
    lam = np.linalg.eigvalsh(np.asarray(act.kernel))
    rows = []
    proj = {m: project_hms_bases(act, nw, xs, cutoff=cutoff, metric=m)
            for m in ("whitened", "correlator")}
    for key in HMS_QUARTIC_BASES:
        w, c = proj["whitened"][key], proj["correlator"][key]
        rows.append({"basis": key, "names": list(w.names),
                     "fraction_whitened": w.fraction, "fraction_correlator": c.fraction,
                     "couplings_whitened": [float(g) for g in np.asarray(w.couplings)],
                     "couplings_correlator": [float(g) for g in np.asarray(c.couplings)]})
    return {"net": net, "d_in": d_in, "sigma_b": float(sigma_b), "width": width, "depth": depth,
            "inputs": xs.tolist(), "inputs_note": note, "cutoff": float(cutoff),
            "kernel_eigenvalues": lam.tolist(), "kernel_condition": float(lam[-1] / lam[0]),
            "table": rows}


def cutoff_scan(net: str, d_in: int, *, width: int, cutoffs, known: dict | None = None) -> dict:
    """The fraction of the quartic held by the largest basis {λ0, λ2, λ_NL}, both metrics, at
    several cutoffs Λ (the fractions are not properties of the network alone)."""
    tabs = [known if known is not None and float(c) == known["cutoff"] else
            projection_table(net, d_in, width=width, cutoff=float(c)) for c in cutoffs]
    return {"net": net, "cutoffs": [float(c) for c in cutoffs],
            "fraction_whitened": [t["table"][-1]["fraction_whitened"] for t in tabs],
            "fraction_correlator": [t["table"][-1]["fraction_correlator"] for t in tabs]}


def _pairs(p: int):
    return [(i, j) for i in range(p) for j in range(i, p)]


def mode_quartic(net: str, d_in: int, *, width: int, n_nets: int, seed: int,
                 sigma_b: float = 1.0) -> dict:
    """Standardised quartic of the kernel modes, L'_{iijj} λ_i λ_j (modes ordered by decreasing
    eigenvalue), exact and Monte Carlo (jackknife errors, rotation inside the jackknife)."""
    nw = make_net(net, width=width, d_in=d_in, sigma_b=sigma_b)
    xs, note = _inputs(net, d_in)
    exact = edgeworth_action(nw, xs, order=1)
    lam, vec, rot = exact.in_eigenbasis()
    lam, vec = np.asarray(lam)[::-1], np.asarray(vec)[:, ::-1]
    m = measure(nw, xs, n_nets, key=jax.random.key(check_seed(seed)), orders=(2, 4))
    mc = edgeworth_action(nw, xs, order=1, source=m, kernel="exact", basis=vec)
    ex = edgeworth_action(nw, xs, order=1, basis=vec)
    pairs = _pairs(len(lam))
    std = lambda t: [float(np.asarray(t)[i, i, j, j] * lam[i] * lam[j]) for i, j in pairs]  # noqa: E731
    z = [(a - b) / e if e > 0 else 0.0
         for a, b, e in zip(std(mc.quartic), std(ex.quartic), std(mc.quartic_stderr))]
    return {"net": net, "d_in": d_in, "width": width, "n_nets": n_nets, "seed": seed,
            "inputs_note": note, "eigenvalues": lam.tolist(), "pairs": pairs,
            "exact": std(ex.quartic), "mc": std(mc.quartic), "mc_stderr": std(mc.quartic_stderr),
            "z": z, "max_abs_z": float(np.max(np.abs(z)))}


# ----------------------------------------------------------------------- study interface ---

TITLE = "The network's own action (Edgeworth) and the fraction each HMS basis holds"
SCHEMA = {"nets": choice_list(*NETS), "d_ins": int_list(1), "width": integer(1),
          "cutoff": real(positive=True), "mc_net": choice(*NETS), "mc_width": integer(1),
          "n_nets": N_NETS, "seed": SEED, "relu_one_dimensional": boolean(),
          "depth": integer(1, 64), "cutoff_scan": float_list(positive=True)}
HELP = {"cutoff": "cutoff Λ of the vertex integrals of the operator bases",
        "mc_net": "network of the Monte Carlo check of the mode quartic",
        "mc_width": "width of the Monte Carlo check",
        "cutoff_scan": "cutoffs Λ at which the Erf fractions are recomputed (caption)",
        "relu_one_dimensional": "also show ReLU with σ_b = 0 at x = 1 (the rank-one HMS case)"}
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_ins": [1], "width": 10, "cutoff": DEFAULT_CUTOFF,
              "mc_net": "erf", "mc_width": 5, "n_nets": 20_000, "seed": 0,
              "relu_one_dimensional": True, "depth": 1,
              "cutoff_scan": [3.0, 10.0, 100.0]},
    "full": {"nets": list(NETS), "d_ins": [1, 2], "width": 10, "cutoff": DEFAULT_CUTOFF,
             "mc_net": "erf", "mc_width": 5, "n_nets": 1_000_000, "seed": 0,
             "relu_one_dimensional": True, "depth": 1, "cutoff_scan": [3.0, 10.0, 100.0]},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for d in config["d_ins"]:
        if d not in (1, 2, 3):
            raise ValueError(f"configuration key `d_ins`: entries must be 1, 2 or 3, got {d}.")
        depth = config.get("depth", 1)
        if depth > 1 and "gauss" in config["nets"]:
            raise ValueError("configuration key `edgeworth.depth`: depth > 1 needs nets erf "
                             "and/or relu (a deep Gauss-net is not defined)")
        res = {"d_in": d, "depth": depth, "warning": WARNING, "nets": {}}
        one_dim = config["relu_one_dimensional"] and d == 1 and depth == 1
        bar = Bar(len(config["nets"]) + one_dim + 1, f"Edgeworth d_in={d} (net, then MC)",
                  progress, unit="part")
        for name in config["nets"]:
            res["nets"][name] = projection_table(name, d, width=config["width"],
                                                 cutoff=config["cutoff"], depth=depth)
            bar.update()
        if one_dim:
            res["nets"]["relu_sigma_b0"] = projection_table(
                "relu", 1, width=config["width"], cutoff=config["cutoff"], sigma_b=0.0,
                xs=[[1.0]], note="one-dimensional: σ_b = 0 makes f(x) = x F, so one input x = 1")
            bar.update()
        if "erf" in config["nets"] and depth == 1 and config.get("cutoff_scan"):
            res["cutoff_scan"] = cutoff_scan("erf", d, width=config["width"],
                                             cutoffs=config["cutoff_scan"],
                                             known=res["nets"]["erf"])
        res["mode_quartic"] = mode_quartic(config["mc_net"], d, width=config["mc_width"],
                                           n_nets=config["n_nets"], seed=config["seed"])
        bar.update()
        bar.close()
        res["caption"] = caption(res)
        out[f"edgeworth_d{d}" + ("" if depth == 1 else f"_L{depth}")] = res
    return out


def caption(res: dict) -> str:
    """The JSON caption: what the figure tests and the parameters of every ensemble in it."""
    nets = "; ".join(f"{k}: σ_b = {v['sigma_b']:g}, σ_W = 1, N = {v['width']}, Λ = {v['cutoff']:g}"
                     for k, v in res["nets"].items())
    mq = res["mode_quartic"]
    cond = "; ".join(f"{k}: cond K = {v['kernel_condition']:.1g}" for k, v in res["nets"].items()
                     if k != "relu_sigma_b0")
    scan = res.get("cutoff_scan")
    scan_txt = ("" if not scan else
                f" The fractions also depend on Λ: {scan['net']}, basis {{λ0, λ2, λ_NL}}, G4_c "
                "metric: " + ", ".join(f"{100 * f:.3g} % at Λ = {c:g}"
                                       for c, f in zip(scan["cutoffs"], scan["fraction_correlator"]))
                + "; whitened: " + ", ".join(f"{100 * f:.2g} %" for f in scan["fraction_whitened"])
                + ".")
    return ("Tests how much of the network's own O(1/N) Edgeworth quartic (physics.md §9) each HMS "
            "operator basis {λ0}, {λ0, λ2}, {λ0, λ2, λ_NL} captures, in the whitened and the G4_c "
            "metric (the numbers depend on the metric and on Λ), and the mode quartic from Monte "
            f"Carlo against exact. d_in = {res['d_in']}; {nets}; Monte Carlo: {mq['net']}, N = "
            f"{mq['width']}, {mq['n_nets']:,} networks (N = width throughout). "
            "Kernel eigenvalues are ε_i (modes ordered 0 = largest); λ_ijkl is the Edgeworth "
            "quartic tensor; λ0, λ2, λ_NL are the couplings of the HMS bases. The whitened "
            "metric (the quartic of the standardised modes K^(−1/2) f) is dominated by the "
            f"worst-conditioned modes ({cond}), whose standardised quartic is O(1) (left panel, "
            "entry 55): there the O(1/N) expansion is not small. The small whitened fractions say "
            "that the local bases miss the quartic of those modes, not that they miss the "
            "correlators (the G4_c metric weights the large modes)." + scan_txt
            + " Neither metric's number is a property of the network alone; no claim beyond "
            "these numbers is made.")


def _percent(v: float) -> str:
    """A fraction in percent to two significant digits (the numbers depend on the metric and on
    Λ far more than that)."""
    return f"{100 * v:.2g}%" if v < 0.995 else "100%"


def _label(key: str, r: dict) -> str:
    if key == "relu_sigma_b0":
        return "ReLU σ_b=0\n(1-dim)"
    name = NET_LABELS.get(r["net"], r["net"]).replace("-net", "")
    return f"{name}\nσ_b={r['sigma_b']:g}"


def plot(result: dict, stem) -> list:
    fig, axes = figure(1, 3, width=3.5, height=3.0)
    # (1) mode quartic, exact vs Monte Carlo
    ax = axes[0][0]
    mq = result["mode_quartic"]
    x = np.arange(len(mq["pairs"]))
    ax.plot(x, mq["exact"], "o", mfc="none", ms=6, label="exact", zorder=3)
    ax.errorbar(x, mq["mc"], yerr=mq["mc_stderr"], fmt=".", capsize=2,
                label=f"Monte Carlo, {mq['n_nets']:,} networks (±1σ)",
                zorder=2)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(x, [f"{i}{j}" for i, j in mq["pairs"]], fontsize=8, rotation=90)
    ax.set_xlabel(r"kernel modes $(i, j)$, $i \leq j$ (0: largest $\varepsilon$)", fontsize=8)
    ax.set_ylabel(r"$\lambda'_{iijj}\,\varepsilon_i\varepsilon_j$ (standardised quartic)")
    ax.set_title(f"{NET_LABELS.get(mq['net'], mq['net'])}, σ_b=1, σ_W=1, N={mq['width']}, "
                 f"d_in={mq['d_in']}\nmax|z| = {mq['max_abs_z']:.1f}", fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    # (2, 3) fraction captured, both metrics, linear axis
    keys = list(result["nets"])
    for ax, metric, title in ((axes[0][1], "fraction_whitened", "whitened (standardised modes)"),
                              (axes[0][2], "fraction_correlator", "plain $G_4^c$ metric")):
        xb = np.arange(len(keys))
        for b, basis in enumerate(HMS_QUARTIC_BASES):
            vals = [result["nets"][k]["table"][b][metric] for k in keys]
            xs_b = xb + (b - 1) * 0.27
            ax.bar(xs_b, vals, 0.27, label=BASIS_LABELS[basis])
            for xv, v in zip(xs_b, vals):  # small fractions stay readable on a linear axis
                ax.text(xv, v + 0.01, _percent(v), ha="center", va="bottom", fontsize=8,
                        rotation=90)
        ax.set_xticks(xb, [_label(k, result["nets"][k]) for k in keys], fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_ylabel("fraction of the quartic captured")
        ax.set_title(f"{title}, Λ = {result['nets'][keys[0]]['cutoff']:g}", fontsize=9)
    handles, labels = axes[0][1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False,
               title="HMS operator basis (bars)", title_fontsize=8)
    n = next(iter(result["nets"].values()))["width"]
    fig.suptitle(f"O(1/N) Edgeworth quartic λ_ijkl, d_in = {result['d_in']}, N = {n} (fractions "
                 "do not depend on N); the fractions depend on the metric and on Λ", fontsize=9)
    return save_figure(fig, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for res in results.values():
        for key, r in res["nets"].items():
            cells = "; ".join(f"{BASIS_LABELS[t['basis']]} {_percent(t['fraction_whitened'])} "
                              f"(G4c metric {_percent(t['fraction_correlator'])})"
                              for t in r["table"])
            name = "relu σ_b=0 (one-dimensional, x=1)" if key == "relu_sigma_b0" else key
            rows.append((f"fraction of the exact O(1/N) Edgeworth quartic captured, {name} "
                         f"d_in={r['d_in']}, Λ={r['cutoff']:g} (whitened metric, cond K = "
                         f"{r['kernel_condition']:.1g})", cells,
                         "100 % only if the basis holds the network's action (physics.md §9)",
                         "—", "none: a projection, metric- and Λ-dependent (caption)"))
        mq = res["mode_quartic"]
        ok = mq["max_abs_z"] <= 4.0
        rows.append((f"Edgeworth mode quartic, Monte Carlo ({mq['n_nets']:,} networks) vs exact, "
                     f"{mq['net']} N={mq['width']} d_in={mq['d_in']}",
                     f"max |z| = {mq['max_abs_z']:.1f} over {len(mq['pairs'])} entries", "|z| ≤ 4",
                     "ok" if ok else f"FAILED: max |z| = {mq['max_abs_z']:.1f} > 4",
                     "MC vs exact per entry (jackknife errors): max |z| ≤ 4"))
    return rows
