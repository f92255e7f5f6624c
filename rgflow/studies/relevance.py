"""Which operators die away: flows of the dimensionless couplings of a richer action
(physics.md §7; issue 4).

The action S = S_GP + ∫ (λ + λ2 |y|²) f⁴ + κ ∫ f⁶ + λ_NL ∫∫ f(y)² f(z)² is matched to the
exact (or Monte Carlo) connected 4- and 6-pt functions at every cutoff: the 4-pt entries
determine (λ, λ2, λ_NL), the 6-pt entries κ given the quartics, including the λ² exchange
(hierarchical matching, `rgflow._beta.matching_problem`). The couplings are refitted at each of
the 21 HMS cutoffs and flowed with diffrax; the dimensionless couplings ĝ = g Λ^{[g]} use the
engineering dimensions from the kernel's scaling (`rgflow._relevance`). Scaling exponents θ
(g ∝ Λ^θ) come from the matched couplings in the window Λ >= 10⁴ (with Monte Carlo errors) and
from the stability matrix at the Gaussian fixed point; each operator is classified and compared
with the constant quartic.

Defaults: d_in = 1 for Erf and Gauss, d_in = 2 for ReLU (at d_in = 1 with σ_b = 0 every 4-pt
design column is ∝ Π x_i, so λ, λ2, λ_NL are not separately determined: a clear error).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._beta import beta_from_tables, matching_problem, refit
from .._flow import TableInterpolant, flow
from .._relevance import coupling_dimensions, field_dimension, relevance
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import NET_LABELS, figure, save_figure
from .rg_lambda import DEFAULT_WIDTHS, HMS_CUTOFFS, WINDOW_MIN

DEFAULT_D_IN = {"erf": 1, "relu": 2, "gauss": 1}
LABELS = (r"$\lambda$", r"$\lambda_2$", r"$\kappa$", r"$\lambda_{NL}$")
KEYS = ("lambda", "lambda2", "kappa", "lambda_nl")


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
    stiffness_limit: float = 50.0,
) -> dict:
    """Refits, diffrax flows, dimensionless couplings and relevance of (λ, λ2, κ, λ_NL).

    **Arguments:**

    - `net_name`: "erf", "relu" or "gauss"; `d_in` (default per net, module docstring).
    - `width`: N (default as `rgflow.studies.rg_lambda.DEFAULT_WIDTHS`).
    - `source`: "exact" or "mc" (`n_nets`, `seed`).
    - `cutoffs`: the cutoffs; `window_min`: the asymptotic window for the exponents.
    - `stiffness_limit`: if the exact-refit flow has |eigenvalues| of ∂β/∂g above this (nearly
      collinear design columns, see `rgflow._flow`), the homogeneous flow is used instead.

    **Returns:** a JSON-ready dict (see `scripts/relevance.py`).
    """
    from .._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic  # noqa: PLC0415
    from .._ensemble import measure  # noqa: PLC0415
    from .._exact import exact_connected  # noqa: PLC0415
    from .._nets import hms_inputs, make_net  # noqa: PLC0415

    d_in = DEFAULT_D_IN.get(net_name, 1) if d_in is None else int(d_in)
    width = DEFAULT_WIDTHS.get(net_name, 10) if width is None else int(width)
    net = make_net(net_name, width=width, d_in=d_in)
    xs = hms_inputs(net_name, d_in)
    cut = np.asarray(cutoffs, np.float64)
    act = Action(net, [PolynomialQuartic(), LocalCoupling(6), BilocalQuartic()])
    if source == "exact":
        t = {n: np.asarray(exact_connected(net, xs, n, full=False)) for n in (4, 6)}
        err = None
        w = {n: np.full(v.size, 1.0 / np.mean(v**2)) for n, v in t.items()}
    elif source == "mc":
        m = measure(net, xs, n_nets, key=jax.random.key(seed), orders=(2, 4, 6))
        t = {n: np.asarray(m.connected(n, full=False)) for n in (4, 6)}
        err = {n: np.asarray(m.connected_stderr(n, full=False)) for n in (4, 6)}
        w = {n: 1.0 / err[n] ** 2 / np.mean(1.0 / err[n] ** 2) for n in (4, 6)}
    else:
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    prob = matching_problem(act, xs, t, w, stderr=err)
    fd = field_dimension(net, xs)
    dims = coupling_dimensions(act, fd)
    out = {"net": net_name, "d_in": d_in, "width": width, "source": source,
           "n_nets": n_nets if source == "mc" else None, "cutoffs": cut.tolist(),
           "names": list(prob.names), "keys": list(KEYS), "field_dimension": fd,
           "dimensions": [None if v is None else float(v) for v in dims]}
    # one 16-node Chebyshev segment over the whole range: the couplings' power-law growth is
    # factored out exactly (ReLU) or the tables are constant (Gauss-net, converged integrals)
    seg = float(np.log(cut[-1] / cut[0])) + 1e-9
    nodes, _ = TableInterpolant.nodes(float(np.log(cut[0])), float(np.log(cut[-1])),
                                      segment_width=seg)
    win = cut[cut >= window_min]
    # one quadrature for everything (interpolation nodes, Λ0, refits, window, last cutoff)
    prob.precompute(np.exp(nodes.ravel()), cut[:1], cut, win, cut[-1:])
    try:
        g_ref = np.asarray(refit(prob, cut))
    except ValueError as e:  # rank-deficient: report, do not flow NaNs
        out.update({"error": str(e), "classification": None})
        return out
    stiff = _max_growth_eig(prob, cut[-1:], g_ref[-1])
    exact_flow = stiff < stiffness_limit
    rtol = 1e-10 if exact_flow else 1e-8
    sol = flow(prob, cut, g0=g_ref[0], residual_term=exact_flow, rtol=rtol, atol=rtol * 1e-2,
               dimensions=[0.0 if v is None else v for v in dims], throw=False,
               segment_width=seg)
    g_flow = np.asarray(sol.couplings)
    rel_dev = np.abs(g_flow - g_ref) / np.abs(g_ref)
    rel = relevance(prob, win, dims)
    dim0 = np.asarray([0.0 if v is None else v for v in dims])
    out.update({
        "couplings": g_ref.tolist(),
        "dimensionless": (g_ref * cut[:, None] ** dim0[None]).tolist(),
        "flow_couplings": g_flow.tolist(),
        "flow_dimensionless": np.asarray(sol.dimensionless).tolist(),
        "flow_kind": "exact-refit" if exact_flow else "homogeneous",
        "flow_stiffness": stiff,
        "flow_result": str(sol.result),
        "flow_stats": {k: int(np.asarray(v)) for k, v in sol.stats.items() if np.asarray(v).size == 1},
        "flow_max_rel_dev": float(np.nanmax(rel_dev)) if np.all(np.isfinite(g_flow)) else None,
        "residual_4pt": None, "residual_6pt": None,
    })
    lin, quad = prob.tables(cut)
    from .._beta import _predict  # noqa: PLC0415

    pred = np.stack([np.asarray(_predict(jnp.asarray(g_ref[k]), lin[k], None if quad is None else quad[k]))
                     for k in range(len(cut))])
    n4 = t[4].size
    out["residual_4pt"] = (np.linalg.norm(pred[:, :n4] - t[4], axis=1) / np.linalg.norm(t[4])).tolist()
    out["residual_6pt"] = (np.linalg.norm(pred[:, n4:] - t[6], axis=1) / np.linalg.norm(t[6])).tolist()
    out.update({k: rel[k] for k in ("predicted_theta", "theta", "theta_stderr", "theta_stability",
                                    "y_stability", "classification", "delta_theta",
                                    "delta_theta_stderr", "less_relevant_than_quartic", "window")})
    out["scaling_exponents"] = dict(zip(KEYS, rel["theta"]))
    out["classification_by_name"] = dict(zip(KEYS, rel["classification"]))
    return out


def plot_relevance(res: dict, path_stem, formats=("png",)) -> list:
    """Dimensionless couplings ĝ(Λ)/ĝ(Λ0), and couplings relative to the constant quartic."""
    fig, axes = figure(1, 2, width=3.3, height=2.8)
    ax, axr = axes[0]
    title = (f"{NET_LABELS.get(res['net'], res['net'])}, $d_{{in}}={res['d_in']}$, "
             f"$N={res['width']}$ ({res['source']})")
    if res.get("error"):
        ax.text(0.05, 0.5, "undetermined:\n" + res["error"][:160], transform=ax.transAxes,
                fontsize=6, wrap=True)
        ax.set_title(title)
        return save_figure(fig, path_stem, formats=formats)
    cut = np.asarray(res["cutoffs"])
    gh = np.asarray(res["dimensionless"])
    fgh = np.asarray(res["flow_dimensionless"])
    g = np.asarray(res["couplings"])
    fg = np.asarray(res["flow_couplings"])
    for i, lab in enumerate(LABELS):
        c = f"C{i}"
        ax.plot(cut, np.abs(gh[:, i] / gh[0, i]), "o", ms=3, color=c)
        ax.plot(cut, np.abs(fgh[:, i] / fgh[0, i]), "-", color=c,
                label=f"{lab}: θ = {res['theta'][i]:.2f} ({res['classification'][i]})")
        r = np.abs((g[:, i] / g[0, i]) / (g[:, 0] / g[0, 0]))
        fr = np.abs((fg[:, i] / fg[0, i]) / (fg[:, 0] / fg[0, 0]))
        axr.plot(cut, r, "o", ms=3, color=c)
        axr.plot(cut, fr, "-", color=c, label=f"{lab}: Δθ = {res['delta_theta'][i]:+.2f}")
    vals = np.abs(fgh / fgh[0])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size:  # constant ĝ (exact power counting): keep rounding noise invisible
        ax.set_ylim(min(0.1, vals.min() / 3), max(10.0, vals.max() * 3))
    for a in (ax, axr):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel(r"cutoff $\Lambda$")
        a.legend(fontsize=6)
    ax.set_ylabel(r"$|\hat g(\Lambda)/\hat g(\Lambda_0)|$, $\hat g = g\,\Lambda^{[g]}$")
    axr.set_ylabel(r"$|g/g(\Lambda_0)|\;/\;|\lambda/\lambda(\Lambda_0)|$")
    ax.set_title(title, fontsize=8)
    axr.set_title(f"relative to the constant quartic ({res['flow_kind']} flow: lines)", fontsize=8)
    return save_figure(fig, path_stem, formats=formats)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Relevance of λ, λ2, κ, λ_NL (beyond the paper)"
SCHEMA = {"nets": choice_list(*NETS), "source": choice("exact", "mc"), "n_nets": integer(100),
          "seed": SEED}
DEFAULTS = {
    "quick": {"nets": list(NETS), "source": "exact", "n_nets": 200_000, "seed": 0},
    "full": {"nets": list(NETS), "source": "mc", "n_nets": 1_000_000, "seed": 0},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        res = relevance_study(name, source=config["source"], n_nets=config["n_nets"],
                              seed=config["seed"])
        out[f"relevance_{name}_d{res['d_in']}"] = res
    return out


def plot(result: dict, stem) -> list:
    return plot_relevance(result, stem, formats=("png", "pdf"))


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for r in results.values():
        if r.get("error"):
            rows.append((f"scaling exponents θ, {r['net']}", f"failed: {r['error']}", ""))
            continue
        ex = ", ".join(f"{k} {v:+.3f} ({c})" for (k, v), c in
                       zip(r["scaling_exponents"].items(), r["classification"]))
        rows.append((f"scaling exponents θ (g ∝ Λ^θ), {r['net']} d_in={r['d_in']}", ex,
                     "higher operators less relevant than λ"))
    return rows
