"""φ⁴ engineered in parameter space: deformed cos-net ensembles by exact reweighting
(physics.md §12).

    P_λ(θ) ∝ P₀(θ) exp(−S_int[f_θ]),   S_int[f] = ∫_V d^dx [ (λ/4!) f⁴ + (δm²/2) f² + (g₆/6!) f⁶ ].

S_int depends on θ only through the field, so the field density of the deformed ensemble is
exactly e^{−S_int[f]} P₀[f]. The integral over the box V = Π_k [lo_k, hi_k] is a tensor
Gauss–Legendre rule with n nodes per axis (`box_quadrature`). f⁴ carries frequencies up to 4Λ
(sharp cutoff), so the rule must resolve cos(4Λx) on each axis: n ≥ n_Nyquist = ⌈4Λ L/π⌉ is
enforced (`nyquist_points`), and the default n = ⌈1.5 n_Nyquist⌉ + 8 integrates e^{iωx},
ω ≤ 4Λ, to ~1e-14 (measured; the rule is then exact for the field's own frequencies, and the
tree prediction uses the same nodes, so the O(λ) check does not depend on the rule). For the
smooth regulator, Λ_eff = the 99.9 % quantile of |w| replaces Λ.

**Sufficient statistics.** `sample_fields` stores, per network, the field at the external points
and I_k = ∫_V f^k for k = 2, 4, 6 (a `FieldSample`); the weights of any (λ, δm², g₆),
w = exp(−λ I₄/24 − δm² I₂/2 − g₆ I₆/720), come from these, on the same draws (common random
numbers). Networks are drawn exactly as `rgflow.measure` draws them (`fold_in(key, g)`), and
`max_frequency` Λ' keeps only neurons with |w| ≤ Λ' in the field *and* in the integrals.

**Estimators.** Reweighted moments ⟨Π f⟩_λ = Σ w Π f / Σ w over index-sorted tuples; connected
functions from the moments (odd moments vanish: S_int is even). Errors: delete-one-block
jackknife of the ratio estimator (numerator and normalisation Σ w both left out with the block),
bias-corrected as in `rgflow.Measurement`. The Kish effective sample size ESS = (Σw)²/Σw².
`connected_shift` is the jackknife of κ_λ − κ_ref on the same draws (the λ-dependent part; its
variance is far below that of κ_λ itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._ensemble import _block_layout, _half_index, connected_from_moments
from ._freefield import FreeCosNet, draw_jit
from ._tuples import n_tuples, sorted_tuples, to_full
from ._validate import check_ensemble, check_inputs, check_key, check_positive_int

__all__ = ["Deformation", "FieldSample", "box_quadrature", "nyquist_points", "sample_fields",
           "reweighted_jackknife", "tree_four_point", "tadpole_two_point", "deformation_action",
           "diagram_prediction"]


def _finite_real(name, value, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}.")
    return float(value)


def check_box(box, d_in: int) -> tuple:
    """`box` as ((lo, hi),)*d_in with lo < hi finite; a ValueError naming `box` otherwise."""
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`box` must be a list of [lo, hi] per dimension, got {box!r}.") from e
    if arr.ndim == 1 and d_in == 1:
        arr = arr[None]
    if arr.shape != (d_in, 2):
        raise ValueError(f"`box` must have {d_in} rows [lo, hi] (one per input dimension), got "
                         f"shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`box` must be finite, got {box!r}.")
    if not np.all(arr[:, 1] > arr[:, 0]):
        raise ValueError(f"`box` must have lo < hi in every dimension (empty or inverted), got "
                         f"{arr.tolist()}.")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def max_frequency_of(net: FreeCosNet, max_frequency=None) -> float:
    """The largest frequency of the field: Λ' if given, else Λ (sharp) or the 99.9 % quantile
    of |w| (smooth)."""
    if max_frequency is not None:
        return float(max_frequency)
    if net.regulator == "sharp":
        return float(net.cutoff)
    return float(net.inverse_radial_cdf(0.999))


def nyquist_points(net: FreeCosNet, box, max_frequency=None) -> int:
    """n_Nyquist = ⌈4 Λ L_max/π⌉: the fewest nodes per axis that resolve f⁴ (frequencies ≤ 4Λ)."""
    box = check_box(box, net.d_in)
    length = max(hi - lo for lo, hi in box)
    return max(2, math.ceil(4 * max_frequency_of(net, max_frequency) * length / math.pi))


def box_quadrature(box, n: int):
    """Tensor Gauss–Legendre nodes `(n^d, d)` and weights `(n^d,)` on the box."""
    n = check_positive_int("n_grid", n)
    x, w = np.polynomial.legendre.leggauss(n)
    axes, wts = [], []
    for lo, hi in box:
        axes.append(lo + 0.5 * (hi - lo) * (x + 1))
        wts.append(0.5 * (hi - lo) * w)
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(box))
    weights = np.prod(np.stack(np.meshgrid(*wts, indexing="ij"), axis=-1), axis=-1).ravel()
    return nodes, weights


class Deformation(eqx.Module):
    """S_int = ∫_V [(λ/4!) f⁴ + (δm²/2) f² + (g₆/6!) f⁶] (module docstring).

    **Fields:** `coupling` λ, `mass_shift` δm², `coupling6` g₆ ≥ 0 (a φ⁶ stabiliser; λ < 0 is
    refused without one: the weight would be unbounded).
    """

    coupling: float = eqx.field(static=True, default=0.0)
    mass_shift: float = eqx.field(static=True, kw_only=True, default=0.0)
    coupling6: float = eqx.field(static=True, kw_only=True, default=0.0)

    def __check_init__(self):
        _finite_real("coupling", self.coupling)
        _finite_real("mass_shift", self.mass_shift)
        _finite_real("coupling6", self.coupling6, minimum=0.0)
        if self.coupling < 0 and self.coupling6 == 0:
            raise ValueError(f"`coupling` λ = {self.coupling} < 0 makes exp(−λ∫f⁴/4!) unbounded; "
                             "give a φ⁶ stabiliser `coupling6` > 0 or use λ >= 0.")

    def action(self, integrals):
        """S_int from the integrals `(..., 3)` = (∫f², ∫f⁴, ∫f⁶)."""
        integrals = jnp.asarray(integrals)
        return (self.mass_shift / 2 * integrals[..., 0] + self.coupling / 24 * integrals[..., 1]
                + self.coupling6 / 720 * integrals[..., 2])


def _as_deformation(d) -> Deformation:
    if isinstance(d, Deformation):
        return d
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        return Deformation(float(d))
    raise TypeError(f"a deformation must be a rgflow.Deformation or a coupling λ, got {d!r}.")


class FieldSample(eqx.Module):
    """Fields at external points and box integrals of M networks (module docstring).

    **Fields:** `net`, `xs` `(P, d)`, `box`, `n_grid`, `max_frequency` (None: all neurons),
    `fields` `(M, P)`, `integrals` `(M, 3)` (∫f², ∫f⁴, ∫f⁶ over V), `block_counts` `(B,)`.
    """

    net: FreeCosNet
    xs: np.ndarray
    box: tuple = eqx.field(static=True)
    n_grid: int = eqx.field(static=True)
    max_frequency: float | None = eqx.field(static=True)
    fields: np.ndarray
    integrals: np.ndarray
    block_counts: np.ndarray

    @property
    def n_nets(self) -> int:
        return int(self.fields.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.xs.shape[0])

    def log_weights(self, deformation) -> np.ndarray:
        """log w = −S_int per network `(M,)`, shifted so that max log w = 0."""
        s = -np.asarray(_as_deformation(deformation).action(self.integrals))
        return s - s.max()

    def weights(self, deformation) -> np.ndarray:
        return np.exp(self.log_weights(deformation))

    def ess(self, deformation) -> float:
        """Kish effective sample size (Σw)²/Σw² (= M at λ = δm² = g₆ = 0)."""
        w = self.weights(deformation)
        return float(w.sum() ** 2 / (w * w).sum())

    def _block_sums(self, deformation, orders):
        """Per-block Σw `(B,)` and Σ w Π f over sorted tuples `{n: (B, T_n)}`."""
        w = self.weights(deformation)
        f = np.asarray(self.fields)
        p = self.n_points
        starts = np.concatenate([[0], np.cumsum(self.block_counts)[:-1]])
        wsum = np.zeros(len(starts))
        sums = {n: np.zeros((len(starts), n_tuples(p, n))) for n in orders}
        pairs = sorted_tuples(p, 2)
        for b, (s0, c) in enumerate(zip(starts, self.block_counts)):
            wb, fb = w[s0:s0 + c], f[s0:s0 + c]
            wsum[b] = wb.sum()
            g1 = (fb * wb[:, None]).T @ fb
            for n in orders:
                if n == 2:
                    sums[2][b] = g1[pairs[:, 0], pairs[:, 1]]
                elif n == 4:
                    q = fb[:, pairs[:, 0]] * fb[:, pairs[:, 1]]
                    g2 = (q * wb[:, None]).T @ q
                    rows, cols = _half_index(p, 4)
                    sums[4][b] = g2[rows, cols]
                else:
                    raise ValueError(f"orders must be 2 or 4, got {n}.")
        return wsum, sums

    def jackknife(self, fn, deformations: Sequence, orders=(2, 4)):
        """Delete-one-block jackknife of `fn([moments_1, moments_2, ...]) -> array`, one dict
        order → reweighted moments (sorted tuples) per deformation, all on the same draws.

        **Returns:** `(bias-corrected estimate, standard error)`.
        """
        return reweighted_jackknife(fn, [(self, d) for d in deformations], orders=orders)

    def _full(self, v, order, full):
        return to_full(np.asarray(v), self.n_points, order) if full else np.asarray(v)

    def connected(self, order: int, deformation=0.0, *, full: bool = True):
        """(κ, stderr) of the reweighted connected `order`-pt function (2 or 4)."""
        order = _check_order(order)
        p = self.n_points
        est, err = self.jackknife(lambda ms: connected_from_moments(ms[0], p, order),
                                  [deformation], orders=tuple(n for n in (2, 4) if n <= order))
        return self._full(est, order, full), self._full(err, order, full)

    def connected_shift(self, order: int, deformation, reference=0.0, *, full: bool = True):
        """(κ_deformation − κ_reference, stderr) on the same draws (jackknife of the difference)."""
        order = _check_order(order)
        p = self.n_points

        def fn(ms):
            return (connected_from_moments(ms[0], p, order)
                    - connected_from_moments(ms[1], p, order))

        est, err = self.jackknife(fn, [deformation, reference],
                                  orders=tuple(n for n in (2, 4) if n <= order))
        return self._full(est, order, full), self._full(err, order, full)


def reweighted_jackknife(fn, pairs: Sequence, orders=(2, 4), *, extra=None,
                         replicates: bool = False):
    """Delete-one-block jackknife of `fn([moments_1, moments_2, ...]) -> array` over several
    (FieldSample, deformation) `pairs` on the same draws and blocks (e.g. a sample and its
    frequency-filtered twin from the same key, each weighted by its own deformation); block k
    leaves every sample at once, numerators and weight normalisations. With `extra` `(M, K)`
    (per-network statistics, e.g. a control variate), `fn(moments, extra_mean)` also gets their
    plain (unweighted) mean, left out with the same blocks.

    **Returns:** `(bias-corrected estimate, standard error)`, and the leave-one-block-out values
    `(B, ...)` as a third element with `replicates=True` (for covariances).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("`pairs` must hold at least one (FieldSample, deformation).")
    first = pairs[0][0]
    for fs, _ in pairs:
        if not isinstance(fs, FieldSample):
            raise TypeError(f"`pairs` must hold (FieldSample, deformation), got {type(fs).__name__}.")
        if fs.n_nets != first.n_nets or not np.array_equal(fs.block_counts, first.block_counts):
            raise ValueError("the FieldSamples of `pairs` must have the same networks and blocks "
                             "(same n_nets, n_blocks; draw them from one key).")
    data = [fs._block_sums(_as_deformation(d), orders) for fs, d in pairs]
    full_ms = [{n: s.sum(0) / w.sum() for n, s in sums.items()} for w, sums in data]
    rep_ms = [{n: (s.sum(0)[None] - s) / (w.sum() - w)[:, None] for n, s in sums.items()}
              for w, sums in data]
    if extra is None:
        full, reps = fn(full_ms), fn(rep_ms)
    else:
        extra = np.asarray(extra, dtype=np.float64)
        if extra.ndim != 2 or extra.shape[0] != first.n_nets:
            raise ValueError(f"`extra` must have shape (n_nets, K) = ({first.n_nets}, K), got "
                             f"{extra.shape}.")
        counts = np.asarray(first.block_counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        esum = np.add.reduceat(extra, starts, axis=0)  # (B, K)
        full = fn(full_ms, esum.sum(0) / counts.sum())
        reps = fn(rep_ms, (esum.sum(0)[None] - esum) / (counts.sum() - counts)[:, None])
    reps = np.asarray(reps)
    b = reps.shape[0]
    mean = reps.mean(axis=0)
    est = b * np.asarray(full) - (b - 1) * mean
    err = np.sqrt((b - 1) / b * np.sum((reps - mean) ** 2, axis=0))
    return (est, err, reps) if replicates else (est, err)


def _check_order(order):
    if order not in (2, 4):
        raise ValueError(f"`order` must be 2 or 4, got {order!r}.")
    return order


@jax.jit
def _batch_stats(params, xs, nodes, qw, max_frequency):
    a, c, w = params
    a = jnp.where(jnp.linalg.norm(w, axis=-1) <= max_frequency, a, 0.0)
    filtered = (a, c, w)
    fx = FreeCosNet.field(filtered, xs)
    fg = FreeCosNet.field(filtered, nodes)  # (B, Q)
    f2 = fg * fg
    ints = jnp.stack([f2 @ qw, (f2 * f2) @ qw, (f2 * f2 * f2) @ qw], axis=-1)
    return fx, ints


def sample_fields(net: FreeCosNet, xs, n_nets: int, *, key, box, n_grid: int | None = None,
                  max_frequency: float | None = None, n_blocks: int = 32,
                  batch_size: int | None = None) -> FieldSample:
    """Draw `n_nets` networks (network g from `fold_in(key, g)`, as `rgflow.measure`) and
    record their fields at `xs` and I_k = ∫_V f^k, k = 2, 4, 6 (module docstring).

    **Arguments:** `net` a `rgflow.FreeCosNet`; `xs` `(P, d_in)`; `box` [lo, hi] per dimension;
    `n_grid` Gauss–Legendre nodes per axis (default ⌈1.5 n_Nyquist⌉ + 8; fewer than
    n_Nyquist raises); `max_frequency` Λ' (keep neurons with |w| ≤ Λ' only); `n_blocks` B
    jackknife blocks; `batch_size` networks per compiled step (a speed knob only).

    **Returns:** a `rgflow.FieldSample`.
    """
    if not isinstance(net, FreeCosNet):
        raise TypeError(f"`net` must be a rgflow.FreeCosNet, got {type(net).__name__}.")
    key = check_key(key)
    xs = check_inputs(xs, net.d_in)
    n_nets, n_blocks = check_ensemble("n_nets", n_nets, n_blocks)
    box = check_box(box, net.d_in)
    if max_frequency is not None:
        max_frequency = _finite_real("max_frequency", max_frequency)
        if max_frequency <= 0:
            raise ValueError(f"`max_frequency` must be > 0, got {max_frequency}.")
    n_min = nyquist_points(net, box, max_frequency)
    if n_grid is None:
        n_grid = math.ceil(1.5 * n_min) + 8
    n_grid = check_positive_int("n_grid", n_grid)
    if n_grid < n_min:
        raise ValueError(f"`n_grid` = {n_grid} nodes per axis is too coarse for the cutoff: f⁴ "
                         f"has frequencies up to 4Λ = {4 * max_frequency_of(net, max_frequency):g}"
                         f", which needs at least n_Nyquist = {n_min} (default "
                         f"{math.ceil(1.5 * n_min) + 8}).")
    nodes, qw = box_quadrature(box, n_grid)
    q = nodes.shape[0]
    if batch_size is None:
        batch_size = max(8, min(4096, 2**21 // (net.width * (q + xs.shape[0]))))
    batch_size = check_positive_int("batch_size", batch_size)
    lam = jnp.float64(np.inf if max_frequency is None else max_frequency)
    fields, ints = [], []
    xs_j, nodes_j, qw_j = jnp.asarray(xs), jnp.asarray(nodes), jnp.asarray(qw)
    for start in range(0, n_nets, batch_size):
        index = start + jnp.arange(batch_size, dtype=jnp.uint32)  # last batch: extra, dropped
        fx, it = _batch_stats(draw_jit(net, key, index), xs_j, nodes_j, qw_j, lam)
        keep = min(batch_size, n_nets - start)
        fields.append(np.asarray(fx)[:keep])
        ints.append(np.asarray(it)[:keep])
    fields, ints = np.concatenate(fields), np.concatenate(ints)
    if not (np.all(np.isfinite(fields)) and np.all(np.isfinite(ints))):
        raise ValueError("the sampled fields or their box integrals are not finite.")
    _, counts = _block_layout(n_nets, n_blocks)
    return FieldSample(net=net, xs=xs, box=box, n_grid=n_grid, max_frequency=max_frequency,
                       fields=fields, integrals=ints, block_counts=counts)


# ------------------------------------------------------------------- O(λ) predictions ---


def tree_four_point(net: FreeCosNet, xs, box, n_grid: int, *, coupling: float = 1.0,
                    full: bool = True):
    """−λ ∫_V d^dy Π_{i=1..4} G(x_i − y) on the sorted 4-tuples (the O(λ) tree diagram,
    S_int = λ/4! ∫f⁴), with the Gauss–Legendre rule of `sample_fields`."""
    xs = check_inputs(xs, net.d_in)
    box = check_box(box, net.d_in)
    nodes, qw = box_quadrature(box, n_grid)
    g = net.propagator(np.linalg.norm(xs[:, None] - nodes[None], axis=-1))  # (P, Q)
    t = sorted_tuples(xs.shape[0], 4)
    val = -coupling * np.einsum("tq,q->t", g[t[:, 0]] * g[t[:, 1]] * g[t[:, 2]] * g[t[:, 3]], qw)
    return to_full(val, xs.shape[0], 4) if full else val


def tadpole_two_point(net: FreeCosNet, xs, box, n_grid: int, *, coupling: float = 0.0,
                      mass_shift: float = 0.0, full: bool = True):
    """δG2(x₁, x₂) = −(λ/2 G(0) + δm²) ∫_V d^dy G(x₁ − y) G(y − x₂) (tadpole + mass term)."""
    xs = check_inputs(xs, net.d_in)
    box = check_box(box, net.d_in)
    nodes, qw = box_quadrature(box, n_grid)
    g = net.propagator(np.linalg.norm(xs[:, None] - nodes[None], axis=-1))
    full_mat = -(0.5 * coupling * net.g0 + mass_shift) * (g * qw) @ g.T
    if full:
        return full_mat
    t = sorted_tuples(xs.shape[0], 2)
    return full_mat[t[:, 0], t[:, 1]]


# ------------------------------------------- the same predictions from the action code ---


def deformation_action(net: FreeCosNet, deformation):
    """The library's `rgflow.Action` of the deformed ensemble: the free cos-net's GP plus
    `LocalCoupling(4, λ/4!)` (its convention is g ∫ f⁴ without 1/k!, so g = λ/4!). The mass term
    δm²/2 ∫ f² is not an interaction of `Action` (G2 = K there); `diagram_prediction` adds it."""
    from ._actions import Action, LocalCoupling

    if not isinstance(net, FreeCosNet):
        raise TypeError(f"`net` must be a rgflow.FreeCosNet, got {type(net).__name__}.")
    d = _as_deformation(deformation)
    if d.coupling6 != 0:
        raise ValueError("`deformation` has a φ⁶ term: its O(g₆) 4-pt function is a tadpole, "
                         "which the action's tree-level prediction does not contain.")
    return Action(net, (LocalCoupling(4, d.coupling / 24),))


def diagram_prediction(net: FreeCosNet, deformation, xs, box, *, options=None):
    """The O(λ, δm²) tree 4-pt and tadpole 2-pt shifts of the deformed ensemble from the
    library's action and diagram code (`rgflow.connected_correlator`, `vertex_integrals`),
    an independent route to `tree_four_point` / `tadpole_two_point` (physics.md §12):

        δG4_c = −4! g ∫_V Π_i G(x_i − y),   δG2 = −(4·3 g G(0) + δm²) ∫_V G(x₁ − y) G(y − x₂),

    g = λ/4!. The action code integrates over [−L, L]^d; the free field is translation
    invariant, so the points are shifted by the centre of the cubic box V (equal sides).
    d_in = 1 or 3 (the traced propagator).

    **Returns:** `(four_point, two_point)` on `rgflow.sorted_tuples(P, 4)` and `(P, 2)`.
    """
    from ._integrals import vertex_integrals
    from ._predict import connected_correlator

    action = deformation_action(net, deformation)
    d = _as_deformation(deformation)
    xs = check_inputs(xs, net.d_in)
    box = check_box(box, net.d_in)
    sides = np.array([hi - lo for lo, hi in box])
    if not np.allclose(sides, sides[0], rtol=1e-12, atol=0.0):
        raise ValueError(f"`box` must be a cube (equal sides) for the action code, got {box}.")
    centre = np.array([0.5 * (lo + hi) for lo, hi in box])
    half = jnp.asarray([0.5 * sides[0]])
    shifted = xs - centre
    four = connected_correlator(action, shifted, half, 4, options=options)[0]
    i2 = vertex_integrals(net, shifted, half, 2, options=options)[0]
    g = action.interactions[0].coupling
    two = -(12 * g * net.g0 + d.mass_shift) * i2
    return np.asarray(four), np.asarray(two)
