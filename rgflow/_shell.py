"""Momentum-shell (Wegner–Houghton) RG of the O(1)-symmetric scalar: one loop and LPA (physics.md §13).

**Convention.** S = ∫ d^dx [½(∂φ)² + U(φ)], U = ½ m² φ² + (λ/4!) φ⁴ + (λ₆/6!) φ⁶, sharp cutoff
|p| ≤ Λ, RG time ℓ = ln(Λ₀/Λ) (increasing towards the IR).

**One shell.** Split φ = φ_< + χ with χ on Λ − δΛ < |p| ≤ Λ. For constant φ_< the terms linear in
χ vanish (χ has no zero-momentum component) and the χ integral is Gaussian to the order δΛ:

    U_{Λ−δΛ}(φ) = U_Λ(φ) + ½ ∫_shell d^dp/(2π)^d ln(p² + U''(φ))   ⇒
    ∂_ℓ U = ½ K_d Λ^d ln(Λ² + U''(φ)),     K_d = S_d/(2π)^d = 2/((4π)^{d/2} Γ(d/2)),

the sharp-cutoff LPA (exact for the potential in the local-potential approximation: an
infinitesimal shell has one loop only). Expanding ln(Λ² + m² + λφ²/2 + λ₆φ⁴/24) in φ with
A = 1/(Λ² + m²) gives the one-loop shell equations (dimensionful, no rescaling):

    dm²/dℓ = K_d Λ^d [ ½ λ A ]                                   (tadpole)
    dλ/dℓ  = K_d Λ^d [ ½ λ₆ A − (3/2) λ² A² ]                    (tadpole of λ₆; s+t+u bubble)
    dλ₆/dℓ = K_d Λ^d [ −(15/2) λ λ₆ A² + 15 λ³ A³ ]                (φ⁸ dropped)

Integrated over a finite shell with the couplings frozen they are the direct one-loop shell
integrals m'² = m² + (λ/2) I₁, λ' = λ + (λ₆/2) I₁ − (3/2) λ² I₂, λ₆' = λ₆ − (15/2) λλ₆ I₂ + 15 λ³ I₃,
I_n = ∫_{Λ'<|p|≤Λ} d^dp/(2π)^d (p² + m²)^{−n} (`shell_one_loop`); the flow and these agree to
O(λ) for m² and O(λ²) for λ.

**Rescaled.** r = m²/Λ², u = λ Λ^{d−4}, u₆ = λ₆ Λ^{2d−6}:

    dr/dℓ  = 2 r + K_d u / (2(1 + r))
    du/dℓ  = (4 − d) u + K_d [ u₆/(2(1 + r)) − 3u²/(2(1 + r)²) ]
    du₆/dℓ = (6 − 2d) u₆ + K_d [ −(15/2) u u₆/(1 + r)² + 15 u³/(1 + r)³ ]

The linearisation at the Gaussian point is upper triangular: y_r = 2, y_u = 4 − d,
y₆ = 6 − 2d (y > 0 relevant, i.e. growing towards the IR). `SharpLPA(order=N)` is the same flow
for the polynomial truncation U = Σ_{n ≤ N} g_n φ^{2n}/(2n)! built by power-series arithmetic on
ln(1 + ũ''): an independent construction of the coefficients above for N = 2, 3.

This is a different scheme from the Litim-regulator Wetterich LPA of `rgflow._frg`: both have
the same Gaussian exponents, but fixed-point couplings and ν differ between regulators and
truncation orders.
"""

from __future__ import annotations

import math
import numbers

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

# the coefficients of the one-loop equations (module docstring); module constants so that a test
# can break one and watch the independent checks fail
_TADPOLE = 0.5
_BUBBLE = 1.5
_SEXTIC_TADPOLE = 0.5
_SEXTIC_MIX = 7.5
_SEXTIC_TREE = 15.0

# largest one-loop expansion parameter g = K_d u/(1+r)² accepted as perturbative
PERTURBATIVE_LIMIT = 0.5


