"""A free scalar built from a cos-net, and φ⁴ engineered in its parameter space (physics.md §12).

The ensemble of `rgflow.FreeCosNet` (width N, mass m, sharp cutoff Λ) is the free scalar with
propagator G_Λ at N → ∞ plus exactly known 1/N couplings. Reweighting each network by
exp(−S_int[f]), S_int = ∫_V [(λ/4!) f⁴ + (δm²/2) f²], gives φ⁴ theory with the network's cutoff
inside the box V, on the same draws for every (λ, δm²).

**Tree check** (the JSON contract `tree_check`). At each configuration (x₁..x₄):

    mc      = G4_c,exact(N; λ = 0) + [κ4_λ − κ4_0]_MC        (control variate, same draws)
    mc_err  = delete-one-block jackknife error of [κ4_λ − κ4_0]_MC (weights and their
              normalisation left out with each block)
    tree    = −λ ∫_V d^dy Π_i G_Λ(x_i − y)   (same Gauss–Legendre nodes as the weights)

so mc − free_exact − tree = 0 up to O(λ², λ/N) and noise. The deformation is normal-ordered,
δm² = −λ G_Λ(0)/2 (it cancels the tadpole; the O(λ) 4-pt function is unchanged at N = ∞ and the
weights fluctuate half as much). O(λ²) is kept below the noise by a small λ (ESS ≥ 99.9 %), and
linearity is checked at two couplings on the same draws; the precision is stated as |tree|/mc_err
(≥ 5 required) and as the jackknife fit of the amplitude s (mc − free_exact = s · tree over all
configurations), against which s = 1.2 (λ → 1.2λ) is tested. The tadpole check uses δm² = 0:
δG2 = −(λ/2) G(0) ∫_V G G. Negative control: the weights permuted across networks (same weight
distribution, no correlation with the fields) must give no signal.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from .._deform import Deformation, sample_fields, tadpole_two_point, tree_four_point
from .._freefield import FreeCosNet
from .._tuples import sorted_tuples
from .._validate import check_seed
from ._config import N_NETS, SEED, choice, float_list, integer, real
from ._plotting import figure, pm, save_figure

# external points (first coordinate; the others 0) and the 4-pt configurations (indices)
POINTS = (-0.5, 0.0, 0.25, 0.5, 1.0)
CONFIGS = ((0, 0, 0, 0), (1, 1, 1, 1), (1, 1, 3, 3), (0, 1, 3, 4), (1, 2, 3, 4))
TADPOLE_PAIRS = ((1, 1), (1, 3), (0, 4), (2, 4))


def _xs(d_in):
    xs = np.zeros((len(POINTS), d_in))
    xs[:, 0] = POINTS
    return xs


def _amplitude(shift, tree):
    """s of shift = s·tree (least squares, unit weights) over the configurations."""
    return (shift * tree).sum(-1) / (tree * tree).sum()


def phi4_network(*, d_in=1, width=200, mass=1.0, cutoff=5.0, box=(-1.5, 2.0),
                 couplings=(0.1, 0.2), n_nets=20_000, n_blocks=20, seed=0) -> dict:
    """Run the checks of the module docstring; returns the JSON-ready result."""
    net = FreeCosNet(width=width, d_in=d_in, mass=mass, cutoff=cutoff)
    key = jax.random.key(check_seed(seed))
    xs = _xs(d_in)
    boxes = [list(box)] * d_in
    fs = sample_fields(net, xs, n_nets, key=key, box=boxes, n_blocks=n_blocks)
    p = xs.shape[0]
    t4 = [tuple(t) for t in sorted_tuples(p, 4)]
    cidx = [t4.index(c) for c in CONFIGS]
    t2 = [tuple(t) for t in sorted_tuples(p, 2)]
    pidx = [t2.index(c) for c in TADPOLE_PAIRS]
    free_exact = np.asarray(net.exact_connected(xs, 4, full=False))[cidx]
    g0 = net.g0

    def wick(lam):
        return Deformation(lam, mass_shift=-0.5 * lam * g0)

    out = {"mass": mass, "cutoff": cutoff, "box": boxes, "width": width, "d_in": d_in,
           "regulator": "sharp", "n_nets": n_nets, "n_blocks": n_blocks, "seed": seed,
           "n_grid": fs.n_grid, "g0": g0,
           "points": [[float(v) for v in x] for x in xs], "couplings": list(couplings)}
    # --- the free propagator: Monte Carlo at λ = 0 against G_Λ(r)
    g2, e2 = fs.connected(2, 0.0)
    r = np.abs(xs[:, None, 0] - xs[None, :, 0])
    iu = np.triu_indices(p)
    out["propagator"] = {"r": r[iu].tolist(), "mc": g2[iu].tolist(), "mc_err": e2[iu].tolist(),
                         "exact": np.asarray(net.propagator(r[iu])).tolist()}
    out["propagator"]["max_abs_z"] = float(np.max(np.abs(
        (g2[iu] - out["propagator"]["exact"]) / e2[iu])))
    # --- the free 4-pt function (1/N part) at λ = 0: plain Monte Carlo against exact
    k0, k0e = fs.connected(4, 0.0, full=False)
    out["free_check"] = {"mc": k0[cidx].tolist(), "mc_err": k0e[cidx].tolist(),
                         "exact": free_exact.tolist(),
                         "z": ((k0[cidx] - free_exact) / k0e[cidx]).tolist()}
    # --- tree check at each coupling (normal-ordered deformation)
    per = []
    for lam in couplings:
        d = wick(lam)
        shift, err = fs.connected_shift(4, d, 0.0, full=False)
        shift, err = shift[cidx], err[cidx]
        tree = tree_four_point(net, xs, boxes, fs.n_grid, coupling=lam, full=False)[cidx]
        kp, kpe = fs.connected(4, d, full=False)

        def amp(ms, lam=lam, tree=tree):
            from .._ensemble import connected_from_moments

            sh = (connected_from_moments(ms[0], p, 4) - connected_from_moments(ms[1], p, 4))
            return _amplitude(sh[..., cidx], tree)

        s, s_err = fs.jackknife(amp, [d, 0.0], orders=(2, 4))
        per.append({"coupling": lam, "mass_shift": d.mass_shift, "ess": fs.ess(d),
                    "ess_fraction": fs.ess(d) / n_nets, "shift": shift.tolist(),
                    "shift_err": err.tolist(), "tree": tree.tolist(),
                    "mc": (free_exact + shift).tolist(), "mc_err": err.tolist(),
                    "mc_plain": kp[cidx].tolist(), "mc_plain_err": kpe[cidx].tolist(),
                    "z": ((shift - tree) / err).tolist(),
                    "resolution": (np.abs(tree) / err).tolist(),
                    "z_no_tree": (shift / err).tolist(),
                    "amplitude": float(s), "amplitude_err": float(s_err),
                    "z_amplitude_1": float((s - 1) / s_err),
                    "z_amplitude_1_2": float((1.2 - s) / s_err)})
    out["tree_checks"] = per
    lam = couplings[-1]
    main = per[-1]
    out["coupling"] = lam
    out["mass_shift"] = main["mass_shift"]
    out["tree_check"] = {"points": [[float(xs[i, 0]) if d_in == 1 else xs[i].tolist()
                                     for i in c] for c in CONFIGS],
                         "mc": main["mc"], "mc_err": main["mc_err"],
                         "free_exact": free_exact.tolist(), "tree": main["tree"],
                         "coupling": lam, "mass_shift": main["mass_shift"],
                         "definition": MC_DEFINITION}
    # --- linearity: shift(λ2) − (λ2/λ1) shift(λ1) on the same draws (O(λ²) + noise)
    if len(couplings) >= 2:
        l1, l2 = couplings[0], couplings[-1]

        def nonlin(ms):
            from .._ensemble import connected_from_moments

            c = [connected_from_moments(m, p, 4)[..., cidx] for m in ms]
            return (c[1] - c[2]) - (l2 / l1) * (c[0] - c[2])

        v, ve = fs.jackknife(nonlin, [wick(l1), wick(l2), 0.0])
        out["nonlinearity"] = {"value": v.tolist(), "err": ve.tolist(),
                               "z": (v / ve).tolist(),
                               "relative_to_tree": (v / np.asarray(main["tree"])).tolist()}
        # the O(λ) slope with the λ² term removed (shift_k = a λ_k + b λ_k²), scaled to λ2
        tree2 = np.asarray(main["tree"])

        def slope(ms):
            from .._ensemble import connected_from_moments

            c = [connected_from_moments(m, p, 4)[..., cidx] for m in ms]
            s1, s2 = c[0] - c[2], c[1] - c[2]
            a = (s1 * l2**2 - s2 * l1**2) / (l1 * l2 * (l2 - l1))
            return np.concatenate([a * l2, _amplitude(a * l2, tree2)[..., None]], axis=-1)

        v, ve = fs.jackknife(slope, [wick(l1), wick(l2), 0.0])
        out["slope_fit"] = {"coupling": l2, "linear_part": v[:-1].tolist(),
                            "err": ve[:-1].tolist(), "tree": tree2.tolist(),
                            "z": ((v[:-1] - tree2) / ve[:-1]).tolist(),
                            "amplitude": float(v[-1]), "amplitude_err": float(ve[-1]),
                            "z_amplitude_1_2": float((1.2 - v[-1]) / ve[-1])}
    # --- tadpole: δm² = 0, pure λ; and a pure mass term
    tad = []
    for lam_t, dm2 in [(c, 0.0) for c in couplings] + [(0.0, couplings[-1] * g0 / 2)]:
        d = Deformation(lam_t, mass_shift=dm2)
        s2, s2e = fs.connected_shift(2, d, 0.0, full=False)
        pred = tadpole_two_point(net, xs, boxes, fs.n_grid, coupling=lam_t, mass_shift=dm2,
                                 full=False)
        tad.append({"coupling": lam_t, "mass_shift": dm2, "pairs": [list(q) for q in
                                                                      TADPOLE_PAIRS],
                    "shift": s2[pidx].tolist(), "err": s2e[pidx].tolist(),
                    "prediction": pred[pidx].tolist(),
                    "z": ((s2[pidx] - pred[pidx]) / s2e[pidx]).tolist(),
                    "resolution": (np.abs(pred[pidx]) / s2e[pidx]).tolist()})
    out["tadpole_checks"] = tad
    # --- negative control: weights permuted across networks
    perm = np.random.default_rng(seed).permutation(n_nets)
    shuffled = eqx.tree_at(lambda f: f.integrals, fs, np.asarray(fs.integrals)[perm])
    ns, nse = shuffled.connected_shift(4, wick(lam), 0.0, full=False)
    out["negative_control"] = {"coupling": lam, "shift": ns[cidx].tolist(),
                               "err": nse[cidx].tolist(), "z": (ns[cidx] / nse[cidx]).tolist(),
                               "tree": main["tree"]}
    # --- the grid: ∫ f⁴ on n_grid against 2 n_grid nodes per axis (256 networks)
    out["grid_error_rel"] = _grid_error(net, fs, key, boxes)
    return out


def _grid_error(net, fs, key, boxes, n_check=64):
    """max relative difference of ∫f², ∫f⁴, ∫f⁶ on n_grid against 2 n_grid nodes per axis, for
    the first `n_check` networks (NumPy on the fine grid: no new compiled program)."""
    from .._deform import box_quadrature
    from .._freefield import draw_jit

    index = jax.numpy.arange(n_check, dtype=jax.numpy.uint32)
    a, c, w = (np.asarray(v) for v in draw_jit(net, key, index))
    nodes, qw = box_quadrature(boxes, 2 * fs.n_grid)
    f = np.einsum("bn,bqn->bq", a, np.cos(np.einsum("bnd,qd->bqn", w, nodes) + c[:, None]))
    fine = np.stack([(f**k) @ qw for k in (2, 4, 6)], axis=-1)
    coarse = np.asarray(fs.integrals)[:n_check]
    return float(np.max(np.abs(coarse - fine) / np.abs(fine)))


# ----------------------------------------------------------------------------- figure ---


def plot_phi4(res: dict, stem) -> list:
    fig, axes = figure(1, 3, width=3.3, height=3.4)
    a0, a1, a2 = axes[0]
    prop = res["propagator"]
    rr = np.linspace(0, max(prop["r"]) * 1.05, 200)
    net = FreeCosNet(width=res["width"], d_in=res["d_in"], mass=res["mass"], cutoff=res["cutoff"])
    a0.plot(rr, net.propagator(rr), "-", color="k", lw=1, label=r"exact $G_\Lambda(r)$")
    if res["d_in"] == 1:
        a0.plot(rr, np.exp(-res["mass"] * rr) / (2 * res["mass"]), ":", color="0.5", lw=1,
                label=r"$e^{-mr}/2m$ ($\Lambda=\infty$)")
    a0.errorbar(prop["r"], prop["mc"], yerr=prop["mc_err"], fmt="o", ms=3.5, color="C0",
                capsize=2, label=r"Monte Carlo, $\lambda=0$")
    a0.set_xlabel(r"$r = |x - x'|$")
    a0.set_ylabel(r"$G_2(x, x')$")
    a0.set_title("free propagator", fontsize=9)
    a0.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    labels = [f"c{i + 1}" for i in range(len(res["tree_check"]["points"]))]
    k = np.arange(len(labels))
    for j, (tc, col) in enumerate(zip(res["tree_checks"], ("C1", "C3"))):
        off = (j - 0.5) * 0.18
        a1.errorbar(k + off, tc["shift"], yerr=tc["shift_err"], fmt="o", ms=4, color=col,
                    capsize=2, label=rf"MC, $\lambda={tc['coupling']:g}$")
        a1.plot(k + off, tc["tree"], "_", ms=14, mew=2, color=col,
                label=rf"tree, $\lambda={tc['coupling']:g}$")
    nc = res["negative_control"]
    a1.errorbar(k + 0.3, nc["shift"], yerr=nc["err"], fmt="s", ms=3, mfc="none", color="0.4",
                capsize=2, label="weights permuted")
    a1.axhline(0, color="0.7", lw=0.6)
    a1.set_xticks(k, labels)
    a1.set_xlabel("configuration")
    a1.set_ylabel(r"$G_{4,c}^{\lambda} - G_{4,c}^{0}$")
    a1.set_title(r"O($\lambda$): tree vs Monte Carlo", fontsize=9)
    a1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    tc = res["tree_check"]
    w = 0.25
    a2.bar(k - w, tc["free_exact"], w, color="C2", label=r"$1/N$ part (exact, $\lambda=0$)")
    a2.bar(k, tc["tree"], w, color="C1", label=rf"$\lambda$ part (tree, $\lambda={tc['coupling']:g}$)")
    a2.errorbar(k + w, tc["mc"], yerr=tc["mc_err"], fmt="o", ms=4, color="k", capsize=2,
                label="Monte Carlo total")
    a2.plot(k + w, np.add(tc["free_exact"], tc["tree"]), "_", ms=12, mew=2, color="C3",
            label="exact + tree")
    a2.axhline(0, color="0.7", lw=0.6)
    a2.set_xticks(k, labels)
    a2.set_xlabel("configuration")
    a2.set_ylabel(r"$G_{4,c}$")
    a2.set_title(r"$1/N$ part vs $\lambda$ part", fontsize=9)
    a2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    def _pt(v):
        return f"{v:g}" if not isinstance(v, list) else "(" + ",".join(f"{u:g}" for u in v) + ")"

    pts = "; ".join(f"c{i + 1} = ({', '.join(_pt(v) for v in p)})"
                    for i, p in enumerate(tc["points"]))
    fig.suptitle(f"Cos-net free scalar + $\\lambda\\phi^4/4!$ by reweighting: $d_{{in}}$ = "
                 f"{res['d_in']}, N = {res['width']}, m = {res['mass']:g}, "
                 f"$\\Lambda$ = {res['cutoff']:g} (sharp), V = {res['box'][0]}, "
                 f"{res['n_nets']:,} networks, $\\delta m^2 = -\\lambda G(0)/2$\n{pts}",
                 fontsize=8)
    return save_figure(fig, stem)


# ----------------------------------------------------------------------- study interface ---

MC_DEFINITION = (
    "mc = free_exact + [k4(lambda) - k4(0)]_MC on the same networks (control variate with the "
    "exactly known lambda = 0 value); mc_err = delete-one-block jackknife error of that "
    "difference, each block leaving numerator and weight normalisation; deformation "
    "S_int = lambda/4! int_V phi^4 + mass_shift/2 int_V phi^2 with mass_shift = -lambda G(0)/2 "
    "(normal ordering; the O(lambda) 4-pt tree is unchanged). Check: |mc - free_exact - tree| / "
    "mc_err <= 3 and |tree| / mc_err >= 5 at every point.")
TITLE = "Free scalar from a cos-net, φ⁴ by reweighting (physics.md §12)"
CAPTION = ("Tests φ⁴ engineered in the parameter space of a cos-net whose GP is the free scalar "
           "with a sharp cutoff: the Monte Carlo free propagator against G_Λ, and the O(λ) "
           "connected 4-pt function of the reweighted ensemble (control variate on common draws, "
           "jackknife errors) against the tree diagram, beside the exact 1/N part; the permuted-"
           "weights control shows no signal.")
SCHEMA = {"d_in": choice(1, 2), "width": integer(1), "mass": real(positive=True),
          "cutoff": real(positive=True), "box": float_list(), "couplings": float_list(True),
          "n_nets": N_NETS, "n_blocks": integer(4, 1000), "seed": SEED}
HELP = {"mass": "mass m of the free field", "cutoff": "sharp frequency cutoff Λ",
        "box": "box V = [lo, hi] per dimension (two numbers)",
        "couplings": "couplings λ (the last one is the JSON's tree_check)",
        "n_blocks": "jackknife blocks"}
DEFAULTS = {
    "quick": {"d_in": 1, "width": 200, "mass": 1.0, "cutoff": 5.0, "box": [-1.5, 2.0],
              "couplings": [0.1, 0.2], "n_nets": 20_000, "n_blocks": 20, "seed": 0},
    "full": {"d_in": 1, "width": 200, "mass": 1.0, "cutoff": 5.0, "box": [-1.5, 2.0],
             "couplings": [0.1, 0.2], "n_nets": 200_000, "n_blocks": 40, "seed": 0},
}
SMALL = {"d_in": 1, "width": 20, "mass": 1.0, "cutoff": 3.0, "box": [-1.0, 1.5],
         "couplings": [0.2, 0.4], "n_nets": 400, "n_blocks": 4, "seed": 0}


def run(config: dict, *, progress: bool = False) -> dict:
    if len(config["box"]) != 2:
        raise ValueError(f"configuration key `box`: must be [lo, hi], got {config['box']}")
    res = phi4_network(d_in=config["d_in"], width=config["width"], mass=config["mass"],
                       cutoff=config["cutoff"], box=tuple(config["box"]),
                       couplings=tuple(config["couplings"]), n_nets=config["n_nets"],
                       n_blocks=config["n_blocks"], seed=config["seed"])
    res["caption"] = CAPTION
    return {f"phi4_network_d{config['d_in']}": res}


def plot(result: dict, stem) -> list:
    return plot_phi4(result, stem)


def _maxabs(v):
    return float(np.max(np.abs(v)))


def summary(config: dict, results: dict) -> list[tuple]:
    rows = []
    for res in results.values():
        for tc in res["tree_checks"]:
            zmax, rmin = _maxabs(tc["z"]), float(np.min(tc["resolution"]))
            status = ("ok" if zmax <= 3 and rmin >= 5 else
                      f"FAILED: max |z| = {zmax:.1f}, min |tree|/err = {rmin:.1f}")
            rows.append((f"φ⁴ net: O(λ) 4-pt vs tree, λ = {tc['coupling']:g} "
                         f"(ESS {100 * tc['ess_fraction']:.2f} %)",
                         f"max |z| {zmax:.1f} over {len(tc['z'])} configurations; |tree|/err "
                         f"≥ {rmin:.1f}; amplitude s = {pm(tc['amplitude'], tc['amplitude_err'])}"
                         f" (s = 1.2 at {tc['z_amplitude_1_2']:.1f}σ)", "|z| ≤ 3, ≥ 5σ", status))
        for t in res["tadpole_checks"]:
            zmax = _maxabs(t["z"])
            rows.append((f"φ⁴ net: 2-pt shift vs tadpole/mass term, λ = {t['coupling']:g}, "
                         f"δm² = {t['mass_shift']:.3g}",
                         f"max |z| {zmax:.1f}, |pred|/err ≥ {float(np.min(t['resolution'])):.1f}",
                         "|z| ≤ 3", "ok" if zmax <= 3 else f"FAILED: max |z| = {zmax:.1f}"))
        nz = _maxabs(res["negative_control"]["z"])
        rows.append(("φ⁴ net: negative control (weights permuted)", f"max |z| {nz:.1f}",
                     "|z| ≤ 3", "ok" if nz <= 3 else f"FAILED: max |z| = {nz:.1f}"))
        pz = res["propagator"]["max_abs_z"]
        rows.append(("φ⁴ net: free propagator MC vs G_Λ", f"max |z| {pz:.1f}", "|z| ≤ 4",
                     "ok" if pz <= 4 else f"FAILED: max |z| = {pz:.1f}"))
    return rows
