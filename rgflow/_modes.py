"""Kernel eigenmodes on an input set in a weighted inner product (physics.md §10).

On inputs X = {x_1..x_P} with data weights w_a > 0 (W = diag(w)), the modes solve

    K W v_k = λ_k v_k,     Vᵀ W V = I,     λ_1 >= λ_2 >= ... >= λ_P,

i.e. K = V diag(λ) Vᵀ, and the amplitudes of a field f are a = Vᵀ W f (so f = V a). In the GP
limit the a_k are independent N(0, λ_k): Cov(a) = Vᵀ W K W V = diag(λ). Large-λ modes are smooth
("IR"), small-λ modes carry fine structure ("UV").

**Transforms.** A correlator (cumulant) tensor transforms like a product of fields: every leg is
contracted with Vᵀ W (to modes) or with V (back). An action tensor T in S = Σ T_{a1..an} f_a1..f_an
transforms covariantly: every leg is contracted with V (to modes, since f = V a) or with W V
(back, since a = Vᵀ W f).

**Degenerate spectra.** Eigenvalues closer than `degeneracy_rtol` × λ_1 are grouped into one
eigenspace. Any basis of it is as good as any other, so the basis is fixed deterministically from
the eigenspace alone (its W-orthogonal projector Π, which does not depend on the solver): the
columns Π e_1, Π e_2, ... (in input order) are W-orthonormalised by Gram–Schmidt, skipping those
that are (numerically) dependent on the previous ones. Every mode's sign is then fixed so that
its first component of largest magnitude is positive. A `keep` that would split a degenerate
eigenspace (keep some of its modes and remove others) is refused unless `allow_split=True`:
which combinations are kept would then be a convention, not physics.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_inputs, check_real, check_real_array

__all__ = ["KernelModes", "kernel_modes", "check_weights"]


def check_weights(weights, n_points: int) -> np.ndarray:
    """Data weights `(P,)`: default uniform 1/P; otherwise finite and > 0, else ValueError."""
    if weights is None:
        return np.full(n_points, 1.0 / n_points)
    if isinstance(weights, str) or np.iscomplexobj(weights):
        raise TypeError(f"`weights` must be a real array of shape ({n_points},), got {weights!r}.")
    w = check_real_array("weights", weights, finite=False)
    if w.shape != (n_points,):
        raise ValueError(f"`weights` must have shape ({n_points},) (one per input), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"`weights` must be finite and > 0 (a data measure), got {w}.")
    return w


@jax.jit
def _contract_legs(t, m):
    """T'_{k1..kn} = Σ M_{k1 a1} ... M_{kn an} T_{a1..an} (every axis of the array `t`; one
    compiled program per shape)."""
    for axis in range(t.ndim):
        t = jnp.moveaxis(jnp.tensordot(m, t, axes=([1], [axis])), 0, axis)
    return t


def _canonical_basis(u: np.ndarray) -> np.ndarray:
    """A deterministic orthonormal basis of span(u) (Euclidean; u has orthonormal columns):
    Gram–Schmidt of the projector's columns in index order, signs as in the module docstring."""
    m = u.shape[1]
    if m == 1:
        basis = u.copy()
    else:
        proj = u @ u.T
        vecs = []
        for a in range(proj.shape[0]):
            v = proj[:, a].copy()
            for b in vecs:
                v -= (b @ v) * b
            for b in vecs:  # re-orthogonalise once (classical GS twice is stable)
                v -= (b @ v) * b
            nv = np.linalg.norm(v)
            if nv > 1e-6:
                vecs.append(v / nv)
            if len(vecs) == m:
                break
        basis = np.stack(vecs, axis=1)
    return basis


def _fix_signs(v: np.ndarray) -> np.ndarray:
    out = v.copy()
    for k in range(v.shape[1]):
        col = v[:, k]
        big = np.max(np.abs(col))
        first = int(np.argmax(np.abs(col) >= big * (1 - 1e-9)))
        if col[first] < 0:
            out[:, k] = -col
    return out