def loop_factor(d) -> float:
    """K_d = S_d/(2π)^d = 2/((4π)^{d/2} Γ(d/2)): ∫ d^dp/(2π)^d f(|p|) = K_d ∫ p^{d−1} f(p) dp."""
    d = _check_d(d)
    return 2.0 / ((4 * math.pi) ** (d / 2) * math.gamma(d / 2))


def power_counting(d, order: int = 3) -> np.ndarray:
    """y_n = d − n(d − 2), n = 1..order: the Gaussian eigenvalues of φ^{2n} (2, 4 − d, 6 − 2d, …)."""
    d = _check_d(d)
    return np.array([d - n * (d - 2) for n in range(1, order + 1)], dtype=np.float64)


# ------------------------------------------------------------------------------ validation --


def _check_d(d) -> float:
    if isinstance(d, bool) or not isinstance(d, numbers.Real) or not 0 < d <= 6:
        raise ValueError(f"`d` must be a real number with 0 < d <= 6, got {d!r}.")
    return float(d)


def _check_real(name, v, *, positive=False) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"`{name}` must be a finite real number, got {v!r}.")
    if positive and v <= 0:
        raise ValueError(f"`{name}` must be > 0, got {v!r}.")
    return float(v)


def _check_cutoffs(cutoff, new_cutoff) -> tuple[float, float]:
    cutoff = _check_real("cutoff", cutoff, positive=True)
    new_cutoff = _check_real("new_cutoff", new_cutoff, positive=True)
    if new_cutoff >= cutoff:
        raise ValueError(f"`new_cutoff` Λ' = {new_cutoff:g} must be < `cutoff` Λ = {cutoff:g} "
                         "(a shell Λ' < |p| <= Λ is integrated out).")
    return cutoff, new_cutoff


def _check_couplings(couplings, cutoff=None) -> np.ndarray:
    try:
        g = np.asarray(couplings, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError("`couplings` must be a real sequence (m², λ) or (m², λ, λ₆).") from e
    if g.shape not in ((2,), (3,)):
        raise ValueError(f"`couplings` must be (m², λ) or (m², λ, λ₆), got shape {g.shape}.")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"`couplings` must be finite, got {g}.")
    if cutoff is not None and cutoff**2 + g[0] <= 0:
        raise ValueError(f"`couplings`: Λ² + m² = {cutoff**2 + g[0]:g} <= 0: the shell "
                         "propagator 1/(p² + m²) is singular (broken phase; not covered).")
    return g


# ------------------------------------------------------------------------------ β functions --


def _coefficients():
    """The five one-loop coefficients, read at call time (a test can break one)."""
    return jnp.asarray([_TADPOLE, _BUBBLE, _SEXTIC_TADPOLE, _SEXTIC_MIX, _SEXTIC_TREE],
                       jnp.float64)


def one_loop_beta(g, d: float, coefficients=None, loop=None):
    """∂_ℓ of the rescaled couplings g = (r, u) or (r, u, u₆) (module docstring, ℓ towards the IR).
    `coefficients` (default: the module's) and `loop` = K_d (default `loop_factor(d)`) may be
    traced arrays."""
    g = jnp.asarray(g, jnp.float64)
    c = _coefficients() if coefficients is None else coefficients
    k = loop_factor(d) if loop is None else loop
    r, u = g[0], g[1]
    u6 = g[2] if g.shape[0] == 3 else 0.0
    a = 1.0 / (1.0 + r)
    dr = 2 * r + k * c[0] * u * a
    du = (4 - d) * u + k * (c[2] * u6 * a - c[1] * u**2 * a**2)
    if g.shape[0] == 2:
        return jnp.stack([dr, du])
    du6 = (6 - 2 * d) * u6 + k * (-c[3] * u * u6 * a**2 + c[4] * u**3 * a**3)
    return jnp.stack([dr, du, du6])


