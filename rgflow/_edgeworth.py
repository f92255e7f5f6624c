"""The network's own action on a finite input set: the Edgeworth expansion (physics.md §9).

On inputs X = {x_1..x_P} the outputs f ∈ R^P have cumulants K = κ2 (exact GP kernel, §4),
κ4 = G4_c = O(1/N), κ6 = G6_c = O(1/N²). The Edgeworth density

    p(f) = φ_K(f) [1 + κ4·H4/4! + κ6·H6/6! + ½ (κ4⊗κ4)·H8/(4!)² + O(N⁻³)]

(H_n the Hermite tensors of covariance K) gives, with a = κ4·H4/4! and the product rule
H_A H_B = Σ_{matchings M of A with B} Π_M K⁻¹ H_{A∪B∖M},

    S(f) = −log p(f) = ½ fᵀK⁻¹f + ½ log det(2πK)
           − κ4·H4/24                                               [O(1/N)]
           − κ6·H6/720 + X6·H6/72 + X4·H4/16 + X2·H2/12 + X0/48      [O(1/N²)]

with X6 = κ4 K⁻¹ κ4 (one contraction), X4 = κ4 K⁻¹K⁻¹ κ4 (two), X2 (three), X0 (four), each
symmetrised; the f⁸ terms of ½a² and of (κ4⊗κ4)·H8/1152 cancel. Expanding each T·H_n into
monomials (T·H_n = Σ_j (−1)^j n!/(2^j j! (n−2j)!) tr^j T · u^{⊗(n−2j)}, u = K⁻¹f) gives the
polynomial S = Σ quadratic f f + Σ quartic f⁴ + Σ sextic f⁶ + constant (no 1/k!).

Numerics: everything is done in the whitened coordinates w = K^{−1/2} f (K = V diag(λ) Vᵀ, an
eigendecomposition; K⁻¹ is never formed explicitly), where the Hermite metric is the identity,
then transformed back leg by leg with K^{−1/2}. A kernel with condition number above
`max_condition` (default 10⁸) is rejected with a ValueError: the whitened cumulants would carry
the rounding of κ4 amplified by up to cond(K)², i.e. no significant digits.

**Warning.** For λ < 0 (the usual case) the truncated S is unbounded below: e^{−S} is not a
density. S is a generating function of the correlators to the order kept (physics.md §9).
"""

from __future__ import annotations

import functools
import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._ensemble import Measurement, connected_from_moments
from ._exact import exact_connected
from ._nets import AbstractNet
from ._tuples import splits, to_full
from ._validate import (
    check_finite_output,
    check_inputs,
    check_real,
    check_real_array,
    check_symmetric,
    is_traced,
)

__all__ = [
    "EdgeworthAction",
    "edgeworth_tensors",
    "edgeworth_action",
    "DEFAULT_MAX_CONDITION",
]

DEFAULT_MAX_CONDITION = 1e8


# ------------------------------------------------------------------------- tensor algebra ---


def _legs(t, m):
    """Contract every leg of the order-n tensor `t` with the matrix `m`: t(m·, m·, ...)."""
    for axis in range(t.ndim):
        t = jnp.moveaxis(jnp.tensordot(t, m, axes=([axis], [0])), -1, axis)
    return t


def _symmetrize_groups(t, group: int):
    """Symmetrise a tensor of order 2·group that is symmetric within its two index groups and
    under their exchange (the X tensors): average over the C(2g, g)/2 splittings into groups."""
    n = 2 * group
    out = 0.0
    count = 0
    for sub, comp in splits(n, group):
        if 0 not in sub:
            continue
        out = out + jnp.einsum(t, list(sub) + list(comp), list(range(n)))
        count += 1
    return out / count


