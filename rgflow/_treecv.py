"""A control variate for the O(λ) connected 4-pt shift of a reweighted free cos-net
(physics.md §12).

**Exact finite-N moments.** f(x) = Σ_i u_i(x), u = a cos(w·x + c) i.i.d. over the N neurons, so
a moment of f is a sum over set partitions π of the n arguments into blocks, one distinct neuron
per block (odd blocks vanish: a is symmetric):

    E₀[Π_j f(x_j)] = Σ_{π even} N!/(N − |π|)! Π_{B∈π} E[a^{|B|}] 2^{−|B|} Σ_{s ∈ {±1}^B, Σs = 0} φ(Σ_{j∈B} s_j x_j),

E[a^{2k}] = (2k − 1)!! (σ_a²/N)^k and φ(t) = G_Λ(t)/G_Λ(0) (`free_moments`; n ≤ 8).

**The control variate.** At O(λ) the reweighted shift of the connected 4-pt function at a
configuration T = (x_i, x_j, x_k, x_l) is, per network, −(S − S̄) :f_i f_j f_k f_l: with
S = (λ/4!) ∫_V :f⁴: (the normal-ordered deformation, δm² = −λG(0)/2). Its noise is dominated by
the part of S predictable from the fields at the points of T: for a Gaussian field
E[:f(y)⁴: | f_T] = :m(y)⁴:, m(y) = g(y)ᵀK⁻¹f_T, g_a(y) = G(x_a − y), K = G(x_a − x_b), the
Wick ordering taken with Var m(y) = s²(y) = gᵀK⁻¹g. Hence

    Z_T = :f_i f_j f_k f_l: · ∫_V dy [m⁴ − 6 s² m² + 3 s⁴]

(a polynomial of degree 8 in f_T, same Gauss–Legendre nodes as the weights) and the estimator

    Δκ̂_T = [κ4_λ − κ4_0]_MC + (λ/4!) (Z̄_T − E₀[Z_T])

with E₀[Z_T] exact at width N (`free_moments`). It is unbiased for every coefficient (E₀ Z_T is
known exactly, Z̄ is the plain mean over the same networks); λ/4! is the Gaussian-optimal one.
The jackknife leaves Z̄ out with the same blocks as the weights.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import equinox as eqx
import numpy as np

from ._cosnet import _balanced_signs
from ._deform import FieldSample, box_quadrature
from ._freefield import FreeCosNet
from ._validate import check_inputs

__all__ = ["free_moments", "TreeControlVariate", "tree_control_variate"]

_MAX_MOMENT_ORDER = 8


def _even_partitions(items: tuple):
    """Set partitions of `items` into blocks of even size."""
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for k in range(1, len(rest) + 1, 2):  # the block of `first` has k + 1 (even) elements
        for others in itertools.combinations(rest, k):
            left = tuple(v for v in rest if v not in others)
            for sub in _even_partitions(left):
                yield ((first,) + others,) + sub


def free_moments(net: FreeCosNet, xs, tuples) -> np.ndarray:
    """Exact moments E₀[Π_j f(x_{t_j})] of the free cos-net at width N (module docstring).

    **Arguments:** `net` a `rgflow.FreeCosNet`; `xs` `(P, d_in)`; `tuples` `(T, n)` integer
    indices into `xs`, n even, 0 ≤ n ≤ 8.

    **Returns:** `(T,)` float64.
    """
    if not isinstance(net, FreeCosNet):
        raise TypeError(f"`net` must be a rgflow.FreeCosNet, got {type(net).__name__}.")
    xs = check_inputs(xs, net.d_in)
    t = np.asarray(tuples)
    if t.ndim != 2 or (t.size and not np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"`tuples` must be an integer array (T, n), got shape {t.shape}.")
    n = t.shape[1]
    if n % 2 or n > _MAX_MOMENT_ORDER:
        raise ValueError(f"`tuples` must have an even length n <= {_MAX_MOMENT_ORDER}, got {n}.")
    if t.size and (t.min() < 0 or t.max() >= xs.shape[0]):
        raise ValueError(f"`tuples` must index the {xs.shape[0]} points of `xs`.")
    if n == 0:
        return np.ones(t.shape[0])
    width = net.width
    var = net.sigma_a**2 / width
    parts = list(_even_partitions(tuple(range(n))))
    blocks = sorted({b for part in parts for b in part}, key=lambda b: (len(b), b))
    args, sizes = [], []
    for b in blocks:  # all block arguments Σ s_j x_j at once: one propagator evaluation
        signs = _balanced_signs(len(b))  # one of each ± pair: φ is even
        args.append(np.einsum("sj,tjd->tsd", signs, xs[t[:, list(b)]]).reshape(-1, net.d_in))
        sizes.append(signs.shape[0])
    r, inverse = np.unique(np.linalg.norm(np.concatenate(args), axis=-1), return_inverse=True)
    phi = np.split((net.propagator(r) / net.g0)[inverse.ravel()], np.cumsum(
        [t.shape[0] * s for s in sizes])[:-1])
    value = {}
    for b, ph, s in zip(blocks, phi, sizes):
        k = len(b)
        ak = math.prod(range(k - 1, 0, -2)) * var ** (k // 2)  # E[a^k]
        value[b] = ak * 2.0 ** (1 - k) * ph.reshape(t.shape[0], s).sum(axis=1)
    out = np.zeros(t.shape[0])
    for part in parts:
        falling = math.prod(width - j for j in range(len(part)))  # N!/(N − |π|)!
        if falling == 0:
            continue
        term = np.full(t.shape[0], float(falling))
        for b in part:
            term = term * value[b]
        out = out + term
    return out


# ----------------------------------------------------------------- polynomials in f_T ---


def _poly_mul(p, q):
    out = defaultdict(float)
    for ka, va in p.items():
        for kb, vb in q.items():
            out[tuple(sorted(ka + kb))] += va * vb
    return out


def _wick4(config, gmat):
    """:f_i f_j f_k f_l: as {sorted index tuple: coefficient} (Wick ordering with G)."""
    c = tuple(config)
    poly = defaultdict(float)
    poly[tuple(sorted(c))] += 1.0
    for a, b in itertools.combinations(range(4), 2):
        rest = tuple(sorted(c[r] for r in range(4) if r not in (a, b)))
        poly[rest] -= gmat[c[a], c[b]]
    for (a, b), (e, f) in (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))):
        poly[()] += gmat[c[a], c[b]] * gmat[c[e], c[f]]
    return poly


class TreeControlVariate(eqx.Module):
    """Z_T per network and its exact mean (module docstring).

    **Fields:** `configs` `(C, 4)` point indices; `values` `(M, C)` Z_T of each network;
    `mean` `(C,)` E₀[Z_T] at width N.
    """

    configs: np.ndarray
    values: np.ndarray
    mean: np.ndarray

    def coefficient(self, deformation) -> float:
        """The Gaussian-optimal coefficient λ/4! of (Z̄ − E₀Z) for a deformation."""
        return float(getattr(deformation, "coupling", deformation)) / 24.0


def tree_control_variate(fs: FieldSample, configs) -> TreeControlVariate:
    """Z_T = :f_T: ∫_V :m_T⁴: for each 4-point configuration (indices into `fs.xs`), on the
    networks of `fs` and its exact mean E₀[Z_T] (module docstring)."""
    if not isinstance(fs, FieldSample):
        raise TypeError(f"`fs` must be a rgflow.FieldSample, got {type(fs).__name__}.")
    if fs.max_frequency is not None:
        raise ValueError("the control variate needs the unfiltered field (`max_frequency` None).")
    configs = np.asarray(configs)
    if configs.ndim != 2 or configs.shape[1] != 4 or not np.issubdtype(configs.dtype, np.integer):
        raise ValueError(f"`configs` must be integer index tuples (C, 4), got {configs.shape}.")
    if configs.min() < 0 or configs.max() >= fs.n_points:
        raise ValueError(f"`configs` must index the {fs.n_points} points of the sample.")
    net, xs = fs.net, np.asarray(fs.xs)
    nodes, qw = box_quadrature(fs.box, fs.n_grid)
    gmat = net.propagator(np.linalg.norm(xs[:, None] - xs[None], axis=-1))
    f = np.asarray(fs.fields)
    values, polys = [], []
    for config in configs:
        u = sorted(set(int(i) for i in config))
        g = net.propagator(np.linalg.norm(xs[u][:, None] - nodes[None], axis=-1))  # (p, Q)
        coef = np.linalg.solve(gmat[np.ix_(u, u)], g)  # K⁻¹ g
        s2 = (coef * g).sum(0)
        m = f[:, u] @ coef  # (M, Q)
        q4 = (m**4 - 6 * s2 * m**2 + 3 * s2**2) @ qw
        p4 = np.zeros(f.shape[0])
        for key, v in _wick4(config, gmat).items():
            p4 = p4 + v * (np.prod(f[:, list(key)], axis=1) if key else 1.0)
        values.append(p4 * q4)
        # Q4 as a polynomial in f_u (global indices)
        qpoly = defaultdict(float)
        c4 = np.einsum("aq,bq,cq,dq,q->abcd", coef, coef, coef, coef, qw)
        for idx in itertools.product(range(len(u)), repeat=4):
            qpoly[tuple(sorted(u[i] for i in idx))] += c4[idx]
        d2 = np.einsum("aq,bq,q->ab", coef, coef, s2 * qw)
        for idx in itertools.product(range(len(u)), repeat=2):
            qpoly[tuple(sorted(u[i] for i in idx))] -= 6 * d2[idx]
        qpoly[()] += 3 * float((s2**2) @ qw)
        polys.append(_poly_mul(_wick4(config, gmat), qpoly))
    # E₀ of every monomial: one `free_moments` call per degree
    keys = sorted({k for poly in polys for k in poly}, key=lambda k: (len(k), k))
    moment = {}
    for n in sorted({len(k) for k in keys}):
        kn = [k for k in keys if len(k) == n]
        vals = free_moments(net, xs, np.array(kn, dtype=np.int64).reshape(len(kn), n))
        moment.update(zip(kn, vals))
    means = [sum(v * moment[k] for k, v in poly.items()) for poly in polys]
    return TreeControlVariate(configs=configs, values=np.stack(values, axis=1),
                              mean=np.asarray(means))
