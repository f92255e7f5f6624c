"""Data for coupling fits: tree-level models of an action, and connected-correlator data vectors
with covariances, exact or Monte Carlo (physics.md §4–§7).

**Data vector.** The connected correlators G_n,c of the requested orders on the index-sorted
tuples (`rgflow.sorted_tuples`), concatenated (order 4 first): 126 + 462 values for P = 6 inputs.
Each distinct tuple counts once (not weighted by its multiplicity).

**Covariance, Monte Carlo.** From the delete-one-block jackknife replicates θ_(b) of the data
vector (built from `Measurement.block_sums`, as `Measurement.jackknife` does),
C_J = (B−1)/B Σ_b (θ_(b) − θ̄)(θ_(b) − θ̄)ᵀ. With B blocks its rank is at most B − 1, below the
number of data (588 for P = 6), so the default `covariance="shrink"` shrinks the correlation
matrix towards the identity with the Schäfer–Strimmer (2005) optimal intensity, estimated from the
jackknife pseudo-values; `"diagonal"` keeps the variances only; `"full"` uses C_J and raises
if it is singular.

**Covariance, exact inputs.** Exact correlators carry no noise; a noise model defines the χ²
weights: `rel_error` ε gives every entry of order n the standard deviation ε · rms_T G_n,c(T)
(homoscedastic within an order). Then χ²/dof = (relative rms misfit / ε)² and — because the
noise scales with the signal — fits are exactly covariant under the exact width scaling
G_n,c ∝ N^{1−n/2} (physics.md §4): fitted λ ∝ 1/N and κ ∝ 1/N² to rounding.

**Models.** `tree_model(action, xs, orders, cutoff)` returns the `QuadraticModel` of the action's
tree-level connected correlators at one cutoff, using only `rgflow._predict.design_matrix`: the
prediction is a polynomial of degree <= 2 in the couplings, so the design matrices at g = 0 and at
the unit vectors e_i give it exactly, m(g) = A(0) g + ½ Σ_ij H_ij g_i g_j with
H_·i = A(e_i) − A(0). Default cutoff: `DEFAULT_CUTOFF` = 10 (the second cutoff of HMS's list;
for Gauss-net inputs at the 0.01 scale this equals Λ = ∞ to rounding).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._ensemble import Measurement, connected_from_moments
from ._exact import exact_connected
from ._fit import QuadraticModel
from ._tuples import n_tuples
from ._validate import check_key, check_orders

__all__ = [
    "DEFAULT_CUTOFF",
    "CorrelatorData",
    "tree_model",
    "exact_data",
    "mc_data",
    "jackknife_replicates",
    "bootstrap_replicates",
    "shrink_covariance",
]

DEFAULT_CUTOFF = 10.0
_ORDERS = (4, 6)


def _check_orders(orders) -> tuple[int, ...]:
    return check_orders(orders, _ORDERS)


def _check_cutoff(cutoff) -> float:
    try:
        c = float(cutoff)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`cutoff` must be a positive number, got {cutoff!r}.") from e
    if not c > 0:
        raise ValueError(f"`cutoff` must be > 0, got {cutoff!r}.")
    return c


# ---------------------------------------------------------------------------- the model ---


def tree_model(action, xs, orders=(4,), cutoff: float = DEFAULT_CUTOFF, **kw) -> QuadraticModel:
    """The tree-level connected correlators of `action` at one cutoff Λ as a `QuadraticModel`.

    Rows: the sorted tuples of each order in `orders`, concatenated; columns: the couplings in
    the order of `action.coupling_names`. Uses `rgflow._predict.design_matrix` only (module
    docstring); keyword arguments (e.g. `exchange=False`, `options=`) are passed to it.

    **Arguments:**

    - `action`: an `rgflow` `Action` (its coupling values are ignored).
    - `xs`: inputs `(P, d_in)`.
    - `orders`: subset of (4, 6).
    - `cutoff`: Λ > 0 (Gauss-net also accepts `inf`).

    **Returns:** a `QuadraticModel` with `names = action.coupling_names`.
    """
    from ._predict import design_matrix  # the other engineer's API: the one dependency

    orders = _check_orders(orders)
    cutoff = _check_cutoff(cutoff)
    cut = jnp.asarray([cutoff], dtype=jnp.float64)
    flat = action.flat_couplings()
    n_g = flat.shape[0]
    zero = action.with_flat_couplings(jnp.zeros(n_g))
    a_blocks, h_blocks, names = [], [], None
    for n in orders:
        a0, names = design_matrix(zero, xs, cut, n, **kw)
        a0 = np.asarray(a0[0])
        h = np.zeros(a0.shape + (n_g,))
        if n == 6:  # only the 6-pt function has second-order (exchange) diagrams
            for i in range(n_g):
                ai, _ = design_matrix(action.with_flat_couplings(jnp.eye(n_g)[i]), xs, cut, n, **kw)
                h[:, :, i] = np.asarray(ai[0]) - a0
        if not (np.all(np.isfinite(a0)) and np.all(np.isfinite(h))):
            raise ValueError(
                f"the {n}-pt design matrix at `cutoff` = {cutoff} is not finite (quadrature range "
                "exceeded?)."
            )
        a_blocks.append(a0)
        h_blocks.append(h)
    return QuadraticModel(np.concatenate(a_blocks), np.concatenate(h_blocks), names)


# ----------------------------------------------------------------------------- the data ---


class CorrelatorData(eqx.Module):
    """A connected-correlator data vector with its covariance (module docstring).

    **Fields:**

    - `values`: `(n_data,)` the connected correlators of `orders`, concatenated.
    - `covariance`: `(n_data, n_data)` matrix or `(n_data,)` variances.
    - `replicates`: `(R, n_data)` block-bootstrap replicates, or None.
    - `orders`: the orders (static).
    - `n_points`: P (static).
    - `source`: `"exact"` or `"mc"` (static).
    """

    values: np.ndarray
    covariance: np.ndarray
    replicates: np.ndarray | None
    orders: tuple = eqx.field(static=True)
    n_points: int = eqx.field(static=True)
    source: str = eqx.field(static=True)

    def block(self, order: int) -> slice:
        """The slice of the data vector holding `order`."""
        if order not in self.orders:
            raise ValueError(f"`order` must be one of {self.orders}, got {order!r}.")
        start = 0
        for n in self.orders:
            size = n_tuples(self.n_points, n)
            if n == order:
                return slice(start, start + size)
            start += size
        raise AssertionError

    @property
    def stderr(self) -> np.ndarray:
        c = np.asarray(self.covariance)
        return np.sqrt(c if c.ndim == 1 else np.diag(c))


def _relative_noise(values, n_points, orders, rel_error):
    eps = rel_error if isinstance(rel_error, dict) else {n: rel_error for n in orders}
    for n in orders:
        e = eps.get(n)
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 0:
            raise ValueError(f"`rel_error` must be a number > 0 (or a dict order → number), got "
                             f"{rel_error!r}.")
    var = []
    start = 0
    for n in orders:
        size = n_tuples(n_points, n)
        block = values[start : start + size]
        rms = float(np.sqrt(np.mean(block**2)))
        if rms == 0:
            raise ValueError(f"the exact {n}-pt connected function vanishes: no relative noise.")
        var.append(np.full(size, (eps[n] * rms) ** 2))
        start += size
    return np.concatenate(var)


def exact_data(net, xs, orders=(4,), *, rel_error: float = 0.01) -> CorrelatorData:
    """Exact connected correlators (`rgflow.exact_connected`) with the relative noise model.

    **Arguments:**

    - `net`: the network (its width N is used).
    - `xs`: inputs `(P, d_in)`.
    - `orders`: subset of (4, 6).
    - `rel_error`: ε > 0, or a dict order → ε_n; variances (ε_n · rms G_n,c)² per order
      (module docstring).

    **Returns:** a `CorrelatorData` with diagonal covariance and no replicates.
    """
    orders = _check_orders(orders)
    xs = np.asarray(xs, dtype=np.float64)
    xs = xs[:, None] if xs.ndim == 1 else xs
    values = np.concatenate([np.asarray(exact_connected(net, xs, n, full=False)) for n in orders])
    var = _relative_noise(values, xs.shape[0], orders, rel_error)
    return CorrelatorData(values=values, covariance=var, replicates=None, orders=orders,
                          n_points=xs.shape[0], source="exact")


def _connected_vector(moments, n_points, orders):
    return jnp.concatenate([connected_from_moments(moments, n_points, n) for n in orders], axis=-1)


def jackknife_replicates(measurement: Measurement, orders=(4,)):
    """Delete-one-block replicates of the connected-correlator data vector, and the jackknife
    bias-corrected estimate.

    **Returns:** `(estimate (n_data,), replicates (B, n_data))`.
    """
    orders = _check_orders(orders)
    m = measurement
    counts = jnp.asarray(m.block_counts, dtype=jnp.float64)
    b = counts.shape[0]
    full = _connected_vector({n: jnp.sum(s, 0) / m.n_nets for n, s in m.block_sums.items()},
                             m.n_points, orders)
    loo = {n: (jnp.sum(s, 0)[None] - s) / (m.n_nets - counts)[:, None]
           for n, s in m.block_sums.items()}
    reps = _connected_vector(loo, m.n_points, orders)
    estimate = b * full - (b - 1) * jnp.mean(reps, axis=0)
    return np.asarray(estimate), np.asarray(reps)


def shrink_covariance(replicates) -> tuple[np.ndarray, float]:
    """Jackknife covariance shrunk towards its diagonal (Schäfer–Strimmer 2005).

    The jackknife pseudo-values p_b = B θ̄ − (B−1) θ_(b) are treated as B i.i.d. draws whose
    mean has covariance S_p / B = C_J. Their correlation matrix R is shrunk,
    R* = (1 − α) R + α I, with α = Σ_{i≠j} Var(r_ij) / Σ_{i≠j} r_ij² (clipped to [0, 1]), and
    C* = D^{1/2} R* D^{1/2} keeps the jackknife variances D.

    **Arguments:** `replicates`: `(B, n)` delete-one-block replicates.

    **Returns:** `(C*, α)`.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    b = reps.shape[0]
    pseudo = b * reps.mean(0) - (b - 1) * reps
    x = pseudo - pseudo.mean(0)
    sd = np.sqrt(np.sum(x**2, 0) / (b - 1))
    if np.any(sd <= 0):
        raise ValueError("`replicates` has a zero-variance entry: the covariance is singular.")
    z = x / sd
    w = z[:, :, None] * z[:, None, :]  # (B, n, n)
    r = w.sum(0) / (b - 1)
    var_r = b / (b - 1) ** 3 * np.sum((w - w.mean(0)) ** 2, axis=0)
    off = ~np.eye(r.shape[0], dtype=bool)
    denom = np.sum(r[off] ** 2)
    alpha = float(np.clip(np.sum(var_r[off]) / denom, 0.0, 1.0)) if denom > 0 else 1.0
    r_star = (1 - alpha) * r
    np.fill_diagonal(r_star, 1.0)
    var_j = (b - 1) / b * np.sum((reps - reps.mean(0)) ** 2, 0)
    s = np.sqrt(var_j)
    return r_star * s[:, None] * s[None, :], alpha


