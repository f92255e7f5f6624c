"""The Edgeworth action is an asymptotic series in 1/N (docs/physics.md §9, README claims):
each order is exact, but e^{−S} truncated at O(1/N²) and used as a density at finite N does not
reproduce the network's cumulants; the gap closes like a power of 1/N."""

import jax
import numpy as np

import rgflow
from rgflow._nets import make_net


def _density_cumulants(width):
    """κ4, κ6 of the normalised e^{−S} (order 2, one Erf input x = 1) by the trapezoid rule on
    ±12 √K, beside the exact finite-width κ4, κ6."""
    jax.config.update("jax_enable_x64", True)
    net = make_net("erf", width=width, d_in=1)
    xs = np.array([[1.0]])
    s = rgflow.edgeworth_action(net, xs, order=2)
    k2 = float(np.asarray(net.kernel(xs, xs))[0, 0])
    f = np.linspace(-12.0, 12.0, 100_001) * np.sqrt(k2)
    e = np.asarray(s(f[:, None]))
    w = np.exp(-(e - e.min()))
    assert max(w[0], w[-1]) < 1e-20  # bounded here: the density exists
    w /= np.trapezoid(w, f)
    m2, m4, m6 = (np.trapezoid(w * f**k, f) for k in (2, 4, 6))
    c4, c6 = m4 - 3 * m2**2, m6 - 15 * m4 * m2 + 30 * m2**3
    g4 = float(np.asarray(rgflow.exact_connected(net, xs, 4, full=True)).ravel()[0])
    g6 = float(np.asarray(rgflow.exact_connected(net, xs, 6, full=True)).ravel()[0])
    return c4 / g4 - 1, c6 / g6 - 1


def test_truncated_action_is_asymptotic_not_exact_at_finite_width():
    r4_10, r6_10 = _density_cumulants(10)
    r4_100, r6_100 = _density_cumulants(100)
    # measured: κ4 −0.24 %, κ6 +54 % at N = 10; −0.002 %, +5.1 % at N = 100
    assert abs(r6_10) > 0.3  # not the finite-N action: κ6 off by tens of per cent at N = 10
    assert abs(r4_10) < 0.01
    assert abs(r6_100) < 0.1
    # the gap closes like 1/N (κ6) and 1/N² (κ4): an asymptotic series, order by order exact
    assert 5 < r6_10 / r6_100 < 20
    assert 50 < r4_10 / r4_100 < 200
