"""Tree-level predictions of a non-Gaussian action at a cutoff, design matrices, matching
(physics.md §6, §7) and the HMS 6-pt prediction (physics.md §6, §7). The HMS 6-pt prediction built on them is a study
(`rgflow.studies.six_pt_prediction`).

    G_n,c(Λ) = Σ_{tree diagrams D} coef_D Π_{v ∈ D} g_v  ∫_{[−Λ,Λ]^{d·sites}} Π (K_W lines)

The diagrams, with their contraction counts, come from `rgflow._diagrams` (enumeration of Wick
contractions); the integrals from `rgflow._integrals`. Orders: the 4-pt function at first order in
every coupling; the 6-pt function at first order (κ f⁶) plus the λ² exchange between local
quartics (`exchange=True`). Tadpoles (loops) renormalise the 2-pt function, which is exactly K at
every width, and are dropped (cancelled by counterterms).

A `Predictor` computes the integrals once and evaluates the correlator for any couplings, so that
`jax.grad`/optax/diffrax over couplings do not repeat the quadrature; the cutoffs are an array
argument and everything is differentiable with respect to them as well.
"""

from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from ._actions import (
    Action,
    BilocalQuartic,
    LocalCoupling,
    NonlocalQuartic,
    PolynomialQuartic,
)
from ._diagrams import VertexType, enumerate_diagrams
from ._integrals import (
    QuadratureOptions,
    _box_nodes_for_cut,
    _check_xs,
    _face_rule,
    check_cutoffs,
    exchange_integrals,
    net_family,
    vertex_integrals,
)
from ._tuples import sorted_tuples, to_full

__all__ = [
    "connected_correlator",
    "design_matrix",
    "nonlocal_tensor",
]


# ------------------------------------------------------------------------ diagram terms ---


def _local_components(action: Action, order: int):
    """(interaction index, leaf name, weight power) of every local vertex with `order` legs."""
    out = []
    for i, term in enumerate(action.interactions):
        if isinstance(term, LocalCoupling) and term.order == order:
            out.append((i, "coupling", 0))
        elif isinstance(term, PolynomialQuartic) and order == 4:
            out.append((i, "lambda0", 0))
            out.append((i, "lambda2", 2))
    return out


def _index_full(n_points: int, order: int) -> np.ndarray:
    return np.asarray(to_full(np.arange(math.comb(n_points + order - 1, order)), n_points, order))


def _gather(table_full, t, labels):
    """table_full[..., t[:, labels[0]], t[:, labels[1]], ...]."""
    return table_full[(Ellipsis,) + tuple(t[:, a] for a in labels)]


