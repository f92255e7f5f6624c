"""Single-hidden-layer network architectures as Equinox modules (physics.md §2).

    z_j(x) = Σ_k W0_jk x_k + b0_j,   f(x) = Σ_j W1_j φ(z_j(x)) + b1,
    W0 ~ N(0, σ_W²/d_in), b0 ~ N(0, σ_b²), W1 ~ N(0, σ_W²/N), b1 ~ N(0, σ_b²).

One configuration object drives both the sampler and the theory (kernel, exact correlators), so the
two can never disagree on σ_b (a defect of the reference code, physics.md §8).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._validate import (
    check_finite_output,
    check_key,
    check_memory,
    check_points,
    check_positive_int,
    check_sigma,
)

_ACTIVATIONS: dict[str, Callable] = {
    "erf": jax.scipy.special.erf,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "silu": jax.nn.silu,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "exp": jnp.exp,
    "linear": lambda z: z,
}


_THREEFRY = "threefry2x32"


def standard_normals(key: PRNGKeyArray, n: int, dtype=jnp.float64) -> Float[Array, " n"]:
    """`n` standard normal draws from `key` in `dtype` (the parameters of one network).

    float64: the numbers of `jax.random.normal(key, (n,))` (with JAX's default partitionable
    threefry; rgflow computes them itself, `stream_normals`, so they do not depend on that flag).
    float32: the same transform as `jax.random.normal` (a uniform on (−1, 1) from 23 random
    mantissa bits, then √2 erf⁻¹), but two draws from each 64-bit threefry output: a float32 draw
    otherwise costs a whole 64-bit block, so this halves the random-bit work (measured 1.8x on
    CPU). A float32 draw is quantised (|z| <= ~5.4); it is another stream than
    `jax.random.normal`'s. Draw i is the same for every n > i (the stream of `key`).
    """
    if _is_threefry(key):
        data = jax.random.key_data(key)
        m = n + (n % 2 if jnp.dtype(dtype) == jnp.float32 else 0)
        return stream_normals(data, 0, m, dtype)[:n]
    if jnp.dtype(dtype) != jnp.float32:
        return jax.random.normal(key, (n,), dtype)
    bits = jax.random.bits(key, ((n + 1) // 2,), jnp.uint64)
    words = jax.lax.bitcast_convert_type(bits, jnp.uint32).reshape(-1)[:n]
    return normals_from_bits(words, jnp.float32)


def _is_threefry(key) -> bool:
    return str(jax.random.key_impl(key)) == _THREEFRY


def stream_normals(key_data, start, n: int, dtype=jnp.float64, *, axis: int = -1
                   ) -> Float[Array, "... n"]:
    """Draws `start, …, start + n − 1` of `standard_normals(key, ·, dtype)` for threefry keys.

    Under JAX's (default) partitionable threefry, 64-bit word i of a key's stream is the Threefry
    hash of the counter i; draw i is made from word i (float64) or from half of word ⌊i/2⌋
    (float32: the low 32 bits for even i, the high ones for odd i). Evaluating the hash at the
    counters directly gives any stretch of the stream without the rest, which lets `rgflow.measure`
    draw a network's neurons a few at a time in a loop whose length (the width) is a runtime value.

    **Arguments:**

    - `key_data`: raw threefry key data, uint32, with the two key words on axis `axis` (of
      size 2; `jax.random.key_data` gives them last), one stream per index of the other axes.
    - `start`: the first draw (an integer, may be traced); even for float32.
    - `n`: the number of draws (static); even for float32.
    - `dtype`: float64 or float32.
    - `axis`: the axis of `key_data` that holds the key words, and of the result that runs over
      the draws (`axis=0` puts the streams on the fast axis: XLA vectorises over them).

    **Returns:** standard normals in `dtype`, the shape of `key_data` with `n` on `axis`.
    """
    return normals_from_bits(stream_bits(key_data, start, n, dtype, axis=axis), dtype)


def stream_bits(key_data, start, n: int, dtype=jnp.float64, *, axis: int = -1):
    """The random words behind `stream_normals(key_data, start, n, dtype, axis=axis)`: uint64
    (float64) or uint32 (float32); `normals_from_bits` turns them into the normals."""
    dtype = jnp.dtype(dtype)
    single = dtype == jnp.float32
    if single and n % 2:
        raise ValueError(f"`n` must be even for float32 draws, got {n}.")
    key_data = jnp.moveaxis(jnp.asarray(key_data, jnp.uint32), axis, 0)  # (2, ...)
    rest = key_data.shape[1:]
    words = n // 2 if single else n
    first = jnp.asarray(start, jnp.uint32) // 2 if single else jnp.asarray(start, jnp.uint32)
    shape = (words,) + rest
    lo = jnp.broadcast_to((first + jnp.arange(words, dtype=jnp.uint32)).reshape(
        (words,) + (1,) * len(rest)), shape)
    k1, k2 = (jnp.broadcast_to(k[None], shape) for k in key_data)
    bits_hi, bits_lo = _threefry2x32(k1, k2, jnp.zeros(shape, jnp.uint32), lo)
    if single:
        # (low, high) half of each 64-bit word, as `bitcast_convert_type(uint64 → uint32)` gives
        bits = jnp.stack([bits_lo, bits_hi], axis=1).reshape((n,) + rest)
    else:
        bits = (bits_hi.astype(jnp.uint64) << np.uint64(32)) | bits_lo.astype(jnp.uint64)
    return jnp.moveaxis(bits, 0, axis)


def fold_in_data(key_data, index):
    """Raw key data `(..., 2)` of `jax.random.fold_in(key, g)` for the threefry key with data
    `key_data` `(2,)` and the uint32 indices `index` `(...)`: the Threefry hash of the counter
    (0, g), computed with `_threefry2x32` (fused by XLA; no separate rolled loop)."""
    key_data = jnp.asarray(key_data, jnp.uint32)
    index = jnp.asarray(index, jnp.uint32)
    k1 = jnp.broadcast_to(key_data[0], index.shape)
    k2 = jnp.broadcast_to(key_data[1], index.shape)
    hi, lo = _threefry2x32(k1, k2, jnp.zeros_like(index), index)
    return jnp.stack([hi, lo], axis=-1)


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds; Salmon et al. 2011), as `jax.random` computes it, of
    the counter words (x1, x2) under the key (k1, k2); all uint32 arrays of one shape.

    Written out (unrolled) so that XLA fuses it with what follows; JAX's CPU lowering is a rolled
    loop, whose per-iteration overhead dominates when a few numbers are drawn at a time."""
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in rotations[i % 2]:
            x1 = x1 + x2
            x2 = (x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r))
            x2 = x1 ^ x2
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def normals_from_bits(words, dtype):
    """√2 erf⁻¹(u), u uniform on (−1, 1) from the mantissa bits of `words` (uint32 for float32,
    uint64 for float64): `jax.random.normal`'s transform."""
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        one, shift = np.uint32(0x3F800000), np.uint32(32 - 23)
    else:
        one, shift = np.uint64(0x3FF0000000000000), np.uint64(64 - 52)
    unit = jax.lax.bitcast_convert_type((words >> shift) | one, dtype) - dtype.type(1)
    low = np.nextafter(dtype.type(-1), dtype.type(0))
    u = jnp.maximum(low, unit * (dtype.type(1) - low) + low)
    return dtype.type(math.sqrt(2)) * jax.lax.erf_inv(u)


