"""Exponents of the dimensionful couplings of a richer action in the box cutoff, with the checks
that decide whether they may be reported, and the 1/N hierarchy between the operators
(physics.md §7, "What this flow is, and is not").

The action S = S_GP + ∫ (λ0 + λ2 |y|²) f⁴ + κ ∫ f⁶ + λ_NL ∫∫ f(y)² f(z)² is matched to the
exact (or Monte Carlo) connected 4- and 6-pt functions at every cutoff: the 4-pt entries
determine (λ0, λ2, λ_NL), the 6-pt entries κ given the quartics, including the λ² exchange
(hierarchical matching, `rgflow._beta.matching_problem`). The couplings are refitted at each of
the 21 HMS cutoffs and flowed with diffrax.

**What is reported.** Λ is the half-width of the box over which the vertices are integrated;
Λ → ∞ removes this volume cutoff (the direction of every exponent, `direction` in the JSON).
For each coupling, the exponent ζ of the *dimensionful* coupling, g ∝ Λ^ζ, over the window
Λ >= 10⁴, against power counting ζ = −[g]. In the dimensionless couplings ĝ = g Λ^{[g]} every
operator is exactly marginal at tree level (the linearised flow of ĝ vanishes), so no
relevant/irrelevant classification is given: Δζ = ζ − ζ_λ0 < 0 says exactly that a coupling
falls faster in Λ than λ0, which is all that HMS's "less relevant at large Λ" means. ζ is
withheld, and the failure reported with its number, when the fit leaves more than 10 % of its
target unexplained, when the flow departs from the refits by more than 1e-3, or when log|g| is not
linear in log Λ in the window (`rgflow._relevance.dimensionful_exponents`).

**The 1/N hierarchy.** At fixed Λ the operators are ordered by the width: the couplings are
refitted at N, 10N, 100N (the tables do not depend on N) and their exponents in N compared with
N^{1−k/2} (quartics −1, κ −2), together with the connected correlators themselves (fit-free).

Defaults: d_in = 1 for Erf and Gauss, d_in = 2 for ReLU (at d_in = 1 with σ_b = 0 every 4-pt
design column is ∝ Π x_i, so λ0, λ2, λ_NL are not separately determined: a clear error).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._beta import _refit_tables, beta_from_tables, matching_problem, refit
from .._flow import build_tables, flow
from .._relevance import (
    DIRECTION,
    coupling_dimensions,
    coupling_orders,
    dimensionful_exponents,
    field_dimension,
    fit_residuals,
    flow_gap,
    width_hierarchy,
)
from .._validate import check_seed
from ._config import N_NETS, NETS, SEED, choice, choice_list, int_list
from ._plotting import NET_LABELS, figure, save_figure
from ._progress import Bar
from .rg_lambda import DEFAULT_WIDTHS, HMS_CUTOFFS, WINDOW_MIN

DEFAULT_D_IN = {"erf": 1, "relu": 2, "gauss": 1}
LABELS = (r"$\lambda_0$", r"$\lambda_2$", r"$\kappa$", r"$\lambda_{NL}$")
TEXT_LABELS = ("λ0", "λ2", "κ", "λ_NL")
KEYS = ("lambda0", "lambda2", "kappa", "lambda_nl")


def _max_growth_eig(prob, cut, g):
    """Largest |eigenvalue| of ∂β/∂g (scaled by |g|) of the exact-refit flow at one cutoff."""
    lin, quad, dlin, dquad = prob.tables_and_derivatives(cut)
    q = None if quad is None else quad[0]
    dq = None if dquad is None else dquad[0]

    def b(gg):
        return beta_from_tables(gg, lin[0], q, dlin[0], dq, jnp.asarray(prob.target),
                                jnp.asarray(prob.weights), determines=jnp.asarray(prob.determines))

    jac = np.asarray(jax.jacfwd(b)(jnp.asarray(g)))
    d = np.where(np.abs(g) > 0, np.abs(g), 1.0)
    return float(np.max(np.abs(np.linalg.eigvals(jac * d[None, :] / d[:, None]))))


def _targets(net, xs, source, n_nets, seed):
    """(targets {4, 6}, stderr or None, weights) of one network."""
    from .._ensemble import measure  # noqa: PLC0415
    from .._exact import exact_connected  # noqa: PLC0415

    if source == "exact":
        t = {n: np.asarray(exact_connected(net, xs, n, full=False)) for n in (4, 6)}
        return t, None, {n: np.full(v.size, 1.0 / np.mean(v**2)) for n, v in t.items()}
    m = measure(net, xs, n_nets, key=jax.random.key(check_seed(seed)), orders=(2, 4, 6))
    t = {n: np.asarray(m.connected(n, full=False)) for n in (4, 6)}
    err = {n: np.asarray(m.connected_stderr(n, full=False)) for n in (4, 6)}
    return t, err, {n: 1.0 / err[n] ** 2 / np.mean(1.0 / err[n] ** 2) for n in (4, 6)}


def _coupling_stderr(prob, cut, stderr):
    """Standard errors of the refitted couplings `(C, m)`, propagated linearly from the
    targets' standard errors (independent entries)."""
    lin, quad = prob.tables(cut)
    w, det = jnp.asarray(prob.weights), jnp.asarray(prob.determines)
    jac = np.asarray(jax.jacfwd(lambda t: _refit_tables(lin, quad, t, w, 30, det))(
        jnp.asarray(prob.target)))  # (C, m, n)
    return np.sqrt(np.sum((jac * stderr[None, None, :]) ** 2, axis=-1))


