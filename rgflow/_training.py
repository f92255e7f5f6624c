"""Training a whole ensemble at once and measuring it on the way (physics.md §14).

Every network of the ensemble is trained by the same optax optimiser on the MSE loss
L = ½ Σ_a (f(x_a) − y_a)² (a sum over the training points, not a mean), vmapped and jitted over
the networks of a batch. Network g draws its parameters from `fold_in(key, g)` in the layout of
rgflow's samplers (`rgflow._nets.network_outputs`, `rgflow._deep.sample_deep_outputs`,
`CosNet._draw`), so at t = 0 the ensemble is the one `rgflow.measure` averages over, and it is
the same for any batch size. At the chosen step counts the outputs on the probe inputs are
reduced to per-block sums of Π f over the index-sorted tuples of orders 1..max_order (and of
(Π f)²) — the block-sum form of `rgflow.measure`: blocks are independent units of work, of
checkpointing and of the jackknife. Moments are raw (not centred): a trained ensemble has a mean,
and the cumulants are the partition sums κ = Σ_π (−1)^{|π|−1}(|π|−1)! Π_{B∈π} m_B, jackknifed.

Parameterisations (`rgflow._ntk`): "ntk" trains the standard normals θ with the widths in the
forward pass; "standard" trains the §2 parameters W0, b0, W1, b1 themselves.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._ensemble import _COMPILER_OPTIONS, BlockSums, _block_layout, _jackknife, _ordered_sum
from ._nets import AbstractNet, standard_normals
from ._ntk import check_parameterisation, check_trainable
from ._tuples import n_tuples, sorted_tuples, to_full
from ._validate import (
    check_ensemble,
    check_inputs,
    check_key,
    check_positive_int,
    check_real_array,
    key_identity,
)

_DIVERGED = 1e30  # a loss above this (or not finite) counts as diverged


# ------------------------------------------------------------------------- parameters ---


def _is_cos(net) -> bool:
    from ._cosnet import CosNet

    return isinstance(net, CosNet)


def _depth(net) -> int:
    return net.depth if getattr(type(net), "is_deep", False) else 1


def parameter_scales(net: AbstractNet) -> dict:
    """The factor between each raw (standard normal) parameter and the §2 parameter."""
    if _is_cos(net):
        return {"a": net.sigma_a / math.sqrt(net.width), "b": 1.0, "w": 1.0}
    d, n, depth = net.d_in, net.width, _depth(net)
    sw, sb = net.sigma_w, net.sigma_b
    scales = {"w0": sw / math.sqrt(d), "b0": sb}
    for layer in range(1, depth + 1):
        scales[f"w{layer}"] = sw / math.sqrt(n)
        scales[f"b{layer}"] = sb
    return scales


def readout_names(net: AbstractNet) -> tuple[str, ...]:
    """The parameters of the last layer (trainable="readout")."""
    if _is_cos(net):
        return ("a",)
    return (f"w{_depth(net)}", f"b{_depth(net)}")


def draw_parameters(net: AbstractNet, key, g, dtype=jnp.float64) -> dict:
    """The raw parameters of network `g` (standard normals for the §2 nets; for `CosNet` the
    amplitudes divided by σ_a/√N and the phases and momenta as drawn)."""
    k = jax.random.fold_in(key, g)
    if _is_cos(net):
        a, b, w = net._draw(k, dtype)
        return {"a": a / (net.sigma_a / math.sqrt(net.width)), "b": b, "w": w}
    n, d, depth = net.width, net.d_in, _depth(net)
    if depth == 1:
        r = standard_normals(k, 2 + n * (d + 2), dtype)
        neurons = r[2:].reshape(n, d + 2)
        return {"w0": neurons[:, :d], "b0": neurons[:, d], "w1": neurons[:, d + 1], "b1": r[0]}
    r = standard_normals(k, net.n_params, dtype)
    out = {"w0": r[: n * d].reshape(n, d), "b0": r[n * d: n * d + n]}
    pos = n * d + n
    for layer in range(1, depth):
        out[f"w{layer}"] = r[pos: pos + n * n].reshape(n, n)
        out[f"b{layer}"] = r[pos + n * n: pos + n * n + n]
        pos += n * n + n
    out[f"w{depth}"] = r[pos: pos + n]
    out[f"b{depth}"] = r[pos + n]
    return out


def forward(net: AbstractNet, params: dict, xs) -> jnp.ndarray:
    """f(xs) `(P,)` of one network with §2 (standard) parameters `params`."""
    if _is_cos(net):
        return jnp.cos(xs @ params["w"].T + params["b"][None, :]) @ params["a"]
    depth = _depth(net)
    z = params["w0"] @ xs.T + params["b0"][:, None]  # (N, P): inputs last
    if depth == 1 and not getattr(type(net), "is_deep", False):
        h = net.phi(z, xs)
    else:
        h = net.activation_fn(z)
    for layer in range(1, depth):
        h = net.activation_fn(params[f"w{layer}"] @ h + params[f"b{layer}"][:, None])
    return params[f"w{depth}"] @ h + params[f"b{depth}"]


def _forward_neurons_last(net: AbstractNet, params: dict, xs) -> jnp.ndarray:
    """`forward` of a one-hidden-layer net with the neurons on the last axis, the d_in-term
    first layer unrolled and the readout a contiguous multiply-and-sum: no small batched
    matrix products under `vmap` (2x the float32 training throughput on CPU, docs/benchmarks.md
    §10). The same function as `forward`, summed in another order."""
    w0, b0 = params["w0"], params["b0"]
    if xs.shape[1] <= 8:
        z = b0[None, :] + sum(xs[:, k:k + 1] * w0[None, :, k] for k in range(xs.shape[1]))
    else:
        z = xs @ w0.T + b0[None, :]
    h = net.phi(z, xs, axis=-2)  # (P, N): the inputs on axis −2
    return jnp.sum(h * params["w1"][None, :], axis=-1) + params["b1"]


def training_model(net: AbstractNet, parameterisation: str = "ntk", *, neurons_last=False):
    """`(init, apply)`: `init(key, g)` the trainable-parameter pytree of network g in the
    parameterisation, `apply(params, xs) -> (P,)`. `neurons_last`: one-hidden-layer nets use
    `_forward_neurons_last` (another summation order; `train_ensemble` uses it for float32)."""
    parameterisation = check_parameterisation(parameterisation)
    scales = parameter_scales(net)
    fwd = forward
    if neurons_last and not _is_cos(net) and not getattr(type(net), "is_deep", False):
        fwd = _forward_neurons_last

    def init(key, g):
        raw = draw_parameters(net, key, g)
        if parameterisation == "ntk":
            return raw
        return {k: v * scales[k] for k, v in raw.items()}

    def apply(params, xs):
        if parameterisation == "ntk":
            params = {k: v * scales[k] for k, v in params.items()}
        return fwd(net, params, xs)

    return init, apply


# ------------------------------------------------------------------------ measurement ---


def _set_partitions(items):
    if len(items) == 1:
        yield [items]
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def cumulant_from_raw(moments: dict, n_points: int, order: int):
    """Joint cumulant `(..., P,...,P)` from raw moments on sorted tuples `moments[n] (..., T_n)`:
    κ = Σ_π (−1)^{|π|−1} (|π| − 1)! Π_{B∈π} m_B."""
    letters = "abcdefgh"[:order]
    full = {n: to_full(moments[n], n_points, n) for n in range(1, order + 1)}
    out = 0.0
    for part in _set_partitions(list(range(order))):
        b = len(part)
        coef = (-1) ** (b - 1) * math.factorial(b - 1)
        subs = ",".join("..." + "".join(letters[i] for i in block) for block in part)
        out = out + coef * jnp.einsum(f"{subs}->...{letters}", *[full[len(bl)] for bl in part])
    return out


class TrainedMeasurement(BlockSums):
    """Monte Carlo moments of a trained ensemble on probe inputs at several training times.

    **Fields:**

    - `net`, `xs` (the probes `(P, d_in)`), `n_nets`, `block_counts` `(B,)`, `key_ids`.
    - `times`: the step counts `(T,)` at which the outputs were measured.
    - `block_sums`: order n → per-block sums of Π f over sorted n-tuples `(B, T, T_n)`.
    - `sum_squares`: order n → sums of (Π f)² over all networks `(T, T_n)`.
    - `parameterisation`, `trainable`: how the ensemble was trained.
    """

    net: AbstractNet
    xs: np.ndarray
    times: np.ndarray
    n_nets: int = eqx.field(static=True)
    block_counts: np.ndarray
    block_sums: dict
    sum_squares: dict
    parameterisation: str = eqx.field(static=True, default="ntk")
    trainable: str = eqx.field(static=True, default="all")
    controlled: bool = eqx.field(static=True, default=False)
    key_ids: tuple = eqx.field(static=True, default=())

    @property
    def n_points(self) -> int:
        """Points of the accumulated tuples: the probes, and their controls when controlled."""
        return self.xs.shape[0] * (2 if self.controlled else 1)

    @property
    def n_probes(self) -> int:
        return self.xs.shape[0]

    def mean(self) -> np.ndarray:
        """The ensemble mean ⟨f_t(x)⟩ `(T, P)`."""
        return (np.sum(np.asarray(self.block_sums[1]), axis=0) / self.n_nets)[:, :self.n_probes]

    def mean_stderr(self) -> np.ndarray:
        """Standard error of `mean` (s/√M)."""
        m = self.n_nets
        mean = np.sum(np.asarray(self.block_sums[1]), axis=0) / m
        var = (np.asarray(self.sum_squares[1]) / m - mean**2) * m / (m - 1)
        return np.sqrt(np.maximum(var, 0.0) / m)[:, :self.n_probes]

    def difference(self, order: int):
        """κ_n(f_t) − κ_n(c_t) on the probes, c_t the linearised control (`train_ensemble`'s
        `control`), jackknifed: `(estimate, stderr)`, each `(T,) + (P,)*n` (n = 1: the means)."""
        if not self.controlled:
            raise ValueError("`difference` needs a run with `control=` (a LinearisedDynamics).")
        return self._cumulant(order, True)

    def _cumulant(self, order, diff=False):
        order = self._check(order)
        if any(n not in self.block_sums for n in range(1, order + 1)):
            raise ValueError(f"the {order}-pt cumulant needs the moments of orders 1..{order}.")
        flat = {n: np.asarray(self.block_sums[n]).reshape(len(self.block_counts), -1)
                for n in range(1, order + 1)}
        est, err = _jackknife_cumulant(flat, np.asarray(self.block_counts, np.float64),
                                       np.float64(self.n_nets), self.n_points, len(self.times),
                                       self.n_probes, order, diff)
        return np.asarray(est), np.asarray(err)

    def connected(self, order: int) -> np.ndarray:
        """The jackknife bias-corrected cumulant κ_n of the outputs, `(T,) + (P,)*n`
        (n = 1: the mean, n = 2: the covariance)."""
        return self._cumulant(order)[0]

    def connected_stderr(self, order: int) -> np.ndarray:
        """Jackknife standard error of `connected(order)`."""
        return self._cumulant(order)[1]

    def edgeworth_quartic(self) -> QuarticEstimate:
        """The quartic coupling tensor of the trained ensemble's O(1/N) Edgeworth action on the
        probes at each recorded time (physics.md §9, §14),

            λ_t,abcd = −(1/24) Σ κ4,t;efgh (Σ_t⁻¹)_ea (Σ_t⁻¹)_fb (Σ_t⁻¹)_gc (Σ_t⁻¹)_hd,

        with Σ_t and κ4,t the measured covariance and connected 4-pt function of f_t (as
        `rgflow.edgeworth_tensors(Σ_t, κ4,t, order=1)[1]`), jackknifed over the blocks of
        networks: the estimate is bias-corrected and its error is the delete-one-block standard
        error. Needs `max_order >= 4`; Σ_t must be positive definite (a ValueError otherwise).

        **Returns:** a `QuarticEstimate` (`times`, `value`, `stderr`, each entry `(T,) + (P,)*4`).
        """
        order = 4
        if any(n not in self.block_sums for n in range(1, order + 1)):
            raise ValueError("the Edgeworth quartic needs the moments of orders 1..4 "
                             "(train with max_order >= 4).")
        flat = {n: np.asarray(self.block_sums[n]).reshape(len(self.block_counts), -1)
                for n in range(1, order + 1)}
        cov = self.connected(2)
        if not np.all(np.linalg.eigvalsh(0.5 * (cov + np.swapaxes(cov, -1, -2))) > 0):
            raise ValueError("the measured covariance Σ_t of the probes is not positive definite "
                             "at some recorded time (probes too close, or too few networks); "
                             "the Edgeworth quartic needs Σ_t⁻¹.")
        est, err = _jackknife_quartic(flat, np.asarray(self.block_counts, np.float64),
                                      np.float64(self.n_nets), self.n_points, len(self.times),
                                      self.n_probes)
        return QuarticEstimate(times=np.asarray(self.times), value=np.asarray(est),
                               stderr=np.asarray(err))


class QuarticEstimate(eqx.Module):
    """Jackknife estimate of the Edgeworth quartic tensor λ_t of a trained ensemble
    (`TrainedMeasurement.edgeworth_quartic`).

    **Fields:** `times` `(T,)`; `value`, `stderr` `(T, P, P, P, P)` (estimate and jackknife
    standard error). `str()` prints the diagonal entries λ_t,aaaa as value ± error.
    """

    times: np.ndarray
    value: np.ndarray
    stderr: np.ndarray

    def __str__(self) -> str:
        lines = []
        for i, t in enumerate(np.asarray(self.times)):
            entries = [f"λ_{str(a + 1) * 4} = "
                       + _pm(self.value[i][(a,) * 4], self.stderr[i][(a,) * 4])
                       for a in range(self.value.shape[1])]
            lines.append(f"t = {int(t)}: " + ", ".join(entries))
        return "\n".join(lines)


def _pm(value: float, error: float) -> str:
    """`value ± error` with the error to two significant digits."""
    value, error = float(value), float(error)
    if not (math.isfinite(error) and error > 0):
        return f"{value:.6g} ± {error:.2g}"
    digits = max(0, 1 - int(math.floor(math.log10(error))))
    return f"{value:.{digits}f} ± {error:.{digits}f}"


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _jackknife_quartic(flat, counts, n_nets, p: int, t: int, q: int):
    """Jackknifed Edgeworth quartic on the probes from raw-moment block sums."""
    from ._edgeworth import _tensors_impl

    def fn(mom):
        mom = {n: v.reshape(v.shape[:-1] + (t, -1)) for n, v in mom.items()}
        k2 = cumulant_from_raw(mom, p, 2)[(...,) + (slice(0, q),) * 2]
        k4 = cumulant_from_raw(mom, p, 4)[(...,) + (slice(0, q),) * 4]
        lead = k2.shape[:-2]
        quartic = jax.vmap(lambda a, b: _tensors_impl(a, b, None, 1)[1])(
            k2.reshape((-1, q, q)), k4.reshape((-1,) + (q,) * 4))
        return quartic.reshape(lead + (q,) * 4)

    return _jackknife(fn, flat, counts, n_nets)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def _jackknife_cumulant(flat, counts, n_nets, p: int, t: int, q: int, order: int, diff: bool):
    """Jackknifed κ_n on the probes (or κ_n(f) − κ_n(control) with `diff`), compiled once per
    shape and order (eagerly it took ~10 s of op-by-op compilation)."""

    def fn(mom):
        kappa = cumulant_from_raw({n: v.reshape(v.shape[:-1] + (t, -1)) for n, v in mom.items()},
                                  p, order)
        own = kappa[(...,) + (slice(0, q),) * order]
        if diff:
            return own - kappa[(...,) + (slice(q, 2 * q),) * order]
        return own

    return _jackknife(fn, flat, counts, n_nets)


# ------------------------------------------------------------------------------ train ---


@functools.lru_cache(maxsize=64)
def _sgd(learning_rate: float):
    # one object per rate: the compiled block program is cached on the optimiser object
    return optax.sgd(learning_rate)


def _check_optimizer(optimizer, learning_rate):
    if optimizer is None:
        if learning_rate is None:
            raise ValueError("give `learning_rate` (plain gradient descent) or `optimizer`.")
        lr = learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (
                math.isfinite(lr) and lr > 0):
            raise ValueError(f"`learning_rate` must be a finite number > 0, got {lr!r}.")
        return _sgd(float(lr))
    if learning_rate is not None:
        raise ValueError("give either `learning_rate` or `optimizer`, not both.")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("`optimizer` must be an optax GradientTransformation (e.g. "
                        f"optax.sgd(0.1), optax.adam(1e-3)), got {type(optimizer).__name__}.")
    return optimizer


def _check_times(times) -> tuple[int, ...]:
    try:
        arr = np.asarray(times).reshape(-1)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"`times` must be a sequence of step counts, got {times!r}.") from e
    if arr.size == 0:
        raise ValueError("`times` must hold at least one step count.")
    if not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 0):
        raise ValueError(f"`times` must be integers >= 0 (step counts), got {times!r}.")
    out = tuple(sorted(set(int(t) for t in arr)))
    if out[-1] == 0:
        raise ValueError("`times` are all 0: zero training steps; give a positive step count.")
    return out


@functools.lru_cache(maxsize=32)
def _block_program(net, parameterisation, trainable, optimizer, times, batch, max_order,
                   minibatch, controlled, dtype_name="float64"):
    dtype = jnp.dtype(dtype_name)
    # float64 keeps `forward` (its numbers unchanged); float32 takes the faster layout
    init64, apply = training_model(net, parameterisation, neurons_last=dtype_name == "float32")

    def init(key, g):
        # drawn in float64 (the networks of `rgflow.measure`), trained in `dtype`
        return jax.tree.map(lambda v: v.astype(dtype), init64(key, g))
    readout = readout_names(net)

    def split(params):
        if trainable == "all":
            return params, {}
        return ({k: v for k, v in params.items() if k in readout},
                {k: v for k, v in params.items() if k not in readout})

    def loss_fn(train, frozen, xb, yb):
        r = apply({**train, **frozen}, xb) - yb
        return 0.5 * jnp.sum(r * r)

    grad_fn = jax.vmap(jax.value_and_grad(loss_fn), in_axes=(0, 0, None, None))

    def fn(key, start, count, x_train, y_train, probes, transfer, shift):
        p = probes.shape[0] * (2 if controlled else 1)
        x_train, y_train, probes = (a.astype(dtype) for a in (x_train, y_train, probes))
        z_all = jnp.concatenate([probes, x_train])
        n_train = x_train.shape[0]
        tuples = {n: jnp.asarray(sorted_tuples(p, n)) for n in range(1, max_order + 1)}
        offsets = jnp.arange(batch, dtype=jnp.uint32)
        mb = n_train if minibatch is None else minibatch

        def one_batch(i, carry):
            sums, squares, bad = carry
            local = i.astype(jnp.uint32) * batch + offsets
            valid = local < count
            params = jax.vmap(init, in_axes=(None, 0))(key, start + local)
            train, frozen = split(params)
            state = jax.vmap(optimizer.init)(train)
            if controlled:  # f₀ on probes ∪ X, for the linearised control A_t f₀ + b_t
                f0 = jax.vmap(apply, in_axes=(0, None))(params, z_all)

            def step(s, c):
                tr, st, first = c
                if minibatch is None:
                    xb, yb = x_train, y_train
                else:
                    idx = (s * mb + jnp.arange(mb)) % n_train
                    xb, yb = x_train[idx], y_train[idx]
                loss, g = grad_fn(tr, frozen, xb, yb)
                diverged = ~jnp.isfinite(loss) | (loss > _DIVERGED)
                first = jnp.where(diverged & (first < 0) & valid, s, first)
                upd, st = jax.vmap(optimizer.update)(g, st, tr)
                return optax.apply_updates(tr, upd), st, first

            first = jnp.full((batch,), -1, jnp.int32)
            bounds = jnp.asarray((0,) + times, jnp.int32)

            def segment(c, ti):
                # one compiled step and one measurement, scanned over the recorded times
                tr, st, first = jax.lax.fori_loop(bounds[ti], bounds[ti + 1], step, c)
                # products and sums in float64 whatever the training dtype
                f = jax.vmap(apply, in_axes=(0, None))({**tr, **frozen}, probes)
                f = f.astype(jnp.float64)
                if controlled:
                    c = f0.astype(jnp.float64) @ transfer[ti].T + shift[ti]
                    f = jnp.concatenate([f, c], axis=1)
                f = jnp.where(valid[:, None], f, 0.0)
                qs, q2s = [], []
                for n in range(1, max_order + 1):
                    q = jnp.prod(f[:, tuples[n]], axis=-1)  # (batch, T_n)
                    qs.append(jnp.sum(q, axis=0))
                    q2s.append(jnp.sum(q * q, axis=0))
                return (tr, st, first), (qs, q2s)

            (train, state, first), (qs, q2s) = jax.lax.scan(
                segment, (train, state, first), jnp.arange(len(times)))
            sums = [a + b for a, b in zip(sums, qs, strict=True)]
            squares = [a + b for a, b in zip(squares, q2s, strict=True)]
            first_bad = jnp.min(jnp.where(first >= 0, first, jnp.iinfo(jnp.int32).max))
            net_bad = jnp.argmin(jnp.where(first >= 0, first, jnp.iinfo(jnp.int32).max))
            bad = jnp.where(first_bad < bad[0], jnp.stack(
                [first_bad, (start + local[net_bad]).astype(jnp.int32)]), bad)
            return sums, squares, bad

        zeros = [jnp.zeros((len(times), n_tuples(p, n))) for n in range(1, max_order + 1)]
        bad0 = jnp.array([jnp.iinfo(jnp.int32).max, -1], jnp.int32)
        n_batches = (count.astype(jnp.int32) + batch - 1) // batch
        sums, squares, bad = jax.lax.fori_loop(0, n_batches, one_batch,
                                               (zeros, list(zeros), bad0))
        return sums, squares, bad

    return jax.jit(fn, compiler_options=_COMPILER_OPTIONS)


def train_ensemble(
    net: AbstractNet,
    x_train,
    y_train,
    probes,
    n_nets: int,
    *,
    key,
    times: Sequence[int],
    learning_rate: float | None = None,
    optimizer=None,
    parameterisation: str = "ntk",
    trainable: str = "all",
    minibatch: int | None = None,
    control=None,
    max_order: int = 4,
    n_blocks: int = 16,
    batch_size: int | None = None,
    checkpoint=None,
    dtype=None,
) -> TrainedMeasurement:
    """Train `n_nets` networks at once and measure their outputs on `probes` (physics.md §14).

    **Arguments:**

    - `net`: the architecture (one-hidden-layer nets, `DeepNet`, `CosNet`).
    - `x_train` `(n, d_in)`, `y_train` `(n,)`: the training set; loss ½ Σ_a (f(x_a) − y_a)².
    - `probes` `(P, d_in)`: inputs where the outputs are measured.
    - `n_nets`: the ensemble size M >= 2; network g draws from `fold_in(key, g)` (the networks of
      `rgflow.measure` at t = 0), whatever `batch_size`.
    - `times`: the step counts at which to measure (0 = initialisation).
    - `learning_rate`: η of plain gradient descent (`optax.sgd`), or
    - `optimizer`: any optax `GradientTransformation` (sgd, momentum, adam, ...).
    - `parameterisation`: "ntk" (train the standard normals, widths in the forward pass) or
      "standard" (train the §2 parameters).
    - `trainable`: "all" or "readout" (last layer's weights and bias; `CosNet`: the amplitudes).
    - `minibatch`: None (full batch) or a size b: step s uses the training points
      (s·b … s·b + b − 1) mod n (the same for every network).
    - `control`: optional `rgflow.LinearisedDynamics` on the same training set, probes and
      `times`: each network then also records its linearised prediction c_t = A_t f₀ + b_t (from
      its own f₀), a control variate with exactly known cumulants A_t^{⊗n} κ_n(f₀), so that
      `TrainedMeasurement.difference` measures κ_n(f_t) − κ_n(c_t) with noise ∝ the (small)
      deviation from the linearised dynamics rather than the ensemble spread.
    - `max_order`: the highest moment accumulated (cumulants up to it).
    - `n_blocks`: jackknife blocks (units of work and of checkpointing).
    - `batch_size`: networks trained together (default 128; the numbers do not depend on it).
    - `checkpoint`: optional `.npz` path; blocks done are saved there (atomically) and a run of the
      same configuration resumes from it.
    - `dtype`: the compute precision of training, `jnp.float64` (default) or `jnp.float32`
      (opt-in, ~2x the throughput on CPU, docs/benchmarks.md §10). The networks are drawn in
      float64 (the same initial ensemble, rounded) and the products and sums of the measurement
      are accumulated in float64; only the forward/backward passes and the optimiser run in
      float32, so the trajectories differ from float64 ones by float32 rounding, amplified
      along the training (keep float64 for precision work).

    **Returns:** a `TrainedMeasurement`. **Raises** `ValueError` naming the step and the network
    when a loss becomes non-finite or exceeds 1e30 (a diverging learning rate; a run that is
    still below that at its last step is returned, so check the spread of the outputs).
    """
    from ._checkpoint import BlockCheckpoint
    from ._distributed import (
        check_same_run,
        gather_blocks,
        is_distributed,
        process_checkpoint_path,
        process_share,
    )

    if not isinstance(net, AbstractNet):
        raise TypeError(f"`net` must be an rgflow network, got {net!r}.")
    key = check_key(key)
    x_train = check_inputs(x_train, net.d_in, name="x_train")
    y_train = np.asarray(check_real_array("y_train", y_train, ndim=1), np.float64)
    if y_train.shape[0] != x_train.shape[0]:
        raise ValueError(f"`y_train` must have one target per training input: x_train has "
                         f"{x_train.shape[0]} rows, y_train shape {y_train.shape}.")
    if not np.all(np.isfinite(y_train)):
        raise ValueError("`y_train` must be finite (NaN or inf target).")
    probes = check_inputs(probes, net.d_in, name="probes")
    n_nets, n_blocks = check_ensemble("n_nets", n_nets, n_blocks)
    times = _check_times(times)
    opt = _check_optimizer(optimizer, learning_rate)
    parameterisation = check_parameterisation(parameterisation)
    trainable = check_trainable(trainable)
    max_order = check_positive_int("max_order", max_order)
    if max_order > 6:
        raise ValueError(f"`max_order` must be <= 6, got {max_order}.")
    if minibatch is not None:
        minibatch = check_positive_int("minibatch", minibatch)
        if minibatch > x_train.shape[0]:
            raise ValueError(f"`minibatch` ({minibatch}) exceeds the {x_train.shape[0]} "
                             "training points.")
    from ._ensemble import _check_dtype

    dtype_name = _check_dtype(dtype)
    starts, counts = _block_layout(n_nets, n_blocks)
    if batch_size is None:  # fixed: one compiled program per network for every ensemble size
        batch_size = 128
    batch_size = check_positive_int("batch_size", batch_size)
    p = probes.shape[0]
    if control is not None:
        transfer, shift = _check_control(control, x_train, y_train, probes, times)
        p = 2 * p
    spec = dict(net=net, x_train=x_train, y_train=y_train, probes=probes, n_nets=n_nets,
                n_blocks=n_blocks, key=key, times=times, optimizer=opt,
                parameterisation=parameterisation, trainable=trainable, minibatch=minibatch,
                max_order=max_order, control=None if control is None else (transfer, shift),
                kind="train_ensemble")
    if dtype_name != "float64":  # (float64 specs, and so their checkpoints, stay as they were)
        spec["dtype"] = dtype_name
    # under jax.distributed (physics.md §15): this process trains its share [lo, hi) of the
    # blocks, checkpoints them in its own file, and one all-gather puts the per-block sums back
    # in block order (bit-identical to one process); a no-op split in a single process
    check_same_run(**spec, batch_size=batch_size)
    lo, hi = process_share(n_blocks)
    if is_distributed():
        spec["share"] = (jax.process_index(), jax.process_count(), lo, hi)
    shapes = {n: (hi - lo, len(times), n_tuples(p, n)) for n in range(1, max_order + 1)}
    sums = {n: np.zeros(s) for n, s in shapes.items()}
    squares = {n: np.zeros(s) for n, s in shapes.items()}
    ckpt = None
    if checkpoint is not None:
        try:
            ckpt = BlockCheckpoint.open(process_checkpoint_path(checkpoint), **spec)
        except ValueError as e:
            raise ValueError(f"`checkpoint`: {e}") from None
    done = ckpt.restore(sums, squares) if ckpt is not None else 0
    fn = _block_program(net, parameterisation, trainable, opt, times, batch_size, max_order,
                        minibatch, control is not None, dtype_name)
    if control is None:
        transfer, shift = np.zeros((1, 1, 1)), np.zeros((1, 1))
    args = (jnp.asarray(x_train), jnp.asarray(y_train), jnp.asarray(probes),
            jnp.asarray(transfer), jnp.asarray(shift))
    for b in range(lo + done, hi):
        s, q, bad = fn(key, jnp.uint32(starts[b]), jnp.uint32(counts[b]), *args)
        bad = np.asarray(bad)
        if bad[1] >= 0:
            raise ValueError(
                f"training diverged: the loss of network {int(bad[1])} became non-finite or "
                f"exceeded {_DIVERGED:g} at step {int(bad[0])}; lower the learning rate "
                "(gradient descent is stable for η < 2/λ_max of each network's NTK).")
        for n in sums:
            sums[n][b - lo] = np.asarray(s[n - 1])
            squares[n][b - lo] = np.asarray(q[n - 1])
        if ckpt is not None:
            ckpt.save(b + 1 - lo, sums, squares)
    local = {f"s{n}": sums[n] for n in sums} | {f"q{n}": squares[n] for n in squares}
    full = gather_blocks(local, lo, hi, n_blocks)
    sums = {n: full[f"s{n}"] for n in sums}
    squares = {n: full[f"q{n}"] for n in squares}
    return TrainedMeasurement(
        net=net, xs=probes, times=np.asarray(times), n_nets=n_nets, block_counts=counts,
        block_sums={n: jax.device_put(v) for n, v in sums.items()},
        sum_squares={n: _ordered_sum(v) for n, v in squares.items()},
        parameterisation=parameterisation, trainable=trainable, controlled=control is not None,
        key_ids=(key_identity(key),))


def _check_control(control, x_train, y_train, probes, times):
    from ._ntk import LinearisedDynamics

    if not isinstance(control, LinearisedDynamics):
        raise TypeError(f"`control` must be a rgflow.LinearisedDynamics, got {type(control).__name__}.")
    same = (np.array_equal(control.x_train, x_train) and np.array_equal(control.probes, probes)
            and np.allclose(control.y_train, y_train)
            and np.array_equal(np.asarray(control.times, np.float64), np.asarray(times, np.float64)))
    if not same:
        raise ValueError("`control` must be built on the same x_train, y_train, probes and sorted "
                         "`times` as the training run.")
    return np.asarray(control.transfer), np.asarray(control.shift)
