"""Halverson's cos-net: a translation-invariant network field theory (physics.md §10, §4).

    f(x) = Σ_{i=1..N} a_i cos(w_i·x + b_i),   a_i ~ N(0, σ_a²/N),  b_i ~ U[−π, π],  w_i ~ p(w),

(arXiv:2112.04527). Averaging over the phase b makes every correlator depend only on differences
of the inputs, at every N. The GP kernel is the characteristic function of the weight density,

    K(x, x') = (σ_a²/2) E_w[cos(w·(x − x'))] = (σ_a²/2) φ_w(x − x'),

- "gaussian": w ~ N(0, s² I_d),                       φ(t) = exp(−s²|t|²/2);
- "cauchy":   multivariate Cauchy of scale s,          φ(t) = exp(−s|t|)  (the free massive
  propagator in d = 1; p(w) ∝ (1 + |w|²/s²)^{−(d+1)/2});
- "student_t": multivariate t, ν = `dof`, scale s,    φ(t) = r^{ν/2} K_{ν/2}(r) / (Γ(ν/2) 2^{ν/2−1}),
  r = s √ν |t| (K the modified Bessel function; ν = 1 is Cauchy).

**Exact finite-N correlators.** f is a sum of N i.i.d. terms g = a cos(w·x + b), so (as in §4)
κ_m(f) = N κ_m(g) with the single-term moments E[Π_j cos(w·x_j + b)]. The phase average is

    E_b[Π_{j=1..n} cos(θ_j + b)] = 2^{−n} Σ_{s ∈ {±1}ⁿ, Σ s = 0} e^{i Σ_j s_j θ_j},

(expand each cosine in exponentials; only terms with no net phase survive), and the w average
turns each e^{i w·Σ s_j x_j} into φ(Σ_j s_j x_j). With C = M2 and M4, M6 these moments,

    G4_c = (σ_a⁴/N)[3 M4 − Σ_3 C C],   G6_c = (σ_a⁶/N²)[15 M6 − 3 Σ_15 M4 C + 2 Σ_15 C C C].

**Lattice option** (`lattice=L`): inputs on the periodic grid x ∈ a·{0..L−1}^d (`lattice_points`),
momenta on the dual lattice w = 2π m/(L a), m_i ∈ {−⌈L/2⌉+1, .., ⌊L/2⌋}, with probability
p(w) ∝ the continuous density at w. The kernel is circulant, so the kernel modes are Fourier modes;
a momentum sector is {w, −w} (a cosine and a sine mode, degenerate). Two constructions:

- `momenta="random"`: each neuron draws its momentum from p(w) (i.i.d. neurons; the formulas above
  with the lattice characteristic function φ(t) = Σ_w p(w) cos(w·t)). The number of neurons per
  sector is multinomial, so sectors are *not* independent at finite N: e.g. for sectors k ≠ q,
  κ4(a_k, a_k, a_q, a_q) = N κ4 of one term = −N E[g_k²]E[g_q²]·(1/N²-scaled) ≠ 0 (a neuron that
  sits in sector k is not in q). Kept-mode couplings then run at O(1/N²).
- `momenta="stratified"`: the N neurons are assigned deterministically, N/S to each of the S
  sectors (N must be a multiple of S), with w = that sector's momentum and amplitude variance
  σ_a² p_s S/N (p_s = p(w) + p(−w), or p(w) for a self-conjugate momentum). Same kernel, and the
  sector fields f_s are exactly independent at every N: no coupling of kept modes can run when
  other sectors are integrated out, at any order (physics.md §10).

The class is an `AbstractNet` (so `rgflow.measure` samples it) with σ_W = 1 and σ_b = 0 fixed
(σ_W is not used; there is no output bias). It has no activation on Gaussian pre-activations, so
`rgflow.exact_connected` does not apply: use `CosNet.exact_connected`.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._nets import AbstractNet
from ._tuples import sorted_tuples, splits, to_full, wick_sum
from ._validate import check_inputs, check_key, check_order, check_positive_int, check_real

__all__ = ["CosNet"]

_DENSITIES = ("gaussian", "cauchy", "student_t")
_MAX_LATTICE_SITES = 10**6  # L^d: the momentum table is (L^d, d) and sectors a Python loop


def _balanced_signs(n: int) -> np.ndarray:
    """Sign vectors s ∈ {±1}ⁿ with Σ s = 0 and s_0 = +1 (one of each ± pair) `(C(n,n/2)/2, n)`."""
    out = [s for s in itertools.product((1, -1), repeat=n) if sum(s) == 0 and s[0] == 1]
    return np.asarray(out, dtype=np.float64)


class CosNet(AbstractNet):
    """Halverson's cos-net f(x) = Σ_i a_i cos(w_i·x + b_i) (module docstring; physics.md §10).

    **Fields** (keyword-only, static):

    - `width` N, `d_in`: as for every rgflow network.
    - `sigma_a`: σ_a > 0; a_i ~ N(0, σ_a²/N).
    - `weight_density`: "gaussian", "cauchy" or "student_t" (the density p(w)).
    - `scale`: s > 0, the scale of p(w) (std of each component for "gaussian").
    - `dof`: ν > 0 for "student_t".
    - `lattice`: None (continuous w) or the number L >= 2 of grid points per axis of a periodic
      grid of spacing `spacing` (w on the dual lattice).
    - `momenta`: "random" (i.i.d. momenta) or "stratified" (deterministic sectors; lattice only).
    - `sigma_w`, `sigma_b`: fixed to 1 and 0 (inherited; other values raise).
    """

    sigma_b: float = eqx.field(static=True, kw_only=True, default=0.0)
    sigma_a: float = eqx.field(static=True, kw_only=True, default=1.0)
    weight_density: str = eqx.field(static=True, kw_only=True, default="gaussian")
    scale: float = eqx.field(static=True, kw_only=True, default=1.0)
    dof: float = eqx.field(static=True, kw_only=True, default=3.0)
    lattice: int | None = eqx.field(static=True, kw_only=True, default=None)
    spacing: float = eqx.field(static=True, kw_only=True, default=1.0)
    momenta: str = eqx.field(static=True, kw_only=True, default="random")

    name: ClassVar[str] = "cos"

    def __post_init__(self):
        for name in ("sigma_a", "scale", "dof", "spacing"):  # NumPy scalars → floats
            value = getattr(self, name)
            if isinstance(value, np.floating | np.integer):
                setattr(self, name, value.item())

    def __check_init__(self):
        if self.sigma_w != 1.0 or self.sigma_b != 0.0:
            raise ValueError("CosNet has no σ_W or output bias: `sigma_w` must be 1 and `sigma_b` "
                             f"0, got {self.sigma_w}, {self.sigma_b}; set `sigma_a` instead.")
        for name in ("sigma_a", "scale", "dof", "spacing"):
            # NumPy scalars (np.float32(1.0)) are accepted like Python floats
            check_real(name, getattr(self, name), positive=True)
        if self.sigma_a > 1e50:
            raise ValueError(f"`sigma_a` = {self.sigma_a:g} is too large: the 6-pt function "
                             "∝ σ_a⁶ overflows float64 (use a value <= 1e50).")
        if self.weight_density not in _DENSITIES:
            raise ValueError(f"`weight_density` must be one of {_DENSITIES}, "
                             f"got {self.weight_density!r}.")
        if self.lattice is not None:
            check_positive_int("lattice", self.lattice, minimum=2)
            n_momenta = self.lattice ** self.d_in
            if n_momenta > _MAX_LATTICE_SITES:
                raise ValueError(
                    f"`lattice` = {self.lattice} in d_in = {self.d_in} has L^d = {n_momenta:.3g} "
                    f"sites and momenta, more than {_MAX_LATTICE_SITES:.0e} (its momentum table "
                    "and sector list are built in memory); use a smaller lattice.")
        if self.momenta not in ("random", "stratified"):
            raise ValueError(f"`momenta` must be 'random' or 'stratified', got {self.momenta!r}.")
        if self.momenta == "stratified":
            if self.lattice is None:
                raise ValueError("`momenta='stratified'` needs a lattice (`lattice=L`).")
            s = len(self._sectors()[0])
            if self.width % s:
                raise ValueError(f"`width` must be a multiple of the number of momentum sectors "
                                 f"S = {s} for momenta='stratified', got {self.width}.")

    # ------------------------------------------------------------------------- momenta ---
    def _density(self, w: np.ndarray) -> np.ndarray:
        """Unnormalised p(w) for w `(..., d)`."""
        r2 = np.sum(w * w, axis=-1) / self.scale**2
        d = self.d_in
        if self.weight_density == "gaussian":
            return np.exp(-0.5 * r2)
        if self.weight_density == "cauchy":
            return (1 + r2) ** (-(d + 1) / 2)
        return (1 + r2 / self.dof) ** (-(self.dof + d) / 2)

    def lattice_momenta(self):
        """The dual-lattice momenta `(L^d, d)` and their probabilities `(L^d,)`."""
        if self.lattice is None:
            raise ValueError("`lattice_momenta` needs a lattice (`lattice=L`).")
        n = self.lattice
        m1 = np.arange(n) - (n - 1) // 2  # −⌈L/2⌉+1 .. ⌊L/2⌋
        m = np.stack(np.meshgrid(*([m1] * self.d_in), indexing="ij"), axis=-1).reshape(-1, self.d_in)
        w = 2 * np.pi * m / (n * self.spacing)
        p = self._density(w)
        return w, p / p.sum()

    def _sectors(self):
        """Sector representatives w_s `(S, d)` and weights p_s `(S,)` (w and −w merged)."""
        w, p = self.lattice_momenta()
        n = self.lattice
        m = np.rint(w * n * self.spacing / (2 * np.pi)).astype(int)
        key = {tuple(r): i for i, r in enumerate(m)}
        reps, weights, seen = [], [], set()
        for i, r in enumerate(m):
            if i in seen:
                continue
            neg = tuple(((-x + (n - 1) // 2) % n) - (n - 1) // 2 for x in r)
            j = key[neg]
            seen.update((i, j))
            reps.append(w[i])
            weights.append(p[i] + (p[j] if j != i else 0.0))
        return np.asarray(reps), np.asarray(weights)

    def lattice_points(self) -> np.ndarray:
        """The periodic grid a·{0..L−1}^d `(L^d, d)` (lexicographic order)."""
        if self.lattice is None:
            raise ValueError("`lattice_points` needs a lattice (`lattice=L`).")
        g = np.arange(self.lattice) * self.spacing
        return np.stack(np.meshgrid(*([g] * self.d_in), indexing="ij"), axis=-1).reshape(
            -1, self.d_in)

    # -------------------------------------------------------------------------- theory ---
    def characteristic(self, t) -> np.ndarray:
        """φ_w(t) = E_w[cos(w·t)] for t `(..., d_in)` (module docstring)."""
        t = np.asarray(t, dtype=np.float64)
        if self.lattice is not None:
            w, p = self.lattice_momenta()
            return np.cos(t @ w.T) @ p
        r = np.sqrt(np.sum(t * t, axis=-1))
        if self.weight_density == "gaussian":
            return np.exp(-0.5 * (self.scale * r) ** 2)
        if self.weight_density == "cauchy":
            return np.exp(-self.scale * r)
        from scipy.special import gamma, kv

        nu = self.dof / 2
        z = self.scale * math.sqrt(self.dof) * r
        safe = np.where(z > 0, z, 1.0)
        val = safe**nu * kv(nu, safe) / (gamma(nu) * 2 ** (nu - 1))
        return np.where(z > 0, np.nan_to_num(val, nan=0.0), 1.0)

    def kernel(self, x, y):
        """K(x, y) = (σ_a²/2) φ_w(x − y) `(P, Q)` (no output bias: K = K_W)."""
        x, y = (np.asarray(v) for v in self._points(x, y))  # real, finite, (P, d_in)
        return jnp.asarray(0.5 * self.sigma_a**2 * self.characteristic(x[:, None] - y[None]))

    def kernel_w(self, x, y):
        return self.kernel(x, y)

    def phi(self, z, xs, *, axis=-1):
        raise TypeError("CosNet has no activation of Gaussian pre-activations; use its own "
                        "`exact_connected` and `sample` (rgflow.measure dispatches to them).")

    def _moments(self, xs, tuples, charfn):
        """2^{−n} Σ_{balanced s} φ(Σ s_j x_j) on `tuples` (pairs s, −s merged: φ is even)."""
        n = tuples.shape[1]
        signs = _balanced_signs(n)
        pts = xs[tuples]  # (T, n, d)
        args = np.einsum("sj,tjd->tsd", signs, pts)
        return 2.0 ** (1 - n) * charfn(args).sum(axis=1)

    def _brackets(self, xs, order, charfn):
        """The single-term bracket [3M4 − ΣCC] or [15M6 − 3ΣM4C + 2ΣCCC] on sorted tuples."""
        p = xs.shape[0]
        c = to_full(self._moments(xs, sorted_tuples(p, 2), charfn), p, 2)
        if order == 2:
            return self._moments(xs, sorted_tuples(p, 2), charfn)
        t4 = sorted_tuples(p, 4)
        m4 = self._moments(xs, t4, charfn)
        if order == 4:
            return 3 * m4 - np.asarray(wick_sum(c, t4))
        m4f = to_full(m4, p, 4)
        t6 = sorted_tuples(p, 6)
        four = 0.0
        for pair, rest in splits(6, 2):
            four = four + c[t6[:, pair[0]], t6[:, pair[1]]] * m4f[
                t6[:, rest[0]], t6[:, rest[1]], t6[:, rest[2]], t6[:, rest[3]]]
        return 15 * self._moments(xs, t6, charfn) - 3 * four + 2 * np.asarray(wick_sum(c, t6))

    def exact_connected(self, xs, order: int, *, full: bool = True):
        """The exact connected n-point function (cumulant) at width N (module docstring).

        **Arguments:** `xs` `(P, d_in)`; `order` 2, 4 or 6; `full`: full symmetric array
        (default) or the values on `rgflow.sorted_tuples(P, order)`.

        **Returns:** a float64 array (κ2 = K; κ4 ∝ 1/N; κ6 ∝ 1/N²).
        """
        xs = check_inputs(xs, self.d_in)
        order = check_order("order", order, (2, 4, 6))
        p, n = xs.shape[0], self.width
        if self.momenta == "stratified":
            reps, ps = self._sectors()
            s = len(ps)
            vals = 0.0
            for w_s, p_s in zip(reps, ps):
                def charfn(t, w_s=w_s):
                    return np.cos(t @ w_s)
                var = self.sigma_a**2 * p_s * s / n
                vals = vals + (n / s) * var ** (order // 2) * self._brackets(xs, order, charfn)
        else:
            vals = (self.sigma_a**order / n ** (order // 2 - 1)) * self._brackets(
                xs, order, self.characteristic)
        vals = jnp.asarray(vals)
        return to_full(vals, p, order) if full else vals

    # ------------------------------------------------------------------------ sampling ---
    def _draw(self, key, dtype):
        """(a, b, w) of one network: `(N,)`, `(N,)`, `(N, d)`."""
        n, d = self.width, self.d_in
        ka, kb, kw, kg = jax.random.split(key, 4)
        a = jax.random.normal(ka, (n,), dtype)
        b = jax.random.uniform(kb, (n,), dtype, minval=-jnp.pi, maxval=jnp.pi)
        if self.lattice is not None and self.momenta == "stratified":
            reps, ps = self._sectors()
            s = len(ps)
            w = jnp.asarray(np.repeat(reps, n // s, axis=0), dtype)
            std = jnp.asarray(np.repeat(np.sqrt(self.sigma_a**2 * ps * s / n), n // s), dtype)
            return a * std, b, w
        a = a * (self.sigma_a / math.sqrt(n))
        if self.lattice is not None:
            wl, pl = self.lattice_momenta()
            idx = jax.random.categorical(kw, jnp.log(jnp.asarray(pl)), shape=(n,))
            return a, b, jnp.asarray(wl, dtype)[idx]
        z = jax.random.normal(kw, (n, d), dtype)
        if self.weight_density == "gaussian":
            return a, b, self.scale * z
        nu = 1.0 if self.weight_density == "cauchy" else float(self.dof)
        chi2 = 2 * jax.random.gamma(kg, nu / 2, (n,), dtype)
        return a, b, self.scale * z / jnp.sqrt(chi2 / nu)[:, None]

    def _sample_outputs(self, xs, key, index, dtype):
        """Outputs `(B, P)` of the networks `index` (network g draws from `fold_in(key, g)`)."""
        xs = jnp.asarray(xs).astype(dtype)

        def one(g):
            a, b, w = self._draw(jax.random.fold_in(key, g), dtype)
            return jnp.cos(xs @ w.T + b[None, :]) @ a

        return jax.vmap(one)(index)

    def sample(self, xs, n_nets: int, *, key, start: int = 0):
        """Outputs of `n_nets` independent cos-nets on `xs` `(n_nets, P)` (float64)."""
        n_nets = check_positive_int("n_nets", n_nets)
        xs = check_inputs(xs, self.d_in)
        key = check_key(key)
        index = start + jnp.arange(n_nets, dtype=jnp.uint32)
        return self._sample_outputs(jnp.asarray(xs), key, index, jnp.float64)
