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
# # A deep network's layer flow
#
# In an MLP of $L$ hidden layers of width $n$, each layer maps the distribution of the
# pre-activations $z^{(\ell)}$ to that of $z^{(\ell+1)}$: depth is a second "RG time"
# (physics.md §11). At infinite width the kernel $K^{(\ell)}$ follows a deterministic recursion;
# at width $n$ the 4-pt vertex $V^{(\ell)}$ (the connected 4-pt function times $n$) is generated
# and carried along, so the non-Gaussianity of the output grows with depth as it falls with
# width. `layer_flow` runs the $O(1/n)$ recursion; `measure` samples the same `DeepNet`.

# %%
import math

import jax
import matplotlib.pyplot as plt
import numpy as np

import rgflow

x = np.array([[1.0]])  # one input
n, depth = 20, 6
critical = rgflow.DeepNet(activation="relu", width=n, depth=depth, sigma_w=math.sqrt(2.0), sigma_b=0.0)
flow = rgflow.layer_flow(critical, x)
print(f"ReLU, σ_W = √2, σ_b = 0: critical = {flow.critical} ({flow.criticality})")
print("χ_∥ per layer:", np.round(flow.chi_parallel[:, 0], 6))
print("K⁽ℓ⁾(x, x) per layer:", np.round(flow.kernels[:, 0, 0], 6))

# %% [markdown]
# At criticality ($\chi_\parallel = \chi_\perp = 1$) the kernel neither grows nor decays with
# depth. The normalised vertex of layer $\ell$, $r^{(\ell)} = G_{4,c}(aaaa)/(3K_{aa}^2)$, then
# grows linearly in the number of layers below: for ReLU at $\sigma_b = 0$ the exact finite-width
# answer is $(1 + 5/n)^{\ell-1} - 1$, whose $O(1/n)$ term $5(\ell-1)/n$ is what the recursion
# keeps.

# %%
r_theory = flow.normalized_vertex()[:, 0]  # layers ℓ = 1 .. L+1
ell = np.arange(1, depth + 2)
r_exact = (1 + 5 / n) ** (ell - 1) - 1
for l_, a, b in zip(ell, r_theory, r_exact):
    print(f"ℓ = {l_}: recursion r = {a:.4f}   exact product {b:.4f}")

# %% [markdown]
# ## Monte Carlo: the output of nets of depth 1, 3, 6
#
# The output of a depth-$L$ net is layer $\ell = L + 1$. `measure` samples whole networks;
# $r = G_{4,c}/(3G_2^2)$ gets its error bar from `Measurement.jackknife`.

# %%
mc = {}
for L in (1, 3, 6):
    net = rgflow.DeepNet(activation="relu", width=n, depth=L, sigma_w=math.sqrt(2.0), sigma_b=0.0)
    m = rgflow.measure(net, x, 40_000, key=jax.random.key(L), orders=(2, 4))
    r, err = m.jackknife(lambda mo: mo[4][..., 0] / (3 * mo[2][..., 0] ** 2) - 1)
    mc[L] = (float(r), float(err))
    print(f"depth {L}: MC r = {float(r):.4f} ± {float(err):.4f}   recursion {r_theory[L]:.4f}   "
          f"exact {r_exact[L]:.4f}")

# %% [markdown]
# The Monte Carlo follows the exact product; the $O(1/n)$ recursion is its first-order term and
# falls below both as $5L/n$ grows, by the next order, $O(L^2/n^2)$.

# %%
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.plot((ell - 1) / n, r_exact, "-", color="0.4", label=r"exact $(1 + 5/n)^{\ell-1} - 1$")
ax.plot((ell - 1) / n, r_theory, "--", label=r"layer recursion, $O(1/n)$")
Ls = np.array(sorted(mc))
ax.errorbar(Ls / n, [mc[L][0] for L in Ls], yerr=[mc[L][1] for L in Ls], fmt="o", capsize=3,
            label=r"Monte Carlo, $4 \cdot 10^4$ nets")
ax.set_xlabel(r"$(\ell - 1)/n$: hidden layers below $\ell$, over the width")
ax.set_ylabel(r"$r^{(\ell)} = G_{4,c}/(3K^2)$")
ax.set_title(r"ReLU at criticality, $n = 20$, $\sigma_W = \sqrt{2}$, $\sigma_b = 0$, $d_{in} = 1$",
             fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Away from criticality
#
# With $\sigma_b = 0.5$ the kernel flows to a fixed point, and the vertex no longer grows
# linearly; `layer_flow` reports the susceptibilities that decide it.

# %%
off = rgflow.layer_flow(
    rgflow.DeepNet(activation="erf", width=n, depth=depth, sigma_w=1.5, sigma_b=0.5), x)
print(f"erf, σ_W = 1.5, σ_b = 0.5: critical = {off.critical}")
print("χ_∥ per layer:", np.round(off.chi_parallel[:, 0], 4))
print("r⁽ℓ⁾ per layer:", np.round(off.normalized_vertex()[:, 0], 4))
