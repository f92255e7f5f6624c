"""One process against two (issue 27, item 4): `rgflow.measure` of 10⁶ networks on this machine's
cores, plus a *model* (not a measurement) of the scaling to 64 hosts.

Rows, each in fresh processes, side by side in one run (Erf, width N, P input points, orders
2/4/6, `n_blocks` jackknife blocks, seed 0):

- **1 process**: plain `rgflow.measure` (no jax.distributed), XLA's default threading;
- **1 process, 2 devices**: the same with `--xla_force_host_platform_device_count=2` (the
  single-host device sharding of `rgflow._sharding`, for comparison);
- **2 processes**: `jax.distributed` (gloo), launched by `rgflow.app._launch.launch` as
  `rgflow measure --processes 2` does; every process times its own blocks ("compute"), the wait
  for the slower process, and the one all-gather of the per-block sums ("reduction").

Every row runs `measure` twice in its process and reports the second (warm) call; the first
(cold: tracing, XLA compilation) is reported too. The 2-process result is checked bit for bit
against the 1-process one.

**Scaling model** (printed as a table, labelled as a model): K hosts, one process each, M
networks; time(K) = M / (K r) + t_red(K), with r the measured per-process throughput of the
2-process row (networks/s per process, one core each) and t_red(K) = (K − 1) t_red(2): a ring
all-gather has K − 1 latency-bound steps (the payload, B blocks × tuples × 16 bytes, is a few
hundred kB at most); the measured t_red(2) is taken as the latency of one step (pessimistic:
no bandwidth term is separated). `n_blocks` must be at least K (a block is a process's unit of
work), so the model uses B = max(n_blocks, K). Start-up (imports, `jax.distributed.initialize`)
and compilation run concurrently on every host and are left out of the model.

    python benchmarks/bench_processes.py [--n-nets 1000000] [--width 10] [--points 3]
        [--n-blocks 32] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(args) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import rgflow
    from rgflow import _distributed

    if "RGFLOW_PROCESS_ID" in os.environ:
        rgflow.initialize_distributed()
    xs = np.linspace(-1.0, 1.0, args.points)[:, None]
    net = rgflow.ErfNet(width=args.width)
    times = []
    for _ in range(2):
        _distributed.STATS.clear()
        t0 = time.perf_counter()
        m = rgflow.measure(net, xs, args.n_nets, key=jax.random.key(0), n_blocks=args.n_blocks)
        m.moment(6).block_until_ready()
        times.append(dict(total=time.perf_counter() - t0, **_distributed.STATS))
    out = Path(args.child_out)
    me = jax.process_index()
    rec = {"process": me, "processes": jax.process_count(), "cold": times[0], "warm": times[1],
           "devices": len(jax.local_devices())}
    out.with_name(f"{out.stem}.p{me}.json").write_text(json.dumps(rec))
    if me == 0:
        np.savez(out, **{f"s{n}": np.asarray(m.block_sums[n]) for n in m.orders},
                 **{f"q{n}": np.asarray(m.sum_squares[n]) for n in m.orders})


def _run(args, tmp: Path, name: str, processes: int, xla_flags: str | None = None) -> dict:
    from rgflow.app._launch import launch

    out = tmp / f"{name}.npz"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child-out", str(out),
            "--n-nets", str(args.n_nets), "--width", str(args.width), "--points",
            str(args.points), "--n-blocks", str(args.n_blocks)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGFLOW_")}
    env |= {"RGFLOW_XLA_CACHE": "off", "JAX_PLATFORMS": "cpu"}
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    t0 = time.perf_counter()
    if processes == 1:
        subprocess.run(argv, env=env, check=True)
    else:
        launch(argv, processes, env=env)
    wall = time.perf_counter() - t0
    recs = [json.loads((tmp / f"{name}.p{r}.json").read_text()) for r in range(processes)]
    return {"name": name, "processes": processes, "wall_with_startup": wall, "per_process": recs,
            "result": str(out)}


def _model_table(m_total: float, rate: float, t_red2: float, n_blocks: int) -> list[dict]:
    rows = []
    t1 = m_total / rate
    for k in (1, 2, 4, 8, 16, 32, 64):
        compute = m_total / (k * rate)
        red = (k - 1) * t_red2
        rows.append({"hosts": k, "blocks": max(n_blocks, k), "compute_s": compute,
                     "reduction_s": red, "total_s": compute + red,
                     "speedup": t1 / (compute + red), "efficiency": t1 / (compute + red) / k})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-nets", type=int, default=1_000_000)
    ap.add_argument("--width", type=int, default=10)
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--n-blocks", type=int, default=32)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_out:
        return _child(args)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [_run(args, tmp, "one", 1),
                _run(args, tmp, "one_2dev", 1, "--xla_force_host_platform_device_count=2"),
                _run(args, tmp, "two", 2)]
        a, b = np.load(tmp / "one.npz"), np.load(tmp / "two.npz")
        identical = all(np.array_equal(a[k], b[k]) for k in a)
    print(f"Erf N={args.width}, P={args.points}, M={args.n_nets:.0e}, B={args.n_blocks}, "
          f"orders 2/4/6; cores: {len(os.sched_getaffinity(0))}")
    print(f"{'row':<22}{'cold s':>9}{'warm s':>9}{'Mnets/s':>9}  reduction (warm)")
    for r in rows:
        warm = max(p["warm"]["total"] for p in r["per_process"])
        cold = max(p["cold"]["total"] for p in r["per_process"])
        r["warm_s"], r["cold_s"] = warm, cold
        red = ""
        if r["processes"] > 1:
            pw = [p["warm"] for p in r["per_process"]]
            red = (f"all-gather {1e3 * max(w['allgather_s'] for w in pw):.1f} ms; wait "
                   + ", ".join(f"{1e3 * w['wait_s']:.0f}" for w in pw) + " ms; compute "
                   + ", ".join(f"{w['compute_s']:.2f}" for w in pw) + " s")
        print(f"{r['name']:<22}{cold:9.2f}{warm:9.2f}{args.n_nets / warm / 1e6:9.3f}  {red}")
    one, two = rows[0], rows[2]
    ratio = one["warm_s"] / two["warm_s"]
    print(f"speed-up 2 processes / 1 process (warm): {ratio:.2f}x; 2-process result identical "
          f"to 1-process: {identical}")
    procs = two["per_process"]
    rate = np.mean([args.n_nets / 2 / p["warm"]["compute_s"] for p in procs])
    t_red2 = max(p["warm"]["allgather_s"] for p in procs)
    out = {"config": vars(args), "rows": rows, "ratio": ratio, "identical": identical,
           "rate_per_process": rate, "reduction_2_s": t_red2}
    for m_total in (1e6, 1e9):
        table = _model_table(m_total, rate, t_red2, args.n_blocks)
        out[f"model_{m_total:.0e}"] = table
        print(f"\nMODEL (not a measurement): M = {m_total:.0e} networks, r = {rate:.3g} "
              f"networks/s per host, t_red(K) = (K−1) × {1e3 * t_red2:.1f} ms")
        print(f"{'hosts':>6}{'blocks':>8}{'compute s':>12}{'reduce s':>10}{'total s':>11}"
              f"{'speed-up':>10}{'effic.':>8}")
        for row in table:
            print(f"{row['hosts']:6d}{row['blocks']:8d}{row['compute_s']:12.3g}"
                  f"{row['reduction_s']:10.3g}{row['total_s']:11.3g}{row['speedup']:10.1f}"
                  f"{row['efficiency']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
