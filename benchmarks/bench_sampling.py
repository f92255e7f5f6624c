"""Sampling benchmarks (issue: foundation; run on demand, never in the default tests).

1. The HMS sweep: n_nets networks × the ten widths × 6 inputs, orders 2/4/6: wall time and
   peak resident memory (each size in a fresh subprocess, so the peak is that run's own).
2. Throughput: `measure` (sampling + accumulation) against the bare activation evaluated on an
   array of the same number of (network, neuron, input) elements, same dtype, same run.

   Also the time of drawing the per-network normals alone (the threefry floor), and the same
   for more inputs per network (`--points 6,24,96`; beyond the 6 HMS inputs: evenly spaced on
   [−1, 1], orders 2/4 at P <= 24 and 2 beyond), where each draw serves more activations.

    python benchmarks/bench_sampling.py [--n-nets 1000000] [--net erf] [--dtype float64]
        [--points 6] [--skip-sweep] [--skip-throughput] [--json out.json]

Prefix with XLA_FLAGS=--xla_force_host_platform_device_count=2 to use both CPU cores as two
devices (rgflow.measure spreads its blocks over all devices).
"""

import argparse
import json
import resource
import subprocess
import sys
import time

HMS_WIDTHS = (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000)


def sweep(net_name: str, n_nets: int, widths, dtype: str = "float64") -> dict:
    import jax

    import rgflow

    xs = rgflow.hms_inputs(net_name, 1)
    key = jax.random.key(0)
    # compile once per width outside the timing (a tiny run with the same shapes is not the same
    # program, so time the whole thing including compilation and report both)
    t0 = time.perf_counter()
    per_width = {}
    for w in widths:
        t1 = time.perf_counter()
        m = rgflow.measure(rgflow.make_net(net_name, width=w), xs, n_nets, key=key, dtype=dtype)
        m.moment(6).block_until_ready()
        per_width[w] = time.perf_counter() - t1
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    return {"net": net_name, "n_nets": n_nets, "dtype": dtype,
            "devices": len(jax.devices()), "total_s": total, "per_width_s": per_width,
            "peak_rss_mib": peak}


def throughput(net_name: str, width: int, n_nets: int, dtype: str = "float64",
               points: int = 6) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import rgflow
    from rgflow._nets import standard_normals

    xs = rgflow.hms_inputs(net_name, 1) if points == 6 else np.linspace(-1, 1, points)[:, None]
    orders = (2, 4, 6) if points <= 6 else (2, 4) if points <= 24 else (2,)
    net = rgflow.make_net(net_name, width=width)
    key = jax.random.key(1)
    rgflow.measure(net, xs, n_nets, key=key, dtype=dtype, orders=orders)  # compile
    t_measure = float("inf")
    for _ in range(3):  # best of three (the machine may be shared)
        t0 = time.perf_counter()
        m = rgflow.measure(net, xs, n_nets, key=key, dtype=dtype, orders=orders)
        m.moment(2).block_until_ready()
        t_measure = min(t_measure, time.perf_counter() - t0)
    # the bare activation on the same number of elements, in blocks of the same working size
    elems = n_nets * width * xs.shape[0]
    chunk = 2**22
    z = jax.random.normal(jax.random.key(2), (chunk,), dtype)
    act = jax.jit(lambda z: jnp.sum(net.phi(z[:, None], jnp.zeros((1, 1)))))
    act(z).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(max(1, elems // chunk)):
        act(z).block_until_ready()
    t_act = time.perf_counter() - t0
    # the RNG floor: the per-network normals alone (same keys, same count), summed
    n_normals = width * (net.d_in + 2) + 1
    per = max(1, chunk // (8 * n_normals))
    draw = jax.jit(lambda idx: jnp.sum(jax.vmap(lambda g: standard_normals(
        jax.random.fold_in(key, g), n_normals, dtype))(idx)))
    idx = jnp.arange(per, dtype=jnp.uint32)
    draw(idx).block_until_ready()
    t0 = time.perf_counter()
    for k in range(max(1, n_nets // per)):
        draw(idx + k * per).block_until_ready()
    t_rng = time.perf_counter() - t0
    return {"net": net_name, "width": width, "n_nets": n_nets, "dtype": dtype, "points": points,
            "orders": orders, "elements": elems,
            "rng_only_s": t_rng, "rng_ratio": t_rng / t_act,
            "measure_s": t_measure, "bare_activation_s": t_act, "ratio": t_measure / t_act}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-nets", type=int, default=1_000_000)
    p.add_argument("--net", default="erf")
    p.add_argument("--json", default=None)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--points", default="6", help="comma-separated input counts for throughput")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    if a.child == "sweep":
        print(json.dumps(sweep(a.net, a.n_nets, HMS_WIDTHS, a.dtype)))
        return
    results = {"device": str(jax.devices()[0]), "sweeps": [], "throughput": []}
    for n in () if a.skip_sweep else sorted({a.n_nets // 10, a.n_nets}):
        out = subprocess.run([sys.executable, __file__, "--child", "sweep", "--net", a.net,
                              "--n-nets", str(n), "--dtype", a.dtype],
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results["sweeps"].append(res)
        print(f"sweep {a.net} {a.dtype} n_nets={n:>9,d} x 10 widths on {res['devices']} device(s): "
              f"{res['total_s']:7.1f} s, "
              f"peak RSS {res['peak_rss_mib']:7.0f} MiB", flush=True)
    cases = [(w, int(pt)) for pt in a.points.split(",") for w in (100, 1000)]
    for w, pt in () if a.skip_throughput else cases:
        r = throughput(a.net, w, 100_000, a.dtype, pt)
        results["throughput"].append(r)
        print(f"throughput {a.net} {a.dtype} N={w} P={pt}: measure {r['measure_s']:.2f} s, bare activation "
              f"{r['bare_activation_s']:.2f} s on {r['elements']:.1e} elements: ratio "
              f"{r['ratio']:.2f}; the normals alone {r['rng_only_s']:.2f} s (ratio {r['rng_ratio']:.2f})",
              flush=True)
    if a.json:
        from rgflow._io import save_json

        save_json(a.json, results)


if __name__ == "__main__":
    main()
