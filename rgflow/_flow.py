"""Wilsonian flow of the couplings in the cutoff, solved with diffrax (physics.md §7).

`flow(problem, cutoffs, g0)` integrates dg/dt = β(g; t), t = ln Λ (`rgflow._beta`), from
Λ0 = `cutoffs[0]` to `cutoffs[-1]`, in either direction (increasing Λ: towards large input-space
distances, i.e. removing the cutoff; decreasing Λ: back), saving at every requested cutoff.

**How the right-hand side is evaluated.** β needs the prediction tables L(t), Q(t) and their
t-derivatives, which are cutoff-regulated integrals (`rgflow._integrals`). One evaluation costs
up to ~1 s for d_in = 3 (a fresh quadrature of the box), and an adaptive solve at rtol = 1e-10
needs hundreds. So by default the tables and their autodiff t-derivatives are computed once, in
one vectorised call, at Chebyshev–Lobatto nodes of short t-segments, and interpolated
(`TableInterpolant`): each entry's power-law growth e^{p (t − t_mid)} (p from the segment end
points) is factored out first, leaving a slowly varying function that the degree-15 Chebyshev
interpolant resolves to ~1e-12 relative (tests/test_flow.py checks it against direct
evaluation). The derivative tables are interpolated from the autodiff values, not by
differentiating the interpolant, so β is "autodiff through the diagram integrals" at every node.
`interpolate=False` evaluates the tables directly at every right-hand-side call instead (exact,
slow; it is traced by diffrax, so the diagram integrals must be jit-compatible).

**State scaling.** Couplings span tens of orders of magnitude over the 21 HMS cutoffs (ReLU,
d_in = 3: λ ∝ Λ^{-7}). The ODE state is y_a = g_a (Λ/Λ0)^{s_a} / c_a with s_a the growth rate of
column a of L (the power-counting dimension, measured from the tables) and c_a = |g_a(Λ0)|, so
that y = O(1) and the PID controller's rtol/atol are relative tolerances on every coupling.

**Blow-up.** A `diffrax.Event` stops the solve when a scaled coupling is non-finite or exceeds
`blowup` (i.e. grows by that factor beyond power counting); the result code is then
`diffrax.RESULTS.event_occurred` and the saved values past the stop are inf. `throw=` is passed to
`diffrax.diffeqsolve` (True: raise on solver failure such as `max_steps`).

**Stability.** The exact-refit flow (`residual_term=True`) conserves the normal equations
F = Jᵀ W r; an error δF committed at one step maps to δg = (∂F/∂g)⁻¹ δF later. Linearising,
a relative error of a single λ evolves as d(δλ/λ)/dt = −d ln I4/dt (δλ/λ): the refits
*attract* the flow towards large Λ (growing integrals) and *repel* it towards small Λ (by
I4(Λ_start)/I4(Λ)). Flow down in Λ with `residual_term=False` (identical to the exact-refit β
when the conditions are fitted exactly; relative errors then stay constant). Over-determined fits
whose design columns become collinear (Erf-net λ0, λ2, λ_NL at Λ ≳ 10⁴) have eigenvalues of
∂β/∂g ~ ±cond(√W A) and the solver hits `max_steps`; the homogeneous flow has no such modes.

The solve is differentiable with respect to the initial couplings (`jax.grad`/`jax.jacfwd` of
`flow(...).couplings` in `g0`; diffrax's `RecursiveCheckpointAdjoint`).
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._beta import MatchingProblem, _check_cutoffs, beta_from_tables, check_rank, refit
from ._validate import check_real_array

__all__ = ["FlowSolution", "TableInterpolant", "flow"]


# -------------------------------------------------------------------------- interpolant ---


def _cheb_nodes(n: int) -> np.ndarray:
    """Chebyshev–Lobatto points cos(πk/(n−1)), k = 0..n−1, on [−1, 1] (descending)."""
    return np.cos(np.pi * np.arange(n) / (n - 1))


def _cheb_coeffs(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients from values at Lobatto nodes (axis 0), by the DCT-I sum (NumPy:
    tables are built on the host, compiling nothing)."""
    n = values.shape[0]
    k = np.arange(n)
    c = np.cos(np.pi * np.outer(k, k) / (n - 1))
    w = np.ones(n)
    w[0] = w[-1] = 0.5
    mat = (2.0 / (n - 1)) * c * w[None, :]
    mat[0] *= 0.5
    mat[-1] *= 0.5
    return np.tensordot(mat, values, axes=1)


