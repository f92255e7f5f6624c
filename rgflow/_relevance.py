"""Engineering dimensions, the exponents of the dimensionful couplings in the box cutoff, the
checks that decide whether an exponent may be reported at all, and the 1/N hierarchy between
operators (physics.md §7).

## What the box cutoff is (physics.md §7, "What this flow is, and is not")

Λ is the half-width of the box [−Λ, Λ]^d over which the vertices are integrated: a large-|y|
(volume) regulator. The propagator is untouched and no modes are integrated out. Λ → ∞ removes
the cutoff; this is the direction in which every exponent below is read (`DIRECTION`, written into
every JSON of the studies).

## Dimensions (derived here once; tests/test_relevance.py checks them)

Mass dimensions with [x] = −1: Λ is a length, [Λ] = −1, and d^d y has dimension −d. The field
dimension [f] is read off the kernel numerically: at large a,

    K_W(x, a u) ∝ a^{q}   (each argument scaled separately)  ⇒  [f] = −q,

(ReLU with σ_b = 0: K_W homogeneous of degree 1 in each argument, [f] = −1; bounded kernels such
as Erf: K_W → a direction-dependent constant, [f] = 0; a kernel that decays faster than any
power (Gauss-net K_W) has no power counting: its vertex integrals converge as Λ → ∞, `None`).
The action is dimensionless, so

    [g_k] = d − k[f]          (local g ∫ d^d y f^k)
    [λ2]  = d − 4[f] + 2      (∫ d^d y λ2 |y|² f⁴)
    [λ_NL] = 2d − 4[f]        (λ_NL ∫∫ d^d y d^d z f² f²)

## The exponents θ of the dimensionful couplings

The matched coupling that holds the correlators fixed scales as g ∝ Λ^θ; power counting predicts
θ = −[g] (the vertex integral grows like Λ^{[g]}) and θ = 0 for a decaying kernel. θ is a
statement about a *dimensionful* coupling and nothing more: in the dimensionless couplings
ĝ = g Λ^{[g]} the tree-level box-cutoff flow is pure dimensional analysis, every operator is
exactly marginal and the linearised flow of ĝ is the zero matrix. There is therefore no
"stability matrix" and no relevant/marginal/irrelevant classification of the box cutoff, and
rgflow reports none (the earlier `stability_matrix`, `classify` and `relevance` are removed).
HMS's "higher operators are less relevant at large Λ" is the statement that their dimensionful
couplings fall faster in Λ (Δθ = θ_g − θ_λ < 0); `dimensionful_exponents` reports exactly that.

## When an exponent is not reported

An exponent is a property of a coupling only if the coupling describes its data and the flow
agrees with the refits. `dimensionful_exponents` withholds θ (status "failed", with the numbers)
when, in the window of cutoffs,

- the fit residual ‖G(g) − T‖/‖T‖ over the conditions that determine the coupling exceeds
  `MAX_RESIDUAL` (10 %);
- the diffrax flow departs from the independent refits by more than `MAX_FLOW_GAP` (1e-3,
  max over cutoffs of |g_flow − g_refit|/|g_refit|);
- log|g| is not a straight line in log Λ there: the slopes over the two halves of the window
  differ by more than `MAX_DRIFT` (0.05).

## The 1/N hierarchy (physics.md §7 (d))

At fixed Λ the operators are ordered by the width, not by Λ: the connected k-point function of a
one-hidden-layer network is O(N^{1−k/2}), so a coupling matched to it scales as N^{1−k/2}
(λ, λ2, λ_NL ∝ 1/N; κ ∝ 1/N², including its λ² exchange part). `width_hierarchy` refits the
couplings at several widths and measures these exponents and the ratios g/λ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._beta import MatchingProblem, _check_cutoffs, _predict, _refit_tables
from ._validate import check_real_array

__all__ = [
    "DIRECTION",
    "MAX_RESIDUAL",
    "MAX_FLOW_GAP",
    "MAX_DRIFT",
    "field_dimension",
    "coupling_dimensions",
    "coupling_orders",
    "predicted_exponents",
    "scaling_exponents",
    "fit_residuals",
    "flow_gap",
    "failed_checks",
    "dimensionful_exponents",
    "width_hierarchy",
]

DIRECTION = ("Lambda -> infinity removes the volume (box) cutoff; theta = d ln|g| / d ln Lambda "
             "of the dimensionful coupling, g ~ Lambda^theta, read towards large Lambda")
MAX_RESIDUAL = 0.1
MAX_FLOW_GAP = 1e-3
MAX_DRIFT = 0.05


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


def _loglog_slope(logc, logy):
    x = logc - logc.mean()
    return jnp.sum(x * (logy - logy.mean())) / jnp.sum(x * x)


def scaling_exponents(problem: MatchingProblem, cutoffs, couplings=None) -> dict:
    """Exponents θ_i of the dimensionful matched couplings, g_i ∝ Λ^{θ_i} (direction: Λ → ∞
    removes the box cutoff, `DIRECTION`), from the log–log slope of |g_i(Λ)| over `cutoffs`, with
    standard errors propagated linearly from the targets' standard errors
    (`problem.target_stderr`, independent entries) through the least-squares refits.

    This is the raw slope: whether it may be reported as an exponent is decided by
    `dimensionful_exponents` (residual, flow and power-law checks).

    **Arguments:**

    - `problem`: a `MatchingProblem` (linear or nonlinear).
    - `cutoffs`: the window of cutoffs `(n,)`, n >= 2.
    - `couplings`: optional precomputed couplings `(n, m)` at the cutoffs (else refitted);
      errors are then propagated through refits of the same problem.

    **Returns:** dict with `theta` `(m,)` and `theta_stderr` `(m,)` (zeros without errors).
    """
    if not isinstance(problem, MatchingProblem):
        raise TypeError(f"`problem` must be a MatchingProblem (rgflow.matching_problem), got "
                        f"{type(problem).__name__}.")
    cut = _check_cutoffs(cutoffs)
    if cut.size < 2:
        raise ValueError("`cutoffs` must hold at least two cutoffs for a slope.")
    if np.unique(cut).size != cut.size:
        raise ValueError(f"`cutoffs` must be distinct for a log-log slope, got {cut}.")
    if couplings is not None:
        g = check_real_array("couplings", couplings)
        if g.shape != (cut.size, problem.n_couplings):
            raise ValueError(f"`couplings` must have shape {(cut.size, problem.n_couplings)}, "
                             f"got {g.shape}.")
        if np.any(g == 0):
            raise ValueError("`couplings` contains zeros: a zero coupling has no log-log slope "
                             "(its exponent is undefined).")
    lin, quad = problem.tables(cut)
    logc = jnp.log(jnp.asarray(cut))
    w = jnp.asarray(problem.weights)

    def theta_of(target):
        g = _refit_tables(lin, quad, target, w, 30, jnp.asarray(problem.determines))
        return jax.vmap(lambda col: _loglog_slope(logc, jnp.log(jnp.abs(col))), 1)(g)

    target = jnp.asarray(problem.target)
    if couplings is None:
        theta = np.asarray(theta_of(target))
    else:
        theta = np.asarray(jax.vmap(lambda col: _loglog_slope(logc, jnp.log(jnp.abs(col))), 1)(
            jnp.asarray(g)))
    if problem.target_stderr is None or not np.any(problem.target_stderr > 0):
        err = np.zeros_like(theta)
    else:
        jac = np.asarray(jax.jacfwd(theta_of)(target))
        err = np.sqrt(np.sum((jac * problem.target_stderr[None, :]) ** 2, axis=1))
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(err))):
        raise ValueError(f"the exponents are not finite (θ = {theta}): a refitted coupling is "
                         "zero or not finite at some cutoff of `cutoffs`, so it has no "
                         "log-log slope.")
    return {"theta": theta, "theta_stderr": err}


def coupling_orders(action) -> tuple:
    """The number k of fields of each coupling's operator (order of `action.coupling_names`):
    4 for every quartic (local, x-dependent, bilocal, nonlocal), k for `LocalCoupling(k)`.
    The matched coupling is then O(N^{1−k/2}) (physics.md §7 (d))."""
    from ._actions import LocalCoupling  # noqa: PLC0415

    out = []
    for term in action.interactions:
        k = term.order if isinstance(term, LocalCoupling) else 4
        out += [int(k)] * len(term.coupling_names)
    return tuple(out)


def fit_residuals(problem: MatchingProblem, cutoffs, couplings=None) -> np.ndarray:
    """Relative fit residual of every coupling at every cutoff.

    For coupling a the residual is ‖G(g; Λ) − T‖ / ‖T‖ over the conditions S_a that determine it
    (`problem.determines[:, a] == 1`: the 4-pt entries for the quartics and the 6-pt entries for
    a sextic in hierarchical matching, all entries for a joint fit). Unweighted, so that it reads
    as "the fraction of the target that the fit leaves unexplained".

    **Arguments:**

    - `problem`: a `MatchingProblem`.
    - `cutoffs`: `(n,)` cutoffs.
    - `couplings`: the couplings at the cutoffs `(n, m)` (default: the refits).

    **Returns:** float64 `(n, m)`.
    """
    if not isinstance(problem, MatchingProblem):
        raise TypeError(f"`problem` must be a MatchingProblem (rgflow.matching_problem), got "
                        f"{type(problem).__name__}.")
    cut = _check_cutoffs(cutoffs)
    if couplings is not None:
        couplings = check_real_array("couplings", couplings)
    lin, quad = problem.tables(cut)
    g = (np.asarray(_refit_tables(lin, quad, jnp.asarray(problem.target),
                                  jnp.asarray(problem.weights), 30,
                                  jnp.asarray(problem.determines)))
         if couplings is None else couplings)
    if g.shape != (cut.size, problem.n_couplings):
        raise ValueError(f"`couplings` must have shape {(cut.size, problem.n_couplings)}, "
                         f"got {g.shape}.")
    pred = np.stack([np.asarray(_predict(jnp.asarray(g[k]), lin[k], None if quad is None else quad[k]))
                     for k in range(cut.size)])
    r = pred - problem.target[None, :]
    out = np.empty_like(g)
    for a in range(problem.n_couplings):
        s = problem.determines[:, a] > 0
        out[:, a] = np.linalg.norm(r[:, s], axis=1) / np.linalg.norm(problem.target[s])
    return out


def flow_gap(flow_couplings, refit_couplings) -> np.ndarray:
    """max over cutoffs of |g_flow − g_refit| / |g_refit| per coupling `(m,)` (inf where the flow
    is not finite, i.e. stopped or blew up)."""
    gf = check_real_array("flow_couplings", flow_couplings, finite=False)
    gr = check_real_array("refit_couplings", refit_couplings)
    if gf.ndim != 2 or gf.shape[0] < 1 or gf.shape[1] < 1:
        raise ValueError(f"`flow_couplings` must be a non-empty (n, m) array, got {gf.shape}.")
    if gf.shape != gr.shape:
        raise ValueError(f"`refit_couplings` must have the shape {gf.shape} of "
                         f"`flow_couplings`, got {gr.shape}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(gf - gr) / np.abs(gr)
    rel = np.where(gf == gr, 0.0, rel)  # 0/0: a zero refit followed exactly
    rel = np.where(np.isfinite(gf), rel, np.inf)
    return np.max(rel, axis=0)


def failed_checks(residual, gap=None, drift=None, *, max_residual: float = MAX_RESIDUAL,
                  max_flow_gap: float = MAX_FLOW_GAP, max_drift: float = MAX_DRIFT) -> list[str]:
    """The checks (module docstring) that a coupling fails, each with its number; [] if none.

    **Arguments:** `residual` (fit residual, fraction of the target), `gap` (flow vs refits,
    None: no flow), `drift` (change of the log–log slope across the window, None: not checked),
    and the thresholds.

    **Returns:** a list of human-readable reasons (NaN counts as failed).
    """
    reasons = []
    if not residual <= max_residual:
        reasons.append(f"fit residual {residual:.2g} of the target > {max_residual:g}")
    if gap is not None and not gap <= max_flow_gap:
        reasons.append(f"flow departs from the refits by {gap:.2g} > {max_flow_gap:g}")
    if drift is not None and not drift <= max_drift:
        reasons.append(f"not a power law in the window: slope drifts by {drift:.2g} > {max_drift:g}")
    return reasons


def _check_threshold(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
    return float(value)


def dimensionful_exponents(
    problem: MatchingProblem,
    window,
    *,
    couplings=None,
    dimensions=None,
    flow_gaps=None,
    labels=None,
    reference: int | None = 0,
    max_residual: float = MAX_RESIDUAL,
    max_flow_gap: float = MAX_FLOW_GAP,
    max_drift: float = MAX_DRIFT,
) -> dict:
    """The exponents θ of the dimensionful couplings, g ∝ Λ^θ, each reported only where it is
    one (module docstring), else the failure with its numbers.

    **Arguments:**

    - `problem`: the `MatchingProblem` of the action.
    - `window`: cutoffs `(n,)`, n >= 4, of the window in which θ is measured (large Λ).
    - `couplings`: optional refitted couplings at the window cutoffs `(n, m)` (else refitted).
    - `dimensions`: engineering dimensions [g] per coupling (`coupling_dimensions`; None
      entries: decaying kernel, predicted θ = 0).
    - `flow_gaps`: optional `(m,)` gap between the diffrax flow and the refits per coupling
      (`flow_gap`); None: no flow was run (the check is skipped and said so).
    - `labels`: short names of the couplings (default `problem.names`).
    - `reference`: index of the coupling against which Δθ = θ − θ_ref is given (the constant
      quartic λ), or None.
    - `max_residual`, `max_flow_gap`, `max_drift`: the thresholds.

    **Returns:** a JSON-ready dict: `direction` (`DIRECTION`), `window`, the thresholds, and
    `couplings`: one dict per coupling with `name`, `status` ("ok" or "failed"), `theta` and
    `theta_stderr` (None when failed), `predicted_theta` (= −[g], power counting),
    `residual` (max over the window), `flow_gap`, `drift`, `delta_theta` (θ − θ_ref, None when
    either failed) and `reasons` (the failed checks, with their numbers).
    """
    win = _check_cutoffs(window)
    if win.size < 4:
        raise ValueError("`window` must hold at least four cutoffs (two per half).")
    max_residual = _check_threshold("max_residual", max_residual)
    max_flow_gap = _check_threshold("max_flow_gap", max_flow_gap)
    max_drift = _check_threshold("max_drift", max_drift)
    m = problem.n_couplings
    labels = list(problem.names) if labels is None else [str(s) for s in labels]
    if len(labels) != m:
        raise ValueError(f"`labels` must name the {m} couplings, got {len(labels)}.")
    dims = [None] * m if dimensions is None else list(dimensions)
    if len(dims) != m:
        raise ValueError(f"`dimensions` must give {m} entries, got {len(dims)}.")
    if flow_gaps is not None:
        flow_gaps = np.asarray(flow_gaps, np.float64).reshape(-1)
        if flow_gaps.shape != (m,):
            raise ValueError(f"`flow_gaps` must have shape ({m},), got {flow_gaps.shape}.")
    if couplings is None:
        lin, quad = problem.tables(win)
        g = np.asarray(_refit_tables(lin, quad, jnp.asarray(problem.target),
                                     jnp.asarray(problem.weights), 30,
                                     jnp.asarray(problem.determines)))
    else:
        g = np.asarray(couplings, np.float64)
    res = fit_residuals(problem, win, g).max(axis=0)
    eff = scaling_exponents(problem, win, couplings=g)
    theta, err = eff["theta"], eff["theta_stderr"]
    half = win.size // 2
    logc = np.log(win)
    with np.errstate(divide="ignore"):
        logg = np.log(np.abs(g))
    drift = np.abs(np.asarray([np.polyfit(logc[:half], logg[:half, a], 1)[0]
                               - np.polyfit(logc[-half:], logg[-half:, a], 1)[0]
                               if np.all(np.isfinite(logg[:, a])) else np.inf
                               for a in range(m)]))
    predicted = predicted_exponents(dims)
    entries = []
    for a in range(m):
        reasons = failed_checks(res[a], None if flow_gaps is None else flow_gaps[a], drift[a],
                                max_residual=max_residual, max_flow_gap=max_flow_gap,
                                max_drift=max_drift)
        ok = not reasons
        entries.append({
            "name": labels[a],
            "status": "ok" if ok else "failed",
            "theta": float(theta[a]) if ok else None,
            "theta_stderr": float(err[a]) if ok else None,
            "predicted_theta": float(predicted[a]),
            "dimension": None if dims[a] is None else float(dims[a]),
            "residual": float(res[a]),
            "flow_gap": None if flow_gaps is None else float(flow_gaps[a]),
            "drift": float(drift[a]),
            "reasons": reasons,
        })
    for a, e in enumerate(entries):
        ref = entries[reference] if reference is not None else None
        if ref is None or a == reference or e["status"] != "ok" or ref["status"] != "ok":
            e["delta_theta"] = None
            e["delta_theta_stderr"] = None
        else:
            e["delta_theta"] = e["theta"] - ref["theta"]
            e["delta_theta_stderr"] = float(np.hypot(e["theta_stderr"], ref["theta_stderr"]))
    return {
        "direction": DIRECTION,
        "window": win.tolist(),
        "max_residual": max_residual,
        "max_flow_gap": max_flow_gap,
        "max_drift": max_drift,
        "flow_checked": flow_gaps is not None,
        "reference": None if reference is None else labels[reference],
        "couplings": entries,
        "n_failed": sum(e["status"] == "failed" for e in entries),
    }


def width_hierarchy(
    problem: MatchingProblem,
    targets,
    widths,
    cutoffs,
    *,
    orders,
    weights=None,
    labels=None,
    reference: int = 0,
    max_residual: float = MAX_RESIDUAL,
) -> dict:
    """The 1/N hierarchy between operators: couplings refitted at several widths, their
    exponents in N against N^{1−k/2}, and their ratios to the reference coupling.

    The tables of `problem` (which do not depend on N: K_W is the GP vertex propagator) are
    reused; only the targets change with the width.

    **Arguments:**

    - `problem`: the `MatchingProblem` (its own target is not used).
    - `targets`: `(W, n)` the matched correlator entries at each width, in the order of
      `problem.target`.
    - `widths`: `(W,)` distinct widths N, W >= 2.
    - `cutoffs`: `(C,)` the cutoffs at which the couplings are compared.
    - `orders`: k per coupling (`coupling_orders`).
    - `weights`: optional `(W, n)` weights per width (default `problem.weights`).
    - `labels`, `reference`: coupling names and the index of the reference coupling (λ).
    - `max_residual`: couplings whose fit residual exceeds this at any width and cutoff get no
      exponent and no ratio (status "failed", with the number).

    **Returns:** a JSON-ready dict with `widths`, `cutoffs`, `couplings` `(W, C, m)`, and per
    coupling in `entries`: `name`, `k`, `predicted_width_exponent` (1 − k/2), `status`,
    `width_exponent` (log–log slope of |g| in N, mean over the cutoffs) and its spread over
    the cutoffs, `ratio_to_reference` `(W, C)` (g/g_ref) and `ratio_width_exponent`
    (predicted (k_ref − k)/2), `residual` (max over widths and cutoffs), `reasons`.
    """
    widths = np.asarray(widths, np.float64).reshape(-1)
    if widths.size < 2 or np.any(widths <= 0) or np.unique(widths).size != widths.size:
        raise ValueError(f"`widths` must be at least two distinct positive widths, got {widths}.")
    cut = _check_cutoffs(cutoffs)
    m, n = problem.n_couplings, problem.n_conditions
    tg = np.asarray(targets, np.float64)
    if tg.shape != (widths.size, n):
        raise ValueError(f"`targets` must have shape {(widths.size, n)}, got {tg.shape}.")
    w = (np.broadcast_to(problem.weights, tg.shape) if weights is None
         else np.asarray(weights, np.float64))
    if w.shape != tg.shape or np.any(w <= 0):
        raise ValueError(f"`weights` must be positive with shape {tg.shape}.")
    orders = [int(k) for k in orders]
    if len(orders) != m:
        raise ValueError(f"`orders` must give {m} entries, got {len(orders)}.")
    labels = list(problem.names) if labels is None else [str(s) for s in labels]
    max_residual = _check_threshold("max_residual", max_residual)
    lin, quad = problem.tables(cut)
    det = jnp.asarray(problem.determines)
    gs, rs = [], []
    for t, wt in zip(tg, w):
        g = np.asarray(_refit_tables(lin, quad, jnp.asarray(t), jnp.asarray(wt), 30, det))
        pred = np.stack([np.asarray(_predict(jnp.asarray(g[k]), lin[k],
                                             None if quad is None else quad[k]))
                         for k in range(cut.size)])
        r = np.empty_like(g)
        for a in range(m):
            s = problem.determines[:, a] > 0
            r[:, a] = np.linalg.norm(pred[:, s] - t[None, s], axis=1) / np.linalg.norm(t[s])
        gs.append(g)
        rs.append(r)
    gs, rs = np.stack(gs), np.stack(rs)  # (W, C, m)
    logn = np.log(widths)
    x = logn - logn.mean()

    def slope(y):  # y (W, C) → (C,)
        return np.sum(x[:, None] * (y - y.mean(axis=0)), axis=0) / np.sum(x * x)

    entries = []
    ref_ok = bool(np.max(rs[:, :, reference]) <= max_residual)
    for a in range(m):
        res = float(np.max(rs[:, :, a]))
        reasons = failed_checks(res, max_residual=max_residual)
        ok = not reasons
        e = {"name": labels[a], "k": orders[a], "predicted_width_exponent": 1 - orders[a] / 2,
             "status": "ok" if ok else "failed", "residual": res, "reasons": reasons,
             "width_exponent": None, "width_exponent_spread": None,
             "ratio_to_reference": None, "ratio_width_exponent": None,
             "predicted_ratio_width_exponent": (orders[reference] - orders[a]) / 2}
        if ok:
            s = slope(np.log(np.abs(gs[:, :, a])))
            e["width_exponent"] = float(np.mean(s))
            e["width_exponent_spread"] = float(np.max(s) - np.min(s))
            if ref_ok and a != reference:
                ratio = gs[:, :, a] / gs[:, :, reference]
                e["ratio_to_reference"] = ratio.tolist()
                e["ratio_width_exponent"] = float(np.mean(slope(np.log(np.abs(ratio)))))
        entries.append(e)
    return {"widths": widths.tolist(), "cutoffs": cut.tolist(), "couplings": gs.tolist(),
            "residuals": rs.max(axis=(1,)).tolist(), "reference": labels[reference],
            "max_residual": max_residual, "entries": entries}
