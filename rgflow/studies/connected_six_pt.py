"""The connected 6-pt function against width: G6_c ∝ 1/N² (physics.md §4, §5; §8 item 2).

At each width the connected 6-pt function on the sorted 6-tuples is taken from the exact
formula (`rgflow.exact_connected`) or measured (`Measurement.connected`, jackknife
bias-corrected, with jackknife errors). Two scalar summaries per width:

- `rms`: the rms over tuples, √(mean_T G6_c(T)²) (for Monte Carlo it includes the noise; the
  noise-free exact rms is reported alongside);
- `amplitude`: a(N) from the weighted projection of G6_c(N) on the exact shape τ = N² G6_c,exact
  (width independent), a = Σ w G6_c τ / Σ w τ², w = 1/σ² (uniform for exact inputs), so that
  a(N) = N⁻² exactly for exact inputs; its Monte Carlo error is the delete-one-block jackknife
  error of the projection (correlations between tuples included).

The slope of ln a against ln N (`rgflow._fit.power_law`, unresolved widths dropped) is the
fitted exponent (−2); the same is done for the 4-pt function (−1) for comparison.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from .._ensemble import measure
from .._exact import exact_connected
from .._fit import power_law
from .._fit_data import jackknife_replicates
from .._nets import hms_inputs, make_net
from ._config import NETS, SEED, choice, choice_list, float_list, int_list, integer, optional, real  # noqa: F401
from ._plotting import NET_LABELS, figure, save_figure
from .free_theory import HMS_WIDTHS

__all__ = ["connected_six_scaling", "plot_connected_six"]


def _projection(values, reps, tau, var):
    w = 1.0 / var
    den = np.sum(w * tau * tau)
    a = float(np.sum(w * values * tau) / den)
    if reps is None:
        return a, None
    a_reps = (reps * (w * tau)).sum(1) / den
    b = a_reps.shape[0]
    err = float(np.sqrt((b - 1) / b * np.sum((a_reps - a_reps.mean()) ** 2)))
    return a, err


def connected_six_scaling(
    net: str = "erf",
    *,
    d_in: int = 1,
    widths=HMS_WIDTHS,
    source: str = "exact",
    n_nets: int = 50_000,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """The connected 6-pt (and 4-pt) function against width, with fitted power laws.

    **Arguments:**

    - `net`: "erf", "relu" or "gauss" (HMS inputs of `d_in`).
    - `widths`: the widths N.
    - `source`: "exact" (default) or "mc" (`n_nets` networks per width; width N keyed by
      `fold_in(key(seed), N)`).

    **Returns:** a JSON-ready dict: per order `"6"`, `"4"`: `amplitude`, `amplitude_err`, `rms`,
    `rms_exact`, and `slope`, `slope_err`, `slope_ci95`, `used`; the headline `slope` /
    `slope_err` / `slope_ci95` are those of the 6-pt amplitude.
    """
    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    widths = [int(w) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"`widths` must hold at least two widths, got {widths!r}.")
    xs = hms_inputs(net, d_in)
    base = make_net(net, width=1, d_in=d_in)
    if source == "mc" and base.name == "gauss":
        warnings.warn(
            "Gauss-net (σ_b = 1) Monte Carlo 6-pt functions are heavy-tailed and not measurable "
            "at feasible ensemble sizes; use source='exact' (physics.md §5).", stacklevel=2)
    # width-independent shapes τ_n = N^{n/2−1} G_n,c (exact at N = 1)
    tau = {n: np.asarray(exact_connected(base, xs, n, full=False)) for n in (4, 6)}
    res = {str(n): {"amplitude": [], "amplitude_err": [], "rms": [], "rms_exact": []}
           for n in (6, 4)}
    key = jax.random.key(seed)
    it = widths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(widths, desc=f"{net} widths")
    for w in it:
        nw = make_net(net, width=w, d_in=d_in)
        meas = None
        if source == "mc":
            meas = measure(nw, xs, n_nets, key=jax.random.fold_in(key, w), orders=(2, 4, 6))
        for n in (6, 4):
            exact = np.asarray(exact_connected(nw, xs, n, full=False))
            if meas is None:
                values, reps, var = exact, None, np.ones_like(exact)
            else:
                values, reps = jackknife_replicates(meas, (n,))
                b = reps.shape[0]
                var = (b - 1) / b * np.sum((reps - reps.mean(0)) ** 2, 0)
            a, err = _projection(values, reps, tau[n], var)
            r = res[str(n)]
            r["amplitude"].append(a)
            r["amplitude_err"].append(err)
            r["rms"].append(float(np.sqrt(np.mean(values**2))))
            r["rms_exact"].append(float(np.sqrt(np.mean(exact**2))))
    for n in ("6", "4"):
        r = res[n]
        pl = power_law(widths, r["amplitude"], None if source == "exact" else r["amplitude_err"])
        r.update(slope=pl["exponent"], slope_err=pl["exponent_err"], slope_ci95=pl["ci95"],
                 used=pl["used"])
    return {"net": net, "d_in": d_in, "source": source, "widths": widths,
            "n_nets": n_nets if source == "mc" else None, "orders": res,
            "slope": res["6"]["slope"], "slope_err": res["6"]["slope_err"],
            "slope_ci95": res["6"]["slope_ci95"]}


def plot_connected_six(results: dict, path_stem) -> list:
    """|G6_c| (rms over tuples; projected amplitude × rms of the shape for MC) against N, with
    the fitted slope, and the 4-pt function for comparison."""
    fig, axes = figure(1, 1, width=3.6, height=3.0)
    ax = axes[0][0]
    n = np.asarray(results["widths"], float)
    for order, c in (("6", "C1"), ("4", "C0")):
        r = results["orders"][order]
        ex = np.asarray(r["rms_exact"])
        scale = ex * n ** (int(order) / 2 - 1)  # rms of the shape, width independent
        amp = np.abs(r["amplitude"]) * scale
        if results["source"] == "mc":
            err = np.asarray([e if e is not None else np.nan for e in r["amplitude_err"]]) * scale
            used = np.asarray(r["used"], bool)
            ax.errorbar(n[used], amp[used], yerr=err[used], fmt="o", color=c, capsize=2)
            ax.errorbar(n[~used], amp[~used], yerr=err[~used], fmt="o", mfc="none", color=c,
                        capsize=2, alpha=0.5)
        else:
            ax.plot(n, amp, "o", color=c)
        ax.plot(n, ex, "--", color=c, alpha=0.6)
        s, e = r["slope"], r["slope_err"]
        lab = f"$G_{order}^c$: slope {s:.4f} ± {e:.1g}" if s is not None else f"$G_{order}^c$"
        ax.plot([], [], "o", color=c, label=lab)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width $N$")
    ax.set_ylabel("rms over sorted tuples")
    ax.set_title(f"{NET_LABELS.get(results['net'], results['net'])}, $d_{{in}}={results['d_in']}$, "
                 f"{results['source']} (dashed: exact)")
    ax.legend()
    return save_figure(fig, path_stem)


# ----------------------------------------------------------------------- study interface ---

TITLE = "Connected 6-pt function against width (HMS fig. 2)"
SCHEMA = {"nets": choice_list(*NETS), "d_in": choice(1, 2, 3), "source": choice("exact", "mc"),
          "n_nets": integer(100), "seed": SEED, "widths": int_list(1)}
DEFAULTS = {
    "quick": {"nets": list(NETS), "d_in": 1, "source": "exact", "n_nets": 50_000, "seed": 0,
              "widths": list(HMS_WIDTHS)},
    "full": {"nets": list(NETS), "d_in": 1, "source": "mc", "n_nets": 1_000_000, "seed": 0,
             "widths": list(HMS_WIDTHS)},
}


def run(config: dict, *, progress: bool = False) -> dict:
    out = {}
    for name in config["nets"]:
        out[f"connected_six_pt_{name}_d{config['d_in']}"] = connected_six_scaling(
            name, d_in=config["d_in"], widths=config["widths"], source=config["source"],
            n_nets=config["n_nets"], seed=config["seed"], progress=progress)
    return out


def plot(result: dict, stem) -> list:
    return plot_connected_six(result, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    return [(f"connected 6-pt slope in log N ({d['source']}), {d['net']}",
             f"{fmt(d['slope'])} ± {fmt(d['slope_err'])}", "−2") for d in results.values()]