def _clenshaw(coeffs, x):
    """Σ_k c_k T_k(x) for coefficients along axis 0."""
    b1 = jnp.zeros_like(coeffs[0])
    b2 = jnp.zeros_like(coeffs[0])
    for k in range(coeffs.shape[0] - 1, 0, -1):
        b1, b2 = 2 * x * b1 - b2 + coeffs[k], b1
    return x * b1 - b2 + coeffs[0]


def _rates(values, t):
    """Per-entry growth rate log|v(t_last)/v(t_first)| / (t_last − t_first) (0 if undefined)."""
    a, b = np.abs(values[0]), np.abs(values[-1])
    ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
    r = np.log(np.where(ok, b, 1.0) / np.where(ok, a, 1.0)) / (t[-1] - t[0])
    return np.where(ok, r, 0.0)


class TableInterpolant(eqx.Module):
    """Piecewise-Chebyshev interpolant in t = ln Λ of a table T(t) and of its autodiff
    t-derivative, with the per-entry power-law growth factored out (module docstring).

    **Fields:** `t_lo`, `width` (segment width), `t_mid` `(S,)`, `rate` `(S, ...)`,
    `coef`, `dcoef` `(S, n, ...)` Chebyshev coefficients of the scaled table and derivative.
    """

    t_lo: jax.Array
    width: jax.Array
    t_mid: jax.Array
    rate: jax.Array
    coef: jax.Array
    dcoef: jax.Array

    @staticmethod
    def nodes(t_lo: float, t_hi: float, *, segment_width: float = 2.5, n_nodes: int = 16):
        """The t-nodes `(S, n)` at which to evaluate the table."""
        n_seg = max(1, int(math.ceil((t_hi - t_lo) / segment_width - 1e-9)))
        width = (t_hi - t_lo) / n_seg if t_hi > t_lo else 1.0
        x = _cheb_nodes(n_nodes)
        mids = t_lo + width * (np.arange(n_seg) + 0.5)
        return mids[:, None] + 0.5 * width * x[None, :], width

    @classmethod
    def build(cls, t_nodes, width, values, derivs):
        """From values and t-derivatives at `nodes(...)` (leading axes `(S, n)`); computed on
        the host in NumPy."""
        t_nodes = np.asarray(t_nodes, np.float64)
        values, derivs = np.asarray(values, np.float64), np.asarray(derivs, np.float64)
        s, n = t_nodes.shape
        t_mid = t_nodes.mean(axis=1)
        rates, coefs, dcoefs = [], [], []
        for k in range(s):
            v, dv = values[k], derivs[k]  # (n, ...)
            rate = _rates(v[::-1], t_nodes[k, ::-1])  # nodes descending: reverse to ascending t
            shape = (n,) + (1,) * (v.ndim - 1)
            e = np.exp(-rate[None] * (t_nodes[k] - t_mid[k]).reshape(shape))
            scaled = v * e
            dscaled = (dv - rate[None] * v) * e
            rates.append(rate)
            coefs.append(_cheb_coeffs(scaled))
            dcoefs.append(_cheb_coeffs(dscaled))
        return cls(
            t_lo=jnp.asarray(t_nodes.min(), jnp.float64), width=jnp.asarray(width, jnp.float64),
            t_mid=jnp.asarray(t_mid), rate=jnp.asarray(np.stack(rates)),
            coef=jnp.asarray(np.stack(coefs)), dcoef=jnp.asarray(np.stack(dcoefs)),
        )

    def __call__(self, t):
        """(T(t), ∂_t T(t))."""
        n_seg = self.t_mid.shape[0]
        k = jnp.clip(jnp.floor((t - self.t_lo) / self.width).astype(jnp.int32), 0, n_seg - 1)
        x = 2.0 * (t - self.t_mid[k]) / self.width
        rate = self.rate[k]
        e = jnp.exp(rate * (t - self.t_mid[k]))
        s = _clenshaw(self.coef[k], x)
        ds = _clenshaw(self.dcoef[k], x)
        return s * e, (ds + rate * s) * e


class _Tables(eqx.Module):
    lin: TableInterpolant
    quad: TableInterpolant | None

    def __call__(self, t):
        lin, dlin = self.lin(t)
        if self.quad is None:
            return lin, None, dlin, None
        quad, dquad = self.quad(t)
        return lin, quad, dlin, dquad


