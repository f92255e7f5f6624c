"""Neural tangent kernels and the linearised training dynamics of an ensemble (physics.md §14).

**Parameterisation.** "ntk": every trainable parameter θ is a standard normal and the widths
enter the forward pass, z_j = (σ_W/√d_in) Σ_k w_jk x_k + σ_b b0_j, f = (σ_W/√N) Σ_j a_j φ(z_j)
+ σ_b b1 — at initialisation the same function (and, with rgflow's draw layout, the same
networks) as the §2 net. "standard" (HMS): the trainable parameters are W0 = σ_W w/√d_in, ...,
W1 = σ_W a/√N themselves; the same networks at t = 0, a different (width-dependent) NTK.

**NTK** (MSE loss L = ½ Σ_a (f(x_a) − y_a)², gradient descent at rate η):
Θ(x, x') = Σ_θ ∂_θ f(x) ∂_θ f(x'). In the NTK parameterisation, at infinite width, for one hidden
layer

    Θ = K + σ_W² S(x, x') K̇(x, x'),   K̇ = E[φ'(z) φ'(z')],  (z, z') ~ N(0, S),

(readout a, b1 give K; first-layer w, b0 give σ_W² K̇ S), with K̇_erf = (4/π)/√((1+2S_xx)(1+2S_x'x')
− 4S_xx'²) and K̇_relu = (π − θ)/(2π). For `DeepNet` the layer recursion
Θ⁽¹⁾ = K⁽¹⁾ = S, Θ⁽ℓ⁺¹⁾ = K⁽ℓ⁺¹⁾ + σ_W² K̇⁽ℓ⁺¹⁾ Θ⁽ℓ⁾ with K̇⁽ℓ⁺¹⁾ = ∂F/∂G_xx' at K⁽ℓ⁾
(closed forms for erf, relu and linear; otherwise a 100 × 100 Gauss–Legendre product rule of
φ'φ', φ' by autodiff).

**Linearised dynamics.** With a frozen kernel Θ on the training inputs X, n discrete steps of
gradient descent move the residual as f_n(X) − Y = (I − ηΘ)ⁿ (f₀(X) − Y), and every other input
follows, f_n(x) = f₀(x) − Θ(x, X) Θ⁻¹ (I − (I − ηΘ)ⁿ)(f₀(X) − Y) (gradient flow: e^{−ηΘt}). So
f_n(probes) = A_n f₀(probes ∪ X) + b_n with the deterministic

    A_n = [ I , −M_n ],  b_n = M_n Y,   M_n = Θ(x, X) Θ⁻¹ (I − (I − ηΘ)ⁿ),

and over the initial ensemble μ_n = M_n Y (odd cumulants of f₀ vanish), Σ_n = A_n K A_nᵀ, and
every cumulant of order ≥ 2 transforms as a tensor, κ_k(f_n) = A_n^{⊗k} κ_k(f₀) (the
frozen-kernel tensor transport). Readout-only training is exactly linear: Θ is the readout kernel,
which is K at N → ∞, and n → ∞ gives the noise-free GP posterior.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._nets import AbstractNet, ErfNet, GenericNet, ReLUNet
from ._validate import check_inputs, check_real_array

PARAMETERISATIONS = ("ntk", "standard")
TRAINABLE = ("all", "readout")


def check_parameterisation(value) -> str:
    if value not in PARAMETERISATIONS:
        raise ValueError(f"`parameterisation` must be one of {PARAMETERISATIONS}, got {value!r}.")
    return value


def check_trainable(value) -> str:
    if value not in TRAINABLE:
        raise ValueError(f"`trainable` must be one of {TRAINABLE}, got {value!r}.")
    return value


# ------------------------------------------------------------------- infinite-width NTK ---


def _sxx(net, x):
    return net.sigma_b**2 + net.sigma_w**2 * jnp.sum(x * x, axis=-1) / net.d_in


def _kdot_erf(net, x, y):
    """E[φ'(z)φ'(z')] for φ = erf: (4/π)/√((1+2S_xx)(1+2S_yy) − 4S_xy²)."""
    sxy = net._covariance(x, y)
    a, b = _sxx(net, x)[:, None], _sxx(net, y)[None, :]
    return (4 / jnp.pi) / jnp.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * sxy**2)


def _kdot_relu(net, x, y):
    """E[θ(z)θ(z')] = (π − θ)/(2π), cos θ = S_xy/√(S_xx S_yy)."""
    sxy = net._covariance(x, y)
    a, b = _sxx(net, x)[:, None], _sxx(net, y)[None, :]
    cos = jnp.clip(sxy / jnp.sqrt(a * b), -1.0, 1.0)
    return (jnp.pi - jnp.arccos(cos)) / (2 * jnp.pi)


def _kdot_map(net, a, g, b):
    """K̇ = E[φ'(z)φ'(z')], (z, z') ~ N(0, [[a, g], [g, b]]): closed forms for relu, erf and
    linear; otherwise quadrature of φ'φ' (φ' by autodiff)."""
    act = net.activation
    if act == "relu":
        cos = jnp.clip(g / jnp.sqrt(a * b), -1.0, 1.0)
        return (jnp.pi - jnp.arccos(cos)) / (2 * jnp.pi)
    if act == "erf":
        return (4 / jnp.pi) / jnp.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * g**2)
    if act == "linear":
        return jnp.ones_like(g)
    # E[φ'φ'] by the 100 × 100 Gauss–Legendre product rule of the kernels (`_normal_rule`),
    # z = √a u1, z' = (g/√a) u1 + √(b − g²/a) u2, φ' by autodiff of the activation
    from ._nets import _normal_rule

    u, w = (jnp.asarray(v) for v in _normal_rule(100))
    dphi = jnp.vectorize(jax.grad(net.activation_fn))
    sa = jnp.sqrt(a)
    beta = g / sa
    c = jnp.sqrt(jnp.maximum(b - beta**2, 0.0))
    z1 = sa[..., None, None] * u[:, None]
    z2 = beta[..., None, None] * u[:, None] + c[..., None, None] * u[None, :]
    return jnp.einsum("...ij,i,j->...", dphi(z1) * dphi(z2), w, w)