class Predictor(eqx.Module):
    """The tree-level connected n-point function of an action's operator content at given cutoffs,
    with all integrals precomputed (physics.md §6).

    Build it once with `Predictor(action, xs, cutoffs, order)`; then `predictor(action)` evaluates
    G_n,c for the couplings carried by any action *with the same structure* (same interaction
    classes in the same order). Differentiable in the couplings; the integrals are differentiable
    in the cutoffs (build the predictor inside the function you differentiate).

    **Arguments:**

    - `action`: an `Action` (its couplings are not used, only its structure).
    - `xs`: inputs `(P, d_in)`.
    - `cutoffs`: cutoffs Λ > 0, shape `(n_cut,)`.
    - `order`: 4 or 6.
    - `exchange`: include the λ² exchange diagrams in the 6-pt function (default True).
    - `options`: `QuadratureOptions` for the vertex integrals.
    - `nonlocal_nodes`: Gauss–Legendre nodes per panel for `NonlocalQuartic` integrals.

    **Returns** (on call): float64 `(n_cut, n_tuples)` on `rgflow.sorted_tuples(P, order)`.
    """

    order: int = eqx.field(static=True)
    n_points: int = eqx.field(static=True)
    terms: tuple  # ((getters, value), ...): value × Π couplings
    nonlocal_terms: tuple  # ((interaction index, nodes, weights, K_W tables), ...)
    structure: tuple = eqx.field(static=True)

    def __init__(
        self,
        action: Action,
        xs,
        cutoffs,
        order: int,
        *,
        exchange: bool = True,
        options: QuadratureOptions | None = None,
        nonlocal_nodes: int = 4,
    ):
        if not isinstance(action, Action):
            raise TypeError(f"`action` must be an rgflow Action, got {action!r}.")
        if order not in (4, 6):
            raise ValueError(f"`order` must be 4 or 6, got {order!r}.")
        net = action.net
        xs = _check_xs(xs, net.d_in)
        cutoffs = check_cutoffs(cutoffs, allow_inf=(net_family(net) == "gauss"))
        p = xs.shape[0]
        t = sorted_tuples(p, order)
        terms = []
        nonlocal_terms = []
        # ---- first order: one vertex with `order` legs --------------------------------------
        for i, leaf, wp in _local_components(action, order):
            (diag,) = enumerate_diagrams(order, (VertexType("a", (order,)),))
            val = vertex_integrals(net, xs, cutoffs, order, weight="r2" if wp else "one", options=options)
            terms.append((((i, leaf),), float(diag.coefficient) * val))
        if order == 4:
            i2 = None
            for i, term in enumerate(action.interactions):
                if isinstance(term, BilocalQuartic):
                    if i2 is None:
                        i2 = to_full(vertex_integrals(net, xs, cutoffs, 2, options=options), p, 2)
                    val = 0.0
                    for diag in enumerate_diagrams(4, (term.vertex,)):
                        site0 = [a for a, (_, s) in enumerate(diag.externals) if s == 0]
                        site1 = [a for a, (_, s) in enumerate(diag.externals) if s == 1]
                        val = val + float(diag.coefficient) * _gather(i2, t, site0) * _gather(i2, t, site1)
                    terms.append((((i, "lambda_nl"),), val))
                elif isinstance(term, NonlocalQuartic):
                    nodes = _nonlocal_nodes(net, xs, cutoffs, nonlocal_nodes)
                    nonlocal_terms.append((i,) + nodes)
        # ---- second order: the λ² exchange between local quartics ---------------------------
        if order == 6 and exchange:
            if any(isinstance(s, (BilocalQuartic, NonlocalQuartic)) for s in action.interactions):
                raise NotImplementedError(
                    "the O(g²) 6-pt diagrams of bilocal/nonlocal quartics are not implemented; "
                    "pass `exchange=False` for the first-order 6-pt function."
                )
            comps = _local_components(action, 4)
            tri_index = _index_full(p, 3)
            tables = {}
            for ca, cb in itertools.combinations_with_replacement(range(len(comps)), 2):
                (ia, la, wa), (ib, lb, wb) = comps[ca], comps[cb]
                key = (bool(wa), bool(wb))
                if key not in tables:
                    tables[key] = exchange_integrals(net, xs, cutoffs, weights=key)
                jt = tables[key]
                vt = (VertexType("a", (4,)),) * 2 if ca == cb else (VertexType("a", (4,)), VertexType("b", (4,)))
                val = 0.0
                for diag in enumerate_diagrams(6, vt):
                    on0 = [a for a, (v, _) in enumerate(diag.externals) if v == 0]
                    on1 = [a for a, (v, _) in enumerate(diag.externals) if v == 1]
                    r = _gather(tri_index, t, on0)
                    c = _gather(tri_index, t, on1)
                    val = val + float(diag.coefficient) * jt[:, r, c]
                terms.append((((ia, la), (ib, lb)), val))
        self.order = order
        self.n_points = p
        self.terms = tuple((g, jnp.asarray(v)) for g, v in terms)
        self.nonlocal_terms = tuple(nonlocal_terms)
        self.structure = tuple(type(s).__name__ for s in action.interactions)

    def __call__(self, action: Action) -> jax.Array:
        if tuple(type(s).__name__ for s in action.interactions) != self.structure:
            raise ValueError(
                f"`action` has interactions {tuple(type(s).__name__ for s in action.interactions)} "
                f"but the predictor was built for {self.structure}."
            )
        out = 0.0
        for getters, val in self.terms:
            g = 1.0
            for i, leaf in getters:
                g = g * getattr(action.interactions[i], leaf)
            out = out + g * val
        for i, y, w, kw in self.nonlocal_terms:
            term = action.interactions[i]
            out = out + _nonlocal_value(term, y, w, kw, self.n_points)
        if isinstance(out, float):
            raise ValueError(f"the action has no operator contributing to the {self.order}-pt function.")
        return out


# --------------------------------------------------------------------------- nonlocal ---


def _nonlocal_nodes(net, xs, cutoffs, n_nodes):
    """Per-cutoff tensor-rule nodes for the nonlocal quartic: y (C, Q, d), w (C, Q), K_W (C, P, Q).

    Cube-polar rule with radial panels [0, 1/4, 1, 4, 16, ...] (clamped at Λ) and `n_nodes`
    Gauss–Legendre nodes per panel and per face coordinate.
    """
    d = xs.shape[1]
    opts = QuadratureOptions(n_s=n_nodes, n_face=n_nodes, face_breaks=(0.0,), kink_levels=0)
    u, wu = _face_rule(d, np.zeros((0, d)), opts)
    cmax = None if isinstance(cutoffs, jax.core.Tracer) else float(np.max(np.asarray(cutoffs)))
    top = 4.0 * max(cmax or 1e5, 1.0)
    breaks = [0.0, 0.25]
    while breaks[-1] < top:
        breaks.append(4.0 * breaks[-1])
    breaks = np.array(breaks)

    def one(lam):
        y, w, valid = _box_nodes_for_cut(lam, jnp.asarray(u), jnp.asarray(wu), breaks, n_nodes, d)
        kw = net.kernel_w(jnp.asarray(xs), y)
        return y, jnp.where(valid, w, jnp.nan), kw

    return jax.vmap(one)(cutoffs)


