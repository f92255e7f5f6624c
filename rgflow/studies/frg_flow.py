"""The FRG figure: LPA fixed points and exponents against truncation order, and Gauss-net flows
(passive in k, active in σ_W) in the (ū2, ū4) plane. Logic behind `scripts/frg_flow.py`."""

from __future__ import annotations

from collections.abc import Sequence

import diffrax
import jax.numpy as jnp
import numpy as np

from .._frg import (
    LPA_NU_D3,
    LPA_OMEGA_D3,
    GridLPA,
    PolynomialLPA,
    lpa_flow,
    wilson_fisher,
    wilson_fisher_sequence,
)
from .._frg_network import dimensionless_lpa_couplings, gauss_net_couplings
from .._nets import GaussNet, hms_inputs
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import figure, save_figure


def frg_study(*, width: int = 10_000, d_in: int = 3, sigma_ws: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
              max_order: int = 10, flow_order: int = 6, k0: float = 1.0, t1: float = -4.0) -> dict:
    """Compute the exponents table and the network flows (see the module docstring).

    **Arguments:** `width`, `d_in` (field-theory dimension d = d_in; the Wilson–Fisher analysis
    needs d = 3), `sigma_ws` (active-flow parameter values), `max_order` (largest polynomial
    truncation), `flow_order` (truncation used for the network flows), `k0` (the UV scale where the
    network couplings are imposed), `t1` (= ln(k_IR/k0)).

    **Returns:** a JSON-ready dict with keys `nu`, `omega` (per truncation order, minimum
    expansion), `nu_zero`, `omega_zero` (expansion about ρ = 0), `grid`, `literature`,
    `fixed_point`, `network`.
    """
    d = float(d_in)
    out: dict = {"d": d, "width": width, "k0": k0}
    if 2 < d < 4:
        seq = wilson_fisher_sequence(d, max_order, expansion="minimum")
        out["nu"] = {str(n): fp.nu for n, fp in zip(range(2, max_order + 1), seq)}
        out["omega"] = {str(n): fp.omega for n, fp in zip(range(2, max_order + 1), seq)}
        zero = {n: wilson_fisher(PolynomialLPA(d=d, order=n)) for n in range(2, max_order + 1)}
        out["nu_zero"] = {str(n): fp.nu for n, fp in zero.items()}
        out["omega_zero"] = {str(n): fp.omega for n, fp in zero.items()}
        grid = wilson_fisher(GridLPA(d=d))
        out["grid"] = {"nu": grid.nu, "omega": grid.omega, "n_points": 64, "rho_max": 8.0}
        wf = zero[flow_order] if flow_order in zero else zero[max(zero)]
        fp = PolynomialLPA(d=d, order=len(wf.couplings)).couplings(wf.couplings)
        out["fixed_point"] = {"u2": fp["u2"], "u4": fp["u4"], "u6": fp.get("u6"),
                              "kappa_min": float(seq[-1].couplings[0])}
        if d == 3.0:
            out["literature"] = {"nu": LPA_NU_D3, "omega": LPA_OMEGA_D3,
                                 "source": "LPA, Litim regulator (Litim 2002)"}
    lpa = PolynomialLPA(d=d, order=flow_order)
    xs = hms_inputs("gauss", d_in)
    nets = []
    for s in sigma_ws:
        c = gauss_net_couplings(GaussNet(width=width, d_in=d_in, sigma_w=float(s)), xs)
        a0 = dimensionless_lpa_couplings(c["A"], d, k0, flow_order)
        sol = lpa_flow(lpa, jnp.asarray(a0), t1, n_save=120)
        ys = np.asarray(sol.couplings)
        ok = np.all(np.isfinite(ys), axis=1)
        nets.append({"sigma_w": float(s), "couplings": c,
                     "initial": {"u2": float(a0[0]), "u4": float(6 * a0[1]),
                                 "u6": float(90 * a0[2]) if flow_order >= 3 else 0.0},
                     "flow": {"t": np.asarray(sol.ts)[ok].tolist(), "u2": ys[ok, 0].tolist(),
                              "u4": (6 * ys[ok, 1]).tolist()},
                     "result": str(sol.result)})
    out["network"] = nets
    # Over-parameterisation implies simplicity, non-perturbatively: ū4 ∝ 1/N and ū6 ∝ 1/N²,
    # and below N ~ 10⁴ the canonically normalised couplings are so large that the LPA flow
    # leaves its domain at once (event), while above it the flows are regular.
    scan = []
    for n_w in (100, 1_000, 10_000, 100_000, 1_000_000):
        c = gauss_net_couplings(GaussNet(width=n_w, d_in=d_in, sigma_w=1.0), xs)
        a0 = dimensionless_lpa_couplings(c["A"], d, k0, flow_order)
        sol = lpa_flow(lpa, jnp.asarray(a0), t1, n_save=8)
        scan.append({"width": n_w, "u2": float(a0[0]), "u4": float(6 * a0[1]),
                     "u6": float(90 * a0[2]) if flow_order >= 3 else 0.0,
                     "flow_regular": bool(sol.result == diffrax.RESULTS.successful)})
    out["width_scan"] = scan
    return out


