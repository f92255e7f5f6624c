"""The running of the quartic coupling λ(Λ) (HMS figure; physics.md §7, §8 item 3).

For each sorted 4-tuple T the coupling is matched to the connected 4-pt function,

    λ_T(Λ) = −ΔG4(T) / (24 I4(Λ; T)),   ΔG4 = G4 − G4_GP = G4_c   (sign convention physics.md §3),

and HMS report the element mean λ(Λ) = mean_T λ_T(Λ). A tuple whose I4(Λ; T) changes sign
inside the cutoff range (possible for Erf-net, whose K_W(x, y) has the sign of x·y at large
|y|) has a pole in λ_T: it cannot be flowed through and would dominate the mean, so it is left
out of the element mean and listed in `excluded_tuples`. We also give the single least-squares λ
(`rgflow._predict._match_quartic`, weights 1/stderr² for Monte Carlo input). log|λ| is fitted
against log Λ over the 21 HMS cutoffs (slope, R²) and over the asymptotic window Λ >= 10⁴, and
compared with power counting: slope = −[λ] = −(d_in − 4[f]) with [f] read off the kernel
(`rgflow._relevance.field_dimension`): −(d_in + 4) for ReLU with σ_b = 0, −d_in for bounded
kernels (reached only asymptotically: K_W approaches its limit like 1/|y|), 0 for Gauss-net
(K_W decays, I4 converges).

The same couplings are flowed with diffrax from Λ = 7 (`rgflow.flow`: every λ_T and the
least-squares λ in one ODE system, each obeying β_T = −λ_T d ln I4_T / d ln Λ), and the flow is
compared with the independent refits at every cutoff (`flow_max_rel_dev`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._beta import MatchingProblem, matching_problem, refit
from .._flow import TableInterpolant, flow
from .._relevance import field_dimension
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import NET_LABELS, figure, save_figure

HMS_CUTOFFS = (7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3,
               7e3, 1e4, 2e4, 4e4, 6e4, 8e4, 1e5)
DEFAULT_WIDTHS = {"erf": 5, "relu": 20, "gauss": 1000}
WINDOW_MIN = 1e4


def lambda_problem(net, xs, delta_g4, *, stderr=None, options=None) -> MatchingProblem:
    """A matching problem whose couplings are every per-tuple λ_T and the least-squares λ.

    Conditions: ΔG4(T) = −24 λ_T I4(T) for every sorted 4-tuple T (exactly determined), and
    ΔG4(T) = −24 λ I4(T) for all T at once (least squares, weights 1/stderr² if `stderr`).

    **Returns:** a `MatchingProblem` with couplings `("lambda[T0]", ..., "lambda_ls")`.
    """
    from .._actions import Action, LocalCoupling  # noqa: PLC0415

    dg4 = np.asarray(delta_g4, np.float64).reshape(-1)
    base = matching_problem(Action(net, [LocalCoupling(4)]), xs, {4: dg4}, options=options)
    n = dg4.size

    def tables_fn(c):
        lin, _ = base.tables_fn(c)  # (C, n, 1)
        per = jax.vmap(jnp.diag)(lin[..., 0])  # (C, n, n)
        zc = jnp.zeros(lin.shape[:2] + (1,))
        top = jnp.concatenate([per, zc], axis=2)
        bot = jnp.concatenate([jnp.zeros_like(per), lin], axis=2)
        return jnp.concatenate([top, bot], axis=1), None

    w_ls = np.ones(n) if stderr is None else 1.0 / np.maximum(np.asarray(stderr, float), 1e-300) ** 2
    w_ls = w_ls / np.mean(w_ls)
    names = [f"lambda{c[len('G4c'):]}" for c in base.condition_names] + ["lambda_ls"]
    cond = [f"{c} (per tuple)" for c in base.condition_names] + list(base.condition_names)
    err = None if stderr is None else np.concatenate([np.asarray(stderr, float)] * 2)
    return MatchingProblem(tables_fn, names, np.concatenate([dg4, dg4]),
                           np.concatenate([np.ones(n), w_ls]), cond, err, jit=base.jit)


def _fit_line(logx, logy):
    a, b = np.polyfit(logx, logy, 1)
    pred = a * logx + b
    ss_res = np.sum((logy - pred) ** 2)
    ss_tot = np.sum((logy - logy.mean()) ** 2)
    # a constant λ (Gauss-net: I4 has converged) has ss_tot at rounding level: R² = 1
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 1e-20 * len(logy) else 1.0
    return float(a), float(b), float(r2)


def rg_lambda(
    net_name: str,
    d_in: int = 1,
    *,
    width: int | None = None,
    source: str = "exact",
    n_nets: int = 200_000,
    seed: int = 0,
    cutoffs=HMS_CUTOFFS,
    window_min: float = WINDOW_MIN,
    n_dense: int = 60,
    rtol: float = 1e-10,
) -> dict:
    """λ(Λ) of one network: refits, log–log fit, power counting and the diffrax flow.

    **Arguments:**

    - `net_name`: "erf", "relu" or "gauss" (HMS inputs of physics.md §5).
    - `d_in`: 1, 2 or 3.
    - `width`: N (default: Erf 5, ReLU 20, Gauss 1000, physics.md §8).
    - `source`: "exact" (exact finite-width ΔG4, `rgflow.exact_connected`) or "mc" (Monte Carlo,
      `rgflow.measure`, jackknife connected 4-pt function and its standard error).
    - `n_nets`, `seed`: Monte Carlo ensemble size and seed.
    - `cutoffs`: the cutoffs (default the 21 of physics.md §8).
    - `window_min`: the asymptotic window is Λ >= `window_min`.
    - `n_dense`: extra log-spaced save points of the flow (for the figure).
    - `rtol`: flow tolerance (PID rtol; atol = rtol/100 on the scaled couplings).

    **Returns:** a JSON-ready dict with `cutoffs`, `lambda` (element mean), `lambda_stderr`
    (MC), `lambda_ls`, `slope`, `intercept`, `r2`, `slope_stderr`, `slope_window`,
    `slope_window_stderr`, `window`, `predicted_slope`, `field_dimension`, `flow_cutoffs`,
    `flow_lambda`, `flow_lambda_ls`, `flow_max_rel_dev`, `flow_stats`, and for MC input the
    exact reference (`lambda_exact`, `slope_exact`) and `slope_z` (MC vs power counting).
    """
    from .._ensemble import measure  # noqa: PLC0415
    from .._exact import exact_connected  # noqa: PLC0415
    from .._nets import hms_inputs, make_net  # noqa: PLC0415

    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    width = DEFAULT_WIDTHS.get(net_name, 10) if width is None else int(width)
    net = make_net(net_name, width=width, d_in=d_in)
    xs = hms_inputs(net_name, d_in)
    cut = np.asarray(cutoffs, np.float64)
    dg4_exact = np.asarray(exact_connected(net, xs, 4, full=False))
    if source == "exact":
        dg4, err = dg4_exact, None
    else:
        m = measure(net, xs, n_nets, key=jax.random.key(seed), orders=(2, 4))
        dg4 = np.asarray(m.connected(4, full=False))
        err = np.asarray(m.connected_stderr(4, full=False))
    full = lambda_problem(net, xs, dg4, stderr=err)
    n_all = dg4.size
    dense = np.unique(np.concatenate([cut, np.geomspace(cut.min(), cut.max(), n_dense)]))
    # one vectorised quadrature: interpolation nodes, Λ0, the cutoffs
    t_lo, t_hi = float(np.log(dense[0])), float(np.log(dense[-1]))
    nodes, _ = TableInterpolant.nodes(t_lo, t_hi)
    full.precompute(np.exp(nodes.ravel()), dense[:1], cut)
    # tuples whose I4_T(Λ) changes sign inside the range have a pole in λ_T: λ_T cannot flow
    # through it and the element mean is dominated by it; they are left out of the mean
    i4 = np.concatenate([np.asarray(full.tables(np.exp(nodes.ravel()))[0]),
                         np.asarray(full.tables(cut)[0])])[:, np.arange(n_all), np.arange(n_all)]
    regular = np.all(i4 > 0, axis=0) | np.all(i4 < 0, axis=0)
    keep = np.flatnonzero(regular)
    if keep.size == 0:
        raise ValueError("every 4-tuple's I4(Λ) changes sign in the cutoff range.")
    n = keep.size
    prob = full.subset(np.concatenate([keep, [n_all]]),
                       np.concatenate([keep, n_all + np.arange(n_all)]))
    sol = flow(prob, dense, rtol=rtol, atol=rtol * 1e-2)
    g_flow = np.asarray(sol.couplings)
    at = np.searchsorted(dense, cut)
    g_ref = np.asarray(refit(prob, cut))
    lam_t, lam_ls = g_ref[:, :n], g_ref[:, n]
    lam = lam_t.mean(axis=1)
    dg4, err = dg4[keep], None if err is None else err[keep]
    dg4_exact = dg4_exact[keep]
    rel = np.abs(g_flow[at] - g_ref) / np.abs(g_ref)
    rel_mean = np.abs(g_flow[at, :n].mean(1) - lam) / np.abs(lam)
    logc = np.log(cut)
    slope, icpt, r2 = _fit_line(logc, np.log(np.abs(lam)))
    win = cut >= window_min
    slope_w, _, r2_w = _fit_line(logc[win], np.log(np.abs(lam[win])))
    slope_ls, _, r2_ls = _fit_line(logc, np.log(np.abs(lam_ls)))
    slope_ls_w, _, _ = _fit_line(logc[win], np.log(np.abs(lam_ls[win])))
    fd = field_dimension(net, xs)
    f = fd["field_dimension"]
    predicted = 0.0 if f is None else -(d_in - 4 * round(2 * f) / 2)
    # tuples whose I4 grows with the power-counting power in the window ("leading"); the others
    # have a vanishing leading coefficient (by a symmetry of the input set, e.g. Erf d_in = 2)
    # or a vanishing ΔG4 and do not test power counting
    i4_cut = np.abs(np.asarray(prob.tables(cut)[0])[:, np.arange(n), np.arange(n)])
    i4_slope = np.polyfit(logc[win], np.log(i4_cut[win]), 1)[0]
    nonzero = np.abs(dg4) > 1e-10 * np.max(np.abs(dg4))
    leading = (np.abs(i4_slope + predicted) < 0.5) & nonzero
    lam_lead = lam_t[:, leading].mean(axis=1) if leading.any() else np.full(len(cut), np.nan)
    slope_lead_w = _fit_line(logc[win], np.log(np.abs(lam_lead[win])))[0] if leading.any() else None
    out = {
        "net": net_name, "d_in": d_in, "width": width, "source": source,
        "n_nets": n_nets if source == "mc" else None,
        "cutoffs": cut.tolist(),
        "lambda": lam.tolist(),
        "lambda_ls": lam_ls.tolist(),
        "slope": slope, "intercept": icpt, "r2": r2,
        "slope_window": slope_w, "r2_window": r2_w, "window": cut[win].tolist(),
        "slope_ls": slope_ls, "r2_ls": r2_ls, "slope_ls_window": slope_ls_w,
        "lambda_leading": lam_lead.tolist(),
        "slope_leading_window": slope_lead_w,
        "n_tuples_leading": int(leading.sum()),
        "predicted_slope": predicted,
        "slope_minus_predicted": slope - predicted,
        "slope_window_minus_predicted": slope_w - predicted,
        "field_dimension": fd,
        "flow_cutoffs": dense.tolist(),
        "flow_lambda": g_flow[:, :n].mean(axis=1).tolist(),
        "flow_lambda_ls": g_flow[:, n].tolist(),
        "flow_max_rel_dev": float(rel.max()),
        "n_tuples": int(n_all), "n_tuples_in_mean": int(n),
        "excluded_tuples": [full.names[i] for i in np.flatnonzero(~regular)],
        "flow_max_rel_dev_mean": float(rel_mean.max()),
        "flow_stats": {k: int(np.asarray(v)) for k, v in sol.stats.items()
                       if np.asarray(v).size == 1},
        "flow_result": str(sol.result),
    }
    if source == "mc":
        # λ_T = ΔG4_T / L_T is linear in ΔG4; errors of the element mean and of the slopes by
        # the delete-one-block jackknife of the Monte Carlo ensemble (tuples are correlated)
        from .._ensemble import connected_from_moments  # noqa: PLC0415

        lin, _ = prob.tables(cut)
        inv = jnp.asarray(1.0 / np.asarray(lin)[:, np.arange(n), np.arange(n)])  # (C, n)
        logc_j = jnp.asarray(logc)
        win_j = jnp.asarray(win)

        def slope_of(logy, mask):
            x = jnp.where(mask, logc_j - jnp.sum(logc_j * mask) / jnp.sum(mask), 0.0)
            return jnp.sum(x * logy, axis=-1) / jnp.sum(x * x)

        def stats(moments):
            k4 = connected_from_moments(moments, xs.shape[0], 4)[..., keep]
            lm = jnp.mean(k4[..., None, :] * inv, axis=-1)  # (..., C)
            ly = jnp.log(jnp.abs(lm))
            s_all = slope_of(ly, jnp.ones_like(win_j))
            s_win = slope_of(ly, win_j)
            return jnp.concatenate([lm, s_all[..., None], s_win[..., None]], axis=-1)

        _, se = m.jackknife(stats)
        se = np.asarray(se)
        lam_err = se[: len(cut)]
        lam_ex = (dg4_exact[None] * np.asarray(inv)).mean(axis=1)
        slope_ex = _fit_line(logc, np.log(np.abs(lam_ex)))[0]
        slope_ex_w = _fit_line(logc[win], np.log(np.abs(lam_ex[win])))[0]
        out.update({
            "lambda_stderr": lam_err.tolist(),
            "slope_stderr": float(se[-2]),
            "slope_window_stderr": float(se[-1]),
            "lambda_exact": lam_ex.tolist(),
            "slope_exact": slope_ex,
            "slope_window_exact": slope_ex_w,
            "lambda_mc_vs_exact_z": ((lam - lam_ex) / lam_err).tolist(),
        })
        out["slope_z"] = (slope - slope_ex) / max(float(se[-2]), 1e-300)
        out["slope_window_z_vs_predicted"] = (slope_w - predicted) / max(float(se[-1]), 1e-300)
    return out


def plot_rg_lambda(res: dict, path_stem, formats=("png",)) -> list:
    """log|λ| against log Λ: refits (points), fitted line, diffrax flow; residuals panel."""
    fig, axes = figure(1, 2, width=3.3, height=2.8)
    ax, axr = axes[0]
    cut = np.asarray(res["cutoffs"])
    lam = np.abs(np.asarray(res["lambda"]))
    yerr = res.get("lambda_stderr")
    ax.errorbar(cut, lam, yerr=yerr, fmt="o", ms=3.5, label=r"refit $\langle\lambda_T\rangle$", zorder=3)
    fc = np.asarray(res["flow_cutoffs"])
    ax.plot(fc, np.abs(res["flow_lambda"]), "-", color="C1", label="diffrax flow", zorder=2)
    line = np.exp(res["intercept"]) * fc ** res["slope"]
    ax.plot(fc, line, "--", color="0.3", lw=1.0,
            label=f"fit: slope {res['slope']:.4f}, $R^2$ = {res['r2']:.6f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"cutoff $\Lambda$")
    ax.set_ylabel(r"$|\lambda(\Lambda)|$")
    ax.set_title(f"{NET_LABELS.get(res['net'], res['net'])}, $d_{{in}}={res['d_in']}$, "
                 f"$N={res['width']}$ ({res['source']})")
    ax.text(0.03, 0.04, f"power counting: {res['predicted_slope']:+.0f}\n"
            f"window $\\Lambda\\geq 10^4$: {res['slope_window']:.4f}",
            transform=ax.transAxes, fontsize=7)
    ax.legend(loc="upper right", fontsize=6.5)
    # local slope d ln|λ|/d ln Λ of the flow vs power counting
    lf = np.log(np.abs(np.asarray(res["flow_lambda"])))
    local = np.gradient(lf, np.log(fc))
    axr.plot(fc, local, "-", color="C1", label=r"flow: $d\ln|\lambda|/d\ln\Lambda$")
    axr.axhline(res["predicted_slope"], color="0.3", ls=":", label="power counting")
    axr.set_xscale("log")
    axr.set_xlabel(r"cutoff $\Lambda$")
    axr.set_ylabel("local slope")
    axr.set_title(f"max |flow − refit|/|refit| = {res['flow_max_rel_dev']:.1e}", fontsize=8)
    axr.legend(fontsize=6.5)
    return save_figure(fig, path_stem, formats=formats)


# ----------------------------------------------------------------------- study interface ---

TITLE = "λ(Λ): refits, power counting and the diffrax flow (HMS fig. 3)"
SCHEMA = {"nets": choice_list(*NETS), "d_ins": choice_list(1, 2, 3),
          "source": choice("exact", "mc"), "n_nets": integer(100), "seed": SEED,
          "width": optional(integer(1))}
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_ins": [1, 2, 3], "source": "exact", "n_nets": 200_000,
              "seed": 0, "width": None},
    "full": {"nets": list(NETS), "d_ins": [1, 2, 3], "source": "mc", "n_nets": 1_000_000,
             "seed": 0, "width": None},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        for d in config["d_ins"]:
            out[f"rg_lambda_{name}_d{d}"] = rg_lambda(
                name, d, width=config["width"], source=config["source"],
                n_nets=config["n_nets"], seed=config["seed"])
    return out


def plot(result: dict, stem) -> list:
    return plot_rg_lambda(result, stem, formats=("png", "pdf"))


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    fmt = lambda x, d=3: "n/a" if x is None else f"{x:.{d}f}"  # noqa: E731
    for r in results.values():
        rows.append((f"λ(Λ) log–log slope ({r['source']}), {r['net']} d_in={r['d_in']}: element "
                     "mean over all 21 cutoffs / over Λ ≥ 10⁴ / least-squares λ over Λ ≥ 10⁴; "
                     "max relative gap flow vs refits",
                     f"{fmt(r['slope'], 4)} (R² {fmt(r['r2'], 4)}) / "
                     f"{fmt(r['slope_window'], 4)} / {fmt(r['slope_ls_window'], 4)}; "
                     f"{r['flow_max_rel_dev']:.1e}",
                     f"{fmt(r['predicted_slope'], 0)} (power counting, asymptotic)"))
    return rows
