"""`rgflow reproduce --processes K` and the join of a distributed run (issue 27, physics.md §15):
every process runs the stages process 0 found missing, the Monte Carlo inside them is shared,
only process 0 writes figures, JSON, the stage cache and the summary; bad combinations are
refused; a process whose peers never join fails with a clear timeout instead of JAX's abort."""

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rgflow import _distributed
from rgflow.app import reproduce as rep
from rgflow.app._launch import free_port
from rgflow.app.cli import app
from rgflow.studies import STUDIES

runner = CliRunner()

TINY = """
stages = ["free_theory"]
[free_theory]
nets = ["erf"]
widths = [2, 3]
n_nets = 400
hms_relu = false
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RGFLOW_")}
    env.update(RGFLOW_XLA_CACHE="off", RGFLOW_HEARTBEAT_TIMEOUT="10", RGFLOW_WAIT_TIMEOUT="120",
               JAX_PLATFORMS="cpu", **extra)
    return env


@pytest.mark.parametrize("args,message", [
    (["--processes", "2", "--jobs", "1"], "--jobs 1 cannot be combined with --processes 2"),
    (["--processes", "0"], "must be >= 1"),
    (["--processes", "100000"], "--oversubscribe"),
])
def test_reproduce_refuses_bad_process_options(tmp_path, args, message):
    config = tmp_path / "c.toml"  # small, should the check ever let a run through
    config.write_text(TINY)
    res = runner.invoke(app, ["reproduce", "--config", str(config), "--out", str(tmp_path / "o"),
                              *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()  # nothing ran


class _Fake:
    """A one-result study that counts its runs (stands in for a real one)."""

    TITLE = "Fake study"
    runs = 0

    @classmethod
    def run(cls, config, *, progress=False):
        cls.runs += 1
        return {"fake_result": {"value": config["x"], "caption": "fake"}}

    @staticmethod
    def plot(result, stem):
        path = Path(f"{stem}.png")
        path.write_bytes(b"png")
        return [path]

    @staticmethod
    def summary(config, results):
        return [("value", results["fake_result"]["value"], "1")]


def _as_process(monkeypatch, index, shared_stages):
    """Pretend to be process `index` of 2: the stage list comes from 'process 0'."""
    monkeypatch.setitem(STUDIES, "fake", _Fake)
    monkeypatch.setattr(rep, "_is_distributed", lambda: True)
    monkeypatch.setattr(rep, "_process_index", lambda: index)
    monkeypatch.setattr(rep, "_process_count", lambda: 2)
    monkeypatch.setattr(_distributed, "check_same_run", lambda **spec: "digest")
    seen = []

    def from_process_0(value, what):
        seen.append(json.loads(value))
        return json.dumps(shared_stages)

    monkeypatch.setattr(_distributed, "from_process_0", from_process_0)
    return seen


def test_only_process_0_reads_the_cache_and_writes(tmp_path, monkeypatch):
    cfg = {"stages": ["fake"], "fake": {"x": 1}}
    out = tmp_path / "o"
    # process 1: runs what process 0 says is missing, writes nothing, logs nothing
    seen = _as_process(monkeypatch, 1, ["fake"])
    _Fake.runs, lines = 0, []
    rep.reproduce(cfg, out, jobs=0, log=lines.append)
    assert _Fake.runs == 1 and seen == [[]]  # it did not look at the cache itself
    assert not out.exists() and lines == []
    # process 0: decides from its cache, runs, writes the JSON, figure, cache marker, summary
    seen = _as_process(monkeypatch, 0, ["fake"])
    rep.reproduce(cfg, out, jobs=0, log=lines.append)
    assert seen == [["fake"]] and _Fake.runs == 2
    assert json.loads((out / "fake_result.json").read_text())["value"] == 1
    assert (out / "fake_result.png").exists() and (out / "summary.md").exists()
    assert len(list(out.glob(".cache/fake-*.json"))) == 1
    assert any("0 Monte Carlo runs shared by 2 processes" in line for line in lines)
    # a rerun: process 0 finds the stage cached and tells the others there is nothing to run
    seen = _as_process(monkeypatch, 0, [])
    report = rep.reproduce(cfg, out, jobs=0, log=lines.append)
    assert seen == [[]] and report["fake"]["cached"] and _Fake.runs == 2
    # worker processes and jax.distributed do not mix
    with pytest.raises(ValueError, match="`jobs` must be 0 under jax.distributed"):
        rep.reproduce(cfg, out, jobs=2, log=lines.append)


def test_join_timeout_names_the_coordinator_and_does_not_hang():
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"process 0 of 2: not every process joined the "
                                           r"coordinator at 10\.0\.0\.1:1234 within 0\.3 s"):
        _distributed._bounded_join(release.wait, 0.3, "10.0.0.1:1234", 2, 0)
    assert time.monotonic() - start < 2
    release.set()
    _distributed._bounded_join(lambda: None, 5, "10.0.0.1:1234", 2, 0)  # joined in time

    def refused():
        raise ValueError("bad join")

    with pytest.raises(ValueError, match="bad join"):  # JAX's own errors come through
        _distributed._bounded_join(refused, 5, "10.0.0.1:1234", 2, 0)


def test_process_0_alone_fails_with_a_clear_timeout(tmp_path):
    # process 0 of 2 (the coordinator) whose peer never starts: before, JAX aborted the process
    # from C++ (SIGABRT, "DEADLINE_EXCEEDED ... RegisterTask") after its own timeout
    address = f"127.0.0.1:{free_port()}"
    env = _env(RGFLOW_COORDINATOR_ADDRESS=address, RGFLOW_NUM_PROCESSES="2",
               RGFLOW_PROCESS_ID="0", RGFLOW_INIT_TIMEOUT="2")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "rgflow.app.cli", "measure", "--out",
                          str(tmp_path / "o.npz"), "--width", "3"], env=env,
                         capture_output=True, text=True, timeout=90)
    assert time.monotonic() - start < 60
    assert res.returncode == 1, res.stderr[-2000:]
    assert (f"Error: process 0 of 2: not every process joined the coordinator at {address} "
            "within 2 s") in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "o.npz").exists()


def _numbers_agree(a, b, path=""):
    """Max relative difference of two JSON trees with the same structure and non-numbers."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        return max([_numbers_agree(a[k], b[k], f"{path}.{k}") for k in a], default=0.0)
    if isinstance(a, list):
        assert len(a) == len(b), path
        return max([_numbers_agree(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))],
                   default=0.0)
    if isinstance(a, float) and isinstance(b, float) and a != b:
        assert not (math.isnan(a) or math.isnan(b)), path
        return abs(a - b) / max(abs(a), abs(b))
    assert a == b, (path, a, b)
    return 0.0