def _deep_ntk(net, x, y, trainable: str):
    """K and Θ of a `DeepNet` by the layer recursion (module docstring)."""
    from ._deep import diagonal_map, kernel_map

    sw2, sb2 = net.sigma_w**2, net.sigma_b**2
    a = _sxx(net, x)[:, None]
    b = _sxx(net, y)[None, :]
    g = net._covariance(x, y)
    theta = g
    for _ in range(net.depth):
        kdot = _kdot_map(net, jnp.broadcast_to(a, g.shape), g, jnp.broadcast_to(b, g.shape))
        g_next = sb2 + sw2 * kernel_map(net, a, g, b)
        theta = g_next + sw2 * kdot * theta
        a = sb2 + sw2 * diagonal_map(net, a)
        b = sb2 + sw2 * diagonal_map(net, b)
        g = g_next
    return g, (g if trainable == "readout" else theta)


def infinite_ntk(net: AbstractNet, x: Float[Array, "P d"], y: Float[Array, "Q d"], *,
                 trainable: str = "all") -> Float[Array, "P Q"]:
    """The infinite-width NTK Θ(x, y) in the NTK parameterisation (physics.md §14).

    **Arguments:**

    - `net`: `ErfNet`, `ReLUNet` (closed forms Θ = K + σ_W² S K̇), a `GenericNet` or `DeepNet`
      (layer recursion Θ⁽ℓ⁺¹⁾ = K⁽ℓ⁺¹⁾ + σ_W² K̇⁽ℓ⁺¹⁾ Θ⁽ℓ⁾; K̇ closed for erf/relu/linear, by
      quadrature of φ'φ' otherwise), or a `CosNet` with `trainable="readout"` (Θ = K).
    - `x`, `y`: inputs `(P, d_in)`, `(Q, d_in)`.
    - `trainable`: "all" (every parameter) or "readout" (the last layer's weights and bias:
      Θ = K exactly in the mean, at every width).

    **Returns:** the `(P, Q)` float64 matrix.
    """
    trainable = check_trainable(trainable)
    x = jnp.asarray(check_inputs(x, net.d_in, name="x"))
    y = jnp.asarray(check_inputs(y, net.d_in, name="y"))
    if getattr(type(net), "is_deep", False):
        return _deep_ntk(net, x, y, trainable)[1]
    k = net.kernel(x, y)
    if trainable == "readout":
        return k
    if isinstance(net, ErfNet):
        kdot = _kdot_erf(net, x, y)
    elif isinstance(net, ReLUNet):
        kdot = _kdot_relu(net, x, y)
    elif isinstance(net, GenericNet):
        from ._deep import DeepNet

        deep = DeepNet(activation=net.activation, width=net.width, depth=1, d_in=net.d_in,
                       sigma_w=net.sigma_w, sigma_b=net.sigma_b)
        return _deep_ntk(deep, x, y, trainable)[1]
    else:
        raise TypeError(f"no infinite-width NTK for {type(net).__name__} with trainable='all' "
                        "(closed forms: ErfNet, ReLUNet, GenericNet, DeepNet); use "
                        "`rgflow.empirical_ntk`.")
    return k + net.sigma_w**2 * net._covariance(x, y) * kdot


