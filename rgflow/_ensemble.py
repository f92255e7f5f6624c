"""Streaming Monte Carlo measurement of network correlators (physics.md §5).

The ensemble is cut into `n_blocks` contiguous blocks of networks; each block is a jitted
`lax.scan` over fixed-size batches that draws the networks (keys `fold_in(key, g)` per global
network index g, so the numbers do not depend on the batch size) and adds, for every even order
n <= max(orders), the sums of Π_{a∈T} f(x_a) and of its square over the index-sorted tuples T.
Memory is O(batch × (N·P + n_tuples)) whatever `n_nets` is.

**Estimators.** Odd moments vanish by the f → −f symmetry (physics.md §3), so moments are the
raw means m_T = ⟨Π f⟩ (no mean subtraction: the exact zero is used instead of its noisy
estimate). `moment_stderr` is the standard error of that mean, from the per-tuple sums of squares
(s/√M with the unbiased sample variance). Connected correlators are smooth functions of the
moments,

    κ4 = m4 − Σ_3 m2 m2,   κ6 = m6 − Σ_15 m2 m4 + 2 Σ_15 m2 m2 m2,

whose plug-in estimate has an O(1/M) bias; `connected` removes it with the delete-one-block
jackknife (θ_J = B θ − (B − 1) mean_b θ_(b), leaving O(1/M²)), and `connected_stderr` is the
jackknife standard error of the whole-ensemble estimate (not the spread of block estimates).

**Pitfall (heavy tails).** Gauss-net's φ = exp(z − S_xx) is log-normal: with σ_b = 1 the 6-pt
moment E[φ⁶] = e¹² is carried by events ~6σ out in z, so at any feasible M the sample 6-pt
moment is typically far *below* its expectation and its sample variance is meaningless. The
exact correlators (`rgflow.exact_moment`) are the reference there; Monte Carlo 6-pt functions
of Gauss-net are trustworthy only for small pre-activation variance (σ_b² + σ_W²|x|²/d ≲ 0.3).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._nets import AbstractNet, network_outputs
from ._tuples import n_tuples, prefix_index, sorted_tuples, splits, to_full, wick_sum
from ._validate import check_inputs, check_positive_int

_ORDERS = (2, 4, 6)


def connected_from_moments(moments: dict, n_points: int, order: int):
    """Connected correlator on the sorted tuples from even moments on sorted tuples.

    `moments[n]` has shape `(..., n_tuples(P, n))`; leading axes broadcast.
    """
    if order == 2:
        return moments[2]
    m2 = to_full(moments[2], n_points, 2)
    t = sorted_tuples(n_points, order)
    if order == 4:
        return moments[4] - wick_sum(m2, t)
    m4 = to_full(moments[4], n_points, 4)
    mixed = 0.0
    for pair, rest in splits(6, 2):
        mixed = mixed + m2[..., t[:, pair[0]], t[:, pair[1]]] * m4[
            ..., t[:, rest[0]], t[:, rest[1]], t[:, rest[2]], t[:, rest[3]]
        ]
    return moments[6] - mixed + 2 * wick_sum(m2, t)


class Measurement(eqx.Module):
    """Monte Carlo moments of an ensemble of networks, with error bars (physics.md §5).

    Produced by `rgflow.measure`. Every accessor returns a full symmetric array of shape
    `(P,)*order` (or, with `full=False`, the values on `rgflow.sorted_tuples(P, order)`).

    **Fields:**

    - `net`: the network configuration that was sampled.
    - `xs`: the inputs `(P, d_in)`.
    - `n_nets`: the number of networks M.
    - `block_counts`: networks per block `(B,)`.
    - `block_sums`: for each even order n, the per-block sums of Π f over sorted tuples `(B, T_n)`.
    - `sum_squares`: for each even order n, the sums of (Π f)² over all networks `(T_n,)`.
    """

    net: AbstractNet
    xs: np.ndarray
    n_nets: int = eqx.field(static=True)
    block_counts: np.ndarray
    block_sums: dict
    sum_squares: dict

    @property
    def n_points(self) -> int:
        return self.xs.shape[0]

    @property
    def orders(self) -> tuple[int, ...]:
        return tuple(sorted(self.block_sums))

    def _check(self, order) -> int:
        if order not in self.block_sums:
            raise ValueError(f"`order` must be one of the measured orders {self.orders}, got {order!r}.")
        return order

    def _out(self, values, order, full):
        values = jnp.asarray(values)
        return to_full(values, self.n_points, order) if full else values

    def _means(self) -> dict:
        return {n: jnp.sum(s, axis=0) / self.n_nets for n, s in self.block_sums.items()}

    def moment(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """The estimated moment G_n = ⟨f(x_1)…f(x_n)⟩."""
        order = self._check(order)
        return self._out(self._means()[order], order, full)

    def moment_stderr(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Standard error of `moment(order)`: √(s²/M), s² the unbiased sample variance."""
        order = self._check(order)
        m = self.n_nets
        mean = self._means()[order]
        var = (self.sum_squares[order] / m - mean**2) * m / (m - 1)
        return self._out(jnp.sqrt(jnp.maximum(var, 0.0) / m), order, full)

    def jackknife(self, fn):
        """Delete-one-block jackknife of `fn(moments) -> array`, `moments` a dict order → means.

        **Returns:** `(bias_corrected_estimate, standard_error)`.
        """
        b = self.block_counts.shape[0]
        counts = jnp.asarray(self.block_counts, dtype=jnp.float64)
        full = fn(self._means())
        loo = {
            n: (jnp.sum(s, axis=0)[None] - s) / (self.n_nets - counts)[:, None]
            for n, s in self.block_sums.items()
        }
        reps = fn(loo)
        mean_rep = jnp.mean(reps, axis=0)
        estimate = b * full - (b - 1) * mean_rep
        stderr = jnp.sqrt((b - 1) / b * jnp.sum((reps - mean_rep) ** 2, axis=0))
        return estimate, stderr

    def _connected(self, order):
        order = self._check(order)
        needed = [n for n in _ORDERS if n <= order]
        missing = [n for n in needed if n not in self.block_sums]
        if missing:
            raise ValueError(f"the connected {order}-pt function needs the moments of orders {needed}.")
        return self.jackknife(lambda mom: connected_from_moments(mom, self.n_points, order))

    def connected(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Jackknife bias-corrected connected n-point function (cumulant) κ_n."""
        return self._out(self._connected(order)[0], order, full)

    def connected_stderr(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Jackknife standard error of `connected(order)`."""
        return self._out(self._connected(order)[1], order, full)

    def merge(self, other: Measurement) -> Measurement:
        """Pool two measurements of the same configuration on disjoint networks."""
        if self.net != other.net or not np.array_equal(self.xs, other.xs):
            raise ValueError("`other` must measure the same network and inputs.")
        if set(self.block_sums) != set(other.block_sums):
            raise ValueError("`other` must measure the same orders.")
        return Measurement(
            net=self.net,
            xs=self.xs,
            n_nets=self.n_nets + other.n_nets,
            block_counts=np.concatenate([self.block_counts, other.block_counts]),
            block_sums={
                n: jnp.concatenate([s, other.block_sums[n]]) for n, s in self.block_sums.items()
            },
            sum_squares={n: s + other.sum_squares[n] for n, s in self.sum_squares.items()},
        )


def _auto_batch(net: AbstractNet, n_points: int, max_order: int, per_block: int) -> int:
    per_net = net.width * (net.d_in + 2 + 2 * n_points) + sum(
        n_tuples(n_points, n) for n in range(1, max_order + 1)
    )
    return int(max(1, min(per_block, 4096, 2**21 // per_net)))


@eqx.filter_jit
def _block_sums(net, xs, key, start, count, batch: int, n_batches: int, max_order: int):
    """Sums of Π f and (Π f)² over sorted tuples for networks start..start+count−1."""
    p = xs.shape[0]
    prefixes = {n: jnp.asarray(prefix_index(p, n)) for n in range(2, max_order + 1)}
    lasts = {n: jnp.asarray(sorted_tuples(p, n)[:, -1]) for n in range(2, max_order + 1)}
    even = [n for n in _ORDERS if n <= max_order]
    offsets = jnp.arange(batch, dtype=jnp.uint32)

    def body(carry, k):
        sums, squares = carry
        local = k * batch + offsets
        mask = (local < count).astype(xs.dtype)
        f = network_outputs(net, xs, key, start + local)  # (batch, P)
        prod = f
        new_sums, new_squares = dict(sums), dict(squares)
        for n in range(2, max_order + 1):
            prod = prod[:, prefixes[n]] * f[:, lasts[n]]
            if n in sums:
                new_sums[n] = sums[n] + mask @ prod
                new_squares[n] = squares[n] + mask @ (prod * prod)
        return (new_sums, new_squares), None

    zeros = {n: jnp.zeros(n_tuples(p, n), xs.dtype) for n in even}
    (sums, squares), _ = jax.lax.scan(
        body, (zeros, dict(zeros)), jnp.arange(n_batches, dtype=jnp.uint32)
    )
    return sums, squares


def _block_layout(n_nets: int, n_blocks: int):
    base, extra = divmod(n_nets, n_blocks)
    counts = np.array([base + (1 if b < extra else 0) for b in range(n_blocks)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return starts, counts


def _check_orders(orders) -> tuple[int, ...]:
    try:
        orders = tuple(sorted(set(int(o) for o in orders)))
    except TypeError as e:
        raise TypeError(f"`orders` must be a sequence drawn from {_ORDERS}, got {orders!r}.") from e
    if not orders or any(o not in _ORDERS for o in orders):
        raise ValueError(f"`orders` must be a non-empty subset of {_ORDERS}, got {orders!r}.")
    return orders


def measure(
    net: AbstractNet,
    xs: Float[Array, "P d"],
    n_nets: int,
    *,
    key: PRNGKeyArray,
    orders: Sequence[int] = (2, 4, 6),
    n_blocks: int = 32,
    batch_size: int | None = None,
    progress: bool = False,
    checkpoint=None,
) -> Measurement:
    """Measure the 2-, 4-, 6-point functions of `n_nets` random networks (physics.md §5).

    **Arguments:**

    - `net`: the network configuration (e.g. `rgflow.ErfNet(width=5)`).
    - `xs`: inputs of shape `(P, d_in)`.
    - `n_nets`: the ensemble size M >= 2.
    - `key`: a `jax.random` key; network g uses `fold_in(key, g)`, so results are identical
      for any `batch_size` (and device layout).
    - `orders`: the even orders to report; all even orders up to the largest are accumulated
      (the connected 6-pt function needs the 2- and 4-pt moments).
    - `n_blocks`: number of jackknife blocks B (2 <= B <= M).
    - `batch_size`: networks per scan step; default keeps each step's working set ~16 MB.
    - `progress`: show a tqdm progress bar over blocks.
    - `checkpoint`: optional path of an `.npz` file; the running block sums are saved there
      (atomically) after each block, and a run with the same configuration resumes from it.

    **Returns:** a `rgflow.Measurement`.
    """
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network, got {net!r}.")
    xs = check_inputs(xs, net.d_in)
    n_nets = check_positive_int("n_nets", n_nets, minimum=2)
    n_blocks = check_positive_int("n_blocks", n_blocks, minimum=2)
    if n_blocks > n_nets:
        raise ValueError(f"`n_blocks` must be <= n_nets = {n_nets}, got {n_blocks}.")
    orders = _check_orders(orders)
    max_order = max(orders)
    accumulated = tuple(n for n in _ORDERS if n <= max_order)
    starts, counts = _block_layout(n_nets, n_blocks)
    per_block = int(counts.max())
    if batch_size is None:
        batch_size = _auto_batch(net, xs.shape[0], max_order, per_block)
    batch_size = check_positive_int("batch_size", batch_size)
    n_batches = math.ceil(per_block / batch_size)

    from ._checkpoint import BlockCheckpoint

    ckpt = BlockCheckpoint.open(
        checkpoint, net=net, xs=xs, n_nets=n_nets, n_blocks=n_blocks, key=key, orders=accumulated
    )
    sums = {n: np.zeros((n_blocks, n_tuples(xs.shape[0], n))) for n in accumulated}
    squares = {n: np.zeros(n_tuples(xs.shape[0], n)) for n in accumulated}
    done = ckpt.restore(sums, squares) if ckpt is not None else 0

    xs_j = jnp.asarray(xs)
    blocks = range(done, n_blocks)
    if progress:
        from tqdm.auto import tqdm

        blocks = tqdm(blocks, desc=f"{net.name} N={net.width}", unit="block", initial=done,
                      total=n_blocks)
    for b in blocks:
        s, q = _block_sums(
            net, xs_j, key, jnp.uint32(starts[b]), jnp.uint32(counts[b]),
            batch_size, n_batches, max_order,
        )
        for n in accumulated:
            sums[n][b] = np.asarray(s[n])
            squares[n] += np.asarray(q[n])
        if ckpt is not None:
            ckpt.save(b + 1, sums, squares)
    return Measurement(
        net=net,
        xs=xs,
        n_nets=n_nets,
        block_counts=counts,
        block_sums={n: jnp.asarray(sums[n]) for n in accumulated},
        sum_squares={n: jnp.asarray(squares[n]) for n in accumulated},
    )


def measure_widths(
    net: AbstractNet,
    xs: Float[Array, "P d"],
    n_nets: int,
    widths: Sequence[int],
    *,
    key: PRNGKeyArray,
    **kwargs,
) -> dict[int, Measurement]:
    """Run `measure` for each width in `widths` (other fields of `net` fixed).

    Width N uses the key `fold_in(key, N)`, so the ensembles of different widths are independent
    and each is reproducible on its own. Keyword arguments are passed to `measure`.

    **Returns:** a dict width → `Measurement`.
    """
    widths = [check_positive_int("widths", w) for w in widths]
    if not widths:
        raise ValueError("`widths` must contain at least one width.")
    return {
        w: measure(dataclasses.replace(net, width=w), xs, n_nets, key=jax.random.fold_in(key, w),
                   **kwargs)
        for w in widths
    }
