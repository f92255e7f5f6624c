"""Issue 13: every bad input is a clear error, never a silent NaN or wrong answer.

One test per class of failure, parametrised over the public entry points it concerns:
NaN/inf and complex values (class 2), PRNG keys (class 3), shapes, domains and memory
(class 4), checkpoint identity and pooling (class 6), rank-deficient fits and zero degrees of
freedom (class 1b). The CLI (class 5), the TOML configuration (class 7) and the cutoff flow's
drift (class 1a) are in tests/test_errors_cli.py and tests/test_errors_flow.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rgflow
from rgflow._actions import (
    Action,
    BilocalQuartic,
    LocalCoupling,
    NonlocalQuartic,
    PolynomialQuartic,
)
from rgflow._beta import matching_problem
from rgflow._checkpoint import fingerprint
from rgflow._fit import QuadraticModel, fit, power_law
from rgflow._fit_data import bootstrap_replicates, mc_data
from rgflow._frg import GridLPA, PolynomialLPA, find_fixed_point, lpa_flow
from rgflow._tuples import from_full

X = np.array([[0.1], [0.5], [0.9]])
ERF = rgflow.ErfNet(width=3)
KEY = jax.random.key(0)


def _small_measurement(key=KEY, n=64):
    return rgflow.measure(ERF, X, n, key=key, orders=(2, 4), n_blocks=4)


# ------------------------------------------------------------------ class 2: NaN / inf ---

NAN_X = np.array([[0.1], [np.nan]])
CPLX_X = np.array([[0.1], [0.5 + 1e-3j]])
_nonlocal = lambda p, a, b, c, d: p * jnp.exp(-jnp.sum((a - b) ** 2))  # noqa: E731
_action = Action(ERF, (LocalCoupling(4, 0.1), BilocalQuartic(0.2)))

NON_FINITE = {
    # NaN inputs to the low-level methods and to the entry points
    "kernel NaN x": (lambda: ERF.kernel(NAN_X, X), ValueError, "`x` contains NaN"),
    "kernel_w NaN y": (lambda: rgflow.ReLUNet(width=2).kernel_w(X, NAN_X), ValueError, "`y`"),
    "covariance NaN": (lambda: ERF.covariance(NAN_X, X), ValueError, "`x`"),
    "generic kernel NaN": (lambda: rgflow.GenericNet(width=2).kernel(NAN_X, X), ValueError, "`x`"),
    "sample NaN": (lambda: ERF.sample(NAN_X, 4, key=KEY), ValueError, "`xs`"),
    "measure NaN": (lambda: rgflow.measure(ERF, NAN_X, 8, key=KEY, n_blocks=2), ValueError, "`xs`"),
    "exact NaN": (lambda: rgflow.exact_moment(ERF, NAN_X, 4), ValueError, "`xs`"),
    # complex inputs are refused, not truncated to their real part
    "kernel complex": (lambda: ERF.kernel(CPLX_X, X), TypeError, "real"),
    "sample complex": (lambda: ERF.sample(CPLX_X, 4, key=KEY), TypeError, "real"),
    "measure complex": (lambda: rgflow.measure(ERF, CPLX_X, 8, key=KEY, n_blocks=2), TypeError,
                        "real"),
    "exact complex": (lambda: rgflow.exact_connected(ERF, CPLX_X, 4), TypeError, "real"),
    # activations that yield NaN/inf or are not elementwise, checked at construction
    "activation log": (lambda: rgflow.GenericNet(width=2, activation=jnp.log), ValueError,
                       "`activation` yields NaN or inf"),
    "activation 1/z": (lambda: rgflow.GenericNet(width=2, activation=lambda z: 1 / z), ValueError,
                       "`activation`"),
    "activation sum": (lambda: rgflow.GenericNet(width=2, activation=jnp.sum), ValueError,
                       "elementwise"),
    # overflowing kernels and sampled outputs
    "huge sigma_w": (lambda: rgflow.ErfNet(width=2, sigma_w=1e200), ValueError, "`sigma_w`"),
    "erf kernel overflow": (lambda: rgflow.ErfNet(width=2, sigma_w=1e150).kernel(X * 1e100, X),
                            ValueError, "not finite"),
    "gauss exact overflow": (lambda: rgflow.exact_moment(rgflow.GaussNet(width=3), [[30.0]], 4),
                             ValueError, "not finite"),
    "exp-net sample overflow": (lambda: rgflow.GenericNet(width=3, activation="exp").sample(
        [[900.0]], 8, key=KEY), ValueError, "not finite"),
    "exp-net measure overflow": (lambda: rgflow.measure(
        rgflow.GenericNet(width=3, activation="exp"), [[900.0]], 8, key=KEY, n_blocks=2),
        ValueError, "not finite"),
    "exp-net neurons overflow": (lambda: rgflow.measure_neurons(
        rgflow.GenericNet(width=3, activation="exp"), [[900.0]], 12, key=KEY, n_blocks=2),
        ValueError, "not finite"),
    "exp-net conditional overflow": (lambda: rgflow.measure_conditional(
        rgflow.GenericNet(width=3, activation="exp"), [[900.0]], 8, key=KEY, n_blocks=2),
        ValueError, "not finite"),
    # couplings: NaN / inf / complex at construction and through with_flat_couplings
    "local NaN": (lambda: LocalCoupling(4, np.nan), ValueError, "`coupling`"),
    "polynomial inf": (lambda: PolynomialQuartic(lambda0=np.inf), ValueError, "`lambda0`"),
    "bilocal complex": (lambda: BilocalQuartic(1 + 1j), TypeError, "`lambda_nl`"),
    "nonlocal NaN params": (lambda: NonlocalQuartic(_nonlocal, np.nan), ValueError, "`params`"),
    "nonlocal complex params": (lambda: NonlocalQuartic(_nonlocal, 1j), TypeError, "`params`"),
    "nonlocal NaN fn": (lambda: NonlocalQuartic(lambda p, a, b, c, d: p * jnp.log(a[0] - 1), 1.0),
                        ValueError, "`fn"),
    "with_flat NaN": (lambda: _action.with_flat_couplings(jnp.array([0.1, jnp.nan])), ValueError,
                      "`flat` must be finite"),
    "with_flat complex": (lambda: _action.with_flat_couplings(jnp.array([0.1, 1j])), TypeError,
                          "`flat` must be real"),
}


@pytest.mark.parametrize("case", list(NON_FINITE))
def test_non_finite_and_complex_values_are_refused(case):
    call, error, match = NON_FINITE[case]
    with pytest.raises(error, match=match):
        call()


def test_finite_values_still_pass_and_traced_inputs_work():
    """The checks do not get in the way: the same entry points with valid input, and the kernel
    under jit/grad (shape-checked only)."""
    k = ERF.kernel(X, X)
    assert np.all(np.isfinite(np.asarray(k)))
    g = jax.grad(lambda x: jnp.sum(ERF.kernel(x, X)))(jnp.asarray(X))
    assert g.shape == X.shape and np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(jax.jit(ERF.kernel)(X, X)), np.asarray(k), rtol=1e-14)
    flat = _action.with_flat_couplings(jnp.array([0.3, 0.4])).flat_couplings()
    np.testing.assert_array_equal(np.asarray(flat), [0.3, 0.4])


# --------------------------------------------------------------------------- class 3: keys ---

BAD_KEYS = {
    "int": 0,
    "str": "seed",
    "None": None,
    "float array": np.array([1.0, 2.0]),
    "batch of keys": jax.random.split(KEY, 3),
}

KEY_ENTRY_POINTS = {
    "measure": lambda k: rgflow.measure(ERF, X, 8, key=k, n_blocks=2),
    "measure_widths": lambda k: rgflow.measure_widths(ERF, X, 8, [2, 3], key=k, n_blocks=2),
    "measure_neurons": lambda k: rgflow.measure_neurons(ERF, X, 12, key=k, n_blocks=2),
    "measure_conditional": lambda k: rgflow.measure_conditional(ERF, X, 8, key=k, n_blocks=2),
    "sample": lambda k: ERF.sample(X, 4, key=k),
    "mc_data": lambda k: mc_data(_small_measurement(), (4,), n_boot=4, key=k),
    "bootstrap_replicates": lambda k: bootstrap_replicates(_small_measurement(), (4,), 4, key=k),
}


@pytest.mark.parametrize("entry", list(KEY_ENTRY_POINTS))
@pytest.mark.parametrize("bad", list(BAD_KEYS))
def test_bad_keys_name_key_and_say_how_to_make_one(entry, bad):
    if bad == "None" and entry in ("mc_data", "bootstrap_replicates"):
        pytest.skip("key=None is the documented default of the bootstrap (jax.random.key(0))")
    with pytest.raises(TypeError, match=r"`key`.*jax\.random\.key\(seed\)"):
        KEY_ENTRY_POINTS[entry](BAD_KEYS[bad])


def test_typed_and_legacy_keys_are_accepted():
    a = ERF.sample(X, 3, key=jax.random.key(1))
    b = ERF.sample(X, 3, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------- class 4: shapes and domains ---

X2 = np.ones((3, 2))
_HX = rgflow.hms_inputs("erf")
_DG = np.asarray(rgflow.exact_connected(rgflow.ErfNet(width=5), _HX, 4, full=False))
_A4 = Action(rgflow.ErfNet(width=5), [LocalCoupling(4)])
SHAPES = {
    "kernel x d_in": (lambda: ERF.kernel(X2, X), "`x` must have shape"),
    "kernel y d_in": (lambda: ERF.kernel(X, X2), "`y` must have shape"),
    "kernel_w d_in": (lambda: rgflow.ReLUNet(width=2).kernel_w(X2, X2), "`x` must have shape"),
    "gauss kernel d_in": (lambda: rgflow.GaussNet(width=2).kernel(X2, X), "`x` must have shape"),
    "generic kernel d_in": (lambda: rgflow.GenericNet(width=2).kernel_w(X, X2), "`y`"),
    "covariance d_in": (lambda: ERF.covariance(X2, X2), "`x` must have shape"),
    "feature_vectors d_in": (lambda: ERF.feature_vectors(X2), "`xs` must have shape"),
    "sample d_in": (lambda: ERF.sample(X2, 3, key=KEY), "`xs` must have shape"),
    "measure d_in": (lambda: rgflow.measure(ERF, X2, 8, key=KEY, n_blocks=2), "`xs`"),
    "exact d_in": (lambda: rgflow.exact_moment(ERF, X2, 2), "`xs`"),
    "sorted_tuples negative": (lambda: rgflow.sorted_tuples(-1, 2), "`n_points`"),
    "sorted_tuples order 0": (lambda: rgflow.sorted_tuples(3, 0), "`order`"),
    "sorted_tuples float": (lambda: rgflow.sorted_tuples(3.5, 2), "`n_points`"),
    "to_full length": (lambda: rgflow.to_full(np.ones(5), 3, 2), "6 entries"),
    "from_full not square": (lambda: from_full(np.ones((3, 4)), 2), "equal axes"),
    "power_law lengths": (lambda: power_law([1, 2, 3], [1.0, 2.0]), "`values`"),
    "power_law widths <= 0": (lambda: power_law([0, 2, 3], [1.0, 2.0, 3.0]), "`widths`"),
    "power_law NaN widths": (lambda: power_law([np.nan, 2, 3], [1.0, 2.0, 3.0]), "`widths`"),
    "power_law stderr shape": (lambda: power_law([1, 2, 3], [1.0, 2, 3], [1.0]), "`stderr`"),
    "LPA d <= 2": (lambda: PolynomialLPA(d=2.0, order=3), "`d`"),
    "grid LPA d > 6": (lambda: GridLPA(d=7.0), "`d`"),
    "LPA d NaN": (lambda: PolynomialLPA(d=float("nan"), order=3), "`d`"),
    "lpa_flow g0 shape": (lambda: lpa_flow(PolynomialLPA(d=3.0, order=3), [0.1, 0.0], -1.0),
                          "`g0`"),
    "lpa_flow t1 NaN": (lambda: lpa_flow(PolynomialLPA(d=3.0, order=2), [0.1, 0.0],
                                         float("nan")), "`t1`"),
    "fixed point guess shape": (lambda: find_fixed_point(PolynomialLPA(d=3.0, order=2), [0.1]),
                                "`guess`"),
    "matching targets NaN": (lambda: matching_problem(_A4, _HX, {4: _DG * np.nan}),
                             "`targets\\[4\\]`"),
    "matching targets length": (lambda: matching_problem(_A4, _HX, {4: _DG[:5]}), "`targets"),
    "matching weights negative": (lambda: matching_problem(_A4, _HX, {4: _DG},
                                                           {4: -np.ones(_DG.size)}), "`weights"),
    "matching stderr shape": (lambda: matching_problem(_A4, _HX, {4: _DG},
                                                       stderr={4: np.ones(3)}), "`stderr"),
    "matching xs d_in": (lambda: matching_problem(_A4, np.ones((6, 2)), {4: _DG}), "`xs`"),
    "sample index wrap": (lambda: ERF.sample(X, 4, key=KEY, start=2**32 - 2), "2\\*\\*32"),
    # memory: say how much would be needed instead of an allocator error
    "measure huge width": (lambda: rgflow.measure(rgflow.ErfNet(width=10**11), X, 8, key=KEY,
                                                  n_blocks=2), "would need about"),
    "sample huge batch": (lambda: rgflow.ErfNet(width=10**8).sample(X, 10**5, key=KEY),
                          "would need about"),
    "conditional huge width": (lambda: rgflow.measure_conditional(
        rgflow.ErfNet(width=10**11), X, 8, key=KEY, n_blocks=2), "would need about"),
    "generic kernel huge": (lambda: rgflow.GenericNet(width=2).kernel(np.zeros((20000, 1)),
                                                                      np.zeros((20000, 1))),
                            "would need about"),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_shape_domain_and_memory_errors_name_the_argument(case):
    call, match = SHAPES[case]
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------- class 6: checkpoint identity ---


def _net(fn):
    return rgflow.GenericNet(width=3, activation=fn)


def test_checkpoint_fingerprint_identifies_callables():
    """Different callables that print the same never share a fingerprint; the same code does
    (across instances), and a callable that cannot be identified is refused."""
    f_tanh = lambda z: jnp.tanh(z)  # noqa: E731
    f_sin = lambda z: jnp.sin(z)  # noqa: E731
    assert repr(_net(f_tanh)) == repr(_net(f_sin))  # why repr() could not be the identity
    fp = lambda fn: fingerprint(net=_net(fn), key=KEY)  # noqa: E731
    assert fp(f_tanh) != fp(f_sin)
    assert fp(f_tanh) == fp(lambda z: jnp.tanh(z))
    scaled = [(lambda c: (lambda z: jnp.tanh(c * z)))(c) for c in (1.0, 2.0)]  # noqa: B023
    assert fp(scaled[0]) != fp(scaled[1])  # closure values count
    assert fp("tanh") != fp(jnp.tanh)

    class Opaque:
        def __call__(self, z):
            return jnp.tanh(z)

    with pytest.raises(ValueError, match="cannot be identified"):
        fp(Opaque())


def test_checkpoint_refuses_a_different_activation(tmp_path):
    ckpt = tmp_path / "run.npz"
    rgflow.measure(_net(lambda z: jnp.tanh(z)), X, 16, key=KEY, n_blocks=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match="different configuration"):
        rgflow.measure(_net(lambda z: jnp.sin(z)), X, 16, key=KEY, n_blocks=2, checkpoint=ckpt)
    # the same computation resumes
    rgflow.measure(_net(lambda z: jnp.tanh(z)), X, 16, key=KEY, n_blocks=2, checkpoint=ckpt)


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04truncated", None])
def test_truncated_or_foreign_checkpoint_files_are_refused(tmp_path, content):
    ckpt = tmp_path / "run.npz"
    if content is None:  # a valid checkpoint cut in half
        rgflow.measure(ERF, X, 16, key=KEY, n_blocks=2, checkpoint=ckpt)
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 2])
    else:
        ckpt.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable rgflow checkpoint"):
        rgflow.measure(ERF, X, 16, key=KEY, n_blocks=2, checkpoint=ckpt)


def test_merge_refuses_measurements_from_the_same_key():
    a = _small_measurement(KEY)
    with pytest.raises(ValueError, match="same key"):
        a.merge(_small_measurement(KEY))
    with pytest.raises(TypeError, match="`other`"):
        a.merge({"not": "a measurement"})
    b = _small_measurement(jax.random.fold_in(KEY, 1))
    m = a.merge(b)
    assert m.n_nets == 128 and len(m.key_ids) == 2
    with pytest.raises(ValueError, match="same key"):  # still refused after pooling
        m.merge(_small_measurement(jax.random.fold_in(KEY, 1)))


# -------------------------------------------------- class 1b: rank deficiency, zero dof ---

A_DUP = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [0.5, 0.5]])  # two identical operators


@pytest.mark.parametrize("method", ["wls", "lbfgs", "adam"])
def test_rank_deficient_fit_is_refused(method):
    y = A_DUP[:, 0] * 0.7
    with pytest.raises(ValueError, match="rank-deficient"):
        fit(QuadraticModel(A_DUP), y, np.ones(4), method=method)
    # a nonlinear model whose Jacobian is rank-deficient at the solution, too
    h = np.zeros((4, 2, 2))
    h[:, 0, 0] = [0.1, 0.2, 0.3, 0.4]
    h[:, 1, 1] = h[:, 0, 0]
    if method != "wls":
        with pytest.raises(ValueError, match="rank-deficient"):
            fit(QuadraticModel(A_DUP, h), y, np.ones(4), method=method)


@pytest.mark.parametrize("method", ["wls", "lbfgs"])
def test_zero_degrees_of_freedom_are_reported_not_nan(method):
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    res = fit(QuadraticModel(a), np.array([0.5, 1.0]), np.ones(2), method=method)
    assert res.dof == 0 and res.chi2_dof is None and res.p_value is None
    np.testing.assert_allclose(np.asarray(res.couplings), [0.5, 0.5], rtol=1e-8)
    assert res.as_dict()["chi2_dof"] is None
    pl = power_law([2, 4], [1.0, 0.25])
    assert pl["dof"] == 0 and pl["exponent_err"] is None and pl["ci95"] is None
    assert abs(pl["exponent"] + 2) < 1e-12
