"""Deep networks through `rgflow.measure` (physics.md §11).

    python benchmarks/bench_deep.py              # both parts, ~1–2 minutes
    python benchmarks/bench_deep.py throughput   # networks/s, deep vs one layer of equal size
    python benchmarks/bench_deep.py memory       # peak RSS at 10⁴, 10⁵, 10⁶ networks

**Throughput**: `measure` of a DeepNet(relu, n = 32, L = 4) against a one-layer ReLU net with the
same number of parameters per network (N(d_in + 2) + 1 = n(d_in + 1) + (L − 1)(n² + n) + n + 1),
on the 6 HMS ReLU inputs, orders 2 and 4, float64, after a warm-up run of the same size (so
compilation is excluded).

**Memory**: a fresh process per ensemble size measures DeepNet(relu, n = 8, L = 3) and reports
`ru_maxrss`; the streaming accumulation keeps one batch alive, so the peak must not grow with
n_nets.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import jax
import numpy as np

import rgflow


def _time_measure(net, xs, n_nets, key):
    rgflow.measure(net, xs, n_nets, key=key, orders=(4,))  # compile
    t0 = time.perf_counter()
    m = rgflow.measure(net, xs, n_nets, key=jax.random.fold_in(key, 1), orders=(4,))
    jax.block_until_ready(m.block_sums[4])
    return time.perf_counter() - t0


def throughput(n_nets: int = 20_000):
    xs = rgflow.hms_inputs("relu")
    key = jax.random.key(0)
    deep = rgflow.DeepNet(activation="relu", width=32, depth=4)
    n_par = deep.n_params
    width = (n_par - 1) // 3  # one layer, d_in = 1: 3N + 1 parameters
    one = rgflow.ReLUNet(width=width)
    rows = []
    for label, net, params in (("DeepNet(relu, n=32, L=4)", deep, n_par),
                               (f"ReLUNet(N={width})", one, 3 * width + 1)):
        t = _time_measure(net, xs, n_nets, key)
        rows.append({"net": label, "params_per_net": params, "n_nets": n_nets, "seconds": t,
                     "nets_per_s": n_nets / t, "normals_per_s": n_nets * params / t})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _memory_child(n_nets: int):
    net = rgflow.DeepNet(activation="relu", width=8, depth=3, sigma_b=0.3)
    xs = rgflow.hms_inputs("relu")
    t0 = time.perf_counter()
    m = rgflow.measure(net, xs, n_nets, key=jax.random.key(1), orders=(4,))
    np.asarray(m.connected(4))
    print(json.dumps({"n_nets": n_nets, "seconds": time.perf_counter() - t0,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def memory(sizes=(10_000, 100_000, 1_000_000)):
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "_memory", str(n)], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "_memory":
        _memory_child(int(sys.argv[2]))
    else:
        if what in ("all", "throughput"):
            throughput()
        if what in ("all", "memory"):
            memory()
