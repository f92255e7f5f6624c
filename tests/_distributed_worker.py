"""One process of a multi-process test run (tests/test_distributed.py): joins the run from the
RGFLOW_* environment variables, runs the Monte Carlo functions, and (process 0) saves the
results. `argv`: output .npz, then a mode: measure (then a mismatched call) | all | train."""

import sys

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import rgflow  # noqa: E402
from rgflow._io import save_npz  # noqa: E402

rgflow.initialize_distributed()
out, mode = sys.argv[1], sys.argv[2]
key = jax.random.key(7)
xs = np.array([[-0.5], [0.2], [0.9]])
net = rgflow.ErfNet(width=3)
arrays = {}
if mode == "train":  # ensemble training (rgflow.train_ensemble), then nothing else
    tm = rgflow.train_ensemble(net, np.array([[-1.0], [0.5]]), np.array([0.3, -0.2]), xs, 96,
                               key=key, times=(0, 3), learning_rate=0.1, n_blocks=6,
                               batch_size=8, checkpoint=sys.argv[3])
    for n in (1, 2, 4):
        arrays[f"train_sums_{n}"] = np.asarray(tm.block_sums[n])
        arrays[f"train_squares_{n}"] = np.asarray(tm.sum_squares[n])
    if jax.process_index() == 0:
        save_npz(out, **arrays)
    sys.exit(0)
m = rgflow.measure(net, xs, 3000, key=key)
for n in m.orders:
    arrays[f"block_sums_{n}"] = np.asarray(m.block_sums[n])
    arrays[f"sum_squares_{n}"] = np.asarray(m.sum_squares[n])
    arrays[f"connected_{n}"] = np.asarray(m.connected(n))
    arrays[f"connected_stderr_{n}"] = np.asarray(m.connected_stderr(n))
if mode == "measure":  # then a call whose arguments differ between the processes
    try:
        rgflow.measure(net, xs, 3000 + jax.process_index(), key=key)
        arrays["mismatch"] = np.asarray("not refused")
    except ValueError as e:
        arrays["mismatch"] = np.asarray(str(e))
if mode == "all":
    ws = rgflow.measure_widths(net, xs, 2000, [2, 5], key=key, orders=(2, 4), n_blocks=8)
    for w, mw in ws.items():
        arrays[f"widths_{w}"] = np.asarray(mw.block_sums[4])
    ne = rgflow.measure_neurons(net, xs, 3000, key=key, orders=(2, 4), n_blocks=8)
    arrays["neurons"] = np.asarray(ne.block_sums[4])
    ce = rgflow.measure_conditional(net, xs, 500, key=key, n_blocks=4)
    arrays["conditional"] = np.asarray(ce.block_sums[2])
if jax.process_index() == 0:
    save_npz(out, **arrays)
print(f"process {jax.process_index()} of {jax.process_count()} done", flush=True)
