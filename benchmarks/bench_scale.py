"""Scale benchmarks of issue 7 (run on demand, never in the default tests).

    python benchmarks/bench_scale.py naive [--torch-python PY]  # rgflow vs the naive loop
    python benchmarks/bench_scale.py memory     # peak RSS against n_nets (fresh process each)
    python benchmarks/bench_scale.py variance   # variance reduction at equal cost, 5σ reach
    python benchmarks/bench_scale.py all --json out.json

All ratios are taken within one run (the CPU may be shared: absolute times are noisy).
"""

import argparse
import json
import resource
import subprocess
import sys
import time

HMS_WIDTHS = (2, 3, 4, 5, 10, 20, 50, 100, 500, 1000)


# ------------------------------------------------------------------------------- naive ---


def naive_loop(width: int, xs, n_nets: int, seed: int = 0):
    """The approach of the paper's code, in NumPy: one network at a time, its outputs appended to
    a growing array (O(M²) copying), then the moments from full n^n outer products."""
    import numpy as np
    from scipy.special import erf

    rng = np.random.default_rng(seed)
    d = xs.shape[1]
    outs = np.empty((0, xs.shape[0]))
    for _ in range(n_nets):
        w0 = rng.normal(0.0, 1.0 / np.sqrt(d), (width, d))
        b0 = rng.normal(0.0, 1.0, width)
        w1 = rng.normal(0.0, 1.0 / np.sqrt(width), width)
        b1 = rng.normal(0.0, 1.0)
        f = w1 @ erf(xs @ w0.T + b0).T + b1
        outs = np.concatenate([outs, f[None]])  # grows the output array
    g2 = np.einsum("ia,ib->ab", outs, outs) / n_nets
    g4 = np.einsum("ia,ib,ic,id->abcd", outs, outs, outs, outs, optimize=True) / n_nets
    g6 = np.einsum("ia,ib,ic,id,ie,if->abcdef", outs, outs, outs, outs, outs, outs,
                   optimize=True) / n_nets
    return g2, g4, g6


# The paper's approach verbatim in spirit, for an interpreter that has PyTorch (not a dependency of
# rgflow: pass --torch-python /path/to/python). One nn.Sequential built and initialised per
# network, erf through SciPy, outputs appended with torch.cat, n-point functions as the mean of the
# materialised (M, P, ..., P) broadcast product.
_TORCH_SCRIPT = r"""
import json, math, sys, time
import torch
from scipy import special
from torch import nn

class Erf(nn.Module):
    def forward(self, x):
        return torch.tensor(special.erf(x.detach().numpy()))

def init(m):
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features))
        nn.init.normal_(m.bias, 0.0, 1.0)

def n_point(f, n):
    out = None
    for k in range(n):
        shape = [f.shape[0]] + [1] * n
        shape[1 + k] = f.shape[1]
        out = f.view(shape) if out is None else out * f.view(shape)
    return out.mean(0)

n_nets, widths = int(sys.argv[1]), json.loads(sys.argv[2])
xs = torch.tensor([[-1.0], [-0.6], [-0.2], [0.2], [0.6], [1.0]])
t0 = time.perf_counter()
with torch.no_grad():
    for width in widths:
        outs = None
        for _ in range(n_nets):
            model = nn.Sequential(nn.Linear(1, width), Erf(), nn.Linear(width, 1))
            model.apply(init)
            f = model(xs).view(1, 6)
            outs = f if outs is None else torch.cat((outs, f))
        moments = [n_point(outs, n) for n in (2, 4, 6)]
print(json.dumps({"seconds": time.perf_counter() - t0, "torch": torch.__version__}))
"""