class KernelModes(eqx.Module):
    """Eigenmodes of the kernel on an input set (physics.md §10; see the module docstring).

    **Fields:**

    - `eigenvalues`: λ_k `(P,)`, descending.
    - `vectors`: V `(P, P)`, column k the mode v_k (K W v_k = λ_k v_k, Vᵀ W V = I).
    - `weights`: the data weights w `(P,)`.
    - `groups`: tuple of tuples of mode indices, the (numerically) degenerate eigenspaces.
    - `kernel`: the kernel matrix K `(P, P)` that was diagonalised.
    """

    eigenvalues: jnp.ndarray
    vectors: jnp.ndarray
    weights: jnp.ndarray
    kernel: jnp.ndarray
    groups: tuple = eqx.field(static=True)

    @property
    def n_modes(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def to_modes_matrix(self) -> jnp.ndarray:
        """Vᵀ W `(P, P)`: a = Vᵀ W f."""
        return self.vectors.T * self.weights[None, :]

    def amplitudes(self, f) -> jnp.ndarray:
        """Mode amplitudes a = Vᵀ W f of fields `f` `(..., P)` → `(..., P)`."""
        return jnp.asarray(f) @ self.to_modes_matrix.T

    def field(self, a) -> jnp.ndarray:
        """The field f = V a from amplitudes `a` `(..., P)`."""
        return jnp.asarray(a) @ self.vectors.T

    def correlator_to_modes(self, tensor) -> jnp.ndarray:
        """A correlator / cumulant tensor `(P,)*n` in the mode basis: each leg contracted with VᵀW.

        E.g. `correlator_to_modes(K)` = diag(λ)."""
        return _contract_legs(jnp.asarray(tensor), self.to_modes_matrix)

    def correlator_from_modes(self, tensor) -> jnp.ndarray:
        """Inverse of `correlator_to_modes`: each leg contracted with V."""
        return _contract_legs(jnp.asarray(tensor), self.vectors)

    def action_to_modes(self, tensor) -> jnp.ndarray:
        """An action tensor T (S = Σ T f..f) in the mode basis: each leg contracted with Vᵀ
        (T'_{k..} = Σ V_{a k} .. T_{a..}), since f = V a. E.g. ½K⁻¹ → ½ diag(1/λ)."""
        return _contract_legs(jnp.asarray(tensor), self.vectors.T)

    def action_from_modes(self, tensor) -> jnp.ndarray:
        """Inverse of `action_to_modes`: each leg contracted with W V (a = Vᵀ W f)."""
        return _contract_legs(jnp.asarray(tensor), self.to_modes_matrix.T)

    def check_keep(self, keep, *, allow_split: bool = False) -> int:
        """Validate a number of kept (largest) modes: an integer 1 <= keep <= P that does not split
        a degenerate eigenspace (unless `allow_split`). **Returns:** `keep` as an int."""
        p = self.n_modes
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)):
            raise TypeError(f"`keep` must be an integer with 1 <= keep <= P = {p}, got {keep!r}.")
        keep = int(keep)
        if not 1 <= keep <= p:
            raise ValueError(f"`keep` must be an integer with 1 <= keep <= P = {p}, got {keep}.")
        if not allow_split:
            for g in self.groups:
                if g[0] < keep <= g[-1]:
                    lam = np.asarray(self.eigenvalues)[list(g)]
                    raise ValueError(
                        f"`keep` = {keep} splits the degenerate eigenspace of modes {list(g)} "
                        f"(eigenvalues {lam}); keep {g[0]} or {g[-1] + 1} modes, or pass "
                        "allow_split=True to accept the deterministic basis of kernel_modes.")
        return keep


