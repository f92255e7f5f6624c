"""Sharded measurement (issue 7): several forced CPU devices give the single-device numbers.

The device count must be fixed before jax is imported, so the multi-device runs happen in a
subprocess started with `XLA_FLAGS=--xla_force_host_platform_device_count=4`.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import rgflow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    import rgflow
    assert len(jax.devices()) == 4, jax.devices()
    net = rgflow.{net}
    xs = rgflow.hms_inputs("{name}", 1)
    key = jax.random.key({seed})
    out = {{}}
    for devices in (1, 4):
        m = rgflow.measure(net, xs, {n_nets}, key=key, n_blocks={n_blocks}, devices=devices)
        out[devices] = {{n: [np.asarray(m.moment(n, full=False)).tolist(),
                             np.asarray(m.moment_stderr(n, full=False)).tolist(),
                             np.asarray(m.connected(n, full=False)).tolist(),
                             np.asarray(m.connected_stderr(n, full=False)).tolist()]
                        for n in (2, 4, 6)}}
    print(json.dumps(out))
    """
)


def _run(script: str) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_four_devices_match_one_device():
    out = _run(SCRIPT.format(net="ErfNet(width=7)", name="erf", seed=11, n_nets=3_001,
                             n_blocks=10))
    one = out["1"]
    # 10 blocks on 4 devices: the last round leaves two devices idle
    for n in ("2", "4", "6"):
        for a, b in zip(one[n], out["4"][n]):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ... and the same numbers as this (single-device) process computes.
    m = rgflow.measure(rgflow.ErfNet(width=7), rgflow.hms_inputs("erf", 1), 3_001,
                       key=jax.random.key(11), n_blocks=10)
    for n in (2, 4, 6):
        np.testing.assert_allclose(m.moment(n, full=False), one[str(n)][0], rtol=1e-13)
        np.testing.assert_allclose(m.connected_stderr(n, full=False), one[str(n)][3], rtol=1e-10)


def test_devices_argument_validation(key):
    net = rgflow.ErfNet(width=2)
    xs = rgflow.hms_inputs("erf", 1)
    with pytest.raises(ValueError, match="devices"):
        rgflow.measure(net, xs, 10, key=key, n_blocks=2, devices=len(jax.devices()) + 1)
    with pytest.raises(ValueError, match="devices"):
        rgflow.measure(net, xs, 10, key=key, n_blocks=2, devices=[])
    with pytest.raises(ValueError, match="dtype"):
        rgflow.measure(net, xs, 10, key=key, n_blocks=2, dtype="int32")
    m = rgflow.measure(net, xs, 10, key=key, n_blocks=2, devices=jax.devices()[:1])
    assert m.n_nets == 10
