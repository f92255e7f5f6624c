"""Ensemble training throughput (network·steps/s), side by side in one run (physics.md §14).

    python benchmarks/bench_training.py            # ~1 minute on 2 cores
    python benchmarks/bench_training.py --json     # also print the numbers as JSON

Model: ErfNet(N = 16 and 64, d_in = 2, σ_W = 1.5, σ_b = 0.5), NTK parameterisation, all parameters
trainable, full-batch gradient descent (optax.sgd(0.2)) on the 3 training points of the §14
check, 200 steps. Rows:

1. `rgflow.train_ensemble` (vmapped + jitted over a batch of 128 networks, with the streaming
   measurement of orders 1..4 at 4 recorded times), M networks;
2. a per-network optax loop: the same loss and optimiser, `jax.jit` of one step, a Python loop
   over the steps, one network at a time (the usual way to train one model), a few networks;
3. a PyTorch loop of the same model (torch.optim.SGD, float64), if torch is installed.

Compilation is excluded (a warm-up run of each first).
"""

from __future__ import annotations

import json
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

import rgflow  # noqa: E402
from rgflow._training import training_model  # noqa: E402

X = np.array([[1.0, 0.0], [-0.5, 0.9], [0.2, -1.0]])
Y = np.array([0.6, -0.4, 0.3])
PROBES = np.array([[0.7, 0.7], [-1.0, -0.2]])
STEPS, ETA = 200, 0.2
WIDTHS = (16, 64)


def ensemble(m: int, n: int) -> float:
    net = rgflow.ErfNet(width=n, d_in=2, sigma_w=1.5, sigma_b=0.5)
    kw = dict(times=[0, 10, 50, STEPS], learning_rate=ETA, n_blocks=16, max_order=4)
    rgflow.train_ensemble(net, X, Y, PROBES, m, key=jax.random.key(0), **kw)  # compile
    t0 = time.perf_counter()
    rgflow.train_ensemble(net, X, Y, PROBES, m, key=jax.random.key(1), **kw)
    return m * STEPS / (time.perf_counter() - t0)


def per_network(m: int, n: int) -> float:
    net = rgflow.ErfNet(width=n, d_in=2, sigma_w=1.5, sigma_b=0.5)
    init, apply = training_model(net, "ntk")
    opt = optax.sgd(ETA)
    xj, yj = jnp.asarray(X), jnp.asarray(Y)

    @jax.jit
    def step(params, state):
        loss, g = jax.value_and_grad(lambda p: 0.5 * jnp.sum((apply(p, xj) - yj) ** 2))(params)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, loss

    def train(g):
        params = init(jax.random.key(0), g)
        state = opt.init(params)
        for _ in range(STEPS):
            params, state, loss = step(params, state)
        return jax.block_until_ready(loss)

    train(0)  # compile
    t0 = time.perf_counter()
    for g in range(1, m + 1):
        train(g)
    return m * STEPS / (time.perf_counter() - t0)


def pytorch(m: int, n: int) -> float | None:
    N = n  # noqa: N806
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    x = torch.tensor(X)
    y = torch.tensor(Y)
    sw, sb, d = 1.5, 0.5, 2

    def train(seed):
        gen = torch.Generator().manual_seed(seed)
        p = [torch.randn(N, d, generator=gen, dtype=torch.float64, requires_grad=True),
             torch.randn(N, generator=gen, dtype=torch.float64, requires_grad=True),
             torch.randn(N, generator=gen, dtype=torch.float64, requires_grad=True),
             torch.randn((), generator=gen, dtype=torch.float64, requires_grad=True)]
        opt = torch.optim.SGD(p, lr=ETA)
        for _ in range(STEPS):
            opt.zero_grad()
            z = x @ p[0].T * (sw / math.sqrt(d)) + sb * p[1]
            f = torch.erf(z) @ p[2] * (sw / math.sqrt(N)) + sb * p[3]
            loss = 0.5 * torch.sum((f - y) ** 2)
            loss.backward()
            opt.step()

    train(0)
    t0 = time.perf_counter()
    for s in range(1, m + 1):
        train(s)
    return m * STEPS / (time.perf_counter() - t0)


def main():
    print(f"ErfNet d_in = 2, σ_W = 1.5, σ_b = 0.5, NTK param., 3 training points, {STEPS} steps "
          f"of optax.sgd({ETA}), float64, {jax.device_count()} CPU device(s)")
    out = {}
    for n in WIDTHS:
        rows = {f"rgflow.train_ensemble (M = 4096), N = {n}": ensemble(4096, n),
                f"per-network optax loop (jit step, 5 networks), N = {n}": per_network(5, n),
                f"PyTorch loop (5 networks), N = {n}": pytorch(5, n)}
        base = rows[f"per-network optax loop (jit step, 5 networks), N = {n}"]
        for name, rate in rows.items():
            if rate is None:
                print(f"  {name:56s}  not run: torch is not installed")
            else:
                print(f"  {name:56s}  {rate:10.0f} network·steps/s   ×{rate / base:6.1f}")
        out |= rows
    if "--json" in sys.argv:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