def empirical_ntk(apply_fn, params, x, y=None, *, trainable=None) -> Float[Array, "P Q"]:
    """The empirical NTK Θ̂(x, y) = Σ_θ ∂_θ f(x) ∂_θ f(y) of one network (Jacobians by
    `jax.jacrev`).

    **Arguments:**

    - `apply_fn`: `apply_fn(params, xs) -> (P,)` outputs.
    - `params`: the parameter pytree of the network.
    - `x`, `y`: inputs (y defaults to x).
    - `trainable`: optional boolean pytree of the structure of `params` (True = the leaf is
      trained and enters the sum); default: all leaves.

    **Returns:** `(P, Q)`.
    """
    y = x if y is None else y
    if trainable is None:
        trainable = jax.tree_util.tree_map(lambda _: True, params)
    train, frozen = eqx.partition(params, trainable)

    def f(tr, xs):
        return apply_fn(eqx.combine(tr, frozen), xs)

    jx = jax.jacrev(f)(train, x)
    jy = jax.jacrev(f)(train, y)
    leaves = zip(jax.tree_util.tree_leaves(jx), jax.tree_util.tree_leaves(jy), strict=True)
    return sum(a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T for a, b in leaves)


# ------------------------------------------------------------------ linearised dynamics ---


class LinearisedDynamics(eqx.Module):
    """The frozen-kernel (linearised) evolution of an ensemble on probe inputs (physics.md §14).

    f_t(probes) = A_t f₀(Z) + b_t, Z = probes ∪ x_train (probes first).

    **Fields:** `probes` `(P, d)`, `x_train` `(n, d)`, `y_train` `(n,)`, `times` `(T,)` (steps,
    or η·t for gradient flow), `transfer` A `(T, P, P + n)`, `shift` b `(T, P)`,
    `kernel` K(Z, Z) `(P + n, P + n)`, `ntk` Θ(Z, Z).
    """

    probes: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    times: np.ndarray
    transfer: np.ndarray
    shift: np.ndarray
    kernel: np.ndarray
    ntk: np.ndarray

    def mean(self) -> np.ndarray:
        """μ_t = M_t Y `(T, P)` (the initial ensemble has zero mean)."""
        return np.asarray(self.shift)

    def cov(self) -> np.ndarray:
        """Σ_t = A_t K(Z, Z) A_tᵀ `(T, P, P)`."""
        a = np.asarray(self.transfer)
        return np.einsum("tpi,ij,tqj->tpq", a, np.asarray(self.kernel), a)

    def transport(self, kappa) -> np.ndarray:
        """κ_k(f_t) = A_t^{⊗k} κ_k(f₀): `kappa` a full symmetric `(P+n,)*k` cumulant of f₀ on Z.

        **Returns:** `(T,) + (P,)*k`.
        """
        kappa = np.asarray(kappa)
        k = kappa.ndim
        z = self.transfer.shape[-1]
        if kappa.shape != (z,) * k:
            raise ValueError(f"`kappa` must have shape {(z,) * k} (probes ∪ x_train), got "
                             f"{kappa.shape}.")
        out = np.broadcast_to(kappa, (self.transfer.shape[0],) + kappa.shape)
        for axis in range(k):
            out = np.moveaxis(np.einsum("tpi,t...i->t...p", self.transfer,
                                        np.moveaxis(out, 1 + axis, -1)), -1, 1 + axis)
        return out


