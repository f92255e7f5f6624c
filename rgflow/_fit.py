"""Covariance-weighted coupling fits with optax (physics.md §6, §7).

A tree-level model of connected correlators is a polynomial of degree <= 2 in the couplings g
(first-order diagrams are linear, the λ² exchange of the 6-pt function is quadratic), so every
model here is a `QuadraticModel`

    m(g) = A g + ½ Σ_ij H_ij g_i g_j        (A: (n_data, n_g), H: (n_data, n_g, n_g)),

and a fit minimises the covariance-weighted

    χ²(g) = (y − m(g))ᵀ C⁻¹ (y − m(g))       (y: the data vector, C: its covariance).

With L Lᵀ = C (Cholesky) the whitened residual is r(g) = L⁻¹ (y − m(g)) and χ² = |r|².

**Optimisers.** `fit` runs optax L-BFGS (zoom line search, `optax.value_and_grad_from_state`)
or Adam (cosine-decayed learning rate), the whole loop a `jax.lax.while_loop` under
`equinox.filter_jit` (data, covariance factor and initial point are array arguments, so a new
data set of the same shape does not recompile). The couplings are preconditioned,
g = g₀ + D u with D_i = |r(g₀)| / |∂r/∂g_i| (Jacobi scaling of the whitened Jacobian at g₀),
and the loss is χ²(g)/χ²(g₀), so that u and the loss are O(1) whatever the units of g.
For models linear in g (`H = 0`) the closed-form weighted least-squares solution (`method="wls"`) is the
independent cross-check (tests: agreement to 1e-6 relative).

**Uncertainties.** `stderr`: curvature, √diag (Jᵀ C⁻¹ J)⁻¹ with J = ∂m/∂g at the optimum (the
inverse Gauss–Newton Hessian; not rescaled by χ²/dof). `bootstrap_stderr`: the standard deviation
of the couplings refitted (one vmapped, jitted call) to bootstrap replicates of the data, e.g.
block-bootstrap resamples of a Monte Carlo ensemble (`rgflow._fit_data`).

**Goodness of fit.** χ², dof = n_data − n_g, χ²/dof, its p-value, AIC = χ² + 2 n_g and
BIC = χ² + n_g ln n_data (Gaussian likelihood with known covariance, up to a constant).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
import scipy.stats

from ._validate import check_real_array

__all__ = [
    "FitResult",
    "QuadraticModel",
    "fit",
    "whiten",
    "power_law",
]


# ------------------------------------------------------------------------------- models ---


class QuadraticModel(eqx.Module):
    """m(g) = A g + ½ Σ_ij H_ij g_i g_j: the tree-level prediction of connected correlators as a
    function of the couplings g (physics.md §6).

    **Fields:**

    - `a`: `(n_data, n_g)` first-order design matrix (∂m/∂g at g = 0).
    - `h`: `(n_data, n_g, n_g)` symmetric second derivatives (the λ² exchange); zeros if linear.
    - `names`: the coupling names (static).
    """

    a: jax.Array
    h: jax.Array
    names: tuple = eqx.field(static=True)

    def __init__(self, a, h=None, names=None):
        a = jnp.asarray(a, dtype=jnp.float64)
        if a.ndim != 2:
            raise ValueError(f"`a` must be a (n_data, n_couplings) matrix, got shape {a.shape}.")
        h = jnp.zeros(a.shape + (a.shape[1],)) if h is None else jnp.asarray(h, jnp.float64)
        if h.shape != a.shape + (a.shape[1],):
            raise ValueError(f"`h` must have shape {a.shape + (a.shape[1],)}, got {h.shape}.")
        self.a = a
        self.h = 0.5 * (h + jnp.swapaxes(h, 1, 2))
        self.names = tuple(names) if names is not None else tuple(f"g{i}" for i in range(a.shape[1]))
        if len(self.names) != a.shape[1]:
            raise ValueError(f"`names` must have {a.shape[1]} entries, got {len(self.names)}.")

    @property
    def n_data(self) -> int:
        return self.a.shape[0]

    @property
    def n_couplings(self) -> int:
        return self.a.shape[1]

    @property
    def is_linear(self) -> bool:
        """True when H = 0 (then `wls` gives the exact minimiser in closed form)."""
        return bool(np.all(np.asarray(self.h) == 0))

    def __call__(self, g):
        g = jnp.asarray(g)
        return self.a @ g + 0.5 * jnp.einsum("nij,i,j->n", self.h, g, g)

    def jacobian(self, g):
        """∂m/∂g = A + H g, `(n_data, n_g)`."""
        return self.a + jnp.einsum("nij,j->ni", self.h, jnp.asarray(g))

    def take(self, rows) -> QuadraticModel:
        """The model restricted to the data rows `rows` (an index array or slice)."""
        return QuadraticModel(self.a[rows], self.h[rows], self.names)


# ------------------------------------------------------------------------------- result ---


class FitResult(eqx.Module):
    """The outcome of a coupling fit (see the module docstring for the definitions).

    **Fields:** `couplings` `(n_g,)`; `stderr` (curvature) `(n_g,)`; `covariance` `(n_g, n_g)`
    (inverse Gauss–Newton Hessian); `bootstrap_stderr` `(n_g,)` (NaN without replicates);
    `chi2`, `dof`, `chi2_dof`, `p_value` (None when dof = 0: an exact solve has no goodness of
    fit), `aic`, `bic`; `converged`; `n_steps`; `names`; `method`.
    """

    couplings: jax.Array
    stderr: jax.Array
    covariance: jax.Array
    bootstrap_stderr: jax.Array
    chi2: float
    dof: int
    chi2_dof: float | None
    p_value: float | None
    aic: float
    bic: float
    converged: bool
    n_steps: int
    names: tuple = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def as_dict(self) -> dict:
        """A JSON-ready dict (lists and Python numbers)."""
        out = {
            "names": list(self.names),
            "couplings": np.asarray(self.couplings).tolist(),
            "stderr": np.asarray(self.stderr).tolist(),
            "bootstrap_stderr": np.asarray(self.bootstrap_stderr).tolist(),
        }
        for k in ("chi2", "dof", "chi2_dof", "p_value", "aic", "bic", "converged", "n_steps",
                  "method"):
            v = getattr(self, k)
            out[k] = v.item() if hasattr(v, "item") else v
        return out


# ----------------------------------------------------------------------------- checking ---


def _check_data(data, n_couplings: int, name: str = "data") -> np.ndarray:
    try:
        y = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a real vector of correlator values.") from e
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-d vector, got shape {y.shape}.")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"`{name}` contains NaN or inf ({int(np.sum(~np.isfinite(y)))} entries).")
    if y.size < n_couplings:
        raise ValueError(
            f"`{name}` has {y.size} values but the model has {n_couplings} couplings: a fit needs "
            "at least as many data as couplings."
        )
    return y


def whiten(covariance, n_data: int, *, rcond: float = 1e-13) -> np.ndarray:
    """The lower Cholesky factor L of the data covariance (L Lᵀ = C), validated.

    **Arguments:**

    - `covariance`: `(n, n)` symmetric positive-definite matrix, or `(n,)` variances (diagonal).
    - `n_data`: the length n of the data vector.
    - `rcond`: smallest allowed eigenvalue relative to the largest.

    **Returns:** L, float64 `(n, n)`.

    **Raises:** `ValueError` naming `covariance` if it is non-finite, of the wrong shape, not
    symmetric, or singular / not positive definite (pass `covariance="diagonal"` or a shrunk
    estimate, see `rgflow._fit_data.jackknife_covariance`).
    """
    try:
        c = np.asarray(covariance, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError("`covariance` must be a real (n, n) matrix or (n,) variances.") from e
    if not np.all(np.isfinite(c)):
        raise ValueError("`covariance` contains NaN or inf.")
    if c.ndim == 1:
        if c.shape != (n_data,):
            raise ValueError(f"`covariance` (variances) must have shape ({n_data},), got {c.shape}.")
        if np.any(c <= 0) or c.max() <= 0 or c.min() <= rcond * c.max():
            raise ValueError(
                "`covariance` (variances) must be strictly positive: a zero variance makes the "
                "weighted fit singular."
            )
        return np.diag(np.sqrt(c))
    if c.shape != (n_data, n_data):
        raise ValueError(f"`covariance` must have shape ({n_data}, {n_data}), got {c.shape}.")
    scale = np.max(np.abs(c))
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-12 * scale):
        raise ValueError("`covariance` must be symmetric.")
    c = 0.5 * (c + c.T)
    ev = np.linalg.eigvalsh(c)
    if ev[-1] <= 0 or ev[0] <= rcond * ev[-1]:
        raise ValueError(
            f"`covariance` is singular or not positive definite (eigenvalues {ev[0]:.3g} .. "
            f"{ev[-1]:.3g}); e.g. a Monte Carlo covariance from fewer blocks than data. Use "
            "covariance='diagonal' or 'shrink' (rgflow._fit_data) or pass the variances only."
        )
    return np.linalg.cholesky(c)


# -------------------------------------------------------------------------- closed form ---


def _goodness(chi2, n_data, n_g):
    """χ², dof and the statistics that need dof > 0: with zero degrees of freedom (as many data
    as couplings: an exact solve) `chi2_dof` and `p_value` are None (not NaN) and `dof` = 0
    says why."""
    dof = n_data - n_g
    chi2 = float(chi2)
    return dict(
        chi2=chi2,
        dof=int(dof),
        chi2_dof=chi2 / dof if dof > 0 else None,
        p_value=float(scipy.stats.chi2.sf(chi2, dof)) if dof > 0 else None,
        aic=chi2 + 2 * n_g,
        bic=chi2 + n_g * math.log(n_data),
    )


def check_identifiable(jw, names, *, rcond: float = 1e-10) -> None:
    """Refuse a fit whose whitened design (Jacobian) `jw` `(n_data, n_g)` is rank-deficient:
    some combination of couplings (e.g. two identical operators) is not determined by the data,
    and any split between them would be arbitrary. Columns are normalised first, so the test is
    independent of the couplings' units. **Raises:** `ValueError` naming the couplings."""
    jw = np.asarray(jw, dtype=np.float64)
    if not np.all(np.isfinite(jw)):
        raise ValueError("the design matrix of the fit is not finite.")
    norms = np.linalg.norm(jw, axis=0)
    zero = [names[i] for i in np.flatnonzero(norms == 0)]
    if zero:
        raise ValueError(
            f"the data do not involve the couplings {zero} (zero columns of the design matrix): "
            "they cannot be determined; remove them from the model."
        )
    _, sv, vt = np.linalg.svd(jw / norms, full_matrices=False)
    if sv[-1] <= rcond * sv[0]:
        v = vt[-1]
        involved = [names[i] for i in np.argsort(-np.abs(v)) if abs(v[i]) > 0.1]
        raise ValueError(
            f"the design matrix is rank-deficient (singular values {sv[-1]:.3g} / {sv[0]:.3g} "
            f"after column scaling): the data do not determine the combination of {involved} "
            "(e.g. two identical operators). Remove one of them or add data."
        )