def one_loop_beta_dimensionful(ell, y, args):
    """∂_ℓ (m², λ[, λ₆]) at Λ = Λ₀ e^{−ℓ}, no rescaling; `args` = (d, Λ₀, coefficients, K_d)."""
    d, cutoff0, c, k = args
    lam_c = cutoff0 * jnp.exp(-ell)
    m2, lam = y[0], y[1]
    lam6 = y[2] if y.shape[0] == 3 else 0.0
    a = 1.0 / (lam_c**2 + m2)
    pre = k * lam_c**d
    dm2 = pre * c[0] * lam * a
    dlam = pre * (c[2] * lam6 * a - c[1] * lam**2 * a**2)
    if y.shape[0] == 2:
        return jnp.stack([dm2, dlam])
    dlam6 = pre * (-c[3] * lam * lam6 * a**2 + c[4] * lam**3 * a**3)
    return jnp.stack([dm2, dlam, dlam6])


def _series_log(q, n):
    """Coefficients 0..n of ln q(s) for a power series q with q_0 > 0 (m q₀ L_m = m q_m − Σ k L_k q_{m−k})."""
    out = [jnp.log(q[0])]
    for m in range(1, n + 1):
        acc = m * (q[m] if m < len(q) else 0.0)
        for kk in range(1, m):
            acc = acc - kk * out[kk] * (q[m - kk] if m - kk < len(q) else 0.0)
        out.append(acc / (m * q[0]))
    return out


class SharpLPA(eqx.Module):
    """Polynomial truncation of the sharp-cutoff (Wegner–Houghton) LPA, rescaled.

    ũ(φ̃) = Σ_{n=1..N} g_n φ̃^{2n}/(2n)!  (g_1 = r, g_2 = u, g_3 = u₆) obeys
    ∂_ℓ ũ = d ũ − ((d−2)/2) φ̃ ũ' + ½ K_d ln(1 + ũ''), i.e.

        ∂_ℓ g_n = (d − n(d − 2)) g_n + ½ K_d (2n)! [s^n] ln(1 + Σ_m g_m s^{m−1}/(2m−2)!),  s = φ̃²,

    with g_{N+1} = 0. **Fields:** `d` (0 < d <= 6), `order` N >= 1.
    """

    d: float = eqx.field(static=True)
    order: int = eqx.field(static=True, default=3)

    def __check_init__(self):
        _check_d(self.d)
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"`order` must be an integer >= 1, got {self.order!r}.")

    def beta(self, g):
        g = jnp.asarray(g, jnp.float64)
        n, d = self.order, self.d
        q = [1.0 + g[0]] + [g[m] / math.factorial(2 * m) for m in range(1, n)]
        log = _series_log(q, n)
        k = loop_factor(d)
        return jnp.stack([(d - (i + 1) * (d - 2)) * g[i]
                          + 0.5 * k * math.factorial(2 * (i + 1)) * log[i + 1] for i in range(n)])

    def stability_matrix(self, g):
        """∂β/∂g (autodiff); its eigenvalues y are the RG eigenvalues (y > 0: relevant)."""
        return jax.jacfwd(self.beta)(jnp.asarray(g, jnp.float64))


# ----------------------------------------------------------------------- fixed points --------


class ShellFixedPoint(eqx.Module):
    """A fixed point of a shell truncation: `couplings` g*, `eigenvalues` y of ∂β/∂g (descending
    real part; y > 0 relevant), `nu` = 1/y_1, `omega` = −(largest negative y), `residual`."""

    couplings: np.ndarray
    eigenvalues: np.ndarray
    nu: float
    omega: float
    residual: float


@eqx.filter_jit
def _newton(beta, guess, rtol, atol, *, max_steps):
    sol = optx.root_find(lambda g, _: beta(g), optx.Newton(rtol=rtol, atol=atol), guess,
                         max_steps=max_steps, throw=False)
    g = sol.value
    return g, jnp.max(jnp.abs(beta(g))), jax.jacfwd(beta)(g)


