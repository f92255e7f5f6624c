"""Network-inspired UV data for the LPA flow (after Erbin–Lahoche–Samary arXiv:2108.01403, with
the exact finite-width correlators of rgflow).

**What these couplings are, and are not.** λ and κ are matched to the network's *full* connected
correlators (all-space tree diagrams); the kinetic term comes from the p² truncation of K̃⁻¹ (the
Gaussian kernel's inverse has every power of p²). `rgflow.studies.frg_flow` imposes the resulting
potential as UV data at a scale k0 that nothing in the network fixes (the dimensionless couplings
a_n scale like k0^{n(d−2)−d}), and the LPA flow from there does not preserve G2 = K, which holds
exactly for the network at every width: the flow is an LPA flow from network-inspired initial
data, not the network's own RG. The matched λ < 0, so the truncated potential is unbounded
below (a generating function, not a density; physics.md §7).

Gauss-net's vertex propagator K_W(x, y) = σ² exp(−a|x − y|²), a = σ²/(2d), has the Fourier
transform K̃(p) = σ² (π/a)^{d/2} e^{−p²/4a}, so the quadratic action ½ f K̃⁻¹ f expands as

    K̃⁻¹(p) = A (1 + p²/(4a) + …),   A = 1/(σ²(π/a)^{d/2}):   Z = A/(4a),   m² = 4a = 2σ²/d.

With φ = √Z f (canonical kinetic term) the local couplings λ ∫f⁴ and κ ∫f⁶ give the potential
U(φ) = ½ m² φ² + (λ/Z²) φ⁴ + (κ/Z³) φ⁶, i.e. U = Σ A_n ρⁿ with ρ = φ²/2 and A_1 = m²,
A_2 = 4λ/Z², A_3 = 8κ/Z³. λ and κ are matched (least squares over all sorted tuples) to the exact
connected correlators (physics.md §4) with all-space tree diagrams (physics.md §6), which for
Gaussian K_W are closed forms:

    G4_c = −24 λ I4,  I4 = σ⁸ (π/4a)^{d/2} exp(−a Σ_i |x_i − x̄|²),
    G6_c = −720 κ I6 + 576 λ² Σ_{10 splits} E,   I6 = σ¹² (π/6a)^{d/2} exp(−a Σ_i |x_i − x̄|²),
    E(abc|def) = σ¹⁴ Π_dims (π/√15 a) exp((a/15)(4S₁² + 2S₁S₂ + 4S₂²) − a Q),

S₁, S₂ the per-dimension sums of the two triples' coordinates and Q the sum of their squares.
The dimensionless LPA couplings at scale k are a_n = A_n v_d^{n−1} k^{n(d−2)−d} (see `rgflow._frg`).
"""

from __future__ import annotations

import math

import numpy as np

from ._exact import exact_connected
from ._frg import v_d
from ._nets import GaussNet
from ._tuples import sorted_tuples, splits
from ._validate import check_inputs


def _gauss_vertex(xs, tuples, sigma, a, k):
    pts = xs[tuples]  # (T, k, d)
    spread = np.sum((pts - pts.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2))
    d = xs.shape[1]
    return sigma ** (2 * k) * (math.pi / (k * a)) ** (d / 2) * np.exp(-a * spread)


def _gauss_exchange(xs, t6, sigma, a):
    total = np.zeros(len(t6))
    seen = set()
    for first, second in splits(6, 3):
        key = frozenset([first, second])
        if key in seen:
            continue
        seen.add(key)
        p1, p2 = xs[t6[:, first]], xs[t6[:, second]]  # (T, 3, d)
        s1, s2 = p1.sum(axis=1), p2.sum(axis=1)
        q = np.sum(p1**2, axis=1) + np.sum(p2**2, axis=1)
        per_dim = (math.pi / (math.sqrt(15) * a)) * np.exp(
            (a / 15) * (4 * s1**2 + 2 * s1 * s2 + 4 * s2**2) - a * q)
        total += sigma**14 * np.prod(per_dim, axis=1)
    return total


def gauss_net_couplings(net: GaussNet, xs) -> dict:
    """Field-theory couplings of a Gauss-net at finite width from its exact correlators (the
    full correlators, not a Wilsonian effective action; module docstring).

    **Arguments:** `net` a `rgflow.GaussNet`; `xs` inputs `(P, d_in)` at which G4_c and G6_c are
    matched.

    **Returns:** a dict with `m2`, `Z`, `lambda`, `kappa` (least-squares matches, physics.md §3
    sign convention) and the potential coefficients `A` = [A_1, A_2, A_3] of U = Σ A_n ρⁿ.
    """
    if not isinstance(net, GaussNet):
        raise TypeError(f"`net` must be a rgflow.GaussNet, got {net!r}.")
    xs = check_inputs(xs, net.d_in)
    d, sigma = net.d_in, net.sigma_w
    a = sigma**2 / (2 * d)
    amp = 1.0 / (sigma**2 * (math.pi / a) ** (d / 2))
    z, m2 = amp / (4 * a), 4 * a
    p = xs.shape[0]
    t4, t6 = sorted_tuples(p, 4), sorted_tuples(p, 6)
    g4 = np.asarray(exact_connected(net, xs, 4, full=False))
    g6 = np.asarray(exact_connected(net, xs, 6, full=False))
    i4 = _gauss_vertex(xs, t4, sigma, a, 4)
    lam = -float(g4 @ i4) / (24 * float(i4 @ i4))
    i6 = _gauss_vertex(xs, t6, sigma, a, 6)
    rest = g6 - 576 * lam**2 * _gauss_exchange(xs, t6, sigma, a)
    kappa = -float(rest @ i6) / (720 * float(i6 @ i6))
    return {"m2": m2, "Z": z, "lambda": lam, "kappa": kappa,
            "A": [m2, 4 * lam / z**2, 8 * kappa / z**3]}


def dimensionless_lpa_couplings(coeffs, d: float, k: float, order: int) -> np.ndarray:
    """a_n = A_n v_d^{n−1} k^{n(d−2)−d}, padded with zeros to `order` couplings (k: the scale
    at which the couplings are imposed as UV data; arbitrary for a network, module docstring)."""
    out = np.zeros(order)
    for n, val in enumerate(coeffs, start=1):
        if n <= order:
            out[n - 1] = val * v_d(d) ** (n - 1) * k ** (n * (d - 2) - d)
    return out
