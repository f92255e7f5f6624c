"""The free-theory check of HMS (physics.md §5, §8 item 1): how far the measured n-point
functions of finite-width networks sit from the GP (free-theory) prediction, against width.

    m_n(N) = mean over sorted tuples T of |G_n,MC(T) − G_n,GP(T)| / |G_n,GP(T)|
    background_n(N) = mean over T of stderr(G_n,MC(T)) / |G_n,GP(T)|

m_2 stays at the background (G2 = K exactly, physics.md §4); m_4 and m_6 fall like 1/N until
they reach it. Every Monte Carlo m_n carries its delete-one-block jackknife error; the noise-free
m_n from the exact finite-width correlators (`rgflow.exact_moment`, quadrature: an independent
route) is drawn beside it, and the summary flags any width where the two differ by more than 4σ
(widths where m_n is within 3× its background are noise-dominated and not compared).

ReLU uses σ_b = `relu_sigma_b` (> 0: a genuinely many-dimensional theory); with `hms_relu` the
HMS configuration (σ_b = 0, x > 0, which is one-dimensional: f(x) = x·F) is added as a secondary
panel. Slopes are power-law fits over the resolved widths with χ²/dof and a 95 % CI; a slope
counts only from ≥ 3 resolved widths whose fit has χ² p-value ≥ 1e-3.

Gauss-net is exact only: its E[f⁶] is carried by ~6σ pre-activations beyond the range of any
feasible ensemble, so plain Monte Carlo means come out low (m_4, m_6 far below the exact values)
with jackknife errors that are not finite in practice; the panel shows the exact m_n and the
JSON the measured fraction of E[φ⁶] beyond the sampled range (`mc_skipped`,
`rgflow.studies._heavy_tails`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._ensemble import measure
from .._exact import exact_moment, gp_correlator
from .._fit import power_law
from .._nets import hms_inputs, make_net
from .._validate import check_seed
from ._config import N_NETS, NETS, SEED, boolean, choice, choice_list, int_list, optional, real
from ._plotting import NET_LABELS, figure, log_axes, pm, row_label, save_figure
from ._progress import Bar

HMS_WIDTHS = (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000)


def loglog_slope(widths, values, mask=None):
    """Least-squares slope of log(values) against log(widths) (None if < 2 usable points)."""
    widths, values = np.asarray(widths, float), np.asarray(values, float)
    ok = (values > 0) & np.isfinite(values)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(widths[ok]), np.log(values[ok]), 1)[0])


def _panel_net(panel: str, width: int, d_in: int, relu_sigma_b: float):
    """The network of one panel: "relu" uses σ_b = relu_sigma_b, "relu_hms" the HMS σ_b = 0."""
    if panel == "relu":
        return make_net("relu", width=width, d_in=d_in, sigma_b=relu_sigma_b)
    if panel == "relu_hms":
        return make_net("relu", width=width, d_in=d_in, sigma_b=0.0)
    return make_net(panel, width=width, d_in=d_in)


PANEL_LABELS = {"erf": "Erf-net", "gauss": "Gauss-net", "relu": "ReLU-net",
                "relu_hms": "ReLU-net, one-dim. " + r"($\sigma_b = 0$, $x > 0$)"}

ORDERS = (2, 4, 6)
RESOLVED = 3.0  # m_n counts as resolved where it exceeds RESOLVED × background


def free_theory(
    nets: Sequence[str] = ("erf", "relu", "gauss"),
    *,
    d_in: int = 1,
    widths: Sequence[int] = HMS_WIDTHS,
    n_nets: int = 100_000,
    seed: int = 0,
    relu_sigma_b: float = 1.0,
    hms_relu: bool = False,
    rao_blackwell: Sequence[str] = (),
    rao_blackwell_nets: int | None = None,
    progress: bool = False,
) -> dict:
    """Measure m_n(N) for n = 2, 4, 6 (Monte Carlo with jackknife errors, and exact).

    **Arguments:**

    - `nets`: network names among "erf", "relu", "gauss".
    - `d_in`: input dimension (HMS input sets, physics.md §5).
    - `widths`: the widths N.
    - `n_nets`: networks per width.
    - `seed`: seed of `jax.random.key`; width N of panel i uses `fold_in(fold_in(key, i), N)`.
    - `relu_sigma_b`: σ_b of the ReLU panel.
    - `hms_relu`: add the HMS ReLU (σ_b = 0) as a secondary panel `"relu_hms"`.
    - `rao_blackwell`: panels measured with the Rao–Blackwellised estimator
      (`rgflow.measure_conditional`: the Gaussian readout integrated out, unbiased G4_c, G6_c,
      still an independent run of `n_nets` networks per width): G4 − G4_GP = G4_c and
      G6 − G6_GP = Σ_15 K G4_c + G6_c (physics.md §4), m_2 not measured (G2 = K exactly).
      Erf-net needs it: its plain-Monte-Carlo m_4, m_6 sit at the noise floor at 20,000
      networks.
    - `rao_blackwell_nets`: networks per width of the Rao–Blackwellised panels (default
      `n_nets`; each costs ~4× a plain network).

    **Returns:** a JSON-ready dict: per panel the `sigma_b`, per order `signal`, `signal_err`,
    `background`, `exact`, `z` (MC − exact in units of the error, None where unresolved),
    fitted log–log `slopes` / `slope_errs` (MC, resolved widths) and `exact_slopes` (same widths),
    `max_abs_z`, and `m2_consistent_with_background`.
    """
    key = jax.random.key(check_seed(seed))
    panels = list(nets) + (["relu_hms"] if hms_relu and "relu_hms" not in nets else [])
    out = {"d_in": d_in, "n_nets": n_nets, "seed": seed, "widths": [int(w) for w in widths],
           "relu_sigma_b": float(relu_sigma_b), "nets": {}}
    jobs = [(i, name, int(w)) for i, name in enumerate(panels) for w in widths]
    bar = Bar(len(jobs), "free theory (net, N)", progress, unit="width")
    for i, name in enumerate(panels):
        xs = hms_inputs("relu" if name == "relu_hms" else name, d_in)
        base = _panel_net(name, 1, d_in, relu_sigma_b)
        gp = {n: np.asarray(gp_correlator(base, xs, n, full=False)) for n in ORDERS}
        res = {n: {"signal": [], "signal_err": [], "background": [], "exact": [], "z": []}
               for n in ORDERS}

        def m_n(moments, gp=gp):
            return jnp.stack([jnp.mean(jnp.abs(moments[n] - gp[n]) / jnp.abs(gp[n]), axis=-1)
                              for n in ORDERS], axis=-1)

        skipped = None
        if name == "gauss":
            from ._heavy_tails import gauss_tail, tail_reason

            skipped = tail_reason(gauss_tail(base, xs, int(n_nets) * max(int(w) for w in widths)))
        for w in widths:
            net = _panel_net(name, int(w), d_in, relu_sigma_b)
            if skipped:  # exact only (module docstring)
                for n in ORDERS:
                    ex = np.asarray(exact_moment(net, xs, n, full=False))
                    r = res[n]
                    for k in ("signal", "signal_err", "background", "z"):
                        r[k].append(None)
                    r["exact"].append(float(np.mean(np.abs(ex - gp[n]) / np.abs(gp[n]))))
                bar.update()
                continue
            wkey = jax.random.fold_in(jax.random.fold_in(key, i), w)
            if name in rao_blackwell:
                _rb_width(res, net, xs, rao_blackwell_nets or n_nets, wkey, gp)
                bar.update()
                continue
            m = measure(net, xs, n_nets, key=wkey)
            sig = np.asarray(m_n({n: m.moment(n, full=False) for n in ORDERS}))
            _, err = m.jackknife(m_n)
            err = np.asarray(err)
            for j, n in enumerate(ORDERS):
                se = np.asarray(m.moment_stderr(n, full=False))
                ex = np.asarray(exact_moment(net, xs, n, full=False))
                bg = float(np.mean(se / np.abs(gp[n])))
                exv = float(np.mean(np.abs(ex - gp[n]) / np.abs(gp[n])))
                r = res[n]
                r["signal"].append(float(sig[j]))
                r["signal_err"].append(float(err[j]))
                r["background"].append(bg)
                r["exact"].append(exv)
                resolved = sig[j] > RESOLVED * bg and err[j] > 0
                r["z"].append(float((sig[j] - exv) / err[j]) if resolved else None)
            bar.update()
        slopes, slope_errs, exact_slopes, slope_fit = {}, {}, {}, {}
        for n in ORDERS:
            r = res[n]
            ok = np.asarray([z is not None for z in r["z"]])
            wv = np.asarray(widths, float)
            if skipped or (name in rao_blackwell and n == 2):
                slopes[str(n)] = slope_errs[str(n)] = None
                exact_slopes[str(n)] = loglog_slope(wv, np.asarray(r["exact"]))
                slope_fit[str(n)] = None
                continue
            pl = power_law(wv[ok], np.asarray(r["signal"], float)[ok],
                           np.asarray(r["signal_err"], float)[ok])
            slopes[str(n)], slope_errs[str(n)] = pl["exponent"], pl["exponent_err"]
            slope_fit[str(n)] = {"chi2_dof": pl["chi2_dof"], "ci95": pl["ci95"],
                                 "n_used": pl["n_used"]}
            exact_slopes[str(n)] = loglog_slope(wv[ok], np.asarray(r["exact"])[ok])
        zs = [abs(z) for n in ORDERS for z in res[n]["z"] if z is not None and n > 2]
        out["nets"][name] = {
            "sigma_b": float(base.sigma_b),
            "sigma_w": float(base.sigma_w),
            "orders": {str(n): res[n] for n in ORDERS},
            "slopes": slopes,
            "slope_errs": slope_errs,
            "slope_fit": slope_fit,
            "exact_slopes": exact_slopes,
            "max_abs_z": float(max(zs)) if zs else None,
            "mc_skipped": skipped,
            "rao_blackwell": name in rao_blackwell,
            "n_nets": int(rao_blackwell_nets or n_nets) if name in rao_blackwell else int(n_nets),
            "m2_consistent_with_background": None if skipped or name in rao_blackwell else bool(np.all(
                np.asarray(res[2]["signal"]) < 4 * np.asarray(res[2]["background"]))),
        }
    bar.close()
    # Headline slopes: averaged over panels where resolvable.
    out["slopes"] = {
        n: _mean_or_none([v["slopes"][n] for v in out["nets"].values()]) for n in ("2", "4", "6")
    }
    return out


def _rb_width(res, net, xs, n_nets, key, gp) -> None:
    """One width of a Rao–Blackwellised panel: m_4, m_6 with delete-one-block jackknife errors
    and noise background from `rgflow.measure_conditional` (`free_theory`, `rao_blackwell`)."""
    from .._variance import measure_conditional
    from .connected_six_pt import _conditional_reps
    from .width_scaling import disconnected_six

    est = measure_conditional(net, xs, int(n_nets), key=key)
    p = xs.shape[0]
    k_full = np.asarray(net.kernel(xs, xs))
    g4, g4r = _conditional_reps(est, 4)
    g6, g6r = _conditional_reps(est, 6)
    dev = {4: (g4, g4r),
           6: (disconnected_six(k_full, g4, p) + g6,
               np.stack([disconnected_six(k_full, a, p) for a in g4r]) + g6r)}
    for n in ORDERS:
        r = res[n]
        ex = np.asarray(exact_moment(net, xs, n, full=False))
        exv = float(np.mean(np.abs(ex - gp[n]) / np.abs(gp[n])))
        r["exact"].append(exv)
        if n == 2:
            for k in ("signal", "signal_err", "background", "z"):
                r[k].append(None)
            continue
        val, reps = dev[n]
        b = reps.shape[0]
        se = np.sqrt((b - 1) / b * np.sum((reps - reps.mean(0)) ** 2, 0))
        sig = float(np.mean(np.abs(val) / np.abs(gp[n])))
        sr = np.mean(np.abs(reps) / np.abs(gp[n]), axis=1)
        err = float(np.sqrt((b - 1) / b * np.sum((sr - sr.mean()) ** 2)))
        bg = float(np.mean(se / np.abs(gp[n])))
        r["signal"].append(sig)
        r["signal_err"].append(err)
        r["background"].append(bg)
        resolved = sig > RESOLVED * bg and err > 0
        r["z"].append(float((sig - exv) / err) if resolved else None)


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


COLOURS = {"2": "C0", "4": "C1", "6": "C3"}


def plot_free_theory(results: dict, path_stem) -> list:
    """log m_n against log N, one panel per network: Monte Carlo with jackknife error bars, its
    background (dotted) and the exact finite-width m_n (dashed); legend below the panels."""
    names = list(results["nets"])
    seen = set()

    def _first(label):  # each legend entry once, from the first panel that draws it
        if label in seen:
            return None
        seen.add(label)
        return label

    fig, axes = figure(1, len(names), width=2.9, height=2.8)
    widths = np.asarray(results["widths"], float)
    for ax, name in zip(axes[0], names, strict=False):
        data = results["nets"][name]
        for n in ("2", "4", "6"):
            c, d = COLOURS[n], data["orders"][n]
            exact = np.asarray(d["exact"])
            if n != "2" and np.any(exact > 0):
                ax.plot(widths, np.where(exact > 0, exact, np.nan), "--", color=c, alpha=0.8,
                        label=_first(f"$\\delta_{n}$ exact"))
            if data.get("mc_skipped") or d["signal"][0] is None:
                continue
            sig, err = np.asarray(d["signal"], float), np.asarray(d["signal_err"], float)
            res = np.asarray([z is not None for z in d["z"]])
            # resolved (m_n > 3× background): filled, symmetric bars; unresolved: open, upper
            # bar only (consistent with the noise floor; a bar below zero has no log image)
            ax.errorbar(widths[res], sig[res], yerr=err[res], fmt="o", ms=3.5, color=c,
                        capsize=2, label=_first(f"$\\delta_{n}$ Monte Carlo"))
            ax.errorbar(widths[~res], sig[~res], yerr=[np.zeros((~res).sum()), err[~res]],
                        fmt="o", ms=3.5, mfc="none", color=c, capsize=2, alpha=0.7,
                        label=_first(f"$\\delta_{n}$ Monte Carlo, at noise floor"))
            ax.plot(widths, d["background"], ":", color=c, alpha=0.9,
                    label=_first(f"$\\delta_{n}$ noise background"))
        log_axes(ax)
        if not data.get("mc_skipped"):
            floor = [min(np.min(data["orders"][n]["background"]),
                         np.min(data["orders"][n]["exact"]) if n != "2" else np.inf)
                     for n in ("2", "4", "6") if data["orders"][n]["background"][0] is not None]
            ax.set_ylim(bottom=0.3 * min(floor))
        label = PANEL_LABELS.get(name, NET_LABELS.get(name, name))
        if name in ("relu", "erf", "gauss"):
            label += rf", $\sigma_b = {data['sigma_b']:g}$"
        if data.get("rao_blackwell"):
            label += (f"\nRao–Blackwellised, {data.get('n_nets', results['n_nets']):,} networks "
                      "per $N$ ($\\delta_2$ not measured)")
        ax.set_xlabel("width $N$")
        if data.get("mc_skipped"):
            txt = "exact only (Monte Carlo heavy-tailed)"
        else:
            s4, e4, f4 = data["slopes"]["4"], data["slope_errs"]["4"], data["slope_fit"]["4"]
            if s4 is None or e4 is None or f4["chi2_dof"] is None:
                txt = f"$\\delta_4$ slope: unresolved ({f4['n_used']} widths)"
            else:
                txt = (f"$\\delta_4$ slope {pm(s4, e4)}, $\\chi^2$/dof {f4['chi2_dof']:.2g} "
                       f"({f4['n_used']} widths)")
        ax.set_title(f"{label}\n{txt}", fontsize=8)
    axes[0][0].set_ylabel(r"$\delta_n = \langle |G_n - G_n^{GP}| / |G_n^{GP}| \rangle$")
    fig.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"Free-theory check, $\\sigma_W = 1$, $d_{{in}} = {results['d_in']}$, "
                 f"{results['n_nets']:,} networks per width $N$ (except where stated)", fontsize=9)
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Free-theory check (HMS fig. 1)"
CAPTION = ("Tests the approach to the free (GP) theory: δ_n(N) = ⟨|G_n − G_n^GP|/|G_n^GP|⟩ "
           "over the sorted n-tuples, from Monte Carlo (an independent run per width, "
           "jackknife errors) against the exact finite-width δ_n from quadrature, an independent "
           "route; δ_2 must sit at its noise background, δ_4 and δ_6 fall like 1/N. Slopes are "
           "power-law fits over the resolved widths (δ_n > 3× background). Erf-net: plain "
           "Monte Carlo of 20,000 networks leaves δ_4, δ_6 at the noise floor at every width "
           "(0 resolved widths), so its panel uses the Rao–Blackwellised estimator (Gaussian "
           "readout integrated out: unbiased G4_c, G6_c, G4 − G4_GP = G4_c, G6 − G6_GP = "
           "Σ_15 K G4_c + G6_c; ~4× the cost of a plain network, so fewer networks, stated "
           "per panel), still one independent run per width; δ_2 is not measured there "
           "(G2 = K exactly).")
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "widths": int_list(1),
          "n_nets": N_NETS, "seed": SEED, "relu_sigma_b": real(minimum=0.0),
          "hms_relu": boolean(), "rao_blackwell": optional(choice_list(*NETS)),
          "rao_blackwell_nets": optional(N_NETS)}
HELP = {"relu_sigma_b": "σ_b of the ReLU panel (> 0: not one-dimensional)",
        "hms_relu": "add the HMS ReLU (σ_b = 0, one-dimensional) as a secondary panel",
        "rao_blackwell": "panels measured with the Rao–Blackwellised estimator (Gaussian readout "
                         "integrated out; an independent run per width)",
        "rao_blackwell_nets": "networks per width of those panels (default n_nets)"}
QUICK_WIDTHS = [2, 3, 5, 10, 20, 100]
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "widths": QUICK_WIDTHS, "n_nets": 20_000,
              "seed": 0, "relu_sigma_b": 1.0, "hms_relu": True, "rao_blackwell": ["erf"],
              "rao_blackwell_nets": 5_000},
    "full": {"nets": list(NETS), "d_in": 1, "widths": list(HMS_WIDTHS), "n_nets": 1_000_000,
             "seed": 0, "relu_sigma_b": 1.0, "hms_relu": True, "rao_blackwell": ["erf"],
             "rao_blackwell_nets": None},
}
SMALL = {"nets": ["relu"], "d_in": 1, "widths": [2, 20], "n_nets": 400, "seed": 0,
         "relu_sigma_b": 1.0, "hms_relu": True, "rao_blackwell": ["relu"],
         "rao_blackwell_nets": 200}


def run(config: dict, *, progress: bool = False) -> dict:
    """`{"free_theory_d<d_in>": free_theory(...)}` for the validated `config`."""
    res = free_theory(config["nets"], d_in=config["d_in"], widths=config["widths"],
                      n_nets=config["n_nets"], seed=config["seed"],
                      relu_sigma_b=config["relu_sigma_b"], hms_relu=config["hms_relu"],
                      rao_blackwell=config.get("rao_blackwell") or (),
                      rao_blackwell_nets=config.get("rao_blackwell_nets"), progress=progress)
    rb = [f"{k} {v['n_nets']:,} (Rao–Blackwellised)" for k, v in res["nets"].items()
          if v.get("rao_blackwell")]
    res["caption"] = (CAPTION + f" Parameters: σ_W = 1, d_in = {config['d_in']}, N = width, "
                      f"{config['n_nets']:,} networks per width"
                      + (f" except {', '.join(rb)}" if rb else "") + "; σ_b per panel: "
                      + ", ".join(f"{k} {v['sigma_b']:g}" for k, v in res["nets"].items())
                      + "." + "".join(f" {k}: {v['mc_skipped']}." for k, v in res["nets"].items()
                                      if v.get("mc_skipped")))
    return {f"free_theory_d{config['d_in']}": res}


def plot(result: dict, stem) -> list:
    return plot_free_theory(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    from .width_scaling import P_MIN, chi2_max

    rows = []
    for data in results.values():
        for name, d in data["nets"].items():
            label = row_label(name, d["sigma_b"])
            if name == "relu_hms":
                label = "relu σ_b=0 (one-dimensional)"
            for n, expect in (("4", "−1"), ("6", "−1 at large N (δ_6 ⊃ Σ K G4_c)")):
                q = f"free theory: log δ_{n} vs log N slope, {label}"
                if d.get("mc_skipped"):
                    rows.append((q, f"exact {_fmt(d['exact_slopes'][n])} over all widths; "
                                 f"Monte Carlo: {d['mc_skipped']}", expect, "—",
                                 "none: exact only"))
                    continue
                mc, err, ex = d["slopes"][n], d["slope_errs"][n], d["exact_slopes"][n]
                f = d["slope_fit"][n]
                zs = [abs(z) for z in d["orders"][n]["z"] if z is not None]
                cmax = chi2_max(max(len(zs) - 2, 1))
                check = (f"≥ 3 widths with δ_{n} > {RESOLVED:g}× background; power law χ²/dof "
                         f"≤ {cmax:.2g} (p ≥ {P_MIN:g}); |MC − exact slope| ≤ 4σ; MC vs exact "
                         "per width |z| ≤ 4")
                if mc is None or len(zs) < 3:
                    status = f"FAILED: {len(zs)} resolved widths (< 3)"
                elif f["chi2_dof"] > cmax:
                    status = f"FAILED: power law χ²/dof = {f['chi2_dof']:.2g} > {cmax:.2g}"
                elif max(zs) > 4:
                    status = f"FAILED: MC vs exact max |z| = {max(zs):.1f}"
                elif abs(mc - ex) > 4 * err:
                    status = f"FAILED: MC slope {abs(mc - ex) / err:.1f}σ from the exact one"
                else:
                    status = "ok"
                if mc is None:
                    value = f"unresolved ({len(zs)} resolved widths)"
                elif len(zs) < 3 or f["chi2_dof"] is None or f["chi2_dof"] > cmax:
                    value = (f"no slope ({len(zs)} resolved widths"
                             + ("" if f["chi2_dof"] is None else
                                f", χ²/dof {f['chi2_dof']:.2g}") + ")")
                else:
                    value = (f"{_fmt(mc, err)}, 95 % CI [{f['ci95'][0]:.2f}, {f['ci95'][1]:.2f}]"
                             f", χ²/dof {f['chi2_dof']:.2g} (MC, {len(zs)} resolved widths), "
                             f"{_fmt(ex)} (exact, same widths)")
                if zs:
                    value += f"; MC vs exact max |z| {max(zs):.1f}"
                rows.append((q, value, expect, status, check))
            if d.get("mc_skipped") or d.get("rao_blackwell"):
                continue
            rows.append((f"free theory: δ_2 at background, {label}",
                         str(d["m2_consistent_with_background"]), "True",
                         "ok" if d["m2_consistent_with_background"] else
                         "FAILED: δ_2 above 4× background", "δ_2 < 4× its noise background at "
                         "every width (G2 = K exactly)"))
    return rows


def _fmt(x, err=None):
    if x is None:
        return "n/a"
    if err is None:
        return f"{x:.2f}"
    return pm(x, err)
