"""Deep networks: L hidden layers of width n, the layer recursion of kernels and 4-pt vertices
(physics.md §11; Roberts–Yaida–Hanin, *The Principles of Deep Learning Theory*, ch. 4–5).

    z⁽¹⁾ = W⁽¹⁾ x + b⁽¹⁾,                 W⁽¹⁾ ~ N(0, σ_W²/d_in)
    z⁽ℓ⁺¹⁾ = W⁽ℓ⁺¹⁾ φ(z⁽ℓ⁾) + b⁽ℓ⁺¹⁾,     W⁽ℓ⁺¹⁾ ~ N(0, σ_W²/n),   b ~ N(0, σ_b²),

output f = z⁽ᴸ⁺¹⁾ (one component); L = 1 is the single-hidden-layer net of physics.md §2 with N = n.

**Stochastic metric.** Given layer ℓ, the neurons z⁽ℓ⁺¹⁾_i are i.i.d. Gaussian with the random
covariance Ĝ⁽ℓ⁺¹⁾_ab = σ_b² + (σ_W²/n) Σ_j φ(z⁽ℓ⁾_j(x_a)) φ(z⁽ℓ⁾_j(x_b)). Write its mean
E[Ĝ⁽ℓ⁾] = K⁽ℓ⁾ + K1⁽ℓ⁾/n and its covariance n Cov(Ĝ_p, Ĝ_q) = V⁽ℓ⁾_pq + O(1/n), p, q running over
the index-sorted pairs (ab) (the independent entries of the symmetric matrix). Then

    E[z_a z_b] = E[Ĝ_ab],     G4_c(abcd) = (1/n) [V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)].

With F_ab(G) = E[φ(z_a)φ(z_b)] for (z_a, z_b) ~ N(0, G) (a function of G_aa, G_ab, G_bb),
D_ab^p = ∂F_ab/∂G_p, H_ab^pq = ∂²F_ab/∂G_p∂G_q, and ⟨·⟩ the Gaussian average at K⁽ℓ⁾:

    K⁽ℓ⁺¹⁾_ab   = σ_b² + σ_W² F_ab(K⁽ℓ⁾)
    V⁽ℓ⁺¹⁾_(ab)(cd) = σ_W⁴ [⟨φ_a φ_b φ_c φ_d⟩ − ⟨φ_a φ_b⟩⟨φ_c φ_d⟩] + σ_W⁴ Σ_pq D_ab^p D_cd^q V⁽ℓ⁾_pq
    K1⁽ℓ⁺¹⁾_ab  = σ_W² [Σ_p D_ab^p K1⁽ℓ⁾_p + ½ Σ_pq H_ab^pq V⁽ℓ⁾_pq]

with K⁽¹⁾ = σ_b² + σ_W² x·x'/d_in, V⁽¹⁾ = K1⁽¹⁾ = 0 (layer 1 is exactly Gaussian). The first term
of V is the same-neuron covariance of φφ; the second is the covariance of different neurons j ≠ k,
which are correlated only through the fluctuation of the metric of the layer below (linear
response, first order in ΔĜ). Only 2-d Gaussian integrals (F, D, H) and one 4-d integral
⟨φφφφ⟩ per layer are needed. At L = 1 the recursion is exact: V⁽²⁾ gives §4's
(σ_W⁴/N)[3M4 − ΣCC], and K1⁽²⁾ = 0.

**How the integrals are done.** F: closed forms for relu (arc-cosine), erf (arcsine with
S → K⁽ℓ⁾) and linear; a 100 × 100 Gauss–Legendre product rule otherwise. D, H: analytic for relu
and linear, autodiff of the closed form for erf, and Price's theorem (∂/∂G_ab ⟨g_a h_b⟩ =
⟨g'_a h'_b⟩, ∂/∂G_aa = ½ ∂²_a) with the same product rule otherwise (so generic activations must
be smooth, C⁴). ⟨φφφφ⟩: Wick for linear; for the rest the split spherical rules of
`rgflow._neuron` on a factor of K⁽ℓ⁾ restricted to the ≤ 4 distinct inputs of each tuple.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._nets import (
    _ACTIVATIONS,
    AbstractNet,
    ErfNet,
    GenericNet,
    ReLUNet,
    _normal_rule,
    activation_name,
    check_activation,
    standard_normals,
)
from ._tuples import sorted_tuples
from ._validate import check_inputs, check_key, check_order, check_positive_int

_CLOSED = ("relu", "erf", "linear")
_COLLINEAR = 1e-6  # sin θ below which a ReLU pair is treated as exactly collinear


# ============================================================================ the network ===


class DeepNet(AbstractNet):
    """A deep fully connected network: `depth` = L hidden layers of `width` = n (physics.md §11).

        z⁽¹⁾ = W⁽¹⁾x + b⁽¹⁾ (W⁽¹⁾ ~ N(0, σ_W²/d_in)),  z⁽ℓ⁺¹⁾ = W⁽ℓ⁺¹⁾φ(z⁽ℓ⁾) + b⁽ℓ⁺¹⁾
        (W ~ N(0, σ_W²/n)),  b ~ N(0, σ_b²),  f = z⁽ᴸ⁺¹⁾.

    `depth = 1` is exactly the one-hidden-layer net of physics.md §2 (`net.one_layer()`), and is
    sampled from the same random numbers.

    **Fields:**

    - `activation`: a name from `rgflow.available_activations()` or an elementwise callable
      (closed forms for "relu", "erf", "linear"; quadrature otherwise).
    - `width`: n >= 1 (every hidden layer).
    - `depth`: L >= 1 hidden layers.
    - `d_in`: input dimension.
    - `sigma_w`, `sigma_b`: σ_W, σ_b >= 0 (default σ_b: 0 for relu, 1 otherwise, as the
      one-layer nets).

    A `DeepNet` is an `AbstractNet`, so `measure`, `gp_correlator`, `vertex_integrals` and what is
    built on the kernel accept it; the single-hidden-layer formulas (`exact_connected`,
    `exact_moment`, `neuron_moments`, `measure_neurons`, `measure_conditional`) refuse it and
    name `rgflow.perturbative_connected`.
    """

    activation: str | Callable = eqx.field(static=True, kw_only=True, default="relu")
    depth: int = eqx.field(static=True, kw_only=True, default=1)
    sigma_b: float = eqx.field(static=True, kw_only=True, default=None)

    is_deep: ClassVar[bool] = True

    def __post_init__(self):
        if self.sigma_b is None:
            self.sigma_b = 0.0 if self.activation == "relu" else 1.0
        for name in ("sigma_w", "sigma_b"):  # NumPy scalars → floats (static fields, hashing)
            value = getattr(self, name)
            if isinstance(value, np.floating | np.integer):
                setattr(self, name, value.item())

    def __check_init__(self):
        check_positive_int("depth", self.depth)
        check_activation(self.activation)

    # --------------------------------------------------------------------------- naming ---
    @property
    def activation_name(self) -> str:
        return activation_name(self.activation)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"deep_{self.activation_name}"

    @property
    def n_params(self) -> int:
        """Parameters per network: n(d_in + 1) + (L − 1)(n² + n) + n + 1."""
        n, d = self.width, self.d_in
        return n * (d + 1) + (self.depth - 1) * (n * n + n) + n + 1

    def one_layer(self) -> AbstractNet:
        """The equivalent single-hidden-layer net (depth 1 only): `ReLUNet`, `ErfNet` or
        `GenericNet` with the same width, σ's and d_in."""
        if self.depth != 1:
            raise ValueError(f"`one_layer` needs depth 1, this net has depth {self.depth}.")
        kw = dict(width=self.width, d_in=self.d_in, sigma_w=self.sigma_w, sigma_b=self.sigma_b)
        if self.activation == "relu":
            return ReLUNet(**kw)
        if self.activation == "erf":
            return ErfNet(**kw)
        return GenericNet(activation=self.activation, **kw)

    # ---------------------------------------------------------------------------- φ ---
    def activation_fn(self, z):
        fn = _ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        return fn(z)

    def phi(self, z, xs, *, axis=-1):
        return self.activation_fn(z)

    @property
    def _kind(self) -> str:
        return self.activation if self.activation in _CLOSED else "generic"

    # ------------------------------------------------------------------------ kernel ---
    def kernel_w(self, x, y):
        """K_W = K⁽ᴸ⁺¹⁾ − σ_b² = σ_W² F(K⁽ᴸ⁾), by the layer recursion (physics.md §11)."""
        x, y = self._points(x, y)  # real (complex refused), (P, d_in)
        sw2, sb2 = self.sigma_w**2, self.sigma_b**2
        a = sb2 + sw2 * jnp.sum(x * x, axis=-1) / self.d_in
        b = sb2 + sw2 * jnp.sum(y * y, axis=-1) / self.d_in
        g = self.covariance(x, y)
        for _ in range(self.depth - 1):
            g = sb2 + sw2 * kernel_map(self, a[:, None], g, b[None, :])
            a = sb2 + sw2 * diagonal_map(self, a)
            b = sb2 + sw2 * diagonal_map(self, b)
        return sw2 * kernel_map(self, a[:, None], g, b[None, :])

    # -------------------------------------------------------------------------- sampling ---
    def sample(self, xs, n_nets: int, *, key: PRNGKeyArray, start: int = 0):
        """Outputs `(n_nets, P)` of independent random deep networks; network g (global index
        `start + i`) draws all its parameters from `fold_in(key, g)` (see `sample_deep_outputs`),
        so these are the networks `rgflow.measure` averages over."""
        n_nets = check_positive_int("n_nets", n_nets)
        xs = check_inputs(xs, self.d_in)
        key = check_key(key)
        index = start + jnp.arange(n_nets, dtype=jnp.uint32)
        return sample_deep_outputs(self, jnp.asarray(xs), key, index, jnp.float64)