def shell_fixed_point(beta, guess, *, rtol: float = 1e-13, atol: float = 1e-13,
                      max_steps: int = 200) -> ShellFixedPoint:
    """Newton root (optimistix) of `beta` (a function g → ∂_ℓ g, e.g. `SharpLPA(...).beta` or
    `lambda g: one_loop_beta(g, 3.0)`) from `guess`, with its stability analysis.

    **Raises:** `ValueError` if Newton fails or the residual exceeds 1e-9.
    """
    g, res, jac = _newton(beta, jnp.asarray(guess, jnp.float64), rtol, atol, max_steps=max_steps)
    res = float(res)
    if not np.isfinite(res) or res > 1e-9:
        raise ValueError(f"no fixed point found from this `guess` (residual {res:.2e}).")
    eig = np.linalg.eigvals(np.asarray(jac))
    eig = eig[np.argsort(-eig.real)]
    nu = 1.0 / eig[0].real if eig[0].real > 0 else float("nan")
    neg = -eig.real[eig.real < -1e-9]
    omega = float(neg.min()) if neg.size else float("nan")
    return ShellFixedPoint(couplings=np.asarray(g), eigenvalues=eig, nu=float(nu), omega=omega,
                           residual=res)


def _zero_expansion_chain(r: float, d: float, order: int) -> tuple[np.ndarray, float]:
    """Fixed-point couplings of `SharpLPA(d, order)` as functions of r alone, and the residual of
    the last equation. The n-th fixed-point equation is linear in g_{n+1} (through the s^n
    coefficient q_n = g_{n+1}/(2n)! of 1 + ũ''), so equations 1..N−1 give g_2..g_N from r and the
    N-th, F(r) = 0, is one equation in one unknown."""
    k = loop_factor(d)
    g = [r]
    q = [1.0 + r]
    logs = [math.log(1.0 + r)]
    for n in range(1, order + 1):
        y = d - n * (d - 2)
        rest = sum(kk * logs[kk] * q[n - kk] for kk in range(1, n))
        if n == order:  # q_n = 0 (g_{N+1} dropped): the residual
            log_n = (-rest) / (n * q[0])
            return np.asarray(g), y * g[n - 1] + 0.5 * k * math.factorial(2 * n) * log_n
        log_n = -2 * y * g[n - 1] / (k * math.factorial(2 * n))
        q_n = (n * q[0] * log_n + rest) / n
        logs.append(log_n)
        q.append(q_n)
        g.append(q_n * math.factorial(2 * n))
    raise AssertionError  # unreachable


@eqx.filter_jit
def _beta_and_jacobian(lpa, g):
    return lpa.beta(g), lpa.stability_matrix(g)


