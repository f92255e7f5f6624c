"""Non-perturbative RG: the Wetterich equation in the local potential approximation (LPA).

For one real scalar in d dimensions with the Litim regulator R_k(p²) = (k² − p²) θ(k² − p²) and
η = 0, the LPA flow of the effective potential U_k(ρ), ρ = φ²/2, is

    ∂_t U_k = v_d k^{d+2} / (k² + U_k' + 2ρ U_k''),   t = ln k,   v_d = 1/((4π)^{d/2} Γ(d/2+1)).

In dimensionless variables ρ̃ = k^{2−d} ρ / v_d, u = k^{−d} U / v_d (the factor v_d is absorbed so
that it drops out of every fixed point and exponent):

    ∂_t u = −d u + (d − 2) ρ̃ u' + 1 / (1 + u' + 2 ρ̃ u'').                           (LPA)

Three representations of u are provided, all integrated with diffrax in t = ln k:

- `PolynomialLPA(order=N, expansion="zero")`: u = Σ_{n=1..N} a_n ρ̃ⁿ (the couplings
  ū_{2n} = ∂_φ^{2n} u(0) = a_n (2n)!/2ⁿ, i.e. ū2 = a_1, ū4 = 6 a_2, ū6 = 90 a_3, ...);
- `PolynomialLPA(order=N, expansion="minimum")`: u' = Σ_{m=1..N−1} c_m (ρ̃ − κ)^m with the
  running minimum κ (couplings κ, λ_2 = c_1, ...), which converges much faster in d = 3;
- `GridLPA(n_points)`: u'(ρ̃) at Chebyshev–Gauss–Lobatto points of [0, ρ̃_max] (pseudo-spectral
  representation of the full potential).

The β-functions are exact truncated power-series arithmetic (no finite differences); fixed points
come from Newton's method (optimistix), the stability matrix M = ∂β/∂g from autodiff, and the
critical exponents θ_i = −eig(M): ν = 1/θ_1 (the relevant direction of the Wilson–Fisher point)
and ω = the smallest positive −θ (the leading irrelevant one). At the Gaussian fixed point the
exponents are exactly θ_n = d − n(d − 2) for the φ^{2n} operator (any d, any truncation).

Reference values (LPA, Litim regulator, d = 3, converged): ν = 0.649561773880,
ω = 0.655745939193 (Litim 2002; Bervillier, Jüttner, Litim 2007).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._validate import check_positive_int, check_real_array

LPA_NU_D3 = 0.649561773880
LPA_OMEGA_D3 = 0.655745939193


def v_d(d: float) -> float:
    """The LPA/Litim loop factor v_d = 1/((4π)^{d/2} Γ(d/2 + 1))."""
    return 1.0 / ((4 * math.pi) ** (d / 2) * math.gamma(d / 2 + 1))


# ------------------------------------------------------------------ power-series helpers ---


def _series_mul(a, b, n):
    """Coefficients 0..n−1 of the product of two power series."""
    out = [0.0] * n
    for i in range(min(n, len(a))):
        for j in range(min(n - i, len(b))):
            out[i + j] = out[i + j] + a[i] * b[j]
    return out


def _series_inv(q, n):
    """Coefficients 0..n−1 of 1/q(s) for a power series q with q_0 != 0."""
    r = [1.0 / q[0]]
    for m in range(1, n):
        acc = 0.0
        for j in range(1, min(m, len(q) - 1) + 1):
            acc = acc + q[j] * r[m - j]
        r.append(-acc / q[0])
    return r


def _check_d(d, lower: float = 0.0) -> float:
    """`d` as a float in (lower, 6]; the LPA truncations need d > 2 (ρ̃ = k^{2−d} ρ / v_d)."""
    if isinstance(d, bool) or not isinstance(d, numbers.Real) or not lower < d <= 6:
        raise ValueError(f"`d` must be a real number with {lower:g} < d <= 6, got {d!r}.")
    return float(d)


# -------------------------------------------------------------------------- truncations ---


class AbstractLPA(eqx.Module):
    """A representation of the dimensionless LPA potential; `beta(g)` is ∂_t g of (LPA)."""

    d: float = eqx.field(static=True)

    def beta(self, g):
        raise NotImplementedError

    def denominator(self, g):
        """1 + u' + 2ρ̃u'' at ρ̃ = 0; the LPA flow is singular where it vanishes."""
        raise NotImplementedError

    def stability_matrix(self, g):
        """M_ij = ∂β_i/∂g_j (autodiff)."""
        return jax.jacfwd(self.beta)(jnp.asarray(g, jnp.float64))