def nonlocal_tensor(term: NonlocalQuartic, y, w, kw):
    """N[a,b,c,d] = ∫ λ(y1..y4) K_W(x_a,y1) K_W(x_b,y2) K_W(x_c,y3) K_W(x_d,y4) on a tensor rule.

    **Arguments:** `term`: the `NonlocalQuartic`; `y` `(C, Q, d)`, `w` `(C, Q)` the rule nodes and
    weights per cutoff; `kw` `(C, P, Q)` the vertex propagators at the nodes.

    **Returns:** `(C, P, P, P, P)`.
    """
    fn = term.fn

    def per_cut(yc, wc, kc):
        a = kc * wc[None]  # (P, Q) weighted
        f = lambda y1, y2, y3, y4: fn(term.params, y1, y2, y3, y4)  # noqa: E731
        lam3 = jax.vmap(jax.vmap(jax.vmap(f, (None, None, None, 0)), (None, None, 0, None)),
                        (None, 0, None, None))

        def body(carry, q1):
            lt = lam3(yc[q1], yc, yc, yc)  # (Q, Q, Q) over (y2, y3, y4)
            contrib = jnp.einsum("jkl,bj,ck,dl->bcd", lt, a, a, a)
            return carry + a[:, q1][:, None, None, None] * contrib[None], None

        p = kc.shape[0]
        init = jnp.zeros((p, p, p, p))
        out, _ = jax.lax.scan(body, init, jnp.arange(yc.shape[0]))
        return out

    return jax.vmap(per_cut)(y, w, kw)


def _nonlocal_value(term, y, w, kw, n_points):
    n = nonlocal_tensor(term, y, w, kw)
    t = sorted_tuples(n_points, 4)
    (vt,) = {term.vertex}
    val = 0.0
    for diag in enumerate_diagrams(4, (vt,)):
        # external a sits at site s_a: the integral is N with axis s ↔ the external at site s
        labels = [None] * 4
        for a, (_, s) in enumerate(diag.externals):
            labels[s] = a
        val = val + float(diag.coefficient) * _gather(n, t, labels)
    return val


# ------------------------------------------------------------------------- public API ---


def connected_correlator(action: Action, xs, cutoffs, order: int, *, exchange: bool = True,
                         options: QuadratureOptions | None = None, full: bool = False) -> jax.Array:
    """The tree-level connected n-point function of `action` at the cutoffs (physics.md §6).

    **Arguments:**

    - `action`: an `Action`.
    - `xs`: inputs `(P, d_in)` (must match the network's d_in).
    - `cutoffs`: cutoffs Λ > 0 `(n_cut,)` (JAX array; differentiable).
    - `order`: 4 or 6.
    - `exchange`: include the λ² exchange diagrams in the 6-pt function.
    - `options`: quadrature options.
    - `full`: return the full symmetric `(n_cut, P, ..., P)` array instead of sorted tuples.

    **Returns:** float64 `(n_cut, n_tuples)` (or full).
    """
    pred = Predictor(action, xs, cutoffs, order, exchange=exchange, options=options)
    out = pred(action)
    return to_full(out, pred.n_points, order) if full else out


def design_matrix(action: Action, xs, cutoffs, order: int = 4, **kw):
    """The design matrix A = ∂G_n,c/∂g of the action's couplings (physics.md §7).

    For first-order diagrams G = A g exactly; with the λ² exchange A depends on g.

    **Arguments:** as `connected_correlator`; the couplings are the inexact-array leaves of
    `action.interactions` in the order of `action.coupling_names`.

    **Returns:** `(A, names)`: A float64 `(n_cut, n_tuples, n_couplings)`, names a tuple of str.
    """
    pred = Predictor(action, xs, cutoffs, order, **kw)
    return _design_jacobian(pred, action, action.flat_couplings()), action.coupling_names


@eqx.filter_jit
def _design_jacobian(pred, action, flat):
    """∂G/∂g by forward-mode autodiff, compiled once per structure and shape (eagerly, every
    operation of the predictor was its own small XLA program)."""
    return jax.jacfwd(lambda g: pred(action.with_flat_couplings(g)))(flat)


def _match_quartic(delta_g4, i4, weights=None) -> jax.Array:
    """λ(Λ) matched to ΔG4 by weighted least squares over all unique 4-tuples (physics.md §7).

        λ(Λ) = −Σ_t w_t ΔG4_t I4_t(Λ) / (24 Σ_t w_t I4_t(Λ)²)

    (for one tuple this is λ = −G4_c / (24 I4)).

    **Arguments:**

    - `delta_g4`: G4 − G4_GP on the sorted 4-tuples, `(n_t,)` (or `(n_cut, n_t)`).
    - `i4`: the vertex integrals I4(Λ) `(n_cut, n_t)`.
    - `weights`: optional `(n_t,)` weights (e.g. 1/stderr² for Monte Carlo input).

    **Returns:** λ(Λ), float64 `(n_cut,)`.
    """
    i4 = jnp.asarray(i4)
    dg = jnp.broadcast_to(jnp.asarray(delta_g4, dtype=jnp.float64), i4.shape)
    w = jnp.ones(i4.shape[-1]) if weights is None else jnp.asarray(weights, dtype=jnp.float64)
    return -jnp.sum(w * dg * i4, axis=-1) / (24.0 * jnp.sum(w * i4 * i4, axis=-1))