@pytest.mark.slow  # two fresh processes and one in-process run of a stage: ~100 s at load 5 on 2 cores
def test_reproduce_over_two_processes_equals_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TINY)
    one, two = tmp_path / "one", tmp_path / "two"
    rep.reproduce(rep.load_config(path), one, jobs=0, log=lambda *_: None)
    cmd = [sys.executable, "-m", "rgflow.app.cli", "reproduce", "--config", str(path), "--out",
           str(two), "--processes", "2"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 Monte Carlo runs shared by 2 processes" in res.stdout, res.stdout
    assert res.stdout.count("summary:") == 1  # process 0 speaks, the others compute
    for name in ("free_theory_d1.json",):
        diff = _numbers_agree(json.loads((one / name).read_text()),
                              json.loads((two / name).read_text()))
        assert diff <= 1e-12, (name, diff)
    assert (one / "summary.md").read_text() == (two / "summary.md").read_text()
    assert (two / "free_theory_d1.png").exists() and list(two.glob(".cache/free_theory-*.json"))
    # a rerun resumes from process 0's cache: nothing to compute in either process
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert ": cached" in again.stdout and "shared" not in again.stdout, again.stdout



# the launcher and its processes, loaded from the file alone (stdlib only: no JAX, fast)
_LOAD = ("import importlib.util as u; s = u.spec_from_file_location('L', {path!r}); "
         "m = u.module_from_spec(s); s.loader.exec_module(m); ")
_CHILD = "m.watch_launcher(0.1); import os, time; os.write(1, b'up\\n'); time.sleep(20)"


def _launcher(tmp_path):
    from rgflow.app import _launch

    load = _LOAD.format(path=_launch.__file__)
    code = load + f"m.launch([{sys.executable!r}, '-c', {load + _CHILD!r}], 2)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(2):  # both processes are up (and watching)
        assert proc.stdout.readline() == "up\n"
    return proc


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_no_process_outlives_its_launcher(tmp_path, sig):
    import signal

    proc = _launcher(tmp_path)
    start = time.monotonic()
    proc.send_signal(getattr(signal, sig))
    # the pipes reach end-of-file only when every process holding them (the two) has exited
    err = proc.stderr.read()
    proc.stdout.read()
    assert time.monotonic() - start < 10
    if sig == "SIGKILL":  # the processes noticed that their parent is gone
        assert err.count("Error: the launcher (pid") == 2, err
    else:  # the launcher stopped them before it went
        assert proc.wait() == 128 + signal.SIGTERM


@pytest.mark.slow  # two fresh processes that join: ~50 s at load 9 on 2 cores
def test_reproduce_processes_with_different_configurations_refuse(tmp_path):
    # two processes of one run started by hand (as srun would) with different TOML files that
    # differ in a setting no Monte Carlo call sees (σ_b of a ReLU panel the Erf-only run does
    # not draw): the configuration's checksum differs, both refuse before any stage runs
    address = f"127.0.0.1:{free_port()}"
    procs = []
    for r, sigma_b in enumerate((1.0, 1.5)):
        config = tmp_path / f"c{r}.toml"
        config.write_text(TINY + f"relu_sigma_b = {sigma_b}\n")
        env = _env(RGFLOW_COORDINATOR_ADDRESS=address, RGFLOW_NUM_PROCESSES="2",
                   RGFLOW_PROCESS_ID=str(r), RGFLOW_INIT_TIMEOUT="60")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "rgflow.app.cli", "reproduce", "--config", str(config),
             "--out", str(tmp_path / "o")], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2, err[-2000:]
        assert "Error: the processes were given different arguments (run-spec checksums" in err
    assert not (tmp_path / "o").exists()


def _child_pids(parent: int) -> dict[int, int]:
    """{RGFLOW_PROCESS_ID: pid} of the launcher's children (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in env:
            if item.startswith(b"RGFLOW_PROCESS_ID="):
                found[int(item.split(b"=")[1])] = int(entry.name)
    return found


@pytest.mark.slow  # two runs of two processes: ~2 min at load 10 on 2 cores
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_reproduce_with_a_killed_process_fails_and_a_rerun_finishes(tmp_path):
    import signal

    path = tmp_path / "c.toml"
    path.write_text(TINY)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "rgflow.app.cli", "reproduce", "--config", str(path), "--out",
           str(out), "--processes", "2"]
    launcher = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    for line in launcher.stdout:  # process 0 has started the stage: kill process 1 mid-stage
        if "Free-theory check" in line:
            break
    os.kill(_child_pids(launcher.pid)[1], signal.SIGKILL)
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 1
    assert "process 1 of 2 was killed by signal SIGKILL" in err and "stage cache" in err, err
    assert not list(out.glob(".cache/free_theory-*.json"))  # the stage did not finish
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 Monte Carlo runs shared by 2 processes" in again.stdout
    assert list(out.glob(".cache/free_theory-*.json")) and (out / "summary.md").exists()
