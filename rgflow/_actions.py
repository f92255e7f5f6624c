"""Non-Gaussian-process actions as Equinox modules (physics.md §3, §6).

Convention (physics.md §3): P[f] ∝ exp(−S[f]), couplings written **without** 1/k!,

    S[f] = S_GP[f] + Σ_terms S_int[f],
    S_GP  = ½ ∫∫ f(x) K⁻¹(x, x') f(x'),
    local:      g ∫ d^d y f(y)^k                       (k = 4, 6)              →  G4_c = −24 λ I4
    polynomial: ∫ d^d y (λ0 + λ2 |y|²) f(y)^4
    bilocal:    λ_NL ∫∫ d^d y d^d z f(y)² f(z)²
    nonlocal:   ∫ d^d y1..d^d y4 λ(y1, .., y4; θ) f(y1) f(y2) f(y3) f(y4)

The free part is the network's GP: lines ending on a vertex carry K_W = K − σ_b² (the output bias
b1 is an exactly Gaussian independent piece), lines joining two external points the full K.

Couplings (and the parameters θ of a nonlocal coupling function) are float64 array leaves, so
`jax.grad`, optax and diffrax see them; everything else (orders, callables, the network) is static.
Odd operators are rejected: (W1, b1) → −(W1, b1) leaves the parameter density invariant, so
f → −f is a symmetry and odd couplings vanish.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from ._diagrams import BILOCAL4, NONLOCAL4, VertexType

__all__ = [
    "AbstractInteraction",
    "LocalCoupling",
    "PolynomialQuartic",
    "BilocalQuartic",
    "NonlocalQuartic",
    "FreeAction",
    "Action",
    "make_interaction",
]


def _scalar_coupling(name: str, value) -> jax.Array:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real scalar coupling, got {value!r}.")
    try:
        arr = jnp.asarray(value, dtype=jnp.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a real scalar coupling, got {value!r}.") from e
    if arr.shape != ():
        raise ValueError(
            f"`{name}` must be a scalar coupling (shape ()), got shape {arr.shape}; "
            "to scan several coupling values use jax.vmap over actions."
        )
    if not isinstance(arr, jax.core.Tracer) and not np.isfinite(np.asarray(arr)):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return arr


def _real_leaf(p) -> jax.Array:
    """A coupling-parameter leaf as float64: complex refused, concrete NaN/inf refused."""
    if isinstance(p, bool) or jnp.iscomplexobj(p):
        raise TypeError(f"`params` leaves must be real numbers or arrays, got {p!r}.")
    try:
        arr = jnp.asarray(p, dtype=jnp.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`params` leaves must be real numbers or arrays, got {p!r}.") from e
    if not isinstance(arr, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"`params` must be finite, got a leaf containing NaN or inf: {p!r}.")
    return arr


class AbstractInteraction(eqx.Module):
    """An interaction term of the action (physics.md §3, §6).

    Subclasses are final. Each exposes `order` (the number of fields, even), `coupling_names`
    (its array leaves, in the order used by design matrices) and `vertex` (its `VertexType`:
    legs per integration site, used by the diagram engine).
    """

    @property
    @abc.abstractmethod
    def order(self) -> int:
        """Number of fields in the operator."""

    @property
    @abc.abstractmethod
    def vertex(self) -> VertexType:
        """The vertex type: legs per integration site."""

    @property
    @abc.abstractmethod
    def coupling_names(self) -> tuple[str, ...]:
        """Names of the coupling leaves."""


class LocalCoupling(AbstractInteraction):
    """A local constant coupling g ∫ d^d y f(y)^k, k = 4 (λ) or 6 (κ) (physics.md §3).

    Feynman rule (physics.md §6): vertex −k! g ∫_{[−Λ,Λ]^d} d^d y; e.g. G4_c = −24 λ I4.

    **Arguments:**

    - `order`: k, 4 or 6. Odd k is rejected (the f → −f symmetry); k = 2 would change the
      propagator, but G2 = K exactly at every width.
    - `coupling`: the scalar g.
    """

    order_: int = eqx.field(static=True)
    coupling: jax.Array

    def __init__(self, order: int = 4, coupling=0.0):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError(f"`order` must be an integer (4 or 6), got {order!r}.")
        order = int(order)
        if order % 2:
            raise ValueError(
                f"`order` = {order} is odd: odd operators vanish. (W1, b1) → −(W1, b1) leaves the "
                "parameter density invariant, so f → −f is a symmetry of the network ensemble and "
                "every odd coupling and correlator is zero (physics.md §3)."
            )
        if order not in (4, 6):
            raise ValueError(
                f"`order` must be 4 or 6, got {order}. (f² terms would change the propagator, but "
                "G2 = K exactly at every width; f⁸ and higher are not supported.)"
            )
        self.order_ = order
        self.coupling = _scalar_coupling("coupling", coupling)

    @property
    def order(self) -> int:
        return self.order_

    @property
    def vertex(self) -> VertexType:
        return VertexType(f"local{self.order_}", (self.order_,))

    @property
    def coupling_names(self) -> tuple[str, ...]:
        return ("coupling",)


class PolynomialQuartic(AbstractInteraction):
    """A local quartic with an x-dependent coupling ∫ d^d y (λ0 + λ2 |y|²) f(y)^4 (physics.md §6).

    G4_c = −24 ∫ d^d y (λ0 + λ2 |y|²) Π_{i=1..4} K_W(x_i, y).

    **Arguments:** `lambda0`, `lambda2`: scalars.
    """

    lambda0: jax.Array
    lambda2: jax.Array
    order_: ClassVar[int] = 4

    def __init__(self, lambda0=0.0, lambda2=0.0):
        self.lambda0 = _scalar_coupling("lambda0", lambda0)
        self.lambda2 = _scalar_coupling("lambda2", lambda2)

    @property
    def order(self) -> int:
        return 4

    @property
    def vertex(self) -> VertexType:
        return VertexType("local4", (4,))

    @property
    def coupling_names(self) -> tuple[str, ...]:
        return ("lambda0", "lambda2")


QuadraticLocalQuartic = PolynomialQuartic


class BilocalQuartic(AbstractInteraction):
    """The bilocal quartic λ_NL ∫∫ d^d y d^d z f(y)² f(z)² (physics.md §6).

    G4_c = −8 λ_NL Σ_{3 channels (ab|cd)} I2(x_a, x_b) I2(x_c, x_d),  I2 = ∫ K_W(x_a, y) K_W(x_b, y).

    **Arguments:** `lambda_nl`: scalar.
    """

    lambda_nl: jax.Array
    order_: ClassVar[int] = 4

    def __init__(self, lambda_nl=0.0):
        self.lambda_nl = _scalar_coupling("lambda_nl", lambda_nl)

    @property
    def order(self) -> int:
        return 4

    @property
    def vertex(self) -> VertexType:
        return BILOCAL4

    @property
    def coupling_names(self) -> tuple[str, ...]:
        return ("lambda_nl",)


class NonlocalQuartic(AbstractInteraction):
    """The general nonlocal quartic ∫ d^d y1..d^d y4 λ(y1..y4; θ) f(y1) f(y2) f(y3) f(y4).

    G4_c(x1..x4) = −Σ_{σ ∈ S4} ∫ λ(y; θ) Π_i K_W(x_σ(i), y_i)   (physics.md §6; the local,
    x-dependent and bilocal quartics are special cases).

    The 4d-dimensional integral is done by a tensor Gauss–Legendre rule (see
    `rgflow._predict.nonlocal_tensor`), practical for d_in = 1 (and d_in = 2 at low resolution).

    **Arguments:**

    - `fn`: a callable `fn(params, y1, y2, y3, y4) -> scalar`, each `y_i` of shape `(d_in,)`;
      it must be JAX-traceable (it is vmapped). Static.
    - `params`: a pytree of float arrays θ (the coupling leaves).
    - `d_in`: the input dimension the function expects; checked by one trial call.
    """

    fn: Callable = eqx.field(static=True)
    params: Any
    d_in: int = eqx.field(static=True)
    order_: ClassVar[int] = 4

    def __init__(self, fn: Callable, params, d_in: int = 1):
        if not callable(fn):
            raise TypeError(f"`fn` must be a callable fn(params, y1, y2, y3, y4), got {fn!r}.")
        if isinstance(d_in, bool) or not isinstance(d_in, (int, np.integer)) or d_in < 1:
            raise ValueError(f"`d_in` must be an integer >= 1, got {d_in!r}.")
        params = jax.tree_util.tree_map(_real_leaf, params)
        y = jnp.zeros((int(d_in),))
        try:
            out = jax.eval_shape(fn, params, y, y, y, y)
        except Exception as e:  # noqa: BLE001
            raise ValueError(
                f"`fn(params, y1, y2, y3, y4)` failed for y_i of shape ({d_in},): {e}"
            ) from e
        if getattr(out, "shape", None) != ():
            raise ValueError(f"`fn` must return a scalar, got shape {getattr(out, 'shape', None)}.")
        if not any(isinstance(p, jax.core.Tracer) for p in jax.tree_util.tree_leaves(params)):
            # one concrete trial at the origin and at a generic point (checked once, here)
            trial = jnp.linspace(-0.7, 0.6, 4 * int(d_in)).reshape(4, int(d_in))
            for ys in (jnp.zeros((4, int(d_in))), trial):
                value = np.asarray(fn(params, *ys))
                if np.iscomplexobj(value) or not np.isfinite(value):
                    raise ValueError(
                        f"`fn(params, y1, y2, y3, y4)` is not a finite real number at "
                        f"y = {np.asarray(ys).tolist()} (got {value}); the coupling function "
                        "must be finite on the integration region."
                    )
        self.fn = fn
        self.params = params
        self.d_in = int(d_in)

    @property
    def order(self) -> int:
        return 4

    @property
    def vertex(self) -> VertexType:
        return NONLOCAL4

    @property
    def coupling_names(self) -> tuple[str, ...]:
        leaves = jax.tree_util.tree_flatten_with_path(self.params)[0]
        names = []
        for path, leaf in leaves:
            base = "params" + jax.tree_util.keystr(path)
            size = int(np.prod(jnp.shape(leaf)))
            names += [base] if size == 1 and jnp.ndim(leaf) == 0 else [f"{base}[{i}]" for i in range(size)]
        return tuple(names)


class FreeAction(eqx.Module):
    """The free (GP) part of the action: the network's kernel (physics.md §3).

    `kernel` (full K) is used on lines joining two external points, `kernel_w` (K − σ_b²) on
    lines ending on a vertex.

    **Arguments:** `net`: an rgflow network (ErfNet, ReLUNet, GaussNet, GenericNet).
    """

    net: Any

    def __init__(self, net):
        if not (hasattr(net, "kernel") and hasattr(net, "kernel_w") and hasattr(net, "d_in")):
            raise TypeError(f"`net` must be an rgflow network (e.g. rgflow.ErfNet), got {net!r}.")
        self.net = net

    @property
    def d_in(self) -> int:
        return self.net.d_in

    def kernel(self, x, y):
        """Full GP kernel K(x, y), `(P, Q)` (external lines)."""
        return self.net.kernel(x, y)

    def kernel_w(self, x, y):
        """Vertex propagator K_W = K − σ_b², `(P, Q)` (physics.md §3)."""
        return self.net.kernel_w(x, y)


class Action(eqx.Module):
    """A non-Gaussian action S = S_GP + Σ interactions (physics.md §3).

    **Arguments:**

    - `net`: an rgflow network (or a `FreeAction`) giving the free part.
    - `interactions`: a tuple of `AbstractInteraction` (LocalCoupling, PolynomialQuartic,
      BilocalQuartic, NonlocalQuartic).

    Couplings are the inexact-array leaves of `interactions`: use
    `eqx.partition(action, eqx.is_inexact_array)` to get them for `jax.grad`/optax/diffrax.
    """

    free: FreeAction
    interactions: tuple

    def __init__(self, net, interactions=()):
        self.free = net if isinstance(net, FreeAction) else FreeAction(net)
        if isinstance(interactions, AbstractInteraction):
            interactions = (interactions,)
        interactions = tuple(interactions)
        for i, term in enumerate(interactions):
            if not isinstance(term, AbstractInteraction):
                raise TypeError(
                    f"`interactions[{i}]` must be an rgflow interaction (LocalCoupling, "
                    f"PolynomialQuartic, BilocalQuartic, NonlocalQuartic), got {term!r}."
                )
            if isinstance(term, NonlocalQuartic) and term.d_in != self.free.d_in:
                raise ValueError(
                    f"`interactions[{i}]` (NonlocalQuartic) has d_in = {term.d_in} but the network "
                    f"has d_in = {self.free.d_in}."
                )
        self.interactions = interactions

    @property
    def net(self):
        return self.free.net

    @property
    def coupling_names(self) -> tuple[str, ...]:
        """Flat names `"<i>:<Class>.<leaf>"`, in the order of `flat_couplings`."""
        out = []
        for i, term in enumerate(self.interactions):
            out += [f"{i}:{type(term).__name__}.{n}" for n in term.coupling_names]
        return tuple(out)

    def flat_couplings(self) -> jax.Array:
        """All coupling leaves raveled into one float64 vector (same order as `coupling_names`)."""
        params = eqx.filter(self.interactions, eqx.is_inexact_array)
        flat, _ = jax.flatten_util.ravel_pytree(params)
        return flat

    def with_flat_couplings(self, flat) -> "Action":
        """A copy of the action with its couplings replaced by the vector `flat`."""
        params, static = eqx.partition(self.interactions, eqx.is_inexact_array)
        ref, unravel = jax.flatten_util.ravel_pytree(params)
        if jnp.iscomplexobj(flat):
            raise TypeError("`flat` must be real, got a complex array.")
        flat = jnp.asarray(flat, dtype=ref.dtype if ref.size else jnp.float64)
        if flat.shape != ref.shape:
            raise ValueError(f"`flat` must have shape {ref.shape}, got {flat.shape}.")
        if not isinstance(flat, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(flat))):
            raise ValueError(f"`flat` must be finite, got {np.asarray(flat).tolist()}.")
        return eqx.tree_at(lambda a: a.interactions, self, eqx.combine(unravel(flat), static))


_FACTORY = {
    "phi4": lambda **kw: LocalCoupling(4, **kw),
    "phi6": lambda **kw: LocalCoupling(6, **kw),
    "polynomial4": lambda **kw: PolynomialQuartic(**kw),
    "bilocal4": lambda **kw: BilocalQuartic(**kw),
    "nonlocal4": lambda **kw: NonlocalQuartic(**kw),
}


def make_interaction(name: str, **couplings) -> AbstractInteraction:
    """Build an interaction by operator name.

    **Arguments:**

    - `name`: one of `"phi4"`, `"phi6"` (local constant couplings), `"polynomial4"`
      (λ0 + λ2|y|²), `"bilocal4"`, `"nonlocal4"`; odd names such as `"phi3"` are rejected with
      the f → −f explanation.
    - `couplings`: keyword arguments of the class (`coupling=`, `lambda0=`, ...).

    **Returns:** the interaction module.
    """
    if isinstance(name, str) and name.startswith("phi") and name[3:].isdigit():
        k = int(name[3:])
        if k % 2 or k not in (4, 6):
            return LocalCoupling(k, **couplings)  # raises with the explanation
    if name not in _FACTORY:
        raise ValueError(f"unknown operator `name` = {name!r}; known: {tuple(_FACTORY)}.")
    return _FACTORY[name](**couplings)
