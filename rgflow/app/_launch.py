"""`--processes K`: run one command as K local processes of a `jax.distributed` run (issue 27).

The launcher itself runs no JAX. It picks a free port for the coordinator (process 0), starts K
copies of the command with `RGFLOW_COORDINATOR_ADDRESS`, `RGFLOW_NUM_PROCESSES`,
`RGFLOW_PROCESS_ID` in their environment (what `rgflow.initialize_distributed` reads; on a
cluster `srun`/`mpirun` provide the equivalent), and waits. If one process fails, the others are
stopped at once and the failure is reported with the process, its exit status and how to resume,
instead of the survivors waiting for the dead one's heartbeat to time out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_processes(processes, oversubscribe: bool = False) -> int:
    """Validate `--processes K`: an integer 1 <= K <= usable cores (unless `oversubscribe`)."""
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"`--processes` must be an integer, got {processes!r}.")
    if processes < 1:
        raise ValueError(f"`--processes` must be >= 1, got {processes}.")
    cores = usable_cores()
    if processes > cores and not oversubscribe:
        raise ValueError(f"`--processes` {processes} is more than the {cores} usable CPU cores; "
                         "pass --oversubscribe to run them anyway (slower, e.g. for tests).")
    return processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def launch(argv: list[str], processes: int, *, env: dict | None = None,
           timeout: float | None = None, poll: float = 0.1, stdout=None, stderr=None) -> int:
    """Run `argv` as `processes` local processes of one distributed run; return 0 or raise.

    `env`: the environment of the processes (default this one's) to which the coordinator
    address, process count and process id are added; `stdout`, `stderr`: as `subprocess.Popen`.

    **Raises:** `RuntimeError` naming the first process that failed (the others are stopped),
    or `TimeoutError` after `timeout` seconds (all are stopped).
    """
    base = dict(os.environ if env is None else env)
    base["RGFLOW_COORDINATOR_ADDRESS"] = f"127.0.0.1:{free_port()}"
    base["RGFLOW_NUM_PROCESSES"] = str(processes)
    procs = []
    for r in range(processes):
        e = dict(base, RGFLOW_PROCESS_ID=str(r))
        procs.append(subprocess.Popen(argv, env=e, start_new_session=True, stdout=stdout,
                                      stderr=stderr))
    start = time.monotonic()
    failed = None
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                failed = bad[0]
                break
            if all(c == 0 for c in codes):
                return 0
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"the {processes} processes did not finish within {timeout:g} s;"
                                   " they were stopped.")
            time.sleep(poll)
    finally:
        _stop([p for p in procs if p.poll() is None])
    r, code = failed
    raise RuntimeError(
        f"process {r} of {processes} {_describe(code)}; the other processes were stopped. "
        "Its own output above says why. A rerun of the same command with the same --processes "
        "and --checkpoint resumes every process from its checkpoint."
    )


def _stop(procs, grace: float = 3.0) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()


def python_argv(module: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", module, *args]
