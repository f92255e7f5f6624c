"""Monte Carlo measurement (physics.md §5) against the exact finite-width correlators."""

import jax
import numpy as np
import pytest
from conftest import NETS, zscores

import rgflow

# Gauss-net with σ_b = 1 is log-normal-tailed: its MC 4- and 6-pt moments are carried by
# events several σ out and are not measurable at any feasible M (see rgflow._ensemble and
# test_gauss_default_is_heavy_tailed). Its checks use σ_b = 0.4, where the tails are mild.
CASES = [("erf", 1.0, 2), ("erf", 1.0, 20), ("relu", 0.0, 2), ("relu", 0.0, 20),
         ("gauss", 0.4, 2), ("gauss", 0.4, 20)]


@pytest.mark.parametrize("name, sigma_b, width", CASES)
def test_connected_matches_exact(name, sigma_b, width, key):
    net = NETS[name](width=width, sigma_b=sigma_b)
    xs = rgflow.hms_inputs(name, 1)
    m = rgflow.measure(net, xs, 100_000, key=jax.random.fold_in(key, width))
    for order in (4, 6):
        exact = rgflow.exact_connected(net, xs, order, full=False)
        z = zscores(m.connected(order, full=False), exact, m.connected_stderr(order, full=False))
        # Entries are strongly correlated, so max|z| is close to a single normal deviate.
        assert np.max(np.abs(z)) < 5.0, (order, np.abs(z).max())
        zm = zscores(m.moment(order, full=False), rgflow.exact_moment(net, xs, order, full=False),
                     m.moment_stderr(order, full=False))
        assert np.max(np.abs(zm)) < 5.0, (order, np.abs(zm).max())


def test_measurement_resolves_non_gaussianity(key):
    # Power check: the same test statistic rejects the GP at N = 2 (the checks above can fail).
    net = rgflow.ReLUNet(width=2)
    xs = rgflow.hms_inputs("relu", 1)
    m = rgflow.measure(net, xs, 100_000, key=key, orders=(4,))
    z = zscores(m.connected(4), 0.0, m.connected_stderr(4))
    assert np.max(np.abs(z)) > 10


@pytest.mark.parametrize("d_in", [2, 3])
def test_connected_matches_exact_higher_d(d_in, key):
    # At N <= 3 the ReLU 6-pt estimator's own variance estimate is unreliable at this M (f⁶ has
    # stretched-exponential tails, so the sample misses the rare large terms); N = 10 is safe.
    net = rgflow.ReLUNet(width=10, d_in=d_in)
    xs = rgflow.hms_inputs("relu", d_in)
    m = rgflow.measure(net, xs, 100_000, key=key)
    for order in (4, 6):
        z = zscores(m.connected(order), rgflow.exact_connected(net, xs, order),
                    m.connected_stderr(order))
        assert np.max(np.abs(z)) < 5.0


def test_same_key_same_numbers_any_batch_size(key):
    net = rgflow.ErfNet(width=10)
    xs = rgflow.hms_inputs("erf", 1)
    a = rgflow.measure(net, xs, 3_001, key=key, batch_size=64, n_blocks=5)
    b = rgflow.measure(net, xs, 3_001, key=key, batch_size=1000, n_blocks=5)
    for n in (2, 4, 6):
        np.testing.assert_allclose(a.moment(n), b.moment(n), rtol=1e-12)
        np.testing.assert_allclose(a.connected_stderr(n), b.connected_stderr(n), rtol=1e-9)
    c = rgflow.measure(net, xs, 3_001, key=jax.random.fold_in(key, 1), n_blocks=5)
    assert not np.allclose(a.moment(4), c.moment(4))


def test_stderr_estimators_are_calibrated(key):
    # The spread of independent replicate estimates matches the reported standard errors.
    net = rgflow.ErfNet(width=3)
    xs = rgflow.hms_inputs("erf", 1)[:3]
    reps = [rgflow.measure(net, xs, 4_000, key=jax.random.fold_in(key, 100 + i), n_blocks=16)
            for i in range(40)]
    for get, err in ((lambda m: m.moment(4, full=False), lambda m: m.moment_stderr(4, full=False)),
                     (lambda m: m.connected(4, full=False),
                      lambda m: m.connected_stderr(4, full=False))):
        vals = np.stack([np.asarray(get(m)) for m in reps])
        errs = np.mean([np.asarray(err(m)) for m in reps], axis=0)
        ratio = vals.std(axis=0, ddof=1) / errs
        # 40 replicates: the sample std has ~11% relative error.
        assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio


def test_checkpoint_resume_gives_identical_numbers(key, tmp_path, monkeypatch):
    import rgflow._ensemble as ens

    net = rgflow.GaussNet(width=4, sigma_b=0.5)
    xs = rgflow.hms_inputs("gauss", 1)
    ref = rgflow.measure(net, xs, 2_000, key=key, n_blocks=8)
    real = ens._block_sums
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(ens, "_block_sums", flaky)
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        rgflow.measure(net, xs, 2_000, key=key, n_blocks=8, checkpoint=path)
    monkeypatch.setattr(ens, "_block_sums", real)
    assert path.exists()
    resumed = rgflow.measure(net, xs, 2_000, key=key, n_blocks=8, checkpoint=path)
    for n in (2, 4, 6):
        np.testing.assert_array_equal(resumed.moment(n), ref.moment(n))
        np.testing.assert_array_equal(resumed.connected_stderr(n), ref.connected_stderr(n))
    with pytest.raises(ValueError, match="checkpoint"):
        rgflow.measure(net, xs, 2_000, key=jax.random.fold_in(key, 3), n_blocks=8,
                       checkpoint=path)


