"""NGP actions as Equinox modules (physics.md §3): structure, leaves, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rgflow
from rgflow._actions import (
    Action,
    BilocalQuartic,
    FreeAction,
    LocalCoupling,
    NonlocalQuartic,
    PolynomialQuartic,
    make_interaction,
)


def _action():
    net = rgflow.ErfNet(width=5, d_in=1)
    return Action(
        net,
        (
            LocalCoupling(order=4, coupling=0.01),
            LocalCoupling(order=6, coupling=-0.002),
            PolynomialQuartic(lambda0=0.003, lambda2=-1e-4),
            BilocalQuartic(lambda_nl=0.004),
            NonlocalQuartic(lambda p, *ys: p["a"] * jnp.exp(-sum(y @ y for y in ys)), {"a": 0.5}, d_in=1),
        ),
    )


def test_couplings_are_float64_leaves_and_structure_static():
    act = _action()
    params, static = eqx.partition(act, eqx.is_inexact_array)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == 6 and all(x.dtype == jnp.float64 and x.shape == () for x in leaves)
    assert act.coupling_names == (
        "0:LocalCoupling.coupling",
        "1:LocalCoupling.coupling",
        "2:PolynomialQuartic.lambda0",
        "2:PolynomialQuartic.lambda2",
        "3:BilocalQuartic.lambda_nl",
        "4:NonlocalQuartic.params['a']",
    )
    flat = act.flat_couplings()
    np.testing.assert_allclose(flat, [0.01, -0.002, 0.003, -1e-4, 0.004, 0.5])
    act2 = act.with_flat_couplings(2 * flat)
    np.testing.assert_allclose(act2.flat_couplings(), 2 * flat)
    assert act.interactions[0].order == 4 and act.interactions[1].order == 6
    assert act.net is act.free.net and isinstance(act.free, FreeAction)


def test_grad_and_optax_see_couplings():
    act = _action()

    def loss(a):
        return sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array)))

    g = eqx.filter_grad(loss)(act)
    np.testing.assert_allclose(g.interactions[0].coupling, 0.02)
    opt = optax.sgd(0.1)
    state = opt.init(eqx.filter(act, eqx.is_inexact_array))
    upd, state = opt.update(g, state)
    new = eqx.apply_updates(act, upd)
    np.testing.assert_allclose(new.interactions[0].coupling, 0.01 - 0.1 * 0.02)
    # a jitted function of the action does not retrace for new coupling values
    f = eqx.filter_jit(lambda a: a.interactions[0].coupling * 2)
    assert float(f(new)) == pytest.approx(2 * float(new.interactions[0].coupling))


def test_free_part_kernels():
    net = rgflow.ErfNet(width=5, d_in=1)
    free = FreeAction(net)
    x = jnp.asarray(rgflow.hms_inputs("erf", 1))
    np.testing.assert_allclose(free.kernel(x, x) - free.kernel_w(x, x), net.sigma_b**2)


def test_odd_and_unknown_operators_rejected():
    with pytest.raises(ValueError, match="f → −f"):
        LocalCoupling(order=3, coupling=1.0)
    with pytest.raises(ValueError, match="f → −f"):
        make_interaction("phi5", coupling=1.0)
    with pytest.raises(ValueError, match="order"):
        LocalCoupling(order=2, coupling=1.0)
    with pytest.raises(ValueError, match="unknown operator"):
        make_interaction("phi4_prime", coupling=1.0)
    with pytest.raises(TypeError, match="interactions"):
        Action(rgflow.ErfNet(width=5), ("f^4",))
    with pytest.raises(TypeError, match="net"):
        Action("erf", ())
    assert isinstance(make_interaction("phi6", coupling=1.0), LocalCoupling)
    assert isinstance(make_interaction("bilocal4", lambda_nl=1.0), BilocalQuartic)


def test_bad_coupling_shapes():
    with pytest.raises(ValueError, match="`coupling` must be a scalar"):
        LocalCoupling(order=4, coupling=jnp.ones(3))
    with pytest.raises(ValueError, match="`lambda2` must be a scalar"):
        PolynomialQuartic(lambda0=0.1, lambda2=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        BilocalQuartic(lambda_nl=np.nan)
    with pytest.raises(TypeError, match="coupling"):
        LocalCoupling(order=4, coupling="big")


def test_nonlocal_validation_and_d_in_mismatch():
    with pytest.raises(ValueError, match="scalar"):
        NonlocalQuartic(lambda p, y1, y2, y3, y4: y1 * p, 1.0, d_in=2)
    with pytest.raises(ValueError, match="failed"):
        NonlocalQuartic(lambda p, y1, y2, y3, y4: y1 @ jnp.ones(3) * p, 1.0, d_in=2)
    nl = NonlocalQuartic(lambda p, y1, y2, y3, y4: p * jnp.sum(y1 * y2), 1.0, d_in=2)
    with pytest.raises(ValueError, match="d_in"):
        Action(rgflow.ErfNet(width=5, d_in=1), (nl,))
    Action(rgflow.ErfNet(width=5, d_in=2), (nl,))
