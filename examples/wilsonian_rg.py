# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Wilsonian RG on networks
#
# A Wilsonian step integrates out the "short-distance" degrees of freedom and keeps an effective
# action for the rest. For a network ensemble on $P$ inputs, rgflow takes the degrees of freedom
# to be the **kernel modes** (physics.md §10): $K W v_k = \lambda_k v_k$, amplitudes
# $a = V^\top W f$, and the modes with small eigenvalue $\lambda_k$ (fine structure on the data)
# are the ones removed. Two routes give the effective action of the $M$ kept modes:
#
# - **exact**: `integrate_out` projects the exact cumulants onto the kept modes and builds their
#   Edgeworth action (marginalising a density is projecting its cumulants);
# - **flow**: `wilsonian_flow` integrates the Polchinski equation of the polynomial action in
#   $t = \ln\mu$ with diffrax, a smooth regulator removing mode $k$ as μ passes $\lambda_k$.
#
# They must agree up to the truncation of the action, $O(1/N^3)$ in the quartic relative to
# $O(1/N)$, i.e. a relative gap $\propto 1/N^2$.

# %%
import matplotlib.pyplot as plt
import numpy as np

import rgflow


def erf(n):
    """Erf net of width n, σ_W = 1, σ_b = 1, d_in = 1."""
    return rgflow.ErfNet(width=n)


xs = rgflow.hms_inputs("erf", 1)
modes = rgflow.kernel_modes(erf(1), xs)  # the kernel does not depend on the width
lam = np.asarray(modes.eigenvalues)
print("kernel eigenvalues λ_k (descending):", np.array2string(lam, precision=3))

# %% [markdown]
# ## Exact route and flow, at three widths
#
# Keep the $M = 2$ largest modes; the flow runs from μ far below the smallest eigenvalue (nothing
# removed) up to $\mu_c = \sqrt{\lambda_2\lambda_3}$, between the kept and the removed modes. The
# exact cumulants are computed once at $N = 1$ and scaled ($\kappa_4 \propto 1/N$,
# $\kappa_6 \propto 1/N^2$, physics.md §4).

# %%
keep, P = 2, lam.size
k4 = np.asarray(rgflow.exact_connected(erf(1), xs, 4))
k6 = np.asarray(rgflow.exact_connected(erf(1), xs, 6))
mu_c = float(np.sqrt(lam[keep - 1] * lam[keep]))
reg_width = min(0.25 * float(np.log(lam[keep - 1] / lam[keep])), 0.5)
mu = np.geomspace(lam[-1] * np.exp(-2 * reg_width), mu_c, 16)

widths = [1000, 10_000, 100_000]
gaps, runnings, sols = [], [], {}
ix = np.ix_(*(range(keep),) * 4)
for n in widths:
    cum = {4: k4 / n, 6: k6 / n**2}
    full = rgflow.integrate_out(erf(n), xs, P, modes=modes, cumulants=cum)  # all modes, μ = 0
    exact = rgflow.integrate_out(erf(n), xs, keep, modes=modes, cumulants=cum)
    sol = rgflow.wilsonian_flow(full, modes, mu, width=reg_width)
    sols[n] = sol
    q_flow = np.asarray(sol.quartic[-1])[ix]  # the kept-mode quartic at μ_c
    q_exact, q_start = np.asarray(exact.quartic), np.asarray(full.quartic)[ix]
    gaps.append(np.abs(q_flow - q_exact).max() / np.abs(q_exact).max())
    runnings.append(np.abs(q_flow - q_start).max() / np.abs(q_start).max())
    print(f"N = {n:6d}: flow {'succeeded' if sol.succeeded else 'FAILED'} "
          f"({int(sol.stats['num_steps'])} steps); |flow − exact|/|exact| = {gaps[-1]:.2e}; "
          f"running |L(μ_c) − L(0)|/|L(0)| = {runnings[-1]:.2e}")

slope_gap = np.polyfit(np.log(widths), np.log(gaps), 1)[0]
slope_run = np.polyfit(np.log(widths), np.log(runnings), 1)[0]
print(f"slopes in N: gap {slope_gap:+.2f} (truncation: −2), running {slope_run:+.2f} (expected −1)")

# %% [markdown]
# The flow reproduces the exact effective action, and the kept quartic runs only at relative
# order $1/N$: integrating out modes changes the couplings of the kept modes through the
# (small) non-Gaussianity, so at large width the kept-mode action is, to leading order, the
# projection of the full one.

# %% [markdown]
# ## The running of the kept couplings along the flow
#
# The relative change of the diagonal quartic $L_{kkkk}(\mu)$ of the two kept modes since
# $\mu \to 0$, at the three widths: it is generated as the removed modes pass their
# eigenvalues (grey lines) and scales like $1/N$.

# %%
fig, ax = plt.subplots(figsize=(5.2, 3.4))
for n, ls in zip(widths, ("-", "--", ":")):
    q = np.asarray(sols[n].quartic)
    for k, color in ((0, "C0"), (1, "C1")):
        run_k = np.abs(q[:, k, k, k, k] - q[0, k, k, k, k]) / np.abs(q[0, k, k, k, k])
        ok = (run_k > 0) & (mu >= lam[-1])  # below the smallest eigenvalue: nothing removed yet
        ax.loglog(mu[ok], run_k[ok], ls, color=color, label=fr"$k = {k + 1}$, $N = {n:,}$")
for k in range(keep, P):
    ax.axvline(lam[k], color="0.85", lw=0.8, zorder=0)
ax.set_xlabel(r"cutoff $\mu$ (increasing: towards the IR)")
ax.set_ylabel(r"$|L_{kkkk}(\mu) - L_{kkkk}(0)| \,/\, |L_{kkkk}(0)|$")
ax.set_title(r"Erf, $\sigma_W = 1$, $\sigma_b = 1$, $d_{in} = 1$; grey: removed $\lambda_k$",
             fontsize=9)
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Standardised couplings
#
# `standardised_couplings` rescales the kept amplitudes to unit propagator at the cutoff,
# $a = \sqrt{\mu}\,\hat a$, so a quartic coupling $L$ becomes $\hat L = \mu^2 L$ (entries that
# touch a removed mode are NaN).

# %%
st = rgflow.standardised_couplings(sols[1000])
diag = np.einsum("nkkkk->nk", np.asarray(st["quartic"]))
for i in (0, len(mu) - 1):
    print(f"μ = {mu[i]:.2e}: kept modes {np.flatnonzero(np.asarray(st['kept'][i])).tolist()}, "
          f"μ² L_kkkk = {np.array2string(diag[i], precision=3)}")

# %% [markdown]
# Along the flow the standardised couplings change mostly through the explicit factor $\mu^2$ of
# the rescaling, while the couplings themselves barely run (above). How a coupling scales under
# this rescaling depends on the convention chosen for it.
#
# `wilsonian_relevance` linearises the flow of the standardised couplings at one cutoff. Its
# eigenvalues θ at the Gaussian point are fixed by the $\sqrt{\mu}$ rescaling of the amplitudes
# (an operator with $n$ legs gets $\theta = n/2$), so they classify operators within that
# convention rather than measure a property of the network. At the flowing couplings
# (`point="theory"`) they can move by $O(1/N)$ only inside a regulator window, where a mode is
# being removed; at $\mu_c$ none is.

# %%
for point in ("gaussian", "theory"):
    r = rgflow.wilsonian_relevance(sols[1000], -1, point=point)
    thetas = ", ".join(f"{t:.6g}" for t in np.unique(np.round(r.theta, 6)))
    print(f"{point:8s} point, kept modes {r.kept}: distinct θ = {thetas}")