def build_tables(problem: MatchingProblem, t_lo: float, t_hi: float, *, segment_width: float = 2.5,
                 n_nodes: int = 16, check: bool = True, extra_cutoffs=None):
    """Interpolated prediction tables of `problem` on [t_lo, t_hi] (cached on the problem).

    `extra_cutoffs` (a list of cutoff arrays) are evaluated in the same vectorised call and
    cached (for refits there).
    """
    key = ("tables", round(t_lo, 12), round(t_hi, 12), segment_width, n_nodes)
    if key in problem._cache:
        return problem._cache[key]
    nodes, width = TableInterpolant.nodes(t_lo, t_hi, segment_width=segment_width, n_nodes=n_nodes)
    cut = np.exp(nodes.ravel())
    problem.precompute(cut, *[np.atleast_1d(c) for c in (extra_cutoffs or [])])
    lin, quad, dlin, dquad = problem.tables_and_derivatives(cut)
    if check:
        check_rank(problem, lin, cut)
    s, n = nodes.shape
    rs = lambda a: None if a is None else a.reshape((s, n) + a.shape[1:])  # noqa: E731
    tl = TableInterpolant.build(nodes, width, rs(lin), rs(dlin))
    tq = None if quad is None else TableInterpolant.build(nodes, width, rs(quad), rs(dquad))
    # growth rates of the coupling columns: the scaling dimension seen by each coupling
    col = np.linalg.norm(np.asarray(lin) * np.sqrt(np.asarray(problem.weights))[None, :, None],
                         axis=1)
    t_all = np.asarray(nodes.ravel())
    lo, hi = np.argmin(t_all), np.argmax(t_all)
    ok = (col[lo] > 0) & (col[hi] > 0)
    rates = np.where(ok, np.log(np.where(ok, col[hi] / np.where(ok, col[lo], 1.0), 1.0))
                     / (t_all[hi] - t_all[lo] + (t_all[hi] == t_all[lo])), 0.0)
    out = (_Tables(tl, tq), np.asarray(rates))
    problem._cache[key] = out
    return out


class _DirectTables(eqx.Module):
    problem: MatchingProblem = eqx.field(static=True)

    def __call__(self, t):
        (lin, quad), (dlin, dquad) = jax.jvp(
            self.problem.tables_fn, (jnp.exp(t)[None],), (jnp.exp(t)[None],)
        )
        sq = lambda a: None if a is None else a[0]  # noqa: E731
        return sq(lin), sq(quad), sq(dlin), sq(dquad)


# ----------------------------------------------------------------------------- solution ---


class FlowSolution(eqx.Module):
    """The result of `rgflow.flow`.

    **Fields:**

    - `cutoffs`: the cutoffs Λ at which the flow was saved `(n_save,)`.
    - `couplings`: g(Λ) `(n_save, m)` (inf past a blow-up event).
    - `dimensionless`: ĝ = g Λ^{[g]} `(n_save, m)` with the engineering dimensions `dimensions`
      (`rgflow._relevance`; NaN where a dimension is unknown), or None.
    - `dimensions`: the [g] used `(m,)` or None.
    - `names`: the coupling names.
    - `result`: the `diffrax.RESULTS` code (successful / event_occurred / ...).
    - `stats`: diffrax's solver statistics (`num_steps`, `num_accepted_steps`,
      `num_rejected_steps`, `max_steps`).
    - `refit_gap`: max over couplings of |g_flow − g_refit| / |g_refit| at the last cutoff, the
      drift of the flow from a direct least-squares refit there (None if not checked: the check
      was disabled, the solver failed, or the flow started off the matching solution).
    - `drifted`: `refit_gap` exceeds the tolerance `refit_rtol` of `flow`: the flowed couplings
      are not those the matching conditions give, and `succeeded` is False.
    """

    cutoffs: jax.Array
    couplings: jax.Array
    dimensionless: jax.Array | None
    dimensions: jax.Array | None
    names: tuple = eqx.field(static=True)
    result: diffrax.RESULTS
    stats: dict
    refit_gap: float | None = eqx.field(static=True, default=None)
    drifted: bool = eqx.field(static=True, default=False)

    @property
    def succeeded(self) -> bool:
        """The solver finished and the end point agrees with a direct refit (not `drifted`)."""
        return bool(self.result == diffrax.RESULTS.successful) and not self.drifted

    @property
    def event_occurred(self) -> bool:
        return bool(self.result == diffrax.RESULTS.event_occurred)


_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8,
            "kvaerno5": diffrax.Kvaerno5, "kvaerno3": diffrax.Kvaerno3}


def _make_solver(solver):
    if solver is None:
        return diffrax.Tsit5()
    if isinstance(solver, str):
        key = solver.lower()
        if key == "stiff":
            key = "kvaerno5"
        if key not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {tuple(_SOLVERS)} or 'stiff', got {solver!r}.")
        return _SOLVERS[key]()
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"`solver` must be a name or a diffrax solver, got {solver!r}.")
    return solver


