"""Cost per effective sample of the deformed cos-net ensemble (physics.md §12): exact reweighting
(`rgflow.sample_fields`) against NUTS over the parameters (`rgflow.sample_hmc`, BlackJAX), in one
run, at the same (N, m, Λ, V, λ). Run on demand, never in the default tests.

Effective samples: reweighting, the Kish ESS (Σw)²/Σw² of the networks; NUTS, chains × samples /
τ_int (the larger τ_int of ∫f² and of f(x)²). Each timing is the second of two identical calls
(compilation excluded); warm-up/adaptation steps count for NUTS.

    python benchmarks/bench_phi4.py [--width 50] [--coupling 2.0] [--n-nets 20000] [--json out]
"""

import argparse
import json
import time

import jax
import numpy as np

import rgflow


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=50)
    ap.add_argument("--coupling", type=float, default=2.0)
    ap.add_argument("--n-nets", type=int, default=20_000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    net = rgflow.FreeCosNet(width=a.width, d_in=1, mass=1.0, cutoff=5.0)
    xs = np.array([[-0.5], [0.0], [0.5], [1.0]])
    box = [[-1.5, 2.0]]
    out = {"width": a.width, "coupling": a.coupling, "mass": 1.0, "cutoff": 5.0, "box": box}
    for rep in range(2):
        t = time.perf_counter()
        fs = rgflow.sample_fields(net, xs, a.n_nets, key=jax.random.key(rep), box=box)
        rw = time.perf_counter() - t
    ess = fs.ess(a.coupling)
    out["reweighting"] = {"n_nets": a.n_nets, "seconds": rw, "ess": ess,
                          "ms_per_effective_sample": 1e3 * rw / ess}
    for rep in range(2):
        t = time.perf_counter()
        h = rgflow.sample_hmc(net, xs, a.coupling, key=jax.random.key(rep), box=box,
                              n_chains=a.chains, n_warmup=a.warmup, n_samples=a.samples)
        hs = time.perf_counter() - t
    tau = max(h.tau_int.values())
    eff = a.chains * a.samples / tau
    out["nuts"] = {"chains": a.chains, "samples": a.samples, "warmup": a.warmup, "seconds": hs,
                   "tau_int": tau, "effective_samples": eff, "rhat": h.rhat,
                   "divergences": int(h.divergences.sum()),
                   "mean_leapfrog_steps": float(h.n_leapfrog.mean()),
                   "ms_per_effective_sample": 1e3 * hs / eff}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
