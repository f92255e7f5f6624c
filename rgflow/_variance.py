"""Variance-reduced Monte Carlo estimators of the connected correlators (issue 7, item 2).

Brute force (`rgflow.measure`) needs M >> N² networks to see the 4-pt cumulant at width N: its
standard error is ~√24 K²/√M while the signal falls like 1/N (physics.md §5). Two estimators that
exploit the architecture (physics.md §4) remove most of that noise. Both are **exactly unbiased**
(no O(1/M) plug-in bias) and report delete-one-block jackknife standard errors.

**Single-neuron estimator** (`measure_neurons`). f − b1 is a sum of N i.i.d. neuron terms, so
G4_c = (σ_W⁴/N) B4 and G6_c = (σ_W⁶/N²) B6 exactly, with B4 = 3 M4 − Σ_3 C C and
B6 = 15 M6 − 3 Σ_15 M4 C + 2 Σ_15 C C C built from one neuron's moments C = E[φφ], M4, M6.
Sampling M neurons (W0, b0 only: d_in + 1 normals each) gives the power sums S_n = Σ_i Π φ; the
products of expectations are estimated without bias by U-statistics over distinct neurons,

    (C C)_U    = (S2 S2 − S4) / (M(M−1)),        (M4 C)_U = (S4 S2 − S6) / (M(M−1)),
    (C C C)_U  = (S2 S2 S2 − Σ_3 S4 S2 + 2 S6) / (M(M−1)(M−2)),

so B4_U = 3 S4/M − (Σ_3 S2S2 − 3 S4)/(M(M−1)) = M/(M−1) × plug-in, and
B6_U = 15 S6/M − 3 (T42 − 15 S6)/(M(M−1)) + 2 (W3 − 3 T42 + 30 S6)/(M(M−1)(M−2)) with
T42 = Σ_{15 pairs} S2 S4(rest), W3 = Σ_{15 pairings} S2 S2 S2. One run predicts every width N at
once; its cost does not depend on N, and the relative error of G4_c(N) does not either.

**Rao–Blackwellised estimator** (`measure_conditional`). Given one network's hidden features
Φ (N × P), the output is exactly Gaussian, f | Φ ~ N(0, σ_b² + Σ_W), Σ_W = (σ_W²/N) ΦᵀΦ, and
E[Σ_W] = K_W is known in closed form. With D = Σ_W − K_W (mean zero), the Wick expansion of the
conditional moments gives exactly

    G2 − K = E[D] = 0,   G4_c = Σ_3 E[D_ab D_cd],   G6_c = Σ_15 E[D_ab D_cd D_ef],

so each network contributes the conditional expectations instead of one noisy f-product: W1 and
b1 are integrated out analytically (this also makes the f → −f symmetrisation exact: the
conditional law is symmetric), and the known GP moment K_W is subtracted as a control variate.
D ~ 1/√N, so one network's contribution to G4_c is O(1/N) like the signal: the relative error
per network is N-independent for G4_c (brute force: ∝ N) and ∝ √N for G6_c (brute force: ∝ N²).
It does not rely on the i.i.d. neuron scaling, only on the Gaussian last layer, and validates
the single-neuron estimator at a given N.

Networks / neurons draw from `fold_in(key, g)` per global index g, so results do not depend on
batch size or device count (blocks are spread over devices as in `rgflow.measure`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._ensemble import (
    BlockSums,
    _check_dtype,
    _ordered_sum,
    _preactivations,
    _run_blocks,
    mean_and_stderr,
)
from ._nets import AbstractNet, check_network_indices, standard_normals
from ._sharding import blocks_per_device, padded, resolve_devices, shard_blocks
from ._tuples import n_tuples, sorted_tuples, splits, to_full, wick_sum
from ._validate import (
    check_ensemble,
    check_inputs,
    check_key,
    check_memory,
    check_one_layer,
    check_positive_int,
)

_ORDERS = (2, 4, 6)


def _jackknife(fn, block_sums: dict, counts: np.ndarray):
    """(fn(total sums, M), delete-one-block jackknife standard error). `fn` is unbiased, so the
    full-sample value is returned as it is."""
    counts = np.asarray(counts, dtype=np.float64)
    total = {n: jnp.sum(s, axis=0) for n, s in block_sums.items()}
    m = counts.sum()
    full = fn(total, m)
    loo = {n: total[n][None] - s for n, s in block_sums.items()}
    reps = fn(loo, jnp.asarray(m - counts)[:, None])  # leave-one-block-out replicates
    b = counts.shape[0]
    mean_rep = jnp.mean(reps, axis=0)
    return full, jnp.sqrt((b - 1) / b * jnp.sum((reps - mean_rep) ** 2, axis=0))


def _output(values, n_points, order, full):
    values = jnp.asarray(values)
    return to_full(values, n_points, order) if full else values


def _check_net_inputs(net, xs):
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network, got {net!r}.")
    return check_inputs(xs, net.d_in)


# ----------------------------------------------------------------- single-neuron route ---


def neuron_brackets(sums: dict, m, n_points: int) -> dict:
    """Unbiased U-statistic estimates of B4 = 3M4 − Σ_3 CC and B6 (module docstring) and of C,
    from the neuron power sums `sums[n]` `(..., T_n)` over `m` neurons (m broadcasts as
    `(..., 1)`)."""
    m = jnp.asarray(m, dtype=jnp.float64)
    out = {2: sums[2] / m}
    if 4 not in sums:
        return out
    s2 = to_full(sums[2], n_points, 2)
    t4 = sorted_tuples(n_points, 4)
    s4 = sums[4]
    out[4] = 3 * s4 / m - (wick_sum(s2, t4) - 3 * s4) / (m * (m - 1))
    if 6 not in sums:
        return out
    t6 = sorted_tuples(n_points, 6)
    s4f = to_full(s4, n_points, 4)
    s6 = sums[6]
    t42 = 0.0
    for pair, rest in splits(6, 2):
        t42 = t42 + s2[..., t6[:, pair[0]], t6[:, pair[1]]] * s4f[
            ..., t6[:, rest[0]], t6[:, rest[1]], t6[:, rest[2]], t6[:, rest[3]]
        ]
    w3 = wick_sum(s2, t6)
    out[6] = (15 * s6 / m - 3 * (t42 - 15 * s6) / (m * (m - 1))
              + 2 * (w3 - 3 * t42 + 30 * s6) / (m * (m - 1) * (m - 2)))
    return out


class NeuronEstimate(BlockSums):
    """Single-neuron Monte Carlo sums, predicting the connected correlators at every width.

    Produced by `rgflow.measure_neurons`. **Fields:** `net` (its width is the default width of
    the accessors), `xs`, `n_neurons`, `block_counts` `(B,)`, `block_sums` (order →
    `(B, T_n)` sums over neurons of Π φ on the sorted tuples), `sum_squares` (order → `(T_n,)`).
    """

    net: AbstractNet
    xs: np.ndarray
    n_neurons: int = eqx.field(static=True)
    block_counts: np.ndarray
    block_sums: dict
    sum_squares: dict

    def neuron_moment(self, order: int, *, full: bool = True):
        """The single-neuron moment E[Π φ(z_a)] (C for order 2, M4, M6) and its standard error."""
        order = self._check(order)
        mean, err = mean_and_stderr(self.block_sums[order], self.sum_squares[order],
                                    self.n_neurons)
        return _output(mean, self.n_points, order, full), _output(err, self.n_points, order, full)

    def _estimate(self, order, width):
        order = self._check(order)
        width = self.net.width if width is None else check_positive_int("width", width)
        sw = self.net.sigma_w
        scale = {2: sw**2, 4: sw**4 / width, 6: sw**6 / width**2}[order]
        shift = self.net.sigma_b**2 if order == 2 else 0.0
        p = self.n_points
        sums = {n: s for n, s in self.block_sums.items() if n <= order}
        est, err = _jackknife(lambda s, m: neuron_brackets(s, m, p)[order], sums,
                              self.block_counts)
        return shift + scale * est, scale * err

    def connected(self, order: int, *, width: int | None = None, full: bool = True):
        """Unbiased estimate of the connected n-point function at `width` (default `net.width`):
        K for order 2, (σ_W⁴/N) B4 for 4, (σ_W⁶/N²) B6 for 6."""
        return _output(self._estimate(order, width)[0], self.n_points, order, full)

    def connected_stderr(self, order: int, *, width: int | None = None, full: bool = True):
        """Jackknife standard error of `connected(order, width=...)`."""
        return _output(self._estimate(order, width)[1], self.n_points, order, full)


def measure_neurons(
    net: AbstractNet,
    xs: Float[Array, "P d"],
    n_neurons: int,
    *,
    key: PRNGKeyArray,
    orders=(2, 4, 6),
    n_blocks: int = 64,
    batch_size: int | None = None,
    dtype=None,
    devices=None,
    checkpoint=None,
    progress: bool = False,
) -> NeuronEstimate:
    """Sample `n_neurons` single hidden neurons and estimate C, M4, M6 (see module docstring).

    The cost is that of `n_neurons` neurons, whatever width the result is later asked for.
    Arguments as `rgflow.measure` (neuron g draws (W0, b0) from `fold_in(key, g)`).
    """
    from ._ensemble import _check_orders

    key = check_key(key)
    xs = _check_net_inputs(net, xs)
    check_one_layer(net, "measure_neurons")
    n_neurons, n_blocks = check_ensemble("n_neurons", n_neurons, n_blocks, minimum=3, per_block=3)
    orders = _check_orders(orders)
    dtype_name = _check_dtype(dtype)
    devs = tuple(resolve_devices(devices))
    max_order = max(orders)
    accumulated = tuple(n for n in _ORDERS if n <= max_order)
    config = dict(kind="neuron", net=dataclasses.replace(net, width=1), xs=xs, n=n_neurons, n_blocks=n_blocks, key=key,
                  orders=accumulated, dtype=dtype_name)
    # the neuron sampler ignores the width: one compiled program (and batch size) for all N
    counts, sums, squares = _run_blocks(
        dataclasses.replace(net, width=1), xs, key, n_neurons, n_blocks, batch_size, max_order,
        dtype_name, devs, "neuron", checkpoint, config, progress,
    )
    return NeuronEstimate(
        net=net, xs=xs, n_neurons=n_neurons, block_counts=counts,
        block_sums={n: jnp.asarray(sums[n]) for n in accumulated},
        sum_squares={n: jnp.asarray(_ordered_sum(squares[n])) for n in accumulated},
    )


# ------------------------------------------------------------- Rao–Blackwellised route ---


@functools.cache
def _pair_tables(p: int):
    """Sorted pairs of P points; sorted pairs of those (for third moments)."""
    pairs = sorted_tuples(p, 2)
    t = pairs.shape[0]
    pp = sorted_tuples(t, 2)
    return pairs, pp


def _pair_pos(p: int, a, b):
    """Position of the sorted pair (min, max) of index arrays a, b among sorted_tuples(p, 2)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo * p - lo * (lo - 1) // 2 + (hi - lo)


