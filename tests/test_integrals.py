"""Cutoff-regulated vertex integrals (physics.md §6) against independent routes.

References: scipy's adaptive QUADPACK (d_in = 1, 2) and nested adaptive Gauss–Kronrod from quadax
(d_in = 3, slow), closed forms (Gauss-net over all space, exact Λ-scaling of ReLU σ_b = 0), and the
Leibniz boundary term (the integral over the box faces) for dI/dΛ. The reference integrands use
NumPy kernels written here from the formulas of physics.md §2, independent of rgflow's kernels.

Tolerances: the target is 1e-8 relative. Entries whose integrand changes sign can be much smaller
than ∫|integrand| (cancellation), so each entry is compared against
`1e-9 · max(|I|, 1e-6 · max_t |I_t|)`; the observed agreement is ~1e-14 (see the report).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import rgflow
from rgflow._integrals import (
    QuadratureOptions,
    check_cutoffs,
    exchange_integrals,
    vertex_integrals,
)
from rgflow._tuples import sorted_tuples

CUTS = np.array([7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4,
                 4e4, 6e4, 8e4, 1e5])


# ----------------------------------------------------------- independent numpy kernels ---


def np_kernel_w(name, x, y, sigma_w=1.0, sigma_b=None):
    """K_W(x, y) = K − σ_b² for single points x, y (arrays of shape (d,)), physics.md §2."""
    x, y = np.atleast_1d(x).astype(float), np.atleast_1d(y).astype(float)
    d = x.size
    sb = {"erf": 1.0, "relu": 0.0, "gauss": 1.0}[name] if sigma_b is None else sigma_b
    s = lambda a, b: sb**2 + sigma_w**2 * np.dot(a, b) / d  # noqa: E731
    if name == "erf":
        arg = 2 * s(x, y) / math.sqrt((1 + 2 * s(x, x)) * (1 + 2 * s(y, y)))
        return 2 * sigma_w**2 / math.pi * math.asin(arg)
    if name == "relu":
        n = math.sqrt(s(x, x) * s(y, y))
        if n == 0:
            return 0.0
        c = min(1.0, max(-1.0, s(x, y) / n))
        th = math.acos(c)
        return sigma_w**2 / (2 * math.pi) * n * (math.sin(th) + (math.pi - th) * c)
    return sigma_w**2 * math.exp(-(sigma_w**2) * np.sum((x - y) ** 2) / (2 * d))


def _segments(lam, extra=()):
    """Breakpoints for QUADPACK on [−Λ, Λ]: 0, ±2^k and kinks."""
    pts = {-lam, lam, 0.0}
    for k in range(-3, 30):
        v = 2.0**k
        if v < lam:
            pts |= {v, -v}
    for e in extra:
        if -lam < e < lam:
            pts.add(float(e))
    return sorted(pts)


def ref_1d(name, xs, idx, lam, weight=0):
    f = lambda y: (y * y if weight else 1.0) * np.prod(  # noqa: E731
        [np_kernel_w(name, xs[i], y) for i in idx]
    )
    pts = _segments(lam)
    return sum(
        integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=200)[0] for a, b in zip(pts[:-1], pts[1:])
    )


def _check(got, ref, rtol=1e-9):
    got, ref = np.asarray(got), np.asarray(ref)
    scale = np.maximum(np.abs(ref), 1e-6 * np.max(np.abs(ref)))
    err = np.max(np.abs(got - ref) / scale)
    assert err < rtol, err


# ---------------------------------------------------------------------------- d_in = 1 ---


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
def test_d1_against_quadpack(name):
    net = rgflow.make_net(name, width=5, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    t4 = sorted_tuples(6, 4)
    sel = [0, 40, 125]
    cut_sel = [0, 8, 20]
    got = np.asarray(vertex_integrals(net, xs, CUTS, 4))
    ref = np.array([[ref_1d(name, xs[:, 0], t4[s], CUTS[c]) for s in sel] for c in cut_sel])
    _check(got[np.ix_(cut_sel, sel)], ref)


@pytest.mark.parametrize("name", ["erf", "gauss"])
def test_d1_weighted_and_orders(name):
    net = rgflow.make_net(name, width=5, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    for order in (2, 6):
        t = sorted_tuples(6, order)
        got = np.asarray(vertex_integrals(net, xs, CUTS[[0, 10]], order))
        ref = np.array([[ref_1d(name, xs[:, 0], t[s], lam) for s in (0, len(t) // 2)] for lam in CUTS[[0, 10]]])
        _check(got[:, [0, len(t) // 2]], ref)
    got = np.asarray(vertex_integrals(net, xs, CUTS[[0, 10]], 4, weight="r2"))
    t4 = sorted_tuples(6, 4)
    ref = np.array([[ref_1d(name, xs[:, 0], t4[s], lam, weight=2) for s in (3, 90)] for lam in CUTS[[0, 10]]])
    _check(got[:, [3, 90]], ref)


# ---------------------------------------------------------------------------- d_in = 2 ---


def ref_2d(name, xs, idx, lam, sigma_b=None):
    f = lambda y2, y1: np.prod(  # noqa: E731
        [np_kernel_w(name, xs[i], np.array([y1, y2]), sigma_b=sigma_b) for i in idx]
    )
    pts = [-lam, -2.0, -1.0, 0.0, 1.0, 2.0, lam]
    pts = sorted(p for p in set(pts) if -lam <= p <= lam)
    tot = 0.0
    for a, b in zip(pts[:-1], pts[1:]):
        def inner(y1, a=a, b=b):
            kinks = [y1 * x[1] / x[0] for x in xs if x[0] != 0]  # y ∥ ±x (ReLU)
            p = sorted({-lam, lam, 0.0, -1.0, 1.0, *[k for k in kinks if -lam < k < lam]})
            return sum(
                integrate.quad(f, c, e, args=(y1,), epsabs=0, epsrel=1e-12, limit=100)[0]
                for c, e in zip(p[:-1], p[1:])
            )
        tot += integrate.quad(inner, a, b, epsabs=0, epsrel=1e-11, limit=100)[0]
    return tot


@pytest.mark.parametrize("name", ["erf", "relu"])
def test_d2_against_quadpack(name):
    net = rgflow.make_net(name, width=5, d_in=2)
    xs = rgflow.hms_inputs(name, 2)
    t4 = sorted_tuples(4, 4)
    got = np.asarray(vertex_integrals(net, xs, np.array([7.0]), 4))
    sel = [0, 21] if name == "erf" else [1, 34]
    ref = np.array([ref_2d(name, xs, t4[s], 7.0) for s in sel])
    _check(got[0, sel], ref)


def test_relu0_exact_scaling_and_relu_bias():
    """σ_b = 0: I4(Λ) = Λ^{d+4} I4(1) exactly; σ_b ≠ 0 (kink at the point y = x) against QUADPACK."""
    net = rgflow.ReLUNet(width=5, d_in=2)
    xs = rgflow.hms_inputs("relu", 2)
    i = np.asarray(vertex_integrals(net, xs, CUTS, 4))
    np.testing.assert_allclose(i / CUTS[:, None] ** 6, np.broadcast_to(i[:1] / 7.0**6, i.shape), rtol=1e-13)
    net_b = rgflow.ReLUNet(width=5, d_in=1, sigma_b=0.5)
    x1 = rgflow.hms_inputs("relu", 1)
    got = np.asarray(vertex_integrals(net_b, x1, np.array([3.0, 50.0]), 4))
    t4 = sorted_tuples(6, 4)
    for s in (0, 60):
        for c, lam in enumerate((3.0, 50.0)):
            f = lambda y, idx=t4[s]: np.prod([np_kernel_w("relu", x1[i], y, sigma_b=0.5) for i in idx])  # noqa: E731
            pts = sorted(set(_segments(lam, extra=x1[:, 0])))
            ref = sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=200)[0] for a, b in zip(pts[:-1], pts[1:]))
            _check(got[c, s], ref)


# ---------------------------------------------------------------------------- d_in = 3 ---


@pytest.mark.slow
@pytest.mark.parametrize("name", ["erf", "relu"])
def test_d3_against_nested_adaptive(name):
    quadax = pytest.importorskip("quadax", reason="the `validate` extra: pip install -e '.[validate]'")

    net = rgflow.make_net(name, width=5, d_in=3)
    xs = rgflow.hms_inputs(name, 3)
    X = jnp.asarray(xs)
    lam = 7.0
    t4 = sorted_tuples(4, 4)
    br = jnp.array([-lam, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, lam])

    def f(y, idx):
        return jnp.prod(net.kernel_w(X[idx], y[None])[:, 0])

    def i3(y1, y2, idx):
        return quadax.quadgk(lambda y3: f(jnp.stack([y1, y2, y3]), idx), br, epsabs=0.0, epsrel=1e-12)[0]

    def i2(y1, idx):
        return quadax.quadgk(lambda y2: i3(y1, y2, idx), br, epsabs=0.0, epsrel=1e-12)[0]

    full = jax.jit(lambda idx: quadax.quadgk(lambda y1: i2(y1, idx), br, epsabs=0.0, epsrel=1e-12)[0])
    got = np.asarray(vertex_integrals(net, xs, np.array([lam]), 4))[0]
    sel = [0, 5, 34]
    ref = np.array([float(full(jnp.asarray(t4[s]))) for s in sel])
    # the ReLU reference integrates across the (unsplit) kink rays: QUADPACK-like accuracy ~1e-9
    _check(got[sel], ref, rtol=1e-8 if name == "erf" else 1e-7)


@pytest.mark.slow  # ~7-10 s; `make test-slow`
def test_d3_self_convergence():
    """Default rule against a finer one (more face panels, finer radial grading), Erf d_in = 3."""
    net = rgflow.ErfNet(width=5, d_in=3)
    xs = rgflow.hms_inputs("erf", 3)
    cuts = CUTS[[0, 20]]
    a = np.asarray(vertex_integrals(net, xs, cuts, 4))
    fine = QuadratureOptions(n_s=20, n_face=14, s_ratio=1.7)
    b = np.asarray(vertex_integrals(net, xs, cuts, 4, options=fine))
    _check(a, b, rtol=1e-10)


# ------------------------------------------------------------------- Gauss closed forms ---


def test_gauss_all_space_and_narrow_peak():
    """Λ = ∞ closed form: ∫ Π_k σ² e^{−a|x_i−y|²} = σ^{2k} (π/(ka))^{d/2} e^{−a Σ|x_i − c|²}."""
    for d in (1, 2, 3):
        net = rgflow.GaussNet(width=5, d_in=d, sigma_w=30.0)  # a = 450/d: a very narrow peak
        xs = 7.3 + rgflow.hms_inputs("gauss", d)  # off-centre, on a huge box
        got = np.asarray(vertex_integrals(net, xs, jnp.array([1e5, jnp.inf]), 4))
        t4 = sorted_tuples(xs.shape[0], 4)
        a = 900.0 / (2 * d)
        pts = xs[t4]
        c = pts.mean(1)
        ref = 900.0**4 * (math.pi / (4 * a)) ** (d / 2) * np.exp(-a * np.sum((pts - c[:, None]) ** 2, (1, 2)))
        np.testing.assert_allclose(got[1], ref, rtol=1e-12)
        np.testing.assert_allclose(got[0], ref, rtol=1e-12)
        assert np.all(got > 0)


# ------------------------------------------------------------------ dI/dΛ: Leibniz terms ---


def _boundary_2d(name, xs, idx, lam):
    """Leibniz term: ∮ over the four edges of the box of Π K_W(x_i, y)."""
    def f(t, side):
        y = {0: (lam, t), 1: (-lam, t), 2: (t, lam), 3: (t, -lam)}[side]
        return np.prod([np_kernel_w(name, xs[i], np.array(y)) for i in idx])
    tot = 0.0
    for side in range(4):
        pts = _segments(lam)
        tot += sum(integrate.quad(f, a, b, args=(side,), epsabs=0, epsrel=1e-13, limit=200)[0]
                   for a, b in zip(pts[:-1], pts[1:]))
    return tot


@pytest.mark.parametrize("name", ["erf", "relu", "gauss"])
def test_autodiff_matches_leibniz(name):
    # d_in = 1: dI/dΛ = F(Λ) + F(−Λ)
    net = rgflow.make_net(name, width=5, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    lam = jnp.array([7.0, 33.0, 1000.0]) if name != "gauss" else jnp.array([0.005, 0.02, 1.0])
    jac = jax.jacfwd(lambda c: vertex_integrals(net, xs, c, 4))(lam)
    di = np.asarray(jnp.einsum("ctc->ct", jac))
    t4 = sorted_tuples(6, 4)
    for s in (0, 50, 125):
        for c, L in enumerate(np.asarray(lam)):
            ref = sum(np.prod([np_kernel_w(name, xs[i], sg * L) for i in t4[s]]) for sg in (1, -1))
            np.testing.assert_allclose(di[c, s], ref, rtol=1e-9)
    # d_in = 2: surface integral over the four edges
    net2 = rgflow.make_net(name, width=5, d_in=2)
    xs2 = rgflow.hms_inputs(name, 2)
    lam2 = jnp.array([7.0]) if name != "gauss" else jnp.array([0.02])
    g = jax.grad(lambda c: vertex_integrals(net2, xs2, c, 4)[0, 1])(lam2)[0]
    ref = _boundary_2d(name, xs2, sorted_tuples(4, 4)[1], float(lam2[0]))
    np.testing.assert_allclose(float(g), ref, rtol=1e-9)


def test_jit_traced_cutoffs_and_shapes():
    net = rgflow.ErfNet(width=5, d_in=2)
    xs = rgflow.hms_inputs("erf", 2)
    eager = vertex_integrals(net, xs, CUTS, 4)
    jitted = jax.jit(lambda c: vertex_integrals(net, xs, c, 4))(jnp.asarray(CUTS))
    assert eager.shape == (21, 35) and eager.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-13)
    # a cutoff beyond the radial grid gives NaN, never a silently wrong number
    small = QuadratureOptions(s_max=100.0)
    out = jax.jit(lambda c: vertex_integrals(net, xs, c, 4, options=small))(jnp.array([50.0, 1e4]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))


# ------------------------------------------------------------------------ exchange (λ²) ---


def test_exchange_d1_relu_closed_form():
    """ReLU σ_b = 0, d = 1, positive inputs: K_W(x, y) = x y / 2 for y > 0 and 0 for y < 0, so
    J(abc|def) = Π x_abc Π x_def / 2⁷ · (Λ⁵/5)² exactly."""
    net = rgflow.ReLUNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("relu", 1)
    lam = np.array([2.0, 7.0, 1e3])
    j = np.asarray(exchange_integrals(net, xs, lam))
    tri = sorted_tuples(6, 3)
    px = np.prod(xs[tri, 0], axis=1)
    ref = (px[:, None] * px[None, :])[None] / 2**7 * (lam[:, None, None] ** 5 / 5) ** 2
    np.testing.assert_allclose(j, ref, rtol=1e-12)


def test_exchange_d1_erf_against_quadpack():
    net = rgflow.ErfNet(width=5, d_in=1)
    xs = rgflow.hms_inputs("erf", 1)
    lam = 3.0
    j = np.asarray(exchange_integrals(net, xs, np.array([lam])))[0]
    tri = sorted_tuples(6, 3)
    X = xs[:, 0]
    for r, c in ((0, 55), (10, 30)):
        def f(z, y, a=tri[r], b=tri[c]):
            return (np.prod([np_kernel_w("erf", X[i], y) for i in a]) * np_kernel_w("erf", y, z)
                    * np.prod([np_kernel_w("erf", X[i], z) for i in b]))
        ref = integrate.dblquad(f, -lam, lam, -lam, lam, epsabs=0, epsrel=1e-12)[0]
        np.testing.assert_allclose(j[r, c], ref, rtol=1e-10)


def test_exchange_gauss_against_tensor_rule():
    """Gauss-net exchange (closed inner integral) against a brute tensor Gauss–Legendre rule, d = 2."""
    net = rgflow.GaussNet(width=5, d_in=2)
    xs = np.array([[0.1, -0.2], [0.3, 0.25], [-0.4, 0.1]])
    lam = 1.5
    got = np.asarray(exchange_integrals(net, xs, np.array([lam]), weights=(True, False)))[0]
    x, w = np.polynomial.legendre.leggauss(24)
    y1 = lam * x
    wy = lam * w
    g = np.stack(np.meshgrid(y1, y1, indexing="ij"), -1).reshape(-1, 2)
    wg = np.outer(wy, wy).ravel()
    kw = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / 4)  # noqa: E731  (σ_W = 1, d = 2)
    k_xy = kw(xs, g)
    k_yz = kw(g, g)
    tri = sorted_tuples(3, 3)
    for r, c in ((0, 9), (4, 7)):
        ty = np.prod(k_xy[tri[r]], 0) * wg * np.sum(g**2, -1)
        tz = np.prod(k_xy[tri[c]], 0) * wg
        np.testing.assert_allclose(got[r, c], ty @ k_yz @ tz, rtol=1e-11)


# ------------------------------------------------------------------------------ errors ---


def test_bad_input():
    net = rgflow.ErfNet(width=5, d_in=2)
    xs = rgflow.hms_inputs("erf", 2)
    with pytest.raises(ValueError, match="cutoffs"):
        vertex_integrals(net, xs, np.array([7.0, 0.0]), 4)
    with pytest.raises(ValueError, match="cutoffs"):
        vertex_integrals(net, xs, -1.0, 4)
    with pytest.raises(ValueError, match="inf"):
        vertex_integrals(net, xs, np.array([np.inf]), 4)
    with pytest.raises(ValueError, match="d_in"):
        vertex_integrals(net, rgflow.hms_inputs("erf", 3), 7.0, 4)
    with pytest.raises(ValueError, match="order"):
        vertex_integrals(net, xs, 7.0, 3)
    with pytest.raises(ValueError, match="weight"):
        vertex_integrals(net, xs, 7.0, 4, weight="r3")
    with pytest.raises(ValueError, match="n_s"):
        QuadratureOptions(n_s=1)
    assert check_cutoffs(3.0).shape == (1,)