class PolynomialLPA(AbstractLPA):
    """Polynomial truncation of order N of the LPA potential (see the module docstring).

    **Fields:** `d` (2 < d <= 6), `order` N >= 1 (>= 2 for `expansion="minimum"`),
    `expansion` "zero" (couplings a_1..a_N of u = Σ a_n ρ̃ⁿ) or "minimum" (couplings
    (κ, c_1, ..., c_{N−1}) of u' = Σ c_m (ρ̃ − κ)^m).
    """

    order: int = eqx.field(static=True)
    expansion: Literal["zero", "minimum"] = eqx.field(static=True, default="zero")

    def __check_init__(self):
        _check_d(self.d, lower=2.0)
        check_positive_int("order", self.order, minimum=2 if self.expansion == "minimum" else 1)
        if self.expansion not in ("zero", "minimum"):
            raise ValueError(f"`expansion` must be 'zero' or 'minimum', got {self.expansion!r}.")

    def beta(self, g):
        g = jnp.asarray(g, jnp.float64)
        return self._beta_zero(g) if self.expansion == "zero" else self._beta_min(g)

    def denominator(self, g):
        g = jnp.asarray(g, jnp.float64)
        if self.expansion == "zero":
            return 1 + g[0]
        return 1 + sum(g[m] * (-g[0]) ** m for m in range(1, self.order))

    def _beta_zero(self, a):
        n, d = self.order, self.d
        coeffs = [a[i] for i in range(n)]  # a_1..a_N
        # D(ρ) = u' + 2ρu'' = Σ_m a_{m+1} (m+1)(2m+1) ρ^m
        q = [1.0 + coeffs[0]] + [coeffs[m] * (m + 1) * (2 * m + 1) for m in range(1, n)]
        r = _series_inv(q, n + 1)
        return jnp.stack([(-d + (d - 2) * (k + 1)) * coeffs[k] + r[k + 1] for k in range(n)])

    def _beta_min(self, g):
        # w(s) = u'(κ + s) = Σ_{m=1}^{N−1} c_m s^m.  ∂_t w at fixed ρ̃:
        #   F(ρ̃) = −2w + (d−2) ρ̃ w' − (3w' + 2ρ̃ w'') / (1 + w + 2ρ̃ w')².
        n, d = self.order, self.d
        kappa = g[0]
        c = [0.0] + [g[m] for m in range(1, n)]  # c_0 = 0
        size = n  # keep powers s^0 .. s^{n−1}
        rho = [kappa, 1.0]
        w = c + [0.0] * (size - len(c))
        wp = [(m + 1) * w[m + 1] for m in range(size - 1)] + [0.0]
        wpp = [(m + 1) * wp[m + 1] for m in range(size - 1)] + [0.0]
        rho_wp = _series_mul(rho, wp, size)
        rho_wpp = _series_mul(rho, wpp, size)
        num = [3 * wp[m] + 2 * rho_wpp[m] for m in range(size)]
        den = [(1.0 if m == 0 else 0.0) + w[m] + 2 * rho_wp[m] for m in range(size)]
        inv = _series_inv(den, size)
        frac = _series_mul(num, _series_mul(inv, inv, size), size)
        f = [-2 * w[m] + (d - 2) * rho_wp[m] - frac[m] for m in range(size)]
        # Keep w(κ(t)) = 0: dκ/dt = −F(κ)/w'(κ); dc_m/dt = F_m + (m+1) c_{m+1} dκ/dt.
        dkappa = -f[0] / c[1]
        dc = [f[m] + (m + 1) * (c[m + 1] if m + 1 < n else 0.0) * dkappa for m in range(1, n)]
        return jnp.stack([dkappa] + dc)

    def couplings(self, g) -> dict:
        """ū_{2n} = ∂_φ^{2n} u at φ = 0 (expansion "zero" only), as a dict "u2", "u4", ..."""
        if self.expansion != "zero":
            raise ValueError("`couplings` needs expansion='zero'.")
        g = np.asarray(g)
        return {f"u{2 * n}": float(g[n - 1] * math.factorial(2 * n) / 2**n)
                for n in range(1, self.order + 1)}

    def from_couplings(self, u2: float, u4: float, u6: float = 0.0):
        """The coefficients a_n of u = Σ a_n ρ̃ⁿ from ū2, ū4, ū6 (expansion "zero")."""
        if self.expansion != "zero":
            raise ValueError("`from_couplings` needs expansion='zero'.")
        a = np.zeros(self.order)
        for n, val in ((1, u2), (2, u4), (3, u6)):
            if n <= self.order:
                a[n - 1] = val * 2**n / math.factorial(2 * n)
            elif val != 0:
                raise ValueError(f"`order` must be >= {n} to hold ū{2 * n}.")
        return jnp.asarray(a)