def _conditional_block_fn(net, batch: int, n_batches: int, dtype):
    n, d = net.width, net.d_in
    scale = net.sigma_w**2 / n

    def fn(inputs, key, start, count):
        xs, kw_pairs = inputs
        p = xs.shape[0]
        pairs, pp = _pair_tables(p)
        ia, ib = jnp.asarray(pairs[:, 0]), jnp.asarray(pairs[:, 1])
        qa, qb = jnp.asarray(pp[:, 0]), jnp.asarray(pp[:, 1])
        xs_c = xs.astype(dtype)
        offsets = jnp.arange(batch, dtype=jnp.uint32)

        def body(carry, step):
            g1, g2, g3 = carry
            local = step * batch + offsets
            r = jax.vmap(lambda g: standard_normals(jax.random.fold_in(key, g), n * (d + 1),
                                                    dtype))(start + local)
            w0 = r[:, : n * d].reshape(-1, n, d) * (net.sigma_w / math.sqrt(d))
            b0 = r[:, n * d:] * net.sigma_b
            z = _preactivations(w0, b0, xs_c)  # (B, P, N)
            phi = net.phi(z, xs_c, axis=-2).astype(jnp.float64)
            sig = scale * jnp.sum(phi[:, ia] * phi[:, ib], axis=-1)  # (B, T2)
            dev = jnp.where((local < count)[:, None], sig - kw_pairs, 0.0)
            q = dev[:, qa] * dev[:, qb]
            return (g1 + jnp.sum(dev, axis=0), g2 + dev.T @ dev, g3 + dev.T @ q), None

        t = pairs.shape[0]
        zeros = (jnp.zeros(t), jnp.zeros((t, t)), jnp.zeros((t, pp.shape[0])))
        (g1, g2, g3), _ = jax.lax.scan(body, zeros, jnp.arange(n_batches, dtype=jnp.uint32))
        return {1: g1, 2: g2, 3: g3}

    return fn