def available_activations() -> tuple[str, ...]:
    """Names accepted by `GenericNet(activation=...)` (a callable is accepted too)."""
    return tuple(sorted(_ACTIVATIONS))


class AbstractNet(eqx.Module):
    """A single-hidden-layer network with i.i.d. Gaussian parameters (physics.md §2).

    Subclasses fix the activation φ; all share the fields below, which are static Python numbers
    (validated at construction).

    **Fields:**

    - `width`: the number of hidden neurons N (>= 1).
    - `d_in`: the input dimension (>= 1).
    - `sigma_w`: σ_W >= 0; W0 ~ N(0, σ_W²/d_in) and W1 ~ N(0, σ_W²/N).
    - `sigma_b`: σ_b >= 0; b0, b1 ~ N(0, σ_b²).
    """

    width: int = eqx.field(static=True, kw_only=True)
    d_in: int = eqx.field(static=True, kw_only=True, default=1)
    sigma_w: float = eqx.field(static=True, kw_only=True, default=1.0)
    sigma_b: float = eqx.field(static=True, kw_only=True, default=1.0)

    name: ClassVar[str] = "abstract"

    def __check_init__(self):
        check_positive_int("width", self.width)
        check_positive_int("d_in", self.d_in)
        check_sigma("sigma_w", self.sigma_w)
        check_sigma("sigma_b", self.sigma_b)

    # ----------------------------------------------------------------------------- theory ---
    def covariance(self, x: Float[Array, "P d"], y: Float[Array, "Q d"]) -> Float[Array, "P Q"]:
        """Pre-activation covariance S(x, y) = σ_b² + σ_W² x·y / d_in (physics.md §2)."""
        return self._finite(self._covariance(*self._points(x, y)), "the covariance S(x, y)")

    def _covariance(self, x, y):
        """`covariance` on validated float64 arrays (used inside the kernels)."""
        return self.sigma_b**2 + self.sigma_w**2 * (x @ y.T) / self.d_in

    def _points(self, x, y):
        """`x`, `y` validated as real finite `(P, d_in)`, `(Q, d_in)` float64 arrays."""
        return check_points("x", x, self.d_in), check_points("y", y, self.d_in)

    def _finite(self, out, what: str):
        """Refuse a non-finite theory result (overflow of σ_W, |x| or the activation)."""
        return check_finite_output(
            out, f"{what} of {type(self).__name__}(sigma_w={self.sigma_w}, sigma_b={self.sigma_b})",
            "the inputs or σ_W are too large (overflow), or the activation yields NaN/inf there",
        )

    def feature_vectors(self, xs) -> np.ndarray:
        """Rows v_a with v_a·v_b = S(x_a, x_b): z_a = v_a·u, u ~ N(0, I_{d_in+1})."""
        xs = np.asarray(check_points("xs", xs, self.d_in))
        bias = np.full((xs.shape[0], 1), self.sigma_b)
        return np.concatenate([self.sigma_w * xs / math.sqrt(self.d_in), bias], axis=1)

    def kernel(self, x: Float[Array, "P d"], y: Float[Array, "Q d"]) -> Float[Array, "P Q"]:
        """The infinite-width GP kernel K(x, y) = σ_b² + σ_W² E[φ(z(x)) φ(z(y))] (physics.md §2).

        **Arguments:** `x` of shape `(P, d_in)`, `y` of shape `(Q, d_in)`.

        **Returns:** the `(P, Q)` kernel matrix (float64, differentiable in `x` and `y`).
        """
        return self.sigma_b**2 + self.kernel_w(x, y)  # kernel_w validates and checks finiteness

    @abc.abstractmethod
    def kernel_w(self, x: Float[Array, "P d"], y: Float[Array, "Q d"]) -> Float[Array, "P Q"]:
        """K_W = K − σ_b² = σ_W² E[φφ], the kernel of g = f − b1 carried by vertex lines
        (physics.md §3), computed directly (not as a difference, which would lose all digits
        where K_W ≪ σ_b²)."""

    @abc.abstractmethod
    def phi(self, z: Float[Array, "... P"], xs: Float[Array, "P d"], *, axis: int = -1
            ) -> Float[Array, "... P"]:
        """The activation φ applied to pre-activations `z` of the inputs `xs`.

        The inputs are passed because Gauss-net's normalisation depends on |x| (physics.md §2);
        `axis` (negative) is the axis of `z` that runs over them (the samplers put the neurons
        last, so that the sum over them is a contiguous reduction).
        """

    # --------------------------------------------------------------------------- sampling ---
    def sample(
        self,
        xs: Float[Array, "P d"],
        n_nets: int,
        *,
        key: PRNGKeyArray,
        start: int = 0,
    ) -> Float[Array, "nets P"]:
        """Outputs of `n_nets` independent random networks on the inputs `xs`.

        Network number `g` (global index `start + i`) draws all its parameters from
        `jax.random.fold_in(key, g)`, so an ensemble is the same however it is batched or
        sharded. Indices are taken modulo 2³², i.e. at most ~4·10⁹ distinct networks per key.

        **Arguments:**

        - `xs`: inputs of shape `(P, d_in)`.
        - `n_nets`: number of networks.
        - `key`: a `jax.random` key.
        - `start`: global index of the first network.

        **Returns:** an array of shape `(n_nets, P)`, `f_g(x_a)`.
        """
        n_nets = check_positive_int("n_nets", n_nets)
        start = check_positive_int("start", start, minimum=0)
        check_network_indices(start + n_nets)
        key = check_key(key)
        xs = check_points("xs", xs, self.d_in)
        per_net = self.width * (self.d_in + 2 + 2 * xs.shape[0]) + 1
        check_memory(8.0 * n_nets * per_net, f"sampling {n_nets} networks of width {self.width}",
                     hint="sample fewer networks per call (use `start` to continue the ensemble)")
        index = start + jnp.arange(n_nets, dtype=jnp.uint32)
        out = network_outputs(self, xs, key, index)
        return self._finite(out, "the sampled network outputs")