def relevance_study(
    net_name: str,
    d_in: int | None = None,
    *,
    width: int | None = None,
    source: str = "exact",
    n_nets: int = 200_000,
    seed: int = 0,
    cutoffs=HMS_CUTOFFS,
    window_min: float = WINDOW_MIN,
    width_factors=(1, 10, 100),
    stiffness_limit: float = 50.0,
    progress=False,
) -> dict:
    """Refits, diffrax flow, checked dimensionful exponents and the 1/N hierarchy of
    (λ0, λ2, κ, λ_NL) (module docstring).

    **Arguments:**

    - `net_name`: "erf", "relu" or "gauss"; `d_in` (default per net, module docstring).
    - `width`: N (default as `rgflow.studies.rg_lambda.DEFAULT_WIDTHS`).
    - `source`: "exact" or "mc" (`n_nets`, `seed`; one ensemble per width).
    - `cutoffs`: the cutoffs; `window_min`: the window Λ >= `window_min` of the exponents.
    - `width_factors`: the widths of the hierarchy are N × these (at least two, distinct).
    - `progress`: `rgflow.studies._progress` (4 steps: targets, tables and refits, flow,
      1/N hierarchy).
    - `stiffness_limit`: if the exact-refit flow has |eigenvalues| of ∂β/∂g above this (nearly
      collinear design columns, see `rgflow._flow`), the homogeneous flow is used instead; its
      departure from the refits is then measured and reported like any other.

    **Returns:** a JSON-ready dict: `direction`, `cutoffs`, `couplings` (refits), their
    `couplings_stderr` (Monte Carlo), `flow_couplings`, `flow_kind`, `flow_gap` per coupling,
    `residual` per coupling and cutoff, `exponents` (`dimensionful_exponents`), `hierarchy`
    (`width_hierarchy` plus the fit-free `correlator_width_exponents`), or `error` when the
    couplings are not determined.
    """
    from .._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic  # noqa: PLC0415
    from .._nets import hms_inputs, make_net  # noqa: PLC0415

    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    factors = [int(f) for f in width_factors]
    if len(set(factors)) < 2 or min(factors) < 1:
        raise ValueError(f"`width_factors` must hold at least two distinct integers >= 1, "
                         f"got {width_factors!r}.")
    d_in = DEFAULT_D_IN.get(net_name, 1) if d_in is None else int(d_in)
    width = DEFAULT_WIDTHS.get(net_name, 10) if width is None else int(width)
    net = make_net(net_name, width=width, d_in=d_in)
    xs = hms_inputs(net_name, d_in)
    cut = np.asarray(cutoffs, np.float64)
    act = Action(net, [PolynomialQuartic(), LocalCoupling(6), BilocalQuartic()])
    bar = Bar(4, f"{net_name} (targets, tables, flow, 1/N)", progress)
    t, err, w = _targets(net, xs, source, n_nets, seed)
    bar.update()
    prob = matching_problem(act, xs, t, w, stderr=err)
    fd = field_dimension(net, xs)
    dims = coupling_dimensions(act, fd)
    out = {"net": net_name, "d_in": d_in, "width": width, "source": source,
           "n_nets": n_nets if source == "mc" else None, "direction": DIRECTION,
           "cutoffs": cut.tolist(), "names": list(prob.names), "keys": list(KEYS),
           "field_dimension": fd["field_dimension"],
           "dimensions": [None if v is None else float(v) for v in dims]}
    # one 16-node Chebyshev segment over the whole range: the couplings' power-law growth is
    # factored out exactly (ReLU) or the tables are constant (Gauss-net, converged integrals)
    seg = float(np.log(cut[-1] / cut[0])) + 1e-9
    win_mask = cut >= window_min
    win = cut[win_mask]
    try:
        # one quadrature for everything (interpolation nodes of the flow, Λ0, the cutoffs, the
        # window, the last cutoff), cached on the problem where `flow` finds it
        build_tables(prob, float(np.log(cut[0])), float(np.log(cut[-1])), segment_width=seg,
                     extra_cutoffs=[cut[:1], cut, win, cut[-1:]])
        g_ref = np.asarray(refit(prob, cut))
    except ValueError as e:  # rank-deficient: report, do not flow NaNs
        out.update({"error": str(e), "exponents": None, "hierarchy": None})
        return out
    bar.update()
    stiff = _max_growth_eig(prob, cut[-1:], g_ref[-1])
    exact_flow = stiff < stiffness_limit
    rtol = 1e-10 if exact_flow else 1e-8
    sol = flow(prob, cut, g0=g_ref[0], residual_term=exact_flow, rtol=rtol, atol=rtol * 1e-2,
               throw=False, segment_width=seg)
    g_flow = np.asarray(sol.couplings)
    gaps = flow_gap(g_flow, g_ref)
    exps = dimensionful_exponents(prob, win, couplings=g_ref[win_mask], dimensions=dims,
                                  flow_gaps=gaps, labels=TEXT_LABELS, reference=0)
    out.update({
        "couplings": g_ref.tolist(),
        "couplings_stderr": None if err is None else _coupling_stderr(
            prob, cut, prob.target_stderr).tolist(),
        "flow_couplings": np.where(np.isfinite(g_flow), g_flow, np.nan).tolist(),
        "flow_kind": "exact-refit" if exact_flow else "homogeneous",
        "flow_stiffness": stiff,
        "flow_result": str(sol.result),
        "flow_gap": [float(v) for v in gaps],
        "residual": fit_residuals(prob, cut, g_ref).tolist(),
        "exponents": exps,
    })
    bar.update()
    # the 1/N hierarchy: the same conditions at N × factors
    widths = [width * f for f in factors]
    tg, wt, tnorm = [], [], {4: [], 6: []}
    for n_w in widths:
        tw, _, ww = (t, err, w) if n_w == width else _targets(
            make_net(net_name, width=n_w, d_in=d_in), xs, source, n_nets, seed)
        tg.append(np.concatenate([tw[4], tw[6]]))
        wt.append(np.concatenate([ww[4], ww[6]]))
        for k in (4, 6):
            tnorm[k].append(float(np.linalg.norm(tw[k])))
    hier = width_hierarchy(prob, np.stack(tg), widths, cut, orders=coupling_orders(act),
                           weights=np.stack(wt), labels=TEXT_LABELS, reference=0)
    logn = np.log(widths)
    hier["correlator_norms"] = {str(k): v for k, v in tnorm.items()}
    hier["correlator_width_exponents"] = {
        str(k): float(np.polyfit(logn, np.log(tnorm[k]), 1)[0]) for k in (4, 6)}
    hier["predicted_correlator_width_exponents"] = {"4": -1.0, "6": -2.0}
    out["hierarchy"] = hier
    bar.update()
    bar.close()
    return out