def _curvature(jw):
    """(Jᵀ J)⁻¹ for the whitened Jacobian J, by SVD. If J is rank deficient (couplings not
    identifiable from the data), the variance of every coupling with a component along the null
    space is infinite (its entries of the returned matrix are inf)."""
    jw = np.asarray(jw)
    _, s, vt = np.linalg.svd(jw, full_matrices=False)
    good = s > (s[0] if s.size else 0.0) * 1e-12
    cov = (vt[good].T / s[good] ** 2) @ vt[good]
    null = vt[~good]
    if null.size:
        bad = np.any(np.abs(null) > 1e-8, axis=0)
        cov = np.where(bad[:, None] | bad[None, :], np.inf, cov)
    return cov


def _wls(model, data, covariance) -> FitResult:
    """Closed-form weighted least squares for a model linear in the couplings.

        ĝ = (Aᵀ C⁻¹ A)⁻¹ Aᵀ C⁻¹ y,   Cov(ĝ) = (Aᵀ C⁻¹ A)⁻¹

    solved stably as the least-squares problem of the whitened system L⁻¹A g ≈ L⁻¹y.

    **Arguments:**

    - `model`: a `QuadraticModel` with H = 0, or a design matrix A `(n_data, n_g)`.
    - `data`: y `(n_data,)`.
    - `covariance`: `(n_data, n_data)` or variances `(n_data,)` (see `whiten`).

    **Returns:** a `FitResult` (`method="wls"`, `n_steps=0`).
    """
    if not isinstance(model, QuadraticModel):
        model = QuadraticModel(model)
    if not model.is_linear:
        raise ValueError("`model` is not linear in the couplings (H != 0): use `fit`.")
    y = _check_data(data, model.n_couplings)
    if y.size != model.n_data:
        raise ValueError(f"`data` must have {model.n_data} values, got {y.size}.")
    lc = whiten(covariance, y.size)
    aw = np.linalg.solve(lc, np.asarray(model.a))
    yw = np.linalg.solve(lc, y)
    check_identifiable(aw, model.names)
    g, *_ = np.linalg.lstsq(aw, yw, rcond=None)
    chi2 = float(np.sum((yw - aw @ g) ** 2))
    cov = _curvature(aw)
    n_g = model.n_couplings
    return FitResult(
        couplings=jnp.asarray(g), stderr=jnp.sqrt(jnp.diag(cov)), covariance=jnp.asarray(cov),
        bootstrap_stderr=jnp.full(n_g, jnp.nan), converged=True, n_steps=0,
        names=model.names, method="wls", **_goodness(chi2, y.size, n_g),
    )


