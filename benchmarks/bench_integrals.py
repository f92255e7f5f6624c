"""Benchmark: all unique 4-tuples × 21 cutoffs of the cutoff-regulated vertex integral I4
(physics.md §6, §8) for d_in = 3 (4 points, 35 tuples), with the accuracy against a finer rule.

Target (issue 3): under 10 s on the CPU at 1e-8 relative accuracy.

    .venv/bin/python benchmarks/bench_integrals.py [--d-in 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import rgflow
from rgflow._integrals import QuadratureOptions, vertex_integrals

CUTOFFS = np.array([7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4, 2e4,
                    4e4, 6e4, 8e4, 1e5])
FINE = QuadratureOptions(n_s=24, n_face=16, s_ratio=1.5, kink_levels=16,
                         face_breaks=(-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d-in", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-accuracy", action="store_true", help="skip the (slow) fine-rule check")
    args = ap.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    for name in ("erf", "relu", "gauss"):
        net = rgflow.make_net(name, width=5, d_in=args.d_in)
        xs = rgflow.hms_inputs(name, args.d_in)
        t0 = time.perf_counter()
        out = vertex_integrals(net, xs, CUTOFFS, 4).block_until_ready()
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            vertex_integrals(net, xs, CUTOFFS, 4).block_until_ready()
            times.append(time.perf_counter() - t0)
        msg = (f"{name:5s} d_in={args.d_in}: {out.shape[1]} tuples x {out.shape[0]} cutoffs: "
               f"first call {first:.2f} s (incl. tracing/compile), then {min(times):.2f} s")
        if not args.no_accuracy and name != "gauss":
            ref = np.asarray(vertex_integrals(net, xs, CUTOFFS, 4, options=FINE))
            got = np.asarray(out)
            rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)
            rel_row = np.abs(got - ref) / np.abs(ref).max(axis=1, keepdims=True)
            msg += f"; vs finer rule: max elementwise rel {rel.max():.1e}, max rel to row scale {rel_row.max():.1e}"
        print(msg, flush=True)


if __name__ == "__main__":
    main()
