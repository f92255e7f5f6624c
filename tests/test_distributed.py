"""Monte Carlo over several processes (issue 27, physics.md §15): jax.distributed with gloo
collectives on local CPU processes. Same seed ⇒ the same numbers for 1, 2 (and 4, slow)
processes as today's single-process `rgflow.measure`; a killed process fails the run with a
clear message and a rerun resumes from the per-process checkpoints; mismatched arguments, a
silent coordinator and bad `--processes` are refused."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import rgflow
from rgflow._distributed import _wait_for_coordinator, process_checkpoint_path, process_share
from rgflow._io import save_npz
from rgflow.app._launch import free_port, launch
from rgflow.app.cli import app

WORKER = str(Path(__file__).with_name("_distributed_worker.py"))
XS = np.array([[-0.5], [0.2], [0.9]])
NET = rgflow.ErfNet(width=3)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGFLOW_")}
    env.update(RGFLOW_XLA_CACHE="off", RGFLOW_HEARTBEAT_TIMEOUT="10", RGFLOW_WAIT_TIMEOUT="60",
               JAX_PLATFORMS="cpu", **extra)
    return env


def _launch_worker(tmp_path, mode, processes, *extra):
    out = tmp_path / f"{mode}{processes}.npz"
    log = tmp_path / f"{mode}{processes}.log"
    with open(log, "w") as f:
        try:
            launch([sys.executable, WORKER, str(out), mode, *extra], processes, env=_env(),
                   timeout=240,
                   stdout=f, stderr=subprocess.STDOUT)
        except RuntimeError as e:
            return None, f"{e}\n{log.read_text()}"
    return dict(np.load(out)), log.read_text()


def _single(n_nets=3000, **kw):
    return rgflow.measure(NET, XS, n_nets, key=jax.random.key(7), **kw)


def test_two_processes_equal_one_process(tmp_path):
    got, log = _launch_worker(tmp_path, "measure", 2)
    assert got is not None, log
    ref = _single()
    for n in (2, 4, 6):
        # copied, never re-added: the per-block sums are bit-identical, hence everything else
        np.testing.assert_array_equal(got[f"block_sums_{n}"], np.asarray(ref.block_sums[n]))
        np.testing.assert_array_equal(got[f"sum_squares_{n}"], np.asarray(ref.sum_squares[n]))
        np.testing.assert_allclose(got[f"connected_{n}"], ref.connected(n), rtol=1e-12, atol=0)
        np.testing.assert_allclose(got[f"connected_stderr_{n}"], ref.connected_stderr(n),
                                   rtol=1e-12, atol=0)
    # then both processes called measure with different n_nets (3000, 3001): both refused
    assert "different arguments" in str(got["mismatch"]), got["mismatch"]
    assert "run-spec checksums" in str(got["mismatch"])


@pytest.mark.slow
def test_one_two_four_processes_agree_for_every_estimator(tmp_path):
    # measure, measure_widths, measure_neurons, measure_conditional (about 3 minutes)
    runs = {k: _launch_worker(tmp_path, "all", k) for k in (2, 4)}
    for got, log in runs.values():
        assert got is not None, log
    ref = _single()
    ws = rgflow.measure_widths(NET, XS, 2000, [2, 5], key=jax.random.key(7), orders=(2, 4),
                               n_blocks=8)
    ne = rgflow.measure_neurons(NET, XS, 3000, key=jax.random.key(7), orders=(2, 4), n_blocks=8)
    ce = rgflow.measure_conditional(NET, XS, 500, key=jax.random.key(7), n_blocks=4)
    expected = {"block_sums_6": ref.block_sums[6], "widths_2": ws[2].block_sums[4],
                "widths_5": ws[5].block_sums[4], "neurons": ne.block_sums[4],
                "conditional": ce.block_sums[2]}
    for k, (got, _) in runs.items():
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], np.asarray(value), err_msg=f"{k}: {name}")


def test_process_shares_cover_the_blocks_once():
    for n_blocks in (2, 7, 32):
        for count in (1, 2, 3):
            if n_blocks < count:
                continue
            shares = [process_share(n_blocks, r, count) for r in range(count)]
            assert shares[0][0] == 0 and shares[-1][1] == n_blocks
            assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
    with pytest.raises(ValueError, match="n_blocks"):
        process_share(2, 0, 3)
    assert process_checkpoint_path("run.npz", 1, 4).name == "run.process1-of-4.npz"
    assert str(process_checkpoint_path("run.npz", 0, 1)) == "run.npz"


def test_silent_coordinator_times_out_with_a_clear_message():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer within 1 s"):
        _wait_for_coordinator(f"127.0.0.1:{free_port()}", 1.0)
    assert time.monotonic() - start < 5


@pytest.mark.slow
def test_cli_process_without_coordinator_fails_cleanly(tmp_path):
    # process 1 of 2 whose coordinator (process 0) never starts: a one-line error, no hang
    env = _env(RGFLOW_COORDINATOR_ADDRESS=f"127.0.0.1:{free_port()}", RGFLOW_NUM_PROCESSES="2",
               RGFLOW_PROCESS_ID="1", RGFLOW_INIT_TIMEOUT="2")
    res = subprocess.run([sys.executable, "-m", "rgflow.app.cli", "measure", "--out",
                          str(tmp_path / "o.npz"), "--width", "3"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "Error: the coordinator at 127.0.0.1" in res.stderr and "within 2 s" in res.stderr


@pytest.mark.parametrize("args,message", [
    (["--processes", "0"], "must be >= 1"),
    (["--processes", "100000"], "--oversubscribe"),
])
def test_cli_refuses_bad_process_counts(tmp_path, args, message):
    res = CliRunner().invoke(app, ["measure", "--out", str(tmp_path / "o.npz"), "--width", "3",
                                   *args])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o.npz").exists()


def _children(parent: int) -> dict[int, int]:
    """{process id (RGFLOW_PROCESS_ID): pid} of the launcher's children (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in env:
            if item.startswith(b"RGFLOW_PROCESS_ID="):
                found[int(item.split(b"=")[1])] = int(entry.name)
    return found