def _hermite_monomials(t, n: int) -> dict:
    """T·H_n(w) for the standard (identity-metric) Hermite tensors, T symmetric of order n:
    the coefficient tensor of w^{⊗m} for m = n, n−2, ..., 0,
    (−1)^j n!/(2^j j! (n−2j)!) tr^j T with j = (n − m)/2."""
    out = {}
    cur = t
    for j in range(n // 2 + 1):
        m = n - 2 * j
        coef = (-1) ** j * math.factorial(n) / (2**j * math.factorial(j) * math.factorial(m))
        out[m] = coef * cur
        if m >= 2:
            cur = jnp.trace(cur, axis1=0, axis2=1)
    return out


def _accumulate(total: dict, part: dict, scale: float):
    for m, v in part.items():
        total[m] = total.get(m, 0.0) + scale * v


def _whitened_coefficients(k4w, k6w, order: int) -> dict:
    """Coefficient tensors (w-degree m → symmetric tensor) of S(w) − ½|w|² − ½ log det(2πK)."""
    total: dict = {}
    _accumulate(total, _hermite_monomials(k4w, 4), -1.0 / 24.0)
    if order == 2:
        x6 = _symmetrize_groups(jnp.einsum("abcd,efgd->abcefg", k4w, k4w), 3)
        x4 = _symmetrize_groups(jnp.einsum("abcd,efcd->abef", k4w, k4w), 2)
        x2 = jnp.einsum("abcd,ebcd->ae", k4w, k4w)
        x0 = jnp.einsum("abcd,abcd->", k4w, k4w)
        _accumulate(total, _hermite_monomials(k6w, 6), -1.0 / 720.0)
        _accumulate(total, _hermite_monomials(x6, 6), 1.0 / 72.0)
        _accumulate(total, _hermite_monomials(x4, 4), 1.0 / 16.0)
        _accumulate(total, _hermite_monomials(x2, 2), 1.0 / 12.0)
        total[0] = total[0] + x0 / 48.0
    return total


@functools.partial(jax.jit, static_argnums=3)
def _tensors_impl(k2, k4, k6, order: int):
    """Traceable core: (quadratic, quartic, sextic, constant) from full cumulant arrays."""
    p = k2.shape[0]
    lam, vec = jnp.linalg.eigh(0.5 * (k2 + k2.T))
    w = (vec / jnp.sqrt(lam)[None, :]) @ vec.T  # K^{-1/2}, symmetric
    k4w = _legs(k4, w)
    k6w = _legs(k6, w) if order == 2 else None
    c = _whitened_coefficients(k4w, k6w, order)
    quadratic = 0.5 * (vec / lam[None, :]) @ vec.T + _legs(c[2], w)
    quartic = _legs(c[4], w)
    sextic = _legs(c[6], w) if order == 2 else jnp.zeros((p,) * 6, k2.dtype)
    constant = 0.5 * jnp.sum(jnp.log(2 * jnp.pi * lam)) + c[0]
    return quadratic, quartic, sextic, constant


def _check_order_arg(order) -> int:
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, numbers.Integral) or (
            order not in (1, 2)):
        raise ValueError(f"`order` must be 1 (O(1/N)) or 2 (O(1/N²)), got {order!r}.")
    return int(order)


def check_max_condition(max_condition, name: str = "max_condition") -> float:
    """A finite condition-number limit >= 1 (NaN or inf would switch the check off)."""
    return check_real(name, max_condition, minimum=1.0)


def _check_kernel_matrix(k2, max_condition: float, name: str = "k2") -> np.ndarray:
    max_condition = check_max_condition(max_condition)
    k2 = check_real_array(name, k2)
    if k2.ndim != 2 or k2.shape[0] != k2.shape[1] or k2.shape[0] < 1:
        raise ValueError(f"`{name}` must be a square (P, P) matrix, got shape {k2.shape}.")
    check_symmetric(name, k2, 2, rtol=1e-10)
    lam = np.linalg.eigvalsh(0.5 * (k2 + k2.T))
    if lam[0] <= 0 or lam[-1] / lam[0] > max_condition:
        cond = np.inf if lam[0] <= 0 else lam[-1] / lam[0]
        raise ValueError(
            f"`{name}` (the covariance K) must be positive definite with condition number <= "
            f"{max_condition:.3g}; its eigenvalues run from {lam[0]:.3g} to {lam[-1]:.3g} "
            f"(condition {cond:.3g}). The whitened cumulants would have no significant digits: "
            "remove (nearly) redundant inputs or raise `max_condition`."
        )
    return k2


