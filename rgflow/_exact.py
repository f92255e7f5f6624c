"""Exact correlators: the GP (Wick) limit and finite width (physics.md §3–4).

f − b1 is a sum of N i.i.d. neuron terms √(σ_W²/N) w φ(z), w ~ N(0, 1), so its cumulants are
κ_m(f) = N^{1−m/2} κ_m(σ_W w φ) exactly. With C_ab = E[φ_a φ_b], M4, M6 the single-neuron
moments (`rgflow._neuron`):

    G4_c = (σ_W⁴/N)  [ 3 M4 − Σ_3 C C ]
    G6_c = (σ_W⁶/N²) [ 15 M6 − 3 Σ_{15 (ef)} M4(rest) C_ef + 2 Σ_{15 pairings} C C C ]
    G4   = Σ_3 K K + G4_c,   G6 = Σ_15 K K K + Σ_{15 (ab)} K_ab G4_c(rest) + G6_c,

and G2 = K at every width. The accuracy is that of the single-neuron moments (see
`rgflow._neuron`): rounding for Gauss-net, ~1e-13 for Erf and for ReLU with d_in + 1 <= 3
feature dimensions, ~1e-7 for ReLU in 4 feature dimensions.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._nets import AbstractNet
from ._neuron import neuron_moments
from ._tuples import sorted_tuples, splits, to_full, wick_sum
from ._validate import check_finite_output, check_inputs, check_one_layer, check_order

_GP_ORDERS = (2, 4, 6, 8)
_EXACT_ORDERS = (2, 4, 6)


def _check_net(net) -> AbstractNet:
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network (ErfNet, ReLUNet, ...), got {net!r}.")
    return net


def _output(values, n_points: int, order: int, full: bool):
    values = check_finite_output(
        values, f"the exact {order}-point result",
        "it overflows float64 for these inputs, σ_W or σ_b (e.g. Gauss-net moments grow like "
        "exp(n² S_xx / 2)); use smaller |x| or σ")
    return _to_full(values, n_points, order) if full else values


# The assembly of correlators from kernels and neuron moments is pure indexing and arithmetic:
# compiled once per (points, order) instead of dozens of eagerly dispatched gathers and products
# (each a separate XLA program of ~2 MB on CPU).
@functools.partial(jax.jit, static_argnums=(1, 2))
def _to_full(values, n_points: int, order: int):
    return to_full(values, n_points, order)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _gp_tuples(k, n_points: int, order: int):
    """Σ_pairings Π K on the sorted tuples."""
    return wick_sum(k, sorted_tuples(n_points, order))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _connected_from_moments(scale, m2, m4, m6, n_points: int, order: int):
    """G4_c = scale (3 M4 − Σ_pairings Π C) or G6_c = scale × (the bracket of physics.md §4),
    from the neuron moments on the sorted tuples (m6 unused for order 4)."""
    c = to_full(m2, n_points, 2)
    if order == 4:
        return scale * (3 * m4 - wick_sum(c, sorted_tuples(n_points, 4)))
    return scale * _neuron_connected(c, to_full(m4, n_points, 4), m6,
                                     sorted_tuples(n_points, 6))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _moment_from_parts(k, g4c, g6c, n_points: int, order: int):
    """G4 = G4_GP + G4_c or G6 = G6_GP + Σ_15 K G4_c + G6_c on the sorted tuples."""
    t = sorted_tuples(n_points, order)
    if order == 4:
        return wick_sum(k, t) + g4c
    g4c_full = to_full(g4c, n_points, 4)
    mixed = 0.0
    for pair, rest in splits(6, 2):
        mixed = mixed + k[t[:, pair[0]], t[:, pair[1]]] * g4c_full[
            t[:, rest[0]], t[:, rest[1]], t[:, rest[2]], t[:, rest[3]]
        ]
    return wick_sum(k, t) + mixed + g6c


def gp_correlator(
    net: AbstractNet, xs: Float[Array, "P d"], order: int, *, full: bool = True
) -> Float[Array, "..."]:
    """The infinite-width (GP) n-point function: the Wick sum of products of K (physics.md §3).

    G_n,GP(x_1..x_n) = Σ_{pairings} Π K(x_a, x_b), with (n−1)!! pairings.

    **Arguments:**

    - `net`: the network, whose GP kernel is K.
    - `xs`: inputs of shape `(P, d_in)`.
    - `order`: an even n in {2, 4, 6, 8} (odd correlators vanish by f → −f).
    - `full`: return the full symmetric `(P,)*n` array (default) or the values on the
      index-sorted tuples `rgflow.sorted_tuples(P, n)`.

    **Returns:** a float64 array.
    """
    net = _check_net(net)
    xs = check_inputs(xs, net.d_in)
    order = check_order("order", order, _GP_ORDERS)
    k = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
    return _output(_gp_tuples(k, xs.shape[0], order), xs.shape[0], order, full)


def _neuron_connected(c, m4_full, m6, t6):
    """The bracket of G6_c on the 6-tuples t6 (physics.md §4)."""
    four = 0.0
    for pair, rest in splits(6, 2):
        four = four + c[t6[:, pair[0]], t6[:, pair[1]]] * m4_full[
            t6[:, rest[0]], t6[:, rest[1]], t6[:, rest[2]], t6[:, rest[3]]
        ]
    return 15 * m6 - 3 * four + 2 * wick_sum(c, t6)


def exact_connected(
    net: AbstractNet, xs: Float[Array, "P d"], order: int, *, full: bool = True
) -> Float[Array, "..."]:
    """The exact connected n-point function at the finite width `net.width` (physics.md §4).

    Order 2 gives K (exact at every N); orders 4 and 6 the formulas in the module docstring,
    exactly ∝ 1/N and 1/N².

    **Arguments:**

    - `net`: the network (its width N is used).
    - `xs`: inputs of shape `(P, d_in)`.
    - `order`: 2, 4 or 6.
    - `full`: full symmetric array (default) or values on the sorted tuples.

    **Returns:** a float64 array.
    """
    net = check_one_layer(_check_net(net), "exact_connected")
    xs = check_inputs(xs, net.d_in)
    order = check_order("order", order, _EXACT_ORDERS)
    p = xs.shape[0]
    if order == 2:
        k = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
        return _output(k[tuple(sorted_tuples(p, 2).T)], p, 2, full)
    return _output(_connected_tuples(net, xs, order), p, order, full)


def _neuron_moment_set(net: AbstractNet, xs: np.ndarray, order: int):
    """(M2, M4, M6) on the sorted tuples; M6 only for order 6 (else M4 stands in, unused)."""
    m2, m4 = neuron_moments(net, xs, 2), neuron_moments(net, xs, 4)
    return m2, m4, (neuron_moments(net, xs, 6) if order == 6 else m4)


def _connected_tuples(net: AbstractNet, xs: np.ndarray, order: int, moments=None) -> jnp.ndarray:
    m2, m4, m6 = _neuron_moment_set(net, xs, order) if moments is None else moments
    scale = jnp.asarray(net.sigma_w**order / net.width ** (order // 2 - 1), jnp.float64)
    return _connected_from_moments(scale, m2, m4, m6, xs.shape[0], order)


def exact_moment(
    net: AbstractNet, xs: Float[Array, "P d"], order: int, *, full: bool = True
) -> Float[Array, "..."]:
    """The exact full moment G_n = E[f(x_1)...f(x_n)] at the finite width `net.width`.

    G2 = K;  G4 = G4_GP + G4_c;  G6 = G6_GP + Σ_{15 (ab)} K_ab G4_c(rest) + G6_c
    (physics.md §4; the full K, output bias included, on the disconnected lines).

    **Arguments:** as `exact_connected`.

    **Returns:** a float64 array.
    """
    net = check_one_layer(_check_net(net), "exact_moment")
    xs = check_inputs(xs, net.d_in)
    order = check_order("order", order, _EXACT_ORDERS)
    p = xs.shape[0]
    k = net.kernel(jnp.asarray(xs), jnp.asarray(xs))
    t = sorted_tuples(p, order)
    if order == 2:
        return _output(k[t[:, 0], t[:, 1]], p, 2, full)
    moments = _neuron_moment_set(net, xs, order)  # once for G4_c and G6_c
    g4c = _connected_tuples(net, xs, 4, moments)
    g6c = _connected_tuples(net, xs, 6, moments) if order == 6 else g4c
    g6 = _moment_from_parts(k, g4c, g6c, p, order)
    return _output(g6, p, order, full)
