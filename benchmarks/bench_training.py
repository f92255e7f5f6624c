"""Ensemble training throughput (network·steps/s), side by side in one run (physics.md §14).

    python benchmarks/bench_training.py                 # ~5 minutes on 2 shared cores
    python benchmarks/bench_training.py --rounds 5 --json out.json

Model: ErfNet(N = 16 and 64, d_in = 2, σ_W = 1.5, σ_b = 0.5), NTK parameterisation, all four
parameter arrays trainable, full-batch gradient descent with learning rate 0.2 on the MSE loss
½ Σ (f − y)² over the 3 training points of the §14 check, 200 steps. Rows (compilation and
warm-up excluded; every row trains the same model with the same optimiser):

1. `rgflow.train_ensemble`, float64 (default): M networks, vmapped over batches of 128 and the
   whole training loop jitted (`lax.fori_loop` over steps inside a `lax.scan` over the recorded
   times), with the streaming measurement of orders 1..4 at 4 recorded times;
2. the same with `dtype=jnp.float32` (training in float32; draws and accumulation in float64);
3. **the baseline (×1)**: a per-network optax loop — `jax.jit` of one step
   (`value_and_grad` of the loss, `optax.sgd(0.2).update`, `optax.apply_updates`, buffers
   donated), called from a Python loop over the steps, one network after another (the usual
   way to train one model), float64;
4. the same per-network optax step but the whole 200-step loop jitted with `lax.scan` (one
   dispatch per network; an upper bound for per-network JAX), float64;
5. a PyTorch loop of the same model, one network at a time (`torch.optim.SGD`, float64,
   one thread: with two, the tiny ops only add synchronisation);
6. PyTorch batched over the networks: parameters with a leading network axis, the forward as
   `torch.einsum`, one `backward` of the summed loss (each network's gradient is its own) and
   one `torch.optim.SGD` step for all, M networks, float64 and float32, two threads.

Rows 5-6 need torch (`pip install -e '.[bench]'`, torch==2.13.0, CPU); without it they print
"not run". Rates are network·steps per second of wall time and per CPU second of this process
(`time.process_time`, all its threads): the machine is shared, so the CPU-time rates are the
more stable comparison and the wall rates depend on the load (printed). Each row is run
`--rounds` times, interleaved; the median and the range are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
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
SW, SB, D = 1.5, 0.5, 2


def _net(n):
    return rgflow.ErfNet(width=n, d_in=D, sigma_w=SW, sigma_b=SB)


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


# --------------------------------------------------------------------------- the rows ---


def ensemble_row(n, m, dtype):
    net = _net(n)
    kw = dict(times=[0, 10, 50, STEPS], learning_rate=ETA, n_blocks=16, max_order=4,
              dtype=dtype)
    rgflow.train_ensemble(net, X, Y, PROBES, m, key=jax.random.key(0), **kw)  # compile
    calls = iter(range(1, 10**6))
    return m, lambda: rgflow.train_ensemble(net, X, Y, PROBES, m,
                                            key=jax.random.key(next(calls)), **kw)


def per_network_row(n, m, scan):
    init, apply = training_model(_net(n), "ntk")
    opt = optax.sgd(ETA)
    xj, yj = jnp.asarray(X), jnp.asarray(Y)

    def step(params, state):
        loss, g = jax.value_and_grad(lambda p: 0.5 * jnp.sum((apply(p, xj) - yj) ** 2))(params)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, loss

    if scan:
        @jax.jit
        def run(params):
            def body(c, _):
                p, s, _ = step(*c)
                return (p, s), None
            (p, _), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=STEPS)
            return p
    else:
        jstep = jax.jit(step, donate_argnums=(0, 1))

    def train(g):
        params = init(jax.random.key(0), g)
        if scan:
            return jax.block_until_ready(run(params))
        state = opt.init(params)
        for _ in range(STEPS):
            params, state, loss = jstep(params, state)
        return jax.block_until_ready(loss)

    train(0)  # compile
    return m, lambda: [train(g) for g in range(1, m + 1)]


def torch_rows(n, m_single, m_batched):
    try:
        import torch
    except ImportError:
        return None
    s0, s1 = SW / math.sqrt(D), SW / math.sqrt(n)

    def params(shape_m, dtype, seed):
        gen = torch.Generator().manual_seed(seed)
        shapes = (shape_m + (n, D), shape_m + (n,), shape_m + (n,), shape_m)
        return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]

    def single(count=m_single):
        torch.set_num_threads(1)  # tiny tensors: threads only add synchronisation
        x, y = torch.tensor(X), torch.tensor(Y)
        for seed in range(count):
            p = params((), torch.float64, seed)
            opt = torch.optim.SGD(p, lr=ETA)
            for _ in range(STEPS):
                opt.zero_grad()
                z = x @ p[0].T * s0 + SB * p[1]
                f = torch.erf(z) @ p[2] * s1 + SB * p[3]
                loss = 0.5 * torch.sum((f - y) ** 2)
                loss.backward()
                opt.step()

    def batched(dtype):
        x, y = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)

        def run():
            torch.set_num_threads(2)
            p = params((m_batched,), dtype, 0)
            opt = torch.optim.SGD(p, lr=ETA)
            for _ in range(STEPS):
                opt.zero_grad()
                z = torch.einsum("pd,mnd->mnp", x, p[0]) * s0 + SB * p[1][..., None]
                f = torch.einsum("mnp,mn->mp", torch.erf(z), p[2]) * s1 + SB * p[3][:, None]
                loss = 0.5 * torch.sum((f - y) ** 2)  # summed over networks: own gradients
                loss.backward()
                opt.step()
        return run

    single(1)  # warm-up
    b64, b32 = batched(torch.float64), batched(torch.float32)
    b64(), b32()  # warm-up
    return {"PyTorch loop, one network at a time, float64": (m_single, single),
            "PyTorch batched (einsum over networks), float64": (m_batched, b64),
            "PyTorch batched (einsum over networks), float32": (m_batched, b32)}


# ---------------------------------------------------------------------------- driver ---


BASE = "per-network optax loop (jit step, Python loop), float64  [×1]"


def measure(n, m, m_single, rounds):
    rows = {f"rgflow.train_ensemble, float64 (M = {m})": ensemble_row(n, m, None),
            f"rgflow.train_ensemble, float32 (M = {m})": ensemble_row(n, m, jnp.float32),
            BASE: per_network_row(n, m_single, scan=False),
            "per-network optax, whole loop in lax.scan, float64": per_network_row(n, m_single,
                                                                                    scan=True)}
    torch = torch_rows(n, m_single, m)
    rates = {name: {"wall": [], "cpu": []} for name in rows}
    for _ in range(rounds):  # interleaved, so that every row sees the same load
        for name, (count, fn) in (rows | (torch or {})).items():
            wall, cpu = _timed(fn)
            r = rates.setdefault(name, {"wall": [], "cpu": []})
            r["wall"].append(count * STEPS / wall)
            r["cpu"].append(count * STEPS / cpu)
    return rates, torch is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--n-nets", type=int, default=4096)
    ap.add_argument("--per-network", type=int, default=10, help="networks of the per-network rows")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"ErfNet d_in = {D}, σ_W = {SW}, σ_b = {SB}, NTK param., 3 training points, {STEPS} "
          f"steps of SGD (lr {ETA}), {jax.device_count()} CPU device(s), {os.cpu_count()} cores, "
          f"load average at start {load0[0]:.1f}")
    out = {"load_start": load0, "rounds": args.rounds, "widths": {}}
    for n in args.widths:
        rates, have_torch = measure(n, args.n_nets, args.per_network, args.rounds)
        base = {k: statistics.median(v) for k, v in rates[BASE].items()}
        print(f"\nN = {n}: network·steps/s, median of {args.rounds} (range); ratio to the "
              f"baseline by median")
        print(f"  {'row':62s} {'wall':>22s} {'×':>6s} {'CPU time':>22s} {'×':>6s}")
        for name, r in rates.items():
            cells = []
            for kind in ("wall", "cpu"):
                med = statistics.median(r[kind])
                cells.append(f"{med:9.0f} ({min(r[kind]):.0f}–{max(r[kind]):.0f})"
                             f" {med / base[kind]:6.1f}")
            print(f"  {name:62s} {cells[0]:>29s} {cells[1]:>29s}")
        if not have_torch:
            print("  PyTorch rows: not run (torch is not installed; pip install -e '.[bench]')")
        out["widths"][n] = rates
    load1 = os.getloadavg()
    print(f"\nload average at end {load1[0]:.1f} ({load1[1]:.1f} over 5 min)")
    out["load_end"] = load1
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