def sample_deep_outputs(net: DeepNet, xs, key, index, dtype):
    """Outputs `(B, P)` of the deep networks with global indices `index`, drawn in `dtype`.

    At depth 1 these are the networks of the equivalent one-layer net (`net.one_layer()`, drawn by
    its sampler, `rgflow._nets.network_outputs`). At depth L > 1 network g draws one vector of
    `net.n_params` standard normals from `fold_in(key, g)`, read as W⁽¹⁾ (n × d_in), b⁽¹⁾, then
    W⁽ℓ⁾ (n × n), b⁽ℓ⁾ for ℓ = 2..L, then W⁽ᴸ⁺¹⁾ (n), b⁽ᴸ⁺¹⁾. Neurons are
    last, `(B, P, n)`, and layers are batched contractions. Batches are split into chunks of
    ≲ 2²⁰ random numbers (a `lax.map`), so memory does not grow with the batch.
    """
    if net.depth == 1:
        from ._nets import network_outputs  # noqa: PLC0415

        return network_outputs(net.one_layer(), jnp.asarray(xs, dtype), key, index)
    n, d, depth = net.width, net.d_in, net.depth
    n_par = net.n_params
    xs = xs.astype(dtype)
    sw, sb = net.sigma_w, net.sigma_b

    def chunk(idx):
        r = jax.vmap(lambda g: standard_normals(jax.random.fold_in(key, g), n_par, dtype))(idx)
        w = r[:, : n * d].reshape(-1, n, d) * (sw / math.sqrt(d))
        pos = n * d
        z = w[:, None, :, 0] * xs[None, :, None, 0]
        for k in range(1, d):
            z = z + w[:, None, :, k] * xs[None, :, None, k]
        z = z + (r[:, pos : pos + n] * sb)[:, None, :]  # (c, P, n)
        pos += n
        # the hidden layers ℓ = 2..L as one scan over their stacked (W⁽ℓ⁾, b⁽ℓ⁾) slices of r:
        # one compiled layer, so compile time does not grow with the depth (same numbers and
        # the same operations per layer as an unrolled loop)
        hidden = (depth - 1) * (n * n + n)
        layers = jnp.moveaxis(r[:, pos : pos + hidden].reshape(-1, depth - 1, n * n + n), 1, 0)

        def layer(z, par):
            w = par[:, : n * n].reshape(-1, n, n) * (sw / math.sqrt(n))
            z = jnp.einsum("cpj,cij->cpi", net.activation_fn(z), w) + (
                par[:, n * n :] * sb)[:, None, :]
            return z, None

        z, _ = jax.lax.scan(layer, z, layers)
        pos += hidden
        w = r[:, pos : pos + n] * (sw / math.sqrt(n))
        return jnp.sum(net.activation_fn(z) * w[:, None, :], axis=-1) + (r[:, -1] * sb)[:, None]

    b = index.shape[0]
    size = max(1, min(b, 2**20 // n_par))
    if size >= b:
        return chunk(index)
    m = -(-b // size)
    padded = jnp.concatenate([index, jnp.broadcast_to(index[:1], (m * size - b,))])
    out = jax.lax.map(chunk, padded.reshape(m, size))
    return out.reshape(m * size, -1)[:b]


# ============================================================= 2-d Gaussian expectations ===
#
# F(A, G, B) = E[φ(z_a)φ(z_b)], (z_a, z_b) ~ N(0, [[A, G], [G, B]]), broadcasting; the
# diagonal map F1(A) = E[φ(z)²], z ~ N(0, A).


def _relu_map(a, g, b):
    s = jnp.sqrt(jnp.maximum(a * b - g * g, 0.0))
    theta = jnp.arctan2(s, g)
    return (s + (jnp.pi - theta) * g) / (2 * jnp.pi)


def _erf_map(a, g, b):
    return (2 / jnp.pi) * jnp.arcsin(2 * g / jnp.sqrt((1 + 2 * a) * (1 + 2 * b)))


_RULE_U, _RULE_W = _normal_rule(100)


def _expect2(g_fn, h_fn, a, g, b):
    """E[g(z_a) h(z_b)] by the 100 × 100 product rule: z_a = √A u1, z_b = (G/√A)u1 + c u2."""
    u, w = jnp.asarray(_RULE_U), jnp.asarray(_RULE_W)
    a, g, b = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float64) for v in (a, g, b)))
    ra = jnp.sqrt(a)
    safe = jnp.where(ra > 0, ra, 1.0)
    beta = jnp.where(ra > 0, g / safe, 0.0)
    c = jnp.sqrt(jnp.maximum(b - beta**2, 0.0))
    inner = jnp.einsum("...ij,j->...i", h_fn(beta[..., None, None] * u[:, None]
                                              + c[..., None, None] * u[None, :]), w)
    return jnp.einsum("...i,...i,i->...", g_fn(ra[..., None] * u), inner, w)


