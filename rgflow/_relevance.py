"""Engineering dimensions from the kernel, dimensionless couplings, the stability matrix and the
relevance of operators (physics.md §7).

## Conventions (derived here once; tests/test_relevance.py checks them)

Mass dimensions with [x] = −1: the cutoff Λ of the box [−Λ, Λ]^d is a length, [Λ] = −1, and
d^d y has dimension −d. The field dimension [f] is read off the kernel numerically: at large a,

    K_W(x, a u) ∝ a^{q}   (each argument scaled separately)  ⇒  [f] = −q,

(ReLU with σ_b = 0: K_W homogeneous of degree 1 in each argument, [f] = −1; bounded kernels such
as Erf: K_W → a direction-dependent constant, [f] = 0; a kernel that decays faster than any
power (Gauss-net K_W) has no power counting: its vertex integrals converge as Λ → ∞, `None`).
The action is dimensionless, so

    [g_k] = d − k[f]          (local g ∫ d^d y f^k)
    [λ2]  = d − 4[f] + 2      (∫ d^d y λ2 |y|² f⁴)
    [λ_NL] = 2d − 4[f]        (λ_NL ∫∫ d^d y d^d z f² f²)

and ĝ = g Λ^{[g]} is dimensionless. The matched coupling needed to hold the correlators fixed
scales as g ∝ Λ^{θ} with the *scaling exponent* θ; power counting predicts θ = −[g] (the vertex
integral grows like Λ^{[g]}), i.e. ĝ → constant (a fixed point of the dimensionless flow), and
θ = 0 for a decaying kernel (the couplings become constants as the cutoff is removed).

**Stability matrix.** Linearising the homogeneous flow (`residual_term=False`, rgflow._beta) at
the Gaussian fixed point g = 0: β = M(Λ) g with M = −(AᵀWA)⁻¹AᵀW ∂_tA (the λ² exchange is
quadratic and drops out at g = 0). Its eigenvalues θ_i are the scaling exponents. For the
dimensionless couplings β̂ = dĝ/dt = [g]ĝ + Λ^{[g]} β, so ∂β̂/∂ĝ|₀ = diag([g]) + D M D⁻¹
(D = diag Λ^{[g]}), with eigenvalues y_i = θ_i + [g_i]: zero when power counting is exact (the
anomalous part of the scaling).

**Relevance.** Λ → ∞ removes the cutoff (physics.md §7: "less relevant at large Λ"). An operator
is classified by the sign of its scaling exponent θ in that direction: relevant if θ > tol (its
coupling grows as the cutoff is removed), marginal if |θ| <= tol (the coupling tends to a
constant), irrelevant if θ < −tol (the coupling dies away); tol = max(`tol`, 3 σ_θ) with σ_θ
propagated from Monte Carlo errors of the matched correlators. Operators are ranked against the
constant quartic λ ∫ f⁴ (the minimal NGP action): Δθ_i = θ_i − θ_λ < 0 beyond errors means
"less relevant than the constant quartic".
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._beta import MatchingProblem, _check_cutoffs, beta_from_tables

__all__ = [
    "field_dimension",
    "coupling_dimensions",
    "predicted_exponents",
    "stability_matrix",
    "scaling_exponents",
    "classify",
    "relevance",
]


def field_dimension(net, xs=None, *, scales=(1e4, 1e6), n_directions: int = 8, seed: int = 0,
                    tol: float = 1e-3) -> dict:
    """The field dimension [f] from the scaling of the vertex propagator K_W (module docstring).

    q = d ln|K_W(x, a u)| / d ln a is computed by autodiff at the large scales a in `scales`,
    for the inputs x (default: a fixed random set) and random unit directions u.

    **Arguments:**

    - `net`: an rgflow network.
    - `xs`: external points `(P, d_in)` (default 4 random points).
    - `scales`: the large scales a at which q is evaluated (the largest is reported).
    - `n_directions`: number of random directions u.
    - `tol`: tolerance for reporting the exponent as converged / rounding to a half-integer.

    **Returns:** dict with `field_dimension` ([f], float, or None for a decaying kernel),
    `exponent` (q at the largest scale, mean over x and u), `exponent_spread` (max − min),
    `exponent_by_scale`, `decaying` (bool), `converged` (|q(a1) − q(a2)| < tol), `joint_exponent`
    (scaling of K_W(a x, a x'), = −2[f] for a homogeneous kernel).
    """
    d = net.d_in
    rng = np.random.default_rng(seed)
    if xs is None:
        xs = rng.uniform(0.2, 1.0, size=(4, d)) * rng.choice([-1.0, 1.0], size=(4, d))
    xs = jnp.asarray(np.asarray(xs, np.float64).reshape(-1, d))
    u = rng.normal(size=(n_directions, d))
    u = jnp.asarray(u / np.linalg.norm(u, axis=1, keepdims=True))

    def logk(log_a, x, uu):
        k = net.kernel_w(x[None], (jnp.exp(log_a) * uu)[None])[0, 0]
        return jnp.log(jnp.abs(k))

    def joint(log_a, x, y):
        a = jnp.exp(log_a)
        return jnp.log(jnp.abs(net.kernel_w((a * x)[None], (a * y)[None])[0, 0]))

    @jax.jit
    def q_and_value(la):
        f = jax.vmap(jax.vmap(jax.value_and_grad(logk), (None, None, 0)), (None, 0, None))
        return f(la, xs, u)

    q = {}
    values = {}
    for a in scales:
        v, g = q_and_value(jnp.log(jnp.asarray(a, jnp.float64)))
        q[a], values[a] = np.asarray(g), np.asarray(v)
    a_max = max(scales)
    # pairs where K_W vanishes identically (e.g. ReLU, σ_b = 0, x and u on opposite rays) carry
    # no scaling information: drop them
    ok = np.isfinite(values[a_max]) & np.isfinite(q[a_max])
    qa = q[a_max][ok]
    decaying = bool(qa.size == 0 or np.mean(qa) < -20)
    x2 = jnp.asarray(rng.normal(size=xs.shape))
    jq = np.asarray(jax.jit(jax.vmap(jax.grad(joint), (None, 0, 0)))(
        jnp.log(jnp.asarray(a_max, jnp.float64)), xs, x2))
    if decaying:
        return {"field_dimension": None, "exponent": float("-inf"), "exponent_spread": None,
                "exponent_by_scale": {str(a): None for a in scales}, "decaying": True,
                "converged": True, "joint_exponent": None}
    q = {a: q[a][ok & np.isfinite(q[a])] for a in scales}
    exps = {str(a): float(np.mean(q[a])) for a in scales}
    q_mean = float(np.mean(qa))
    conv = abs(float(np.mean(q[min(scales)])) - q_mean) < tol
    return {
        "field_dimension": -q_mean,
        "exponent": q_mean,
        "exponent_spread": float(np.max(qa) - np.min(qa)),
        "exponent_by_scale": exps,
        "decaying": False,
        "converged": bool(conv),
        "joint_exponent": float(np.mean(jq[np.isfinite(jq)])) if np.any(np.isfinite(jq)) else None,
    }


def _round_half(x, tol=1e-3):
    r = round(2 * x) / 2
    return r if abs(r - x) < tol else x


def coupling_dimensions(action, field_dim) -> tuple:
    """Engineering dimensions [g] of an action's couplings (module docstring).

    **Arguments:**

    - `action`: an `rgflow._actions.Action`.
    - `field_dim`: [f] (a number), the dict returned by `field_dimension`, or None (decaying
      kernel: no power counting).

    **Returns:** a tuple (order of `action.coupling_names`) of floats, or None entries where no
    engineering dimension is defined (decaying kernel, general nonlocal quartic).
    """
    from ._actions import BilocalQuartic, LocalCoupling, NonlocalQuartic, PolynomialQuartic  # noqa: PLC0415

    if isinstance(field_dim, dict):
        field_dim = field_dim["field_dimension"]
    if field_dim is not None:
        field_dim = _round_half(float(field_dim))
    d = action.net.d_in
    out = []
    for term in action.interactions:
        if field_dim is None:
            out += [None] * len(term.coupling_names)
        elif isinstance(term, LocalCoupling):
            out.append(d - term.order * field_dim)
        elif isinstance(term, PolynomialQuartic):
            out += [d - 4 * field_dim, d - 4 * field_dim + 2]
        elif isinstance(term, BilocalQuartic):
            out.append(2 * d - 4 * field_dim)
        elif isinstance(term, NonlocalQuartic):
            out += [None] * len(term.coupling_names)
        else:
            out += [None] * len(term.coupling_names)
    return tuple(out)


def predicted_exponents(dimensions) -> tuple:
    """Power-counting scaling exponents θ = −[g] (0 where the dimension is None: decaying
    kernels, whose vertex integrals converge)."""
    return tuple(0.0 if dim is None else -float(dim) for dim in dimensions)


def stability_matrix(problem: MatchingProblem, cutoff, dimensions=None, *, index: int = 0) -> dict:
    """Stability matrices at the Gaussian fixed point g = 0 (module docstring).

    **Arguments:**

    - `problem`: a `MatchingProblem`.
    - `cutoff`: the cutoff Λ at which to linearise (or an array of cutoffs, whose tables are
      computed/cached together, and `index` picks one).
    - `dimensions`: engineering dimensions [g] (None entries → 0) for the dimensionless matrix.

    **Returns:** dict with `M` = ∂β/∂g `(m, m)`, `theta` its eigenvalues (real parts, ordered
    by the coupling each eigenvector is mostly made of), `S` = ∂β̂/∂ĝ and `y` its eigenvalues
    (same ordering).
    """
    cuts = _check_cutoffs(cutoff)
    lin, quad, dlin, dquad = problem.tables_and_derivatives(cuts)
    lin, dlin = lin[index:][:1], dlin[index:][:1]
    cut = cuts[index:][:1]
    q = None if quad is None else quad[index]
    dq = None if dquad is None else dquad[index]
    tgt, w = jnp.asarray(problem.target), jnp.asarray(problem.weights)
    m = problem.n_couplings

    def b(g):
        return beta_from_tables(g, lin[0], q, dlin[0], dq, tgt, w, residual_term=False,
                                determines=jnp.asarray(problem.determines))

    mat = np.asarray(jax.jacfwd(b)(jnp.zeros(m)))
    dims = np.zeros(m) if dimensions is None else np.asarray(
        [0.0 if v is None else float(v) for v in dimensions])
    dscale = cut[0] ** dims
    s = np.diag(dims) + (dscale[:, None] * mat) / dscale[None, :]
    return {"M": mat, "theta": _ordered_eigs(mat), "S": s, "y": _ordered_eigs(s)}


def _ordered_eigs(mat):
    """Eigenvalues assigned to couplings by the largest eigenvector component (greedy)."""
    vals, vecs = np.linalg.eig(mat)
    m = mat.shape[0]
    out = np.full(m, np.nan)
    used = set()
    order = np.argsort(-np.max(np.abs(vecs), axis=0))
    for k in order:
        comps = np.abs(vecs[:, k])
        for i in np.argsort(-comps):
            if i not in used:
                out[i] = vals[k].real
                used.add(i)
                break
    return out


def _loglog_slope(logc, logy):
    x = logc - logc.mean()
    return jnp.sum(x * (logy - logy.mean())) / jnp.sum(x * x)


def scaling_exponents(problem: MatchingProblem, cutoffs, couplings=None) -> dict:
    """Effective scaling exponents θ_i of the matched couplings, g_i ∝ Λ^{θ_i}, from the
    log–log slope of |g_i(Λ)| over `cutoffs`, with standard errors propagated linearly from the
    targets' standard errors (`problem.target_stderr`, independent entries) through the
    least-squares refits.

    **Arguments:**

    - `problem`: a `MatchingProblem` (linear or nonlinear).
    - `cutoffs`: the window of cutoffs `(n,)`, n >= 2.
    - `couplings`: optional precomputed couplings at the cutoffs (else refitted).

    **Returns:** dict with `theta` `(m,)` and `theta_stderr` `(m,)` (zeros without errors).
    """
    from ._beta import _refit_tables  # noqa: PLC0415

    cut = _check_cutoffs(cutoffs)
    lin, quad = problem.tables(cut)
    logc = jnp.log(jnp.asarray(cut))
    w = jnp.asarray(problem.weights)

    def theta_of(target):
        g = _refit_tables(lin, quad, target, w, 30, jnp.asarray(problem.determines))
        return jax.vmap(lambda col: _loglog_slope(logc, jnp.log(jnp.abs(col))), 1)(g)

    target = jnp.asarray(problem.target)
    theta = np.asarray(theta_of(target))
    if problem.target_stderr is None or not np.any(problem.target_stderr > 0):
        err = np.zeros_like(theta)
    else:
        jac = np.asarray(jax.jacfwd(theta_of)(target))
        err = np.sqrt(np.sum((jac * problem.target_stderr[None, :]) ** 2, axis=1))
    return {"theta": theta, "theta_stderr": err}


def classify(theta, stderr=None, *, tol: float = 0.05) -> list[str]:
    """"relevant" (θ > t), "marginal" (|θ| <= t), "irrelevant" (θ < −t), t = max(tol, 3σ)."""
    theta = np.atleast_1d(np.asarray(theta, float))
    stderr = np.zeros_like(theta) if stderr is None else np.atleast_1d(np.asarray(stderr, float))
    out = []
    for th, se in zip(theta, stderr):
        t = max(tol, 3 * se)
        out.append("relevant" if th > t else "irrelevant" if th < -t else "marginal")
    return out


def relevance(problem: MatchingProblem, window, dimensions: Sequence, *, reference: int = 0,
              tol: float = 0.05) -> dict:
    """Scaling exponents, stability-matrix eigenvalues and the classification of every coupling.

    **Arguments:**

    - `problem`: the `MatchingProblem` of the action.
    - `window`: cutoffs `(n,)` of the asymptotic window (large Λ) for the exponents.
    - `dimensions`: [g] per coupling (`coupling_dimensions`).
    - `reference`: index of the constant quartic λ (the reference operator).
    - `tol`: marginality tolerance on θ.

    **Returns:** a JSON-ready dict: `names`, `dimensions`, `predicted_theta` (= −[g]),
    `theta` and `theta_stderr` (effective, from the matched couplings in the window),
    `theta_stability` (eigenvalues of ∂β/∂g at the Gaussian fixed point, at the largest window
    cutoff), `y_stability` (eigenvalues of ∂β̂/∂ĝ), `classification`, `delta_theta` (θ − θ_λ),
    `less_relevant_than_quartic` (Δθ < −max(tol, 3σ)).
    """
    win = _check_cutoffs(window)
    eff = scaling_exponents(problem, win)
    stab = stability_matrix(problem, win, dimensions, index=-1)
    theta, err = eff["theta"], eff["theta_stderr"]
    cls = classify(theta, err, tol=tol)
    dth = theta - theta[reference]
    derr = np.sqrt(err**2 + err[reference] ** 2)
    less = [bool(dth[i] < -max(tol, 3 * derr[i])) if i != reference else False
            for i in range(len(theta))]
    return {
        "names": list(problem.names),
        "dimensions": [None if v is None else float(v) for v in dimensions],
        "predicted_theta": list(predicted_exponents(dimensions)),
        "theta": theta.tolist(),
        "theta_stderr": err.tolist(),
        "theta_stability": stab["theta"].tolist(),
        "y_stability": stab["y"].tolist(),
        "classification": cls,
        "delta_theta": dth.tolist(),
        "delta_theta_stderr": derr.tolist(),
        "less_relevant_than_quartic": less,
        "window": win.tolist(),
    }
