"""`--processes K`: run one command as K local processes of a `jax.distributed` run (issue 27).

The launcher itself runs no JAX. It picks a free port for the coordinator (process 0), starts K
copies of the command with `RGFLOW_COORDINATOR_ADDRESS`, `RGFLOW_NUM_PROCESSES`,
`RGFLOW_PROCESS_ID` in their environment (what `rgflow.initialize_distributed` reads; on a
cluster `srun`/`mpirun` provide the equivalent), and waits. If one process fails, the others are
stopped at once and the failure is reported with the process, its exit status and how to resume,
instead of the survivors waiting for the dead one's heartbeat to time out. If the launcher itself
is stopped (SIGTERM: the processes are stopped first) or killed (SIGKILL: each process notices
that its parent is gone within a second and exits), no process is left running on its own.
Stopping uses SIGTERM and, after a grace period, SIGKILL: JAX's preemption handler catches
SIGTERM in a process of a distributed run, so SIGTERM alone may not end it.
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


RESUME_CHECKPOINT = ("A rerun of the same command with the same --processes and --checkpoint "
                     "resumes every process from its checkpoint.")


def launch(argv: list[str], processes: int, *, env: dict | None = None,
           timeout: float | None = None, poll: float = 0.1, stdout=None, stderr=None,
           resume: str = RESUME_CHECKPOINT) -> int:
    """Run `argv` as `processes` local processes of one distributed run; return 0 or raise.

    `env`: the environment of the processes (default this one's) to which the coordinator
    address, process count and process id are added; `stdout`, `stderr`: as `subprocess.Popen`;
    `resume`: how to resume, for the failure message.

    **Raises:** `RuntimeError` naming the first process that failed (the others are stopped),
    or `TimeoutError` after `timeout` seconds (all are stopped).
    """
    base = dict(os.environ if env is None else env)
    base["RGFLOW_COORDINATOR_ADDRESS"] = f"127.0.0.1:{free_port()}"
    base["RGFLOW_NUM_PROCESSES"] = str(processes)
    base[ENV_LAUNCHER] = str(os.getpid())
    procs = []
    start = time.monotonic()
    failed = None
    previous = _terminate_as_exception()
    try:
        for r in range(processes):
            e = dict(base, RGFLOW_PROCESS_ID=str(r))
            procs.append(subprocess.Popen(argv, env=e, start_new_session=True, stdout=stdout,
                                          stderr=stderr))
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
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    r, code = failed
    raise RuntimeError(
        f"process {r} of {processes} {_describe(code)}; the other processes were stopped. "
        f"Its own output above says why. {resume}"
    )


ENV_LAUNCHER = "RGFLOW_LAUNCHER_PID"


def _terminate_as_exception():
    """While the processes run, SIGTERM to the launcher (a job scheduler, `timeout`, `kill`)
    raises `SystemExit` so that `launch` stops them before it goes; returns the previous
    handler (None where signals cannot be set: not the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, stop)


def watch_launcher(poll: float = 0.5) -> None:
    """In a process started by `launch`: exit (status 1, a one-line message) as soon as the
    launcher is gone (killed by SIGKILL, say), instead of computing on as an orphan.

    A daemon thread compares the parent's pid with `RGFLOW_LAUNCHER_PID` every `poll`
    seconds. A no-op in a process not started by `launch` (e.g. under `srun`)."""
    import threading

    text = os.environ.get(ENV_LAUNCHER)
    if not text or not text.isdigit():
        return
    launcher = int(text)
    if os.getppid() != launcher:  # started by something else with the variable set
        return

    def watch():
        while True:
            time.sleep(poll)
            if os.getppid() != launcher:
                me = os.environ.get("RGFLOW_PROCESS_ID", "?")
                sys.stderr.write(f"Error: the launcher (pid {launcher}) of process {me} is gone; "
                                 "stopping. A rerun resumes from the checkpoints.\n")
                sys.stderr.flush()
                os._exit(1)

    threading.Thread(target=watch, name="rgflow-watch-launcher", daemon=True).start()


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