def _check_sym_tensor(name: str, t, p: int, n: int) -> np.ndarray:
    return check_symmetric(name, t, n, p)


def _check_result(parts, what="the Edgeworth action"):
    """Refuse an overflowed (non-finite) concrete result, naming its cause."""
    for label, t in zip(("quadratic", "quartic", "sextic", "constant"), parts):
        if t is not None:
            check_finite_output(t, f"the {label} coefficient of {what}",
                                "the cumulants are too large for the kernel (float64 overflow: "
                                "K⁻¹ legs of a tiny K or a huge κ4/κ6)")
    return parts


def edgeworth_tensors(k2, k4, k6=None, *, order: int = 2,
                      max_condition: float = DEFAULT_MAX_CONDITION):
    """Coefficient tensors of the Edgeworth action to O(1/N) or O(1/N²) (physics.md §9).

        S(f) = Σ quadratic_ab f_a f_b + Σ quartic_abcd f_a f_b f_c f_d
               + Σ sextic_abcdef f_a … f_f + const          (no 1/k!)

    with quadratic = ½K⁻¹ + q the **total** quadratic coefficient. At O(1/N):
    quartic = −(1/24) κ4(K⁻¹·, K⁻¹·, K⁻¹·, K⁻¹·) (the amputated G4_c) and q = ¼ K⁻¹ tr_{K⁻¹}(κ4) K⁻¹.
    At O(1/N²) (`order=2`): sextic = amputated [−κ6/720 + sym(κ4 K⁻¹ κ4)/72] and the corrections
    to quartic and q listed in the module docstring.

    **Arguments:**

    - `k2`: the covariance K, full `(P, P)`, positive definite.
    - `k4`: the connected 4-pt function κ4, full symmetric `(P,)*4`.
    - `k6`: the connected 6-pt function κ6, full symmetric `(P,)*6` (needed for `order=2`).
    - `order`: 1 (keep O(1/N); sextic is zero) or 2 (keep O(1/N²)).
    - `max_condition`: largest accepted condition number of K (ValueError beyond it).

    Pure and differentiable: under `jax.jit`/`vmap`/`grad` only the shapes are validated (the
    condition check needs concrete values).

    **Returns:** `(quadratic, quartic, sextic)`, full symmetric float64 arrays.
    """
    quadratic, quartic, sextic, _ = _edgeworth_all(k2, k4, k6, order, max_condition)
    return quadratic, quartic, sextic


def _edgeworth_all(k2, k4, k6, order, max_condition):
    order = _check_order_arg(order)
    check_max_condition(max_condition)
    if any(isinstance(t, jax.core.Tracer) for t in (k2, k4, k6)):
        # inside jit/vmap/grad: only the shapes can be checked (values are abstract)
        p = jnp.shape(k2)[-1]
        for name, t, n in (("k2", k2, 2), ("k4", k4, 4), ("k6", k6, 6)):
            if (n < 6 or order == 2) and (t is None or jnp.shape(t) != (p,) * n):
                raise ValueError(f"`{name}` must be a full symmetric array of shape {(p,) * n}.")
        return _tensors_impl(jnp.asarray(k2), jnp.asarray(k4),
                             jnp.asarray(k6) if order == 2 else None, order)
    k2 = _check_kernel_matrix(k2, max_condition)
    p = k2.shape[0]
    k4 = _check_sym_tensor("k4", k4, p, 4)
    if order == 2:
        if k6 is None:
            raise ValueError("`k6` (the connected 6-pt function) is required for `order=2`.")
        k6 = _check_sym_tensor("k6", k6, p, 6)
    else:
        k6 = None
    return _check_result(_tensors_impl(jnp.asarray(k2), jnp.asarray(k4),
                                       None if k6 is None else jnp.asarray(k6), order))