@eqx.filter_jit
def _solve(tables, y0, scale, rates, t0, t1, ts, target, weights, determines, solver, rtol, atol,
           blowup, max_steps, throw, residual_term):
    def rhs(t, y, args):
        g = y * scale * jnp.exp(-rates * (t - t0))
        lin, quad, dlin, dquad = tables(t)
        b = beta_from_tables(g, lin, quad, dlin, dquad, target, weights, residual_term=residual_term,
                             determines=determines)
        return (b + rates * g) * jnp.exp(rates * (t - t0)) / scale

    def cond(t, y, args, **kwargs):
        return jnp.any(~jnp.isfinite(y)) | jnp.any(jnp.abs(y) > blowup)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), solver, t0=t0, t1=t1, dt0=None, y0=y0,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(ts=ts), event=diffrax.Event(cond), max_steps=max_steps, throw=throw,
    )
    g = sol.ys * scale[None] * jnp.exp(-rates[None] * (sol.ts[:, None] - t0))
    return g, sol.result, sol.stats


def _relative_gap(g, g_ref) -> float:
    """max_a |g_a − g_ref_a| / |g_ref_a| (floored at 1e-12 max|g_ref| for vanishing couplings)."""
    g_ref = np.asarray(g_ref)
    floor = 1e-12 * np.max(np.abs(g_ref)) if np.any(g_ref) else 1e-300
    return float(np.max(np.abs(np.asarray(g) - g_ref) / np.maximum(np.abs(g_ref), floor)))


