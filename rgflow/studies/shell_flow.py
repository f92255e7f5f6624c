"""Momentum-shell RG of the scalar φ⁴(+φ⁶) theory: λ̃(ℓ) in d = 1..4, Gaussian eigenvalues against
power counting, and flows around Wilson–Fisher in d = 3 (physics.md §13). Logic behind
`scripts/shell_flow.py`.

The flow is the sharp-cutoff one-loop (Wegner–Houghton LPA) flow of `rgflow._shell` in the
rescaled couplings r = m²/Λ², u = λΛ^{d−4} (u₆ = λ₆Λ^{2d−6} for the eigenvalues), RG time
ℓ = ln(Λ₀/Λ) towards the IR. λ̃(ℓ) is shown as K_d u (K_d = S_d/(2π)^d, the loop factor) on
trajectories on the critical surface through K_d u = `u0` (`critical_trajectory`: traced towards
the UV, where the relevant r contracts onto the surface, then re-timed): the relevant r is tuned
away, so the curves show the flow of the quartic itself. The Wilson–Fisher comparison with the library's
Litim-regulator LPA is between two *schemes* (sharp vs Litim cutoff) in the same polynomial
truncation about φ = 0: only the Gaussian eigenvalues must agree; ν is reported for both.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .._frg import LPA_NU_D3, PolynomialLPA, wilson_fisher
from .._shell import (
    SharpLPA,
    loop_factor,
    one_loop_beta,
    power_counting,
    shell_flow,
    shell_flow_rescaled,
    shell_one_loop,
    wilson_fisher_shell,
)
from ._config import choice, integer, real
from ._plotting import figure, save_figure
from ._progress import Bar

TITLE = "Momentum-shell RG: λ̃(ℓ) in d = 1..4, Gaussian eigenvalues, Wilson–Fisher (beyond the paper)"
SCHEMA = {"u0": real(positive=True), "ell_max": real(positive=True), "max_order": integer(2),
          "n_save": integer(8), "litim": choice(True, False)}
HELP = {"u0": "initial K_d u of the λ̃(ℓ) trajectories",
        "ell_max": "largest RG time ℓ = ln(Λ0/Λ)",
        "max_order": "largest polynomial truncation order (φ^{2N}) of the Wilson–Fisher table",
        "n_save": "saved points per trajectory",
        "litim": "also solve the library's Litim LPA at the same orders (the comparison column)"}
DEFAULTS = {"quick": {"u0": 0.02, "ell_max": 10.0, "max_order": 5, "n_save": 160, "litim": True},
            "full": {"u0": 0.02, "ell_max": 10.0, "max_order": 8, "n_save": 400, "litim": True}}
# no SMALL: even a small run compiles ~10 programs (~30 s CPU on a loaded 2-core machine), so the
# figure is rendered from the quick profile in the slow rendering test
DIRECTION = ("ℓ = ln(Λ0/Λ) increases towards the IR (the shell Λ0 e^{-ℓ} < |p| <= Λ0 integrated "
             "out); y > 0: the coupling grows towards the IR (relevant).")


def critical_trajectory(d: float, u0: float, ell_max: float, n_save: int) -> dict:
    """The critical trajectory (r(ℓ), K_d u(ℓ)) with K_d u(0) = `u0`, ℓ ∈ [0, `ell_max`].

    Traced towards the UV (ℓ decreasing), where the relevant r contracts onto the critical
    surface: for d < 4 from Wilson–Fisher (order-2 closed form) displaced by 1e-8 along its
    irrelevant eigenvector towards the Gaussian point; for d = 4 from a point deep in the IR
    (K u = u0/(1 + 1.5 u0 (ell_max + 10)), r = 0), which lands on the surface within a few e-folds.
    The trajectory is then re-timed so that K u = u0 at ℓ = 0.
    """
    k = loop_factor(d)
    if d < 4:
        eps = 4 - d
        rs = -eps / (6 + eps)
        fp = np.array([rs, 2 * eps * (1 + rs) ** 2 / (3 * k)])
        jac = np.asarray(jax.jacfwd(lambda g: one_loop_beta(g, d))(jnp.asarray(fp)))
        val, vec = np.linalg.eig(jac)
        v = np.real(vec[:, np.argmin(val.real)])
        v = v if v[1] < 0 else -v
        start, span = fp + 1e-8 * fp[1] * v / np.linalg.norm(v), -40.0
    else:
        ke = u0 / (1 + 1.5 * u0 * (ell_max + 10))
        start, span = np.array([0.0, ke / k]), -(ell_max + 20.0)
    grid = np.linspace(0.0, ell_max, n_save)
    curves = []
    for rtol in (1e-10, 1e-13):
        fl = shell_flow_rescaled(start, span, d=d, n_save=8000, rtol=rtol, atol=rtol * 1e-2)
        ell, ku, r = fl.ell, k * fl.couplings[:, 1], fl.couplings[:, 0]
        ok = np.isfinite(ku)
        ell, ku, r = ell[ok], ku[ok], r[ok]
        idx = np.argsort(ku)  # K u is monotone along the critical trajectory
        if not (ku[idx[0]] < u0 < ku[idx[-1]]):
            raise ValueError(f"the critical trajectory in d = {d} does not pass K_d u = {u0}.")
        fwd = ell - float(np.interp(u0, ku[idx], ell[idx]))  # forward RG time, K u(0) = u0
        order = np.argsort(fwd)
        # beyond the traced start the trajectory sits at Wilson–Fisher (within the 1e-8
        # displacement): np.interp holds the last value there
        curves.append((np.interp(grid, fwd[order], ku[order]),
                       np.interp(grid, fwd[order], r[order]), fl))
    (ku, r, fl), (ku2, r2, _) = curves
    # accuracy of the re-timed curve (a uniform shift in ℓ is not an error: ℓ = 0 is fixed by u0;
    # the 1e-4 bound is set by linear interpolation on the saved grid, ~1e-5)
    err = float(max(np.max(np.abs(ku - ku2) / np.abs(ku2)), np.max(np.abs(r - r2)) / 1.0))
    return {"ell": grid, "K_u": ku, "r": r, "error_estimate": err, "accurate": err < 1e-4,
            "succeeded": fl.succeeded,
            "max_loop_parameter": fl.max_loop_parameter, "start": start.tolist(), "span": span}


def shell_study(*, u0: float = 0.02, ell_max: float = 10.0, max_order: int = 5,
                n_save: int = 120, litim: bool = True, progress=False) -> dict:
    """All numbers of the figure (module docstring). **Returns:** a JSON-ready dict."""
    bar = Bar(4, "shell RG: trajectories, eigenvalues, Wilson–Fisher, dimensionful step", progress)
    out: dict = {"direction": DIRECTION, "u0": u0, "ell_max": ell_max,
                 "convention": "S = ∫ ½(∂φ)² + ½m²φ² + λφ⁴/4! + λ₆φ⁶/6!, sharp cutoff |p| <= Λ; "
                               "r = m²/Λ², u = λΛ^(d−4), u₆ = λ₆Λ^(2d−6)",
                 "truncation": "trajectories: (r, u); eigenvalues: (r, u, u₆)"}
    # (a, b) λ̃(ℓ) and r(ℓ) on the critical surface, d = 1..4
    traj = {}
    for d in (1.0, 2.0, 3.0, 4.0):
        k = loop_factor(d)
        ct = critical_trajectory(d, u0, ell_max, n_save)
        entry = {"K_d": k, "ell": ct["ell"].tolist(), "K_u": ct["K_u"].tolist(),
                 "r": ct["r"].tolist(), "succeeded": ct["succeeded"], "accurate": ct["accurate"],
                 "error_estimate": ct["error_estimate"],
                 "max_loop_parameter": ct["max_loop_parameter"], "y_u": 4 - d,
                 "traced_from": ct["start"], "traced_span": ct["span"]}
        if d < 4:
            eps = 4 - d
            rs = -eps / (6 + eps)
            entry["fixed_point_order2"] = {"r": rs, "K_u": 2 * eps * (1 + rs) ** 2 / 3}
        else:
            entry["one_loop_log"] = (u0 / (1 + 1.5 * u0 * ct["ell"])).tolist()
        traj[str(int(d))] = entry
    out["trajectories"] = traj
    bar.update()
    # (c) Gaussian eigenvalues against power counting (order-3 truncation, hand equations)
    ds = np.linspace(1.0, 4.0, 13)
    eig, dev = [], 0.0
    for d in ds:
        jac = np.asarray(jax.jacfwd(lambda g, d=float(d): one_loop_beta(g, d))(jnp.zeros(3)))
        y = np.sort(np.linalg.eigvals(jac).real)[::-1]
        eig.append(y.tolist())
        dev = max(dev, float(np.abs(np.sort(y) - np.sort(power_counting(float(d)))).max()))
    lpa4 = {str(int(d)): np.sort(np.linalg.eigvals(np.asarray(
        SharpLPA(d=float(d), order=4).stability_matrix(np.zeros(4)))).real)[::-1].tolist()
        for d in (1, 2, 3, 4)}
    out["gaussian"] = {"d": ds.tolist(), "eigenvalues": eig, "max_deviation": dev,
                       "power_counting": [power_counting(float(d)).tolist() for d in ds],
                       "series_order4": lpa4}
    bar.update()
    # (d) Wilson–Fisher in d = 3: sharp (this module) and Litim (rgflow._frg), same truncations
    wf = {"sharp": {}, "litim": {}}
    for n in range(2, max_order + 1):
        try:
            fp = wilson_fisher_shell(3.0, n)
            wf["sharp"][str(n)] = {"couplings": fp.couplings.tolist(), "nu": fp.nu,
                                   "omega": fp.omega, "residual": fp.residual,
                                   "eigenvalues": np.real(fp.eigenvalues).tolist()}
        except ValueError as e:
            wf["sharp"][str(n)] = {"error": str(e)}
        if not litim:
            wf["litim"][str(n)] = {"error": "not computed (litim = false)"}
            continue
        try:
            fl = wilson_fisher(PolynomialLPA(d=3.0, order=n, expansion="zero"))
            wf["litim"][str(n)] = {"nu": fl.nu, "omega": fl.omega, "residual": fl.residual}
        except ValueError as e:
            wf["litim"][str(n)] = {"error": str(e)}
    wf["nu_order2_closed_form"] = 3 / (1 + math.sqrt(22))
    wf["litim_converged_nu"] = LPA_NU_D3
    wf["compared"] = ("sharp-cutoff (Wegner–Houghton) LPA vs Litim-regulator LPA, both polynomial "
                      "in φ² about φ = 0 to the same order N: different schemes, only the "
                      "Gaussian eigenvalues are scheme independent; ν differs at every N")
    out["wilson_fisher"] = wf
    k3 = loop_factor(3.0)
    fp2 = wf["sharp"]["2"]["couplings"]
    t3 = traj["3"]
    r_c = float(np.interp(0.05, t3["K_u"], t3["r"]))
    flows = []
    for dr in (-1e-3, -1e-5, -1e-7, 1e-7, 1e-5, 1e-3):
        fl = shell_flow_rescaled([r_c + dr, 0.05 / k3], ell_max, d=3.0, n_save=n_save)
        ok = np.isfinite(fl.couplings[:, 0])
        flows.append({"r0": r_c + dr, "r": fl.couplings[ok, 0].tolist(),
                      "K_u": (k3 * fl.couplings[ok, 1]).tolist(), "succeeded": fl.succeeded})
    out["d3_flows"] = {"K_u0": 0.05, "r_critical": r_c, "flows": flows,
                       "fixed_point": {"r": fp2[0], "K_u": k3 * fp2[1]}}
    bar.update()
    # the dimensionful step issue 24's network test needs: d = 1, m = 1, Λ = 10 → Λ' = 3
    step = {"d": 1, "m2": 1.0, "cutoff": 10.0, "new_cutoff": 3.0, "per_lambda": {}}
    for lam in (0.1, 1.0):
        fl = shell_flow([1.0, lam], d=1, cutoff=10.0, new_cutoff=3.0)
        direct = shell_one_loop([1.0, lam], d=1, cutoff=10.0, new_cutoff=3.0)
        step["per_lambda"][str(lam)] = {
            "mass2_flowed": float(fl.final[0]), "lambda_flowed": float(fl.final[1]),
            "mass2_one_loop_direct": float(direct[0]), "lambda_one_loop_direct": float(direct[1]),
            "error_estimate": fl.error_estimate, "max_loop_parameter": fl.max_loop_parameter,
            "perturbative": fl.perturbative}
    out["dimensionful_step"] = step
    bar.update()
    out["caption"] = (
        "Sharp-cutoff one-loop (Wegner–Houghton LPA) shell flow of φ⁴ theory, ℓ = ln(Λ0/Λ) towards "
        f"the IR. (a) λ̃ = K_d λΛ^(d−4) from K_d u = {u0:g} on the critical surface: growth "
        "e^((4−d)ℓ) (dashed) up to the Wilson–Fisher value (dotted, (r,u) truncation) for d < 4, "
        "logarithmic decrease (marginally irrelevant, dotted: K_d u0/(1 + 1.5 K_d u0 ℓ)) in d = 4; "
        "(b) r = m²/Λ² on the same flows; (c) eigenvalues of the linearised flow at the Gaussian "
        f"point (markers) vs power counting 2, 4−d, 6−2d (lines), max deviation {dev:.1e}; "
        "(d) d = 3 flows near the critical surface in the (r, K_d u) plane, around Wilson–Fisher.")
    return out


def plot_shell(res: dict, stem) -> list:
    fig, axes = figure(2, 2, width=3.5, height=2.9)
    ax = axes[0][0]
    for i, (d, t) in enumerate(res["trajectories"].items()):
        ell = np.asarray(t["ell"])
        ax.plot(ell, t["K_u"], "-", color=f"C{i}", label=f"$d={d}$")
        if int(d) < 4:
            ax.plot(ell, res["u0"] * np.exp((4 - int(d)) * ell), "--", color=f"C{i}", lw=0.7)
            ax.axhline(t["fixed_point_order2"]["K_u"], color=f"C{i}", ls=":", lw=0.8)
        else:
            ax.plot(ell, t["one_loop_log"], ":", color="k", lw=0.9)
    ax.set_yscale("log")
    ax.set_ylim(res["u0"] * 0.5, 3.0)
    ax.set_xlabel(r"$\ell = \ln(\Lambda_0/\Lambda)$ (towards the IR)")
    ax.set_ylabel(r"$K_d\,\tilde\lambda = K_d\,\lambda\Lambda^{d-4}$")
    ax.set_title("(a) quartic on the critical surface", fontsize=8)
    ax.legend(fontsize=8, loc="center right")
    ax = axes[0][1]
    for i, (d, t) in enumerate(res["trajectories"].items()):
        ax.plot(t["ell"], t["r"], "-", color=f"C{i}", label=f"$d={d}$")
        if int(d) < 4:
            ax.axhline(t["fixed_point_order2"]["r"], color=f"C{i}", ls=":", lw=0.8)
    ax.set_xlabel(r"$\ell = \ln(\Lambda_0/\Lambda)$ (towards the IR)")
    ax.set_ylabel(r"$r = m^2/\Lambda^2$")
    ax.set_title("(b) mass on the same flows (colours as (a); dotted: fixed points)", fontsize=8)
    ax = axes[1][0]
    g = res["gaussian"]
    ds = np.asarray(g["d"])
    eig = np.asarray(g["eigenvalues"])
    pc = np.asarray(g["power_counting"])
    names = [r"$y_r = 2$", r"$y_u = 4-d$", r"$y_6 = 6-2d$"]
    for j in range(3):
        ax.plot(ds, pc[:, j], "-", color=f"C{j}", lw=0.9, label=names[j])
    ax.plot(np.repeat(ds, 3), eig.ravel(), "ko", ms=3, mfc="none", label="linearised flow")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("dimension $d$")
    ax.set_ylabel("Gaussian eigenvalue $y$")
    dev = g["max_deviation"]
    ax.set_title("(c) max |y − power counting| " + (f"= {dev:.0e}" if dev > 0 else "= 0 (exact)"),
                 fontsize=8)
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1][1]
    fl = res["d3_flows"]
    for f in fl["flows"]:
        ax.plot(f["r"], f["K_u"], "-", color="C0", lw=0.8)
        if len(f["r"]) > 10:
            i = len(f["r"]) // 3
            ax.annotate("", xy=(f["r"][i + 1], f["K_u"][i + 1]), xytext=(f["r"][i], f["K_u"][i]),
                        arrowprops={"arrowstyle": "->", "color": "C0", "lw": 0.8})
    t3 = res["trajectories"]["3"]
    ax.plot(t3["r"], t3["K_u"], "-", color="C1", lw=1.5, label="critical surface")
    fp = fl["fixed_point"]
    ax.plot([0], [0], "ks", ms=5, label="Gaussian")
    ax.plot([fp["r"]], [fp["K_u"]], "r*", ms=9, label="Wilson–Fisher")
    wf = res["wilson_fisher"]
    nus = ", ".join(f"{v['nu']:.3f}" for n, v in wf["sharp"].items() if "nu" in v)
    nul = ", ".join(f"{v['nu']:.3f}" for n, v in wf["litim"].items() if "nu" in v)
    ax.set_xlim(-0.45, 0.25)
    ax.set_ylim(0, 1.25)
    ax.set_xlabel(r"$r = m^2/\Lambda^2$")
    ax.set_ylabel(r"$K_3\,\tilde\lambda$")
    ax.set_title(r"(d) $d = 3$, $(r, \tilde\lambda)$ truncation; starts $r_0 - r_c$ = "
                 r"$\pm 10^{-7}, \pm 10^{-5}, \pm 10^{-3}$", fontsize=8)
    ax.text(0.02, 0.97, f"ν at truncation order 2…5 (φ⁴…φ¹⁰):\nsharp: {nus}"
            f"\nLitim LPA: {nul}", transform=ax.transAxes, fontsize=8, va="top")
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.78))
    return save_figure(fig, stem)


def run(config: dict, *, progress: bool = False) -> dict:
    return {"shell_flow": shell_study(u0=config["u0"], ell_max=config["ell_max"],
                                      max_order=config["max_order"], n_save=config["n_save"],
                                      litim=config["litim"], progress=progress)}


def plot(result: dict, stem) -> list:
    return plot_shell(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    r = results["shell_flow"]
    dev = r["gaussian"]["max_deviation"]
    rows = [("Gaussian eigenvalues of the shell flow, max |y − (2, 4−d, 6−2d)|, d ∈ [1, 4]",
             f"{dev:.1e}", "< 1e-6", "ok" if dev < 1e-6 else f"FAILED: {dev:.1e}")]
    wf = r["wilson_fisher"]
    s2 = wf["sharp"]["2"]
    if "nu" in s2:
        gap = abs(s2["nu"] - wf["nu_order2_closed_form"])
        rows.append(("ν, sharp-cutoff (r, u) truncation, d = 3", f"{s2['nu']:.6f}",
                     f"3/(1+√22) = {wf['nu_order2_closed_form']:.6f}",
                     "ok" if gap < 1e-9 else f"FAILED: off by {gap:.1e}"))
    for n in wf["sharp"]:
        s, li = wf["sharp"][n], wf["litim"][n]
        rows.append((f"ν at polynomial order {n} (φ^{2 * int(n)}), sharp vs Litim LPA",
                     f"{s.get('nu', float('nan')):.4f} vs {li.get('nu', float('nan')):.4f}",
                     "scheme dependent (Litim converged 0.6496)"))
    bad = [d for d, t in r["trajectories"].items() if not (t["succeeded"] and t["accurate"])]
    rows.append(("critical trajectories on their accuracy check (rtol 1e-10 vs 1e-13, re-timed, < 1e-4)",
                 "all" if not bad else f"not d = {bad}", "all",
                 "ok" if not bad else f"FAILED: d = {bad}"))
    step = r["dimensionful_step"]["per_lambda"]["1.0"]
    rows.append(("d = 1, m = 1, Λ = 10 → 3, λ = 1: flowed m² (one-loop direct)",
                 f"{step['mass2_flowed']:.5f} ({step['mass2_one_loop_direct']:.5f})",
                 "m² + λ(atan 10 − atan 3)/(2π) = 1.03535"))
    return rows