def wilson_fisher_shell(d: float = 3.0, order: int = 2, *, n_scan: int = 4000) -> ShellFixedPoint:
    """The Wilson–Fisher point of `SharpLPA(d, order)` (2 < d < 4).

    All couplings follow from r (`_zero_expansion_chain`); the roots of the last equation F(r)
    on r ∈ (−1, 0) are bracketed on `n_scan` points and polished by Brent's method. Among the
    non-Gaussian roots with exactly one relevant direction the one with the largest r (closest to
    the Gaussian point; the order-2 root is r* = −ε/(6 + ε)) is returned.
    **Raises:** `ValueError` if there is none.
    """
    from scipy.optimize import brentq

    d = _check_d(d)
    if not 2 < d < 4:
        raise ValueError(f"the Wilson–Fisher point needs 2 < d < 4, got d = {d}.")
    if isinstance(order, bool) or not isinstance(order, int) or order < 2:
        raise ValueError(f"`order` must be an integer >= 2, got {order!r}.")
    f = lambda r: _zero_expansion_chain(r, d, order)[1]  # noqa: E731
    rs = np.sort(-np.exp(np.linspace(np.log(1e-6), np.log(0.999), n_scan)))
    vals = np.array([f(r) for r in rs])
    lpa = SharpLPA(d=d, order=order)
    found = []
    for a, b, fa, fb in zip(rs[:-1], rs[1:], vals[:-1], vals[1:]):
        if np.isfinite(fa) and np.isfinite(fb) and fa * fb < 0:
            r = brentq(f, a, b, xtol=1e-15, rtol=1e-15)
            g = jnp.asarray(_zero_expansion_chain(r, d, order)[0])
            beta, jac = _beta_and_jacobian(lpa, g)
            res = float(jnp.max(jnp.abs(beta)))
            eig = np.linalg.eigvals(np.asarray(jac))
            eig = eig[np.argsort(-eig.real)]
            if res < 1e-8 * max(1.0, float(jnp.max(jnp.abs(g)))) and np.sum(eig.real > 1e-9) == 1:
                found.append((r, g, eig, res))
    if not found:
        raise ValueError(f"no Wilson–Fisher root of the order-{order} truncation in d = {d}.")
    r, g, eig, res = max(found, key=lambda t: t[0])
    neg = -eig.real[eig.real < -1e-9]
    return ShellFixedPoint(couplings=np.asarray(g), eigenvalues=eig, nu=float(1 / eig[0].real),
                           omega=float(neg.min()) if neg.size else float("nan"), residual=res)


# ------------------------------------------------------------------------------ flows -------


class ShellFlow(eqx.Module):
    """Result of `shell_flow` / `shell_flow_rescaled`.

    **Fields:** `ell` (saved RG times ℓ = ln(Λ₀/Λ)), `cutoffs` Λ(ℓ), `couplings` (len(ell), n)
    (dimensionful (m², λ[, λ₆]) for `shell_flow`, rescaled (r, u[, u₆]) for
    `shell_flow_rescaled`), `loop_parameter` g(ℓ) = K_d u/(1 + r)² (the one-loop expansion
    parameter), `max_loop_parameter`, `perturbative` (max g <= `PERTURBATIVE_LIMIT`),
    `error_estimate` (max relative difference to a solve with 1000× tighter tolerances),
    `accurate` (error_estimate <= the `accuracy` argument, default 1e-6), `succeeded` (the solver reached the end),
    `stats`.
    """

    ell: np.ndarray
    cutoffs: np.ndarray
    couplings: np.ndarray
    loop_parameter: np.ndarray
    max_loop_parameter: float
    perturbative: bool
    error_estimate: float
    accurate: bool
    succeeded: bool
    stats: dict

    @property
    def final(self) -> np.ndarray:
        return self.couplings[-1]


@eqx.filter_jit
def _solve(rhs, y0, t1, ts, args, rtol, atol, *, max_steps):
    def cond(t, y, args, **kw):
        if len(args) == 3:  # rescaled: 1 + r
            den = 1.0 + y[0]
        else:  # dimensionful: (Λ² + m²)/Λ²
            den = 1.0 + y[0] * jnp.exp(2 * t) / args[1] ** 2
        return (den < 1e-6) | ~jnp.all(jnp.isfinite(y)) | (jnp.max(jnp.abs(y)) > 1e12)

    return diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), diffrax.Tsit5(), 0.0, t1, None, y0, args=args,
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, event=diffrax.Event(cond), throw=False)


