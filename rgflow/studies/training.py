"""Trained ensembles: how the network field theory moves under gradient descent (physics.md §14).

An ensemble of one-hidden-layer networks (NTK parameterisation, σ_W = 1.5, σ_b = 0.5, d_in = 2;
parameters drawn as in `rgflow.measure`) is trained on the three points of the §14 check, MSE
loss ½ Σ (f − y)², plain gradient descent at rate η (discrete steps), every network at once
(`rgflow.train_ensemble`). At each recorded step t the outputs on two probe inputs give the mean,
covariance and connected 4-pt function with jackknife errors. Theory: the infinite-width
linearised dynamics with the discrete-step propagator (I − ηΘ)^t (`rgflow.linearised_dynamics`),
μ_t and Σ_t, and the frozen-kernel transport A_t^{⊗4} κ4(f₀) of the exact finite-N 4-pt function.

Each network also records its own linearised prediction c_t = A_t f₀ + b_t (a control variate
with exactly known cumulants), so the deviations from theory are measured as κ(f_t) − κ(c_t)
with noise set by the O(1/√N) difference, not by the ensemble spread. Modes:

- `trainable = readout`: Θ = K; t → ∞ is the GP posterior; at width N the trained ensemble is the
  posterior of the random readout kernel K̂, which deviates by c/N with c computed in closed form
  (`rgflow.readout_posterior_correction`); checked as a z-score and by a power-law fit.
- `trainable = all`: Θ the NTK; deviations of mean and covariance from μ_t, Σ_t fitted against N
  at each t; N·G4_c at each t for every width (bounded ⇔ the GP is preserved); and what the
  transport misses, N·[κ4(f_t) − A_t^{⊗4} κ4(f₀)], against N.
"""

from __future__ import annotations

import jax
import numpy as np

from .._edgeworth import edgeworth_tensors
from .._exact import exact_connected
from .._fit import power_law
from .._nets import make_net
from .._ntk import gp_posterior, linearised_dynamics, readout_posterior_correction
from .._training import train_ensemble
from .._validate import check_seed
from ._config import SEED, choice, choice_list, int_list, integer, real
from ._plotting import figure, save_figure
from ._progress import Bar

__all__ = ["TITLE", "SCHEMA", "DEFAULTS", "run", "plot", "summary", "X_TRAIN", "Y_TRAIN",
           "PROBES"]

X_TRAIN = np.array([[1.0, 0.0], [-0.5, 0.9], [0.2, -1.0]])
Y_TRAIN = np.array([0.6, -0.4, 0.3])
PROBES = np.array([[0.7, 0.7], [-1.0, -0.2]])

TITLE = "Trained ensembles: mean, covariance and G4_c through gradient descent vs the NTK theory"
SCHEMA = {"net": choice("erf", "relu"), "widths": int_list(2), "n_nets": integer(100, 2**32),
          "trainable": choice_list("readout", "all"), "steps": integer(1, 10**6),
          "learning_rate": real(positive=True), "sigma_w": real(positive=True),
          "sigma_b": real(), "seed": SEED}
HELP = {"trainable": "which parameters train: readout (last layer) and/or all",
        "steps": "gradient-descent steps (the last recorded time)",
        "learning_rate": "rate η of full-batch gradient descent on ½ Σ (f − y)²",
        "sigma_w": "σ_W (both layers)", "sigma_b": "σ_b (both biases)"}
DEFAULTS = {
    "quick": {"net": "erf", "widths": [16, 64], "n_nets": 1500, "trainable": ["readout", "all"],
              "steps": 100, "learning_rate": 0.2, "sigma_w": 1.5, "sigma_b": 0.5, "seed": 0},
    "full": {"net": "erf", "widths": [32, 64, 128, 256, 512, 1024], "n_nets": 8000,
             "trainable": ["readout", "all"], "steps": 200, "learning_rate": 0.2,
             "sigma_w": 1.5, "sigma_b": 0.5, "seed": 0},
}
SMALL = {"net": "erf", "widths": [8], "n_nets": 200, "trainable": ["readout"],
         "steps": 10, "learning_rate": 0.2, "sigma_w": 1.5, "sigma_b": 0.5, "seed": 0}


