"""Cold start of a width sweep (issue 17, item 5): rgflow in a fresh process against the naive
loop and the paper's PyTorch approach, in one run (run on demand, never in the default tests).

The sweep: 10⁴ networks × the ten HMS widths (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000), Erf,
6 inputs, the 2-, 4- and 6-point moments. Every measurement runs in its own fresh subprocess:

- **rgflow cold**: a new process with an empty (temporary) JAX compilation cache, timed from
  just before `jax.random.key` to the last moment computed: tracing, every XLA compilation and
  the sampling, what a first run costs (imports excluded, as for the other rows);
- **rgflow cached**: a second new process on the now filled persistent compilation cache;
- **rgflow warm**: the same sweep again in the cold process, best of three;
- **NumPy loop**: the paper's approach transliterated to NumPy (`bench_scale.naive_loop`);
- **PyTorch** (`--torch-python PY`, an interpreter with torch; never a dependency of rgflow):
  the paper's approach itself (`bench_scale._TORCH_SCRIPT`).

The cold process also counts its XLA compilations (jax.monitoring) and their seconds.

    python benchmarks/bench_coldstart.py [--n-nets 10000] [--dtype float64]
        [--torch-python /path/to/python] [--json out.json]
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
HMS_WIDTHS = (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000)


def _rgflow_child(n_nets: int, dtype: str, warm_repeats: int) -> dict:
    import jax
    from jax import monitoring

    compiles = {"count": 0, "seconds": 0.0, "programs": []}

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles["count"] += 1
            compiles["seconds"] += duration
            compiles["programs"].append([kw.get("fun_name", "?"), round(duration, 3)])

    monitoring.register_event_duration_secs_listener(listener)
    import rgflow

    xs = rgflow.hms_inputs("erf", 1)

    def sweep():
        res = rgflow.measure_widths(rgflow.ErfNet(width=1), xs, n_nets, HMS_WIDTHS,
                                    key=jax.random.key(0), dtype=dtype)
        for m in res.values():
            for order in (2, 4, 6):
                m.moment(order).block_until_ready()

    t0 = time.perf_counter()
    c0 = time.process_time()
    sweep()
    cold = time.perf_counter() - t0
    cold_cpu = time.process_time() - c0
    snapshot = dict(compiles, programs=list(compiles["programs"]))
    warm = []
    for _ in range(warm_repeats):
        t0 = time.perf_counter()
        sweep()
        warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "cold_cpu_s": cold_cpu, "warm_s": min(warm) if warm else None,
            "compiles": snapshot["count"], "compile_s": snapshot["seconds"],
            "programs": snapshot["programs"]}


def _numpy_child(n_nets: int) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_scale import naive_loop

    import rgflow

    xs = rgflow.hms_inputs("erf", 1)
    t0 = time.perf_counter()
    for w in HMS_WIDTHS:
        naive_loop(w, xs, n_nets)
    return {"seconds": time.perf_counter() - t0}


def _child(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-nets", type=int, default=10_000)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--torch-python", default=None,
                   help="an interpreter with PyTorch: also time the paper's own approach")
    p.add_argument("--warm-repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child == "rgflow":
        print(json.dumps(_rgflow_child(a.n_nets, a.dtype, a.warm_repeats)))
        return
    if a.child == "numpy":
        print(json.dumps(_numpy_child(a.n_nets)))
        return

    res = {"n_nets": a.n_nets, "widths": HMS_WIDTHS, "dtype": a.dtype, "load_before": _load()}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(base_env, JAX_COMPILATION_CACHE_DIR=cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        args = ["--child", "rgflow", "--n-nets", str(a.n_nets), "--dtype", a.dtype]
        cold = _child(args + ["--warm-repeats", str(a.warm_repeats)], env)
        cached = _child(args + ["--warm-repeats", "0"], env)
    res["rgflow"] = {"cold_s": cold["cold_s"], "cold_cpu_s": cold["cold_cpu_s"],
                     "warm_s": cold["warm_s"], "cached_s": cached["cold_s"],
                     "compiles": cold["compiles"], "compile_s": cold["compile_s"],
                     "programs": cold["programs"]}
    res["numpy_s"] = _child(["--child", "numpy", "--n-nets", str(a.n_nets)], base_env)["seconds"]
    if a.torch_python:
        sys.path.insert(0, str(HERE))
        from bench_scale import naive_torch

        t = naive_torch(a.torch_python, a.n_nets)
        res["torch_s"], res["torch_version"] = t["seconds"], t["torch"]
    res["load_after"] = _load()

    r = res["rgflow"]
    rows = [("naive NumPy loop", res["numpy_s"])]
    if "torch_s" in res:
        rows.append((f"the paper's approach, PyTorch {res['torch_version']}", res["torch_s"]))
    rows += [(f"rgflow {a.dtype}, cold (new process, empty compilation cache)", r["cold_s"]),
             ("rgflow, new process, filled persistent compilation cache", r["cached_s"]),
             ("rgflow, warm (same process, best of "
              f"{a.warm_repeats})", r["warm_s"])]
    refs = [("NumPy", res["numpy_s"])] + ([("PyTorch", res["torch_s"])] if "torch_s" in res
                                         else [])
    print(f"\n{a.n_nets} networks x {len(HMS_WIDTHS)} widths, 6 inputs, moments 2/4/6; "
          f"load average before {res['load_before']}, after {res['load_after']}")
    head = f"{'':62s} {'seconds':>8s}" + "".join(f" {'x vs ' + n:>12s}" for n, _ in refs)
    print(head)
    for name, t in rows:
        print(f"{name:62s} {t:8.2f}" + "".join(f" {ref / t:12.1f}" for _, ref in refs))
    print(f"cold run: {r['compiles']} XLA compilations, {r['compile_s']:.2f} s compiling "
          f"(wall), {r['cold_cpu_s']:.2f} CPU s in all")
    for name, ref in refs:
        res[f"ratio_cold_vs_{name.lower()}"] = ref / r["cold_s"]
        res[f"ratio_warm_vs_{name.lower()}"] = ref / r["warm_s"]
        res[f"ratio_cached_vs_{name.lower()}"] = ref / r["cached_s"]
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