def transfer_matrices(theta: np.ndarray, n_probes: int, learning_rate: float, times,
                      *, flow: bool = False):
    """M_t = Θ(p, X) Θ(X, X)⁻¹ (I − D_t) `(T, P, n)`, D_t = (I − ηΘ)^t or e^{−ηΘt}
    (eigendecomposition of the symmetric Θ(X, X))."""
    theta = np.asarray(theta, np.float64)
    p = n_probes
    lam, v = np.linalg.eigh(theta[p:, p:])
    if lam.min() <= 0:
        raise ValueError("the NTK on the training inputs is singular (repeated inputs?); "
                         f"smallest eigenvalue {lam.min():.3g}.")
    if not flow and learning_rate * lam.max() >= 2:
        raise ValueError(f"`learning_rate` {learning_rate:g} diverges: gradient descent needs "
                         f"η λ_max < 2, and λ_max(Θ_XX) = {lam.max():.4g} (η < "
                         f"{2 / lam.max():.4g}).")
    t = np.asarray(times, np.float64)[:, None]
    decay = np.exp(-learning_rate * lam * t) if flow else (1 - learning_rate * lam) ** t
    g = (1 - decay) / lam  # (T, n)
    return np.einsum("pi,ik,tk,jk->tpj", theta[:p, p:], v, g, v)


def linearised_dynamics(net: AbstractNet, x_train, y_train, probes, *, learning_rate: float,
                        times, trainable: str = "all", flow: bool = False,
                        ntk=None) -> LinearisedDynamics:
    """The infinite-width linearised evolution μ_t, Σ_t, A_t of an ensemble (physics.md §14).

    **Arguments:**

    - `net`: the network (NTK parameterisation; its kernel K is the initial covariance).
    - `x_train` `(n, d_in)`, `y_train` `(n,)`: the training set (MSE loss ½ Σ (f − y)²).
    - `probes` `(P, d_in)`: where the outputs are followed.
    - `learning_rate`: η > 0.
    - `times`: the step counts t (discrete gradient descent, (I − ηΘ)^t), or the times with
      `flow=True` (gradient flow, e^{−ηΘt}).
    - `trainable`: "all" (Θ the NTK) or "readout" (Θ = K).
    - `ntk`: optionally Θ(Z, Z) on Z = probes ∪ x_train (default `infinite_ntk`).

    **Returns:** a `LinearisedDynamics`.
    """
    x_train = check_inputs(x_train, net.d_in, name="x_train")
    probes = check_inputs(probes, net.d_in, name="probes")
    y_train = np.asarray(check_real_array("y_train", y_train, shape=(x_train.shape[0],)))
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
            and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {learning_rate!r}.")
    times = np.asarray(times, np.float64).reshape(-1)
    if times.size == 0 or np.any(times < 0) or not np.all(np.isfinite(times)):
        raise ValueError(f"`times` must be finite and >= 0, got {times!r}.")
    z = np.concatenate([probes, x_train])
    k = np.asarray(net.kernel(jnp.asarray(z), jnp.asarray(z)))
    theta = np.asarray(infinite_ntk(net, z, z, trainable=trainable) if ntk is None else ntk)
    p = probes.shape[0]
    m = transfer_matrices(theta, p, float(learning_rate), times, flow=flow)
    a = np.concatenate([np.broadcast_to(np.eye(p), (times.size, p, p)), -m], axis=-1)
    return LinearisedDynamics(probes=probes, x_train=x_train, y_train=y_train, times=times,
                              transfer=a, shift=m @ y_train, kernel=k, ntk=theta)