def _expect1(g_fn, a):
    """E[g(z)], z ~ N(0, A)."""
    u, w = jnp.asarray(_RULE_U), jnp.asarray(_RULE_W)
    a = jnp.asarray(a, jnp.float64)
    return jnp.einsum("...i,i->...", g_fn(jnp.sqrt(a)[..., None] * u), w)


def _derivatives(net: DeepNet, k: int):
    """[φ, φ', …, φ⁽ᵏ⁾] as elementwise functions (autodiff of the activation)."""
    f = lambda z: net.activation_fn(z)  # noqa: E731
    out = [f]
    for _ in range(k):
        f = jax.grad(f)
        out.append(jnp.vectorize(f))
    return out


def kernel_map(net: DeepNet, a, g, b):
    """F(A, G, B) = E[φ(z_a)φ(z_b)] (broadcasting), closed form or quadrature."""
    kind = net._kind
    if kind == "relu":
        return _relu_map(a, g, b)
    if kind == "erf":
        return _erf_map(a, g, b)
    if kind == "linear":
        return jnp.broadcast_to(g, jnp.broadcast_shapes(jnp.shape(a), jnp.shape(g), jnp.shape(b)))
    phi = net.activation_fn
    return _expect2(phi, phi, a, g, b)


def diagonal_map(net: DeepNet, a):
    """F1(A) = E[φ(z)²], z ~ N(0, A)."""
    kind = net._kind
    if kind == "relu":
        return a / 2
    if kind == "erf":
        return (2 / jnp.pi) * jnp.arcsin(2 * a / (1 + 2 * a))
    if kind == "linear":
        return a
    return _expect1(lambda z: net.activation_fn(z) ** 2, a)