def flow(
    problem: MatchingProblem,
    cutoffs,
    g0=None,
    *,
    solver="tsit5",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    blowup: float = 1e8,
    max_steps: int = 16384,
    throw: bool = True,
    residual_term: bool = True,
    dimensions=None,
    interpolate: bool = True,
    segment_width: float = 2.5,
    n_nodes: int = 16,
    refit_cutoffs=None,
    refit_rtol: float | None = 1e-6,
) -> FlowSolution:
    """Flow the couplings of a matching problem in the cutoff with diffrax (physics.md §7).

    Solves dg/d ln Λ = β(g) (`rgflow._beta.beta_from_tables`) from Λ0 = `cutoffs[0]`, where
    g(Λ0) = `g0`, through all `cutoffs` (monotonic, increasing or decreasing).

    **Arguments:**

    - `problem`: a `MatchingProblem` (`rgflow._beta.matching_problem`).
    - `cutoffs`: `(n_save,)` cutoffs Λ > 0, strictly monotonic; the first is Λ0.
    - `g0`: initial couplings `(m,)`; default: the least-squares refit at Λ0. Differentiable.
    - `solver`: "tsit5" (default), "dopri5", "dopri8", "kvaerno5"/"stiff" (implicit, for stiff
      flows), or a `diffrax` solver instance.
    - `rtol`, `atol`: PID step-size tolerances on the scaled couplings (module docstring).
    - `blowup`: stop (diffrax `Event`) when a scaled coupling exceeds this or is non-finite.
    - `max_steps`: diffrax step limit.
    - `throw`: passed to `diffrax.diffeqsolve`.
    - `residual_term`: exact derivative of the least-squares refits (True) or the homogeneous
      flow −(AᵀWA)⁻¹AᵀW ∂_tA g (False); see `rgflow._beta`.
    - `dimensions`: engineering dimensions [g] `(m,)` for `dimensionless` (None entries → NaN).
    - `interpolate`: interpolated tables (default) or direct evaluation at each step.
    - `segment_width`, `n_nodes`: the interpolant's t-segments and Chebyshev nodes per segment.
    - `refit_cutoffs`: cutoffs at which refits will be wanted; their tables are computed in the
      same vectorised quadrature call as the interpolation nodes (and cached on `problem`).
    - `refit_rtol`: drift check. For a flow that starts on the matching solution (the default
      `g0`, or a `g0` within `refit_rtol` of the refit at Λ0), the couplings at the last cutoff
      are compared with a direct least-squares refit there; a relative gap above `refit_rtol` marks the solution `drifted`
      (`succeeded` False, the gap in `refit_gap`). The exact-refit flow run towards small Λ
      amplifies errors by I4(Λ_start)/I4(Λ) (module docstring) and the homogeneous flow
      (`residual_term=False`) departs from the refits wherever the conditions are not fitted
      exactly, so neither is trusted without this check. None: no check (e.g. inside
      `jax.grad`, where it is skipped anyway).

    **Returns:** a `FlowSolution`.
    """
    cut = _check_cutoffs(cutoffs)
    if cut.size < 2:
        raise ValueError("`cutoffs` needs at least two values (Λ0 and where to stop).")
    d = np.diff(cut)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError("`cutoffs` must be strictly monotonic (increasing: UV→IR in input "
                         "space, removing the cutoff; decreasing: back).")
    checks = (("rtol", rtol), ("atol", atol), ("blowup", blowup))
    if refit_rtol is not None:
        checks += (("refit_rtol", refit_rtol),)
    for name, v in checks:
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be a finite number > 0, got {v!r}.")
    if g0 is not None and not isinstance(g0, jax.core.Tracer):
        g0_arr = np.abs(check_real_array("g0", g0, finite=False))
        if g0_arr.size and np.nanmax(g0_arr) > 1e150:
            raise ValueError(f"the initial couplings `g0` must be <= 1e150 in magnitude (the "
                             f"β-functions are quadratic in g and would overflow float64), got "
                             f"{np.asarray(g0)}.")
    ts = np.log(cut)
    t0, t1 = float(ts[0]), float(ts[-1])
    if interpolate:
        tables, rates = build_tables(problem, min(t0, t1), max(t0, t1),
                                     segment_width=segment_width, n_nodes=n_nodes,
                                     extra_cutoffs=[cut[:1], cut[-1:]]
                                     + ([] if refit_cutoffs is None else [refit_cutoffs]))
    else:
        lin, _ = problem.tables(cut)
        check_rank(problem, lin, cut)
        tables = _DirectTables(problem)
        col = np.linalg.norm(np.asarray(lin) * np.sqrt(problem.weights)[None, :, None], axis=1)
        rates = np.where((col[0] > 0) & (col[-1] > 0),
                         np.log(np.abs(col[-1]) / np.where(col[0] > 0, col[0], 1)) / (ts[-1] - ts[0]), 0.0)
    m = problem.n_couplings
    if g0 is None:
        g0 = refit(problem, cut[:1], check=False)[0]
    g0 = jnp.asarray(g0, dtype=jnp.float64)
    if g0.shape != (m,):
        raise ValueError(f"`g0` must have shape ({m},) for couplings {problem.names}, got {g0.shape}.")
    if not isinstance(g0, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(g0))):
        raise ValueError(f"the initial couplings `g0` must be finite, got {np.asarray(g0)}.")

    scale = jax.lax.stop_gradient(jnp.where(jnp.abs(g0) > 0, jnp.abs(g0), 1.0))
    rates = jnp.asarray(rates, jnp.float64)
    try:
        g, result, stats = _solve(
            tables, g0 / scale, scale, rates, jnp.asarray(t0), jnp.asarray(t1), jnp.asarray(ts),
            jnp.asarray(problem.target), jnp.asarray(problem.weights),
            jnp.asarray(problem.determines), _make_solver(solver),
            float(rtol), float(atol), float(blowup), int(max_steps), bool(throw),
            bool(residual_term),
        )
    except eqx.EquinoxRuntimeError as e:  # throw=True: the solver stopped
        reason = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "unknown")
        raise ValueError(f"the flow failed: {reason} (raise `max_steps`, loosen `rtol`/`atol`, "
                         "or pass throw=False to inspect the partial solution).") from None
    dims = None
    dimless = None
    if dimensions is not None:
        dims = jnp.asarray([np.nan if v is None else float(v) for v in dimensions], jnp.float64)
        if dims.shape != (m,):
            raise ValueError(f"`dimensions` must have {m} entries, got {dims.shape}.")
        dimless = g * jnp.asarray(cut)[:, None] ** dims[None]
    gap, drifted = None, False
    if (refit_rtol is not None and not isinstance(g, jax.core.Tracer)
            and result == diffrax.RESULTS.successful):
        # only a flow that starts on the matching solution must stay on it: one started off it
        # (a user `g0` away from the refit at Λ0) is not compared
        if _relative_gap(np.asarray(g[0]), refit(problem, cut[:1], check=False)[0]) <= refit_rtol:
            gap = _relative_gap(np.asarray(g[-1]), refit(problem, cut[-1:], check=False)[0])
            drifted = not gap <= refit_rtol  # NaN counts as drift
    return FlowSolution(
        cutoffs=jnp.asarray(cut), couplings=g, dimensionless=dimless, dimensions=dims,
        names=problem.names, result=result, stats=stats, refit_gap=gap, drifted=drifted,
    )
