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


@pytest.mark.slow
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


WORKER = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                               process_id=pid)
    import numpy as np
    import rgflow
    assert jax.process_count() == 2 and len(jax.devices()) == 4, jax.devices()
    m = rgflow.measure(rgflow.ErfNet(width=5), rgflow.hms_inputs("erf", 1), 3000,
                       key=jax.random.key(3), n_blocks=7)
    np.savez(out, m6=m.moment(6), s6=m.moment_stderr(6), c6=m.connected(6),
             e6=m.connected_stderr(6))
    jax.distributed.shutdown()
    """
)


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    # The multi-host path (README, rgflow/_sharding.py): two processes with two CPU devices each
    # form one 4-device mesh through jax.distributed (gloo collectives on CPU); both processes
    # return the numbers of a plain single-device run, bit for bit (7 blocks: one idle slot).
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(port),
                               str(tmp_path / f"p{i}.npz")], env=env, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    m = rgflow.measure(rgflow.ErfNet(width=5), rgflow.hms_inputs("erf", 1), 3000,
                       key=jax.random.key(3), n_blocks=7, devices=1)
    for i in range(2):
        with np.load(tmp_path / f"p{i}.npz") as got:
            np.testing.assert_array_equal(got["m6"], m.moment(6))
            np.testing.assert_array_equal(got["s6"], m.moment_stderr(6))
            np.testing.assert_array_equal(got["c6"], m.connected(6))
            np.testing.assert_array_equal(got["e6"], m.connected_stderr(6))
