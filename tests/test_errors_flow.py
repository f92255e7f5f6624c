"""Issue 13, class 1a: a cutoff flow that drifts away from the matching conditions must not
report success.

Reproduction (before the fix): ReLU-net (N = 10, d_in = 1, HMS inputs), the per-tuple λ_T plus
least-squares λ problem of the rg_lambda study, flowed with default settings from Λ = 1e5 down to
Λ = 7. The solver finished (`RESULTS.successful`, so `succeeded` was True) while the couplings at
Λ = 7 disagreed with direct refits by a factor ~1e5 (measured relative gap 1.2e5 with 14 tuples):
the exact-refit flow repels towards small Λ (rgflow._flow docstring). Now the end point is
compared with a refit there: `drifted`, `succeeded` False and the gap in `refit_gap`.
"""

import numpy as np

import rgflow
from rgflow._beta import refit
from rgflow._flow import flow
from rgflow.studies.rg_lambda import lambda_problem


def _problem(name, keep):
    net = rgflow.make_net(name, width=10, d_in=1)
    xs = rgflow.hms_inputs(name, 1)
    dg4 = np.asarray(rgflow.exact_connected(net, xs, 4, full=False))
    full = lambda_problem(net, xs, dg4)
    n = dg4.size
    return full.subset(np.concatenate([keep, [n]]), np.concatenate([keep, n + np.arange(n)]))


def test_drifting_flow_towards_small_cutoff_is_not_a_success():
    prob = _problem("relu", np.arange(0, 126, 25))
    cut = np.geomspace(1e5, 7.0, 4)
    sol = flow(prob, cut)
    g_ref = np.asarray(refit(prob, cut[-1:]))[0]
    gap = np.max(np.abs(np.asarray(sol.couplings)[-1] - g_ref) / np.abs(g_ref))
    assert gap > 1.0  # the failure is real: orders of magnitude at Λ = 7
    assert not sol.succeeded and sol.drifted
    assert np.isclose(sol.refit_gap, gap, rtol=1e-6)


def test_flow_that_tracks_the_refits_still_succeeds():
    """No false alarm: Gauss-net's λ_T are constant in Λ (translation-invariant kernel, the
    integrals have converged), the flow follows the refits to rounding."""
    prob = _problem("gauss", np.arange(0, 126, 25))
    sol = flow(prob, np.geomspace(1e5, 7.0, 3))
    assert sol.succeeded and not sol.drifted and sol.refit_gap < 1e-9