def test_measure_widths(key):
    net = rgflow.ReLUNet(width=1)
    xs = rgflow.hms_inputs("relu", 1)
    res = rgflow.measure_widths(net, xs, 1_000, [2, 5], key=key, orders=(2, 4))
    assert set(res) == {2, 5} and res[5].net.width == 5
    single = rgflow.measure(rgflow.ReLUNet(width=5), xs, 1_000, key=jax.random.fold_in(key, 5),
                            orders=(2, 4))
    np.testing.assert_array_equal(res[5].moment(4), single.moment(4))


def test_bad_measure_inputs(key):
    net = rgflow.ErfNet(width=2)
    xs = rgflow.hms_inputs("erf", 1)
    with pytest.raises(ValueError, match="n_nets"):
        rgflow.measure(net, xs, 1, key=key)
    with pytest.raises(ValueError, match="orders"):
        rgflow.measure(net, xs, 10, key=key, orders=(2, 3), n_blocks=2)
    with pytest.raises(ValueError, match="xs"):
        rgflow.measure(net, np.zeros((3, 2)), 10, key=key, n_blocks=2)
    with pytest.raises(ValueError, match="xs"):
        rgflow.measure(net, np.array([[np.nan]]), 10, key=key, n_blocks=2)
    with pytest.raises(ValueError, match="n_blocks"):
        rgflow.measure(net, xs, 10, key=key, n_blocks=11)
    m = rgflow.measure(net, xs, 10, key=key, orders=(2,), n_blocks=2)
    with pytest.raises(ValueError, match="order"):
        m.connected(4)


def test_gauss_default_is_heavy_tailed(key):
    # Documented pitfall: at σ_b = 1 the MC 4-pt moment of Gauss-net sits far below the exact
    # value with a (meaningless) small error bar; the exact route is the reference there.
    net = rgflow.GaussNet(width=2)
    xs = rgflow.hms_inputs("gauss", 1)
    m = rgflow.measure(net, xs, 20_000, key=key, orders=(4,))
    ratio = np.asarray(m.moment(4)) / np.asarray(rgflow.exact_moment(net, xs, 4))
    assert np.all(ratio < 0.9)


_KILL_SCRIPT = """
import sys, time
import jax
import rgflow, rgflow._ensemble as ens
real = ens._block_sums
def slow(*args, **kw):  # slow blocks down so that the parent can kill the run mid-way
    out = real(*args, **kw)
    time.sleep(0.3)
    return out
ens._block_sums = slow
rgflow.measure(rgflow.ErfNet(width=6), rgflow.hms_inputs("erf", 1), 4_000,
               key=jax.random.key(7), n_blocks=12, checkpoint=sys.argv[1])
"""


def test_checkpoint_survives_sigkill(tmp_path):
    # A real kill (SIGKILL, no cleanup) of a run in another process; resumed here, the numbers
    # are bit-for-bit those of an uninterrupted run.
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "killed.npz"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(path)],
                            env=dict(os.environ, JAX_PLATFORMS="cpu"))
    done = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                with np.load(path) as data:
                    done = int(data["done"])
                if done >= 2:
                    break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 2 <= done < 12, done
    net, xs, key = rgflow.ErfNet(width=6), rgflow.hms_inputs("erf", 1), jax.random.key(7)
    resumed = rgflow.measure(net, xs, 4_000, key=key, n_blocks=12, checkpoint=path)
    ref = rgflow.measure(net, xs, 4_000, key=key, n_blocks=12)
    for n in (2, 4, 6):
        np.testing.assert_array_equal(resumed.moment(n), ref.moment(n))
        np.testing.assert_array_equal(resumed.moment_stderr(n), ref.moment_stderr(n))
        np.testing.assert_array_equal(resumed.connected(n), ref.connected(n))
        np.testing.assert_array_equal(resumed.connected_stderr(n), ref.connected_stderr(n))


def test_float32_sampling_matches_exact(key):
    net = rgflow.ErfNet(width=4)
    xs = rgflow.hms_inputs("erf", 1)
    m = rgflow.measure(net, xs, 30_000, key=key, dtype="float32", orders=(4,))
    z = zscores(m.connected(4, full=False), rgflow.exact_connected(net, xs, 4, full=False),
                m.connected_stderr(4, full=False))
    assert np.max(np.abs(z)) < 5.0


def test_sampler_matches_network_outputs(key):
    # measure's fused sampler draws the very networks of `net.sample`
    import jax.numpy as jnp

    from rgflow._ensemble import _sample_outputs

    net = rgflow.GaussNet(width=3, d_in=3, sigma_b=0.3)
    xs = rgflow.hms_inputs("gauss", 3)
    a = _sample_outputs(net, jnp.asarray(xs), key, jnp.arange(7, 40, dtype=jnp.uint32),
                        jnp.float64)
    b = net.sample(xs, 33, key=key, start=7)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_measure_widths_threads_and_checkpoints(key, tmp_path):
    net = rgflow.ReLUNet(width=1)
    xs = rgflow.hms_inputs("relu", 1)
    seq = rgflow.measure_widths(net, xs, 1_000, [2, 5], key=key, orders=(2, 4), workers=1)
    par = rgflow.measure_widths(net, xs, 1_000, [2, 5], key=key, orders=(2, 4),
                                checkpoint=tmp_path / "run.npz")
    for w in (2, 5):
        np.testing.assert_array_equal(seq[w].moment(4), par[w].moment(4))
        assert (tmp_path / f"run_N{w}.npz").exists()