def _pair_derivatives(net: DeepNet, a, g, b):
    """First and second derivatives of F w.r.t. (G_aa, G_ab, G_bb) for pairs of distinct inputs
    (1-d arrays a, g, b of length T): D `(T, 3)`, H `(T, 3, 3)`."""
    kind = net._kind
    a, g, b = (np.asarray(v, np.float64) for v in (a, g, b))
    t = a.shape[0]
    if kind == "linear":
        return np.tile([0.0, 1.0, 0.0], (t, 1)), np.zeros((t, 3, 3))
    if kind == "relu":
        s = np.sqrt(np.maximum(a * b - g * g, 0.0))
        theta = np.arctan2(s, g)
        pi = np.pi
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.stack([s / (4 * pi * a), (pi - theta) / (2 * pi), s / (4 * pi * b)], axis=1)
            haa = (2 * g * g - a * b) / (8 * pi * a * a * s)
            hbb = (2 * g * g - a * b) / (8 * pi * b * b * s)
            hgg = 1 / (2 * pi * s)
            hag = -g / (4 * pi * a * s)
            hbg = -g / (4 * pi * b * s)
            hab = 1 / (8 * pi * s)
        h = np.stack([np.stack([haa, hag, hab], -1), np.stack([hag, hgg, hbg], -1),
                      np.stack([hab, hbg, hbb], -1)], -2)
        # exactly collinear pairs (σ_b = 0 and parallel inputs, or duplicated inputs) stay
        # collinear at every layer, where F = G/2 is linear: no second-order term
        collinear = s <= _COLLINEAR * np.sqrt(a * b)
        h = np.where(collinear[:, None, None], 0.0, h)
        return d, h
    if kind == "erf":
        # F = (2/π) arcsin q, q = c0 G, c0 = 2/√((1+2A)(1+2B)); H = F''(q) ∇q∇qᵀ + F'(q) ∇∇q
        c0 = 2 / np.sqrt((1 + 2 * a) * (1 + 2 * b))
        q = c0 * g
        f1 = (2 / np.pi) / np.sqrt(1 - q * q)
        f2 = (2 / np.pi) * q / (1 - q * q) ** 1.5
        grad = np.stack([-q / (1 + 2 * a), c0, -q / (1 + 2 * b)], axis=1)
        hq = np.zeros((t, 3, 3))
        hq[:, 0, 0] = 3 * q / (1 + 2 * a) ** 2
        hq[:, 2, 2] = 3 * q / (1 + 2 * b) ** 2
        hq[:, 0, 2] = hq[:, 2, 0] = q / ((1 + 2 * a) * (1 + 2 * b))
        hq[:, 0, 1] = hq[:, 1, 0] = -c0 / (1 + 2 * a)
        hq[:, 2, 1] = hq[:, 1, 2] = -c0 / (1 + 2 * b)
        h = f2[:, None, None] * grad[:, :, None] * grad[:, None, :] + f1[:, None, None] * hq
        return f1[:, None] * grad, h
    p = _derivatives(net, 4)
    e = lambda i, j: np.asarray(_expect2(p[i], p[j], a, g, b))  # noqa: E731
    d = np.stack([0.5 * e(2, 0), e(1, 1), 0.5 * e(0, 2)], axis=1)
    e22 = e(2, 2)
    haa, hbb, hgg = 0.25 * e(4, 0), 0.25 * e(0, 4), e22
    hag, hbg, hab = 0.5 * e(3, 1), 0.5 * e(1, 3), 0.25 * e22
    h = np.stack([np.stack([haa, hag, hab], -1), np.stack([hag, hgg, hbg], -1),
                  np.stack([hab, hbg, hbb], -1)], -2)
    return d, h


def _diagonal_derivatives(net: DeepNet, a):
    """F1'(A), F1''(A) for 1-d arrays A."""
    kind = net._kind
    a = np.asarray(a, np.float64)
    if kind == "linear":
        return np.ones_like(a), np.zeros_like(a)
    if kind == "relu":
        return np.full_like(a, 0.5), np.zeros_like(a)
    if kind == "erf":
        # F1 = (2/π) arcsin(2A/(1+2A)): F1' = (4/π)/((1+2A)√(1+4A))
        u, v = 1 + 2 * a, 1 + 4 * a
        return (4 / np.pi) / (u * np.sqrt(v)), -(8 / np.pi) * (1 / (u**2 * np.sqrt(v)) + 1 / (u * v**1.5))
    p = _derivatives(net, 4)
    e = lambda fn: np.asarray(_expect1(fn, a))  # noqa: E731
    d1 = e(lambda z: p[1](z) ** 2 + p[0](z) * p[2](z))
    d2 = 0.5 * e(lambda z: p[0](z) * p[4](z) + 4 * p[1](z) * p[3](z) + 3 * p[2](z) ** 2)
    return d1, d2


# =========================================================== 4-d Gaussian expectations ===
#
# ⟨φ_a φ_b φ_c φ_d⟩ at a hidden layer ℓ >= 2 by nested quadrature: for each set of k <= 4 distinct
# inputs, z = L u with L the (semi-definite) Cholesky factor and u ~ N(0, I_k); the outer k − 1
# variables u_1..u_{k−1} by Gauss–Legendre on [−R, R] split where the argument of φ at that level
# crosses 0 (the ReLU kink; the steep middle of erf/tanh-like φ), the innermost in closed form
# where one exists (relu: every power; erf: the first power, E[erf(μ + s u)] = erf(μ/√(1+2s²))).
# At layer 1 the one-layer spherical rules of `rgflow._neuron` (exact one-layer moments) are used.

_R = 8.5  # the Gaussian mass beyond 8.5 σ is ~1e-17
_M_SEG = 24  # Gauss–Legendre nodes per segment