# ---------------------------------------------------------------------------- the module ---


def _contract(t, f):
    """Σ t_{a1..an} f_a1 … f_an for a batch f (..., P)."""
    letters = "abcdefgh"[: t.ndim]
    spec = letters + "".join(f",...{c}" for c in letters) + "->..."
    return jnp.einsum(spec, t, *([f] * t.ndim))


class EdgeworthAction(eqx.Module):
    r"""The action of the network ensemble on a finite input set (physics.md §9).

        S(f) = Σ_ab quadratic_ab f_a f_b + Σ_abcd quartic_abcd f_a f_b f_c f_d
               + Σ sextic_abcdef f_a … f_f + constant,           (no 1/k!)

    quadratic = ½K⁻¹ + q, so that exp(−S) reproduces K, κ4 (and κ6 for `order=2`) to the order
    in 1/N kept. `constant` is ½ log det(2πK) plus the Hermite constants, so that S ≈ −log p(f)
    itself (not only up to a constant) wherever the Edgeworth expansion holds.

    **Warning: unbounded below.** When the quartic is negative in some direction (λ < 0, the
    usual case) S → −∞ at large |f|: e^{−S} is *not* a probability density. The truncated S is
    a generating function of correlators to the order kept (evaluate them perturbatively around
    the Gaussian of covariance K, never by sampling e^{−S}).

    **Fields:**

    - `quadratic` `(P, P)`, `quartic` `(P,)*4`, `sextic` `(P,)*6`: full symmetric arrays.
    - `kernel` `(P, P)`: the covariance K about which the expansion is made.
    - `order`: 1 or 2 (static).
    - `constant`: scalar.
    - `quadratic_stderr`, `quartic_stderr`, `sextic_stderr`: jackknife standard errors (Monte
      Carlo source) or `None`.
    """

    quadratic: jax.Array
    quartic: jax.Array
    sextic: jax.Array
    kernel: jax.Array
    order: int = eqx.field(static=True, default=2)
    constant: jax.Array = eqx.field(default_factory=lambda: jnp.zeros(()))
    quadratic_stderr: jax.Array | None = None
    quartic_stderr: jax.Array | None = None
    sextic_stderr: jax.Array | None = None

    def __check_init__(self):
        p = self.kernel.shape[-1] if hasattr(self.kernel, "shape") else None
        if not hasattr(self.kernel, "shape") or self.kernel.shape != (p, p):
            raise ValueError("`kernel` must be a (P, P) matrix.")
        for name, n in (("quadratic", 2), ("quartic", 4), ("sextic", 6)):
            arr = getattr(self, name)
            if not hasattr(arr, "shape") or arr.shape != (p,) * n:
                raise ValueError(f"`{name}` must have shape {(p,) * n}.")
            err = getattr(self, name + "_stderr")
            if err is not None and (not hasattr(err, "shape") or err.shape != (p,) * n):
                raise ValueError(f"`{name}_stderr` must be None or have shape {(p,) * n}.")
        if isinstance(self.order, bool) or self.order not in (1, 2):
            raise ValueError(f"`order` must be 1 or 2, got {self.order!r}.")
        # concrete values (not under jit/vmap): real, finite and symmetric tensors; a
        # non-symmetric tensor would act through its symmetric part only (a silent change)
        for name in ("kernel", "quadratic", "quartic", "sextic", "constant", "quadratic_stderr",
                     "quartic_stderr", "sextic_stderr"):
            arr = getattr(self, name)
            if arr is None or is_traced(arr):
                continue
            if jnp.iscomplexobj(arr):
                raise TypeError(f"`{name}` must be real, got a complex array.")
            value = np.asarray(arr)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"`{name}` contains NaN or inf; all entries must be finite.")
            if name in ("kernel", "quadratic", "quartic", "sextic"):
                # computed couplings carry rounding asymmetry amplified by the cancellations of
                # the whitened Edgeworth sums (measured: 7.6e-6 of the largest sextic entry on
                # the wilsonian_rg quick inputs); a tensor asymmetric beyond 1e-4 is refused
                check_symmetric(name, value, value.ndim, p,
                                rtol=1e-4 if name in ("quartic", "sextic") else 1e-9)

    @property
    def n_points(self) -> int:
        """P, the number of inputs (field components)."""
        return self.kernel.shape[0]

    @property
    def free_quadratic(self) -> jax.Array:
        """½K⁻¹ (from the eigendecomposition of K)."""
        lam, vec = jnp.linalg.eigh(self.kernel)
        return 0.5 * (vec / lam[None, :]) @ vec.T

    @property
    def interaction_quadratic(self) -> jax.Array:
        """q = quadratic − ½K⁻¹: the quadratic counterterm keeping ⟨f f⟩ = K."""
        return self.quadratic - self.free_quadratic

    def _check_f(self, f):
        if is_traced(f):
            if jnp.iscomplexobj(f):
                raise TypeError("`f` must be real, got a complex array.")
            f = f.astype(jnp.float64)
        else:
            f = jnp.asarray(check_real_array("f", f))
        if f.ndim < 1 or f.shape[-1] != self.n_points:
            raise ValueError(f"`f` must have shape (..., P) = (..., {self.n_points}), got {f.shape}.")
        return f

    def energy(self, f) -> jax.Array:
        """S(f) for a batch `f` of shape `(..., P)`; returns shape `(...)` (a ValueError if it
        overflows float64, e.g. |f| ~ 1e200)."""
        f = self._check_f(f)
        out = (_contract(self.quadratic, f) + _contract(self.quartic, f)
               + _contract(self.sextic, f) + self.constant)
        return check_finite_output(out, "S(f)", "float64 overflow: `f` is too large")

    __call__ = energy

    def interaction(self, f) -> jax.Array:
        """S_int(f) = q f f + quartic f⁴ + sextic f⁶ (S without ½fK⁻¹f and the constant)."""
        f = self._check_f(f)
        out = (_contract(self.interaction_quadratic, f) + _contract(self.quartic, f)
               + _contract(self.sextic, f))
        return check_finite_output(out, "S_int(f)", "float64 overflow: `f` is too large")

    def in_eigenbasis(self):
        """The action in the kernel eigenbasis: with K = V diag(λ) Vᵀ and modes a = Vᵀ f,

            S = Σ quadratic'_ij a_i a_j + …,  T'_{i..} = Σ T_{a..} V_{a i} …  (every leg).

        **Returns:** `(eigenvalues (P,), eigenvectors V (P, P) (columns), action)` where `action`
        is an `EdgeworthAction` in the mode variables (kernel diag(λ)); the element-wise
        standard errors do not rotate and are dropped (`None`).
        """
        lam, vec = jnp.linalg.eigh(self.kernel)
        rotated = EdgeworthAction(
            _legs(self.quadratic, vec), _legs(self.quartic, vec), _legs(self.sextic, vec),
            jnp.diag(lam), order=self.order, constant=self.constant,
        )
        return lam, vec, rotated


