"""The running of the quartic coupling λ(Λ) (HMS figure; physics.md §7, §8 item 3).

For each sorted 4-tuple T the coupling is matched to the connected 4-pt function,

    λ_T(Λ) = −ΔG4(T) / (24 I4(Λ; T)),   ΔG4 = G4 − G4_GP = G4_c   (sign convention physics.md §3),

and HMS report the element mean λ(Λ) = mean_T λ_T(Λ). A tuple whose I4(Λ; T) changes sign
inside the cutoff range (possible for Erf-net, whose K_W(x, y) has the sign of x·y at large
|y|) has a pole in λ_T: it cannot be flowed through and would dominate the mean, so it is left
out of the element mean and listed in `excluded_tuples`. We also give the single least-squares λ
(`rgflow._predict._match_quartic`, weights 1/stderr² for Monte Carlo input). log|λ| is fitted
against log Λ over the 21 HMS cutoffs (slope, R²) and over the asymptotic window Λ >= 10⁴, and
compared with power counting: ζ = −[λ] = −(d_in − 4[f]) with [f] read off the kernel
(`rgflow._relevance.field_dimension`): −(d_in + 4) for ReLU with σ_b = 0, −d_in for bounded
kernels (reached only asymptotically: K_W approaches its limit like 1/|y|), 0 for Gauss-net
(K_W decays, I4 converges).

The same couplings are flowed with diffrax from Λ = 7 (`rgflow.flow`: every λ_T and the
least-squares λ in one ODE system, each obeying β_T = −λ_T d ln I4_T / d ln Λ), and the flow is
compared with the independent refits at every cutoff (`flow_max_rel_dev`).

ζ (λ ∝ Λ^ζ, the exponent of a *dimensionful* coupling; Λ → ∞ removes the box cutoff, a volume
regulator, physics.md §7) is reported only where one local λ describes ΔG4 (residual ≤ 10 %),
the flow agrees with the refits (≤ 1e-3) and log|λ| is straight in log Λ over the fitted range
(slopes of the two halves within 0.05); otherwise the failed checks are reported with their
numbers (Erf d_in = 1: one local λ leaves ~94 % of ΔG4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._beta import MatchingProblem, matching_problem, refit
from .._flow import TableInterpolant, flow
from .._relevance import (
    DIRECTION,
    MAX_DRIFT,
    MAX_FLOW_GAP,
    MAX_RESIDUAL,
    failed_checks,
    field_dimension,
)
from .._validate import check_positive_int, check_seed
from ._config import (  # noqa: F401
    N_NETS,
    NETS,
    SEED,
    choice,
    choice_list,
    float_list,
    int_list,
    integer,
    optional,
    real,
)
from ._plotting import NET_LABELS, figure, save_figure
from ._progress import steps

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
    depth: int = 1,
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
    - `depth`: hidden layers L (physics.md §11). L = 1 is the one-layer net of HMS; for L > 1
      the network is `rgflow.DeepNet(activation=net_name, ...)` (Erf and ReLU only: Gauss-net's
      input-dependent normalisation has no deep analogue), the vertex lines carry the deep
      kernel, and the "exact" ΔG4 is the O(1/n) layer recursion `rgflow.perturbative_connected`
      (Monte Carlo stays exact at every order).

    **Returns:** a JSON-ready dict with `direction` (Λ → ∞ removes the box cutoff), `cutoffs`,
    `lambda` (element mean), `lambda_ls` (least squares), their `residual_mean`/`residual_ls`
    (the fraction of ΔG4 that one local λ leaves at each cutoff), `exponents` (ζ of the element
    mean over all cutoffs and over the window, of λ_ls over the window: each with `status`,
    `theta` or None, `residual`, `flow_gap`, `drift` and the failed checks in `reasons`; the
    thresholds of `rgflow._relevance`), `field_dimension`, `flow_cutoffs`, `flow_lambda`,
    `flow_lambda_ls`, `flow_max_rel_dev`, `flow_stats`, and for Monte Carlo input the
    jackknife errors `lambda_stderr`, `lambda_ls_stderr`, `theta_stderr` and the exact
    reference `lambda_exact` with z-scores.
    """
    from .._ensemble import measure  # noqa: PLC0415
    from .._exact import exact_connected  # noqa: PLC0415
    from .._nets import hms_inputs, make_net  # noqa: PLC0415

    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    width = DEFAULT_WIDTHS.get(net_name, 10) if width is None else int(width)
    depth = check_positive_int("depth", depth)
    xs = hms_inputs(net_name, d_in)
    cut = np.asarray(cutoffs, np.float64)
    if depth == 1:
        net = make_net(net_name, width=width, d_in=d_in)
        dg4_exact = np.asarray(exact_connected(net, xs, 4, full=False))
    else:
        from .._deep import DeepNet, perturbative_connected  # noqa: PLC0415

        if net_name not in ("erf", "relu"):
            raise ValueError(f"`depth` > 1 needs net 'erf' or 'relu' (a deep Gauss-net is not "
                             f"defined), got net {net_name!r} with depth {depth}.")
        net = DeepNet(activation=net_name, width=width, depth=depth, d_in=d_in)
        dg4_exact = np.asarray(perturbative_connected(net, xs, 4, full=False))
    if source == "exact":
        dg4, err = dg4_exact, None
    else:
        m = measure(net, xs, n_nets, key=jax.random.key(check_seed(seed)), orders=(2, 4))
        dg4 = np.asarray(m.connected(4, full=False))
        err = np.asarray(m.connected_stderr(4, full=False))
    full = lambda_problem(net, xs, dg4, stderr=err)
    n_all = dg4.size
    dense = np.unique(np.concatenate([cut, np.geomspace(cut.min(), cut.max(), n_dense)]))
    # one vectorised quadrature: interpolation nodes, Λ0, the cutoffs
    t_lo, t_hi = float(np.log(dense[0])), float(np.log(dense[-1]))
    nodes, _ = TableInterpolant.nodes(t_lo, t_hi)
    # (the union below is the array that `flow`'s table builder asks for: one quadrature)
    union = np.unique(np.concatenate([np.exp(nodes.ravel()), dense[:1]]))
    full.precompute(np.exp(nodes.ravel()), dense[:1], cut, union)
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
    win = cut >= window_min
    fd = field_dimension(net, xs)
    f = fd["field_dimension"]
    predicted = 0.0 if f is None else -(d_in - 4 * round(2 * f) / 2)
    # one local λ as the whole quartic action: the residual it leaves in ΔG4 (element mean on
    # the tuples of the mean, least-squares λ on all tuples)
    lin_cut = np.asarray(prob.tables(cut)[0])
    l_mean = lin_cut[:, np.arange(n), np.arange(n)]  # (C, n): prediction of ΔG4_T per unit λ
    l_ls = lin_cut[:, n:, n]  # (C, n_all)
    t_ls = prob.target[n:]
    res_mean = np.linalg.norm(l_mean * lam[:, None] - dg4[None], axis=1) / np.linalg.norm(dg4)
    res_ls = np.linalg.norm(l_ls * lam_ls[:, None] - t_ls[None], axis=1) / np.linalg.norm(t_ls)
    gap_mean, gap_ls = float(rel_mean.max()), float(rel[:, n].max())
    fits = {
        # HMS: element mean, one line over all cutoffs
        "lambda_mean_all": (lam, np.ones_like(win), res_mean, gap_mean),
        "lambda_mean_window": (lam, win, res_mean, gap_mean),
        "lambda_ls_window": (lam_ls, win, res_ls, gap_ls),
    }
    exps = {"direction": DIRECTION, "window": cut[win].tolist(), "max_residual": MAX_RESIDUAL,
            "max_flow_gap": MAX_FLOW_GAP, "max_drift": MAX_DRIFT,
            "predicted_theta": predicted}
    for key, (y, mask, res, gap) in fits.items():
        lc, ly = logc[mask], np.log(np.abs(y[mask]))
        slope, icpt, r2 = _fit_line(lc, ly)
        h = lc.size // 2
        drift = abs(np.polyfit(lc[:h], ly[:h], 1)[0] - np.polyfit(lc[-h:], ly[-h:], 1)[0])
        r_max = float(np.max(res[mask]))
        reasons = failed_checks(r_max, gap, drift)
        ok = not reasons
        exps[key] = {"status": "ok" if ok else "failed", "theta": slope if ok else None,
                     "theta_stderr": None, "intercept": icpt if ok else None,
                     "r2": r2 if ok else None, "residual": r_max, "flow_gap": gap,
                     "drift": float(drift), "reasons": reasons,
                     "cutoff_range": [float(cut[mask][0]), float(cut[mask][-1])]}
    i4_cut = np.abs(np.asarray(prob.tables(cut)[0])[:, np.arange(n), np.arange(n)])
    i4_slope = np.polyfit(logc[win], np.log(i4_cut[win]), 1)[0]
    nonzero = np.abs(dg4) > 1e-10 * np.max(np.abs(dg4))
    leading = (np.abs(i4_slope + predicted) < 0.5) & nonzero
    out = {
        "net": net_name, "d_in": d_in, "width": width, "depth": depth, "source": source,
        "n_nets": n_nets if source == "mc" else None,
        "direction": DIRECTION,
        "cutoffs": cut.tolist(),
        "lambda": lam.tolist(),
        "lambda_ls": lam_ls.tolist(),
        "residual_mean": res_mean.tolist(),
        "residual_ls": res_ls.tolist(),
        "exponents": exps,
        "n_tuples_leading": int(leading.sum()),
        # a decaying kernel has no scaling exponent (-inf): None in JSON (`decaying` says why)
        "field_dimension": {**fd, "exponent": fd["exponent"]
                            if np.isfinite(fd["exponent"]) else None},
        "flow_cutoffs": dense.tolist(),
        "flow_lambda": g_flow[:, :n].mean(axis=1).tolist(),
        "flow_lambda_ls": g_flow[:, n].tolist(),
        "flow_max_rel_dev": float(rel.max()),
        "flow_max_rel_dev_mean": gap_mean,
        "n_tuples": int(n_all), "n_tuples_in_mean": int(n),
        "excluded_tuples": [full.names[i] for i in np.flatnonzero(~regular)],
        "flow_stats": {k: int(np.asarray(v)) for k, v in sol.stats.items()
                       if np.asarray(v).size == 1},
        "flow_result": str(sol.result),
    }
    if source == "mc":
        # λ_T = ΔG4_T / L_T and the least-squares λ are linear in ΔG4; errors of the element
        # mean, of λ_ls and of the slopes by the delete-one-block jackknife of the ensemble
        # (tuples are correlated)
        from .._ensemble import connected_from_moments  # noqa: PLC0415

        inv = jnp.asarray(1.0 / l_mean)  # (C, n)
        lls = jnp.asarray(l_ls)
        wls = jnp.asarray(prob.weights[n:])
        logc_j = jnp.asarray(logc)

        def slope_of(logy, mask):
            mask = jnp.asarray(mask, jnp.float64)
            x = jnp.where(mask > 0, logc_j - jnp.sum(logc_j * mask) / jnp.sum(mask), 0.0)
            return jnp.sum(x * logy, axis=-1) / jnp.sum(x * x)

        def stats(moments):
            k4 = connected_from_moments(moments, xs.shape[0], 4)
            lm = jnp.mean(k4[..., keep][..., None, :] * inv, axis=-1)  # (..., C)
            ll = jnp.sum(wls * lls * k4[..., None, :], -1) / jnp.sum(wls * lls * lls, -1)
            s = [slope_of(jnp.log(jnp.abs(lm)), np.ones_like(win)),
                 slope_of(jnp.log(jnp.abs(lm)), win), slope_of(jnp.log(jnp.abs(ll)), win)]
            return jnp.concatenate([lm, ll, jnp.stack(s, -1)], axis=-1)

        _, se = m.jackknife(stats)
        se = np.asarray(se)
        nc = len(cut)
        for key, e in zip(("lambda_mean_all", "lambda_mean_window", "lambda_ls_window"), se[-3:]):
            if exps[key]["status"] == "ok":
                exps[key]["theta_stderr"] = float(e)
        lam_ex = (dg4_exact[None] / l_mean).mean(axis=1)
        out.update({
            "lambda_stderr": se[:nc].tolist(),
            "lambda_ls_stderr": se[nc:2 * nc].tolist(),
            "lambda_exact": lam_ex.tolist(),
            "lambda_mc_vs_exact_z": ((lam - lam_ex) / se[:nc]).tolist(),
        })
    return out