def _fmt_theta(e) -> str:
    if e["status"] != "ok":
        return "no exponent: " + "; ".join(e["reasons"])
    th = 0.0 if abs(e["theta"]) < 5e-4 else e["theta"]
    se = e.get("theta_stderr")
    if se:
        d = max(1, int(-np.floor(np.log10(se))) + 1)
        return f"ζ = {th:+.{d}f} ± {se:.{d}f}"
    return f"ζ = {th:+.2f}"


def _params(res) -> str:
    from .._nets import make_net

    net = make_net(res["net"], width=int(res["width"]), d_in=int(res["d_in"]))
    return (f"{NET_LABELS.get(res['net'], res['net'])}, $\\sigma_b = {float(net.sigma_b):g}$, "
            f"$\\sigma_W = {float(net.sigma_w):g}$, $d_{{in}}={res['d_in']}$, $N={res['width']}$ "
            f"({res['source']})")


def caption(res: dict) -> str:
    """The JSON caption of one relevance figure: what it tests, its parameters, the checks."""
    from .._nets import make_net

    net = make_net(res["net"], width=int(res["width"]), d_in=int(res["d_in"]))
    head = (f"{CAPTION} Parameters: {res['net']}, σ_b = {float(net.sigma_b):g}, σ_W = "
            f"{float(net.sigma_w):g}, d_in = {res['d_in']}, N = width = {res['width']}"
            + (" (ReLU σ_b = 0: the HMS configuration, not the σ_b = 1 showcase)."
               if res["net"] == "relu" and float(net.sigma_b) == 0 else "."))
    if res.get("error"):
        return head + f" Couplings not determined: {res['error']}"
    ex = res["exponents"]
    ents = ex["couplings"]
    ok_any = any(e["status"] == "ok" for e in ents)
    const = _constant_couplings(res)
    if const:
        left = (" No Λ panel: all four couplings are constant in Λ to rounding (Gauss-net: the "
                "vertex integrals run over all space, so the box cutoff does not enter), ζ = 0; "
                "the figure shows the 1/N hierarchy only.")
    elif ok_any:
        left = (" Left: the dimensionful couplings |g(Λ)/g(Λ0)| that passed their checks "
                "(refits: points, diffrax flow: lines, power counting: dotted), offset by "
                "10^(−3i) so that equal exponents do not overlap.")
    else:
        left = (" No Λ panel: no coupling passed its checks (listed below), so none is drawn; "
                "the figure shows the 1/N hierarchy only.")
    hier = (" 1/N hierarchy panel: at Λ = 10⁵ the couplings that passed their fit check against "
            "N/N₁ (points shifted by ×1.08 where they would coincide) and the fit-free "
            "correlator norms ‖G4_c‖, ‖G6_c‖ (exact).")
    return (head + f" ζ: exponent of the dimensionful coupling, g ∝ Λ^ζ, in the window Λ ≥ "
            f"{ex['window'][0]:.0f}; Λ → ∞ removes the box (volume) cutoff; power counting "
            "ζ = −[g]. ζ is not an RG eigenvalue y and gives no relevance class: ĝ = gΛ^[g] is "
            "exactly marginal at tree level." + left +
            f" A coupling (and its flow) is drawn only where it passed its checks: fit residual ≤ "
            f"{ex['max_residual']:g}, flow within {ex['max_flow_gap']:g} of the refits "
            f"({res['flow_kind']} flow), slope drift ≤ {ex['max_drift']:g}; failed: "
            + ("; ".join(f"{e['name']} (" + "; ".join(e["reasons"]) + ")"
                         for e in ex["couplings"] if e["status"] != "ok") or "none")
            + "." + hier)