# ------------------------------------------------------------------------ from a network ---


def _flatten(parts):
    return jnp.concatenate([jnp.ravel(x) for x in parts])


def _unflatten(flat, p):
    sizes = [p**2, p**4, p**6]
    out, start = [], 0
    for n, s in zip((2, 4, 6), sizes):
        out.append(flat[start:start + s].reshape((p,) * n))
        start += s
    return out


def edgeworth_action(net: AbstractNet, xs, *, order: int = 2, source="exact",
                     kernel: str = "measured", basis=None,
                     max_condition: float = DEFAULT_MAX_CONDITION) -> EdgeworthAction:
    """The Edgeworth action of the network ensemble on the inputs `xs` (physics.md §9).

    **Arguments:**

    - `net`: the network (`rgflow.ErfNet(width=N)`, ...).
    - `xs`: inputs `(P, d_in)`.
    - `order`: 1 (O(1/N)) or 2 (O(1/N²)).
    - `source`: `"exact"` (the exact finite-width cumulants K, G4_c, G6_c of physics.md §4) or a
      `rgflow.Measurement` of the same network on the same inputs, with the orders needed
      ((2, 4) for `order=1`, (2, 4, 6) for `order=2`). With a measurement the tensors are the
      delete-one-block jackknife (bias-corrected) estimates and carry jackknife standard errors
      (the whole nonlinear map cumulants → tensors is inside the jackknife).
    - `kernel` (Monte Carlo only): `"measured"` (default) uses the measured κ2 as K, so the
      Monte Carlo action is an independent measurement of every term, including ½K⁻¹ (and its
      errors include those of κ2); `"exact"` uses the GP kernel of `net` (G2 = K exactly at every
      width, §4), which removes the O(M^{−1/2}) noise of κ2 from the quadratic coefficient.
    - `basis`: optional orthogonal `(P, P)` matrix V: return the action in the variables
      a = Vᵀ f (every tensor leg contracted with V, kernel VᵀKV). With a measurement the
      rotation is done inside the jackknife, so the returned errors are those of the rotated
      tensors (e.g. V = the eigenvectors of the exact K).
    - `max_condition`: largest accepted condition number of K.

    **Returns:** an `EdgeworthAction`.
    """
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network (ErfNet, ReLUNet, ...), got {net!r}.")
    xs = check_inputs(xs, net.d_in)
    order = _check_order_arg(order)
    p = xs.shape[0]
    if not isinstance(kernel, str) or kernel not in ("measured", "exact"):
        raise ValueError(f"`kernel` must be 'measured' or 'exact', got {kernel!r}.")
    check_max_condition(max_condition)
    rot = None
    if basis is not None:
        rot = check_real_array("basis", basis)
        if rot.shape != (p, p) or not np.allclose(rot.T @ rot, np.eye(p), atol=1e-10):
            raise ValueError(f"`basis` must be an orthogonal ({p}, {p}) matrix.")
        rot = jnp.asarray(rot)

    def finish(quadratic, quartic, sextic, constant, k2):
        if rot is None:
            return quadratic, quartic, sextic, constant, k2
        return (_legs(quadratic, rot), _legs(quartic, rot), _legs(sextic, rot), constant,
                rot.T @ k2 @ rot)

    if isinstance(source, str):
        if source != "exact":
            raise ValueError(f"`source` must be 'exact' or a rgflow.Measurement, got {source!r}.")
        exact = net.exact_connected if hasattr(net, "exact_connected") else (
            lambda x, n: exact_connected(net, x, n))  # CosNet has its own closed forms
        k2 = np.asarray(exact(xs, 2))
        k4 = np.asarray(exact(xs, 4))
        k6 = np.asarray(exact(xs, 6)) if order == 2 else None
        qd, qr, sx, c = _edgeworth_all(k2, k4, k6, order, max_condition)
        qd, qr, sx, c, k2 = finish(qd, qr, sx, c, jnp.asarray(k2))
        return EdgeworthAction(qd, qr, sx, k2, order=order, constant=c)
    if not isinstance(source, Measurement):
        raise TypeError(f"`source` must be 'exact' or a rgflow.Measurement, got {type(source).__name__}.")
    m = source
    if m.net != net:
        raise ValueError(f"`source` measures {m.net!r}, not `net` = {net!r}.")
    if np.shape(m.xs) != xs.shape or not np.allclose(np.asarray(m.xs), xs, rtol=0, atol=1e-14):
        raise ValueError(
            f"`source` was measured on {np.shape(m.xs)[0]} inputs {np.asarray(m.xs).tolist()}, "
            f"not on `xs` ({p} inputs)."
        )
    needed = (2, 4, 6) if order == 2 else (2, 4)
    missing = [n for n in needed if n not in m.block_sums]
    if missing:
        raise ValueError(f"`source` must contain the moments of orders {needed} for order={order}; "
                         f"missing {missing} (measure with orders={needed}).")
    counts = np.asarray(m.block_counts)
    smallest = int(m.n_nets - counts.max())  # networks in the smallest jackknife replicate
    if kernel == "measured" and smallest <= p:
        raise ValueError(
            f"`source`: a leave-one-block-out replicate holds only {smallest} networks, so its "
            f"measured {p} x {p} covariance (rank <= {smallest - 1}) is singular; measure more "
            "networks (or more blocks), or use kernel='exact'.")
    k_exact = jnp.asarray(exact_connected(net, xs, 2)) if kernel == "exact" else None
    k2_hat = (np.asarray(m.connected(2)) if kernel == "measured" else np.asarray(k_exact))
    _check_kernel_matrix(k2_hat, max_condition)

    def one(mom):
        k2 = to_full(connected_from_moments(mom, p, 2), p, 2) if k_exact is None else k_exact
        k4 = to_full(connected_from_moments(mom, p, 4), p, 4)
        k6 = to_full(connected_from_moments(mom, p, 6), p, 6) if order == 2 else None
        qd, qr, sx, _ = _tensors_impl(k2, k4, k6, order)
        qd, qr, sx, _, _ = finish(qd, qr, sx, 0.0, k2)
        return _flatten((qd, qr, sx))

    many_jit = jax.jit(jax.vmap(one))
    n_blocks = int(np.shape(m.block_counts)[0])

    def fn(mom):
        # the whole-ensemble estimate goes through the same compiled (vmapped) program as the
        # B leave-one-out replicates (tiled), so only one program is compiled
        if mom[2].ndim == 1:
            tiled = {n: jnp.broadcast_to(v, (n_blocks,) + v.shape) for n, v in mom.items()}
            return many_jit(tiled)[0]
        return many_jit(mom)

    mom_used = {n: m.block_sums[n] for n in needed}
    sub = Measurement(net=m.net, xs=m.xs, n_nets=m.n_nets, block_counts=m.block_counts,
                      block_sums=mom_used, sum_squares={n: m.sum_squares[n] for n in needed})
    est, err = sub.jackknife(fn)
    qd, qr, sx = _unflatten(est, p)
    eq, er, es = _unflatten(err, p)
    # the constant is not jackknifed: it follows from the jackknife K, κ4, κ6 (to evaluate S)
    k2_full = jnp.asarray(k2_hat)
    k4_plug = np.asarray(m.connected(4))
    k6_plug = np.asarray(m.connected(6)) if order == 2 else None
    c = _tensors_impl(k2_full, jnp.asarray(k4_plug),
                      None if k6_plug is None else jnp.asarray(k6_plug), order)[3]
    k_out = k2_full if rot is None else rot.T @ k2_full @ rot
    if order == 1:
        sx, es = jnp.zeros_like(sx), jnp.zeros_like(es)
    for label, t in (("tensors", (qd, qr, sx, c)), ("standard errors", (eq, er, es))):
        if not all(np.all(np.isfinite(np.asarray(x))) for x in t):
            raise ValueError(
                f"`source`: the Monte Carlo Edgeworth {label} are not finite (the jackknife "
                f"over {n_blocks} blocks of {np.asarray(m.block_counts).tolist()} networks "
                "failed: too few networks per block for the cumulants of order "
                f"{max(needed)}, or an overflow); measure more networks per block.")
    return EdgeworthAction(qd, qr, sx, k_out, order=order, constant=c,
                           quadratic_stderr=eq, quartic_stderr=er, sextic_stderr=es)