def check_network_indices(end: int) -> None:
    """Networks are indexed modulo 2³² (`fold_in(key, g)`); refuse ensembles that would wrap
    around and silently reuse networks."""
    if end > 2**32:
        raise ValueError(
            f"network indices must stay below 2**32 (start + n_nets = {end}): beyond that "
            "fold_in(key, g) repeats networks; split the ensemble over several keys."
        )


def network_outputs(
    net: AbstractNet, xs: Float[Array, "P d"], key: PRNGKeyArray, index
) -> Float[Array, "nets P"]:
    """Outputs of the networks with global indices `index` (see `AbstractNet.sample`).

    Network g reads its parameters from the stream of `standard_normals(fold_in(key, g), ·)`:
    draw 0 is b1, draw 1 is unused, and hidden neuron j takes the d_in + 2 draws from
    2 + j(d_in + 2) on, read as (W0_j1, …, W0_jd, b0_j, W1_j). A neuron's draws do not depend on
    the width, so `rgflow.measure` can draw the neurons a few at a time with the width a
    runtime value (one compiled program for every width); this is the plain reference
    implementation of that scheme.
    """
    n, d = net.width, net.d_in

    def one(g):
        r = standard_normals(jax.random.fold_in(key, g), 2 + n * (d + 2), xs.dtype)
        b1 = r[0] * net.sigma_b
        neurons = r[2:].reshape(n, d + 2)
        w0 = neurons[:, :d] * (net.sigma_w / math.sqrt(d))
        b0 = neurons[:, d] * net.sigma_b
        w1 = neurons[:, d + 1] * (net.sigma_w / math.sqrt(n))
        z = w0 @ xs.T + b0[:, None]  # (N, P)
        return w1 @ net.phi(z, xs) + b1

    return jax.vmap(one)(index)


