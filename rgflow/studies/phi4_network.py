"""A free scalar built from a cos-net, and φ⁴ engineered in its parameter space (physics.md §12).

The ensemble of `rgflow.FreeCosNet` (width N, mass m, sharp cutoff Λ) is the free scalar with
propagator G_Λ at N → ∞ plus exactly known 1/N couplings. Reweighting each network by
exp(−S_int[f]), S_int = ∫_V [(λ/4!) f⁴ + (δm²/2) f²], gives φ⁴ theory with the network's cutoff
inside the box V, on the same draws for every (λ, δm²).

**Tree check** (the JSON contract `tree_check`). At each configuration T = (x₁..x₄):

    mc      = G4_c,exact(N; λ = 0) + [κ4_λ − κ4_0]_MC + (λ/4!) (Z̄_T − E₀[Z_T])
    mc_err  = delete-one-block jackknife error of the last two terms (weights, their
              normalisation and Z̄ left out with each block)
    tree    = −λ ∫_V d^dy Π_i G_Λ(x_i − y)   (same Gauss–Legendre nodes as the weights)

mc is the connected 4-pt function of the deformed ensemble, free part included, estimated with
two control variates of exactly known mean: the same draws at λ = 0 (their 4-pt function is
known exactly at width N) and Z_T = :f_T: ∫_V :m_T⁴: (`rgflow.tree_control_variate`: the part
of the weight predictable from the fields at T, its mean from the exact finite-N moments). Both
are unbiased; Z_T cuts the variance 4–17× (quick profile; `variance_reduction`). So
mc − free_exact − tree = 0 up to O(λ², λ/N) and noise. The deformation is normal-ordered,
δm² = −λ G_Λ(0)/2 (it cancels the tadpole; the O(λ) 4-pt function is unchanged at N = ∞ and the
weights fluctuate half as much). O(λ²) is kept below the noise by a small λ (ESS ≥ 99.9 %), and
linearity is checked at two couplings on the same draws. λ → 1.2λ (`exclusion_1_2`): the
amplitude s of mc − free_exact = s · tree, least squares with unit weights over all
configurations inside the jackknife; excluded when (1.2 − s)/σ_s ≥ 5.

**Tadpole check.** The 2-pt shift at ≥ 3 couplings λ_k (δm² = 0) on the same draws is fitted by
a λ + b λ² (jackknife; χ² with the jackknife covariance of the residuals): a against the tadpole
−(G(0)/2) ∫_V G G, b the resolved O(λ²); the same for pure mass terms δm² against −∫_V G G.
Negative control: the weights permuted across networks (same weight distribution, no
correlation with the fields) must give no signal.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
from scipy import stats

from .._deform import (
    Deformation,
    reweighted_jackknife,
    sample_fields,
    tadpole_two_point,
    tree_four_point,
)
from .._ensemble import connected_from_moments
from .._freefield import FreeCosNet
from .._treecv import tree_control_variate
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
                 couplings=(0.1, 0.2), tadpole_couplings=(0.05, 0.1, 0.15, 0.2),
                 n_nets=20_000, n_blocks=20, seed=0) -> dict:
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

    def fs_jackknife(fn, deformations):
        return reweighted_jackknife(fn, [(fs, dd) for dd in deformations], extra=cv.values)

    g0 = net.g0

    def wick(lam):
        return Deformation(lam, mass_shift=-0.5 * lam * g0)

    out = {"mass": mass, "cutoff": cutoff, "box": boxes, "width": width, "d_in": d_in,
           "regulator": "sharp", "n_nets": n_nets, "n_blocks": n_blocks, "seed": seed,
           "n_grid": fs.n_grid, "g0": g0,
           "points": [[float(v) for v in x] for x in xs], "couplings": list(couplings)}
    # --- the free propagator: Monte Carlo at λ = 0 against G_Λ(Δx)
    g2, e2 = fs.connected(2, 0.0)
    r = np.abs(xs[:, None, 0] - xs[None, :, 0])
    iu = np.triu_indices(p)
    out["propagator"] = {"dx": r[iu].tolist(), "mc": g2[iu].tolist(), "mc_err": e2[iu].tolist(),
                         "exact": np.asarray(net.propagator(r[iu])).tolist()}
    out["propagator"]["max_abs_z"] = float(np.max(np.abs(
        (g2[iu] - out["propagator"]["exact"]) / e2[iu])))
    # --- the free 4-pt function (1/N part) at λ = 0: plain Monte Carlo against exact
    k0, k0e = fs.connected(4, 0.0, full=False)
    out["free_check"] = {"mc": k0[cidx].tolist(), "mc_err": k0e[cidx].tolist(),
                         "exact": free_exact.tolist(),
                         "z": ((k0[cidx] - free_exact) / k0e[cidx]).tolist()}
    # --- the control variate Z_T (physics.md §12): per network, with its exact mean at width N
    cv = tree_control_variate(fs, np.asarray(CONFIGS))
    zerr = cv.values.std(axis=0, ddof=1) / np.sqrt(n_nets)
    out["control_variate"] = {
        "definition": CV_DEFINITION, "mean_mc": cv.values.mean(0).tolist(),
        "mean_err": zerr.tolist(), "mean_exact": cv.mean.tolist(),
        "z": ((cv.values.mean(0) - cv.mean) / zerr).tolist()}

    def conn4(m):
        return connected_from_moments(m, p, 4)[..., cidx]

    def cv_shifts(ms, zbar, lams):
        """κ4(λ_k) − κ4(0) + (λ_k/4!)(Z̄ − E₀Z) for ms = [m(λ_1), .., m(λ_K), m(0)]."""
        c0 = conn4(ms[-1])
        return [conn4(m) - c0 + (lk / 24) * (zbar - cv.mean) for m, lk in zip(ms[:-1], lams)]

    # --- tree check at each coupling (normal-ordered deformation)
    per = []
    for lam in couplings:
        d = wick(lam)
        tree = tree_four_point(net, xs, boxes, fs.n_grid, coupling=lam, full=False)[cidx]

        def both(ms, zbar, lam=lam, tree=tree):
            plain = conn4(ms[0]) - conn4(ms[1])
            with_cv = cv_shifts(ms, zbar, [lam])[0]
            return np.concatenate([with_cv, plain, _amplitude(with_cv, tree)[..., None],
                                   _amplitude(plain, tree)[..., None]], axis=-1)

        v, ve = fs_jackknife(both, [d, 0.0])
        c = len(cidx)
        shift, err, plain, plain_err = v[:c], ve[:c], v[c:2 * c], ve[c:2 * c]
        s, s_err, sp, sp_err = v[-2], ve[-2], v[-1], ve[-1]
        per.append({"coupling": lam, "mass_shift": d.mass_shift, "ess": fs.ess(d),
                    "ess_fraction": fs.ess(d) / n_nets, "shift": shift.tolist(),
                    "shift_err": err.tolist(), "tree": tree.tolist(),
                    "mc": (free_exact + shift).tolist(), "mc_err": err.tolist(),
                    "shift_plain": plain.tolist(), "shift_plain_err": plain_err.tolist(),
                    "variance_reduction": ((plain_err / err) ** 2).tolist(),
                    "z": ((shift - tree) / err).tolist(),
                    "z_plain": ((plain - tree) / plain_err).tolist(),
                    "resolution": (np.abs(tree) / err).tolist(),
                    "z_no_tree": (shift / err).tolist(),
                    "amplitude": float(s), "amplitude_err": float(s_err),
                    "amplitude_plain": float(sp), "amplitude_plain_err": float(sp_err),
                    "z_amplitude_1": float((s - 1) / s_err),
                    "z_amplitude_1_2": float((1.2 - s) / s_err),
                    "z_amplitude_1_2_plain": float((1.2 - sp) / sp_err)})
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
                         "definition": MC_DEFINITION,
                         "exclusion_1_2": {"rule": EXCLUSION_RULE,
                                           "amplitude": main["amplitude"],
                                           "amplitude_err": main["amplitude_err"],
                                           "z": main["z_amplitude_1_2"],
                                           "z_without_control_variate":
                                               main["z_amplitude_1_2_plain"],
                                           "required": 5.0}}
    # --- linearity: shift(λ2) − (λ2/λ1) shift(λ1) on the same draws (O(λ²) + noise)
    if len(couplings) >= 2:
        l1, l2 = couplings[0], couplings[-1]

        def nonlin(ms, zbar):
            s1, s2 = cv_shifts(ms, zbar, [l1, l2])
            return s2 - (l2 / l1) * s1

        v, ve = fs_jackknife(nonlin, [wick(l1), wick(l2), 0.0])
        out["nonlinearity"] = {"description": NONLINEARITY,
                               "value": v.tolist(), "err": ve.tolist(),
                               "z": (v / ve).tolist(),
                               "relative_to_tree": (v / np.asarray(main["tree"])).tolist()}
        # the O(λ) slope with the λ² term removed (shift_k = a λ_k + b λ_k²), scaled to λ2
        tree2 = np.asarray(main["tree"])

        def slope(ms, zbar):
            s1, s2 = cv_shifts(ms, zbar, [l1, l2])
            a = (s1 * l2**2 - s2 * l1**2) / (l1 * l2 * (l2 - l1))
            return np.concatenate([a * l2, _amplitude(a * l2, tree2)[..., None]], axis=-1)

        v, ve = fs_jackknife(slope, [wick(l1), wick(l2), 0.0])
        out["slope_fit"] = {"coupling": l2, "linear_part": v[:-1].tolist(),
                            "err": ve[:-1].tolist(), "tree": tree2.tolist(),
                            "z": ((v[:-1] - tree2) / ve[:-1]).tolist(),
                            "amplitude": float(v[-1]), "amplitude_err": float(ve[-1]),
                            "z_amplitude_1_2": float((1.2 - v[-1]) / ve[-1])}
    # --- 2-pt shift at O(h), h = λ (δm² = 0) or a pure mass term δm²: the derivatives at
    # h = 0 (exact on the draws) against the tadpole −(G(0)/2) ∫_V G G and −∫_V G G, and the
    # fit a h + b h² over the couplings (its χ² shows what a low-order fit on common draws is)
    unit = tadpole_two_point(net, xs, boxes, fs.n_grid, mass_shift=1.0, full=False)[pidx]
    lams_t = list(tadpole_couplings)
    out["tadpole_taylor"] = _taylor(fs, pidx, 0.5 * g0 * unit, kind="coupling")
    out["mass_taylor"] = _taylor(fs, pidx, unit, kind="mass")
    out["tadpole_fit"] = _quadratic_fit(fs, [Deformation(h) for h in lams_t], lams_t, pidx,
                                        0.5 * g0 * unit)
    for fit in (out["tadpole_taylor"], out["mass_taylor"], out["tadpole_fit"]):
        fit["pairs"] = [list(q) for q in TADPOLE_PAIRS]
    tf = out["tadpole_fit"]
    pvals = [float(stats.chi2.sf(c, tf["dof"])) for c in tf["chi2"]] if tf["dof"] > 0 else []
    tf["accepted"] = bool(pvals) and min(pvals) >= 0.01
    if not tf["accepted"]:
        tf["reason"] = (
            "rejected: the fit a λ + b λ² does not describe the 2-pt shifts on common draws "
            "(χ²/dof = " + ", ".join(f"{c:.0f}" for c in (tf["chi2_per_dof"] or [])) +
            f" for dof = {tf['dof']}; higher orders are resolved); do not use a, b from it — "
            "use tadpole_taylor (exact derivatives at λ = 0 on the draws)")
    # the direct comparison at each coupling (O(λ²) included: the fit decides)
    tad = []
    for lam_t in lams_t:
        d = Deformation(lam_t)
        s2, s2e = fs.connected_shift(2, d, 0.0, full=False)
        pred = lam_t * 0.5 * g0 * unit
        tad.append({"coupling": lam_t, "mass_shift": 0.0, "pairs": [list(q) for q in
                                                                    TADPOLE_PAIRS],
                    "shift": s2[pidx].tolist(), "err": s2e[pidx].tolist(),
                    "prediction": pred.tolist(),
                    "z": ((s2[pidx] - pred) / s2e[pidx]).tolist(),
                    "resolution": (np.abs(pred) / s2e[pidx]).tolist()})
    out["tadpole_checks"] = tad
    # --- negative control: weights permuted across networks (same estimator, control variate
    # included)
    perm = np.random.default_rng(seed).permutation(n_nets)
    shuffled = eqx.tree_at(lambda f: f.integrals, fs, np.asarray(fs.integrals)[perm])
    ns, nse = reweighted_jackknife(lambda ms, zbar: cv_shifts(ms, zbar, [lam])[0],
                                   [(shuffled, wick(lam)), (shuffled, 0.0)], extra=cv.values)
    out["negative_control"] = {"coupling": lam, "shift": ns.tolist(),
                               "err": nse.tolist(), "z": (ns / nse).tolist(),
                               "tree": main["tree"]}
    # --- the grid: ∫ f⁴ on n_grid against 2 n_grid nodes per axis (256 networks)
    out["grid_error_rel"] = _grid_error(net, fs, key, boxes)
    return out


def _taylor(fs, pidx, slope_exact, *, kind) -> dict:
    """The first two λ-derivatives of the reweighted 2-pt function at λ = 0 on the draws:
    δG2(h) = −h κ(X, S') + (h²/2) κ(X, S', S') + O(h³), X = f_i f_j, S' = ∂S_int/∂h
    (∫_V f⁴/4! for h = λ, ∫_V f²/2 for h = δm²), κ the joint cumulants (plain means over the
    same networks, delete-one-block jackknife): a = −κ(X, S') against the exact slope, b =
    κ(X, S', S')/2 the O(h²) coefficient. No truncation: exact derivatives of the estimator."""
    sp = np.asarray(fs.integrals)[:, 1] / 24 if kind == "coupling" else \
        np.asarray(fs.integrals)[:, 0] / 2
    sp = sp - sp.mean()  # a constant shift leaves the cumulants unchanged (better rounding)
    t2 = sorted_tuples(fs.n_points, 2)[pidx]
    x = np.asarray(fs.fields)[:, t2[:, 0]] * np.asarray(fs.fields)[:, t2[:, 1]]
    extra = np.concatenate([x, x * sp[:, None], x * (sp * sp)[:, None], sp[:, None],
                            (sp * sp)[:, None]], axis=1)
    q = len(pidx)

    def fn(ms, e):
        ex, exs, exss, es, ess = (e[..., :q], e[..., q:2 * q], e[..., 2 * q:3 * q],
                                  e[..., 3 * q:3 * q + 1], e[..., 3 * q + 1:])
        k2 = exs - ex * es
        k3 = exss - ex * ess - 2 * es * exs + 2 * ex * es * es
        return np.concatenate([-k2, 0.5 * k3], axis=-1)

    est, err = reweighted_jackknife(fn, [(fs, 0.0)], orders=(2,), extra=extra)
    a, b, sa, sb = est[:q], est[q:], err[:q], err[q:]
    return {"a": a.tolist(), "a_err": sa.tolist(), "a_exact": np.asarray(slope_exact).tolist(),
            "z_a": ((a - slope_exact) / sa).tolist(),
            "resolution_a": (np.abs(slope_exact) / sa).tolist(),
            "b": b.tolist(), "b_err": sb.tolist(), "z_b": (b / sb).tolist()}


def _quadratic_fit(fs, deformations, strengths, pidx, slope_exact, *, degree=2) -> dict:
    """Fit δG2_k = a h_k + b h_k² (h = λ or δm²) to the 2-pt shifts at the strengths h_k on the
    same draws (least squares with unit weights inside a delete-one-block jackknife): a ± σ_a
    against the exact O(h) slope, b ± σ_b (the resolved O(h²)), and χ² of the residuals with
    their jackknife covariance (rank K − 2, pseudo-inverse), dof = K − 2 per pair."""
    h = np.asarray(strengths, dtype=np.float64)
    x = np.stack([h**j for j in range(1, degree + 1)], axis=1)  # (K, degree)
    proj = np.linalg.pinv(x)  # (degree, K)
    k, q = len(h), len(pidx)

    def fn(ms):
        c0 = ms[-1][2][..., pidx]
        y = np.stack([m[2][..., pidx] - c0 for m in ms[:-1]], axis=-2)  # (..., K, Q)
        ab = np.einsum("jk,...kq->...jq", proj, y)
        r = y - np.einsum("kj,...jq->...kq", x, ab)
        return np.concatenate([ab.reshape(ab.shape[:-2] + (degree * q,)),
                               r.reshape(r.shape[:-2] + (k * q,))], axis=-1)

    est, err, reps = reweighted_jackknife(fn, [(fs, d) for d in deformations] + [(fs, 0.0)],
                                          orders=(2,), replicates=True)
    a, b = est[:q], est[q:2 * q]
    sa, sb = err[:q], err[q:2 * q]
    res, rreps = est[degree * q:].reshape(k, q), reps[:, degree * q:].reshape(-1, k, q)
    nb = rreps.shape[0]
    chi2 = []
    for j in range(q):
        dev = rreps[:, :, j] - rreps[:, :, j].mean(0)
        cov = (nb - 1) / nb * dev.T @ dev
        chi2.append(float(res[:, j] @ np.linalg.pinv(cov, rcond=1e-8, hermitian=True)
                          @ res[:, j]))
    dof = k - degree
    return {"strengths": h.tolist(), "a": a.tolist(), "a_err": sa.tolist(),
            "a_exact": np.asarray(slope_exact).tolist(),
            "z_a": ((a - slope_exact) / sa).tolist(),
            "resolution_a": (np.abs(slope_exact) / sa).tolist(),
            "b": b.tolist(), "b_err": sb.tolist(), "z_b": (b / sb).tolist(),
            "chi2": chi2, "dof": dof,
            "chi2_per_dof": [c / dof for c in chi2] if dof > 0 else None}


def _grid_error(net, fs, key, boxes, n_check=64):
    """max relative difference of ∫f², ∫f⁴, ∫f⁶ on n_grid against 2 n_grid nodes per axis, for
    the first `n_check` networks (NumPy on the fine grid: no new compiled program)."""
    from .._deform import box_quadrature
    from .._freefield import draw_jit

    # the batch size `sample_fields` compiled `draw_jit` for (no new program), first n_check
    q = fs.n_grid ** net.d_in
    batch = max(8, min(4096, 2**21 // (net.width * (q + fs.n_points))))
    index = jax.numpy.arange(max(batch, n_check), dtype=jax.numpy.uint32)
    a, c, w = (np.asarray(v)[:n_check] for v in draw_jit(net, key, index))
    nodes, qw = box_quadrature(boxes, 2 * fs.n_grid)
    f = np.einsum("bn,bqn->bq", a, np.cos(np.einsum("bnd,qd->bqn", w, nodes) + c[:, None]))
    fine = np.stack([(f**k) @ qw for k in (2, 4, 6)], axis=-1)
    coarse = np.asarray(fs.integrals)[:n_check]
    return float(np.max(np.abs(coarse - fine) / np.abs(fine)))


# ----------------------------------------------------------------------------- figure ---


def plot_phi4(res: dict, stem) -> list:
    fig, axes = figure(1, 3, width=3.5, height=3.7)
    a0, a1, a2 = axes[0]
    prop = res["propagator"]
    rr = np.linspace(0, max(prop["dx"]) * 1.05, 200)
    net = FreeCosNet(width=res["width"], d_in=res["d_in"], mass=res["mass"], cutoff=res["cutoff"])
    a0.plot(rr, net.propagator(rr), "-", color="k", lw=1, label=r"exact $G_\Lambda(\Delta x)$")
    if res["d_in"] == 1:
        a0.plot(rr, np.exp(-res["mass"] * rr) / (2 * res["mass"]), ":", color="0.5", lw=1,
                label=r"$e^{-m\Delta x}/2m$ ($\Lambda=\infty$)")
    # the point pairs that share a separation, side by side (offset 0.025 each)
    dx = np.asarray(prop["dx"])
    off = np.zeros_like(dx)
    for v in np.unique(dx):
        idx = np.nonzero(dx == v)[0]
        off[idx] = (np.arange(idx.size) - (idx.size - 1) / 2) * 0.025
    a0.errorbar(dx + off, prop["mc"], yerr=prop["mc_err"], fmt="o", ms=2.5, color="C0",
                capsize=1.5, elinewidth=0.8,
                label=r"Monte Carlo, $\lambda=0$ (every pair; same $\Delta x$ side by side)")
    a0.set_xlabel(r"$\Delta x = |x - x'|$")
    a0.set_ylabel(r"$G_2(x, x')$")
    a0.set_title("(a) free propagator", fontsize=9)
    a0.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    labels = [f"c{i + 1}" for i in range(len(res["tree_check"]["points"]))]
    k = np.arange(len(labels))
    for j, (tc, col) in enumerate(zip(res["tree_checks"], ("C1", "C3"))):
        off = (j - 0.5) * 0.18
        a1.errorbar(k + off, tc["shift"], yerr=tc["shift_err"], fmt="o", ms=3, color=col,
                    capsize=2, label=rf"MC, $\lambda={tc['coupling']:g}$")
        a1.plot(k + off, tc["tree"], "_", ms=14, mew=2, color=col,
                label=rf"tree, $\lambda={tc['coupling']:g}$")
    nc = res["negative_control"]
    a1.errorbar(k + 0.3, nc["shift"], yerr=nc["err"], fmt="s", ms=3, mfc="none", color="0.4",
                capsize=2, label=rf"weights permuted, $\lambda={nc['coupling']:g}$")
    a1.axhline(0, color="0.7", lw=0.6)
    a1.set_xticks(k, labels)
    a1.set_xlabel("configuration")
    a1.set_ylabel(r"$G_{4,c}^{\lambda} - G_{4,c}^{0}$")
    a1.set_title(r"(b) O($\lambda$): tree vs Monte Carlo (with $Z_T$)", fontsize=9)
    a1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    tc = res["tree_check"]
    w = 0.25
    a2.bar(k - w, tc["free_exact"], w, color="C2",
           label=r"$1/N$ part: exact, $\lambda=0$ (not resolved by this MC)")
    a2.bar(k, tc["tree"], w, color="C1", label=rf"$\lambda$ part: tree, $\lambda={tc['coupling']:g}$")
    a2.errorbar(k + w, tc["mc"], yerr=tc["mc_err"], fmt="o", ms=3, color="k", capsize=2,
                label=r"exact $1/N$ part + MC $\lambda$ part")
    a2.plot(k + w, np.add(tc["free_exact"], tc["tree"]), "_", ms=12, mew=2, color="C3",
            label=r"exact $1/N$ part + tree")
    a2.axhline(0, color="0.7", lw=0.6)
    a2.set_xticks(k, labels)
    a2.set_xlabel("configuration")
    a2.set_ylabel(r"$G_{4,c}$")
    a2.set_title(r"(c) $1/N$ part vs $\lambda$ part", fontsize=9)
    a2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    def _pt(v):
        return f"{v:g}" if not isinstance(v, list) else "(" + ",".join(f"{u:g}" for u in v) + ")"

    pts = "; ".join(f"c{i + 1} = ({', '.join(_pt(v) for v in p)})"
                    for i, p in enumerate(tc["points"]))
    lams = ", ".join(f"{v:g}" for v in res["couplings"])
    fig.suptitle(f"Cos-net free scalar + $\\lambda\\phi^4/4!$ by reweighting: $d_{{in}}$ = "
                 f"{res['d_in']}, N = {res['width']}, m = {res['mass']:g}, "
                 f"$\\Lambda$ = {res['cutoff']:g} (sharp), V = {res['box'][0]}, "
                 f"{res['n_nets']:,} networks, $\\lambda$ = {lams}, "
                 f"$\\delta m^2 = -\\lambda G(0)/2$\n{pts}",
                 fontsize=8)
    return save_figure(fig, stem)


# ----------------------------------------------------------------------- study interface ---

MC_DEFINITION = (
    "mc = free_exact + [k4(lambda) - k4(0)]_MC + (lambda/24) (mean Z_T - E0[Z_T]) on the same "
    "networks: the connected 4-pt of the deformed ensemble (free part included) with two "
    "control variates of exactly known mean (the lambda = 0 draws, and Z_T, see "
    "control_variate); mc_err = delete-one-block jackknife error (each block leaving numerator, "
    "weight normalisation and mean Z); deformation S_int = lambda/4! int_V phi^4 + mass_shift/2 "
    "int_V phi^2 with mass_shift = -lambda G(0)/2 (normal ordering; the O(lambda) 4-pt tree is "
    "unchanged). Check: |mc - free_exact - tree| / mc_err <= 3 and |tree| / mc_err >= 5 at "
    "every point.")
CV_DEFINITION = (
    "Z_T = :f_i f_j f_k f_l: * int_V [m^4 - 6 s^2 m^2 + 3 s^4], m(y) = g(y)^T K^-1 f_T, "
    "s^2 = g^T K^-1 g (the Gaussian conditional mean of :f(y)^4: given the fields at T); "
    "E0[Z_T] exact at width N from the partition sum over neurons; mean_mc +- mean_err is the "
    "plain Monte Carlo mean over the same networks (z: its unbiasedness).")
EXCLUSION_RULE = (
    "s = sum_T (mc - free_exact)_T tree_T / sum_T tree_T^2 over all configurations (unit "
    "weights), its error by the same delete-one-block jackknife; lambda -> 1.2 lambda is "
    "excluded when (1.2 - s)/sigma_s >= 5.")
TITLE = "Free scalar from a cos-net, φ⁴ by reweighting (physics.md §12)"
NONLINEARITY = (
    "shift(lambda2) - (lambda2/lambda1) shift(lambda1) of the connected 4-pt on the same draws "
    "(lambda1, lambda2 = the first and last `couplings`): zero at O(lambda), so it is the "
    "O(lambda^2) part; z = value/err (|z| >= 3 detects it), relative_to_tree = value/tree(lambda2).")


def _caption(res: dict) -> str:
    lams = ", ".join(f"{v:g}" for v in res["couplings"])
    tc = res["tree_checks"]
    zt = "; ".join(f"λ = {t['coupling']:g}: max |z| = {_maxabs(t['z']):.1f}, |tree|/err ≥ "
                   f"{float(np.min(t['resolution'])):.0f}" for t in tc)
    ex = res["tree_check"]["exclusion_1_2"]
    fc = res["free_check"]
    fe, free = np.asarray(fc["mc_err"]), np.abs(np.asarray(fc["exact"]))
    nc = res["negative_control"]
    nl = res.get("nonlinearity")
    nl_text = (f" The O(λ²) part (JSON nonlinearity) is detected at up to "
               f"{_maxabs(nl['z']):.1f}σ, {100 * _maxabs(nl['relative_to_tree']):.1f} % of the "
               "tree." if nl else "")
    tf = res["tadpole_fit"]
    tf_text = ("" if tf.get("accepted", True) else
               " The 2-pt fit a λ + b λ² (tadpole_fit, χ²/dof = "
               + ", ".join(f"{c:.0f}" for c in tf["chi2_per_dof"] or []) +
               ") is rejected and marked so in the JSON; the 2-pt tadpole is checked by the "
               "exact derivatives at λ = 0 (tadpole_taylor).")
    return (
        "φ⁴ engineered in the parameter space of a cos-net whose GP is the free scalar with a "
        f"sharp cutoff: d_in = {res['d_in']}, N = {res['width']}, m = {res['mass']:g}, "
        f"Λ = {res['cutoff']:g}, box V = {res['box'][0]}, {res['n_nets']} networks (one draw, "
        f"reweighted), λ = {lams} with δm² = −λ G_Λ(0)/2 (normal ordering). "
        "(a) Monte Carlo 2-pt function at λ = 0 against the exact G_Λ(Δx), Δx = |x − x'|, for "
        "every pair of the points (pairs at the same Δx drawn side by side); max |z| = "
        f"{res['propagator']['max_abs_z']:.1f}. "
        "(b) O(λ) shift of the connected 4-pt function G_{4,c}^λ − G_{4,c}^0 at the five "
        "configurations c1–c5 (title) against the tree diagram −λ ∫_V Π G_Λ: " + zt +
        f"; amplitude s (shift = s·tree) = {pm(ex['amplitude'], ex['amplitude_err'])} at "
        f"λ = {res['coupling']:g}, so λ → 1.2λ is excluded at {ex['z']:.1f}σ "
        f"({ex['z_without_control_variate']:.1f}σ without Z_T). The Monte Carlo points use two "
        "control variates of exactly known mean on the same networks (the λ = 0 draws and Z_T "
        "= :f_T: ∫_V :m_T⁴:, the weight predicted from the fields at the four points), "
        "delete-one-block jackknife errors (1σ; where none shows it is smaller than the "
        f"symbol). Negative control, weights permuted across networks at λ = {nc['coupling']:g}: "
        f"max |z| = {_maxabs(nc['z']):.1f} (no signal). "
        "(c) The black points are exact 1/N part + Monte Carlo λ part: the 1/N part enters "
        "them exactly through the λ = 0 control variate, so this panel checks the λ part only. "
        "A plain Monte Carlo of the λ = 0 connected 4-pt function on this ensemble has errors "
        f"{1e3 * fe.min():.0f}–{1e3 * fe.max():.0f}×10⁻³, {(fe / free).min():.0f}–"
        f"{(fe / free).max():.0f}× the 1/N part ({1e3 * free.max():.1f}×10⁻³; max |z| = "
        f"{_maxabs(fc['z']):.1f}): the ensemble does not resolve the 1/N part." + nl_text
        + tf_text)


SCHEMA = {"d_in": choice(1, 2), "width": integer(1), "mass": real(positive=True),
          "cutoff": real(positive=True), "box": float_list(), "couplings": float_list(True),
          "tadpole_couplings": float_list(True),
          "n_nets": N_NETS, "n_blocks": integer(4, 1000), "seed": SEED}
HELP = {"mass": "mass m of the free field", "cutoff": "sharp frequency cutoff Λ",
        "box": "box V = [lo, hi] per dimension (two numbers)",
        "couplings": "couplings λ (the last one is the JSON's tree_check)",
        "tadpole_couplings": "couplings λ of the 2-pt fit a λ + b λ² (at least 3)",
        "n_blocks": "jackknife blocks"}
DEFAULTS = {
    "quick": {"d_in": 1, "width": 200, "mass": 1.0, "cutoff": 5.0, "box": [-1.5, 2.0],
              "couplings": [0.1, 0.2],
              "tadpole_couplings": [0.05, 0.1, 0.15, 0.2], "n_nets": 20_000, "n_blocks": 20,
              "seed": 0},
    "full": {"d_in": 1, "width": 200, "mass": 1.0, "cutoff": 5.0, "box": [-1.5, 2.0],
             "couplings": [0.1, 0.2],
             "tadpole_couplings": [0.05, 0.1, 0.15, 0.2], "n_nets": 200_000, "n_blocks": 40,
             "seed": 0},
}
SMALL = {"d_in": 1, "width": 20, "mass": 1.0, "cutoff": 3.0, "box": [-1.0, 1.5],
         "couplings": [0.2, 0.4],
         "tadpole_couplings": [0.1, 0.2, 0.4], "n_nets": 400, "n_blocks": 4, "seed": 0}


def run(config: dict, *, progress: bool = False) -> dict:
    if len(config["box"]) != 2:
        raise ValueError(f"configuration key `box`: must be [lo, hi], got {config['box']}")
    if len(config["tadpole_couplings"]) < 3:
        raise ValueError("configuration key `tadpole_couplings`: the fit a λ + b λ² needs at "
                         f"least 3 couplings, got {config['tadpole_couplings']}")
    res = phi4_network(d_in=config["d_in"], width=config["width"], mass=config["mass"],
                       cutoff=config["cutoff"], box=tuple(config["box"]),
                       couplings=tuple(config["couplings"]),
                       tadpole_couplings=tuple(config["tadpole_couplings"]),
                       n_nets=config["n_nets"],
                       n_blocks=config["n_blocks"], seed=config["seed"])
    res["caption"] = _caption(res)
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
                         f"≥ {rmin:.1f} (variance ÷{min(tc['variance_reduction']):.0f}–"
                         f"{max(tc['variance_reduction']):.0f} by Z_T)", "|z| ≤ 3, ≥ 5σ", status))
        ex = res["tree_check"]["exclusion_1_2"]
        z1 = (ex["amplitude"] - 1) / ex["amplitude_err"]
        rows.append((f"φ⁴ net: amplitude s (mc − free = s·tree), λ = {res['coupling']:g}",
                     f"s = {pm(ex['amplitude'], ex['amplitude_err'])} (s = 1 at {z1:.1f}σ); "
                     f"λ → 1.2λ excluded at {ex['z']:.1f}σ "
                     f"({ex['z_without_control_variate']:.1f}σ without Z_T)",
                     "|s − 1| ≤ 3σ, 1.2 at ≥ 5σ", "ok" if abs(z1) <= 3 and ex["z"] >= 5 else
                     f"FAILED: s = 1 at {z1:.1f}σ, 1.2 at {ex['z']:.1f}σ"))
        cvz = _maxabs(res["control_variate"]["z"])
        rows.append(("φ⁴ net: control variate Z_T, MC mean vs exact E₀[Z_T]",
                     f"max |z| {cvz:.1f}", "|z| ≤ 3", "ok" if cvz <= 3 else
                     f"FAILED: max |z| = {cvz:.1f}"))
        for fit, what in ((res["tadpole_taylor"], "λ: −κ(X, ∫f⁴/4!) vs tadpole"),
                          (res["mass_taylor"], "δm²: −κ(X, ∫f²/2) vs mass insertion")):
            za, zb = _maxabs(fit["z_a"]), _maxabs(fit["z_b"])
            rmin = float(np.min(fit["resolution_a"]))
            rows.append((f"φ⁴ net: O(h) 2-pt slope at h = 0, h = {what}",
                         f"max |z| {za:.1f}, |a|/σ_a ≥ {rmin:.0f}; O(h²) coefficient at "
                         f"max {zb:.1f}σ", "|z| ≤ 3, ≥ 5σ",
                         "ok" if za <= 3 and rmin >= 5 else
                         f"FAILED: max |z| = {za:.1f}, |a|/σ_a ≥ {rmin:.1f}"))
        fit = res["tadpole_fit"]
        rows.append((f"φ⁴ net: fit a λ + b λ² to the 2-pt shifts at λ = "
                     f"{', '.join(f'{h:g}' for h in fit['strengths'])} (common draws)",
                     f"max |z_a| {_maxabs(fit['z_a']):.1f}; χ²/dof = "
                     f"{', '.join(f'{c:.0f}' for c in fit['chi2_per_dof'])} (dof "
                     f"{fit['dof']}): higher orders resolved on common draws; the slope is the derivative",
                     "—", "—"))
        for t in res["tadpole_checks"]:
            rows.append((f"φ⁴ net: 2-pt shift − O(λ) tadpole at λ = {t['coupling']:g} "
                         "(O(λ²) included)", f"max |z| {_maxabs(t['z']):.1f}",
                         "see fit", "—"))
        nz = _maxabs(res["negative_control"]["z"])
        rows.append(("φ⁴ net: negative control (weights permuted)", f"max |z| {nz:.1f}",
                     "|z| ≤ 3", "ok" if nz <= 3 else f"FAILED: max |z| = {nz:.1f}"))
        pz = res["propagator"]["max_abs_z"]
        rows.append(("φ⁴ net: free propagator MC vs G_Λ", f"max |z| {pz:.1f}", "|z| ≤ 4",
                     "ok" if pz <= 4 else f"FAILED: max |z| = {pz:.1f}"))
    return rows