def _constant_couplings(res: dict) -> bool:
    """All refitted couplings constant in Λ to rounding (a flat, degenerate Λ panel)."""
    g = np.asarray(res["couplings"])
    return bool(np.all(np.ptp(g, axis=0) <= 1e-9 * np.max(np.abs(g), axis=0)))


def plot_relevance(res: dict, path_stem, formats=("png",)) -> list:
    """Left: dimensionful couplings |g(Λ)/g(Λ0)| that passed their checks (refits: points, flow:
    lines, power counting: dotted). Right: the 1/N hierarchy, |g(N)/g(N_1)| at the largest
    cutoff against N/N_1 with N^{1−k/2}, and the connected correlators (fit-free). Failed
    couplings are not drawn (named in the titles; reasons in the JSON caption)."""
    title = _params(res)
    if res.get("error"):
        fig, axes = figure(1, 1, width=4.0, height=2.0)
        ax = axes[0][0]
        ax.set_axis_off()
        ax.set_title(title + "\ncouplings not determined (reason in caption)", fontsize=9)
        return save_figure(fig, path_stem, formats=formats)
    cut = np.asarray(res["cutoffs"])
    g = np.asarray(res["couplings"])
    fg = np.asarray(res["flow_couplings"])
    se = res.get("couplings_stderr")
    ents = res["exponents"]["couplings"]
    const = _constant_couplings(res)
    # a Λ panel only where a coupling passed its checks and is not constant (a flat panel)
    ok_any = any(e["status"] == "ok" for e in ents) and not const
    fig, axes = figure(1, 2 if ok_any else 1, width=3.7, height=3.2)
    if ok_any:
        ax, axh = axes[0]
    else:
        axh = axes[0][0]
    failed_th = [TEXT_LABELS[i] for i, e in enumerate(ents) if e["status"] != "ok"]
    for i, lab in enumerate(LABELS if ok_any else ()):
        c = f"C{i}"
        e = ents[i]
        if e["status"] != "ok":
            continue
        yerr = None if se is None else np.abs(np.asarray(se)[:, i] / g[0, i])
        off = 10.0 ** (-3 * i)  # curves offset by 10^{-3i}: equal exponents would overlap
        ax.errorbar(cut, off * np.abs(g[:, i] / g[0, i]),
                    yerr=None if yerr is None else off * yerr, fmt="o", ms=3.5,
                    color=c, label=f"{lab} (×$10^{{{-3 * i}}}$): {_fmt_theta(e)}")
        ax.plot(cut, off * np.abs(fg[:, i] / g[0, i]), "-", color=c, lw=1.0)
        if e["dimension"] is not None and not const:
            ax.plot(cut, off * (cut / cut[0]) ** e["predicted_theta"], ":", color="0.2", lw=0.8,
                    label=r"power counting $\Lambda^{-[g]}$ (dotted)" if i == 0 else None)
    if ok_any:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"box cutoff $\Lambda$  ($\Lambda\to\infty$ removes it)")
        ax.set_ylabel(r"$|g(\Lambda)/g(\Lambda_0)|$ (dimensionful)")
        ax.set_title(title + (f"\nnot drawn (failed checks): {', '.join(failed_th)}"
                              if failed_th else ""), fontsize=9)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=1,
                  frameon=False)
    # the 1/N hierarchy
    h = res["hierarchy"]
    nw = np.asarray(h["widths"], float)
    x = nw / nw[0]
    hg = np.asarray(h["couplings"])[:, -1, :]  # (W, m) at the largest cutoff (the exponents
    # in N are the same at every cutoff: `width_exponent_spread`)
    for k, mk in (("4", "s"), ("6", "D")):
        v = np.asarray(h["correlator_norms"][k])
        axh.plot(x, v / v[0], mk, ms=8, mfc="none", color="0.4",
                 label=rf"$\|G_{{{k},c}}\|$ (exact): slope {h['correlator_width_exponents'][k]:+.2f}")
    for i, e in enumerate(h["entries"]):
        if e["status"] != "ok":
            continue
        # small horizontal shifts (×1.08^i) keep equal points apart
        axh.plot(x * 1.08**i, np.abs(hg[:, i] / hg[0, i]), "o", ms=3.5, color=f"C{i}",
                 label=f"{LABELS[i]}: slope {e['width_exponent']:+.2f} "
                       f"(expected {e['predicted_width_exponent']:+.0f})")
    xx = np.geomspace(1, x[-1], 20)
    for p, ls in ((-1, "--"), (-2, ":")):
        axh.plot(xx, xx**p, ls, color="0.3", lw=0.8, label=rf"$(N/N_1)^{{{p}}}$")
    axh.set_xscale("log")
    axh.set_yscale("log")
    axh.set_xlabel(rf"$N/N_1$  ($N_1 = {int(nw[0])}$)")
    axh.set_ylabel(r"$|g(N)/g(N_1)|$ at $\Lambda = 10^5$")
    failed = [TEXT_LABELS[i] for i, e in enumerate(h["entries"]) if e["status"] != "ok"]
    htitle = "1/N hierarchy at fixed Λ" + (f"\nnot drawn (failed fit): {', '.join(failed)}"
                                           if failed else "")
    if not ok_any:
        htitle = (title + "\n" + ("couplings constant in Λ (caption); " if const else
                                  "no coupling passed its checks in Λ (caption); ")
                  + htitle.replace("\n", ", "))
    axh.set_title(htitle, fontsize=9 if ok_any else 8)
    axh.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=2, frameon=False)
    return save_figure(fig, path_stem, formats=formats)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Exponents of dimensionful couplings λ0, λ2, κ, λ_NL and their 1/N hierarchy (beyond the paper)"
