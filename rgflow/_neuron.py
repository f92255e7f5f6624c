"""Exact single-neuron moments M_T = E[Π_{a∈T} φ(z_a)] (physics.md §4).

(z_1..z_P) are jointly Gaussian with covariance S = V Vᵀ, V the `(P, d_in+1)` feature vectors,
so z = V u with u ~ N(0, I). Only the rank r <= d_in + 1 subspace spanned by the rows of V
matters: z = C η with C `(P, r)` and η ~ N(0, I_r). Three routes:

- **Gauss-net** (closed form): M_T = exp(½ Σ_{a,b∈T} S_ab − Σ_{a∈T} S_aa), exact to rounding.
- **ReLU-net** (spherical rule): ReLU is positively homogeneous, so with η = ρ ω,
  M_T = E[ρ^n] · E_ω[Π relu(ω·c_a)], E[ρ^n] = 2^{n/2} Γ((r+n)/2)/Γ(r/2) for the χ_r radius,
  and the angular mean over S^{r−1} is done by Gauss–Legendre split at every kink
  (the great spheres ω·c_a = 0). For r <= 2 the angular integrand is a trigonometric polynomial
  between kinks: exact to ~1e-15. For r = 3 the outer azimuth is also split at every crossing
  of two kink circles, so each piece is analytic: measured ~1e-13 relative. For r = 4 (ReLU with
  σ_b > 0 and d_in = 3) the outer sphere is not split at crossings: measured ~1e-7 relative.
- **Other activations** (Erf, generic): the same split angular rule times an m_r-point
  Gauss–Legendre rule for the χ_r radius on [0, R]. (Tensor Gauss–Hermite converges badly here:
  erf grows like exp(y²) off the real axis.) Measured for Erf with the HMS inputs, against the
  closed-form kernel and a 120-node-per-axis tensor Gauss–Legendre reference for M4 and M6:
  ~1e-11 absolute (r = 2, d_in = 1), ~1e-10 (r = 3, d_in = 2), ~2e-7 (r = 4, d_in = 3).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._tuples import sorted_tuples

# (angular nodes per segment, radial nodes) by rank
_RULE = {1: (1, 80), 2: (20, 64), 3: (16, 56), 4: (10, 32)}
_MAX_RANK = 4


def _subspace(v: np.ndarray) -> np.ndarray:
    """C `(P, r)` with C Cᵀ = V Vᵀ, r the numerical rank, in a fixed generic orientation."""
    u, s, _ = np.linalg.svd(v, full_matrices=False)
    r = int(np.sum(s > 1e-12 * max(s.max(initial=0.0), 1e-300)))
    if r > _MAX_RANK:
        raise ValueError(
            f"Exact single-neuron moments need the inputs to span at most {_MAX_RANK} dimensions "
            f"of feature space (d_in + 1 <= 4, or fewer distinct points); got rank {r}."
        )
    if r == 0:
        return np.zeros((v.shape[0], 1))
    c = u[:, :r] * s[:r]
    # A fixed 'generic' rotation keeps symmetric input sets off degenerate quadrature alignments.
    rot, _ = np.linalg.qr(np.random.default_rng(1234).standard_normal((r, r)))
    return c @ rot


def _gauss_legendre(lo: np.ndarray, hi: np.ndarray, m: int):
    """Nodes `(..., m)` and weights `(..., m)` of m-point Gauss–Legendre on [lo, hi]."""
    t, w = np.polynomial.legendre.leggauss(m)
    half = (hi - lo)[..., None] / 2
    return lo[..., None] + half * (t + 1), half * w


def _circle_rule(c: np.ndarray, m: int, extra: np.ndarray | None = None):
    """Uniform mean over S¹, split where ω·c_a = 0 (and at `extra` angles)."""
    norms = np.linalg.norm(c, axis=1)
    alpha = np.arctan2(c[:, 1], c[:, 0])[norms > 0]
    angles = np.concatenate([alpha + np.pi / 2, alpha - np.pi / 2, [0.0]])
    if extra is not None:
        angles = np.concatenate([angles, extra])
    b = np.unique(np.round(np.mod(angles, 2 * np.pi), 14))
    lo, hi = b, np.append(b[1:], b[0] + 2 * np.pi)
    psi, w = _gauss_legendre(lo, hi, m)
    psi, w = psi.ravel(), w.ravel() / (2 * np.pi)
    return np.stack([np.cos(psi), np.sin(psi)], axis=1), w


def _sphere_rule(c: np.ndarray, m: int, crossings: bool = True):
    """Uniform mean over S^{r−1}, r = c.shape[1], split at the kinks of Π relu(ω·c_a)."""
    r = c.shape[1]
    if r == 1:
        return np.array([[1.0], [-1.0]]), np.array([0.5, 0.5])
    if r == 2:
        return _circle_rule(c, m)
    cp = c[:, : r - 1]
    if r == 3 and crossings:
        # Azimuths of the crossing points ±(c_a × c_b) of two kink circles.
        extra = []
        for a, b in itertools.combinations(range(c.shape[0]), 2):
            x = np.cross(c[a], c[b])
            if np.linalg.norm(x[:2]) > 0:
                phi = math.atan2(x[1], x[0])
                extra += [phi, phi + np.pi]
        eta, w_out = _circle_rule(cp, m, np.asarray(extra))
    else:
        eta, w_out = _sphere_rule(cp, m, crossings) if r > 3 else _circle_rule(cp, m)
    a = eta @ cp.T  # (n_out, P)
    b = np.broadcast_to(c[:, r - 1], a.shape)
    beta = np.mod(-np.arctan2(b, a), np.pi)
    beta = np.where((a == 0) & (b == 0), 0.0, beta)
    n_out = eta.shape[0]
    edges = np.sort(
        np.concatenate([np.zeros((n_out, 1)), beta, np.full((n_out, 1), np.pi)], axis=1), axis=1
    )
    bet, wb = _gauss_legendre(edges[:, :-1], edges[:, 1:], m)  # (n_out, P+1, m)
    z_r = math.sqrt(math.pi) * math.gamma((r - 1) / 2) / math.gamma(r / 2)
    wb = wb * np.sin(bet) ** (r - 2) / z_r * w_out[:, None, None]
    omega = np.concatenate(
        [np.sin(bet)[..., None] * eta[:, None, None, :], np.cos(bet)[..., None]], axis=-1
    )
    return omega.reshape(-1, r), wb.ravel()


def _radial_rule(c: np.ndarray, order: int):
    """Nodes η = ρ ω `(n, r)` and weights for E over η ~ N(0, I_r) of a smooth integrand."""
    r = c.shape[1]
    m, n_r = _RULE[r]
    omega, w_ang = _sphere_rule(c, m, crossings=False)
    cmax = float(np.max(np.linalg.norm(c, axis=1), initial=0.0))
    big_r = 9.5 + 0.5 * order * cmax  # room for activations that grow along the ray
    rho, w_rho = _gauss_legendre(np.zeros(()), np.asarray(big_r), n_r)
    dens = rho ** (r - 1) * np.exp(-(rho**2) / 2) / (2 ** (r / 2 - 1) * math.gamma(r / 2))
    nodes = (rho[:, None, None] * omega[None]).reshape(-1, r)
    return nodes, ((w_rho * dens)[:, None] * w_ang[None]).ravel()


@jax.jit
def _weighted_products(phi: jnp.ndarray, w: jnp.ndarray, tuples: jnp.ndarray) -> jnp.ndarray:
    """Σ_i w_i Π_k phi[i, T[t, k]] for every tuple T[t], scanning over chunks of nodes."""
    chunk = 2048
    n = phi.shape[0]
    pad = (-n) % chunk
    phi = jnp.pad(phi, ((0, pad), (0, 0)))
    w = jnp.pad(w, (0, pad))
    phi = phi.reshape(-1, chunk, phi.shape[1])
    w = w.reshape(-1, chunk)

    def body(acc, xw):
        p, ww = xw
        prod = jnp.prod(p[:, tuples], axis=-1)  # (chunk, n_tuples)
        return acc + ww @ prod, None

    acc, _ = jax.lax.scan(body, jnp.zeros(tuples.shape[0], phi.dtype), (phi, w))
    return acc


def neuron_moments(net, xs: np.ndarray, order: int, tuples: np.ndarray | None = None) -> jnp.ndarray:
    """Exact single-neuron moments E[Π_{a∈T} φ(z_a)] on the index tuples `T` (physics.md §4).

    **Arguments:**

    - `net`: an `rgflow` network (its activation, σ_W, σ_b, d_in).
    - `xs`: inputs of shape `(P, d_in)` (already validated).
    - `order`: the tuple length n.
    - `tuples`: an int array `(n_tuples, n)`; defaults to the sorted tuples of `order`.

    **Returns:** a float64 array of shape `(n_tuples,)`.
    """
    from ._nets import GaussNet, ReLUNet
    from ._validate import check_one_layer

    check_one_layer(net, "neuron_moments")
    if tuples is None:
        tuples = sorted_tuples(xs.shape[0], order)
    tuples = np.asarray(tuples)
    if isinstance(net, GaussNet):
        s = np.asarray(net.covariance(xs, xs))
        quad = s[tuples[:, :, None], tuples[:, None, :]].sum(axis=(1, 2))
        diag = np.diag(s)[tuples].sum(axis=1)
        return jnp.asarray(np.exp(0.5 * quad - diag))
    c = _subspace(net.feature_vectors(xs))
    r = c.shape[1]
    if isinstance(net, ReLUNet):
        omega, w = _sphere_rule(c, _RULE[r][0] if r > 1 else 1)
        radial = 2 ** (order / 2) * math.gamma((r + order) / 2) / math.gamma(r / 2)
        phi = np.maximum(omega @ c.T, 0.0)
        return radial * _weighted_products(jnp.asarray(phi), jnp.asarray(w), jnp.asarray(tuples))
    nodes, w = _radial_rule(c, order)
    z = jnp.asarray(nodes @ c.T)
    phi = net.phi(z, jnp.asarray(xs))
    return _weighted_products(phi, jnp.asarray(w), jnp.asarray(tuples))