def plot_frg(res: dict, path_stem) -> list:
    """Two panels: flows in the (ū2, ū4) plane, and ν, ω against truncation order."""
    fig, axes = figure(1, 2, width=3.4, height=2.9)
    ax = axes[0][0]
    for i, net in enumerate(res["network"]):
        f = net["flow"]
        ax.plot(f["u2"], f["u4"], "-", color=f"C{i % 6}", label=fr"$\sigma_W={net['sigma_w']}$")
        ax.plot([net["initial"]["u2"]], [net["initial"]["u4"]], "o", color=f"C{i % 6}")
    ax.plot([n["initial"]["u2"] for n in res["network"]],
            [n["initial"]["u4"] for n in res["network"]], "k--", lw=0.8, label=r"active ($\sigma_W$)")
    ax.plot([0], [0], "ks", label="Gaussian FP")
    if "fixed_point" in res:
        ax.plot([res["fixed_point"]["u2"]], [res["fixed_point"]["u4"]], "k*", ms=8, label="Wilson–Fisher")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel(r"$\bar u_2$")
    ax.set_ylabel(r"$\bar u_4$")
    ax.set_title(f"Gauss-net N={res['width']}, LPA flows (d={res['d']:g})")
    ax.legend(fontsize=6)
    ax = axes[0][1]
    if "nu" in res:
        orders = [int(n) for n in res["nu"]]
        ax.plot(orders, list(res["nu"].values()), "o-", label=r"$\nu$ (about minimum)")
        ax.plot(orders, list(res["omega"].values()), "s-", label=r"$\omega$ (about minimum)")
        ax.plot(orders, list(res["nu_zero"].values()), "o:", alpha=0.6, label=r"$\nu$ (about 0)")
        ax.axhline(res["grid"]["nu"], color="k", lw=0.8, ls="--", label="grid (64 pts)")
        ax.axhline(res["grid"]["omega"], color="k", lw=0.8, ls="--")
        ax.set_ylim(0.4, 1.2)
        ax.set_xlabel("truncation order $N$")
        ax.set_title("Wilson–Fisher exponents, LPA")
        ax.legend(fontsize=6)
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Non-perturbative LPA flow (beyond the paper)"
SCHEMA = {"width": integer(1), "d_in": choice(3), "sigma_ws": float_list(positive=True),
          "max_order": integer(3)}
DEFAULTS = {
    "quick": {"width": 10_000, "d_in": 3, "sigma_ws": [0.5, 1.0, 1.5, 2.0], "max_order": 8},
    "full": {"width": 10_000, "d_in": 3, "sigma_ws": [0.5, 1.0, 1.5, 2.0], "max_order": 12},
}


def run(config: dict, *, progress: bool = False) -> dict:
    return {"frg_flow": frg_study(width=config["width"], d_in=config["d_in"],
                                  sigma_ws=config["sigma_ws"], max_order=config["max_order"])}


def plot(result: dict, stem) -> list:
    return plot_frg(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    data = results["frg_flow"]
    if "nu" not in data:
        return []
    top = str(max(int(k) for k in data["nu"]))
    lit = data.get("literature", {})
    fmt = lambda x, d: "n/a" if x is None else f"{x:.{d}f}"  # noqa: E731
    return [
        (f"LPA Wilson–Fisher ν, minimum expansion order {top}", fmt(data["nu"][top], 6),
         fmt(lit.get("nu"), 6)),
        (f"LPA Wilson–Fisher ω, minimum expansion order {top}", fmt(data["omega"][top], 6),
         fmt(lit.get("omega"), 6)),
        ("LPA ν, ω on a 64-point Chebyshev grid",
         f"{data['grid']['nu']:.10f}, {data['grid']['omega']:.10f}",
         f"{fmt(lit.get('nu'), 10)}, {fmt(lit.get('omega'), 10)}"),
    ]