def _gl_nodes(lo, hi, m):
    """Nodes and weights (times the standard normal density) of m-point Gauss–Legendre on
    [lo, hi] (arrays broadcast), shape (..., m)."""
    t, w = np.polynomial.legendre.leggauss(m)
    half = (hi - lo)[..., None] / 2
    u = lo[..., None] + half * (t + 1)
    return u, half * w * np.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)


def _semidefinite_cholesky(c: np.ndarray) -> np.ndarray:
    """Lower-triangular L `(S, k, k)` with L Lᵀ = C for PSD C `(S, k, k)`; a zero conditional
    variance (z_i a linear function of z_<i) gives a zero column."""
    s, k, _ = c.shape
    low = np.zeros_like(c)
    for i in range(k):
        r = c[:, i, i] - np.sum(low[:, i, :i] ** 2, axis=1)
        ok = r > 1e-12 * np.maximum(c[:, i, i], 1e-300)
        d = np.sqrt(np.where(ok, r, 1.0))
        low[:, i, i] = np.where(ok, d, 0.0)
        for j in range(i + 1, k):
            val = (c[:, j, i] - np.sum(low[:, j, :i] * low[:, i, :i], axis=1)) / d
            low[:, j, i] = np.where(ok, val, 0.0)
    return low


def _relu_power_mean(mu, s, p: int):
    """E[relu(μ + s u)^p], u ~ N(0, 1), s >= 0 (closed form)."""
    from scipy.special import erfc

    pos = s > 0
    ss = np.where(pos, s, 1.0)
    t = -mu / ss
    dens = np.exp(-(t**2) / 2) / math.sqrt(2 * math.pi)
    j = [0.5 * erfc(t / math.sqrt(2)), dens]  # E[u^j 1{u > t}]
    for q in range(2, p + 1):
        j.append(t ** (q - 1) * dens + (q - 1) * j[q - 2])
    val = sum(math.comb(p, q) * mu ** (p - q) * ss**q * j[q] for q in range(p + 1))
    return np.where(pos, val, np.maximum(mu, 0.0) ** p)


