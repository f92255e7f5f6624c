"""Streaming Monte Carlo measurement of network correlators (physics.md §5).

The ensemble is cut into `n_blocks` contiguous blocks of networks. Each block is a jitted
loop over fixed-size batches that draws the networks (keys `fold_in(key, g)` per global
network index g, so the numbers do not depend on the batch size) and accumulates, for every even
order 2k <= max(orders), the Gram matrices Q_kᵀQ_k and (Q_k²)ᵀ(Q_k²) of the k-fold products
Q_k of the outputs; the sums of Π f and of (Π f)² over the index-sorted 2k-tuples are entries of
those (BLAS instead of 923 gathered products per network). Blocks run in rounds of one block per
device (`rgflow._sharding`, `jax.shard_map`); a block's sums do not depend on the device that
ran it, so any device count gives identical numbers, and the per-block sums are what a checkpoint
stores. Memory is O(batch × (N·P + n_tuples)) whatever `n_nets` is.

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
import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._nets import (
    AbstractNet,
    ErfNet,
    GaussNet,
    GenericNet,
    ReLUNet,
    _is_threefry,
    check_network_indices,
    fold_in_data,
    standard_normals,
    stream_normals,
)
from ._sharding import blocks_per_device, padded, resolve_devices, shard_blocks
from ._tuples import n_tuples, prefix_index, sorted_tuples, splits, to_full, wick_sum
from ._validate import (
    check_ensemble,
    check_inputs,
    check_key,
    check_memory,
    check_orders,
    check_positive_int,
    key_identity,
)

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


def mean_and_stderr(block_sums, sum_squares, m: int):
    """Mean of Π over m samples and its standard error √(s²/m) (s² the unbiased sample variance),
    from per-block sums `(B, T)` and the total sums of squares `(T,)`."""
    mean = jnp.sum(block_sums, axis=0) / m
    var = (sum_squares / m - mean**2) * m / (m - 1)
    return mean, jnp.sqrt(jnp.maximum(var, 0.0) / m)


def _jackknife(fn, block_sums: dict, counts, n_nets):
    """Delete-one-block jackknife of `fn(moments)` from per-block sums `(B, T_n)` over `counts`
    networks per block: `(B θ − (B − 1) mean_b θ_(b), √((B − 1)/B Σ_b (θ_(b) − mean)²))`."""
    b = counts.shape[0]
    full = fn({n: jnp.sum(s, axis=0) / n_nets for n, s in block_sums.items()})
    loo = {n: (jnp.sum(s, axis=0)[None] - s) / (n_nets - counts)[:, None]
           for n, s in block_sums.items()}
    reps = fn(loo)
    mean_rep = jnp.mean(reps, axis=0)
    estimate = b * full - (b - 1) * mean_rep
    stderr = jnp.sqrt((b - 1) / b * jnp.sum((reps - mean_rep) ** 2, axis=0))
    return estimate, stderr


@functools.partial(jax.jit, static_argnums=(3, 4))
def _connected_jackknife(block_sums, counts, n_nets, n_points: int, order: int):
    # compiled once per (shapes, order): the eager version took ~1 s of op-by-op compilation on
    # first use and ~60 ms per call after
    return _jackknife(lambda mom: connected_from_moments(mom, n_points, order), block_sums,
                      counts, n_nets)


class BlockSums(eqx.Module):
    """Shared accessors of Monte Carlo block sums over index-sorted tuples (`xs`, `block_sums`)."""

    @property
    def n_points(self) -> int:
        return self.xs.shape[0]

    @property
    def orders(self) -> tuple[int, ...]:
        return tuple(sorted(self.block_sums))

    def __check_init__(self):
        # a sampled output or product that overflowed (NaN/inf) must not become a silent NaN
        # moment: refuse it here, for every kind of block sums (networks, neurons)
        for n, s in getattr(self, "block_sums", {}).items():
            if not isinstance(s, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(s))):
                net = getattr(self, "net", None)
                raise ValueError(
                    f"the sampled products of order {n} are not finite (NaN or inf) for {net!r}: "
                    "the activation or the network outputs overflow float64 at these inputs, "
                    "σ_W or σ_b; use smaller inputs or σ, or float64 sampling."
                )

    def _check(self, order) -> int:
        if order not in self.block_sums:
            raise ValueError(f"`order` must be one of the measured orders {self.orders}, got {order!r}.")
        return order


class Measurement(BlockSums):
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
    - `key_ids`: digests of the PRNG keys the networks were drawn from (one per pooled run;
      empty if unknown); `merge` refuses to pool two measurements drawn from the same key.
    """

    net: AbstractNet
    xs: np.ndarray
    n_nets: int = eqx.field(static=True)
    block_counts: np.ndarray
    block_sums: dict
    sum_squares: dict
    key_ids: tuple = eqx.field(static=True, default=())

    def _out(self, values, order, full):
        # on the host (NumPy): eager jnp ops would compile a dozen tiny programs on first use
        values = np.asarray(values)
        # (device_put: `jnp.asarray` of a host array compiles a tiny program per shape)
        return jax.device_put(to_full(values, self.n_points, order) if full else values)

    def _means(self) -> dict:
        return {n: np.sum(np.asarray(s), axis=0) / self.n_nets for n, s in self.block_sums.items()}

    def moment(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """The estimated moment G_n = ⟨f(x_1)…f(x_n)⟩."""
        order = self._check(order)
        return self._out(self._means()[order], order, full)

    def moment_stderr(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Standard error of `moment(order)`: √(s²/M), s² the unbiased sample variance."""
        order = self._check(order)
        m = self.n_nets
        mean = np.sum(np.asarray(self.block_sums[order]), axis=0) / m
        var = (np.asarray(self.sum_squares[order]) / m - mean**2) * m / (m - 1)
        return self._out(np.sqrt(np.maximum(var, 0.0) / m), order, full)

    def jackknife(self, fn):
        """Delete-one-block jackknife of `fn(moments) -> array`, `moments` a dict order → means.

        **Returns:** `(bias_corrected_estimate, standard_error)`.
        """
        return _jackknife(fn, self.block_sums, jnp.asarray(self.block_counts, jnp.float64),
                          jnp.asarray(self.n_nets, jnp.float64))

    def _connected(self, order):
        order = self._check(order)
        needed = [n for n in _ORDERS if n <= order]
        missing = [n for n in needed if n not in self.block_sums]
        if missing:
            raise ValueError(f"the connected {order}-pt function needs the moments of orders {needed}.")
        sums = {n: self.block_sums[n] for n in needed}
        return _connected_jackknife(sums, np.asarray(self.block_counts, np.float64),
                                    np.float64(self.n_nets), self.n_points, order)

    def connected(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Jackknife bias-corrected connected n-point function (cumulant) κ_n."""
        return self._out(self._connected(order)[0], order, full)

    def connected_stderr(self, order: int, *, full: bool = True) -> Float[Array, "..."]:
        """Jackknife standard error of `connected(order)`."""
        return self._out(self._connected(order)[1], order, full)

    def merge(self, other: Measurement) -> Measurement:
        """Pool two measurements of the same configuration on disjoint networks.

        Refuses two measurements drawn from the same key: their networks g = 0, 1, ... are the
        same ones (`fold_in(key, g)`), so pooling would count them twice.
        """
        if not isinstance(other, Measurement):
            raise TypeError(f"`other` must be a rgflow.Measurement, got {type(other).__name__}.")
        shared = set(self.key_ids) & set(other.key_ids)
        if shared:
            raise ValueError(
                "`other` was drawn from the same key as this measurement: the networks "
                "fold_in(key, g) are the same ones and pooling would count them twice; measure "
                "the second ensemble with another key (e.g. jax.random.fold_in(key, 1))."
            )
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
            key_ids=tuple(self.key_ids) + tuple(other.key_ids),
        )


# ------------------------------------------------------------------------------ sampling ---


# Hidden neurons drawn per step of the neuron loop of the one-layer sampler. The draws do not
# depend on it (each neuron's parameters sit at fixed positions of its network's stream), so it
# is a pure speed knob: padding waste at small N against per-step overhead at large N.
_NEURON_CHUNK = 8


def _sample_outputs(net: AbstractNet, xs, key, index, dtype, width=None):
    """Outputs `(B, P)` of the networks with global indices `index`, drawn in `dtype`.

    **The dispatch point of the samplers.** An architecture with its own sampler adds one line at
    the top, e.g. `if isinstance(net, DeepNet): return _sample_deep(net, xs, key, index, dtype)`;
    such nets keep a static width (one compiled program per width). Only the one-layer nets in
    `_DYNAMIC_WIDTH` reach the code below with `width` a runtime value.

    One-layer nets: the networks of `rgflow._nets.network_outputs` (same layout of the draws of
    `fold_in(key, g)`; in float64 the same numbers up to rounding), computed `_NEURON_CHUNK`
    neurons at a time in a loop of ⌈N/chunk⌉ steps, the draws made directly at their stream
    positions (`stream_normals`) and neurons past N masked, so that `width` (default `net.width`)
    may be a traced integer: one compiled program serves every width. Contractions are written as
    broadcast-multiply-reduce with the neurons last, which XLA fuses.
    """
    if getattr(type(net), "is_deep", False):  # rgflow.DeepNet (physics.md §11)
        from ._deep import sample_deep_outputs

        if net.depth == 1:  # the networks of the equivalent one-layer net
            return _sample_one_layer(net.one_layer(), xs, key, index, dtype, net.width)

        return sample_deep_outputs(net, xs, key, index, dtype)
    from ._cosnet import CosNet  # nets with their own parameter layout
    from ._freefield import FreeCosNet

    if isinstance(net, (CosNet, FreeCosNet)):
        return net._sample_outputs(xs, key, index, dtype)
    return _sample_one_layer(net, xs, key, index, dtype, net.width if width is None else width)


def _sample_one_layer(net: AbstractNet, xs, key, index, dtype, width, chunk: int = _NEURON_CHUNK):
    d = net.d_in
    xs = xs.astype(dtype)
    # networks on the last axis throughout: the hash and the transforms vectorise over them
    # (measured 1.5x faster than with the draws of one network on the last axis)
    data = fold_in_data(jax.random.key_data(key), index).T  # (2, B): the keys fold_in(key, g)
    width = jnp.asarray(width, jnp.int32)
    scale = (net.sigma_w / jnp.sqrt(width.astype(jnp.float64))).astype(dtype)
    stride = chunk * (d + 2)
    lane = jnp.arange(chunk, dtype=jnp.int32)[:, None, None]

    def window(c):
        # draws c·stride … c·stride + stride + 1 `(stride + 2, B)`: b1 (c = 0) and the neurons
        # of chunk c, which start at draw 2 + c·stride. Carried from one step to the next:
        # loop-carried values are materialised, whereas XLA CPU otherwise fuses the hash and erf⁻¹
        # of each draw into every consumer and recomputes them there (measured 1.5-15x slower).
        return stream_normals(data, c.astype(jnp.uint32) * stride, stride + 2, dtype, axis=0)

    def body(c, carry):
        f, r = carry
        neurons = r[2:].reshape(chunk, d + 2, -1)
        b0 = neurons[:, d] * net.sigma_b  # (chunk, B)
        z = b0[:, None, :] + sum(neurons[:, k, None, :] * (xs[None, :, k, None] * (
            net.sigma_w / math.sqrt(d))) for k in range(d))  # (chunk, P, B)
        w1 = jnp.where(c * chunk + lane < width, neurons[:, d + 1, None, :], 0)  # past N: masked
        f = f + scale * jnp.sum(w1 * net.phi(z, xs, axis=-2), axis=0)
        f = f + jnp.where(c == 0, r[:1] * net.sigma_b, 0)  # b1
        return f, window(c + 1)

    f0 = jnp.zeros((xs.shape[0], index.shape[0]), dtype)
    n_chunks = (width + chunk - 1) // chunk
    f, _ = jax.lax.fori_loop(0, n_chunks, body, (f0, window(jnp.int32(0))))
    return f.T


def _preactivations(w0, b0, xs):
    """z `(B, P, N)` from W0 `(B, N, d)`, b0 `(B, N)`: neurons last, so that sums over them are
    contiguous reductions (2x faster on CPU than over a middle axis, measured)."""
    z = w0[:, None, :, 0] * xs[None, :, None, 0]
    for k in range(1, xs.shape[1]):
        z = z + w0[:, None, :, k] * xs[None, :, None, k]
    return z + b0[:, None, :]


# -------------------------------------------------------------------------- accumulation ---
#
# For order 2k the sums over networks of Π_{a∈T} f_a on the sorted 2k-tuples T are read off the
# Gram matrix Q_kᵀ Q_k of the k-fold products Q_k (B, C(P+k−1, k)): a sorted 2k-tuple is a sorted
# k-tuple (its first half) times another (its second half). The sums of squares come the same way
# from (Q_k²)ᵀ(Q_k²). So the per-network work is a few dozen products plus BLAS, instead of
# gathering all 923 products (orders 1..6, P = 6) and reducing each twice.


def _half_index(p: int, order: int):
    """For each sorted `order`-tuple, the positions of its two halves among the sorted k-tuples."""
    k = order // 2
    t = sorted_tuples(p, order)
    half = sorted_tuples(p, k)
    weights = p ** np.arange(k - 1, -1, -1)
    codes = half @ weights
    return np.searchsorted(codes, t[:, :k] @ weights), np.searchsorted(codes, t[:, k:] @ weights)


def _auto_batch(net: AbstractNet, n_points: int, max_order: int, per_block: int,
                kind: str = "network") -> int:
    """Networks per loop step: at most ~10⁶ live elements (measured fastest on CPU; larger steps
    fall out of cache), and the block split into equal steps with little masked work."""
    k = max_order // 2
    # one-layer nets hold `_NEURON_CHUNK` neurons per network at a time, whatever the width: the
    # step size, hence the compiled program, is the same for every width
    neurons = _NEURON_CHUNK if kind == "network" and _width_is_dynamic(net) else net.width
    per_net = neurons * (net.d_in + 3 + 2 * n_points) + 4 * sum(
        n_tuples(n_points, j) for j in range(1, k + 1)
    )
    largest = max(1, min(8192, 2**20 // per_net))
    steps = -(-per_block // largest)
    return _round_up_coarse(-(-per_block // steps))


def _round_up_coarse(n: int) -> int:
    """n rounded up to 8 significant steps per octave (9 → 9, 100 → 104, 3125 → 3328): at most
    12.5 % masked work, and few distinct compiled programs across ensemble sizes."""
    if n <= 8:
        return n
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def _sample_neurons(net: AbstractNet, xs, key, index, dtype, width=None):
    """φ(z_a) `(B, P)` of single hidden neurons, neuron g drawing (W0_g, b0_g) from
    `fold_in(key, g)` (d_in + 1 standard normals). Used by `rgflow.measure_neurons`."""
    d = net.d_in
    xs = xs.astype(dtype)
    r = jax.vmap(lambda g: standard_normals(jax.random.fold_in(key, g), d + 1, dtype))(index)
    z = (r[:, :d] * (net.sigma_w / math.sqrt(d))) @ xs.T + (r[:, d] * net.sigma_b)[:, None]
    return net.phi(z, xs)


_SAMPLERS = {"network": _sample_outputs, "neuron": _sample_neurons}

# One-layer nets whose sampler takes the width at run time (exact types: a subclass or another
# architecture keeps a static width, i.e. one program per width, unless it is added here).
_DYNAMIC_WIDTH = (ErfNet, ReLUNet, GaussNet, GenericNet)


def _width_is_dynamic(net) -> bool:
    return type(net) in _DYNAMIC_WIDTH


def _program_net(net, kind: str):
    """The configuration a compiled block program depends on: for one-layer nets (and for single
    neurons) everything but the width, which is passed at run time."""
    if kind == "neuron" or _width_is_dynamic(net):
        return dataclasses.replace(net, width=1)
    return net


def _block_fn(net, batch: int, max_order: int, dtype, kind: str = "network"):
    """`fn((xs, width), key, start, count)`: Gram sums for items start..start+count−1 (one block).

    `kind` "network": the items are networks, the products those of the outputs f; "neuron":
    single hidden neurons, the products those of φ(z). The number of batches, ceil(count/batch),
    is dynamic (a while loop), so one compiled program serves every ensemble size and an idle
    device (count 0) does no work. `width` (an int32 scalar) is the width of the networks when
    `_width_is_dynamic(net)` (then `net.width` is a placeholder), else ignored.
    """
    sample = _SAMPLERS[kind]
    dynamic = kind == "network" and _width_is_dynamic(net)

    def fn(inputs, key, start, count):
        xs, width = inputs
        p = xs.shape[0]
        k_max = max_order // 2
        prefixes = {j: jnp.asarray(prefix_index(p, j)) for j in range(2, k_max + 1)}
        lasts = {j: jnp.asarray(sorted_tuples(p, j)[:, -1]) for j in range(2, k_max + 1)}
        offsets = jnp.arange(batch, dtype=jnp.uint32)

        def body(step, carry):
            grams, squares = carry
            local = step.astype(jnp.uint32) * batch + offsets
            f = sample(net, xs, key, start + local, dtype, width if dynamic else None)
            f = f.astype(jnp.float64)
            f = jnp.where((local < count)[:, None], f, 0.0)  # products of masked rows vanish
            q = f
            grams, squares = list(grams), list(squares)
            for j in range(1, k_max + 1):
                if j > 1:
                    q = q[:, prefixes[j]] * f[:, lasts[j]]
                q2 = q * q
                grams[j - 1] = grams[j - 1] + q.T @ q
                squares[j - 1] = squares[j - 1] + q2.T @ q2
            return grams, squares

        zeros = [jnp.zeros((n_tuples(p, j),) * 2, jnp.float64) for j in range(1, k_max + 1)]
        n_steps = (count.astype(jnp.int32) + batch - 1) // batch
        grams, squares = jax.lax.fori_loop(0, n_steps, body, (zeros, list(zeros)))
        sums, sq = {}, {}
        for n in _ORDERS:
            if n <= max_order:
                rows, cols = (jnp.asarray(i) for i in _half_index(p, n))
                sums[n] = grams[n // 2 - 1][rows, cols]
                sq[n] = squares[n // 2 - 1][rows, cols]
        return sums, sq

    return fn


# XLA CPU's older (non-MLIR) loop emitters compile the block program in about half the time
# (measured 0.7-1.0 against 1.3-1.6 CPU seconds) and run it as fast; other backends ignore it.
_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.lru_cache(maxsize=64)
def _round_fn(net, batch: int, max_order: int, dtype_name: str, devices: tuple,
              kind: str = "network"):
    return shard_blocks(_block_fn(net, batch, max_order, jnp.dtype(dtype_name), kind), devices,
                        _COMPILER_OPTIONS)


def _block_sums(net, xs, key, starts, counts, batch: int, max_order: int,
                dtype_name: str = "float64", devices: tuple | None = None,
                kind: str = "network"):
    """Sums of Π f and (Π f)² over sorted tuples for one round of blocks, K per device.

    `starts`, `counts`: `(D·K,)` first network and number of networks of each block (count 0 for
    an idle slot). **Returns:** dicts order → `(D·K, T_n)` host arrays.
    """
    devices = tuple(devices) if devices is not None else tuple(jax.devices()[:1])
    fn = _round_fn(_program_net(net, kind), batch, max_order, dtype_name, devices, kind)
    return fn((xs, np.int32(net.width)), key, starts, counts)


def _block_layout(n_nets: int, n_blocks: int):
    base, extra = divmod(n_nets, n_blocks)
    counts = np.array([base + (1 if b < extra else 0) for b in range(n_blocks)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return starts, counts


def _check_orders(orders) -> tuple[int, ...]:
    return check_orders(orders, _ORDERS)


def _run_blocks(net, xs, key, n_items, n_blocks, batch_size, max_order, dtype_name, devs, kind,
                checkpoint, config, progress):
    """Run all blocks in rounds (one dispatch each: one block per device when checkpointing or
    showing progress, else every block at once); returns counts, sums, squares."""
    from ._checkpoint import BlockCheckpoint
    from ._distributed import is_distributed, run_blocks

    if is_distributed():  # several processes (jax.distributed): a share each, one all-gather
        return run_blocks(net, xs, key, n_items, n_blocks, batch_size, max_order, dtype_name,
                          devs, kind, checkpoint, config, progress)
    accumulated = tuple(n for n in _ORDERS if n <= max_order)
    starts, counts = _block_layout(n_items, n_blocks)
    per_block = int(counts.max())
    if batch_size is None:
        batch_size = _auto_batch(net, xs.shape[0], max_order, per_block, kind)
    batch_size = check_positive_int("batch_size", batch_size)
    ckpt = BlockCheckpoint.open(checkpoint, **config)
    sums = {n: np.zeros((n_blocks, n_tuples(xs.shape[0], n))) for n in accumulated}
    squares = {n: np.zeros((n_blocks, n_tuples(xs.shape[0], n))) for n in accumulated}
    done = ckpt.restore(sums, squares) if ckpt is not None else 0

    xs_j = np.asarray(xs)
    n_dev = len(devs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"{net.name} N={net.width}", unit="block", initial=done, total=n_blocks)
    size = n_dev * blocks_per_device(n_blocks - done, n_dev, ckpt is not None or progress)
    for first in range(done, n_blocks, size):
        blocks = np.arange(first, min(first + size, n_blocks))
        s, q = _block_sums(
            net, xs_j, key, padded(starts[blocks], size), padded(counts[blocks], size),
            batch_size, max_order, dtype_name, devs, kind,
        )
        for n in accumulated:
            sums[n][blocks] = s[n][: blocks.size]
            squares[n][blocks] = q[n][: blocks.size]
        if ckpt is not None:
            ckpt.save(int(blocks[-1]) + 1, sums, squares)
        if bar is not None:
            bar.update(blocks.size)
    if bar is not None:
        bar.close()
    return counts, sums, squares


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
    dtype=None,
    devices=None,
) -> Measurement:
    """Measure the 2-, 4-, 6-point functions of `n_nets` random networks (physics.md §5).

    **Arguments:**

    - `net`: the network configuration (e.g. `rgflow.ErfNet(width=5)`).
    - `xs`: inputs of shape `(P, d_in)`.
    - `n_nets`: the ensemble size M >= 2.
    - `key`: a `jax.random` key (threefry, the default); network g uses `fold_in(key, g)`
      (the networks of `net.sample`, layout in `rgflow._nets.network_outputs`), so results are
      the same for any `batch_size` (to rounding) and any device count (exactly). The width is a
      runtime value of the compiled program, so a sweep over widths compiles once.
    - `orders`: the even orders to report; all even orders up to the largest are accumulated
      (the connected 6-pt function needs the 2- and 4-pt moments).
    - `n_blocks`: number of jackknife blocks B (2 <= B <= M); blocks are also the unit of
      work per device and of checkpointing.
    - `batch_size`: networks per loop step; the default keeps each step's working set at
      ~10⁶ elements (~8 MB, measured fastest on CPU) and splits a block into equal steps.
    - `progress`: show a tqdm progress bar over blocks.
    - `checkpoint`: optional path of an `.npz` file; the running block sums are saved there
      (atomically) after each round of one block per device, and a run with the same
      configuration resumes from it (on any number of devices) with the same numbers as an
      uninterrupted run. Without a checkpoint or progress bar all blocks go to the devices in a
      single dispatch (same numbers).
    - `dtype`: precision of the sampled parameters and network outputs, `jnp.float64` (default)
      or `jnp.float32` (~2x faster sampling, measured; products and sums are always accumulated
      in float64). float32 normals come from a different bit stream (another, equally valid
      ensemble for the same key) and are quantised (|z| <= ~5.4 standard deviations): a
      ~1e-4 relative bias on the 6-pt moments of heavy-tailed nets; keep float64 for
      precision work.
    - `devices`: the devices to spread the blocks over: all visible devices (default), a
      count, or a list; each device runs a contiguous share of the blocks (`rgflow._sharding`).

    **Returns:** a `rgflow.Measurement`.
    """
    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network, got {net!r}.")
    key = check_key(key)
    if _width_is_dynamic(net) and not _is_threefry(key):
        raise TypeError("`key` must be a threefry2x32 key (the default of `jax.random.key`), got "
                        f"one of {jax.random.key_impl(key)}.")
    xs = check_inputs(xs, net.d_in)
    n_nets, n_blocks = check_ensemble("n_nets", n_nets, n_blocks)
    check_network_indices(n_nets)
    orders = _check_orders(orders)
    dtype_name = _check_dtype(dtype)
    devs = tuple(resolve_devices(devices))
    p = xs.shape[0]
    tuples = sum(n_tuples(p, n) + n_tuples(p, n // 2) ** 2 for n in _ORDERS if n <= max(orders))
    # a deep net draws all its parameters at once (rgflow._deep.sample_deep_outputs):
    # n_params = n(d_in + 1) + (L − 1)(n² + n) + n + 1 numbers per network, plus the copy
    # reshaped into layers
    deep = getattr(type(net), "is_deep", False) and net.depth > 1
    params = 2.0 * net.n_params if deep else 0.0
    what = (f"one network of width {net.width}" + (f" and depth {net.depth}" if deep else "")
            + f" with {p} inputs up to order {max(orders)}")
    check_memory(8.0 * (net.width * (net.d_in + 2 + 2 * p) + params + 4 * n_blocks * tuples),
                 what, devices=devs)
    max_order = max(orders)
    accumulated = tuple(n for n in _ORDERS if n <= max_order)
    config = dict(net=net, xs=xs, n_nets=n_nets, n_blocks=n_blocks, key=key, orders=accumulated)
    if dtype_name != "float64":
        config["dtype"] = dtype_name
    if _width_is_dynamic(net):
        config["sampler"] = 2  # the width-independent layout of the draws (older files: 1)
    counts, sums, squares = _run_blocks(
        net, xs, key, n_nets, n_blocks, batch_size, max_order, dtype_name, devs, "network",
        checkpoint, config, progress,
    )
    return Measurement(
        net=net,
        xs=xs,
        n_nets=n_nets,
        block_counts=counts,
        block_sums={n: jax.device_put(sums[n]) for n in accumulated},
        # per-block squares are kept so that the totals do not depend on how blocks were
        # grouped into rounds (device count) or on where a run was resumed
        sum_squares={n: jax.device_put(_ordered_sum(squares[n])) for n in accumulated},
        key_ids=(key_identity(key),),
    )


def _ordered_sum(per_block: np.ndarray) -> np.ndarray:
    """Sum over blocks in block order (a fixed order, whatever the device count)."""
    total = np.zeros(per_block.shape[1:])
    for row in per_block:
        total = total + row
    return total


def _check_dtype(dtype) -> str:
    if dtype is None:
        return "float64"
    try:
        name = jnp.dtype(dtype).name
    except TypeError as e:
        raise TypeError(f"`dtype` must be float32 or float64, got {dtype!r}.") from e
    if name not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype!r}.")
    return name


def measure_widths(
    net: AbstractNet,
    xs: Float[Array, "P d"],
    n_nets: int,
    widths: Sequence[int],
    *,
    key: PRNGKeyArray,
    workers: int = 4,
    **kwargs,
) -> dict[int, Measurement]:
    """Run `measure` for each width in `widths` (other fields of `net` fixed).

    Width N uses the key `fold_in(key, N)`, so the ensembles of different widths are independent
    and each is reproducible on its own. Keyword arguments are passed to `measure`; a
    `checkpoint` path `run.npz` becomes one file per width, `run_N{width}.npz`.

    The one-layer nets (Erf, ReLU, Gauss, generic activations) compile one program for all
    widths: the width is a runtime value of the sampler (`docs/benchmarks.md`, section 6,
    "Cold start"). `workers`: up to this many widths run concurrently in threads (XLA execution
    releases the GIL). The numbers do not depend on it.

    **Returns:** a dict width → `Measurement`.
    """
    key = check_key(key)
    widths = [check_positive_int("widths", w) for w in widths]
    if not widths:
        raise ValueError("`widths` must contain at least one width.")
    workers = check_positive_int("workers", workers)
    from ._distributed import is_distributed

    if is_distributed():  # every process must run the widths (and their gathers) in one order
        workers = 1
    checkpoint = kwargs.pop("checkpoint", None)

    def one(w):
        path = None
        if checkpoint is not None:
            from pathlib import Path

            base = Path(checkpoint)
            path = base.with_name(f"{base.stem}_N{w}{base.suffix or '.npz'}")
        return measure(dataclasses.replace(net, width=w), xs, n_nets,
                       key=jax.random.fold_in(key, w), checkpoint=path, **kwargs)

    if workers == 1 or len(widths) == 1:
        return {w: one(w) for w in widths}
    from concurrent.futures import ThreadPoolExecutor

    # the smallest width first, alone: it compiles the program the others share (threads that
    # started together would each trace and lower it)
    first = min(widths)
    done = {first: one(first)}
    rest = [w for w in widths if w != first]
    with ThreadPoolExecutor(min(workers, len(rest))) as pool:
        done.update(zip(rest, pool.map(one, rest)))
    return {w: done[w] for w in widths}