class GridLPA(AbstractLPA):
    """u'(ρ̃) at the n Chebyshev–Gauss–Lobatto points of [0, ρ̃_max] (full potential).

    Defaults (64 points, ρ̃_max = 8 ≈ 4.4 κ̃* for d = 3) reproduce the converged LPA exponents
    ν = 0.64956177388, ω = 0.65574593919 to ~1e-11 (measured).

    Collocation of ∂_t w = −2w + (d−2)ρ̃ w' − (3w' + 2ρ̃w'')/(1 + w + 2ρ̃w')² with spectral
    differentiation. The equation is regular-singular at ρ̃ = 0 (no condition needed there); at
    ρ̃_max the loop term, O(ρ̃⁻³) relative, is dropped, which imposes the large-field scaling
    w ∝ ρ̃^{2/(d−2)} and removes the free asymptotic amplitude.
    """

    n_points: int = eqx.field(static=True, default=64)
    rho_max: float = eqx.field(static=True, default=8.0)

    def __check_init__(self):
        _check_d(self.d, lower=2.0)
        check_positive_int("n_points", self.n_points, minimum=8)
        if isinstance(self.rho_max, bool) or not isinstance(self.rho_max, numbers.Real) or not (
                math.isfinite(self.rho_max) and self.rho_max > 0):
            raise ValueError(f"`rho_max` must be > 0, got {self.rho_max!r}.")

    @property
    def nodes(self) -> np.ndarray:
        n = self.n_points - 1
        x = np.cos(np.pi * np.arange(n + 1) / n)  # 1 .. −1
        return (1 - x) / 2 * self.rho_max

    def _diff(self) -> np.ndarray:
        n = self.n_points - 1
        x = np.cos(np.pi * np.arange(n + 1) / n)
        c = np.ones(n + 1)
        c[0] = c[-1] = 2.0
        c *= (-1.0) ** np.arange(n + 1)
        dx = x[:, None] - x[None, :]
        dmat = np.outer(c, 1 / c) / (dx + np.eye(n + 1))
        dmat -= np.diag(dmat.sum(axis=1))
        return dmat * (-2.0 / self.rho_max)  # d/dρ̃ = −(2/ρ_max) d/dx

    def denominator(self, w):
        return 1 + jnp.asarray(w)[0]  # nodes[0] = 0

    def beta(self, w):
        w = jnp.asarray(w, jnp.float64)
        dm = jnp.asarray(self._diff())
        rho = jnp.asarray(self.nodes)
        wp = dm @ w
        wpp = dm @ wp
        den = 1 + w + 2 * rho * wp
        loop = (3 * wp + 2 * rho * wpp) / den**2
        # Boundary condition at ρ̃_max: the loop term is O(ρ̃⁻³) relative there and is dropped,
        # fixing the large-field behaviour w ∝ ρ̃^{2/(d−2)} (the scaling solution).
        loop = loop.at[-1].set(0.0)
        return -2 * w + (self.d - 2) * rho * wp - loop


# ------------------------------------------------------------------ fixed points, exponents ---


class FixedPoint(eqx.Module):
    """A fixed point g* of an LPA truncation with its stability analysis.

    **Fields:** `couplings` g*, `eigenvalues` of the stability matrix ∂β/∂g at g* (sorted by
    real part), `exponents` θ = −eigenvalues, `nu` = 1/θ_1 (largest θ), `omega` (smallest
    positive −θ, i.e. the leading irrelevant eigenvalue), `residual` = max |β(g*)|.
    """

    couplings: jax.Array
    eigenvalues: jax.Array
    nu: float
    omega: float
    residual: float

    @property
    def exponents(self):
        return -self.eigenvalues


def _masked_beta(g, args):
    lpa, active = args
    return jnp.where(active, lpa.beta(g), g)