# ------------------------------------------------------------------------------ kernels ---


def _erf_kernel(net: AbstractNet, x, y):
    sxy = net._covariance(x, y)
    sxx = net.sigma_b**2 + net.sigma_w**2 * jnp.sum(x * x, axis=-1) / net.d_in
    syy = net.sigma_b**2 + net.sigma_w**2 * jnp.sum(y * y, axis=-1) / net.d_in
    arg = 2 * sxy / jnp.sqrt((1 + 2 * sxx)[:, None] * (1 + 2 * syy)[None, :])
    return (2 * net.sigma_w**2 / jnp.pi) * jnp.arcsin(arg)


def _features(net: AbstractNet, x):
    """Rows v with v(x)·v(y) = S(x, y): (σ_W x/√d_in, σ_b)."""
    bias = jnp.full(x.shape[:-1] + (1,), net.sigma_b, dtype=x.dtype)
    return jnp.concatenate([net.sigma_w * x / math.sqrt(net.d_in), bias], axis=-1)


def _relu_kernel(net: AbstractNet, x, y):
    vx, vy = _features(net, x), _features(net, y)
    sxy = vx @ vy.T
    # S_xx S_yy − S_xy² = Σ_{i<j} (vx_i vy_j − vx_j vy_i)² (Lagrange's identity): no cancellation,
    # exactly zero for parallel feature vectors.
    d = vx.shape[-1]
    wedge = sum(
        (vx[:, i, None] * vy[None, :, j] - vx[:, j, None] * vy[None, :, i]) ** 2
        for i in range(d)
        for j in range(i + 1, d)
    )
    pos = wedge > 0
    sin_part = jnp.where(pos, jnp.sqrt(jnp.where(pos, wedge, 1.0)), 0.0)  # √(SxxSyy) sin θ
    theta = jnp.arctan2(sin_part, sxy)  # well conditioned near θ = 0 and π
    return net.sigma_w**2 / (2 * jnp.pi) * (sin_part + (jnp.pi - theta) * sxy)


def _gauss_kernel(net: AbstractNet, x, y):
    d2 = jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    return net.sigma_w**2 * jnp.exp(-(net.sigma_w**2) * d2 / (2 * net.d_in))


def _normal_rule(n: int, half_width: float = 8.5):
    """∫ g(u) N(u; 0, 1) du ≈ Σ w_i g(u_i): Gauss–Legendre on [−8.5, 8.5] times the density.

    (Gauss–Hermite converges badly for activations such as erf that grow like exp(y²) off the
    real axis; the truncated Gauss–Legendre rule loses only ~1e-17 of Gaussian mass.)
    """
    t, w = np.polynomial.legendre.leggauss(n)
    u = half_width * t
    return u, half_width * w * np.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)


