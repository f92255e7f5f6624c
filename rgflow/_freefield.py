"""A free massive scalar with a frequency cutoff, built from a cos-net (physics.md §12).

    f(x) = Σ_{i=1..N} a_i cos(w_i·x + c_i),   a_i ~ N(0, σ_a²/N),  c_i ~ U[−π, π],  w_i ~ p(w),

with the "free" weight density p(w) = G(w) R(|w|) / ((2π)^d G_Λ(0)), G(p) = 1/(p² + m²), and

- `regulator="sharp"`: R = 1 on |w| ≤ Λ, 0 outside;
- `regulator="smooth"`: R = Λ²/(p² + Λ²) (Pauli–Villars; needs Λ > m),

and σ_a² = 2 G_Λ(0). Averaging over the phase, E[f(x) f(y)] = (σ_a²/2) E_w cos(w·(x − y)), so
the GP kernel is the regulated free propagator

    G_Λ(r) = ∫ d^dp/(2π)^d e^{ip·r} R(p)/(p² + m²) = c_d ∫_0^∞ dp ρ(p) A_d(p r),

ρ(p) = p^{d−1} R(p)/(p² + m²), c_1 = 1/π, c_2 = 1/(2π), c_3 = 1/(2π²), A_1 = cos, A_2 = J_0,
A_3(t) = sin t / t. The radial CDF F(p) = ∫_0^p ρ has a closed form in every case (`_radial_cdf`),
so G_Λ(0) = c_d F(∞) and frequencies are drawn by inverting F (bisection, float64). The sharp
kernel at r > 0 is computed by composite Gauss–Legendre quadrature; the smooth one in closed form,
G = Λ²/(Λ² − m²) [G_m − G_Λ] with G_μ(r) = e^{−μr}/(2μ), K_0(μr)/(2π), e^{−μr}/(4πr) (d = 1, 2, 3).

**Exact finite-N correlators** are those of `rgflow.CosNet` with the characteristic function
G_Λ(t)/G_Λ(0); for the 4-pt function this gives the closed form (`free_g4_connected`)

    G4_c(x₁..x₄) = (1/N) Σ_{3 splits {ab|cd}} [ (3/2) G(0) G(x_a + x_b − x_c − x_d) − G_ab G_cd ].

**Parameters from normals.** Network g draws n_z·N standard normals z from `fold_in(key, g)`
(n_z = 3 in d = 1, 3 + d otherwise); a = σ_a z_a/√N, c = π(2Φ(z_c) − 1); d = 1:
w = sign(v) F⁻¹(|v| F(∞)), v = 2Φ(z_r) − 1 (continuous in z); d ≥ 2: |w| = F⁻¹(Φ(z_r) F(∞)),
w/|w| = z_dir/|z_dir|. The undeformed density of z is N(0, I), so the same map serves reweighting and HMC
(`rgflow._deform`). `field(params, xs, max_frequency=Λ')` keeps only neurons with |w| ≤ Λ'
(the low-mode field for a momentum-shell RG; same draws, so common random numbers).
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._cosnet import CosNet
from ._nets import AbstractNet
from ._tuples import sorted_tuples, splits, to_full
from ._validate import check_inputs, check_order, check_positive_int

__all__ = ["FreeCosNet", "free_propagator", "free_g4_connected"]

_REGULATORS = ("sharp", "smooth")
_C_D = {1: 1 / math.pi, 2: 1 / (2 * math.pi), 3: 1 / (2 * math.pi**2)}
_BISECTION_STEPS = 64
_TRACED_MAX_DISTANCE = 16.0  # r range of the traced sharp propagator


def _check_mass_cutoff(mass, cutoff, regulator, d_in):
    for name, v in (("mass", mass), ("cutoff", cutoff)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"`{name}` must be a finite number > 0, got {v!r}.")
    if regulator not in _REGULATORS:
        raise ValueError(f"`regulator` must be one of {_REGULATORS}, got {regulator!r}.")
    if regulator == "smooth" and not cutoff > mass:
        raise ValueError(f"`regulator='smooth'` (Pauli–Villars) needs `cutoff` > `mass`, got "
                         f"cutoff={cutoff}, mass={mass}.")
    if d_in not in (1, 2, 3):
        raise ValueError(f"`d_in` must be 1, 2 or 3 for the free field, got {d_in!r}.")


def _radial_cdf(p, mass, cutoff, regulator, d, xp=np):
    """F(p) = ∫_0^p ρ (module docstring), p ≥ 0 (p = inf allowed for the smooth regulator)."""
    m, lam = mass, cutoff
    if regulator == "sharp":
        p = xp.minimum(p, lam)
        if d == 1:
            return xp.arctan(p / m) / m
        if d == 2:
            return 0.5 * xp.log1p((p / m) ** 2)
        return p - m * xp.arctan(p / m)
    s = lam**2 / (lam**2 - m**2)
    if d == 1:
        return s * (xp.arctan(p / m) / m - xp.arctan(p / lam) / lam)
    if d == 2:
        # ln((p² + m²) Λ² / ((p² + Λ²) m²)) / 2, written to stay finite at p = inf
        return s * 0.5 * (xp.log1p((p / m) ** 2) - xp.log1p((p / lam) ** 2))
    return s * (lam * xp.arctan(p / lam) - m * xp.arctan(p / m))


def _radial_total(mass, cutoff, regulator, d):
    """F(∞) (closed form)."""
    m, lam = mass, cutoff
    if regulator == "sharp":
        return float(_radial_cdf(lam, m, lam, regulator, d))
    s = lam**2 / (lam**2 - m**2)
    if d == 1:
        return s * 0.5 * math.pi * (1 / m - 1 / lam)
    if d == 2:
        return s * math.log(lam / m)
    return s * 0.5 * math.pi * (lam - m)


def _gl_panels(a: float, b: float, n_panels: int, order: int = 24):
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(a, b, n_panels + 1)
    h = np.diff(edges)[:, None]
    nodes = (edges[:-1, None] + 0.5 * h * (x[None] + 1)).ravel()
    return nodes, (0.5 * h * w[None]).ravel()


def free_propagator(r, *, mass: float, cutoff: float, d_in: int, regulator: str = "sharp"):
    """The regulated free propagator G_Λ(r) (module docstring) at distances `r` ≥ 0 (any shape).

    Sharp cutoff: composite Gauss–Legendre in p (panels shorter than both the mass scale and a
    quarter period at the largest r); accurate to ~1e-13 relative. Smooth: closed form.
    """
    _check_mass_cutoff(mass, cutoff, regulator, d_in)
    r = np.abs(np.asarray(r, dtype=np.float64))
    if not np.all(np.isfinite(r)):
        raise ValueError("`r` must be finite.")
    d, m, lam = d_in, float(mass), float(cutoff)
    if regulator == "smooth":
        from scipy.special import k0

        s = lam**2 / (lam**2 - m**2)
        safe = np.where(r > 0, r, 1.0)
        if d == 1:
            return s * (np.exp(-m * r) / (2 * m) - np.exp(-lam * r) / (2 * lam))
        if d == 2:
            val = (k0(m * safe) - k0(lam * safe)) / (2 * np.pi)
            return s * np.where(r > 0, val, math.log(lam / m) / (2 * np.pi))
        val = (np.exp(-m * safe) - np.exp(-lam * safe)) / (4 * np.pi * safe)
        return s * np.where(r > 0, val, (lam - m) / (4 * np.pi))
    rmax = float(r.max()) if r.size else 0.0
    h = min(m, lam, 0.5 * math.pi / rmax if rmax > 0 else lam)
    p, wq = _gl_panels(0.0, lam, max(2, math.ceil(lam / h)))
    rho = p ** (d - 1) / (p**2 + m**2)
    t = r[..., None] * p
    if d == 1:
        ang = np.cos(t)
    elif d == 2:
        from scipy.special import j0

        ang = j0(t)
    else:
        ang = np.where(t > 0, np.sin(t) / np.where(t > 0, t, 1.0), 1.0)
    out = _C_D[d] * (ang * (rho * wq)).sum(axis=-1)
    zero = _C_D[d] * _radial_total(m, lam, regulator, d)
    return np.where(r == 0, zero, out)


def free_g4_connected(xs, *, width: int, mass: float, cutoff: float, d_in: int,
                      regulator: str = "sharp"):
    """The exact connected 4-pt function of the free cos-net at width N, closed form of
    physics.md §12: (1/N) Σ_3 [(3/2) G(0) G(x_a + x_b − x_c − x_d) − G_ab G_cd], `(P,)*4`."""
    xs = check_inputs(xs, d_in)
    width = check_positive_int("width", width)
    p = xs.shape[0]
    t = sorted_tuples(p, 4)
    pts = xs[t]  # (T, 4, d)

    def g(v):
        return free_propagator(np.linalg.norm(v, axis=-1), mass=mass, cutoff=cutoff,
                               d_in=d_in, regulator=regulator)

    g0 = float(g(np.zeros(d_in)))
    out = 0.0
    for (a, b), (c, e) in [sp for sp in splits(4, 2) if 0 in sp[0]]:  # the 3 splits
        out = out + 1.5 * g0 * g(pts[:, a] + pts[:, b] - pts[:, c] - pts[:, e]) - g(
            pts[:, a] - pts[:, b]) * g(pts[:, c] - pts[:, e])
    return jnp.asarray(to_full(out / width, p, 4))


class FreeCosNet(AbstractNet):
    """A cos-net whose GP is the free massive scalar with a frequency cutoff (module docstring).

    **Fields** (keyword-only, static): `width` N, `d_in` (1, 2, 3), `mass` m > 0, `cutoff` Λ > 0,
    `regulator` "sharp" (|w| ≤ Λ) or "smooth" (Pauli–Villars, Λ > m). σ_a² = 2 G_Λ(0) is derived
    (`sigma_a`); `sigma_w` = 1 and `sigma_b` = 0 are fixed.
    """

    sigma_b: float = eqx.field(static=True, kw_only=True, default=0.0)
    mass: float = eqx.field(static=True, kw_only=True, default=1.0)
    cutoff: float = eqx.field(static=True, kw_only=True, default=10.0)
    regulator: str = eqx.field(static=True, kw_only=True, default="sharp")

    name: ClassVar[str] = "freecos"

    def __check_init__(self):
        if self.sigma_w != 1.0 or self.sigma_b != 0.0:
            raise ValueError("FreeCosNet has no σ_W or output bias: `sigma_w` must be 1 and "
                             f"`sigma_b` 0, got {self.sigma_w}, {self.sigma_b}.")
        _check_mass_cutoff(self.mass, self.cutoff, self.regulator, self.d_in)

    # -------------------------------------------------------------------------- theory ---
    @property
    def g0(self) -> float:
        """G_Λ(0) = c_d F(∞) (closed form)."""
        return _C_D[self.d_in] * _radial_total(self.mass, self.cutoff, self.regulator, self.d_in)

    @property
    def sigma_a(self) -> float:
        """σ_a = √(2 G_Λ(0))."""
        return math.sqrt(2 * self.g0)

    def propagator(self, r):
        """G_Λ(r) at distances `r` (`free_propagator`)."""
        return free_propagator(r, mass=self.mass, cutoff=self.cutoff, d_in=self.d_in,
                               regulator=self.regulator)

    def neuron_fraction(self, max_frequency: float) -> float:
        """P(|w| ≤ Λ') = F(Λ')/F(∞): the expected fraction of neurons kept by a filter."""
        if not (isinstance(max_frequency, (int, float)) and max_frequency > 0):
            raise ValueError(f"`max_frequency` must be > 0, got {max_frequency!r}.")
        tot = _radial_total(self.mass, self.cutoff, self.regulator, self.d_in)
        return float(_radial_cdf(float(max_frequency), self.mass, self.cutoff, self.regulator,
                                 self.d_in)) / tot

    def characteristic(self, t) -> np.ndarray:
        """E_w cos(w·t) = G_Λ(|t|)/G_Λ(0) for t `(..., d_in)`."""
        t = np.asarray(t, dtype=np.float64)
        return self.propagator(np.linalg.norm(t, axis=-1)) / self.g0

    def kernel(self, x, y):
        """K(x, y) = G_Λ(|x − y|) `(P, Q)`; traced inputs (inside `jax.jit`, e.g. the vertex
        integrals of `rgflow.connected_correlator`) use `traced_propagator`."""
        if isinstance(x, jax.core.Tracer) or isinstance(y, jax.core.Tracer):
            x, y = jnp.atleast_2d(x), jnp.atleast_2d(y)
            return self.traced_propagator(jnp.linalg.norm(x[:, None] - y[None], axis=-1))
        x, y = self._points(x, y)
        x, y = np.asarray(x), np.asarray(y)
        return jnp.asarray(self.propagator(np.linalg.norm(x[:, None] - y[None], axis=-1)))

    def traced_propagator(self, r, *, max_distance: float = _TRACED_MAX_DISTANCE):
        """G_Λ(r) in JAX (traceable, differentiable), d_in = 1 or 3: the smooth regulator in
        closed form; the sharp one by composite Gauss–Legendre in p with panels resolving
        cos(p r) up to r = `max_distance` (NaN beyond it, never a silent wrong value).
        d_in = 2 (J₀) raises a TypeError: use `propagator` on concrete inputs."""
        d, m, lam = self.d_in, float(self.mass), float(self.cutoff)
        if d == 2:
            raise TypeError("FreeCosNet's kernel is traceable in d_in = 1, 3 only (d_in = 2 "
                            "needs J₀); evaluate it on concrete (NumPy) inputs.")
        r = jnp.abs(r)
        if self.regulator == "smooth":
            s = lam**2 / (lam**2 - m**2)
            if d == 1:
                return s * (jnp.exp(-m * r) / (2 * m) - jnp.exp(-lam * r) / (2 * lam))
            safe = jnp.where(r > 0, r, 1.0)
            val = (jnp.exp(-m * safe) - jnp.exp(-lam * safe)) / (4 * jnp.pi * safe)
            return s * jnp.where(r > 0, val, (lam - m) / (4 * jnp.pi))
        h = min(m, lam, 0.5 * math.pi / max_distance)
        p, wq = _gl_panels(0.0, lam, max(2, math.ceil(lam / h)))
        rho = jnp.asarray(p ** (d - 1) / (p**2 + m**2) * wq)
        t = r[..., None] * jnp.asarray(p)
        if d == 1:
            ang = jnp.cos(t)
        else:
            safe = jnp.where(t > 0, t, 1.0)
            ang = jnp.where(t > 0, jnp.sin(safe) / safe, 1.0)
        out = _C_D[d] * (ang * rho).sum(axis=-1)
        return jnp.where(r <= max_distance, out, jnp.nan)

    def kernel_w(self, x, y):
        return self.kernel(x, y)

    def phi(self, z, xs, *, axis=-1):
        raise TypeError("FreeCosNet has no activation of Gaussian pre-activations; use its own "
                        "`exact_connected` and `sample` (rgflow.measure dispatches to them).")

    def exact_connected(self, xs, order: int, *, full: bool = True):
        """The exact connected n-point function (cumulant) at width N, `order` 2, 4 or 6
        (rgflow.CosNet's single-term moments with φ = G_Λ/G_Λ(0) and σ_a² = 2G_Λ(0))."""
        xs = check_inputs(xs, self.d_in)
        order = check_order("order", order, (2, 4, 6))
        n = self.width
        vals = (self.sigma_a**order / n ** (order // 2 - 1)) * CosNet._brackets(
            self, xs, order, self.characteristic)
        vals = jnp.asarray(vals)
        return to_full(vals, xs.shape[0], order) if full else vals

    _moments = CosNet._moments

    # ------------------------------------------------------------------------ sampling ---
    @property
    def normals_per_neuron(self) -> int:
        return 3 if self.d_in == 1 else 3 + self.d_in

    def inverse_radial_cdf(self, u):
        """|w| with F(|w|) = u F(∞), u ∈ [0, 1] (bisection in t = atan(|w|/Λ), float64)."""
        u = jnp.asarray(u)
        m, lam, reg, d = self.mass, self.cutoff, self.regulator, self.d_in
        if reg == "sharp" and d == 1:  # closed forms (tested against the bisection)
            return m * jnp.tan(u * math.atan(lam / m))
        if reg == "sharp" and d == 2:
            return m * jnp.sqrt(jnp.expm1(u * math.log1p((lam / m) ** 2)))
        return self._bisect_radial(u)

    def _bisect_radial(self, u):
        m, lam, reg, d = self.mass, self.cutoff, self.regulator, self.d_in
        target = u * _radial_total(m, lam, reg, d)
        hi0 = math.atan(1.0) if reg == "sharp" else 0.5 * math.pi

        def body(_, lohi):
            lo, hi = lohi
            mid = 0.5 * (lo + hi)
            below = _radial_cdf(lam * jnp.tan(mid), m, lam, reg, d, xp=jnp) < target
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, body,
                                   (jnp.zeros_like(target), jnp.full_like(target, hi0)))
        return lam * jnp.tan(0.5 * (lo + hi))

    def params_from_normals(self, z):
        """(a, c, w) `(..., N)`, `(..., N)`, `(..., N, d)` from normals z `(..., N, n_z)`."""
        n, d = self.width, self.d_in
        a = z[..., 0] * (self.sigma_a / math.sqrt(n))
        c = jnp.pi * (2 * jax.scipy.stats.norm.cdf(z[..., 1]) - 1)
        if d == 1:  # w = sign(v) F⁻¹(|v|), v = 2Φ(z) − 1: continuous in z
            v = 2 * jax.scipy.stats.norm.cdf(z[..., 2]) - 1
            return a, c, (jnp.sign(v) * self.inverse_radial_cdf(jnp.abs(v)))[..., None]
        radius = self.inverse_radial_cdf(jax.scipy.stats.norm.cdf(z[..., 2]))
        v = z[..., 3:]
        direction = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
        return a, c, radius[..., None] * direction

    def normals(self, key, index):
        """The standard normals `(B, N, n_z)` of the networks `index` (`fold_in(key, g)`)."""
        shape = (self.width, self.normals_per_neuron)
        return jax.vmap(lambda g: jax.random.normal(jax.random.fold_in(key, g), shape,
                                                    jnp.float64))(index)

    def draw(self, key, index):
        """Parameters (a, c, w) of the networks with global indices `index`."""
        return self.params_from_normals(self.normals(key, jnp.asarray(index, jnp.uint32)))

    @staticmethod
    def field(params, xs, *, max_frequency=None):
        """f(x) `(B, P)` of the networks `params` = (a, c, w) at `xs` `(P, d)`; with
        `max_frequency` Λ', only the neurons with |w| ≤ Λ' (the low-mode field)."""
        a, c, w = params
        if max_frequency is not None:
            a = jnp.where(jnp.linalg.norm(w, axis=-1) <= max_frequency, a, 0.0)
        phase = jnp.einsum("bnd,pd->bpn", w, jnp.asarray(xs, w.dtype)) + c[:, None, :]
        return jnp.sum(a[:, None, :] * jnp.cos(phase), axis=-1)

    def _sample_outputs(self, xs, key, index, dtype):
        """Outputs `(B, P)` (the dispatch target of `rgflow.measure`); float64 draws."""
        params = self.draw(key, index)
        return self.field(params, jnp.asarray(xs, jnp.float64), max_frequency=None).astype(dtype)

    def sample(self, xs, n_nets: int, *, key, start: int = 0, max_frequency=None):
        """Outputs of `n_nets` networks on `xs` `(n_nets, P)` (float64)."""
        n_nets = check_positive_int("n_nets", n_nets)
        xs = check_inputs(xs, self.d_in)
        index = start + jnp.arange(n_nets, dtype=jnp.uint32)
        lam = jnp.float64(jnp.inf if max_frequency is None else max_frequency)
        return _sample_jit(self, jnp.asarray(xs), key, index, lam)


@eqx.filter_jit
def _sample_jit(net, xs, key, index, max_frequency):
    return FreeCosNet.field(net.draw(key, index), xs, max_frequency=max_frequency)


@eqx.filter_jit
def draw_jit(net, key, index):
    """`net.draw` compiled once per network configuration and batch size."""
    return net.draw(key, index)
