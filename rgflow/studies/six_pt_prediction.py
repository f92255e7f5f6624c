"""The HMS 6-pt prediction (HMS eq. 3.37; physics.md §6, §8 item 4): λ(Λ) matched to ΔG4, then
G6_GP + O(λ) diagrams compared with G6 on every sorted 6-tuple. Figure + JSON.

Gauss-net is exact only: its E[f⁶] is carried by ~6σ pre-activations beyond the range of any
feasible ensemble (the measured fraction is stored as `mc_skipped`, `rgflow.studies._heavy_tails`).
The O(λ) correction counts as resolved by Monte Carlo only where the correction itself,
(G6_GP + O(λ))/G6 − G6_GP/G6, exceeds 5× its jackknife error.

With `source="mc"` (quick and full profiles) the whole pipeline is run twice, on independent
routes: on the exact finite-width correlators (physics.md §4) and on brute-force Monte Carlo
moments (`rgflow.measure`, λ matched by inverse-variance weighted least squares), the latter with
a delete-one-block jackknife band (every block-deleted replicate of G4, G6 is pushed through the
matching and the prediction). ReLU uses σ_b = `relu_sigma_b`; with `hms_relu` the HMS
configuration (σ_b = 0, x > 0: one-dimensional, f(x) = x·F, where one constant λ fits ΔG4
exactly) is added as a secondary panel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._exact import exact_connected, exact_moment, gp_correlator
from .._integrals import QuadratureOptions, _check_xs, vertex_integrals
from .._nets import hms_inputs, make_net
from .._predict import _match_quartic
from .._tuples import sorted_tuples, splits, to_full
from .._validate import check_seed
from ._config import N_NETS, NETS, SEED, boolean, choice, choice_list, integer, optional, real
from ._plotting import NET_LABELS, figure, row_label, save_figure
from ._progress import steps

__all__ = ["HMS_CUTOFFS", "DEFAULT_WIDTHS", "six_pt_prediction", "six_point_prediction"]

HMS_CUTOFFS = np.array([7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4,
                        2e4, 4e4, 6e4, 8e4, 1e5], dtype=np.float64)
"""The 21 cutoffs of physics.md §8."""

DEFAULT_WIDTHS = {"erf": 5, "relu": 20, "gauss": 100}
"""The non-Gaussian widths of physics.md §8."""


def _disconnected_6pt(k_full, g4c_full, t6):
    """Σ_{15 (ab)} K_ab G4_c(rest) on the sorted 6-tuples (full K on the external pair)."""
    out = 0.0
    for pair, rest in splits(6, 2):
        out = out + k_full[t6[:, pair[0]], t6[:, pair[1]]] * g4c_full[
            ..., t6[:, rest[0]], t6[:, rest[1]], t6[:, rest[2]], t6[:, rest[3]]
        ]
    return out


def six_point_prediction(net, xs, cutoffs, *, g4, g6, weights=None, g6_connected=None,
                         options: QuadratureOptions | None = None) -> dict:
    """The HMS 6-pt prediction (HMS eq. 3.37, physics.md §6), done on every sorted tuple.

    1. λ(Λ) is matched to ΔG4 = G4 − G4_GP by (weighted) least squares over all sorted 4-tuples
       (`rgflow._predict._match_quartic`), with I4(Λ) the cutoff-regulated vertex integral.
    2. G6_pred(Λ) = G6_GP + Σ_{15 (ab)} K_ab G4_c^pred(rest; Λ), G4_c^pred = −24 λ(Λ) I4(Λ), with
       the full K on the external pair.
    3. Compared with G6: the remainder G6 − G6_pred = Σ_15 K (G4_c − G4_c^pred) + G6_c is the
       O(1/N²) connected 6-pt function plus the 4-pt fit residual (both returned).

    **Arguments:**

    - `net`: the network (its GP kernel K, K_W).
    - `xs`: inputs `(P, d_in)`.
    - `cutoffs`: cutoffs `(n_cut,)`.
    - `g4`, `g6`: the full moments G4, G6 on the sorted tuples (exact or measured).
    - `weights`: optional `(n_t4,)` least-squares weights for the matching.
    - `g6_connected`: optional exact connected 6-pt function on the sorted 6-tuples.
    - `options`: quadrature options.

    **Returns:** a dict of arrays: `lambda` `(n_cut,)`, `i4`, `g4c_pred` `(n_cut, n_t4)`,
    `g4c_residual` `(n_cut, n_t4)`, `g6_gp` `(n_t6,)`, `g6_pred` `(n_cut, n_t6)`, `g6`,
    `gp_ratio` (element mean of G6_GP/G6), `lambda_ratio` `(n_cut,)` (element mean of
    G6_pred/G6), `remainder` `(n_cut, n_t6)`, and, if `g6_connected` is given,
    `remainder_minus_connected` = Σ_15 K (G4_c − G4_c^pred) `(n_cut, n_t6)`.
    """
    xs = _check_xs(xs, net.d_in)
    p = xs.shape[0]
    t6 = sorted_tuples(p, 6)
    g4 = jnp.asarray(g4)
    g6 = jnp.asarray(g6)
    g4_gp = gp_correlator(net, xs, 4, full=False)
    g6_gp = gp_correlator(net, xs, 6, full=False)
    dg4 = g4 - g4_gp
    i4 = vertex_integrals(net, xs, cutoffs, 4, options=options)
    lam = _match_quartic(dg4, i4, weights)
    g4c_pred = -24.0 * lam[:, None] * i4
    k_full = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
    g6_pred = g6_gp[None] + _disconnected_6pt(k_full, to_full(g4c_pred, p, 4), t6)
    out = {
        "lambda": lam,
        "i4": i4,
        "g4c_pred": g4c_pred,
        "g4c_residual": dg4[None] - g4c_pred,
        "g6_gp": g6_gp,
        "g6_pred": g6_pred,
        "g6": g6,
        "gp_ratio": jnp.mean(g6_gp / g6),
        "lambda_ratio": jnp.mean(g6_pred / g6[None], axis=-1),
        "remainder": g6[None] - g6_pred,
    }
    if g6_connected is not None:
        out["remainder_minus_connected"] = out["remainder"] - jnp.asarray(g6_connected)[None]
    return out


def _mc_pipeline(model, xs, cuts, n_nets, seed, i4):
    """The prediction on Monte Carlo moments, with jackknife errors of the element-mean ratios."""
    from .._ensemble import measure  # noqa: PLC0415

    m = measure(model, xs, int(n_nets), key=jax.random.key(check_seed(seed)), orders=(2, 4, 6))
    p = xs.shape[0]
    t6 = sorted_tuples(p, 6)
    g4_gp = np.asarray(gp_correlator(model, xs, 4, full=False))
    g6_gp = np.asarray(gp_correlator(model, xs, 6, full=False))
    k_full = np.asarray(model.kernel(jnp.asarray(xs), jnp.asarray(xs)))
    w = 1.0 / np.asarray(m.moment_stderr(4, full=False)) ** 2
    i4 = np.asarray(i4)

    def ratios(g4, g6):
        lam = np.asarray(_match_quartic(g4 - g4_gp, i4, w))
        g4c = -24.0 * lam[:, None] * i4
        pred = g6_gp[None] + np.asarray(_disconnected_6pt(k_full, to_full(g4c, p, 4), t6))
        return np.concatenate([[np.mean(g6_gp / g6)], np.mean(pred / g6[None], axis=-1)]), lam

    sums = {n: np.asarray(m.block_sums[n]) for n in (4, 6)}
    counts = np.asarray(m.block_counts, float)
    full, lam = ratios(sums[4].sum(0) / m.n_nets, sums[6].sum(0) / m.n_nets)
    reps = np.stack([ratios((sums[4].sum(0) - sums[4][b]) / (m.n_nets - counts[b]),
                            (sums[6].sum(0) - sums[6][b]) / (m.n_nets - counts[b]))[0]
                     for b in range(counts.size)])
    nb = counts.size
    err = np.sqrt((nb - 1) / nb * np.sum((reps - reps.mean(0)) ** 2, 0))
    # the O(λ) correction itself, (G6_GP + O(λ))/G6 − G6_GP/G6, with its own jackknife error
    # (the two ratios share their noise, so the difference is better resolved than either)
    d_reps = reps[:, 1:] - reps[:, :1]
    d_err = np.sqrt((nb - 1) / nb * np.sum((d_reps - d_reps.mean(0)) ** 2, 0))
    return {"n_nets": int(n_nets), "gp_ratio": float(full[0]), "gp_ratio_err": float(err[0]),
            "lambda_ratio": full[1:].tolist(), "lambda_ratio_err": err[1:].tolist(),
            "correction": (full[1:] - full[0]).tolist(), "correction_err": d_err.tolist(),
            "lambda": lam.tolist()}


def six_pt_prediction(
    net: str,
    *,
    width: int | None = None,
    d_in: int = 1,
    source: str = "exact",
    n_nets: int = 100_000,
    seed: int = 0,
    cutoffs=None,
    sigma_b: float | None = None,
) -> dict:
    """Match λ(Λ) to ΔG4 and compare G6_GP + O(λ) diagrams with G6 (HMS eq. 3.37, physics.md §6).

    **Arguments:**

    - `net`: `"erf"`, `"relu"` or `"gauss"`.
    - `width`: the width N (default: Erf 5, ReLU 20, Gauss 100, physics.md §8).
    - `d_in`: input dimension 1, 2 or 3 (inputs `rgflow.hms_inputs(net, d_in)`).
    - `source`: `"exact"` (exact finite-width correlators, physics.md §4) or `"mc"` (the exact
      pipeline and, beside it, the same on Monte Carlo moments `rgflow.measure`, λ matched by
      inverse-variance weighted least squares, with jackknife errors).
    - `n_nets`: networks for `source="mc"`.
    - `seed`: PRNG seed for `source="mc"`.
    - `cutoffs`: the cutoffs (default: the 21 of physics.md §8).
    - `sigma_b`: σ_b of the network (default: the network's own default).

    **Returns:** the JSON content as a dict: `cutoffs`, `gp_ratio` (element mean of G6_GP/G6,
    repeated per cutoff), `lambda_ratio` (element mean of G6_pred/G6 per cutoff), `lambda`,
    `g4_fit_residual` (|ΔG4 − G4_pred|/|ΔG4| per cutoff), `prediction_spread` (max relative change
    of G6_pred over the cutoffs), `remainder_over_connected` (|G6 − G6_pred|/|G6_c| per cutoff)
    and `remainder_minus_connected` (|G6 − G6_pred − G6_c|/|G6_c|), all from the exact
    correlators; for `source="mc"` also `mc` (`gp_ratio`, `gp_ratio_err`, `lambda_ratio`,
    `lambda_ratio_err`, `lambda`, `n_nets`).
    """
    if net not in DEFAULT_WIDTHS:
        raise ValueError(f"`net` must be one of {tuple(DEFAULT_WIDTHS)}, got {net!r}.")
    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    width = DEFAULT_WIDTHS[net] if width is None else int(width)
    kw = {} if sigma_b is None else {"sigma_b": float(sigma_b)}
    model = make_net(net, width=width, d_in=d_in, **kw)
    xs = hms_inputs(net, d_in)
    cuts = jnp.asarray(HMS_CUTOFFS if cutoffs is None else cutoffs, dtype=jnp.float64)
    g4 = exact_moment(model, xs, 4, full=False)
    g6 = exact_moment(model, xs, 6, full=False)
    g6c = exact_connected(model, xs, 6, full=False)
    r = six_point_prediction(model, xs, cuts, g4=g4, g6=g6, g6_connected=g6c)
    dg4 = g4 - gp_correlator(model, xs, 4, full=False)
    pred = np.asarray(r["g6_pred"])
    res = {
        "net": net,
        "width": width,
        "d_in": d_in,
        "sigma_b": float(model.sigma_b),
        "source": source,
        "n_nets": int(n_nets) if source == "mc" else None,
        "n_tuples_4": int(dg4.shape[0]),
        "n_tuples_6": int(g6.shape[0]),
        "cutoffs": np.asarray(cuts).tolist(),
        "gp_ratio": [float(r["gp_ratio"])] * len(cuts),
        "lambda_ratio": np.asarray(r["lambda_ratio"]).tolist(),
        "lambda": np.asarray(r["lambda"]).tolist(),
        "g4_fit_residual": (np.linalg.norm(np.asarray(r["g4c_residual"]), axis=1)
                            / np.linalg.norm(np.asarray(dg4))).tolist(),
        "prediction_spread": float(np.max(np.abs(pred - pred[0]) / np.abs(pred[0]))),
    }
    nc = float(np.linalg.norm(np.asarray(g6c)))
    res["remainder_over_connected"] = (np.linalg.norm(np.asarray(r["remainder"]), axis=1) / nc).tolist()
    res["remainder_minus_connected"] = (
        np.linalg.norm(np.asarray(r["remainder_minus_connected"]), axis=1) / nc).tolist()
    res["sigma_w"] = float(model.sigma_w)
    res["mc_skipped"] = None
    if source == "mc" and net == "gauss":
        from ._heavy_tails import gauss_tail, tail_reason

        res["mc_skipped"] = tail_reason(gauss_tail(model, xs, int(n_nets) * width))
        res["source"] = "exact"
    elif source == "mc":
        res["mc"] = _mc_pipeline(model, xs, cuts, n_nets, seed, r["i4"])
    return res


def _label(res):
    label = f"{NET_LABELS.get(res['net'], res['net'])}, $N = {res['width']}$"
    if res["net"] == "relu" and res["sigma_b"] == 0:
        return label + ", one-dim. ($\\sigma_b = 0$, $x > 0$)"
    return label + rf", $\sigma_b = {res['sigma_b']:g}$, $\sigma_W = {res.get('sigma_w', 1.0):g}$"


def _resolution(mc) -> str:
    """Whether the Monte Carlo resolves the O(λ) correction (G6_GP + O(λ))/G6 − G6_GP/G6: its
    smallest signal-to-noise over Λ, with the value at the first cutoff."""
    cr, ce = np.asarray(mc["correction"]), np.asarray(mc["correction_err"])
    snr = float(np.min(np.abs(cr) / ce))
    verdict = "resolved" if snr >= 5 else "NOT resolved"
    return (f"O($\\lambda$) correction, MC: {cr[0]:+.4f} ± {ce[0]:.4f}\n"
            f"({snr:.1f}$\\sigma$ at worst over $\\Lambda$: {verdict}, needs $\\geq 5\\sigma$)")


def _panel(ax, res):
    c = np.asarray(res["cutoffs"])
    ax.semilogx(c, res["gp_ratio"], "--", color="C0", label=r"$G_6^{GP}/G_6$, exact")
    ax.semilogx(c, res["lambda_ratio"], "-", color="C1",
                label=r"$(G_6^{GP}+O(\lambda))/G_6$, exact")
    mc = res.get("mc")
    if mc:
        g, ge = mc["gp_ratio"], mc["gp_ratio_err"]
        ax.fill_between(c, g - ge, g + ge, color="C0", alpha=0.2, lw=0,
                        label=r"$G_6^{GP}/G_6$, Monte Carlo (±1σ)")
        lr, le = np.asarray(mc["lambda_ratio"]), np.asarray(mc["lambda_ratio_err"])
        ax.fill_between(c, lr - le, lr + le, color="C1", alpha=0.3, lw=0,
                        label=r"$(G_6^{GP}+O(\lambda))/G_6$, Monte Carlo (±1σ)")
        z = max(float(np.max(np.abs(lr - np.asarray(res["lambda_ratio"])) / le)),
                abs(g - res["gp_ratio"][0]) / ge)
        ztext = f"\nMonte Carlo vs exact: max $|z|$ = {z:.1f}" + (" (FAILED)" if z > 4 else "")
        ztext += "\n" + _resolution(mc)
    elif res.get("mc_skipped"):
        ztext = "\nexact only: Monte Carlo heavy-tailed (see caption)"
    else:
        ztext = ""
    ax.axhline(1.0, color="k", lw=0.6)
    if res["prediction_spread"] < 1e-9:
        why = ("Gauss-net vertex integrals\nconverge over all space" if res["net"] == "gauss"
               else "λ(Λ) I4(Λ) matches ΔG4\nexactly at every Λ")
        ax.text(0.5, 0.62, f"flat in Λ to rounding: {why}", transform=ax.transAxes,
                ha="center", fontsize=8)
    ax.set_xlabel(r"cutoff $\Lambda$")
    ax.set_title(f"{_label(res)}, $d_{{in}} = {res['d_in']}${ztext}", fontsize=8)


def plot(res: dict, stem) -> list:
    """G6_GP/G6 and (G6_GP + O(λ))/G6 against Λ: exact lines and Monte Carlo bands."""
    panels = [res] + ([res["secondary"]] if res.get("secondary") else [])
    fig, axes = figure(1, len(panels), width=5.0 if len(panels) == 1 else 3.9, height=3.2)
    for ax, r in zip(axes[0], panels):
        _panel(ax, r)
    axes[0][0].set_ylabel("ratio (mean over 6-tuples)")
    mc = res.get("mc")
    extra = f", Monte Carlo: {mc['n_nets']:,} networks, jackknife bands" if mc else ""
    fig.suptitle(f"6-pt prediction from λ(Λ) matched to ΔG4{extra}", fontsize=9)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncol=2,
               fontsize=8, frameon=False)
    return save_figure(fig, stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "The 6-pt prediction from λ(Λ) (HMS eq. 3.37)"
CAPTION = ("Tests HMS eq. 3.37: λ(Λ) matched to ΔG4 predicts G6 beyond the GP; the exact "
           "pipeline (quadrature correlators) beside the same pipeline on brute-force Monte "
           "Carlo moments with jackknife bands.")
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "source": choice("exact", "mc"),
          "n_nets": N_NETS, "seed": SEED, "width": optional(integer(1)),
          "relu_sigma_b": real(minimum=0.0), "hms_relu": boolean()}
HELP = {"relu_sigma_b": "σ_b of ReLU (> 0: not one-dimensional)",
        "hms_relu": "add the HMS ReLU (σ_b = 0, one-dimensional) as a secondary panel"}
# networks are independent (own seeds, own files): `rgflow reproduce` runs one task per net
SPLIT = "nets"
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "source": "mc", "n_nets": 100_000, "seed": 0,
              "width": None, "relu_sigma_b": 1.0, "hms_relu": True},
    "full": {"nets": list(NETS), "d_in": 1, "source": "mc", "n_nets": 1_000_000, "seed": 0,
             "width": None, "relu_sigma_b": 1.0, "hms_relu": True},
}
SMALL = {"nets": ["relu"], "d_in": 1, "source": "mc", "n_nets": 400, "seed": 0, "width": 3,
         "relu_sigma_b": 1.0, "hms_relu": True}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    jobs = []
    for name in config["nets"]:
        jobs.append((name, config["relu_sigma_b"] if name == "relu" else None, False))
        if name == "relu" and config["hms_relu"]:
            jobs.append((name, 0.0, True))
    for name, sb, secondary in steps(jobs, "6-pt prediction (net)", progress, unit="net"):
        r = six_pt_prediction(name, width=config["width"], d_in=config["d_in"],
                              source=config["source"], n_nets=config["n_nets"],
                              seed=config["seed"], sigma_b=sb)
        if secondary:
            out[f"six_pt_prediction_{name}"]["secondary"] = r
            if r.get("mc"):
                out[f"six_pt_prediction_{name}"]["caption"] += (
                    f" Second panel (one-dimensional HMS ReLU, σ_b = 0, N = {r['width']}):"
                    + _caption_resolution(r))
        else:
            r["caption"] = (f"{CAPTION} Parameters: σ_b = {r['sigma_b']:g}, σ_W = "
                            f"{r['sigma_w']:g}, d_in = {r['d_in']}, width N = {r['width']}"
                            + (f", {r['n_nets']:,} networks." if r.get("mc") else ".")
                            + (_caption_resolution(r) if r.get("mc") else "")
                            + (f" {r['mc_skipped']}." if r.get("mc_skipped") else ""))
            out[f"six_pt_prediction_{name}"] = r
    return out


def _caption_resolution(r) -> str:
    cr, ce = np.asarray(r["mc"]["correction"]), np.asarray(r["mc"]["correction_err"])
    snr = float(np.min(np.abs(cr) / ce))
    if snr >= 5:
        return (f" The Monte Carlo resolves the O(λ) correction at ≥ {snr:.1f}σ at every Λ "
                f"({cr[0]:+.4f} ± {ce[0]:.4f} at Λ = {r['cutoffs'][0]:g}).")
    return (f" The Monte Carlo does NOT resolve the O(λ) correction: it is {cr[0]:+.4f} ± "
            f"{ce[0]:.4f} at Λ = {r['cutoffs'][0]:g} ({snr:.1f}σ at worst over Λ, < 5σ), so "
            "the Monte Carlo bands test only that the data agree with both curves; the "
            "correction's size rests on the exact correlators alone. Resolving it at 5σ would "
            f"take ~{(5 / max(snr, 1e-3)) ** 2:.0f}× the networks.")


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for d0 in results.values():
        for d in [d0] + ([d0["secondary"]] if d0.get("secondary") else []):
            label = row_label(d["net"], d["sigma_b"])
            if d["net"] == "relu" and d["sigma_b"] == 0:
                label += " (one-dimensional)"
            value = (f"exact {d['gp_ratio'][0]:.3f} → {d['lambda_ratio'][0]:.3f} … "
                     f"{d['lambda_ratio'][-1]:.3f} (Λ-spread {d['prediction_spread']:.1e})")
            mc = d.get("mc")
            if d.get("mc_skipped"):
                value += f"; Monte Carlo: {d['mc_skipped']}"
            check = ("none: exact only" if not mc else
                     "MC vs exact |z| ≤ 4 at every Λ, and the MC O(λ) correction "
                     "(G6_GP + O(λ))/G6 − G6_GP/G6 ≥ 5× its jackknife error at every Λ")
            status = "—"
            if mc:
                lr, le = np.asarray(mc["lambda_ratio"]), np.asarray(mc["lambda_ratio_err"])
                z = np.abs(lr - np.asarray(d["lambda_ratio"])) / le
                zg = abs(mc["gp_ratio"] - d["gp_ratio"][0]) / mc["gp_ratio_err"]
                zmax = float(max(z.max(), zg))
                cr, ce = np.asarray(mc["correction"]), np.asarray(mc["correction_err"])
                snr = float(np.min(np.abs(cr) / ce))
                value += (f"; Monte Carlo {mc['gp_ratio']:.3f} ± {mc['gp_ratio_err']:.3f} → "
                          f"{lr[0]:.3f} ± {le[0]:.3f}; MC vs exact max |z| {zmax:.1f}; MC "
                          f"correction {cr[0]:+.4f} ± {ce[0]:.4f} (min over Λ: {snr:.1f}σ)")
                if zmax > 4:
                    status = f"FAILED: Monte Carlo vs exact max |z| = {zmax:.1f}"
                elif snr < 5:
                    status = (f"FAILED: the O(λ) correction is not resolved by Monte Carlo "
                              f"({snr:.1f}σ < 5σ)")
                else:
                    status = "ok"
            rows.append((f"6-pt prediction, {label} N={d['width']}: G6_GP/G6 → (G6_GP + O(λ))/G6 "
                         "at Λ = 7 … 1e5", value,
                         "closer to 1, Λ-independent where one local λ describes ΔG4", status,
                         check))
    return rows