def _gh_kernel(net: AbstractNet, x, y, n: int = 100):
    """K_W = σ_W² E[φ(z_x)φ(z_y)] by a 2-d product quadrature (physics.md §2)."""
    u, w = _normal_rule(n)
    u, w = jnp.asarray(u), jnp.asarray(w)
    sxy = net._covariance(x, y)
    sxx = net.sigma_b**2 + net.sigma_w**2 * jnp.sum(x * x, axis=-1) / net.d_in
    syy = net.sigma_b**2 + net.sigma_w**2 * jnp.sum(y * y, axis=-1) / net.d_in
    a = jnp.sqrt(sxx)[:, None]  # z_x = a u1
    safe_a = jnp.where(a > 0, a, 1.0)
    b = jnp.where(a > 0, sxy / safe_a, 0.0)  # z_y = b u1 + c u2
    c = jnp.sqrt(jnp.maximum(syy[None, :] - b**2, 0.0))
    phi = lambda z: net.activation_fn(z)  # noqa: E731
    # E over u1 of phi(a u1) * E_{u2}[phi(b u1 + c u2)]
    inner = jnp.einsum(
        "pqij,j->pqi", phi(b[..., None, None] * u[:, None] + c[..., None, None] * u[None, :]), w
    )
    outer = jnp.einsum("pi,pqi,i->pq", phi(a * u[None, :]), inner, w)
    return net.sigma_w**2 * outer


# ------------------------------------------------------------------------- architectures ---


class ErfNet(AbstractNet):
    """Erf-net: φ = erf. Kernel K = σ_b² + (2σ_W²/π) arcsin(2S_xy/√((1+2S_xx)(1+2S_yy)))."""

    name: ClassVar[str] = "erf"

    def phi(self, z, xs, *, axis=-1):
        return jax.scipy.special.erf(z)

    def activation_fn(self, z):
        return jax.scipy.special.erf(z)

    def kernel_w(self, x, y):
        return self._finite(_erf_kernel(self, *self._points(x, y)), "the kernel K_W(x, y)")


class ReLUNet(AbstractNet):
    """ReLU-net: φ = max(0, ·), σ_b = 0 by default (physics.md §2).

    K = σ_b² + (σ_W²/2π) √(S_xx S_yy) (sin θ + (π − θ) cos θ), cos θ = S_xy/√(S_xx S_yy).
    """

    sigma_b: float = eqx.field(static=True, kw_only=True, default=0.0)
    name: ClassVar[str] = "relu"

    def phi(self, z, xs, *, axis=-1):
        return jax.nn.relu(z)

    def activation_fn(self, z):
        return jax.nn.relu(z)

    def kernel_w(self, x, y):
        return self._finite(_relu_kernel(self, *self._points(x, y)), "the kernel K_W(x, y)")


class GaussNet(AbstractNet):
    """Gauss-net: φ(z(x)) = exp(z(x)) / √(exp[2(σ_b² + σ_W²|x|²/d_in)]) (physics.md §2).

    The x-dependent normalisation makes the GP kernel translation invariant,
    K = σ_b² + σ_W² exp(−σ_W² |x − y|² / (2 d_in)), for any σ_W, σ_b and d_in.
    """

    name: ClassVar[str] = "gauss"

    def phi(self, z, xs, *, axis=-1):
        sxx = self.sigma_b**2 + self.sigma_w**2 * jnp.sum(xs * xs, axis=-1) / self.d_in
        return jnp.exp(z - sxx.reshape(sxx.shape + (1,) * (-1 - axis)))

    def kernel_w(self, x, y):
        return self._finite(_gauss_kernel(self, *self._points(x, y)), "the kernel K_W(x, y)")


def activation_name(activation) -> str:
    """A printable name of an activation: its name, or the callable's `__name__`."""
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", "custom")