@eqx.filter_jit
def _newton(lpa, guess, active, rtol, atol, *, max_steps):
    """Newton root of β on the `active` couplings (the others are held at zero: β_i = g_i there)
    with its residual and the stability matrix of the active block."""
    sol = optx.root_find(_masked_beta, optx.Newton(rtol=rtol, atol=atol), guess,
                         args=(lpa, active), max_steps=max_steps, throw=False)
    g = sol.value
    res = jnp.max(jnp.abs(_masked_beta(g, (lpa, active))))
    return g, sol.result == optx.RESULTS.successful, res, jax.jacfwd(lpa.beta)(g)


def _padded(lpa: AbstractLPA):
    """(truncation to solve with, its number of couplings m, the number n of `lpa`): a polynomial truncation of order n
    is solved inside the order-M one, M = 8, 12, 16, ... ≥ n, with the couplings n+1..M pinned
    at zero. Exact: β_k (k ≤ n) involves series coefficients up to order k+1 only, which the
    pinned couplings leave as in the order-n truncation, so the root, the residual and the
    n × n stability block are those of order n; one compiled Newton solver serves orders 2..8
    (each order compiled its own, ~0.6 s apiece)."""
    if not isinstance(lpa, PolynomialLPA):
        return lpa, lpa.n_points, lpa.n_points
    m = max(8, 4 * math.ceil(lpa.order / 4))
    return PolynomialLPA(d=lpa.d, order=m, expansion=lpa.expansion), m, lpa.order


def find_fixed_point(lpa: AbstractLPA, guess, *, rtol: float = 1e-12, atol: float = 1e-12,
                     max_steps: int = 200) -> FixedPoint:
    """Solve β(g*) = 0 by Newton's method from `guess` and analyse the stability matrix.

    **Raises:** `ValueError` if Newton does not converge or the residual is not small.
    """
    if not isinstance(lpa, AbstractLPA):
        raise TypeError(f"`lpa` must be a PolynomialLPA or GridLPA, got {lpa!r}.")
    big, m, n = _padded(lpa)
    guess = jnp.asarray(check_real_array("guess", guess, shape=(n,)))
    g, ok, res, jac = _newton(big, jnp.concatenate([guess, jnp.zeros(m - n)]),
                              jnp.arange(m) < n, jnp.asarray(rtol, jnp.float64),
                              jnp.asarray(atol, jnp.float64), max_steps=int(max_steps))
    g, jac, res = g[:n], jac[:n, :n], float(res)
    if not bool(ok) or not np.isfinite(res) or res > 1e-8:
        raise ValueError(f"no fixed point found from this `guess` (residual {res:.2e}).")
    eig = np.linalg.eigvals(np.asarray(jac))
    eig = eig[np.argsort(eig.real)]
    theta = -eig.real
    nu = 1.0 / theta[0] if theta[0] > 0 else float("nan")
    pos = eig.real[eig.real > 1e-9]
    omega = float(pos.min()) if pos.size else float("nan")
    return FixedPoint(couplings=g, eigenvalues=jnp.asarray(eig), nu=float(nu), omega=omega,
                      residual=res)


def gaussian_exponents(d: float, n_ops: int) -> np.ndarray:
    """θ_n = d − n(d − 2), n = 1..n_ops: the exact Gaussian-fixed-point exponents of φ^{2n}."""
    d = _check_d(d)
    return np.array([d - n * (d - 2) for n in range(1, n_ops + 1)])


