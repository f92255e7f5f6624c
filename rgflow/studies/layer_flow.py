"""Depth as an RG time: the layer flow of the 4-pt vertex of deep networks (physics.md §11).

For each activation, at criticality and away from it, the normalised 4-pt vertex of layer ℓ

    r⁽ℓ⁾ = G4_c(aaaa)/(3K_aa²) = V⁽ℓ⁾_(aa)(aa)/(n K_aa²)    (one input; E[z⁴]/(3E[z²]²) − 1)
    r⁽ℓ⁾_ab = G4_c(aabb)/(K_aa K_bb)                        (one multi-input entry)

against L/n, L = ℓ − 1 the number of hidden layers below ℓ: the O(1/n) recursion
(`rgflow.layer_flow`), the exact finite-width products (1 + 5/n)^L − 1 (ReLU, σ_b = 0) and
(1 + 2/n)^L − 1 (linear, σ_b = 0), and Monte Carlo with jackknife error bars. The Monte Carlo
samples networks of depth L_max whose every layer has n neurons (the output layer too), records
the pre-activations of every layer, and averages the per-network neuron means (the neurons of a
layer are exchangeable; the jackknife over blocks of networks accounts for their correlation).

The second figure is the O(1/n) Edgeworth quartic coupling (physics.md §9) of the output on a few
inputs, λ_abcd = −(1/24) Σ G4_c(efgh) K⁻¹_ea K⁻¹_fb K⁻¹_gc K⁻¹_hd, made dimensionless with K^{1/2} on
every leg (λ̂ = −(1/24) G4_c contracted with K^{−1/2}); its Frobenius norm ‖λ̂‖ grows linearly
with depth at fixed width (at criticality) and falls like 1/n at fixed depth.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._deep import DeepNet, layer_flow
from .._nets import standard_normals
from .._validate import check_seed
from ._config import SEED, choice_list, float_list, integer, real
from ._plotting import figure, save_figure
from ._progress import steps

ACTIVATIONS = ("relu", "erf", "tanh", "linear")
LABELS = {"relu": "ReLU", "erf": "Erf", "tanh": "tanh", "linear": "linear"}


def settings(activation: str) -> dict:
    """(σ_b, σ_W) at criticality and away from it (physics.md §11)."""
    crit = {"relu": (0.0, math.sqrt(2.0)), "erf": (0.0, math.sqrt(math.pi) / 2),
            "tanh": (0.0, 1.0), "linear": (0.0, 1.0)}[activation]
    off = {"relu": (0.5, math.sqrt(2.0)), "erf": (0.5, 1.5), "tanh": (0.5, 1.5),
           "linear": (0.5, 1.0)}[activation]
    return {"critical": crit, "off-critical": off}


# ------------------------------------------------------------------------ Monte Carlo ---


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 5))
def _block_moments(activation, n, depth, sigma_w, sigma_b, batch, xs, key, start):
    """Per-layer sums over `batch` networks of the per-network neuron means of z_a², z_a z_b,
    z_b², z_a⁴, z_a² z_b², z_b⁴ (two inputs) `(depth + 1, 6)`."""
    net = DeepNet(activation=activation, width=n, depth=1)
    n_par = 2 * n + depth * (n * n + n)  # d_in = 1; the output layer has n neurons too

    def one(g):
        r = standard_normals(jax.random.fold_in(key, g), n_par)
        z = r[:n][None, :] * sigma_w * xs[:, :1] + r[n : 2 * n][None, :] * sigma_b  # (2, n)
        pos = 2 * n
        out = [z]
        for _ in range(depth):
            w = r[pos : pos + n * n].reshape(n, n) * (sigma_w / math.sqrt(n))
            pos += n * n
            z = net.activation_fn(z) @ w.T + r[pos : pos + n][None, :] * sigma_b
            pos += n
            out.append(z)
        z = jnp.stack(out)  # (depth + 1, 2, n)
        a, b = z[:, 0], z[:, 1]
        return jnp.stack([jnp.mean(a * a, -1), jnp.mean(a * b, -1), jnp.mean(b * b, -1),
                          jnp.mean(a**4, -1), jnp.mean(a * a * b * b, -1), jnp.mean(b**4, -1)],
                         axis=-1)

    idx = start + jnp.arange(batch, dtype=jnp.uint32)
    return jnp.sum(jax.vmap(one)(idx), axis=0)


def layer_moments(activation, n, depth, sigma_w, sigma_b, xs, n_nets, *, key, n_blocks=20,
                  progress=False):
    """Block sums `(B, depth + 1, 6)` of the per-layer moments (see `_block_moments`)."""
    per = n_nets // n_blocks
    out = []
    desc = f"{activation} n={n} σ_b={sigma_b:.3g} σ_W={sigma_w:.3g} (blocks)"
    for b in steps(range(n_blocks), desc, progress, unit="block"):
        out.append(np.asarray(_block_moments(activation, n, depth, float(sigma_w),
                                             float(sigma_b), per, jnp.asarray(xs), key,
                                             jnp.uint32(b * per))))
    return np.stack(out), per


def _ratios(m):
    """(r_aa, r_ab) from mean moments m (..., 6)."""
    aa, ab, bb, a4, a2b2 = m[..., 0], m[..., 1], m[..., 2], m[..., 3], m[..., 4]
    return a4 / (3 * aa**2) - 1, (a2b2 - aa * bb - 2 * ab**2) / (aa * bb)


def jackknife_ratios(block_sums, per):
    """Jackknife estimates and standard errors of (r_aa, r_ab) per layer."""
    b = block_sums.shape[0]
    total = block_sums.sum(0)
    full = np.stack(_ratios(total / (b * per)))
    loo = np.stack(_ratios((total[None] - block_sums) / ((b - 1) * per)), axis=1)  # (B, 2, ℓ)
    mean = loo.mean(0)
    est = b * full - (b - 1) * mean
    err = np.sqrt((b - 1) / b * np.sum((loo - mean) ** 2, axis=0))
    return est, err


# ---------------------------------------------------------------------------- theory ---


def theory_ratios(activation, n, depth, sigma_w, sigma_b, xs):
    """O(1/n) r_aa, r_ab per layer ℓ = 1..depth+1 from the layer recursion."""
    sol = layer_flow(DeepNet(activation=activation, width=n, depth=depth, sigma_w=sigma_w,
                             sigma_b=sigma_b), xs)
    k = sol.kernels
    r_aa = sol.normalized_vertex()[:, 0]
    r_ab = np.array([sol.connected4(ell)[0, 0, 1, 1] for ell in sol.layers]) / (k[:, 0, 0] * k[:, 1, 1])
    return r_aa, r_ab, sol


def quartic_norms(activation, n, depth, sigma_w, sigma_b, xs):
    """‖λ̂‖ of the output of depth L = 1..`depth` nets: −(1/24) G4_c at O(1/n) with K^{−1/2} on
    every leg (Frobenius norm; K^{−1/2} on the range of K). Layer ℓ = L + 1 of one flow is the
    output of the depth-L net."""
    sol = layer_flow(DeepNet(activation=activation, width=n, depth=depth, sigma_w=sigma_w,
                             sigma_b=sigma_b), xs)
    out = []
    for layer in range(2, depth + 2):
        g4 = sol.connected4(layer)
        lam, vec = np.linalg.eigh(sol.kernels[layer - 1])
        keep = lam > 1e-10 * lam.max()  # the field lives on the range of K
        s = vec[:, keep] @ np.diag(lam[keep] ** -0.5) @ vec[:, keep].T
        amp = np.einsum("efgh,ea,fb,gc,hd->abcd", g4, s, s, s, s)
        out.append(float(np.linalg.norm(-amp / 24)))
    return np.asarray(out)


# ------------------------------------------------------------------------------- run ---


def run(config: dict, *, progress: bool = False) -> dict:
    n, depth = config["width"], config["depth"]
    xs = np.array([[config["x"]], [config["x2"]]])
    key = jax.random.key(check_seed(config["seed"]))
    flow = {"width": n, "depth": depth, "xs": xs[:, 0].tolist(), "n_nets": config["n_nets"],
            "kind": "flow", "nets": {}}
    for i, act in enumerate(config["nets"]):
        flow["nets"][act] = {}
        for j, (label, (sb, sw)) in enumerate(settings(act).items()):
            r_aa, r_ab, sol = theory_ratios(act, n, depth, sw, sb, xs)
            sums, per = layer_moments(act, n, depth, sw, sb, xs, config["n_nets"],
                                      key=jax.random.fold_in(key, 2 * i + j), progress=progress)
            est, err = jackknife_ratios(sums, per)
            entry = {
                "sigma_b": sb, "sigma_w": sw, "critical": sol.critical,
                "layers": sol.layers.tolist(),
                "theory_aa": r_aa.tolist(), "theory_ab": r_ab.tolist(),
                "mc_aa": est[0].tolist(), "mc_aa_err": err[0].tolist(),
                "mc_ab": est[1].tolist(), "mc_ab_err": err[1].tolist(),
                "kernel_aa": sol.kernels[:, 0, 0].tolist(),
                "chi_parallel": sol.chi_parallel[:, 0].tolist(),
                "chi_perp": sol.chi_perp[:, 0].tolist(),
            }
            if sb == 0 and act in ("relu", "linear"):
                c = 5 if act == "relu" else 2
                entry["exact_aa"] = ((1 + c / n) ** (sol.layers - 1) - 1).tolist()
            # the O(1/n) theory is tested where L/n <= 0.1 (beyond, O(L²/n²) shows)
            near = (sol.layers - 1 >= 1) & (sol.layers - 1 <= max(1, n // 10))
            z = np.concatenate([(est[0] - r_aa)[near] / err[0][near],
                                (est[1] - r_ab)[near] / err[1][near]])
            entry["max_abs_z"] = float(np.max(np.abs(z)))
            if "exact_aa" in entry:
                ze = (est[0] - np.asarray(entry["exact_aa"]))[1:] / err[0][1:]
                entry["max_abs_z_exact"] = float(np.max(np.abs(ze)))
            flow["nets"][act][label] = entry
    quart = {"kind": "quartic", "xs": config["quartic_xs"], "nets": {}}
    qx = np.asarray(config["quartic_xs"], float)[:, None]
    depths = list(range(1, config["quartic_depth"] + 1))
    widths = [int(w) for w in np.unique(np.geomspace(4, 256, 9).astype(int))]
    for act in config["nets"]:
        sb, sw = settings(act)["critical"]
        q_depth = quartic_norms(act, n, depths[-1], sw, sb, qx)
        single = quartic_norms(act, n, depths[-1], sw, sb, qx[-1:])  # = r/8 at one input
        entry = {"sigma_b": sb, "sigma_w": sw, "depths": depths, "by_depth": q_depth.tolist(),
                 "single_by_depth": single.tolist(), "widths": widths,
                 # at O(1/n), G4_c = V/n with V independent of n: exactly 1/n at fixed depth
                 "by_width": (q_depth[-1] * n / np.asarray(widths)).tolist(),
                 "single_by_width": (single[-1] * n / np.asarray(widths)).tolist(),
                 "width": n, "depth": depths[-1]}
        if act in ("relu", "linear"):  # exact finite n at one input (σ_b = 0): λ̂ = −r/8
            c = 5 if act == "relu" else 2
            entry["exact_single_by_width"] = (((1 + c / np.asarray(widths, float)) ** depths[-1]
                                               - 1) / 8).tolist()
            entry["exact_single_by_depth"] = (((1 + c / n) ** np.asarray(depths, float) - 1)
                                              / 8).tolist()
        crit = flow["nets"].get(act, {}).get("critical")
        if crit is not None:  # Monte Carlo at one input from the layer-flow ensemble
            entry["mc_depths"] = (np.asarray(crit["layers"][1:]) - 1).tolist()
            entry["mc_single"] = (np.asarray(crit["mc_aa"][1:]) / 8).tolist()
            entry["mc_single_err"] = (np.asarray(crit["mc_aa_err"][1:]) / 8).tolist()
            entry["n_nets"] = int(config["n_nets"])
        slope = float(np.polyfit(np.log(widths), np.log(entry["by_width"]), 1)[0])
        entry["width_slope"] = slope
        entry["depth_ratio"] = float(q_depth[-1] / q_depth[0])
        entry["single_depth_ratio"] = float(single[-1] / single[0])
        quart["nets"][act] = entry
    flow["caption"] = caption(flow)
    quart["caption"] = caption(quart)
    return {"layer_flow": flow, "layer_flow_quartic": quart}


def caption(res: dict) -> str:
    """The JSON caption: what the figure tests and its parameters (N = hidden width of every
    layer of the deep network, L its depth)."""
    sets = "; ".join(
        f"{act}: " + ", ".join(f"{lab} σ_b = {e['sigma_b']:g}, σ_W = {e['sigma_w']:.4g}"
                               for lab, e in v.items())
        for act, v in res["nets"].items()) if res["kind"] == "flow" else "; ".join(
        f"{act} (critical): σ_b = {e['sigma_b']:g}, σ_W = {e['sigma_w']:.4g}"
        for act, e in res["nets"].items())
    if res["kind"] == "flow":
        return ("Tests the O(1/N) layer recursion of the normalised 4-pt vertex (physics.md §11) "
                "against Monte Carlo (±1σ jackknife errors; one independent ensemble per "
                "activation and setting) and, for ReLU and linear nets at σ_b = 0 (one input), "
                "the exact finite-N product (dotted). Elsewhere no closed form at finite N "
                "exists: the curve beside the points is the O(1/N) theory, tested where L/N ≤ "
                "0.1 (O(L²/N²) shows beyond). N = width of every hidden layer = "
                f"{res['width']}, depth L up to {res['depth']}, d_in = 1, inputs x = "
                f"{', '.join(f'{x:g}' for x in res['xs'])}, {res['n_nets']:,} networks per "
                f"Monte Carlo run; {sets}.")
    mc = "; ".join(f"{act}: {e['n_nets']:,} networks" for act, e in res["nets"].items()
                   if "n_nets" in e)
    return ("Tests the growth of the Edgeworth quartic coupling λ̂ = −(1/24) G4_c (K^{−1/2})^{⊗4} "
            "with depth L at fixed width N and its fall like 1/N at fixed depth (one input and "
            "two inputs). Curves: the O(1/N) theory (solid: two inputs, dashed: one input); "
            "dotted: the exact finite-N product (ReLU and linear at σ_b = 0, one input); points: "
            "Monte Carlo at one input (±1σ jackknife; "
            f"{mc or 'see layer_flow'}). N = width of every hidden layer; "
            f"d_in = 1, inputs x = {', '.join(f'{float(x[0]) if isinstance(x, list) else x:g}' for x in res['xs'])}; {sets}.")


# ------------------------------------------------------------------------------ plots ---


def plot(result: dict, stem) -> list:
    if result["kind"] == "quartic":
        return _plot_quartic(result, stem)
    names = list(result["nets"])
    n = result["width"]
    fig, axes = figure(2, len(names), width=3.0, height=2.6)
    for col, act in enumerate(names):
        for row, (key, title) in enumerate((("aa", "one input"), ("ab", "entry (aabb)"))):
            ax = axes[row][col]
            for (label, e), colour in zip(result["nets"][act].items(), ("C0", "C1")):
                x = (np.asarray(e["layers"]) - 1) / n
                ax.plot(x, e[f"theory_{key}"], "-", color=colour,
                        label=f"{label}: O(1/N)")
                if f"exact_{key}" in e:
                    ax.plot(x, e[f"exact_{key}"], ":", color="k", lw=1.2,
                            label="exact finite N")
                ax.errorbar(x, e[f"mc_{key}"], yerr=e[f"mc_{key}_err"], fmt="o", ms=3,
                            color=colour, capsize=2, label=f"{label}: MC")
            ax.set_title(f"{LABELS.get(act, act)}, {title}", fontsize=9)
            ax.set_xlabel(r"depth / width  $L/N$")
        axes[0][col].set_ylabel(r"$G_{4,c}(aaaa)/(3K_{aa}^2)$")
        axes[1][col].set_ylabel(r"$G_{4,c}(aabb)/(K_{aa}K_{bb})$")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(f"Layer flow of the 4-pt vertex: width N = {n}, d_in = 1, "
                 f"x = {result['xs'][0]:g}, {result['xs'][1]:g}; {result['n_nets']:,} networks per "
                 "run; σ_b, σ_W in the caption", fontsize=9)
    return save_figure(fig, stem)


def _plot_quartic(result, stem):
    fig, axes = figure(1, 2, width=3.4, height=3.6)
    left, right = axes[0]
    for (act, e), colour in zip(result["nets"].items(), ("C0", "C1", "C3", "C4")):
        lab = LABELS.get(act, act)
        left.plot(e["depths"], e["by_depth"], "-", color=colour, label=f"{lab}: ‖λ̂‖, {len(result['xs'])} inputs, O(1/N)")
        left.plot(e["depths"], e["single_by_depth"], "--", color=colour, label=f"{lab}: |λ̂|, one input, O(1/N)")
        if "exact_single_by_depth" in e:
            left.plot(e["depths"], e["exact_single_by_depth"], ":", color=colour, lw=2,
                      label=f"{lab}: one input, exact finite N")
        if "mc_single" in e:
            left.errorbar(e["mc_depths"], e["mc_single"], yerr=e["mc_single_err"], fmt="o",
                          ms=3, capsize=2, color=colour, label=f"{lab}: one input, MC")
        right.loglog(e["widths"], e["single_by_width"], "--", color=colour,
                     label=f"{lab}: O(1/N), one input")
        if "exact_single_by_width" in e:
            right.loglog(e["widths"], e["exact_single_by_width"], ":", color=colour, lw=2,
                         label=f"{lab}: exact finite N")
    any_e = next(iter(result["nets"].values()))
    left.set_xlabel("depth $L$")
    left.set_ylabel(r"Edgeworth quartic $|\hat\lambda|$")
    left.set_title(f"fixed width N = {any_e['width']}", fontsize=9)
    right.set_xlabel("width $N$")
    right.set_title(f"fixed depth L = {any_e['depth']}", fontsize=9)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    right.text(0.97, 0.95, "dashed: O(1/N) (exactly 1/N)\ndotted: exact finite N",
               transform=right.transAxes, ha="right", va="top", fontsize=8)
    fig.suptitle(r"Edgeworth quartic $\hat\lambda = -\frac{1}{24}G_{4,c}\,(K^{-1/2})^{\otimes 4}$, "
                 f"x = {', '.join(f'{v:g}' for v in result['xs'])}, d_in = 1,\nat criticality "
                 f"(σ_b, σ_W in the caption); MC: {any_e.get('n_nets', 0):,} networks",
                 fontsize=9)
    return save_figure(fig, stem)


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    flow = results.get("layer_flow")
    st = lambda z: "ok" if z <= 4.0 else f"FAILED: max |z| = {z:.1f} > 4"  # noqa: E731
    if flow:
        for act, d in flow["nets"].items():
            for label, e in d.items():
                rows.append((f"layer flow {act} {label}: max |z| MC vs O(1/N) at L/N ≤ 0.1 "
                             f"(N = {flow['width']}, {flow['n_nets']:,} networks)",
                             f"{e['max_abs_z']:.1f}", "< 4", st(e["max_abs_z"]),
                             "MC (jackknife) vs the O(1/N) recursion, both entries, 1 ≤ L ≤ N/10: "
                             "max |z| ≤ 4"))
                if "max_abs_z_exact" in e:
                    rows.append((f"layer flow {act} {label}: max |z| MC vs exact finite N",
                                 f"{e['max_abs_z_exact']:.1f}", "< 4", st(e["max_abs_z_exact"]),
                                 "MC (jackknife) vs the exact finite-N product, every depth: "
                                 "max |z| ≤ 4"))
    quart = results.get("layer_flow_quartic")
    if quart:
        for act, e in quart["nets"].items():
            expect = (f"{e['depths'][-1]} (exactly linear in L)" if act in ("relu", "linear")
                      else "> 1 (→ linear in L, slope (2/3)/N, at large L)")
            rows.append((f"one-input quartic |λ̂|(L = {e['depths'][-1]})/|λ̂|(L = 1), {act}",
                         f"{e['single_depth_ratio']:.2f}", expect, "—",
                         "none: the O(1/N) theory's own number"))
            rows.append((f"{len(quart['xs'])}-input quartic ‖λ̂‖(L = {e['depths'][-1]})/"
                         f"‖λ̂‖(L = 1), {act}", f"{e['depth_ratio']:.2f}", "> 1 (grows with L)",
                         "—", "none: the O(1/N) theory's own number"))
    return rows


TITLE = "Layer flow of the 4-pt vertex and the quartic coupling of deep networks (§11)"
HELP = {"nets": "activations: comma list of relu, erf, tanh, linear",
        "depth": "largest depth L of the layer flow",
        "x": "first input (one-input vertex)", "x2": "second input (multi-input entry)",
        "quartic_depth": "largest depth of the quartic-coupling figure",
        "quartic_xs": "inputs of the quartic-coupling figure"}
SCHEMA = {"nets": choice_list(*ACTIVATIONS), "width": integer(2), "depth": integer(1),
          "n_nets": integer(200, 2**32), "x": real(), "x2": real(), "quartic_depth": integer(1),
          "quartic_xs": float_list(),
          "seed": SEED}
DEFAULTS = {
    "quick": {"nets": ["relu", "erf", "linear"], "width": 20, "depth": 6, "n_nets": 10_000,
              "x": 1.0, "x2": -0.4, "quartic_depth": 8, "quartic_xs": [-0.4, 1.0], "seed": 0},
    "full": {"nets": ["relu", "erf", "tanh", "linear"], "width": 30, "depth": 12,
             "n_nets": 400_000, "x": 1.0, "x2": -0.4, "quartic_depth": 16,
             "quartic_xs": [-0.6, 0.2, 1.0], "seed": 0},
}