def check_activation(activation) -> None:
    """Validate an activation: a name of `available_activations()`, or a callable that is finite
    on a grid of pre-activations (one validator for `GenericNet` and `rgflow.DeepNet`)."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"`activation` must be a callable or one of {available_activations()}, "
                f"got {activation!r}."
            )
    elif not callable(activation):
        raise TypeError(f"`activation` must be a string or a callable, got {activation!r}.")
    else:
        _check_activation(activation)


class GenericNet(AbstractNet):
    """A single-hidden-layer net with any elementwise activation.

    **Fields** (besides those of `AbstractNet`):

    - `activation`: a name from `rgflow.available_activations()` or a callable acting
      elementwise on a JAX array.

    The kernel is computed by a 100 × 100-point Gauss–Legendre product rule on the truncated
    Gaussian (against the Erf closed form: ~1e-13 for pre-activation std ~1.4, ~1e-8 for std ~2; exponentially convergent for smooth bounded
    activations; only algebraically convergent for activations with kinks — use `ReLUNet` for
    ReLU).
    """

    activation: str | Callable = eqx.field(static=True, kw_only=True, default="tanh")
    name: ClassVar[str] = "generic"

    def __check_init__(self):
        check_activation(self.activation)

    @property
    def activation_name(self) -> str:
        return activation_name(self.activation)

    def activation_fn(self, z):
        fn = _ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation
        return fn(z)

    def phi(self, z, xs, *, axis=-1):
        return self.activation_fn(z)

    def kernel_w(self, x, y):
        x, y = self._points(x, y)
        check_memory(3 * 8.0 * x.shape[0] * y.shape[0] * 100**2,
                     f"the {x.shape[0]} x {y.shape[0]} quadrature kernel of GenericNet",
                     hint="evaluate the kernel on fewer points at a time")
        return self._finite(_gh_kernel(self, x, y), "the kernel K_W(x, y)")


def _check_activation(fn) -> None:
    """Evaluate a user activation on a grid of pre-activations z ∈ [−10, 10] (where the kernel
    quadrature and the sampler evaluate it): it must accept a float64 array, act elementwise
    (same shape out) and return finite real values."""
    z = np.linspace(-10.0, 10.0, 201)
    try:
        with jax.ensure_compile_time_eval():
            out = np.asarray(fn(jnp.asarray(z)))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"`activation` failed on a float64 array of pre-activations: {e}") from e
    if out.shape != z.shape:
        raise ValueError(
            f"`activation` must act elementwise: a float64 array of shape {z.shape} gave shape "
            f"{out.shape}."
        )
    if np.iscomplexobj(out):
        raise ValueError("`activation` must return real values, got a complex array.")
    bad = ~np.isfinite(out)
    if np.any(bad):
        raise ValueError(
            f"`activation` yields NaN or inf at z = {z[bad][0]:g} (checked on z in [-10, 10]); "
            "the kernel and the sampler need it finite on the whole real line."
        )


_NET_CLASSES = {"erf": ErfNet, "relu": ReLUNet, "gauss": GaussNet}


def make_net(name: str, **kwargs) -> AbstractNet:
    """Build a network by name: `"erf"`, `"relu"`, `"gauss"`, or any activation name of
    `available_activations()` (giving a `GenericNet`)."""
    if name in _NET_CLASSES:
        return _NET_CLASSES[name](**kwargs)
    if name in _ACTIVATIONS:
        return GenericNet(activation=name, **kwargs)
    raise ValueError(
        f"`net` must be one of {tuple(_NET_CLASSES)} or an activation in "
        f"{available_activations()}, got {name!r}."
    )


def hms_inputs(net: str, d_in: int = 1) -> np.ndarray:
    """The input sets of HMS (physics.md §5) for `net` in {"erf", "relu", "gauss"}.

    **Returns:** a float64 array of shape `(P, d_in)`.
    """
    base = {
        1: {
            "erf": [[-1.0], [-0.6], [-0.2], [0.2], [0.6], [1.0]],
            "relu": [[0.2], [0.4], [0.6], [0.8], [1.0], [1.2]],
        },
        2: {
            "erf": [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]],
            "relu": [[0.5, 0.5], [0.5, 1.0], [1.0, 0.5], [1.0, 1.0]],
        },
        3: {
            "erf": [[-1.0, -1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0]],
            "relu": [[0.2, 0.2, 0.2], [1.0, 1.0, 0.2], [0.2, 1.0, 1.0], [1.0, 0.2, 1.0]],
        },
    }
    if d_in not in base:
        raise ValueError(f"`d_in` must be 1, 2 or 3 for the HMS input sets, got {d_in!r}.")
    if net == "gauss":
        return 0.01 * np.asarray(base[d_in]["erf"], dtype=np.float64)
    if net not in ("erf", "relu"):
        raise ValueError(f"`net` must be 'erf', 'relu' or 'gauss', got {net!r}.")
    return np.asarray(base[d_in][net], dtype=np.float64)