def kernel_modes(net, xs, *, weights=None, degeneracy_rtol: float = 1e-8) -> KernelModes:
    """The eigenmodes of the full kernel K of `net` on `xs` (physics.md §10).

    Solves K W v = λ v with Vᵀ W V = I (via the symmetric W^{1/2} K W^{1/2}), eigenvalues
    descending; ties broken deterministically (module docstring).

    **Arguments:**

    - `net`: an rgflow network (anything with `kernel(x, y)` and `d_in`), or a `(P, P)`
      kernel matrix (then `xs` may be None).
    - `xs`: inputs `(P, d_in)`.
    - `weights`: data weights `(P,)`, finite and > 0; default uniform 1/P (the empirical data
      measure, so that λ_k approximate the eigenvalues of the integral operator). Not normalised.
    - `degeneracy_rtol`: eigenvalues within this × λ_1 of each other form one eigenspace.

    **Returns:** a `KernelModes`.
    """
    if hasattr(net, "kernel") and hasattr(net, "d_in"):
        xs = check_inputs(xs, net.d_in)
        k = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
        if jnp.iscomplexobj(k):
            raise TypeError("`net`: its kernel matrix is complex; a kernel must be real.")
        k = np.asarray(k, dtype=np.float64)
        name = "the kernel matrix of `net` on `xs`"
    else:
        if isinstance(net, str) or np.iscomplexobj(net):
            kind = "complex" if np.iscomplexobj(net) else repr(net)
            raise TypeError("`net` must be an rgflow network or a real square kernel matrix, "
                            f"got {kind if kind == 'complex' else 'the string ' + kind}.")
        try:
            k = np.asarray(net, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError("`net` must be an rgflow network or a real square kernel matrix, "
                            f"got {type(net).__name__}.") from e
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] < 1:
            raise TypeError("`net` must be an rgflow network or a square kernel matrix "
                            f"(P, P) with P >= 1, got an array of shape {k.shape}.")
        name = "`net` (the kernel matrix)"
    p = k.shape[0]
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name} is not finite (contains NaN or inf).")
    scale = float(np.max(np.abs(k)))
    gap = float(np.max(np.abs(k - k.T)))
    if gap > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric; K - Kᵀ reaches {gap:.3g} "
                         f"(relative {gap / scale:.3g}).")
    k = 0.5 * (k + k.T)  # remove rounding-level asymmetry only
    w = check_weights(weights, p)
    degeneracy_rtol = check_real("degeneracy_rtol", degeneracy_rtol, minimum=0.0)
    if not degeneracy_rtol < 1:
        raise ValueError(f"`degeneracy_rtol` must be in [0, 1), got {degeneracy_rtol!r}.")
    sw = np.sqrt(w)
    lam, u = np.linalg.eigh(sw[:, None] * k * sw[None, :])
    lam, u = lam[::-1].copy(), u[:, ::-1].copy()
    # an eigenvalue at the rounding level of λ_1 is a zero one (e.g. duplicate inputs give
    # +5.6e-17 or −1e-17 at random): numerically singular
    if lam[-1] <= p * np.finfo(np.float64).eps * lam[0]:
        raise ValueError(
            f"the kernel is not positive definite on `xs` (smallest eigenvalue {lam[-1]:.3e}, "
            f"at the rounding level of the largest {lam[0]:.3e}); remove duplicate or "
            "degenerate inputs.")
    tol = degeneracy_rtol * lam[0]
    groups, start = [], 0
    for i in range(1, p + 1):
        if i == p or lam[i - 1] - lam[i] > tol:
            groups.append(tuple(range(start, i)))
            start = i
    for g in groups:
        if len(g) > 1:
            sl = slice(g[0], g[-1] + 1)
            u[:, sl] = _canonical_basis(u[:, sl])
            lam[sl] = np.mean(lam[sl])  # exact degeneracy, as the basis choice assumes
    v = _fix_signs(u / sw[:, None])
    return KernelModes(
        eigenvalues=jnp.asarray(lam), vectors=jnp.asarray(v), weights=jnp.asarray(w),
        kernel=jnp.asarray(k), groups=tuple(groups),
    )
