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

**Basis independence.** The whitened inner product ⟨A, B⟩ = Σ A_{abcd} B_{efgh} K_{ae} K_{bf}
K_{cg} K_{dh} uses the kernel as the metric on every leg, so it is coordinate-free: for fields
a = Vᵀ f (V orthogonal, e.g. `EdgeworthAction.in_eigenbasis()`) the action's quartic, its kernel
VᵀKV and the basis tensors all transform together and the couplings and fraction do not change.
The basis tensors are built on `xs` (in f), so an action in other coordinates must say which
(`frame=V`); one whose kernel is not the GP kernel of the network on `xs` in its frame is refused
(it would be projected onto tensors of other variables). Only O(1/N) actions (`order=1`) are
projected: the order-2 quartic carries O(1/N²) corrections, so its fraction would depend on N.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._actions import Action, BilocalQuartic, LocalCoupling, PolynomialQuartic
from ._edgeworth import EdgeworthAction, _legs
from ._fit_data import DEFAULT_CUTOFF
from ._nets import AbstractNet
from ._predict import design_matrix
from ._tuples import to_full
from ._validate import check_inputs, check_real, check_real_array

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
    cutoff = check_real("cutoff", cutoff, positive=True)
    zero = basis.with_flat_couplings(jnp.zeros_like(basis.flat_couplings()))
    a, names = design_matrix(zero, xs, jnp.asarray([cutoff]), 4)
    cols = np.asarray(a[0]).T  # (n, T)
    return np.asarray(to_full(cols, xs.shape[0], 4)), names


def project_quartic(action: EdgeworthAction, basis: Action, xs, *,
                    cutoff: float = DEFAULT_CUTOFF, metric: str = "whitened",
                    frame=None) -> QuarticProjection:
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
    - `frame`: None if `action` is in the fields f on `xs`, or the orthogonal `(P, P)` V if it
      is in a = Vᵀ f (e.g. `_, V, rotated = action.in_eigenbasis()`); the result is then the
      same (module docstring: basis independence), and `quartic` is returned in that frame.

    `action` must be of order 1 and its kernel the GP kernel of `basis.net` on `xs` (in its
    frame); otherwise a ValueError.

    **Returns:** a `QuarticProjection`.
    """
    if not isinstance(basis, Action):  # type errors first, then values
        raise TypeError(f"`basis` must be an rgflow Action (its operator content), got {basis!r}.")
    _check_action(action)
    _check_metric(metric)
    cols, names = basis_tensors(basis, xs, cutoff=cutoff)
    cols = _to_frame(action, cols, basis.net, check_inputs(xs, basis.net.d_in), frame)
    return _project(action, cols, names, check_real("cutoff", cutoff, positive=True), metric)


def _check_action(action):
    if not isinstance(action, EdgeworthAction):
        raise TypeError(f"`action` must be an rgflow EdgeworthAction, got {type(action).__name__}.")
    if action.order != 1:
        raise ValueError(
            f"`action` has order {action.order}: its quartic includes O(1/N²) corrections, so "
            "the fraction would depend on the width; project the O(1/N) quartic "
            "(edgeworth_action(net, xs, order=1)).")


def _check_metric(metric):
    if not isinstance(metric, str) or metric not in ("whitened", "correlator"):
        raise ValueError(f"`metric` must be 'whitened' or 'correlator', got {metric!r}.")


def _to_frame(action, cols, net, xs, frame):
    """The basis tensors (correlators in f on `xs`) in the frame of `action` (a = Vᵀ f: every
    leg contracted with V), after checking that the action's kernel is VᵀKV."""
    p = action.n_points
    if cols.shape[1] != p:
        raise ValueError(f"`xs` has {cols.shape[1]} inputs but `action` lives on {p}.")
    k = np.asarray(net.kernel(jnp.asarray(xs), jnp.asarray(xs)), dtype=np.float64)
    if frame is not None:
        v = check_real_array("frame", frame)
        if v.shape != (p, p) or not np.allclose(v.T @ v, np.eye(p), atol=1e-10):
            raise ValueError(f"`frame` must be an orthogonal ({p}, {p}) matrix V (the action in "
                             "a = Vᵀ f).")
        k = v.T @ k @ v
    gap = float(np.max(np.abs(np.asarray(action.kernel) - k)))
    if not gap <= 1e-6 * float(np.max(np.abs(k))):
        raise ValueError(
            f"`action`: its kernel differs from the GP kernel of the network on `xs`"
            f"{' in `frame`' if frame is not None else ''} by {gap:.3g} (max entry "
            f"{np.max(np.abs(k)):.3g}): it is in other variables (for an action from "
            "in_eigenbasis() or edgeworth_action(..., basis=V) pass frame=V) or has a measured "
            "kernel (use edgeworth_action(..., kernel='exact')). The basis tensors live in f on "
            "`xs`.")
    if frame is None:
        return cols
    vj = jnp.asarray(v)
    return np.stack([np.asarray(_legs(jnp.asarray(c), vj)) for c in cols])


def project_hms_bases(action: EdgeworthAction, net, xs, *, cutoff: float = DEFAULT_CUTOFF,
                      metric: str = "whitened", frame=None) -> dict:
    """`project_quartic` onto the three HMS bases {λ0}, {λ0, λ2}, {λ0, λ2, λ_NL}, with one design
    matrix (the columns of the largest basis; the λ0 column of `PolynomialQuartic` is the
    `LocalCoupling(4)` column).

    `frame` and the checks on `action` as in `project_quartic` (basis-independent; order 1).

    **Returns:** a dict `HMS_QUARTIC_BASES` key → `QuarticProjection`.
    """
    _check_action(action)
    _check_metric(metric)
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network (ErfNet, ReLUNet, ...), got {net!r}.")
    cutoff = check_real("cutoff", cutoff, positive=True)
    cols, names = basis_tensors(hms_quartic_bases(net)["lambda0+lambda2+lambda_nl"], xs,
                                cutoff=cutoff)
    cols = _to_frame(action, cols, net, check_inputs(xs, net.d_in), frame)
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
    if norm2 == 0 or not np.isfinite(norm2):
        raise ValueError(f"`action` has a {'zero' if norm2 == 0 else 'non-finite'} quartic "
                         "norm: nothing to project.")
    scale = np.linalg.norm(design, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    sol, *_ = np.linalg.lstsq(design / scale, y, rcond=1e-12)
    g = sol / scale
    resid = y - design @ g
    fraction = 1.0 - float(resid @ resid) / norm2
    if not (np.isfinite(fraction) and np.all(np.isfinite(g))):
        raise ValueError(f"the projection is not finite (fraction {fraction}, couplings {g}): "
                         "`action` or the basis tensors overflow float64.")
    amputated = np.asarray(_legs(jnp.asarray(np.tensordot(g, cols, 1)),
                                 jnp.asarray(inv_half @ inv_half))) * (-1.0 / 24.0)
    return QuarticProjection(couplings=jnp.asarray(g), names=tuple(names), fraction=fraction,
                             quartic=jnp.asarray(amputated), cutoff=cutoff, metric=metric)