def theta_text(e: dict, digits: int = 3) -> str:
    """ζ ± σ of an exponent entry, or "no exponent (reasons)" (never a number of a failed check)."""
    if e["status"] != "ok":
        return "no exponent: " + "; ".join(e["reasons"])
    se = e.get("theta_stderr")
    th = e["theta"]
    if se:
        d = max(1, int(-np.floor(np.log10(se))) + 1)
        return f"{th:+.{d}f} ± {se:.{d}f}"
    return f"{0.0 if abs(th) < 0.5 * 10.0**-digits else th:+.{digits}f}"


def _gap_text(x: float) -> str:
    return "0 (to rounding)" if x < 1e-14 else f"{x:.0e}"


def _constant(y, tol=1e-12) -> bool:
    y = np.asarray(y, float)
    return bool(np.all(np.isfinite(y)) and np.ptp(y) <= tol * np.max(np.abs(y)))


def caption(res: dict) -> str:
    """The JSON caption of one λ(Λ) figure: what it tests, its parameters and its checks."""
    from .._nets import make_net

    net = make_net(res["net"], width=int(res["width"]), d_in=int(res["d_in"]))
    ex = res["exponents"]
    lam = np.abs(np.asarray(res["lambda"]))
    lam_ls = np.abs(np.asarray(res["lambda_ls"]))
    lines = [f"Window Λ ≥ {ex['window'][0]:.0f}; checks: fit residual ≤ {ex['max_residual']:g} of ΔG4, "
             f"flow gap ≤ {ex['max_flow_gap']:g}, drift ≤ {ex['max_drift']:g}"]
    for key, lab in (("lambda_mean_all", "element mean, all Λ"),
                     ("lambda_mean_window", "element mean, window"),
                     ("lambda_ls_window", "least-squares λ, window")):
        lines.append(f"ζ[{lab}]: {theta_text(ex[key])}")
    if np.allclose(lam, lam_ls, rtol=1e-10, atol=0):
        lines.append("element mean = least-squares λ to rounding (all λ_T equal: the curves "
                     "coincide)")
    lines.append(f"max |flow − refit|/|refit| = {_gap_text(res['flow_max_rel_dev'])}; "
                 "direction: Λ → ∞ removes the box cutoff")
    return (f"{CAPTION} Parameters: {res['net']}, σ_b = {float(net.sigma_b):g}, σ_W = "
            f"{float(net.sigma_w):g}, d_in = {res['d_in']}, N = width = {res['width']}"
            + (" (ReLU σ_b = 0: the HMS configuration, not the σ_b = 1 showcase)"
               if res["net"] == "relu" and float(net.sigma_b) == 0 else "") + ". "
            + " ".join(line.rstrip(".") + "." for line in lines))