@pytest.mark.slow  # two launches of two processes and a 64k reference: ~40 s of CPU
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_process_fails_the_run_and_a_rerun_resumes(tmp_path):
    n_nets, n_blocks = 64_000, 64
    ck = tmp_path / "ck.npz"
    cmd = [sys.executable, "-m", "rgflow.app.cli", "measure", "--out", str(tmp_path / "m.npz"),
           "--width", "3", "--inputs", "-0.5;0.2;0.9", "--n-nets", str(n_nets), "--n-blocks",
           str(n_blocks), "--seed", "7", "--checkpoint", str(ck), "--processes", "2",
           "--no-progress"]
    parent = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    mine = process_checkpoint_path(ck, 1, 2)
    deadline = time.monotonic() + 180
    while not mine.exists() and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = _children(parent.pid)
    assert mine.exists() and 1 in pids, parent.communicate()
    os.kill(pids[1], signal.SIGKILL)  # mid-run: process 1 has checkpointed some of its blocks
    killed = time.monotonic()
    _, err = parent.communicate(timeout=60)
    assert time.monotonic() - killed < 20  # no hang: the launcher stops the survivor at once
    assert parent.returncode == 1
    assert "process 1 of 2 was killed by signal SIGKILL" in err and "resumes" in err
    with pytest.raises(ProcessLookupError):  # the survivor was stopped, not left waiting
        os.kill(pids[0], 0)
    assert not (tmp_path / "m.npz").exists()  # nothing written by a failed run
    # mark a block process 1 had finished: a rerun that resumes keeps it, one that recomputes
    # would not
    with np.load(mine) as data:
        saved = dict(data)
    done = int(saved["done"])
    assert 1 <= done < n_blocks // 2
    saved["sums_2"][0, 0] += 1.0
    save_npz(mine, **saved)
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    got = np.load(tmp_path / "m.npz")
    ref = _single(n_nets, n_blocks=n_blocks)
    shift = np.zeros((3, 3))
    shift[0, 0] = 1.0 / n_nets
    np.testing.assert_allclose(got["moment_2"], np.asarray(ref.moment(2)) + shift, rtol=1e-12,
                               atol=0)
    for n in (4, 6):  # the other orders: the single-process numbers, bit for bit
        np.testing.assert_array_equal(got[f"moment_{n}"], ref.moment(n))
        np.testing.assert_array_equal(got[f"moment_stderr_{n}"], ref.moment_stderr(n))


def test_initialize_refuses_late_calls_and_bad_values(monkeypatch):
    jax.numpy.zeros(1).block_until_ready()  # this process has computed already
    with pytest.raises(RuntimeError, match="before any JAX computation"):
        rgflow.initialize_distributed("127.0.0.1:1", 2, 1)
    with pytest.raises(ValueError, match="timeout"):
        rgflow.initialize_distributed("127.0.0.1:1", 2, 1, timeout=0)
    monkeypatch.setenv("RGFLOW_NUM_PROCESSES", "two")
    from jax._src import xla_bridge

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: False)
    with pytest.raises(ValueError, match="RGFLOW_NUM_PROCESSES must be an integer"):
        rgflow.initialize_distributed("127.0.0.1:1")
    monkeypatch.setenv("RGFLOW_NUM_PROCESSES", "2")
    with pytest.raises(ValueError, match="process_id"):
        rgflow.initialize_distributed("127.0.0.1:1", process_id=5)
    monkeypatch.setenv("RGFLOW_WAIT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="RGFLOW_WAIT_TIMEOUT must be a number"):
        rgflow.initialize_distributed("127.0.0.1:1", 2, 1)


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_ensemble_training_over_processes(tmp_path, processes):
    # rgflow.train_ensemble: each process trains its share of the blocks (own checkpoint file),
    # one all-gather; the per-block sums equal one process's bit for bit
    ckpt = tmp_path / "train.npz"
    got, log = _launch_worker(tmp_path, "train", processes, str(ckpt))
    assert got is not None, log
    assert process_checkpoint_path(ckpt, processes - 1, processes).exists()
    assert not ckpt.exists()
    tm = rgflow.train_ensemble(NET, np.array([[-1.0], [0.5]]), np.array([0.3, -0.2]), XS, 96,
                               key=jax.random.key(7), times=(0, 3), learning_rate=0.1,
                               n_blocks=6, batch_size=8)
    for n in (1, 2, 4):
        np.testing.assert_array_equal(got[f"train_sums_{n}"], np.asarray(tm.block_sums[n]))
        np.testing.assert_array_equal(got[f"train_squares_{n}"], np.asarray(tm.sum_squares[n]))