@functools.lru_cache(maxsize=32)
def _conditional_round_fn(net, batch, n_batches, dtype_name, devices):
    return shard_blocks(_conditional_block_fn(net, batch, n_batches, jnp.dtype(dtype_name)),
                        devices)


def conditional_connected(sums: dict, m, n_points: int, order: int):
    """G_c on the sorted tuples from the sums of D, D⊗D, D⊗D⊗D over `m` networks."""
    p = n_points
    if order == 2:
        return sums[1] / m
    t = sorted_tuples(p, order)
    if order == 4:
        e2 = sums[2] / m[..., None] if jnp.ndim(m) else sums[2] / m
        total = 0.0
        for (a, b), (c, e) in ((((0, 1), (2, 3))), (((0, 2), (1, 3))), (((0, 3), (1, 2)))):
            total = total + e2[..., _pair_pos(p, t[:, a], t[:, b]), _pair_pos(p, t[:, c], t[:, e])]
        return total
    tcount = n_tuples(p, 2)
    e3 = sums[3] / m[..., None] if jnp.ndim(m) else sums[3] / m
    total = 0.0
    from ._tuples import pairings

    for pairing in pairings(6):
        p1, p2, p3 = (_pair_pos(p, t[:, a], t[:, b]) for a, b in pairing)
        # E[D_p1 D_p2 D_p3] is stored at [p1, sorted pair (p2, p3)]
        total = total + e3[..., p1, _pair_pos(tcount, p2, p3)]
    return total