def _times(steps: int) -> list[int]:
    return sorted({0, max(1, steps // 20), max(1, steps // 5), steps})


def _one_mode(config, trainable, bar) -> dict:
    kw = dict(d_in=2, sigma_w=config["sigma_w"], sigma_b=config["sigma_b"])
    base = make_net(config["net"], width=1, **kw)
    times = _times(config["steps"])
    eta = config["learning_rate"]
    ld = linearised_dynamics(base, X_TRAIN, Y_TRAIN, PROBES, learning_rate=eta, times=times,
                             trainable=trainable)
    z = np.concatenate([PROBES, X_TRAIN])
    key = jax.random.key(check_seed(config["seed"]))
    # one-layer nets: κ4(f₀) is exactly ∝ 1/N (physics.md §4): compute it once at N = 1
    kappa4_unit = np.asarray(exact_connected(base, z, 4))
    per_width = []
    for n in config["widths"]:
        net = make_net(config["net"], width=n, **kw)
        meas = train_ensemble(net, X_TRAIN, Y_TRAIN, PROBES, config["n_nets"],
                              key=jax.random.fold_in(key, n), times=times, learning_rate=eta,
                              trainable=trainable, control=ld, max_order=4)
        k4 = meas.connected(4)
        k4_err = meas.connected_stderr(4)
        d = {o: meas.difference(o) for o in (1, 2, 4)}
        transported = ld.transport(kappa4_unit / n)
        # the Edgeworth quartic of the trained ensemble on the probes (physics.md §9, §14), from
        # Σ_t and the transported κ4: its O(1/N) coupling tensor, entry (x1,x1,x1,x1)
        quartic = [float(edgeworth_tensors(s_t, k_t, order=1)[1][0, 0, 0, 0])
                   for s_t, k_t in zip(ld.cov(), transported, strict=True)]
        per_width.append({
            "width": n,
            "mean": meas.mean().tolist(), "mean_err": meas.mean_stderr().tolist(),
            "cov": meas.connected(2).tolist(), "cov_err": meas.connected_stderr(2).tolist(),
            "g4c": k4.tolist(), "g4c_err": k4_err.tolist(), "g4c_transport": transported.tolist(),
            "quartic_transport_1111": quartic,
            "dmean": d[1][0].tolist(), "dmean_err": d[1][1].tolist(),
            "dcov": d[2][0].tolist(), "dcov_err": d[2][1].tolist(),
            "dg4c": d[4][0].tolist(), "dg4c_err": d[4][1].tolist(),
        })
        bar.update(1)
    # deliberately broken theories, to show the checks fail: the other mode's kernel in μ_t
    # (K for Θ, or Θ for K), and Σ_t without its cross terms −M K_Xx − K_xX Mᵀ
    other = linearised_dynamics(base, X_TRAIN, Y_TRAIN, PROBES, learning_rate=eta, times=times,
                                trainable="readout" if trainable == "all" else "all")
    p = PROBES.shape[0]
    m_t = -ld.transfer[:, :, p:]
    k = ld.kernel
    no_cross = k[:p, :p] + np.einsum("tpi,ij,tqj->tpq", m_t, k[p:, p:], m_t)
    out = {"trainable": trainable, "times": times, "mu": ld.mean().tolist(),
           "sigma": ld.cov().tolist(), "mu_broken_other_kernel": other.mean().tolist(),
           "sigma_broken_no_cross": no_cross.tolist(), "per_width": per_width}
    if trainable == "readout":
        m, c = gp_posterior(base, X_TRAIN, Y_TRAIN, PROBES)
        cm, cc = readout_posterior_correction(base, X_TRAIN, Y_TRAIN, PROBES)
        out |= {"gp_mean": m.tolist(), "gp_cov": c.tolist(), "c_mean": cm.tolist(),
                "c_cov": cc.tolist()}
    out["checks"] = _checks(out)
    return out


def _checks(mode: dict) -> dict:
    """Fits and z-scores of the deviations against N (module docstring)."""
    widths = np.array([w["width"] for w in mode["per_width"]], float)
    checks = {}
    for t_i, t in enumerate(mode["times"]):
        if t == 0:
            continue
        for what in ("dmean", "dcov"):
            vals = np.array([np.ravel(w[what][t_i]) for w in mode["per_width"]])
            errs = np.array([np.ravel(w[what + "_err"][t_i]) for w in mode["per_width"]])
            j = int(np.argmax(np.min(np.abs(vals) / np.maximum(errs, 1e-300), axis=0)))
            fit = power_law(widths, vals[:, j], errs[:, j]) if len(widths) > 2 else None
            checks[f"{what}_t{t}"] = {"entry": j, "fit": fit}
    # plain z-scores (ensemble error bars, no control variate) of the largest width against the
    # theory and against the broken theories, at each t > 0
    big = mode["per_width"][-1]
    for name, mu, sig in (("theory", mode["mu"], mode["sigma"]),
                          ("broken_other_kernel_in_mu", mode["mu_broken_other_kernel"], None),
                          ("broken_no_cross_term_in_sigma", None,
                           mode["sigma_broken_no_cross"])):
        zs = []
        for t_i, t in enumerate(mode["times"]):
            if t == 0:
                continue
            if mu is not None:
                z = (np.array(big["mean"][t_i]) - mu[t_i]) / np.array(big["mean_err"][t_i])
            else:
                z = (np.array(big["cov"][t_i]) - sig[t_i]) / np.array(big["cov_err"][t_i])
            zs.append(float(np.max(np.abs(z))))
        checks[f"max_abs_z_{name}"] = zs
    zs = []
    for t_i, t in enumerate(mode["times"]):
        if t:
            z = (np.array(big["cov"][t_i]) - mode["sigma"][t_i]) / np.array(big["cov_err"][t_i])
            zs.append(float(np.max(np.abs(z))))
    checks["max_abs_z_theory_cov"] = zs
    # the same breaks with the control-variate errors (κ(f) − κ(broken) = measured κ(f) − κ(c)
    # + exact κ(c) − κ(broken)): the smallest N·|deviation| over entries, to compare with the
    # O(1) N·deviation of the correct theory
    for name, key, theory, broken in (
            ("broken_other_kernel_in_mu", "dmean", mode["mu"], mode["mu_broken_other_kernel"]),
            ("broken_no_cross_term_in_sigma", "dcov", mode["sigma"],
             mode["sigma_broken_no_cross"])):
        zs = []
        for t_i, t in enumerate(mode["times"]):
            if t == 0:
                continue
            dev = np.array(big[key][t_i]) + np.array(theory[t_i]) - np.array(broken[t_i])
            zs.append(float(np.max(np.abs(dev) / np.array(big[key + "_err"][t_i]))))
        checks[f"max_abs_z_cv_{name}"] = zs
    if mode["trainable"] == "readout":
        t_i = len(mode["times"]) - 1
        z_mean, z_cov = [], []
        for w in mode["per_width"]:
            n = w["width"]
            pm = np.array(mode["c_mean"]) / n
            pc = np.array(mode["c_cov"]) / n
            z_mean.append(((np.array(w["dmean"][t_i]) - pm) / np.array(w["dmean_err"][t_i]))
                          .tolist())
            z_cov.append(((np.array(w["dcov"][t_i]) - pc) / np.array(w["dcov_err"][t_i]))
                         .tolist())
        checks["z_mean_vs_c_over_N"] = z_mean
        checks["z_cov_vs_c_over_N"] = z_cov
        # how strongly the data resolve the predicted term: |c/N| / stderr (cov, largest entry)
        checks["resolution_cov"] = [
            float(np.max(np.abs(np.array(mode["c_cov"]) / w["width"])
                         / np.array(w["dcov_err"][t_i]))) for w in mode["per_width"]]
    return checks


def run(config: dict, *, progress=False) -> dict:
    n_work = len(config["widths"]) * len(config["trainable"])
    bar = Bar(n_work, "training", progress, unit="width")
    modes = {tr: _one_mode(config, tr, bar) for tr in config["trainable"]}
    bar.close()
    out = {}
    for tr, mode in modes.items():
        stem = f"training_{config['net']}" + ("" if tr == "readout" else "_all")
        big = mode["per_width"][-1]
        final = len(mode["times"]) - 1
        out[stem] = {
            "caption": (
                f"{config['net']}-net ensembles (NTK parameterisation, σ_W = {config['sigma_w']},"
                f" σ_b = {config['sigma_b']}, d_in = 2, M = {config['n_nets']} networks per width)"
                f" trained on 3 points by gradient descent (η = {config['learning_rate']}, "
                f"{'readout only' if tr == 'readout' else 'all parameters'}): ensemble mean and "
                "spread against the linearised theory (I − ηΘ)^t; N·G4_c (control-variate "
                "estimate: exact transport + measured κ4(f_t) − κ4(c_t)) against the frozen-"
                "kernel transport A_t^⊗4 κ4(f₀) (the transport of the exact N·κ4(f₀), the same "
                "curve for every N); " + (
                    "N × the deviations of mean and covariance from the N = ∞ theory against N, "
                    "with the derived 1/N coefficients c of the readout posterior (dashed)."
                    if tr == "readout" else
                    "⟨f⟩ and Cov at the last step over the N = ∞ linearised NTK theory μ_t, Σ_t "
                    "against 1/N (control-variate estimates: theory + measured κ(f_t) − κ(c_t)); "
                    "the theory is 1 at every N: its O(1/N) term is not derived when all layers "
                    "train, so the deviations at finite N are measured, not predicted.")),
            "net": config["net"], "parameterisation": "ntk", "trainable": tr,
            "optimizer": "sgd", "learning_rate": config["learning_rate"],
            "loss": "0.5 * sum_a (f(x_a) - y_a)^2",
            "x_train": X_TRAIN.tolist(), "y_train": Y_TRAIN.tolist(), "probes": PROBES.tolist(),
            "sigma_w": config["sigma_w"], "sigma_b": config["sigma_b"], "d_in": 2,
            "width": big["width"], "n_nets": config["n_nets"], "steps": config["steps"],
            "mean": big["mean"][final], "mean_err": big["mean_err"][final],
            "cov": big["cov"][final], "cov_err": big["cov_err"][final],
            **mode,
        }
    return out


def plot(result: dict, stem) -> list:
    import matplotlib.pyplot as plt

    fig, axes = figure(1, 3, width=3.6, height=4.0)
    axes = axes[0]
    times = np.array(result["times"], float)
    tplot = np.maximum(times, 0.5)
    below = dict(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                 frameon=False)
    mu = np.array(result["mu"])[:, 0]
    sd = np.sqrt(np.array(result["sigma"])[:, 0, 0])
    ax = axes[0]
    ax.fill_between(tplot, mu - sd, mu + sd, color="0.85", label="μ_t ± √Σ_t (N = ∞)")
    ax.plot(tplot, mu, "k-", lw=1, label="μ_t")
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(result["per_width"])))
    for c, w in zip(colors, result["per_width"]):
        m = np.array(w["mean"])[:, 0]
        me = np.array(w["mean_err"])[:, 0]
        s = np.sqrt(np.array(w["cov"])[:, 0, 0])
        ax.errorbar(tplot, m, me, fmt="o", ms=3, color=c, label=f"N = {w['width']}")
        ax.plot(tplot, m + s, "_", color=c, ms=8)
        ax.plot(tplot, m - s, "_", color=c, ms=8)
    ax.set_xscale("log")
    ax.set_xlabel("step t (t = 0 drawn at 0.5)")
    ax.set_ylabel("⟨f_t(x₁)⟩ ± error; ticks: ± spread")
    ax.legend(**below)
    ax = axes[1]
    tr = result["per_width"][0]["width"] * np.array(
        result["per_width"][0]["g4c_transport"])[:, 0, 0, 0, 0]
    kern = "NNGP K" if result["trainable"] == "readout" else "NTK Θ"
    ax.plot(tplot, tr, "k-", lw=1,
            label=f"theory: N·A_t^⊗4 κ4(f₀), frozen {kern}\n(N·κ4(f₀) exact; same for every N)")
    for c, w in zip(colors, result["per_width"]):
        n = w["width"]
        # control-variate estimate: exact transport + measured κ4(f_t) − κ4(c_t)
        g = n * (np.array(w["g4c_transport"]) + np.array(w["dg4c"]))[:, 0, 0, 0, 0]
        ge = n * np.array(w["dg4c_err"])[:, 0, 0, 0, 0]
        ax.errorbar(tplot, g, ge, fmt="o", ms=3, color=c, label=f"N = {n} (MC)")
    ax.set_xscale("log")
    ax.set_xlabel("step t (t = 0 drawn at 0.5)")
    ax.set_ylabel("N·G4_c(x₁,x₁,x₁,x₁)")
    ax.legend(**below)
    ax = axes[2]
    if result["trainable"] == "readout":
        _deviation_panel(ax, result, below)
    else:
        _ratio_panel(ax, result, below)
    fig.suptitle(f"{result['net']}-net, NTK param., σ_W = {result['sigma_w']}, σ_b = "
                 f"{result['sigma_b']}, d_in = 2, trainable = {result['trainable']}, "
                 f"GD η = {result['learning_rate']}, M = {result['n_nets']} per N", fontsize=9)
    return save_figure(fig, stem)


def _deviation_panel(ax, result, below) -> None:
    """trainable = readout: N × (MC − N = ∞ theory) at the last step against N, beside the
    derived 1/N coefficients c of the GP posterior of the random readout kernel (dashed)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    times = np.array(result["times"], float)
    widths = np.array([w["width"] for w in result["per_width"]], float)
    final = len(times) - 1
    series = [("dcov", (0, 0), "o", "#1f77b4", "N·(Cov − Σ_t)(x₁,x₁)"),
              ("dcov", (1, 1), "s", "#d62728", "N·(Cov − Σ_t)(x₂,x₂)"),
              ("dmean", (1,), "^", "#ff7f0e", "N·(⟨f⟩ − μ_t)(x₂)")]
    for what, idx, mk, col, label in series:
        d = np.array([np.array(w[what][final])[idx] for w in result["per_width"]])
        e = np.array([np.array(w[what + "_err"][final])[idx] for w in result["per_width"]])
        ax.errorbar(widths, widths * d, widths * e, fmt=mk, ms=4, color=col, label=label)
        coef = "c_cov" if what == "dcov" else "c_mean"
        if coef in result:
            ax.axhline(np.array(result[coef])[idx], ls="--", color=col, lw=1)
    if "c_cov" in result:
        ax.plot([], [], "k--", lw=1, label="theory: derived c (N·deviation → c)")
    ax.set_xscale("log")
    ax.set_xticks(widths)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("width N")
    ax.set_ylabel(f"N × deviation from N = ∞ theory, t = {int(times[-1])}")
    ax.legend(**dict(below, ncol=1))


def _ratio_panel(ax, result, below) -> None:
    """trainable = all: ⟨f⟩ and Cov at the last step over the N = ∞ linearised theory (μ_t,
    Σ_t of the NTK dynamics) against 1/N, control-variate estimates (theory + measured
    κ(f_t) − κ(c_t)) with their errors; the theory is 1 at every N (its O(1/N) term is not
    derived for trainable = all), reached at 1/N = 0."""
    times = np.array(result["times"], float)
    final = len(times) - 1
    inv = 1.0 / np.array([w["width"] for w in result["per_width"]], float)
    mu, sig = np.array(result["mu"])[final], np.array(result["sigma"])[final]
    series = [("dcov", (0, 0), sig[0, 0], "o", "#1f77b4", "Cov(x₁,x₁)/Σ_t"),
              ("dcov", (1, 1), sig[1, 1], "s", "#d62728", "Cov(x₂,x₂)/Σ_t"),
              ("dmean", (1,), mu[1], "^", "#ff7f0e", "⟨f(x₂)⟩/μ_t")]
    for k, (what, idx, th, mk, col, label) in enumerate(series):
        d = np.array([np.array(w[what][final])[idx] for w in result["per_width"]])
        e = np.array([np.array(w[what + "_err"][final])[idx] for w in result["per_width"]])
        ax.errorbar(inv * (1 + 0.04 * (k - 1)), 1 + d / th, np.abs(e / th), fmt=mk, ms=4,
                    color=col, capsize=2, label=f"{label} (MC, control variate)")
    ax.axhline(1.0, color="k", ls="--", lw=1,
               label="theory: N = ∞ linearised NTK μ_t, Σ_t\n(O(1/N) term not derived)")
    ax.set_xlim(0, 1.15 * inv.max())
    ax.set_xticks([0, *inv])
    ax.set_xticklabels(["0 (N = ∞)"] + [f"1/{w['width']}" for w in result["per_width"]])
    ax.set_xlabel("1/N")
    ax.set_ylabel(f"Monte Carlo / N = ∞ theory, t = {int(times[-1])}")
    ax.legend(**dict(below, ncol=1))


def summary(config: dict, results: dict) -> list:
    from ._plotting import pm

    rows = []
    for stem, r in results.items():
        ch = r["checks"]
        if r["trainable"] == "readout":
            zc = np.abs(np.array(ch["z_cov_vs_c_over_N"]))
            zm = np.abs(np.array(ch["z_mean_vs_c_over_N"]))
            worst = float(max(zc.max(), zm.max()))
            status = "ok" if worst < 4 else f"FAILED: |z| = {worst:.1f} against GP posterior + c/N"
            rows.append((f"{stem}: readout t→∞ vs GP posterior + c/N (max |z| over N, entries)",
                         f"{worst:.2f}", "|z| < 4", status,
                         "MC − (GP posterior + c/N) at the last step, every width and entry, "
                         "control-variate errors: |z| ≤ 4"))
        t_last = r["times"][-1]
        rows.append((f"{stem}: max |z| of ⟨f⟩, Cov at N = {r['width']} vs N = ∞ theory, t = "
                     f"{t_last} (ensemble errors)",
                     f"{ch['max_abs_z_theory'][-1]:.2f}, {ch['max_abs_z_theory_cov'][-1]:.2f}",
                     "O(1/N) deviations, within errors at the largest N"))
        rows.append((f"{stem}: broken theories (other kernel in μ_t; Σ_t without cross terms), "
                     f"max |z| at t = {t_last} (control-variate errors)",
                     f"{ch['max_abs_z_cv_broken_other_kernel_in_mu'][-1]:.0f}, "
                     f"{ch['max_abs_z_cv_broken_no_cross_term_in_sigma'][-1]:.0f}",
                     "≫ 5 (the checks can fail)"))
        for k, v in ch.items():
            if isinstance(v, dict) and v.get("fit") and v["fit"].get("exponent") is not None:
                f = v["fit"]
                rows.append((f"{stem}: exponent of {k} vs N", pm(f["exponent"],
                             f["exponent_err"]), "−1 (O(1/N))"))
    return rows