def naive_torch(python: str, n_nets: int) -> dict:
    out = subprocess.run([python, "-c", _TORCH_SCRIPT, str(n_nets), json.dumps(HMS_WIDTHS)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rng_floor(n_nets: int, dtype: str) -> float:
    """Seconds to draw the per-network normals of the ten widths alone (same keys, same counts,
    warm): the floor of any sampler built on `jax.random` threefry."""
    import jax
    import jax.numpy as jnp

    from rgflow._nets import standard_normals

    key = jax.random.key(0)

    def draw(idx, w):  # in batches of ~10⁶ numbers, like the sampler (cache-sized working set)
        one = jax.vmap(lambda g: standard_normals(jax.random.fold_in(key, g), 3 * w + 1, dtype))
        return jnp.sum(jax.lax.map(lambda i: jnp.sum(one(i)), idx.reshape(-1, _batch(w))))

    fns = {w: jax.jit(lambda idx, w=w: draw(idx, w)) for w in HMS_WIDTHS}
    idx = jnp.arange(n_nets, dtype=jnp.uint32)
    for f in fns.values():
        f(idx).block_until_ready()
    t0 = time.perf_counter()
    for f in fns.values():
        f(idx).block_until_ready()
    return time.perf_counter() - t0


def _batch(width: int) -> int:
    """A divisor of 10⁴ near 2^20 / (3 width) networks."""
    target = max(1, 2**20 // (3 * width))
    return max(d for d in (1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 80, 100, 125, 200, 250, 400,
                           500, 625, 1000, 1250, 2000, 2500, 5000, 10000) if d <= target)


def bench_naive(n_nets: int = 10_000, torch_python: str | None = None) -> dict:
    import jax

    import rgflow

    xs = rgflow.hms_inputs("erf", 1)
    t0 = time.perf_counter()
    for w in HMS_WIDTHS:
        naive_loop(w, xs, n_nets)
    t_naive = time.perf_counter() - t0
    out = {"n_nets": n_nets, "widths": HMS_WIDTHS, "naive_s": t_naive}
    print(f"naive NumPy loop, {n_nets} nets x 10 widths: {t_naive:.1f} s", flush=True)
    if torch_python:
        lit = naive_torch(torch_python, n_nets)
        out["naive_torch_s"], out["torch_version"] = lit["seconds"], lit["torch"]
        print(f"the paper's PyTorch approach (torch {lit['torch']}): {lit['seconds']:.1f} s",
              flush=True)

    for dtype in ("float64", "float32"):
        def ours(dtype=dtype):
            res = rgflow.measure_widths(rgflow.ErfNet(width=1), xs, n_nets, HMS_WIDTHS,
                                        key=jax.random.key(0), dtype=dtype)
            for m in res.values():
                m.moment(6).block_until_ready()

        t0 = time.perf_counter()
        ours()  # cold: includes one compilation per width
        t_cold = time.perf_counter() - t0
        warm = []
        for _ in range(3):  # warm: compiled programs reused; best of three
            t0 = time.perf_counter()
            ours()
            warm.append(time.perf_counter() - t0)
        t_warm = min(warm)
        t_rng = _rng_floor(n_nets, dtype)
        row = {"rgflow_cold_s": t_cold, "rgflow_warm_s": t_warm, "rng_floor_s": t_rng,
               "ratio_cold": t_naive / t_cold, "ratio_warm": t_naive / t_warm,
               "ratio_ceiling": t_naive / t_rng}
        if dtype == "float64":  # a fresh process with the persistent compilation cache filled
            import os
            import tempfile

            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache,
                           JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                           JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
                cmd = [sys.executable, __file__, "_ours", "--n", str(n_nets)]
                subprocess.run(cmd, env=env, capture_output=True, check=True)
                res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                row["rgflow_cached_s"] = json.loads(res.stdout.strip().splitlines()[-1])["seconds"]
                row["ratio_cached"] = t_naive / row["rgflow_cached_s"]
        out[dtype] = row
        extra = (f", new process + persistent compilation cache {row['rgflow_cached_s']:.2f} s "
                 f"(x{row['ratio_cached']:.0f})" if "rgflow_cached_s" in row else "")
        print(f"rgflow {dtype}: cold (with compile) {t_cold:.2f} s (x{row['ratio_cold']:.0f})"
              f"{extra}, warm {t_warm:.3f} s (x{row['ratio_warm']:.0f}); the threefry normals "
              f"alone {t_rng:.3f} s (ceiling x{row['ratio_ceiling']:.0f})", flush=True)
    return out


def _ours_child(n_nets: int) -> dict:
    import jax

    import rgflow

    xs = rgflow.hms_inputs("erf", 1)
    t0 = time.perf_counter()
    res = rgflow.measure_widths(rgflow.ErfNet(width=1), xs, n_nets, HMS_WIDTHS,
                                key=jax.random.key(0))
    for m in res.values():
        m.moment(6).block_until_ready()
    return {"seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------ memory ---


def _memory_child(n_nets: int, width: int) -> dict:
    import jax

    import rgflow

    xs = rgflow.hms_inputs("erf", 1)
    t0 = time.perf_counter()
    m = rgflow.measure(rgflow.ErfNet(width=width), xs, n_nets, key=jax.random.key(0))
    m.connected(6).block_until_ready()
    return {"n_nets": n_nets, "width": width, "seconds": time.perf_counter() - t0,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_memory(sizes=(10**5, 10**6, 10**7, 10**8), width: int = 2) -> list:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "_memory", "--n", str(n), "--width",
                              str(width)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"memory: n_nets={n:>11,d} N={width}: peak RSS {row['peak_rss_mib']:6.0f} MiB, "
              f"{row['seconds']:7.1f} s", flush=True)
    return rows


# ---------------------------------------------------------------------------- variance ---


def _timed(fn, *args, **kw):
    fn(*args, **kw)  # compile (same shapes)
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def bench_variance(widths=(5, 20, 100, 1000), budget_s: float = 600.0) -> dict:
    """Per-tuple standard errors × cost of brute force, the Rao–Blackwellised (conditional) and
    the single-neuron estimators; variance-reduction factor at equal cost =
    (err_brute² t_brute) / (err² t); the 5σ reach in `budget_s` seconds by the measured costs."""
    import jax
    import numpy as np

    import rgflow
    from rgflow._variance import measure_conditional, measure_neurons

    xs = rgflow.hms_inputs("erf", 1)
    key = jax.random.key(5)
    n_neur = 2_000_000
    neur, t_neur = _timed(measure_neurons, rgflow.ErfNet(width=1), xs, n_neur, key=key)
    rows = []
    for w in widths:
        net = rgflow.ErfNet(width=w)
        m_nets = max(2_000, min(100_000, 2 * 10**7 // w))
        brute, t_b = _timed(rgflow.measure, net, xs, m_nets, key=key)
        cond, t_c = _timed(measure_conditional, net, xs, m_nets, key=key)
        row = {"width": w, "n_nets": m_nets, "brute_s": t_b, "conditional_s": t_c,
               "neurons": n_neur, "neuron_s": t_neur}
        for order in (4, 6):
            exact = np.abs(np.asarray(rgflow.exact_connected(net, xs, order, full=False)))
            eb = np.asarray(brute.connected_stderr(order, full=False))
            ec = np.asarray(cond.connected_stderr(order, full=False))
            es = np.asarray(neur.connected_stderr(order, width=w, full=False))
            row[f"vr{order}_conditional"] = float(np.median(eb**2 * t_b / (ec**2 * t_c)))
            row[f"vr{order}_neuron"] = float(np.median(eb**2 * t_b / (es**2 * t_neur)))
            # z of the best-resolved tuple per √second, → z reached in budget_s
            for name, err, t in (("brute", eb, t_b), ("conditional", ec, t_c),
                                 ("neuron", es, t_neur)):
                row[f"z{order}_{name}_budget"] = float(np.max(exact / err) * np.sqrt(budget_s / t))
        rows.append(row)
        print(f"N={w:5d}: 4-pt VR at equal cost: conditional x{row['vr4_conditional']:.3g}, "
              f"single-neuron x{row['vr4_neuron']:.3g}; 6-pt: x{row['vr6_conditional']:.3g}, "
              f"x{row['vr6_neuron']:.3g};  4-pt z in {budget_s:.0f} s: brute "
              f"{row['z4_brute_budget']:.3g}, conditional {row['z4_conditional_budget']:.3g}, "
              f"neuron {row['z4_neuron_budget']:.3g}", flush=True)
    # 5σ reach: z(N) in a fixed time scales as N^{-3/2} (brute: signal 1/N, cost ∝ N),
    # N^{-1/2} (conditional: per-network relative error N-independent, cost ∝ N), N^0 (neuron).
    big = rows[-1]
    reach = {
        "brute": big["width"] * (big["z4_brute_budget"] / 5) ** (2 / 3),
        "conditional": big["width"] * (big["z4_conditional_budget"] / 5) ** 2,
        "neuron": float("inf") if big["z4_neuron_budget"] > 5 else 0.0,
        "neuron_seconds_for_5sigma": budget_s * (5 / big["z4_neuron_budget"]) ** 2,
    }
    print(f"largest N with the 4-pt signal at 5σ in {budget_s:.0f} s (from N={big['width']}): "
          f"brute ~{reach['brute']:.3g}, conditional ~{reach['conditional']:.3g}, "
          f"single-neuron: every N ({reach['neuron_seconds_for_5sigma']:.2g} s suffice)",
          flush=True)
    return {"rows": rows, "reach_5sigma": reach}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("what", choices=("naive", "memory", "variance", "all", "_memory", "_ours"))
    p.add_argument("--json", default=None)
    p.add_argument("--n", type=int, default=10**5)
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--max-nets", type=int, default=10**8)
    p.add_argument("--torch-python", default=None,
                   help="an interpreter with PyTorch: also time the paper's own approach")
    a = p.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    if a.what == "_ours":
        print(json.dumps(_ours_child(a.n)))
        return
    if a.what == "_memory":
        print(json.dumps(_memory_child(a.n, a.width)))
        return
    res = {"device": str(jax.devices()[0]), "n_devices": len(jax.devices())}
    if a.what in ("naive", "all"):
        res["naive"] = bench_naive(torch_python=a.torch_python)
    if a.what in ("memory", "all"):
        sizes = tuple(n for n in (10**5, 10**6, 10**7, 10**8) if n <= a.max_nets)
        res["memory"] = bench_memory(sizes, a.width)
    if a.what in ("variance", "all"):
        res["variance"] = bench_variance()
    if a.json:
        from rgflow._io import save_json

        save_json(a.json, res)


if __name__ == "__main__":
    main()
