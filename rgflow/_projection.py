"""Operator bases as projections of the network's own quartic (physics.md §7, §9).

A quartic operator basis {O_j} (HMS's local λ0 ∫f⁴, x-dependent λ2 ∫|y|²f⁴, bilocal
λ_NL ∫∫f²f²) predicts at tree level, at the cutoff Λ, the connected 4-pt function
G4_c = Σ_j g_j A_j with A = `rgflow.design_matrix` (physics.md §6). An action whose connected
4-pt function is A_j has, by physics.md §9, the Edgeworth quartic tensor

    B_j = −(1/24) A_j(K⁻¹·, K⁻¹·, K⁻¹·, K⁻¹·)          (each leg amputated with K⁻¹).

The exact quartic Λ of the network (`EdgeworthAction.quartic`) is projected onto span{B_j} by
least squares in the **whitened metric**: every leg contracted with K^{1/2}, i.e. the quartic of
the standardised modes w = K^{−1/2} f, whose Frobenius norm is invariant under rotations of the
modes and weights every mode by its own scale:

    g = argmin ‖Λ̃ − Σ_j g_j B̃_j‖_F,   fraction = 1 − ‖Λ̃ − Σ_j g_j B̃_j‖² / ‖Λ̃‖²  ∈ [0, 1],

with X̃ = X(K^{1/2}·, …) (so B̃_j = −(1/24) A_j(K^{−1/2}·, …)). `fraction` is how much of the
network's true quartic the basis holds; for the O(1/N) quartic it does not depend on the width
(both Λ and the couplings scale as 1/N).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic
from ._edgeworth import EdgeworthAction, _legs
from ._fit_data import DEFAULT_CUTOFF
from ._predict import design_matrix
from ._tuples import to_full
from ._validate import check_inputs

__all__ = [
    "QuarticProjection",
    "project_quartic",
    "project_hms_bases",
    "hms_quartic_bases",
    "HMS_QUARTIC_BASES",
]

HMS_QUARTIC_BASES = ("lambda0", "lambda0+lambda2", "lambda0+lambda2+lambda_nl")


def hms_quartic_bases(net) -> dict:
    """The three HMS quartic operator bases on `net` as `Action`s with zero couplings:
    {λ0} (local), {λ0, λ2} (x-dependent), {λ0, λ2, λ_NL} (bilocal added), keyed by
    `HMS_QUARTIC_BASES`."""
    return {
        "lambda0": Action(net, (LocalCoupling(4, 0.0),)),
        "lambda0+lambda2": Action(net, (PolynomialQuartic(0.0, 0.0),)),
        "lambda0+lambda2+lambda_nl": Action(net, (PolynomialQuartic(0.0, 0.0), BilocalQuartic(0.0))),
    }


class QuarticProjection(eqx.Module):
    """Least-squares projection of an Edgeworth quartic onto an operator basis.

    **Fields:**

    - `couplings` `(n,)`: the basis couplings g (HMS normalisation, no 1/4!).
    - `names`: the coupling names (`Action.coupling_names`).
    - `fraction`: 1 − ‖residual‖²/‖quartic‖² in the whitened metric, in [0, 1].
    - `quartic` `(P,)*4`: the projected tensor Σ_j g_j B_j (unwhitened, in f).
    - `cutoff`: Λ of the vertex integrals.
    - `metric`: "whitened" or "correlator" (see `project_quartic`).
    """

    couplings: jnp.ndarray
    names: tuple = eqx.field(static=True)
    fraction: float = eqx.field(static=True)
    quartic: jnp.ndarray
    cutoff: float = eqx.field(static=True)
    metric: str = eqx.field(static=True, default="whitened")


def _sqrt_and_inv_sqrt(k):
    lam, vec = np.linalg.eigh(np.asarray(k, dtype=np.float64))
    return (vec * np.sqrt(lam)) @ vec.T, (vec / np.sqrt(lam)) @ vec.T


def basis_tensors(basis: Action, xs, *, cutoff: float = DEFAULT_CUTOFF):
    """The tree-level G4_c columns A_j `(n, P, P, P, P)` of the basis at the cutoff, and names."""
    if not isinstance(basis, Action):
        raise TypeError(f"`basis` must be an rgflow Action (its operator content), got {basis!r}.")
    xs = check_inputs(xs, basis.net.d_in)
    cutoff = float(cutoff)
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"`cutoff` must be a finite positive number, got {cutoff!r}.")
    zero = basis.with_flat_couplings(jnp.zeros_like(basis.flat_couplings()))
    a, names = design_matrix(zero, xs, jnp.asarray([cutoff]), 4)
    cols = np.asarray(a[0]).T  # (n, T)
    return np.asarray(to_full(cols, xs.shape[0], 4)), names


def project_quartic(action: EdgeworthAction, basis: Action, xs, *,
                    cutoff: float = DEFAULT_CUTOFF, metric: str = "whitened") -> QuarticProjection:
    """Project the quartic of `action` onto the operator basis `basis` (module docstring).

    **Arguments:**

    - `action`: an `EdgeworthAction` on the inputs `xs` (e.g. `edgeworth_action(net, xs,
      order=1)` for the exact O(1/N) quartic).
    - `basis`: an `Action` giving the operator content (couplings ignored), e.g. one of
      `hms_quartic_bases(net)`.
    - `xs`: the inputs `(P, d_in)` the action lives on.
    - `cutoff`: Λ of the vertex integrals (physics.md §6).
    - `metric`: `"whitened"` (default; legs contracted with K^{1/2}: the quartic of the
      standardised modes) or `"correlator"` (legs contracted with K: the plain Euclidean norm of
      the connected 4-pt function −24 Λ(K·, …) = G4_c, i.e. HMS's unweighted fit metric, which
      is dominated by the largest kernel modes).

    **Returns:** a `QuarticProjection`.
    """
    if not isinstance(action, EdgeworthAction):
        raise TypeError(f"`action` must be an rgflow EdgeworthAction, got {type(action).__name__}.")
    cols, names = basis_tensors(basis, xs, cutoff=cutoff)
    return _project(action, cols, names, float(cutoff), metric)


def project_hms_bases(action: EdgeworthAction, net, xs, *, cutoff: float = DEFAULT_CUTOFF,
                      metric: str = "whitened") -> dict:
    """`project_quartic` onto the three HMS bases {λ0}, {λ0, λ2}, {λ0, λ2, λ_NL}, with one design
    matrix (the columns of the largest basis; the λ0 column of `PolynomialQuartic` is the
    `LocalCoupling(4)` column).

    **Returns:** a dict `HMS_QUARTIC_BASES` key → `QuarticProjection`.
    """
    if not isinstance(action, EdgeworthAction):
        raise TypeError(f"`action` must be an rgflow EdgeworthAction, got {type(action).__name__}.")
    cols, names = basis_tensors(hms_quartic_bases(net)["lambda0+lambda2+lambda_nl"], xs,
                                cutoff=cutoff)
    subsets = {"lambda0": [0], "lambda0+lambda2": [0, 1], "lambda0+lambda2+lambda_nl": [0, 1, 2]}
    return {key: _project(action, cols[idx], tuple(names[i] for i in idx), float(cutoff), metric)
            for key, idx in subsets.items()}


def _project(action, cols, names, cutoff, metric):
    p = action.n_points
    if cols.shape[1] != p:
        raise ValueError(f"`xs` has {cols.shape[1]} inputs but `action` lives on {p}.")
    half, inv_half = _sqrt_and_inv_sqrt(action.kernel)
    if metric == "whitened":
        target = np.asarray(_legs(jnp.asarray(action.quartic), jnp.asarray(half)))
        tilde = np.stack([-np.asarray(_legs(jnp.asarray(c), jnp.asarray(inv_half))) / 24.0
                          for c in cols])
    elif metric == "correlator":
        target = np.asarray(_legs(jnp.asarray(action.quartic), jnp.asarray(half @ half)))
        tilde = -cols / 24.0
    else:
        raise ValueError(f"`metric` must be 'whitened' or 'correlator', got {metric!r}.")
    design = tilde.reshape(tilde.shape[0], -1).T  # (P⁴, n)
    y = target.ravel()
    norm2 = float(y @ y)
    if norm2 == 0:
        raise ValueError("`action` has a zero quartic: nothing to project.")
    scale = np.linalg.norm(design, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    sol, *_ = np.linalg.lstsq(design / scale, y, rcond=1e-12)
    g = sol / scale
    resid = y - design @ g
    fraction = 1.0 - float(resid @ resid) / norm2
    amputated = np.asarray(_legs(jnp.asarray(np.tensordot(g, cols, 1)),
                                 jnp.asarray(inv_half @ inv_half))) * (-1.0 / 24.0)
    return QuarticProjection(couplings=jnp.asarray(g), names=tuple(names), fraction=fraction,
                             quartic=jnp.asarray(amputated), cutoff=cutoff, metric=metric)