# ---------------------------------------------------------------------------- optimiser ---


def _loss_factory(model, y, const, g0, scale, norm):
    def loss(u):
        r = y - model(g0 + scale * u)
        return (jnp.sum(r * r) + const) / norm

    return loss


def _run_lbfgs(loss, u0, max_steps, tol):
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        u, state = carry
        value, grad = value_and_grad(u, state=state)
        updates, state = opt.update(grad, state, u, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(u, updates), state

    def going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        grad = otu.tree_get(state, "grad")
        return (count == 0) | ((count < max_steps) & (otu.tree_norm(grad) >= tol))

    u, state = jax.lax.while_loop(going, step, (u0, opt.init(u0)))
    count = otu.tree_get(state, "count")
    gnorm = jnp.linalg.norm(jax.grad(loss)(u))
    return u, count, gnorm < tol


def _run_adam(loss, u0, max_steps, tol, learning_rate):
    sched = optax.cosine_decay_schedule(learning_rate, max_steps, alpha=1e-6)
    opt = optax.adam(sched)
    grad_fn = jax.grad(loss)

    def step(carry):
        u, state, i, _ = carry
        g = grad_fn(u)
        updates, state = opt.update(g, state, u)
        return optax.apply_updates(u, updates), state, i + 1, jnp.linalg.norm(g)

    def going(carry):
        _, _, i, gnorm = carry
        return (i < max_steps) & (gnorm >= tol)

    init = (u0, opt.init(u0), jnp.asarray(0), jnp.asarray(jnp.inf))
    u, _, count, gnorm = jax.lax.while_loop(going, step, init)
    return u, count, gnorm < tol


@eqx.filter_jit
def _minimise(model, ys, consts, g0, *, method: str, max_steps: int, tol: float,
              learning_rate: float):
    """Minimise χ² = |y − m(g)|² + const for each whitened, projected data vector in `ys`
    `(R, d)` (vmapped), from g0, preconditioned (module docstring)."""
    r0 = ys[0] - model(g0)
    col = jnp.linalg.norm(model.jacobian(g0), axis=0)
    norm = jnp.maximum(jnp.sum(r0 * r0) + consts[0], 1e-300)
    scale = jnp.sqrt(norm) / jnp.where(col > 0, col, 1.0)

    def one(y, const):
        loss = _loss_factory(model, y, const, g0, scale, norm)
        u0 = jnp.zeros_like(g0)
        if method == "lbfgs":
            u, count, ok = _run_lbfgs(loss, u0, max_steps, tol)
        else:
            u, count, ok = _run_adam(loss, u0, max_steps, tol, learning_rate)
        return g0 + scale * u, count, ok

    return jax.vmap(one)(ys, consts)


def _reduce(model, lc_inv, ys):
    """Exact reduction of χ² to the span of the whitened model: with Q an orthonormal basis of
    span{L⁻¹A_i, L⁻¹H_ij}, χ²(g) = |Qᵀ(L⁻¹y) − Qᵀ L⁻¹ m(g)|² + |(1 − QQᵀ) L⁻¹y|². The jitted loop
    then sees arrays whose shapes depend only on the number of couplings (one compilation per
    model size, not per data length), and each step costs O(n_g³) instead of O(n_data n_g²)."""
    aw = lc_inv @ np.asarray(model.a)
    hw = np.einsum("mn,nij->mij", lc_inv, np.asarray(model.h))
    k = aw.shape[1]
    iu = np.triu_indices(k)
    span = np.concatenate([aw, hw[:, iu[0], iu[1]]], axis=1)
    yw = ys @ lc_inv.T
    if span.shape[1] >= span.shape[0]:
        q = np.eye(span.shape[0])
    else:
        q, _ = np.linalg.qr(span)
    yp = yw @ q
    consts = np.maximum(np.sum(yw**2, 1) - np.sum(yp**2, 1), 0.0)
    reduced = QuadraticModel(q.T @ aw, np.einsum("mn,mij->nij", q, hw), model.names)
    return reduced, yp, consts


def fit(
    model: QuadraticModel,
    data,
    covariance,
    *,
    method: str = "lbfgs",
    init=None,
    replicates=None,
    max_steps: int | None = None,
    tol: float | None = None,
    learning_rate: float = 0.05,
) -> FitResult:
    """Fit the couplings of `model` to `data` by minimising χ² with optax (module docstring).

    **Arguments:**

    - `model`: a `QuadraticModel` (e.g. from `rgflow._fit_data.tree_model`).
    - `data`: the data vector y `(n_data,)`, finite, with n_data >= n_g.
    - `covariance`: `(n_data, n_data)` positive-definite matrix or `(n_data,)` variances.
    - `method`: `"lbfgs"` (default), `"adam"`, or `"wls"` (closed form, linear models only).
    - `init`: initial couplings `(n_g,)`; default: the WLS solution of the first-order part A
      restricted to the couplings it determines, else zeros (a linearised start; the optimiser
      then minimises the full χ²). For a linear model the default start is zeros, so that the
      optimiser and `wls` are independent routes.
    - `replicates`: optional `(R, n_data)` resampled data vectors (block bootstrap); each is
      refitted in the same jitted call and `bootstrap_stderr` is their standard deviation.
    - `max_steps`, `tol`: iteration cap and gradient-norm tolerance of the normalised loss
      (defaults: L-BFGS 500 / 1e-12; Adam 20 000 / 1e-10).
    - `learning_rate`: Adam's initial learning rate (in preconditioned units).

    **Returns:** a `FitResult`.

    **Raises:** `ValueError` naming `data` (fewer data than couplings, non-finite, wrong length),
    `covariance` (singular, non-finite, wrong shape), `replicates` or `method`.
    """
    if not isinstance(model, QuadraticModel):
        raise TypeError(f"`model` must be a rgflow QuadraticModel, got {type(model).__name__}.")
    if method not in ("lbfgs", "adam", "wls"):
        raise ValueError(f"`method` must be 'lbfgs', 'adam' or 'wls', got {method!r}.")
    if method == "wls":
        res = _wls(model, data, covariance)
        if replicates is not None:
            boot = fit(model, data, covariance, replicates=replicates).bootstrap_stderr
            res = eqx.tree_at(lambda r: r.bootstrap_stderr, res, boot)
        return res
    n_g = model.n_couplings
    y = _check_data(data, n_g)
    if y.size != model.n_data:
        raise ValueError(f"`data` must have {model.n_data} values (the model's rows), got {y.size}.")
    lc = whiten(covariance, y.size)
    lc_inv = np.linalg.solve(lc, np.eye(y.size))
    if init is None:
        g0 = np.zeros(n_g) if model.is_linear else _linear_start(model, y, lc_inv)
    else:
        g0 = np.asarray(init, dtype=np.float64)
        if g0.shape != (n_g,) or not np.all(np.isfinite(g0)):
            raise ValueError(f"`init` must be a finite vector of shape ({n_g},).")
    ys = y[None]
    if replicates is not None:
        reps = np.asarray(replicates, dtype=np.float64)
        if reps.ndim != 2 or reps.shape[1] != y.size or reps.shape[0] < 2:
            raise ValueError(f"`replicates` must have shape (R >= 2, {y.size}), got {reps.shape}.")
        if not np.all(np.isfinite(reps)):
            raise ValueError("`replicates` contains NaN or inf.")
        ys = np.concatenate([ys, reps])
    if max_steps is None:
        max_steps = 500 if method == "lbfgs" else 20_000
    if tol is None:
        tol = 1e-12 if method == "lbfgs" else 1e-10
    reduced, yp, consts = _reduce(model, lc_inv, ys)
    gs, counts, oks = _minimise(
        reduced, jnp.asarray(yp), jnp.asarray(consts), jnp.asarray(g0), method=method,
        max_steps=int(max_steps), tol=float(tol), learning_rate=float(learning_rate),
    )
    g = gs[0]
    rw = lc_inv @ (y - np.asarray(model(g)))
    chi2 = float(np.sum(rw**2))
    jw = lc_inv @ np.asarray(model.jacobian(g))
    check_identifiable(jw, model.names)
    cov = _curvature(jw)
    boot = jnp.std(gs[1:], axis=0, ddof=1) if replicates is not None else jnp.full(n_g, jnp.nan)
    return FitResult(
        couplings=g, stderr=jnp.sqrt(jnp.diag(jnp.asarray(cov))), covariance=jnp.asarray(cov),
        bootstrap_stderr=boot, converged=bool(oks[0]), n_steps=int(counts[0]),
        names=model.names, method=method, **_goodness(chi2, y.size, n_g),
    )


def _linear_start(model, y, lc_inv):
    """Start of a nonlinear fit: WLS on the first-order part, for the couplings A determines;
    couplings entering only through H start at zero. Then, given those, re-solve the couplings
    that enter linearly."""
    a = np.asarray(model.a)
    n_g = a.shape[1]
    g = np.zeros(n_g)
    aw = lc_inv @ a
    cols = np.flatnonzero(np.linalg.norm(aw, axis=0) > 0)
    if cols.size:
        g[cols] = np.linalg.lstsq(aw[:, cols], lc_inv @ y, rcond=None)[0]
    return g


# ---------------------------------------------------------------------------- power law ---


def power_law(widths, values, stderr=None, *, min_snr: float = 2.0) -> dict:
    """Fit |g(N)| = c N^p by (weighted) least squares of ln|g| against ln N.

    Points with |g| / stderr < `min_snr` (unresolved) or of a different sign from the majority
    are dropped. With `stderr`, the weights are (|g|/stderr)² (σ_{ln g} = stderr/|g|) and the
    exponent's standard error is the weighted-LS one, inflated by √(χ²/dof) when that exceeds 1;
    without, it is the unweighted regression standard error (for noise-free exact inputs this is
    rounding-level).

    **Returns:** dict with `exponent`, `exponent_err`, `ci95` (two-sided, Student t),
    `amplitude`, `chi2_dof`, `n_used`, `used` (bool per width), `dof` (points used − 2).
    Values None if < 2 points used. With exactly 2 points and no `stderr` (dof = 0) the exponent
    is determined exactly by them and there is no error estimate: `exponent_err`, `ci95` and
    `chi2_dof` are None (not NaN).
    """
    n = check_real_array("widths", widths, ndim=1)
    v = check_real_array("values", values, ndim=1, finite=False)
    if v.shape != n.shape:
        raise ValueError(f"`values` must have the shape of `widths` {n.shape}, got {v.shape}.")
    if np.any(n <= 0):
        raise ValueError(f"`widths` must be positive, got {n.tolist()}.")
    if stderr is not None:
        se_in = check_real_array("stderr", stderr, ndim=1, finite=False)
        if se_in.shape != n.shape:
            raise ValueError(f"`stderr` must have the shape of `widths` {n.shape}, got {se_in.shape}.")
    if isinstance(min_snr, bool) or not isinstance(min_snr, (int, float)) or not (
            math.isfinite(min_snr) and min_snr >= 0):
        raise ValueError(f"`min_snr` must be a finite number >= 0, got {min_snr!r}.")
    ok = np.isfinite(v) & (v != 0)
    sign = np.sign(np.sum(np.sign(v[ok]))) or 1.0
    ok &= np.sign(v) == sign
    se = None
    if stderr is not None:
        se = np.asarray(stderr, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ok &= np.isfinite(se) & (se > 0) & (np.abs(v) >= min_snr * se)
    out = {"exponent": None, "exponent_err": None, "ci95": None, "amplitude": None,
           "chi2_dof": None, "n_used": int(ok.sum()), "used": ok.tolist(),
           "dof": max(int(ok.sum()) - 2, 0)}
    if ok.sum() < 2:
        return out
    x, z = np.log(n[ok]), np.log(np.abs(v[ok]))
    w = np.ones_like(x) if se is None else (np.abs(v[ok]) / se[ok]) ** 2
    xm = np.sum(w * x) / np.sum(w)
    zm = np.sum(w * z) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    p = np.sum(w * (x - xm) * (z - zm)) / sxx
    c = zm - p * xm
    resid = z - (c + p * x)
    dof = ok.sum() - 2
    chi2 = float(np.sum(w * resid**2))
    if se is None:
        err = math.sqrt(chi2 / dof / sxx) if dof > 0 else float("nan")
        chi2_dof = None
    else:
        chi2_dof = chi2 / dof if dof > 0 else None
        err = math.sqrt(1.0 / sxx) * math.sqrt(max(1.0, chi2_dof or 1.0))
    if se is None and dof == 0:
        out.update(exponent=float(p), amplitude=float(sign * math.exp(c)))
        return out  # two points fix the line exactly: no error estimate (not NaN)
    q = scipy.stats.t.ppf(0.975, max(dof, 1)) if se is None else 1.959963984540054
    out.update(exponent=float(p), exponent_err=float(err), ci95=[float(p - q * err), float(p + q * err)],
               amplitude=float(sign * math.exp(c)), chi2_dof=chi2_dof)
    return out