def _nested_moments(net: DeepNet, cov: np.ndarray, powers: tuple) -> np.ndarray:
    """E[Π_i φ(z_i)^{p_i}] for z ~ N(0, cov[s]) `(S, k, k)` (module comment above), in chunks of
    sets so that at most ~2·10⁶ nodes are live."""
    k = len(powers)
    closed = net._kind == "relu" or (net._kind == "erf" and powers[-1] == 1)
    n_num = k - 1 if closed else k
    per_set = (2 * _M_SEG) ** n_num
    size = max(1, 2_000_000 // per_set)
    return np.concatenate([_nested_chunk(net, cov[i : i + size], powers, closed)
                           for i in range(0, cov.shape[0], size)])


def _nested_chunk(net, cov, powers, closed):
    k = len(powers)
    low = _semidefinite_cholesky(cov)
    n_num = k - 1 if closed else k
    n_sets = cov.shape[0]
    us = np.zeros((n_sets, 1, 0))
    w = np.ones((n_sets, 1))
    for lev in range(n_num):
        # split u_lev where the conditional mean of every z_i, i >= lev, crosses 0 (the ReLU
        # kinks, also of degenerate z_i that depend on u_<=lev only; the steep middle of erf/tanh)
        cuts = []
        for i in range(lev, k):
            # z_i's own centre (i = lev), and that of a later z_i whose remaining conditional
            # spread is narrower than its slope in u_lev (a steep or exact kink in u_lev)
            rest = np.sqrt(np.sum(low[:, i, lev + 1 :] ** 2, axis=1))
            slope = low[:, i, lev]
            need = np.abs(slope) > (0 if i == lev else rest)
            if not need.any():
                continue
            mu_i = np.einsum("snj,sj->sn", us, low[:, i, :lev])
            safe = np.where(need, slope, 1.0)[:, None]
            cuts.append(np.where(need[:, None], -mu_i / safe, -_R))
        lo = np.full((n_sets, us.shape[1]), -_R)
        edges = np.sort(np.clip(np.stack([lo, *cuts, -lo], -1), -_R, _R), axis=-1)
        u_new, w_new = _gl_nodes(edges[..., :-1], edges[..., 1:], _M_SEG)  # (S, N, segs, m)
        u_new = u_new.reshape(n_sets, us.shape[1], -1)
        w_new = w_new.reshape(n_sets, us.shape[1], -1)
        mu = np.einsum("snj,sj->sn", us, low[:, lev, :lev])
        z = mu[..., None] + low[:, lev, lev][:, None, None] * u_new
        w = w[..., None] * w_new * np.asarray(net.activation_fn(jnp.asarray(z))) ** powers[lev]
        us = np.concatenate([np.repeat(us, u_new.shape[-1], axis=1),
                             u_new.reshape(n_sets, -1, 1)], axis=-1)
        w = w.reshape(n_sets, -1)
    if not closed:
        return np.sum(w, axis=1)
    mu = np.einsum("snj,sj->sn", us, low[:, k - 1, : k - 1])
    s = low[:, k - 1, k - 1][:, None] * np.ones_like(mu)
    if net._kind == "relu":
        inner = _relu_power_mean(mu, s, powers[-1])
    else:
        from scipy.special import erf

        inner = erf(mu / np.sqrt(1 + 2 * s**2))
    return np.sum(w * inner, axis=1)


def _hidden_moments4(net: DeepNet, cov: np.ndarray) -> np.ndarray:
    """⟨φ_a φ_b φ_c φ_d⟩ on the sorted 4-tuples for a hidden-layer covariance `cov` `(P, P)`."""
    p = cov.shape[0]
    t4 = sorted_tuples(p, 4)
    if net._kind == "linear":
        c = cov
        return (c[t4[:, 0], t4[:, 1]] * c[t4[:, 2], t4[:, 3]]
                + c[t4[:, 0], t4[:, 2]] * c[t4[:, 1], t4[:, 3]]
                + c[t4[:, 0], t4[:, 3]] * c[t4[:, 1], t4[:, 2]])
    rep, scale = np.arange(p), np.ones(p)
    if net._kind == "relu":
        # exactly collinear inputs stay collinear (relu is positively homogeneous):
        # z_b = c z_a, φ_b = c φ_a; one representative per ray
        for b in range(p):
            for a in range(b):
                kab, kaa, kbb = cov[a, b], cov[a, a], cov[b, b]
                if rep[a] == a and kab > 0 and kab * kab >= (1 - 1e-12) * kaa * kbb:
                    rep[b], scale[b] = a, math.sqrt(kbb / kaa)
                    break
    canon = np.sort(rep[t4], axis=1)
    factor = np.prod(scale[t4], axis=1)
    uniq, inverse = np.unique(canon, axis=0, return_inverse=True)
    values = np.zeros(uniq.shape[0])
    groups: dict = {}
    for i, t in enumerate(uniq):
        dist, counts = np.unique(t, return_counts=True)
        order = np.argsort(-counts, kind="stable")  # smallest power innermost
        groups.setdefault(tuple(counts[order]), []).append((i, dist[order]))
    for powers, items in groups.items():
        rows = np.array([i for i, _ in items])
        sets = np.array([d for _, d in items])
        sub = cov[sets[:, :, None], sets[:, None, :]]
        values[rows] = _nested_moments(net, sub, powers)
    return values[inverse.reshape(-1)] * factor


def _layer_one_moments4(net: DeepNet, xs: np.ndarray) -> np.ndarray:
    """⟨φφφφ⟩ at layer 1 (K⁽¹⁾ = S): the exact one-layer single-neuron moments (physics.md §4)."""
    from ._neuron import neuron_moments

    one = _one_layer_equivalent(net)
    return np.asarray(neuron_moments(one, xs, 4))


def _one_layer_equivalent(net: DeepNet) -> AbstractNet:
    """The one-hidden-layer net with the same activation, σ's and d_in (width irrelevant)."""
    import dataclasses

    return dataclasses.replace(net, depth=1).one_layer()


# ===================================================================== the layer flow ===


class LayerFlow(eqx.Module):
    """Kernels and 4-pt vertices of every layer of a `DeepNet` (physics.md §11).

    Produced by `rgflow.layer_flow`. Layer ℓ = 1..L+1 is index ℓ − 1 of the arrays (ℓ = L + 1 is
    the output).

    **Fields:**

    - `net`, `xs`: the network and the inputs `(P, d_in)`.
    - `kernels`: K⁽ℓ⁾ `(L+1, P, P)`, the infinite-width kernels.
    - `kernel_corrections`: K1⁽ℓ⁾ `(L+1, P, P)`: E[z_a z_b] = K⁽ℓ⁾ + K1⁽ℓ⁾/n + O(1/n²).
    - `pairs`: the index-sorted pairs `(T, 2)` labelling the rows of `vertices`.
    - `vertices`: V⁽ℓ⁾ `(L+1, T, T)`, V_(ab)(cd) = n Cov(Ĝ_ab, Ĝ_cd) at leading order.
    - `chi_parallel`, `chi_perp`: `(L, P)` susceptibilities of the map ℓ → ℓ + 1 at each input,
      χ_∥ = ∂K⁽ℓ⁺¹⁾_aa/∂K⁽ℓ⁾_aa = σ_W² F1'(K_aa), χ_⊥ = σ_W² ⟨φ'(z_a)²⟩ (the response of
      K_ab to a small separation of the inputs).
    - `critical`: True / False whether (σ_b, σ_W) is the critical point of the activation's
      universality class (module `criticality`), None where this module does not know it.
    - `criticality`: the rule used, in words.
    """

    net: DeepNet
    xs: np.ndarray
    kernels: np.ndarray
    kernel_corrections: np.ndarray
    pairs: np.ndarray
    vertices: np.ndarray
    chi_parallel: np.ndarray
    chi_perp: np.ndarray
    critical: bool | None = eqx.field(static=True)
    criticality: str = eqx.field(static=True)

    @property
    def layers(self) -> np.ndarray:
        """ℓ = 1..L+1."""
        return np.arange(1, self.kernels.shape[0] + 1)

    def connected4(self, layer: int | None = None) -> np.ndarray:
        """G4_c⁽ℓ⁾ `(P,)*4` = (1/n)[V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)] of one neuron of layer
        ℓ (default the output, ℓ = L + 1), at O(1/n)."""
        v = self.vertices[self._layer(layer)]
        p = self.xs.shape[0]
        idx = _pair_index(p)
        a, b, c, d = np.indices((p,) * 4)
        return (v[idx[a, b], idx[c, d]] + v[idx[a, c], idx[b, d]]
                + v[idx[a, d], idx[b, c]]) / self.net.width

    def kernel(self, layer: int | None = None, *, corrected: bool = False) -> np.ndarray:
        """K⁽ℓ⁾ `(P, P)`, or with `corrected=True` K⁽ℓ⁾ + K1⁽ℓ⁾/n."""
        i = self._layer(layer)
        k = self.kernels[i]
        return k + self.kernel_corrections[i] / self.net.width if corrected else k

    def normalized_vertex(self) -> np.ndarray:
        """V⁽ℓ⁾_(aa)(aa) / (n K⁽ℓ⁾_aa²) `(L+1, P)` = G4_c(aaaa)/(3K_aa²): the single-input
        normalised vertex (E[z⁴]/(3E[z²]²) − 1 at O(1/n))."""
        idx = _pair_index(self.xs.shape[0])
        diag = idx[np.arange(self.xs.shape[0]), np.arange(self.xs.shape[0])]
        v = self.vertices[:, diag, diag]
        k = np.diagonal(self.kernels, axis1=1, axis2=2)
        zero = np.argwhere(k == 0)
        if zero.size:
            layer, a = (int(i) for i in zero[0])
            raise ValueError(
                f"the normalised vertex V_(aa)(aa)/(n K_aa²) is undefined: K_aa = 0 at layer "
                f"{layer + 1} for input {a} (x = {self.xs[a].tolist()}); with σ_b = 0 an input "
                "x = 0 has a zero kernel. Use an input x ≠ 0 or σ_b > 0.")
        return v / (self.net.width * k**2)

    def _layer(self, layer):
        n_layers = self.kernels.shape[0]
        if layer is None:
            return n_layers - 1
        if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not (
                1 <= layer <= n_layers):
            raise ValueError(f"`layer` must be an integer in 1..{n_layers}, got {layer!r}.")
        return int(layer) - 1


def _pair_index(p: int) -> np.ndarray:
    pairs = sorted_tuples(p, 2)
    idx = np.zeros((p, p), dtype=np.int64)
    idx[pairs[:, 0], pairs[:, 1]] = np.arange(pairs.shape[0])
    idx[pairs[:, 1], pairs[:, 0]] = np.arange(pairs.shape[0])
    return idx


def criticality(net: DeepNet) -> tuple[bool | None, str]:
    """Whether (σ_b, σ_W) is critical for the activation (PDLT ch. 5): unit susceptibilities
    χ_∥ = χ_⊥ = 1 at the fixed point of the kernel recursion.

    - relu (scale-invariant class): σ_b = 0, σ_W² = 2.
    - linear: σ_b = 0, σ_W = 1.
    - K* = 0 class (φ(0) = 0, φ'(0) ≠ 0, smooth: tanh, erf, sin, ...): σ_b = 0,
      σ_W² φ'(0)² = 1, i.e. σ_W = 1 for tanh and σ_W = √π/2 for erf (erf'(0) = 2/√π).
    - otherwise: None (not classified here).
    """
    sw2, sb = net.sigma_w**2, net.sigma_b
    kind = net._kind
    if kind == "relu":
        return bool(sb == 0 and abs(sw2 - 2) < 1e-12), "relu: σ_b = 0, σ_W² = 2"
    if kind == "linear":
        return bool(sb == 0 and abs(sw2 - 1) < 1e-12), "linear: σ_b = 0, σ_W = 1"
    p = _derivatives(net, 1)
    phi0, dphi0 = float(p[0](jnp.float64(0.0))), float(p[1](jnp.float64(0.0)))
    if abs(phi0) < 1e-14 and abs(dphi0) > 1e-8:
        rule = f"K* = 0 class: σ_b = 0, σ_W = 1/|φ'(0)| = {1 / abs(dphi0):.6g}"
        return bool(sb == 0 and abs(sw2 * dphi0**2 - 1) < 1e-9), rule
    return None, "not classified (activation outside the relu, linear and K* = 0 classes)"


def _as_deep(net) -> DeepNet:
    if isinstance(net, DeepNet):
        return net
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network (DeepNet, ErfNet, ...), got {net!r}.")
    kw = dict(width=net.width, d_in=net.d_in, sigma_w=net.sigma_w, sigma_b=net.sigma_b, depth=1)
    if isinstance(net, ReLUNet):
        return DeepNet(activation="relu", **kw)
    if isinstance(net, ErfNet):
        return DeepNet(activation="erf", **kw)
    if isinstance(net, GenericNet):
        return DeepNet(activation=net.activation, **kw)
    raise TypeError(
        f"`net`: {type(net).__name__} has no deep counterpart here (its φ depends on x); use "
        "rgflow.exact_connected for the exact one-layer correlators."
    )


def layer_flow(net: DeepNet, xs: Float[Array, "P d"]) -> LayerFlow:
    """The layer-to-layer flow of kernels and 4-pt vertices (physics.md §11, module docstring).

    **Arguments:**

    - `net`: a `DeepNet` (a one-layer `ReLUNet`, `ErfNet` or `GenericNet` is read as depth 1).
    - `xs`: inputs `(P, d_in)`.

    **Returns:** a `LayerFlow` with K⁽ℓ⁾, K1⁽ℓ⁾, V⁽ℓ⁾ for ℓ = 1..L+1, the susceptibilities
    χ_∥, χ_⊥ of each step and whether (σ_b, σ_W) is critical.
    """
    net = _as_deep(net)
    xs = check_inputs(xs, net.d_in)
    p = xs.shape[0]
    pairs = sorted_tuples(p, 2)
    idx = _pair_index(p)
    t2 = pairs.shape[0]
    ia, ib = pairs[:, 0], pairs[:, 1]
    off = ia != ib
    idx3 = np.stack([idx[ia, ia], idx[ia, ib], idx[ib, ib]], axis=1)  # (T, 3)
    t4 = sorted_tuples(p, 4)
    codes4 = {tuple(t): i for i, t in enumerate(t4)}
    pp4 = np.array([[codes4[tuple(sorted((*pairs[i], *pairs[j])))] for j in range(t2)]
                    for i in range(t2)])
    sw2, sb2 = net.sigma_w**2, net.sigma_b**2

    k = np.asarray(net.covariance(jnp.asarray(xs), jnp.asarray(xs)))
    v = np.zeros((t2, t2))
    k1 = np.zeros(t2)
    ks, k1s, vs, chi_par, chi_perp = [k], [k1], [v], [], []
    for layer in range(net.depth):
        kd = np.diag(k)
        a, g, b = kd[ia], k[ia, ib], kd[ib]
        f = np.array(kernel_map(net, jnp.asarray(a), jnp.asarray(g), jnp.asarray(b)))
        f[~off] = np.asarray(diagonal_map(net, jnp.asarray(a[~off])))
        d3 = np.zeros((t2, 3))
        h3 = np.zeros((t2, 3, 3))
        d1, d2 = _diagonal_derivatives(net, a[~off])
        d3[~off, 0], h3[~off, 0, 0] = d1, d2
        if off.any():
            d3[off], h3[off] = _pair_derivatives(net, a[off], g[off], b[off])
        dmat = np.zeros((t2, t2))
        for j in range(3):
            np.add.at(dmat, (np.arange(t2), idx3[:, j]), d3[:, j])
        m4 = _layer_one_moments4(net, xs) if layer == 0 else _hidden_moments4(net, k)
        same = m4[pp4] - np.outer(f, f)
        vsub = v[idx3[:, :, None], idx3[:, None, :]]  # (T, 3, 3)
        # (H is infinite only where V is exactly zero: layer 1, anti-parallel ReLU inputs)
        curv = np.sum(np.where(vsub == 0, 0.0, h3) * vsub, axis=(1, 2))
        k1_new = sw2 * (dmat @ k1 + 0.5 * curv)
        v = sw2**2 * (same + dmat @ v @ dmat.T)
        k1 = k1_new
        # susceptibilities of this step at each input
        chi_par.append(sw2 * _diagonal_derivatives(net, kd)[0])
        chi_perp.append(sw2 * _pair_derivatives(net, kd, kd, kd)[0][:, 1]
                        if net._kind != "generic" else
                        sw2 * np.asarray(_expect2(*[_derivatives(net, 1)[1]] * 2, kd, kd, kd)))
        k = sb2 + sw2 * f[idx]
        ks.append(k)
        k1s.append(k1)
        vs.append(v)
    for what, arrs in (("kernels", ks), ("kernel corrections", k1s), ("vertices", vs)):
        if not all(np.all(np.isfinite(a)) for a in arrs):
            raise ValueError(f"the layer flow's {what} are not finite (float64 overflow: σ_W, "
                             "σ_b or |x| too large for this depth).")
    critical, rule = criticality(net)
    return LayerFlow(
        net=net, xs=xs, kernels=np.stack(ks), kernel_corrections=np.stack([x[idx] for x in k1s]),
        pairs=pairs, vertices=np.stack(vs), chi_parallel=np.stack(chi_par),
        chi_perp=np.stack(chi_perp), critical=critical, criticality=rule,
    )


_PERT_ORDERS = (2, 4, 6)


def perturbative_connected(
    net: DeepNet, xs: Float[Array, "P d"], order: int, *, full: bool = True
) -> Float[Array, "..."]:
    """Connected correlators of a deep network at O(1/n) from the layer recursion (physics.md §11).

    - order 4: G4_c(abcd) = (1/n)[V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)] at the output, for any
      number of inputs (the leading term; the error is O(L²/n²)).
    - order 2: the 2-pt function through O(1/n), E[f_a f_b] = K⁽ᴸ⁺¹⁾ + K1⁽ᴸ⁺¹⁾/n. Unlike one
      layer (where G2 = K exactly) the mean metric of a deep net moves at O(1/n) for L >= 2:
      the metric fluctuation V⁽ℓ⁾ of a hidden layer, fed through the curvature of the kernel
      map, shifts E[φφ] (zero for relu and linear at σ_b = 0 on one input, where the map is
      linear). `layer_flow(net, xs).kernel_corrections` gives K1 alone.
    - order 6: refused (the leading O(1/n²) 6-pt recursion is not implemented); for depth 1 use
      `rgflow.exact_connected(net.one_layer(), xs, 6)`.

    At depth 1 both are exact: order 4 equals `rgflow.exact_connected` of the one-layer net.

    **Arguments:**

    - `net`: a `DeepNet` (or a one-layer ReLUNet/ErfNet/GenericNet, read as depth 1).
    - `xs`: inputs `(P, d_in)`.
    - `order`: 2 or 4.
    - `full`: full symmetric `(P,)*order` array (default), or values on the sorted tuples.

    **Returns:** a float64 array.
    """
    order = check_order("order", order, _PERT_ORDERS)
    if order == 6:
        raise ValueError(
            "`order` 6: the leading-order (1/n²) deep 6-pt function is not implemented; "
            "use order 2 or 4, or for depth 1 rgflow.exact_connected(net.one_layer(), xs, 6)."
        )
    sol = layer_flow(net, xs)
    p = sol.xs.shape[0]
    out = sol.kernel(corrected=True) if order == 2 else sol.connected4()
    out = jnp.asarray(out)
    if full:
        return out
    t = sorted_tuples(p, order)
    return out[tuple(t.T)]