class ConditionalEstimate(eqx.Module):
    """Rao–Blackwellised Monte Carlo sums at one width (see module docstring).

    Produced by `rgflow.measure_conditional`. **Fields:** `net`, `xs`, `n_nets`,
    `block_counts` `(B,)`, `kernel_w` (the exact K_W on the sorted pairs), `block_sums`
    (1: `(B, T2)` sums of D; 2: `(B, T2, T2)` of D⊗D; 3: `(B, T2, T2(T2+1)/2)` of D⊗D⊗D).
    """

    net: AbstractNet
    xs: np.ndarray
    n_nets: int = eqx.field(static=True)
    block_counts: np.ndarray
    kernel_w: np.ndarray
    block_sums: dict

    __check_init__ = BlockSums.__check_init__  # refuse non-finite (overflowed) sums

    @property
    def n_points(self) -> int:
        return self.xs.shape[0]

    def _estimate(self, order):
        if order not in _ORDERS:
            raise ValueError(f"`order` must be one of {_ORDERS}, got {order!r}.")
        need = {2: (1,), 4: (2,), 6: (3,)}[order]
        sums = {k: self.block_sums[k] for k in need}
        est, err = _jackknife(lambda s, m: conditional_connected(s, m, self.n_points, order),
                              sums, self.block_counts)
        if order == 2:
            est = est + self.kernel_w + self.net.sigma_b**2
        return est, err

    def connected(self, order: int, *, full: bool = True):
        """Unbiased estimate of the connected n-point function (order 2: the kernel K)."""
        return _output(self._estimate(order)[0], self.n_points, order, full)

    def connected_stderr(self, order: int, *, full: bool = True):
        """Jackknife standard error of `connected(order)`."""
        return _output(self._estimate(order)[1], self.n_points, order, full)