def plot_rg_lambda(res: dict, path_stem, formats=("png",)) -> list:
    """Signed λ(Λ) on a symmetric-log axis (a sign change stays visible): refits (points, Monte
    Carlo error bars), diffrax flow (line), the fitted power law only where it passed its checks;
    right: the effective exponent of the refits between neighbouring cutoffs against power
    counting. Failed checks are written out with numbers."""
    cut = np.asarray(res["cutoffs"])
    ex = res["exponents"]
    # the effective exponent between neighbouring refit cutoffs (finite differences of refits,
    # not of the flow: no solver noise); equal to power counting everywhere: a flat panel, so
    # it is stated in the title instead
    zeff = [np.diff(np.log(np.abs(np.asarray(res[k])))) / np.diff(np.log(cut))
            for k in ("lambda", "lambda_ls")]
    flat = all(np.all(np.abs(z - ex["predicted_theta"]) < 1e-6) for z in zeff)
    fig, axes = figure(1, 1 if flat else 2, width=3.5, height=3.0)
    ax, axr = (axes[0][0], None) if flat else axes[0]
    lam_s = np.asarray(res["lambda"])
    lam = np.abs(lam_s)
    lam_ls_s = np.asarray(res["lambda_ls"])
    lam_ls = np.abs(lam_ls_s)
    fc = np.asarray(res["flow_cutoffs"])
    flows = (np.asarray(res["flow_lambda"]), np.asarray(res["flow_lambda_ls"]))
    allv = np.concatenate([lam_s, lam_ls_s, *flows])
    one_sign = bool(np.all(allv < 0) or np.all(allv > 0))
    # one sign everywhere: log axis of sign·λ; a sign change: signed λ on a symmetric-log axis
    sg = float(np.sign(allv[0])) if one_sign else 1.0
    ax.errorbar(cut, sg * lam_s, yerr=res.get("lambda_stderr"), fmt="o", ms=3.5, color="C0",
                label=r"refits, element mean $\langle\lambda_T\rangle$", zorder=3)
    ax.errorbar(cut, sg * lam_ls_s, yerr=res.get("lambda_ls_stderr"), fmt="s", ms=3, mfc="none",
                color="C2", label=r"refits, least-squares $\lambda$", zorder=3)
    ax.plot(fc, sg * flows[0], "-", color="C1", lw=1.0, label="diffrax flow (solid, dashed)",
            zorder=2)
    ax.plot(fc, sg * flows[1], "--", color="C1", lw=1.0, zorder=2)
    e = ex["lambda_mean_all"]
    if e["status"] == "ok" and not _constant(lam):
        ax.plot(fc, np.exp(e["intercept"]) * fc ** e["theta"] * sg * np.sign(lam_s[-1]), ":",
                color="0.3", lw=1.0, label=rf"power law $\Lambda^{{{e['theta']:.2f}}}$")
    ax.set_xscale("log")
    if one_sign:
        ax.set_yscale("log")
        ax.set_ylabel(r"$\lambda(\Lambda)$" if sg > 0 else
                      r"$-\lambda(\Lambda)$  ($\lambda < 0$ at every $\Lambda$)")
    else:
        from matplotlib.ticker import FixedLocator, NullFormatter

        small = float(np.min(np.abs(allv[allv != 0])))
        big = float(np.max(np.abs(allv)))
        ax.set_yscale("symlog", linthresh=small, linscale=0.5)
        lo_d, hi_d = int(np.ceil(np.log10(small))), int(np.floor(np.log10(big)))
        step = max(1, int(np.ceil((hi_d - lo_d + 1) / 3)))
        decs = [10.0**d for d in range(hi_d, lo_d - 1, -step)]
        ticks = ([-d for d in decs] if np.any(allv < 0) else []) + [0.0] + (
            decs[::-1] if np.any(allv > 0) else [])
        ax.yaxis.set_major_locator(FixedLocator(sorted(ticks)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_ylabel(r"$\lambda(\Lambda)$, signed" + f" (linear within ±{small:.0e})")
    ax.set_xlabel(r"box cutoff $\Lambda$  ($\Lambda\to\infty$ removes it)")
    from .._nets import make_net

    net = make_net(res["net"], width=int(res["width"]), d_in=int(res["d_in"]))
    ax.set_title(f"{NET_LABELS.get(res['net'], res['net'])}, $\\sigma_b = {float(net.sigma_b):g}$, "
                 f"$\\sigma_W = {float(net.sigma_w):g}$, $d_{{in}}={res['d_in']}$, $N={res['width']}$"
                 + (f", depth {res['depth']}" if res.get("depth", 1) > 1 else "")
                 + f" ({res['source']})"
                 + ("" if not flat else "\n" + r"$\zeta_{\rm eff} = \Delta\ln|\lambda|/\Delta\ln\Lambda$"
                    + f" = {ex['predicted_theta']:+.0f} (power counting) between all cutoffs, "
                    "to 1e-6"), fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.24), fontsize=8, ncol=1, frameon=False)
    # effective exponent between neighbouring refit cutoffs (finite differences of refits, not
    # of the flow: no solver noise), on a y-range of at least ±1 around power counting
    if flat:
        return save_figure(fig, path_stem, formats=formats)
    lc = np.log(cut)
    mid = np.sqrt(cut[1:] * cut[:-1])
    pc = ex["predicted_theta"]
    for y, ys, mk, c, lab in ((lam, lam_s, "o", "C0", r"$\langle\lambda_T\rangle$"),
                              (lam_ls, np.asarray(res["lambda_ls"]), "s", "C2",
                               r"least-squares $\lambda$")):
        th = np.diff(np.log(y)) / np.diff(lc)  # ζ_eff
        th[np.sign(ys[1:]) != np.sign(ys[:-1])] = np.nan  # no exponent across a sign change
        axr.plot(mid, th, mk + "-", ms=3, lw=0.8, color=c, mfc="none" if mk == "s" else c,
                 label=lab)
    axr.axhline(pc, color="0.3", ls=":", label=f"power counting $-[\\lambda] = {pc:+.0f}$")
    lo, hi = axr.get_ylim()
    axr.set_ylim(min(lo, pc - 1), max(hi, pc + 1))
    axr.set_xscale("log")
    axr.set_xlabel(r"box cutoff $\Lambda$")
    axr.set_ylabel(r"$\zeta_{\rm eff} = \Delta\ln|\lambda| / \Delta\ln\Lambda$")
    axr.legend(loc="upper center", bbox_to_anchor=(0.5, -0.24), fontsize=8, ncol=1, frameon=False)
    return save_figure(fig, path_stem, formats=formats)


# ----------------------------------------------------------------------- study interface ---

TITLE = "λ(Λ): refits, power counting and the diffrax flow (HMS fig. 3)"
CAPTION = ("Tests HMS fig. 3: the single local quartic λ(Λ) refitted to ΔG4 at each box cutoff Λ, "
           "the diffrax flow of λ against the refits (signed λ on a symmetric-log axis: linear "
           "below its smallest |λ|), and the exponent ζ of the dimensionful coupling (λ ∝ Λ^ζ; "
           "not an RG eigenvalue y) against power counting −[λ], printed only where its checks "
           "pass; right: the effective exponent ζ_eff between neighbouring cutoffs (none across "
           "a sign change). Gauss-net is not drawn: its vertex integrals run over all space, so "
           "λ is Λ-independent to rounding (ζ = 0 exactly; a flat panel; relevance_gauss_d1 "
           "carries its 1/N hierarchy).")
SCHEMA = {"nets": choice_list(*NETS), "d_ins": choice_list(1, 2, 3),
          "source": choice("exact", "mc"), "n_nets": N_NETS, "seed": SEED,
          "width": optional(integer(1)), "depth": integer(1, 64)}
# networks are independent (own seeds, own files): `rgflow reproduce` runs one task per net
SPLIT = "nets"
DEFAULTS = {
    # quick: d_in = 1 only (runtime budget of the demo); d_in = 2, 3 with --profile full or --d-in
    "quick": {"nets": ["erf", "relu"], "d_ins": [1], "source": "exact", "n_nets": 200_000,
              "seed": 0, "width": None, "depth": 1},
    "full": {"nets": ["erf", "relu"], "d_ins": [1, 2, 3], "source": "mc", "n_nets": 1_000_000,
             "seed": 0, "width": None, "depth": 1},
}


def run(config: dict, *, progress: bool = False) -> dict:
    depth = config.get("depth", 1)
    if depth > 1 and "gauss" in config["nets"]:
        raise ValueError("configuration key `rg_lambda.depth`: depth > 1 needs nets erf and/or "
                         "relu (a deep Gauss-net is not defined); pass e.g. --nets erf,relu")
    suffix = "" if depth == 1 else f"_L{depth}"
    out = {}
    jobs = [(name, d) for name in config["nets"] for d in config["d_ins"]]
    for name, d in steps(jobs, "λ(Λ) refits and flow (net, d_in)", progress, unit="net"):
        r = rg_lambda(name, d, width=config["width"], source=config["source"],
                      n_nets=config["n_nets"], seed=config["seed"], depth=depth)
        r["caption"] = caption(r)
        out[f"rg_lambda_{name}_d{d}{suffix}"] = r
    return out


def plot(result: dict, stem) -> list:
    return plot_rg_lambda(result, stem, formats=("png", "pdf"))


def _row_net(r) -> str:
    from .._nets import make_net

    net = make_net(r["net"], width=int(r["width"]), d_in=int(r["d_in"]))
    return f"{r['net']} σ_b={float(net.sigma_b):g} σ_W={float(net.sigma_w):g}"


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for r in results.values():
        ex = r["exponents"]
        keys = (("lambda_mean_all", "element mean, all Λ:"),
                ("lambda_mean_window", "element mean, Λ ≥ 10⁴:"),
                ("lambda_ls_window", "least-squares, Λ ≥ 10⁴:"))
        val = "; ".join(f"{lab} {theta_text(ex[key])}" for key, lab in keys)
        val += f"; flow vs refits: max relative gap {_gap_text(r['flow_max_rel_dev'])}"
        bad = [lab.rstrip(":") for key, lab in keys if ex[key]["status"] != "ok"]
        rows.append((f"ζ of the single local quartic λ (λ ∝ Λ^ζ, Λ → ∞ removes the box cutoff; "
                     f"{r['source']}), {_row_net(r)} N={r['width']} d_in={r['d_in']}"
                     + (f" L={r['depth']}" if r.get('depth', 1) > 1 else ""), val,
                     f"{ex['predicted_theta']:+.0f} (power counting, asymptotic)",
                     "ok" if not bad else f"FAILED: no exponent ({'; '.join(bad)})",
                     f"per fit: residual ≤ {ex['max_residual']:g} of ΔG4, flow within "
                     f"{ex['max_flow_gap']:g} of the refits, slope drift ≤ {ex['max_drift']:g}"))
    return rows