CAPTION = ("Tests the Λ-exponents ζ (g ∝ Λ^ζ) of the dimensionful couplings λ0, λ2, κ, λ_NL fitted "
           "to exact correlators against power counting −[g], and their 1/N hierarchy at fixed Λ "
           "(quartics ∝ N⁻¹, κ ∝ N⁻²).")
SCHEMA = {"nets": choice_list(*NETS), "source": choice("exact", "mc"), "n_nets": N_NETS,
          "seed": SEED, "width_factors": int_list(minimum=1)}
# networks are independent (own seeds, own files): `rgflow reproduce` runs one task per net
SPLIT = "nets"
DEFAULTS = {
    "quick": {"nets": list(NETS), "source": "exact", "n_nets": 200_000, "seed": 0,
              "width_factors": [1, 10, 100]},
    "full": {"nets": list(NETS), "source": "mc", "n_nets": 1_000_000, "seed": 0,
             "width_factors": [1, 10, 100]},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        res = relevance_study(name, source=config["source"], n_nets=config["n_nets"],
                              seed=config["seed"], width_factors=config["width_factors"],
                              progress=progress)
        res["caption"] = caption(res)
        out[f"relevance_{name}_d{res['d_in']}"] = res
    return out


def plot(result: dict, stem) -> list:
    return plot_relevance(result, stem, formats=("png", "pdf"))


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for r in results.values():
        from .rg_lambda import _row_net

        head = f"{_row_net(r)} N={r['width']} d_in={r['d_in']} ({r['source']})"
        if r.get("error"):
            rows.append((f"fit {{λ0, λ2, κ, λ_NL}}, {head}", f"FAILED: {r['error']}", "",
                         f"FAILED: {r['error']}", "the four couplings are determined by the data"))
            continue
        ex = r["exponents"]
        ents = ex["couplings"]
        val = "; ".join(f"{e['name']} " + (_fmt_theta(e)[4:] if e["status"] == "ok"
                                            else "FAILED (" + "; ".join(e["reasons"]) + ")")
                        for e in ents)
        pc = ", ".join(f"{e['name']} {e['predicted_theta']:+.0f}" for e in ents)
        bad = [e["name"] for e in ents if e["status"] != "ok"]
        rows.append((f"ζ of dimensionful couplings in the fit {{λ0, λ2, κ, λ_NL}} (g ∝ Λ^ζ, "
                     f"Λ → ∞ removes the box cutoff, window Λ ≥ 10⁴), {head}", val,
                     f"power counting ζ = −[g]: {pc}",
                     "ok" if not bad else f"FAILED: {', '.join(bad)} (reasons in the value)",
                     f"per coupling: fit residual ≤ {ex['max_residual']:g} of its target, flow "
                     f"within {ex['max_flow_gap']:g} of the refits, slope drift ≤ "
                     f"{ex['max_drift']:g} in the window"))
        h = r["hierarchy"]
        hv = "; ".join(f"{e['name']} {e['width_exponent']:+.3f}" if e["status"] == "ok"
                       else f"{e['name']} FAILED (" + "; ".join(e["reasons"]) + ")"
                       for e in h["entries"])
        for e in h["entries"]:
            if e.get("ratio_width_exponent") is not None and e["k"] != h["entries"][0]["k"]:
                hv += (f"; {e['name']}/{h['reference']} ∝ N^{e['ratio_width_exponent']:+.3f} "
                       f"(expected {e['predicted_ratio_width_exponent']:+.0f})")
        cw = h["correlator_width_exponents"]
        hv += f"; data: G4_c {cw['4']:+.3f}, G6_c {cw['6']:+.3f}"
        hbad = [e["name"] for e in h["entries"] if e["status"] != "ok"]
        rows.append((f"1/N hierarchy: exponent of N (same at every cutoff; residual: max over all "
                     f"cutoffs), N = {', '.join(str(int(n)) for n in h['widths'])}, {head}", hv,
                     "N^(1−k/2): quartics −1, κ −2",
                     "ok" if not hbad else f"FAILED: {', '.join(hbad)} (fit residual in the value)",
                     f"per coupling: fit residual ≤ {ex['max_residual']:g} of its target at every "
                     "cutoff (the exponents in N are exact −1, −2 by construction once the fit "
                     "holds: the check is the fit)"))
    return rows
