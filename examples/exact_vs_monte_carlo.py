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
# # Exact vs Monte Carlo, with error bars
#
# rgflow computes the correlators of a network ensemble three independent ways: the GP limit
# (Wick sums of the kernel $K$, physics.md §3), exactly at finite width $N$ (physics.md §4) and
# by Monte Carlo over sampled networks (physics.md §5). This page puts the last two side by side:
# the connected 4-pt function $G_{4,c} \propto 1/N$ for several widths, each from its own
# independent ensemble, and then the single-neuron estimator that gives every width from one run.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

import rgflow


def relu(n):
    """ReLU net of width n, σ_W = 1, σ_b = 1, d_in = 1."""
    return rgflow.ReLUNet(width=n, sigma_b=1.0)


net = relu(1)  # the width is set per ensemble below
xs = rgflow.hms_inputs("relu", 1)
print(net, "inputs:", np.asarray(xs).ravel())

# %% [markdown]
# ## The 2-pt function is $K$ at every width
#
# One layer has $G_2 = K$ exactly at finite $N$: the Monte Carlo 2-pt function must agree with the
# kernel within its error bars at any width.

# %%
widths = [2, 4, 8, 16]
runs = rgflow.measure_widths(net, xs, 50_000, widths, key=jax.random.key(0), orders=(2, 4))
K = np.asarray(net.kernel(xs, xs))
m2 = runs[2]
g2, g2_err = np.asarray(m2.moment(2)), np.asarray(m2.moment_stderr(2))
for a, b in [(0, 0), (0, 5), (5, 5)]:
    print(f"N = 2, G2({a},{b}): MC {g2[a, b]:.4f} ± {g2_err[a, b]:.4f}   K = {K[a, b]:.4f}")

# %% [markdown]
# ## The connected 4-pt function falls like 1/N
#
# `Measurement.connected(4)` is the jackknife bias-corrected cumulant
# $G_4 - (G_2G_2 + \text{2 perms})$; `exact_connected` is the closed form at the same width.
# The z-score $(\text{MC} - \text{exact})/\sigma$ should scatter around 0 with unit spread.

# %%
a = (0, 0, 5, 5)  # the tuple plotted below
rows = []
for n in widths:
    m = runs[n]
    mc, err = np.asarray(m.connected(4)), np.asarray(m.connected_stderr(4))
    exact = np.asarray(rgflow.exact_connected(relu(n), xs, 4))
    z = (mc - exact) / err
    rows.append((n, mc[a], err[a], exact[a]))
    print(f"N = {n:2d}: G4_c{a} = {mc[a]:+.4f} ± {err[a]:.4f}  (exact {exact[a]:+.4f}),  "
          f"all tuples: rms z = {np.sqrt(np.mean(z**2)):.2f}")

n_dense = np.geomspace(1.5, 40, 50)
exact_dense = float(rgflow.exact_connected(relu(1), xs, 4)[a]) / n_dense  # exactly ∝ 1/N

# %% [markdown]
# The exact $G_{4,c}$ is exactly $\propto 1/N$, so the dashed line is $G_{4,c}(N = 1)/N$ drawn
# through the continuum of widths.

# %%
n_arr, mc_arr, err_arr, ex_arr = map(np.array, zip(*rows))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(n_dense, np.abs(exact_dense), "--", color="0.4", label="exact (physics.md §4)")
ax.errorbar(n_arr, np.abs(mc_arr), yerr=err_arr, fmt="o", capsize=3,
            label="Monte Carlo, 50 000 nets per width")
ax.set_xticks(widths, [str(n) for n in widths])
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.yaxis.set_minor_formatter(plt.NullFormatter())
ax.set_xlabel("width $N$")
ax.set_ylabel(r"$|G_{4,c}(x_1, x_1, x_6, x_6)|$")
ax.set_title(r"ReLU, $\sigma_W = 1$, $\sigma_b = 1$, $d_{in} = 1$", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Every width from one run of single neurons
#
# Because the hidden neurons are independent, the connected correlators of width $N$ are
# $1/N$ (4-pt) and $1/N^2$ (6-pt) times single-neuron cumulants. `measure_neurons` samples
# neurons once and answers for any width; its error bars shrink with the number of neurons, not
# with the number of networks of width $N$. Here 200 000 neurons — the cost of 12 500 networks
# of width 16 — reach width 1000, and resolve the $1/N^2$ connected 6-pt function.

# %%
est = rgflow.measure_neurons(net, xs, 200_000, key=jax.random.key(1), orders=(2, 4, 6))
for n in (16, 1000):
    for order, t in ((4, a), (6, (0, 0, 0, 5, 5, 5))):
        v = float(np.asarray(est.connected(order, width=n))[t])
        e = float(np.asarray(est.connected_stderr(order, width=n))[t])
        ex = float(np.asarray(rgflow.exact_connected(relu(n), xs, order))[t])
        print(f"N = {n:4d}: G{order}_c{t} = {v:+.3e} ± {e:.1e}   exact {ex:+.3e}   "
              f"z = {(v - ex) / e:+.1f}")