def bootstrap_replicates(measurement: Measurement, orders=(4,), n_boot: int = 200, *, key=None):
    """Block-bootstrap replicates of the connected-correlator data vector: B blocks drawn with
    replacement, moments pooled from their sums, connected correlators by the plug-in formula.

    **Returns:** `(n_boot, n_data)`.
    """
    orders = _check_orders(orders)
    m = measurement
    key = jax.random.key(0) if key is None else check_key(key)
    b = m.block_counts.shape[0]
    idx = jax.random.randint(key, (n_boot, b), 0, b)
    counts = jnp.asarray(m.block_counts, dtype=jnp.float64)
    tot = jnp.sum(counts[idx], axis=1)  # (R,)
    moms = {n: jnp.sum(s[idx], axis=1) / tot[:, None] for n, s in m.block_sums.items()}
    return np.asarray(_connected_vector(moms, m.n_points, orders))


def mc_data(measurement: Measurement, orders=(4,), *, covariance: str = "shrink",
            n_boot: int = 0, key=None) -> CorrelatorData:
    """Monte Carlo connected correlators (jackknife bias-corrected) with their covariance.

    **Arguments:**

    - `measurement`: a `rgflow.Measurement` containing the needed orders.
    - `orders`: subset of (4, 6).
    - `covariance`: `"shrink"` (default), `"diagonal"` or `"full"` (module docstring).
    - `n_boot`: number of block-bootstrap replicates to attach (0: none).
    - `key`: `jax.random` key of the bootstrap.

    **Returns:** a `CorrelatorData`.
    """
    if not isinstance(measurement, Measurement):
        raise TypeError(f"`measurement` must be a rgflow.Measurement, got {measurement!r}.")
    if key is not None:
        key = check_key(key)
    orders = _check_orders(orders)
    need = [n for n in (2, 4, 6) if n <= max(orders)]
    if any(n not in measurement.block_sums for n in need):
        raise ValueError(f"`measurement` must contain the moments of orders {need}.")
    est, reps = jackknife_replicates(measurement, orders)
    b = reps.shape[0]
    if covariance == "shrink":
        cov, _ = shrink_covariance(reps)
    elif covariance == "diagonal":
        cov = (b - 1) / b * np.sum((reps - reps.mean(0)) ** 2, 0)
    elif covariance == "full":
        d = reps - reps.mean(0)
        cov = (b - 1) / b * d.T @ d
    else:
        raise ValueError(f"`covariance` must be 'shrink', 'diagonal' or 'full', got {covariance!r}.")
    boot = bootstrap_replicates(measurement, orders, n_boot, key=key) if n_boot else None
    return CorrelatorData(values=est, covariance=cov, replicates=boot, orders=orders,
                          n_points=measurement.n_points, source="mc")