def gp_posterior(net: AbstractNet, x_train, y_train, probes):
    """The noise-free GP posterior on `probes`: mean K(x, X) K⁻¹ Y and covariance
    K(x, x') − K(x, X) K⁻¹ K(X, x') (the readout-only t → ∞ limit, physics.md §14).

    **Returns:** `(mean (P,), cov (P, P))`.
    """
    x_train = check_inputs(x_train, net.d_in, name="x_train")
    probes = check_inputs(probes, net.d_in, name="probes")
    y = np.asarray(check_real_array("y_train", y_train, shape=(x_train.shape[0],)))
    z = np.concatenate([probes, x_train])
    k = np.asarray(net.kernel(jnp.asarray(z), jnp.asarray(z)))
    return _posterior(k, probes.shape[0], y)


def _posterior(k, p, y):
    kxx = k[p:, p:]
    sol = np.linalg.solve(kxx, k[p:, :p])  # K⁻¹ K(X, x)
    return sol.T @ y, k[:p, :p] - k[:p, p:] @ sol


def readout_posterior_correction(net: AbstractNet, x_train, y_train, probes):
    """The O(1/N) terms of the readout-only t → ∞ ensemble (physics.md §14).

    At width N a network's readout kernel on Z = probes ∪ X is K̂ = σ_b² + (σ_W²/N) Σ_j φ_j φ_jᵀ
    (hidden layer frozen), and given its hidden layer the trained network is exactly the GP
    posterior of K̂: mean m(K̂) = K̂(x, X) K̂⁻¹ Y, covariance C(K̂). Over the hidden layers
    K̂ = K + δ with E δ = 0, N Cov(δ_ab, δ_cd) = V_abcd = σ_W⁴ (E[φ_aφ_bφ_cφ_d] − E[φ_aφ_b]E[φ_cφ_d]),
    so to O(1/N)

        E[f_∞] = m(K) + (1/2N) ∂²m[V],   Cov[f_∞] = C(K) + (1/2N) ∂²C[V] + (1/N) ∂m V ∂mᵀ.

    **Returns:** `(mean_coefficient (P,), cov_coefficient (P, P))` — the coefficients c of c/N.
    """
    from ._neuron import neuron_moments
    from ._tuples import to_full

    x_train = check_inputs(x_train, net.d_in, name="x_train")
    probes = check_inputs(probes, net.d_in, name="probes")
    y = jnp.asarray(check_real_array("y_train", y_train, shape=(x_train.shape[0],)))
    z = np.concatenate([probes, x_train])
    q, p = z.shape[0], probes.shape[0]
    k = jnp.asarray(net.kernel(jnp.asarray(z), jnp.asarray(z)))
    kw = jnp.asarray(net.kernel_w(jnp.asarray(z), jnp.asarray(z)))
    m4 = to_full(np.asarray(neuron_moments(net, z, 4)), q, 4)
    v = net.sigma_w**4 * m4 - jnp.einsum("ab,cd->abcd", kw, kw)

    def post(kk):
        sol = jnp.linalg.solve(kk[p:, p:], kk[p:, :p])
        return sol.T @ y, kk[:p, :p] - kk[:p, p:] @ sol

    mean_fn = lambda kk: post(kk)[0]  # noqa: E731
    cov_fn = lambda kk: post(kk)[1]  # noqa: E731
    hm = jax.hessian(mean_fn)(k)  # (P, q, q, q, q)
    hc = jax.hessian(cov_fn)(k)  # (P, P, q, q, q, q)
    jm = jax.jacobian(mean_fn)(k)  # (P, q, q)
    c_mean = 0.5 * jnp.einsum("pabcd,abcd->p", hm, v)
    c_cov = 0.5 * jnp.einsum("pqabcd,abcd->pq", hc, v) + jnp.einsum(
        "pab,abcd,qcd->pq", jm, v, jm)
    return np.asarray(c_mean), np.asarray(c_cov)