def _integrate(rhs, y0, t1, n_save, args, rtol, atol, max_steps):
    ts = jnp.linspace(0.0, t1, n_save)
    sols = [_solve(rhs, jnp.asarray(y0, jnp.float64), jnp.asarray(t1, jnp.float64), ts, args,
                   jnp.asarray(tol_r, jnp.float64), jnp.asarray(tol_a, jnp.float64),
                   max_steps=max_steps)
            for tol_r, tol_a in ((rtol, atol), (rtol * 1e-3, atol * 1e-3))]
    ok = all(bool(s.result == diffrax.RESULTS.successful) for s in sols)
    y, y_ref = np.asarray(sols[0].ys), np.asarray(sols[1].ys)
    scale = np.maximum(np.abs(y_ref), atol / rtol)
    err = float(np.nanmax(np.abs(y - y_ref) / scale)) if ok else float("nan")
    if not ok:  # up to the event: compare the finite part
        fin = np.isfinite(y) & np.isfinite(y_ref) & np.isfinite(scale)
        err = float(np.max(np.abs(y[fin] - y_ref[fin]) / scale[fin])) if fin.any() else float("nan")
    stats = {k: int(v) for k, v in sols[0].stats.items() if jnp.ndim(v) == 0}
    return np.asarray(ts), y, ok, err, stats


def _check_tol(rtol, atol, n_save):
    for name, v in (("rtol", rtol), ("atol", atol)):
        _check_real(name, v, positive=True)
    if isinstance(n_save, bool) or not isinstance(n_save, int) or n_save < 2:
        raise ValueError(f"`n_save` must be an integer >= 2, got {n_save!r}.")


def shell_flow(couplings, *, d: float, cutoff: float, new_cutoff: float, n_save: int = 64,
               rtol: float = 1e-10, atol: float = 1e-12, max_steps: int = 100_000,
               accuracy: float = 1e-6) -> ShellFlow:
    """Integrate out the shell Λ' < |p| <= Λ: the one-loop flow of (m², λ[, λ₆]), no rescaling.

    dm²/dℓ = K_d Λ^d λ/(2(Λ² + m²)), dλ/dℓ = K_d Λ^d [λ₆/(2(Λ² + m²)) − (3/2)λ²/(Λ² + m²)²], ...
    (module docstring), Λ = `cutoff` · e^{−ℓ}, ℓ from 0 to ln(Λ/Λ'); diffrax Tsit5 with PID
    control, checked against a solve with 1000× tighter tolerances (`error_estimate`).
    The result's `final` are the bare couplings of a theory with cutoff Λ' whose correlators
    equal the low-mode (|p| <= Λ') correlators of the theory at Λ to one loop
    (e.g. `mass2_flowed = shell_flow(...).final[0]`).

    **Arguments:** `couplings` (m², λ) or (m², λ, λ₆) at Λ (convention U = m²φ²/2 + λφ⁴/4! +
    λ₆φ⁶/6!), `d`, `cutoff` Λ > 0, `new_cutoff` 0 < Λ' < Λ, `n_save` saved points,
    tolerances, `max_steps`.

    **Returns:** a `ShellFlow` (dimensionful couplings; `perturbative` flags the flow whose
    expansion parameter K_d λ Λ^d/(Λ² + m²)² exceeds `PERTURBATIVE_LIMIT` somewhere).

    **Raises:** `ValueError` for Λ' >= Λ, Λ' <= 0, NaN couplings, Λ² + m² <= 0, or a flow that
    hits Λ² + m² = 0 (the shell propagator's pole) before Λ'.
    """
    d = _check_d(d)
    cutoff, new_cutoff = _check_cutoffs(cutoff, new_cutoff)
    g = _check_couplings(couplings, cutoff)
    _check_tol(rtol, atol, n_save)
    t1 = math.log(cutoff / new_cutoff)
    ts, ys, ok, err, stats = _integrate(one_loop_beta_dimensionful, g, t1, n_save,
                                        (jnp.asarray(d), jnp.asarray(cutoff, jnp.float64),
                                         _coefficients(), jnp.asarray(loop_factor(d))),
                                        rtol, atol, max_steps)
    if not ok:
        raise ValueError("the shell flow did not reach Λ' (Λ² + m² → 0 or a blow-up on the way: "
                         f"largest |coupling| saved {np.nanmax(np.abs(ys)):.3g}).")
    lam_c = cutoff * np.exp(-ts)
    loop = loop_factor(d) * ys[:, 1] * lam_c**d / (lam_c**2 + ys[:, 0]) ** 2
    return _result(ts, lam_c, ys, loop, err, accuracy, ok, stats)