def wilson_fisher(lpa: PolynomialLPA | GridLPA, *, previous=None) -> FixedPoint:
    """The Wilson–Fisher fixed point of `lpa` (d = 3 by default in the guesses).

    The minimum expansion is continued in the order from `previous` (or a fixed small-order
    guess); the zero expansion and the grid start from the Taylor data of the order-8 minimum
    expansion (continuation from a lower zero-expansion order falls onto the Gaussian point).
    """
    if not 2 < lpa.d < 4:
        raise ValueError(f"the Wilson–Fisher fixed point needs 2 < d < 4, got d = {lpa.d}.")
    if lpa.expansion == "minimum" if isinstance(lpa, PolynomialLPA) else False:
        if previous is not None:
            pad = jnp.zeros(lpa.order - previous.couplings.size)
            return find_fixed_point(lpa, jnp.concatenate([previous.couplings, pad]))
        return find_fixed_point(lpa, jnp.asarray([0.03, 6.0] + [0.0] * (lpa.order - 2)))
    # Zero expansion and grid: start from the Taylor data of a converged minimum expansion.
    kappa, c = _minimum_seed(lpa.d)
    if isinstance(lpa, GridLPA):
        s = lpa.nodes - kappa
        return find_fixed_point(lpa, sum(cm * s ** (m + 1) for m, cm in enumerate(c)))
    # w(ρ) = Σ_m c_m (ρ − κ)^m  →  w = Σ_j b_j ρ^j,  a_n = b_{n−1}/n.
    b = np.zeros(len(c) + 1)
    for m, cm in enumerate(c, start=1):
        for j in range(m + 1):
            b[j] += cm * math.comb(m, j) * (-kappa) ** (m - j)
    a = np.zeros(lpa.order)
    for n in range(1, min(lpa.order, len(b)) + 1):
        a[n - 1] = b[n - 1] / n
    return find_fixed_point(lpa, jnp.asarray(a))


@functools.cache
def _minimum_seed(d: float):
    fp = wilson_fisher_sequence(d, 8, expansion="minimum")[-1]
    return float(fp.couplings[0]), np.asarray(fp.couplings[1:])


def wilson_fisher_sequence(d: float, max_order: int, *, expansion="minimum") -> list[FixedPoint]:
    """Wilson–Fisher fixed points for truncation orders 2..max_order (continuation in order)."""
    out, prev = [], None
    for n in range(2, max_order + 1):
        fp = wilson_fisher(PolynomialLPA(d=d, order=n, expansion=expansion), previous=prev)
        out.append(fp)
        prev = fp
    return out


# ---------------------------------------------------------------------------------- flows ---


class LPAFlow(eqx.Module):
    """Result of `lpa_flow`: times t = ln(k/k0), couplings (len(ts), n_couplings), result code."""

    ts: jax.Array
    couplings: jax.Array
    result: diffrax.RESULTS
    stats: dict


@eqx.filter_jit
def _lpa_solve(lpa, g0, t1, ts, rtol, atol, blowup, *, max_steps, throw):
    def cond(t, y, args, **kw):
        return (jnp.max(jnp.abs(y)) > blowup) | (lpa.denominator(y) < 1e-3)

    return diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: lpa.beta(y)), diffrax.Tsit5(), 0.0, t1, None, g0,
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, event=diffrax.Event(cond), throw=throw,
    )


def lpa_flow(lpa: AbstractLPA, g0, t1: float, *, n_save: int = 200, rtol: float = 1e-10,
             atol: float = 1e-12, max_steps: int = 100_000, blowup: float = 1e6,
             throw: bool = False) -> LPAFlow:
    """Integrate ∂_t g = β(g) from t = 0 to `t1` (t = ln(k/k0); t1 < 0 flows to the IR).

    Tsit5 with a PID controller; the integration stops early (result `event_occurred`) if any
    coupling exceeds `blowup` in magnitude or the denominator 1 + u' + 2ρ̃u'' approaches 0
    (the flow leaves the region where the LPA is defined).
    """
    if not isinstance(lpa, AbstractLPA):
        raise TypeError(f"`lpa` must be a PolynomialLPA or GridLPA, got {lpa!r}.")
    n_g = lpa.n_points if isinstance(lpa, GridLPA) else lpa.order
    g0 = jnp.asarray(check_real_array("g0", g0, shape=(n_g,)))
    if isinstance(t1, bool) or not isinstance(t1, numbers.Real) or not math.isfinite(t1) or t1 == 0:
        raise ValueError(f"`t1` must be a finite non-zero real number, got {t1!r}.")
    n_save = check_positive_int("n_save", n_save, minimum=2)
    ts = jnp.linspace(0.0, t1, n_save)
    # t1 and the tolerances travel as arrays: one compiled solve for every initial condition
    sol = _lpa_solve(lpa, g0, jnp.asarray(t1, jnp.float64), ts, jnp.asarray(rtol, jnp.float64),
                     jnp.asarray(atol, jnp.float64), jnp.asarray(blowup, jnp.float64),
                     max_steps=max_steps, throw=throw)
    return LPAFlow(ts=sol.ts, couplings=sol.ys, result=sol.result,
                   stats={k: int(v) for k, v in sol.stats.items() if jnp.ndim(v) == 0})