def measure_conditional(
    net: AbstractNet,
    xs: Float[Array, "P d"],
    n_nets: int,
    *,
    key: PRNGKeyArray,
    n_blocks: int = 64,
    batch_size: int | None = None,
    dtype=None,
    devices=None,
) -> ConditionalEstimate:
    """Rao–Blackwellised measurement of G2, G4_c, G6_c at `net.width` from `n_nets` networks'
    hidden layers (W0, b0 only; network g draws N(d_in + 1) normals from `fold_in(key, g)`)."""
    key = check_key(key)
    xs = _check_net_inputs(net, xs)
    check_one_layer(net, "measure_conditional", "rgflow.measure(net, xs, n_nets, key=key)")
    n_nets, n_blocks = check_ensemble("n_nets", n_nets, n_blocks)
    check_network_indices(n_nets)
    dtype_name = _check_dtype(dtype)
    devs = tuple(resolve_devices(devices))
    p0 = xs.shape[0]
    check_memory(8.0 * net.width * (net.d_in + 2 + 3 * p0 + p0 * (p0 + 1) // 2),
                 f"the hidden layer of one network of width {net.width}", devices=devs)
    from ._ensemble import _block_layout

    p = xs.shape[0]
    pairs, pp = _pair_tables(p)
    kw = np.asarray(net.kernel_w(jnp.asarray(xs), jnp.asarray(xs)))[pairs[:, 0], pairs[:, 1]]
    starts, counts = _block_layout(n_nets, n_blocks)
    per_block = int(counts.max())
    if batch_size is None:
        per_net = net.width * (net.d_in + 2 + 3 * p + pairs.shape[0]) + 2 * pp.shape[0]
        batch_size = int(max(1, min(per_block, 4096, 2**20 // per_net)))
    batch_size = check_positive_int("batch_size", batch_size)
    n_batches = math.ceil(per_block / batch_size)
    from ._distributed import check_same_run, gather_blocks, process_share

    # under jax.distributed: this process's share of the blocks, then one all-gather
    check_same_run(kind="conditional", net=net, xs=xs, n_nets=n_nets, n_blocks=n_blocks,
                   key=key, dtype=dtype_name, batch_size=batch_size)
    lo, hi = process_share(n_blocks)
    fn = _conditional_round_fn(net, batch_size, n_batches, dtype_name, devs)
    inputs = (jnp.asarray(xs), jnp.asarray(kw))
    out = {k: [] for k in (1, 2, 3)}
    size = len(devs) * blocks_per_device(hi - lo, len(devs), False)
    for first in range(lo, hi, size):
        blocks = np.arange(first, min(first + size, hi))
        res = fn(inputs, key, padded(starts[blocks], size), padded(counts[blocks], size))
        for k in out:
            out[k].append(res[k][: blocks.size])
    out = gather_blocks({k: np.concatenate(v) for k, v in out.items()}, lo, hi, n_blocks)
    return ConditionalEstimate(
        net=net, xs=xs, n_nets=n_nets, block_counts=counts, kernel_w=kw,
        block_sums={k: jnp.asarray(v) for k, v in out.items()},
    )