def shell_flow_rescaled(g0, ell1: float, *, d: float, n_save: int = 200, rtol: float = 1e-10,
                        atol: float = 1e-12, max_steps: int = 100_000,
                        accuracy: float = 1e-6) -> ShellFlow:
    """The rescaled flow of g = (r, u[, u₆]) from ℓ = 0 to `ell1` (> 0: towards the IR; < 0:
    towards the UV, where the relevant directions contract — the stable way to trace a critical
    trajectory).

    Stops early (not `succeeded`) if 1 + r → 0 or a coupling exceeds 1e12 — a flow into the
    broken phase or to strong coupling; the couplings are NaN after that point.
    **Returns:** a `ShellFlow` (`cutoffs` = e^{−ℓ} in units of Λ₀).
    """
    d = _check_d(d)
    try:
        g = np.asarray(g0, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError("`g0` must be a real sequence (r, u) or (r, u, u₆).") from e
    if g.shape not in ((2,), (3,)) or not np.all(np.isfinite(g)):
        raise ValueError(f"`g0` must be finite (r, u) or (r, u, u₆), got {g0!r}.")
    if 1 + g[0] <= 0:
        raise ValueError(f"`g0`: 1 + r = {1 + g[0]:g} <= 0 (singular shell propagator).")
    ell1 = _check_real("ell1", ell1)
    if ell1 == 0:
        raise ValueError("`ell1` must be non-zero (> 0 towards the IR, < 0 towards the UV).")
    _check_tol(rtol, atol, n_save)
    ts, ys, ok, err, stats = _integrate(_rescaled_rhs, g, ell1, n_save,
                                        (jnp.asarray(d), jnp.asarray(loop_factor(d)),
                                         _coefficients()), rtol, atol, max_steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        loop = loop_factor(d) * ys[:, 1] / (1 + ys[:, 0]) ** 2
    return _result(ts, np.exp(-ts), ys, loop, err, accuracy, ok, stats)


def _rescaled_rhs(t, y, args):
    return one_loop_beta(y, args[0], args[2], loop=args[1])


def _result(ts, cutoffs, ys, loop, err, accuracy, ok, stats):
    mx = float(np.nanmax(np.abs(loop))) if np.any(np.isfinite(loop)) else float("nan")
    return ShellFlow(ell=ts, cutoffs=cutoffs, couplings=ys, loop_parameter=loop,
                     max_loop_parameter=mx, perturbative=bool(mx <= PERTURBATIVE_LIMIT),
                     error_estimate=err, accurate=bool(ok and err <= accuracy),
                     succeeded=ok, stats=stats)


# ------------------------------------------------------------------- direct shell integrals --


def _gauss_legendre(a, b, n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * x + 0.5 * (b + a), 0.5 * (b - a) * w


def shell_integral(power: int, m2: float, *, d: float, cutoff: float, new_cutoff: float,
                   n_nodes: int = 200) -> float:
    """I_n = ∫_{Λ'<|p|<=Λ} d^dp/(2π)^d (p² + m²)^{−n} = K_d ∫_{Λ'}^{Λ} p^{d−1}(p² + m²)^{−n} dp
    (Gauss–Legendre, `n_nodes` nodes; the integrand is smooth on the shell)."""
    d = _check_d(d)
    cutoff, new_cutoff = _check_cutoffs(cutoff, new_cutoff)
    m2 = _check_real("m2", m2)
    if new_cutoff**2 + m2 <= 0:
        raise ValueError(f"`m2`: Λ'² + m² = {new_cutoff**2 + m2:g} <= 0 (pole in the shell).")
    p, w = _gauss_legendre(new_cutoff, cutoff, n_nodes)
    return float(loop_factor(d) * np.sum(w * p ** (d - 1) / (p**2 + m2) ** power))


def shell_one_loop(couplings, *, d: float, cutoff: float, new_cutoff: float) -> np.ndarray:
    """The direct one-loop shell integral with frozen couplings (module docstring):
    m'² = m² + (λ/2) I₁, λ' = λ + (λ₆/2) I₁ − (3/2) λ² I₂, λ₆' = λ₆ − (15/2) λλ₆ I₂ + 15 λ³ I₃.
    Equals `shell_flow(...).final` to O(λ) (m²) and O(λ²) (λ)."""
    d = _check_d(d)
    cutoff, new_cutoff = _check_cutoffs(cutoff, new_cutoff)
    g = _check_couplings(couplings, new_cutoff)
    kw = {"d": d, "cutoff": cutoff, "new_cutoff": new_cutoff}
    i1, i2, i3 = (shell_integral(n, g[0], **kw) for n in (1, 2, 3))
    m2, lam = g[0], g[1]
    lam6 = g[2] if g.size == 3 else 0.0
    out = [m2 + _TADPOLE * lam * i1, lam + _SEXTIC_TADPOLE * lam6 * i1 - _BUBBLE * lam**2 * i2]
    if g.size == 3:
        out.append(lam6 - _SEXTIC_MIX * lam * lam6 * i2 + _SEXTIC_TREE * lam**3 * i3)
    return np.asarray(out)


def shell_potential(phi, couplings, *, d: float, cutoff: float, new_cutoff: float,
                    n_nodes: int = 200) -> np.ndarray:
    """The one-loop shell potential δU(φ) = ½ ∫_{Λ'<|p|<=Λ} d^dp/(2π)^d ln[(p² + U''(φ))/(p² + m²)]
    (the exact Gaussian integral over the shell modes at constant background φ, U'' = m² + λφ²/2 +
    λ₆φ⁴/24), by Gauss–Legendre quadrature, for real or complex `phi` (any shape). Its Taylor
    coefficients at φ = 0 are the one-loop shifts δm² = U₂, δλ = U₄, δλ₆ = U₆ (U_k = k-th
    derivative at 0) with no loop coefficient put in by hand (`shell_taylor`)."""
    d = _check_d(d)
    cutoff, new_cutoff = _check_cutoffs(cutoff, new_cutoff)
    g = _check_couplings(couplings, new_cutoff)
    m2, lam = g[0], g[1]
    lam6 = g[2] if g.size == 3 else 0.0
    p, w = _gauss_legendre(new_cutoff, cutoff, n_nodes)
    phi = np.asarray(phi)
    x = (lam * phi**2 / 2 + lam6 * phi**4 / 24)[..., None]
    return 0.5 * loop_factor(d) * np.sum(w * p ** (d - 1) * np.log1p(x / (p**2 + m2)), axis=-1)


def shell_taylor(couplings, *, d: float, cutoff: float, new_cutoff: float,
                 n_circle: int = 64) -> np.ndarray:
    """The 2nd, 4th and 6th φ-derivatives at 0 of `shell_potential` by the Cauchy integral on a
    circle |φ| = ρ in the complex plane (trapezoid rule, `n_circle` points; ρ = half the radius
    where λφ²/2 (or λ₆φ⁴/24) first reaches Λ'² + m²): an independent route to the one-loop
    coefficients."""
    g = _check_couplings(couplings, new_cutoff)
    gap = new_cutoff**2 + g[0]
    radii = [math.sqrt(gap / (abs(g[1]) / 2))] if g[1] != 0 else []
    if g.size == 3 and g[2] != 0:
        radii.append((gap / (abs(g[2]) / 24)) ** 0.25)
    rho = 0.5 * min(radii) if radii else 1.0
    z = rho * np.exp(2j * np.pi * np.arange(n_circle) / n_circle)
    vals = shell_potential(z, g, d=d, cutoff=cutoff, new_cutoff=new_cutoff)
    coef = np.fft.fft(vals) / n_circle
    return np.array([(coef[k] / rho**k).real * math.factorial(k) for k in (2, 4, 6)])
