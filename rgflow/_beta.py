"""β-functions of the couplings from cutoff independence of matched correlators (physics.md §7).

**Matching.** The couplings g(Λ) of an action are defined at each cutoff Λ by weighted least
squares on a set of matched correlator entries ("matching conditions") i = 1..n with targets T_i
(e.g. ΔG4 = G4 − G4_GP on the sorted 4-tuples, the connected 6-pt function G6_c) and weights W_i:

    g(Λ) = argmin_g  Σ_i W_i (G_i(g; Λ) − T_i)²,

where G_i(g; Λ) is the tree-level prediction of the action with cutoff Λ (physics.md §6). At tree
level G is a polynomial of degree <= 2 in the couplings,

    G_i(g; Λ) = Σ_a L_ia(Λ) g_a + ½ Σ_ab Q_iab(Λ) g_a g_b,

with L the design matrix A of the first-order diagrams (−24 I4, −720 I6, the x-dependent and
bilocal integrals, ...) and Q the λ² exchange between local quartics in the 6-pt function (HMS,
physics.md §6). L, Q are computed by `rgflow._predict.Predictor` (its Λ-dependence through
`rgflow._integrals`), and their Λ-derivatives by forward-mode autodiff in t = ln Λ
(`jax.jvp` with tangent Λ: Λ ∂_Λ L = ∂_t L).

**β-functions.** The targets do not depend on Λ, so g(Λ) runs. Differentiating the normal
equations F(g, t) = Jᵀ W r = 0 (J = ∂G/∂g = L + Q g, r = G − T) along the solution gives the
implicit-function flow

    β(g) = dg/d ln Λ = −(Jᵀ W J + Σ_i W_i r_i Q_i)⁻¹ [Jᵀ W ∂_t G + (∂_t J)ᵀ W r],
    ∂_t G = (∂_t L) g + ½ (∂_t Q)[g, g],   ∂_t J = ∂_t L + (∂_t Q) g.

For couplings entering linearly (Q = 0) and matching conditions the action reproduces exactly
(r = 0) this is the formula of physics.md §7 / issue 4,

    dg/d ln Λ = −(Aᵀ W A)⁻¹ Aᵀ W (Λ ∂_Λ A) g,

e.g. β_λ = −λ d ln I4 / d ln Λ for one coupling and one entry. For an over-determined fit the
residual r ≠ 0 adds the (∂_t A)ᵀ W r term: only with it do independent least-squares refits at
every Λ lie exactly on the flow (`residual_term=True`, the default); `residual_term=False` gives
the homogeneous flow of the formula above (used for the stability matrix at the Gaussian fixed
point, `rgflow._relevance`). With κ and λ both present the λ² exchange makes β_κ depend on λ and
β_λ (a genuinely coupled, nonlinear system).

Everything is float64. Rank-deficient conditions (singular values of √W A, columns normalised,
below `rcond`) raise a `ValueError` naming the conditions and the undetermined couplings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._tuples import sorted_tuples
from ._validate import check_inputs, check_real_array

__all__ = [
    "MatchingProblem",
    "matching_problem",
    "beta",
    "beta_from_tables",
    "refit",
    "check_rank",
]

_RCOND = 1e-10


def _tuple_names(order: int, n_points: int) -> list[str]:
    return [f"G{order}c{tuple(int(i) for i in t)}" for t in sorted_tuples(n_points, order)]


class MatchingProblem:
    """Matched correlator entries and the action's predictions for them as functions of Λ.

    The narrow interface to the diagram engine is one function `tables_fn(cutoffs) -> (L, Q)`:
    the coefficients of the tree-level prediction G(g; Λ) = L g + ½ Q[g, g] at every cutoff
    (L `(n_cut, n, m)`, Q `(n_cut, n, m, m)` or None), differentiable in the cutoffs.

    **Arguments:**

    - `tables_fn`: the function above (must accept a traced cutoff array under `jax.jvp`).
    - `names`: the m coupling names.
    - `target`: the matched values T `(n,)` (Λ-independent; e.g. ΔG4, G6_c).
    - `weights`: W `(n,)`, > 0 (e.g. 1/stderr² for Monte Carlo input); default ones.
    - `condition_names`: the n condition names (for error messages).
    - `target_stderr`: optional standard errors of T `(n,)` (Monte Carlo input), used to
      propagate uncertainties (`rgflow._relevance`).
    - `nonlinear`: whether `tables_fn` returns a Q table.
    - `determines`: optional 0/1 matrix D `(n, m)`: condition i enters the normal equation of
      coupling a only if D_ia = 1 (hierarchical matching; default all ones = joint least squares).
      The matching equations are then F_a = Σ_i D_ia W_i r_i ∂G_i/∂g_a = 0.

    Build it for an `rgflow` action with `matching_problem`.
    """

    def __init__(
        self,
        tables_fn: Callable,
        names: Sequence[str],
        target,
        weights=None,
        condition_names: Sequence[str] | None = None,
        target_stderr=None,
        *,
        nonlinear: bool = False,
        determines=None,
        jit: bool = True,
        chunk: int = 64,
    ):
        self.tables_fn = tables_fn
        self.names = tuple(names)
        self.target = np.asarray(target, dtype=np.float64).reshape(-1)
        n = self.target.shape[0]
        if not np.all(np.isfinite(self.target)):
            raise ValueError("the matching `target` contains NaN or inf.")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"`weights` must be {n} finite positive numbers, got shape {w.shape}.")
        self.weights = w
        self.condition_names = tuple(condition_names) if condition_names is not None else tuple(
            f"condition[{i}]" for i in range(n)
        )
        if len(self.condition_names) != n:
            raise ValueError("`condition_names` must name every condition.")
        self.target_stderr = None if target_stderr is None else np.asarray(target_stderr, np.float64)
        self.nonlinear = bool(nonlinear)
        m = len(self.names)
        self.determines = (np.ones((n, m)) if determines is None
                           else np.asarray(determines, dtype=np.float64).reshape(n, m))
        self.jit = bool(jit)
        self.chunk = int(chunk)
        self._cache: dict = {}

    @property
    def n_couplings(self) -> int:
        return len(self.names)

    @property
    def n_conditions(self) -> int:
        return self.target.shape[0]

    def tables(self, cutoffs):
        """(L, Q) at the cutoffs; Q is None for actions linear in the couplings.

        Always evaluated under `jax.jvp` (and cached), so that the quadrature rule does not
        depend on which other cutoffs are in the call.
        """
        lin, quad, _, _ = self.tables_and_derivatives(cutoffs)
        return lin, quad

    def tables_and_derivatives(self, cutoffs):
        """(L, Q, ∂_t L, ∂_t Q) at the cutoffs, t = ln Λ, by `jax.jvp` in the cutoffs.

        The result for the last few cutoff arrays is cached on the problem.
        """
        cutoffs = _check_cutoffs(cutoffs)
        key = ("direct", cutoffs.tobytes())
        if key not in self._cache:

            def tangent(c):
                (lin, quad), (dlin, dquad) = jax.jvp(self.tables_fn, (c,), (c,))
                return lin, quad, dlin, dquad

            def tangent_cte(c):
                # Λ-independent parts (quadrature rules, kernel checks) evaluated at trace time
                with jax.ensure_compile_time_eval():
                    return tangent(c)

            compiled = jax.jit(tangent_cte) if self.jit else None
            parts = []
            # chunks of `chunk` cutoffs (the last padded by repetition: one compiled shape)
            # bound the memory of the exchange integrals' (cutoff, triple, triple, ...) arrays
            for i in range(0, cutoffs.size, self.chunk):
                c = cutoffs[i:i + self.chunk]
                k = c.size
                c = jnp.asarray(np.concatenate([c, np.repeat(c[-1:], self.chunk - k)])
                                if cutoffs.size > self.chunk else c)
                out = None
                if compiled is not None:
                    try:  # one compiled program instead of hundreds of eager dispatches
                        out = compiled(c)
                    except (jax.errors.TracerArrayConversionError,
                            jax.errors.ConcretizationTypeError,
                            jax.errors.TracerBoolConversionError):
                        compiled = None  # diagram code that needs concrete values (Gauss-net)
                if out is None:
                    out = tangent(c)
                parts.append(tuple(None if a is None else np.asarray(a)[:k] for a in out))
            # host (NumPy) arrays: slicing and joining them compiles nothing
            self._cache[key] = tuple(
                None if parts[0][j] is None else np.concatenate([p[j] for p in parts])
                for j in range(4)
            )
        return self._cache[key]

    def precompute(self, *cutoff_arrays):
        """Evaluate tables and t-derivatives for several cutoff arrays in one vectorised call
        (one quadrature) and cache each: `problem.tables(c)` is then free."""
        arrs = [_check_cutoffs(c) for c in cutoff_arrays]
        union = np.unique(np.concatenate(arrs))
        lin, quad, dlin, dquad = self.tables_and_derivatives(union)
        for c in arrs:
            sl = np.searchsorted(union, c)
            q = None if quad is None else quad[sl]
            dq = None if dquad is None else dquad[sl]
            self._cache[("direct", c.tobytes())] = (lin[sl], q, dlin[sl], dq)

    def subset(self, couplings, conditions) -> "MatchingProblem":
        """The problem restricted to some couplings and conditions (index arrays); cached
        tables are sliced, not recomputed."""
        ci = np.asarray(couplings, dtype=np.int64)
        ri = np.asarray(conditions, dtype=np.int64)

        def sl_lin(a):
            return a[:, ri][:, :, ci]

        def sl_quad(a):
            return None if a is None else a[:, ri][:, :, ci][:, :, :, ci]

        def tables_fn(c):
            lin, quad = self.tables_fn(c)
            return sl_lin(lin), sl_quad(quad)

        err = None if self.target_stderr is None else self.target_stderr[ri]
        out = MatchingProblem(
            tables_fn, [self.names[i] for i in ci], self.target[ri], self.weights[ri],
            [self.condition_names[i] for i in ri], err, nonlinear=self.nonlinear,
            determines=self.determines[np.ix_(ri, ci)], jit=self.jit, chunk=self.chunk,
        )
        for key, (lin, quad, dlin, dquad) in self._cache.items():
            if key[0] == "direct":
                out._cache[key] = (sl_lin(lin), sl_quad(quad), sl_lin(dlin), sl_quad(dquad))
        return out

    def with_target(self, target, weights=None, target_stderr=None) -> "MatchingProblem":
        """The same conditions and action with new targets (and weights)."""
        return MatchingProblem(
            self.tables_fn, self.names, target, self.weights if weights is None else weights,
            self.condition_names, target_stderr, nonlinear=self.nonlinear,
            determines=self.determines,
        )


def _check_cutoffs(cutoffs) -> np.ndarray:
    if isinstance(cutoffs, jax.core.Tracer):
        raise TypeError("`cutoffs` must be concrete here (they fix the quadrature).")
    from ._validate import check_real_array  # noqa: PLC0415

    arr = np.atleast_1d(check_real_array("cutoffs", cutoffs, finite=False))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`cutoffs` must be a non-empty 1-d array, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"`cutoffs` must be finite and > 0 (the box is [−Λ, Λ]^d), got {arr}.")
    return arr


# ------------------------------------------------------------------- actions → problems ---


def _sub_action(action, keep):
    from ._actions import Action  # noqa: PLC0415

    sub = Action(action.free, [action.interactions[i] for i in keep])
    full = action.coupling_names
    idx = []
    for name in sub.coupling_names:
        j, rest = name.split(":", 1)
        idx.append(full.index(f"{keep[int(j)]}:{rest}"))
    return sub, np.asarray(idx, dtype=np.int64)


def matching_problem(
    action,
    xs,
    targets: Mapping[int, object],
    weights: Mapping[int, object] | None = None,
    *,
    stderr: Mapping[int, object] | None = None,
    exchange: bool = True,
    hierarchical: bool = True,
    options=None,
) -> MatchingProblem:
    """The matching problem of an `rgflow.Action` on connected correlators (physics.md §6–7).

    **Arguments:**

    - `action`: an `rgflow._actions.Action` (its coupling values are ignored, its operator
      content is used).
    - `xs`: inputs `(P, d_in)`.
    - `targets`: `{order: values}` with order 4 (ΔG4 = G4 − G4_GP = G4_c) and/or 6 (the
      connected G6_c), each on the sorted tuples `rgflow.sorted_tuples(P, order)`.
    - `weights`: optional `{order: W}` per-entry weights (default ones).
    - `stderr`: optional `{order: stderr}` of Monte Carlo targets.
    - `exchange`: include the λ² exchange between local quartics in the 6-pt prediction. The
      bilocal/nonlocal quartics do not enter the 6-pt rows (their O(g²) diagrams are not
      implemented by the diagram engine): they are fixed by the 4-pt rows only.
    - `hierarchical`: with both orders, let the 4-pt conditions determine the quartic couplings
      and the 6-pt conditions the sextic ones given the quartics (leading order in 1/N: λ is
      O(1/N), κ and λ² are O(1/N²)); False: one joint least-squares fit of all couplings.
    - `options`: `QuadratureOptions` for the vertex integrals.

    **Returns:** a `MatchingProblem` whose couplings are `action.coupling_names`.
    """
    from ._actions import Action, LocalCoupling, PolynomialQuartic  # noqa: PLC0415
    from ._predict import Predictor  # noqa: PLC0415

    if not isinstance(action, Action):
        raise TypeError(f"`action` must be an rgflow Action, got {action!r}.")
    if not targets:
        raise ValueError("`targets` must give at least one order (4 and/or 6).")
    xs = check_inputs(xs, action.free.d_in)
    p = xs.shape[0]
    m = len(action.coupling_names)
    for name, table in (("targets", targets), ("weights", weights), ("stderr", stderr)):
        if table is not None and not isinstance(table, Mapping):
            raise TypeError(f"`{name}` must be a dict {{order: values}}, got {type(table).__name__}.")
        for order in (table or {}):
            if order not in (4, 6):
                raise ValueError(f"`{name}` orders must be 4 or 6, got {order!r}.")
    blocks, tgt, wts, errs, cnames = [], [], [], [], []
    nonlinear = False
    for order in sorted(targets):
        if order not in (4, 6):
            raise ValueError(f"matching orders must be 4 or 6, got {order!r}.")
        t = check_real_array(f"targets[{order}]", targets[order]).reshape(-1)
        n_t = len(sorted_tuples(p, order))
        if t.shape != (n_t,):
            raise ValueError(
                f"`targets[{order}]` must have {n_t} entries (the sorted {order}-tuples of "
                f"{p} inputs), got shape {t.shape}."
            )
        if order == 4:
            keep = list(range(len(action.interactions)))
        else:
            keep = [
                i for i, s in enumerate(action.interactions)
                if isinstance(s, (LocalCoupling, PolynomialQuartic))
            ]
            has6 = any(
                isinstance(action.interactions[i], LocalCoupling) and action.interactions[i].order == 6
                for i in keep
            )
            if not has6 and not (exchange and keep):
                raise ValueError("6-pt matching needs a sextic coupling or quartics with exchange.")
            nonlinear = nonlinear or (exchange and any(
                isinstance(action.interactions[i], PolynomialQuartic)
                or action.interactions[i].order == 4 for i in keep))
        sub, idx = _sub_action(action, keep)
        blocks.append((order, sub, idx, bool(exchange and order == 6)))
        tgt.append(t)
        w = np.ones(n_t) if not weights or order not in weights else check_real_array(
            f"weights[{order}]", weights[order]).reshape(-1)
        if w.shape != (n_t,):
            raise ValueError(f"`weights[{order}]` must have shape ({n_t},), got {w.shape}.")
        if np.any(w < 0) or not np.any(w > 0):
            raise ValueError(f"`weights[{order}]` must be >= 0 and not all zero.")
        wts.append(w)
        if stderr and order in stderr:
            e = check_real_array(f"stderr[{order}]", stderr[order]).reshape(-1)
            if e.shape != (n_t,) or np.any(e < 0):
                raise ValueError(f"`stderr[{order}]` must be {n_t} values >= 0, got shape {e.shape}.")
            errs.append(e)
        else:
            errs.append(np.zeros(n_t) if stderr else None)
        cnames += _tuple_names(order, p)

    def tables_fn(cutoffs):
        lins, quads = [], []
        for order, sub, idx, quad in blocks:
            pred = Predictor(sub, xs, cutoffs, order, exchange=quad, options=options)

            def g_of(flat, pred=pred, sub=sub, idx=idx):
                return pred(sub.with_flat_couplings(flat[idx]))

            zero = jnp.zeros(m)
            lins.append(jax.jacfwd(g_of)(zero))  # (C, T, m)
            if nonlinear:
                if quad:
                    quads.append(jax.jacfwd(jax.jacfwd(g_of))(zero))  # (C, T, m, m)
                else:
                    c, n_t = lins[-1].shape[:2]
                    quads.append(jnp.zeros((c, n_t, m, m)))
        lin = jnp.concatenate(lins, axis=1)
        return lin, (jnp.concatenate(quads, axis=1) if nonlinear else None)

    stderr_all = None if all(e is None for e in errs) else np.concatenate(errs)
    determines = None
    if hierarchical and len(blocks) == 2:
        sextic = np.zeros(m, dtype=bool)
        for i, term in enumerate(action.interactions):
            if isinstance(term, LocalCoupling) and term.order == 6:
                sextic[action.coupling_names.index(f"{i}:LocalCoupling.coupling")] = True
        if sextic.any():
            n4 = len(tgt[0])
            determines = np.zeros((n4 + len(tgt[1]), m))
            determines[:n4, ~sextic] = 1.0
            determines[n4:, sextic] = 1.0
    return MatchingProblem(
        tables_fn, action.coupling_names, np.concatenate(tgt), np.concatenate(wts), cnames,
        stderr_all, nonlinear=nonlinear, determines=determines,
        jit=True,
        # exchange tables are (cutoffs, T3, T3, ...) arrays: 4 cutoffs a call keep Gauss-net's
        # relevance study at 1.2 GB instead of 1.9 GB (16 cutoffs), at the same speed (measured)
        chunk=4 if nonlinear else 64,
    )


# --------------------------------------------------------------------------- β-function ---


def _predict(g, lin, quad):
    out = lin @ g
    if quad is not None:
        out = out + 0.5 * jnp.einsum("iab,a,b->i", quad, g, g)
    return out


def _jac(g, lin, quad):
    return lin if quad is None else lin + jnp.einsum("iab,b->ia", quad, g)


def _solve_scaled(h, rhs):
    """Solve the symmetric system h x = rhs after symmetric diagonal scaling."""
    d = jnp.sqrt(jnp.abs(jnp.diagonal(h)))
    d = jnp.where(d > 0, d, 1.0)
    x = jnp.linalg.solve(h / d[:, None] / d[None, :], rhs / d)
    return x / d


def beta_from_tables(g, lin, quad, dlin, dquad, target, weights, *, residual_term: bool = True,
                     determines=None):
    """dg/d ln Λ at one cutoff from the prediction tables and their t-derivatives.

    With the matching equations F_a = Σ_i D_ia W_i r_i J_ia = 0 (D = 1: joint least squares),
    β = −(∂F/∂g)⁻¹ ∂_t F, i.e. for D = 1

        β = −(Jᵀ W J + Σ W r Q)⁻¹ [Jᵀ W ∂_t G + (∂_t J)ᵀ W r],

    with the residual terms dropped when `residual_term=False` (the formula
    −(AᵀWA)⁻¹AᵀW ∂_tA g).

    **Arguments:** `g` `(m,)`; `lin`, `dlin` `(n, m)`; `quad`, `dquad` `(n, m, m)` or None;
    `target`, `weights` `(n,)`; `determines` `(n, m)` or None.

    **Returns:** `(m,)`.
    """
    j = _jac(g, lin, quad)
    dg_t = _predict(g, dlin, dquad)
    wl = weights[:, None] * (1.0 if determines is None else determines)  # (n, m)
    wj = wl * j
    h = wj.T @ j
    rhs = wj.T @ dg_t
    if residual_term:
        r = _predict(g, lin, quad) - target
        dj = _jac(g, dlin, dquad)
        rhs = rhs + (wl * dj).T @ r
        if quad is not None:
            h = h + jnp.einsum("ia,i,iab->ab", wl, r, quad)
    return -_solve_lu_scaled(h, rhs)


def _solve_lu_scaled(h, rhs):
    """Solve h x = rhs (h not necessarily symmetric) after row/column equilibration."""
    dr = jnp.max(jnp.abs(h), axis=1)
    dr = jnp.where(dr > 0, dr, 1.0)
    hr = h / dr[:, None]
    dc = jnp.max(jnp.abs(hr), axis=0)
    dc = jnp.where(dc > 0, dc, 1.0)
    x = jnp.linalg.solve(hr / dc[None, :], rhs / dr)
    return x / dc


def beta(problem: MatchingProblem, g, cutoff, *, residual_term: bool = True):
    """The β-function dg/d ln Λ of a matching problem at one cutoff, by autodiff in Λ.

    **Arguments:**

    - `problem`: a `MatchingProblem`.
    - `g`: couplings `(m,)` (order of `problem.names`).
    - `cutoff`: Λ > 0 (a Python/NumPy scalar).
    - `residual_term`: keep the least-squares residual terms (module docstring).

    **Returns:** float64 `(m,)`.
    """
    lin, quad, dlin, dquad = problem.tables_and_derivatives(np.atleast_1d(cutoff))
    q = None if quad is None else quad[0]
    dq = None if dquad is None else dquad[0]
    return beta_from_tables(
        jnp.asarray(g, jnp.float64), lin[0], q, dlin[0], dq, jnp.asarray(problem.target),
        jnp.asarray(problem.weights), residual_term=residual_term,
        determines=jnp.asarray(problem.determines),
    )


# ------------------------------------------------------------------------------- refits ---


def check_rank(problem: MatchingProblem, lin, cutoffs, *, rcond: float = _RCOND) -> None:
    """Raise `ValueError` if the matching conditions do not determine the couplings.

    Checks the singular values of √W L (columns normalised) at every cutoff: the smallest over
    the largest below `rcond` means a direction of couplings the conditions cannot see.
    """
    lin = np.asarray(lin)
    cutoffs = np.atleast_1d(np.asarray(cutoffs))
    sw = np.sqrt(problem.weights)[None, :, None]
    a = lin * sw
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    zero_cols = np.all(norms[:, 0, :] == 0, axis=0)
    conds = problem.condition_names
    shown = ", ".join(conds[:6]) + (f", ... ({len(conds)} conditions)" if len(conds) > 6 else "")
    if not np.all(np.isfinite(a)):
        raise ValueError("the design matrix is not finite (cutoff outside the quadrature range?).")
    if lin.shape[1] < lin.shape[2]:
        raise ValueError(
            f"the {lin.shape[1]} matching conditions ({shown}) cannot determine the "
            f"{lin.shape[2]} couplings {problem.names}."
        )
    if np.any(zero_cols):
        bad = [problem.names[i] for i in np.flatnonzero(zero_cols)]
        raise ValueError(
            f"the matching conditions ({shown}) do not involve the couplings {bad} "
            "(zero columns of the design matrix A): they cannot be determined."
        )
    a = a / np.where(norms > 0, norms, 1.0)
    dmat = problem.determines
    groups = {}
    for col in range(dmat.shape[1]):
        groups.setdefault(dmat[:, col].tobytes(), []).append(col)
    for cols in groups.values():
        rows = np.flatnonzero(dmat[:, cols[0]] > 0)
        for k in range(a.shape[0]):
            sub = a[k][np.ix_(rows, cols)]
            sub = sub / np.where(np.linalg.norm(sub, axis=0) > 0, np.linalg.norm(sub, axis=0), 1.0)
            if len(rows) < len(cols):
                s_min, s_max, v = 0.0, 1.0, np.ones(len(cols))
            else:
                _, sv, vt = np.linalg.svd(sub, full_matrices=False)
                s_min, s_max, v = sv[-1], sv[0], vt[-1]
            if s_min <= rcond * s_max:
                involved = [problem.names[cols[i]] for i in np.argsort(-np.abs(v)) if abs(v[i]) > 0.1]
                raise ValueError(
                    f"the matching conditions ({shown}) do not determine the couplings: the design "
                    f"matrix √W A is rank-deficient at Λ = {cutoffs[k]:g} (singular values "
                    f"{s_min:.3g} / {s_max:.3g} after column scaling); undetermined combination "
                    f"of {involved}. Add conditions or remove couplings."
                )


def _lstsq_linear(lin, target, weights):
    sw = jnp.sqrt(weights)
    a = lin * sw[:, None]
    scale = jnp.linalg.norm(a, axis=0)
    scale = jnp.where(scale > 0, scale, 1.0)
    x = jnp.linalg.lstsq(a / scale, target * sw)[0]
    return x / scale


def refit(problem: MatchingProblem, cutoffs, *, tables=None, n_newton: int = 30, check: bool = True):
    """Couplings refitted independently at each cutoff: weighted least squares of the matching
    conditions (Gauss–Newton/Newton iterations when the λ² exchange makes it nonlinear).

    **Arguments:**

    - `problem`: a `MatchingProblem`.
    - `cutoffs`: `(n_cut,)` cutoffs Λ > 0.
    - `tables`: optional precomputed `(L, Q)` at the cutoffs.
    - `n_newton`: Newton iterations for nonlinear problems.
    - `check`: check the rank of the conditions first (`check_rank`).

    **Returns:** float64 `(n_cut, m)`.
    """
    cutoffs = _check_cutoffs(cutoffs)
    lin, quad = problem.tables(cutoffs) if tables is None else tables
    if check:
        check_rank(problem, lin, cutoffs)
    return _refit_tables(lin, quad, jnp.asarray(problem.target), jnp.asarray(problem.weights),
                         n_newton, jnp.asarray(problem.determines))


def _refit_tables(lin, quad, target, weights, n_newton=30, determines=None):
    hier = determines is not None and not bool(np.all(np.asarray(determines) == 1))
    return _refit_jit(lin, quad, target, weights, n_newton, None if not hier else determines)


@functools.partial(jax.jit, static_argnums=(4,))
def _refit_jit(lin, quad, target, weights, n_newton, determines):
    hier = determines is not None
    if not hier:
        g = jax.vmap(_lstsq_linear, (0, None, None))(lin, target, weights)
        if quad is None:
            return g
    else:
        g = jnp.zeros(lin.shape[::2])
    wl = weights[:, None] * (1.0 if determines is None else determines)

    def newton(g, lin_k, quad_k):
        def step(g, _):
            j = _jac(g, lin_k, quad_k)
            r = _predict(g, lin_k, quad_k) - target
            h = (wl * j).T @ j
            if quad_k is not None:
                h = h + jnp.einsum("ia,i,iab->ab", wl, r, quad_k)
            return g - _solve_lu_scaled(h, (wl * j).T @ r), None

        return jax.lax.scan(step, g, None, length=n_newton)[0]

    if quad is None:
        return jax.vmap(lambda g, lk: newton(g, lk, None))(g, lin)
    return jax.vmap(newton)(g, lin, quad)
