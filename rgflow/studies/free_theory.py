"""The free-theory check of HMS (physics.md §5, §8 item 1): how far the measured n-point
functions of finite-width networks sit from the GP (free-theory) prediction, against width.

    m_n(N) = mean over sorted tuples T of |G_n,MC(T) − G_n,GP(T)| / |G_n,GP(T)|
    background_n(N) = mean over T of stderr(G_n,MC(T)) / |G_n,GP(T)|

m_2 stays at the background (G2 = K exactly, physics.md §4); m_4 and m_6 fall like 1/N until
they reach it. The noise-free curve m_n from the exact finite-width correlators
(`rgflow.exact_moment`) is drawn alongside.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from .._ensemble import measure
from .._exact import exact_moment, gp_correlator
from .._nets import hms_inputs, make_net
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import NET_LABELS, figure, save_figure

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


def free_theory(
    nets: Sequence[str] = ("erf", "relu", "gauss"),
    *,
    d_in: int = 1,
    widths: Sequence[int] = HMS_WIDTHS,
    n_nets: int = 100_000,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Measure m_n(N) for n = 2, 4, 6 (Monte Carlo and exact) for each network.

    **Arguments:**

    - `nets`: network names among "erf", "relu", "gauss".
    - `d_in`: input dimension (HMS input sets, physics.md §5).
    - `widths`: the widths N.
    - `n_nets`: networks per width.
    - `seed`: seed of `jax.random.key`; width N of net i uses `fold_in(fold_in(key, i), N)`.

    **Returns:** a JSON-ready dict: per net the widths, `signal`, `background` and `exact` per
    order, and fitted log–log `slopes` (`"2"` is reported with `consistent_with_background`).
    """
    key = jax.random.key(seed)
    out = {"d_in": d_in, "n_nets": n_nets, "seed": seed, "widths": list(widths), "nets": {}}
    for i, name in enumerate(nets):
        xs = hms_inputs(name, d_in)
        base = make_net(name, width=1, d_in=d_in)
        gp = {n: np.asarray(gp_correlator(base, xs, n, full=False)) for n in (2, 4, 6)}
        res = {n: {"signal": [], "background": [], "exact": []} for n in (2, 4, 6)}
        for w in widths:
            net = make_net(name, width=int(w), d_in=d_in)
            m = measure(net, xs, n_nets, key=jax.random.fold_in(jax.random.fold_in(key, i), w),
                        progress=progress)
            for n in (2, 4, 6):
                mc = np.asarray(m.moment(n, full=False))
                se = np.asarray(m.moment_stderr(n, full=False))
                ex = np.asarray(exact_moment(net, xs, n, full=False))
                res[n]["signal"].append(float(np.mean(np.abs(mc - gp[n]) / np.abs(gp[n]))))
                res[n]["background"].append(float(np.mean(se / np.abs(gp[n]))))
                res[n]["exact"].append(float(np.mean(np.abs(ex - gp[n]) / np.abs(gp[n]))))
        slopes, exact_slopes = {}, {}
        for n in (2, 4, 6):
            sig, bg = np.asarray(res[n]["signal"]), np.asarray(res[n]["background"])
            slopes[str(n)] = loglog_slope(widths, sig, sig > 3 * bg)
            exact_slopes[str(n)] = loglog_slope(widths, res[n]["exact"])
        sig2, bg2 = np.asarray(res[2]["signal"]), np.asarray(res[2]["background"])
        out["nets"][name] = {
            "orders": {str(n): res[n] for n in (2, 4, 6)},
            "slopes": slopes,
            "exact_slopes": exact_slopes,
            "m2_consistent_with_background": bool(np.all(sig2 < 4 * bg2)),
        }
    # Headline slopes: averaged over nets where resolvable.
    out["slopes"] = {
        n: _mean_or_none([v["slopes"][n] for v in out["nets"].values()]) for n in ("2", "4", "6")
    }
    return out


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def plot_free_theory(results: dict, path_stem) -> list:
    """log m_n against log N, one panel per network, with the background and exact curves."""
    names = list(results["nets"])
    fig, axes = figure(1, len(names), width=3.0, height=2.7)
    widths = np.asarray(results["widths"], float)
    for ax, name in zip(axes[0], names):
        data = results["nets"][name]
        for n, colour in zip(("2", "4", "6"), ("C0", "C1", "C3")):
            d = data["orders"][n]
            ax.loglog(widths, d["signal"], "o-", color=colour, label=f"$m_{n}$ (MC)")
            ax.loglog(widths, d["background"], ":", color=colour, alpha=0.8)
            exact = np.asarray(d["exact"])
            if np.any(exact > 0):
                ax.loglog(widths, np.where(exact > 0, exact, np.nan), "--", color=colour, alpha=0.6)
        ax.set_title(f"{NET_LABELS.get(name, name)}, $d_{{in}}={results['d_in']}$")
        ax.set_xlabel("width $N$")
        s4 = data["slopes"]["4"]
        ax.text(0.03, 0.04, f"slope $m_4$: {s4:.2f}" if s4 is not None else "slope $m_4$: n/a",
                transform=ax.transAxes, fontsize=7)
    axes[0][0].set_ylabel(r"$m_n = |G_n - G_n^{GP}|/G_n^{GP}$")
    axes[0][0].legend(title="dotted: background\ndashed: exact", title_fontsize=6.5, loc="upper right")
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Free-theory check (HMS fig. 1)"
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "widths": int_list(1),
          "n_nets": integer(100), "seed": SEED}
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "widths": list(HMS_WIDTHS), "n_nets": 50_000,
              "seed": 0},
    "full": {"nets": list(NETS), "d_in": 1, "widths": list(HMS_WIDTHS), "n_nets": 1_000_000,
             "seed": 0},
}


def run(config: dict, *, progress: bool = False) -> dict:
    """`{"free_theory_d<d_in>": free_theory(...)}` for the validated `config`."""
    res = free_theory(config["nets"], d_in=config["d_in"], widths=config["widths"],
                      n_nets=config["n_nets"], seed=config["seed"], progress=progress)
    return {f"free_theory_d{config['d_in']}": res}


def plot(result: dict, stem) -> list:
    return plot_free_theory(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for data in results.values():
        for name, d in data["nets"].items():
            for n, expect in (("4", "−1"), ("6", "−1 (→ −2 connected)")):
                mc, ex = d["slopes"][n], d["exact_slopes"][n]
                rows.append((f"free theory: log m_{n} vs log N slope, {name}",
                             _fmt(mc) + f" (MC), {_fmt(ex)} (exact)", expect))
            rows.append((f"free theory: m_2 at background, {name}",
                         str(d["m2_consistent_with_background"]), "True"))
    return rows


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"
